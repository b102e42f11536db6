//! Times the allocation-candidates search over an in-memory [`State`] shaped like the
//! benchmark deployment (`scripts/bench-candidates`): N compute nodes with the seed's
//! inventories, traits and aggregates, CONSUMERS consumers (default 1,000), some nested
//! trees (compute node + two NUMA children with VCPU/MEMORY_MB) and sharing DISK_GB
//! providers in the shared aggregate. Pure CPU, no HTTP; use it under `valgrind --tool=callgrind` to profile.
//!
//!     cargo run --release -p placement-core --example candidates_profile -- [N] [ITERS] [QUERY] [CONSUMERS]
//!
//! QUERY: `simple`, `granular`, `numa` or `all` (the default). `numa` is the granular query
//! with `required1=HW_NUMA_ROOT`, a trait only the NUMA children of the few nested trees
//! have: its first window of roots usually has no match (the windowed search's slow case).

mod support;

use std::collections::BTreeSet;
use std::time::Instant;

use placement_core::candidates::{search, CandidateRequest, GroupPolicy, RequestGroup};
use support::build_with;

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
    let only = args.next().filter(|q| q != "all");
    let consumers: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(n.min(1000));
    let t = Instant::now();
    let state = build_with(n, consumers);
    eprintln!(
        "built {} providers, {} consumers in {:?}",
        state.provider_count(),
        state.consumer_count(),
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
    let numa = CandidateRequest {
        groups: vec![
            group("1", &[("VCPU", 1), ("MEMORY_MB", 512)], &["HW_NUMA_ROOT"]),
            group("2", &[("DISK_GB", 1)], &[]),
        ],
        ..granular.clone()
    };
    for (name, req) in [
        ("simple", &simple),
        ("granular", &granular),
        ("numa", &numa),
    ] {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let mut times = Vec::with_capacity(iters);
        let mut found = 0;
        let mut digest = 0xcbf2_9ce4_8422_2325_u64;
        for i in 0..iters {
            let t = Instant::now();
            let c = search(&state, req).expect("search");
            times.push(t.elapsed().as_secs_f64() * 1e3);
            found = c.allocation_requests.len();
            if i == 0 {
                // FNV-1a of the whole answer, to compare builds: same digest, same answer.
                for b in format!("{c:?}").bytes() {
                    digest = (digest ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
                }
            }
        }
        times.sort_by(|a, b| a.total_cmp(b));
        println!(
            "{name}: {found} candidates (digest {digest:016x}); p50 {:.3} ms, p99 {:.3} ms, \
             min {:.3} ms over {iters}",
            times[times.len() / 2],
            times[(times.len() * 99 / 100).min(times.len() - 1)],
            times[0]
        );
    }
}
