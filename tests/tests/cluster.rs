//! A 3-node cluster of real `placementd` processes on loopback.
//!
//! 1. Read-your-writes across members: a write through one follower is visible at once
//!    through the other follower (forwarded write + ReadIndex from the leader).
//! 2. `kill -9` of the leader under a concurrent allocation load: writes succeed again within
//!    a few election timeouts; afterwards every acknowledged allocation is present on every
//!    node (the killed one too, once restarted), every node holds the same allocations, and
//!    usages equal the sums of allocations. Writes whose outcome the client never learned
//!    (a transport error or a 503) may or may not be present; they are counted, not asserted.
//! 3. A follower killed with `kill -9` while the others compact their log past its position
//!    comes back through a streamed snapshot install and serves the same state.
//! 4. Online membership through the real CLI (`placementd cluster`): a 4th node joins
//!    (learner, caught up, voter) and serves at once; then the leader itself is removed, the
//!    rest elect a new one and keep taking writes, and every remaining member reports the
//!    same state digest.
//! 5. SIGTERM of the leader hands leadership over before the process exits: another node
//!    leads within an election timeout and takes writes.
//! 6. Minority behaviour: a linearizable read on a minority node is a 503, a stale one a 200;
//!    a leader that lost its followers turns `/readyz` 503 (leaves the rotation).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use placementd_tests::load::{assert_every_node_holds, AllocationLoad};
use placementd_tests::{allocation_body, Client, Cluster, Result};
use serde_json::{json, Value};

/// Time allowed for the first leader to be known.
const LEADER_TIMEOUT: Duration = Duration::from_secs(20);
/// Concurrent allocation writers during the failover test.
const WRITERS: usize = 6;
/// Load before the leader is killed.
const LOAD_BEFORE_KILL: Duration = Duration::from_millis(1_500);
/// Load after writes succeed again.
const LOAD_AFTER_RECOVERY: Duration = Duration::from_millis(1_500);
/// "A few election timeouts" (each is 1-2 s): the longest a failover may stop writes.
const FAILOVER_BUDGET: Duration = Duration::from_secs(8);
/// How long a removed or isolated node may keep reporting itself ready.
const REMOVAL_TIMEOUT: Duration = Duration::from_secs(10);
/// Upper bound of the whole load phase.
const LOAD_DEADLINE: Duration = Duration::from_secs(60);

fn new_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn followers(leader: usize, n: usize) -> Vec<usize> {
    (0..n).filter(|i| *i != leader).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn write_through_one_follower_read_at_once_through_another() -> Result<()> {
    let cluster = Cluster::start(3).await?;
    let leader = cluster.leader(LEADER_TIMEOUT).await?;
    let f = followers(leader, 3);
    let writer = cluster.nodes[f[0]].client()?;
    let reader = cluster.nodes[f[1]].client()?;

    for i in 0..20 {
        let rp = writer.create_provider(&format!("rp-{i}")).await?;
        reader
            .get(&format!("/resource_providers/{rp}"))
            .await?
            .expect(200)
            .map_err(|e| format!("provider {i} not visible on the other follower: {e}"))?;
        writer.set_inventory(&rp, &[("VCPU", 8)]).await?;
        let consumer = new_uuid();
        writer
            .put(
                &format!("/allocations/{consumer}"),
                &allocation_body(&[(&rp, &[("VCPU", 3)])], None),
            )
            .await?
            .expect(204)?;
        let usages = reader.usages(&rp).await?;
        assert_eq!(
            usages.get("VCPU"),
            Some(&json!(3)),
            "usage of {rp} on the reader"
        );
    }
    // A rejected write through a follower comes back with the leader's error, not a 503.
    let r = writer
        .post("/resource_providers", &json!({"name": "rp-0"}))
        .await?;
    assert_eq!(r.status, 409, "{}", r.text);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leader_kill9_under_allocation_load_loses_no_acknowledged_write() -> Result<()> {
    let mut cluster = Cluster::start(3).await?;
    let leader = cluster.leader(LEADER_TIMEOUT).await?;
    let admin = cluster.nodes[followers(leader, 3)[0]].client()?;
    let rp = admin.create_provider("failover").await?;
    admin.set_inventory(&rp, &[("VCPU", 1_000_000)]).await?;

    let clients: Vec<Client> = cluster
        .nodes
        .iter()
        .map(|n| n.client())
        .collect::<Result<_>>()?;
    let load = AllocationLoad::start(&clients, &rp, WRITERS, &[503]);

    let started = Instant::now();
    tokio::time::sleep(LOAD_BEFORE_KILL).await;
    let before_kill = load.acked();
    assert!(before_kill > 0, "no write succeeded before the kill");
    cluster.nodes[leader].kill9()?;
    let killed_at = Instant::now();

    // A write sent after the kill succeeds within the failover budget.
    let Some(recovered_after) = load.success_after(killed_at, FAILOVER_BUDGET).await else {
        load.stop().await?;
        return Err(format!(
            "no write succeeded within {FAILOVER_BUDGET:?} of killing the leader\n{}",
            cluster.logs()
        )
        .into());
    };
    let at_recovery = load.acked();
    tokio::time::sleep(LOAD_AFTER_RECOVERY).await;
    let (acked, unknown) = load.stop().await?;
    assert!(started.elapsed() < LOAD_DEADLINE);
    eprintln!(
        "acknowledged {} allocations ({before_kill} before the kill, {} after recovery), \
         {unknown} with unknown outcome; a write sent after the kill succeeded \
         {recovered_after:?} after it",
        acked.len(),
        acked.len() - at_recovery,
    );
    assert!(
        acked.len() > at_recovery,
        "no write succeeded in the {LOAD_AFTER_RECOVERY:?} after recovery\n{}",
        cluster.logs()
    );

    // The killed node comes back and catches up.
    cluster.nodes[leader].respawn()?;
    cluster.nodes[leader].wait_ready().await?;
    assert_every_node_holds(&cluster, &rp, &acked).await
}

/// How long the leader may take to purge its log past a dead follower's position.
const PURGE_TIMEOUT: Duration = Duration::from_secs(30);

/// Polls the admin status of `leader` until its purged index exceeds `index`, asking for a
/// snapshot now and then (a purge follows a snapshot). Returns the purged index.
async fn wait_for_purge_past(leader: &placementd_tests::Node, index: u64) -> Result<u64> {
    let deadline = Instant::now() + PURGE_TIMEOUT;
    let mut asked = Instant::now();
    loop {
        let status = leader.admin(&["status"])?;
        if let Some(purged) = status["purged_index"].as_u64().filter(|p| *p > index) {
            return Ok(purged);
        }
        if Instant::now() > deadline {
            return Err(format!("leader did not purge past {index}: {status}").into());
        }
        if asked.elapsed() > Duration::from_secs(2) {
            leader.admin(&["snapshot"])?;
            asked = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Snapshot interval for the compaction test: small, so a few hundred writes compact the log.
const SMALL_SNAPSHOT_EVERY: &str = "50";
/// Writes made while the follower is down (several snapshot intervals).
const WRITES_WHILE_DOWN: usize = 400;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follower_behind_a_compacted_log_catches_up_from_a_snapshot() -> Result<()> {
    let mut cluster = Cluster::start_with(3, &["--snapshot-every", SMALL_SNAPSHOT_EVERY]).await?;
    let leader = cluster.leader(LEADER_TIMEOUT).await?;
    let f = followers(leader, 3);
    let (down, up) = (f[0], f[1]);
    let down_last = cluster.nodes[down].admin(&["status"])?["last_log_index"]
        .as_u64()
        .unwrap_or(0);
    cluster.nodes[down].kill9()?;

    let writer = cluster.nodes[up].client()?;
    let mut names = BTreeSet::new();
    let mut pending = Vec::new();
    for i in 0..WRITES_WHILE_DOWN {
        let w = writer.clone();
        let name = format!("while-down-{i}");
        names.insert(name.clone());
        pending.push(tokio::spawn(async move { w.create_provider(&name).await }));
        if pending.len() == 16 {
            for p in pending.drain(..) {
                p.await.map_err(|e| format!("join: {e}"))??;
            }
        }
    }
    for p in pending {
        p.await.map_err(|e| format!("join: {e}"))??;
    }
    // The leader purges its log lazily (after a snapshot, not while a replication to the
    // dead node is in flight): wait until the entries the follower lacks are really gone, so
    // only a snapshot can bring it back.
    let purged = wait_for_purge_past(&cluster.nodes[leader], down_last).await?;
    eprintln!("leader purged its log up to {purged} (follower stopped at {down_last})");

    cluster.nodes[down].respawn()?;
    cluster.nodes[down].wait_ready().await?;
    let full_log = cluster.nodes[down].log_with("installing snapshot").await;
    let log = cluster.nodes[down].log_tail();
    assert!(
        full_log.contains("installing snapshot"),
        "the follower did not catch up through a snapshot; log tail:\n{log}"
    );

    let list = |c: Client| async move {
        let r = c.get("/resource_providers").await?.expect(200)?;
        let names: BTreeSet<String> = r.body["resource_providers"]
            .as_array()
            .ok_or_else(|| format!("no list: {}", r.text))?
            .iter()
            .filter_map(|p| p["name"].as_str().map(str::to_string))
            .collect();
        Ok::<_, placementd_tests::Error>(names)
    };
    let on_restarted = list(cluster.nodes[down].client()?).await?;
    assert_eq!(on_restarted, names, "restarted follower");
    assert_eq!(
        list(cluster.nodes[leader].client()?).await?,
        names,
        "leader"
    );

    // The restarted follower takes writes again (forwarded) and its peers see them.
    let rp = cluster.nodes[down]
        .client()?
        .create_provider("after-catch-up")
        .await?;
    cluster.nodes[up]
        .client()?
        .get(&format!("/resource_providers/{rp}"))
        .await?
        .expect(200)?;
    Ok(())
}

/// The admin status of every running node in `nodes`.
fn digests(cluster: &Cluster, nodes: &[usize]) -> Result<Vec<(u64, String, u64)>> {
    nodes
        .iter()
        .map(|i| {
            let d = cluster.nodes[*i].admin(&["digest"])?;
            Ok((
                cluster.nodes[*i].node_id(),
                d["sha256"].as_str().unwrap_or_default().to_string(),
                d["records"].as_u64().unwrap_or(0),
            ))
        })
        .collect()
}

/// Voter ids in an admin status document.
fn voters(status: &Value) -> BTreeSet<u64> {
    status["members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["voter"] == Value::Bool(true))
        .filter_map(|m| m["id"].as_u64())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fourth_node_joins_online_then_the_leader_is_removed() -> Result<()> {
    let mut cluster = Cluster::start(3).await?;
    let leader = cluster.leader(LEADER_TIMEOUT).await?;
    let follower = followers(leader, 3)[0];
    let writer = cluster.nodes[follower].client()?;
    for i in 0..30 {
        writer.create_provider(&format!("before-join-{i}")).await?;
    }

    // Node 4 starts empty and waits; `cluster add` through a follower (forwarded to the
    // leader) makes it a learner, catches it up and promotes it.
    let new = cluster.spawn_joining_node(&[])?;
    let (id, api, peer) = (
        cluster.nodes[new].node_id().to_string(),
        format!("127.0.0.1:{}", cluster.nodes[new].port()),
        cluster.nodes[new].peer_addr()?,
    );
    let added = cluster.nodes[follower].admin(&["add", &id, &api, &peer])?;
    assert_eq!(added["changed"], Value::Bool(true), "{added}");
    cluster.nodes[new].wait_ready().await?;
    let status = cluster.nodes[new].admin(&["status"])?;
    assert_eq!(voters(&status), BTreeSet::from([1, 2, 3, 4]), "{status}");
    assert_eq!(status["role"], "follower", "{status}");
    // Adding it again changes nothing.
    let again = cluster.nodes[leader].admin(&["add", &id, &api, &peer])?;
    assert_eq!(again["changed"], Value::Bool(false), "{again}");

    // The new member serves reads and (forwarded) writes at once.
    let on_new = cluster.nodes[new].client()?;
    let listed = on_new.get("/resource_providers").await?.expect(200)?;
    assert_eq!(
        listed.body["resource_providers"].as_array().map(Vec::len),
        Some(30)
    );
    let rp = on_new.create_provider("through-node-4").await?;
    cluster.nodes[leader]
        .client()?
        .get(&format!("/resource_providers/{rp}"))
        .await?
        .expect(200)?;

    // Remove the leader itself, through the new node; the rest elect a new leader.
    let old_leader_id = cluster.nodes[leader].node_id();
    let removed = cluster.nodes[new].admin(&["remove", &old_leader_id.to_string()])?;
    assert_eq!(removed["changed"], Value::Bool(true), "{removed}");
    // The removed node steps down and leaves the load balancer's rotation while it still
    // runs; the others elect a leader among themselves.
    let deadline = Instant::now() + REMOVAL_TIMEOUT;
    loop {
        let ready = Cluster::readyz(&cluster.nodes[leader]).await;
        if ready["ready"] == Value::Bool(false) && ready["is_leader"] == Value::Bool(false) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "removed node still ready: {ready}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cluster.nodes[leader].terminate(Duration::from_secs(15))?;
    let remaining: Vec<usize> = (0..cluster.nodes.len()).filter(|i| *i != leader).collect();
    let next = cluster.leader(LEADER_TIMEOUT).await?;
    assert_ne!(next, leader);
    for i in 0..10 {
        cluster.nodes[remaining[i % remaining.len()]]
            .client()?
            .create_provider(&format!("after-removal-{i}"))
            .await?;
    }
    let status = cluster.nodes[remaining[0]].admin(&["status"])?;
    let expected: BTreeSet<u64> = remaining
        .iter()
        .map(|i| cluster.nodes[*i].node_id())
        .collect();
    assert_eq!(voters(&status), expected, "{status}");

    // Every remaining member holds the same state: 30 + 1 + 10 providers plus the standard
    // resource classes and traits.
    let all = digests(&cluster, &remaining)?;
    assert!(
        all.windows(2).all(|w| w[0].1 == w[1].1 && w[0].2 == w[1].2),
        "digests differ: {all:?}"
    );
    let count = on_new.get("/resource_providers").await?.expect(200)?;
    assert_eq!(
        count.body["resource_providers"].as_array().map(Vec::len),
        Some(41)
    );
    // Removing an absent node changes nothing.
    let absent = cluster.nodes[next].admin(&["remove", &old_leader_id.to_string()])?;
    assert_eq!(absent["changed"], Value::Bool(false), "{absent}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_on_the_leader_hands_leadership_over() -> Result<()> {
    let mut cluster = Cluster::start(3).await?;
    let leader = cluster.leader(LEADER_TIMEOUT).await?;
    let status = cluster.nodes[leader].terminate(Duration::from_secs(15))?;
    assert!(status.success(), "leader exited with {status}");
    let exited = Instant::now();
    // Shorter than the minimum election timeout (1 s): only a handover explains a new leader
    // this soon.
    let next = cluster
        .leader(Duration::from_millis(900))
        .await
        .map_err(|e| {
            format!(
                "no new leader right after the old one exited: {e}\n{}",
                cluster.logs()
            )
        })?;
    assert_ne!(next, leader);
    eprintln!(
        "new leader known {:?} after the old one exited",
        exited.elapsed()
    );
    let handed = cluster.nodes[leader]
        .log_with("leadership handed over")
        .await;
    assert!(
        handed.contains("leadership handed over"),
        "old leader's log:\n{handed}"
    );
    let other = followers(leader, 3)
        .into_iter()
        .find(|i| *i != next)
        .ok_or("no third node")?;
    cluster.nodes[other]
        .client()?
        .create_provider("after-handover")
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stale_reads_are_served_without_a_majority_linearizable_ones_are_not() -> Result<()> {
    let mut cluster = Cluster::start(3).await?;
    let leader = cluster.leader(LEADER_TIMEOUT).await?;
    let rp = cluster.nodes[leader]
        .client()?
        .create_provider("seen")
        .await?;
    let path = format!("/resource_providers/{rp}");
    let f = followers(leader, 3);
    let (survivor, other) = (f[0], f[1]);

    // A linearizable read needs the leader to confirm with a quorum: a minority answers 503.
    cluster.nodes[leader].kill9()?;
    cluster.nodes[other].kill9()?;
    let r = cluster.nodes[survivor].client()?.get(&path).await?;
    assert_eq!(r.status, 503, "linearizable read on a minority: {}", r.text);

    // Majority back; the survivor restarts with stale reads; the majority goes away again.
    cluster.nodes[leader].respawn()?;
    cluster.nodes[other].respawn()?;
    cluster.nodes[leader].wait_ready().await?;
    cluster.nodes[other].wait_ready().await?;
    cluster.nodes[survivor].set_more_args(&["--read-consistency", "stale"]);
    cluster.nodes[survivor].restart().await?;
    cluster.nodes[leader].kill9()?;
    cluster.nodes[other].kill9()?;
    let r = cluster.nodes[survivor].client()?.get(&path).await?;
    assert_eq!(r.status, 200, "stale read on a minority: {}", r.text);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_isolated_leader_leaves_the_rotation() -> Result<()> {
    let mut cluster = Cluster::start(3).await?;
    let leader = cluster.leader(LEADER_TIMEOUT).await?;
    for f in followers(leader, 3) {
        cluster.nodes[f].kill9()?;
    }
    // It cannot commit or confirm a read any more: /readyz must say so, as it does on an
    // isolated follower once its election timeout passes.
    let started = Instant::now();
    loop {
        let ready = Cluster::readyz(&cluster.nodes[leader]).await;
        if ready["ready"] == Value::Bool(false) {
            eprintln!(
                "isolated leader unready after {:?}: {ready}",
                started.elapsed()
            );
            break;
        }
        assert!(
            started.elapsed() < REMOVAL_TIMEOUT,
            "isolated leader still ready: {ready}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}
