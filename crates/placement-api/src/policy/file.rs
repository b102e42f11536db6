//! Reading a policy file (`[oslo_policy] policy_file`): a YAML mapping of rule name to check
//! string, as oslo.policy's `parse_file_contents` reads it (`yaml.safe_load`; a JSON file is
//! YAML too).
//!
//! Accepted:
//! - an empty file, a file of comments only, or `{}`: no overrides;
//! - `name: "check string"`;
//! - `name: [["check", "check"], ["check"]]`, the old list-of-lists form of policy.json
//!   (each inner list may also be a bare string; `[]` is `@`).
//!
//! Refused (oslo would load some of these and misbehave later):
//! - a file larger than [`MAX_FILE_BYTES`], or not UTF-8;
//! - a document that is not a mapping, a rule name that is not a string, and a duplicated
//!   rule name (PyYAML keeps the last silently);
//! - a value that is neither a string nor a list of strings / lists of strings; in
//!   particular `name:` with no value (YAML's null), which oslo reads as `@`, allow anyone.
//!
//! Left out: oslo's `policy_dirs` (a directory of further files) and reloading a file when it
//! changes.

use std::io::Read;
use std::path::Path;

use serde_norway::Value;

/// Largest policy file read. Placement's complete rule set written out is under 10 KiB; the
/// bound only keeps a wrong path (a log, a device) from being read into memory.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// A rule's value in the file, before parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RawRule {
    /// A check string.
    Text(String),
    /// The list-of-lists form (bare strings made one-element lists).
    List(Vec<Vec<String>>),
}

/// Why a file could not be read.
#[derive(Debug)]
pub(crate) enum FileError {
    NotFound,
    Io(std::io::Error),
    TooLarge,
    NotUtf8,
    Yaml(String),
    /// The document as a whole is wrong (not a mapping, a name that is not a string).
    Shape(String),
    /// One rule's value is wrong.
    Rule {
        name: String,
        message: String,
    },
}

/// Reads the rules of the policy file at `path`, in file order.
pub(crate) fn read(path: &Path) -> Result<Vec<(String, RawRule)>, FileError> {
    let file = std::fs::File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => FileError::NotFound,
        _ => FileError::Io(e),
    })?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(FileError::Io)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(FileError::TooLarge);
    }
    let text = String::from_utf8(bytes).map_err(|_| FileError::NotUtf8)?;
    parse(&text)
}

/// Parses the text of a policy file.
pub(crate) fn parse(text: &str) -> Result<Vec<(String, RawRule)>, FileError> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let doc: Value = serde_norway::from_str(text).map_err(|e| FileError::Yaml(e.to_string()))?;
    let mapping = match doc {
        Value::Null => return Ok(Vec::new()),
        Value::Mapping(m) => m,
        other => {
            return Err(FileError::Shape(format!(
                "not a mapping of rule names to check strings (it is {})",
                describe(&other)
            )))
        }
    };
    let mut rules = Vec::with_capacity(mapping.len());
    for (key, value) in mapping {
        let Value::String(name) = key else {
            return Err(FileError::Shape(format!(
                "a rule name must be a string, not {}",
                describe(&key)
            )));
        };
        match raw_rule(value) {
            Ok(raw) => rules.push((name, raw)),
            Err(message) => return Err(FileError::Rule { name, message }),
        }
    }
    Ok(rules)
}

fn raw_rule(value: Value) -> Result<RawRule, String> {
    match value {
        Value::String(s) => Ok(RawRule::Text(s)),
        Value::Sequence(outer) => {
            let mut list = Vec::with_capacity(outer.len());
            for inner in outer {
                list.push(match inner {
                    Value::String(s) => vec![s],
                    Value::Sequence(items) => items
                        .into_iter()
                        .map(|i| match i {
                            Value::String(s) => Ok(s),
                            other => Err(list_error(&other)),
                        })
                        .collect::<Result<_, _>>()?,
                    other => return Err(list_error(&other)),
                });
            }
            Ok(RawRule::List(list))
        }
        Value::Null => Err(
            "no check string (null); write \"@\" to allow anyone or \"!\" to allow no one"
                .to_string(),
        ),
        other => Err(format!(
            "the check string must be a string, not {}",
            describe(&other)
        )),
    }
}

fn list_error(found: &Value) -> String {
    format!(
        "a check list holds strings or lists of strings, not {}",
        describe(found)
    )
}

/// A value's kind, and the value if it is short, for an error message.
fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => format!("a boolean ({b})"),
        Value::Number(n) => format!("a number ({n})"),
        Value::String(s) => format!("a string ({s:?})"),
        Value::Sequence(_) => "a list".to_string(),
        Value::Mapping(_) => "a mapping".to_string(),
        Value::Tagged(t) => format!("a value tagged {}", t.tag),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> RawRule {
        RawRule::Text(s.to_string())
    }

    fn rules(file: &str) -> Vec<(String, RawRule)> {
        parse(file).unwrap_or_else(|e| panic!("{file:?}: {e:?}"))
    }

    fn error(file: &str) -> String {
        match parse(file) {
            Ok(r) => panic!("{file:?} was accepted: {r:?}"),
            Err(FileError::Shape(m)) | Err(FileError::Yaml(m)) => m,
            Err(FileError::Rule { name, message }) => format!("{name}: {message}"),
            Err(e) => format!("{e:?}"),
        }
    }

    #[test]
    fn yaml_json_and_empty_files() {
        assert_eq!(rules(""), vec![]);
        assert_eq!(rules("# only a comment\n"), vec![]);
        assert_eq!(rules("{}"), vec![]);
        assert_eq!(rules("---\n"), vec![]);
        assert_eq!(
            rules("\"placement:traits:list\": \"role:member\"\nadmin_api: ''\n"),
            vec![
                ("placement:traits:list".to_string(), text("role:member")),
                ("admin_api".to_string(), text("")),
            ]
        );
        assert_eq!(
            rules("{\"a\": \"role:x\", \"b\": \"!\"}"),
            vec![
                ("a".to_string(), text("role:x")),
                ("b".to_string(), text("!"))
            ]
        );
        assert_eq!(
            rules("{\"a\": [[\"role:x\", \"role:y\"], \"role:z\"], \"b\": []}"),
            vec![
                (
                    "a".to_string(),
                    RawRule::List(vec![
                        vec!["role:x".to_string(), "role:y".to_string()],
                        vec!["role:z".to_string()]
                    ])
                ),
                ("b".to_string(), RawRule::List(vec![])),
            ]
        );
    }

    #[test]
    fn wrong_shapes_are_refused() {
        assert!(error("- role:admin\n").contains("not a mapping"));
        assert!(error("just a string").contains("not a mapping"));
        assert!(error("1: role:admin\n").contains("rule name must be a string"));
        assert!(error("a: 1\n").contains("a: the check string must be a string, not a number"));
        assert!(error("a: true\n").contains("boolean"));
        assert!(error("a:\n").contains("a: no check string (null)"));
        assert!(error("a: {b: c}\n").contains("not a mapping"));
        assert!(error("a: [[[x]]]\n").contains("strings or lists of strings"));
        assert!(!error("a: '@'\na: '!'\n").is_empty(), "duplicate keys");
        assert!(!error("a: [unclosed\n").is_empty());
        assert!(!error("a: b\n---\nc: d\n").is_empty(), "two documents");
    }

    #[test]
    fn alias_bombs_are_refused() {
        let bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n\
                    b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n\
                    c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n\
                    d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n\
                    e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n\
                    f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n\
                    g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n\
                    h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n";
        match parse(bomb) {
            Err(FileError::Yaml(m)) => assert!(m.contains("repetition limit"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn missing_and_oversized_files() {
        let dir =
            std::env::temp_dir().join(format!("placement-policy-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            read(&dir.join("absent.yaml")),
            Err(FileError::NotFound)
        ));
        let big = dir.join("big.yaml");
        let line = "# padding padding padding padding padding padding padding padding\n";
        std::fs::write(
            &big,
            line.repeat((MAX_FILE_BYTES as usize / line.len()) + 1),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(read(&big), Err(FileError::TooLarge)));
        let binary = dir.join("binary.yaml");
        std::fs::write(&binary, [0xff, 0xfe, 0x00]).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(read(&binary), Err(FileError::NotUtf8)));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
