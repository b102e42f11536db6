//! Raft tuning: every knob placementd sets on openraft, named and explained.
//!
//! Values assume a LAN (sub-millisecond RTT) and modest, possibly shared machines: timeouts
//! are generous so that a busy node does not trigger needless elections, and snapshots are
//! taken often enough that a restarted or new member catches up from a snapshot plus a short
//! log tail rather than replaying history.

use std::sync::Arc;

use openraft::{Config, SnapshotPolicy};

use crate::Error;

/// Name of the Raft cluster (shown in openraft's logs and metrics).
pub const CLUSTER_NAME: &str = "placementd";

/// A leader sends heartbeats this often (ms). Ten per election timeout: a follower only
/// starts an election after missing about ten in a row.
pub const HEARTBEAT_INTERVAL_MS: u64 = 100;

/// A follower that hears nothing from a leader for a random time in
/// `[ELECTION_TIMEOUT_MIN_MS, ELECTION_TIMEOUT_MAX_MS)` starts an election. One second is
/// long enough for a loaded 2-core node to miss a few heartbeats without disruption and
/// short enough that clients see a failover in a couple of seconds. (A one-node cluster does
/// not wait for it: it is elected at once at start, see `node/bootstrap.rs`.)
pub const ELECTION_TIMEOUT_MIN_MS: u64 = 1_000;
pub const ELECTION_TIMEOUT_MAX_MS: u64 = 2_000;

/// Build a snapshot after this many entries were applied since the last one. A snapshot
/// writes the whole state (every record) and every member builds its own, so its cost per
/// entry is (records / interval): at 10 000 entries, with ~50 000 records, the 3-node write
/// benchmark spent a fifth of the leader's CPU building snapshots. Restart time does not
/// depend on it (the applied state is persisted with every entry; a restart replays only what
/// was not yet applied), so the interval only bounds the log on disk (~100 000 entries of a
/// few hundred bytes) and how far a follower may lag before it needs a snapshot.
pub const SNAPSHOT_EVERY_ENTRIES: u64 = 100_000;

/// Entries kept in the log even though a snapshot covers them, so a follower that lags a
/// little catches up from the log instead of a full snapshot transfer.
pub const LOG_KEPT_AFTER_SNAPSHOT: u64 = 1_000;

/// Purge covered log entries in batches of at least this many (fewer, larger range deletes).
pub const PURGE_BATCH: u64 = 256;

/// A follower more than this many entries behind is sent a snapshot instead of entries: the
/// floor of the threshold, which [`raft_config_with`] raises to twice the snapshot interval
/// (openraft's rule: it must exceed the entries between snapshots, or a snapshot may not
/// close the gap; 200,000 with the default [`SNAPSHOT_EVERY_ENTRIES`]).
pub const REPLICATION_LAG_THRESHOLD: u64 = 20_000;

/// Entries per AppendEntries RPC to a follower.
pub const MAX_PAYLOAD_ENTRIES: u64 = 512;

/// Time allowed to send and install a whole snapshot on a follower (ms).
pub const INSTALL_SNAPSHOT_TIMEOUT_MS: u64 = 60_000;

/// Client writes openraft folds into one log append (and thus one fsync): the group-commit
/// batch size. Large, because a synced write costs the same for 1 entry or 1 000.
pub const WRITE_BATCH_ENTRIES: u64 = 4_096;

/// openraft's configuration for a placementd node, validated.
pub fn raft_config() -> Result<Arc<Config>, Error> {
    raft_config_with(SNAPSHOT_EVERY_ENTRIES)
}

/// [`raft_config`] with another snapshot interval (an operator knob, `--snapshot-every`;
/// tests use a small one to exercise log compaction and snapshot catch-up). The log kept
/// after a snapshot shrinks with it, so a small interval really compacts.
pub fn raft_config_with(snapshot_every: u64) -> Result<Arc<Config>, Error> {
    if snapshot_every == 0 {
        return Err(Error::Config("snapshot interval must be at least 1".into()));
    }
    let config = Config {
        cluster_name: CLUSTER_NAME.to_string(),
        heartbeat_interval: HEARTBEAT_INTERVAL_MS,
        election_timeout_min: ELECTION_TIMEOUT_MIN_MS,
        election_timeout_max: ELECTION_TIMEOUT_MAX_MS,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(snapshot_every),
        max_in_snapshot_log_to_keep: LOG_KEPT_AFTER_SNAPSHOT.min(snapshot_every / 10),
        purge_batch_size: PURGE_BATCH.min(snapshot_every),
        replication_lag_threshold: REPLICATION_LAG_THRESHOLD.max(2 * snapshot_every),
        max_payload_entries: MAX_PAYLOAD_ENTRIES,
        install_snapshot_timeout: INSTALL_SNAPSHOT_TIMEOUT_MS,
        max_append_entries: Some(WRITE_BATCH_ENTRIES),
        api_batch_capacity: WRITE_BATCH_ENTRIES,
        // A restarted leader goes through a normal election (standard Raft): applied state is
        // not fsynced on every apply, so leadership must be re-earned, not restored.
        enable_leader_restore: Some(false),
        // Pre-vote: a node that cannot win (partitioned, restarted, or removed from the
        // membership, whose votes the peer port refuses) does not raise its term, so it
        // cannot disrupt a healthy leader when it comes back (`guard.rs`).
        enable_pre_vote: Some(true),
        ..Config::default()
    };
    let config = config
        .validate()
        .map_err(|e| Error::Config(e.to_string()))?;
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    #[test]
    fn config_is_valid() {
        assert!(super::raft_config().is_ok());
        assert!(super::raft_config_with(100).is_ok());
        assert!(super::raft_config_with(0).is_err());
    }
}
