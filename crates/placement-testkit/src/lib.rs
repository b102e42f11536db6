//! Golden scripts: behaviour tests as plain text, commands in and outcomes out.
//!
//! One runner for every script of the workspace (the state machine's in
//! `crates/placement-core/testscripts/`, the HTTP API's in `crates/placement-api/testscripts/`),
//! after the datadriven tests of CockroachDB and etcd's raft (`interaction_test.go`) and the
//! golden scripts of toyDB (`src/raft/testscripts/`). A script is a sequence of cases:
//!
//! ```text
//! # A comment: any line starting with `#` between cases.
//! set-inventories cn1 gen=0 VCPU=8
//! ----
//! ok
//! ~ provider cn1 gen 0→1 +VCPU total=8
//!
//! write c1 cn1:VCPU=9
//! ----
//! error Conflict placement.undefined_code: Unable to allocate inventory: ...
//! ```
//!
//! A case is a command line, optional input lines (a JSON body, one consumer per line, ...),
//! a line `----`, and the expected output up to the next blank line (or the end of the file).
//! The command line is split at whitespace into the command and its arguments; `key=value`
//! arguments are named, the others positional. What a command *means* is not this crate's
//! business: [`run`] hands every [`Case`] to the caller's handler, which returns the output
//! as text, and compares it with the expected text.
//!
//! Cases of one file run in order and share the handler's state (a file is one story), so
//! one file is one `#[test]` ([`golden_tests!`]) and a failure names the file. Every
//! mismatch of a file is reported at once, each with its `file:line` and a line diff.
//!
//! **Rewriting.** With `UPDATE_GOLDEN=1` in the environment (the variable the pinned byte
//! formats of `placement_types::golden` also read) a mismatching file is rewritten in place
//! with the actual outputs, everything else kept byte for byte; the test then passes. Review
//! the diff (`git diff`) before committing: it is the behaviour change.
//!
//! Left out on purpose: tags, regex matching and per-case options of the runner itself
//! (datadriven's `----\n----` blocks, goldenscript's `!` and `[tags]`). Output may not hold
//! blank lines (they end a case); a handler that needs one prints something else. Volatile
//! values (request ids, generated uuids, dates) are the handler's to mask.

use std::fmt::Write as _;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// One case of a script, as the handler sees it.
#[derive(Debug, Clone)]
pub struct Case {
    /// The script file, for messages.
    pub file: PathBuf,
    /// The 1-based line of the command.
    pub line: usize,
    /// The first word of the command line.
    pub command: String,
    /// Every other word of the command line, in order.
    pub args: Vec<Arg>,
    /// The lines between the command line and `----`, joined with `\n` (no final newline).
    pub input: String,
}

/// One argument of a command line: `key=value` or a bare word (`key` only, `value` empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg {
    pub key: String,
    pub value: Option<String>,
}

impl Case {
    /// The positional (bare) arguments, in order.
    pub fn positional(&self) -> impl Iterator<Item = &str> {
        self.args
            .iter()
            .filter(|a| a.value.is_none())
            .map(|a| a.key.as_str())
    }

    /// The value of the last `key=value` argument with this key.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.args
            .iter()
            .rev()
            .find(|a| a.key == key && a.value.is_some())
            .and_then(|a| a.value.as_deref())
    }

    /// Every `key=value` argument, in order.
    pub fn named(&self) -> impl Iterator<Item = (&str, &str)> {
        self.args
            .iter()
            .filter_map(|a| a.value.as_deref().map(|v| (a.key.as_str(), v)))
    }

    /// Whether a bare word `flag` is among the arguments.
    pub fn has_flag(&self, flag: &str) -> bool {
        self.positional().any(|p| p == flag)
    }

    /// `file:line`, for messages.
    pub fn location(&self) -> String {
        format!("{}:{}", self.file.display(), self.line)
    }

    /// A case of one line and no input: one line of a handler's own block of commands (a
    /// `seed` block), parsed as a command line is.
    pub fn of_line(file: &Path, line: usize, text: &str) -> Case {
        let (command, args) = parse_command(text);
        Case {
            file: file.to_path_buf(),
            line,
            command,
            args,
            input: String::new(),
        }
    }
}

/// A parsed case and where its expected output sits in the file.
struct Parsed {
    case: Case,
    /// Lines of the expected output (0-based range into the file's lines).
    expected: std::ops::Range<usize>,
}

/// Splits a command line into its command and arguments.
fn parse_command(line: &str) -> (String, Vec<Arg>) {
    let mut words = line.split_whitespace();
    let command = words.next().unwrap_or_default().to_string();
    let args = words
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Arg {
                key: k.to_string(),
                value: Some(v.to_string()),
            },
            _ => Arg {
                key: w.to_string(),
                value: None,
            },
        })
        .collect();
    (command, args)
}

fn parse(file: &Path, text: &str) -> Result<Vec<Parsed>, String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut cases = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if line.trim().is_empty() || line.starts_with('#') {
            i += 1;
            continue;
        }
        let start = i;
        let (command, args) = parse_command(line);
        i += 1;
        let mut input = Vec::new();
        while i < lines.len() && lines[i] != "----" {
            input.push(lines[i]);
            i += 1;
        }
        if i == lines.len() {
            return Err(format!(
                "{}:{}: `{command}` has no `----` line after it",
                file.display(),
                start + 1
            ));
        }
        i += 1; // the separator
        let from = i;
        while i < lines.len() && !lines[i].trim().is_empty() {
            i += 1;
        }
        cases.push(Parsed {
            case: Case {
                file: file.to_path_buf(),
                line: start + 1,
                command,
                args,
                input: input.join("\n"),
            },
            expected: from..i,
        });
    }
    Ok(cases)
}

/// Whether `UPDATE_GOLDEN=1` asks for mismatching files to be rewritten.
pub fn rewriting() -> bool {
    std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1")
}

/// Runs every case of the script at `path` through `handler` and compares its output with
/// the expected one. Panics with every mismatch of the file (or rewrites the file under
/// `UPDATE_GOLDEN=1`). A panic inside the handler is re-raised with the case's location.
pub fn run(path: impl AsRef<Path>, mut handler: impl FnMut(&Case) -> String) {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read script {}: {e}", path.display()));
    let cases = parse(path, &text).unwrap_or_else(|e| panic!("{e}"));
    let lines: Vec<&str> = text.lines().collect();
    let mut failures = String::new();
    let mut actuals: Vec<Vec<String>> = Vec::with_capacity(cases.len());
    for parsed in &cases {
        let case = &parsed.case;
        let output = match catch_unwind(AssertUnwindSafe(|| handler(case))) {
            Ok(output) => output,
            Err(panic) => {
                eprintln!("{}: `{}` panicked", case.location(), case.command);
                resume_unwind(panic)
            }
        };
        let actual: Vec<String> = output.lines().map(str::to_string).collect();
        if let Some(n) = actual.iter().position(|l| l.trim().is_empty()) {
            panic!(
                "{}: `{}` printed a blank line (line {} of its output): a blank line ends a \
                 case, so handlers must not print one",
                case.location(),
                case.command,
                n + 1
            );
        }
        let expected = &lines[parsed.expected.clone()];
        if expected != actual.as_slice() {
            let _ = write!(
                failures,
                "\n{}: {}\n{}",
                case.location(),
                lines[case.line - 1],
                diff(expected, &actual)
            );
        }
        actuals.push(actual);
    }
    if failures.is_empty() {
        return;
    }
    if rewriting() {
        std::fs::write(
            path,
            rewrite(&lines, &cases, &actuals, text.ends_with('\n')),
        )
        .unwrap_or_else(|e| panic!("cannot rewrite {}: {e}", path.display()));
        eprintln!("UPDATE_GOLDEN=1: rewrote {}{failures}", path.display());
        return;
    }
    panic!(
        "golden script {} does not match (- expected, + actual):\n{failures}\nIf the new \
         output is right, run again with UPDATE_GOLDEN=1 to rewrite the file, and review \
         the diff.",
        path.display()
    );
}

/// The file with every case's expected output replaced by its actual one.
fn rewrite(lines: &[&str], cases: &[Parsed], actuals: &[Vec<String>], final_nl: bool) -> String {
    let mut out: Vec<&str> = Vec::with_capacity(lines.len());
    let mut at = 0;
    for (parsed, actual) in cases.iter().zip(actuals) {
        out.extend_from_slice(&lines[at..parsed.expected.start]);
        out.extend(actual.iter().map(String::as_str));
        at = parsed.expected.end;
    }
    out.extend_from_slice(&lines[at..]);
    let mut text = out.join("\n");
    if final_nl {
        text.push('\n');
    }
    text
}

/// A line diff (longest common subsequence): ` ` kept, `-` expected only, `+` actual only.
fn diff(expected: &[&str], actual: &[String]) -> String {
    let (n, m) = (expected.len(), actual.len());
    // lcs[i][j]: the LCS length of expected[i..] and actual[j..].
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if expected[i] == actual[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = String::new();
    while i < n || j < m {
        if i < n && j < m && expected[i] == actual[j] {
            let _ = writeln!(out, "   {}", expected[i]);
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            let _ = writeln!(out, "-  {}", expected[i]);
            i += 1;
        } else {
            let _ = writeln!(out, "+  {}", actual[j]);
            j += 1;
        }
    }
    out
}

/// Fails when a `.txt` script in `dir` is missing from `listed` (names without `.txt`), so a
/// new script cannot sit unrun. [`golden_tests!`] calls it.
pub fn check_listed(dir: impl AsRef<Path>, listed: &[&str]) {
    let dir = dir.as_ref();
    let mut missing = Vec::new();
    let entries = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list scripts in {}: {e}", dir.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "txt") {
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            if !listed.contains(&stem.as_str()) {
                missing.push(stem);
            }
        }
    }
    missing.sort();
    assert!(
        missing.is_empty(),
        "scripts in {} that no test runs (add them to golden_tests!): {missing:?}",
        dir.display()
    );
}

/// The directory of the package whose test is running, read when the test runs, not when it
/// was compiled: `env!("CARGO_MANIFEST_DIR")` is fixed at build time, so a test binary built
/// in one clone and run from another (two clones sharing one cargo target directory, as CI's
/// and a developer's may) would read the first clone's files, or find none. Cargo and
/// nextest set the variable for every test they run; `built`, the value at build time, is the
/// fallback for a binary started by hand. Call it through [`crate_dir!`].
pub fn crate_dir(built: &str) -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(built))
}

/// [`crate_dir()`] of the calling package: `crate_dir!().join("golden/x.txt")`.
#[macro_export]
macro_rules! crate_dir {
    () => {
        $crate::crate_dir(env!("CARGO_MANIFEST_DIR"))
    };
}

/// One `#[test]` per script: `golden_tests!(dir, runner; name, ...)` runs
/// `runner(&Path)` on `dir/name.txt` in a test called `name`, and adds a test
/// `every_script_is_listed` that fails when `dir` holds a script not in the list. `dir` is
/// relative to the crate ([`crate_dir!`]).
#[macro_export]
macro_rules! golden_tests {
    ($dir:literal, $runner:path; $($name:ident),+ $(,)?) => {
        $(
            #[test]
            fn $name() {
                let path = $crate::crate_dir!()
                    .join($dir)
                    .join(concat!(stringify!($name), ".txt"));
                $runner(&path);
            }
        )+

        #[test]
        fn every_script_is_listed() {
            $crate::check_listed(
                $crate::crate_dir!().join($dir),
                &[$(stringify!($name)),+],
            );
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `.rs` file under `dir`, skipping build output.
    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() && path.file_name().is_some_and(|n| n != "target") {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// `crate_dir!` is the one place that reads the build-time manifest directory: a test
    /// that opens a repository file through it directly would again break in a clone that
    /// shares a target directory with another (see [`crate_dir()`]).
    #[test]
    fn only_crate_dir_reads_the_build_time_manifest_dir() {
        let root = crate_dir!().join("../..");
        let mut files = Vec::new();
        rust_files(&root.join("crates"), &mut files);
        rust_files(&root.join("tests"), &mut files);
        assert!(
            files.len() > 20,
            "found only {files:?} under {}",
            root.display()
        );
        let needle = concat!("env!(", "\"CARGO_MANIFEST_DIR\")");
        let offenders: Vec<_> = files
            .iter()
            .filter(|f| !f.ends_with("placement-testkit/src/lib.rs"))
            .filter(|f| std::fs::read_to_string(f).is_ok_and(|text| text.contains(needle)))
            .collect();
        assert!(
            offenders.is_empty(),
            "use placement_testkit::crate_dir!() instead of {needle} in {offenders:?}"
        );
    }

    #[test]
    fn parses_commands_inputs_and_outputs() {
        let text = "# comment\nput a=1 b\n{\"x\": 1}\n----\nok\nmore\n\n# c\nget\n----\n";
        let cases = parse(Path::new("t.txt"), text).expect("parses");
        assert_eq!(cases.len(), 2);
        let c = &cases[0].case;
        assert_eq!((c.command.as_str(), c.line), ("put", 2));
        assert_eq!(c.get("a"), Some("1"));
        assert!(c.has_flag("b"));
        assert_eq!(c.input, "{\"x\": 1}");
        assert_eq!(cases[0].expected, 4..6);
        assert_eq!(cases[1].case.line, 9);
        assert_eq!(cases[1].expected, 10..10);
        assert!(parse(Path::new("t.txt"), "get\nno separator\n").is_err());
    }

    #[test]
    fn rewrites_only_the_outputs() {
        let text = "# c\nput\n----\nold\nold2\n\nget\n----\nsame\n";
        let lines: Vec<&str> = text.lines().collect();
        let cases = parse(Path::new("t.txt"), text).expect("parses");
        let actuals = vec![vec!["new".to_string()], vec!["same".to_string()]];
        assert_eq!(
            rewrite(&lines, &cases, &actuals, true),
            "# c\nput\n----\nnew\n\nget\n----\nsame\n"
        );
    }

    #[test]
    fn diffs_show_kept_removed_and_added_lines() {
        let d = diff(&["a", "b", "c"], &["a".into(), "x".into(), "c".into()]);
        assert_eq!(d, "   a\n-  b\n+  x\n   c\n");
    }
}
