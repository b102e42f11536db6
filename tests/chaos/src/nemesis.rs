//! The nemesis: faults injected while the workload runs, each healed after a random hold.
//!
//! - `kill`: SIGKILL a node; restart it on the same data dir after the hold.
//! - `pause`: SIGSTOP, then SIGCONT.
//! - `partition`: blackhole routes between nodes' namespaces. Variants: one node isolated
//!   (sometimes the leader on purpose), a minority/majority split (5 nodes), and a one-way
//!   cut (the node's packets to the others dropped, or theirs to it).
//! - `membership`: hand leadership to another voter; or remove a follower (the real `cluster
//!   remove`), stop it, and add a fresh node with a new id (`cluster add`, which joins as a
//!   learner, catches up, by snapshot if the log was compacted, and becomes a voter).
//! - `disk`: fill a node's data dir (a tmpfs) to the last byte; free it after the hold. The
//!   node must refuse writes or exit, never acknowledge what it could not write; if it does
//!   not serve again after the space is back, it is restarted (as systemd would) and the
//!   event says so.
//!
//! Faults overlap, but the nodes they impair (killed, paused, cut off on the minority side,
//! out of disk, being replaced) never exceed `(voters - 1) / 2`: a majority always stays
//! up, except in the separate "majority lost" phase (see main.rs).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tokio::sync::{watch, Mutex};

use crate::cluster::{Cluster, NetMode};
use crate::workload::{self, Shared};

/// Which fault kinds run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    Kill,
    Pause,
    Partition,
    Membership,
    Disk,
}

impl FaultKind {
    pub fn parse(s: &str) -> Option<FaultKind> {
        Some(match s {
            "kill" => FaultKind::Kill,
            "pause" => FaultKind::Pause,
            "partition" => FaultKind::Partition,
            "membership" => FaultKind::Membership,
            "disk" => FaultKind::Disk,
            _ => return None,
        })
    }
}

/// One injected fault, for `nemesis.jsonl` and the summary.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub kind: FaultKind,
    /// e.g. `isolate-leader`, `one-way-out`, `replace`, `transfer-leader`.
    pub variant: String,
    /// Node ids affected.
    pub nodes: Vec<u64>,
    /// Whether a target was the leader when the fault began.
    pub hit_leader: bool,
    pub start_ns: u64,
    pub end_ns: u64,
    /// What happened (errors of the admin CLI, a node that had to be restarted, ...).
    pub note: String,
}

/// Timing of the nemesis.
#[derive(Debug, Clone)]
pub struct Timing {
    /// Pause between two fault starts, uniformly in this range (ms).
    pub interval_ms: (u64, u64),
    /// How long a fault holds before it heals (ms).
    pub hold_ms: (u64, u64),
}

/// State shared by the fault tasks.
pub struct Nemesis {
    pub cluster: Arc<Mutex<Cluster>>,
    pub shared: Arc<Shared>,
    /// Node indexes impaired by a running fault.
    impaired: std::sync::Mutex<BTreeSet<usize>>,
    /// Blackhole routes `(from, to)` with how many faults want them.
    routes: std::sync::Mutex<HashMap<(usize, usize), u32>>,
    pub events: std::sync::Mutex<Vec<Event>>,
    /// Faults drawn but not injected: the budget of impaired nodes was used up.
    pub skipped: std::sync::Mutex<std::collections::BTreeMap<FaultKind, u64>>,
}

impl Nemesis {
    pub fn new(cluster: Arc<Mutex<Cluster>>, shared: Arc<Shared>) -> Arc<Nemesis> {
        Arc::new(Nemesis {
            cluster,
            shared,
            impaired: std::sync::Mutex::new(BTreeSet::new()),
            routes: std::sync::Mutex::new(HashMap::new()),
            events: std::sync::Mutex::new(Vec::new()),
            skipped: std::sync::Mutex::new(std::collections::BTreeMap::new()),
        })
    }

    /// Runs faults until `stop` turns true, then waits for every fault to heal.
    pub async fn run(
        self: Arc<Self>,
        kinds: Vec<FaultKind>,
        timing: Timing,
        seed: u64,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut tasks = Vec::new();
        loop {
            let wait = rng.random_range(timing.interval_ms.0..=timing.interval_ms.1);
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
                _ = stop.changed() => break,
            }
            if *stop.borrow() {
                break;
            }
            let Some(&kind) = kinds.choose(&mut rng) else {
                break;
            };
            let hold = Duration::from_millis(rng.random_range(timing.hold_ms.0..=timing.hold_ms.1));
            let fault_seed = rng.random();
            let me = self.clone();
            let stop = stop.clone();
            tasks.push(tokio::spawn(async move {
                me.fault(kind, hold, fault_seed, stop).await;
            }));
            tasks.retain(|t| !t.is_finished());
        }
        for t in tasks {
            let _ = t.await;
        }
    }

    /// The current leader's index, if a member says it leads.
    pub async fn leader(&self) -> Option<usize> {
        let urls: Vec<(usize, String)> = {
            let c = self.cluster.lock().await;
            c.members()
                .into_iter()
                .map(|i| (i, c.nodes[i].url()))
                .collect()
        };
        for (i, url) in urls {
            if let Some((_, v)) = workload::readyz(&self.shared.http, &url).await {
                if v["is_leader"] == serde_json::Value::Bool(true) {
                    return Some(i);
                }
            }
        }
        None
    }

    /// Picks `count` member indexes to impair (preferring `prefer` first), within the budget.
    async fn claim(
        &self,
        rng: &mut StdRng,
        count: usize,
        prefer: Option<usize>,
        shrink: bool,
    ) -> Option<Vec<usize>> {
        let members = self.cluster.lock().await.members();
        let mut impaired = self.impaired.lock().ok()?;
        // A replacement (`shrink`) takes its target out of the voters: the others may then
        // lose at most (voters - 2) / 2, and the target itself no longer counts.
        let (budget, used) = if shrink {
            (members.len().saturating_sub(2) / 2, impaired.len())
        } else {
            (members.len().saturating_sub(1) / 2, impaired.len() + count)
        };
        if used > budget {
            return None;
        }
        let mut free: Vec<usize> = members
            .iter()
            .copied()
            .filter(|i| !impaired.contains(i))
            .collect();
        let mut chosen = Vec::new();
        if let Some(p) = prefer {
            if let Some(pos) = free.iter().position(|&i| i == p) {
                chosen.push(free.remove(pos));
            }
        }
        while chosen.len() < count {
            if free.is_empty() {
                return None;
            }
            let k = rng.random_range(0..free.len());
            chosen.push(free.remove(k));
        }
        impaired.extend(chosen.iter().copied());
        Some(chosen)
    }

    fn skip(&self, kind: FaultKind) {
        if let Ok(mut s) = self.skipped.lock() {
            *s.entry(kind).or_insert(0) += 1;
        }
    }

    fn release(&self, nodes: &[usize]) {
        if let Ok(mut imp) = self.impaired.lock() {
            for n in nodes {
                imp.remove(n);
            }
        }
    }

    async fn ids(&self, nodes: &[usize]) -> Vec<u64> {
        let c = self.cluster.lock().await;
        nodes.iter().map(|&i| c.nodes[i].id).collect()
    }

    /// Sleeps for `hold`, or less if the run is stopping.
    async fn hold(hold: Duration, stop: &mut watch::Receiver<bool>) {
        if *stop.borrow() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(hold) => {}
            _ = stop.changed() => {}
        }
    }

    async fn fault(
        &self,
        kind: FaultKind,
        hold: Duration,
        seed: u64,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut rng = StdRng::seed_from_u64(seed);
        let leader = self.leader().await;
        let start_ns = self.shared.now();
        let mut note = String::new();
        let (variant, nodes): (String, Vec<usize>) = match kind {
            FaultKind::Kill | FaultKind::Pause | FaultKind::Disk => {
                let prefer = leader.filter(|_| rng.random_bool(0.4));
                let Some(nodes) = self.claim(&mut rng, 1, prefer, false).await else {
                    return self.skip(kind);
                };
                let i = nodes[0];
                let variant = match kind {
                    FaultKind::Kill => {
                        self.cluster.lock().await.kill9(i).await;
                        Self::hold(hold, &mut stop).await;
                        if let Err(e) = self.cluster.lock().await.spawn(i) {
                            note = format!("restart failed: {e}");
                        }
                        "kill9"
                    }
                    FaultKind::Pause => {
                        let _ = self.cluster.lock().await.signal(i, "STOP");
                        Self::hold(hold, &mut stop).await;
                        let _ = self.cluster.lock().await.signal(i, "CONT");
                        "sigstop"
                    }
                    _ => {
                        if let Err(e) = self.cluster.lock().await.fill_disk(i) {
                            note = format!("fill failed: {e}");
                        }
                        Self::hold(hold, &mut stop).await;
                        self.cluster.lock().await.free_disk(i);
                        note.push_str(&self.recover_after_disk(i).await);
                        "full"
                    }
                };
                (variant.to_string(), nodes)
            }
            FaultKind::Partition => {
                let netns = matches!(self.cluster.lock().await.net, NetMode::Netns { .. });
                if !netns {
                    return;
                }
                let members = self.cluster.lock().await.members();
                let budget = members.len().saturating_sub(1) / 2;
                let roll = rng.random_range(0..4);
                let (variant, size, prefer) = match roll {
                    0 => ("isolate-leader", 1, leader),
                    1 if budget >= 2 => ("split-minority", budget, None),
                    2 => ("one-way", 1, leader.filter(|_| rng.random_bool(0.5))),
                    _ => ("isolate", 1, None),
                };
                let Some(side) = self.claim(&mut rng, size, prefer, false).await else {
                    return self.skip(kind);
                };
                let others: Vec<usize> = members
                    .iter()
                    .copied()
                    .filter(|i| !side.contains(i))
                    .collect();
                let mut cut = Vec::new();
                let outgoing = rng.random_bool(0.5);
                for &a in &side {
                    for &b in &others {
                        if variant != "one-way" || outgoing {
                            cut.push((a, b));
                        }
                        if variant != "one-way" || !outgoing {
                            cut.push((b, a));
                        }
                    }
                }
                self.add_routes(&cut).await;
                Self::hold(hold, &mut stop).await;
                self.remove_routes(&cut).await;
                let variant = match variant {
                    "one-way" if outgoing => "one-way-out",
                    "one-way" => "one-way-in",
                    // The leader was already impaired by another fault: a plain isolation.
                    "isolate-leader" if leader.is_none_or(|l| !side.contains(&l)) => "isolate",
                    v => v,
                };
                (variant.to_string(), side)
            }
            FaultKind::Membership => {
                if rng.random_bool(0.4) {
                    return self.transfer_leader(&mut rng, leader, start_ns).await;
                }
                // Replace a follower: the voters shrink by one while it happens.
                let Some(nodes) = self.claim_follower(&mut rng, leader).await else {
                    return self.skip(kind);
                };
                note = self.replace(nodes[0], leader).await;
                ("replace".to_string(), nodes)
            }
        };
        self.release(&nodes);
        let event = Event {
            kind,
            variant,
            nodes: self.ids(&nodes).await,
            hit_leader: leader.is_some_and(|l| nodes.contains(&l)),
            start_ns,
            end_ns: self.shared.now(),
            note,
        };
        if let Ok(mut ev) = self.events.lock() {
            ev.push(event);
        }
    }

    async fn claim_follower(&self, rng: &mut StdRng, leader: Option<usize>) -> Option<Vec<usize>> {
        for _ in 0..4 {
            let nodes = self.claim(rng, 1, None, true).await?;
            if Some(nodes[0]) != leader {
                return Some(nodes);
            }
            self.release(&nodes);
        }
        None
    }

    async fn add_routes(&self, cut: &[(usize, usize)]) {
        let c = self.cluster.lock().await;
        let Ok(mut routes) = self.routes.lock() else {
            return;
        };
        for &(a, b) in cut {
            let n = routes.entry((a, b)).or_insert(0);
            *n += 1;
            if *n == 1 {
                if let Err(e) = c.block(a, b) {
                    eprintln!("chaos: block {a}->{b}: {e}");
                }
            }
        }
    }

    async fn remove_routes(&self, cut: &[(usize, usize)]) {
        let c = self.cluster.lock().await;
        let Ok(mut routes) = self.routes.lock() else {
            return;
        };
        for &(a, b) in cut {
            if let Some(n) = routes.get_mut(&(a, b)) {
                *n -= 1;
                if *n == 0 {
                    routes.remove(&(a, b));
                    if let Err(e) = c.unblock(a, b) {
                        eprintln!("chaos: unblock {a}->{b}: {e}");
                    }
                }
            }
        }
    }

    /// After a disk fault: the node, if it still runs, must serve again within a while; if
    /// it exits meanwhile (placementd stops when Raft cannot write, after draining its
    /// requests) or does not serve in time, it is restarted on its data dir, as systemd would.
    async fn recover_after_disk(&self, i: usize) -> String {
        let mut exited = false;
        let url = self.cluster.lock().await.nodes[i].url();
        for _ in 0..30 {
            if !self.cluster.lock().await.nodes[i].is_running() {
                exited = true;
                break;
            }
            if self.ready(&url).await {
                return "served again without a restart".into();
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let mut c = self.cluster.lock().await;
        c.kill9(i).await;
        match c.spawn(i) {
            Ok(()) if exited => "exited (Raft could not write): restarted".into(),
            Ok(()) => {
                "still running but not ready 15 s after the space came back: restarted".into()
            }
            Err(e) => format!("restart failed: {e}"),
        }
    }

    async fn ready(&self, url: &str) -> bool {
        matches!(
            workload::readyz(&self.shared.http, url).await,
            Some((true, _))
        )
    }

    async fn transfer_leader(&self, rng: &mut StdRng, leader: Option<usize>, start_ns: u64) {
        let Some(l) = leader else { return };
        let (cli, peer, candidates) = {
            let c = self.cluster.lock().await;
            let Ok(imp) = self.impaired.lock() else {
                return;
            };
            let cands: Vec<(usize, u64)> = c
                .members()
                .into_iter()
                .filter(|i| *i != l && !imp.contains(i))
                .map(|i| (i, c.nodes[i].id))
                .collect();
            (c.cli(), c.nodes[l].peer.clone(), cands)
        };
        let Some(&(to, to_id)) = candidates.choose(rng) else {
            return;
        };
        let r = cli
            .run(
                &peer,
                &["transfer-leader", &to_id.to_string()],
                Duration::from_secs(30),
            )
            .await;
        let event = Event {
            kind: FaultKind::Membership,
            variant: "transfer-leader".into(),
            nodes: self.ids(&[l, to]).await,
            hit_leader: true,
            start_ns,
            end_ns: self.shared.now(),
            note: r.err().map(|e| e.to_string()).unwrap_or_default(),
        };
        if let Ok(mut ev) = self.events.lock() {
            ev.push(event);
        }
    }

    /// Removes member `i` and adds a fresh node in its place. Returns a note.
    async fn replace(&self, i: usize, leader: Option<usize>) -> String {
        let (cli, via, id) = {
            let c = self.cluster.lock().await;
            let via = leader
                .filter(|&l| l != i)
                .unwrap_or_else(|| c.members().into_iter().find(|&m| m != i).unwrap_or(i));
            (c.cli(), c.nodes[via].peer.clone(), c.nodes[i].id)
        };
        let timeout = Duration::from_secs(60);
        if let Err(e) = cli.run(&via, &["remove", &id.to_string()], timeout).await {
            return format!("remove {id} failed (still a member): {e}");
        }
        {
            let mut c = self.cluster.lock().await;
            c.nodes[i].member = false;
            publish_members(&c, &self.shared);
            c.kill9(i).await;
        }
        let (j, add) = match self.cluster.lock().await.spawn_joining() {
            Ok(x) => x,
            Err(e) => return format!("removed {id}; starting a new node failed: {e}"),
        };
        let add: Vec<&str> = add.iter().map(String::as_str).collect();
        match cli.run(&via, &add, Duration::from_secs(120)).await {
            Ok(_) => {
                let mut c = self.cluster.lock().await;
                c.nodes[j].member = true;
                publish_members(&c, &self.shared);
                format!("removed {id}, added {}", c.nodes[j].id)
            }
            Err(e) => format!("removed {id}; adding {} failed: {e}", add[1]),
        }
    }

    /// Heals whatever is left: routes, paused or stopped nodes. The fault tasks heal their
    /// own faults; this is the safety net before the final checks.
    pub async fn heal_all(&self) {
        let mut c = self.cluster.lock().await;
        if let Ok(mut routes) = self.routes.lock() {
            routes.clear();
        }
        for i in c.members() {
            let _ = c.unblock_all(i);
            c.free_disk(i);
            if c.nodes[i].paused {
                let _ = c.signal(i, "CONT");
            }
            if !c.nodes[i].is_running() {
                let _ = c.spawn(i);
            }
        }
    }
}

/// Tells the clients the current members.
pub fn publish_members(c: &Cluster, shared: &Shared) {
    let list: Vec<(u64, String)> = c
        .members()
        .into_iter()
        .map(|i| (c.nodes[i].id, c.nodes[i].url()))
        .collect();
    if let Ok(mut m) = shared.members.write() {
        *m = list;
    }
}
