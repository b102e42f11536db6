//! [`PlacementNode`]: one Raft member with its storage, as the rest of placementd sees it.
//!
//! Lifecycle: [`PlacementNode::open`] opens the data directory, starts Raft on it, forms a
//! one-node cluster if the directory is fresh, and returns only once the node knows a leader
//! and has re-applied everything committed before a restart (so it never serves older state
//! than it served before). [`PlacementNode::shutdown`] stops Raft and syncs the database.
//!
//! Every call that waits on the cluster has a deadline; a timeout is reported as an error the
//! API turns into 503, never a hang.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use openraft::errors::{ClientWriteError, LinearizableReadError, RaftError};
use openraft::{Raft, ReadPolicy, ServerState};
use placement_core::State;
use placement_storage::{NodeId, PeerNode, StateMachine, Store, TypeConfig};
use placement_types::{ApplyResult, LogPayload, Request};

use crate::config::raft_config;
use crate::network::NoPeerNetwork;
use crate::Error;

/// How long [`PlacementNode::open`] waits for a leader and for recovery by default.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a write may wait to be committed and applied before the client is told the
/// service is unavailable (the write may still be applied later: Placement clients retry
/// with generations, which makes a duplicate harmless).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a read may wait for the leader to confirm its leadership with a quorum.
pub const READ_BARRIER_TIMEOUT: Duration = Duration::from_secs(5);

/// How to open a node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The data directory (created if missing).
    pub data_dir: PathBuf,
    /// This node's id; bound to the data directory on first start.
    pub node_id: NodeId,
    /// The client API address recorded in the membership (`host:port`).
    pub api_addr: String,
    /// Deadline for the leader election and recovery in [`PlacementNode::open`].
    pub startup_timeout: Duration,
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
            startup_timeout: STARTUP_TIMEOUT,
        }
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
    /// The node has stopped (shutdown or a storage failure).
    pub stopped: bool,
}

/// A running Raft member and its state machine.
pub struct PlacementNode {
    id: NodeId,
    raft: Raft<TypeConfig, StateMachine>,
    state: Arc<RwLock<State>>,
    store: Store,
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
    /// committed before a restart is applied again.
    pub async fn open(config: NodeConfig) -> Result<Self, Error> {
        let id = config.node_id;
        let dir = config.data_dir.clone();
        // Opening RocksDB and rebuilding the in-memory state are blocking and may take a while.
        let (store, sm) = tokio::task::spawn_blocking(move || -> Result<_, Error> {
            let store = Store::open(&dir)?;
            store.bind_node_id(id)?;
            let sm = store.state_machine()?;
            Ok((store, sm))
        })
        .await
        .map_err(|e| Error::Stopped(format!("storage open task: {e}")))??;
        let state = sm.state();

        let raft = Raft::new(id, raft_config()?, NoPeerNetwork, store.log_store(), sm)
            .await
            .map_err(|e| Error::Stopped(e.to_string()))?;
        let node = PlacementNode {
            id,
            raft,
            state,
            store,
        };

        let initialized = node
            .raft
            .is_initialized()
            .await
            .map_err(|e| Error::Stopped(e.to_string()))?;
        if !initialized {
            tracing::info!(
                node_id = id,
                "fresh data directory: forming a one-node cluster"
            );
            let me = PeerNode {
                api_addr: config.api_addr.clone(),
                peer_addr: String::new(),
            };
            node.raft
                .initialize(BTreeMap::from([(id, me)]))
                .await
                .map_err(|e| Error::Raft(format!("initialize: {e}")))?;
        } else if node.raft.voter_ids().eq([id]) {
            // The only voter: nobody else can be leader, so do not sit out an election
            // timeout before serving again.
            node.raft
                .trigger()
                .elect(false)
                .await
                .map_err(|e| Error::Stopped(e.to_string()))?;
        }

        node.wait_ready(config.startup_timeout).await?;
        let status = node.status();
        tracing::info!(
            node_id = id,
            leader = ?status.leader,
            applied = ?status.applied_index,
            "raft node ready"
        );
        Ok(node)
    }

    /// Waits until a leader is known and the state machine has re-applied everything the
    /// cluster had committed (`Raft::wait_for_recovery`).
    async fn wait_ready(&self, timeout: Duration) -> Result<(), Error> {
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
        Ok(())
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Proposes one request and returns the result of applying it, once it is committed and
    /// applied on this node.
    pub async fn write(&self, request: Request) -> Result<ApplyResult, Error> {
        let request_id = request.id;
        let write = self.raft.client_write(LogPayload::V1(request));
        match tokio::time::timeout(WRITE_TIMEOUT, write).await {
            Err(_) => Err(Error::Timeout(format!(
                "request {request_id} not applied within {WRITE_TIMEOUT:?}"
            ))),
            Ok(Ok(response)) => Ok(response.data),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                Err(Error::NotLeader {
                    leader: f.leader_id,
                    leader_api_addr: f.leader_node.map(|n| n.api_addr),
                })
            }
            Ok(Err(RaftError::APIError(e @ ClientWriteError::LogEntryDiscarded(_)))) => {
                Err(Error::OutcomeUnknown(e.to_string()))
            }
            Ok(Err(RaftError::APIError(e))) => Err(Error::Raft(e.to_string())),
            Ok(Err(RaftError::Fatal(e))) => Err(Error::Stopped(e.to_string())),
        }
    }

    /// Returns once this node's state includes every write acknowledged anywhere before the
    /// call (ReadIndex: the leader confirms its leadership with a quorum, then waits until it
    /// has applied up to its commit index). On a follower this fails with
    /// [`Error::NotLeader`] until follower reads come with the peer transport.
    pub async fn read_barrier(&self) -> Result<(), Error> {
        let barrier = self.raft.ensure_linearizable(ReadPolicy::ReadIndex);
        match tokio::time::timeout(READ_BARRIER_TIMEOUT, barrier).await {
            Err(_) => Err(Error::Timeout(format!(
                "read barrier not reached within {READ_BARRIER_TIMEOUT:?}"
            ))),
            Ok(Ok(_read_log_id)) => Ok(()),
            Ok(Err(RaftError::APIError(LinearizableReadError::ForwardToLeader(f)))) => {
                Err(Error::NotLeader {
                    leader: f.leader_id,
                    leader_api_addr: f.leader_node.map(|n| n.api_addr),
                })
            }
            Ok(Err(RaftError::APIError(LinearizableReadError::QuorumNotEnough(e)))) => {
                Err(Error::NoQuorum(e.to_string()))
            }
            Ok(Err(RaftError::Fatal(e))) => Err(Error::Stopped(e.to_string())),
        }
    }

    /// Runs `f` on the current state (one applied prefix of the log). Hold it briefly: the
    /// state machine waits for readers before committing the next entry.
    pub fn with_state<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        f(&state)
    }

    /// The shared state handle (for components that keep their own reference).
    pub fn state(&self) -> Arc<RwLock<State>> {
        self.state.clone()
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
