//! An allocation write load for failover tests: writers that each loop putting a 1-VCPU
//! allocation for a new consumer on one provider until stopped, and the check that a cluster
//! holds every write they saw acknowledged.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::task::JoinHandle;

use crate::{allocation_body, Client, Cluster, Result};

/// Pause of a writer after a write whose outcome it did not learn.
const UNKNOWN_PAUSE: Duration = Duration::from_millis(20);

/// Running writers and what they have seen so far.
pub struct AllocationLoad {
    seen: Arc<Seen>,
    tasks: Vec<JoinHandle<Result<(), String>>>,
}

#[derive(Default)]
struct Seen {
    /// Consumers whose write answered 204.
    acked: Mutex<BTreeSet<String>>,
    /// Writes that answered one of the `unknown` statuses or not at all.
    unknown: AtomicUsize,
    /// When the latest write that succeeded was sent.
    last_ok: Mutex<Option<Instant>>,
    stop: AtomicBool,
}

impl AllocationLoad {
    /// Starts `writers` writers on provider `rp`; writer `w`'s `n`-th write goes through
    /// `clients[(w + n) % len]`. A status in `unknown` (or a transport error) counts as an
    /// outcome the client never learned; any status but 204 and those fails the writer.
    pub fn start(clients: &[Client], rp: &str, writers: usize, unknown: &'static [u16]) -> Self {
        let seen = Arc::new(Seen::default());
        let tasks = (0..writers)
            .map(|w| {
                let (clients, rp, seen) = (clients.to_vec(), rp.to_string(), seen.clone());
                tokio::spawn(async move {
                    let mut turn = w;
                    while !seen.stop.load(Ordering::Relaxed) {
                        turn += 1;
                        let c = &clients[turn % clients.len()];
                        let consumer = uuid::Uuid::new_v4().to_string();
                        let body = allocation_body(&[(&rp, &[("VCPU", 1)])], None);
                        let sent = Instant::now();
                        match c.put(&format!("/allocations/{consumer}"), &body).await {
                            Ok(r) if r.status == 204 => {
                                lock(&seen.acked).insert(consumer);
                                let mut last = lock(&seen.last_ok);
                                if last.is_none_or(|t| t < sent) {
                                    *last = Some(sent);
                                }
                            }
                            Ok(r) if !unknown.contains(&r.status) => {
                                return Err(format!("unexpected HTTP {}: {}", r.status, r.text))
                            }
                            // An unknown status, or the killed node: refused or reset.
                            _ => {
                                seen.unknown.fetch_add(1, Ordering::Relaxed);
                                tokio::time::sleep(UNKNOWN_PAUSE).await;
                            }
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        AllocationLoad { seen, tasks }
    }

    /// How many writes were acknowledged so far.
    pub fn acked(&self) -> usize {
        lock(&self.seen.acked).len()
    }

    /// How long after `since` a write sent after `since` succeeded, waiting up to `budget`
    /// (`None`: none did).
    pub async fn success_after(&self, since: Instant, budget: Duration) -> Option<Duration> {
        loop {
            if lock(&self.seen.last_ok).is_some_and(|t| t > since) {
                return Some(since.elapsed());
            }
            if since.elapsed() > budget {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the writers; the acknowledged consumers and the count of unknown outcomes.
    pub async fn stop(self) -> Result<(BTreeSet<String>, usize)> {
        self.seen.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.map_err(|e| format!("writer panicked: {e}"))??;
        }
        let acked = lock(&self.seen.acked).clone();
        Ok((acked, self.seen.unknown.load(Ordering::Relaxed)))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Every node of `cluster` holds each `acked` allocation on `rp`, its usage is the sum of its
/// allocations, and all nodes hold the same allocations.
pub async fn assert_every_node_holds(
    cluster: &Cluster,
    rp: &str,
    acked: &BTreeSet<String>,
) -> Result<()> {
    let mut seen: Option<BTreeMap<String, u64>> = None;
    for node in &cluster.nodes {
        let c = node.client()?;
        let allocs: BTreeMap<String, u64> = c
            .allocations_on(rp)
            .await?
            .iter()
            .map(|(c, a)| (c.clone(), a["resources"]["VCPU"].as_u64().unwrap_or(0)))
            .collect();
        let missing: Vec<&String> = acked.iter().filter(|a| !allocs.contains_key(*a)).collect();
        assert!(
            missing.is_empty(),
            "node {}: {} acknowledged allocations missing, e.g. {:?}",
            node.node_id(),
            missing.len(),
            missing.first()
        );
        let sum: u64 = allocs.values().sum();
        let used = c
            .usages(rp)
            .await?
            .get("VCPU")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        assert_eq!(
            used,
            sum,
            "node {}: usage is not the sum of allocations",
            node.node_id()
        );
        if let Some(first) = &seen {
            assert_eq!(first, &allocs, "node {} differs", node.node_id());
        }
        seen = Some(allocs);
    }
    Ok(())
}
