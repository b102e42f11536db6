//! Maintenance: snapshots on demand, backups, the state digest members compare, and
//! shutdown.

use openraft::async_runtime::WatchReceiver;
use openraft::ServerState;
use placement_core::State;

use crate::Error;

use super::{PlacementNode, BACKUP_SNAPSHOT_TIMEOUT};

impl PlacementNode {
    /// Resolves when Raft stops for good — a storage failure it cannot continue after, or a
    /// shutdown — with the reason. The binary exits on it so a supervisor can restart the
    /// node instead of leaving a process that answers every request with 503.
    pub async fn stopped(&self) -> String {
        let mut metrics = self.raft.metrics();
        loop {
            {
                let m = metrics.borrow_watched();
                if let Err(e) = &m.running_state {
                    return e.to_string();
                }
                if m.state == ServerState::Shutdown {
                    return "raft was shut down".to_string();
                }
            }
            if metrics.changed().await.is_err() {
                return "raft metrics channel closed".to_string();
            }
        }
    }

    /// Builds a snapshot now (and lets openraft purge the log it covers). Returns once the
    /// snapshot is requested; it is built in the background.
    pub async fn trigger_snapshot(&self) -> Result<(), Error> {
        self.raft
            .trigger()
            .snapshot()
            .await
            .map_err(|e| Error::Stopped(e.to_string()))
    }

    /// A digest of the state machine: SHA-256 over every stored record in a deterministic
    /// order, with the number of records. Two members whose digests are equal hold the same
    /// Placement state. Taken after a read barrier, so it covers every write acknowledged
    /// before the call; compare members while no writes are in flight.
    pub async fn digest(&self) -> Result<StateDigest, Error> {
        self.read_barrier().await?;
        let applied_index = self.status().applied_index;
        let state = self.state.snapshot();
        let (sha256, records) = tokio::task::spawn_blocking(move || state_digest(&state))
            .await
            .map_err(|e| Error::Stopped(format!("digest task: {e}")))??;
        Ok(StateDigest {
            applied_index,
            records,
            sha256,
        })
    }

    /// A snapshot for a backup that covers every write acknowledged before the call: after a
    /// read barrier, builds a new snapshot if the current one is older than what this node
    /// has applied, and returns the current one. Its file stays readable while open, even if
    /// a newer snapshot replaces it meanwhile.
    pub async fn backup_snapshot(&self) -> Result<placement_storage::Snapshot, Error> {
        self.read_barrier().await?;
        let status = self.status();
        let applied = status.applied_index;
        if status.snapshot_index < applied {
            self.trigger_snapshot().await?;
            self.raft
                .wait(Some(BACKUP_SNAPSHOT_TIMEOUT))
                .metrics(
                    |m| m.snapshot.as_ref().map(|id| id.index) >= applied,
                    "snapshot for a backup",
                )
                .await
                .map_err(|e| Error::Timeout(format!("snapshot for a backup: {e}")))?;
        }
        self.raft
            .get_snapshot()
            .await
            .map_err(|e| Error::Raft(format!("reading the current snapshot: {e}")))?
            .ok_or_else(|| Error::Raft("no snapshot was built".into()))
    }

    /// Stops Raft (in-flight writes finish or fail) and makes all written data durable.
    pub async fn shutdown(&self) -> Result<(), Error> {
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "raft core ended with an error");
        }
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.sync())
            .await
            .map_err(|e| Error::Stopped(format!("sync task: {e}")))??;
        tracing::info!(node_id = self.id, "raft node stopped");
        Ok(())
    }
}

/// What [`PlacementNode::digest`] reports.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StateDigest {
    /// The node's applied log index when the digest was taken.
    pub applied_index: Option<u64>,
    /// Stored records (resource classes, traits, providers, consumers).
    pub records: u64,
    /// Lower-case hex SHA-256 of the records' encodings in [`State::records`] order.
    pub sha256: String,
}

/// SHA-256 over `state`'s records: for each, a tag byte, the length of its bincode encoding
/// (u64 big-endian) and the encoding, so no two different sequences hash the same input.
pub(super) fn state_digest(state: &State) -> Result<(String, u64), Error> {
    use placement_core::Record;
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    let mut records = 0u64;
    for record in state.records() {
        let (tag, bytes) = match &record {
            Record::ResourceClass(rc) => (1u8, placement_types::encode(rc)),
            Record::Trait(t) => (2, placement_types::encode(t)),
            Record::Provider(p) => (3, placement_types::encode(p)),
            Record::Consumer(c) => (4, placement_types::encode(c)),
        };
        let bytes = bytes.map_err(|e| Error::Stopped(format!("encoding a record: {e}")))?;
        hasher.update([tag]);
        hasher.update((bytes.len() as u64).to_be_bytes());
        hasher.update(&bytes);
        records += 1;
    }
    let hex = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((hex, records))
}
