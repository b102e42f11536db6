//! Opening a node's data directory: one RocksDB with four column families, plus a directory
//! of snapshot files.
//!
//! ```text
//! <data-dir>/rocksdb/     the database (raft_log, raft_meta, sm_records, sm_meta)
//! <data-dir>/snapshots/   the current snapshot file (and, briefly, one being written)
//! ```
//!
//! RocksDB's `LOCK` file keeps a second process off the same directory; that and every other
//! open failure becomes an [`Error`] naming the path, never a panic.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rocksdb::{
    ColumnFamily, ColumnFamilyDescriptor, DBCompressionType, FlushOptions, Options, WriteBatch,
    WriteOptions, DB,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::keys::{MetaKey, ALL_CFS, CF_RAFT_LOG, FORMAT, FORMAT_VERSION, NODE_ID};
use crate::log_store::LogStore;
use crate::snapshot::SnapshotDir;
use crate::state_machine::StateMachine;
use crate::types::NodeId;

/// Upper bound on the total size of write-ahead-log files before RocksDB flushes the column
/// families that pin the oldest one. `raft_meta` sees few writes and would otherwise keep old
/// WAL files alive until the (much larger) default of 4× all write buffers.
const MAX_TOTAL_WAL_SIZE: u64 = 256 << 20;

/// Memtable size of the Raft log column family (RocksDB's default is 64 MiB). A node killed
/// with -9 replays every WAL file still needed by an unflushed memtable, and the log's
/// memtable, filling at half the rate of the records', was the oldest: at 64 MiB it kept
/// about 180,000 writes (130 MB of WAL, 2.4 s to replay) alive. Its entries are appended
/// in key order and deleted after each snapshot, so smaller flushes cost little.
const RAFT_LOG_WRITE_BUFFER: usize = 16 << 20;

/// How many RocksDB info-log files to keep in the database directory.
const KEEP_INFO_LOG_FILES: usize = 5;

/// Directory names inside the data directory.
pub(crate) const DB_DIR: &str = "rocksdb";
pub(crate) const SNAPSHOT_DIR: &str = "snapshots";

/// Write options for writes that Raft relies on being durable when the call returns: the
/// WAL is fsynced before the write is acknowledged.
pub(crate) fn synced() -> WriteOptions {
    let mut opts = WriteOptions::default();
    opts.set_sync(true);
    opts
}

/// Write options for writes that may be lost by a power failure (not by a process crash: the
/// WAL write reaches the OS before returning) because they can be rebuilt from synced data.
pub(crate) fn unsynced() -> WriteOptions {
    WriteOptions::default()
}

/// A column family handle; missing ones are a bug (every CF is opened in [`Store::open`]).
pub(crate) fn cf<'a>(db: &'a DB, name: &'static str) -> Result<&'a ColumnFamily> {
    db.cf_handle(name).ok_or(Error::MissingColumnFamily(name))
}

/// Writes the memtables of the column families `names` out to table files; `wait`: return
/// only once they are written.
pub(crate) fn flush(db: &DB, names: &[&'static str], wait: bool) -> Result<()> {
    let cfs = names
        .iter()
        .map(|name| cf(db, name))
        .collect::<Result<Vec<_>>>()?;
    let mut opts = FlushOptions::default();
    opts.set_wait(wait);
    Ok(db.flush_cfs_opt(&cfs, &opts)?)
}

/// Reads a typed metadata value.
pub(crate) fn get_meta<T: Serialize + DeserializeOwned>(
    db: &DB,
    key: &MetaKey<T>,
) -> Result<Option<T>> {
    match db.get_pinned_cf(cf(db, key.cf)?, key.key)? {
        Some(bytes) => Ok(Some(key.decode(&bytes)?)),
        None => Ok(None),
    }
}

/// Adds `value` under the metadata key `key` to `batch` (the write side of [`get_meta`]).
pub(crate) fn put_meta<T: Serialize + DeserializeOwned>(
    db: &DB,
    batch: &mut WriteBatch,
    key: &MetaKey<T>,
    value: &T,
) -> Result<()> {
    batch.put_cf(cf(db, key.cf)?, key.key, key.encode(value)?);
    Ok(())
}

/// An open data directory: the RocksDB handle shared by the log store and the state machine.
#[derive(Clone)]
pub struct Store {
    db: Arc<DB>,
    snapshots: Arc<SnapshotDir>,
    path: PathBuf,
    /// The log's most recent entries, shared by every [`LogStore`] handle of this store.
    recent: Arc<std::sync::Mutex<crate::log_store::Recent>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating if needed) the data directory `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        let store = Store::open_loading(path)?;
        store.start_compactions()?;
        Ok(store)
    }

    /// [`Store::open`] for a node that is about to rebuild its state: background compactions
    /// stay off until [`Store::state_machine`] has loaded it. A compaction due at the open
    /// (level-0 files a crashed node had not compacted yet) would take one of the cores the
    /// two rebuild threads need: when the WAL replay still flushed its own level-0 files, it
    /// made a restart at 100,000 providers and 1,000,000 allocations about a second slower
    /// on 2 cores. Nothing is written meanwhile.
    pub fn open_loading(path: impl AsRef<Path>) -> Result<Store> {
        let path = path.as_ref().to_path_buf();
        let dir_err = |source| Error::DataDir {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(&path).map_err(dir_err)?;
        let db_path = path.join(DB_DIR);

        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_max_total_wal_size(MAX_TOTAL_WAL_SIZE);
        opts.set_keep_log_file_num(KEEP_INFO_LOG_FILES);
        opts.set_compression_type(DBCompressionType::Lz4);
        // After a crash, keep the memtables the WAL replay rebuilt instead of writing them out
        // as new table files before the open returns (they are flushed as they fill, like
        // any other; the WAL files stay until then). The crate has no setter for this
        // option; RocksDB's option-string parser sets it on a copy of `opts`.
        let opts = opts
            .get_options_from_string("avoid_flush_during_recovery=true")
            .map_err(|source| Error::Open {
                path: db_path.clone(),
                source,
            })?;
        let cfs = ALL_CFS.iter().map(|name| {
            let mut cf_opts = Options::default();
            cf_opts.set_compression_type(DBCompressionType::Lz4);
            cf_opts.set_disable_auto_compactions(true);
            if *name == CF_RAFT_LOG {
                cf_opts.set_write_buffer_size(RAFT_LOG_WRITE_BUFFER);
            }
            ColumnFamilyDescriptor::new(*name, cf_opts)
        });
        let db = DB::open_cf_descriptors(&opts, &db_path, cfs).map_err(|source| Error::Open {
            path: db_path.clone(),
            source,
        })?;

        match get_meta(&db, &FORMAT)? {
            Some(FORMAT_VERSION) => {}
            Some(found) => {
                return Err(Error::Format {
                    path: db_path,
                    found,
                    supported: FORMAT_VERSION,
                })
            }
            None => {
                // Synced: written once, when the directory is created; it marks the database
                // as placementd's from its first durable byte on.
                db.put_cf_opt(
                    cf(&db, FORMAT.cf)?,
                    FORMAT.key,
                    FORMAT.encode(&FORMAT_VERSION)?,
                    &synced(),
                )?;
            }
        }

        let snapshots = SnapshotDir::open(path.join(SNAPSHOT_DIR)).map_err(dir_err)?;
        tracing::info!(path = %path.display(), "storage opened");
        Ok(Store {
            db: Arc::new(db),
            snapshots: Arc::new(snapshots),
            recent: Arc::default(),
            path,
        })
    }

    /// The shared database handle.
    pub(crate) fn db(&self) -> &DB {
        &self.db
    }

    /// The snapshot directory.
    pub(crate) fn snapshots(&self) -> &SnapshotDir {
        &self.snapshots
    }

    /// The data directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Binds the data directory to `node_id` on first use and refuses any other id after:
    /// a node's Raft state (its vote, its log) is only valid under the id that wrote it.
    pub fn bind_node_id(&self, node_id: NodeId) -> Result<()> {
        match get_meta(&self.db, &NODE_ID)? {
            Some(stored) if stored == node_id => Ok(()),
            Some(stored) => Err(Error::NodeIdMismatch {
                stored,
                requested: node_id,
            }),
            None => {
                // Synced: a vote saved under this id must never survive without the id.
                self.db.put_cf_opt(
                    cf(&self.db, NODE_ID.cf)?,
                    NODE_ID.key,
                    NODE_ID.encode(&node_id)?,
                    &synced(),
                )?;
                Ok(())
            }
        }
    }

    /// The node id this directory is bound to, if any.
    pub fn node_id(&self) -> Result<Option<NodeId>> {
        get_meta(&self.db, &NODE_ID)
    }

    /// The Raft log store (cheap handle on the shared database).
    /// The last vote saved (`save_vote`), if any.
    pub fn vote(&self) -> Result<Option<crate::types::Vote>> {
        get_meta(&self.db, &crate::keys::VOTE)
    }

    pub fn log_store(&self) -> LogStore {
        LogStore::new(self.db.clone(), self.recent.clone())
    }

    /// A log store with no recent entries of its own: every read goes to RocksDB.
    #[cfg(test)]
    pub(crate) fn uncached_log_store(&self) -> LogStore {
        LogStore::new(self.db.clone(), Arc::default())
    }

    /// The state machine, with its in-memory [`placement_core::State`] rebuilt from the
    /// records column family.
    ///
    /// Starts background compactions if [`Store::open_loading`] left them off.
    pub fn state_machine(&self) -> Result<StateMachine> {
        let sm = StateMachine::open(self.db.clone(), self.snapshots.clone())?;
        self.start_compactions()?;
        Ok(sm)
    }

    /// Turns automatic compactions on in every column family (they are opened with them off).
    fn start_compactions(&self) -> Result<()> {
        for name in ALL_CFS {
            self.db.set_options_cf(
                cf(&self.db, name)?,
                &[("disable_auto_compactions", "false")],
            )?;
        }
        Ok(())
    }

    /// Makes every write so far durable (fsyncs the WAL), then writes the memtables out to
    /// table files. Used at shutdown: a clean stop never depends on replaying the Raft log,
    /// and the next start has no WAL to replay either (the open keeps a replayed memtable in
    /// memory, `avoid_flush_during_recovery`, so without this a restart after a crash
    /// would replay the same WAL again at the next clean restart).
    pub fn sync(&self) -> Result<()> {
        // Synced: this is the explicit durability point for everything written unsynced.
        self.db.flush_wal(true)?;
        flush(&self.db, &ALL_CFS, true)
    }
}
