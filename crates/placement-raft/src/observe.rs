//! What the node reports to the metrics endpoint beyond [`PlacementNode::status`]: how far
//! each follower's replication trails the leader, and how often the leader changed.
//!
//! Leader changes are counted by a task watching openraft's metrics channel (started with
//! the node, ending when Raft stops): each time the node learns of a leader other than the
//! last one it saw, or of a leader again after a spell without one, the counter
//! `placementd_raft_leader_changes_total` goes up. A watch channel keeps only the latest
//! value, so two changes between two wake-ups count once; leader flapping still shows.

use openraft::async_runtime::WatchReceiver;
use openraft::ServerState;
use placement_metrics::catalog;
use placement_storage::NodeId;

use crate::node::PlacementNode;

/// On the leader: one follower (or learner) and how many log entries it still lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicationLag {
    pub follower: NodeId,
    /// The leader's last log index minus the follower's matched index (the whole log when
    /// nothing is matched yet).
    pub entries: u64,
}

/// Counts a finished proposal (the leader's `client_write`) as committed or failed.
pub(crate) fn proposal_done(committed: bool) {
    if committed {
        catalog::RAFT_PROPOSALS_COMMITTED.inc();
    } else {
        catalog::RAFT_PROPOSALS_FAILED.inc();
    }
}

impl PlacementNode {
    /// On the leader, each other member's replication lag; empty on a follower.
    pub fn replication_lag(&self) -> Vec<ReplicationLag> {
        let metrics = self.raft().metrics();
        let m = metrics.borrow_watched();
        if m.state != ServerState::Leader {
            return Vec::new();
        }
        let last = m.last_log_index.unwrap_or(0);
        let Some(replication) = &m.replication else {
            return Vec::new();
        };
        replication
            .iter()
            .filter(|(id, _)| **id != self.id())
            .map(|(id, matched)| ReplicationLag {
                follower: *id,
                entries: last.saturating_sub(matched.as_ref().map_or(0, |l| l.index)),
            })
            .collect()
    }

    /// RocksDB's SST sizes (`placement_storage::Store::sst_bytes`).
    pub fn sst_bytes(&self) -> Result<placement_storage::SstBytes, crate::Error> {
        Ok(self.store().sst_bytes()?)
    }

    /// Starts the task that counts leader changes (see the module doc) and keeps
    /// [`PlacementNode::sole_voter`] current.
    pub(crate) fn spawn_leader_watch(&self) {
        let mut metrics = self.raft().metrics();
        let (id, sole_voter) = (self.id(), self.sole_voter_flag());
        tokio::spawn(async move {
            let mut last: Option<NodeId> = None;
            loop {
                let (leader, alone) = {
                    let m = metrics.borrow_watched();
                    let alone = m.membership_config.membership().voter_ids().eq([id]);
                    (m.current_leader, alone)
                };
                sole_voter.store(alone, std::sync::atomic::Ordering::Relaxed);
                if leader.is_some() && leader != last {
                    catalog::RAFT_LEADER_CHANGES.inc();
                }
                last = leader;
                if metrics.changed().await.is_err() {
                    return;
                }
            }
        });
    }
}
