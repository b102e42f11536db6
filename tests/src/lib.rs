//! Shared fixtures for the integration tests: real `placementd` processes on loopback ports.
//!
//! Every test binary in `tests/tests/` is one topic (`http_smoke`, `durability`, ...) and
//! starts its own nodes through [`Node`]: a real `placementd` process on a free
//! `127.0.0.1` port with its own temporary data directory, stderr captured to
//! `<tempdir>/node.log` (its tail is attached to every fixture error). Nothing is shared
//! between tests, so they run in parallel (nextest runs each test in its own process).
//!
//! Which binary: the integration crate is a separate package, so Cargo's
//! `CARGO_BIN_EXE_placementd` is not available here (it only exists for the binary's own
//! package), and building the binary from a test would mean a second RocksDB build. The
//! tests therefore run an already built release binary, found like `scripts/lib.sh` finds
//! it: `$PLACEMENTD_BIN` (set by `scripts/test` to the binary it just built), else
//! `$CARGO_TARGET_DIR/release/placementd`, else `~/.cache/placementd/target/release/placementd`,
//! else `<workspace>/target/release/placementd`. Missing binary = a clear error, never a skip.
//!
//! [`Node::kill9`] is a real SIGKILL (no shutdown hook runs), and [`Node::restart`] starts a
//! new process on the same data directory and port, which is what the durability tests need.
//!
//! [`Client`] speaks Placement's noauth2 with the admin token and a fixed microversion
//! header; [`Resp`] keeps status, headers-free JSON body and raw text for assertions.
//!
//! [`Cluster`] starts N such processes as one Raft cluster on loopback (`--initial-cluster`,
//! each with its own API and peer port) and finds the leader through `/readyz`. A cluster is
//! secured the way production runs it: a [`Pki`] made by the real `placementd cert` gives
//! every member a certificate; the peer port speaks only mutual TLS and the API HTTPS, and
//! the fixtures' clients and the admin CLI present and trust that CA
//! ([`Cluster::start_plain`] is the exception, for tests of the plaintext mode).
//!
//! Left out: the load balancer (HAProxy is exercised by `scripts/conformance-server`);
//! a child that outlives a SIGKILLed test runner (there is no portable parent-death hook
//! without `unsafe`, which the workspace forbids).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod keystone;
pub mod load;
pub mod metrics;

/// Errors of the fixtures; tests just propagate them with `?`.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
/// Result alias used by fixtures and tests.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Placement noauth2 token that maps to the admin role.
pub const ADMIN_TOKEN: &str = "admin";
/// Microversion sent by [`Client`] unless [`Client::with_microversion`] says otherwise.
/// 1.39 is the newest: dict allocation bodies with consumer generations and consumer types.
pub const DEFAULT_MICROVERSION: &str = "1.39";
/// How long a freshly started node may take until `GET /` answers 200. Generous because a
/// restart replays the Raft log and CI machines are slow and shared.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Interval between readiness probes.
const READY_POLL: Duration = Duration::from_millis(50);
/// Per-request timeout of [`Client`]; a hung server fails the test instead of stalling it.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// Attempts at starting a first node when the chosen port was taken in the meantime.
const START_ATTEMPTS: usize = 3;
/// Bytes of `node.log` attached to fixture errors.
const LOG_TAIL_BYTES: u64 = 4000;

/// `name` on the PATH; `None` (after saying so on stderr) when it is missing outside CI, an
/// error when it is missing and `CI` is set. `package` is the Debian package that has it
/// (`scripts/test`'s install step installs it).
pub fn tool_on_path(name: &str, package: &str) -> Result<Option<PathBuf>> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    match found {
        Some(p) => Ok(Some(p)),
        None if std::env::var_os("CI").is_some() => Err(format!(
            "{name} not found on PATH and CI is set: install Debian's `{package}` package \
             (scripts/test's install step does)"
        )
        .into()),
        None => {
            // Straight to the process's stderr: libtest captures `eprintln!` of a passing
            // test, and this must be seen.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "\n*** SKIPPED: {name} not found on PATH; install Debian's `{package}` \
                 package to run this test (under CI=true it fails instead) ***\n"
            );
            Ok(None)
        }
    }
}

/// The `placementd` binary the tests run (see the module doc for the lookup order).
pub fn placementd_bin() -> Result<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os("PLACEMENTD_BIN") {
        candidates.push(PathBuf::from(p));
    }
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        candidates.push(PathBuf::from(dir).join("release/placementd"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        candidates.push(PathBuf::from(home).join(".cache/placementd/target/release/placementd"));
    }
    // CARGO_MANIFEST_DIR is <workspace>/tests.
    candidates.push(placement_testkit::crate_dir!().join("../target/release/placementd"));
    for c in &candidates {
        if c.is_file() {
            return Ok(c.clone());
        }
    }
    Err(format!(
        "placementd binary not found (tried {candidates:?}); build it with \
         `CARGO_TARGET_DIR=$HOME/.cache/placementd/target cargo build --release -p placementd` \
         or set PLACEMENTD_BIN"
    )
    .into())
}

/// Why a started process never answered.
#[derive(Debug)]
pub enum NotAnswering {
    /// It exited (and `child` was cleared).
    Exited(std::process::ExitStatus),
    TimedOut,
}

/// Polls `GET url` until it answers 200, for at most `timeout`, giving up early when the
/// process in `child` exits. `Err` only for a failure to ask whether the child runs.
pub async fn wait_until_ok(
    http: &reqwest::Client,
    url: &str,
    child: &mut Option<Child>,
    timeout: Duration,
) -> Result<std::result::Result<(), NotAnswering>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(c) = child.as_mut() {
            if let Some(status) = c.try_wait()? {
                *child = None;
                return Ok(Err(NotAnswering::Exited(status)));
            }
        }
        if let Ok(r) = http.get(url).send().await {
            if r.status().as_u16() == 200 {
                return Ok(Ok(()));
            }
        }
        if Instant::now() > deadline {
            return Ok(Err(NotAnswering::TimedOut));
        }
        tokio::time::sleep(READY_POLL).await;
    }
}

/// Polls until `f` holds, up to `timeout`; whether it held at the last poll.
pub async fn eventually<F: FnMut() -> bool>(timeout: Duration, mut f: F) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f()
}

/// How long [`log_with`] waits for a line.
pub const LOG_WAIT: Duration = Duration::from_secs(10);

/// The text of the log file at `path` once it contains `text`, or as it is after [`LOG_WAIT`].
/// A node writes its log from a thread of its own, a moment after the event that logs: a
/// test that reads the file right after the event waits for the line here.
pub async fn log_with(path: &Path, text: &str) -> String {
    let mut log = String::new();
    eventually(LOG_WAIT, || {
        log = std::fs::read_to_string(path).unwrap_or_default();
        log.contains(text)
    })
    .await;
    log
}

/// A free loopback port: bind port 0, read the port, release it. Another process may grab
/// it before placementd binds; [`Node::start`] retries with a new port if that happens.
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// A cluster CA and the certificates it issued, made with the real `placementd cert` in a
/// temporary directory (removed when the last holder drops it).
pub struct Pki {
    bin: PathBuf,
    dir: tempfile::TempDir,
}

impl Pki {
    /// A new CA (`ca.pem`) and an operator certificate (`admin.pem`).
    pub fn new() -> Result<Arc<Pki>> {
        let pki = Pki {
            bin: placementd_bin()?,
            dir: tempfile::Builder::new()
                .prefix("placementd-pki-")
                .tempdir()?,
        };
        pki.run(&["ca"])?;
        pki.run(&["admin"])?;
        Ok(Arc::new(pki))
    }

    fn run(&self, args: &[&str]) -> Result<()> {
        let out = Command::new(&self.bin)
            .arg("cert")
            .arg("--dir")
            .arg(self.dir.path())
            .args(args)
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            return Err(format!(
                "placementd cert {} failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        Ok(())
    }

    /// The directory of every file.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The CA certificate.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// `(cert, key)` of `name` (`node<ID>`, `admin`, or another name issued with
    /// [`Pki::issue_node`]).
    pub fn files(&self, name: &str) -> (PathBuf, PathBuf) {
        (
            self.dir.path().join(format!("{name}.pem")),
            self.dir.path().join(format!("{name}-key.pem")),
        )
    }

    /// Issues node `id`'s certificate for these addresses (once; later calls reuse it).
    pub fn issue_node(&self, id: u64, addresses: &[String]) -> Result<(PathBuf, PathBuf)> {
        let files = self.files(&format!("node{id}"));
        if !files.0.exists() {
            let id = id.to_string();
            let mut args = vec!["node", id.as_str()];
            for a in addresses {
                args.push("--address");
                args.push(a);
            }
            self.run(&args)?;
        }
        Ok(files)
    }

    /// An HTTP client that trusts this CA and presents `name`'s certificate, if given.
    pub fn http(&self, name: Option<&str>, timeout: Duration) -> Result<reqwest::Client> {
        let ca = std::fs::read(self.ca())?;
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .add_root_certificate(reqwest::Certificate::from_pem(&ca)?);
        if let Some(name) = name {
            let (cert, key) = self.files(name);
            let mut pem = std::fs::read(cert)?;
            pem.extend(std::fs::read(key)?);
            builder = builder.identity(reqwest::Identity::from_pem(&pem)?);
        }
        Ok(builder.build()?)
    }
}

/// One real `placementd` process with its own data directory: a one-node cluster
/// ([`Node::start`]) or a member of a [`Cluster`].
pub struct Node {
    bin: PathBuf,
    port: u16,
    /// The Raft node id (`--node-id`).
    node_id: u64,
    /// Extra flags (`--peer-listen`, `--initial-cluster` for cluster members).
    extra_args: Vec<String>,
    /// The peer port of a cluster member (admin API, `placementd cluster --peer`).
    peer_port: Option<u16>,
    /// Flags a test adds for the next start ([`Node::set_more_args`]).
    more_args: Vec<String>,
    /// Owns the temp dir: data (`data/`) and the log; removed when the Node is dropped.
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// The cluster's CA: the node runs mutual TLS on its peer port and HTTPS on its API.
    pki: Option<Arc<Pki>>,
}

impl Node {
    /// A node that is not started yet: the binary [`placementd_bin`] finds, a fresh temp dir
    /// (named `prefix…`) for its data and log, API port `port`, and for a cluster member a
    /// peer port (passed as `--peer-listen`) before the other flags `args`.
    fn new(
        prefix: &str,
        node_id: u64,
        port: u16,
        peer_port: Option<u16>,
        args: Vec<String>,
        pki: Option<Arc<Pki>>,
    ) -> Result<Node> {
        let peer_listen = peer_port
            .into_iter()
            .flat_map(|p| ["--peer-listen".to_string(), format!("127.0.0.1:{p}")]);
        let mut tls_args = Vec::new();
        if let Some(pki) = &pki {
            let addresses: Vec<String> = [Some(port), peer_port]
                .into_iter()
                .flatten()
                .map(|p| format!("127.0.0.1:{p}"))
                .collect();
            let (cert, key) = pki.issue_node(node_id, &addresses)?;
            let (cert, key, ca) = (
                cert.display().to_string(),
                key.display().to_string(),
                pki.ca().display().to_string(),
            );
            tls_args = vec![
                "--peer-cert".into(),
                cert.clone(),
                "--peer-key".into(),
                key.clone(),
                "--peer-ca".into(),
                ca,
                "--tls-cert".into(),
                cert,
                "--tls-key".into(),
                key,
            ];
        }
        Ok(Node {
            bin: placementd_bin()?,
            port,
            node_id,
            extra_args: peer_listen.chain(tls_args).chain(args).collect(),
            peer_port,
            more_args: Vec::new(),
            dir: tempfile::Builder::new().prefix(prefix).tempdir()?,
            child: None,
            pki,
        })
    }

    /// Starts a fresh node on a free port with an empty data dir and waits until it is ready.
    pub async fn start() -> Result<Node> {
        let mut node = Node::new("placementd-test-", 1, 0, None, Vec::new(), None)?;
        let mut last_err: Option<Error> = None;
        for _ in 0..START_ATTEMPTS {
            node.port = free_port()?;
            match node.spawn_and_wait().await {
                Ok(()) => return Ok(node),
                // The process exited early: most likely the port was taken; try another one.
                Err(e) if node.child.is_none() => last_err = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| "placementd did not start".into()))
    }

    /// Restores `backup` with the real CLI (`placementd restore`) into a fresh data dir as
    /// node `node_id`, then starts that node alone (with a peer port, so members can be added)
    /// and waits until it is ready.
    pub async fn from_backup(backup: &Path, node_id: u64, pki: Option<Arc<Pki>>) -> Result<Node> {
        let (api, peer) = (free_port()?, free_port()?);
        let mut node = Node::new(
            "placementd-restored-",
            node_id,
            api,
            Some(peer),
            Vec::new(),
            pki,
        )?;
        let out = Command::new(&node.bin)
            .arg("restore")
            .arg("--backup")
            .arg(backup)
            .arg("--data-dir")
            .arg(node.data_dir())
            .arg("--node-id")
            .arg(node_id.to_string())
            .arg("--api-addr")
            .arg(format!("127.0.0.1:{api}"))
            .arg("--peer-addr")
            .arg(format!("127.0.0.1:{peer}"))
            .output()?;
        if !out.status.success() {
            return Err(format!(
                "placementd restore failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        node.spawn_and_wait().await?;
        Ok(node)
    }

    /// Base URL, e.g. `http://127.0.0.1:41234` (`https` with TLS).
    pub fn url(&self) -> String {
        let scheme = if self.pki.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The cluster's CA, if the node runs TLS.
    pub fn pki(&self) -> Option<&Arc<Pki>> {
        self.pki.as_ref()
    }

    /// A plain HTTP client for this node's API (trusting its CA when it runs TLS).
    pub fn http(&self, timeout: Duration) -> Result<reqwest::Client> {
        match &self.pki {
            Some(pki) => pki.http(None, timeout),
            None => Ok(reqwest::Client::builder().timeout(timeout).build()?),
        }
    }

    /// The client API port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The node's data directory (survives [`Node::kill9`] and [`Node::restart`]).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Where the node's stderr goes (appended across restarts).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("node.log")
    }

    /// The OS process id of the running node, if one runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// An admin client for this node at [`DEFAULT_MICROVERSION`].
    pub fn client(&self) -> Result<Client> {
        Client::with_http(&self.url(), self.http(REQUEST_TIMEOUT)?)
    }

    /// SIGKILL (no graceful shutdown, nothing flushed by the process) and reap the process.
    pub fn kill9(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            // std's Child::kill is SIGKILL on Unix.
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// SIGTERM (graceful shutdown) through the `kill` command; waits up to `timeout` for the
    /// process to exit and returns its exit status.
    pub fn terminate(&mut self, timeout: Duration) -> Result<std::process::ExitStatus> {
        let Some(mut child) = self.child.take() else {
            return Err("node is not running".into());
        };
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()?;
        if !status.success() {
            return Err(format!("kill -TERM {} failed", child.id()).into());
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                child.kill()?;
                child.wait()?;
                return Err(format!("node did not exit within {timeout:?} of SIGTERM").into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Flags added to the fixed ones from the next (re)start on, replacing earlier ones.
    pub fn set_more_args(&mut self, args: &[&str]) {
        self.more_args = args.iter().map(|a| a.to_string()).collect();
    }

    /// The peer address (`127.0.0.1:port`) of a cluster member.
    pub fn peer_addr(&self) -> Result<String> {
        self.peer_port
            .map(|p| format!("127.0.0.1:{p}"))
            .ok_or_else(|| "not a cluster member: no peer port".into())
    }

    /// `--peer <this node's peer address>` and, in a secured cluster, the operator's
    /// `--cert/--key/--ca`: how every admin-API command (`cluster`, `import`, `status`)
    /// names this node.
    pub fn admin_args(&self) -> Result<Vec<String>> {
        let mut args = vec!["--peer".to_string(), self.peer_addr()?];
        if let Some(pki) = &self.pki {
            let (cert, key) = pki.files("admin");
            for (flag, path) in [("--cert", cert), ("--key", key), ("--ca", pki.ca())] {
                args.push(flag.into());
                args.push(path.display().to_string());
            }
        }
        Ok(args)
    }

    /// Runs `placementd cluster --peer <this node's peer address> <args>` (the real CLI
    /// against the admin API) and returns its JSON output; a failure carries its stderr.
    pub fn admin(&self, args: &[&str]) -> Result<Value> {
        let out = Command::new(&self.bin)
            .arg("cluster")
            .args(self.admin_args()?)
            .args(args)
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            return Err(format!(
                "placementd cluster {} failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        Ok(serde_json::from_slice(&out.stdout)?)
    }

    /// Starts a new process on the same data directory and port, and waits until ready.
    pub async fn restart(&mut self) -> Result<()> {
        self.kill9()?;
        self.spawn_and_wait().await
    }

    /// The node's whole log once it has a line containing `text` (or as it is after
    /// [`LOG_WAIT`]): see [`log_with`].
    pub async fn log_with(&self, text: &str) -> String {
        log_with(&self.log_path(), text).await
    }

    /// The last few KB of the node's log, for error messages.
    pub fn log_tail(&self) -> String {
        let mut out = String::new();
        if let Ok(mut f) = File::open(self.log_path()) {
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            let _ = f.seek(SeekFrom::Start(len.saturating_sub(LOG_TAIL_BYTES)));
            let _ = f.read_to_string(&mut out);
        }
        out
    }

    fn spawn(&mut self) -> Result<()> {
        std::fs::create_dir_all(self.data_dir())?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())?;
        let child = Command::new(&self.bin)
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--node-id")
            .arg(self.node_id.to_string())
            .args(&self.extra_args)
            .args(&self.more_args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("spawning {}: {e}", self.bin.display()))?;
        self.child = Some(child);
        Ok(())
    }

    /// Spawns the process and polls `GET /` until 200. If the process exits first,
    /// `self.child` is left `None` and the error carries the log tail.
    async fn spawn_and_wait(&mut self) -> Result<()> {
        self.spawn()?;
        self.wait_ready().await
    }

    /// The Raft node id.
    pub fn node_id(&self) -> u64 {
        self.node_id
    }

    /// Whether a process is running (not killed).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Starts the process again after [`Node::kill9`] without waiting for it (a cluster
    /// member may need its peers before it is ready).
    pub fn respawn(&mut self) -> Result<()> {
        self.kill9()?;
        self.spawn()
    }

    /// Polls `GET /` until 200 (see [`Node::spawn_and_wait`]).
    pub async fn wait_ready(&mut self) -> Result<()> {
        let http = self.http(Duration::from_secs(2))?;
        let url = format!("{}/", self.url());
        match wait_until_ok(&http, &url, &mut self.child, READY_TIMEOUT).await? {
            Ok(()) => Ok(()),
            Err(NotAnswering::Exited(status)) => Err(format!(
                "placementd on port {} exited with {status} before it was ready; log:\n{}",
                self.port,
                self.log_tail()
            )
            .into()),
            Err(NotAnswering::TimedOut) => Err(format!(
                "placementd on port {} not ready after {READY_TIMEOUT:?}; log:\n{}",
                self.port,
                self.log_tail()
            )
            .into()),
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// N `placementd` processes forming one Raft cluster on loopback ports.
pub struct Cluster {
    pub nodes: Vec<Node>,
}

/// Why an attempt to start a cluster failed: a member exited before it was ready (worth
/// another attempt on new ports), or anything else.
enum Started {
    Exited(Error),
    Failed(Error),
}

impl Cluster {
    /// Starts `n` fresh members with `--initial-cluster` and waits until each serves the API
    /// (which it does only once it knows a leader and has caught up).
    pub async fn start(n: usize) -> Result<Cluster> {
        Self::start_with(n, &[]).await
    }

    /// [`Cluster::start`] with extra flags for every node (e.g. `--snapshot-every`).
    pub async fn start_with(n: usize, extra: &[&str]) -> Result<Cluster> {
        Self::start_secured(n, extra, Some(Pki::new()?)).await
    }

    /// A cluster without TLS anywhere (the development mode the binary warns about).
    pub async fn start_plain(n: usize, extra: &[&str]) -> Result<Cluster> {
        Self::start_secured(n, extra, None).await
    }

    /// `n` members with `extra` flags, secured by `pki` (plaintext with `None`). If a member
    /// exits before it is ready (most likely one of its ports was taken between
    /// [`free_port`] and its bind, by a test running beside this one), the whole cluster is
    /// started again on new ports and fresh data dirs, as [`Node::start`] does for one node:
    /// every member's address is in every member's `--initial-cluster`.
    pub async fn start_secured(n: usize, extra: &[&str], pki: Option<Arc<Pki>>) -> Result<Cluster> {
        let mut last_err: Option<Error> = None;
        for _ in 0..START_ATTEMPTS {
            match Self::try_start(n, extra, pki.clone()).await {
                Ok(cluster) => return Ok(cluster),
                Err(Started::Exited(e)) => last_err = Some(e),
                Err(Started::Failed(e)) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| "the cluster did not start".into()))
    }

    /// One attempt of [`Cluster::start_secured`]; the members of a failed attempt are dropped
    /// (killed) on return.
    async fn try_start(
        n: usize,
        extra: &[&str],
        pki: Option<Arc<Pki>>,
    ) -> Result<Cluster, Started> {
        let mut ports = Vec::new();
        for _ in 0..n {
            ports.push((
                free_port().map_err(Started::Failed)?,
                free_port().map_err(Started::Failed)?,
            ));
        }
        let initial: Vec<String> = ports
            .iter()
            .enumerate()
            .map(|(i, (api, peer))| format!("{}=127.0.0.1:{api}@127.0.0.1:{peer}", i + 1))
            .collect();
        let initial = initial.join(",");
        let mut nodes = Vec::new();
        for (i, (api, peer)) in ports.iter().enumerate() {
            let args = ["--initial-cluster", &initial]
                .into_iter()
                .chain(extra.iter().copied())
                .map(str::to_string)
                .collect();
            let mut node = Node::new(
                "placementd-cluster-",
                i as u64 + 1,
                *api,
                Some(*peer),
                args,
                pki.clone(),
            )
            .map_err(Started::Failed)?;
            node.spawn().map_err(Started::Failed)?;
            nodes.push(node);
        }
        for node in &mut nodes {
            if let Err(e) = node.wait_ready().await {
                return Err(if node.is_running() {
                    Started::Failed(e)
                } else {
                    Started::Exited(e)
                });
            }
        }
        Ok(Cluster { nodes })
    }

    /// A cluster grown from one running node (e.g. [`Node::from_backup`]).
    pub fn from_node(node: Node) -> Cluster {
        Cluster { nodes: vec![node] }
    }

    /// Starts one more node, fresh, with `--initial-cluster-state existing` (and `extra`
    /// flags): it waits to be added (`placementd cluster add`), so this does not wait for
    /// it to be ready. Returns its index in `nodes`.
    pub fn spawn_joining_node(&mut self, extra: &[&str]) -> Result<usize> {
        let node_id = self.nodes.iter().map(|n| n.node_id).max().unwrap_or(0) + 1;
        let (api, peer) = (free_port()?, free_port()?);
        let member = format!("{node_id}=127.0.0.1:{api}@127.0.0.1:{peer}");
        let args = [
            "--initial-cluster",
            &member,
            "--initial-cluster-state",
            "existing",
        ]
        .into_iter()
        .chain(extra.iter().copied())
        .map(str::to_string)
        .collect();
        let pki = self.nodes.first().and_then(|n| n.pki.clone());
        let mut node = Node::new("placementd-cluster-", node_id, api, Some(peer), args, pki)?;
        node.spawn()?;
        self.nodes.push(node);
        Ok(self.nodes.len() - 1)
    }

    /// `GET /readyz` of one node as JSON (`Value::Null` if it does not answer).
    pub async fn readyz(node: &Node) -> Value {
        let Ok(http) = node.http(Duration::from_secs(2)) else {
            return Value::Null;
        };
        match http.get(format!("{}/readyz", node.url())).send().await {
            Ok(r) => r.json().await.unwrap_or(Value::Null),
            Err(_) => Value::Null,
        }
    }

    /// The index in `nodes` of the node that reports itself leader, waiting up to
    /// `timeout` for one.
    pub async fn leader(&self, timeout: Duration) -> Result<usize> {
        let deadline = Instant::now() + timeout;
        loop {
            for (i, node) in self.nodes.iter().enumerate() {
                if node.is_running() && Self::readyz(node).await["is_leader"] == Value::Bool(true) {
                    return Ok(i);
                }
            }
            if Instant::now() > deadline {
                return Err(format!("no leader after {timeout:?}").into());
            }
            tokio::time::sleep(READY_POLL).await;
        }
    }

    /// Log tails of every node, for failure messages.
    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("--- node {} ---\n{}", n.node_id, n.log_tail()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A decoded response: status, JSON body (`Value::Null` when empty or not JSON) and text.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub text: String,
    pub headers: reqwest::header::HeaderMap,
}

impl Resp {
    /// `Err` with the status and body unless the status is `want`.
    pub fn expect(self, want: u16) -> Result<Resp> {
        if self.status == want {
            Ok(self)
        } else {
            Err(format!("expected HTTP {want}, got {}: {}", self.status, self.text).into())
        }
    }

    /// A response header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The first error's `code` (Placement error shape), if any.
    pub fn error_code(&self) -> Option<&str> {
        self.body.get("errors")?.get(0)?.get("code")?.as_str()
    }
}

/// HTTP client with Placement's admin noauth2 token and a microversion header.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    microversion: String,
    /// `X-Auth-Token` of every request; `None` sends none.
    token: Option<String>,
}

impl Client {
    /// A client for a plain `http://` `base` at [`DEFAULT_MICROVERSION`].
    pub fn new(base: &str) -> Result<Client> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()?;
        Client::with_http(base, http)
    }

    /// A client for `base` (e.g. [`Node::url`]) over `http` (e.g. [`Node::http`]).
    pub fn with_http(base: &str, http: reqwest::Client) -> Result<Client> {
        Ok(Client {
            http,
            base: base.trim_end_matches('/').to_string(),
            microversion: DEFAULT_MICROVERSION.to_string(),
            token: Some(ADMIN_TOKEN.to_string()),
        })
    }

    /// The same client (sharing its connection pool) sending `token` (`None`: no token).
    pub fn with_token(&self, token: Option<&str>) -> Client {
        Client {
            token: token.map(str::to_string),
            ..self.clone()
        }
    }

    /// The same client (sharing its connection pool) at another microversion.
    pub fn with_microversion(&self, microversion: &str) -> Client {
        Client {
            microversion: microversion.to_string(),
            ..self.clone()
        }
    }

    /// Sends one request; `Err` only for transport failures (connection refused/reset,
    /// timeout), any HTTP status is an `Ok(Resp)`.
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Resp, reqwest::Error> {
        self.send(method, path, body, &[]).await
    }

    /// [`Client::request`] without a body and with extra request headers.
    pub async fn request_with_headers(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Resp> {
        Ok(self.send(method, path, None, headers).await?)
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<Resp, reqwest::Error> {
        let mut req = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .header(
                "openstack-api-version",
                format!("placement {}", self.microversion),
            )
            .header("accept", "application/json");
        if let Some(token) = &self.token {
            req = req.header("x-auth-token", token);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Resp {
            status,
            body,
            text,
            headers,
        })
    }

    pub async fn get(&self, path: &str) -> Result<Resp> {
        Ok(self.request(reqwest::Method::GET, path, None).await?)
    }
    pub async fn put(&self, path: &str, body: &Value) -> Result<Resp> {
        Ok(self.request(reqwest::Method::PUT, path, Some(body)).await?)
    }
    pub async fn post(&self, path: &str, body: &Value) -> Result<Resp> {
        Ok(self
            .request(reqwest::Method::POST, path, Some(body))
            .await?)
    }
    pub async fn delete(&self, path: &str) -> Result<Resp> {
        Ok(self.request(reqwest::Method::DELETE, path, None).await?)
    }

    /// Creates a resource provider named `name` and returns its uuid.
    pub async fn create_provider(&self, name: &str) -> Result<String> {
        let uuid = uuid::Uuid::new_v4().to_string();
        let r = self
            .post(
                "/resource_providers",
                &serde_json::json!({"name": name, "uuid": uuid}),
            )
            .await?;
        if !(r.status == 200 || r.status == 201) {
            return Err(format!("create provider {name}: HTTP {}: {}", r.status, r.text).into());
        }
        Ok(uuid)
    }

    /// The provider's current generation.
    pub async fn provider_generation(&self, rp: &str) -> Result<u64> {
        let r = self
            .get(&format!("/resource_providers/{rp}"))
            .await?
            .expect(200)?;
        r.body["generation"]
            .as_u64()
            .ok_or_else(|| format!("provider {rp} has no generation: {}", r.text).into())
    }

    /// Replaces the provider's inventories with `{class: total}`, all with reserved 0,
    /// ratio 1, min_unit 1, max_unit total, step 1.
    pub async fn set_inventory(&self, rp: &str, totals: &[(&str, u64)]) -> Result<()> {
        let generation = self.provider_generation(rp).await?;
        let mut inv = serde_json::Map::new();
        for (class, total) in totals {
            inv.insert(
                (*class).to_string(),
                serde_json::json!({"total": total, "reserved": 0, "min_unit": 1,
                    "max_unit": total, "step_size": 1, "allocation_ratio": 1.0}),
            );
        }
        self.put(
            &format!("/resource_providers/{rp}/inventories"),
            &serde_json::json!({"resource_provider_generation": generation, "inventories": inv}),
        )
        .await?
        .expect(200)?;
        Ok(())
    }

    /// `GET /resource_providers/{rp}/allocations` as `{consumer: {"resources": {class: n}}}`.
    pub async fn allocations_on(&self, rp: &str) -> Result<serde_json::Map<String, Value>> {
        let r = self
            .get(&format!("/resource_providers/{rp}/allocations"))
            .await?
            .expect(200)?;
        match r.body.get("allocations") {
            Some(Value::Object(m)) => Ok(m.clone()),
            _ => Err(format!("allocations on {rp}: unexpected body {}", r.text).into()),
        }
    }

    /// `GET /resource_providers/{rp}/usages` as `{class: used}`.
    pub async fn usages(&self, rp: &str) -> Result<serde_json::Map<String, Value>> {
        let r = self
            .get(&format!("/resource_providers/{rp}/usages"))
            .await?
            .expect(200)?;
        match r.body.get("usages") {
            Some(Value::Object(m)) => Ok(m.clone()),
            _ => Err(format!("usages of {rp}: unexpected body {}", r.text).into()),
        }
    }
}

/// The same project/user the benchmark kit uses; any valid strings would do.
pub const PROJECT_ID: &str = "6f2a6c1e-6d3a-4c55-9a52-0b3c5d0f0001";
/// See [`PROJECT_ID`].
pub const USER_ID: &str = "6f2a6c1e-6d3a-4c55-9a52-0b3c5d0f0002";

/// A 1.38+ `PUT /allocations/{consumer}` body: `{rp: {class: amount}}` for one consumer.
pub fn allocation_body(
    allocations: &[(&str, &[(&str, u64)])],
    consumer_generation: Option<u64>,
) -> Value {
    let mut allocs = serde_json::Map::new();
    for (rp, resources) in allocations {
        let res: serde_json::Map<String, Value> = resources
            .iter()
            .map(|(c, n)| ((*c).to_string(), Value::from(*n)))
            .collect();
        allocs.insert((*rp).to_string(), serde_json::json!({ "resources": res }));
    }
    serde_json::json!({
        "allocations": allocs,
        "project_id": PROJECT_ID,
        "user_id": USER_ID,
        "consumer_generation": consumer_generation,
        "consumer_type": "INSTANCE",
    })
}
