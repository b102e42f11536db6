//! The operator's side (issue 11): request ids through a forwarded write, JSON logs,
//! `/readyz?verbose`, the fan-out cluster commands, and Placement's program names
//! (`placement-manage`, `placement-status`, also as symlinks), against real processes.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use placementd_tests::{eventually, placementd_bin, Cluster, Node, Result};
use serde_json::{json, Value};

/// What a CLI run printed and how it exited.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs `program args`.
fn run(program: &Path, args: &[String]) -> Result<Run> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()?;
    Ok(Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    })
}

/// `placementd cluster <peer args> <args>`.
fn cluster_cli(node: &Node, args: &[&str]) -> Result<Run> {
    let mut all = vec!["cluster".to_string()];
    all.extend(node.admin_args()?);
    all.extend(args.iter().map(|a| a.to_string()));
    run(&placementd_bin()?, &all)
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// A directory with `placement-manage` and `placement-status` symlinked to the binary.
fn symlinked_tools() -> Result<(tempfile::TempDir, PathBuf, PathBuf)> {
    let dir = tempfile::Builder::new()
        .prefix("placement-tools-")
        .tempdir()?;
    let bin = placementd_bin()?;
    let manage = dir.path().join("placement-manage");
    let status = dir.path().join("placement-status");
    std::os::unix::fs::symlink(&bin, &manage)?;
    std::os::unix::fs::symlink(&bin, &status)?;
    Ok((dir, manage, status))
}

/// An answer's status, request-id header and text.
struct Answer {
    status: u16,
    request_id: Option<String>,
    x_request_id: Option<String>,
    text: String,
}

/// `POST /resource_providers` to `node` as the admin, naming `id` in `X-Openstack-Request-Id`.
async fn create_provider_with_id(node: &Node, name: &str, id: &str) -> Result<Answer> {
    let resp = node
        .http(Duration::from_secs(20))?
        .post(format!("{}/resource_providers", node.url()))
        .header("x-auth-token", "admin")
        .header("openstack-api-version", "placement 1.39")
        .header("x-openstack-request-id", id)
        .json(&json!({ "name": name }))
        .send()
        .await?;
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    Ok(Answer {
        status: resp.status().as_u16(),
        request_id: header("openstack-request-id"),
        x_request_id: header("x-openstack-request-id"),
        text: resp.text().await?,
    })
}

/// A write through a follower: the answer names a fresh local id (not the caller's global
/// id), the follower logs the forward and the leader logs applying it, both with the same
/// `req-` id; the follower's line also carries the caller's global id. A malformed incoming
/// id is neither echoed nor logged.
#[tokio::test]
async fn a_request_id_travels_with_a_forwarded_write() -> Result<()> {
    let cluster = Cluster::start(3).await?;
    let leader = cluster.leader(Duration::from_secs(10)).await?;
    let follower = (leader + 1) % 3;
    let global = format!("req-{}", uuid::Uuid::new_v4());
    let resp = create_provider_with_id(&cluster.nodes[follower], "forwarded", &global).await?;
    assert_eq!(resp.status, 200, "{}", resp.text);
    let local = resp.request_id.ok_or("no openstack-request-id")?;
    assert!(local.starts_with("req-") && local != global, "{local}");
    assert_eq!(resp.x_request_id.as_deref(), Some(local.as_str()));

    let (f, l) = (&cluster.nodes[follower], &cluster.nodes[leader]);
    let found = eventually(Duration::from_secs(5), || {
        let (flog, llog) = (f.log_tail(), l.log_tail());
        flog.lines()
            .any(|x| x.contains(&local) && x.contains("forwarding a write") && x.contains(&global))
            && llog.lines().any(|x| {
                x.contains(&format!("request_id={local}"))
                    && x.contains("applying a forwarded write")
            })
    })
    .await;
    assert!(found, "the id is not in both logs:\n{}", cluster.logs());

    let bogus = "req-not-a-uuid";
    let resp = create_provider_with_id(&cluster.nodes[follower], "bogus id", bogus).await?;
    assert_eq!(resp.status, 200, "{}", resp.text);
    assert_ne!(resp.request_id.as_deref(), Some(bogus));
    assert!(!cluster.logs().contains(bogus), "{}", cluster.logs());
    Ok(())
}

/// `--log-format json`, and the old `--log-json` with `--log-file`: every line is a JSON
/// object with `timestamp`, `level`, `target` and `message`.
#[tokio::test]
async fn json_logs_are_one_object_per_line() -> Result<()> {
    let check = |text: &str, what: &str| -> Result<usize> {
        let mut n = 0;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: Value = serde_json::from_str(line)
                .map_err(|e| format!("{what}: not JSON ({e}): {line}"))?;
            for key in ["timestamp", "level", "target", "message"] {
                if !v[key].is_string() {
                    return Err(format!("{what}: no {key} in {line}").into());
                }
            }
            n += 1;
        }
        Ok(n)
    };
    let node = Cluster::start_plain(1, &["--log-format", "json"]).await?;
    let node = &node.nodes[0];
    let stderr = node.log_with("serving the Placement API").await;
    let stderr_lines = check(&stderr, "stderr")?;
    assert!(stderr_lines >= 3, "{}", node.log_tail());
    assert!(node
        .log_tail()
        .contains(r#""message":"serving the Placement API""#));

    let dir = tempfile::tempdir()?;
    let file = dir.path().join("placementd.log");
    let file_arg = file.display().to_string();
    let node = Cluster::start_plain(1, &["--log-json", "--log-file", &file_arg]).await?;
    let text = placementd_tests::log_with(&file, "serving the Placement API").await;
    assert!(check(&text, "log_file")? >= 3, "{text}");
    drop(node);
    Ok(())
}

/// `/readyz?verbose` names each check; plain `/readyz` keeps its shape with a summary.
#[tokio::test]
async fn readyz_verbose_lists_each_check() -> Result<()> {
    let cluster = Cluster::start_plain(1, &[]).await?;
    let node = &cluster.nodes[0];
    let http = node.http(Duration::from_secs(5))?;
    let resp = http
        .get(format!("{}/readyz?verbose", node.url()))
        .send()
        .await?;
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = resp.json().await?;
    let names: Vec<&str> = body["checks"]
        .as_array()
        .ok_or("checks is a list")?
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(
        names,
        ["member", "leader", "applied", "quorum", "storage"],
        "{body}"
    );
    for c in body["checks"].as_array().ok_or("list")? {
        assert_eq!(c["status"], "ok", "{c}");
        assert!(c["reason"].as_str().is_some_and(|r| !r.is_empty()), "{c}");
    }
    let plain: Value = http
        .get(format!("{}/readyz", node.url()))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(plain["ready"], true);
    assert_eq!(plain["checks"]["storage"], "ok", "{plain}");
    assert!(plain["applied_index"].is_u64(), "{plain}");
    Ok(())
}

/// endpoint-health, compare-digests, transfer-leader and `placement-status upgrade check`
/// on a secured 3-node cluster; then with one member down, endpoint-health and the upgrade
/// check say so (exit 1: unhealthy / Warning).
#[tokio::test]
async fn cluster_commands_ask_every_member() -> Result<()> {
    let mut cluster = Cluster::start(3).await?;
    let client = cluster.nodes[0].client()?;
    client.create_provider("digest me").await?;

    let health = cluster_cli(&cluster.nodes[0], &["endpoint-health"])?;
    assert_eq!(health.code, 0, "{health}");
    assert!(health.stdout.starts_with("ID  PEER"), "{health}");
    assert_eq!(health.stdout.matches("leader").count(), 1, "{health}");
    let health = cluster_cli(&cluster.nodes[1], &["endpoint-health", "--output", "json"])?;
    let members: Value = serde_json::from_str(&health.stdout)?;
    assert_eq!(members.as_array().map(Vec::len), Some(3), "{health}");
    assert!(members
        .as_array()
        .ok_or("list")?
        .iter()
        .all(|m| m["healthy"] == true));
    assert!(members[0]["version"].is_string(), "{members}");

    let digests = cluster_cli(&cluster.nodes[2], &["compare-digests"])?;
    assert_eq!(digests.code, 0, "{digests}");
    assert!(digests.stdout.contains("equal: 3 members"), "{digests}");

    let leader = cluster.leader(Duration::from_secs(10)).await?;
    let target = (leader + 1) % 3;
    let target_id = cluster.nodes[target].node_id().to_string();
    // Asked through a member that is not the leader: the CLI finds the leader.
    let other = (leader + 2) % 3;
    let moved = cluster_cli(&cluster.nodes[other], &["transfer-leader", &target_id])?;
    assert_eq!(moved.code, 0, "{moved}");
    assert_eq!(cluster.leader(Duration::from_secs(10)).await?, target);
    let refused = cluster_cli(&cluster.nodes[0], &["transfer-leader", "9"])?;
    assert_eq!(refused.code, 1, "{refused}");
    assert!(
        refused.stderr.contains("node 9 is not a voter"),
        "{refused}"
    );

    let (_tools, _manage, status) = symlinked_tools()?;
    let mut args = strings(&["--config-file", "/etc/placement/placement.conf"]);
    args.extend(cluster.nodes[0].admin_args()?);
    args.extend(strings(&["upgrade", "check"]));
    let check = run(&status, &args)?;
    assert_eq!(check.code, 0, "{check}");
    assert!(check.stdout.contains("| Upgrade Check Results"), "{check}");
    assert_eq!(
        check.stdout.matches("Result: Success").count(),
        3,
        "{check}"
    );

    // One member down.
    let down = (target + 1) % 3;
    cluster.nodes[down].kill9()?;
    let up = (down + 1) % 3;
    let health = cluster_cli(&cluster.nodes[up], &["endpoint-health"])?;
    assert_eq!(health.code, 1, "{health}");
    assert!(health.stderr.contains("unhealthy member(s)"), "{health}");
    assert!(health.stdout.contains("cannot reach"), "{health}");
    let mut args = cluster.nodes[up].admin_args()?;
    args.extend(strings(&["upgrade", "check", "--json"]));
    let check = run(&status, &args)?;
    assert_eq!(check.code, 1, "{check}");
    let report: Value = serde_json::from_str(&check.stdout)?;
    assert_eq!(report["checks"][0]["check"], "Cluster Quorum");
    assert_eq!(report["checks"][0]["result"], 1, "{report}");
    Ok(())
}

/// `placementd manage …` / `placement-manage …` succeed and say there is nothing to do;
/// `placement-status` exits 255 when it cannot ask the cluster.
#[tokio::test]
async fn placements_tools_answer_as_deployment_tools_expect() -> Result<()> {
    let bin = placementd_bin()?;
    let (_tools, manage, status) = symlinked_tools()?;
    let sync = run(&bin, &strings(&["manage", "db", "sync"]))?;
    assert_eq!(sync.code, 0, "{sync}");
    assert!(sync.stdout.contains("nothing to do"), "{sync}");
    let sync = run(
        &manage,
        &strings(&[
            "--config-file",
            "/etc/placement/placement.conf",
            "db",
            "sync",
        ]),
    )?;
    assert_eq!(sync.code, 0, "{sync}");
    assert!(
        sync.stdout.contains("no schema to create or migrate"),
        "{sync}"
    );
    let version = run(&manage, &strings(&["db", "version"]))?;
    assert_eq!(version.code, 0, "{version}");
    assert_eq!(version.stdout.trim(), env!("CARGO_PKG_VERSION"));
    let migrations = run(&manage, &strings(&["db", "online_data_migrations"]))?;
    assert_eq!(migrations.code, 0, "{migrations}");
    let bad = run(&manage, &strings(&["db", "drop"]))?;
    assert_ne!(bad.code, 0, "{bad}");

    let port = placementd_tests::free_port()?;
    let nobody = format!("127.0.0.1:{port}");
    let unreachable = run(&status, &strings(&["--peer", &nobody, "upgrade", "check"]))?;
    assert_eq!(unreachable.code, 255, "{unreachable}");
    assert!(unreachable.stdout.starts_with("Error:\n"), "{unreachable}");
    let same = run(
        &bin,
        &strings(&["status", "--peer", &nobody, "upgrade", "check"]),
    )?;
    assert_eq!(same.code, 255, "{same}");
    Ok(())
}
