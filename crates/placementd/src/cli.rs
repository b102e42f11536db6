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
//! placementd cluster --peer 10.0.0.1:8779 endpoint-health      # every member's status
//! placementd cluster --peer 10.0.0.1:8779 compare-digests      # every member's digest
//! placementd cluster --peer 10.0.0.1:8779 transfer-leader 2
//! placementd restore --backup FILE --data-dir DIR --node-id 10 --api-addr A --peer-addr P
//! ```
//!
//! `endpoint-health` and `compare-digests` ask every member of the membership the `--peer`
//! member knows (`members.rs`), print a table (or `--output json`), and exit 1 when a member
//! is unhealthy or holds a different state. `transfer-leader` asks the leader (found through
//! `--peer`) to hand over to the node given and waits until it leads.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use placement_raft::NodeId;

use reqwest::Method;

use crate::admin::{paths, NewLeader, NewMember};
use crate::members::{self, Admin, Comparison};

/// Where the admin API is and how to speak to it (shared by `cluster` and
/// `placement-status`).
#[derive(Debug, Args)]
pub struct PeerConn {
    /// Peer address (`host:port`) of any member; membership changes are forwarded to the
    /// leader.
    #[arg(long, env = "PLACEMENTD_ADMIN_PEER", default_value = "127.0.0.1:8779")]
    pub(crate) peer: String,

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
}

impl PeerConn {
    /// The certificate, key and CA, when TLS is asked for.
    pub(crate) fn tls_paths(&self) -> Option<placement_net::TlsPaths> {
        match (&self.cert, &self.key, &self.ca) {
            (Some(cert), Some(key), Some(ca)) => Some(placement_net::TlsPaths {
                cert: cert.clone(),
                key: key.clone(),
                ca: Some(ca.clone()),
            }),
            _ => None,
        }
    }
}

/// Cluster administration through a member's peer port.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    #[command(flatten)]
    conn: PeerConn,

    #[command(subcommand)]
    command: ClusterCommand,
}

/// How the fan-out commands print their result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Table,
    Json,
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
    /// Ask every member for its status: reachable, role, term, applied index, lag behind
    /// the commit index, answer time. Exits 1 if any member is unhealthy.
    EndpointHealth {
        #[arg(long, value_enum, default_value = "table")]
        output: Output,
    },
    /// Compare every member's state digest at one applied index: prints "equal", or names
    /// the members that differ and exits 1.
    CompareDigests {
        #[arg(long, value_enum, default_value = "table")]
        output: Output,
    },
    /// Hand leadership to voter ID and wait until it leads.
    TransferLeader {
        /// The node to lead.
        id: NodeId,
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

/// Runs one `placementd cluster` command.
pub async fn run(args: ClusterArgs) -> Result<(), String> {
    let admin = Admin::new(&args.conn, ADMIN_TIMEOUT)?;
    let peer = args.conn.peer.as_str();
    let request = match args.command {
        ClusterCommand::Backup { file } => {
            let request = admin.request(Method::GET, peer, paths::BACKUP);
            return backup(request, &file).await.map_err(|e| match e {
                BackupError::Request(e) => admin.unreachable(peer, &e),
                BackupError::Other(message) => message,
            });
        }
        ClusterCommand::EndpointHealth { output } => {
            return endpoint_health(&args.conn, output).await;
        }
        ClusterCommand::CompareDigests { output } => {
            return compare_digests(&admin, peer, output).await;
        }
        ClusterCommand::TransferLeader { id } => return transfer_leader(&admin, peer, id).await,
        ClusterCommand::Status => admin.request(Method::GET, peer, paths::STATUS),
        ClusterCommand::Digest => admin.request(Method::GET, peer, paths::DIGEST),
        ClusterCommand::Snapshot => admin.request(Method::POST, peer, paths::SNAPSHOT),
        ClusterCommand::Add {
            id,
            api_addr,
            peer_addr,
        } => admin
            .request(Method::POST, peer, paths::MEMBERS)
            .json(&NewMember {
                id,
                api_addr,
                peer_addr,
            }),
        ClusterCommand::Remove { id } => {
            admin.request(Method::DELETE, peer, &format!("{}/{id}", paths::MEMBERS))
        }
    };
    print_json(&admin.call(peer, request).await?)
}

fn print_json(value: &impl serde::Serialize) -> Result<(), String> {
    let pretty = serde_json::to_string_pretty(value).map_err(|e| format!("output: {e}"))?;
    println!("{pretty}");
    Ok(())
}

/// `cluster endpoint-health`.
async fn endpoint_health(conn: &PeerConn, output: Output) -> Result<(), String> {
    let admin = Admin::new(conn, members::MEMBER_TIMEOUT)?;
    let health = members::survey(&admin, &conn.peer).await?;
    match output {
        Output::Table => print!("{}", members::health_table(&health)),
        Output::Json => print_json(&health)?,
    }
    let unhealthy: Vec<String> = health
        .iter()
        .filter(|m| !m.healthy)
        .map(|m| m.id.to_string())
        .collect();
    if unhealthy.is_empty() {
        Ok(())
    } else {
        Err(format!("unhealthy member(s): {}", unhealthy.join(", ")))
    }
}

/// `cluster compare-digests`.
async fn compare_digests(admin: &Admin, peer: &str, output: Output) -> Result<(), String> {
    let status = admin.get(peer, paths::STATUS).await?;
    let members = members::members_of(&status);
    let digests = members::collect_digests(admin, &members).await;
    let verdict = members::compare(&digests);
    let summary = match &verdict {
        Comparison::Equal { applied_index } => format!(
            "equal: {} members hold the same state at applied index {}",
            digests.len(),
            applied_index
                .map(|i| i.to_string())
                .unwrap_or_else(|| "-".into())
        ),
        Comparison::Differ { differing } => format!(
            "differ: node(s) {} hold a state different from the other members'",
            differing
                .iter()
                .map(|id| id.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Comparison::Inconclusive(why) => why.clone(),
    };
    match output {
        Output::Table => println!("{}{summary}", members::digest_table(&digests)),
        Output::Json => print_json(&serde_json::json!({
            "equal": matches!(verdict, Comparison::Equal { .. }),
            "summary": summary,
            "members": digests,
        }))?,
    }
    match verdict {
        Comparison::Equal { .. } => Ok(()),
        _ => Err(summary),
    }
}

/// `cluster transfer-leader ID`: asks the leader, wherever it is.
async fn transfer_leader(admin: &Admin, peer: &str, to: NodeId) -> Result<(), String> {
    let status = admin.get(peer, paths::STATUS).await?;
    let leader = status["leader"]
        .as_u64()
        .ok_or_else(|| format!("{peer} knows no leader now; try again in a few seconds"))?;
    let leader_addr = members::members_of(&status)
        .into_iter()
        .find(|m| m.id == leader)
        .map(|m| m.peer_addr)
        .ok_or_else(|| format!("{peer} names leader {leader} but not its address"))?;
    let request = admin
        .request(Method::POST, &leader_addr, paths::LEADER)
        .json(&NewLeader { to });
    admin.call(&leader_addr, request).await?;
    print_json(&serde_json::json!({ "leader": to, "previous_leader": leader }))
}

/// Why a backup download failed.
enum BackupError {
    /// The request could not be sent.
    Request(reqwest::Error),
    Other(String),
}

/// Streams a backup to `file` (through `file.partial`, fsynced, then renamed).
async fn backup(
    request: reqwest::RequestBuilder,
    file: &std::path::Path,
) -> Result<(), BackupError> {
    use std::io::Write;
    let other = BackupError::Other;
    let mut response = request.send().await.map_err(BackupError::Request)?;
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
