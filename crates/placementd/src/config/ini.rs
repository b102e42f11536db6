//! The INI dialect of oslo.config (`oslo_config/iniparser.py` and `cfg.ConfigParser`), line
//! for line, so that a file oslo.config accepts parses here into the same sections, keys and
//! values, and a file it rejects is rejected here with the same reason.
//!
//! # The dialect
//! - Each line is first stripped of trailing whitespace.
//! - A blank line ends a multi-line value.
//! - A line starting with a space or a tab continues the previous value: its text (leading
//!   whitespace removed) is appended on a new line (`\n`). With no value to continue it is an
//!   error ("unexpected continuation line") — so an indented line after a blank line or a
//!   comment is an error, as in oslo.config.
//! - `[name]` starts a section. The name is taken verbatim between the brackets (no
//!   trimming); `[]` and a line without the closing `]` are errors.
//! - A line starting with `#` or `;` is a comment. Only whole lines are comments: in
//!   `debug = true  # on`, the value is `true  # on`.
//! - Anything else is `key = value` or `key: value`, split at whichever of `=` and `:` comes
//!   first. Key and value are trimmed; a line with neither separator, or an empty key, is an
//!   error. A value enclosed in a matching pair of `"` or `'` loses them (only the first
//!   line's value is looked at, as oslo.config does).
//! - An assignment before the first section header is an error.
//! - A key may repeat: every value is kept in order (a multi-valued option takes them all,
//!   a single-valued one the last).
//!
//! Sections are returned as written, in file order, possibly several times under the same
//! name; merging them and normalizing names is the caller's job (`mod.rs`).
//!
//! # Left out
//! - Line endings: `\n` and `\r\n` only. Python's universal newlines also split on a lone
//!   `\r`; nobody writes those.
//! - Interpolation (`$name`) is not part of the syntax; it is applied to the values
//!   placementd interprets (`value.rs`).

/// One `key = value` assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub key: String,
    /// The value, continuation lines joined with `\n`.
    pub value: String,
    /// 1-based line of the key.
    pub line: usize,
}

/// One `[name]` header and the assignments under it, up to the next header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Section {
    /// The name between the brackets, verbatim.
    pub name: String,
    /// 1-based line of the header.
    pub line: usize,
    pub entries: Vec<Entry>,
}

/// A syntax error: the line it is on and what is wrong, in oslo.config's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub line: usize,
    pub message: String,
}

/// An assignment whose value may still grow by continuation lines.
struct Pending {
    key: String,
    lines: Vec<String>,
    line: usize,
}

/// Parses `text` into its sections, in file order.
pub(crate) fn parse(text: &str) -> Result<Vec<Section>, SyntaxError> {
    let mut sections: Vec<Section> = Vec::new();
    let mut pending: Option<Pending> = None;
    for (index, raw) in text.split('\n').enumerate() {
        let number = index + 1;
        let line = raw.trim_end();
        if line.is_empty() {
            flush(&mut sections, pending.take())?;
            continue;
        }
        if line.starts_with([' ', '\t']) {
            match pending.as_mut() {
                Some(p) => p.lines.push(line.trim_start().to_string()),
                None => return Err(error(number, "unexpected continuation line", line)),
            }
            continue;
        }
        flush(&mut sections, pending.take())?;
        if line.starts_with('[') {
            sections.push(Section {
                name: section_name(line).map_err(|m| error(number, m, line))?,
                line: number,
                entries: Vec::new(),
            });
        } else if !line.starts_with(['#', ';']) {
            let (key, value) = split_assignment(line).map_err(|m| error(number, m, line))?;
            pending = Some(Pending {
                key,
                lines: vec![value],
                line: number,
            });
        }
    }
    flush(&mut sections, pending)?;
    Ok(sections)
}

/// Stores a finished assignment in the current section.
fn flush(sections: &mut [Section], pending: Option<Pending>) -> Result<(), SyntaxError> {
    let Some(p) = pending else {
        return Ok(());
    };
    let Some(section) = sections.last_mut() else {
        return Err(SyntaxError {
            line: p.line,
            message: format!(
                "`{}` is set before any [section] header (options must be in a section, \
                 e.g. [DEFAULT])",
                p.key
            ),
        });
    };
    section.entries.push(Entry {
        key: p.key,
        value: p.lines.join("\n"),
        line: p.line,
    });
    Ok(())
}

/// The name in a `[name]` line.
fn section_name(line: &str) -> Result<String, &'static str> {
    if !line.ends_with(']') {
        return Err("invalid section header (must end with `]`)");
    }
    if line.len() <= 2 {
        return Err("empty section name");
    }
    Ok(line[1..line.len() - 1].to_string())
}

/// Splits `key = value` / `key: value` at the first separator, trims both sides and removes
/// one pair of matching quotes around the value.
fn split_assignment(line: &str) -> Result<(String, String), &'static str> {
    let at = match (line.find('='), line.find(':')) {
        (None, None) => return Err("no `=` or `:` in this line (expected `option = value`)"),
        (Some(e), Some(c)) => e.min(c),
        (Some(e), None) => e,
        (None, Some(c)) => c,
    };
    let key = line[..at].trim();
    if key.is_empty() {
        return Err("the option name before `=` is empty");
    }
    let mut value = line[at + 1..].trim();
    let quoted = value.starts_with(['"', '\'']) && value.chars().last() == value.chars().next();
    if quoted {
        // A lone quote character is "quoted" too and becomes the empty string, as in
        // oslo.config (`value[1:-1]` of one character).
        value = value.get(1..value.len().saturating_sub(1)).unwrap_or("");
    }
    Ok((key.to_string(), value.to_string()))
}

fn error(line: usize, message: &str, text: &str) -> SyntaxError {
    SyntaxError {
        line,
        message: format!("{message}: {text:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(section, key, value, line)` of every entry, for compact assertions.
    fn flat(text: &str) -> Vec<(String, String, String, usize)> {
        let sections = parse(text).expect("test input parses");
        sections
            .iter()
            .flat_map(|s| {
                s.entries
                    .iter()
                    .map(|e| (s.name.clone(), e.key.clone(), e.value.clone(), e.line))
            })
            .collect()
    }

    fn row(s: &str, k: &str, v: &str, line: usize) -> (String, String, String, usize) {
        (s.into(), k.into(), v.into(), line)
    }

    fn err(text: &str) -> SyntaxError {
        parse(text).expect_err("test input is invalid")
    }

    #[test]
    fn sections_keys_and_both_separators() {
        let text = "[DEFAULT]\ndebug = true\nlog_dir: /var/log\n[api]\nauth_strategy=keystone\n";
        assert_eq!(
            flat(text),
            vec![
                row("DEFAULT", "debug", "true", 2),
                row("DEFAULT", "log_dir", "/var/log", 3),
                row("api", "auth_strategy", "keystone", 5),
            ]
        );
    }

    #[test]
    fn the_first_separator_wins() {
        // A URL value after `=` keeps its colons; a key before `:` keeps the `=` in its value.
        let text = "[a]\nurl = http://h:5000/v3\nk: a=b\n";
        assert_eq!(
            flat(text),
            vec![
                row("a", "url", "http://h:5000/v3", 2),
                row("a", "k", "a=b", 3)
            ]
        );
    }

    #[test]
    fn comments_are_whole_lines_only() {
        let text = "# top\n[a]\n; semi\n# hash\nk = v # not a comment\n";
        assert_eq!(flat(text), vec![row("a", "k", "v # not a comment", 5)]);
    }

    #[test]
    fn whitespace_is_trimmed_around_keys_and_values() {
        let text = "[a]\n  \nk   =    v  \t\nempty =\n";
        assert_eq!(
            flat(text),
            vec![row("a", "k", "v", 3), row("a", "empty", "", 4)]
        );
    }

    #[test]
    fn crlf_line_endings() {
        assert_eq!(flat("[a]\r\nk = v\r\n"), vec![row("a", "k", "v", 2)]);
    }

    #[test]
    fn continuation_lines_join_with_newlines() {
        let text = "[a]\nk = one\n  two\n\tthree\nnext = x\n";
        assert_eq!(
            flat(text),
            vec![
                row("a", "k", "one\ntwo\nthree", 2),
                row("a", "next", "x", 5)
            ]
        );
    }

    #[test]
    fn a_blank_line_or_comment_ends_a_value() {
        assert_eq!(
            err("[a]\nk = one\n\n  two\n"),
            SyntaxError {
                line: 4,
                message: "unexpected continuation line: \"  two\"".into()
            }
        );
        assert_eq!(err("[a]\nk = one\n# c\n  two\n").line, 4);
    }

    #[test]
    fn repeated_keys_are_all_kept() {
        let text = "[a]\nk = 1\nk = 2\n[a]\nk = 3\n";
        let sections = parse(text).expect("parses");
        assert_eq!(sections.len(), 2, "a repeated header is a second section");
        assert_eq!(
            flat(text),
            vec![
                row("a", "k", "1", 2),
                row("a", "k", "2", 3),
                row("a", "k", "3", 5)
            ]
        );
    }

    #[test]
    fn quotes_around_a_value_are_removed() {
        let text = "[a]\nd = \"x y\"\ns = 'z'\nmixed = \"x'\ninner = a \"b\"\nlone = \"\n";
        assert_eq!(
            flat(text),
            vec![
                row("a", "d", "x y", 2),
                row("a", "s", "z", 3),
                row("a", "mixed", "\"x'", 4),
                row("a", "inner", "a \"b\"", 5),
                row("a", "lone", "", 6),
            ]
        );
    }

    #[test]
    fn section_names_are_verbatim() {
        let sections = parse("[Keystone_AuthToken]\n[ api ]\n").expect("parses");
        let names: Vec<_> = sections.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, vec!["Keystone_AuthToken", " api "]);
    }

    #[test]
    fn an_option_before_any_section_is_an_error() {
        let e = err("# comment\ndebug = true\n[DEFAULT]\n");
        assert_eq!(e.line, 2);
        assert!(e.message.contains("before any [section]"), "{}", e.message);
    }

    #[test]
    fn a_line_without_separator_is_an_error() {
        let e = err("[DEFAULT]\ndebug true\n");
        assert_eq!(e.line, 2);
        assert!(e.message.starts_with("no `=` or `:`"), "{}", e.message);
    }

    #[test]
    fn other_syntax_errors() {
        assert!(err("[a]\n= v\n").message.contains("empty"));
        assert!(err("[a\n").message.contains("must end with"));
        assert!(err("[]\n").message.contains("empty section name"));
        assert!(err("  [a]\n").message.contains("continuation"));
    }

    #[test]
    fn empty_input_has_no_sections() {
        assert_eq!(parse("").expect("parses"), vec![]);
        assert_eq!(parse("\n# only a comment\n").expect("parses"), vec![]);
    }

    #[test]
    fn unicode_is_kept() {
        assert_eq!(flat("[a]\nk = é ü\n"), vec![row("a", "k", "é ü", 2)]);
    }
}
