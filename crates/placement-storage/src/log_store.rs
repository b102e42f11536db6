//! The Raft log and vote: openraft's `RaftLogStorage` and `RaftLogReader` on RocksDB.
//!
//! # Durability (what is synced when)
//! - `save_vote`: one synced write; the vote is on disk before the call returns.
//! - `append`: ONE synced `WriteBatch` for the whole batch openraft hands over, however many
//!   entries it holds (group commit: while one fsync runs, new client writes queue up in
//!   openraft and arrive together in the next `append`). The callback fires only after the
//!   fsync; the entries are readable as soon as the write returns.
//! - `truncate_after`, `purge`: one synced batch each (purge writes the new last-purged id
//!   and deletes the range atomically, so there is never a hole between them).
//! - `save_committed`: NOT synced. It only lets a restart replay committed entries sooner;
//!   RocksDB's WAL is written in order, so a surviving `committed` record implies that every
//!   log entry appended before it survived too, and losing it only means waiting for the
//!   leader to re-establish the commit index (`Raft::wait_for_recovery`).
//!
//! All writes arrive serialized from openraft's core task. The fsyncing writes run on tokio's
//! blocking pool so that an fsync never stalls an async worker thread.
//!
//! # Recent entries
//! Every entry is read back soon after it is appended: by the state machine to apply it and,
//! on the leader, by the replication to each follower. Read from RocksDB, each read is an
//! iterator seek and a decode per entry (a tenth of the leader's CPU under forwarded writes
//! in the profile). So the entries of the last appends are also kept in memory, as appended
//! ([`Recent`]: a contiguous run ending at the last entry, at most [`RECENT_MAX_ENTRIES`]
//! and about [`RECENT_MAX_BYTES`]), and a read that starts inside that run is served from
//! it. `truncate_after` and `purge` drop cached entries before they delete them from
//! RocksDB, so the cache never holds an entry the log no longer has; an append that does not
//! continue the run replaces it.
//!
//! Left out: pipelining a second append while the first fsync runs (openraft's own batching
//! already amortises the fsync).

use std::collections::VecDeque;
use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::sync::{Arc, Mutex};

use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::OptionalSend;
use rocksdb::{Direction, IteratorMode, ReadOptions, WriteBatch, DB};

use crate::error::{Error, Result};
use crate::keys::{self, COMMITTED, LAST_PURGED, LOG_KEY_END, VOTE};
use crate::store::{cf, get_meta, put_meta, synced, unsynced};
use crate::types::{Entry, LogId, TypeConfig, Vote};

/// The most entries kept in [`Recent`].
pub const RECENT_MAX_ENTRIES: usize = 8192;
/// About the most bytes (of their encoding) of the entries kept in [`Recent`].
pub const RECENT_MAX_BYTES: usize = 32 << 20;

/// The log's most recent entries, as appended (module doc): `entries` hold consecutive
/// indexes, the last being the log's last entry, or nothing.
#[derive(Debug, Default)]
pub(crate) struct Recent {
    entries: VecDeque<(Entry, usize)>,
    bytes: usize,
}

impl Recent {
    fn first_index(&self) -> Option<u64> {
        self.entries.front().map(|(e, _)| e.index())
    }

    /// Adds appended entries (with their encoded sizes); a run that does not continue the
    /// cached one replaces it.
    fn extend(&mut self, appended: Vec<(Entry, usize)>) {
        let Some((first, _)) = appended.first() else {
            return;
        };
        let continues = match self.entries.back() {
            None => true,
            Some((last, _)) => last.index().checked_add(1) == Some(first.index()),
        };
        if !continues {
            self.clear();
        }
        for (entry, size) in appended {
            self.bytes += size;
            self.entries.push_back((entry, size));
        }
        while self.entries.len() > RECENT_MAX_ENTRIES || self.bytes > RECENT_MAX_BYTES {
            match self.entries.pop_front() {
                Some((_, size)) => self.bytes -= size,
                None => break,
            }
        }
    }

    /// Drops the entries from index `from` on.
    fn truncate_from(&mut self, from: u64) {
        while self.entries.back().is_some_and(|(e, _)| e.index() >= from) {
            if let Some((_, size)) = self.entries.pop_back() {
                self.bytes -= size;
            }
        }
    }

    /// Drops the entries up to index `upto`.
    fn purge_upto(&mut self, upto: u64) {
        while self.entries.front().is_some_and(|(e, _)| e.index() <= upto) {
            if let Some((_, size)) = self.entries.pop_front() {
                self.bytes -= size;
            }
        }
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }

    /// The entries from `start` up to `end` (exclusive; `None`: to the last), if the run
    /// covers `start`: entries past the run's end are not in the log either.
    fn read(&self, start: u64, end: Option<u64>) -> Option<Vec<Entry>> {
        let first = self.first_index()?;
        if start < first {
            return None;
        }
        let skip = usize::try_from(start - first).ok()?;
        let take = match end {
            Some(end) => usize::try_from(end.saturating_sub(start)).unwrap_or(usize::MAX),
            None => usize::MAX,
        };
        Some(
            self.entries
                .iter()
                .skip(skip)
                .take(take)
                .map(|(e, _)| e.clone())
                .collect(),
        )
    }
}

/// The Raft log store. Cloning is cheap: clones share the database and the recent entries.
#[derive(Clone)]
pub struct LogStore {
    db: Arc<DB>,
    recent: Arc<Mutex<Recent>>,
}

impl Debug for LogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStore").finish_non_exhaustive()
    }
}

impl LogStore {
    pub(crate) fn new(db: Arc<DB>, recent: Arc<Mutex<Recent>>) -> Self {
        LogStore { db, recent }
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, Recent> {
        self.recent.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Entries with indexes in `range`, in order. Entries missing at the start (purged) or at
    /// the end (not yet appended) are simply absent; a gap in the middle is corruption.
    fn read_range(&self, range: impl RangeBounds<u64>) -> Result<Vec<Entry>> {
        let start = match range.start_bound() {
            Bound::Included(&i) => i,
            Bound::Excluded(&i) => match i.checked_add(1) {
                Some(i) => i,
                None => return Ok(Vec::new()),
            },
            Bound::Unbounded => 0,
        };
        // Exclusive end; `None` = unbounded.
        let end = match range.end_bound() {
            Bound::Included(&i) => i.checked_add(1),
            Bound::Excluded(&i) => Some(i),
            Bound::Unbounded => None,
        };
        if end.is_some_and(|end| start >= end) {
            return Ok(Vec::new());
        }
        if let Some(entries) = self.recent().read(start, end) {
            return Ok(entries);
        }

        let mut opts = ReadOptions::default();
        if let Some(end) = end {
            opts.set_iterate_upper_bound(keys::log_key(end).to_vec());
        }
        let start_key = keys::log_key(start);
        // An iterator reads one consistent point-in-time view of the column family.
        let iter = self.db.iterator_cf_opt(
            cf(&self.db, keys::CF_RAFT_LOG)?,
            opts,
            IteratorMode::From(&start_key, Direction::Forward),
        );
        let mut entries = Vec::new();
        let mut expect: Option<u64> = None;
        for item in iter {
            let (key, value) = item?;
            let index = keys::log_index(&key)?;
            if expect.is_some_and(|e| e != index) {
                return Err(Error::corrupt(format!(
                    "hole in the raft log: expected index {expect:?}, found {index}"
                )));
            }
            let entry = decode_entry(index, &value)?;
            expect = index.checked_add(1);
            entries.push(entry);
        }
        Ok(entries)
    }

    fn last_log_id(&self) -> Result<Option<LogId>> {
        let mut iter = self
            .db
            .iterator_cf(cf(&self.db, keys::CF_RAFT_LOG)?, IteratorMode::End);
        match iter.next() {
            None => Ok(None),
            Some(item) => {
                let (key, value) = item?;
                let entry = decode_entry(keys::log_index(&key)?, &value)?;
                Ok(Some(entry.log_id()))
            }
        }
    }

    /// Runs a synced batch on the blocking pool.
    async fn write_synced(&self, batch: WriteBatch) -> Result<()> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.write_opt(batch, &synced())).await??;
        Ok(())
    }
}

fn decode_entry(index: u64, bytes: &[u8]) -> Result<Entry> {
    let entry: Entry = placement_types::decode(bytes)
        .map_err(|e| Error::corrupt(format!("raft log entry {index}: {e}")))?;
    if entry.index() != index {
        return Err(Error::corrupt(format!(
            "raft log key {index} holds entry {}",
            entry.index()
        )));
    }
    Ok(entry)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        Ok(self.read_range(range)?)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        Ok(get_meta(&self.db, &VOTE)?)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let last_purged_log_id = get_meta(&self.db, &LAST_PURGED)?;
        let last_log_id = self.last_log_id()?.or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        let mut batch = WriteBatch::default();
        put_meta(&self.db, &mut batch, &VOTE, vote)?;
        // Synced: a vote must be on disk before it is acted upon (never vote twice in a term).
        self.write_synced(batch).await?;
        Ok(())
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        let cf_meta = cf(&self.db, COMMITTED.cf)?;
        let mut batch = WriteBatch::default();
        match committed {
            Some(id) => batch.put_cf(cf_meta, COMMITTED.key, COMMITTED.encode(&id)?),
            None => batch.delete_cf(cf_meta, COMMITTED.key),
        }
        // Not synced: a hint for faster replay; see the module doc for why losing it is safe.
        self.db.write_opt(batch, &unsynced()).map_err(Error::from)?;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        Ok(get_meta(&self.db, &COMMITTED)?)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<TypeConfig>,
    ) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = WriteBatch::default();
        let mut appended = Vec::new();
        {
            let cf_log = cf(&self.db, keys::CF_RAFT_LOG)?;
            for entry in entries {
                let value = placement_types::encode(&entry).map_err(Error::from)?;
                batch.put_cf(cf_log, keys::log_key(entry.index()), &value);
                appended.push((entry, value.len()));
            }
        }
        placement_metrics::catalog::LOG_APPEND_ENTRIES.observe(batch.len() as u64);
        let fsync = std::time::Instant::now();
        // Synced, once for the whole batch (group commit): openraft may acknowledge the
        // entries (count them towards a quorum) as soon as the callback fires.
        match self.write_synced(batch).await {
            Ok(()) => {
                placement_metrics::catalog::LOG_FSYNC.observe_since(fsync);
                self.recent().extend(appended);
                callback.io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                // Whatever reached the log, the cache must not claim to end at its end.
                self.recent().clear();
                let err = io::Error::from(e);
                callback.io_completed(Err(io::Error::new(err.kind(), err.to_string())));
                Err(err)
            }
        }
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        let from = match &last_log_id {
            Some(id) => match id.index().checked_add(1) {
                Some(i) => i,
                None => return Ok(()),
            },
            None => 0,
        };
        tracing::debug!(from, "truncating raft log");
        self.recent().truncate_from(from);
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(
            cf(&self.db, keys::CF_RAFT_LOG)?,
            keys::log_key(from).as_slice(),
            LOG_KEY_END.as_slice(),
        );
        // Synced: a conflicting suffix must not reappear after a crash once the leader's
        // entries have been accepted in its place.
        self.write_synced(batch).await?;
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        tracing::debug!(upto = log_id.index(), "purging raft log");
        self.recent().purge_upto(log_id.index());
        let mut batch = WriteBatch::default();
        batch.put_cf(
            cf(&self.db, LAST_PURGED.cf)?,
            LAST_PURGED.key,
            LAST_PURGED.encode(&log_id)?,
        );
        let end = match log_id.index().checked_add(1) {
            Some(end) => keys::log_key(end).to_vec(),
            None => LOG_KEY_END.to_vec(),
        };
        batch.delete_range_cf(
            cf(&self.db, keys::CF_RAFT_LOG)?,
            keys::log_key(0).to_vec(),
            end,
        );
        // Synced, one batch: last-purged and the deletion land together, so the log never
        // shows a hole or a purge marker ahead of missing entries after a crash.
        self.write_synced(batch).await?;
        Ok(())
    }
}
