//! The metrics endpoint: `GET /metrics` on `--metrics-listen` (`[placementd]
//! metrics_listen`), in Prometheus's text format 0.0.4. Off unless an address is given.
//!
//! It is a port of its own, never the API port (which sits behind Keystone: a scraper has
//! no token) nor the peer port (members only). It speaks plain HTTP without authentication,
//! so bind it to a management network or loopback (`docs/operations.md`). It is served by
//! `placement_net::serve` like the other ports: connection cap, header timeout, bounded
//! heads. Anything but `GET /metrics` (or `HEAD`) is 404.
//!
//! A scrape is the catalog of counters and histograms the code updates as it runs
//! (`placement_metrics::catalog`), plus values read from the node now: Raft's term, leader
//! and indexes ([`PlacementNode::status`]), replication lag per follower on the leader, and
//! RocksDB's size. It is served before the node has a leader, so a node stuck in an
//! election is visible to the alerts meant for it.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use placement_metrics::{Kind, Text};
use placement_raft::PlacementNode;

/// The metrics port's router.
pub(crate) fn router(node: Arc<PlacementNode>) -> Router {
    Router::new()
        .route("/metrics", get(scrape).fallback(not_found))
        .fallback(not_found)
        .with_state(node)
        .layer(axum::middleware::from_fn(
            placement_net::layers::catch_panic,
        ))
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        "Not found: the metrics are at GET /metrics.\n",
    )
        .into_response()
}

async fn scrape(State(node): State<Arc<PlacementNode>>) -> Response {
    let text = render(&node);
    (
        [(header::CONTENT_TYPE, placement_metrics::CONTENT_TYPE)],
        text,
    )
        .into_response()
}

/// The whole scrape: values read from the node now, then the catalog.
pub(crate) fn render(node: &PlacementNode) -> String {
    let mut out = Text::new();
    out.header(
        "placementd_build_info",
        "The running placementd's version (always 1).",
        Kind::Gauge,
    );
    out.sample(
        "placementd_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1.0,
    );
    raft(node, &mut out);
    storage(node, &mut out);
    placement_metrics::catalog::encode(&mut out);
    out.finish()
}

/// A log index as a gauge value: 0 when there is none yet (openraft numbers the first
/// entry 0, so the two read alike; only a brand-new cluster is ever there).
fn index(i: Option<u64>) -> f64 {
    i.map_or(0.0, |i| i as f64)
}

fn raft(node: &PlacementNode, out: &mut Text) {
    let s = node.status();
    out.gauge(
        "placementd_raft_node_id",
        "This node's Raft id.",
        s.id as f64,
    );
    out.gauge(
        "placementd_raft_term",
        "The current Raft term.",
        s.term as f64,
    );
    out.gauge(
        "placementd_raft_leader_id",
        "The leader's node id as this node knows it (0: no leader known).",
        s.leader.unwrap_or(0) as f64,
    );
    out.gauge(
        "placementd_raft_has_leader",
        "1 if this node knows a leader, 0 during an election or when cut off.",
        if s.leader.is_some() { 1.0 } else { 0.0 },
    );
    out.gauge(
        "placementd_raft_is_leader",
        "1 on the leader, 0 elsewhere (sums to 1 over a healthy cluster).",
        if s.is_leader { 1.0 } else { 0.0 },
    );
    out.gauge(
        "placementd_raft_last_log_index",
        "Index of the last entry in this node's Raft log.",
        index(s.last_log_index),
    );
    out.gauge(
        "placementd_raft_commit_index",
        "Index of the last entry this node knows is committed.",
        index(s.committed_index),
    );
    out.gauge(
        "placementd_raft_applied_index",
        "Index of the last entry applied to this node's state machine.",
        index(s.applied_index),
    );
    out.gauge(
        "placementd_raft_snapshot_index",
        "Last log index covered by this node's current snapshot.",
        index(s.snapshot_index),
    );
    out.gauge(
        "placementd_raft_voters",
        "Voters in the current membership.",
        s.voters as f64,
    );
    out.gauge(
        "placementd_raft_running",
        "1 while Raft runs, 0 once it stopped (shutdown or a storage failure).",
        if s.stopped { 0.0 } else { 1.0 },
    );
    if let Some(age) = s.quorum_ack_age {
        out.gauge(
            "placementd_raft_quorum_ack_age_seconds",
            "On the leader: time since a quorum last acknowledged it.",
            age.as_secs_f64(),
        );
    }
    let lag_name = "placementd_raft_replication_lag_entries";
    out.header(
        lag_name,
        "On the leader: log entries each follower still lacks (absent on followers).",
        Kind::Gauge,
    );
    for lag in node.replication_lag() {
        let follower = lag.follower.to_string();
        out.sample(lag_name, &[("follower", &follower)], lag.entries as f64);
    }
}

fn storage(node: &PlacementNode, out: &mut Text) {
    match node.sst_bytes() {
        Ok(sizes) => {
            out.gauge(
                "placementd_storage_rocksdb_total_sst_bytes",
                "RocksDB's SST files, obsolete ones not yet deleted included \
                 (rocksdb.total-sst-files-size).",
                sizes.total as f64,
            );
            out.gauge(
                "placementd_storage_rocksdb_live_sst_bytes",
                "RocksDB's SST files of the current version (rocksdb.live-sst-files-size).",
                sizes.live as f64,
            );
        }
        Err(e) => tracing::debug!(error = %e, "RocksDB sizes not read for a scrape"),
    }
}
