//! The HAProxy configuration placementd ships, run by the real HAProxy in front of a real
//! 3-node cluster. The config is what `scripts/lib.sh`'s `cluster_haproxy_config` prints
//! (every script that puts HAProxy in front of a cluster uses it, and `deploy/haproxy.cfg`
//! spells out the same for an operator): reads round-robin over the nodes whose `/readyz`
//! passes, writes to the one node whose `/readyz/leader` passes, round-robin while none does.
//!
//! 1. `/readyz/leader` answers 200 on the leader only and 503 on the followers, with the
//!    same body as `/readyz`.
//! 2. Writes through HAProxy reach the leader: the followers forward none of them (their
//!    `placementd_raft_forwarded_writes_total` does not move), while reads still reach
//!    every node.
//! 3. `kill -9` of the leader under a write load through HAProxy: writes succeed again
//!    within a few election timeouts; then HAProxy finds the new leader and the survivors
//!    forward nothing again; every acknowledged allocation is on every node (the killed one
//!    too, once restarted) and usage is the sum of allocations. Writes whose outcome the
//!    client never learned (HAProxy's 502/503 for a request the dead node held, a transport
//!    error) are counted, not asserted.
//!
//! HAProxy comes from Debian's package (`scripts/test` installs it). Without it the tests
//! say so loudly and pass, unless `CI` is set: then a missing HAProxy fails.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use placementd_tests::load::{assert_every_node_holds, AllocationLoad};
use placementd_tests::metrics::{metrics_addr, scrape};
use placementd_tests::{allocation_body, free_port, tool_on_path, Client, Cluster, Node, Result};
use serde_json::Value;

/// Time allowed for the first leader to be known.
const LEADER_TIMEOUT: Duration = Duration::from_secs(20);
/// Time HAProxy may take to answer, and its checks to settle (they run every 500 ms).
const BALANCER_TIMEOUT: Duration = Duration::from_secs(10);
/// Concurrent writers through HAProxy.
const WRITERS: usize = 6;
/// Writes sent through HAProxy to see where they land.
const PROBE_WRITES: usize = 60;
/// Load before the leader is killed.
const LOAD_BEFORE_KILL: Duration = Duration::from_millis(1_500);
/// "A few election timeouts" (each is 1-2 s), plus HAProxy's checks.
const FAILOVER_BUDGET: Duration = Duration::from_secs(8);
/// Load after writes succeed again.
const LOAD_AFTER_RECOVERY: Duration = Duration::from_millis(1_500);

/// A real HAProxy process in front of a cluster's API ports, killed on drop.
struct Haproxy {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Haproxy {
    /// Starts `bin` with `cluster_haproxy_config` for `cluster`'s nodes and waits until it
    /// answers `GET /`.
    async fn start(bin: &PathBuf, cluster: &Cluster) -> Result<Haproxy> {
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let lib = placement_testkit::crate_dir!().join("../scripts/lib.sh");
        let ports: Vec<String> = cluster.nodes.iter().map(|n| n.port().to_string()).collect();
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "source {} && CLUSTER_API_PORTS=({}) && cluster_haproxy_config {port}",
                lib.display(),
                ports.join(" ")
            ))
            .output()?;
        if !out.status.success() {
            return Err(format!(
                "cluster_haproxy_config failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        let cfg = dir.path().join("haproxy.cfg");
        std::fs::write(&cfg, &out.stdout)?;
        let log = std::fs::File::create(dir.path().join("haproxy.log"))?;
        let child = Command::new(bin)
            .arg("-db")
            .arg("-f")
            .arg(&cfg)
            .stdout(log.try_clone()?)
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()?;
        let haproxy = Haproxy {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        let client = Client::new(&haproxy.url)?;
        let deadline = Instant::now() + BALANCER_TIMEOUT;
        while !client.get("/").await.is_ok_and(|r| r.status == 200) {
            if Instant::now() > deadline {
                return Err(format!("HAProxy did not answer within {BALANCER_TIMEOUT:?}").into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(haproxy)
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` on one node, status and JSON body.
async fn probe(node: &Node, path: &str) -> Result<(u16, Value)> {
    let r = node
        .http(Duration::from_secs(5))?
        .get(format!("{}{path}", node.url()))
        .send()
        .await?;
    Ok((r.status().as_u16(), r.json().await?))
}

/// Writes each node forwarded to a leader so far.
async fn forwarded(cluster: &Cluster) -> Result<Vec<f64>> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let mut out = Vec::new();
    for node in &cluster.nodes {
        out.push(if node.is_running() {
            scrape(&http, &metrics_addr(node).await?)
                .await?
                .value("placementd_raft_forwarded_writes_total")
        } else {
            0.0
        });
    }
    Ok(out)
}

/// Puts `n` allocations of 1 VCPU on `rp` through `c`, each for a new consumer.
async fn put_allocations(c: &Client, rp: &str, n: usize) -> Result<()> {
    for _ in 0..n {
        let consumer = uuid::Uuid::new_v4();
        let body = allocation_body(&[(rp, &[("VCPU", 1)])], None);
        c.put(&format!("/allocations/{consumer}"), &body)
            .await?
            .expect(204)?;
    }
    Ok(())
}

/// Waits until `n` writes through HAProxy are not forwarded by any node (its checks may
/// still point at an old leader for a moment after a change), returning how long it took.
async fn until_writes_reach_the_leader(
    cluster: &Cluster,
    lb: &Client,
    rp: &str,
    n: usize,
) -> Result<Duration> {
    let started = Instant::now();
    loop {
        let before = forwarded(cluster).await?;
        put_allocations(lb, rp, n).await?;
        let after = forwarded(cluster).await?;
        if before == after {
            return Ok(started.elapsed());
        }
        if started.elapsed() > BALANCER_TIMEOUT {
            return Err(format!(
                "writes through HAProxy are still forwarded after {BALANCER_TIMEOUT:?}: \
                 {before:?} -> {after:?}"
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn haproxy_sends_writes_to_the_leader_and_follows_a_failover() -> Result<()> {
    let Some(bin) = tool_on_path("haproxy", "haproxy")? else {
        return Ok(());
    };
    let mut cluster = Cluster::start_plain(3, &["--metrics-listen", "127.0.0.1:0"]).await?;
    let leader = cluster.leader(LEADER_TIMEOUT).await?;

    // 1. /readyz/leader: 200 on the leader only, the /readyz body on every node.
    for (i, node) in cluster.nodes.iter().enumerate() {
        let (status, body) = probe(node, "/readyz/leader").await?;
        let (_, plain) = probe(node, "/readyz").await?;
        assert_eq!(status, if i == leader { 200 } else { 503 }, "{body}");
        assert_eq!(body["ready"], true, "{body}");
        assert_eq!(body["is_leader"], i == leader, "{body}");
        assert_eq!(body["checks"], plain["checks"], "{body} vs {plain}");
    }

    // 2. Writes through HAProxy land on the leader; reads on every node.
    let haproxy = Haproxy::start(&bin, &cluster).await?;
    let lb = Client::new(&haproxy.url)?;
    let rp = lb.create_provider("balanced").await?;
    lb.set_inventory(&rp, &[("VCPU", 1_000_000)]).await?;
    until_writes_reach_the_leader(&cluster, &lb, &rp, PROBE_WRITES).await?;
    let reads_before: Vec<usize> = cluster.nodes.iter().map(access_lines).collect();
    for _ in 0..30 {
        lb.usages(&rp).await?;
    }
    // The nodes write their logs from a thread of their own: wait for the lines a moment.
    let mut reads_after = Vec::new();
    placementd_tests::eventually(placementd_tests::LOG_WAIT, || {
        reads_after = cluster.nodes.iter().map(access_lines).collect();
        reads_after.iter().zip(&reads_before).all(|(b, a)| b > a)
    })
    .await;
    for (i, (a, b)) in reads_before.iter().zip(&reads_after).enumerate() {
        assert!(b > a, "node {i} served none of 30 reads through HAProxy");
    }

    // 3. kill -9 of the leader under a write load through HAProxy. Unknown outcomes:
    // HAProxy's answers for a request the killed node held (502) or for one it found no
    // server for (503), the nodes' own 503s, and transport errors.
    let load = AllocationLoad::start(std::slice::from_ref(&lb), &rp, WRITERS, &[502, 503]);
    tokio::time::sleep(LOAD_BEFORE_KILL).await;
    let before_kill = load.acked();
    assert!(before_kill > 0, "no write succeeded before the kill");
    cluster.nodes[leader].kill9()?;
    let killed_at = Instant::now();
    let Some(recovered_after) = load.success_after(killed_at, FAILOVER_BUDGET).await else {
        load.stop().await?;
        return Err(format!(
            "no write through HAProxy succeeded within {FAILOVER_BUDGET:?} of killing \
             the leader\n{}",
            cluster.logs()
        )
        .into());
    };
    tokio::time::sleep(LOAD_AFTER_RECOVERY).await;
    let (acked, unknown) = load.stop().await?;
    eprintln!(
        "through HAProxy: acknowledged {} allocations ({before_kill} before the kill), \
         {unknown} with unknown outcome; a write sent after the kill succeeded \
         {recovered_after:?} after it",
        acked.len(),
    );

    // HAProxy found the new leader: writes are no longer forwarded.
    let settled = until_writes_reach_the_leader(&cluster, &lb, &rp, PROBE_WRITES).await?;
    eprintln!("writes reached the new leader directly again within {settled:?}");

    // Nothing acknowledged is lost; every node agrees, the killed one once restarted.
    cluster.nodes[leader].respawn()?;
    cluster.nodes[leader].wait_ready().await?;
    assert_every_node_holds(&cluster, &rp, &acked).await
}

/// Access-log lines a node has written (one per request it answered).
fn access_lines(node: &Node) -> usize {
    std::fs::read_to_string(node.log_path())
        .map(|log| {
            log.lines()
                .filter(|l| l.contains("placementd::access"))
                .count()
        })
        .unwrap_or(0)
}
