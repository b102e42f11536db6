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
//! `dedup.rs`). [`PlacementNode::read_barrier`] is ReadIndex everywhere: a follower asks the
//! leader for its read index over the peer port (the leader confirms its leadership with a
//! quorum first), waits until it has applied that far, then reads locally.
//!
//! Every call that waits on the cluster has a deadline; a timeout is reported as an error the
//! API turns into 503, never a hang.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use openraft::errors::{
    ChangeMembershipError, ClientWriteError, ForwardToLeader, LinearizableReadError, RaftError,
};
use openraft::{ChangeMembers, Raft, ReadPolicy, ServerState};
use placement_core::State;
use placement_net::{ConnInfo, TlsSource};
use placement_storage::{NodeId, PeerNode, SharedState, StateMachine, Store, TypeConfig};
use placement_types::{ApplyResult, LogPayload, Origin, Request};

use crate::config::{raft_config_with, ELECTION_TIMEOUT_MAX_MS, SNAPSHOT_EVERY_ENTRIES};
use crate::forward::Forwarder;
use crate::guard::{MembershipView, Refusal, Sender};
use crate::network::{
    Forwarded, Member, MembershipChange, MembershipOutcome, Peer, PeerClient, PeerError,
    PeerNetwork, TransportError,
};
use crate::Error;

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
    /// Opens the data directory, starts Raft, initializes a one-node cluster on a fresh
    /// directory, and waits (up to `startup_timeout`) until a leader is known and every entry
    /// committed before a restart is applied again. For a node without peers; a cluster
    /// member uses [`Self::start`], serves its peer port, then [`Self::wait_ready`].
    pub async fn open(config: NodeConfig) -> Result<Self, Error> {
        let timeout = config.startup_timeout;
        let node = Self::start(config).await?;
        node.wait_ready(timeout).await?;
        Ok(node)
    }

    /// Opens the data directory and starts Raft; on a fresh directory, bootstraps as the
    /// module doc describes. Does not wait for a leader.
    pub async fn start(config: NodeConfig) -> Result<Self, Error> {
        let id = config.node_id;
        if !config.initial_cluster.is_empty() && !config.initial_cluster.contains_key(&id) {
            return Err(Error::Config(format!(
                "node {id} is not in the initial cluster"
            )));
        }
        let dir = config.data_dir.clone();
        // Opening RocksDB and rebuilding the in-memory state are blocking and may take a while.
        let (store, sm) = tokio::task::spawn_blocking(move || -> Result<_, Error> {
            let store = Store::open(&dir)?;
            store.bind_node_id(id)?;
            // A vote beyond the sane bounds can only come from a forged vote request that an
            // older version granted; openraft would overflow the term at the next election
            // and panic, at every restart. Refuse to start instead, saying what to do.
            if let Some(vote) = store.vote()? {
                if let Err(refusal) = crate::guard::sane_vote(&vote, "stored vote") {
                    return Err(Error::Refused(format!(
                        "{refusal}: the data directory {} holds a vote no election can \
                         follow (granted to a forged vote request before this version \
                         checked terms). Restore this node from a backup, or remove it from \
                         the cluster and add it back under a new id",
                        dir.display()
                    )));
                }
            }
            let sm = store.state_machine()?;
            Ok((store, sm))
        })
        .await
        .map_err(|e| Error::Stopped(format!("storage open task: {e}")))??;
        let state = sm.state();

        let peers = PeerClient::new(config.peer_tls.clone())?;
        let network = PeerNetwork::new(peers.clone());
        let raft = Raft::new(
            id,
            raft_config_with(config.snapshot_every)?,
            network,
            store.log_store(),
            sm,
        )
        .await
        .map_err(|e| Error::Stopped(e.to_string()))?;
        let node = PlacementNode {
            id,
            raft,
            state,
            store,
            forwarder: Forwarder::spawn(peers.clone()),
            peers,
            snapshot_slot: Arc::new(tokio::sync::Semaphore::new(1)),
        };
        node.spawn_leader_watch();

        let initialized = node
            .raft
            .is_initialized()
            .await
            .map_err(|e| Error::Stopped(e.to_string()))?;
        let lowest = config.initial_cluster.keys().next().copied();
        if !initialized && config.join {
            tracing::info!(
                node_id = id,
                "fresh data directory, joining a running cluster: waiting to be added \
                 (`placementd cluster add` on a member)"
            );
        } else if !initialized && config.initial_cluster.is_empty() {
            tracing::info!(
                node_id = id,
                "fresh data directory: forming a one-node cluster"
            );
            let me = PeerNode {
                api_addr: config.api_addr.clone(),
                peer_addr: config.peer_addr.clone(),
            };
            node.raft
                .initialize(BTreeMap::from([(id, me)]))
                .await
                .map_err(|e| Error::Raft(format!("initialize: {e}")))?;
        } else if !initialized && lowest == Some(id) {
            tracing::info!(
                node_id = id,
                members = ?config.initial_cluster.keys().collect::<Vec<_>>(),
                "fresh data directory, lowest id of the initial cluster: initializing it"
            );
            node.raft
                .initialize(config.initial_cluster.clone())
                .await
                .map_err(|e| Error::Raft(format!("initialize: {e}")))?;
        } else if !initialized {
            tracing::info!(
                node_id = id,
                "fresh data directory: waiting to be contacted by the cluster's leader"
            );
        } else if node.raft.voter_ids().eq([id]) {
            // The only voter: nobody else can be leader, so do not sit out an election
            // timeout before serving again.
            node.raft
                .trigger()
                .elect(false)
                .await
                .map_err(|e| Error::Stopped(e.to_string()))?;
        }

        Ok(node)
    }

    /// Waits until a leader is known and the state machine has re-applied everything the
    /// cluster had committed (`Raft::wait_for_recovery`).
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), Error> {
        let started = tokio::time::Instant::now();
        self.raft
            .wait(Some(timeout))
            .metrics(|m| m.current_leader.is_some(), "a leader is known")
            .await
            .map_err(|e| Error::Timeout(format!("leader election: {e}")))?;
        let remaining = timeout.saturating_sub(started.elapsed());
        self.raft
            .wait_for_recovery(Some(remaining))
            .await
            .map_err(|e| Error::Timeout(format!("recovery: {e}")))?;
        let status = self.status();
        tracing::info!(
            node_id = self.id,
            leader = ?status.leader,
            applied = ?status.applied_index,
            "raft node ready"
        );
        Ok(())
    }

    /// The Raft handle (for the peer port's handlers).
    pub(crate) fn raft(&self) -> &Raft<TypeConfig, StateMachine> {
        &self.raft
    }

    /// A fresh path for a snapshot being received from the leader.
    pub(crate) fn incoming_snapshot_path(&self) -> PathBuf {
        self.store
            .path()
            .join("incoming")
            .join(format!("{}.snap", placement_types::Uuid::new_v4()))
    }

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

    /// Commits one request through the leader (this node, or forwarded to it) and returns the
    /// result of applying it. When it returns, this node has applied the entry too (a
    /// forwarded write waits for that), so a read on this node sees the write.
    ///
    /// Retries across leader changes until [`WRITE_TIMEOUT`]; the request keeps its id, so a
    /// retry of a write that did commit is answered with the first outcome, not applied twice.
    pub async fn write(&self, request: Request) -> Result<ApplyResult, Error> {
        self.write_as(request, Origin::default()).await
    }

    /// [`Self::write`] on behalf of `origin` (the API caller), which a forward carries to the
    /// leader for its log.
    pub async fn write_as(&self, request: Request, origin: Origin) -> Result<ApplyResult, Error> {
        self.write_routed(request, origin, LocalApply::Wait).await
    }

    /// [`Self::write_as`] for a caller whose every read passes [`Self::read_barrier`]: a
    /// forwarded write returns as soon as the leader answers, without waiting for this node to
    /// apply the entry. The barrier of the next read on this node waits for it instead (the
    /// leader's read index covers every acknowledged write), so reads stay linearizable; what
    /// is saved is, for each forwarded write, the wait until the leader's next append tells
    /// this node that the entry is committed (about half the latency of a forwarded write at
    /// moderate load). A caller that reads without the barrier (stale reads) must use
    /// [`Self::write_as`] to read its own writes.
    pub async fn write_as_for_barrier_reads(
        &self,
        request: Request,
        origin: Origin,
    ) -> Result<ApplyResult, Error> {
        self.write_routed(request, origin, LocalApply::DontWait)
            .await
    }

    async fn write_routed(
        &self,
        request: Request,
        origin: Origin,
        local: LocalApply,
    ) -> Result<ApplyResult, Error> {
        let forwarded = &Forwarded { request, origin };
        self.on_leader(
            WRITE_TIMEOUT,
            || format!("request {} not applied in time", forwarded.request.id),
            |leader, remaining| async move {
                match leader {
                    Leader::Here => self.write_local(forwarded.request.clone()).await,
                    Leader::At(peer) => {
                        self.forward_write(&peer, forwarded, local, remaining).await
                    }
                }
            },
        )
        .await
    }

    /// Runs `attempt` on the leader — this node ([`Leader::Here`]) or a peer — until it
    /// succeeds, fails for good, or `timeout` passes. An error [`Error::is_retryable`] names
    /// (leadership moved, no quorum yet, outcome unknown, a peer unreachable) is retried after
    /// [`RETRY_BACKOFF`] on whichever member leads then; while no leader is known, the call
    /// waits. `attempt` gets the time left; `what` describes the call for the timeout error.
    async fn on_leader<T, F, Fut>(
        &self,
        timeout: Duration,
        what: impl Fn() -> String,
        mut attempt: F,
    ) -> Result<T, Error>
    where
        F: FnMut(Leader, Duration) -> Fut,
        Fut: std::future::Future<Output = Result<T, Error>>,
    {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last: Option<Error> = None;
        loop {
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(last.unwrap_or_else(|| Error::Timeout(what())));
            }
            let remaining = deadline - now;
            let result = match self.leader() {
                Some(leader) => attempt(leader, remaining).await,
                None => Err(Error::NotLeader {
                    leader: None,
                    leader_api_addr: None,
                }),
            };
            match result {
                Ok(value) => return Ok(value),
                Err(e) if e.is_retryable() => {
                    tracing::debug!(error = %e, "retried on the leader");
                    last = Some(e);
                    tokio::time::sleep(RETRY_BACKOFF.min(remaining)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Where the leader is, as far as this node knows (`None` while no leader is known).
    fn leader(&self) -> Option<Leader> {
        let status = self.status();
        match status.leader {
            _ if status.is_leader => Some(Leader::Here),
            Some(leader) if leader != self.id => self.peer_of(leader).map(Leader::At),
            _ => None,
        }
    }

    /// Forwards a write to the leader `peer`; with [`LocalApply::Wait`], then waits until this
    /// node has applied at least as far as the leader's entry, so a read on this node after
    /// the write sees it even without a read barrier.
    async fn forward_write(
        &self,
        peer: &Peer,
        forwarded: &Forwarded,
        local: LocalApply,
        timeout: Duration,
    ) -> Result<ApplyResult, Error> {
        tracing::info!(request_id = %format_args!("req-{}", forwarded.request.id), leader = peer.id, "forwarding a write to the leader");
        placement_metrics::catalog::RAFT_FORWARDED_WRITES.inc();
        let answer = self
            .forwarder
            .forward(peer, forwarded.clone(), timeout)
            .await
            .map_err(Error::from)?;
        let (result, index) = answer?;
        if local == LocalApply::Wait {
            self.wait_applied(index, timeout).await?;
        }
        Ok(result)
    }

    /// Waits until this node has applied entry `index`.
    async fn wait_applied(&self, index: u64, timeout: Duration) -> Result<(), Error> {
        self.raft
            .wait(Some(timeout))
            .applied_index_at_least(Some(index), "read or forwarded write")
            .await
            .map(|_| ())
            .map_err(|e| Error::Timeout(format!("applying up to {index}: {e}")))
    }

    /// Proposes `request` on this node's Raft only (the leader's half of a forward); returns
    /// the outcome and the index of the entry that carried it.
    pub(crate) async fn write_local_indexed(
        &self,
        request: Request,
    ) -> Result<(ApplyResult, u64), Error> {
        let request_id = request.id;
        let _pending = placement_metrics::catalog::RAFT_PROPOSALS_PENDING.track();
        let write = self.raft.client_write(LogPayload::V1(request));
        let outcome = match tokio::time::timeout(WRITE_TIMEOUT, write).await {
            Err(_) => Err(Error::Timeout(format!(
                "request {request_id} not applied within {WRITE_TIMEOUT:?}"
            ))),
            Ok(Ok(response)) => Ok((response.data, response.log_id.index)),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => Err(f.into()),
            Ok(Err(RaftError::APIError(e @ ClientWriteError::LogEntryDiscarded(_)))) => {
                Err(Error::OutcomeUnknown(e.to_string()))
            }
            Ok(Err(RaftError::APIError(e))) => Err(Error::Raft(e.to_string())),
            Ok(Err(RaftError::Fatal(e))) => Err(Error::Stopped(e.to_string())),
        };
        crate::observe::proposal_done(outcome.is_ok());
        outcome
    }

    /// Proposes `request` on this node's Raft only.
    pub(crate) async fn write_local(&self, request: Request) -> Result<ApplyResult, Error> {
        self.write_local_indexed(request).await.map(|(r, _)| r)
    }

    /// Returns once this node's state includes every write acknowledged anywhere before the
    /// call (ReadIndex: the leader confirms its leadership with a quorum; this node then
    /// waits until it has applied up to the leader's read index). On a follower the read
    /// index comes from the leader over the peer port. Retries across leader changes until
    /// [`READ_BARRIER_TIMEOUT`].
    pub async fn read_barrier(&self) -> Result<(), Error> {
        self.on_leader(
            READ_BARRIER_TIMEOUT,
            || format!("read barrier not reached within {READ_BARRIER_TIMEOUT:?}"),
            |leader, remaining| async move {
                match leader {
                    Leader::Here => self.local_read_barrier().await,
                    Leader::At(peer) => {
                        let index = self.peers.read_index(&peer, remaining).await??;
                        self.wait_applied(index, remaining).await
                    }
                }
            },
        )
        .await
    }

    /// The leader's half of a follower read: confirm leadership with a quorum and return the
    /// index the reader must have applied.
    pub(crate) async fn leader_read_index(&self) -> Result<u64, Error> {
        let linearizer = self.raft.get_read_linearizer(ReadPolicy::ReadIndex);
        match tokio::time::timeout(READ_BARRIER_TIMEOUT, linearizer).await {
            Err(_) => Err(Error::Timeout(format!(
                "leadership not confirmed within {READ_BARRIER_TIMEOUT:?}"
            ))),
            Ok(Ok(l)) => Ok(l.read_log_id().index()),
            Ok(Err(e)) => Err(linearizable_error(e)),
        }
    }

    /// ReadIndex on the leader itself.
    async fn local_read_barrier(&self) -> Result<(), Error> {
        let barrier = self.raft.ensure_linearizable(ReadPolicy::ReadIndex);
        match tokio::time::timeout(READ_BARRIER_TIMEOUT, barrier).await {
            Err(_) => Err(Error::Timeout(format!(
                "read barrier not reached within {READ_BARRIER_TIMEOUT:?}"
            ))),
            Ok(Ok(_read_log_id)) => Ok(()),
            Ok(Err(e)) => Err(linearizable_error(e)),
        }
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

    /// The current membership: every voter and learner with its addresses.
    pub fn members(&self) -> Vec<Member> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow_watched();
        members_of(m.membership_config.membership())
    }

    /// Adds or removes a member through the leader (this node, or forwarded to it), retrying
    /// across leader changes until [`MEMBERSHIP_TIMEOUT`]. Both changes are idempotent:
    /// adding a present voter with the same addresses or removing an absent node reports
    /// `changed: false`.
    pub async fn change_membership(
        &self,
        change: MembershipChange,
    ) -> Result<MembershipOutcome, Error> {
        let change = &change;
        self.on_leader(
            MEMBERSHIP_TIMEOUT,
            || format!("membership change not done in {MEMBERSHIP_TIMEOUT:?}"),
            |leader, remaining| async move {
                match leader {
                    Leader::Here => self.change_membership_local(change.clone()).await,
                    Leader::At(peer) => Ok(self
                        .peers
                        .change_membership(&peer, change, remaining)
                        .await??),
                }
            },
        )
        .await
    }

    /// The leader's half of a membership change (see [`Self::change_membership`]).
    pub(crate) async fn change_membership_local(
        &self,
        change: MembershipChange,
    ) -> Result<MembershipOutcome, Error> {
        let membership = {
            let metrics = self.raft.metrics();
            let m = metrics.borrow_watched();
            if m.state != ServerState::Leader {
                return Err(Error::NotLeader {
                    leader: m.current_leader,
                    leader_api_addr: None,
                });
            }
            m.membership_config.membership().clone()
        };
        let is_voter = |id: NodeId| membership.voter_ids().any(|v| v == id);
        let changed = match change {
            MembershipChange::Add { id, node } => {
                if node.peer_addr.is_empty() || node.api_addr.is_empty() {
                    return Err(Error::Refused(format!(
                        "node {id} needs an API address and a peer address"
                    )));
                }
                match membership.get_node(&id) {
                    Some(known) if *known != node => {
                        return Err(Error::Refused(format!(
                            "node {id} is already a member with API {} and peer {}; node ids \
                             are never reused: give the new node a new id",
                            known.api_addr, known.peer_addr
                        )));
                    }
                    Some(_) if is_voter(id) => false,
                    _ => {
                        tracing::info!(node_id = id, api = %node.api_addr, peer = %node.peer_addr,
                            "adding a learner; it becomes a voter once it has caught up");
                        let add = self.raft.add_learner(id, node, true);
                        membership_result(
                            tokio::time::timeout(MEMBERSHIP_TIMEOUT, add).await,
                            "add learner",
                        )?;
                        let promote = self
                            .raft
                            .change_membership(ChangeMembers::AddVoterIds([id].into()), false);
                        membership_result(
                            tokio::time::timeout(MEMBERSHIP_TIMEOUT, promote).await,
                            "promote to voter",
                        )?;
                        tracing::info!(node_id = id, "node added as a voter");
                        true
                    }
                }
            }
            MembershipChange::Remove { id } => {
                if membership.get_node(&id).is_none() {
                    false
                } else {
                    if is_voter(id) && membership.voter_ids().all(|v| v == id) {
                        return Err(Error::Refused(format!(
                            "node {id} is the only voter; a cluster cannot remove its last voter"
                        )));
                    }
                    tracing::info!(node_id = id, "removing a member");
                    let change = if is_voter(id) {
                        ChangeMembers::RemoveVoters([id].into())
                    } else {
                        ChangeMembers::RemoveNodes([id].into())
                    };
                    // retain = false: a removed voter does not stay on as a learner.
                    let remove = self.raft.change_membership(change, false);
                    membership_result(
                        tokio::time::timeout(MEMBERSHIP_TIMEOUT, remove).await,
                        "remove member",
                    )?;
                    tracing::info!(node_id = id, "member removed");
                    true
                }
            }
        };
        Ok(MembershipOutcome {
            changed,
            members: self.members(),
        })
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

    /// If this node leads, hands leadership to the most up-to-date other voter and waits (up
    /// to [`HANDOVER_TIMEOUT`]) until another node leads, so a planned restart costs clients
    /// a round trip instead of an election timeout. Returns whether another node leads. Call
    /// it before [`Self::shutdown`], while the peer port still serves.
    pub async fn hand_over_leadership(&self) -> bool {
        let target = {
            let metrics = self.raft.metrics();
            let m = metrics.borrow_watched();
            if m.state != ServerState::Leader {
                return false;
            }
            let matched = |v: &NodeId| {
                m.replication
                    .as_ref()
                    .and_then(|r| r.get(v).cloned().flatten())
                    .map(|id| id.index)
            };
            m.membership_config
                .membership()
                .voter_ids()
                .filter(|v| *v != self.id)
                .max_by_key(|v| matched(v))
        };
        let Some(to) = target else {
            tracing::info!(node_id = self.id, "no other voter to hand leadership to");
            return false;
        };
        tracing::info!(node_id = self.id, to, "handing leadership over");
        if let Err(e) = self.raft.trigger().transfer_leader(to).await {
            tracing::warn!(error = %e, "leadership handover not started");
            return false;
        }
        let me = self.id;
        let handed = self
            .raft
            .wait(Some(HANDOVER_TIMEOUT))
            .metrics(
                |m| m.current_leader.is_some_and(|l| l != me),
                "another node leads",
            )
            .await
            .is_ok();
        if handed {
            tracing::info!(node_id = me, to, "leadership handed over");
        } else {
            tracing::warn!(node_id = me, to, "leadership handover timed out");
        }
        handed
    }

    /// `placementd cluster transfer-leader`: on the leader, hands leadership to voter `to`
    /// and waits up to `timeout` until `to` leads. Refused on a follower (the caller asks the
    /// leader) and for a node that is not a voter; nothing to do if `to` already leads.
    pub async fn transfer_leadership(&self, to: NodeId, timeout: Duration) -> Result<(), Error> {
        let (leader, is_voter) = {
            let metrics = self.raft.metrics();
            let m = metrics.borrow_watched();
            let is_voter = m
                .membership_config
                .membership()
                .voter_ids()
                .any(|v| v == to);
            (m.current_leader, is_voter)
        };
        if leader == Some(to) {
            return Ok(());
        }
        if !is_voter {
            return Err(Error::Refused(format!(
                "node {to} is not a voter of the cluster"
            )));
        }
        if leader != Some(self.id) {
            return Err(Error::Refused(format!(
                "node {} is not the leader (the leader is {leader:?}): ask the leader",
                self.id
            )));
        }
        tracing::info!(
            node_id = self.id,
            to,
            "transferring leadership (operator request)"
        );
        self.raft
            .trigger()
            .transfer_leader(to)
            .await
            .map_err(|e| Error::Stopped(e.to_string()))?;
        self.raft
            .wait(Some(timeout))
            .metrics(|m| m.current_leader == Some(to), "the new leader leads")
            .await
            .map(|_| ())
            .map_err(|e| {
                Error::Timeout(format!(
                    "node {to} did not become the leader within {timeout:?} ({e}); the \
                     cluster elects whichever voter is most up to date, check `cluster status`"
                ))
            })
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
fn state_digest(state: &State) -> Result<(String, u64), Error> {
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

/// The members of `membership`, voters and learners, in id order.
fn members_of(membership: &placement_storage::Membership) -> Vec<Member> {
    let voters: std::collections::BTreeSet<NodeId> = membership.voter_ids().collect();
    membership
        .nodes()
        .map(|(id, node)| Member {
            id: *id,
            api_addr: node.api_addr.clone(),
            peer_addr: node.peer_addr.clone(),
            voter: voters.contains(id),
        })
        .collect()
}

/// Maps the result of a (timed) membership call to [`Error`].
fn membership_result<T>(
    answer: Result<
        Result<T, RaftError<TypeConfig, ClientWriteError<TypeConfig>>>,
        tokio::time::error::Elapsed,
    >,
    what: &str,
) -> Result<T, Error> {
    match answer {
        Err(_) => Err(Error::Timeout(format!(
            "{what}: not done within {MEMBERSHIP_TIMEOUT:?}"
        ))),
        Ok(Ok(value)) => Ok(value),
        Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => Err(f.into()),
        Ok(Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(
            ChangeMembershipError::InProgress(e),
        )))) => Err(Error::NoQuorum(format!("{what}: {e}"))),
        Ok(Err(RaftError::APIError(e))) => Err(Error::Refused(format!("{what}: {e}"))),
        Ok(Err(RaftError::Fatal(e))) => Err(Error::Stopped(e.to_string())),
    }
}

/// Whether a forwarded write waits until this node has applied it (see
/// [`PlacementNode::write_as_for_barrier_reads`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LocalApply {
    Wait,
    DontWait,
}

/// Where the leader is: this node, or another member.
enum Leader {
    Here,
    At(Peer),
}

fn linearizable_error(e: RaftError<TypeConfig, LinearizableReadError<TypeConfig>>) -> Error {
    match e {
        RaftError::APIError(LinearizableReadError::ForwardToLeader(f)) => f.into(),
        RaftError::APIError(LinearizableReadError::QuorumNotEnough(e)) => {
            Error::NoQuorum(e.to_string())
        }
        RaftError::Fatal(e) => Error::Stopped(e.to_string()),
    }
}

impl From<ForwardToLeader<TypeConfig>> for Error {
    /// openraft's "not the leader" (from a write, a read barrier or a membership change).
    fn from(f: ForwardToLeader<TypeConfig>) -> Self {
        Error::NotLeader {
            leader: f.leader_id,
            leader_api_addr: f.leader_node.map(|n| n.api_addr),
        }
    }
}

impl From<TransportError> for Error {
    fn from(e: TransportError) -> Self {
        Error::Peer(e.to_string())
    }
}

impl From<PeerError> for Error {
    fn from(e: PeerError) -> Self {
        match e {
            PeerError::NotLeader { leader } => Error::NotLeader {
                leader,
                leader_api_addr: None,
            },
            PeerError::Unavailable(message) => Error::Peer(message),
            PeerError::Refused(message) => Error::Refused(message),
        }
    }
}
