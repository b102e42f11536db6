//! Allocation rules under concurrent writers, against a real `placementd` process.
//!
//! 1. Many writers claim one provider until it is full: exactly its capacity is handed out,
//!    never more, usage equals the sum of the provider's allocations, and every refusal is
//!    a capacity 409 — a write from a new consumer never fails with `concurrent_update`,
//!    because apply checks capacity on the state it runs on (no optimistic retry loop).
//! 2. Many writers rewrite ONE shared consumer with consumer generations (1.28+): writes
//!    are serialized by the generation — each success bumps it by one, each loser gets 409
//!    `placement.concurrent_update` — so the final generation is 1 + successes and the
//!    allocation is exactly the last successful writer's.
//! 3. `POST /allocations` moves units between consumers atomically while other writers
//!    claim the same provider: the provider is never over capacity and its usage always
//!    equals what its consumers hold.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use placementd_tests::{allocation_body, Client, Node, Result};
use serde_json::{json, Value};

/// Concurrent writers per scenario.
const WRITERS: usize = 24;
/// Capacity of the contended provider in scenario 1.
const CAPACITY: u64 = 300;
/// Successful writes each writer aims for on the shared consumer in scenario 2.
const SHARED_WRITES_PER_WRITER: u64 = 10;
/// Upper bound for any scenario's load phase.
const DEADLINE: Duration = Duration::from_secs(120);

fn new_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Sum of the provider's allocations of `class` as `GET .../allocations` reports them.
async fn allocated(c: &Client, rp: &str, class: &str) -> Result<(u64, usize)> {
    let allocs = c.allocations_on(rp).await?;
    let sum = allocs
        .values()
        .map(|a| a["resources"][class].as_u64().unwrap_or(0))
        .sum();
    Ok((sum, allocs.len()))
}

async fn used(c: &Client, rp: &str, class: &str) -> Result<u64> {
    Ok(c.usages(rp)
        .await?
        .get(class)
        .and_then(Value::as_u64)
        .unwrap_or(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims_fill_a_provider_exactly() -> Result<()> {
    let node = Node::start().await?;
    let c = node.client()?;
    let rp = c.create_provider("contended").await?;
    c.set_inventory(&rp, &[("VCPU", CAPACITY)]).await?;

    let successes = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..WRITERS {
        let (c, rp, successes) = (c.clone(), rp.clone(), successes.clone());
        tasks.push(tokio::spawn(async move {
            let start = Instant::now();
            loop {
                let body = allocation_body(&[(&rp, &[("VCPU", 1)])], None);
                let r = c
                    .put(&format!("/allocations/{}", new_uuid()), &body)
                    .await?;
                match r.status {
                    204 => {
                        successes.fetch_add(1, Ordering::SeqCst);
                    }
                    409 if r.text.contains("would exceed the capacity") => return Ok(()),
                    _ => return Err(format!("unexpected answer {}: {}", r.status, r.text).into()),
                }
                if start.elapsed() > DEADLINE {
                    return Err("deadline passed before the provider filled".into());
                }
            }
        }));
    }
    for t in tasks {
        let r: Result<()> = t.await?;
        r?;
    }
    let (sum, consumers) = allocated(&c, &rp, "VCPU").await?;
    assert_eq!(successes.load(Ordering::SeqCst), CAPACITY, "successes");
    assert_eq!(used(&c, &rp, "VCPU").await?, CAPACITY, "usage");
    assert_eq!((sum, consumers as u64), (CAPACITY, CAPACITY), "allocations");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn consumer_generations_serialize_writers_of_one_consumer() -> Result<()> {
    let node = Node::start().await?;
    let c = node.client()?;
    let rp = c.create_provider("shared").await?;
    c.set_inventory(&rp, &[("VCPU", 1_000)]).await?;
    let consumer = new_uuid();
    c.put(
        &format!("/allocations/{consumer}"),
        &allocation_body(&[(&rp, &[("VCPU", 1)])], None),
    )
    .await?
    .expect(204)?;

    let successes = Arc::new(AtomicU64::new(0));
    let last_success = Arc::new(std::sync::Mutex::new((0u64, 0u64)));
    let mut tasks = Vec::new();
    for writer in 0..WRITERS as u64 {
        let (c, rp, consumer) = (c.clone(), rp.clone(), consumer.clone());
        let (successes, last_success) = (successes.clone(), last_success.clone());
        tasks.push(tokio::spawn(async move {
            let start = Instant::now();
            let mut mine = 0;
            while mine < SHARED_WRITES_PER_WRITER {
                let r = c
                    .get(&format!("/allocations/{consumer}"))
                    .await?
                    .expect(200)?;
                let generation = r.body["consumer_generation"]
                    .as_u64()
                    .ok_or_else(|| format!("no consumer_generation: {}", r.text))?;
                // The amount names the writer, so the final state shows who won last.
                let amount = writer + 1;
                let body = allocation_body(&[(&rp, &[("VCPU", amount)])], Some(generation));
                let w = c.put(&format!("/allocations/{consumer}"), &body).await?;
                match (w.status, w.error_code()) {
                    (204, _) => {
                        mine += 1;
                        successes.fetch_add(1, Ordering::SeqCst);
                        let mut last = last_success
                            .lock()
                            .map_err(|_| "lock poisoned by a failed writer")?;
                        // Generation g+1 is this write's: the highest one is the last.
                        if generation + 1 > last.0 {
                            *last = (generation + 1, amount);
                        }
                    }
                    (409, Some("placement.concurrent_update")) => {}
                    _ => return Err(format!("unexpected answer {}: {}", w.status, w.text).into()),
                }
                if start.elapsed() > DEADLINE {
                    return Err("deadline passed".into());
                }
            }
            Ok(())
        }));
    }
    for t in tasks {
        let r: Result<()> = t.await?;
        r?;
    }
    let n = successes.load(Ordering::SeqCst);
    assert_eq!(n, WRITERS as u64 * SHARED_WRITES_PER_WRITER);
    let r = c
        .get(&format!("/allocations/{consumer}"))
        .await?
        .expect(200)?;
    let (last_generation, last_amount) = *last_success
        .lock()
        .map_err(|_| "lock poisoned by a failed writer")?;
    assert_eq!(r.body["consumer_generation"], json!(1 + n), "{}", r.text);
    assert_eq!(r.body["consumer_generation"], json!(last_generation));
    assert_eq!(
        r.body["allocations"][&rp]["resources"]["VCPU"],
        json!(last_amount)
    );
    assert_eq!(used(&c, &rp, "VCPU").await?, last_amount);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn atomic_moves_and_claims_never_over_allocate() -> Result<()> {
    let node = Node::start().await?;
    let c = node.client()?;
    let rp = c.create_provider("movers").await?;
    c.set_inventory(&rp, &[("VCPU", CAPACITY)]).await?;

    // Pairs of consumers that pass units back and forth with POST /allocations.
    const PAIRS: usize = 8;
    let mut pairs = Vec::new();
    for _ in 0..PAIRS {
        let (a, b) = (new_uuid(), new_uuid());
        for x in [&a, &b] {
            c.put(
                &format!("/allocations/{x}"),
                &allocation_body(&[(&rp, &[("VCPU", 5)])], None),
            )
            .await?
            .expect(204)?;
        }
        pairs.push((a, b));
    }

    let mut tasks = Vec::new();
    // Movers: (5, 5) -> (1, 9) -> (5, 5) ... with generations 1, 2, 3 ...
    for (a, b) in pairs {
        let (c, rp) = (c.clone(), rp.clone());
        tasks.push(tokio::spawn(async move {
            for round in 1..=30u64 {
                let (x, y) = if round % 2 == 1 { (1, 9) } else { (5, 5) };
                let mut body = serde_json::Map::new();
                body.insert(
                    a.clone(),
                    allocation_body(&[(&rp, &[("VCPU", x)])], Some(round)),
                );
                body.insert(
                    b.clone(),
                    allocation_body(&[(&rp, &[("VCPU", y)])], Some(round)),
                );
                let r = c.post("/allocations", &Value::Object(body)).await?;
                if r.status != 204 {
                    return Err(format!("move {round}: {} {}", r.status, r.text).into());
                }
            }
            Ok(())
        }));
    }
    // Claimers fill what is left.
    for _ in 0..WRITERS / 2 {
        let (c, rp) = (c.clone(), rp.clone());
        tasks.push(tokio::spawn(async move {
            let start = Instant::now();
            loop {
                let body = allocation_body(&[(&rp, &[("VCPU", 3)])], None);
                let r = c
                    .put(&format!("/allocations/{}", new_uuid()), &body)
                    .await?;
                match r.status {
                    204 => {}
                    409 if r.text.contains("would exceed the capacity") => return Ok(()),
                    _ => return Err(format!("unexpected answer {}: {}", r.status, r.text).into()),
                }
                if start.elapsed() > DEADLINE {
                    return Err("deadline passed".into());
                }
            }
        }));
    }
    for t in tasks {
        let r: Result<()> = t.await?;
        r?;
    }
    let usage = used(&c, &rp, "VCPU").await?;
    let (sum, _) = allocated(&c, &rp, "VCPU").await?;
    assert_eq!(usage, sum, "usage equals the sum of the allocations");
    assert!(usage <= CAPACITY, "usage {usage} over capacity {CAPACITY}");
    // Movers hold 10 per pair; the claimers took 3 at a time until less than 3 was left.
    assert!(
        usage > CAPACITY - 3,
        "the provider was filled: usage {usage}"
    );
    Ok(())
}
