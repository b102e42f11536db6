//! `placement-status upgrade check` (also `placementd status upgrade check`): the check
//! deployment tools run before and after an upgrade, with oslo.upgradecheck's output and exit
//! codes, over the cluster reached through `--peer` (default: the local node's peer port).
//!
//! | check            | Success                      | Warning                   | Failure         |
//! |------------------|------------------------------|---------------------------|-----------------|
//! | Cluster Quorum   | a leader, every voter answers | a leader, a quorum, but  | no leader, or   |
//! |                  |                              | some voter does not answer | no quorum      |
//! | Member Versions  | every member that answered   | members run different     |                 |
//! |                  | runs one placementd version  | (or unknown) versions     |                 |
//! | Member Lag       | no member lags (see          | a member lags or knows    |                 |
//! |                  | `members.rs`)                | no leader                 |                 |
//!
//! Mixed versions are a warning, not a failure: a rolling upgrade passes through them and
//! the cluster serves meanwhile. The exit status is the worst result — 0 Success, 1 Warning,
//! 2 Failure, as Placement's — and 255 when the check itself cannot run (the `--peer` member
//! does not answer), printed as oslo does (`Error:` and the reason).
//!
//! The table is oslo's (prettytable, one cell per check, details wrapped at 60 columns);
//! `--json` prints oslo's JSON instead.

use clap::{Args, Parser, Subcommand};
use serde_json::json;

use crate::cli::PeerConn;
use crate::manage::OsloConfigArgs;
use crate::members::{self, Admin, MemberHealth};

/// Placement's status commands, for deployment tools.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    oslo: OsloConfigArgs,

    #[command(flatten)]
    conn: PeerConn,

    #[command(subcommand)]
    command: StatusCommand,
}

#[derive(Debug, Subcommand)]
enum StatusCommand {
    /// Upgrade readiness.
    Upgrade {
        #[command(subcommand)]
        command: UpgradeCommand,
    },
}

#[derive(Debug, Subcommand)]
enum UpgradeCommand {
    /// Check that the cluster is in a state to upgrade (or was upgraded) safely.
    Check {
        /// Print oslo.upgradecheck's JSON instead of the table.
        #[arg(long)]
        json: bool,
    },
}

/// The program when invoked as `placement-status`.
#[derive(Debug, Parser)]
#[command(
    name = "placement-status",
    version,
    about = "Placement's upgrade checks, over a \
    placementd cluster"
)]
pub struct StatusCli {
    #[command(flatten)]
    pub args: StatusArgs,
}

/// oslo.upgradecheck's result codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Code {
    Success = 0,
    Warning = 1,
    Failure = 2,
}

impl Code {
    fn name(self) -> &'static str {
        match self {
            Code::Success => "Success",
            Code::Warning => "Warning",
            Code::Failure => "Failure",
        }
    }
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    pub name: &'static str,
    pub code: Code,
    pub details: Option<String>,
}

/// The exit status of an error that kept the checks from running (oslo's).
const ERROR_EXIT: u8 = 255;

/// Runs `upgrade check`; returns the exit status.
pub async fn run(args: StatusArgs) -> u8 {
    let StatusCommand::Upgrade {
        command: UpgradeCommand::Check { json },
    } = args.command;
    let health = match Admin::new(&args.conn, members::MEMBER_TIMEOUT) {
        Ok(admin) => members::survey(&admin, &args.conn.peer).await,
        Err(e) => Err(e),
    };
    let health = match health {
        Ok(h) => h,
        Err(e) => {
            println!("Error:\n{e}");
            return ERROR_EXIT;
        }
    };
    let results = checks(&health);
    if json {
        println!("{}", json_output(&results));
    } else {
        print!("{}", table(&results));
    }
    results
        .iter()
        .map(|r| r.code as u8)
        .max()
        .unwrap_or(Code::Success as u8)
}

/// The checks of the module doc over every member's health.
pub fn checks(health: &[MemberHealth]) -> Vec<CheckResult> {
    vec![quorum(health), versions(health), lag(health)]
}

fn result(name: &'static str, code: Code, details: Option<String>) -> CheckResult {
    CheckResult {
        name,
        code,
        details,
    }
}

fn quorum(health: &[MemberHealth]) -> CheckResult {
    const NAME: &str = "Cluster Quorum";
    let voters: Vec<&MemberHealth> = health.iter().filter(|m| m.voter).collect();
    let answering = voters.iter().filter(|m| m.reachable).count();
    let needed = voters.len() / 2 + 1;
    let leader = health.iter().find_map(|m| m.leader);
    let silent: Vec<String> = voters
        .iter()
        .filter(|m| !m.reachable)
        .map(|m| format!("node {} ({})", m.id, m.peer_addr))
        .collect();
    match leader {
        None => result(
            NAME,
            Code::Failure,
            Some(format!(
                "No member knows a leader ({answering} of {} voters answered): the cluster \
                 cannot serve writes. Start the stopped members or check the network \
                 between them.",
                voters.len()
            )),
        ),
        Some(_) if answering < needed => result(
            NAME,
            Code::Failure,
            Some(format!(
                "Only {answering} of {} voters answered, {needed} are needed for a quorum; \
                 not answering: {}.",
                voters.len(),
                silent.join(", ")
            )),
        ),
        Some(id) if !silent.is_empty() => result(
            NAME,
            Code::Warning,
            Some(format!(
                "Node {id} leads with a quorum, but these voters do not answer: {}. One more \
                 failure may cost the quorum.",
                silent.join(", ")
            )),
        ),
        Some(_) => result(NAME, Code::Success, None),
    }
}

fn versions(health: &[MemberHealth]) -> CheckResult {
    const NAME: &str = "Member Versions";
    let answering: Vec<&MemberHealth> = health.iter().filter(|m| m.reachable).collect();
    let mut seen: Vec<String> = answering
        .iter()
        .map(|m| m.version.clone().unwrap_or_else(|| "unknown".into()))
        .collect();
    seen.sort();
    seen.dedup();
    if seen.len() <= 1 {
        return result(NAME, Code::Success, None);
    }
    let each: Vec<String> = answering
        .iter()
        .map(|m| {
            format!(
                "node {} runs {}",
                m.id,
                m.version
                    .as_deref()
                    .unwrap_or("an unknown version (older than 0.1)")
            )
        })
        .collect();
    result(
        NAME,
        Code::Warning,
        Some(format!(
            "Members run different placementd versions ({}): finish the rolling upgrade \
             before relying on new behaviour.",
            each.join(", ")
        )),
    )
}

fn lag(health: &[MemberHealth]) -> CheckResult {
    const NAME: &str = "Member Lag";
    let behind: Vec<String> = health
        .iter()
        .filter(|m| m.reachable && !m.healthy)
        .map(|m| {
            format!(
                "node {} {}",
                m.id,
                m.problem.as_deref().unwrap_or("is unhealthy")
            )
        })
        .collect();
    if behind.is_empty() {
        result(NAME, Code::Success, None)
    } else {
        result(
            NAME,
            Code::Warning,
            Some(format!(
                "{}. Wait until it catches up before upgrading the next member.",
                behind.join("; ")
            )),
        )
    }
}

/// oslo.upgradecheck's JSON output.
pub fn json_output(results: &[CheckResult]) -> String {
    let checks: Vec<serde_json::Value> = results
        .iter()
        .map(|r| json!({"check": r.name, "result": r.code as u8, "details": r.details}))
        .collect();
    json!({"name": "Upgrade Check Results", "checks": checks}).to_string()
}

/// oslo.upgradecheck's table: one left-aligned cell per check, every row ruled.
pub fn table(results: &[CheckResult]) -> String {
    let mut cells: Vec<Vec<String>> = vec![vec!["Upgrade Check Results".into()]];
    for r in results {
        let details = r
            .details
            .as_deref()
            .map(|d| wrap(d, 60, "  ").join("\n"))
            .unwrap_or_else(|| "None".into());
        let cell = format!(
            "Check: {}\nResult: {}\nDetails: {details}",
            r.name,
            r.code.name()
        );
        cells.push(cell.lines().map(str::to_string).collect());
    }
    let width = cells
        .iter()
        .flatten()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(0);
    let rule = format!("+{}+\n", "-".repeat(width + 2));
    let mut out = rule.clone();
    for cell in cells {
        for line in cell {
            out.push_str(&format!("| {line:<width$} |\n"));
        }
        out.push_str(&rule);
    }
    out
}

/// Python's `textwrap.wrap(text, width, subsequent_indent=indent)` for plain text: words
/// greedily to `width` columns, lines after the first indented; a word longer than a line is
/// broken.
fn wrap(text: &str, width: usize, indent: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let mut word: String = word.to_string();
        loop {
            let prefix = if lines.is_empty() { "" } else { indent };
            let used = if line.is_empty() {
                prefix.chars().count()
            } else {
                line.chars().count() + 1
            };
            let room = width.saturating_sub(used);
            if word.chars().count() <= room {
                if line.is_empty() {
                    line.push_str(prefix);
                } else {
                    line.push(' ');
                }
                line.push_str(&word);
                break;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
                continue;
            }
            // A word longer than a whole line: break it.
            let head: String = word.chars().take(room.max(1)).collect();
            let rest: String = word.chars().skip(room.max(1)).collect();
            lines.push(format!("{prefix}{head}"));
            word = rest;
            if word.is_empty() {
                break;
            }
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: u64, reachable: bool, version: &str, leader: Option<u64>) -> MemberHealth {
        MemberHealth {
            id,
            peer_addr: format!("10.0.0.{id}:8779"),
            voter: true,
            reachable,
            healthy: reachable && leader.is_some(),
            role: None,
            leader: if reachable { leader } else { None },
            term: None,
            applied_index: None,
            committed_index: None,
            lag: None,
            version: reachable.then(|| version.to_string()),
            took_ms: 1,
            problem: (!reachable).then(|| "cannot reach".to_string()),
        }
    }

    fn codes(results: &[CheckResult]) -> Vec<(&'static str, Code)> {
        results.iter().map(|r| (r.name, r.code)).collect()
    }

    #[test]
    fn a_healthy_cluster_passes_and_the_table_is_oslos() {
        let h = [
            member(1, true, "0.1.0", Some(1)),
            member(2, true, "0.1.0", Some(1)),
            member(3, true, "0.1.0", Some(1)),
        ];
        let r = checks(&h);
        assert!(r.iter().all(|r| r.code == Code::Success), "{r:?}");
        let expected = "\
+------------------------+
| Upgrade Check Results  |
+------------------------+
| Check: Cluster Quorum  |
| Result: Success        |
| Details: None          |
+------------------------+
| Check: Member Versions |
| Result: Success        |
| Details: None          |
+------------------------+
| Check: Member Lag      |
| Result: Success        |
| Details: None          |
+------------------------+
";
        assert_eq!(table(&r), expected);
        let j: serde_json::Value = serde_json::from_str(&json_output(&r)).expect("JSON");
        assert_eq!(j["name"], "Upgrade Check Results");
        assert_eq!(j["checks"][0]["result"], 0);
        assert_eq!(j["checks"][0]["details"], serde_json::Value::Null);
    }

    #[test]
    fn a_lost_voter_warns_a_lost_quorum_fails_mixed_versions_warn() {
        let h = [
            member(1, true, "0.1.0", Some(1)),
            member(2, true, "0.2.0", Some(1)),
            member(3, false, "", None),
        ];
        let r = checks(&h);
        assert_eq!(
            codes(&r),
            [
                ("Cluster Quorum", Code::Warning),
                ("Member Versions", Code::Warning),
                ("Member Lag", Code::Success)
            ]
        );
        assert!(r[1]
            .details
            .as_deref()
            .is_some_and(|d| d.contains("node 2 runs 0.2.0")));
        let h = [
            member(1, true, "0.1.0", Some(1)),
            member(2, false, "", None),
            member(3, false, "", None),
        ];
        assert_eq!(checks(&h)[0].code, Code::Failure);
        let h = [
            member(1, true, "0.1.0", None),
            member(2, true, "0.1.0", None),
        ];
        let r = checks(&h);
        assert_eq!(r[0].code, Code::Failure);
        assert_eq!(r[2].code, Code::Warning, "a member that knows no leader");
    }

    #[test]
    fn details_wrap_like_textwrap() {
        let text = "Node 1 leads with a quorum, but these voters do not answer: node 3 \
                    (10.0.0.3:8779). One more failure may cost the quorum.";
        let lines = wrap(text, 60, "  ");
        assert_eq!(
            lines,
            [
                "Node 1 leads with a quorum, but these voters do not answer:",
                "  node 3 (10.0.0.3:8779). One more failure may cost the",
                "  quorum."
            ]
        );
        assert!(lines.iter().all(|l| l.len() <= 60));
        assert_eq!(
            wrap(&"x".repeat(70), 60, "  ")[1],
            format!("  {}", "x".repeat(10))
        );
    }
}
