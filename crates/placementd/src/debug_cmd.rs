//! `placementd debug dump --data-dir DIR`: a data directory in readable form (Raft metadata,
//! log entries, state records, remembered request outcomes, snapshot files), for an operator
//! or a developer looking at what a node holds. Read-only; the node must be stopped (RocksDB
//! allows one process per directory), or point it at a copy.

use std::path::PathBuf;

use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub struct DebugArgs {
    #[command(subcommand)]
    command: DebugCommand,
}

#[derive(Debug, Subcommand)]
enum DebugCommand {
    /// Print a data directory: Raft metadata, log entries, records, request outcomes,
    /// snapshots.
    Dump {
        /// The node's data directory (`--data-dir` of the node).
        #[arg(long)]
        data_dir: PathBuf,
        /// Only the last N log entries.
        #[arg(long)]
        entries: Option<usize>,
    },
}

pub fn run(args: DebugArgs) -> Result<(), String> {
    let DebugCommand::Dump { data_dir, entries } = args.command;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    placement_raft::dump(&data_dir, placement_raft::DumpOptions { entries }, &mut out)
        .map_err(|e| format!("dump {}: {e}", data_dir.display()))?;
    std::io::Write::flush(&mut out).map_err(|e| e.to_string())
}
