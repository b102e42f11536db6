//! "convergence": after healing, every member holds the same state.
//!
//! The final states are read after the nemesis stopped and the cluster converged, with every
//! member up, so a replicated state machine must show identical state on every member: the
//! same `placementd cluster digest` (a hash over the whole store, which also covers what the
//! workload did not read) and the same consumer and provider reads. A difference proves a
//! divergent apply (non-deterministic state machine, a lost or duplicated log entry on one
//! member, a bad snapshot install). A member that did not answer the digest is a failure: its
//! state could not be established.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

use super::{short_seen, Report, Violations};
use crate::history::{History, NodeFinal};

const NAME: &str = "convergence";

/// How many differing keys are listed per pair of nodes and map.
const DIFFS_PER_MAP: usize = 5;

/// Checks that all final node states have a digest, and equal digests, consumers and
/// providers. Fails when there are none.
pub fn convergence(h: &History) -> Report {
    let Some(first) = h.finals.first() else {
        return Report::new(
            NAME,
            false,
            "no final node state: nothing to compare".to_string(),
            "History::finals is empty: the final reads did not happen".to_string(),
        );
    };
    let mut v = Violations::default();

    let digests: BTreeSet<Option<&str>> = h.finals.iter().map(|f| f.digest.as_deref()).collect();
    let digests_agree = digests.len() == 1 && !digests.contains(&None);
    if !digests_agree {
        let listing: Vec<String> = h
            .finals
            .iter()
            .map(|f| {
                format!(
                    "node {}: {}",
                    f.node,
                    f.digest.as_deref().unwrap_or("(none)")
                )
            })
            .collect();
        v.push(|| format!("digests differ or are missing: {}", listing.join(", ")));
    }

    let mut differing = BTreeSet::new();
    for other in &h.finals[1..] {
        let before = v.total();
        diff_map(
            first,
            other,
            "consumer",
            &first.consumers,
            &other.consumers,
            short_seen,
            &mut v,
        );
        diff_map(
            first,
            other,
            "provider",
            &first.providers,
            &other.providers,
            |p| format!("{p:?}"),
            &mut v,
        );
        if v.total() > before {
            differing.insert(other.node);
        }
    }

    let summary = if v.is_empty() {
        format!(
            "{} nodes agree: digest {}, {} consumers, {} providers",
            h.finals.len(),
            first.digest.as_deref().unwrap_or("(none)"),
            first.consumers.len(),
            first.providers.len()
        )
    } else {
        let nodes: Vec<String> = differing.iter().map(u64::to_string).collect();
        format!(
            "{} nodes diverge: {}; reads of node(s) [{}] differ from node {}",
            h.finals.len(),
            if digests_agree {
                "digests agree"
            } else {
                "digests differ or are missing"
            },
            nodes.join(", "),
            first.node
        )
    };
    Report::new(NAME, v.is_empty(), summary, v.into_detail())
}

/// Lists the first few keys on which two nodes' maps differ.
fn diff_map<K: Ord + Debug + std::fmt::Display, T: PartialEq>(
    a: &NodeFinal,
    b: &NodeFinal,
    what: &str,
    ma: &BTreeMap<K, T>,
    mb: &BTreeMap<K, T>,
    show: impl Fn(&T) -> String,
    v: &mut Violations,
) {
    let keys: BTreeSet<&K> = ma.keys().chain(mb.keys()).collect();
    let differing: Vec<&K> = keys
        .into_iter()
        .filter(|k| ma.get(k) != mb.get(k))
        .collect();
    let shown = |x: Option<&T>| x.map_or_else(|| "(not read)".to_string(), &show);
    for k in differing.iter().take(DIFFS_PER_MAP) {
        v.push(|| {
            format!(
                "{what} {k}: node {} has {}, node {} has {}",
                a.node,
                shown(ma.get(k)),
                b.node,
                shown(mb.get(k))
            )
        });
    }
    if differing.len() > DIFFS_PER_MAP {
        v.push(|| {
            format!(
                "... {} more {what}s differ between node {} and node {}",
                differing.len() - DIFFS_PER_MAP,
                a.node,
                b.node
            )
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testkit::*;
    use crate::history::Seen;

    fn converged() -> History {
        let p = uid(100);
        let mut b = Builder::new();
        b.finals(
            &[1, 2, 3],
            &[
                (uid(1), seen(2, &val(p, "VCPU", 1))),
                (uid(2), Seen::absent()),
            ],
        );
        for f in &mut b.h.finals {
            f.providers.insert(p, provider_final(4, &[("VCPU", 1)]));
        }
        b.build()
    }

    #[test]
    fn passes_identical_finals() {
        let r = convergence(&converged());
        assert!(r.ok, "{r:?}");
        assert_eq!(
            r.summary,
            "3 nodes agree: digest d1g35t, 2 consumers, 1 providers"
        );
    }

    #[test]
    fn fails_diverged_digests() {
        let mut h = converged();
        h.finals[2].digest = Some("0ther".to_string());
        let r = convergence(&h);
        assert!(!r.ok);
        assert!(r.detail.contains("node 3: 0ther"), "{}", r.detail);

        let mut h = converged();
        h.finals[1].digest = None;
        assert!(!convergence(&h).ok);
        assert!(!convergence(&History::default()).ok);
    }

    #[test]
    fn fails_diverged_reads_naming_nodes_and_keys() {
        let mut h = converged();
        h.finals[1]
            .consumers
            .insert(uid(2), seen(1, &val(uid(100), "VCPU", 1)));
        h.finals[2].providers.clear();
        let r = convergence(&h);
        assert!(!r.ok);
        assert!(r.summary.contains("[2, 3]"), "{}", r.summary);
        assert!(
            r.detail.contains("node 1 has absent, node 2 has g1"),
            "{}",
            r.detail
        );
        assert!(r.detail.contains("node 3 has (not read)"), "{}", r.detail);
    }
}
