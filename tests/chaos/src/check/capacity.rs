//! "capacity" and "usage-sum": the provider side of allocations stays consistent.
//!
//! **capacity** — Placement's core promise is that it never over-commits: a write that would
//! push a provider's usage of a class above its capacity is refused. Usage is a function of
//! the committed allocations, so *any* successful usage read (from any node, at any time, even
//! a stale one) and every final state must show `usage <= capacity` for each class that has a
//! capacity. A violation proves an over-commit was applied (e.g. two concurrent writes both
//! checked capacity against the same old state, or a replay applied a write twice).
//!
//! **usage-sum** — at the end, on each node, for each provider and class, three numbers must
//! agree: the provider's reported usages, the sum it reports over its own allocations, and the
//! sum over the final consumer reads of that node of `value["<provider>/<class>"]`. They are
//! three views of one state (usages may be kept as a separate counter), so a mismatch proves
//! that a derived index drifted from the allocations it summarises (e.g. a partial apply, or a
//! usage counter updated by a write that was then not applied). A class missing from a map
//! counts as 0.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::{count, ms, Report, Violations};
use crate::history::{History, OpKind, Outcome};

/// Checks that no successful provider-usages read and no final provider state shows a usage
/// above the provider's capacity for a class with a capacity entry.
pub fn capacity(h: &History) -> Report {
    const NAME: &str = "capacity";
    let mut v = Violations::default();
    let mut reads = 0usize;
    for op in &h.ops {
        let (
            OpKind::ReadProvider {
                provider,
                usages: Some(usages),
                ..
            },
            Outcome::Ok,
        ) = (&op.kind, &op.outcome)
        else {
            continue;
        };
        reads += 1;
        let Some(caps) = h.capacity.get(provider) else {
            continue;
        };
        for (class, &cap) in caps {
            let used = usages.get(class).copied().unwrap_or(0);
            if used > cap {
                v.push(|| {
                    format!(
                        "read #{} (client {}, node {}, at {}..{} ms): provider {provider} {class} \
                         usage {used} > capacity {cap}",
                        op.id,
                        op.client,
                        op.node,
                        ms(op.invoke_ns),
                        ms(op.complete_ns)
                    )
                });
            }
        }
    }
    let mut finals = 0usize;
    for f in &h.finals {
        for (provider, pf) in &f.providers {
            finals += 1;
            let Some(caps) = h.capacity.get(provider) else {
                continue;
            };
            for (class, &cap) in caps {
                let used = pf.usages.get(class).copied().unwrap_or(0);
                if used > cap {
                    v.push(|| {
                        format!(
                            "final state of node {}: provider {provider} {class} usage {used} > \
                             capacity {cap}",
                            f.node
                        )
                    });
                }
            }
        }
    }
    let summary = format!(
        "{} usage reads and {} final provider states: {} over capacity",
        count(reads),
        count(finals),
        count(v.total())
    );
    Report::new(NAME, v.is_empty(), summary, v.into_detail())
}

/// Checks, per final node and provider, that usages == allocated == the sum of the node's
/// final consumer allocations against that provider, for every class any of them (or the
/// capacity) mentions. Fails when there are no final states.
pub fn usage_sum(h: &History) -> Report {
    const NAME: &str = "usage-sum";
    if h.finals.is_empty() {
        return Report::new(
            NAME,
            false,
            "no final node state: nothing to check".to_string(),
            "History::finals is empty: the final reads did not happen".to_string(),
        );
    }
    let mut v = Violations::default();
    let mut checked = 0usize;
    for f in &h.finals {
        // Sum of the node's consumer allocations, per provider and class.
        let mut sums: BTreeMap<Uuid, BTreeMap<&str, u128>> = BTreeMap::new();
        for (consumer, seen) in &f.consumers {
            for (key, &amount) in &seen.value {
                let parsed = key
                    .split_once('/')
                    .and_then(|(p, class)| Uuid::parse_str(p).ok().map(|p| (p, class)));
                match parsed {
                    Some((p, class)) => {
                        let sum = sums.entry(p).or_default().entry(class).or_default();
                        *sum = sum.saturating_add(u128::from(amount));
                    }
                    None => v.push(|| {
                        format!(
                            "node {}: consumer {consumer} has an allocation key {key:?} that is \
                             not \"<provider uuid>/<class>\"",
                            f.node
                        )
                    }),
                }
            }
        }
        let providers: BTreeSet<Uuid> = h
            .capacity
            .keys()
            .chain(f.providers.keys())
            .chain(sums.keys())
            .copied()
            .collect();
        let empty_sums = BTreeMap::new();
        let empty_caps = BTreeMap::new();
        for p in &providers {
            let Some(pf) = f.providers.get(p) else {
                v.push(|| {
                    format!(
                        "node {}: provider {p} (with capacity or allocations) is missing from \
                         the final state",
                        f.node
                    )
                });
                continue;
            };
            checked += 1;
            let sum = sums.get(p).unwrap_or(&empty_sums);
            let caps = h.capacity.get(p).unwrap_or(&empty_caps);
            let classes: BTreeSet<&str> = caps
                .keys()
                .chain(pf.usages.keys())
                .chain(pf.allocated.keys())
                .map(String::as_str)
                .chain(sum.keys().copied())
                .collect();
            for class in classes {
                let usage = u128::from(pf.usages.get(class).copied().unwrap_or(0));
                let allocated = u128::from(pf.allocated.get(class).copied().unwrap_or(0));
                let consumers = sum.get(class).copied().unwrap_or(0);
                if usage != allocated || usage != consumers {
                    v.push(|| {
                        format!(
                            "node {}: provider {p} {class}: usages {usage}, allocated \
                             {allocated}, sum of consumer allocations {consumers}",
                            f.node
                        )
                    });
                }
            }
        }
    }
    let summary = format!(
        "{} provider states on {} nodes: {} mismatches between usages, allocations and \
         consumers",
        count(checked),
        h.finals.len(),
        count(v.total())
    );
    Report::new(NAME, v.is_empty(), summary, v.into_detail())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testkit::*;
    use crate::history::{Seen, Value};

    fn capacities() -> BTreeMap<Uuid, BTreeMap<String, u64>> {
        let mut caps = BTreeMap::new();
        caps.insert(
            uid(100),
            [("VCPU".to_string(), 8), ("MEMORY_MB".to_string(), 1024)]
                .into_iter()
                .collect(),
        );
        caps
    }

    #[test]
    fn capacity_passes_reads_within_capacity() {
        let mut b = Builder::new();
        b.read_provider(1, (0, 1), uid(100), 3, Some(&[("VCPU", 8)]))
            .read_provider(2, (0, 2), uid(100), 3, None)
            // A class without capacity and a provider without capacity are not checked.
            .read_provider(2, (3, 4), uid(100), 4, Some(&[("DISK_GB", 5000)]))
            .read_provider(2, (3, 4), uid(101), 1, Some(&[("VCPU", 5000)]));
        b.h.capacity = capacities();
        b.finals(&[1], &[]);
        b.h.finals[0].providers.insert(
            uid(100),
            provider_final(4, &[("VCPU", 8), ("MEMORY_MB", 1024)]),
        );
        let r = capacity(&b.build());
        assert!(r.ok, "{r:?}");
    }

    #[test]
    fn capacity_fails_an_over_capacity_read_and_final() {
        let mut b = Builder::new();
        b.read_provider(1, (0, 1), uid(100), 3, Some(&[("VCPU", 8)]))
            .read_provider(2, (5, 7), uid(100), 5, Some(&[("VCPU", 9)]));
        b.h.capacity = capacities();
        b.finals(&[1], &[]);
        b.h.finals[0]
            .providers
            .insert(uid(100), provider_final(6, &[("MEMORY_MB", 2048)]));
        let r = capacity(&b.build());
        assert!(!r.ok);
        assert!(r.detail.contains("read #1 (client 2"), "{}", r.detail);
        assert!(
            r.detail.contains("VCPU usage 9 > capacity 8"),
            "{}",
            r.detail
        );
        assert!(
            r.detail.contains("MEMORY_MB usage 2048 > capacity 1024"),
            "{}",
            r.detail
        );
        assert!(r.summary.contains("2 over capacity"), "{}", r.summary);
    }

    fn sum_history(vcpu_usage: u64) -> History {
        let p = uid(100);
        let mut two: Value = val(p, "VCPU", 2);
        two.insert(format!("{p}/MEMORY_MB"), 256);
        let mut b = Builder::new();
        b.h.capacity = capacities();
        b.finals(
            &[1, 2],
            &[
                (uid(1), seen(1, &two)),
                (uid(2), seen(3, &val(p, "VCPU", 3))),
                (uid(3), seen(1, &val(uid(101), "VCPU", 1))),
                (uid(4), Seen::absent()),
            ],
        );
        for f in &mut b.h.finals {
            let mut pf = provider_final(7, &[("VCPU", 5), ("MEMORY_MB", 256)]);
            pf.usages.insert("VCPU".to_string(), vcpu_usage);
            f.providers.insert(p, pf);
            f.providers
                .insert(uid(101), provider_final(1, &[("VCPU", 1)]));
        }
        b.build()
    }

    #[test]
    fn usage_sum_passes_when_all_views_agree() {
        let r = usage_sum(&sum_history(5));
        assert!(r.ok, "{r:?}");
        assert!(
            r.summary.starts_with("4 provider states on 2 nodes"),
            "{}",
            r.summary
        );
    }

    #[test]
    fn usage_sum_fails_usages_that_are_not_the_sum_of_allocations() {
        let r = usage_sum(&sum_history(4));
        assert!(!r.ok);
        assert!(
            r.detail
                .contains("VCPU: usages 4, allocated 5, sum of consumer allocations 5"),
            "{}",
            r.detail
        );
        assert!(!usage_sum(&History::default()).ok);
    }

    #[test]
    fn usage_sum_fails_a_missing_provider() {
        let mut h = sum_history(5);
        h.finals[1].providers.remove(&uid(101));
        let r = usage_sum(&h);
        assert!(!r.ok);
        assert!(
            r.detail.contains("missing from the final state"),
            "{}",
            r.detail
        );
    }
}
