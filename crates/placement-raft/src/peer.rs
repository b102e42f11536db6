//! The peer transport, server side: the axum router served on a node's peer port.
//!
//! Handlers decode a bincode body, hand it to this node's Raft (or to [`PlacementNode`] for
//! forwarded writes and read indexes), and answer `200` with a bincode
//! `Result<response, error>`; a body that does not decode is a `400`. The wire is described in
//! `network.rs`, which is the client of these routes.
//!
//! A streamed snapshot is written to `<data dir>/incoming/<random>.snap` as it arrives, its
//! length checked against the header, and only then installed (the state machine verifies the
//! file's checksum and copies it); the incoming file is removed afterwards either way.
//!
//! Left out: authentication of peers (the peer port belongs on a private network).

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use futures::StreamExt;
use openraft::raft::{AppendEntriesRequest, TransferLeaderRequest, VoteRequest};
use placement_storage::SnapshotFile;
use placement_types::Request;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::AsyncWriteExt;

use crate::network::{paths, MembershipChange, PeerError, SnapshotHeader};
use crate::{Error, PlacementNode, TypeConfig};

/// Largest non-snapshot body accepted on the peer port: an append of
/// [`crate::MAX_PAYLOAD_ENTRIES`] entries of large commands (a reshape of many providers)
/// stays far below it.
pub const MAX_PEER_BODY: usize = 256 << 20;

/// Largest snapshot header (vote + metadata with the membership).
const MAX_SNAPSHOT_HEADER: usize = 16 << 20;

type Node = Arc<PlacementNode>;

/// The peer port's router for `node`.
pub fn peer_router(node: Node) -> Router {
    Router::new()
        .route(paths::APPEND, post(append))
        .route(paths::VOTE, post(vote))
        .route(paths::PRE_VOTE, post(pre_vote))
        .route(paths::WRITE, post(forwarded_write))
        .route(paths::READ_INDEX, post(read_index))
        .route(paths::TRANSFER_LEADER, post(transfer_leader))
        .route(paths::MEMBERSHIP, post(membership))
        .layer(DefaultBodyLimit::max(MAX_PEER_BODY))
        .route(
            paths::SNAPSHOT,
            post(snapshot).layer(DefaultBodyLimit::disable()),
        )
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

fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    placement_types::decode(body).map_err(|e| format!("bad body: {e}"))
}

fn bad_body(message: String) -> Response {
    (StatusCode::BAD_REQUEST, message).into_response()
}

async fn append(State(node): State<Node>, body: Bytes) -> Response {
    let rpc: AppendEntriesRequest<TypeConfig> = match decode_body(&body) {
        Ok(rpc) => rpc,
        Err(e) => return bad_body(e),
    };
    let answer = node.raft().append_entries(rpc).await;
    bincode_response(&answer.map_err(|e| e.to_string()))
}

async fn vote(State(node): State<Node>, body: Bytes) -> Response {
    let rpc: VoteRequest<TypeConfig> = match decode_body(&body) {
        Ok(rpc) => rpc,
        Err(e) => return bad_body(e),
    };
    let answer = node.raft().vote(rpc).await;
    bincode_response(&answer.map_err(|e| e.to_string()))
}

async fn pre_vote(State(node): State<Node>, body: Bytes) -> Response {
    let rpc: VoteRequest<TypeConfig> = match decode_body(&body) {
        Ok(rpc) => rpc,
        Err(e) => return bad_body(e),
    };
    let answer = node.raft().pre_vote(rpc).await;
    bincode_response(&answer.map_err(|e| e.to_string()))
}

async fn transfer_leader(State(node): State<Node>, body: Bytes) -> Response {
    let rpc: TransferLeaderRequest<TypeConfig> = match decode_body(&body) {
        Ok(rpc) => rpc,
        Err(e) => return bad_body(e),
    };
    let answer = node.raft().handle_transfer_leader(rpc).await;
    bincode_response(&answer.map_err(|e| e.to_string()))
}

async fn membership(State(node): State<Node>, body: Bytes) -> Response {
    let change: MembershipChange = match decode_body(&body) {
        Ok(c) => c,
        Err(e) => return bad_body(e),
    };
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

async fn forwarded_write(State(node): State<Node>, body: Bytes) -> Response {
    let request: Request = match decode_body(&body) {
        Ok(r) => r,
        Err(e) => return bad_body(e),
    };
    // Only the local Raft: a forwarded write is never forwarded again (no loops); the sender
    // retries on the leader it learns of.
    let answer = node.write_local_indexed(request).await.map_err(peer_error);
    bincode_response(&answer)
}

async fn read_index(State(node): State<Node>, body: Bytes) -> Response {
    if let Err(e) = decode_body::<()>(&body) {
        return bad_body(e);
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
}

async fn snapshot(State(node): State<Node>, body: Body) -> Response {
    let path = node.incoming_snapshot_path();
    let received = receive_snapshot(&path, body).await;
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

/// Reads the header and writes the file bytes of a snapshot body to `path`.
async fn receive_snapshot(path: &PathBuf, body: Body) -> Result<SnapshotHeader, ReceiveError> {
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await?;
    }
    let mut stream = body.into_data_stream();
    let mut head: Vec<u8> = Vec::new();
    let mut header: Option<SnapshotHeader> = None;
    let mut out = tokio::fs::File::create(path).await?;
    let mut written = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ReceiveError::Body(e.to_string()))?;
        let mut rest: &[u8] = &chunk;
        if header.is_none() {
            head.extend_from_slice(rest);
            rest = &[];
            if head.len() >= 4 {
                let mut len4 = [0u8; 4];
                len4.copy_from_slice(&head[..4]);
                let len = u32::from_be_bytes(len4) as usize;
                if len > MAX_SNAPSHOT_HEADER {
                    return Err(ReceiveError::Body(format!("header of {len} bytes")));
                }
                if head.len() >= 4 + len {
                    let h: SnapshotHeader = placement_types::decode(&head[4..4 + len])
                        .map_err(|e| ReceiveError::Body(format!("header: {e}")))?;
                    header = Some(h);
                    let tail = head.split_off(4 + len);
                    out.write_all(&tail).await?;
                    written += tail.len() as u64;
                }
            }
        }
        if !rest.is_empty() {
            out.write_all(rest).await?;
            written += rest.len() as u64;
        }
    }
    out.flush().await?;
    let header = header.ok_or_else(|| ReceiveError::Body("no header".into()))?;
    if written != header.len {
        return Err(ReceiveError::Body(format!(
            "received {written} of {} bytes",
            header.len
        )));
    }
    Ok(header)
}
