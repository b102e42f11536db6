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
mod config;
mod debug_cmd;
mod health;
mod import;
mod log_format;
mod manage;
mod members;
mod metrics;
mod observe;
mod policy_cmd;
mod progname;
mod settings;
mod status_cmd;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use std::collections::BTreeMap;

use clap::{CommandFactory, FromArgMatches, Parser};
use placement_raft::{NodeConfig, NodeId, PeerNode, PlacementNode};

use crate::backend::RaftBackend;
use crate::settings::{Args, InitialClusterState, Settings};

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
    /// Placement's policy rules: `placementd policy defaults` prints a sample policy file.
    Policy(policy_cmd::PolicyArgs),
    /// Load a running Placement's database into an empty cluster, or (--verify) compare a
    /// running Placement with placementd through the REST API.
    Import(import::ImportArgs),
    /// `placement-manage`: Placement's database commands (`db sync`, `db version`), which
    /// succeed: placementd has no SQL schema.
    Manage(manage::ManageArgs),
    /// `placement-status`: `upgrade check` over the cluster (quorum, versions, lag).
    Status(status_cmd::StatusArgs),
    /// Developer and operator tools: `placementd debug dump --data-dir DIR` prints a stopped
    /// node's data directory (log, records, snapshots) in readable form.
    Debug(debug_cmd::DebugArgs),
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

/// How long a node joining a running cluster waits to be added before it gives up (an
/// operator runs `placementd cluster add` after starting it).
const JOIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3600);

/// The process allocator: see the workspace `Cargo.toml` for why not glibc's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    // Invoked through a `placement-manage` or `placement-status` symlink.
    if let Some(code) = progname::run_as_named().await {
        return ExitCode::from(code);
    }
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    // Everything a node, a restore or a backup writes holds the cluster's state: readable by
    // this user only. (Certificates from `placementd cert` choose their own modes.)
    if !matches!(cli.command, Some(Command::Cert(_) | Command::Policy(_))) {
        private_files();
    }
    let (name, done) = match cli.command {
        Some(Command::Manage(args)) => return ExitCode::from(manage::run(args)),
        Some(Command::Status(args)) => return ExitCode::from(status_cmd::run(args).await),
        Some(Command::Cluster(args)) => ("cluster", cli::run(args).await),
        Some(Command::Restore(args)) => ("restore", cli::restore(args).await),
        Some(Command::Cert(args)) => ("cert", cert::run(args)),
        Some(Command::Policy(args)) => ("policy", policy_cmd::run(args)),
        Some(Command::Import(args)) => ("import", import::run(args).await),
        Some(Command::Debug(args)) => ("debug", debug_cmd::run(args)),
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
    // The config file is read before logging is set up (it says how to log): its errors go
    // to stderr as they are.
    let settings = match Settings::resolve(cli.serve, &matches) {
        Ok(s) => s,
        Err(message) => {
            eprintln!("placementd: {message}");
            return ExitCode::FAILURE;
        }
    };
    // Held to the end of `main`: its drop writes out the lines still queued.
    let _log = match settings.init_tracing() {
        Ok(guard) => guard,
        Err(message) => {
            eprintln!("placementd: {message}");
            return ExitCode::FAILURE;
        }
    };
    settings.log_notes();
    match run(settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("placementd: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(settings: Settings) -> Result<(), String> {
    let args: &Args = &settings.args;
    private_data_dir(&args.data_dir)?;
    raise_open_files_limit();
    let peer_tls = args.peer_tls()?;
    let api_tls = args.api_tls()?;
    placement_net::tls::spawn_reloader(peer_tls.iter().chain(&api_tls).cloned().collect());
    let api_config = settings.api_config()?;
    settings::spawn_policy_reloader(api_config.policy.clone());
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let api_addr = listener
        .local_addr()
        .map_err(|e| format!("listening socket: {e}"))?;
    let metrics_listener = match args.metrics_listen {
        Some(addr) => Some(tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            format!("cannot listen on {addr} (--metrics-listen): {e}; choose a free port")
        })?),
        None => None,
    };

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
        let mut serve = args.serve_config("peer", peer_tls.clone());
        // Members call each other over channels (`placement_raft::ChannelLink`).
        serve.channels = Some(placement_net::ChannelLimits::new(
            placement_raft::MAX_CHANNEL_FRAME,
        ));
        tokio::spawn(placement_net::serve(listener, app, serve, async move {
            let _ = peer_stopped.await;
        }))
    });
    // Served before waiting for a leader too: a node stuck in an election must show in them.
    let (metrics_stop, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
    if let Some(listener) = metrics_listener {
        let addr = listener
            .local_addr()
            .map_err(|e| format!("metrics socket: {e}"))?;
        tracing::info!(metrics_listen = %addr, "serving metrics at http://{addr}/metrics");
        let serve = args.serve_config("metrics", None);
        let app = metrics::router(node.clone());
        tokio::spawn(placement_net::serve(listener, app, serve, async move {
            let _ = metrics_stopped.await;
        }));
    }
    if let Err(e) = node.wait_ready(startup_timeout).await {
        let _ = node.shutdown().await;
        return Err(cannot_start(e));
    }

    let app = health::router(node.clone(), api_config.auth.clone()).merge(placement_api::router(
        Arc::new(RaftBackend {
            node: node.clone(),
            stale_reads: settings.stale_reads(),
        }),
        api_config,
    ));
    // HTTP metrics and the access log, around every route (it sees each route's template).
    let app = app.layer(axum::middleware::from_fn(observe::layer));
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
    let _ = metrics_stop.send(());
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

    /// Parses a command line and resolves it against the config file it names.
    fn resolve(args: &[&str]) -> Result<crate::settings::Settings, String> {
        use clap::{CommandFactory, FromArgMatches};
        let matches = Cli::command()
            .try_get_matches_from(args)
            .map_err(|e| e.to_string())?;
        let cli = Cli::from_arg_matches(&matches).map_err(|e| e.to_string())?;
        crate::settings::Settings::resolve(cli.serve, &matches)
    }

    #[test]
    fn the_config_file_fills_what_flags_leave_unset() {
        let dir = tempfile::tempdir().expect("temp dir");
        let conf = dir.path().join("placement.conf");
        std::fs::write(
            &conf,
            "[api]\nauth_strategy = noauth2\n[placementd]\nnode_id = 3\n\
             listen = 127.0.0.1:9000\ndata_dir = data\nsnapshot_every = 7\n",
        )
        .expect("write");
        let conf = conf.display().to_string();
        let s = resolve(&["placementd", "--config-file", &conf]).expect("resolves");
        assert_eq!(s.args.node_id, 3);
        assert_eq!(s.args.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(
            s.args.data_dir,
            dir.path().join("data"),
            "relative to the file"
        );
        assert_eq!(s.args.snapshot_every, 7);
        let s = resolve(&[
            "placementd",
            "--config-file",
            &conf,
            "--listen",
            "127.0.0.1:9001",
            "--node-id",
            "1",
        ])
        .expect("resolves");
        assert_eq!(s.args.listen.to_string(), "127.0.0.1:9001", "the flag wins");
        assert_eq!(s.args.node_id, 1);
        assert_eq!(s.args.snapshot_every, 7);
    }

    #[test]
    fn peer_tls_split_between_flags_and_file_must_be_whole() {
        let dir = tempfile::tempdir().expect("temp dir");
        let conf = dir.path().join("placement.conf");
        std::fs::write(
            &conf,
            "[api]\nauth_strategy = noauth2\n[placementd]\npeer_ca = ca.pem\n",
        )
        .expect("write");
        let conf = conf.display().to_string();
        let e = resolve(&["placementd", "--config-file", &conf]).expect_err("refused");
        assert!(e.contains("peer_cert, peer_key and peer_ca"), "{e}");
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
