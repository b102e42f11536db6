//! `difftest`: random operation sequences sent to the real OpenStack Placement and to
//! placementd side by side, every answer compared.
//!
//! ```text
//! difftest --reference http://127.0.0.1:19080 --candidate http://127.0.0.1:19081 \
//!          --seeds 1-200 --ops 300
//! ```
//!
//! Both servers must run with `auth_strategy = noauth2` and the legacy policy defaults
//! (`scripts/difftest` starts them so). For each seed the tester empties both servers,
//! generates the seed's sequence ([`gen`]) and sends each operation to both at once;
//! answers are compared ([`compare`]), placementd's also against its OpenAPI document
//! ([`schema_check`]). A difference that a rule in [`known`] explains is counted under its
//! name; any other stops the seed, is shrunk to the shortest sequence that still shows it
//! ([`shrink`]) and printed. The exit status is 1 when any seed diverged.

mod compare;
mod gen;
mod known;
mod names;
mod op;
mod run;
mod schema_check;
mod shrink;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;

use crate::compare::{clip, Answer};
use crate::run::{Divergence, Error, Pair, Server};

#[derive(Parser, Debug)]
#[command(
    name = "difftest",
    about = "Compare placementd with the real Placement"
)]
struct Args {
    /// The real Placement (noauth2).
    #[arg(long)]
    reference: String,
    /// placementd (noauth2; one node or a load balancer in front of a cluster).
    #[arg(long)]
    candidate: String,
    /// Seeds to run: `N` or `FIRST-LAST`.
    #[arg(long, default_value = "1-20")]
    seeds: String,
    /// Operations per seed.
    #[arg(long, default_value_t = 300)]
    ops: usize,
    /// The noauth2 token (admin).
    #[arg(long, default_value = "admin")]
    token: String,
    /// Seconds to spend shrinking each divergence (0: print it unshrunk).
    #[arg(long, default_value_t = 120)]
    shrink_seconds: u64,
    /// Do not check placementd's answers against its OpenAPI document.
    #[arg(long)]
    no_schema: bool,
    /// Print every operation of each seed's sequence (without running anything).
    #[arg(long)]
    print: bool,
}

fn seeds(spec: &str) -> Result<Vec<u64>, Error> {
    let (first, last) = match spec.split_once('-') {
        Some((a, b)) => (a.trim().parse::<u64>()?, b.trim().parse::<u64>()?),
        None => {
            let n = spec.trim().parse::<u64>()?;
            (n, n)
        }
    };
    if first > last {
        return Err(format!("--seeds {spec}: the first seed is after the last").into());
    }
    Ok((first..=last).collect())
}

/// A salt no earlier run of this process used.
fn salts() -> impl FnMut() -> String {
    let start = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut n = 0u64;
    move || {
        n += 1;
        format!("{start}-{n}")
    }
}

fn print_answer(who: &str, a: &Answer) {
    let headers: Vec<String> = ["openstack-api-version", "vary", "location", "allow"]
        .iter()
        .filter_map(|h| a.header(h).map(|v| format!("{h}: {v}")))
        .collect();
    println!(
        "    {who}: {} [{}] {}",
        a.status,
        headers.join("; "),
        clip(&a.text)
    );
}

fn print_divergence(seed: u64, ops: &[op::Op], d: &Divergence, tries: u32) {
    println!(
        "DIVERGENCE seed {seed}: shortest sequence found ({} operations, {tries} shrinking runs):",
        ops.len()
    );
    for (i, op) in ops.iter().enumerate() {
        println!("  {i:>3}. {op}");
    }
    println!("  last request as sent: {}", clip(&d.sent));
    print_answer("reference ", &d.reference);
    print_answer("placementd", &d.candidate);
    for line in &d.differences {
        println!("    - {line}");
    }
}

async fn main_async(args: Args) -> Result<bool, Error> {
    let seeds = seeds(&args.seeds)?;
    if args.print {
        for seed in seeds {
            for (i, op) in gen::sequence(seed, args.ops).iter().enumerate() {
                println!("{seed}.{i}: {op}");
            }
        }
        return Ok(true);
    }
    let schema = if args.no_schema {
        None
    } else {
        Some(schema_check::SchemaCheck::new(
            &placement_api::openapi::document(),
        )?)
    };
    let pair = Pair {
        reference: Server::new("reference", &args.reference, &args.token)?,
        candidate: Server::new("placementd", &args.candidate, &args.token)?,
        schema,
    };
    let mut salt = salts();
    let started = Instant::now();
    let mut known: BTreeMap<&'static str, u32> = BTreeMap::new();
    let mut kinds: BTreeMap<&'static str, u32> = BTreeMap::new();
    let mut successes: BTreeMap<&'static str, u32> = BTreeMap::new();
    let mut candidates_found = 0u32;
    let (mut diverged, mut ops_total, mut checked) = (Vec::new(), 0usize, 0u64);
    for &seed in &seeds {
        let ops = gen::sequence(seed, args.ops);
        let outcome = pair.run(&ops, salt()).await?;
        ops_total += outcome.ops_run;
        checked += outcome.schema_checked;
        for op in &ops[..outcome.ops_run] {
            *kinds.entry(op.kind).or_insert(0) += 1;
        }
        for (kind, n) in &outcome.successes {
            *successes.entry(kind).or_insert(0) += n;
        }
        candidates_found += outcome.candidates_found;
        for (name, n) in &outcome.known {
            *known.entry(name).or_insert(0) += n;
        }
        let known_here: Vec<String> = outcome
            .known
            .iter()
            .map(|(k, n)| format!("{k} x{n}"))
            .collect();
        match outcome.divergence {
            None => println!(
                "seed {seed}: {} operations, same answers{}",
                outcome.ops_run,
                if known_here.is_empty() {
                    String::new()
                } else {
                    format!(" (known: {})", known_here.join(", "))
                }
            ),
            Some(d) => {
                println!(
                    "seed {seed}: diverged at operation {} ({}); shrinking",
                    d.index, ops[d.index].kind
                );
                let failing = ops[..=d.index].to_vec();
                let budget = Duration::from_secs(args.shrink_seconds);
                let (short, outcome, tries) = if budget.is_zero() {
                    (
                        failing,
                        run::Outcome {
                            divergence: Some(d),
                            ..Default::default()
                        },
                        0,
                    )
                } else {
                    shrink::shrink(&pair, failing, &mut salt, budget).await?
                };
                if let Some(d) = &outcome.divergence {
                    print_divergence(seed, &short, d, tries);
                }
                diverged.push(seed);
            }
        }
    }
    println!();
    println!("known differences (see tests/difftest/src/known.rs, docs/compatibility.md):");
    for k in known::KNOWN {
        println!(
            "  {:<18} {:>5}  {}",
            k.name,
            known.get(k.name).copied().unwrap_or(0),
            k.reason
        );
    }
    println!(
        "operations by kind (run/succeeded): {}; candidate answers with candidates: {candidates_found}",
        kinds
            .iter()
            .map(|(k, n)| format!("{k}={n}/{}", successes.get(k).copied().unwrap_or(0)))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "difftest: {} seeds x {} operations: {} operations run in {:.0} s, {} answers checked against the OpenAPI document, {} diverged{}",
        seeds.len(),
        args.ops,
        ops_total,
        started.elapsed().as_secs_f64(),
        checked,
        diverged.len(),
        if diverged.is_empty() {
            String::new()
        } else {
            format!(" (seeds {diverged:?})")
        }
    );
    Ok(diverged.is_empty())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("difftest: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(main_async(args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("difftest: {e}");
            ExitCode::from(2)
        }
    }
}
