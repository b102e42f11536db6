//! The majority-lost phase, after the random faults: a majority (always with the leader) is
//! paused; every node left must refuse a write in bounded time (fail, not hang) and
//! acknowledge none; after SIGCONT a write must succeed again. The probes are one-shot writes
//! in the history, so a refused-as-503 write that was applied after all is seen by the
//! checkers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::check::Report;
use crate::cluster::Cluster;
use crate::history::Outcome;
use crate::nemesis::Nemesis;
use crate::settle::wait_ready;
use crate::workload::{self, Shared};

/// In the majority-lost phase, a write to a node without quorum must be answered (with an
/// error) within this time: it must fail, not hang.
const NO_QUORUM_ANSWER_WITHIN: Duration = Duration::from_secs(45);
/// ... and writes must succeed again within this time after healing.
const RECOVER_WITHIN: Duration = Duration::from_secs(60);
/// The client id of the probes in the history.
const PROBE_CLIENT: u32 = u32::MAX;

/// Pauses a majority; a write to a node left must be answered with an error in bounded time;
/// after SIGCONT writes must succeed again. The probes are one-shot writes in the history.
pub async fn majority_lost(
    cluster: &Arc<Mutex<Cluster>>,
    shared: &Arc<Shared>,
    nemesis: &Nemesis,
) -> Report {
    let name = "majority-lost";
    let _ = wait_ready(cluster, shared, Duration::from_secs(60)).await;
    let leader = nemesis.leader().await;
    let (paused, left) = {
        let mut c = cluster.lock().await;
        let members = c.members();
        let majority = members.len() / 2 + 1;
        // The leader is always among the paused: the nodes left must notice it is gone.
        let mut order: Vec<usize> = members.clone();
        order.sort_by_key(|&i| (Some(i) != leader, c.nodes[i].id));
        let paused: Vec<usize> = order[..majority].to_vec();
        for &i in &paused {
            let _ = c.signal(i, "STOP");
        }
        let left: Vec<(u64, String)> = order[majority..]
            .iter()
            .map(|&i| (c.nodes[i].id, c.nodes[i].url()))
            .collect();
        (paused, left)
    };
    let mut problems = Vec::new();
    let mut answers = Vec::new();
    for (id, url) in &left {
        let t0 = Instant::now();
        let outcome = workload::one_shot_write(
            shared,
            PROBE_CLIENT,
            *id,
            url,
            NO_QUORUM_ANSWER_WITHIN + Duration::from_secs(30),
        )
        .await;
        let took = t0.elapsed();
        answers.push(format!(
            "node {id}: {outcome:?} after {:.1} s",
            took.as_secs_f64()
        ));
        match outcome {
            Outcome::Ok => {
                problems.push(format!("node {id} acknowledged a write without a quorum"))
            }
            Outcome::Unknown { why } if why == "timeout" => problems.push(format!(
                "node {id} did not answer a write within {} s",
                took.as_secs()
            )),
            _ if took > NO_QUORUM_ANSWER_WITHIN => problems.push(format!(
                "node {id} took {} s to refuse a write",
                took.as_secs()
            )),
            _ => {}
        }
    }
    {
        let mut c = cluster.lock().await;
        for &i in &paused {
            let _ = c.signal(i, "CONT");
        }
    }
    let healed = Instant::now();
    let mut recovered = None;
    while healed.elapsed() < RECOVER_WITHIN {
        let Some((id, url)) = left.first().cloned() else {
            break;
        };
        let probe =
            workload::one_shot_write(shared, PROBE_CLIENT, id, &url, Duration::from_secs(10));
        if probe.await == Outcome::Ok {
            recovered = Some(healed.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    match recovered {
        Some(d) => answers.push(format!(
            "writes succeed again {:.1} s after SIGCONT",
            d.as_secs_f64()
        )),
        None => problems.push(format!(
            "no write succeeded within {} s of healing",
            RECOVER_WITHIN.as_secs()
        )),
    }
    Report {
        name,
        ok: problems.is_empty(),
        summary: format!(
            "{} of {} paused; {}",
            paused.len(),
            paused.len() + left.len(),
            answers.join("; ")
        ),
        detail: problems.join("\n"),
    }
}
