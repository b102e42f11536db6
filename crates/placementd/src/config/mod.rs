//! `placementd --config-file FILE`: reads an OpenStack Placement `placement.conf`, so that
//! the file kolla-ansible or openstack-helm renders for Placement 16.0.0 loads unchanged,
//! and placementd's own options can live in the same file.
//!
//! # What is read
//! The file is oslo.config's INI dialect (`ini.rs`: sections, `key = value` or
//! `key: value`, whole-line `#`/`;` comments, indented continuation lines, repeated keys),
//! with oslo.config's value rules (`value.rs`: last assignment wins, deprecated aliases,
//! `$name` substitution, booleans, integers, lists). Section names are case-insensitive
//! except `DEFAULT`; option names are case-sensitive.
//!
//! Each section is one of three kinds (`catalog.rs`):
//! - **read**: `[DEFAULT]` (logging), `[api]`, `[keystone_authtoken]`, `[oslo_policy]`,
//!   `[cors]`, `[oslo_middleware]`, `[placement]` and placementd's own `[placementd]`
//!   (`sections.rs` documents every option). Options of these sections that Placement or its
//!   libraries register but placementd has no use for (memcache settings, log formats, …)
//!   are accepted and listed by [`ConfigFile::ignored`]; `[workarounds]` is such a section
//!   too. Any other option name is an error with a spelling suggestion — oslo.config would
//!   drop it silently, leaving a typo such as `auth_typ` to surface as a confusing failure
//!   much later.
//! - **ignored whole**: the database, messaging, cache, profiler and similar sections
//!   (`[placement_database]`, `[oslo_messaging_*]`, `[oslo_concurrency]`, …): placementd has
//!   no counterpart, so any content is accepted and listed by [`ConfigFile::ignored`].
//! - **unknown**: an error naming the section, with a suggestion.
//!
//! # Invariants
//! - A file loads only if every line is valid INI, every section and option name is known,
//!   and every value placementd reads converts; the first problem in file order (names
//!   first, then values) is the error, naming the file, line, section and option.
//! - Every option placementd reads is `Option<T>`, `None` when the file does not set it,
//!   so the caller can apply flags > environment > file > built-in default option by option
//!   ([`Cors`] excepted: it carries Placement's defaults).
//! - Relative paths resolve against the config file's directory; [`ConfigFile::load`] makes
//!   the file's own path absolute first.
//! - Reading is bounded: a file over [`MAX_CONFIG_FILE_BYTES`] is refused before parsing.
//! - Loading never panics on any input.
//!
//! # Left out
//! - Several files and `--config-dir`: one file, named by `--config-file`.
//! - oslo.config's search path for `policy_file` (`~/.placement/`, `/etc/placement/`, …):
//!   a relative `policy_file` is taken in the config file's directory, which is where
//!   kolla-ansible and openstack-helm put it.
//! - Options of other services' sections (`[nova]`, `[neutron]`, …): a shared
//!   `placement.conf` does not have them, and accepting them would hide typos in section
//!   names.
//! - Defaults of Python libraries in `$name` substitutions: only values set in the file
//!   can be substituted.

mod catalog;
mod error;
mod ini;
mod sections;
mod value;

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

pub use error::ConfigError;
// The module's whole API; the binary names only the types it matches on.
#[allow(unused_imports)]
pub use sections::{
    cors_defaults, ApiOptions, AuthStrategy, AuthType, Cors, DefaultOptions, InitialClusterState,
    Interface, KeystoneAuthtoken, OsloMiddleware, OsloPolicy, PlacementOptions, PlacementdOptions,
    ReadConsistency, LOG_FILE_STEM,
};

use catalog::SectionKind;
use value::{Reader, Sections};

/// Largest config file read: a rendered placement.conf is a few kilobytes; anything near a
/// megabyte is the wrong file.
pub const MAX_CONFIG_FILE_BYTES: usize = 1024 * 1024;

/// A parsed, validated placement.conf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFile {
    /// The file read (made absolute by [`ConfigFile::load`]).
    pub path: PathBuf,
    /// `[DEFAULT]`: logging.
    pub default: DefaultOptions,
    /// `[api]`.
    pub api: ApiOptions,
    /// `[keystone_authtoken]`.
    pub keystone_authtoken: KeystoneAuthtoken,
    /// `[oslo_policy]`.
    pub oslo_policy: OsloPolicy,
    /// `[cors]`, with Placement's defaults where the file is silent.
    pub cors: Cors,
    /// `[oslo_middleware]`.
    pub oslo_middleware: OsloMiddleware,
    /// `[placement]`.
    pub placement: PlacementOptions,
    /// `[placementd]`.
    pub placementd: PlacementdOptions,
    /// `section.option` of every option present but not applied, in file order.
    ignored: Vec<String>,
}

impl ConfigFile {
    /// Reads (at most [`MAX_CONFIG_FILE_BYTES`]), parses and validates the file at `path`.
    pub fn load(path: &Path) -> Result<ConfigFile, ConfigError> {
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let io = |source| ConfigError::Io {
            path: path.clone(),
            source,
        };
        let file = std::fs::File::open(&path).map_err(io)?;
        let mut bytes = Vec::new();
        // One byte over the limit is enough to know the file is too large.
        file.take(MAX_CONFIG_FILE_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        if bytes.len() > MAX_CONFIG_FILE_BYTES {
            return Err(too_large(&path));
        }
        let text =
            String::from_utf8(bytes).map_err(|_| ConfigError::NotUtf8 { path: path.clone() })?;
        ConfigFile::parse(&path, &text)
    }

    /// Parses and validates `text`, the content of the file at `path` (which names the file
    /// in errors and anchors relative paths).
    pub fn parse(path: &Path, text: &str) -> Result<ConfigFile, ConfigError> {
        if text.len() > MAX_CONFIG_FILE_BYTES {
            return Err(too_large(path));
        }
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let raw = ini::parse(text).map_err(|e| ConfigError::Syntax {
            path: path.to_path_buf(),
            line: e.line,
            message: e.message,
        })?;
        let sections = check_names(path, raw)?;
        let reader = Reader::new(path, &sections);
        Ok(ConfigFile {
            path: path.to_path_buf(),
            default: DefaultOptions::read(&reader)?,
            api: ApiOptions::read(&reader)?,
            keystone_authtoken: KeystoneAuthtoken::read(&reader)?,
            oslo_policy: OsloPolicy::read(&reader)?,
            cors: Cors::read(&reader)?,
            oslo_middleware: OsloMiddleware::read(&reader)?,
            placement: PlacementOptions::read(&reader)?,
            placementd: PlacementdOptions::read(&reader)?,
            ignored: ignored_options(&sections),
        })
    }

    /// Options that were present but do not apply to placementd, as `section.option`, in
    /// file order, each once: options of ignored sections, ignored options of read
    /// sections, and deprecated aliases shadowed by their canonical name. For one log line
    /// at start-up ("accepted and ignored").
    pub fn ignored(&self) -> &[String] {
        &self.ignored
    }
}

fn too_large(path: &Path) -> ConfigError {
    ConfigError::TooLarge {
        path: path.to_path_buf(),
        limit: MAX_CONFIG_FILE_BYTES,
    }
}

/// Checks every section and option name, in file order, and merges the sections by
/// normalized name.
fn check_names(path: &Path, raw: Vec<ini::Section>) -> Result<Sections, ConfigError> {
    let mut sections = Sections::default();
    for section in raw {
        let name = catalog::normalize_section(&section.name);
        let Some(kind) = catalog::section_kind(&name) else {
            return Err(ConfigError::UnknownSection {
                path: path.to_path_buf(),
                line: section.line,
                suggestion: catalog::suggest_section(&section.name),
                section: section.name,
            });
        };
        if let SectionKind::Checked(spec) = kind {
            let unknown = section
                .entries
                .iter()
                .find(|e| !catalog::is_known_option(spec, &e.key));
            if let Some(entry) = unknown {
                return Err(ConfigError::UnknownOption {
                    path: path.to_path_buf(),
                    line: entry.line,
                    section: name,
                    option: entry.key.clone(),
                    suggestion: catalog::suggest_option(spec, &entry.key),
                });
            }
        }
        sections.extend(name, section.entries);
    }
    Ok(sections)
}

/// The `section.option` names present but not applied, in file order, without repeats.
fn ignored_options(sections: &Sections) -> Vec<String> {
    let mut ignored: Vec<String> = Vec::new();
    let mut seen = HashSet::new();
    for merged in &sections.list {
        let kind = catalog::section_kind(&merged.name);
        for entry in &merged.entries {
            let is_ignored = match kind {
                Some(SectionKind::Ignored) => true,
                Some(SectionKind::Checked(spec)) => {
                    catalog::is_ignored_option(spec, &entry.key)
                        || is_shadowed_alias(sections, &merged.name, &entry.key)
                }
                None => false,
            };
            let name = format!("{}.{}", merged.name, entry.key);
            if is_ignored && seen.insert(name.clone()) {
                ignored.push(name);
            }
        }
    }
    ignored
}

/// Whether `option` of `section` is a deprecated alias whose canonical option (or an
/// earlier alias) is also set, and so is not the value used.
fn is_shadowed_alias(sections: &Sections, section: &str, option: &str) -> bool {
    let Some(alias) = catalog::aliases_in(section).find(|a| a.name == option) else {
        return false;
    };
    let (canonical_section, canonical) = alias.canonical;
    let earlier = catalog::aliases_of(canonical_section, canonical)
        .take_while(|a| a.name != option || a.section != section)
        .map(|a| (a.section, a.name));
    std::iter::once((canonical_section, canonical))
        .chain(earlier)
        .any(|(s, o)| sections.last(s, o).is_some())
}

#[cfg(test)]
mod tests;
