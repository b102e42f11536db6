//! placement-storage: a node's durable state on RocksDB — the Raft log and vote
//! ([`LogStore`]) and the replicated state machine ([`StateMachine`]) with its snapshots.
//!
//! # DESIGN
//! - **One RocksDB per node**, four column families (`keys.rs`): the Raft log, Raft metadata
//!   (vote, committed, last purged, node id, format), state-machine records and
//!   state-machine metadata (applied log id, membership). One database means one WAL, so a
//!   single `WriteBatch` is atomic across the records and the applied id, and the WAL's
//!   ordering lets unsynced writes lean on later synced ones.
//! - **Sync exactly what Raft relies on** (`log_store.rs`): votes, appends (one fsync per
//!   batch = group commit), truncation and purge are synced before they are acknowledged.
//!   State-machine applies are not: they are re-derived from the durable log, from the
//!   applied id persisted in the same batch. Snapshot build fsyncs the WAL before the log can
//!   be purged; snapshot install is one synced batch.
//! - **RocksDB is the source of truth; memory is a cache.** [`placement_core::State`] (with
//!   its derived indexes) is rebuilt from the records at start and after a snapshot install;
//!   `apply` writes to RocksDB first and then commits the same changes in memory.
//! - **Binary everywhere**: keys of a tag byte and fixed-width big-endian ids or 16-byte
//!   uuids that sort as numbers (custom resource classes and traits: the tag and their
//!   UTF-8 name; `keys.rs` has every layout); bincode values
//!   (log entries carry the versioned [`placement_types::LogPayload`]); snapshots are a
//!   checksummed stream of the stored records (`snapshot.rs`).
//! - **Tested with openraft's own storage suite** on real RocksDB in temp dirs, plus apply /
//!   restart / snapshot round trips (`tests.rs`).
//!
//! The openraft type configuration ([`TypeConfig`]) is declared here because these storage
//! types implement openraft's traits for that one configuration; `placement-raft` re-exports
//! it. The state machine also remembers recent request ids and their outcomes (`dedup.rs`), so
//! a write forwarded twice across a leader change is applied once. A backup (a snapshot
//! file) is restored into an empty data directory as the first member of a new cluster
//! (`restore.rs`). Left out: the peer
//! transport for snapshots (placement-raft) and streaming installs for states larger than
//! memory.

mod dedup;
mod dump;
mod error;
mod keys;
mod log_store;
mod metrics;
mod restore;
mod snapshot;
mod state_machine;
mod store;
mod types;

#[cfg(test)]
mod formats;
#[cfg(test)]
mod tests;

pub use dedup::DEDUP_WINDOW_ENTRIES;
pub use dump::{dump, DumpOptions};
pub use error::{Error, Result};
pub use log_store::LogStore;
pub use metrics::SstBytes;
pub use restore::{restore, Restored};
pub use snapshot::{SnapshotFile, SNAPSHOT_FORMAT};
pub use state_machine::{SharedState, SnapshotBuilder, StateMachine};
pub use store::Store;
pub use types::{
    Entry, LogId, Membership, NodeId, PeerNode, Snapshot, SnapshotMeta, StoredMembership,
    TypeConfig, Vote,
};
