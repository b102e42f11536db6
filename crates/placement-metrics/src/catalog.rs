//! Every metric placementd updates as it runs, with its name, type and meaning. Each is
//! updated by one line at the place it measures (named in its doc). `docs/operations.md`
//! lists them for operators, with the values the binary reads at scrape time (Raft's term
//! and indexes, replication lag, RocksDB size) which are not kept here.
//!
//! Bucket bounds are in the unit observed (nanoseconds, entries) and named below.

use std::sync::Arc;

use crate::family::Family;
use crate::metric::{Counter, Gauge, Histogram, Metric};
use crate::text::{Encode, Text};

const MS: u64 = 1_000_000;
const US: u64 = 1_000;
const S: u64 = 1_000_000_000;

/// A synced RocksDB write: from a tenth of a millisecond (NVMe) to seconds (a stalled disk).
const FSYNC_BOUNDS: &[u64] = &[
    100 * US,
    250 * US,
    500 * US,
    MS,
    2 * MS + 500 * US,
    5 * MS,
    10 * MS,
    25 * MS,
    50 * MS,
    100 * MS,
    250 * MS,
    500 * MS,
    S,
    2 * S + 500 * MS,
];

/// Applying a batch of committed entries: tens of microseconds to a large reshape.
const APPLY_BOUNDS: &[u64] = &[
    10 * US,
    25 * US,
    50 * US,
    100 * US,
    250 * US,
    500 * US,
    MS,
    2 * MS + 500 * US,
    5 * MS,
    10 * MS,
    25 * MS,
    50 * MS,
    100 * MS,
    250 * MS,
    S,
];

/// An HTTP request: a cached read to an allocation-candidates search on a large cloud.
const HTTP_BOUNDS: &[u64] = &[
    MS,
    2 * MS + 500 * US,
    5 * MS,
    10 * MS,
    25 * MS,
    50 * MS,
    100 * MS,
    250 * MS,
    500 * MS,
    S,
    2 * S + 500 * MS,
    5 * S,
    10 * S,
];

/// Building, sending, receiving or installing a snapshot: a small state to a large cloud's.
const SNAPSHOT_BOUNDS: &[u64] = &[
    10 * MS,
    50 * MS,
    100 * MS,
    250 * MS,
    500 * MS,
    S,
    2 * S + 500 * MS,
    5 * S,
    10 * S,
    30 * S,
    60 * S,
    120 * S,
    300 * S,
];

/// Entries per batch (log append, apply): 1 when idle, up to openraft's batch limit.
const BATCH_BOUNDS: &[u64] = &[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

// ---------------------------------------------------------------------------- Raft

/// `placement-raft` `observe.rs`, `spawn_leader_watch` (a watcher of openraft's metrics channel).
pub static RAFT_LEADER_CHANGES: Metric<Counter> = Metric::new(
    "placementd_raft_leader_changes_total",
    "Times this node saw a new leader (a different node id, or the same after none).",
    Counter::new(),
);
/// `placement-raft` `node/writes.rs`, `write_local_indexed` (the leader's proposals).
pub static RAFT_PROPOSALS_COMMITTED: Metric<Counter> = Metric::new(
    "placementd_raft_proposals_committed_total",
    "Writes this node proposed as leader that were committed and applied.",
    Counter::new(),
);
pub static RAFT_PROPOSALS_FAILED: Metric<Counter> = Metric::new(
    "placementd_raft_proposals_failed_total",
    "Writes this node proposed (or tried to, as a former leader) that failed: not leader, \
     no quorum in time, discarded by a new leader, or Raft stopped.",
    Counter::new(),
);
pub static RAFT_PROPOSALS_PENDING: Metric<Gauge> = Metric::new(
    "placementd_raft_proposals_pending",
    "Writes proposed on this node that are not yet committed and applied.",
    Gauge::new(),
);
/// `placement-raft` `node/writes.rs`, `forward_write` (a follower's side).
pub static RAFT_FORWARDED_WRITES: Metric<Counter> = Metric::new(
    "placementd_raft_forwarded_writes_total",
    "Client writes this node forwarded to the leader (attempts; a retry counts again).",
    Counter::new(),
);
/// `placement-raft` `forward.rs`, one batch call to the leader.
pub static RAFT_FORWARD_BATCH: Metric<Histogram> = Metric::new(
    "placementd_raft_forward_batch_writes",
    "Forwarded writes per call to the leader (writes queued while earlier calls were in \
     flight travel together).",
    Histogram::new(BATCH_BOUNDS, 1.0),
);
/// `placement-raft` `transport/server.rs`, the forwarded-write handler (the leader's side).
pub static RAFT_FORWARDED_WRITES_SERVED: Metric<Counter> = Metric::new(
    "placementd_raft_forwarded_writes_served_total",
    "Writes other members forwarded to this node to propose as leader.",
    Counter::new(),
);
/// `placement-raft` `transport/channel.rs`, a channel dialled to another member.
pub static PEER_CHANNELS_OPENED: Metric<Counter> = Metric::new(
    "placementd_peer_channels_opened_total",
    "Peer channels this node opened to other members (one per member while it stays up; a \
     steady rise means channels keep breaking).",
    Counter::new(),
);
/// `placement-raft` `transport/channel.rs`, a call to a member that takes no channels.
pub static PEER_HTTP_FALLBACKS: Metric<Counter> = Metric::new(
    "placementd_peer_http_fallback_calls_total",
    "Peer calls sent over HTTP because the member does not take channels (a version before \
     them, during a rolling upgrade).",
    Counter::new(),
);
/// `placement-raft` `transport/client.rs`, `full_snapshot`.
pub static RAFT_SNAPSHOT_SEND: Metric<Histogram> = Metric::new(
    "placementd_raft_snapshot_send_duration_seconds",
    "Time to stream a snapshot to a follower and have it installed there (successful sends).",
    Histogram::seconds(SNAPSHOT_BOUNDS),
);
/// `placement-raft` `transport/server.rs`, the snapshot handler.
pub static RAFT_SNAPSHOT_RECEIVE: Metric<Histogram> = Metric::new(
    "placementd_raft_snapshot_receive_duration_seconds",
    "Time to receive a snapshot's bytes from the leader (before installing it).",
    Histogram::seconds(SNAPSHOT_BOUNDS),
);

// ---------------------------------------------------------------------------- storage

/// `placement-storage` `log_store.rs`, `append`.
pub static LOG_FSYNC: Metric<Histogram> = Metric::new(
    "placementd_storage_log_fsync_duration_seconds",
    "Time of one synced write of appended Raft log entries (WAL write and fsync).",
    Histogram::seconds(FSYNC_BOUNDS),
);
pub static LOG_APPEND_ENTRIES: Metric<Histogram> = Metric::new(
    "placementd_storage_log_append_entries",
    "Raft log entries written per synced append (the group-commit batch size).",
    Histogram::new(BATCH_BOUNDS, 1.0),
);
/// `placement-storage` `state_machine.rs`, `apply`.
pub static APPLY: Metric<Histogram> = Metric::new(
    "placementd_storage_apply_duration_seconds",
    "Time to apply one batch of committed entries (all its entries and their one database \
     write), per batch.",
    Histogram::seconds(APPLY_BOUNDS),
);
pub static APPLY_ENTRIES: Metric<Histogram> = Metric::new(
    "placementd_storage_apply_entries",
    "Committed entries per applied batch.",
    Histogram::new(BATCH_BOUNDS, 1.0),
);
/// `placement-storage` `state_machine.rs`, the request-id table's hit.
pub static DEDUPE_HITS: Metric<Counter> = Metric::new(
    "placementd_storage_dedupe_hits_total",
    "Entries not applied because their request id was already applied (a retried forward), \
     answered with the first outcome.",
    Counter::new(),
);
/// `placement-storage` `state_machine.rs`, the snapshot builder.
pub static SNAPSHOT_BUILD: Metric<Histogram> = Metric::new(
    "placementd_storage_snapshot_build_duration_seconds",
    "Time to build a snapshot file from the state machine.",
    Histogram::seconds(SNAPSHOT_BOUNDS),
);
/// `placement-storage` `state_machine.rs`, `install_snapshot`.
pub static SNAPSHOT_INSTALL: Metric<Histogram> = Metric::new(
    "placementd_storage_snapshot_install_duration_seconds",
    "Time to install a received snapshot (copy, verify, replace the state).",
    Histogram::seconds(SNAPSHOT_BOUNDS),
);

// ---------------------------------------------------------------------------- HTTP

fn new_histogram_http() -> Histogram {
    Histogram::seconds(HTTP_BOUNDS)
}

/// `placementd` `observe.rs`, around the API router.
pub static HTTP_REQUESTS: Family<Counter, 3> = Family::new(
    "placementd_http_requests_total",
    "API requests answered, by method, route template and status code.",
    ["method", "route", "status"],
    Counter::new,
);
pub static HTTP_DURATION: Family<Histogram, 2> = Family::new(
    "placementd_http_request_duration_seconds",
    "Time from a request's arrival to its response head, by method and route template.",
    ["method", "route"],
    new_histogram_http,
);

/// Records one answered API request (`route` is a template, never a raw path).
pub fn http_request(method: &str, route: &str, status: &str, elapsed: std::time::Duration) {
    HTTP_REQUESTS.with([method, route, status]).inc();
    let latency: Arc<Histogram> = HTTP_DURATION.with([method, route]);
    latency.observe_duration(elapsed);
}

// ---------------------------------------------------------------------------- Keystone

/// `placement-keystone` `lib.rs`, `verdict`.
pub static TOKEN_CACHE_HITS: Metric<Counter> = Metric::new(
    "placementd_keystone_token_cache_hits_total",
    "Token validations answered from the token cache.",
    Counter::new(),
);
pub static TOKEN_CACHE_MISSES: Metric<Counter> = Metric::new(
    "placementd_keystone_token_cache_misses_total",
    "Token validations that had to ask Keystone (or wait for a request asking it).",
    Counter::new(),
);
pub static TOKENS_REFUSED: Metric<Counter> = Metric::new(
    "placementd_keystone_tokens_refused_total",
    "Tokens Keystone refused (401 to the client).",
    Counter::new(),
);
pub static KEYSTONE_UNAVAILABLE: Metric<Counter> = Metric::new(
    "placementd_keystone_unavailable_total",
    "Token validations that failed because Keystone could not be reached or answered an \
     error (503 to the client).",
    Counter::new(),
);

/// Every metric above, in scrape order.
fn all() -> [&'static dyn Encode; 24] {
    [
        &RAFT_LEADER_CHANGES,
        &RAFT_PROPOSALS_COMMITTED,
        &RAFT_PROPOSALS_FAILED,
        &RAFT_PROPOSALS_PENDING,
        &RAFT_FORWARDED_WRITES,
        &RAFT_FORWARD_BATCH,
        &RAFT_FORWARDED_WRITES_SERVED,
        &PEER_CHANNELS_OPENED,
        &PEER_HTTP_FALLBACKS,
        &RAFT_SNAPSHOT_SEND,
        &RAFT_SNAPSHOT_RECEIVE,
        &LOG_FSYNC,
        &LOG_APPEND_ENTRIES,
        &APPLY,
        &APPLY_ENTRIES,
        &DEDUPE_HITS,
        &SNAPSHOT_BUILD,
        &SNAPSHOT_INSTALL,
        &HTTP_REQUESTS,
        &HTTP_DURATION,
        &TOKEN_CACHE_HITS,
        &TOKEN_CACHE_MISSES,
        &TOKENS_REFUSED,
        &KEYSTONE_UNAVAILABLE,
    ]
}

/// Writes every metric of this catalog into `out`.
pub fn encode(out: &mut Text) {
    for metric in all() {
        metric.encode(out);
    }
}
