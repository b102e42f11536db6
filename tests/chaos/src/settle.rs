//! After the faults: wait until every member is ready and the state digests agree, then read
//! every node's final state for the checkers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;
use uuid::Uuid;

use crate::cluster::Cluster;
use crate::history::{NodeFinal, Outcome, ProviderFinal};
use crate::workload::{self, Shared};

/// How long the cluster may take to converge after healing.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(180);

/// Waits until every member answers `/readyz` with 200.
pub async fn wait_ready(
    cluster: &Arc<Mutex<Cluster>>,
    shared: &Shared,
    timeout: Duration,
) -> std::result::Result<(), String> {
    let start = Instant::now();
    loop {
        let urls: Vec<(u64, String)> = {
            let c = cluster.lock().await;
            c.members()
                .into_iter()
                .map(|i| (c.nodes[i].id, c.nodes[i].url()))
                .collect()
        };
        let mut not_ready = Vec::new();
        for (id, url) in &urls {
            if !matches!(workload::readyz(&shared.http, url).await, Some((true, _))) {
                not_ready.push(*id);
            }
        }
        if not_ready.is_empty() {
            return Ok(());
        }
        if start.elapsed() > timeout {
            return Err(format!(
                "members {not_ready:?} not ready after {} s",
                timeout.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Every member ready and `placementd cluster compare-digests`
/// equal.
pub async fn converge(cluster: &Arc<Mutex<Cluster>>) -> std::result::Result<(), String> {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < CONVERGE_TIMEOUT {
        let (cli, peer) = {
            let c = cluster.lock().await;
            let Some(&i) = c.members().first() else {
                return Err("no members".into());
            };
            (c.cli(), c.nodes[i].peer.clone())
        };
        match cli
            .run(&peer, &["compare-digests"], Duration::from_secs(30))
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Err(format!(
        "no convergence after {} s: {last}",
        CONVERGE_TIMEOUT.as_secs()
    ))
}

/// Reads every consumer and provider on every member, and its digest.
pub async fn final_state(cluster: &Arc<Mutex<Cluster>>, shared: &Arc<Shared>) -> Vec<NodeFinal> {
    let (members, cli): (Vec<(u64, String, String)>, _) = {
        let c = cluster.lock().await;
        (
            c.members()
                .into_iter()
                .map(|i| (c.nodes[i].id, c.nodes[i].url(), c.nodes[i].peer.clone()))
                .collect(),
            c.cli(),
        )
    };
    let mut consumers: Vec<Uuid> = shared.registers.clone();
    consumers.extend(
        shared
            .one_shot
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default(),
    );
    let consumers = Arc::new(consumers);
    let mut finals = Vec::new();
    for (id, url, peer) in members {
        let mut nf = NodeFinal {
            node: id,
            ..NodeFinal::default()
        };
        // Consumers, 8 at a time.
        let mut set = tokio::task::JoinSet::new();
        for part in 0..8 {
            let (shared, url, consumers) = (shared.clone(), url.clone(), consumers.clone());
            set.spawn(async move {
                let mut got = Vec::new();
                for c in consumers.iter().skip(part).step_by(8) {
                    for _attempt in 0..5 {
                        let a = workload::call(
                            &shared.http,
                            Duration::from_secs(10),
                            reqwest::Method::GET,
                            format!("{url}/allocations/{c}"),
                            None,
                        )
                        .await;
                        if matches!(a.outcome, Outcome::Ok) {
                            got.push((*c, workload::seen_of(&a.body)));
                            break;
                        }
                    }
                }
                got
            });
        }
        while let Some(r) = set.join_next().await {
            if let Ok(got) = r {
                nf.consumers.extend(got);
            }
        }
        for p in shared.capacity().keys() {
            let get = |path: String| {
                workload::call(
                    &shared.http,
                    Duration::from_secs(10),
                    reqwest::Method::GET,
                    path,
                    None,
                )
            };
            let u = get(format!("{url}/resource_providers/{p}/usages")).await;
            let a = get(format!("{url}/resource_providers/{p}/allocations")).await;
            let mut pf = ProviderFinal {
                generation: u.body["resource_provider_generation"].as_u64().unwrap_or(0),
                usages: workload::usages_of(&u.body),
                ..ProviderFinal::default()
            };
            if let Some(m) = a.body["allocations"].as_object() {
                for alloc in m.values() {
                    if let Some(res) = alloc["resources"].as_object() {
                        for (rc, n) in res {
                            *pf.allocated.entry(rc.clone()).or_insert(0) += n.as_u64().unwrap_or(0);
                        }
                    }
                }
            }
            nf.providers.insert(*p, pf);
        }
        nf.digest = cli
            .run(&peer, &["digest"], Duration::from_secs(30))
            .await
            .ok()
            .and_then(|v| v["sha256"].as_str().map(str::to_string));
        finals.push(nf);
    }
    finals
}
