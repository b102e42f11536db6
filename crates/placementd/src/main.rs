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

mod admin;
mod backend;
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
            ..ApiConfig::default()
        }
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
    let (name, done) = match cli.command {
        Some(Command::Cluster(args)) => ("cluster", cli::run(args).await),
        Some(Command::Restore(args)) => ("restore", cli::restore(args).await),
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
        let app = placement_raft::peer_router(node.clone()).merge(admin::router(node.clone()));
        tracing::info!(peer_listen = ?listener.local_addr().ok(), "serving the peer port");
        tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = peer_stopped.await;
                })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "peer server failed");
            }
        })
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
    tracing::info!(listen = %api_addr, "serving the Placement API");
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
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await;

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
    served.map_err(|e| format!("HTTP server: {e}"))?;
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
