//! The benchmark deployment in memory, shared by the candidates examples (included with
//! `mod support;` here and `#[path]` from placement-api's `candidates_http` example).
//!
//! N compute nodes with `../shared/bench/seed.py`'s inventories, traits and aggregates,
//! 1,000 consumers (or as many as asked for, each with one allocation of three classes on a
//! random compute node), one nested tree (a DISK_GB root + two NUMA children with VCPU and
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

/// The deployment with `n` compute nodes and 1,000 consumers (fewer when `n` is smaller).
#[allow(dead_code)]
pub fn build(n: usize) -> State {
    build_with(n, n.min(1000))
}

/// The deployment with `n` compute nodes and `consumers` consumers.
#[allow(dead_code)]
pub fn build_with(n: usize, consumers: usize) -> State {
    let mut s = State::new();
    for r in records(n, consumers) {
        s.insert_record(r);
    }
    s
}

/// A consumer holding 1 VCPU, 512 MEMORY_MB and 1 DISK_GB of one provider (one PUT
/// /allocations/{consumer} of the write benchmark).
pub fn consumer(uuid: Uuid, rp: Uuid) -> Consumer {
    Consumer {
        uuid,
        project_id: "p".into(),
        user_id: "u".into(),
        generation: 1,
        consumer_type: None,
        created_at: Timestamp(0),
        updated_at: Timestamp(0),
        allocations: allocations(rp),
    }
}

/// What one PUT /allocations/{consumer} of the write benchmark claims: 1 VCPU, 512 MEMORY_MB
/// and 1 DISK_GB of `rp`.
pub fn allocations(rp: Uuid) -> Vec<Allocation> {
    ["VCPU", "MEMORY_MB", "DISK_GB"]
        .iter()
        .zip([1, 512, 1])
        .map(|(rc, used)| Allocation {
            provider: rp,
            resource_class: rc.to_string(),
            used,
        })
        .collect()
}

/// The records of the deployment with `n` compute nodes and `consumers` consumers, each
/// with one allocation (three classes) on a random compute node: providers, then consumers.
/// The first 1,000 consumers are those `build` has always made; further ones have random
/// uuids (as Nova's instances do).
pub fn records(n: usize, consumers: usize) -> Vec<Record> {
    let mut out = Vec::with_capacity(n + n / NESTED_EVERY * 3 + SHARING_PROVIDERS + consumers);
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
        out.push(Record::Provider(p));
        ids.push(u);
        if i % NESTED_EVERY == 0 {
            let root = Uuid::from_u128(((next() as u128) << 64) | (n + i) as u128);
            let mut r = provider(root, None, root, i);
            r.inventories.insert("DISK_GB".into(), inv(2000, 1.0));
            out.push(Record::Provider(r));
            for k in 0..2 {
                let c = Uuid::from_u128(((next() as u128) << 64) | (2 * n + 2 * i + k) as u128);
                let mut numa = provider(c, Some(root), root, i);
                numa.inventories.insert("VCPU".into(), inv(32, 16.0));
                numa.inventories
                    .insert("MEMORY_MB".into(), inv(131_072, 1.0));
                numa.traits.insert("HW_NUMA_ROOT".into());
                out.push(Record::Provider(numa));
            }
        }
    }
    for k in 0..SHARING_PROVIDERS {
        let u = Uuid::from_u128(((next() as u128) << 64) | (5 * n + k) as u128);
        let mut p = provider(u, None, u, k);
        p.aggregates = BTreeSet::from([agg_all]);
        p.inventories.insert("DISK_GB".into(), inv(100_000, 1.0));
        p.traits.insert("MISC_SHARES_VIA_AGGREGATE".into());
        out.push(Record::Provider(p));
    }
    for c in 0..consumers {
        let rp = ids[(next() as usize) % ids.len()];
        let uuid = if c < 1000 {
            Uuid::from_u128(3_000_000 + c as u128)
        } else {
            Uuid::from_u128((u128::from(splitmix(c as u64)) << 64) | c as u128)
        };
        out.push(Record::Consumer(consumer(uuid, rp)));
    }
    out
}

fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
