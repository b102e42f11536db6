//! placement-raft: placementd's Raft member — openraft configured for Placement, its network,
//! and [`PlacementNode`], the handle the binary and the HTTP backend use.
//!
//! # DESIGN
//! - **openraft stays behind this crate.** Callers see [`PlacementNode`] (`write`,
//!   `read_barrier`, `with_state`, `status`, `shutdown`), [`NodeConfig`] and one [`Error`]
//!   enum; an openraft API change (the 0.10 line is pinned to an alpha) stays here and in
//!   `placement-storage`, which must implement openraft's storage traits.
//! - **Every write is one log entry** ([`placement_types::LogPayload`]) proposed with
//!   `client_write` on the leader (a follower forwards it there); the response is what the
//!   leader's `apply` produced. A read on the node that answered sees the write: it waited
//!   for its own apply (`write`), or the read's barrier waits for it
//!   (`write_as_for_barrier_reads`, the default with linearizable reads).
//! - **Reads are linearizable** through openraft's ReadIndex (`ensure_linearizable`): the
//!   leader confirms it still leads with a quorum and waits until it has applied its commit
//!   index before the caller reads local state.
//! - **Startup never serves stale state**: `open` returns only after a leader is known and
//!   `wait_for_recovery` has re-applied what was committed before the restart.
//! - **Tuning is named** (`config.rs`), with the reason for each value.
//!
//! - **Two ports per node.** The peer port ([`peer_router`], served by the binary) carries
//!   Raft RPCs, streamed snapshots, forwarded writes and read-index requests as bincode:
//!   each call a frame on one persistent multiplexed channel per member
//!   (`placement_net::channel`), snapshots over HTTP (`transport/`: `wire.rs` the messages,
//!   `client.rs` the client, `server.rs` the server, `link.rs` what carries the bytes). Any
//!   member serves writes (forwarded to the leader, deduplicated by request id) and
//!   linearizable reads (read index from the leader).
//! - **Several members run in one process** for tests ([`memory::MemoryNetwork`], given to
//!   each node as [`NodeConfig::peer_link`]): the peer client calls the other node's peer
//!   router directly, with dropped, delayed and partitioned messages on demand
//!   (`tests/in_process/`).
//! - **Static bootstrap** from an initial member list (`NodeConfig::member`); a node alone
//!   forms a one-node cluster and needs no peer port.
//!
//! - **Online membership changes** ([`PlacementNode::change_membership`]): a new node is
//!   added as a learner, caught up (by log or snapshot), then promoted to voter; a member is
//!   removed with one joint-consensus change. Any member accepts the request and forwards it
//!   to the leader.
//! - **Planned restarts hand leadership over** ([`PlacementNode::hand_over_leadership`])
//!   before shutdown, so clients wait a round trip instead of an election timeout.
//! - **State digests** ([`PlacementNode::digest`]) let operators and tests check that
//!   members hold identical state.
//!
//! - **The peer port trusts certificates, not messages** (`guard.rs`): with TLS, every
//!   connection is a member proved by its certificate from the cluster CA, which may speak
//!   only for itself; votes come only from voters, forwards only from members, and no term
//!   or index beyond sane bounds reaches openraft. Every body is bounded (`transport/server.rs`).
//!
//! Left out: revocation of a removed member's certificate (rotate the CA).

mod config;
mod forward;
pub mod guard;
mod node;
mod observe;
mod read_rounds;
mod transport;

pub use config::{
    raft_config, raft_config_with, CLUSTER_NAME, ELECTION_TIMEOUT_MAX_MS, ELECTION_TIMEOUT_MIN_MS,
    HEARTBEAT_INTERVAL_MS, INSTALL_SNAPSHOT_TIMEOUT_MS, LOG_KEPT_AFTER_SNAPSHOT,
    MAX_PAYLOAD_ENTRIES, PURGE_BATCH, REPLICATION_LAG_THRESHOLD, SNAPSHOT_EVERY_ENTRIES,
    WRITE_BATCH_ENTRIES,
};
pub use node::{
    NodeConfig, NodeStatus, PlacementNode, StateDigest, BACKUP_SNAPSHOT_TIMEOUT, HANDOVER_TIMEOUT,
    LEADER_CONTACT_TIMEOUT, MEMBERSHIP_TIMEOUT, READY_MAX_APPLY_LAG, READ_BARRIER_TIMEOUT,
    RETRY_BACKOFF, STARTUP_TIMEOUT, WRITE_TIMEOUT,
};
pub use observe::ReplicationLag;
pub use placement_storage::{dump, restore, DumpOptions, NodeId, PeerNode, Restored, TypeConfig};
pub use transport::memory;
pub use transport::{
    file_chunks, paths, peer_router, ChannelLink, Forwarded, HttpLink, Member, MembershipChange,
    MembershipOutcome, Peer, PeerBody, PeerClient, PeerConnection, PeerError, PeerLink,
    PeerNetwork, PeerReply, SnapshotHeader, TransportError, APPEND_TIMEOUT, CONNECT_TIMEOUT,
    MAX_APPEND_BYTES, MAX_CHANNEL_FRAME, MAX_FORWARDS_IN_FLIGHT, MAX_PEER_BODY, MAX_SNAPSHOT_BYTES,
    PEER_PROTOCOL_VERSION, PEER_REQUEST_TIMEOUT, POOL_IDLE_TIMEOUT, SNAPSHOT_CHUNK,
    SNAPSHOT_STALL_TIMEOUT,
};

/// Why the node could not serve a write or a read (domain rejections are not errors here:
/// they come back inside [`placement_types::ApplyResult`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The data directory or database failed.
    #[error(transparent)]
    Storage(#[from] placement_storage::Error),

    /// The Raft configuration is invalid (a bug in `config.rs`).
    #[error("raft configuration: {0}")]
    Config(String),

    /// This node is not the leader; `leader` is the one it knows of, if any.
    #[error("not the leader (leader: {leader:?}, at {leader_api_addr:?})")]
    NotLeader {
        leader: Option<NodeId>,
        leader_api_addr: Option<String>,
    },

    /// The leader cannot reach a quorum.
    #[error("no quorum: {0}")]
    NoQuorum(String),

    /// The write's log entry was replaced during a leader change: it may or may not be
    /// applied (a retry with the same request id is deduplicated by the state machine).
    #[error("write outcome unknown: {0}")]
    OutcomeUnknown(String),

    /// A deadline passed.
    #[error("timed out: {0}")]
    Timeout(String),

    /// Raft has stopped (shutdown, or a storage failure made it stop).
    #[error("raft stopped: {0}")]
    Stopped(String),

    /// Any other Raft failure.
    #[error("raft: {0}")]
    Raft(String),

    /// The leader could not be reached over the peer port, or failed to serve a forward.
    #[error("peer: {0}")]
    Peer(String),

    /// An administrative request that cannot be carried out as asked (a membership change
    /// that would empty the cluster, a node id already used with other addresses, ...).
    #[error("refused: {0}")]
    Refused(String),
}

impl Error {
    /// Whether the same request may be tried again (on the same or a new leader) before its
    /// deadline: leadership moved, a quorum or the leader is briefly unreachable, or the
    /// outcome is unknown (a retry is deduplicated by request id).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::NotLeader { .. }
                | Error::NoQuorum(_)
                | Error::OutcomeUnknown(_)
                | Error::Timeout(_)
                | Error::Peer(_)
        )
    }
}

#[cfg(test)]
mod formats;
#[cfg(test)]
mod tests;
