//! The cluster under test: real `placementd` processes, each (as root) in its own network
//! namespace on a bridge, so that the nemesis can cut real links between them.
//!
//! Layout with root ([`NetMode::Netns`]): a bridge `pc<tag>b` in the root namespace with
//! `10.213.<k>.254/24`, and node slot `i` in namespace `pdc<tag>-<i>` with `10.213.<k>.<i>`
//! on a veth enslaved to the bridge. Every node listens on its own address, API on 8778 and
//! peer on 8779, so its certificate names one stable address. The driver's clients run in the
//! root namespace and reach every node over the bridge; partitions are blackhole routes inside
//! the nodes' namespaces (`ip -n pdc<tag>-<i> route add blackhole <peer>/32` drops what node
//! `i` sends to the peer), so they cut node-to-node traffic only, as in Jepsen.
//!
//! Without root ([`NetMode::Loopback`]): every node on `127.0.0.1` with its own ports; the
//! partition and disk faults are then unavailable and the driver says so.
//!
//! Data directories are, with the disk fault, a tmpfs of fixed size each, which the nemesis
//! fills up. Every node runs secured as in production: a CA made by the real `placementd
//! cert`, mutual TLS on the peer port, HTTPS on the API; admin commands go through the real
//! `placementd cluster` CLI with the operator certificate.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::process::{Child, Command};

/// Errors of the driver: messages for the operator.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// API and peer ports of a node in its own namespace.
const NETNS_API_PORT: u16 = 8778;
const NETNS_PEER_PORT: u16 = 8779;

/// How nodes are networked.
#[derive(Debug, Clone)]
pub enum NetMode {
    /// Each node in its own namespace on a bridge (needs root).
    Netns { tag: String, subnet: u8 },
    /// Every node on 127.0.0.1, ports from `base` (node slot i: base+10*i, +1).
    Loopback { base: u16 },
}

impl NetMode {
    fn bridge(tag: &str) -> String {
        format!("pc{tag}b")
    }
    fn ns(tag: &str, slot: usize) -> String {
        format!("pdc{tag}-{slot}")
    }
}

/// Runs a command to completion; a failure carries its stderr.
pub fn sh(program: &str, args: &[&str]) -> Result<String> {
    let out = std::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{program} {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether this process runs as root (network namespaces and tmpfs mounts need it).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// Whether this machine lets us create network namespaces (root is not always enough: a
/// container may lack CAP_SYS_ADMIN / CAP_NET_ADMIN). Tries one and removes it.
pub fn netns_works() -> Result<(), String> {
    if !is_root() {
        return Err("not root".into());
    }
    let name = format!("pdcprobe{}", std::process::id());
    sh("ip", &["netns", "add", &name]).map_err(|e| e.to_string())?;
    let _ = sh("ip", &["netns", "del", &name]);
    // A bridge and a veth pair too: a kernel or container may allow namespaces but not them.
    let (br, veth) = (
        format!("pcp{:x}b", std::process::id()),
        format!("pcp{:x}v", std::process::id()),
    );
    sh("ip", &["link", "add", &br, "type", "bridge"]).map_err(|e| e.to_string())?;
    let _ = sh("ip", &["link", "del", &br]);
    sh(
        "ip",
        &[
            "link",
            "add",
            &veth,
            "type",
            "veth",
            "peer",
            "name",
            &format!("{veth}p"),
        ],
    )
    .map_err(|e| e.to_string())?;
    let _ = sh("ip", &["link", "del", &veth]);
    Ok(())
}

/// Whether we may mount a tmpfs (the disk fault). Tries one in `dir` and unmounts it.
pub fn tmpfs_works(dir: &Path) -> Result<(), String> {
    if !is_root() {
        return Err("not root".into());
    }
    let probe = dir.join("tmpfs-probe");
    std::fs::create_dir_all(&probe).map_err(|e| e.to_string())?;
    let p = probe.display().to_string();
    sh("mount", &["-t", "tmpfs", "-o", "size=1m", "tmpfs", &p]).map_err(|e| e.to_string())?;
    let _ = sh("umount", &[&p]);
    let _ = std::fs::remove_dir(&probe);
    Ok(())
}

/// One node slot: a process, its addresses, its data.
pub struct NodeProc {
    /// The node id, also its slot number (address, namespace, ports): ids are never reused.
    pub id: u64,
    pub api: String,
    pub peer: String,
    pub ns: Option<String>,
    pub ip: String,
    pub dir: PathBuf,
    /// Arguments of every start (identity, cluster, TLS, extra).
    args: Vec<String>,
    child: Option<Child>,
    pub paused: bool,
    /// A member of the cluster (false once removed).
    pub member: bool,
}

impl NodeProc {
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("node.log")
    }
    pub fn url(&self) -> String {
        format!("https://{}", self.api)
    }
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }
    /// Whether the process runs (reaps it if it exited).
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(c) => match c.try_wait() {
                Ok(None) => true,
                Ok(Some(_)) | Err(_) => {
                    self.child = None;
                    self.paused = false;
                    false
                }
            },
            None => false,
        }
    }
}

/// The whole cluster: every node slot ever used (removed ones stay, `member == false`).
pub struct Cluster {
    pub bin: PathBuf,
    pub out: PathBuf,
    pub pki: PathBuf,
    pub net: NetMode,
    pub nodes: Vec<NodeProc>,
    /// Flags for every node (e.g. `--read-consistency stale` for a deliberately broken run).
    pub node_args: Vec<String>,
    /// tmpfs size per data dir (the disk fault), if any.
    pub tmpfs_mib: Option<u64>,
}

impl Cluster {
    /// Prepares the network, the PKI and `n` node slots, and starts them as one cluster.
    pub async fn start(
        bin: PathBuf,
        out: PathBuf,
        n: usize,
        net: NetMode,
        node_args: Vec<String>,
        tmpfs_mib: Option<u64>,
    ) -> Result<Cluster> {
        let pki = out.join("pki");
        std::fs::create_dir_all(&pki)?;
        let mut c = Cluster {
            bin,
            out,
            pki,
            net,
            nodes: Vec::new(),
            node_args,
            tmpfs_mib,
        };
        c.cert(&["ca"])?;
        c.cert(&["admin"])?;
        if let NetMode::Netns { tag, subnet } = &c.net {
            let br = NetMode::bridge(tag);
            sh("ip", &["link", "add", &br, "type", "bridge"])?;
            // Bridged frames must not pass the host's iptables FORWARD chain (Docker sets it
            // to DROP on many machines); this bridge only joins the test's namespaces.
            let _ = sh(
                "ip",
                &[
                    "link",
                    "set",
                    &br,
                    "type",
                    "bridge",
                    "nf_call_iptables",
                    "0",
                ],
            );
            sh(
                "ip",
                &[
                    "addr",
                    "add",
                    &format!("10.213.{subnet}.254/24"),
                    "dev",
                    &br,
                ],
            )?;
            sh("ip", &["link", "set", &br, "up"])?;
        }
        let mut initial = Vec::new();
        for slot in 1..=n {
            let node = c.new_slot(slot as u64)?;
            initial.push(format!("{}={}@{}", node.id, node.api, node.peer));
            c.nodes.push(node);
        }
        let initial = initial.join(",");
        for node in &mut c.nodes {
            node.args
                .extend(["--initial-cluster".to_string(), initial.clone()]);
        }
        for i in 0..c.nodes.len() {
            c.spawn(i)?;
        }
        Ok(c)
    }

    fn cert(&self, args: &[&str]) -> Result<()> {
        let dir = self.pki.display().to_string();
        let mut full = vec!["cert", "--dir", dir.as_str()];
        full.extend_from_slice(args);
        sh(&self.bin.display().to_string(), &full).map(drop)
    }

    /// A new node slot with id `id` (slot number = id: ids are never reused): its namespace,
    /// address, certificate and data dir. Not started.
    fn new_slot(&mut self, id: u64) -> Result<NodeProc> {
        let slot = usize::try_from(id)?;
        let (ns, ip, api, peer) = match &self.net {
            NetMode::Netns { tag, subnet } => {
                if slot > 250 {
                    return Err("more than 250 node slots".into());
                }
                let ns = NetMode::ns(tag, slot);
                let ip = format!("10.213.{subnet}.{slot}");
                let host_if = format!("pc{tag}v{slot}");
                sh("ip", &["netns", "add", &ns])?;
                sh(
                    "ip",
                    &[
                        "link", "add", &host_if, "type", "veth", "peer", "name", "eth0", "netns",
                        &ns,
                    ],
                )?;
                sh(
                    "ip",
                    &["link", "set", &host_if, "master", &NetMode::bridge(tag)],
                )?;
                sh("ip", &["link", "set", &host_if, "up"])?;
                sh("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
                sh(
                    "ip",
                    &["-n", &ns, "addr", "add", &format!("{ip}/24"), "dev", "eth0"],
                )?;
                sh("ip", &["-n", &ns, "link", "set", "eth0", "up"])?;
                (
                    Some(ns),
                    ip.clone(),
                    format!("{ip}:{NETNS_API_PORT}"),
                    format!("{ip}:{NETNS_PEER_PORT}"),
                )
            }
            NetMode::Loopback { base } => {
                let api_port = base + 10 * u16::try_from(slot)?;
                (
                    None,
                    "127.0.0.1".to_string(),
                    format!("127.0.0.1:{api_port}"),
                    format!("127.0.0.1:{}", api_port + 1),
                )
            }
        };
        let dir = self.out.join(format!("nodes/n{id}"));
        std::fs::create_dir_all(dir.join("data"))?;
        if let Some(mib) = self.tmpfs_mib {
            let data = dir.join("data").display().to_string();
            sh(
                "mount",
                &["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs", &data],
            )?;
        }
        let ids = id.to_string();
        self.cert(&["node", &ids, "--address", &api, "--address", &peer])?;
        let pem = |name: &str| self.pki.join(name).display().to_string();
        let mut args = vec![
            "--node-id".to_string(),
            ids.clone(),
            "--listen".into(),
            api.clone(),
            "--peer-listen".into(),
            peer.clone(),
            "--data-dir".into(),
            dir.join("data").display().to_string(),
            "--peer-cert".into(),
            pem(&format!("node{id}.pem")),
            "--peer-key".into(),
            pem(&format!("node{id}-key.pem")),
            "--peer-ca".into(),
            pem("ca.pem"),
            "--tls-cert".into(),
            pem(&format!("node{id}.pem")),
            "--tls-key".into(),
            pem(&format!("node{id}-key.pem")),
        ];
        args.extend(self.node_args.iter().cloned());
        Ok(NodeProc {
            id,
            api,
            peer,
            ns,
            ip,
            dir,
            args,
            child: None,
            paused: false,
            member: true,
        })
    }

    /// Starts node `i`'s process (on its existing data dir), stderr appended to its log.
    pub fn spawn(&mut self, i: usize) -> Result<()> {
        let node = &mut self.nodes[i];
        if node.is_running() {
            return Ok(());
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.log_path())?;
        let mut cmd = match &node.ns {
            // `ip netns exec` execs the command, so the child's pid is placementd's.
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns.as_str()]).arg(&self.bin);
                c
            }
            None => Command::new(&self.bin),
        };
        cmd.args(&node.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        node.child = Some(cmd.spawn()?);
        node.paused = false;
        Ok(())
    }

    /// SIGKILL (no shutdown hook runs); the data dir stays.
    pub async fn kill9(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        if let Some(mut c) = node.child.take() {
            let _ = c.start_kill();
            let _ = c.wait().await;
        }
        node.paused = false;
    }

    /// SIGSTOP / SIGCONT.
    pub fn signal(&mut self, i: usize, sig: &str) -> Result<()> {
        let node = &mut self.nodes[i];
        if let Some(pid) = node.pid() {
            sh("kill", &[&format!("-{sig}"), &pid.to_string()])?;
            node.paused = sig == "STOP";
        }
        Ok(())
    }

    /// Drops every packet node `from` sends to node `to` (a blackhole route in `from`'s
    /// namespace). Netns mode only.
    pub fn block(&self, from: usize, to: usize) -> Result<()> {
        let (Some(ns), ip) = (&self.nodes[from].ns, &self.nodes[to].ip) else {
            return Err("partitions need network namespaces (root)".into());
        };
        sh(
            "ip",
            &[
                "-n",
                ns,
                "route",
                "replace",
                "blackhole",
                &format!("{ip}/32"),
            ],
        )
        .map(drop)
    }

    /// Removes the route [`Cluster::block`] added.
    pub fn unblock(&self, from: usize, to: usize) -> Result<()> {
        let (Some(ns), ip) = (&self.nodes[from].ns, &self.nodes[to].ip) else {
            return Ok(());
        };
        sh(
            "ip",
            &["-n", ns, "route", "del", "blackhole", &format!("{ip}/32")],
        )
        .map(drop)
    }

    /// Removes every blackhole route of node `i`.
    pub fn unblock_all(&self, i: usize) -> Result<()> {
        let Some(ns) = &self.nodes[i].ns else {
            return Ok(());
        };
        let routes = sh("ip", &["-n", ns, "route", "show", "type", "blackhole"])?;
        for line in routes.lines() {
            if let Some(dst) = line.split_whitespace().nth(1) {
                let _ = sh("ip", &["-n", ns, "route", "del", "blackhole", dst]);
            }
        }
        Ok(())
    }

    /// Fills node `i`'s data dir (a tmpfs) to the last byte.
    pub fn fill_disk(&self, i: usize) -> Result<()> {
        let dir = self.nodes[i].data_dir();
        let avail = sh("df", &["--output=avail", "-B1", &dir.display().to_string()])?;
        let avail: u64 = avail
            .lines()
            .last()
            .and_then(|l| l.trim().parse().ok())
            .ok_or("df: no size")?;
        let filler = dir.join("chaos-filler").display().to_string();
        let _ = sh("fallocate", &["-l", &avail.to_string(), &filler]);
        // Whatever fallocate left (block rounding): small blocks until ENOSPC.
        let tail = dir.join("chaos-filler-tail").display().to_string();
        let _ = sh("dd", &["if=/dev/zero", &format!("of={tail}"), "bs=4k"]);
        Ok(())
    }

    /// Frees what [`Cluster::fill_disk`] took.
    pub fn free_disk(&self, i: usize) {
        let dir = self.nodes[i].data_dir();
        let _ = std::fs::remove_file(dir.join("chaos-filler"));
        let _ = std::fs::remove_file(dir.join("chaos-filler-tail"));
    }

    /// The admin CLI, to run without holding the cluster.
    pub fn cli(&self) -> AdminCli {
        AdminCli {
            bin: self.bin.clone(),
            pki: self.pki.clone(),
        }
    }

    /// Starts a fresh node (the next id) with `--initial-cluster-state existing`: it waits
    /// until a member adds it. Returns its index and the arguments of `placementd cluster
    /// add` for it (run them with [`AdminCli::run`] without holding the cluster).
    pub fn spawn_joining(&mut self) -> Result<(usize, Vec<String>)> {
        let id = self.nodes.iter().map(|n| n.id).max().unwrap_or(0) + 1;
        let mut node = self.new_slot(id)?;
        let me = format!("{}={}@{}", node.id, node.api, node.peer);
        node.args.extend([
            "--initial-cluster".to_string(),
            me,
            "--initial-cluster-state".into(),
            "existing".into(),
        ]);
        node.member = false;
        let add = vec![
            "add".to_string(),
            id.to_string(),
            node.api.clone(),
            node.peer.clone(),
        ];
        self.nodes.push(node);
        let i = self.nodes.len() - 1;
        self.spawn(i)?;
        Ok((i, add))
    }

    /// Indexes of the current members.
    pub fn members(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].member)
            .collect()
    }

    /// Stops everything and removes the namespaces, the bridge and the mounts.
    pub async fn teardown(&mut self) -> String {
        let mut report = String::new();
        for i in 0..self.nodes.len() {
            let _ = self.signal(i, "CONT");
            self.kill9(i).await;
            if self.tmpfs_mib.is_some() {
                let data = self.nodes[i].data_dir().display().to_string();
                if let Err(e) = sh("umount", &["-l", &data]) {
                    let _ = writeln!(report, "umount {data}: {e}");
                }
            }
            if let Some(ns) = &self.nodes[i].ns {
                if let Err(e) = sh("ip", &["netns", "del", ns]) {
                    let _ = writeln!(report, "ip netns del {ns}: {e}");
                }
            }
        }
        if let NetMode::Netns { tag, .. } = &self.net {
            let _ = sh("ip", &["link", "del", &NetMode::bridge(tag)]);
        }
        report
    }
}

/// Removes what an earlier run that died without cleaning up left behind: namespaces and
/// bridges named after a driver pid that no longer runs.
pub fn clean_stale() {
    let Ok(list) = sh("ip", &["netns", "list"]) else {
        return;
    };
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(rest) = name.strip_prefix("pdc") else {
            continue;
        };
        let Some((tag, _)) = rest.split_once('-') else {
            continue;
        };
        if stale(tag) {
            let _ = sh("ip", &["netns", "del", name]);
            let _ = sh("ip", &["link", "del", &NetMode::bridge(tag)]);
        }
    }
}

/// Whether the driver that owns `tag` (its pid in hex) is gone.
fn stale(tag: &str) -> bool {
    u32::from_str_radix(tag, 16).is_ok_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
}

/// The real `placementd cluster` CLI with the operator certificate.
#[derive(Clone)]
pub struct AdminCli {
    bin: PathBuf,
    pki: PathBuf,
}

impl AdminCli {
    /// `placementd cluster --peer <peer> <args>`; its JSON output (or its text as a string).
    pub async fn run(&self, peer: &str, args: &[&str], timeout: Duration) -> Result<Value> {
        let pem = |name: &str| self.pki.join(name).display().to_string();
        let mut cmd = Command::new(&self.bin);
        cmd.arg("cluster")
            .args(["--peer", peer])
            .args(["--cert", &pem("admin.pem")])
            .args(["--key", &pem("admin-key.pem")])
            .args(["--ca", &pem("ca.pem")])
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let out = tokio::time::timeout(timeout, cmd.output())
            .await
            .map_err(|_| format!("placementd cluster {} timed out", args.join(" ")))??;
        if !out.status.success() {
            return Err(format!(
                "placementd cluster {} (via {peer}) failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )
            .into());
        }
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(serde_json::from_str(&text).unwrap_or(Value::String(text.trim().to_string())))
    }
}
