//! The peer transport, server side: the axum router served on a node's peer port.
//!
//! Handlers decode a bincode body, check who sent it and whether its numbers are sane
//! (`guard.rs`), hand it to this node's Raft (or to [`PlacementNode`] for forwarded writes
//! and read indexes), and answer `200` with a bincode `Result<response, error>`. A body that
//! does not decode or is not sane is a `400`, a sender that may not send it a `403`. The
//! wire is described in `wire.rs`; `client.rs` is the client of these routes.
//!
//! # Bounds
//! - Every body but a snapshot's is at most [`MAX_PEER_BODY`], and decoding allocates at
//!   most a fixed multiple of what arrived (`placement_types::decode`).
//! - A snapshot is received one at a time. Its header comes first and is checked before a
//!   single byte is written: the sender must be the leader it names, its vote no older than
//!   this node's (a stale sender is answered with the newer vote, as Raft does), the declared
//!   size at most [`MAX_SNAPSHOT_BYTES`] and, three times over (the received file, its
//!   installed copy, the records), within the free space of the data directory. The body may then
//!   not exceed the declared size, nor stall longer than [`SNAPSHOT_STALL_TIMEOUT`]
//!   between chunks.
//! - Forwarded writes, read indexes and membership changes are shed beyond
//!   [`MAX_FORWARDS_IN_FLIGHT`] at once (503, the sender retries); Raft's own messages are
//!   never shed, so a busy leader keeps its followers.
//!
//! A streamed snapshot is written to `<data dir>/incoming/<random>.snap` as it arrives, its
//! length checked against the header, and only then installed (the state machine verifies
//! the file's checksum and copies it); the incoming file is removed afterwards either way.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Router};
use futures::StreamExt;
use openraft::raft::{AppendEntriesRequest, TransferLeaderRequest, VoteRequest};
use placement_net::layers;
use placement_net::ConnInfo;
use placement_storage::SnapshotFile;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::AsyncWriteExt;

use super::wire::{paths, Forwarded, MembershipChange, PeerError, SnapshotHeader};
use crate::guard::{self, Refusal, Sender};
use crate::{Error, PlacementNode, TypeConfig};

/// Largest non-snapshot body accepted on the peer port. An append is cut to a quarter of it
/// by its sender (`client.rs`), and one command is at most the API's body limit (8 MiB of
/// JSON, less in bincode).
pub const MAX_PEER_BODY: usize = 64 << 20;

/// Largest snapshot header (vote + metadata with the membership).
const MAX_SNAPSHOT_HEADER: usize = 1 << 20;

/// Largest snapshot a node accepts. Placement's state for a large cloud (100,000 consumers)
/// is tens of MiB; this is a bound on what a broken sender can make a node write.
pub const MAX_SNAPSHOT_BYTES: u64 = 64 << 30;

/// A snapshot body that sends nothing for this long is abandoned.
pub const SNAPSHOT_STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Forwarded writes, read indexes and membership changes served at once; more get 503.
pub const MAX_FORWARDS_IN_FLIGHT: usize = 1024;

/// Deadline of a Raft message or a forwarded request on the serving side: a forwarded
/// write waits at most `WRITE_TIMEOUT` for its entry, so this only cuts off what hangs.
pub const PEER_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

type Node = Arc<PlacementNode>;
type Conn = Option<Extension<ConnInfo>>;

/// The peer port's router for `node`.
pub fn peer_router(node: Node) -> Router {
    let raft = Router::new()
        .route(paths::APPEND, post(append))
        .route(paths::VOTE, post(vote))
        .route(paths::PRE_VOTE, post(pre_vote))
        .route(paths::TRANSFER_LEADER, post(transfer_leader))
        .layer(axum::middleware::from_fn_with_state(
            PEER_REQUEST_TIMEOUT,
            layers::deadline,
        ));
    let forwards = Router::new()
        .route(paths::WRITE, post(forwarded_write))
        .route(paths::WRITES, post(forwarded_writes))
        .route(paths::READ_INDEX, post(read_index))
        .layer(axum::middleware::from_fn_with_state(
            PEER_REQUEST_TIMEOUT,
            layers::deadline,
        ))
        // A membership change waits for a new member to catch up: its own deadline.
        .route(paths::MEMBERSHIP, post(membership))
        .layer(axum::middleware::from_fn_with_state(
            layers::InFlight::new(MAX_FORWARDS_IN_FLIGHT),
            layers::shed,
        ));
    raft.merge(forwards)
        .layer(DefaultBodyLimit::max(MAX_PEER_BODY))
        .route(
            paths::SNAPSHOT,
            post(snapshot).layer(DefaultBodyLimit::disable()),
        )
        .layer(axum::middleware::from_fn(layers::catch_panic))
        .with_state(node)
}

fn bincode_response<T: Serialize>(value: &T) -> Response {
    match placement_types::encode(value) {
        Ok(body) => (
            StatusCode::OK,
            [("content-type", "application/octet-stream")],
            body,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("encode: {e}")).into_response(),
    }
}

fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, Box<Response>> {
    placement_types::decode(body)
        .map_err(|e| Box::new((StatusCode::BAD_REQUEST, format!("bad body: {e}")).into_response()))
}

/// The answer to a refused message, logged: a refusal is either an attack or a bug.
fn refused(refusal: Refusal, conn: &Conn, what: &str) -> Response {
    let from = conn
        .as_ref()
        .map(|c| c.remote.to_string())
        .unwrap_or_default();
    let client = conn
        .as_ref()
        .and_then(|c| c.client.as_ref())
        .map(|i| i.to_string())
        .unwrap_or_else(|| "(no certificate)".into());
    tracing::warn!(%from, %client, %refusal, "refused a peer {what}");
    let status = match refusal {
        Refusal::Forbidden(_) => StatusCode::FORBIDDEN,
        Refusal::Insane(_) => StatusCode::BAD_REQUEST,
    };
    (status, refusal.to_string()).into_response()
}

fn sender(conn: &Conn) -> Sender {
    Sender::of(conn.as_ref().map(|c| &c.0))
}

async fn append(State(node): State<Node>, conn: Conn, body: Bytes) -> Response {
    let rpc: AppendEntriesRequest<TypeConfig> = match decode_body(&body) {
        Ok(rpc) => rpc,
        Err(r) => return *r,
    };
    let admitted = guard::append_request(&rpc).and_then(|leader| sender(&conn).speaks_for(leader));
    if let Err(r) = admitted {
        return refused(r, &conn, "append");
    }
    let answer = node.raft().append_entries(rpc).await;
    bincode_response(&answer.map_err(|e| e.to_string()))
}

/// A vote or pre-vote: sane, from the candidate itself, which must be a voter.
fn admit_vote(
    node: &PlacementNode,
    conn: &Conn,
    rpc: &VoteRequest<TypeConfig>,
) -> Result<(), Refusal> {
    let candidate = guard::vote_request(rpc)?;
    sender(conn).speaks_for(candidate)?;
    node.membership_view().admit_candidate(candidate)
}

async fn vote(State(node): State<Node>, conn: Conn, body: Bytes) -> Response {
    let rpc: VoteRequest<TypeConfig> = match decode_body(&body) {
        Ok(rpc) => rpc,
        Err(r) => return *r,
    };
    if let Err(r) = admit_vote(&node, &conn, &rpc) {
        return refused(r, &conn, "vote");
    }
    let answer = node.raft().vote(rpc).await;
    bincode_response(&answer.map_err(|e| e.to_string()))
}

async fn pre_vote(State(node): State<Node>, conn: Conn, body: Bytes) -> Response {
    let rpc: VoteRequest<TypeConfig> = match decode_body(&body) {
        Ok(rpc) => rpc,
        Err(r) => return *r,
    };
    if let Err(r) = admit_vote(&node, &conn, &rpc) {
        return refused(r, &conn, "pre-vote");
    }
    let answer = node.raft().pre_vote(rpc).await;
    bincode_response(&answer.map_err(|e| e.to_string()))
}

async fn transfer_leader(State(node): State<Node>, conn: Conn, body: Bytes) -> Response {
    let rpc: TransferLeaderRequest<TypeConfig> = match decode_body(&body) {
        Ok(rpc) => rpc,
        Err(r) => return *r,
    };
    let admitted = guard::transfer_request(&rpc).and_then(|leader| {
        sender(&conn).speaks_for(leader)?;
        node.membership_view().admit_member(leader)
    });
    if let Err(r) = admitted {
        return refused(r, &conn, "leadership transfer");
    }
    let answer = node.raft().handle_transfer_leader(rpc).await;
    bincode_response(&answer.map_err(|e| e.to_string()))
}

/// A forwarded request: from a member (by its certificate; any sender on a plaintext
/// port). Returns the forwarding node, if known.
fn admit_forward(node: &PlacementNode, conn: &Conn) -> Result<Option<u64>, Refusal> {
    let from = sender(conn).node()?;
    if let Some(id) = from {
        node.membership_view().admit_member(id)?;
    }
    Ok(from)
}

async fn membership(State(node): State<Node>, conn: Conn, body: Bytes) -> Response {
    let change: MembershipChange = match decode_body(&body) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    if let Err(r) = admit_forward(&node, &conn) {
        return refused(r, &conn, "membership change");
    }
    // Like a forwarded write: only the local Raft, never forwarded again.
    let answer = node
        .change_membership_local(change)
        .await
        .map_err(peer_error);
    bincode_response(&answer)
}

fn peer_error(e: Error) -> PeerError {
    match e {
        Error::NotLeader { leader, .. } => PeerError::NotLeader { leader },
        Error::Refused(message) => PeerError::Refused(message),
        other => PeerError::Unavailable(other.to_string()),
    }
}

async fn forwarded_write(State(node): State<Node>, conn: Conn, body: Bytes) -> Response {
    let forwarded: Forwarded = match decode_body(&body) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let from = match admit_forward(&node, &conn) {
        Ok(from) => from,
        Err(r) => return refused(r, &conn, "forwarded write"),
    };
    bincode_response(&serve_forward(&node, from, forwarded).await)
}

/// Proposes one forwarded write on this node's Raft (from either forwarding path) and
/// returns its outcome and entry index. Only the local Raft: a forwarded write is never
/// forwarded again (no loops); the sender retries on the leader it learns of.
async fn serve_forward(
    node: &PlacementNode,
    from: Option<u64>,
    forwarded: Forwarded,
) -> Result<(placement_types::ApplyResult, u64), PeerError> {
    placement_metrics::catalog::RAFT_FORWARDED_WRITES_SERVED.inc();
    tracing::info!(
        request_id = %format_args!("req-{}", forwarded.request.id),
        from_node = ?from,
        origin = %forwarded.origin,
        "applying a forwarded write"
    );
    node.write_local_indexed(forwarded.request)
        .await
        .map_err(peer_error)
}

/// A batch of forwarded writes (`forward.rs`): proposed together, so they share log appends
/// as concurrent client writes do, and answered in the order received.
async fn forwarded_writes(State(node): State<Node>, conn: Conn, body: Bytes) -> Response {
    let batch: Vec<Forwarded> = match decode_body(&body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let from = match admit_forward(&node, &conn) {
        Ok(from) => from,
        Err(r) => return refused(r, &conn, "forwarded writes"),
    };
    if batch.len() > crate::forward::MAX_BATCH {
        let refusal = Refusal::Insane(format!(
            "{} forwarded writes in one call (at most {})",
            batch.len(),
            crate::forward::MAX_BATCH
        ));
        return refused(refusal, &conn, "forwarded writes");
    }
    let writes = batch
        .into_iter()
        .map(|forwarded| serve_forward(&node, from, forwarded));
    let answers = futures::future::join_all(writes).await;
    bincode_response(&Ok::<_, PeerError>(answers))
}

async fn read_index(State(node): State<Node>, conn: Conn, body: Bytes) -> Response {
    if let Err(r) = decode_body::<()>(&body) {
        return *r;
    }
    if let Err(r) = admit_forward(&node, &conn) {
        return refused(r, &conn, "read index");
    }
    let answer = node.leader_read_index().await.map_err(peer_error);
    bincode_response(&answer)
}

/// Why a streamed snapshot was not installed.
#[derive(Debug, thiserror::Error)]
enum ReceiveError {
    #[error("snapshot body: {0}")]
    Body(String),
    #[error("snapshot file: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Refused(Refusal),
    /// The sender's vote is older than this node's: it is told the newer one (and steps
    /// down, as from any answer with a higher vote) without a byte of its snapshot written.
    #[error("stale snapshot sender")]
    Stale(placement_storage::Vote),
}

async fn snapshot(State(node): State<Node>, conn: Conn, body: Body) -> Response {
    let Some(_slot) = node.snapshot_receive_slot() else {
        return layers::unavailable("Another snapshot is being received.");
    };
    let path = node.incoming_snapshot_path();
    let started = std::time::Instant::now();
    let received = receive_snapshot(&node, &sender(&conn), &path, body).await;
    if received.is_ok() {
        placement_metrics::catalog::RAFT_SNAPSHOT_RECEIVE.observe_since(started);
    }
    let answer = match received {
        Ok(header) => match SnapshotFile::open(&path) {
            Ok(file) => {
                let snapshot = placement_storage::Snapshot {
                    meta: header.meta,
                    snapshot: file,
                };
                node.raft()
                    .install_full_snapshot(header.vote, snapshot)
                    .await
                    .map_err(|e| e.to_string())
            }
            Err(e) => Err(format!("open received snapshot: {e}")),
        },
        Err(ReceiveError::Refused(r)) => return refused(r, &conn, "snapshot"),
        Err(ReceiveError::Stale(vote)) => {
            return bincode_response(&Ok::<_, String>(openraft::raft::SnapshotResponse::<
                TypeConfig,
            >::new(vote)))
        }
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = tokio::fs::remove_file(&path).await {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove incoming snapshot");
        }
    }
    if let Err(e) = &answer {
        tracing::warn!(error = %e, "snapshot from the leader not installed");
    }
    bincode_response(&answer)
}

/// Bytes of free space a snapshot of `len` bytes needs: the received file, the installed
/// copy, and the records in the database, plus some room.
fn space_needed(len: u64) -> u64 {
    len.saturating_mul(3).saturating_add(64 << 20)
}

/// Free bytes on the file system of `dir` (for unprivileged users).
fn free_space(dir: &Path) -> std::io::Result<u64> {
    let stat = rustix::fs::statvfs(dir).map_err(std::io::Error::from)?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// The next chunk of a snapshot body; an error if it stalls.
async fn next_chunk<S>(stream: &mut S) -> Result<Option<Bytes>, ReceiveError>
where
    S: futures::Stream<Item = Result<Bytes, axum::Error>> + Unpin,
{
    match tokio::time::timeout(SNAPSHOT_STALL_TIMEOUT, stream.next()).await {
        Err(_) => Err(ReceiveError::Body(format!(
            "nothing received for {SNAPSHOT_STALL_TIMEOUT:?}"
        ))),
        Ok(None) => Ok(None),
        Ok(Some(chunk)) => chunk
            .map(Some)
            .map_err(|e| ReceiveError::Body(e.to_string())),
    }
}

/// Reads the header, checks it, then writes the file bytes of a snapshot body to `path`.
async fn receive_snapshot(
    node: &PlacementNode,
    sender: &Sender,
    path: &Path,
    body: Body,
) -> Result<SnapshotHeader, ReceiveError> {
    let mut stream = body.into_data_stream();

    // The header: a u32 length, then that many bytes.
    let mut head: Vec<u8> = Vec::new();
    let header_len = loop {
        if head.len() >= 4 {
            let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
            if len > MAX_SNAPSHOT_HEADER {
                return Err(ReceiveError::Body(format!("header of {len} bytes")));
            }
            if head.len() >= 4 + len {
                break len;
            }
        }
        match next_chunk(&mut stream).await? {
            Some(chunk) => head.extend_from_slice(&chunk),
            None => return Err(ReceiveError::Body("no header".into())),
        }
    };
    let header: SnapshotHeader = placement_types::decode(&head[4..4 + header_len])
        .map_err(|e| ReceiveError::Body(format!("header: {e}")))?;
    let leader =
        guard::snapshot_request(&header.vote, &header.meta).map_err(ReceiveError::Refused)?;
    sender.speaks_for(leader).map_err(ReceiveError::Refused)?;
    if header.len > MAX_SNAPSHOT_BYTES {
        return Err(ReceiveError::Refused(Refusal::Insane(format!(
            "a snapshot of {} bytes is larger than {MAX_SNAPSHOT_BYTES}",
            header.len
        ))));
    }
    let current = node.current_vote();
    if !matches!(
        header.vote.partial_cmp(&current),
        Some(std::cmp::Ordering::Greater | std::cmp::Ordering::Equal)
    ) {
        return Err(ReceiveError::Stale(current));
    }
    let dir = path
        .parent()
        .ok_or_else(|| ReceiveError::Body("no directory for incoming snapshots".into()))?;
    tokio::fs::create_dir_all(dir).await?;
    let free = free_space(dir)?;
    if free < space_needed(header.len) {
        return Err(ReceiveError::Body(format!(
            "a snapshot of {} bytes needs {} bytes free, {} has {free}",
            header.len,
            space_needed(header.len),
            node.data_dir().display()
        )));
    }

    let mut out = tokio::fs::File::create(path).await?;
    let mut written = 0u64;
    let mut pending = Some(Bytes::from(head.split_off(4 + header_len)));
    loop {
        let chunk = match pending.take() {
            Some(chunk) => chunk,
            None => match next_chunk(&mut stream).await? {
                Some(chunk) => chunk,
                None => break,
            },
        };
        written += chunk.len() as u64;
        if written > header.len {
            return Err(ReceiveError::Body(format!(
                "more than the {} bytes the header declared",
                header.len
            )));
        }
        out.write_all(&chunk).await?;
    }
    out.flush().await?;
    drop(out);
    if written != header.len {
        return Err(ReceiveError::Body(format!(
            "received {written} of {} bytes",
            header.len
        )));
    }
    Ok(header)
}
