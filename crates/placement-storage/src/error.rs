//! The one error type of placement-storage.
//!
//! Every variant means "the node cannot trust or reach its disk": none is a domain rejection
//! (those travel inside [`placement_types::ApplyResult`]). openraft's storage traits speak
//! `std::io::Error`, so [`Error`] converts into it; openraft then stops the node rather than
//! guess, which is what a Raft member must do when its storage misbehaves.

use std::io;
use std::path::PathBuf;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The data directory could not be created or used.
    #[error("data directory {path}: {source}")]
    DataDir { path: PathBuf, source: io::Error },

    /// RocksDB refused to open the database (in use by another process, permissions, damage).
    #[error("cannot open the database in {path}: {source}")]
    Open {
        path: PathBuf,
        source: rocksdb::Error,
    },

    /// The database was written by an incompatible version of placementd.
    #[error("unsupported storage format {found} in {path} (this build reads format {supported})")]
    Format {
        path: PathBuf,
        found: u32,
        supported: u32,
    },

    /// The data directory belongs to another node id; node ids are never reused or changed.
    #[error("data directory belongs to node {stored}, not node {requested}")]
    NodeIdMismatch { stored: u64, requested: u64 },

    #[error("rocksdb: {0}")]
    RocksDb(#[from] rocksdb::Error),

    #[error("i/o: {0}")]
    Io(#[from] io::Error),

    #[error("encoding: {0}")]
    Codec(#[from] placement_types::CodecError),

    /// Stored bytes that cannot be what placementd wrote: a damaged disk or a bug.
    #[error("corrupt storage: {0}")]
    Corrupt(String),

    /// A column family the database was opened with is missing (a bug, never user input).
    #[error("column family {0} missing")]
    MissingColumnFamily(&'static str),

    /// A backup cannot be restored as asked (the target is not empty, the backup is empty).
    #[error("restore: {0}")]
    Restore(String),

    /// A blocking storage task was cancelled or panicked.
    #[error("storage task failed: {0}")]
    Task(String),
}

impl Error {
    pub(crate) fn corrupt(detail: impl Into<String>) -> Self {
        Error::Corrupt(detail.into())
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Io(e) => e,
            Error::Corrupt(_) | Error::Codec(_) => io::Error::new(io::ErrorKind::InvalidData, e),
            other => io::Error::other(other),
        }
    }
}

impl From<tokio::task::JoinError> for Error {
    fn from(e: tokio::task::JoinError) -> Self {
        Error::Task(e.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
