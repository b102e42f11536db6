//! [`PlacementNode`]: one Raft member with its storage, as the rest of placementd sees it.
//!
//! Lifecycle: [`PlacementNode::start`] opens the data directory and starts Raft on it; on a
//! fresh directory it bootstraps (see below). The caller then serves the peer port (other
//! members need it to elect a leader) and calls [`PlacementNode::wait_ready`], which returns
//! only once the node knows a leader and has re-applied everything committed before a
//! restart (so it never serves older state than it served before). [`PlacementNode::open`]
//! does both for a node without peers. [`PlacementNode::shutdown`] stops Raft and syncs the
//! database.
//!
//! # Bootstrap
//! With no initial cluster, a fresh directory forms a one-node cluster of itself. With an
//! initial cluster (etcd's `--initial-cluster`, the same list given to every member), only
//! the member with the lowest id initializes the membership, and only on a fresh store; the
//! others wait to be contacted by the leader. Node ids are bound to their data directory and
//! never reused: a wiped node must rejoin under a new id.
//!
//! # Writes and reads on any member
//! [`PlacementNode::write`] proposes locally on the leader; on a follower it forwards the
//! already-built request to the leader's peer port and relays the outcome. Until
//! [`WRITE_TIMEOUT`] it retries on whichever member leads next; a retry carries the same
//! request id, and the state machine applies an id only once (`placement-storage`'s
//! `dedup.rs`). A call to a leader is abandoned as soon as this node learns that another
//! member leads, and retried there (`writes.rs::on_leader`, `unless_leader_moves`).
//! [`PlacementNode::read_barrier`] is ReadIndex everywhere: a follower asks the leader for
//! its read index over the peer port (the leader confirms its leadership with a quorum
//! first), waits until it has applied that far, then reads locally. Concurrent reads share
//! one read index round (`read_rounds.rs`).
//!
//! Every call that waits on the cluster has a deadline; a timeout is reported as an error the
//! API turns into 503, never a hang.
//!
//! # Files
//! - this file: [`PlacementNode`], its configuration, status and accessors;
//! - `bootstrap.rs`: `open`, `start`, `wait_ready`;
//! - `writes.rs`: write routing (local, forwarded, retried) and read barriers;
//! - `membership.rs`: members, adding and removing them, leadership hand-over and transfer;
//! - `maintenance.rs`: snapshots on demand, backups, the state digest, shutdown.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use openraft::{Raft, ServerState};
use placement_core::State;
use placement_net::{ConnInfo, TlsSource};
use placement_storage::{NodeId, PeerNode, SharedState, StateMachine, Store, TypeConfig};

use crate::config::{ELECTION_TIMEOUT_MAX_MS, SNAPSHOT_EVERY_ENTRIES};
use crate::forward::Forwarder;
use crate::guard::{MembershipView, Refusal, Sender};
use crate::read_rounds::ReadRounds;
use crate::transport::{Peer, PeerClient, PeerLink};
use crate::Error;

mod bootstrap;
mod maintenance;
mod membership;
mod writes;

pub use maintenance::StateDigest;

/// How long [`PlacementNode::open`] waits for a leader and for recovery by default.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a write may wait to be committed and applied before the client is told the
/// service is unavailable (the write may still be applied later: Placement clients retry
/// with generations, which makes a duplicate harmless).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a read may wait for the leader to confirm its leadership with a quorum.
pub const READ_BARRIER_TIMEOUT: Duration = Duration::from_secs(5);

/// Pause between attempts of a write or read barrier while no leader is known or the leader
/// just changed: a fraction of a heartbeat, so a failover is noticed quickly without
/// spinning.
pub const RETRY_BACKOFF: Duration = Duration::from_millis(50);

/// How long a leader that is shutting down waits for the node it hands leadership to to
/// take over (well under an election timeout, which is what a handover saves).
pub const HANDOVER_TIMEOUT: Duration = Duration::from_secs(3);

/// How long a membership change may take: adding a node waits until it has caught up
/// (a snapshot install of a large state included) before it becomes a voter.
pub const MEMBERSHIP_TIMEOUT: Duration = Duration::from_secs(120);

/// How long a backup may wait for a fresh snapshot to be built.
pub const BACKUP_SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(120);

/// A leader that no quorum has acknowledged for this long is reported unready: by then the
/// followers it lost have waited out their election timeout and may have elected another.
pub const LEADER_CONTACT_TIMEOUT: Duration = Duration::from_millis(ELECTION_TIMEOUT_MAX_MS);

/// A member is ready (`/readyz`) when its applied index trails its committed index by at
/// most this many entries.
pub const READY_MAX_APPLY_LAG: u64 = 1_000;

/// How to open a node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The data directory (created if missing).
    pub data_dir: PathBuf,
    /// This node's id; bound to the data directory on first start.
    pub node_id: NodeId,
    /// The client API address recorded in the membership (`host:port`).
    pub api_addr: String,
    /// This node's peer address (`host:port`) recorded in a one-node membership; empty when
    /// the node serves no peer port.
    pub peer_addr: String,
    /// The initial members (id → addresses), the same on every member; empty for a node
    /// that forms a one-node cluster by itself.
    pub initial_cluster: BTreeMap<NodeId, PeerNode>,
    /// Deadline for the leader election and recovery in [`PlacementNode::open`].
    pub startup_timeout: Duration,
    /// Build a snapshot (and compact the log) after this many applied entries.
    pub snapshot_every: u64,
    /// Join a running cluster (etcd's `--initial-cluster-state existing`): a fresh data
    /// directory never initializes a membership; the node waits until a member adds it.
    pub join: bool,
    /// The peer port's TLS: members are called over mutual TLS with it. `None`: plaintext.
    pub peer_tls: Option<Arc<TlsSource>>,
    /// What carries calls to other members. `None`: HTTP over TCP (with `peer_tls`); tests
    /// give a [`MemoryNetwork`](crate::memory::MemoryNetwork) link to run members in-process.
    pub peer_link: Option<Arc<dyn PeerLink>>,
}

impl NodeConfig {
    /// A node that forms (or rejoins) a one-node cluster.
    pub fn single(
        data_dir: impl Into<PathBuf>,
        node_id: NodeId,
        api_addr: impl Into<String>,
    ) -> Self {
        NodeConfig {
            data_dir: data_dir.into(),
            node_id,
            api_addr: api_addr.into(),
            peer_addr: String::new(),
            initial_cluster: BTreeMap::new(),
            startup_timeout: STARTUP_TIMEOUT,
            snapshot_every: SNAPSHOT_EVERY_ENTRIES,
            join: false,
            peer_tls: None,
            peer_link: None,
        }
    }

    /// A member of a cluster bootstrapped from `initial_cluster` (which must name `node_id`).
    pub fn member(
        data_dir: impl Into<PathBuf>,
        node_id: NodeId,
        initial_cluster: BTreeMap<NodeId, PeerNode>,
    ) -> Result<Self, Error> {
        let me = initial_cluster.get(&node_id).cloned().ok_or_else(|| {
            Error::Config(format!("node {node_id} is not in the initial cluster"))
        })?;
        Ok(NodeConfig {
            data_dir: data_dir.into(),
            node_id,
            api_addr: me.api_addr,
            peer_addr: me.peer_addr,
            initial_cluster,
            startup_timeout: STARTUP_TIMEOUT,
            snapshot_every: SNAPSHOT_EVERY_ENTRIES,
            join: false,
            peer_tls: None,
            peer_link: None,
        })
    }
}

/// A point-in-time view of the node's Raft status (for health and readiness checks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    pub id: NodeId,
    pub leader: Option<NodeId>,
    pub is_leader: bool,
    pub term: u64,
    pub last_log_index: Option<u64>,
    pub committed_index: Option<u64>,
    pub applied_index: Option<u64>,
    /// The last log index covered by a snapshot.
    pub snapshot_index: Option<u64>,
    /// The last log index purged from the log (covered by the snapshot).
    pub purged_index: Option<u64>,
    /// The node is a voter or learner of the current membership.
    pub member: bool,
    /// Voters in the current membership.
    pub voters: usize,
    /// On a leader: time since a quorum last acknowledged it (`None` on a follower, or before
    /// the first acknowledgement).
    pub quorum_ack_age: Option<Duration>,
    /// The node has stopped (shutdown or a storage failure).
    pub stopped: bool,
}

impl NodeStatus {
    /// Ready for client traffic: a running member that knows a leader and has applied close
    /// to what it knows is committed; and, on the leader of a multi-voter cluster, one a
    /// quorum acknowledged within [`LEADER_CONTACT_TIMEOUT`] (an isolated leader cannot
    /// commit or confirm a read, so it must leave the load balancer's rotation like the
    /// isolated followers do once their election timeout passes).
    pub fn ready(&self) -> bool {
        let lag = self
            .committed_index
            .unwrap_or(0)
            .saturating_sub(self.applied_index.unwrap_or(0));
        let in_touch = !self.is_leader
            || self.voters <= 1
            || self
                .quorum_ack_age
                .is_some_and(|age| age <= LEADER_CONTACT_TIMEOUT);
        !self.stopped
            && self.member
            && self.leader.is_some()
            && lag <= READY_MAX_APPLY_LAG
            && in_touch
    }
}

/// A running Raft member and its state machine.
pub struct PlacementNode {
    id: NodeId,
    raft: Raft<TypeConfig, StateMachine>,
    state: SharedState,
    store: Store,
    peers: PeerClient,
    /// Writes forwarded to the leader, batched (`forward.rs`).
    forwarder: Forwarder,
    /// Read index rounds shared by concurrent reads (`read_rounds.rs`).
    reads: ReadRounds,
    /// Whether this node is the only voter, kept by the leader watch (`observe.rs`): its
    /// reads then need no quorum round, so there is nothing for them to share. Only a
    /// shortcut: the barrier is correct either way.
    sole_voter: Arc<AtomicBool>,
    /// One snapshot is received at a time.
    snapshot_slot: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for PlacementNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlacementNode")
            .field("id", &self.id)
            .field("data_dir", &self.store.path())
            .finish_non_exhaustive()
    }
}

impl PlacementNode {
    /// `leader` and its peer address in the current membership.
    fn peer_of(&self, leader: NodeId) -> Option<Peer> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow_watched();
        m.membership_config
            .membership()
            .get_node(&leader)
            .map(|n| n.peer_addr.clone())
            .filter(|a| !a.is_empty())
            .map(|addr| Peer { id: leader, addr })
    }

    /// This node's current vote.
    pub(crate) fn current_vote(&self) -> placement_storage::Vote {
        self.raft.metrics().borrow_watched().vote
    }

    /// The open store (for the metrics in `observe.rs`).
    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// The data directory.
    pub fn data_dir(&self) -> &std::path::Path {
        self.store.path()
    }

    /// A permit to receive a snapshot, if no other is being received.
    pub(crate) fn snapshot_receive_slot(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.snapshot_slot.clone().try_acquire_owned().ok()
    }

    /// Who the current membership names (for the peer port's checks, `guard.rs`).
    pub fn membership_view(&self) -> MembershipView {
        let metrics = self.raft.metrics();
        let m = metrics.borrow_watched();
        let membership = m.membership_config.membership();
        MembershipView {
            voters: membership.voter_ids().collect(),
            members: membership.nodes().map(|(id, _)| *id).collect(),
        }
    }

    /// Whether the sender of an admin request (its connection's certificate) may use the
    /// admin API: `admin`, or a member node; anyone on a plaintext port.
    pub fn authorize_admin(&self, conn: Option<&ConnInfo>) -> Result<(), Refusal> {
        self.membership_view().admit_admin(&Sender::of(conn))
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Whether this node is the only voter, as the leader watch last saw it.
    pub(crate) fn sole_voter(&self) -> bool {
        self.sole_voter.load(Ordering::Relaxed)
    }

    pub(crate) fn sole_voter_flag(&self) -> Arc<AtomicBool> {
        self.sole_voter.clone()
    }

    /// Runs `f` on the current state (one applied prefix of the log). It reads a snapshot:
    /// apply goes on meanwhile.
    pub fn with_state<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&self.state.snapshot())
    }

    /// The current state, to keep and read for as long as needed (it does not change;
    /// later writes publish new states).
    pub fn state(&self) -> Arc<State> {
        self.state.snapshot()
    }

    /// The node's Raft status right now.
    pub fn status(&self) -> NodeStatus {
        let metrics = self.raft.metrics();
        let m = metrics.borrow_watched();
        NodeStatus {
            id: self.id,
            leader: m.current_leader,
            is_leader: m.state == ServerState::Leader,
            term: m.current_term,
            last_log_index: m.last_log_index,
            committed_index: m.local_committed.as_ref().map(|id| id.index),
            applied_index: m.last_applied.as_ref().map(|id| id.index),
            snapshot_index: m.snapshot.as_ref().map(|id| id.index),
            purged_index: m.purged.as_ref().map(|id| id.index),
            member: m
                .membership_config
                .membership()
                .get_node(&self.id)
                .is_some(),
            voters: m.membership_config.membership().voter_ids().count(),
            quorum_ack_age: m
                .last_quorum_acked
                .as_ref()
                .map(|at| openraft::Instant::elapsed(&**at)),
            stopped: m.running_state.is_err() || m.state == ServerState::Shutdown,
        }
    }
}
