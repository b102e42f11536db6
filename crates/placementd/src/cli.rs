//! `placementd cluster …`: the operator's client of the admin API (`admin.rs`) on a member's
//! peer port. Prints the JSON answer (pretty) on stdout; an error goes to stderr with exit
//! status 1.
//!
//! ```text
//! placementd cluster --peer 10.0.0.1:8779 status
//! placementd cluster --peer 10.0.0.1:8779 add 4 10.0.0.4:8778 10.0.0.4:8779
//! placementd cluster --peer 10.0.0.1:8779 remove 2
//! placementd cluster --peer 10.0.0.1:8779 digest
//! placementd cluster --peer 10.0.0.1:8779 snapshot
//! ```

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
}

/// How long the CLI waits for an answer: adding a node waits for it to catch up, which a
/// large state may take a while for (the server side gives up after
/// `placement_raft::MEMBERSHIP_TIMEOUT`).
const ADMIN_TIMEOUT: Duration = Duration::from_secs(150);

/// Runs one `placementd cluster` command.
pub async fn run(args: ClusterArgs) -> Result<(), String> {
    let http = reqwest::Client::builder()
        .timeout(ADMIN_TIMEOUT)
        .no_proxy()
        .build()
        .map_err(|e| format!("HTTP client: {e}"))?;
    let url = |path: &str| format!("http://{}{path}", args.peer);
    let request = match args.command {
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
    let response = request
        .send()
        .await
        .map_err(|e| format!("cannot reach the admin API at {}: {e}", args.peer))?;
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
