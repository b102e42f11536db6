//! Times the allocation-candidates search over an in-memory [`State`] shaped like the
//! benchmark deployment (`scripts/bench-candidates`): N compute nodes with the seed's
//! inventories, traits and aggregates, 1,000 consumers, some nested trees (compute node +
//! two NUMA children with VCPU/MEMORY_MB) and sharing DISK_GB providers in the shared
//! aggregate. Pure CPU, no HTTP; use it under `valgrind --tool=callgrind` to profile.
//!
//!     cargo run --release -p placement-core --example candidates_profile -- [N] [ITERS] [QUERY]
//!
//! QUERY: `simple`, `granular` or (default) both.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use placement_core::candidates::{search, CandidateRequest, GroupPolicy, RequestGroup};
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

fn build(n: usize) -> State {
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

fn group(suffix: &str, resources: &[(&str, i64)], required: &[&str]) -> RequestGroup {
    RequestGroup {
        suffix: suffix.into(),
        resources: resources.iter().map(|(r, n)| (r.to_string(), *n)).collect(),
        required_traits: required
            .iter()
            .map(|t| BTreeSet::from([t.to_string()]))
            .collect(),
        ..RequestGroup::default()
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let iters: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(50);
    let only = args.next();
    let t = Instant::now();
    let state = build(n);
    eprintln!(
        "built {} providers in {:?}",
        state.provider_count(),
        t.elapsed()
    );
    let simple = CandidateRequest {
        groups: vec![group(
            "",
            &[("VCPU", 1), ("MEMORY_MB", 512), ("DISK_GB", 1)],
            &[],
        )],
        limit: Some(50),
        nested_aware: true,
        ..CandidateRequest::default()
    };
    let granular = CandidateRequest {
        groups: vec![
            group(
                "1",
                &[("VCPU", 1), ("MEMORY_MB", 512)],
                &["HW_CPU_X86_AVX2"],
            ),
            group("2", &[("DISK_GB", 1)], &[]),
        ],
        group_policy: Some(GroupPolicy::None),
        limit: Some(50),
        nested_aware: true,
        ..CandidateRequest::default()
    };
    for (name, req) in [("simple", &simple), ("granular", &granular)] {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let mut times = Vec::with_capacity(iters);
        let mut found = 0;
        for _ in 0..iters {
            let t = Instant::now();
            let c = search(&state, req).expect("search");
            times.push(t.elapsed().as_secs_f64() * 1e3);
            found = c.allocation_requests.len();
        }
        times.sort_by(|a, b| a.total_cmp(b));
        println!(
            "{name}: {found} candidates; p50 {:.3} ms, p99 {:.3} ms, min {:.3} ms over {iters}",
            times[times.len() / 2],
            times[(times.len() * 99 / 100).min(times.len() - 1)],
            times[0]
        );
    }
}
