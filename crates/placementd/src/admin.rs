//! The admin API: cluster status, membership changes, state digests and snapshots, as JSON
//! under `/admin/` on the **peer port** (which belongs on the cluster's private network, next
//! to Raft itself; it is never behind the client load balancer and has no Keystone auth).
//! `placementd cluster …` (`cli.rs`) is its client.
//!
//! | method and path              | does                                                   |
//! |------------------------------|--------------------------------------------------------|
//! | `GET /admin/status`          | this node's Raft status and the membership             |
//! | `GET /admin/digest`          | SHA-256 of the state machine (after a read barrier)    |
//! | `POST /admin/members`        | add `{"id","api_addr","peer_addr"}`: learner → voter   |
//! | `DELETE /admin/members/{id}` | remove a member                                        |
//! | `POST /admin/snapshot`       | build a snapshot now (and compact the log)             |
//! | `GET /admin/backup`          | a snapshot covering every acknowledged write, streamed |
//! | `POST /admin/leader`         | on the leader, hand leadership to `{"to": ID}` (waits) |
//! | `POST /admin/import`         | propose one import batch (`placementd import`, bincode)|
//!
//! `/admin/status` names the node's placementd `version`, so that `placement-status upgrade
//! check` can tell whether every member runs the same one.
//!
//! A backup is a snapshot file (checksummed; `x-placementd-backup-index` names the log index
//! it covers); `placementd restore` turns it into the data directory of a new cluster's first
//! member.
//!
//! Any member serves every call; membership changes are forwarded to the leader. Errors are
//! `{"error": "..."}` with 400 (the request cannot be carried out as asked), 403 (the caller
//! may not use the admin API) or 503 (the cluster could not do it now: no leader, no quorum,
//! timeout).
//!
//! # Who may call it
//! With TLS on the peer port, a caller presents a certificate from the cluster CA: `admin`
//! (an operator, `placementd cert admin`) or a current member's `node<ID>` may call; any other
//! certificate — a removed node's, one of another name — gets 403 (`placement_raft::guard`).
//! Without TLS anyone who reaches the port may, which is why the node warns at start when
//! the peer port is not on loopback.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use placement_net::ConnInfo;
use placement_raft::{MembershipChange, NodeId, PeerNode, PlacementNode};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::io::AsyncSeekExt;

/// The admin paths (shared with the CLI).
pub mod paths {
    pub const STATUS: &str = "/admin/status";
    pub const DIGEST: &str = "/admin/digest";
    pub const MEMBERS: &str = "/admin/members";
    pub const SNAPSHOT: &str = "/admin/snapshot";
    pub const BACKUP: &str = "/admin/backup";
    pub const LEADER: &str = "/admin/leader";
    pub const IMPORT: &str = "/admin/import";
    /// Response header of a backup: the log index it covers.
    pub const BACKUP_INDEX_HEADER: &str = "x-placementd-backup-index";
}

type Node = Arc<PlacementNode>;

/// The admin routes for `node` (merged into the peer port's router by `main`).
pub fn router(node: Node) -> Router {
    Router::new()
        .route(paths::STATUS, get(status))
        .route(paths::DIGEST, get(digest))
        .route(paths::MEMBERS, post(add_member))
        .route(&format!("{}/{{id}}", paths::MEMBERS), delete(remove_member))
        .route(paths::SNAPSHOT, post(snapshot))
        .route(paths::BACKUP, get(backup))
        .route(paths::LEADER, post(transfer_leader))
        .route(
            paths::IMPORT,
            post(import).layer(axum::extract::DefaultBodyLimit::max(
                crate::import::load::MAX_IMPORT_BODY,
            )),
        )
        .with_state(node.clone())
        .layer(axum::middleware::from_fn_with_state(node, authorize))
}

/// Lets through only callers the admin API admits (see the module doc).
async fn authorize(
    State(node): State<Node>,
    conn: Option<Extension<ConnInfo>>,
    request: Request,
    next: Next,
) -> Response {
    let conn = conn.map(|Extension(c)| c);
    if let Err(refusal) = node.authorize_admin(conn.as_ref()) {
        tracing::warn!(
            from = ?conn.as_ref().map(|c| c.remote),
            client = ?conn.as_ref().and_then(|c| c.client.as_ref()).map(|i| i.to_string()),
            path = %request.uri().path(),
            %refusal,
            "refused an admin request"
        );
        return error(StatusCode::FORBIDDEN, refusal);
    }
    next.run(request).await
}

/// `POST /admin/leader` body.
#[derive(Debug, Serialize, Deserialize)]
pub struct NewLeader {
    pub to: NodeId,
}

/// How long `POST /admin/leader` waits for the new leader (an election takes a few hundred
/// milliseconds; a target far behind needs to catch up first).
pub const TRANSFER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// `POST /admin/members` body.
#[derive(Debug, Serialize, Deserialize)]
pub struct NewMember {
    pub id: NodeId,
    pub api_addr: String,
    pub peer_addr: String,
}

fn error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, Json(json!({ "error": message.to_string() }))).into_response()
}

fn raft_error(e: placement_raft::Error) -> Response {
    let status = match e {
        placement_raft::Error::Refused(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    error(status, e)
}

async fn status(State(node): State<Node>) -> Response {
    let s = node.status();
    let members = node.members();
    let role = if s.is_leader {
        "leader"
    } else if members.iter().any(|m| m.id == s.id && m.voter) {
        "follower"
    } else if s.member {
        "learner"
    } else {
        "not a member"
    };
    Json(json!({
        "node_id": s.id,
        "version": env!("CARGO_PKG_VERSION"),
        "role": role,
        "ready": s.ready(),
        "leader": s.leader,
        "term": s.term,
        "last_log_index": s.last_log_index,
        "committed_index": s.committed_index,
        "applied_index": s.applied_index,
        "snapshot_index": s.snapshot_index,
        "purged_index": s.purged_index,
        "quorum_ack_ms": s.quorum_ack_age.map(|age| age.as_millis() as u64),
        "members": members,
    }))
    .into_response()
}

async fn digest(State(node): State<Node>) -> Response {
    match node.digest().await {
        Ok(d) => Json(json!({
            "node_id": node.id(),
            "applied_index": d.applied_index,
            "records": d.records,
            "sha256": d.sha256,
        }))
        .into_response(),
        Err(e) => raft_error(e),
    }
}

async fn add_member(
    State(node): State<Node>,
    body: Result<Json<NewMember>, JsonRejection>,
) -> Response {
    let Json(new) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    if new.id == 0 {
        return error(StatusCode::BAD_REQUEST, "node ids start at 1");
    }
    let change = MembershipChange::Add {
        id: new.id,
        node: PeerNode {
            api_addr: new.api_addr,
            peer_addr: new.peer_addr,
        },
    };
    match node.change_membership(change).await {
        Ok(outcome) => Json(outcome).into_response(),
        Err(e) => raft_error(e),
    }
}

async fn remove_member(State(node): State<Node>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<NodeId>() else {
        return error(StatusCode::BAD_REQUEST, format!("`{id}` is not a node id"));
    };
    match node
        .change_membership(MembershipChange::Remove { id })
        .await
    {
        Ok(outcome) => Json(outcome).into_response(),
        Err(e) => raft_error(e),
    }
}

async fn transfer_leader(
    State(node): State<Node>,
    body: Result<Json<NewLeader>, JsonRejection>,
) -> Response {
    let Json(NewLeader { to }) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    match node.transfer_leadership(to, TRANSFER_TIMEOUT).await {
        Ok(()) => Json(json!({ "leader": to })).into_response(),
        Err(e) => raft_error(e),
    }
}

async fn snapshot(State(node): State<Node>) -> Response {
    match node.trigger_snapshot().await {
        Ok(()) => (
            StatusCode::ACCEPTED,
            Json(json!({ "snapshot": "requested", "node_id": node.id() })),
        )
            .into_response(),
        Err(e) => raft_error(e),
    }
}

async fn backup(State(node): State<Node>) -> Response {
    let snapshot = match node.backup_snapshot().await {
        Ok(s) => s,
        Err(e) => return raft_error(e),
    };
    let index = snapshot
        .meta
        .last_log_id
        .as_ref()
        .map(|id| id.index.to_string())
        .unwrap_or_default();
    let mut file = tokio::fs::File::from_std(snapshot.snapshot.into_file());
    if let Err(e) = file.rewind().await {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("snapshot file: {e}"),
        );
    }
    (
        [
            ("content-type", "application/octet-stream".to_string()),
            (paths::BACKUP_INDEX_HEADER, index),
        ],
        axum::body::Body::from_stream(placement_raft::file_chunks(file)),
    )
        .into_response()
}

/// `POST /admin/import`: one batch of `placementd import` (an `ImportRequest`, bincode),
/// proposed as one `Command::Import` entry through the normal write path (a follower
/// forwards it to the leader; the request id dedupes a retried batch). 200 once applied;
/// 409/400 with the state machine's refusal (the target is not empty, a record collides).
async fn import(State(node): State<Node>, body: axum::body::Bytes) -> Response {
    use crate::import::load::ImportRequest;
    use placement_types::{Command, ErrorKind, Timestamp};
    let request: ImportRequest = match placement_types::decode(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("import batch: {e}")),
    };
    let seq = request.batch.seq;
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
    let write = placement_types::Request {
        id: request.id,
        at: Timestamp(at),
        command: Command::Import(Box::new(request.batch)),
    };
    match node.write(write).await {
        Ok(Ok(_)) => {
            tracing::info!(seq, request_id = %request.id, "import batch applied");
            Json(json!({ "seq": seq, "applied": true })).into_response()
        }
        Ok(Err(refusal)) => {
            let status = match refusal.kind {
                ErrorKind::Conflict => StatusCode::CONFLICT,
                _ => StatusCode::BAD_REQUEST,
            };
            tracing::warn!(seq, request_id = %request.id, %refusal, "import batch refused");
            error(status, refusal.detail)
        }
        Err(e) => raft_error(e),
    }
}
