//! Backup and restore through the real CLI: `placementd cluster backup` on a follower of a
//! running 3-node cluster, `placementd restore` into an empty directory as node 10 of a new
//! cluster, which then serves the same state (same digest), grows by a joining node 11
//! (which gets the restored state by snapshot install), and takes writes.

use std::time::Duration;

use placementd_tests::{allocation_body, Cluster, Node, Result};
use serde_json::Value;

/// Time allowed for the first leader.
const LEADER_TIMEOUT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_restores_into_a_new_cluster_that_grows_and_takes_writes() -> Result<()> {
    let cluster = Cluster::start(3).await?;
    let leader = cluster.leader(LEADER_TIMEOUT).await?;
    let follower = (leader + 1) % 3;
    let client = cluster.nodes[follower].client()?;
    let rp = client.create_provider("backed-up").await?;
    client.set_inventory(&rp, &[("VCPU", 64)]).await?;
    for _ in 0..20 {
        let consumer = uuid::Uuid::new_v4();
        client
            .put(
                &format!("/allocations/{consumer}"),
                &allocation_body(&[(&rp, &[("VCPU", 2)])], None),
            )
            .await?
            .expect(204)?;
    }
    let old_digest = cluster.nodes[leader].admin(&["digest"])?;

    let dir = tempfile::tempdir()?;
    let file = dir.path().join("placement.backup");
    let file_arg = file.to_string_lossy().to_string();
    let report = cluster.nodes[follower].admin(&["backup", &file_arg])?;
    assert!(report["bytes"].as_u64().unwrap_or(0) > 0, "{report}");
    assert!(report["last_log_index"].as_u64().is_some(), "{report}");

    // A new cluster from the backup: same state, new membership.
    let restored = Node::from_backup(&file, 10, cluster.nodes[0].pki().cloned()).await?;
    let new_digest = restored.admin(&["digest"])?;
    assert_eq!(
        new_digest["sha256"], old_digest["sha256"],
        "{new_digest} vs {old_digest}"
    );
    let status = restored.admin(&["status"])?;
    assert_eq!(status["role"], "leader", "{status}");
    let ids: Vec<u64> = status["members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["id"].as_u64())
        .collect();
    assert_eq!(ids, vec![10], "{status}");
    let usages = restored.client()?.usages(&rp).await?;
    assert_eq!(usages["VCPU"], Value::from(40));

    // It grows: node 11 joins and gets the restored state (by snapshot: the log before the
    // backup's index does not exist on node 10).
    let mut cluster2 = Cluster::from_node(restored);
    let new = cluster2.spawn_joining_node(&[])?;
    let (id, api, peer) = (
        cluster2.nodes[new].node_id().to_string(),
        format!("127.0.0.1:{}", cluster2.nodes[new].port()),
        cluster2.nodes[new].peer_addr()?,
    );
    cluster2.nodes[0].admin(&["add", &id, &api, &peer])?;
    cluster2.nodes[new].wait_ready().await?;
    let log = cluster2.nodes[new].log_with("installing snapshot").await;
    assert!(
        log.contains("installing snapshot"),
        "node 11 did not start from a snapshot:\n{log}"
    );
    let joined = cluster2.nodes[new].client()?;
    assert_eq!(joined.usages(&rp).await?, usages);

    // And takes writes, through the new member (forwarded to node 10).
    let consumer = uuid::Uuid::new_v4();
    joined
        .put(
            &format!("/allocations/{consumer}"),
            &allocation_body(&[(&rp, &[("VCPU", 4)])], None),
        )
        .await?
        .expect(204)?;
    let a = cluster2.nodes[0].admin(&["digest"])?;
    let b = cluster2.nodes[new].admin(&["digest"])?;
    assert_eq!(a["sha256"], b["sha256"], "{a} vs {b}");
    assert_eq!(
        cluster2.nodes[0].client()?.usages(&rp).await?["VCPU"],
        Value::from(44)
    );
    Ok(())
}
