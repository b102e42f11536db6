//! `placement-manage` (also `placementd manage`): the database commands deployment tools run
//! in their bootstrap and upgrade jobs (kolla-ansible's `placement-manage db sync`,
//! openstack-helm's `db-sync` job, `db online_data_migrations` on upgrade).
//!
//! placementd keeps its state in its replicated Raft log and state machine, not in an SQL
//! database: there is no schema to create, migrate or stamp. So every command succeeds and
//! says so, and a job written for Placement runs unchanged:
//!
//! | command                          | does                                                  |
//! |----------------------------------|-------------------------------------------------------|
//! | `db sync`                        | nothing to migrate: says so, exit 0                   |
//! | `db version`                     | prints placementd's version (the state's format goes  |
//! |                                  | with it), exit 0                                      |
//! | `db online_data_migrations`      | nothing to migrate: Placement's summary table, exit 0 |
//!
//! `--config-file` and `--config-dir` are accepted anywhere on the line (as oslo.config takes
//! them) and ignored: nothing here reads a configuration. Program names: see `progname.rs`.

use clap::{Args, Parser, Subcommand};

/// placementd's version, which `db version` prints.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Placement's database commands, for deployment tools (placementd has no SQL database).
#[derive(Debug, Args)]
pub struct ManageArgs {
    #[command(flatten)]
    pub(crate) oslo: OsloConfigArgs,

    #[command(subcommand)]
    command: ManageCommand,
}

/// `--config-file` / `--config-dir`, accepted as oslo.config accepts them and ignored.
#[derive(Debug, Args)]
pub struct OsloConfigArgs {
    /// Accepted for compatibility with Placement's tools; ignored.
    #[arg(long = "config-file", global = true, value_name = "PATH")]
    config_file: Vec<std::path::PathBuf>,
    /// Accepted for compatibility with Placement's tools; ignored.
    #[arg(long = "config-dir", global = true, value_name = "DIR")]
    config_dir: Vec<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
enum ManageCommand {
    /// Database commands.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
}

#[derive(Debug, Subcommand)]
enum DbCommand {
    /// Create or upgrade the schema: nothing to do (placementd has no SQL schema).
    Sync,
    /// Print the schema version: placementd's version.
    Version,
    /// Run online data migrations: none exist.
    #[command(name = "online_data_migrations", alias = "online-data-migrations")]
    OnlineDataMigrations {
        /// Accepted for compatibility; there is nothing to migrate.
        #[arg(long = "max-count")]
        max_count: Option<u64>,
    },
}

/// The program when invoked as `placement-manage`.
#[derive(Debug, Parser)]
#[command(
    name = "placement-manage",
    version,
    about = "Placement's database commands, for \
    deployment tools (placementd keeps no SQL database: they succeed and say so)"
)]
pub struct ManageCli {
    #[command(flatten)]
    pub args: ManageArgs,
}

/// Runs one command; returns the process's exit status.
pub fn run(args: ManageArgs) -> u8 {
    match args.command {
        ManageCommand::Db {
            command: DbCommand::Sync,
        } => {
            println!(
                "placementd keeps its state in its replicated Raft log, not in an SQL database: \
                 there is no schema to create or migrate; nothing to do."
            );
        }
        ManageCommand::Db {
            command: DbCommand::Version,
        } => println!("{VERSION}"),
        ManageCommand::Db {
            command: DbCommand::OnlineDataMigrations { .. },
        } => {
            print!("{}", migrations_table());
            println!("placementd has no online data migrations; nothing to do.");
        }
    }
    0
}

/// Placement's `online_data_migrations` summary, with no migration in it.
fn migrations_table() -> String {
    let rule = "+-----------+--------------+-----------+";
    format!(
        "Running batches of 50 until complete\n{rule}\n| Migration | Total Needed | Completed |\n\
         {rule}\n{rule}\n"
    )
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn the_lines_deployment_tools_run_parse() {
        for line in [
            &["placement-manage", "db", "sync"][..],
            &[
                "placement-manage",
                "--config-file",
                "/etc/placement/placement.conf",
                "db",
                "sync",
            ],
            &[
                "placement-manage",
                "db",
                "version",
                "--config-dir",
                "/etc/placement/conf.d",
            ],
            &["placement-manage", "db", "online_data_migrations"],
            &[
                "placement-manage",
                "db",
                "online_data_migrations",
                "--max-count",
                "50",
            ],
        ] {
            let cli = ManageCli::try_parse_from(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
            assert_eq!(run(cli.args), 0);
        }
        assert!(ManageCli::try_parse_from(["placement-manage", "db", "drop"]).is_err());
    }
}
