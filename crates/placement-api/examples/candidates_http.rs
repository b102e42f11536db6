//! Times `GET /allocation_candidates` through the whole HTTP layer, in process: the
//! benchmark deployment of `scripts/bench-candidates` built in memory (the same shape as
//! placement-core's `candidates_profile` example), served by [`placement_api::router`] over
//! a [`LocalBackend`] and driven with tower's `oneshot` on a single-threaded runtime. No
//! sockets, no Raft, no RocksDB: what it measures is the API layer (pipeline, query parsing
//! and validation, the search, rendering) and nothing else.
//!
//!     cargo run --release -p placement-api --example candidates_http -- [N] [ITERS] [QUERY]
//!
//! N compute nodes (default 10,000), ITERS requests per query (default 200), QUERY `simple`,
//! `granular` or (default) both; the queries and headers are those of the benchmark
//! (`lua/candidates.lua`, microversion 1.39). For each query it prints the CPU time per
//! request (this thread's, from `/proc/thread-self/schedstat`), wall-time percentiles, the
//! search alone (`candidates::search` on the same state) and the response size. Under
//! `valgrind --tool=callgrind`, the difference between two ITERS gives instructions per
//! request.

#[path = "../../placement-core/examples/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use placement_api::{router, ApiConfig, Backend, LocalBackend};
use tower::ServiceExt;

/// The benchmark's two queries (`scripts/bench-candidates`).
const QUERIES: [(&str, &str); 2] = [
    (
        "simple",
        "resources=VCPU:1,MEMORY_MB:512,DISK_GB:1&limit=50",
    ),
    (
        "granular",
        "resources1=VCPU:1,MEMORY_MB:512&required1=HW_CPU_X86_AVX2&resources2=DISK_GB:1\
         &group_policy=none&limit=50",
    ),
];

/// Nanoseconds this thread has run on a CPU (0 where `/proc` does not say).
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn percentile(sorted: &[f64], p: usize) -> f64 {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let iters: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(200)
        .max(1);
    let only = args.next();
    let t = Instant::now();
    let backend = Arc::new(LocalBackend::from_state(support::build(n)));
    eprintln!(
        "built {} providers in {:?}",
        backend.state().provider_count(),
        t.elapsed()
    );
    let app = router(backend.clone(), ApiConfig::default());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    for (name, query) in QUERIES {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let uri = format!("/allocation_candidates?{query}");
        let mut times = Vec::with_capacity(iters);
        let mut size = 0;
        let cpu0 = thread_cpu_ns();
        for _ in 0..iters {
            let t = Instant::now();
            let req = Request::get(&uri)
                .header("x-auth-token", "admin")
                .header("openstack-api-version", "placement 1.39")
                .header("accept", "application/json")
                .body(Body::empty())?;
            let (status, body) = rt.block_on(async {
                let resp = app.clone().oneshot(req).await?;
                let status = resp.status();
                let body = resp.into_body().collect().await?.to_bytes();
                Ok::<_, Box<dyn std::error::Error>>((status, body))
            })?;
            times.push(t.elapsed().as_secs_f64() * 1e3);
            if status != StatusCode::OK {
                return Err(format!("{name}: {status}: {}", String::from_utf8_lossy(&body)).into());
            }
            size = body.len();
        }
        let cpu_ms = (thread_cpu_ns() - cpu0) as f64 / 1e6 / iters as f64;
        times.sort_by(|a, b| a.total_cmp(b));

        // The search alone, on the same request as the handler builds it.
        let req = search_request(name);
        let mut search_times = Vec::with_capacity(iters);
        for _ in 0..iters {
            let t = Instant::now();
            let found = placement_core::candidates::search(&backend.state(), &req);
            search_times.push(t.elapsed().as_secs_f64() * 1e3);
            drop(found);
        }
        search_times.sort_by(|a, b| a.total_cmp(b));
        println!(
            "{name}: HTTP {cpu_ms:.3} ms CPU/request, wall p50 {:.3} p99 {:.3} min {:.3} ms; \
             search alone p50 {:.3} ms; body {size} bytes; {iters} requests",
            percentile(&times, 50),
            percentile(&times, 99),
            times[0],
            percentile(&search_times, 50),
        );
    }
    Ok(())
}

/// The [`placement_core::candidates::CandidateRequest`] the handler makes of each query.
fn search_request(name: &str) -> placement_core::candidates::CandidateRequest {
    use placement_core::candidates::{CandidateRequest, GroupPolicy, RequestGroup};
    use std::collections::BTreeSet;
    let group = |suffix: &str, resources: &[(&str, i64)], required: &[&str]| RequestGroup {
        suffix: suffix.into(),
        resources: resources.iter().map(|(r, n)| (r.to_string(), *n)).collect(),
        required_traits: required
            .iter()
            .map(|t| BTreeSet::from([t.to_string()]))
            .collect(),
        ..RequestGroup::default()
    };
    let mut req = CandidateRequest {
        limit: Some(50),
        nested_aware: true,
        ..CandidateRequest::default()
    };
    if name == "simple" {
        req.groups = vec![group(
            "",
            &[("VCPU", 1), ("MEMORY_MB", 512), ("DISK_GB", 1)],
            &[],
        )];
    } else {
        req.groups = vec![
            group(
                "1",
                &[("VCPU", 1), ("MEMORY_MB", 512)],
                &["HW_CPU_X86_AVX2"],
            ),
            group("2", &[("DISK_GB", 1)], &[]),
        ];
        req.group_policy = Some(GroupPolicy::None);
    }
    req
}
