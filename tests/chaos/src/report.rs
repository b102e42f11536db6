//! What a run prints: operation and fault counts, failover times, and one PASS/FAIL line per
//! checker.

use std::collections::BTreeMap;

use crate::check::Report;
use crate::history::{History, OpKind, Outcome};
use crate::nemesis::{Event, FaultKind};

/// Counts and failover figures for the summary; `skipped` counts the faults drawn but not
/// injected.
pub fn summarize(
    h: &History,
    events: &[Event],
    skipped: &BTreeMap<FaultKind, u64>,
    converge_s: f64,
) -> String {
    let mut s = String::new();
    let mut by_kind: BTreeMap<&str, [u64; 3]> = BTreeMap::new();
    for op in &h.ops {
        let k = match &op.kind {
            OpKind::Write { writes } if writes.len() > 1 => "post-allocations",
            OpKind::Write { .. } => "put-allocations",
            OpKind::Delete { .. } => "delete-allocations",
            OpKind::ReadConsumer { .. } => "get-allocations",
            OpKind::ReadProvider {
                usages: Some(_), ..
            } => "get-usages",
            OpKind::ReadProvider { .. } => "get-provider",
        };
        let slot = match op.outcome {
            Outcome::Ok => 0,
            Outcome::Fail { .. } => 1,
            Outcome::Unknown { .. } => 2,
        };
        by_kind.entry(k).or_default()[slot] += 1;
    }
    let total: u64 = by_kind.values().map(|v| v.iter().sum::<u64>()).sum();
    let span_s = h.ops.last().map_or(0.0, |o| o.complete_ns as f64 / 1e9);
    s.push_str(&format!(
        "chaos: {total} operations in {span_s:.0} s ({:.0}/s)\n",
        total as f64 / span_s.max(1.0)
    ));
    for (k, [ok, fail, unknown]) in &by_kind {
        s.push_str(&format!(
            "chaos:   {k:<20} ok {ok:>7}  fail {fail:>6}  unknown {unknown:>5}\n"
        ));
    }
    let mut faults: BTreeMap<String, u64> = BTreeMap::new();
    for e in events {
        *faults
            .entry(format!("{:?}/{}", e.kind, e.variant).to_lowercase())
            .or_default() += 1;
    }
    s.push_str(&format!(
        "chaos: {} faults: {}\n",
        events.len(),
        faults
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    // Failover: from a fault on the leader to the next acknowledged write invoked after it.
    let mut ok_writes: Vec<(u64, u64)> = h
        .ops
        .iter()
        .filter(|o| matches!(o.kind, OpKind::Write { .. }) && o.outcome == Outcome::Ok)
        .map(|o| (o.invoke_ns, o.complete_ns))
        .collect();
    ok_writes.sort_unstable();
    let mut failovers: Vec<f64> = events
        .iter()
        .filter(|e| e.hit_leader && e.kind != FaultKind::Membership)
        .filter_map(|e| {
            let k = ok_writes.partition_point(|w| w.0 < e.start_ns);
            ok_writes[k..]
                .iter()
                .map(|w| w.1)
                .min()
                .map(|c| (c - e.start_ns) as f64 / 1e9)
        })
        .collect();
    failovers.sort_by(f64::total_cmp);
    if let (Some(first), Some(last)) = (failovers.first(), failovers.last()) {
        s.push_str(&format!(
            "chaos: failover (fault on the leader -> next acknowledged write): {} faults, min {first:.1} s, median {:.1} s, max {last:.1} s\n",
            failovers.len(),
            failovers[failovers.len() / 2]
        ));
    }
    let mut gap = 0u64;
    let mut prev = 0u64;
    let mut completes: Vec<u64> = ok_writes.iter().map(|w| w.1).collect();
    completes.sort_unstable();
    for c in completes {
        gap = gap.max(c.saturating_sub(prev));
        prev = c;
    }
    s.push_str(&format!(
        "chaos: longest time without an acknowledged write: {:.1} s; convergence after healing: {converge_s:.1} s\n",
        gap as f64 / 1e9
    ));
    if !skipped.is_empty() {
        s.push_str(&format!(
            "chaos: faults drawn but not injected (a minority was already impaired): {}\n",
            skipped
                .iter()
                .map(|(k, v)| format!("{k:?} {v}").to_lowercase())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    s
}

/// `PASS name: summary` or `FAIL name: summary`.
pub fn verdict(r: &Report) -> String {
    format!(
        "{} {}: {}",
        if r.ok { "PASS" } else { "FAIL" },
        r.name,
        r.summary
    )
}

/// Prints one line per report (and the details of failures); whether all passed.
pub fn print_reports(reports: &[Report]) -> bool {
    let mut ok = true;
    for r in reports {
        println!("{}", verdict(r));
        if !r.ok {
            ok = false;
            for line in r.detail.lines().take(60) {
                println!("    {line}");
            }
        }
    }
    ok
}
