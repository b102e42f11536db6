//! The peer wire: the paths of the peer port and the messages members exchange on it, shared
//! by the client (`client.rs`) and the server (`server.rs`). Pinned by `golden/peer.txt`
//! (`formats.rs`): a change needs a [`PEER_PROTOCOL_VERSION`] bump.
//!
//! Every call is a `POST` to a path of a member's peer port (paths in [`paths`]) whose body
//! is the bincode encoding (`placement_types::encode`) of the request and whose `200`
//! answer body is the bincode encoding of a `Result<response, PeerError>`. What carries the
//! call is only framing: a frame on the persistent channel to the member
//! (`placement_net::channel`, `channel.rs`), or, for snapshot streams and members that do
//! not take channels, an HTTP/1.1 request on a pooled keep-alive connection (`http.rs`). The
//! peer port serves both from one router. Any status but 200, an answer larger than
//! [`crate::MAX_PEER_BODY`] or one that does not decode is a transport error.

use placement_storage::{NodeId, PeerNode, SnapshotMeta, Vote};
use placement_types::{Origin, Request};
use serde::{Deserialize, Serialize};

/// The peer port's paths.
pub mod paths {
    pub const APPEND: &str = "/raft/append";
    pub const VOTE: &str = "/raft/vote";
    pub const PRE_VOTE: &str = "/raft/pre-vote";
    pub const SNAPSHOT: &str = "/raft/snapshot";
    /// A follower forwards a client write to the leader (one per call: what a follower of an
    /// older version sends).
    pub const WRITE: &str = "/cluster/write";
    /// A follower forwards a batch of client writes to the leader (`forward.rs`).
    pub const WRITES: &str = "/cluster/writes";
    /// A follower asks the leader for a read index (ReadIndex for follower reads).
    pub const READ_INDEX: &str = "/cluster/read-index";
    /// The leader asks the node it hands leadership to to start an election at once.
    pub const TRANSFER_LEADER: &str = "/raft/transfer-leader";
    /// A member forwards a membership change (add or remove a node) to the leader.
    pub const MEMBERSHIP: &str = "/cluster/membership";
}

/// The encoding of the messages on the peer port (bincode of the types below and of
/// openraft's RPCs), pinned by `golden/peer.txt`. Bump it on any change, and keep a build
/// that reads both the old and the new messages first, so that a rolling upgrade never
/// has members that cannot understand each other.
pub const PEER_PROTOCOL_VERSION: u32 = 1;

/// Why the peer could not serve a forwarded write or a read index; both are retried by the
/// caller (on the new leader) until its deadline.
#[derive(Debug, Clone, Serialize, Deserialize, thiserror::Error)]
pub enum PeerError {
    #[error("peer is not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<NodeId> },
    #[error("peer unavailable: {0}")]
    Unavailable(String),
    /// The leader refused the request as invalid (not retried).
    #[error("{0}")]
    Refused(String),
}

/// A change of the cluster's membership, as an operator asks for it (admin API) and as a
/// member forwards it to the leader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MembershipChange {
    /// Add node `id` with these addresses: first as a learner that catches up, then as a voter.
    Add { id: NodeId, node: PeerNode },
    /// Remove node `id` (voter or learner) from the cluster.
    Remove { id: NodeId },
}

/// One member of the cluster as the membership records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub id: NodeId,
    pub api_addr: String,
    pub peer_addr: String,
    /// A voter (counts for quorums) rather than a learner (only receives the log).
    pub voter: bool,
}

/// What a membership change did: whether the membership changed (adding a present voter or
/// removing an absent node changes nothing) and the membership afterwards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipOutcome {
    pub changed: bool,
    pub members: Vec<Member>,
}

/// A client write a follower forwards to the leader, with the caller it served (for the
/// leader's log; the forwarding node itself is known from its certificate).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forwarded {
    pub request: Request,
    pub origin: Origin,
}

/// A member to call: its id and the peer address the membership records for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub id: NodeId,
    pub addr: String,
}

/// What precedes a snapshot file's bytes in a snapshot body.
#[derive(Debug, Serialize, Deserialize)]
pub struct SnapshotHeader {
    pub vote: Vote,
    pub meta: SnapshotMeta,
    /// Length of the file that follows, checked by the receiver.
    pub len: u64,
}
