//! What a node's in-memory [`State`] costs at cloud scale: the time to rebuild it from its
//! records with a [`Rebuild`] (a restart, or a snapshot install), the memory it then holds,
//! and the cost of one allocation write.
//!
//!     cargo run --release -p placement-core --example state_scale -- [N] [CONSUMERS] [WRITES]
//!
//! The deployment is the candidates benchmark's (`support`): N compute nodes (default
//! 100,000) plus nested trees and sharing providers, and CONSUMERS consumers (default
//! 1,000,000), each with one allocation of three classes on one compute node. Records are
//! inserted in the order storage loads them (providers, then consumers, each by uuid).
//!
//! Memory is the growth of the resident set (`/proc/self/statm`): what the node really
//! pays, allocator overhead and fragmentation included (the workspace forbids `unsafe`, so
//! no counting allocator). Run it with CONSUMERS=0 for the providers' share.
//!
//! The write is `PUT /allocations/{consumer}` for a new consumer (1 VCPU, 512 MEMORY_MB,
//! 1 DISK_GB on one provider): [`placement_core::apply`] and then [`State::commit`] of its
//! changes (the provider's generation bump and the consumer), timed apart, WRITES times
//! (default 100,000), each on a state that shares its maps with the previous version (as
//! the API's and the state machine's readers hold snapshots).

mod support;

use std::time::Instant;

use placement_core::{apply, Rebuild, Record, State};
use placement_types::{
    Command, ConsumerTypeWrite, ConsumerWrite, GenerationCheck, Request, Timestamp, Uuid,
};

/// Resident set size in bytes.
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn mb(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn key(r: &Record) -> (u8, Uuid) {
    match r {
        Record::Provider(p) => (3, p.uuid),
        Record::Consumer(c) => (4, c.uuid),
        Record::ResourceClass(_) | Record::Trait(_) => (0, Uuid::nil()),
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let consumers: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let writes: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);

    let rss0 = rss();
    let t = Instant::now();
    let mut records = support::records(n, consumers);
    records.sort_unstable_by_key(key);
    let split = records.partition_point(|r| matches!(r, Record::Provider(_)));
    let consumer_records = records.split_off(split);
    let provider_records = records;
    let generated = t.elapsed();
    let rss_records = rss();
    println!(
        "records: {} providers, {} consumers generated in {:.2?} ({:.0} MB resident)",
        provider_records.len(),
        consumer_records.len(),
        generated,
        mb(rss_records - rss0)
    );
    let (n_providers, n_consumers) = (provider_records.len(), consumer_records.len());

    // The records move into the state (their strings are not copied), so the resident set
    // after the last one is in, minus the one before any was generated, is the state's.
    let mut rebuild = Rebuild::new();
    let t = Instant::now();
    for r in provider_records {
        rebuild.insert(r);
    }
    let providers_took = t.elapsed();
    let t = Instant::now();
    for r in consumer_records {
        rebuild.insert(r);
    }
    let mut state = rebuild.finish();
    let consumers_took = t.elapsed();
    // The consumer records are gone now; what remains of the generated vectors is the
    // provider half's buffer (freed) and the moved contents.
    let rss_state = rss();
    println!(
        "rebuild: providers {:.2?} ({:.0} ns each), consumers {:.2?} ({:.0} ns each), \
         total {:.2?}",
        providers_took,
        providers_took.as_nanos() as f64 / n_providers as f64,
        consumers_took,
        consumers_took.as_nanos() as f64 / n_consumers.max(1) as f64,
        providers_took + consumers_took
    );
    let held = rss_state.saturating_sub(rss0);
    println!(
        "resident: state {:.0} MB; {:.0} bytes per provider (run with CONSUMERS=0), \
         or per consumer once the providers' share is taken off",
        mb(held),
        held as f64 / n_providers as f64
    );

    // The write path.
    let targets: Vec<Uuid> = state
        .providers()
        .filter(|p| p.inventories.len() == 3)
        .map(|p| p.uuid)
        .collect();
    let mut apply_ns = Vec::with_capacity(writes);
    let mut commit_ns = Vec::with_capacity(writes);
    let mut readers: Vec<State> = Vec::new();
    for w in 0..writes {
        let rp = targets[(w * 7919) % targets.len()];
        let request = Request {
            id: Uuid::from_u128(0xfeed_0000_0000 + w as u128),
            at: Timestamp(1),
            command: Command::WriteAllocations {
                consumers: vec![ConsumerWrite {
                    consumer: Uuid::from_u128((0xc0ffee_u128 << 64) | w as u128),
                    project_id: "p".into(),
                    user_id: "u".into(),
                    generation: GenerationCheck::Expect(None),
                    consumer_type: ConsumerTypeWrite::Keep,
                    allocations: support::allocations(rp),
                }],
            },
        };
        let t = Instant::now();
        let applied = apply(&state, &request);
        apply_ns.push(t.elapsed().as_nanos() as u64);
        assert!(applied.result.is_ok(), "{:?}", applied.result);
        // A reader holds the previous version (the backend's `State::clone` + commit).
        readers.push(state.clone());
        if readers.len() > 4 {
            readers.remove(0);
        }
        let t = Instant::now();
        state.commit(&applied.changes);
        commit_ns.push(t.elapsed().as_nanos() as u64);
    }
    drop(readers);
    for (name, v) in [("apply", &mut apply_ns), ("commit", &mut commit_ns)] {
        if v.is_empty() {
            continue;
        }
        v.sort_unstable();
        let mean = v.iter().sum::<u64>() as f64 / v.len() as f64;
        println!(
            "write {name}: p50 {} ns, p99 {} ns, mean {:.0} ns over {}",
            v[v.len() / 2],
            v[v.len() * 99 / 100],
            mean,
            v.len()
        );
    }
    println!(
        "after the writes: {} consumers, {} providers",
        state.consumer_count(),
        state.provider_count()
    );
}
