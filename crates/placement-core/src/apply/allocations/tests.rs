//! The allocation rules' property test. The rules themselves, one situation per case, are
//! the golden scripts `testscripts/allocations.txt`, `reshape.txt`, `generations.txt` and
//! `validate.txt`.

use std::collections::BTreeMap;

use placement_types::{
    Allocation, Command, ConsumerTypeWrite, ConsumerWrite, GenerationCheck, Inventory, Uuid,
};
use proptest::prelude::*;

use crate::fixture::World;

const CLASSES: [&str; 2] = ["VCPU", "DISK_GB"];

fn rp(n: u8) -> Uuid {
    World::uuid(&format!("rp{n}"))
}

fn cons(n: u8) -> Uuid {
    World::uuid(&format!("c{n}"))
}

/// One generated allocation line: (provider, class index, used).
type GenLine = (u8, usize, i64);

#[derive(Debug, Clone)]
enum Op {
    /// POST of several consumers: (consumer, lines).
    Write(Vec<(u8, Vec<GenLine>)>),
    Delete(u8),
}

fn op() -> impl Strategy<Value = Op> {
    let lines = prop::collection::vec((0u8..3, 0usize..2, 0i64..12), 0..4);
    let consumers = prop::collection::vec((0u8..5, lines), 1..3);
    prop_oneof![
        4 => consumers.prop_map(Op::Write),
        1 => (0u8..5).prop_map(Op::Delete),
    ]
}

fn to_command(op: &Op) -> Command {
    match op {
        Op::Delete(c) => Command::DeleteAllocations { consumer: cons(*c) },
        Op::Write(ws) => {
            let mut seen = std::collections::BTreeSet::new();
            let mut consumers = Vec::new();
            for (c, lines) in ws {
                if !seen.insert(*c) {
                    continue;
                }
                // As the API sends them: a class at most once per provider (the last wins).
                let lines: BTreeMap<(u8, &str), i64> = lines
                    .iter()
                    .filter(|(_, _, used)| *used > 0)
                    .map(|(p, k, used)| ((*p, CLASSES[*k]), *used))
                    .collect();
                consumers.push(ConsumerWrite {
                    consumer: cons(*c),
                    project_id: "p".into(),
                    user_id: "u".into(),
                    generation: GenerationCheck::Unchecked,
                    consumer_type: ConsumerTypeWrite::Keep,
                    allocations: lines
                        .into_iter()
                        .map(|((p, rc), used)| Allocation {
                            provider: rp(p),
                            resource_class: rc.into(),
                            used,
                        })
                        .collect(),
                });
            }
            Command::WriteAllocations { consumers }
        }
    }
}

proptest! {
    /// Whatever writes arrive, no provider is ever over capacity and the usage index is the
    /// sum of the consumers' allocations; a rejected write changes nothing.
    #[test]
    fn random_writes_never_over_allocate(
        totals in prop::collection::vec((1i64..20, 0i64..3, 1u8..4), 6),
        ops in prop::collection::vec(op(), 1..40),
    ) {
        let mut world = World::new();
        for p in 0..3u8 {
            world.must(Command::CreateProvider { uuid: rp(p), name: format!("rp{p}"), parent: None });
            let inventories = CLASSES.iter().enumerate().map(|(k, c)| {
                let (total, reserved, step) = totals[usize::from(p) * 2 + k];
                (c.to_string(), Inventory {
                    reserved: reserved.min(total - 1),
                    step_size: i64::from(step),
                    allocation_ratio: if k == 0 { 1.5 } else { 1.0 },
                    ..Inventory::with_total(total)
                })
            }).collect();
            world.must(Command::SetInventories { provider: rp(p), generation: 0, inventories });
        }
        for op in &ops {
            let before: Vec<_> = world.state.records().collect();
            if world.apply(to_command(op)).result.is_err() {
                prop_assert_eq!(world.state.records().collect::<Vec<_>>(), before);
            }
            let s = &world.state;
            let mut sums: BTreeMap<(Uuid, String), i64> = BTreeMap::new();
            for c in s.consumers() {
                prop_assert!(!c.allocations.is_empty());
                for a in &c.allocations {
                    *sums.entry((a.provider, a.resource_class.clone())).or_default() += a.used;
                }
            }
            for p in s.providers() {
                for (class, inv) in &p.inventories {
                    let used = s.usage(&p.uuid, class);
                    prop_assert!(used <= inv.capacity(), "{} {} {} > {}", p.name, class, used, inv.capacity());
                    prop_assert_eq!(used, sums.get(&(p.uuid, class.clone())).copied().unwrap_or(0));
                }
            }
        }
    }
}
