//! "provider-generations": a provider's generation never goes backwards in real time.
//!
//! A resource provider's generation is bumped by every change to its inventory or
//! allocations and never decreases. In a linearizable store, a read that starts after another
//! read finished observes a state at least as new, whichever client and node served them. So
//! for two successful reads of one provider with `r1.complete_ns < r2.invoke_ns`, we must
//! have `gen(r2) >= gen(r1)`; and the final state of every node (read after everything) must
//! be at least every generation read during the run. A violation proves a stale read (e.g. a
//! follower or a deposed leader serving a read without a read barrier) or a rollback.
//!
//! The check is `O(n log n)` per provider: reads sorted by invoke are swept against reads
//! sorted by completion, keeping the maximum generation among the reads completed before the
//! current invoke. Comparing with that maximum is exactly the pairwise condition.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::{count, describe_op, Report, Violations};
use crate::history::{History, Op, OpKind, Outcome};

const NAME: &str = "provider-generations";

/// Checks that provider generations read never decrease in real time, and that final
/// provider generations are at least every generation read.
pub fn provider_generations(h: &History) -> Report {
    let mut reads: BTreeMap<Uuid, Vec<(u64, &Op)>> = BTreeMap::new();
    for op in &h.ops {
        if let (
            OpKind::ReadProvider {
                provider,
                generation: Some(g),
                ..
            },
            Outcome::Ok,
        ) = (&op.kind, &op.outcome)
        {
            reads.entry(*provider).or_default().push((*g, op));
        }
    }

    let mut v = Violations::default();
    let mut total = 0usize;
    let mut max_read: BTreeMap<Uuid, (u64, &Op)> = BTreeMap::new();
    for (provider, rs) in &reads {
        total += rs.len();
        let mut by_invoke = rs.clone();
        by_invoke.sort_by_key(|(_, op)| (op.invoke_ns, op.id));
        let mut by_complete = rs.clone();
        by_complete.sort_by_key(|(_, op)| (op.complete_ns, op.id));

        // The newest generation among the reads completed before the current invoke.
        let mut newest: Option<(u64, &Op)> = None;
        let mut done = by_complete.iter().peekable();
        for &(g2, r2) in &by_invoke {
            while let Some(&(g1, r1)) = done.next_if(|(_, r1)| r1.complete_ns < r2.invoke_ns) {
                if newest.is_none_or(|(g, _)| g1 > g) {
                    newest = Some((g1, r1));
                }
            }
            if let Some((g1, r1)) = newest {
                if g2 < g1 {
                    v.push(|| {
                        format!(
                            "provider {provider}: generation went back from {g1} to {g2}:\n  \
                             {}\n  then {}",
                            describe_op(r1),
                            describe_op(r2)
                        )
                    });
                }
            }
        }
        if let Some(&(g, op)) = rs
            .iter()
            .max_by_key(|(g, op)| (*g, std::cmp::Reverse(op.id)))
        {
            max_read.insert(*provider, (g, op));
        }
    }

    for f in &h.finals {
        for (provider, pf) in &f.providers {
            if let Some(&(g, op)) = max_read.get(provider) {
                if pf.generation < g {
                    v.push(|| {
                        format!(
                            "provider {provider}: final generation {} on node {} is older than \
                             generation {g} read by {}",
                            pf.generation,
                            f.node,
                            describe_op(op)
                        )
                    });
                }
            }
        }
    }

    let summary = format!(
        "{} generation reads of {} providers, {} final nodes: {} went backwards",
        count(total),
        count(reads.len()),
        h.finals.len(),
        count(v.total())
    );
    Report::new(NAME, v.is_empty(), summary, v.into_detail())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testkit::*;

    fn history() -> Builder {
        let p = uid(100);
        let mut b = Builder::new();
        b.read_provider(1, (0, 10), p, 3, None)
            // Concurrent with the first: may see an older generation.
            .read_provider(2, (5, 12), p, 2, None)
            .read_provider(3, (11, 20), p, 3, Some(&[("VCPU", 1)]))
            .read_provider(1, (21, 25), p, 5, None)
            .read_provider(2, (22, 30), uid(101), 1, None);
        b.finals(&[1, 2], &[]);
        for f in &mut b.h.finals {
            f.providers.insert(p, provider_final(5, &[]));
            f.providers.insert(uid(101), provider_final(1, &[]));
        }
        b
    }

    #[test]
    fn passes_monotonic_generations() {
        let r = provider_generations(&history().build());
        assert!(r.ok, "{r:?}");
        assert_eq!(
            r.summary,
            "5 generation reads of 2 providers, 2 final nodes: 0 went backwards"
        );
    }

    #[test]
    fn fails_a_generation_going_backwards() {
        let mut b = history();
        // Invoked after the read of generation 5 completed (at 25 ms), sees 4.
        b.read_provider(3, (26, 27), uid(100), 4, None);
        let r = provider_generations(&b.build());
        assert!(!r.ok);
        assert!(r.detail.contains("went back from 5 to 4"), "{}", r.detail);
    }

    #[test]
    fn fails_a_final_generation_older_than_a_read() {
        let mut b = history();
        if let Some(pf) = b.h.finals[1].providers.get_mut(&uid(100)) {
            pf.generation = 4;
        }
        let r = provider_generations(&b.build());
        assert!(!r.ok);
        assert!(
            r.detail.contains("final generation 4 on node 2"),
            "{}",
            r.detail
        );
    }
}
