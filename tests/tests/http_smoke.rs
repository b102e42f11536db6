//! Smoke test of the REST API against a real `placementd` process: the path every
//! allocation takes (provider → inventory → allocation → usages) and the capacity rule,
//! end to end through HTTP, Raft and RocksDB. The conformance suite covers the API in
//! depth; this test only proves the pieces are wired together in the built binary.

use placementd_tests::{allocation_body, Node, Result};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_answers_version_document() -> Result<()> {
    let node = Node::start().await?;
    let c = node.client()?;
    let r = c.get("/").await?.expect(200)?;
    let versions = r.body["versions"]
        .as_array()
        .ok_or("GET / has no versions list")?;
    let max = versions
        .first()
        .and_then(|v| v["max_version"].as_str())
        .unwrap_or_default();
    assert_eq!(max, "1.39", "GET / body: {}", r.text);
    // No token → 401 on anything but the root.
    let anon = reqwest::get(format!("{}/resource_providers", node.url())).await?;
    assert_eq!(anon.status().as_u16(), 401);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_inventory_allocation_usages() -> Result<()> {
    let node = Node::start().await?;
    let c = node.client()?;

    // provider CRUD
    let rp = c.create_provider("smoke-cn1").await?;
    let shown = c
        .get(&format!("/resource_providers/{rp}"))
        .await?
        .expect(200)?;
    assert_eq!(shown.body["name"], "smoke-cn1");
    assert_eq!(shown.body["generation"], 0);
    let dup = c
        .post("/resource_providers", &json!({"name": "smoke-cn1"}))
        .await?;
    assert_eq!(dup.status, 409, "duplicate name: {}", dup.text);
    let list = c
        .get("/resource_providers?name=smoke-cn1")
        .await?
        .expect(200)?;
    assert_eq!(
        list.body["resource_providers"].as_array().map(Vec::len),
        Some(1)
    );

    // inventory
    c.set_inventory(&rp, &[("VCPU", 8), ("MEMORY_MB", 4096)])
        .await?;
    let inv = c
        .get(&format!("/resource_providers/{rp}/inventories"))
        .await?
        .expect(200)?;
    assert_eq!(inv.body["inventories"]["VCPU"]["total"], 8);
    assert_eq!(inv.body["resource_provider_generation"], 1);

    // allocation
    let consumer = uuid::Uuid::new_v4().to_string();
    let body = allocation_body(&[(&rp, &[("VCPU", 2), ("MEMORY_MB", 1024)])], None);
    c.put(&format!("/allocations/{consumer}"), &body)
        .await?
        .expect(204)?;
    let got = c
        .get(&format!("/allocations/{consumer}"))
        .await?
        .expect(200)?;
    assert_eq!(got.body["allocations"][&rp]["resources"]["VCPU"], 2);
    assert_eq!(got.body["consumer_generation"], 1);

    // usages: per provider and per project
    let usages = c.usages(&rp).await?;
    assert_eq!(usages.get("VCPU"), Some(&json!(2)));
    assert_eq!(usages.get("MEMORY_MB"), Some(&json!(1024)));
    let by_project = c
        .get(&format!(
            "/usages?project_id={}",
            placementd_tests::PROJECT_ID
        ))
        .await?
        .expect(200)?;
    assert_eq!(
        by_project.body["usages"]["INSTANCE"]["VCPU"], 2,
        "{}",
        by_project.text
    );

    // a stale consumer generation is a 409 concurrent_update, and changes nothing
    let stale = allocation_body(&[(&rp, &[("VCPU", 1)])], Some(0));
    let r = c.put(&format!("/allocations/{consumer}"), &stale).await?;
    assert_eq!(r.status, 409, "stale consumer generation: {}", r.text);
    assert_eq!(r.error_code(), Some("placement.concurrent_update"));
    assert_eq!(c.usages(&rp).await?.get("VCPU"), Some(&json!(2)));

    // replace-all with the right generation
    let replace = allocation_body(&[(&rp, &[("VCPU", 3)])], Some(1));
    c.put(&format!("/allocations/{consumer}"), &replace)
        .await?
        .expect(204)?;
    let usages = c.usages(&rp).await?;
    assert_eq!(usages.get("VCPU"), Some(&json!(3)));
    assert_eq!(usages.get("MEMORY_MB"), Some(&json!(0)));

    // inventory in use cannot be removed; a provider with allocations cannot be deleted
    let r = c
        .delete(&format!("/resource_providers/{rp}/inventories/VCPU"))
        .await?;
    assert_eq!(r.status, 409, "delete in-use inventory: {}", r.text);
    let r = c.delete(&format!("/resource_providers/{rp}")).await?;
    assert_eq!(
        r.status, 409,
        "delete provider with allocations: {}",
        r.text
    );

    // delete the allocation, then the provider
    c.delete(&format!("/allocations/{consumer}"))
        .await?
        .expect(204)?;
    assert_eq!(c.usages(&rp).await?.get("VCPU"), Some(&json!(0)));
    c.delete(&format!("/resource_providers/{rp}"))
        .await?
        .expect(204)?;
    c.get(&format!("/resource_providers/{rp}"))
        .await?
        .expect(404)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_is_enforced_with_409() -> Result<()> {
    let node = Node::start().await?;
    let c = node.client()?;
    let rp = c.create_provider("smoke-small").await?;
    c.set_inventory(&rp, &[("VCPU", 4)]).await?;

    let first = uuid::Uuid::new_v4().to_string();
    let body = allocation_body(&[(&rp, &[("VCPU", 3)])], None);
    c.put(&format!("/allocations/{first}"), &body)
        .await?
        .expect(204)?;

    // 3 + 2 > 4: refused, nothing written
    let second = uuid::Uuid::new_v4().to_string();
    let body = allocation_body(&[(&rp, &[("VCPU", 2)])], None);
    let r = c.put(&format!("/allocations/{second}"), &body).await?;
    assert_eq!(r.status, 409, "over capacity: {}", r.text);
    assert!(
        r.text.contains("exceed the capacity"),
        "message: {}",
        r.text
    );
    assert_eq!(c.usages(&rp).await?.get("VCPU"), Some(&json!(3)));
    let r = c
        .get(&format!("/allocations/{second}"))
        .await?
        .expect(200)?;
    assert_eq!(r.body["allocations"], json!({}));

    // exactly up to capacity is fine
    let body = allocation_body(&[(&rp, &[("VCPU", 1)])], None);
    c.put(&format!("/allocations/{second}"), &body)
        .await?
        .expect(204)?;
    assert_eq!(c.usages(&rp).await?.get("VCPU"), Some(&json!(4)));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_survives_a_clean_restart() -> Result<()> {
    let mut node = Node::start().await?;
    let c = node.client()?;
    let rp = c.create_provider("smoke-restart").await?;
    c.set_inventory(&rp, &[("VCPU", 16)]).await?;
    let consumer = uuid::Uuid::new_v4().to_string();
    let body = allocation_body(&[(&rp, &[("VCPU", 5)])], None);
    c.put(&format!("/allocations/{consumer}"), &body)
        .await?
        .expect(204)?;
    let generation = c.provider_generation(&rp).await?;

    node.restart().await?;
    let c = node.client()?;
    assert_eq!(c.provider_generation(&rp).await?, generation);
    assert_eq!(c.usages(&rp).await?.get("VCPU"), Some(&json!(5)));
    let got = c
        .get(&format!("/allocations/{consumer}"))
        .await?
        .expect(200)?;
    assert_eq!(got.body["allocations"][&rp]["resources"]["VCPU"], 5);
    Ok(())
}
