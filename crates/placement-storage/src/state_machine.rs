//! The replicated state machine: openraft's `RaftStateMachine` over Placement's pure `apply`.
//!
//! # Apply
//! For each call (the entries openraft hands over together, in log order):
//! 1. for each entry, compute `placement_core::apply(&state, &request)` on the state
//!    machine's own working [`State`], add its changed records (and, for a membership entry,
//!    the membership) to the call's one RocksDB `WriteBatch`, and commit the changes to the
//!    working state;
//! 2. put the last applied log id in the same batch once, and write it;
//! 3. send each [`ApplyResult`] to its waiting client, if any.
//!
//! # Readers never block apply
//! Readers see the state through [`SharedState`]: the last *published* snapshot, an
//! `Arc<State>` they take in O(1) and keep as long as they like (the maps are persistent, see
//! `placement_core::state`). Apply works on its own copy and publishes it once per apply
//! call, after the batch is written and before any client of the batch is answered, so a
//! client that reads after its write sees it, and a read always sees a whole number of
//! entries. A long read (a large allocation-candidates answer) holds an old snapshot, not a
//! lock: writes keep committing while it runs.
//!
//! A rejected command (a `DomainError`) is a normal outcome: nothing changes but the applied
//! log id. If the pure `apply` panics (a bug), the panic is caught and the entry is answered
//! with an error and no changes; since `apply` is deterministic, every node does the same, so
//! the replicas stay identical. An entry whose index does not follow the applied one, or a
//! record that cannot be stored, is a storage error: openraft stops the node rather than let
//! replicas diverge.
//!
//! # Durability
//! Apply batches are written to the WAL but not fsynced: the Raft log they derive from is
//! durable and is replayed from the persisted applied id (the WAL is ordered, so a surviving
//! applied id always comes with the records written alongside it). Two points do sync:
//! building a snapshot fsyncs the WAL (the log may be purged up to the snapshot right after),
//! and installing a snapshot is one synced batch.
//!
//! # Snapshots
//! A snapshot is built from a RocksDB snapshot: the applied id, the membership and the records
//! are all read from that same point-in-time view, so the metadata always describes exactly
//! the data. It is built on a thread of its own, at a lower CPU priority
//! ([`SNAPSHOT_NICE`]) once the WAL is synced, so that writes keep the CPU while every
//! member builds one at about the same index. Installing replaces the whole record column
//! family and the metadata in one synced `WriteBatch` (a crash leaves either the old state
//! or the new one), then swaps the in-memory state. See `snapshot.rs` for the file format.
//!
//! # Deduplication
//! Every applied request is remembered by id for a window of log entries (`dedup.rs`); an
//! entry carrying an id that is still remembered is not applied again and answers the
//! remembered outcome. The rows live in the record column family, so they are written in the
//! apply batch, survive restarts and travel in snapshots.
//!
//! Left out: incremental / streaming install for states larger than memory.

use std::io::{self, BufReader, BufWriter};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, RwLock};

use futures::{Stream, TryStreamExt};
use openraft::entry::RaftEntry;
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend};
use placement_core::{Applied, Rebuild, State};
use placement_types::{ApplyResult, DomainError, LogPayload, Outcome, Request};
use rocksdb::{IteratorMode, ReadOptions, WriteBatch, DB};

use crate::dedup::RequestTable;
use crate::error::{Error, Result};
use crate::keys::{
    self, APPLIED, CF_RAFT_META, CF_SM_META, CF_SM_RECORDS, MEMBERSHIP, RECORD_KEY_END,
    RECORD_KEY_START,
};
use crate::snapshot::{PacedFile, SnapshotDir, SnapshotFile, SnapshotReader, SnapshotWriter};
use crate::store::{cf, flush, get_meta, put_meta, synced, unsynced};
use crate::types::{Entry, LogId, Snapshot, SnapshotMeta, StoredMembership, TypeConfig};

/// The state readers see: the snapshot the state machine published last. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct SharedState(Arc<RwLock<Arc<State>>>);

impl SharedState {
    /// The current state, to read for as long as needed (the lock is held only to clone an
    /// `Arc`).
    pub fn snapshot(&self) -> Arc<State> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn publish(&self, state: &State) {
        // A clone of a persistent state: a few reference counts, not a copy.
        let next = Arc::new(state.clone());
        let previous = std::mem::replace(
            &mut *self.0.write().unwrap_or_else(|e| e.into_inner()),
            next,
        );
        // Dropped after the lock is released: when no reader holds it any more, this frees
        // every node the last batch path-copied (6-7 % of a follower's CPU under a write
        // load), and readers taking a snapshot must not wait for that.
        drop(previous);
    }
}

/// The state machine. Holds the working [`State`] it applies entries to, and publishes it
/// to readers through [`StateMachine::state`]; only this type ever changes it.
pub struct StateMachine {
    db: Arc<DB>,
    snapshots: Arc<SnapshotDir>,
    /// What apply works on; published after every apply call.
    working: State,
    shared: SharedState,
    requests: RequestTable,
    applied: Option<LogId>,
    membership: StoredMembership,
    /// Entries applied since the metadata column families were last flushed.
    since_meta_flush: u64,
}

/// Applied entries between flushes of the two metadata column families. Each holds a few
/// keys rewritten by every batch, so its memtable never fills; unflushed, it keeps every WAL
/// file since its last flush alive (RocksDB flushes it only when the WAL passes
/// `max_total_wal_size`), and a node killed with -9 replays all of them (up to 256 MiB,
/// about 4 s at 100,000 providers). 16,384 entries are about 12 MB of WAL.
pub(crate) const META_FLUSH_EVERY: u64 = 16_384;

impl std::fmt::Debug for StateMachine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateMachine")
            .field("applied", &self.applied)
            .finish_non_exhaustive()
    }
}

impl StateMachine {
    /// Loads the applied id and membership, and rebuilds [`State`] from the stored records.
    pub(crate) fn open(db: Arc<DB>, snapshots: Arc<SnapshotDir>) -> Result<Self> {
        let applied = get_meta(&db, &APPLIED)?;
        let membership = get_meta(&db, &MEMBERSHIP)?.unwrap_or_default();
        let (state, requests, count) = load_state(&db)?;
        tracing::info!(
            records = count,
            remembered_requests = requests.len(),
            applied = ?applied.as_ref().map(|id| id.index),
            "state machine loaded"
        );
        let shared = SharedState::default();
        shared.publish(&state);
        Ok(StateMachine {
            db,
            snapshots,
            working: state,
            shared,
            requests,
            applied,
            membership,
            since_meta_flush: 0,
        })
    }

    /// The state readers see; it always shows a whole number of applied entries.
    pub fn state(&self) -> SharedState {
        self.shared.clone()
    }

    /// The last applied log id (as persisted with the records).
    pub fn applied(&self) -> Option<&LogId> {
        self.applied.as_ref()
    }

    /// Applies one entry and returns the response for its client, writing it to the
    /// database at once (for tests; `apply` batches the writes of several entries).
    #[cfg(test)]
    pub(crate) fn apply_entry(&mut self, entry: Entry) -> Result<ApplyResult> {
        let mut batch = WriteBatch::default();
        let result = self.apply_entry_into(entry, &mut batch)?;
        self.put_applied(&mut batch)?;
        // Not synced: the durable Raft log replays this entry if the write is lost.
        self.db.write_opt(batch, &unsynced())?;
        self.shared.publish(&self.working);
        Ok(result)
    }

    /// Adds the applied log id to `batch`: once per batch, after its last entry (the batch
    /// is written whole or not at all, so the id always comes with its records).
    fn put_applied(&self, batch: &mut WriteBatch) -> Result<()> {
        match &self.applied {
            Some(id) => put_meta(&self.db, batch, &APPLIED, id),
            None => Ok(()),
        }
    }

    /// Applies one entry: its record changes go into `batch` (which the caller writes, with
    /// [`Self::put_applied`] after the last entry), and the in-memory state moves at once, so
    /// the next entry applies on top of this one. Until `batch` is written, the database lags
    /// memory; a crash then loses both, and the durable Raft log replays the entries (see the
    /// module doc).
    fn apply_entry_into(&mut self, entry: Entry, batch: &mut WriteBatch) -> Result<ApplyResult> {
        let log_id = entry.log_id();
        if let Some(applied) = &self.applied {
            if log_id.index <= applied.index {
                return Err(Error::corrupt(format!(
                    "entry {} applied after entry {}",
                    log_id.index, applied.index
                )));
            }
        }
        let mut membership = None;
        let mut remember = None;
        let (result, changes) = match entry.payload {
            EntryPayload::Blank => (Ok(Outcome::Done), Vec::new()),
            EntryPayload::Membership(m) => {
                let stored = StoredMembership::new(Some(log_id), m);
                put_meta(&self.db, batch, &MEMBERSHIP, &stored)?;
                membership = Some(stored);
                (Ok(Outcome::Done), Vec::new())
            }
            EntryPayload::Normal(LogPayload::V1(request)) => {
                if let Some(seen) = self.requests.get(&request.id) {
                    placement_metrics::catalog::DEDUPE_HITS.inc();
                    // A retried forward of a request that is already applied: answer what the
                    // first copy answered and change nothing (the same on every replica).
                    tracing::debug!(
                        request = %request.id,
                        index = log_id.index,
                        first_index = seen.index,
                        "duplicate request not applied again"
                    );
                    (seen.result.clone(), Vec::new())
                } else {
                    let applied = self.run_apply(&log_id, &request);
                    remember = Some(request.id);
                    (applied.result, applied.changes)
                }
            }
        };

        let cf_records = cf(&self.db, CF_SM_RECORDS)?;
        if let Some(id) = &remember {
            let planned = self.requests.plan(log_id.index, id, &result)?;
            batch.put_cf(cf_records, planned.key, planned.value);
            for key in planned.evicted {
                batch.delete_cf(cf_records, key);
            }
        }
        for change in &changes {
            match keys::encode_change(change)? {
                (key, Some(value)) => batch.put_cf(cf_records, key, value),
                (key, None) => batch.delete_cf(cf_records, key),
            }
        }

        if !changes.is_empty() {
            self.working.commit_owned(changes);
        }
        if let Some(id) = remember {
            self.requests.commit(log_id.index, id, result.clone());
        }
        self.applied = Some(log_id);
        if let Some(m) = membership {
            self.membership = m;
        }
        Ok(result)
    }

    /// Runs the pure `apply`, turning a panic into a rejected command.
    fn run_apply(&self, log_id: &LogId, request: &Request) -> Applied {
        let state = &self.working;
        match catch_unwind(AssertUnwindSafe(|| placement_core::apply(state, request))) {
            Ok(applied) => applied,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!(
                    index = log_id.index,
                    request = %request.id,
                    panic = %what,
                    "apply panicked; the command is rejected on every node"
                );
                Applied {
                    result: Err(DomainError::bad_request(format!(
                        "The request could not be applied (internal error in request {}).",
                        request.id
                    ))),
                    changes: Vec::new(),
                }
            }
        }
    }

    /// Asks RocksDB to flush the metadata column families, without waiting (see
    /// [`META_FLUSH_EVERY`]). Only bounds the WAL a restart replays: a failure is logged, and
    /// the WAL keeps everything durable either way.
    fn flush_meta(&self) {
        if let Err(e) = flush(&self.db, &[CF_RAFT_META, CF_SM_META], false) {
            tracing::warn!(error = %e, "flushing the metadata column families failed");
        }
    }

    fn snapshot_builder(&self) -> SnapshotBuilder {
        SnapshotBuilder {
            db: self.db.clone(),
            snapshots: self.snapshots.clone(),
        }
    }
}

/// Builds a snapshot file from a RocksDB snapshot of the state-machine column families.
pub struct SnapshotBuilder {
    db: Arc<DB>,
    snapshots: Arc<SnapshotDir>,
}

fn build_snapshot(db: &DB, snapshots: &SnapshotDir) -> Result<Snapshot> {
    let view = db.snapshot();
    // Metadata from the same point-in-time view as the records (one apply batch writes both).
    let last_log_id = match view.get_pinned_cf(cf(db, APPLIED.cf)?, APPLIED.key)? {
        Some(bytes) => Some(APPLIED.decode(&bytes)?),
        None => None,
    };
    let last_membership = match view.get_pinned_cf(cf(db, MEMBERSHIP.cf)?, MEMBERSHIP.key)? {
        Some(bytes) => MEMBERSHIP.decode(&bytes)?,
        None => StoredMembership::default(),
    };
    let meta = SnapshotMeta {
        last_log_id,
        last_membership,
    };
    // Synced: everything in this view becomes durable in the database too, so purging the
    // log up to the snapshot never passes state that only the page cache holds.
    db.flush_wal(true)?;
    // Only now at a lower priority: while RocksDB syncs its WAL, every synced write (the Raft
    // log's appends) waits for that sync to end, so a thread the kernel leaves unscheduled
    // in it would stall them all. Reading and writing the records holds nothing they need.
    lower_priority();

    let tmp = snapshots.tmp_path("build");
    let mut writer = SnapshotWriter::create(&tmp, &meta)?;
    for item in view.iterator_cf(cf(db, CF_SM_RECORDS)?, IteratorMode::Start) {
        let (key, value) = item?;
        writer.record(&key, &value)?;
    }
    writer.finish()?;
    let file = snapshots.publish(&tmp, &meta)?;
    tracing::info!(
        index = ?meta.last_log_id.as_ref().map(|id| id.index),
        path = %file.path().display(),
        "snapshot built"
    );
    Ok(Snapshot {
        meta,
        snapshot: file,
    })
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    type SnapshotData = SnapshotFile;

    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        let db = self.db.clone();
        let snapshots = self.snapshots.clone();
        let _timer = placement_metrics::catalog::SNAPSHOT_BUILD.start_timer();
        // Its own thread, which `build_snapshot` lowers in priority once the WAL is synced:
        // all members build a snapshot at about the same index, and reading and writing every
        // record took enough CPU at once on a small machine to stall writes for a moment
        // (write p99 over 200 ms in that second, about 20 ms with the thread niced).
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("placementd-snapshot".into())
            .spawn(move || {
                let _ = tx.send(build_snapshot(&db, &snapshots));
            })?;
        let snapshot = rx
            .await
            .map_err(|_| io::Error::other("the snapshot thread panicked"))??;
        Ok(snapshot)
    }
}

/// Rows handed from the reading thread to the building one at a time.
const LOAD_CHUNK: usize = 4096;

/// The read-ahead of the scan that rebuilds the state (RocksDB's own grows to 256 KiB).
const LOAD_READAHEAD: usize = 4 << 20;

/// One row of the record column family, decoded (a record) or as stored (a request-table row,
/// which the table decodes itself).
enum Row {
    Record(placement_core::Record),
    Request(Box<[u8]>, Box<[u8]>),
}

/// Rebuilds the state and the request table from the record column family, at start. Two
/// threads: this one reads and decodes the rows, a second builds the state from them (a
/// [`Rebuild`]). The halves cost about the same (at 100,000 providers and 1,000,000
/// consumers, 2.5 and 2.7 s of CPU), so overlapping them shortens a restart by nearly one
/// of them. The rows arrive in key order. Returns the state, the table and the number of
/// rows.
fn load_state(db: &DB) -> Result<(State, RequestTable, u64)> {
    let records = cf(db, CF_SM_RECORDS)?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Row>>(16);
    std::thread::scope(|scope| {
        let builder = scope.spawn(move || -> Result<(State, RequestTable)> {
            let mut state = Rebuild::new();
            let mut requests = RequestTable::default();
            for chunk in rx {
                for row in chunk {
                    match row {
                        Row::Record(record) => state.insert(record),
                        Row::Request(key, value) => requests.load(&key, &value)?,
                    }
                }
            }
            Ok((state.finish(), requests))
        });
        let mut count = 0u64;
        let read = (|| -> Result<()> {
            let mut chunk = Vec::with_capacity(LOAD_CHUNK);
            // One pass over every table file: read ahead in large steps, and leave the
            // block cache to the reads that come after (a whole-state scan would only evict).
            let mut opts = ReadOptions::default();
            opts.fill_cache(false);
            opts.set_readahead_size(LOAD_READAHEAD);
            for item in db.iterator_cf_opt(records, opts, IteratorMode::Start) {
                let (key, value) = item?;
                count += 1;
                chunk.push(if keys::is_request_key(&key) {
                    Row::Request(key, value)
                } else {
                    Row::Record(keys::decode_record(&key, &value)?)
                });
                if chunk.len() == LOAD_CHUNK {
                    let full = std::mem::replace(&mut chunk, Vec::with_capacity(LOAD_CHUNK));
                    if tx.send(full).is_err() {
                        // The builder stopped on an error: it is reported below.
                        return Ok(());
                    }
                }
            }
            if !chunk.is_empty() {
                let _ = tx.send(chunk);
            }
            Ok(())
        })();
        drop(tx);
        let built = builder
            .join()
            .map_err(|_| Error::Task("the state rebuild thread panicked".into()))?;
        read?;
        let (state, requests) = built?;
        Ok((state, requests, count))
    })
}

/// Adds one stored row of the record column family to the in-memory state or request table.
fn load_row(
    state: &mut Rebuild,
    requests: &mut RequestTable,
    key: &[u8],
    value: &[u8],
) -> Result<()> {
    if keys::is_request_key(key) {
        requests.load(key, value)
    } else {
        state.insert(keys::decode_record(key, value)?);
        Ok(())
    }
}

/// Copies, verifies and installs a snapshot; returns the rebuilt state and request table.
/// Blocking.
fn install_snapshot(
    db: &DB,
    snapshots: &SnapshotDir,
    meta: &SnapshotMeta,
    mut data: SnapshotFile,
) -> Result<(State, RequestTable)> {
    // Keep our own copy: the source belongs to the caller (the transport's receive file, or
    // another store's snapshot), and the installed file becomes our current snapshot.
    let tmp = snapshots.tmp_path("install");
    {
        use std::io::{Seek, Write};
        let source = data.file_mut();
        source.rewind()?;
        let mut out = BufWriter::new(PacedFile::new(std::fs::File::create(&tmp)?));
        io::copy(source, &mut out)?;
        out.flush()?;
        let file = out.into_inner().map_err(|e| Error::Io(e.into_error()))?;
        // Synced: this file is published as the current snapshot after the install.
        file.finish()?;
    }

    let mut reader = SnapshotReader::new(BufReader::new(std::fs::File::open(&tmp)?))?;
    if reader.meta != *meta {
        return Err(Error::corrupt(format!(
            "snapshot file is for {:?}, install asked for {:?}",
            reader.meta.last_log_id, meta.last_log_id
        )));
    }
    let cf_records = cf(db, CF_SM_RECORDS)?;
    let mut batch = WriteBatch::default();
    batch.delete_range_cf(cf_records, RECORD_KEY_START, RECORD_KEY_END);
    let mut state = Rebuild::new();
    let mut requests = RequestTable::default();
    while let Some((key, value)) = reader.next_record()? {
        load_row(&mut state, &mut requests, &key, &value)?;
        batch.put_cf(cf_records, key, value);
    }
    let state = state.finish();
    match &meta.last_log_id {
        Some(id) => put_meta(db, &mut batch, &APPLIED, id)?,
        None => batch.delete_cf(cf(db, APPLIED.cf)?, APPLIED.key),
    }
    put_meta(db, &mut batch, &MEMBERSHIP, &meta.last_membership)?;
    // Synced, one batch: the old records, the new ones and the applied id switch together,
    // and must be durable before openraft purges the log entries this snapshot replaces.
    db.write_opt(batch, &synced())?;
    snapshots.publish(&tmp, meta)?;
    Ok((state, requests))
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotData = SnapshotFile;
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        Ok((self.applied, self.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + OptionalSend,
    {
        // One database write per call, not per entry (openraft hands over what was committed
        // together: a group-commit batch): an unsynced write is a WAL append to the page cache
        // plus memtable inserts, and the per-call part of that was a large share of a
        // follower's apply cost. Clients are answered once the batch is written.
        let started = std::time::Instant::now();
        let mut batch = WriteBatch::default();
        let mut answers = Vec::new();
        let mut applied = 0u64;
        while let Some((entry, responder)) = entries.try_next().await? {
            applied += 1;
            let result = self.apply_entry_into(entry, &mut batch)?;
            if let Some(responder) = responder {
                answers.push((responder, result));
            }
        }
        if applied > 0 {
            self.put_applied(&mut batch)?;
        }
        if !batch.is_empty() {
            // Not synced: the durable Raft log replays these entries if the write is lost.
            self.db.write_opt(batch, &unsynced()).map_err(Error::from)?;
        }
        // Before any client is answered: a read after the write must see it.
        self.shared.publish(&self.working);
        self.since_meta_flush += applied;
        if self.since_meta_flush >= META_FLUSH_EVERY {
            self.since_meta_flush = 0;
            self.flush_meta();
        }
        placement_metrics::catalog::APPLY.observe_since(started);
        placement_metrics::catalog::APPLY_ENTRIES.observe(applied);
        for (responder, result) in answers {
            responder.send(result);
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.snapshot_builder()
    }

    async fn try_create_snapshot_builder(&mut self, _force: bool) -> Option<Self::SnapshotBuilder> {
        Some(self.snapshot_builder())
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: SnapshotFile,
    ) -> Result<(), io::Error> {
        tracing::info!(
            index = ?meta.last_log_id.as_ref().map(|id| id.index),
            "installing snapshot"
        );
        let _timer = placement_metrics::catalog::SNAPSHOT_INSTALL.start_timer();
        let db = self.db.clone();
        let snapshots = self.snapshots.clone();
        let owned_meta = meta.clone();
        let (state, requests) = tokio::task::spawn_blocking(move || {
            install_snapshot(&db, &snapshots, &owned_meta, snapshot)
        })
        .await
        .map_err(Error::from)??;
        self.working = state;
        self.shared.publish(&self.working);
        self.requests = requests;
        self.applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        let Some(mut file) = self.snapshots.open_current()? else {
            return Ok(None);
        };
        let meta = file.read_meta()?;
        Ok(Some(Snapshot {
            meta,
            snapshot: file,
        }))
    }
}

/// How much lower the snapshot thread's CPU priority is than the runtime's (a nice-value
/// increment; the candidates search threads in placement-api's `read_pool.rs` fall back to
/// the same when they cannot run under `SCHED_IDLE`). Not `SCHED_IDLE` here: a snapshot must
/// end, and the log is purged only up to the last one.
pub const SNAPSHOT_NICE: i32 = 10;

/// Raises this thread's nice value by [`SNAPSHOT_NICE`] (Linux: `setpriority` on a thread
/// id sets that thread's priority only). A refusal leaves it at normal priority.
fn lower_priority() {
    let tid = rustix::thread::gettid();
    let current = rustix::process::getpriority_process(Some(tid)).unwrap_or(0);
    if let Err(e) = rustix::process::setpriority_process(Some(tid), current + SNAPSHOT_NICE) {
        tracing::warn!(error = %e, "the snapshot is built at normal priority");
    }
}
