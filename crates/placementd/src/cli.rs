//! `placementd cluster …`: the operator's client of the admin API (`admin.rs`) on a member's
//! peer port. Prints the JSON answer (pretty) on stdout; an error goes to stderr with exit
//! status 1.
//!
//! With TLS on the peer port, the CLI presents an operator certificate (`placementd cert
//! admin`) or a member's, and verifies the node it calls against the cluster CA:
//!
//! ```text
//! placementd cluster --peer 10.0.0.1:8779 --cert admin.pem --key admin-key.pem --ca ca.pem status
//! ```
//!
//! ```text
//! placementd cluster --peer 10.0.0.1:8779 status
//! placementd cluster --peer 10.0.0.1:8779 add 4 10.0.0.4:8778 10.0.0.4:8779
//! placementd cluster --peer 10.0.0.1:8779 remove 2
//! placementd cluster --peer 10.0.0.1:8779 digest
//! placementd cluster --peer 10.0.0.1:8779 snapshot
//! placementd cluster --peer 10.0.0.1:8779 backup /backups/placement-2026-11-27.snap
//! placementd restore --backup FILE --data-dir DIR --node-id 10 --api-addr A --peer-addr P
//! ```

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use placement_raft::NodeId;

use crate::admin::{paths, NewMember};

/// Cluster administration through a member's peer port.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// Peer address (`host:port`) of any member; membership changes are forwarded to the
    /// leader.
    #[arg(long, env = "PLACEMENTD_ADMIN_PEER", default_value = "127.0.0.1:8779")]
    peer: String,

    /// PEM certificate to present (an `admin` or member certificate from the cluster CA);
    /// with --key and --ca the CLI speaks TLS. Needed when the peer port has TLS.
    #[arg(long, env = "PLACEMENTD_ADMIN_CERT", requires_all = ["key", "ca"])]
    cert: Option<PathBuf>,

    /// PEM private key of --cert.
    #[arg(long, env = "PLACEMENTD_ADMIN_KEY", requires_all = ["cert", "ca"])]
    key: Option<PathBuf>,

    /// PEM certificate of the cluster CA: the node called must present a certificate from it
    /// naming the address given in --peer.
    #[arg(long, env = "PLACEMENTD_ADMIN_CA", requires_all = ["cert", "key"])]
    ca: Option<PathBuf>,

    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Debug, Subcommand)]
enum ClusterCommand {
    /// Raft status of the member (role, leader, term, indexes) and the membership.
    Status,
    /// SHA-256 of the member's state machine, taken after a read barrier. Members hold the
    /// same state when their digests are equal (compare them while no writes are in flight).
    Digest,
    /// Add a node: start it with `--initial-cluster-state existing` first; it joins as a
    /// learner, catches up, then becomes a voter. Waits until it is a voter.
    Add {
        /// The new node's id (never reuse the id of a node that was removed or lost).
        id: NodeId,
        /// Its client API address (`host:port`).
        api_addr: String,
        /// Its peer address (`host:port`).
        peer_addr: String,
    },
    /// Remove a member (voter or learner). Stop its process afterwards.
    Remove {
        /// The node id to remove.
        id: NodeId,
    },
    /// Build a snapshot on the member now (and compact its log).
    Snapshot,
    /// Download a backup: a snapshot covering every write acknowledged before the call,
    /// written to FILE (atomically: a partial download never has FILE's name).
    Backup {
        /// Where to write the backup.
        file: PathBuf,
    },
}

/// Restore a backup into an empty data directory, as the first member of a new cluster.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup (a snapshot file from `placementd cluster backup`).
    #[arg(long)]
    backup: PathBuf,
    /// The new node's data directory (must not exist or be empty).
    #[arg(long)]
    data_dir: PathBuf,
    /// The new node's id (a new id: never one of the old cluster's, if it still runs).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    node_id: NodeId,
    /// The new node's client API address, as others will reach it (`host:port`).
    #[arg(long)]
    api_addr: String,
    /// The new node's peer address (`host:port`); start it with this `--peer-listen`.
    #[arg(long)]
    peer_addr: String,
}

/// How long the CLI waits for an answer: adding a node waits for it to catch up, which a
/// large state may take a while for (the server side gives up after
/// `placement_raft::MEMBERSHIP_TIMEOUT`).
const ADMIN_TIMEOUT: Duration = Duration::from_secs(150);

/// An HTTP client of the admin API as `--cert/--key/--ca` say, and the scheme it speaks
/// (`https` with a certificate, `http` without). Shared with `placementd import`.
pub(crate) fn admin_client(
    cert: Option<&PathBuf>,
    key: Option<&PathBuf>,
    ca: Option<&PathBuf>,
    timeout: Duration,
) -> Result<(reqwest::Client, &'static str), String> {
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none());
    let scheme = match (cert, key, ca) {
        (Some(cert), Some(key), Some(ca)) => {
            let paths = placement_net::TlsPaths {
                cert: cert.clone(),
                key: key.clone(),
                ca: Some(ca.clone()),
            };
            let config =
                placement_net::tls::admin_client_config(&paths).map_err(|e| e.to_string())?;
            builder = builder.use_preconfigured_tls((*config).clone());
            "https"
        }
        _ => "http",
    };
    let http = builder.build().map_err(|e| format!("HTTP client: {e}"))?;
    Ok((http, scheme))
}

/// Why a request to the admin API at `peer` could not be sent, with every cause.
pub(crate) fn unreachable(peer: &str, scheme: &str, e: &reqwest::Error) -> String {
    let mut message = format!("cannot reach the admin API at {peer}: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(&format!(": {s}"));
        source = s.source();
    }
    if scheme == "http" {
        message.push_str(" (if the peer port uses TLS, pass --cert, --key and --ca)");
    }
    message
}

/// Runs one `placementd cluster` command.
pub async fn run(args: ClusterArgs) -> Result<(), String> {
    let (http, scheme) = admin_client(
        args.cert.as_ref(),
        args.key.as_ref(),
        args.ca.as_ref(),
        ADMIN_TIMEOUT,
    )?;
    let url = |path: &str| format!("{scheme}://{}{path}", args.peer);
    let unreachable = |e: reqwest::Error| unreachable(&args.peer, scheme, &e);
    if let ClusterCommand::Backup { file } = &args.command {
        return backup(&http, &url(paths::BACKUP), file)
            .await
            .map_err(|e| match e {
                BackupError::Request(e) => unreachable(e),
                BackupError::Other(message) => message,
            });
    }
    let request = match args.command {
        ClusterCommand::Backup { .. } => unreachable!("handled above"),
        ClusterCommand::Status => http.get(url(paths::STATUS)),
        ClusterCommand::Digest => http.get(url(paths::DIGEST)),
        ClusterCommand::Snapshot => http.post(url(paths::SNAPSHOT)),
        ClusterCommand::Add {
            id,
            api_addr,
            peer_addr,
        } => http.post(url(paths::MEMBERS)).json(&NewMember {
            id,
            api_addr,
            peer_addr,
        }),
        ClusterCommand::Remove { id } => http.delete(url(&format!("{}/{id}", paths::MEMBERS))),
    };
    let response = request.send().await.map_err(unreachable)?;
    let status = response.status();
    let body: serde_json::Value = response
        .json()
        .await
        .map_err(|e| format!("admin API at {} answered {status}: {e}", args.peer))?;
    if !status.is_success() {
        let message = body["error"].as_str().unwrap_or("no error message");
        return Err(format!("{status}: {message}"));
    }
    let pretty = serde_json::to_string_pretty(&body).map_err(|e| format!("output: {e}"))?;
    println!("{pretty}");
    Ok(())
}

/// Why a backup download failed.
enum BackupError {
    /// The request could not be sent.
    Request(reqwest::Error),
    Other(String),
}

/// Streams a backup to `file` (through `file.partial`, fsynced, then renamed).
async fn backup(
    http: &reqwest::Client,
    url: &str,
    file: &std::path::Path,
) -> Result<(), BackupError> {
    use std::io::Write;
    let other = BackupError::Other;
    let mut response = http.get(url).send().await.map_err(BackupError::Request)?;
    let status = response.status();
    if !status.is_success() {
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        let message = body["error"].as_str().unwrap_or("no error message");
        return Err(other(format!("{status}: {message}")));
    }
    let index = response
        .headers()
        .get(paths::BACKUP_INDEX_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let partial = file.with_extension("partial");
    let mut out = std::fs::File::create(&partial)
        .map_err(|e| other(format!("{}: {e}", partial.display())))?;
    let mut bytes = 0u64;
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| other(format!("backup download: {e}")))?
    {
        out.write_all(&chunk)
            .map_err(|e| other(format!("{}: {e}", partial.display())))?;
        bytes += chunk.len() as u64;
    }
    out.sync_all()
        .map_err(|e| other(format!("{}: {e}", partial.display())))?;
    std::fs::rename(&partial, file).map_err(|e| other(format!("{}: {e}", file.display())))?;
    let report = serde_json::json!({
        "file": file.display().to_string(),
        "bytes": bytes,
        "last_log_index": index,
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&report).map_err(|e| other(e.to_string()))?
    );
    Ok(())
}

/// Runs `placementd restore`.
pub async fn restore(args: RestoreArgs) -> Result<(), String> {
    let me = placement_raft::PeerNode {
        api_addr: args.api_addr,
        peer_addr: args.peer_addr,
    };
    let (data_dir, backup, node_id) = (args.data_dir.clone(), args.backup.clone(), args.node_id);
    let restored = tokio::task::spawn_blocking(move || {
        placement_raft::restore(&data_dir, node_id, me, &backup)
    })
    .await
    .map_err(|e| format!("restore task: {e}"))?
    .map_err(|e| e.to_string())?;
    let report = serde_json::json!({
        "data_dir": args.data_dir.display().to_string(),
        "node_id": args.node_id,
        "last_log_index": restored.last_log_id.index,
        "records": restored.records,
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
    );
    Ok(())
}
