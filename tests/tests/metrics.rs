//! The metrics endpoint and the access log, checked with the real Prometheus tooling.
//!
//! 1. A 3-node cluster (mutual TLS between members, HTTPS API) runs with `--metrics-listen`
//!    on each node. After writes through the leader and through a follower (forwarded) and
//!    some reads, every node's `/metrics` is scraped over plain HTTP and
//!    - `promtool check metrics` accepts it with no lint problem;
//!    - `placementd_raft_is_leader` sums to 1 over the nodes, every node has applied
//!      entries and fsynced log appends, the follower forwarded writes and the leader
//!      served them, the leader reports replication lag for both followers;
//!    - HTTP requests are counted by route template (`/resource_providers/{uuid}`), an
//!      unknown path as `unmatched` and never under its raw path;
//!    - the metrics port answers 404 to anything but `/metrics`;
//!    - the node's log holds `placementd::access` lines naming the route template.
//! 2. `promtool check rules deploy/prometheus/alerts.yml` passes, and so do the rules' unit
//!    tests (`promtool test rules deploy/prometheus/alerts_test.yml`).
//!
//! `promtool` comes from Debian's `prometheus` package (`scripts/test` installs it). Without
//! it the tests say so loudly and pass, unless `CI` is set: then a missing promtool fails.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use placementd_tests::metrics::{metrics_addr, scrape, Scrape};
use placementd_tests::{tool_on_path, Cluster, Result};
use serde_json::json;

/// Time allowed for the first leader to be known.
const LEADER_TIMEOUT: Duration = Duration::from_secs(20);
/// Time a scrape may take.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `promtool ARGS` with `stdin`; returns its combined output, or an error with it.
fn run_promtool(promtool: &PathBuf, args: &[&str], stdin: &str) -> Result<String> {
    let mut child = Command::new(promtool)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .ok_or("promtool's stdin")?
        .write_all(stdin.as_bytes())?;
    let out = child.wait_with_output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        return Err(format!("promtool {args:?} failed ({}):\n{text}", out.status).into());
    }
    Ok(text)
}

#[tokio::test]
async fn a_cluster_exposes_metrics_promtool_accepts() -> Result<()> {
    let Some(promtool) = tool_on_path("promtool", "prometheus")? else {
        return Ok(());
    };
    let cluster = Cluster::start_with(3, &["--metrics-listen", "127.0.0.1:0"]).await?;
    let leader = cluster.leader(LEADER_TIMEOUT).await?;
    let follower = (leader + 1) % 3;
    let on_leader = cluster.nodes[leader].client()?;
    let on_follower = cluster.nodes[follower].client()?;

    let mut providers = Vec::new();
    for i in 0..3 {
        providers.push(on_leader.create_provider(&format!("leader-{i}")).await?);
        providers.push(
            on_follower
                .create_provider(&format!("follower-{i}"))
                .await?,
        );
    }
    on_follower
        .set_inventory(&providers[1], &[("VCPU", 8), ("MEMORY_MB", 4096)])
        .await?;
    for rp in &providers {
        on_follower
            .get(&format!("/resource_providers/{rp}"))
            .await?
            .expect(200)?;
    }
    on_leader.get("/resource_providers").await?.expect(200)?;
    on_follower
        .get("/no-such-thing/3f1c2b1e")
        .await?
        .expect(404)?;
    on_leader
        .put(
            &format!("/resource_providers/{}", providers[0]),
            &json!({"name": "renamed"}),
        )
        .await?
        .expect(200)?;

    // An error answered by a route is counted under that route, not as unmatched.
    on_follower
        .get(&format!("/resource_providers/{}", uuid::Uuid::new_v4()))
        .await?
        .expect(404)?;

    let http = reqwest::Client::builder().timeout(SCRAPE_TIMEOUT).build()?;
    let mut scrapes = Vec::new();
    for node in &cluster.nodes {
        let addr = metrics_addr(node).await?;
        let s = scrape(&http, &addr).await?;
        let lint = run_promtool(&promtool, &["check", "metrics"], &s.text)?;
        assert!(
            !lint.contains("problem") && !lint.contains("error"),
            "promtool check metrics on node {}:\n{lint}",
            node.node_id()
        );
        let other = http.get(format!("http://{addr}/other")).send().await?;
        assert_eq!(other.status().as_u16(), 404);
        let post = http.post(format!("http://{addr}/metrics")).send().await?;
        assert_eq!(post.status().as_u16(), 404);
        scrapes.push(s);
    }

    let leaders: f64 = scrapes
        .iter()
        .map(|s| s.value("placementd_raft_is_leader"))
        .sum();
    assert_eq!(leaders, 1.0, "is_leader over the nodes");
    assert_eq!(scrapes[leader].value("placementd_raft_is_leader"), 1.0);
    for (i, s) in scrapes.iter().enumerate() {
        assert!(s.value("placementd_raft_applied_index") > 0.0, "node {i}");
        assert!(s.value("placementd_raft_term") >= 1.0, "node {i}");
        assert_eq!(
            s.value("placementd_raft_leader_id"),
            cluster.nodes[leader].node_id() as f64,
            "node {i}"
        );
        assert!(
            s.value("placementd_storage_log_fsync_duration_seconds_count") > 0.0,
            "node {i}: no fsynced append"
        );
        assert!(
            s.value("placementd_storage_apply_duration_seconds_count") > 0.0,
            "node {i}"
        );
        assert!(
            s.value("placementd_raft_leader_changes_total") >= 1.0,
            "node {i}"
        );
        assert!(
            s.value("placementd_storage_rocksdb_total_sst_bytes") >= 0.0,
            "node {i}"
        );
    }
    let f = &scrapes[follower];
    assert!(f.value("placementd_raft_forwarded_writes_total") >= 4.0);
    let l = &scrapes[leader];
    assert!(l.value("placementd_raft_forwarded_writes_served_total") >= 4.0);
    assert!(l.value("placementd_raft_proposals_committed_total") >= 7.0);
    assert_eq!(l.value("placementd_raft_proposals_pending"), 0.0);
    // Members call each other over channels: the leader opened one to each follower, the
    // follower one to the leader for its forwarded writes; nobody fell back to HTTP.
    assert!(l.value("placementd_peer_channels_opened_total") >= 2.0);
    assert!(f.value("placementd_peer_channels_opened_total") >= 1.0);
    for (i, s) in scrapes.iter().enumerate() {
        assert_eq!(
            s.value("placementd_peer_http_fallback_calls_total"),
            0.0,
            "node {i}"
        );
    }
    let lag = l.starting_with("placementd_raft_replication_lag_entries{");
    assert_eq!(lag.len(), 2, "lag for both followers: {lag:?}");

    let route = |s: &Scrape, method: &str, route: &str, status: &str| {
        s.value(&format!(
            "placementd_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}}"
        ))
    };
    // Six reads, and the inventory helper reads the generation first.
    assert!(route(f, "GET", "/resource_providers/{uuid}", "200") >= 6.0);
    assert_eq!(route(f, "POST", "/resource_providers", "200"), 3.0);
    assert_eq!(route(f, "GET", "/resource_providers/{uuid}", "404"), 1.0);
    assert_eq!(
        route(f, "PUT", "/resource_providers/{uuid}/inventories", "200"),
        1.0
    );
    assert!(route(f, "GET", "unmatched", "404") >= 1.0);
    assert!(!f.text.contains("3f1c2b1e"), "a raw path became a label");
    assert!(route(l, "PUT", "/resource_providers/{uuid}", "200") >= 1.0);
    assert!(
        f.value(
            "placementd_http_request_duration_seconds_count{method=\"GET\",route=\"/resource_providers/{uuid}\"}"
        ) >= 6.0
    );

    let log = cluster.nodes[follower]
        .log_with("route=/resource_providers/{uuid} path=")
        .await;
    let access: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("placementd::access"))
        .collect();
    assert!(
        access
            .iter()
            .any(|l| l.contains("route=/resource_providers/{uuid}") && l.contains("status=200")),
        "no access-log line for a provider read:\n{}",
        access.join("\n")
    );
    Ok(())
}

#[test]
fn the_alerting_rules_pass_promtool() -> Result<()> {
    let Some(promtool) = tool_on_path("promtool", "prometheus")? else {
        return Ok(());
    };
    let dir = placement_testkit::crate_dir!().join("../deploy/prometheus");
    for args in [
        ["check", "rules", "alerts.yml"],
        ["test", "rules", "alerts_test.yml"],
    ] {
        let out = Command::new(&promtool)
            .args(args)
            .current_dir(&dir)
            .output()?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "promtool {args:?}:\n{text}");
        assert!(text.contains("SUCCESS"), "{text}");
    }
    Ok(())
}
