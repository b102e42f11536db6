//! The peer transport, client side: Raft RPCs, snapshot streaming, write forwarding and read
//! index requests to another member's peer port, over a [`PeerLink`] (HTTP in production,
//! `link.rs`).
//!
//! A snapshot is streamed: the body is `u32 big-endian length + bincode(SnapshotHeader)`
//! followed by the snapshot file's bytes, read from the open file in [`SNAPSHOT_CHUNK`]
//! pieces, so the sender never holds the whole snapshot in memory. The receiver checks the
//! byte count from the header before it installs anything.
//!
//! An append larger than [`MAX_APPEND_BYTES`] is cut: the first entries that fit (at least
//! one) are sent and openraft is told they matched (`PartialSuccess`); it sends the rest in
//! the next call. So no legitimate append exceeds the receiver's body limit.
//!
//! # Errors
//! A refused or failed connection is `Unreachable` (openraft backs off before retrying); a
//! request that reached the peer but failed is a `Network` error (retried at once). Answers
//! whose terms or indexes are beyond the bounds of `guard.rs` are refused like a bad body. A
//! node never opens a client to itself: openraft does not replicate to the local node, and
//! the forwarding paths in `node/writes.rs` check the target is another node.
//!
//! Left out: compression of append bodies.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use openraft::errors::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::{OptionalSend, RaftNetworkV2};
use placement_net::TlsSource;
use placement_storage::{NodeId, PeerNode, SnapshotFile, TypeConfig, Vote};
use placement_types::ApplyResult;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::AsyncReadExt;

use crate::guard;

use super::channel::ChannelLink;
use super::link::{PeerBody, PeerLink};
use super::wire::{
    paths, Forwarded, MembershipChange, MembershipOutcome, Peer, PeerError, SnapshotHeader,
};

type Snapshot = placement_storage::Snapshot;

/// How long to wait for a TCP connection to a peer. Peers are on a LAN: a connection that
/// takes longer than this is to a dead host.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// Idle keep-alive connections are closed after this long: well before the serving side
/// closes them (`placement_net::serve::DEFAULT_HEADER_TIMEOUT`), so a pooled connection is
/// not reused in the instant the server drops it.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(8);

/// The largest append body sent in one call (see the module doc): a quarter of what a
/// receiver accepts, so the encoding of the request around the entries always fits.
pub const MAX_APPEND_BYTES: usize = crate::MAX_PEER_BODY / 4;

/// The least time an AppendEntries call (heartbeats included) is given before it is failed:
/// the minimum election timeout. A follower that answers slower than that would have started
/// an election anyway; one that is merely busy should not be treated as unreachable.
pub const APPEND_TIMEOUT: Duration = Duration::from_millis(crate::ELECTION_TIMEOUT_MIN_MS);

/// Bytes per body chunk when streaming a snapshot file.
pub const SNAPSHOT_CHUNK: usize = 256 << 10;

/// A transport failure (the call did not produce a peer answer).
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransportError {
    /// No connection could be made (peer down or not listening yet).
    #[error("cannot connect to {addr}: {message}")]
    Connect { addr: String, message: String },
    /// The call failed after connecting (timeout, reset, bad status, bad body).
    #[error("peer {addr}: {message}")]
    Call { addr: String, message: String },
    /// The peer does not serve this path (404): an older version.
    #[error("peer {addr} does not serve {path}")]
    NotFound { addr: String, path: String },
}

/// The client of every member's peer port: what a peer call means (encoding, bounds, error
/// mapping, snapshot framing), over a [`PeerLink`] that carries its bytes. Cheap to clone
/// (the link is shared).
#[derive(Debug, Clone)]
pub struct PeerClient {
    link: Arc<dyn PeerLink>,
}

impl PeerClient {
    /// A client that calls members over peer channels (HTTP where a channel cannot go):
    /// with TLS when `tls` (the peer port's configuration) is given, in plaintext otherwise.
    pub fn new(tls: Option<Arc<TlsSource>>) -> Result<Self, crate::Error> {
        Ok(Self::over(Arc::new(ChannelLink::new(tls)?)))
    }

    /// A client whose calls travel over `link` (an in-process [`MemoryNetwork`] in tests).
    ///
    /// [`MemoryNetwork`]: super::memory::MemoryNetwork
    pub fn over(link: Arc<dyn PeerLink>) -> Self {
        PeerClient { link }
    }

    /// Sends one call and decodes its answer: a 404 is [`TransportError::NotFound`] (an
    /// older version), any other status but 200 a failed call.
    async fn send<Resp: DeserializeOwned>(
        &self,
        peer: &Peer,
        path: &'static str,
        body: PeerBody,
        timeout: Duration,
    ) -> Result<Resp, TransportError> {
        let call = |message: String| TransportError::Call {
            addr: peer.addr.clone(),
            message,
        };
        let reply = self.link.post(peer, path, body, timeout).await?;
        if reply.status == 404 {
            return Err(TransportError::NotFound {
                addr: peer.addr.clone(),
                path: path.to_string(),
            });
        }
        if reply.status != 200 {
            let body = &reply.body;
            return Err(call(format!(
                "status {}: {}",
                reply.status,
                String::from_utf8_lossy(&body[..body.len().min(200)])
            )));
        }
        placement_types::decode(&reply.body).map_err(|e| call(format!("bad response body: {e}")))
    }

    /// One bincode request/response call.
    pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        peer: &Peer,
        path: &'static str,
        request: &Req,
        timeout: Duration,
    ) -> Result<Resp, TransportError> {
        let body = placement_types::encode(request).map_err(|e| TransportError::Call {
            addr: peer.addr.clone(),
            message: format!("encode: {e}"),
        })?;
        self.call_encoded(peer, path, body, timeout).await
    }

    async fn call_encoded<Resp: DeserializeOwned>(
        &self,
        peer: &Peer,
        path: &'static str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Resp, TransportError> {
        self.send(peer, path, PeerBody::Full(body), timeout).await
    }

    /// Forwards a write to the leader `peer`; the answer is the leader's outcome and the
    /// index of the entry that carried it.
    pub async fn forward_write(
        &self,
        peer: &Peer,
        forwarded: &Forwarded,
        timeout: Duration,
    ) -> Result<Result<(ApplyResult, u64), PeerError>, TransportError> {
        self.call(peer, paths::WRITE, forwarded, timeout).await
    }

    /// Forwards a batch of writes to the leader `peer` (`forward.rs`); the answer holds each
    /// write's outcome and entry index, in the order sent.
    #[allow(clippy::type_complexity)]
    pub async fn forward_writes(
        &self,
        peer: &Peer,
        forwarded: &[&Forwarded],
        timeout: Duration,
    ) -> Result<Result<Vec<Result<(ApplyResult, u64), PeerError>>, PeerError>, TransportError> {
        self.call(peer, paths::WRITES, &forwarded, timeout).await
    }

    /// Asks the leader `peer` for a read index: the log index this node must have applied
    /// before a read is linearizable.
    pub async fn read_index(
        &self,
        peer: &Peer,
        timeout: Duration,
    ) -> Result<Result<u64, PeerError>, TransportError> {
        self.call(peer, paths::READ_INDEX, &(), timeout).await
    }

    /// Forwards a membership change to the leader `peer`.
    pub async fn change_membership(
        &self,
        peer: &Peer,
        change: &MembershipChange,
        timeout: Duration,
    ) -> Result<Result<MembershipOutcome, PeerError>, TransportError> {
        self.call(peer, paths::MEMBERSHIP, change, timeout).await
    }

    /// Streams a snapshot to `peer`.
    async fn send_snapshot(
        &self,
        peer: &Peer,
        vote: Vote,
        snapshot: Snapshot,
        timeout: Duration,
    ) -> Result<Result<SnapshotResponse<TypeConfig>, String>, TransportError> {
        let call = |message: String| TransportError::Call {
            addr: peer.addr.clone(),
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
        self.send(
            peer,
            paths::SNAPSHOT,
            PeerBody::Stream(Box::pin(body)),
            timeout,
        )
        .await
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
    peer: Peer,
    client: PeerClient,
}

impl RaftNetworkFactory<TypeConfig> for PeerNetwork {
    type Network = PeerConnection;

    async fn new_client(&mut self, target: NodeId, node: &PeerNode) -> PeerConnection {
        PeerConnection {
            peer: Peer {
                id: target,
                addr: node.peer_addr.clone(),
            },
            client: self.client.clone(),
        }
    }
}

impl PeerConnection {
    fn no_address(&self) -> Option<Unreachable<TypeConfig>> {
        self.peer
            .addr
            .is_empty()
            .then(|| Unreachable::from_string(format!("node {} has no peer address", self.peer.id)))
    }

    fn rpc_error(&self, e: TransportError) -> RPCError<TypeConfig> {
        match e {
            TransportError::Connect { .. } => RPCError::Unreachable(Unreachable::new(&e)),
            TransportError::Call { .. } | TransportError::NotFound { .. } => {
                RPCError::Network(NetworkError::new(&e))
            }
        }
    }

    async fn raft_call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        path: &'static str,
        rpc: &Req,
        timeout: Duration,
    ) -> Result<Resp, RPCError<TypeConfig>> {
        if let Some(u) = self.no_address() {
            return Err(RPCError::Unreachable(u));
        }
        let answer: Result<Resp, String> = self
            .client
            .call(&self.peer, path, rpc, timeout)
            .await
            .map_err(|e| self.rpc_error(e))?;
        // The peer's Raft refused to serve (it is shutting down): back off.
        answer.map_err(|e| {
            RPCError::Unreachable(Unreachable::from_string(format!(
                "node {}: {e}",
                self.peer.id
            )))
        })
    }

    /// An answer whose numbers `guard.rs` refuses, as a network error.
    fn insane(&self, refusal: guard::Refusal) -> RPCError<TypeConfig> {
        RPCError::Network(NetworkError::new(&TransportError::Call {
            addr: self.peer.addr.clone(),
            message: format!("node {} answered: {refusal}", self.peer.id),
        }))
    }

    fn check_vote_answer(
        &self,
        answer: VoteResponse<TypeConfig>,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        guard::sane_vote(&answer.vote, "vote answer").map_err(|r| self.insane(r))?;
        if let Some(id) = &answer.last_log_id {
            guard::sane_log_id(id, "vote answer last log id").map_err(|r| self.insane(r))?;
        }
        Ok(answer)
    }
}

impl RaftNetworkV2<TypeConfig> for PeerConnection {
    type SnapshotData = SnapshotFile;

    async fn append_entries(
        &mut self,
        mut rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        if let Some(u) = self.no_address() {
            return Err(RPCError::Unreachable(u));
        }
        let encode_error = |e: placement_types::CodecError| {
            RPCError::Network(NetworkError::new(&TransportError::Call {
                addr: self.peer.addr.clone(),
                message: format!("encode: {e}"),
            }))
        };
        let mut body = placement_types::encode(&rpc).map_err(encode_error)?;
        // Too large for one call: send the entries that fit and report them matched.
        let mut cut_at = None;
        if body.len() > MAX_APPEND_BYTES && rpc.entries.len() > 1 {
            let fit = entries_within(&rpc.entries, MAX_APPEND_BYTES).map_err(encode_error)?;
            rpc.entries.truncate(fit.max(1));
            cut_at = rpc.entries.last().map(|e| e.log_id);
            body = placement_types::encode(&rpc).map_err(encode_error)?;
        }
        // openraft gives appends the heartbeat interval (100 ms) as their TTL and does not
        // enforce it itself. A busy follower (fsync, a saturated CPU) can take longer than that
        // and is not dead; failing the call would only make the leader back off and send the
        // same entries again later (the benchmark saw ~0.8 s stalls). A dead follower refuses
        // the connection at once or hits this longer timeout.
        let timeout = option.hard_ttl().max(APPEND_TIMEOUT);
        let answer: Result<AppendEntriesResponse<TypeConfig>, String> = self
            .client
            .call_encoded(&self.peer, paths::APPEND, body, timeout)
            .await
            .map_err(|e| self.rpc_error(e))?;
        let answer = answer.map_err(|e| {
            RPCError::Unreachable(Unreachable::from_string(format!(
                "node {}: {e}",
                self.peer.id
            )))
        })?;
        match &answer {
            AppendEntriesResponse::HigherVote(vote) => {
                guard::sane_vote(vote, "append answer").map_err(|r| self.insane(r))?
            }
            AppendEntriesResponse::PartialSuccess(Some(id)) => {
                guard::sane_log_id(id, "append answer").map_err(|r| self.insane(r))?
            }
            _ => {}
        }
        Ok(match (answer, cut_at) {
            (AppendEntriesResponse::Success, Some(last)) => {
                AppendEntriesResponse::PartialSuccess(Some(last))
            }
            (answer, _) => answer,
        })
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        let answer = self.raft_call(paths::VOTE, &rpc, option.hard_ttl()).await?;
        self.check_vote_answer(answer)
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        let answer = self
            .raft_call(paths::PRE_VOTE, &rpc, option.hard_ttl())
            .await?;
        self.check_vote_answer(answer)
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
        let started = std::time::Instant::now();
        let send = self
            .client
            .send_snapshot(&self.peer, vote, snapshot, option.hard_ttl());
        let answer = tokio::select! {
            closed = cancel => return Err(StreamingError::Closed(closed)),
            answer = send => answer,
        };
        if matches!(answer, Ok(Ok(_))) {
            placement_metrics::catalog::RAFT_SNAPSHOT_SEND.observe_since(started);
        }
        match answer {
            Ok(Ok(response)) => match guard::sane_vote(&response.vote, "snapshot answer") {
                Ok(()) => Ok(response),
                Err(refusal) => Err(StreamingError::Network(NetworkError::new(
                    &TransportError::Call {
                        addr: self.peer.addr.clone(),
                        message: format!("node {} answered: {refusal}", self.peer.id),
                    },
                ))),
            },
            Ok(Err(e)) => Err(StreamingError::Unreachable(Unreachable::from_string(
                format!("node {} did not install the snapshot: {e}", self.peer.id),
            ))),
            Err(e @ TransportError::Connect { .. }) => {
                Err(StreamingError::Unreachable(Unreachable::new(&e)))
            }
            Err(e) => Err(StreamingError::Network(NetworkError::new(&e))),
        }
    }
}

/// How many of `entries`, from the first, encode within `budget` bytes.
fn entries_within(
    entries: &[placement_storage::Entry],
    budget: usize,
) -> Result<usize, placement_types::CodecError> {
    let mut used = 0usize;
    for (n, entry) in entries.iter().enumerate() {
        used += placement_types::encode(entry)?.len();
        if used > budget {
            return Ok(n);
        }
    }
    Ok(entries.len())
}
