//! The peer transport, client side: Raft RPCs, snapshot streaming, write forwarding and read
//! index requests to another member's peer port.
//!
//! # Wire
//! Every call is an HTTP/1.1 `POST` to `http://<peer_addr><path>` (paths in [`paths`]) whose
//! body is the bincode encoding (`placement_types::encode`) of the request and whose `200`
//! response body is the bincode encoding of a `Result<response, PeerError>`. HTTP is only the
//! framing: keep-alive connections are pooled per peer by one shared [`PeerClient`]
//! (reqwest over hyper), so a heartbeat or an append costs one round trip, not a TCP
//! handshake. Any non-200 status or undecodable body is a transport error.
//!
//! A snapshot is streamed: the body is `u32 big-endian length + bincode(SnapshotHeader)`
//! followed by the snapshot file's bytes, read from the open file in [`SNAPSHOT_CHUNK`]
//! pieces, so the sender never holds the whole snapshot in memory. The receiver checks the
//! byte count from the header before it installs anything.
//!
//! # Errors
//! A refused or failed connection is `Unreachable` (openraft backs off before retrying); a
//! request that reached the peer but failed is a `Network` error (retried at once). A node
//! never opens a client to itself: openraft does not replicate to the local node, and the
//! forwarding paths in `node.rs` check the target is another node.
//!
//! Left out: TLS and peer authentication (run the peer port on a private network), and
//! compression of append bodies.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use openraft::errors::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::{OptionalSend, RaftNetworkV2};
use placement_storage::{NodeId, PeerNode, SnapshotFile, SnapshotMeta, TypeConfig, Vote};
use placement_types::{ApplyResult, Request};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

type Snapshot = placement_storage::Snapshot;

/// The peer port's paths.
pub mod paths {
    pub const APPEND: &str = "/raft/append";
    pub const VOTE: &str = "/raft/vote";
    pub const PRE_VOTE: &str = "/raft/pre-vote";
    pub const SNAPSHOT: &str = "/raft/snapshot";
    /// A follower forwards a client write to the leader.
    pub const WRITE: &str = "/cluster/write";
    /// A follower asks the leader for a read index (ReadIndex for follower reads).
    pub const READ_INDEX: &str = "/cluster/read-index";
    /// The leader asks the node it hands leadership to to start an election at once.
    pub const TRANSFER_LEADER: &str = "/raft/transfer-leader";
    /// A member forwards a membership change (add or remove a node) to the leader.
    pub const MEMBERSHIP: &str = "/cluster/membership";
}

/// How long to wait for a TCP connection to a peer. Peers are on a LAN: a connection that
/// takes longer than this is to a dead host.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// Idle keep-alive connections are closed after this long.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The least time an AppendEntries call (heartbeats included) is given before it is failed:
/// the minimum election timeout. A follower that answers slower than that would have started
/// an election anyway; one that is merely busy should not be treated as unreachable.
pub const APPEND_TIMEOUT: Duration = Duration::from_millis(crate::ELECTION_TIMEOUT_MIN_MS);

/// Bytes per body chunk when streaming a snapshot file.
pub const SNAPSHOT_CHUNK: usize = 256 << 10;

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

/// What precedes a snapshot file's bytes in a snapshot body.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SnapshotHeader {
    pub vote: Vote,
    pub meta: SnapshotMeta,
    /// Length of the file that follows, checked by the receiver.
    pub len: u64,
}

/// A transport failure (the call did not produce a peer answer).
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// No connection could be made (peer down or not listening yet).
    #[error("cannot connect to {addr}: {message}")]
    Connect { addr: String, message: String },
    /// The call failed after connecting (timeout, reset, bad status, bad body).
    #[error("peer {addr}: {message}")]
    Call { addr: String, message: String },
}

/// A pooled HTTP client for the peer ports of all members. Cheap to clone (shared pool).
#[derive(Debug, Clone)]
pub struct PeerClient {
    http: reqwest::Client,
}

impl PeerClient {
    pub fn new() -> Result<Self, crate::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .tcp_nodelay(true)
            .no_proxy()
            .build()
            .map_err(|e| crate::Error::Config(format!("peer HTTP client: {e}")))?;
        Ok(PeerClient { http })
    }

    fn url(addr: &str, path: &str) -> String {
        format!("http://{addr}{path}")
    }

    fn transport(addr: &str, e: &reqwest::Error) -> TransportError {
        if e.is_connect() {
            TransportError::Connect {
                addr: addr.to_string(),
                message: e.to_string(),
            }
        } else {
            TransportError::Call {
                addr: addr.to_string(),
                message: e.to_string(),
            }
        }
    }

    async fn send<Resp: DeserializeOwned>(
        &self,
        addr: &str,
        builder: reqwest::RequestBuilder,
    ) -> Result<Resp, TransportError> {
        let call = |message: String| TransportError::Call {
            addr: addr.to_string(),
            message,
        };
        let response = builder
            .send()
            .await
            .map_err(|e| Self::transport(addr, &e))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| Self::transport(addr, &e))?;
        if status != reqwest::StatusCode::OK {
            return Err(call(format!(
                "status {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            )));
        }
        placement_types::decode(&body).map_err(|e| call(format!("bad response body: {e}")))
    }

    /// One bincode request/response call.
    pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        addr: &str,
        path: &str,
        request: &Req,
        timeout: Duration,
    ) -> Result<Resp, TransportError> {
        let body = placement_types::encode(request).map_err(|e| TransportError::Call {
            addr: addr.to_string(),
            message: format!("encode: {e}"),
        })?;
        let builder = self
            .http
            .post(Self::url(addr, path))
            .timeout(timeout)
            .body(body);
        self.send(addr, builder).await
    }

    /// Forwards a write to the leader at `addr`; the answer is the leader's outcome and the
    /// index of the entry that carried it.
    pub async fn forward_write(
        &self,
        addr: &str,
        request: &Request,
        timeout: Duration,
    ) -> Result<Result<(ApplyResult, u64), PeerError>, TransportError> {
        self.call(addr, paths::WRITE, request, timeout).await
    }

    /// Asks the leader at `addr` for a read index: the log index this node must have applied
    /// before a read is linearizable.
    pub async fn read_index(
        &self,
        addr: &str,
        timeout: Duration,
    ) -> Result<Result<u64, PeerError>, TransportError> {
        self.call(addr, paths::READ_INDEX, &(), timeout).await
    }

    /// Forwards a membership change to the leader at `addr`.
    pub async fn change_membership(
        &self,
        addr: &str,
        change: &MembershipChange,
        timeout: Duration,
    ) -> Result<Result<MembershipOutcome, PeerError>, TransportError> {
        self.call(addr, paths::MEMBERSHIP, change, timeout).await
    }

    /// Streams a snapshot to `addr`.
    async fn send_snapshot(
        &self,
        addr: &str,
        vote: Vote,
        snapshot: Snapshot,
        timeout: Duration,
    ) -> Result<Result<SnapshotResponse<TypeConfig>, String>, TransportError> {
        let call = |message: String| TransportError::Call {
            addr: addr.to_string(),
            message,
        };
        let mut file = tokio::fs::File::from_std(snapshot.snapshot.into_file());
        let len = file
            .metadata()
            .await
            .map_err(|e| call(format!("snapshot file: {e}")))?
            .len();
        use tokio::io::AsyncSeekExt;
        file.rewind()
            .await
            .map_err(|e| call(format!("snapshot file: {e}")))?;
        let header = placement_types::encode(&SnapshotHeader {
            vote,
            meta: snapshot.meta,
            len,
        })
        .map_err(|e| call(format!("encode: {e}")))?;
        let header_len = u32::try_from(header.len())
            .map_err(|_| call("snapshot header too large".to_string()))?;
        let mut prefix = Vec::with_capacity(4 + header.len());
        prefix.extend_from_slice(&header_len.to_be_bytes());
        prefix.extend_from_slice(&header);

        // The body: the prefix, then the file in chunks, read as the connection drains them.
        let chunks = file_chunks(file);
        let body = futures::StreamExt::chain(
            futures::stream::once(async move { Ok::<Bytes, std::io::Error>(Bytes::from(prefix)) }),
            chunks,
        );
        let builder = self
            .http
            .post(Self::url(addr, paths::SNAPSHOT))
            .timeout(timeout)
            .body(reqwest::Body::wrap_stream(body));
        self.send(addr, builder).await
    }
}

/// `file` from its current position to its end as a stream of [`SNAPSHOT_CHUNK`]-sized
/// pieces, read as the consumer (an HTTP body) drains them, so a whole snapshot is never held
/// in memory. Serves snapshot transfer here and backup downloads in the admin API.
pub fn file_chunks(
    file: tokio::fs::File,
) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    futures::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buf = vec![0u8; SNAPSHOT_CHUNK];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), Some(file)))
            }
            Err(e) => Some((Err(e), None)),
        }
    })
}

/// Creates a [`PeerConnection`] per target; all share one [`PeerClient`] pool.
#[derive(Debug, Clone)]
pub struct PeerNetwork {
    client: PeerClient,
}

impl PeerNetwork {
    pub fn new(client: PeerClient) -> Self {
        PeerNetwork { client }
    }
}

/// openraft's client for one peer.
#[derive(Debug)]
pub struct PeerConnection {
    target: NodeId,
    addr: String,
    client: PeerClient,
}

impl RaftNetworkFactory<TypeConfig> for PeerNetwork {
    type Network = PeerConnection;

    async fn new_client(&mut self, target: NodeId, node: &PeerNode) -> PeerConnection {
        PeerConnection {
            target,
            addr: node.peer_addr.clone(),
            client: self.client.clone(),
        }
    }
}

impl PeerConnection {
    fn no_address(&self) -> Option<Unreachable<TypeConfig>> {
        self.addr
            .is_empty()
            .then(|| Unreachable::from_string(format!("node {} has no peer address", self.target)))
    }

    fn rpc_error(&self, e: TransportError) -> RPCError<TypeConfig> {
        match e {
            TransportError::Connect { .. } => RPCError::Unreachable(Unreachable::new(&e)),
            TransportError::Call { .. } => RPCError::Network(NetworkError::new(&e)),
        }
    }

    async fn raft_call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        path: &str,
        rpc: &Req,
        timeout: Duration,
    ) -> Result<Resp, RPCError<TypeConfig>> {
        if let Some(u) = self.no_address() {
            return Err(RPCError::Unreachable(u));
        }
        let answer: Result<Resp, String> = self
            .client
            .call(&self.addr, path, rpc, timeout)
            .await
            .map_err(|e| self.rpc_error(e))?;
        // The peer's Raft refused to serve (it is shutting down): back off.
        answer.map_err(|e| {
            RPCError::Unreachable(Unreachable::from_string(format!(
                "node {}: {e}",
                self.target
            )))
        })
    }
}

impl RaftNetworkV2<TypeConfig> for PeerConnection {
    type SnapshotData = SnapshotFile;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        // openraft gives appends the heartbeat interval (100 ms) as their TTL and does not
        // enforce it itself. A busy follower (fsync, a saturated CPU) can take longer than that
        // and is not dead; failing the call would only make the leader back off and send the
        // same entries again later (the benchmark saw ~0.8 s stalls). A dead follower refuses
        // the connection at once or hits this longer timeout.
        self.raft_call(paths::APPEND, &rpc, option.hard_ttl().max(APPEND_TIMEOUT))
            .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.raft_call(paths::VOTE, &rpc, option.hard_ttl()).await
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.raft_call(paths::PRE_VOTE, &rpc, option.hard_ttl())
            .await
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.raft_call(paths::TRANSFER_LEADER, &req, option.hard_ttl())
            .await
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        if let Some(u) = self.no_address() {
            return Err(StreamingError::Unreachable(u));
        }
        let send = self
            .client
            .send_snapshot(&self.addr, vote, snapshot, option.hard_ttl());
        let answer = tokio::select! {
            closed = cancel => return Err(StreamingError::Closed(closed)),
            answer = send => answer,
        };
        match answer {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => Err(StreamingError::Unreachable(Unreachable::from_string(
                format!("node {} did not install the snapshot: {e}", self.target),
            ))),
            Err(e @ TransportError::Connect { .. }) => {
                Err(StreamingError::Unreachable(Unreachable::new(&e)))
            }
            Err(e) => Err(StreamingError::Network(NetworkError::new(&e))),
        }
    }
}
