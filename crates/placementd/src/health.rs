//! `/healthz` and `/readyz` for load balancers and supervisors, on the API port.
//!
//! - `GET /healthz` → 200 while the process serves HTTP (liveness: restart it if this fails).
//! - `GET /readyz` → 200 when the node is ready for client traffic, 503 otherwise (take it out
//!   of rotation). The body is a small JSON status (Raft progress numbers and a `checks`
//!   summary, `{"leader": "ok", "storage": "fail", …}`) so an operator can see why.
//! - `GET /readyz?verbose` → the same status, with each check's reason:
//!
//! | check      | ok when                                                                      |
//! |------------|------------------------------------------------------------------------------|
//! | `member`   | the node runs and is a voter or learner of the current membership            |
//! | `leader`   | a leader is known                                                            |
//! | `applied`  | applied within [`placement_raft::READY_MAX_APPLY_LAG`] entries of its commit |
//! | `quorum`   | on the leader of a multi-voter cluster: a quorum acknowledged it within      |
//! |            | [`placement_raft::LEADER_CONTACT_TIMEOUT`] (always ok on a follower)         |
//! | `storage`  | a scratch file in the data directory can be created, written and fsynced    |
//! | `keystone` | (only with Keystone auth) the last call to Keystone got an answer            |
//!
//! Ready means every check but `keystone` is ok. Keystone's reachability is shown, not
//! counted: every member shares one Keystone, so counting it would take the whole cluster out
//! of rotation at once, and the API answers 503 on its own while Keystone is down.
//!
//! The storage probe touches the disk at most once per [`STORAGE_PROBE_INTERVAL`] whatever
//! the polling rate (the result is cached; a failure is retried after
//! [`STORAGE_RETRY_INTERVAL`]; one probe runs at a time and concurrent checks wait for it),
//! and a check gives up waiting after [`STORAGE_PROBE_TIMEOUT`] (a hung disk is a failed
//! check, not a hung `/readyz`). Keystone's reachability is what the last token validation
//! or service login found: no request to Keystone is made for a probe.
//!
//! - `GET /readyz/leader` (also with `?verbose`) → 200 only when the node is ready *and* is
//!   the Raft leader, 503 otherwise, with the same body. A load balancer that sends writes
//!   to the backend this check selects saves the forwarding hop (the way Patroni's
//!   `/primary` check steers writes in HAProxy); `deploy/haproxy.cfg` shows how, with a
//!   fallback to every ready node while no leader passes. Any node still takes any write:
//!   this only picks the shortest path.
//!
//! They bypass Placement's auth, microversion and policy pipeline: a load balancer has no
//! token. They reveal nothing but Raft progress numbers and the reasons above.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use placement_api::auth::{AuthStrategy, Reachability};
use placement_raft::{NodeStatus, PlacementNode};
use serde_json::{json, Map, Value};

/// How long a storage probe's successful result is reused.
pub const STORAGE_PROBE_INTERVAL: Duration = Duration::from_secs(5);
/// How long a failed storage probe's result is reused before the disk is tried again.
pub const STORAGE_RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// How long a storage probe may take before it counts as failed.
pub const STORAGE_PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// The probe's scratch file, in the data directory.
const PROBE_FILE: &str = ".readyz-probe";

/// What `/readyz` looks at.
#[derive(Clone)]
struct Health {
    node: Arc<PlacementNode>,
    auth: AuthStrategy,
    storage: Arc<StorageProbe>,
}

/// A storage probe's result and when it was taken.
type Probed = (Instant, Result<(), String>);

/// The storage probe's last result, and whether one is running. At most one runs at a time,
/// whoever asked for it and whether or not they still wait: a probe belongs to a task of
/// its own, not to the request that started it. (It once belonged to the request: a load
/// balancer that gave up on a slow check dropped the request, the next check started a
/// second probe on the same scratch file, and one of the two failed to remove it - a
/// restarted node stayed out of rotation for one more probe interval.)
struct StorageProbe {
    /// The scratch file.
    path: PathBuf,
    state: std::sync::Mutex<ProbeState>,
    /// Woken when a probe finishes.
    done: tokio::sync::Notify,
}

#[derive(Default)]
struct ProbeState {
    last: Option<Probed>,
    running: bool,
}

impl StorageProbe {
    fn new(path: PathBuf) -> Arc<StorageProbe> {
        Arc::new(StorageProbe {
            path,
            state: Default::default(),
            done: Default::default(),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ProbeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The storage probe's result: the last one while it is fresh ([`STORAGE_PROBE_INTERVAL`]
    /// after a success, [`STORAGE_RETRY_INTERVAL`] after a failure), else a new probe's,
    /// waiting at most [`STORAGE_PROBE_TIMEOUT`] for it.
    async fn check(self: &Arc<Self>) -> Result<(), String> {
        let finished = {
            let mut state = self.state();
            if let Some((at, result)) = &state.last {
                let fresh = if result.is_ok() {
                    STORAGE_PROBE_INTERVAL
                } else {
                    STORAGE_RETRY_INTERVAL
                };
                if at.elapsed() < fresh {
                    return result.clone();
                }
            }
            // Registered before the probe can finish (under the state lock), so its
            // notification cannot be missed.
            let finished = self.done.notified();
            if !state.running {
                state.running = true;
                let probe = self.clone();
                let path = self.path.clone();
                tokio::spawn(async move {
                    let result = tokio::task::spawn_blocking(move || probe_dir(&path))
                        .await
                        .unwrap_or_else(|e| Err(format!("storage probe task: {e}")));
                    if let Err(e) = &result {
                        tracing::warn!(error = %e, "readiness: storage probe failed");
                    }
                    let mut state = probe.state();
                    state.last = Some((Instant::now(), result));
                    state.running = false;
                    drop(state);
                    probe.done.notify_waiters();
                });
            }
            finished
        };
        if tokio::time::timeout(STORAGE_PROBE_TIMEOUT, finished)
            .await
            .is_ok()
        {
            if let Some((_, result)) = &self.state().last {
                return result.clone();
            }
        }
        // Still running: a hung disk. Said as the result until the probe ends (or is retried).
        let e = format!(
            "writing a file in the data directory took more than {} s",
            STORAGE_PROBE_TIMEOUT.as_secs()
        );
        let mut state = self.state();
        if state.running {
            tracing::warn!(error = %e, "readiness: storage probe failed");
            state.last = Some((Instant::now(), Err(e.clone())));
        }
        Err(e)
    }
}

/// The health routes for `node` (merged into the API router by `main`); `auth` is the API's
/// authentication, whose Keystone reachability `/readyz` reports.
pub fn router(node: Arc<PlacementNode>, auth: AuthStrategy) -> Router {
    let health = Health {
        storage: StorageProbe::new(node.data_dir().join(PROBE_FILE)),
        node,
        auth,
    };
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/readyz/leader", get(readyz_leader))
        .with_state(health)
}

/// One check's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    /// Whether the check decides readiness.
    pub counts: bool,
    pub reason: String,
}

impl Check {
    fn new(name: &'static str, ok: bool, reason: String) -> Check {
        Check {
            name,
            ok,
            counts: true,
            reason,
        }
    }
}

/// The checks of the module doc, from a Raft status, the storage probe's result and (with
/// Keystone auth) Keystone's reachability.
pub fn checks(
    s: &NodeStatus,
    storage: &Result<(), String>,
    keystone: Option<Option<Reachability>>,
) -> Vec<Check> {
    let committed = s.committed_index.unwrap_or(0);
    let applied = s.applied_index.unwrap_or(0);
    let lag = committed.saturating_sub(applied);
    let mut out = vec![
        Check::new(
            "member",
            !s.stopped && s.member,
            if s.stopped {
                "the node has stopped".into()
            } else if s.member {
                "a member of the current membership".into()
            } else {
                "not (yet) a member of the cluster: add it with `placementd cluster add`".into()
            },
        ),
        Check::new(
            "leader",
            s.leader.is_some(),
            match s.leader {
                Some(id) if s.is_leader => format!("this node (node {id}) is the leader"),
                Some(id) => format!("node {id} is the leader"),
                None => {
                    "no leader known (an election is running, or no quorum is reachable)".into()
                }
            },
        ),
        Check::new(
            "applied",
            lag <= placement_raft::READY_MAX_APPLY_LAG,
            format!(
                "applied {applied} of {committed} committed ({lag} behind, at most {} allowed)",
                placement_raft::READY_MAX_APPLY_LAG
            ),
        ),
    ];
    let limit = placement_raft::LEADER_CONTACT_TIMEOUT;
    out.push(if !s.is_leader {
        Check::new("quorum", true, "not the leader".into())
    } else if s.voters <= 1 {
        Check::new("quorum", true, "the only voter".into())
    } else {
        match s.quorum_ack_age {
            Some(age) if age <= limit => Check::new(
                "quorum",
                true,
                format!("a quorum acknowledged {} ms ago", age.as_millis()),
            ),
            Some(age) => Check::new(
                "quorum",
                false,
                format!(
                    "no quorum acknowledged for {} ms (more than {} ms): the leader is cut off",
                    age.as_millis(),
                    limit.as_millis()
                ),
            ),
            None => Check::new("quorum", false, "no quorum acknowledged yet".into()),
        }
    });
    out.push(match storage {
        Ok(()) => Check::new("storage", true, "the data directory is writable".into()),
        Err(e) => Check::new("storage", false, e.clone()),
    });
    if let Some(reach) = keystone {
        let (ok, reason) = match reach {
            None => (false, "not contacted yet".to_string()),
            Some(r) => {
                let ago = r.age.as_secs();
                match r.error {
                    None => (true, format!("answered {ago} s ago")),
                    Some(e) => (false, format!("unreachable {ago} s ago: {e}")),
                }
            }
        };
        out.push(Check {
            name: "keystone",
            ok,
            counts: false,
            reason,
        });
    }
    out
}

/// Ready: every check that counts is ok.
pub fn ready(checks: &[Check]) -> bool {
    checks.iter().all(|c| c.ok || !c.counts)
}

async fn readyz(State(health): State<Health>, RawQuery(query): RawQuery) -> Response {
    health.answer(query, Role::Any).await
}

async fn readyz_leader(State(health): State<Health>, RawQuery(query): RawQuery) -> Response {
    health.answer(query, Role::Leader).await
}

/// What a probe asks of the node: to be ready, or to be ready and the leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Any,
    Leader,
}

impl Health {
    /// The status body, and 200 when the node is ready (and, for [`Role::Leader`], leads).
    async fn answer(&self, query: Option<String>, role: Role) -> Response {
        let verbose = query
            .as_deref()
            .unwrap_or("")
            .split('&')
            .any(|p| p == "verbose" || p.starts_with("verbose="));
        let s = self.node.status();
        let storage = self.storage.check().await;
        let keystone = match &self.auth {
            AuthStrategy::Keystone { validator, .. } => Some(validator.reachability()),
            AuthStrategy::Noauth2 => None,
        };
        let checks = checks(&s, &storage, keystone);
        let ready = ready(&checks);
        let mut summary = Map::new();
        for c in &checks {
            summary.insert(c.name.into(), if c.ok { "ok" } else { "fail" }.into());
        }
        let mut body = json!({
            "ready": ready,
            "node_id": s.id,
            "leader": s.leader,
            "is_leader": s.is_leader,
            "member": s.member,
            "term": s.term,
            "committed_index": s.committed_index,
            "applied_index": s.applied_index,
            "quorum_ack_ms": s.quorum_ack_age.map(|age| age.as_millis() as u64),
            "checks": summary,
        });
        if verbose {
            body["checks"] = Value::Array(
                checks
                    .iter()
                    .map(|c| {
                        json!({
                            "name": c.name,
                            "status": if c.ok { "ok" } else { "fail" },
                            "counts": c.counts,
                            "reason": c.reason,
                        })
                    })
                    .collect(),
            );
        }
        let status = if ready && (role == Role::Any || s.is_leader) {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        (status, Json(body)).into_response()
    }
}

/// Creates `path`, writes a few bytes, fsyncs them and removes it.
fn probe_dir(path: &Path) -> Result<(), String> {
    use std::io::Write;
    let fail = |what: &str, e: std::io::Error| {
        format!(
            "cannot {what} {} (is the disk full or read-only?): {e}",
            path.display()
        )
    };
    let mut file = std::fs::File::create(path).map_err(|e| fail("create", e))?;
    file.write_all(b"placementd readiness probe\n")
        .map_err(|e| fail("write", e))?;
    // The fsync is the point: a disk that takes writes into the page cache but cannot
    // persist them is not one the Raft log can live on.
    file.sync_data().map_err(|e| fail("fsync", e))?;
    drop(file);
    std::fs::remove_file(path).map_err(|e| fail("remove", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status() -> NodeStatus {
        NodeStatus {
            id: 1,
            leader: Some(2),
            is_leader: false,
            term: 3,
            last_log_index: Some(10),
            committed_index: Some(10),
            applied_index: Some(10),
            snapshot_index: None,
            purged_index: None,
            member: true,
            voters: 3,
            quorum_ack_age: None,
            stopped: false,
        }
    }

    /// `name=ok|fail` for each check, to compare as one line.
    fn verdicts(checks: &[Check]) -> String {
        checks
            .iter()
            .map(|c| format!("{}={}", c.name, if c.ok { "ok" } else { "fail" }))
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn checks_name_what_is_wrong() {
        let ok = Ok(());
        let c = checks(&status(), &ok, None);
        assert_eq!(
            verdicts(&c),
            "member=ok leader=ok applied=ok quorum=ok storage=ok"
        );
        assert!(ready(&c));

        let mut s = status();
        s.leader = None;
        s.committed_index = Some(5000);
        s.applied_index = Some(5000 - 1 - placement_raft::READY_MAX_APPLY_LAG);
        let c = checks(&s, &Err("disk full".into()), None);
        assert_eq!(
            verdicts(&c),
            "member=ok leader=fail applied=fail quorum=ok storage=fail"
        );
        assert!(!ready(&c));
        assert!(c[2].reason.contains("1001 behind"), "{}", c[2].reason);
        assert_eq!(c[4].reason, "disk full");

        let mut s = status();
        s.is_leader = true;
        s.leader = Some(1);
        s.quorum_ack_age = Some(placement_raft::LEADER_CONTACT_TIMEOUT * 2);
        let c = checks(&s, &ok, None);
        assert_eq!(c[3].name, "quorum");
        assert!(!c[3].ok && c[3].reason.contains("cut off"), "{:?}", c[3]);
        s.voters = 1;
        assert!(
            ready(&checks(&s, &ok, None)),
            "a single voter needs no quorum"
        );
    }

    #[test]
    fn keystone_is_shown_but_does_not_decide_readiness() {
        let ok = Ok(());
        let down = Reachability {
            age: Duration::from_secs(3),
            error: Some("connection refused".into()),
        };
        let c = checks(&status(), &ok, Some(Some(down)));
        assert_eq!(c.last().map(|c| (c.name, c.ok)), Some(("keystone", false)));
        assert!(c[5].reason.contains("connection refused"));
        assert!(ready(&c));
        let c = checks(&status(), &ok, Some(None));
        assert_eq!(c[5].reason, "not contacted yet");
    }

    /// Many checks at once, half of them dropped as soon as they started (a load balancer
    /// giving up): one probe runs at a time, so every check that waits sees it succeed, and
    /// the scratch file is gone after.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_and_abandoned_checks_share_one_probe() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(PROBE_FILE);
        for _round in 0..20 {
            let probe = StorageProbe::new(path.clone());
            let mut waited = Vec::new();
            for i in 0..16 {
                let probe = probe.clone();
                let task = tokio::spawn(async move { probe.check().await });
                if i % 2 == 0 {
                    task.abort();
                } else {
                    waited.push(task);
                }
            }
            for task in waited {
                assert_eq!(task.await.expect("check"), Ok(()));
            }
            while probe.state().running {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            assert_eq!(
                probe.state().last.as_ref().map(|l| l.1.clone()),
                Some(Ok(()))
            );
            assert!(!path.exists(), "the scratch file is removed");
        }
    }

    #[test]
    fn the_storage_probe_writes_and_cleans_up_or_says_why_not() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(PROBE_FILE);
        assert_eq!(probe_dir(&path), Ok(()));
        assert!(!path.exists(), "the scratch file is removed");
        let missing = dir.path().join("gone").join(PROBE_FILE);
        let e = probe_dir(&missing).expect_err("no such directory");
        assert!(e.starts_with("cannot create"), "{e}");
    }
}
