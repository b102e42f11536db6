//! Typed values out of the merged sections of a file, converted as oslo.config converts them
//! (`oslo_config/types.py`), each error naming the file, line, section and option.
//!
//! # Conversions
//! - **Lookup**: the last assignment of the option in its section wins (a repeated key
//!   overrides, as for every single-valued oslo.config option); failing that, the last one
//!   of its first deprecated alias that is present (`catalog::ALIASES`).
//! - **Substitution** (before conversion, as oslo.config does): `$name` or `${name}` is
//!   replaced by the value of option `name` of the same section or else of `[DEFAULT]`,
//!   `${section.name}` by that section's; `$$` and `\$` are a literal `$`; a `$` not followed
//!   by a name stays as it is. A name that is not set in the file is an error (oslo.config
//!   fails the same way for a name no library registers; placementd cannot know the
//!   built-in defaults of Python libraries, such as `$state_path`).
//! - **Booleans**: `true/false`, `yes/no`, `on/off`, `1/0`, case-insensitive. An empty value
//!   is an error, as in oslo.config.
//! - **Integers**: decimal, optionally signed, surrounding whitespace allowed. An empty
//!   value means "not set" (oslo.config reads it as `None`). Ranges are checked here where
//!   placementd needs one.
//! - **Lists**: comma-separated, items trimmed, one trailing comma dropped; empty means the
//!   empty list.
//! - **Strings and paths**: an empty value means "not set": kolla-ansible renders
//!   `cafile =` when TLS is off, and the Python consumers treat `''` like `None`. A relative
//!   path resolves against the directory of the config file.
//! - **Choices**: case-sensitive, as oslo.config's `choices`.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::catalog;
use super::error::ConfigError;
use super::ini::Entry;

/// How deeply `$name` substitutions may nest before the file is assumed to loop.
const MAX_SUBSTITUTION_DEPTH: usize = 8;
/// Longest value a substitution may produce: as long as a whole config file. Without a
/// bound, a value repeating `$big` could grow far beyond the file's size.
const MAX_SUBSTITUTED_BYTES: usize = super::MAX_CONFIG_FILE_BYTES;

/// The sections of a file merged by normalized name (`[Cors]` and a later `[cors]` are one
/// section), in order of first appearance.
#[derive(Debug, Default)]
pub(crate) struct Sections {
    pub list: Vec<Merged>,
}

/// One merged section.
#[derive(Debug)]
pub(crate) struct Merged {
    /// Normalized name (`catalog::normalize_section`).
    pub name: String,
    pub entries: Vec<Entry>,
}

impl Sections {
    /// Appends `entries` to the section `name` (normalized), creating it if new.
    pub fn extend(&mut self, name: String, entries: Vec<Entry>) {
        match self.list.iter_mut().find(|m| m.name == name) {
            Some(merged) => merged.entries.extend(entries),
            None => self.list.push(Merged { name, entries }),
        }
    }

    /// The last assignment of `option` in `section`.
    pub fn last(&self, section: &str, option: &str) -> Option<&Entry> {
        self.list
            .iter()
            .find(|m| m.name == section)?
            .entries
            .iter()
            .rev()
            .find(|e| e.key == option)
    }
}

/// A value found in the file, substituted but not yet converted.
pub(crate) struct Raw {
    pub text: String,
    pub line: usize,
    /// Section and option name it was found under (an alias, possibly).
    pub section: &'static str,
    pub option: &'static str,
}

/// Reads typed values of a file's sections.
pub(crate) struct Reader<'a> {
    path: &'a Path,
    /// Base of relative paths: the config file's directory.
    dir: PathBuf,
    sections: &'a Sections,
    /// Every `(section, option)` asked for, so that a test can check the catalog lists
    /// exactly the options the builders read.
    asked: RefCell<Vec<(&'static str, &'static str)>>,
}

impl<'a> Reader<'a> {
    pub fn new(path: &'a Path, sections: &'a Sections) -> Reader<'a> {
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Reader {
            path,
            dir,
            sections,
            asked: RefCell::new(Vec::new()),
        }
    }

    /// The `(section, option)` pairs asked for so far.
    #[cfg(test)]
    pub fn asked(&self) -> Vec<(&'static str, &'static str)> {
        self.asked.borrow().clone()
    }

    /// The error for a bad value.
    pub fn invalid(&self, raw: &Raw, message: impl Into<String>) -> ConfigError {
        ConfigError::Value {
            path: self.path.to_path_buf(),
            line: raw.line,
            section: raw.section.to_string(),
            option: raw.option.to_string(),
            message: message.into(),
        }
    }

    /// The value of `option` (or of its first alias present), substituted.
    pub fn raw(
        &self,
        section: &'static str,
        option: &'static str,
    ) -> Result<Option<Raw>, ConfigError> {
        self.asked.borrow_mut().push((section, option));
        let names = std::iter::once((section, option))
            .chain(catalog::aliases_of(section, option).map(|a| (a.section, a.name)));
        for (s, o) in names {
            let Some(entry) = self.sections.last(s, o) else {
                continue;
            };
            let mut raw = Raw {
                text: String::new(),
                line: entry.line,
                section: s,
                option: o,
            };
            raw.text = self
                .substitute(s, &entry.value, 0)
                .map_err(|m| self.invalid(&raw, m))?;
            return Ok(Some(raw));
        }
        Ok(None)
    }

    /// A string; empty means not set.
    pub fn string(
        &self,
        section: &'static str,
        option: &'static str,
    ) -> Result<Option<String>, ConfigError> {
        Ok(self
            .raw(section, option)?
            .map(|r| r.text)
            .filter(|t| !t.is_empty()))
    }

    /// A boolean.
    pub fn bool(
        &self,
        section: &'static str,
        option: &'static str,
    ) -> Result<Option<bool>, ConfigError> {
        let Some(raw) = self.raw(section, option)? else {
            return Ok(None);
        };
        parse_bool(&raw.text)
            .map(Some)
            .map_err(|m| self.invalid(&raw, m))
    }

    /// A signed integer of at least `min`; empty means not set.
    pub fn int(
        &self,
        section: &'static str,
        option: &'static str,
        min: i64,
        what: &str,
    ) -> Result<Option<i64>, ConfigError> {
        let Some(raw) = self.raw(section, option)? else {
            return Ok(None);
        };
        let value = parse_int(&raw.text).map_err(|m| self.invalid(&raw, m))?;
        match value {
            Some(v) if v < min => Err(self.invalid(&raw, format!("{v} is out of range: {what}"))),
            other => Ok(other),
        }
    }

    /// An unsigned integer in `min..=max`; empty means not set.
    pub fn uint(
        &self,
        section: &'static str,
        option: &'static str,
        min: u64,
        max: u64,
    ) -> Result<Option<u64>, ConfigError> {
        let Some(raw) = self.raw(section, option)? else {
            return Ok(None);
        };
        let value = parse_int(&raw.text).map_err(|m| self.invalid(&raw, m))?;
        let Some(value) = value else {
            return Ok(None);
        };
        match u64::try_from(value) {
            Ok(v) if (min..=max).contains(&v) => Ok(Some(v)),
            _ => Err(self.invalid(
                &raw,
                format!("{value} is out of range: must be from {min} to {max}"),
            )),
        }
    }

    /// A comma-separated list.
    pub fn list(
        &self,
        section: &'static str,
        option: &'static str,
    ) -> Result<Option<Vec<String>>, ConfigError> {
        Ok(self.raw(section, option)?.map(|r| parse_list(&r.text)))
    }

    /// A path; relative paths resolve against the config file's directory; empty means not
    /// set.
    pub fn path(
        &self,
        section: &'static str,
        option: &'static str,
    ) -> Result<Option<PathBuf>, ConfigError> {
        Ok(self
            .string(section, option)?
            .map(|p| self.resolve(Path::new(&p))))
    }

    /// `path` made absolute against the config file's directory (if it is relative).
    pub fn resolve(&self, path: &Path) -> PathBuf {
        self.dir.join(path)
    }

    /// One of `choices` (case-sensitive).
    pub fn choice<T: Copy>(
        &self,
        section: &'static str,
        option: &'static str,
        choices: &[(&str, T)],
    ) -> Result<Option<T>, ConfigError> {
        let Some(raw) = self.raw(section, option)? else {
            return Ok(None);
        };
        match choices.iter().find(|(word, _)| *word == raw.text) {
            Some((_, value)) => Ok(Some(*value)),
            None => {
                let words: Vec<&str> = choices.iter().map(|(w, _)| *w).collect();
                Err(self.invalid(
                    &raw,
                    format!("{:?} is not one of: {}", raw.text, words.join(", ")),
                ))
            }
        }
    }

    /// A socket address (`IP:PORT`, `[IPv6]:PORT`); empty means not set.
    pub fn socket_addr(
        &self,
        section: &'static str,
        option: &'static str,
    ) -> Result<Option<SocketAddr>, ConfigError> {
        let Some(raw) = self.raw(section, option)? else {
            return Ok(None);
        };
        if raw.text.is_empty() {
            return Ok(None);
        }
        raw.text.parse().map(Some).map_err(|_| {
            self.invalid(
                &raw,
                format!(
                    "{:?} is not an address: expected IP:PORT, e.g. 10.0.0.1:8778 or [::1]:8778",
                    raw.text
                ),
            )
        })
    }

    /// Applies `$name` substitution to a value of `section`.
    fn substitute(&self, section: &str, text: &str, depth: usize) -> Result<String, String> {
        if !text.contains('$') {
            return Ok(text.to_string());
        }
        if depth >= MAX_SUBSTITUTION_DEPTH {
            return Err(
                "`$name` substitutions nest too deeply (do two options refer to \
                        each other?)"
                    .into(),
            );
        }
        let text = text.replace("\\$", "$$");
        let mut out = String::with_capacity(text.len());
        let mut rest = text.as_str();
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            match placeholder(after) {
                Placeholder::Escaped => {
                    out.push('$');
                    rest = &after[1..];
                }
                Placeholder::Name { name, len } => {
                    out.push_str(&self.lookup(section, name, depth)?);
                    rest = &after[len..];
                    if out.len() > MAX_SUBSTITUTED_BYTES {
                        return Err(format!(
                            "longer than {MAX_SUBSTITUTED_BYTES} bytes after `$name` \
                             substitution"
                        ));
                    }
                }
                Placeholder::None => {
                    out.push('$');
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        Ok(out)
    }

    /// The substituted value `$name` stands for in `section`.
    fn lookup(&self, section: &str, name: &str, depth: usize) -> Result<String, String> {
        let (entry, home) = match name.split_once('.') {
            Some((group, option)) => {
                let group = catalog::normalize_section(group);
                let entry = self.sections.last(&group, option);
                (entry, group)
            }
            None => match self.sections.last(section, name) {
                Some(entry) => (Some(entry), section.to_string()),
                None => (self.sections.last("DEFAULT", name), "DEFAULT".to_string()),
            },
        };
        let Some(entry) = entry else {
            return Err(format!(
                "`${name}` refers to an option not set in this file (write `$$` for a \
                 literal `$`)"
            ));
        };
        self.substitute(&home, &entry.value, depth + 1)
    }
}

/// What follows a `$`.
enum Placeholder<'s> {
    /// `$$`.
    Escaped,
    /// `$name` or `${name}`; `len` is the length of the text after the `$`.
    Name { name: &'s str, len: usize },
    /// Anything else: the `$` is kept as it is.
    None,
}

/// Recognizes Python's `string.Template` placeholders with oslo.config's identifier pattern
/// `[_a-z][._a-z0-9]*` (case-insensitive).
fn placeholder(after: &str) -> Placeholder<'_> {
    if after.starts_with('$') {
        return Placeholder::Escaped;
    }
    if let Some(braced) = after.strip_prefix('{') {
        let len = identifier_len(braced);
        if len > 0 && braced[len..].starts_with('}') {
            return Placeholder::Name {
                name: &braced[..len],
                len: len + 2,
            };
        }
        return Placeholder::None;
    }
    match identifier_len(after) {
        0 => Placeholder::None,
        len => Placeholder::Name {
            name: &after[..len],
            len,
        },
    }
}

/// Length in bytes of the identifier at the start of `s` (0 if there is none).
fn identifier_len(s: &str) -> usize {
    let mut bytes = s.bytes();
    match bytes.next() {
        Some(b) if b == b'_' || b.is_ascii_alphabetic() => {}
        _ => return 0,
    }
    1 + bytes
        .take_while(|b| *b == b'_' || *b == b'.' || b.is_ascii_alphanumeric())
        .count()
}

/// oslo.config's `types.Boolean`.
pub(crate) fn parse_bool(text: &str) -> Result<bool, String> {
    match text.to_lowercase().as_str() {
        "true" | "1" | "on" | "yes" => Ok(true),
        "false" | "0" | "off" | "no" => Ok(false),
        _ => Err(format!(
            "{text:?} is not a boolean (true/false, yes/no, on/off, 1/0)"
        )),
    }
}

/// oslo.config's `types.Integer`: `None` for an empty value.
pub(crate) fn parse_int(text: &str) -> Result<Option<i64>, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    trimmed
        .parse::<i64>()
        .map(Some)
        .map_err(|_| format!("{text:?} is not an integer"))
}

/// oslo.config's `types.List` of strings.
pub(crate) fn parse_list(text: &str) -> Vec<String> {
    let trimmed = text.trim();
    let trimmed = trimmed.strip_suffix(',').unwrap_or(trimmed);
    if trimmed.is_empty() {
        return Vec::new();
    }
    trimmed.split(',').map(|i| i.trim().to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sections(text: &str) -> Sections {
        let mut s = Sections::default();
        for section in super::super::ini::parse(text).expect("test input parses") {
            s.extend(catalog::normalize_section(&section.name), section.entries);
        }
        s
    }

    #[test]
    fn booleans() {
        for t in ["true", "TRUE", "Yes", "on", "1"] {
            assert_eq!(parse_bool(t), Ok(true), "{t}");
        }
        for f in ["false", "False", "NO", "off", "0"] {
            assert_eq!(parse_bool(f), Ok(false), "{f}");
        }
        for bad in ["", "maybe", "2", "y", "true # comment"] {
            assert!(parse_bool(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn integers() {
        assert_eq!(parse_int("42"), Ok(Some(42)));
        assert_eq!(parse_int(" -1 "), Ok(Some(-1)));
        assert_eq!(parse_int("+7"), Ok(Some(7)));
        assert_eq!(parse_int(""), Ok(None));
        assert!(parse_int("1.5").is_err());
        assert!(parse_int("ten").is_err());
        assert!(parse_int("99999999999999999999").is_err());
    }

    #[test]
    fn lists() {
        assert_eq!(parse_list("a, b ,c"), vec!["a", "b", "c"]);
        assert_eq!(parse_list("a,b,"), vec!["a", "b"]);
        assert_eq!(parse_list("  "), Vec::<String>::new());
        assert_eq!(parse_list("one"), vec!["one"]);
        assert_eq!(parse_list("a,\nb"), vec!["a", "b"], "continuation lines");
    }

    #[test]
    fn the_last_assignment_wins_and_aliases_yield_to_the_canonical_name() {
        let s = sections(
            "[keystone_authtoken]\nauth_uri = http://old\nwww_authenticate_uri = http://a\n\
             www_authenticate_uri = http://b\n",
        );
        let path = Path::new("/etc/placement/placement.conf");
        let r = Reader::new(path, &s);
        let raw = r
            .raw("keystone_authtoken", "www_authenticate_uri")
            .expect("no error")
            .expect("set");
        assert_eq!((raw.text.as_str(), raw.line), ("http://b", 4));

        let s = sections("[keystone_authtoken]\nauth_uri = http://old\n");
        let r = Reader::new(path, &s);
        let raw = r
            .raw("keystone_authtoken", "www_authenticate_uri")
            .expect("no error")
            .expect("set through the alias");
        assert_eq!((raw.text.as_str(), raw.option), ("http://old", "auth_uri"));
    }

    #[test]
    fn substitution() {
        let s = sections(
            "[DEFAULT]\nstate_path = /var/lib/placement\nname = p\n\
             [x]\ndir = $state_path/tmp\nbraced = ${state_path}x\nescaped = pa$$word\n\
             backslash = a\\$b\ngroup = ${x.dir}/y\nlocal = $dir\nlone = a$ b$\n\
             missing = pa$word\nloop1 = $loop2\nloop2 = $loop1\nname = $name\n",
        );
        let r = Reader::new(Path::new("/etc/p.conf"), &s);
        let get = |o: &'static str| r.raw("x", o).map(|v| v.map(|v| v.text));
        assert_eq!(get("dir").ok(), Some(Some("/var/lib/placement/tmp".into())));
        assert_eq!(get("braced").ok(), Some(Some("/var/lib/placementx".into())));
        assert_eq!(get("escaped").ok(), Some(Some("pa$word".into())));
        assert_eq!(get("backslash").ok(), Some(Some("a$b".into())));
        assert_eq!(
            get("group").ok(),
            Some(Some("/var/lib/placement/tmp/y".into()))
        );
        assert_eq!(
            get("local").ok(),
            Some(Some("/var/lib/placement/tmp".into()))
        );
        assert_eq!(get("lone").ok(), Some(Some("a$ b$".into())));
        let missing = get("missing").expect_err("$word is not set").to_string();
        assert_eq!(
            missing,
            "/etc/p.conf:12: [x] missing: `$word` refers to an option not set in this file \
             (write `$$` for a literal `$`)"
        );
        let looping = get("loop1").expect_err("a loop").to_string();
        assert!(looping.contains("nest too deeply"), "{looping}");
        // `$name` in [x] refers to [x] name itself first: a loop too.
        assert!(get("name").is_err());
    }

    #[test]
    fn substitution_output_is_bounded() {
        let big = "x".repeat(1000);
        let refs = "$big".repeat(2000);
        let s = sections(&format!("[DEFAULT]\nbig = {big}\nhuge = {refs}\n"));
        let r = Reader::new(Path::new("/p.conf"), &s);
        let e = r.raw("DEFAULT", "huge").err().map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("/p.conf:3: [DEFAULT] huge: longer than 1048576 bytes after `$name` substitution")
        );
    }

    #[test]
    fn typed_getters_report_file_line_section_option() {
        let s = sections("[p]\nb = maybe\ni = -5\nu = 0\nc = Keystone\na = localhost:80\n");
        let r = Reader::new(Path::new("/etc/p.conf"), &s);
        let e = |r: Result<(), ConfigError>| r.expect_err("invalid").to_string();
        assert_eq!(
            e(r.bool("p", "b").map(drop)),
            "/etc/p.conf:2: [p] b: \"maybe\" is not a boolean (true/false, yes/no, on/off, 1/0)"
        );
        assert_eq!(
            e(r.int("p", "i", -1, "-1 or more").map(drop)),
            "/etc/p.conf:3: [p] i: -5 is out of range: -1 or more"
        );
        assert_eq!(
            e(r.uint("p", "u", 1, 10).map(drop)),
            "/etc/p.conf:4: [p] u: 0 is out of range: must be from 1 to 10"
        );
        assert_eq!(
            e(r.uint("p", "i", 1, 10).map(drop)),
            "/etc/p.conf:3: [p] i: -5 is out of range: must be from 1 to 10"
        );
        assert_eq!(
            e(r.choice("p", "c", &[("keystone", 1), ("noauth2", 2)])
                .map(drop)),
            "/etc/p.conf:5: [p] c: \"Keystone\" is not one of: keystone, noauth2"
        );
        assert!(e(r.socket_addr("p", "a").map(drop)).contains("is not an address"));
    }

    #[test]
    fn paths_resolve_against_the_config_directory() {
        let s = sections("[p]\nrel = policy.yaml\nsub = ../x/y\nabs = /etc/z\nempty =\n");
        let r = Reader::new(Path::new("/etc/placement/placement.conf"), &s);
        let p = |o: &'static str| r.path("p", o).expect("no error");
        assert_eq!(p("rel"), Some(PathBuf::from("/etc/placement/policy.yaml")));
        assert_eq!(p("sub"), Some(PathBuf::from("/etc/placement/../x/y")));
        assert_eq!(p("abs"), Some(PathBuf::from("/etc/z")));
        assert_eq!(p("empty"), None);
        assert_eq!(p("unset"), None);
        // A config file named without a directory: paths stay relative (to the same working
        // directory the file was found in).
        let r = Reader::new(Path::new("placement.conf"), &s);
        assert_eq!(
            r.path("p", "rel").expect("no error"),
            Some(PathBuf::from("policy.yaml"))
        );
    }

    #[test]
    fn empty_strings_are_unset_but_empty_lists_are_empty() {
        let s = sections("[p]\ns =\nl =\n");
        let r = Reader::new(Path::new("/p.conf"), &s);
        assert_eq!(r.string("p", "s").expect("ok"), None);
        assert_eq!(r.list("p", "l").expect("ok"), Some(vec![]));
        assert_eq!(r.list("p", "unset").expect("ok"), None);
    }
}
