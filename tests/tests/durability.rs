//! Durability across SIGKILL: no acknowledged write is lost, nothing is counted twice.
//!
//! Concurrent writers create, replace and delete allocations of their own consumers on two
//! providers (`PUT /allocations/{c}` at 1.39 with consumer generations, `DELETE
//! /allocations/{c}`). Once enough writes have been acknowledged the node gets SIGKILL
//! while the writers are still sending, and is restarted on the same data directory.
//!
//! The model: every consumer has the state of its last ACKNOWLEDGED (2xx) write, plus, if a
//! writer's request was in flight when the node died (transport error, no answer), the
//! state that request asked for. An unacknowledged write may or may not have happened,
//! but nothing else is allowed. After the restart:
//!
//! 1. every consumer's allocations (`GET /allocations/{c}`) are its acknowledged state, or
//!    the in-flight state if it had one — so no acknowledged write is lost or half-applied;
//! 2. each provider's allocations (`GET /resource_providers/{rp}/allocations`) name exactly
//!    the consumers that hold something — no phantom or duplicate consumers;
//! 3. each provider's usages (`GET /resource_providers/{rp}/usages`) equal the sum of those
//!    allocations — nothing double-counted, nothing missing;
//! 4. the node takes writes again, and the consumer generations it reports are accepted.
//!
//! This runs [`ROUNDS`] kill/restart cycles, so the second recovery starts from a log that
//! already went through one. All consumers are private to one writer, so a 409 is never
//! expected; any non-2xx answer fails the test. A SIGKILL does not drop the OS page cache,
//! so this test cannot catch a missing fsync (docs/design/storage.md, "What is synced, and when"); it
//! catches lost acknowledged writes, non-atomic applies and replay bugs.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use placementd_tests::{allocation_body, Client, Node, Result};
use serde_json::Value;

/// Concurrent writers (each a task with its own consumers).
const WRITERS: usize = 12;
/// The node is killed once this many writes (summed over writers) were acknowledged...
const ACKS_BEFORE_KILL: usize = 1000;
/// ...or after this long, whichever comes first (a slow machine still gets its kill).
const MAX_LOAD_BEFORE_KILL: Duration = Duration::from_secs(20);
/// Kill/restart cycles.
const ROUNDS: usize = 2;
/// Inventory per provider: far more than the writers can use, so capacity never refuses.
const TOTAL: u64 = 10_000_000;
/// Upper bound for the whole test.
const TEST_DEADLINE: Duration = Duration::from_secs(240);

/// What one consumer holds: VCPU on provider A and MEMORY_MB on provider B (0 = none).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
struct Holding {
    vcpu: u64,
    mem: u64,
}

impl Holding {
    fn is_empty(self) -> bool {
        self.vcpu == 0 && self.mem == 0
    }
}

/// One consumer as the client knows it.
#[derive(Clone, Debug, Default)]
struct Consumer {
    /// State after the last acknowledged write (empty = no allocations).
    acked: Holding,
    /// Requested state of a write whose outcome is unknown (node died mid-request).
    in_flight: Option<Holding>,
}

#[derive(Default)]
struct WriterLog {
    consumers: BTreeMap<String, Consumer>,
    acks: usize,
}

struct Shared {
    client: Client,
    rp_a: String,
    rp_b: String,
    acks: AtomicUsize,
    stop: AtomicBool,
}

/// A cheap random number: the test only needs a varied mix, not good randomness.
fn rand_u8() -> u8 {
    uuid::Uuid::new_v4().as_bytes()[0]
}

fn body_for(s: &Shared, h: Holding, generation: Option<u64>) -> Value {
    let mut parts: Vec<(&str, &[(&str, u64)])> = Vec::new();
    let vcpu = [("VCPU", h.vcpu)];
    let mem = [("MEMORY_MB", h.mem)];
    if h.vcpu > 0 {
        parts.push((&s.rp_a, &vcpu));
    }
    if h.mem > 0 {
        parts.push((&s.rp_b, &mem));
    }
    allocation_body(&parts, generation)
}

/// One writer: loops create (60 %) / replace (25 %) / delete (15 %) on its own consumers
/// until the node stops answering or `stop` is set. Returns its log; `Err` only for an
/// answer the model does not allow (any non-2xx status).
async fn writer(s: Arc<Shared>, mut log: WriterLog) -> Result<WriterLog> {
    while !s.stop.load(Ordering::Relaxed) {
        let live: Vec<String> = log
            .consumers
            .iter()
            .filter(|(_, c)| !c.acked.is_empty())
            .map(|(k, _)| k.clone())
            .collect();
        let dice = rand_u8() % 100;
        let amount = u64::from(rand_u8() % 8) + 1;
        let (consumer, target, op) = if dice < 60 || live.is_empty() {
            let target = Holding {
                vcpu: amount,
                mem: amount * 256,
            };
            (uuid::Uuid::new_v4().to_string(), target, "create")
        } else {
            let c = live[usize::from(rand_u8()) % live.len()].clone();
            if dice < 85 {
                // replace-all: sometimes only one of the two providers
                let target = match rand_u8() % 3 {
                    0 => Holding {
                        vcpu: amount,
                        mem: 0,
                    },
                    1 => Holding {
                        vcpu: 0,
                        mem: amount * 512,
                    },
                    _ => Holding {
                        vcpu: amount + 1,
                        mem: amount * 128,
                    },
                };
                (c, target, "replace")
            } else {
                (c, Holding::default(), "delete")
            }
        };
        let path = format!("/allocations/{consumer}");
        let sent = match op {
            "create" => s.client.put(&path, &body_for(&s, target, None)).await,
            "replace" => {
                // the consumer generation the server has now (only this writer changes it)
                let current = match s.client.get(&path).await {
                    Ok(r) => r.expect(200)?,
                    Err(_) => break, // node gone before the write was sent: nothing in flight
                };
                let generation = current.body["consumer_generation"].as_u64();
                s.client.put(&path, &body_for(&s, target, generation)).await
            }
            _ => s.client.delete(&path).await,
        };
        let entry = log.consumers.entry(consumer.clone()).or_default();
        match sent {
            Ok(r) if (200..300).contains(&r.status) => {
                entry.acked = target;
                log.acks += 1;
                s.acks.fetch_add(1, Ordering::Relaxed);
            }
            Ok(r) => {
                return Err(
                    format!("{op} {consumer}: unexpected HTTP {}: {}", r.status, r.text).into(),
                )
            }
            Err(_) => {
                // transport error: the node died; this write may or may not have happened
                entry.in_flight = Some(target);
                break;
            }
        }
    }
    Ok(log)
}

/// Reads `{consumer: Holding}` for one provider's class from its allocations listing.
async fn provider_allocations(c: &Client, rp: &str, class: &str) -> Result<HashMap<String, u64>> {
    let mut out = HashMap::new();
    for (consumer, a) in c.allocations_on(rp).await? {
        let n = a["resources"][class].as_u64().ok_or_else(|| {
            format!("provider {rp} lists consumer {consumer} without {class}: {a}")
        })?;
        out.insert(consumer, n);
    }
    Ok(out)
}

/// Checks the restarted node against the writers' model; resolves in-flight writes to
/// what the node shows and returns the merged consumer table for the next round.
async fn verify(
    c: &Client,
    rp_a: &str,
    rp_b: &str,
    logs: Vec<WriterLog>,
) -> Result<BTreeMap<String, Consumer>> {
    let mut all: BTreeMap<String, Consumer> = BTreeMap::new();
    let (mut in_flight, mut acked_live) = (0, 0);
    for log in logs {
        all.extend(log.consumers);
    }
    let mut sum = Holding::default();
    for (consumer, model) in all.iter_mut() {
        let r = c
            .get(&format!("/allocations/{consumer}"))
            .await?
            .expect(200)?;
        let allocs = r.body["allocations"]
            .as_object()
            .ok_or("no allocations object")?;
        let seen = Holding {
            vcpu: allocs
                .get(rp_a)
                .and_then(|a| a["resources"]["VCPU"].as_u64())
                .unwrap_or(0),
            mem: allocs
                .get(rp_b)
                .and_then(|a| a["resources"]["MEMORY_MB"].as_u64())
                .unwrap_or(0),
        };
        let extra = allocs.keys().filter(|k| *k != rp_a && *k != rp_b).count();
        assert_eq!(
            extra, 0,
            "consumer {consumer} has allocations on unknown providers: {}",
            r.text
        );
        let allowed = seen == model.acked || Some(seen) == model.in_flight;
        assert!(
            allowed,
            "consumer {consumer}: node shows {seen:?}, acknowledged {:?}, in flight {:?}",
            model.acked, model.in_flight
        );
        if model.in_flight.take().is_some() {
            in_flight += 1;
        }
        model.acked = seen;
        if !seen.is_empty() {
            acked_live += 1;
        }
        sum.vcpu += seen.vcpu;
        sum.mem += seen.mem;
    }

    // provider views: the same consumers, and usages equal to their sum
    let on_a = provider_allocations(c, rp_a, "VCPU").await?;
    let on_b = provider_allocations(c, rp_b, "MEMORY_MB").await?;
    for (consumer, n) in &on_a {
        let want = all.get(consumer).map(|m| m.acked.vcpu);
        assert_eq!(
            want,
            Some(*n),
            "provider A lists consumer {consumer} with VCPU {n}"
        );
    }
    for (consumer, n) in &on_b {
        let want = all.get(consumer).map(|m| m.acked.mem);
        assert_eq!(
            want,
            Some(*n),
            "provider B lists consumer {consumer} with MEMORY_MB {n}"
        );
    }
    assert_eq!(
        on_a.len(),
        all.values().filter(|m| m.acked.vcpu > 0).count()
    );
    assert_eq!(on_b.len(), all.values().filter(|m| m.acked.mem > 0).count());
    let usage_a = c.usages(rp_a).await?.get("VCPU").and_then(Value::as_u64);
    let usage_b = c
        .usages(rp_b)
        .await?
        .get("MEMORY_MB")
        .and_then(Value::as_u64);
    assert_eq!(usage_a, Some(sum.vcpu), "usages of A vs sum of allocations");
    assert_eq!(usage_b, Some(sum.mem), "usages of B vs sum of allocations");
    eprintln!(
        "verified {} consumers ({acked_live} holding allocations, {in_flight} had a write \
         in flight at the kill): VCPU {} MEMORY_MB {}",
        all.len(),
        sum.vcpu,
        sum.mem
    );
    Ok(all)
}

async fn run() -> Result<()> {
    let mut node = Node::start().await?;
    let c = node.client()?;
    let rp_a = c.create_provider("durability-a").await?;
    let rp_b = c.create_provider("durability-b").await?;
    c.set_inventory(&rp_a, &[("VCPU", TOTAL)]).await?;
    c.set_inventory(&rp_b, &[("MEMORY_MB", TOTAL)]).await?;

    let mut consumers: BTreeMap<String, Consumer> = BTreeMap::new();
    for round in 1..=ROUNDS {
        let shared = Arc::new(Shared {
            client: node.client()?,
            rp_a: rp_a.clone(),
            rp_b: rp_b.clone(),
            acks: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        // Hand each writer back its own consumers from the previous round.
        let mut per_writer: Vec<WriterLog> = (0..WRITERS).map(|_| WriterLog::default()).collect();
        for (i, (k, v)) in std::mem::take(&mut consumers).into_iter().enumerate() {
            per_writer[i % WRITERS].consumers.insert(k, v);
        }
        let tasks: Vec<_> = per_writer
            .into_iter()
            .map(|log| tokio::spawn(writer(shared.clone(), log)))
            .collect();

        let started = Instant::now();
        while shared.acks.load(Ordering::Relaxed) < ACKS_BEFORE_KILL
            && started.elapsed() < MAX_LOAD_BEFORE_KILL
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let acked_before_kill = shared.acks.load(Ordering::Relaxed);
        node.kill9()?;
        shared.stop.store(true, Ordering::Relaxed);
        let mut logs = Vec::new();
        for t in tasks {
            logs.push(t.await??);
        }
        let acks: usize = logs.iter().map(|l| l.acks).sum();
        eprintln!(
            "round {round}: SIGKILL after {acked_before_kill} acknowledged writes \
             ({:.1}s of load), {acks} acknowledged in total",
            started.elapsed().as_secs_f64()
        );
        assert!(
            acks > 0,
            "no write was acknowledged before the kill; log:\n{}",
            node.log_tail()
        );

        node.restart().await?;
        let c = node.client()?;
        consumers = verify(&c, &rp_a, &rp_b, logs)
            .await
            .map_err(|e| format!("round {round}: {e}\nnode log tail:\n{}", node.log_tail()))?;
    }

    // 4. the recovered node takes writes, and its consumer generations are current
    let c = node.client()?;
    let (consumer, _) = consumers
        .iter()
        .find(|(_, m)| m.acked.vcpu > 0)
        .ok_or("no consumer holds VCPU after the rounds")?;
    let path = format!("/allocations/{consumer}");
    let current = c.get(&path).await?.expect(200)?;
    let generation = current.body["consumer_generation"].as_u64();
    let body = allocation_body(&[(&rp_a, &[("VCPU", 1)])], generation);
    c.put(&path, &body).await?.expect(204)?;
    let fresh = uuid::Uuid::new_v4().to_string();
    let body = allocation_body(&[(&rp_a, &[("VCPU", 1)])], None);
    c.put(&format!("/allocations/{fresh}"), &body)
        .await?
        .expect(204)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_allocations_survive_sigkill() -> Result<()> {
    tokio::time::timeout(TEST_DEADLINE, run())
        .await
        .map_err(|_| format!("durability test did not finish within {TEST_DEADLINE:?}"))?
}
