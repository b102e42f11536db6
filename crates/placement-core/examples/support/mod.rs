//! The benchmark deployment in memory, shared by the candidates examples (included with
//! `mod support;` here and `#[path]` from placement-api's `candidates_http` example).
//!
//! N compute nodes with `../shared/bench/seed.py`'s inventories, traits and aggregates,
//! 1,000 consumers, one nested tree (a DISK_GB root + two NUMA children with VCPU and
//! MEMORY_MB) per [`NESTED_EVERY`] compute nodes and [`SHARING_PROVIDERS`] sharing DISK_GB
//! providers in the shared aggregate: the shape `scripts/bench-candidates` seeds.

use std::collections::{BTreeMap, BTreeSet};

use placement_core::{Record, State};
use placement_types::{Allocation, Consumer, Inventory, ResourceProvider, Timestamp, Uuid};

/// Nested trees (compute node + 2 NUMA children) per this many flat compute nodes.
const NESTED_EVERY: usize = 100;
/// Sharing DISK_GB providers, all in the shared aggregate.
const SHARING_PROVIDERS: usize = 10;

fn inv(total: i64, ratio: f64) -> Inventory {
    Inventory {
        allocation_ratio: ratio,
        max_unit: total,
        ..Inventory::with_total(total)
    }
}

fn provider(uuid: Uuid, parent: Option<Uuid>, root: Uuid, i: usize) -> ResourceProvider {
    ResourceProvider {
        uuid,
        name: format!("rp-{uuid}"),
        generation: 1,
        parent,
        root,
        created_at: Timestamp(0),
        updated_at: Timestamp(0),
        inventories: BTreeMap::new(),
        traits: BTreeSet::new(),
        aggregates: BTreeSet::from([Uuid::from_u128(1_000_000 + (i % 10) as u128)]),
    }
}

/// The deployment with `n` compute nodes.
pub fn build(n: usize) -> State {
    let mut s = State::new();
    let agg_all = Uuid::from_u128(2_000_000);
    let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut ids = Vec::new();
    for i in 0..n {
        let u = Uuid::from_u128(((next() as u128) << 64) | i as u128);
        let mut p = provider(u, None, u, i);
        p.inventories.insert("VCPU".into(), inv(64, 16.0));
        p.inventories.insert("MEMORY_MB".into(), inv(262_144, 1.0));
        p.inventories.insert("DISK_GB".into(), inv(2000, 1.0));
        p.traits.insert("HW_CPU_X86_SSE42".into());
        if i % 2 == 0 {
            p.traits.insert("HW_CPU_X86_AVX2".into());
        }
        if i % 4 == 0 {
            p.traits.insert("STORAGE_DISK_SSD".into());
        }
        if i % 5 == 0 {
            p.aggregates.insert(agg_all);
        }
        s.insert_record(Record::Provider(p));
        ids.push(u);
        if i % NESTED_EVERY == 0 {
            let root = Uuid::from_u128(((next() as u128) << 64) | (n + i) as u128);
            let mut r = provider(root, None, root, i);
            r.inventories.insert("DISK_GB".into(), inv(2000, 1.0));
            s.insert_record(Record::Provider(r));
            for k in 0..2 {
                let c = Uuid::from_u128(((next() as u128) << 64) | (2 * n + 2 * i + k) as u128);
                let mut numa = provider(c, Some(root), root, i);
                numa.inventories.insert("VCPU".into(), inv(32, 16.0));
                numa.inventories
                    .insert("MEMORY_MB".into(), inv(131_072, 1.0));
                numa.traits.insert("HW_NUMA_ROOT".into());
                s.insert_record(Record::Provider(numa));
            }
        }
    }
    for k in 0..SHARING_PROVIDERS {
        let u = Uuid::from_u128(((next() as u128) << 64) | (5 * n + k) as u128);
        let mut p = provider(u, None, u, k);
        p.aggregates = BTreeSet::from([agg_all]);
        p.inventories.insert("DISK_GB".into(), inv(100_000, 1.0));
        p.traits.insert("MISC_SHARES_VIA_AGGREGATE".into());
        s.insert_record(Record::Provider(p));
    }
    for c in 0..n.min(1000) {
        let rp = ids[(next() as usize) % ids.len()];
        s.insert_record(Record::Consumer(Consumer {
            uuid: Uuid::from_u128(3_000_000 + c as u128),
            project_id: "p".into(),
            user_id: "u".into(),
            generation: 1,
            consumer_type: None,
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
            allocations: ["VCPU", "MEMORY_MB", "DISK_GB"]
                .iter()
                .zip([1, 512, 1])
                .map(|(rc, used)| Allocation {
                    provider: rp,
                    resource_class: rc.to_string(),
                    used,
                })
                .collect(),
        }));
    }
    s
}
