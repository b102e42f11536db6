//! Asking every member at once: what `placementd cluster endpoint-health`, `cluster
//! compare-digests` and `placement-status upgrade check` have in common.
//!
//! The member named by `--peer` says who the members are (`/admin/status`, the membership it
//! knows, with each member's peer address); then each member is asked directly and
//! concurrently, each call with its own deadline ([`MEMBER_TIMEOUT`]), so one member down
//! costs the deadline once, not once per member. What a member answers is judged by pure
//! functions ([`judge`], [`compare`]) tested below without a cluster.
//!
//! A member's **lag** is how far its applied index is behind the highest commit index any
//! member reported (the leader's, when it answered). A member is **healthy** when it answered,
//! knows a leader, is a member of the membership it knows, and lags by at most
//! [`placement_raft::READY_MAX_APPLY_LAG`] entries (the same bound as `/readyz`).
//!
//! Digests are comparable only at the same applied index: a digest is taken after a read
//! barrier at whatever the member has applied then, so while writes go on members answer at
//! different indexes. [`collect_digests`] asks again (up to [`DIGEST_ATTEMPTS`] times) until
//! every member answers at the same index; if writes never pause it says so rather than
//! compare digests of different states.

use std::time::{Duration, Instant};

use futures::future::join_all;
use serde::Serialize;
use serde_json::Value;

use crate::admin::paths;
use crate::cli::PeerConn;

/// How long one member may take to answer a status call.
pub const MEMBER_TIMEOUT: Duration = Duration::from_secs(5);
/// How many rounds [`collect_digests`] tries to find every member at one applied index.
pub const DIGEST_ATTEMPTS: usize = 10;
/// The pause between two such rounds.
const DIGEST_RETRY_PAUSE: Duration = Duration::from_millis(300);

/// An HTTP client of the admin API, with the CLI's TLS settings.
pub struct Admin {
    http: reqwest::Client,
    scheme: &'static str,
}

impl Admin {
    /// A client presenting `conn`'s certificate (if any); `timeout` bounds every call.
    pub fn new(conn: &PeerConn, timeout: Duration) -> Result<Admin, String> {
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(MEMBER_TIMEOUT))
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none());
        let scheme = match conn.tls_paths() {
            Some(paths) => {
                let config =
                    placement_net::tls::admin_client_config(&paths).map_err(|e| e.to_string())?;
                builder = builder.use_preconfigured_tls((*config).clone());
                "https"
            }
            None => "http",
        };
        let http = builder.build().map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Admin { http, scheme })
    }

    /// The URL of `path` on the member at `addr`.
    pub fn url(&self, addr: &str, path: &str) -> String {
        format!("{}://{addr}{path}", self.scheme)
    }

    /// The HTTP client (for a request [`Admin::request`] does not fit, such as a bincode body).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The HTTP client and the URL of `path` on the member at `addr`.
    pub fn request(
        &self,
        method: reqwest::Method,
        addr: &str,
        path: &str,
    ) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}://{addr}{path}", self.scheme))
    }

    /// Sends `request` to the member at `addr` and reads its JSON answer; an error is one
    /// sentence naming the member.
    pub async fn call(
        &self,
        addr: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<Value, String> {
        let response = request
            .send()
            .await
            .map_err(|e| self.unreachable(addr, &e))?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .map_err(|e| format!("the admin API at {addr} answered {status}: {e}"))?;
        if !status.is_success() {
            let message = body["error"].as_str().unwrap_or("no error message");
            return Err(format!("{addr} answered {status}: {message}"));
        }
        Ok(body)
    }

    /// `GET path` on the member at `addr`.
    pub async fn get(&self, addr: &str, path: &str) -> Result<Value, String> {
        self.call(addr, self.request(reqwest::Method::GET, addr, path))
            .await
    }

    /// Why `addr` could not be asked, with the causes of `e` and a hint about TLS.
    pub fn unreachable(&self, addr: &str, e: &reqwest::Error) -> String {
        let mut message = format!("cannot reach the admin API at {addr}: {e}");
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            message.push_str(&format!(": {s}"));
            source = s.source();
        }
        if self.scheme == "http" {
            message.push_str(" (if the peer port uses TLS, pass --cert, --key and --ca)");
        }
        message
    }
}

/// One member as the membership names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberAddr {
    pub id: u64,
    pub peer_addr: String,
    pub voter: bool,
}

/// The members listed in an `/admin/status` answer.
pub fn members_of(status: &Value) -> Vec<MemberAddr> {
    status["members"]
        .as_array()
        .map(|members| {
            members
                .iter()
                .filter_map(|m| {
                    Some(MemberAddr {
                        id: m["id"].as_u64()?,
                        peer_addr: m["peer_addr"].as_str()?.to_string(),
                        voter: m["voter"].as_bool().unwrap_or(true),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What one member answered to `/admin/status` (or why it did not), and the verdict.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MemberHealth {
    pub id: u64,
    pub peer_addr: String,
    pub voter: bool,
    pub reachable: bool,
    pub healthy: bool,
    pub role: Option<String>,
    pub leader: Option<u64>,
    pub term: Option<u64>,
    pub applied_index: Option<u64>,
    pub committed_index: Option<u64>,
    pub lag: Option<u64>,
    pub version: Option<String>,
    pub took_ms: u64,
    /// Why it is unhealthy (unreachable, no leader, lagging), if it is.
    pub problem: Option<String>,
}

/// The membership as `entry` knows it, and every member's status. Fails only when `entry`
/// itself cannot be asked.
pub async fn survey(admin: &Admin, entry: &str) -> Result<Vec<MemberHealth>, String> {
    let status = admin.get(entry, paths::STATUS).await?;
    let members = members_of(&status);
    if members.is_empty() {
        return Err(format!("{entry} names no members in its status"));
    }
    let answers = join_all(members.iter().map(|m| async move {
        let started = Instant::now();
        let answer = admin.get(&m.peer_addr, paths::STATUS).await;
        (answer, started.elapsed())
    }))
    .await;
    Ok(judge(&members, answers))
}

/// Turns the members' answers into verdicts (see the module doc).
pub fn judge(
    members: &[MemberAddr],
    answers: Vec<(Result<Value, String>, Duration)>,
) -> Vec<MemberHealth> {
    let reference = answers
        .iter()
        .filter_map(|(a, _)| a.as_ref().ok()?["committed_index"].as_u64())
        .max()
        .unwrap_or(0);
    members
        .iter()
        .zip(answers)
        .map(|(m, (answer, took))| {
            let mut h = MemberHealth {
                id: m.id,
                peer_addr: m.peer_addr.clone(),
                voter: m.voter,
                reachable: answer.is_ok(),
                healthy: false,
                role: None,
                leader: None,
                term: None,
                applied_index: None,
                committed_index: None,
                lag: None,
                version: None,
                took_ms: took.as_millis() as u64,
                problem: None,
            };
            let s = match answer {
                Ok(s) => s,
                Err(e) => {
                    h.problem = Some(e);
                    return h;
                }
            };
            h.role = s["role"].as_str().map(str::to_string);
            h.leader = s["leader"].as_u64();
            h.term = s["term"].as_u64();
            h.applied_index = s["applied_index"].as_u64();
            h.committed_index = s["committed_index"].as_u64();
            h.version = s["version"].as_str().map(str::to_string);
            let lag = reference.saturating_sub(h.applied_index.unwrap_or(0));
            h.lag = Some(lag);
            h.problem = if h.leader.is_none() {
                Some("knows no leader".into())
            } else if h.role.as_deref() == Some("not a member") {
                Some("is not a member of the membership it knows".into())
            } else if lag > placement_raft::READY_MAX_APPLY_LAG {
                Some(format!(
                    "lags {lag} entries behind the commit index {reference} (more than {})",
                    placement_raft::READY_MAX_APPLY_LAG
                ))
            } else {
                None
            };
            h.healthy = h.problem.is_none();
            h
        })
        .collect()
}

/// The members' health as a table, one line per member, then one line per problem.
pub fn health_table(members: &[MemberHealth]) -> String {
    let dash = || "-".to_string();
    let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_else(dash);
    let yes = |b: bool| if b { "yes" } else { "no" }.to_string();
    let mut rows = vec![[
        "ID",
        "PEER",
        "VOTER",
        "REACHABLE",
        "HEALTHY",
        "ROLE",
        "TERM",
        "APPLIED",
        "LAG",
        "VERSION",
        "TOOK",
    ]
    .map(str::to_string)];
    for m in members {
        rows.push([
            m.id.to_string(),
            m.peer_addr.clone(),
            yes(m.voter),
            yes(m.reachable),
            yes(m.healthy),
            m.role.clone().unwrap_or_else(dash),
            opt(m.term),
            opt(m.applied_index),
            opt(m.lag),
            m.version.clone().unwrap_or_else(dash),
            format!("{} ms", m.took_ms),
        ]);
    }
    let mut out = table(&rows);
    for m in members {
        if let Some(p) = &m.problem {
            out.push_str(&format!("node {} ({}): {p}\n", m.id, m.peer_addr));
        }
    }
    out
}

/// Left-aligned columns separated by two spaces.
fn table<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// One member's digest.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Digest {
    pub id: u64,
    pub peer_addr: String,
    pub applied_index: Option<u64>,
    pub records: Option<u64>,
    pub sha256: Option<String>,
    pub error: Option<String>,
}

/// Every member's digest, asked again until all answer at the same applied index (or
/// [`DIGEST_ATTEMPTS`] rounds pass: the last round is returned, and [`compare`] says so).
pub async fn collect_digests(admin: &Admin, members: &[MemberAddr]) -> Vec<Digest> {
    let mut round = Vec::new();
    for attempt in 0..DIGEST_ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(DIGEST_RETRY_PAUSE).await;
        }
        round = join_all(members.iter().map(|m| async move {
            let answer = admin.get(&m.peer_addr, paths::DIGEST).await;
            let mut d = Digest {
                id: m.id,
                peer_addr: m.peer_addr.clone(),
                applied_index: None,
                records: None,
                sha256: None,
                error: None,
            };
            match answer {
                Ok(v) => {
                    d.applied_index = v["applied_index"].as_u64();
                    d.records = v["records"].as_u64();
                    d.sha256 = v["sha256"].as_str().map(str::to_string);
                }
                Err(e) => d.error = Some(e),
            }
            d
        }))
        .await;
        let unreachable = round.iter().any(|d| d.error.is_some());
        let first = round.first().and_then(|d| d.applied_index);
        if unreachable || round.iter().all(|d| d.applied_index == first) {
            break;
        }
    }
    round
}

/// The verdict on a round of digests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Comparison {
    /// Every member holds the same state at this applied index.
    Equal { applied_index: Option<u64> },
    /// These members' digests differ from the one most members share.
    Differ { differing: Vec<u64> },
    /// The digests cannot be compared: a member did not answer, or members answered at
    /// different applied indexes (writes kept coming).
    Inconclusive(String),
}

/// Compares a round of digests (see [`Comparison`]).
pub fn compare(digests: &[Digest]) -> Comparison {
    let failed: Vec<String> = digests
        .iter()
        .filter_map(|d| Some(format!("node {} ({})", d.id, d.error.as_ref()?)))
        .collect();
    if !failed.is_empty() {
        return Comparison::Inconclusive(format!(
            "cannot compare: no digest from {}",
            failed.join("; ")
        ));
    }
    let first = digests.first().and_then(|d| d.applied_index);
    if digests.iter().any(|d| d.applied_index != first) {
        let at: Vec<String> = digests
            .iter()
            .map(|d| format!("node {} at {}", d.id, opt_text(d.applied_index)))
            .collect();
        return Comparison::Inconclusive(format!(
            "members kept answering at different applied indexes ({}): writes are in flight; \
             compare again while no writes go on",
            at.join(", ")
        ));
    }
    // The digest most members share is taken as the reference.
    let mut counts: Vec<(&Option<String>, usize)> = Vec::new();
    for d in digests {
        match counts.iter_mut().find(|(sha, _)| *sha == &d.sha256) {
            Some((_, n)) => *n += 1,
            None => counts.push((&d.sha256, 1)),
        }
    }
    let reference = counts
        .iter()
        .max_by_key(|(_, n)| *n)
        .map(|(sha, _)| (*sha).clone())
        .unwrap_or_default();
    let differing: Vec<u64> = digests
        .iter()
        .filter(|d| d.sha256 != reference)
        .map(|d| d.id)
        .collect();
    if differing.is_empty() {
        Comparison::Equal {
            applied_index: first,
        }
    } else {
        Comparison::Differ { differing }
    }
}

fn opt_text(v: Option<u64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

/// The digests as a table.
pub fn digest_table(digests: &[Digest]) -> String {
    let mut rows = vec![["ID", "PEER", "APPLIED", "RECORDS", "SHA256"].map(str::to_string)];
    for d in digests {
        rows.push([
            d.id.to_string(),
            d.peer_addr.clone(),
            opt_text(d.applied_index),
            opt_text(d.records),
            d.sha256
                .clone()
                .or_else(|| d.error.as_ref().map(|e| format!("error: {e}")))
                .unwrap_or_else(|| "-".into()),
        ]);
    }
    table(&rows)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn member(id: u64) -> MemberAddr {
        MemberAddr {
            id,
            peer_addr: format!("10.0.0.{id}:8779"),
            voter: true,
        }
    }

    fn status(role: &str, leader: Option<u64>, committed: u64, applied: u64) -> Value {
        json!({"role": role, "leader": leader, "term": 4, "committed_index": committed,
               "applied_index": applied, "version": "0.1.0"})
    }

    #[test]
    fn members_are_read_from_a_status() {
        let s = json!({"members": [
            {"id": 1, "api_addr": "a:1", "peer_addr": "p:1", "voter": true},
            {"id": 4, "api_addr": "a:4", "peer_addr": "p:4", "voter": false},
            {"id": "bad"}
        ]});
        let m = members_of(&s);
        assert_eq!(m.len(), 2);
        assert_eq!(
            (m[1].id, m[1].peer_addr.as_str(), m[1].voter),
            (4, "p:4", false)
        );
    }

    #[test]
    fn health_names_the_unreachable_the_leaderless_and_the_lagging() {
        let ms = [member(1), member(2), member(3), member(4)];
        let lagging = 5000 - placement_raft::READY_MAX_APPLY_LAG - 1;
        let answers = vec![
            (
                Ok(status("leader", Some(1), 5000, 5000)),
                Duration::from_millis(3),
            ),
            (
                Ok(status("follower", Some(1), 4990, lagging)),
                Duration::from_millis(4),
            ),
            (
                Err("cannot reach the admin API at 10.0.0.3:8779".into()),
                Duration::from_secs(5),
            ),
            (
                Ok(status("follower", None, 5000, 5000)),
                Duration::from_millis(2),
            ),
        ];
        let h = judge(&ms, answers);
        let verdicts: Vec<(u64, bool, bool)> =
            h.iter().map(|m| (m.id, m.reachable, m.healthy)).collect();
        assert_eq!(
            verdicts,
            [
                (1, true, true),
                (2, true, false),
                (3, false, false),
                (4, true, false)
            ]
        );
        assert_eq!(h[0].lag, Some(0));
        assert!(h[1]
            .problem
            .as_deref()
            .is_some_and(|p| p.starts_with("lags 1001")));
        assert_eq!(h[3].problem.as_deref(), Some("knows no leader"));
        let table = health_table(&h);
        assert!(table.starts_with("ID  PEER"), "{table}");
        assert!(
            table.contains("node 3 (10.0.0.3:8779): cannot reach"),
            "{table}"
        );
        assert_eq!(h[2].took_ms, 5000);
    }

    fn digest(id: u64, applied: u64, sha: &str) -> Digest {
        Digest {
            id,
            peer_addr: format!("p:{id}"),
            applied_index: Some(applied),
            records: Some(10),
            sha256: Some(sha.into()),
            error: None,
        }
    }

    #[test]
    fn digests_compare_only_at_one_index_and_name_the_odd_one_out() {
        let same = [digest(1, 9, "aa"), digest(2, 9, "aa"), digest(3, 9, "aa")];
        assert_eq!(
            compare(&same),
            Comparison::Equal {
                applied_index: Some(9)
            }
        );
        let odd = [digest(1, 9, "aa"), digest(2, 9, "bb"), digest(3, 9, "aa")];
        assert_eq!(compare(&odd), Comparison::Differ { differing: vec![2] });
        let moving = [digest(1, 9, "aa"), digest(2, 10, "bb")];
        assert!(
            matches!(compare(&moving), Comparison::Inconclusive(m) if m.contains("node 2 at 10"))
        );
        let mut down = digest(3, 9, "aa");
        down.error = Some("cannot reach".into());
        down.sha256 = None;
        assert!(matches!(
            compare(&[digest(1, 9, "aa"), down]),
            Comparison::Inconclusive(m) if m.contains("node 3 (cannot reach)")
        ));
    }
}
