//! The openraft type configuration of placementd, and short names for its types.
//!
//! It lives here rather than in `placement-raft` because the state machine and the log store
//! implement openraft's traits for one concrete configuration: app data is a
//! [`LogPayload`] (one versioned, bincode-encoded Placement command per entry) and the
//! response is the [`ApplyResult`] that `placement_core::apply` produced. `placement-raft`
//! re-exports everything here; code above it should not need to name openraft types.

use placement_types::{ApplyResult, LogPayload};
use serde::{Deserialize, Serialize};

/// A Raft member id. Never reused: a wiped node rejoins under a new id.
pub type NodeId = u64;

/// What the cluster membership records about a member: where to reach it.
///
/// Stored in membership log entries and snapshots, so fields may only be added at the end
/// with a new log format version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerNode {
    /// The Placement REST address clients and load balancers use (`host:port`).
    pub api_addr: String,
    /// The peer address for Raft RPCs and write forwarding (`host:port`); empty while the
    /// node runs alone and has no peer port.
    pub peer_addr: String,
}

openraft::declare_raft_types!(
    /// placementd's Raft types: u64 node ids, [`PeerNode`] addresses, Placement commands in,
    /// apply results out; everything else is openraft's default (tokio, advanced leader ids).
    pub TypeConfig:
        D = LogPayload,
        R = ApplyResult,
        NodeId = NodeId,
        Node = PeerNode,
);

pub type LogId = openraft::type_config::alias::LogIdOf<TypeConfig>;
pub type Vote = openraft::type_config::alias::VoteOf<TypeConfig>;
pub type Entry = openraft::type_config::alias::EntryOf<TypeConfig>;
pub type Membership = openraft::Membership<NodeId, PeerNode>;
pub type StoredMembership = openraft::type_config::alias::StoredMembershipOf<TypeConfig>;
pub type SnapshotMeta = openraft::type_config::alias::SnapshotMetaOf<TypeConfig>;
pub type Snapshot =
    openraft::type_config::alias::SnapshotOf<TypeConfig, crate::snapshot::SnapshotFile>;
