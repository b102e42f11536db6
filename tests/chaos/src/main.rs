//! `placementd-chaos`: starts a fresh cluster, runs the workload and the nemesis, heals, waits
//! for convergence, reads every node's final state and checks the history. One PASS/FAIL
//! line per checker; exit status 1 on any failure. `scripts/chaos` builds and runs it.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use placementd_chaos::check::{self, Report};
use placementd_chaos::cluster::{self, Cluster, NetMode};
use placementd_chaos::history::{History, Op};
use placementd_chaos::nemesis::{self, Event, FaultKind, Nemesis, Timing};
use placementd_chaos::workload::{self, Shared};
use placementd_chaos::{majority, report, settle};
use tokio::sync::{watch, Mutex};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[derive(Parser, Debug)]
#[command(about = "Chaos suite for placementd: random workload + nemesis + history checkers")]
struct Args {
    /// Cluster size.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Seconds of workload under faults (the majority-lost phase and the checks come after).
    #[arg(long, default_value_t = 120)]
    duration: u64,
    /// Concurrent clients (each one request at a time, over every node in turn).
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Seed of the workload's and the nemesis's choices (timing still varies run to run).
    #[arg(long)]
    seed: Option<u64>,
    /// Fault kinds, comma-separated: kill,pause,partition,membership,disk (`none` for none).
    #[arg(long, default_value = "kill,pause,partition,membership,disk")]
    faults: String,
    /// Where the history, nemesis log, node logs and summary go.
    #[arg(long)]
    out: Option<PathBuf>,
    /// The placementd binary.
    #[arg(long, env = "PLACEMENTD_BIN")]
    bin: PathBuf,
    /// An extra flag for every node (repeat), e.g. `--node-arg=--read-consistency=stale`.
    #[arg(long = "node-arg", allow_hyphen_values = true)]
    node_args: Vec<String>,
    /// Per-request timeout of the clients (seconds); a timeout is an unknown outcome.
    #[arg(long, default_value_t = 10)]
    op_timeout: u64,
    /// Milliseconds between fault starts, `MIN-MAX`.
    #[arg(long, default_value = "1000-5000")]
    interval_ms: String,
    /// Milliseconds a fault holds before healing, `MIN-MAX`.
    #[arg(long, default_value = "2000-10000")]
    hold_ms: String,
    /// Small providers (capacity is hit often with few).
    #[arg(long, default_value_t = 3)]
    providers: usize,
    /// Size of each node's data dir (a tmpfs) with the disk fault, MiB.
    #[arg(long, default_value_t = 768)]
    tmpfs_mib: u64,
    /// Skip the majority-lost phase.
    #[arg(long)]
    no_majority_phase: bool,
    /// Build a snapshot (and compact the log) after this many entries, so that restarts and
    /// joins go through snapshots during the run.
    #[arg(long, default_value_t = 5000)]
    snapshot_every: u64,
    /// Only run the checkers over a saved history.json.
    #[arg(long)]
    check_only: Option<PathBuf>,
}

fn range(s: &str) -> Result<(u64, u64)> {
    let (a, b) = s.split_once('-').ok_or("expected MIN-MAX")?;
    let (a, b) = (a.trim().parse()?, b.trim().parse()?);
    if a > b {
        return Err("MIN > MAX".into());
    }
    Ok((a, b))
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    match run(args).await {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("chaos: error: {e}");
            std::process::exit(2);
        }
    }
}

async fn run(args: Args) -> Result<bool> {
    if let Some(path) = &args.check_only {
        let h: History = serde_json::from_slice(&std::fs::read(path)?)?;
        return Ok(report::print_reports(&check::run_all(
            &h,
            &check::Options::default(),
        )));
    }
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs())
    });
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("chaos-out/{}-{seed}", std::process::id())));
    std::fs::create_dir_all(&out)?;
    let out = std::fs::canonicalize(&out)?;
    let mut kinds = Vec::new();
    for k in args
        .faults
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty() && *k != "none")
    {
        kinds.push(FaultKind::parse(k).ok_or(format!("unknown fault `{k}`"))?);
    }
    let netns = cluster::netns_works();
    let tmpfs_ok = cluster::tmpfs_works(&out);
    let needs = [
        (
            FaultKind::Partition,
            "network namespaces, a bridge and veth pairs",
            &netns,
        ),
        (FaultKind::Disk, "tmpfs mounts", &tmpfs_ok),
    ];
    for (kind, what, why) in needs {
        if let (true, Err(e)) = (kinds.contains(&kind), why) {
            eprintln!(
                "chaos: SKIPPING the {} fault: it needs root and {what} ({e}); this run is NOT \
                 a full chaos run",
                format!("{kind:?}").to_lowercase()
            );
            kinds.retain(|k| *k != kind);
        }
    }
    let net = if netns.is_ok() {
        cluster::clean_stale();
        let tag = format!("{:x}", std::process::id());
        let used = cluster::sh("ip", &["-4", "addr"]).unwrap_or_default();
        let subnet = (0..200u32)
            .map(|k| u8::try_from((std::process::id() + k) % 200 + 20).unwrap_or(20))
            .find(|s| !used.contains(&format!("10.213.{s}.")))
            .ok_or("no free 10.213.x.0/24 subnet")?;
        NetMode::Netns { tag, subnet }
    } else {
        let base = 20000 + u16::try_from(std::process::id() % 2000)? * 10;
        NetMode::Loopback { base }
    };
    let tmpfs = kinds.contains(&FaultKind::Disk).then_some(args.tmpfs_mib);
    let mut node_args = vec![
        "--snapshot-every".to_string(),
        args.snapshot_every.to_string(),
    ];
    node_args.extend(args.node_args.iter().cloned());
    println!(
        "chaos: {} nodes, {} clients, {} s, faults [{}], seed {seed}, out {}",
        args.nodes,
        args.clients,
        args.duration,
        kinds
            .iter()
            .map(|k| format!("{k:?}").to_lowercase())
            .collect::<Vec<_>>()
            .join(","),
        out.display()
    );
    let cluster = Cluster::start(
        args.bin.clone(),
        out.clone(),
        args.nodes,
        net,
        node_args,
        tmpfs,
    )
    .await;
    let cluster = match cluster {
        Ok(c) => c,
        Err(e) => return Err(format!("starting the cluster: {e}").into()),
    };
    let cluster = Arc::new(Mutex::new(cluster));
    let result = drive(&args, seed, &out, kinds, cluster.clone()).await;
    let leftovers = cluster.lock().await.teardown().await;
    if !leftovers.is_empty() {
        eprintln!("chaos: teardown: {leftovers}");
    }
    result
}

async fn drive(
    args: &Args,
    seed: u64,
    out: &std::path::Path,
    kinds: Vec<FaultKind>,
    cluster: Arc<Mutex<Cluster>>,
) -> Result<bool> {
    let ca = std::fs::read(cluster.lock().await.pki.join("ca.pem"))?;
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca)?)
        .connect_timeout(Duration::from_secs(2))
        .pool_idle_timeout(Duration::from_secs(5))
        .build()?;
    let shared = Arc::new(Shared::new(
        http,
        Duration::from_secs(args.op_timeout),
        args.providers,
        args.clients,
    ));
    nemesis::publish_members(&*cluster.lock().await, &shared);
    let first = cluster.lock().await.nodes[0].url();
    workload::setup(&shared, &first, Duration::from_secs(120))
        .await
        .map_err(|e| format!("setup: {e}"))?;
    println!("chaos: cluster up, providers created; workload and nemesis start");

    let clients: Vec<_> = (0..args.clients)
        .map(|i| {
            let s = shared.clone();
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            tokio::spawn(workload::client(s, i, seed.wrapping_add(u64::from(i) + 1)))
        })
        .collect();
    let nemesis = Nemesis::new(cluster.clone(), shared.clone());
    let (stop_tx, stop_rx) = watch::channel(false);
    let timing = Timing {
        interval_ms: range(&args.interval_ms)?,
        hold_ms: range(&args.hold_ms)?,
    };
    let nem_task = tokio::spawn(nemesis.clone().run(kinds.clone(), timing, seed, stop_rx));
    let started = Instant::now();
    let total = Duration::from_secs(args.duration);
    while started.elapsed() < total {
        tokio::time::sleep(Duration::from_secs(30).min(total - started.elapsed())).await;
        let ops = shared.ops.lock().map(|o| o.len()).unwrap_or(0);
        let faults = nemesis.events.lock().map(|e| e.len()).unwrap_or(0);
        println!(
            "chaos: {:>5} s: {ops} ops, {faults} faults healed",
            started.elapsed().as_secs()
        );
    }
    let _ = stop_tx.send(true);
    let _ = nem_task.await;
    nemesis.heal_all().await;
    println!("chaos: nemesis stopped, everything healed");

    let mut extra_reports = Vec::new();
    if !args.no_majority_phase && args.nodes >= 3 {
        extra_reports.push(majority::majority_lost(&cluster, &shared, &nemesis).await);
    }
    shared.stop.store(true, Ordering::Relaxed);
    for c in clients {
        let _ = c.await;
    }
    nemesis.heal_all().await;

    // Convergence: every member ready and every digest equal.
    let converge_start = Instant::now();
    let converged = settle::converge(&cluster).await;
    let converge_s = converge_start.elapsed().as_secs_f64();
    let finals = settle::final_state(&cluster, &shared).await;

    let mut ops: Vec<Op> = shared.ops.lock().map(|o| o.clone()).unwrap_or_default();
    ops.sort_by_key(|o| (o.invoke_ns, o.id));
    for (k, op) in ops.iter_mut().enumerate() {
        op.id = k as u64;
    }
    let history = History {
        capacity: shared.capacity(),
        one_shot: shared
            .one_shot
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default(),
        ops,
        finals,
    };
    std::fs::write(out.join("history.json"), serde_json::to_vec(&history)?)?;
    let events: Vec<Event> = nemesis.events.lock().map(|e| e.clone()).unwrap_or_default();
    let mut f = std::fs::File::create(out.join("nemesis.jsonl"))?;
    for e in &events {
        writeln!(f, "{}", serde_json::to_string(e)?)?;
    }

    let skipped = nemesis
        .skipped
        .lock()
        .map(|s| s.clone())
        .unwrap_or_default();
    let summary = report::summarize(&history, &events, &skipped, converge_s);
    print!("{summary}");
    let mut reports = vec![Report {
        name: "converged",
        ok: converged.is_ok(),
        summary: match &converged {
            Ok(()) => format!("every member ready with equal digests after {converge_s:.1} s"),
            Err(e) => e.clone(),
        },
        detail: String::new(),
    }];
    reports.extend(extra_reports);
    reports.extend(check::run_all(&history, &check::Options::default()));
    let ok = report::print_reports(&reports);
    let mut text = summary;
    for r in &reports {
        text.push_str(&format!("{}\n{}", report::verdict(r), r.detail));
    }
    std::fs::write(out.join("summary.txt"), text)?;
    println!(
        "chaos: {} (history, nemesis.jsonl, nodes/*/node.log and summary.txt in {})",
        if ok { "PASS" } else { "FAIL" },
        out.display()
    );
    Ok(ok)
}
