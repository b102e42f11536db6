//! `/healthz` and `/readyz` for load balancers and supervisors, on the API port.
//!
//! - `GET /healthz` → 200 while the process serves HTTP (liveness: restart it if this fails).
//! - `GET /readyz` → 200 when the node is a member of the cluster, knows a leader and has
//!   applied within [`placement_raft::READY_MAX_APPLY_LAG`] entries of its commit index —
//!   and, on a leader, was acknowledged by a quorum within
//!   [`placement_raft::LEADER_CONTACT_TIMEOUT`]; 503 otherwise (take it out of rotation). Both bodies are a small JSON status so an
//!   operator can see why.
//!
//! They bypass Placement's auth, microversion and policy pipeline: a load balancer has no
//! token. They reveal nothing but Raft progress numbers.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use placement_raft::PlacementNode;

/// The health routes for `node` (merged into the API router by `main`).
pub fn router(node: Arc<PlacementNode>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(move || readyz(node.clone())))
}

async fn readyz(node: Arc<PlacementNode>) -> Response {
    let s = node.status();
    let ready = s.ready();
    let body = serde_json::json!({
        "ready": ready,
        "node_id": s.id,
        "leader": s.leader,
        "is_leader": s.is_leader,
        "member": s.member,
        "term": s.term,
        "committed_index": s.committed_index,
        "applied_index": s.applied_index,
        "quorum_ack_ms": s.quorum_ack_age.map(|age| age.as_millis() as u64),
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}
