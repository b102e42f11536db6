//! [`TestCluster`]: N placementd Raft members in this test process, on real RocksDB in a temp
//! dir, talking over a [`MemoryNetwork`] that can drop, delay and partition their messages.
//!
//! Each member is a real [`PlacementNode`] with its real peer router; only the sockets are
//! replaced by function calls (`placement_raft::memory`). Timers are real, so an election
//! takes what it takes in production (one to two seconds).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use placement_raft::memory::MemoryNetwork;
use placement_raft::{
    peer_router, Error, MembershipChange, NodeConfig, NodeId, PeerNode, PlacementNode, StateDigest,
};
use placement_types::{ApplyResult, Command, Request, Timestamp, Uuid};
use tempfile::TempDir;

/// How long a test waits for a cluster to settle (a leader, a catch-up) before failing.
pub const SETTLE: Duration = Duration::from_secs(20);

/// A cluster of in-process members (see the module doc).
pub struct TestCluster {
    pub net: Arc<MemoryNetwork>,
    dir: TempDir,
    snapshot_every: u64,
    initial: BTreeMap<NodeId, PeerNode>,
    nodes: BTreeMap<NodeId, Arc<PlacementNode>>,
}

/// The addresses a member is recorded with: nothing listens there, the memory network routes
/// by node id, but the membership needs a peer address to call a node at all.
pub fn addresses(id: NodeId) -> PeerNode {
    PeerNode {
        api_addr: format!("node{id}.test:8778"),
        peer_addr: format!("node{id}.test:8779"),
    }
}

impl TestCluster {
    /// Members `1..=n` bootstrapped together, each ready (a leader known, state recovered).
    pub async fn start(n: u64) -> Self {
        Self::start_with(n, placement_raft::SNAPSHOT_EVERY_ENTRIES).await
    }

    /// [`Self::start`] with a snapshot after every `snapshot_every` entries.
    pub async fn start_with(n: u64, snapshot_every: u64) -> Self {
        let mut cluster = TestCluster {
            net: MemoryNetwork::new(),
            dir: TempDir::new().expect("temp dir"),
            snapshot_every,
            initial: (1..=n).map(|id| (id, addresses(id))).collect(),
            nodes: BTreeMap::new(),
        };
        for id in 1..=n {
            cluster.boot(id, false).await;
        }
        for id in 1..=n {
            cluster
                .node(id)
                .wait_ready(SETTLE)
                .await
                .unwrap_or_else(|e| panic!("node {id} not ready: {e}"));
        }
        cluster
    }

    fn config(&self, id: NodeId, join: bool) -> NodeConfig {
        let initial = if join {
            BTreeMap::from([(id, addresses(id))])
        } else {
            self.initial.clone()
        };
        let mut config = NodeConfig::member(self.dir.path().join(format!("node{id}")), id, initial)
            .expect("member config");
        config.join = join;
        config.snapshot_every = self.snapshot_every;
        config.peer_link = Some(self.net.link(id));
        config
    }

    /// Starts node `id` on its data dir and serves its peer port on the network. A restart
    /// may find the last run's database still closing (its Raft tasks end asynchronously): it
    /// retries for a while.
    async fn boot(&mut self, id: NodeId, join: bool) {
        let config = self.config(id, join);
        let deadline = tokio::time::Instant::now() + SETTLE;
        let node = loop {
            match PlacementNode::start(config.clone()).await {
                Ok(node) => break Arc::new(node),
                Err(e) if tokio::time::Instant::now() < deadline => {
                    tracing::debug!(id, error = %e, "node not started yet");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("node {id} does not start: {e}"),
            }
        };
        self.net.serve(id, peer_router(node.clone()));
        self.nodes.insert(id, node);
    }

    /// Member `id` (running).
    pub fn node(&self, id: NodeId) -> &Arc<PlacementNode> {
        self.nodes
            .get(&id)
            .unwrap_or_else(|| panic!("node {id} is not running"))
    }

    /// The running members' ids.
    pub fn ids(&self) -> Vec<NodeId> {
        self.nodes.keys().copied().collect()
    }

    /// Waits until one of `among` leads and every other of them knows it; returns its id.
    pub async fn leader_among(&self, among: &[NodeId]) -> NodeId {
        let deadline = tokio::time::Instant::now() + SETTLE;
        loop {
            let statuses: Vec<_> = among.iter().map(|id| self.node(*id).status()).collect();
            let leaders: Vec<NodeId> = statuses
                .iter()
                .filter(|s| s.is_leader)
                .map(|s| s.id)
                .collect();
            if let [leader] = leaders[..] {
                if statuses.iter().all(|s| s.leader == Some(leader)) {
                    return leader;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no agreed leader among {among:?} within {SETTLE:?}: {statuses:#?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The leader every running member agrees on.
    pub async fn leader(&self) -> NodeId {
        self.leader_among(&self.ids()).await
    }

    /// The running members other than `id`.
    pub fn others(&self, id: NodeId) -> Vec<NodeId> {
        self.ids().into_iter().filter(|n| *n != id).collect()
    }

    /// Stops member `id` (Raft shut down, database synced) and takes it off the network.
    pub async fn stop(&mut self, id: NodeId) {
        self.net.stop_serving(id);
        let node = self.nodes.remove(&id).expect("running node");
        node.shutdown().await.expect("shutdown");
    }

    /// Starts a stopped member again on its data dir.
    pub async fn restart(&mut self, id: NodeId) {
        self.boot(id, false).await;
        self.node(id).wait_ready(SETTLE).await.expect("ready");
    }

    /// Starts a fresh node `id` that joins the running cluster, and adds it through member
    /// `via` (it becomes a voter once it has caught up).
    pub async fn add(&mut self, id: NodeId, via: NodeId) -> Result<(), Error> {
        self.boot(id, true).await;
        let change = MembershipChange::Add {
            id,
            node: addresses(id),
        };
        self.node(via).change_membership(change).await?;
        self.node(id).wait_ready(SETTLE).await
    }

    /// Removes member `id` from the membership through member `via`, then stops it.
    pub async fn remove(&mut self, id: NodeId, via: NodeId) -> Result<(), Error> {
        self.node(via)
            .change_membership(MembershipChange::Remove { id })
            .await?;
        self.stop(id).await;
        Ok(())
    }

    /// Every running member's state digest, once each has applied all that is committed.
    pub async fn digests(&self) -> BTreeMap<NodeId, StateDigest> {
        let mut digests = BTreeMap::new();
        for (id, node) in &self.nodes {
            let digest = node
                .digest()
                .await
                .unwrap_or_else(|e| panic!("digest of node {id}: {e}"));
            digests.insert(*id, digest);
        }
        digests
    }

    /// Asserts that every running member holds the same state; returns its digest.
    pub async fn assert_converged(&self) -> StateDigest {
        let digests = self.digests().await;
        let first = digests.values().next().expect("a member").clone();
        for (id, d) in &digests {
            assert_eq!(
                (&d.sha256, d.records),
                (&first.sha256, first.records),
                "node {id} differs: {digests:#?}"
            );
        }
        first
    }

    /// Shuts every member down (a test that ends without it leaves Raft tasks running until
    /// the runtime stops, which is harmless but noisy).
    pub async fn shutdown(mut self) {
        for id in self.ids() {
            self.stop(id).await;
        }
    }
}

/// A request carrying `command`, with a fresh request id.
pub fn request(command: Command) -> Request {
    Request {
        id: Uuid::new_v4(),
        at: Timestamp(1_700_000_000_000_000),
        command,
    }
}

/// The uuid of test provider `n`.
pub fn rp(n: u128) -> Uuid {
    Uuid::from_u128(0x5eed_0000_0000_0000_0000_0000_0000_0000 | n)
}

/// A request creating root provider `n`.
pub fn create_provider(n: u128) -> Request {
    request(Command::CreateProvider {
        uuid: rp(n),
        name: format!("rp-{n}"),
        parent: None,
    })
}

/// Whether member `node`'s state holds provider `n` (without a read barrier).
pub fn has_provider(node: &PlacementNode, n: u128) -> bool {
    node.with_state(|s| s.provider(&rp(n)).is_some())
}

/// Asserts that a write was applied without a domain error.
pub fn applied(result: Result<ApplyResult, Error>) {
    match result {
        Ok(Ok(_)) => {}
        other => panic!("write not applied: {other:?}"),
    }
}
