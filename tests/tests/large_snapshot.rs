//! Catch-up of a new member from a snapshot of a realistic state: 100 000 consumers.
//!
//! A 3-node cluster with a short snapshot interval takes 100 000 consumers (written as
//! `POST /allocations` batches of 100, so seeding takes seconds), which compacts its log. A
//! 4th node then joins through the real CLI (`placementd cluster add`); the leader cannot send
//! it the purged log, so it must install a streamed snapshot of the whole state. Afterwards it
//! serves the same usages and reports the same state digest as every other member. The
//! catch-up time is printed (it is a correctness test, not a benchmark: no time is asserted
//! beyond the membership deadline).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use placementd_tests::{Cluster, Result, PROJECT_ID, USER_ID};
use serde_json::{json, Value};

/// Consumers in the state the new node catches up from.
const CONSUMERS: usize = 100_000;
/// Consumers per `POST /allocations` (one Raft entry each).
const BATCH: usize = 100;
/// Concurrent seeding requests.
const SEEDERS: usize = 8;
/// Snapshot interval: seeding (1 000 entries) compacts the log several times.
const SNAPSHOT_EVERY: &str = "200";
/// Time allowed for the first leader.
const LEADER_TIMEOUT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_member_catches_up_from_a_snapshot_of_100k_consumers() -> Result<()> {
    let mut cluster = Cluster::start_with(3, &["--snapshot-every", SNAPSHOT_EVERY]).await?;
    let leader = cluster.leader(LEADER_TIMEOUT).await?;
    let client = cluster.nodes[leader].client()?;
    let rp = client.create_provider("big").await?;
    client
        .set_inventory(&rp, &[("VCPU", CONSUMERS as u64), ("MEMORY_MB", 1 << 30)])
        .await?;

    let seeding = Instant::now();
    let next_batch = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for w in 0..SEEDERS {
        // Spread over all members: two thirds of the batches are forwarded by followers.
        let c = cluster.nodes[(leader + w) % 3].client()?;
        let next_batch = next_batch.clone();
        let rp = rp.clone();
        workers.push(tokio::spawn(async move {
            while next_batch.fetch_add(1, Ordering::Relaxed) < CONSUMERS / BATCH {
                let mut body = serde_json::Map::new();
                for _ in 0..BATCH {
                    body.insert(
                        uuid::Uuid::new_v4().to_string(),
                        json!({
                            "allocations": { rp.clone(): { "resources": { "VCPU": 1, "MEMORY_MB": 64 } } },
                            "project_id": PROJECT_ID,
                            "user_id": USER_ID,
                            "consumer_generation": null,
                            "consumer_type": "INSTANCE",
                        }),
                    );
                }
                c.post("/allocations", &Value::Object(body))
                    .await?
                    .expect(204)?;
            }
            Ok::<_, placementd_tests::Error>(())
        }));
    }
    for w in workers {
        w.await.map_err(|e| format!("join: {e}"))??;
    }
    eprintln!("seeded {CONSUMERS} consumers in {:?}", seeding.elapsed());
    let usages = client.usages(&rp).await?;
    assert_eq!(usages["VCPU"], json!(CONSUMERS));

    let status = cluster.nodes[leader].admin(&["status"])?;
    assert!(
        status["purged_index"].as_u64().unwrap_or(0) > 0,
        "the leader's log was never compacted: {status}"
    );

    let new = cluster.spawn_joining_node(&["--snapshot-every", SNAPSHOT_EVERY])?;
    let (id, api, peer) = (
        cluster.nodes[new].node_id().to_string(),
        format!("127.0.0.1:{}", cluster.nodes[new].port()),
        cluster.nodes[new].peer_addr()?,
    );
    let joining = Instant::now();
    cluster.nodes[leader].admin(&["add", &id, &api, &peer])?;
    cluster.nodes[new].wait_ready().await?;
    eprintln!(
        "node {id} joined (snapshot of {CONSUMERS} consumers installed) in {:?}",
        joining.elapsed()
    );
    let log = cluster.nodes[new].log_with("installing snapshot").await;
    assert!(
        log.contains("installing snapshot"),
        "the new node did not catch up through a snapshot:\n{}",
        cluster.nodes[new].log_tail()
    );

    let on_new = cluster.nodes[new].client()?;
    assert_eq!(on_new.usages(&rp).await?, usages);
    let mut digests = BTreeSet::new();
    for node in &cluster.nodes {
        let d = node.admin(&["digest"])?;
        assert!(
            d["records"].as_u64().unwrap_or(0) > CONSUMERS as u64,
            "node {}: {d}",
            node.node_id()
        );
        digests.insert(d["sha256"].as_str().unwrap_or_default().to_string());
    }
    assert_eq!(digests.len(), 1, "members differ: {digests:?}");
    Ok(())
}
