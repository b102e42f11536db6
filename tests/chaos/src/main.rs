//! `placementd-chaos`: starts a fresh cluster, runs the workload and the nemesis, heals, waits
//! for convergence, reads every node's final state and checks the history. One PASS/FAIL
//! line per checker; exit status 1 on any failure. `scripts/chaos` builds and runs it.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use placementd_chaos::check::{self, Report};
use placementd_chaos::cluster::{self, Cluster, NetMode};
use placementd_chaos::history::{History, NodeFinal, Op, OpKind, Outcome, ProviderFinal};
use placementd_chaos::nemesis::{self, Event, FaultKind, Nemesis, Timing};
use placementd_chaos::workload::{self, Shared};
use serde_json::json;
use tokio::sync::{watch, Mutex};
use uuid::Uuid;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// How long the cluster may take to converge after healing.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(180);
/// In the majority-lost phase, a write to a node without quorum must be answered (with an
/// error) within this time: it must fail, not hang.
const NO_QUORUM_ANSWER_WITHIN: Duration = Duration::from_secs(45);
/// ... and writes must succeed again within this time after healing.
const RECOVER_WITHIN: Duration = Duration::from_secs(60);

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

fn print_reports(reports: &[Report]) -> bool {
    let mut ok = true;
    for r in reports {
        println!(
            "{} {}: {}",
            if r.ok { "PASS" } else { "FAIL" },
            r.name,
            r.summary
        );
        if !r.ok {
            ok = false;
            for line in r.detail.lines().take(60) {
                println!("    {line}");
            }
        }
    }
    ok
}

async fn run(args: Args) -> Result<bool> {
    if let Some(path) = &args.check_only {
        let h: History = serde_json::from_slice(&std::fs::read(path)?)?;
        return Ok(print_reports(&check::run_all(
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
    for (kind, why) in [(FaultKind::Partition, &netns), (FaultKind::Disk, &tmpfs_ok)] {
        if let (true, Err(e)) = (kinds.contains(&kind), why) {
            eprintln!(
                "chaos: SKIPPING the {} fault: it needs root with network namespaces and tmpfs \
                 mounts ({e}); this run is NOT a full chaos run",
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
        extra_reports.push(majority_lost(&cluster, &shared, &nemesis).await);
    }
    shared.stop.store(true, Ordering::Relaxed);
    for c in clients {
        let _ = c.await;
    }
    nemesis.heal_all().await;

    // Convergence: every member ready and every digest equal.
    let converge_start = Instant::now();
    let converged = converge(&cluster).await;
    let converge_s = converge_start.elapsed().as_secs_f64();
    let finals = final_state(&cluster, &shared).await;

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

    let mut summary = summarize(&history, &events, converge_s);
    let skipped = nemesis
        .skipped
        .lock()
        .map(|s| s.clone())
        .unwrap_or_default();
    if !skipped.is_empty() {
        summary.push_str(&format!(
            "chaos: faults drawn but not injected (a minority was already impaired): {}\n",
            skipped
                .iter()
                .map(|(k, v)| format!("{k:?} {v}").to_lowercase())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
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
    let ok = print_reports(&reports);
    let mut text = summary;
    for r in &reports {
        text.push_str(&format!(
            "{} {}: {}\n{}",
            if r.ok { "PASS" } else { "FAIL" },
            r.name,
            r.summary,
            r.detail
        ));
    }
    std::fs::write(out.join("summary.txt"), text)?;
    println!(
        "chaos: {} (history, nemesis.jsonl, nodes/*/node.log and summary.txt in {})",
        if ok { "PASS" } else { "FAIL" },
        out.display()
    );
    Ok(ok)
}

/// Pauses a majority; a write to a node left must be answered with an error in bounded time;
/// after SIGCONT writes must succeed again. The probes are one-shot writes in the history.
async fn majority_lost(
    cluster: &Arc<Mutex<Cluster>>,
    shared: &Arc<Shared>,
    nemesis: &Nemesis,
) -> Report {
    let name = "majority-lost";
    let _ = wait_ready(cluster, shared, Duration::from_secs(60)).await;
    let leader = nemesis.leader().await;
    let (paused, left) = {
        let mut c = cluster.lock().await;
        let members = c.members();
        let majority = members.len() / 2 + 1;
        // The leader is always among the paused: the nodes left must notice it is gone.
        let mut order: Vec<usize> = members.clone();
        order.sort_by_key(|&i| (Some(i) != leader, c.nodes[i].id));
        let paused: Vec<usize> = order[..majority].to_vec();
        for &i in &paused {
            let _ = c.signal(i, "STOP");
        }
        let left: Vec<(u64, String)> = order[majority..]
            .iter()
            .map(|&i| (c.nodes[i].id, c.nodes[i].url()))
            .collect();
        (paused, left)
    };
    let mut problems = Vec::new();
    let mut answers = Vec::new();
    for (id, url) in &left {
        let t0 = Instant::now();
        let (outcome, _) = probe_write(
            shared,
            *id,
            url,
            NO_QUORUM_ANSWER_WITHIN + Duration::from_secs(30),
        )
        .await;
        let took = t0.elapsed();
        answers.push(format!(
            "node {id}: {outcome:?} after {:.1} s",
            took.as_secs_f64()
        ));
        match outcome {
            Outcome::Ok => {
                problems.push(format!("node {id} acknowledged a write without a quorum"))
            }
            Outcome::Unknown { why } if why == "timeout" => problems.push(format!(
                "node {id} did not answer a write within {} s",
                took.as_secs()
            )),
            _ if took > NO_QUORUM_ANSWER_WITHIN => problems.push(format!(
                "node {id} took {} s to refuse a write",
                took.as_secs()
            )),
            _ => {}
        }
    }
    {
        let mut c = cluster.lock().await;
        for &i in &paused {
            let _ = c.signal(i, "CONT");
        }
    }
    let healed = Instant::now();
    let mut recovered = None;
    while healed.elapsed() < RECOVER_WITHIN {
        let Some((id, url)) = left.first().cloned() else {
            break;
        };
        if let (Outcome::Ok, _) = probe_write(shared, id, &url, Duration::from_secs(10)).await {
            recovered = Some(healed.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    match recovered {
        Some(d) => answers.push(format!(
            "writes succeed again {:.1} s after SIGCONT",
            d.as_secs_f64()
        )),
        None => problems.push(format!(
            "no write succeeded within {} s of healing",
            RECOVER_WITHIN.as_secs()
        )),
    }
    Report {
        name,
        ok: problems.is_empty(),
        summary: format!(
            "{} of {} paused; {}",
            paused.len(),
            paused.len() + left.len(),
            answers.join("; ")
        ),
        detail: problems.join("\n"),
    }
}

/// One one-shot write (recorded in the history as client `u32::MAX`).
async fn probe_write(
    shared: &Shared,
    node: u64,
    url: &str,
    timeout: Duration,
) -> (Outcome, Duration) {
    let c = Uuid::new_v4();
    if let Ok(mut s) = shared.one_shot.lock() {
        s.insert(c);
    }
    let value = BTreeMap::from([(format!("{}/VCPU", shared.set_provider), 1)]);
    let body = json!({
        "allocations": {shared.set_provider.to_string(): {"resources": {"VCPU": 1}}},
        "consumer_generation": null,
        "project_id": shared.project,
        "user_id": shared.project,
        "consumer_type": "INSTANCE",
    });
    let t = shared.now();
    let t0 = Instant::now();
    let a = workload::call(
        &shared.http,
        timeout,
        reqwest::Method::PUT,
        format!("{url}/allocations/{c}"),
        Some(&body),
    )
    .await;
    let kind = OpKind::Write {
        writes: vec![placementd_chaos::history::KeyWrite {
            consumer: c,
            expected_generation: None,
            value,
        }],
    };
    shared.record(u32::MAX, node, t, kind, a.outcome.clone());
    (a.outcome, t0.elapsed())
}

async fn wait_ready(
    cluster: &Arc<Mutex<Cluster>>,
    shared: &Shared,
    timeout: Duration,
) -> std::result::Result<(), String> {
    let start = Instant::now();
    loop {
        let urls: Vec<(u64, String)> = {
            let c = cluster.lock().await;
            c.members()
                .into_iter()
                .map(|i| (c.nodes[i].id, c.nodes[i].url()))
                .collect()
        };
        let mut not_ready = Vec::new();
        for (id, url) in &urls {
            let r = shared
                .http
                .get(format!("{url}/readyz"))
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if !matches!(r, Ok(r) if r.status().is_success()) {
                not_ready.push(*id);
            }
        }
        if not_ready.is_empty() {
            return Ok(());
        }
        if start.elapsed() > timeout {
            return Err(format!(
                "members {not_ready:?} not ready after {} s",
                timeout.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Every member ready, every replacement finished, and `placementd cluster compare-digests`
/// equal.
async fn converge(cluster: &Arc<Mutex<Cluster>>) -> std::result::Result<(), String> {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < CONVERGE_TIMEOUT {
        let (cli, peer) = {
            let c = cluster.lock().await;
            let Some(&i) = c.members().first() else {
                return Err("no members".into());
            };
            (c.cli(), c.nodes[i].peer.clone())
        };
        match cli
            .run(&peer, &["compare-digests"], Duration::from_secs(30))
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Err(format!(
        "no convergence after {} s: {last}",
        CONVERGE_TIMEOUT.as_secs()
    ))
}

/// Reads every consumer and provider on every member, and its digest.
async fn final_state(cluster: &Arc<Mutex<Cluster>>, shared: &Arc<Shared>) -> Vec<NodeFinal> {
    let (members, cli): (Vec<(u64, String, String)>, _) = {
        let c = cluster.lock().await;
        (
            c.members()
                .into_iter()
                .map(|i| (c.nodes[i].id, c.nodes[i].url(), c.nodes[i].peer.clone()))
                .collect(),
            c.cli(),
        )
    };
    let mut consumers: Vec<Uuid> = shared.registers.clone();
    consumers.extend(
        shared
            .one_shot
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default(),
    );
    let consumers = Arc::new(consumers);
    let mut finals = Vec::new();
    for (id, url, peer) in members {
        let mut nf = NodeFinal {
            node: id,
            ..NodeFinal::default()
        };
        // Consumers, 8 at a time.
        let mut set = tokio::task::JoinSet::new();
        for part in 0..8 {
            let (shared, url, consumers) = (shared.clone(), url.clone(), consumers.clone());
            set.spawn(async move {
                let mut got = Vec::new();
                for c in consumers.iter().skip(part).step_by(8) {
                    for _attempt in 0..5 {
                        let a = workload::call(
                            &shared.http,
                            Duration::from_secs(10),
                            reqwest::Method::GET,
                            format!("{url}/allocations/{c}"),
                            None,
                        )
                        .await;
                        if matches!(a.outcome, Outcome::Ok) {
                            got.push((*c, workload::seen_of(&a.body)));
                            break;
                        }
                    }
                }
                got
            });
        }
        while let Some(r) = set.join_next().await {
            if let Ok(got) = r {
                nf.consumers.extend(got);
            }
        }
        for p in shared.capacity().keys() {
            let get = |path: String| {
                let http = shared.http.clone();
                async move {
                    workload::call(
                        &http,
                        Duration::from_secs(10),
                        reqwest::Method::GET,
                        path,
                        None,
                    )
                    .await
                }
            };
            let u = get(format!("{url}/resource_providers/{p}/usages")).await;
            let a = get(format!("{url}/resource_providers/{p}/allocations")).await;
            let mut pf = ProviderFinal {
                generation: u.body["resource_provider_generation"].as_u64().unwrap_or(0),
                ..ProviderFinal::default()
            };
            if let Some(m) = u.body["usages"].as_object() {
                pf.usages = m
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                    .collect();
            }
            if let Some(m) = a.body["allocations"].as_object() {
                for alloc in m.values() {
                    if let Some(res) = alloc["resources"].as_object() {
                        for (rc, n) in res {
                            *pf.allocated.entry(rc.clone()).or_insert(0) += n.as_u64().unwrap_or(0);
                        }
                    }
                }
            }
            nf.providers.insert(*p, pf);
        }
        nf.digest = cli
            .run(&peer, &["digest"], Duration::from_secs(30))
            .await
            .ok()
            .and_then(|v| v["sha256"].as_str().map(str::to_string));
        finals.push(nf);
    }
    finals
}

/// Counts and failover figures for the summary.
fn summarize(h: &History, events: &[Event], converge_s: f64) -> String {
    let mut s = String::new();
    let mut by_kind: BTreeMap<&str, [u64; 3]> = BTreeMap::new();
    for op in &h.ops {
        let k = match &op.kind {
            OpKind::Write { writes } if writes.len() > 1 => "post-allocations",
            OpKind::Write { .. } => "put-allocations",
            OpKind::Delete { .. } => "delete-allocations",
            OpKind::ReadConsumer { .. } => "get-allocations",
            OpKind::ReadProvider {
                usages: Some(_), ..
            } => "get-usages",
            OpKind::ReadProvider { .. } => "get-provider",
        };
        let slot = match op.outcome {
            Outcome::Ok => 0,
            Outcome::Fail { .. } => 1,
            Outcome::Unknown { .. } => 2,
        };
        by_kind.entry(k).or_default()[slot] += 1;
    }
    let total: u64 = by_kind.values().map(|v| v.iter().sum::<u64>()).sum();
    let span_s = h.ops.last().map_or(0.0, |o| o.complete_ns as f64 / 1e9);
    s.push_str(&format!(
        "chaos: {total} operations in {span_s:.0} s ({:.0}/s)\n",
        total as f64 / span_s.max(1.0)
    ));
    for (k, [ok, fail, unknown]) in &by_kind {
        s.push_str(&format!(
            "chaos:   {k:<20} ok {ok:>7}  fail {fail:>6}  unknown {unknown:>5}\n"
        ));
    }
    let mut faults: BTreeMap<String, u64> = BTreeMap::new();
    for e in events {
        *faults
            .entry(format!("{:?}/{}", e.kind, e.variant).to_lowercase())
            .or_default() += 1;
    }
    s.push_str(&format!(
        "chaos: {} faults: {}\n",
        events.len(),
        faults
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    // Failover: from a fault on the leader to the next acknowledged write invoked after it.
    let mut ok_writes: Vec<(u64, u64)> = h
        .ops
        .iter()
        .filter(|o| matches!(o.kind, OpKind::Write { .. }) && o.outcome == Outcome::Ok)
        .map(|o| (o.invoke_ns, o.complete_ns))
        .collect();
    ok_writes.sort_unstable();
    let mut failovers: Vec<f64> = events
        .iter()
        .filter(|e| e.hit_leader && e.kind != FaultKind::Membership)
        .filter_map(|e| {
            let k = ok_writes.partition_point(|w| w.0 < e.start_ns);
            ok_writes[k..]
                .iter()
                .map(|w| w.1)
                .min()
                .map(|c| (c - e.start_ns) as f64 / 1e9)
        })
        .collect();
    failovers.sort_by(f64::total_cmp);
    if let (Some(first), Some(last)) = (failovers.first(), failovers.last()) {
        s.push_str(&format!(
            "chaos: failover (fault on the leader -> next acknowledged write): {} faults, min {first:.1} s, median {:.1} s, max {last:.1} s\n",
            failovers.len(),
            failovers[failovers.len() / 2]
        ));
    }
    let mut gap = 0u64;
    let mut prev = 0u64;
    let mut completes: Vec<u64> = ok_writes.iter().map(|w| w.1).collect();
    completes.sort_unstable();
    for c in completes {
        gap = gap.max(c.saturating_sub(prev));
        prev = c;
    }
    s.push_str(&format!(
        "chaos: longest time without an acknowledged write: {:.1} s; convergence after healing: {converge_s:.1} s\n",
        gap as f64 / 1e9
    ));
    s
}
