//! Why a placement.conf was refused. Every error names the file, and where it makes sense
//! the line, the section and the option, so that the message alone is enough to fix the
//! file:
//!
//! ```text
//! /etc/placement/placement.conf:12: [keystone_authtoken] auth_typ: unknown option (did you mean auth_type?)
//! /etc/placement/placement.conf:3: unknown section [keystone_authtokn] (did you mean [keystone_authtoken]?)
//! /etc/placement/placement.conf:2: [DEFAULT] debug: "maybe" is not a boolean (true/false, yes/no, on/off, 1/0)
//! ```
//!
//! (Written without `thiserror` so that the module needs nothing but `std`.)

use std::fmt;
use std::path::PathBuf;

/// A placement.conf that cannot be used.
#[derive(Debug)]
pub enum ConfigError {
    /// The file could not be read.
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is larger than [`super::MAX_CONFIG_FILE_BYTES`].
    TooLarge { path: PathBuf, limit: usize },
    /// The file is not UTF-8 text.
    NotUtf8 { path: PathBuf },
    /// The INI syntax is wrong (oslo.config would refuse the file too).
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// A section placementd does not know (neither its own, nor one Placement or its
    /// libraries read).
    UnknownSection {
        path: PathBuf,
        line: usize,
        section: String,
        suggestion: Option<&'static str>,
    },
    /// An option name a known section does not have: most likely a typo, which oslo.config
    /// would have dropped without a word.
    UnknownOption {
        path: PathBuf,
        line: usize,
        section: String,
        option: String,
        suggestion: Option<&'static str>,
    },
    /// A value placementd cannot use: not a boolean, not a number, out of range, not one of
    /// the allowed words, or a feature placementd does not have.
    Value {
        path: PathBuf,
        line: usize,
        section: String,
        option: String,
        message: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Io { path, source } => {
                write!(f, "{}: cannot read: {source}", path.display())
            }
            ConfigError::TooLarge { path, limit } => write!(
                f,
                "{}: larger than {limit} bytes: not a placement.conf",
                path.display()
            ),
            ConfigError::NotUtf8 { path } => {
                write!(f, "{}: not UTF-8 text", path.display())
            }
            ConfigError::Syntax {
                path,
                line,
                message,
            } => write!(f, "{}:{line}: {message}", path.display()),
            ConfigError::UnknownSection {
                path,
                line,
                section,
                suggestion,
            } => {
                write!(f, "{}:{line}: unknown section [{section}]", path.display())?;
                match suggestion {
                    Some(s) => write!(f, " (did you mean [{s}]?)"),
                    None => Ok(()),
                }
            }
            ConfigError::UnknownOption {
                path,
                line,
                section,
                option,
                suggestion,
            } => {
                write!(
                    f,
                    "{}:{line}: [{section}] {option}: unknown option",
                    path.display()
                )?;
                match suggestion {
                    Some(s) => write!(f, " (did you mean {s}?)"),
                    None => Ok(()),
                }
            }
            ConfigError::Value {
                path,
                line,
                section,
                option,
                message,
            } => write!(
                f,
                "{}:{line}: [{section}] {option}: {message}",
                path.display()
            ),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
