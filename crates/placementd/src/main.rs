//! `placementd`: an OpenStack-Placement-compatible service whose state is replicated by Raft.
//!
//! # DESIGN
//! The binary only wires parts together: parse flags, set up logging, open the Raft node
//! (`placement-raft`, which opens the storage), serve Placement's REST API
//! (`placement-api`) over it, and stop cleanly. With no flags it runs a one-node cluster on
//! `127.0.0.1:8778` (Placement's port) with its data in `./placementd-data`, so no external
//! service is ever needed.
//!
//! Start-up order: bind the listening socket first (a taken port fails in milliseconds, before
//! the database is touched), then open the node — which returns only once a leader is known
//! and everything committed before a restart is applied again — and only then accept
//! requests. Shutdown on SIGTERM or SIGINT: stop accepting, let in-flight requests finish,
//! then shut Raft down and sync the database. Every failure is a log line and exit status 1,
//! never a panic.
//!
//! If Raft stops on its own (a storage failure it cannot continue after), the process stops
//! serving and exits with status 1, so that a supervisor restarts it.
//!
//! # Cluster
//! `--initial-cluster 1=api@peer,2=api@peer,3=api@peer` (the same list on every member, like
//! etcd's) makes the node a member of that cluster; it serves Raft and forwarding on its peer
//! port (`--peer-listen`, default `127.0.0.1:8779`), which is bound and served *before* the
//! node waits for a leader, since electing one needs the peers. Without `--initial-cluster`
//! the node is a one-node cluster and opens no peer port unless `--peer-listen` is given.
//! `/healthz` (the process serves HTTP) and `/readyz` (a member that knows a leader and has
//! applied close to its commit index; 503 otherwise) are answered on the API port without
//! authentication, for load balancers.
//!
//! A fresh node started with `--initial-cluster-state existing` joins a running cluster: it
//! never initializes a membership and waits until a member adds it (`placementd cluster add`).
//!
//! # Administration
//! The peer port also serves the admin API (`admin.rs`: status, membership changes, state
//! digest, snapshot), and `placementd cluster …` (`cli.rs`) is its command-line client.
//!
//! # Shutdown
//! On SIGTERM a leader hands leadership to the most up-to-date voter once in-flight requests
//! are done, so a planned restart costs clients a round trip instead of an election timeout.
//!
//! # Security
//! With `--peer-cert/--peer-key/--peer-ca` the peer port speaks only mutual TLS with
//! certificates from the cluster CA, and this node calls the others the same way
//! (`placement-net`, `placement_raft::guard`); `--tls-cert/--tls-key` serve the API over
//! HTTPS. Certificates are reloaded on SIGHUP and when their files change. A peer port
//! without TLS on an address other than loopback is warned about at start. Both ports cap
//! connections, time out slow headers and handshakes (`placement_net::serve`); the data
//! directory is private to the user (mode 0700, files 0600). `docs/security.md` has the
//! threat model.

mod admin;
mod backend;
mod cert;
mod cli;
mod health;

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use std::collections::BTreeMap;

use clap::Parser;
use placement_api::{ApiConfig, CorsConfig, PolicyMode};
use placement_net::{TlsPaths, TlsRole, TlsSource};
use placement_raft::{NodeConfig, NodeId, PeerNode, PlacementNode};
use tracing_subscriber::EnvFilter;

use crate::backend::RaftBackend;

/// OpenStack Placement API, replicated with Raft. With no subcommand, runs a node.
#[derive(Debug, Parser)]
#[command(
    name = "placementd",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    #[command(flatten)]
    serve: Args,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Administer a running cluster through a member's peer port (status, add and remove
    /// members, state digest, snapshot).
    Cluster(cli::ClusterArgs),
    /// Restore a backup (`placementd cluster backup`) into an empty data directory, as the
    /// first member of a new cluster; then start that node with the same id and addresses
    /// and add members with `placementd cluster add`.
    Restore(cli::RestoreArgs),
    /// Create a cluster CA and issue node and operator certificates (PEM files).
    Cert(cert::CertArgs),
}

/// The flags of a running node.
#[derive(Debug, clap::Args)]
struct Args {
    /// Address of the Placement REST API.
    #[arg(long, env = "PLACEMENTD_LISTEN", default_value = "127.0.0.1:8778")]
    listen: SocketAddr,

    /// Data directory (Raft log, state, snapshots); created if missing.
    #[arg(long, env = "PLACEMENTD_DATA_DIR", default_value = "./placementd-data")]
    data_dir: PathBuf,

    /// This node's Raft id (≥ 1). Bound to the data directory at first start; never reuse
    /// the id of a node whose data was lost.
    #[arg(long, env = "PLACEMENTD_NODE_ID", default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(1..))]
    node_id: u64,

    /// Address of the peer port (Raft RPCs, snapshots, forwarded writes, read indexes).
    /// Defaults to 127.0.0.1:8779 when --initial-cluster is given; a one-node cluster opens
    /// no peer port unless this is set.
    #[arg(long, env = "PLACEMENTD_PEER_LISTEN")]
    peer_listen: Option<SocketAddr>,

    /// The initial members, the same list on every member: `ID=API_ADDR@PEER_ADDR` separated
    /// by commas, e.g. `1=10.0.0.1:8778@10.0.0.1:8779,2=...,3=...`. The lowest id
    /// initializes the cluster on its first start; the others join it.
    #[arg(long, env = "PLACEMENTD_INITIAL_CLUSTER")]
    initial_cluster: Option<String>,

    /// `new`: the members of --initial-cluster form a new cluster (the lowest id initializes
    /// it). `existing`: this node joins a running cluster; on a fresh data directory it waits
    /// until a member adds it (`placementd cluster add`). --initial-cluster must then name at
    /// least this node (its addresses).
    #[arg(long, env = "PLACEMENTD_INITIAL_CLUSTER_STATE", value_enum,
          default_value_t = InitialClusterState::New)]
    initial_cluster_state: InitialClusterState,

    /// Build a snapshot and compact the Raft log after this many applied entries.
    #[arg(long, env = "PLACEMENTD_SNAPSHOT_EVERY",
          default_value_t = placement_raft::SNAPSHOT_EVERY_ENTRIES,
          value_parser = clap::value_parser!(u64).range(1..))]
    snapshot_every: u64,

    /// `linearizable` (default): every read first confirms with the leader that it sees every
    /// write acknowledged before it (ReadIndex), on any node. `stale`: reads answer from what
    /// this node has applied, without that round trip; a follower may briefly miss a write
    /// acknowledged by another node. Writes are linearizable either way.
    #[arg(long, env = "PLACEMENTD_READ_CONSISTENCY", value_enum,
          default_value_t = ReadConsistency::Linearizable)]
    read_consistency: ReadConsistency,

    /// How Placement's policy rules are enforced: `legacy` (the deprecated defaults: admin
    /// only), `secure-rbac` (the new defaults: admin, service, project reader) or `open`
    /// (every rule but admin_api allows anyone; for tests only).
    #[arg(long, env = "PLACEMENTD_POLICY", value_enum, default_value_t = Policy::Legacy)]
    policy: Policy,

    /// An origin allowed to make cross-origin requests (CORS); repeat for several. CORS is
    /// off when none is given.
    #[arg(
        long = "cors-allowed-origin",
        env = "PLACEMENTD_CORS_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    cors_allowed_origins: Vec<String>,

    /// A request header a CORS preflight may ask for; repeat for several.
    #[arg(
        long = "cors-allow-header",
        env = "PLACEMENTD_CORS_ALLOW_HEADERS",
        value_delimiter = ','
    )]
    cors_allow_headers: Vec<String>,

    /// PEM certificate of this node from the cluster CA, naming `node<ID>` (and the
    /// addresses it is reached at). With --peer-key and --peer-ca, the peer port accepts only
    /// mutual TLS from holders of certificates of that CA, and this node calls the others
    /// the same way.
    #[arg(long, env = "PLACEMENTD_PEER_CERT", requires_all = ["peer_key", "peer_ca"])]
    peer_cert: Option<PathBuf>,

    /// PEM private key of --peer-cert.
    #[arg(long, env = "PLACEMENTD_PEER_KEY", requires_all = ["peer_cert", "peer_ca"])]
    peer_key: Option<PathBuf>,

    /// PEM certificate(s) of the cluster CA.
    #[arg(long, env = "PLACEMENTD_PEER_CA", requires_all = ["peer_cert", "peer_key"])]
    peer_ca: Option<PathBuf>,

    /// PEM certificate chain for HTTPS on the REST API (it may be the peer certificate).
    #[arg(long, env = "PLACEMENTD_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(long, env = "PLACEMENTD_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,

    /// Open connections per port; one more is closed at once.
    #[arg(long, env = "PLACEMENTD_MAX_CONNECTIONS",
          default_value_t = placement_net::serve::DEFAULT_MAX_CONNECTIONS as u64,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    max_connections: u64,

    /// Seconds a client has to send a request's headers (after connecting or after the
    /// previous response: idle keep-alive connections close after it too).
    #[arg(long, env = "PLACEMENTD_HEADER_TIMEOUT",
          default_value_t = placement_net::serve::DEFAULT_HEADER_TIMEOUT.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    header_timeout: u64,

    /// API requests served at once; more are answered 503 with Retry-After.
    #[arg(long, env = "PLACEMENTD_MAX_REQUESTS_IN_FLIGHT",
          default_value_t = placement_api::DEFAULT_MAX_REQUESTS_IN_FLIGHT as u64,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    max_requests_in_flight: u64,

    /// Seconds an API request may take before it is answered 503.
    #[arg(long, env = "PLACEMENTD_REQUEST_TIMEOUT",
          default_value_t = placement_api::DEFAULT_REQUEST_TIMEOUT.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    request_timeout: u64,

    /// Generate at most this many allocation candidates per request, before `limit`
    /// (Placement's `[placement] max_allocation_candidates`); -1: no bound.
    #[arg(long, env = "PLACEMENTD_MAX_ALLOCATION_CANDIDATES",
          default_value_t = placement_api::DEFAULT_MAX_ALLOCATION_CANDIDATES as i64,
          value_parser = clap::value_parser!(i64).range(-1..),
          allow_negative_numbers = true)]
    max_allocation_candidates: i64,

    /// Take the scheme of `Location` headers from `X-Forwarded-Proto` (set it behind a
    /// proxy that terminates TLS; oslo.middleware's `enable_proxy_headers_parsing`).
    #[arg(long, env = "PLACEMENTD_ENABLE_PROXY_HEADERS_PARSING")]
    enable_proxy_headers_parsing: bool,
}

/// `--read-consistency` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ReadConsistency {
    Linearizable,
    Stale,
}

/// `--initial-cluster-state` values (etcd's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum InitialClusterState {
    New,
    Existing,
}

/// How long a node joining a running cluster waits to be added before it gives up (an
/// operator runs `placementd cluster add` after starting it).
const JOIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3600);

/// `--policy` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Policy {
    Legacy,
    SecureRbac,
    Open,
}

impl Args {
    /// The API configuration these flags describe.
    fn api_config(&self) -> ApiConfig {
        let policy = match self.policy {
            Policy::Legacy => PolicyMode::Legacy,
            Policy::SecureRbac => PolicyMode::SecureRbac,
            Policy::Open => PolicyMode::Open,
        };
        let cors = (!self.cors_allowed_origins.is_empty()).then(|| CorsConfig {
            allowed_origins: self.cors_allowed_origins.clone(),
            allow_headers: self.cors_allow_headers.clone(),
            ..CorsConfig::default()
        });
        ApiConfig {
            policy,
            cors,
            max_requests_in_flight: usize::try_from(self.max_requests_in_flight)
                .unwrap_or(usize::MAX),
            request_timeout: std::time::Duration::from_secs(self.request_timeout),
            max_allocation_candidates: usize::try_from(self.max_allocation_candidates).ok(),
            enable_proxy_headers_parsing: self.enable_proxy_headers_parsing,
            ..ApiConfig::default()
        }
    }

    /// How a port is served: TLS, and the connection limits of these flags.
    fn serve_config(
        &self,
        name: &'static str,
        tls: Option<Arc<TlsSource>>,
    ) -> placement_net::ServeConfig {
        let mut config = placement_net::ServeConfig::new(name, tls);
        config.max_connections = usize::try_from(self.max_connections).unwrap_or(usize::MAX);
        config.header_timeout = std::time::Duration::from_secs(self.header_timeout);
        config
    }

    /// The peer port's TLS, from --peer-cert/--peer-key/--peer-ca.
    fn peer_tls(&self) -> Result<Option<Arc<TlsSource>>, String> {
        let (Some(cert), Some(key), Some(ca)) = (&self.peer_cert, &self.peer_key, &self.peer_ca)
        else {
            return Ok(None);
        };
        let paths = TlsPaths {
            cert: cert.clone(),
            key: key.clone(),
            ca: Some(ca.clone()),
        };
        let tls =
            TlsSource::load("peer", paths, TlsRole::Peer).map_err(|e| format!("peer TLS: {e}"))?;
        let expected = placement_net::Identity::Node(self.node_id);
        if tls.identity() != expected {
            return Err(format!(
                "peer TLS: {} names {}, but this is node {} (its certificate must name {})",
                cert.display(),
                tls.identity(),
                self.node_id,
                placement_net::node_name(self.node_id)
            ));
        }
        Ok(Some(tls))
    }

    /// The API port's TLS, from --tls-cert/--tls-key.
    fn api_tls(&self) -> Result<Option<Arc<TlsSource>>, String> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Ok(None);
        };
        let paths = TlsPaths {
            cert: cert.clone(),
            key: key.clone(),
            ca: None,
        };
        TlsSource::load("api", paths, TlsRole::Api)
            .map(Some)
            .map_err(|e| format!("API TLS: {e}"))
    }
}

/// The peer port when `--initial-cluster` is given without `--peer-listen`.
const DEFAULT_PEER_LISTEN: &str = "127.0.0.1:8779";

/// Parses `--initial-cluster`: `ID=API@PEER` items separated by commas.
fn parse_initial_cluster(spec: &str) -> Result<BTreeMap<NodeId, PeerNode>, String> {
    let mut members = BTreeMap::new();
    for item in spec.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let bad = || format!("--initial-cluster: `{item}` is not ID=API_ADDR@PEER_ADDR");
        let (id, addrs) = item.split_once('=').ok_or_else(bad)?;
        let (api, peer) = addrs.split_once('@').ok_or_else(bad)?;
        let id: NodeId = id.trim().parse().map_err(|_| bad())?;
        if id == 0 || api.is_empty() || peer.is_empty() {
            return Err(bad());
        }
        let node = PeerNode {
            api_addr: api.to_string(),
            peer_addr: peer.to_string(),
        };
        if members.insert(id, node).is_some() {
            return Err(format!("--initial-cluster: node {id} is listed twice"));
        }
    }
    if members.is_empty() {
        return Err("--initial-cluster is empty".into());
    }
    Ok(members)
}

/// The default log filter when `RUST_LOG` is not set. openraft is verbose at info level
/// about routine elections and snapshots, so it gets warnings only.
const DEFAULT_LOG_FILTER: &str = "info,openraft=warn";

fn init_tracing() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_FILTER));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a human at a terminal; log files and journald get plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // Everything a node, a restore or a backup writes holds the cluster's state: readable by
    // this user only. (Certificates from `placementd cert` choose their own modes.)
    if !matches!(cli.command, Some(Command::Cert(_))) {
        private_files();
    }
    let (name, done) = match cli.command {
        Some(Command::Cluster(args)) => ("cluster", cli::run(args).await),
        Some(Command::Restore(args)) => ("restore", cli::restore(args).await),
        Some(Command::Cert(args)) => ("cert", cert::run(args)),
        None => ("", Ok(())),
    };
    if !name.is_empty() {
        return match done {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("placementd {name}: {message}");
                ExitCode::FAILURE
            }
        };
    }
    let args = cli.serve;
    init_tracing();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("placementd: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    private_data_dir(&args.data_dir)?;
    raise_open_files_limit();
    let peer_tls = args.peer_tls()?;
    let api_tls = args.api_tls()?;
    placement_net::tls::spawn_reloader(peer_tls.iter().chain(&api_tls).cloned().collect());
    let api_config = args.api_config();
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let api_addr = listener
        .local_addr()
        .map_err(|e| format!("listening socket: {e}"))?;

    let initial_cluster = match &args.initial_cluster {
        Some(spec) => Some(parse_initial_cluster(spec)?),
        None => None,
    };
    let peer_listen = match (args.peer_listen, &initial_cluster) {
        (Some(addr), _) => Some(addr),
        (None, Some(_)) => Some(
            DEFAULT_PEER_LISTEN
                .parse::<SocketAddr>()
                .map_err(|e| format!("default peer address: {e}"))?,
        ),
        (None, None) => None,
    };
    let peer_listener = match peer_listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("cannot listen on {addr} (peer port): {e}"))?,
        ),
        None => None,
    };
    if let Some(l) = &peer_listener {
        let addr = l.local_addr().map_err(|e| format!("peer socket: {e}"))?;
        if peer_tls.is_none() && !addr.ip().is_loopback() {
            tracing::warn!(
                peer_listen = %addr,
                "INSECURE: the peer port is reachable from the network without TLS. Anyone who \
                 can connect to it can add or remove members, read a full backup, forge \
                 writes and votes. Give every node --peer-cert, --peer-key and --peer-ca \
                 (`placementd cert`, docs/security.md)."
            );
        }
    }
    let mut config = match initial_cluster {
        Some(members) => NodeConfig::member(&args.data_dir, args.node_id, members)
            .map_err(|e| format!("--initial-cluster: {e}"))?,
        None => NodeConfig::single(&args.data_dir, args.node_id, api_addr.to_string()),
    };
    if config.initial_cluster.is_empty() {
        if let Some(l) = &peer_listener {
            config.peer_addr = l
                .local_addr()
                .map_err(|e| format!("peer socket: {e}"))?
                .to_string();
        }
    }
    config.snapshot_every = args.snapshot_every;
    config.peer_tls = peer_tls.clone();
    if args.initial_cluster_state == InitialClusterState::Existing {
        if args.initial_cluster.is_none() {
            return Err(
                "--initial-cluster-state existing needs --initial-cluster (with this node's \
                 addresses)"
                    .into(),
            );
        }
        config.join = true;
        config.startup_timeout = JOIN_TIMEOUT;
    }
    let startup_timeout = config.startup_timeout;

    tracing::info!(
        node_id = args.node_id,
        data_dir = %args.data_dir.display(),
        members = config.initial_cluster.len().max(1),
        "opening node"
    );
    let cannot_start = |e: placement_raft::Error| {
        format!(
            "cannot start node {} with data directory {}: {e}",
            args.node_id,
            args.data_dir.display()
        )
    };
    let node = Arc::new(PlacementNode::start(config).await.map_err(cannot_start)?);

    // The peer port is served before waiting for a leader: the election needs it.
    let (peer_stop, peer_stopped) = tokio::sync::oneshot::channel::<()>();
    let peer_server = peer_listener.map(|listener| {
        let app = placement_raft::peer_router(node.clone())
            .merge(admin::router(node.clone()))
            .layer(axum::middleware::from_fn(
                placement_net::layers::catch_panic,
            ));
        tracing::info!(
            peer_listen = ?listener.local_addr().ok(),
            tls = peer_tls.is_some(),
            "serving the peer port"
        );
        let serve = args.serve_config("peer", peer_tls.clone());
        tokio::spawn(placement_net::serve(listener, app, serve, async move {
            let _ = peer_stopped.await;
        }))
    });
    if let Err(e) = node.wait_ready(startup_timeout).await {
        let _ = node.shutdown().await;
        return Err(cannot_start(e));
    }

    let app = health::router(node.clone()).merge(placement_api::router(
        Arc::new(RaftBackend {
            node: node.clone(),
            stale_reads: args.read_consistency == ReadConsistency::Stale,
        }),
        api_config,
    ));
    tracing::info!(listen = %api_addr, tls = api_tls.is_some(), "serving the Placement API");
    let raft_failure = Arc::new(std::sync::Mutex::new(None::<String>));
    let stop = {
        let node = node.clone();
        let raft_failure = raft_failure.clone();
        async move {
            tokio::select! {
                () = shutdown_signal() => {}
                reason = node.stopped() => {
                    tracing::error!(%reason, "raft stopped; shutting down");
                    *raft_failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason);
                }
            }
        }
    };
    placement_net::serve(listener, app, args.serve_config("api", api_tls), stop).await;

    tracing::info!("HTTP server stopped; shutting down raft");
    // In-flight requests are done; a leader hands over before it goes (its peer port still
    // serves, so followers keep forwarding to it until they learn of the new leader).
    if raft_failure
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .is_none()
    {
        node.hand_over_leadership().await;
    }
    let stopped = node.shutdown().await;
    let _ = peer_stop.send(());
    if let Some(task) = peer_server {
        // Idle keep-alive connections from peers must not hold the exit up.
        if tokio::time::timeout(PEER_DRAIN_TIMEOUT, task)
            .await
            .is_err()
        {
            tracing::warn!("peer port did not drain in time");
        }
    }
    stopped.map_err(|e| format!("shutdown: {e}"))?;
    if let Some(reason) = raft_failure
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
    {
        return Err(format!("raft stopped: {reason}"));
    }
    tracing::info!("placementd stopped");
    Ok(())
}

/// Makes the data directory private to the user: mode 0700 for it (created so if missing),
/// nothing readable by others inside it, and a umask of 077 for every file created from now
/// on (RocksDB's, snapshots, backups).
fn private_data_dir(dir: &std::path::Path) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    private_files();
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        return Ok(());
    }
    // A directory from an older version: close what it left open to others.
    let mut pending = vec![dir.to_path_buf()];
    let mut fixed = 0u64;
    while let Some(path) = pending.pop() {
        let meta =
            std::fs::symlink_metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        if meta.file_type().is_symlink() {
            continue;
        }
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & 0o700))
                .map_err(|e| format!("cannot make {} private: {e}", path.display()))?;
            fixed += 1;
        }
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).map_err(|e| format!("{}: {e}", path.display()))? {
                pending.push(
                    entry
                        .map_err(|e| format!("{}: {e}", path.display()))?
                        .path(),
                );
            }
        }
    }
    // An empty directory made by a script or a test runner with the default umask holds
    // nothing yet that others could have read: fixed silently.
    if fixed > 1 || (fixed == 1 && std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some())) {
        tracing::warn!(
            data_dir = %dir.display(),
            files = fixed,
            "the data directory was readable by other users; made it private (0700/0600)"
        );
    }
    Ok(())
}

/// Files created from now on are readable by this user only (umask 077).
fn private_files() {
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
}

/// Raises the soft open-files limit to the hard one: each port may hold
/// `--max-connections` sockets, and RocksDB keeps its files open.
fn raise_open_files_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!(error = %e, "cannot raise the open-files limit");
        }
    }
}

/// How long the peer port may take to close its connections at shutdown.
const PEER_DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Resolves on the first SIGTERM or SIGINT.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_initial_cluster, Cli};
    use clap::Parser;

    #[test]
    fn cluster_subcommand_parses_and_serving_flags_still_do() {
        let cli = Cli::try_parse_from([
            "placementd",
            "cluster",
            "--peer",
            "h:1",
            "add",
            "4",
            "a:1",
            "p:1",
        ])
        .expect("cluster add parses");
        assert!(cli.command.is_some());
        let cli = Cli::try_parse_from(["placementd", "--listen", "127.0.0.1:1", "--node-id", "2"])
            .expect("serving flags parse");
        assert!(cli.command.is_none());
        assert_eq!(cli.serve.node_id, 2);
        assert!(Cli::try_parse_from(["placementd", "cluster", "remove", "x"]).is_err());
    }

    #[test]
    fn initial_cluster_parses() {
        let m = parse_initial_cluster("1=127.0.0.1:8778@127.0.0.1:8779, 2=h2:8778@h2:8779")
            .expect("valid");
        assert_eq!(m.len(), 2);
        assert_eq!(m[&1].api_addr, "127.0.0.1:8778");
        assert_eq!(m[&2].peer_addr, "h2:8779");
    }

    #[test]
    fn bad_initial_cluster_is_refused() {
        for bad in ["", "1=a", "x=a@b", "0=a@b", "1=a@b,1=c@d", "1=@b"] {
            assert!(parse_initial_cluster(bad).is_err(), "{bad:?}");
        }
    }
}
