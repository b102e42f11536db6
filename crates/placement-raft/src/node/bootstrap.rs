//! Starting a node: opening its data directory, starting Raft, bootstrapping a fresh
//! cluster (only the lowest id of `--initial-cluster`, only on a fresh store), and waiting
//! until it knows a leader and has re-applied what was committed before a restart.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use openraft::Raft;
use placement_storage::{PeerNode, StateMachine, Store, TypeConfig};

use crate::config::raft_config_with;
use crate::forward::Forwarder;
use crate::read_rounds::ReadRounds;
use crate::transport::{PeerClient, PeerNetwork};
use crate::Error;

use super::{NodeConfig, PlacementNode};

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
            let store = Store::open_loading(&dir)?;
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

        let peers = match &config.peer_link {
            Some(link) => PeerClient::over(link.clone()),
            None => PeerClient::new(config.peer_tls.clone())?,
        };
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
            reads: ReadRounds::default(),
            sole_voter: Arc::default(),
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
}
