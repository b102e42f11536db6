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
//! Left out for the cluster step: the peer port, `--initial-cluster`, and the admin CLI.

mod backend;

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use placement_api::{ApiConfig, CorsConfig, PolicyMode};
use placement_raft::{NodeConfig, PlacementNode};
use tracing_subscriber::EnvFilter;

use crate::backend::RaftBackend;

/// OpenStack Placement API, replicated with Raft.
#[derive(Debug, Parser)]
#[command(name = "placementd", version, about)]
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
    let args = Args::parse();
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

    tracing::info!(
        node_id = args.node_id,
        data_dir = %args.data_dir.display(),
        "opening node"
    );
    let config = NodeConfig::single(&args.data_dir, args.node_id, api_addr.to_string());
    let node = PlacementNode::open(config).await.map_err(|e| {
        format!(
            "cannot start node {} with data directory {}: {e}",
            args.node_id,
            args.data_dir.display()
        )
    })?;
    let node = Arc::new(node);

    let app = placement_api::router(Arc::new(RaftBackend(node.clone())), api_config);
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
    let stopped = node.shutdown().await;
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
