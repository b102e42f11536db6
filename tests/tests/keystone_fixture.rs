//! The Keystone fixture itself (tests/src/keystone.rs) against the real Keystone 30 of
//! `$KEYSTONE_VENV`: users and roles as documented, token validation the way placementd
//! does it (service token + subject token), revocation, a stop/restart that keeps the
//! tokens valid, and the real `openstack` CLI. Ignored unless run explicitly, since it
//! needs the venv `scripts/keystone-venv` makes:
//!
//!   KEYSTONE_VENV=$(scripts/keystone-venv | tail -n 1) \
//!     cargo test -p placementd-tests --test keystone_fixture -- --ignored --nocapture

use std::collections::BTreeSet;
use std::time::Instant;

use placementd_tests::keystone::{self, Keystone, DEMO_PROJECT, SERVICE_PROJECT};
use placementd_tests::Result;
use serde_json::Value;

/// The role names of a `GET /v3/auth/tokens` body.
fn roles(body: &Value) -> BTreeSet<String> {
    body["token"]["roles"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["name"].as_str().map(str::to_string))
        .collect()
}

/// Every process (zombies included) in process group `pgid`, as `/proc/PID/stat` lines.
fn group_processes(pgid: u32) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| {
            let rest = stat.rfind(')').map_or("", |i| &stat[i + 1..]);
            rest.split_whitespace().nth(2) == Some(pgid.to_string().as_str())
        })
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Keystone venv (scripts/keystone-venv); scripts/test runs it"]
async fn keystone_fixture_tokens_roles_revocation_restart_cli() -> Result<()> {
    let venv = keystone::venv_from_env()?;
    let t0 = Instant::now();
    let mut ks = Keystone::start(&venv).await?;
    eprintln!(
        "keystone: started in {:.1?} on {} (dir {})",
        ks.startup_time(),
        ks.url(),
        ks.dir().display()
    );

    let (svc_user, svc_password, svc_project) = Keystone::placement_service_user();
    let t = Instant::now();
    let service = ks.token(svc_user, svc_password, svc_project).await?;
    eprintln!("keystone: one password token in {:.1?}", t.elapsed());

    // Every user's project token validates (as placementd will: the service token
    // authenticates the call, the user's token is the subject) with the expected roles;
    // implied roles are expanded.
    let cases: [(&str, &str, &[&str]); 4] = [
        ("alice", DEMO_PROJECT, &["member", "reader"]),
        ("bob", DEMO_PROJECT, &["reader"]),
        (
            "carol",
            DEMO_PROJECT,
            &["admin", "manager", "member", "reader"],
        ),
        (
            "placement",
            SERVICE_PROJECT,
            &["admin", "manager", "member", "reader", "service"],
        ),
    ];
    let mut tokens = Vec::new();
    for (user, project, want) in cases {
        let token = ks.user_token(user, project).await?;
        let t = Instant::now();
        let (status, body) = ks.validate(&service, &token).await?;
        let took = t.elapsed();
        assert_eq!(status, 200, "validating {user}'s token: {body}");
        assert_eq!(roles(&body), set(want), "{user}'s roles: {body}");
        assert_eq!(
            body["token"]["project"]["id"].as_str(),
            Some(ks.project_id(project)?),
            "{user}'s project: {body}"
        );
        assert_eq!(
            body["token"]["user"]["id"].as_str(),
            Some(ks.user_id(user)?),
            "{user}'s id: {body}"
        );
        eprintln!("keystone: validated {user}'s token in {took:.1?}");
        if user == "bob" {
            eprintln!(
                "keystone: GET /v3/auth/tokens for bob:\n{}",
                serde_json::to_string_pretty(&body)?
            );
        }
        tokens.push((user, token));
    }

    // A system-scoped admin token.
    let system = ks.system_token("admin").await?;
    let (status, body) = ks.validate(&service, &system).await?;
    assert_eq!(status, 200, "system token: {body}");
    assert_eq!(body["token"]["system"]["all"], Value::Bool(true), "{body}");
    assert!(roles(&body).contains("admin"), "{body}");
    assert!(body["token"].get("project").is_none(), "{body}");
    eprintln!(
        "keystone: GET /v3/auth/tokens for a system-scoped admin token:\n{}",
        serde_json::to_string_pretty(&body)?
    );

    // Concurrent validations are served in parallel (uWSGI: 8 threads).
    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (ks_url, service, subject) = (ks.v3_url(), service.clone(), tokens[0].1.clone());
        tasks.push(tokio::spawn(async move {
            let r = reqwest::Client::new()
                .get(format!("{ks_url}/auth/tokens"))
                .header("x-auth-token", service)
                .header("x-subject-token", subject)
                .send()
                .await?;
            Ok::<u16, reqwest::Error>(r.status().as_u16())
        }));
    }
    for task in tasks {
        assert_eq!(task.await??, 200);
    }
    eprintln!("keystone: 16 concurrent validations in {:.1?}", t.elapsed());

    // A garbage subject is 404, a garbage auth token 401.
    let (status, _) = ks.validate(&service, "not-a-token").await?;
    assert_eq!(status, 404);
    let (status, _) = ks.validate("not-a-token", &tokens[0].1).await?;
    assert_eq!(status, 401);

    // Revocation: bob's token is invalid from now on.
    let bob = tokens[1].1.clone();
    ks.revoke(&bob).await?;
    let (status, body) = ks.validate(&service, &bob).await?;
    assert_eq!(status, 404, "revoked token: {body}");
    eprintln!("keystone: revoked token -> {status} {body}");

    // Role changes show at the next validation (the in-memory cache is invalidated).
    let bob = ks.user_token("bob", DEMO_PROJECT).await?;
    ks.grant_role("bob", DEMO_PROJECT, "member").await?;
    let (status, body) = ks.validate(&service, &bob).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(roles(&body), set(&["member", "reader"]), "{body}");
    ks.remove_role("bob", DEMO_PROJECT, "member").await?;
    let (_, body) = ks.validate(&service, &bob).await?;
    assert_eq!(roles(&body), set(&["reader"]), "{body}");

    // The placement endpoint shows up in a token's catalog (the CLI below uses it).
    ks.register_placement_endpoint("http://127.0.0.1:1/placement-old")
        .await?;
    ks.register_placement_endpoint("http://127.0.0.1:1/placement")
        .await?;

    // Keystone goes away and comes back on the same port with the same keys and database:
    // tokens issued before validate again, the revoked one stays revoked.
    let t = Instant::now();
    ks.stop()?;
    eprintln!("keystone: stopped in {:.0?}", t.elapsed());
    assert!(!ks.is_running());
    let down = reqwest::Client::new().get(ks.v3_url()).send().await;
    assert!(down.is_err(), "Keystone still answers after stop: {down:?}");
    let err = ks.validate(&service, &tokens[0].1).await;
    assert!(err.is_err(), "validation succeeded while stopped");
    let t = Instant::now();
    ks.restart().await?;
    eprintln!("keystone: restarted in {:.1?}", t.elapsed());
    for (user, token) in &tokens {
        let (status, body) = ks.validate(&service, token).await?;
        let want = if *user == "bob" { 404 } else { 200 };
        assert_eq!(status, want, "{user}'s token after restart: {body}");
    }
    let (status, _) = ks.validate(&service, &system).await?;
    assert_eq!(status, 200);

    // The real OpenStack CLI against this Keystone.
    let t = Instant::now();
    let out = ks
        .openstack("alice", keystone::ALICE_PASSWORD, DEMO_PROJECT)
        .args(["token", "issue", "-f", "json"])
        .output()?;
    assert!(
        out.status.success(),
        "openstack token issue: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let issued: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(
        issued["project_id"].as_str(),
        Some(ks.project_id(DEMO_PROJECT)?),
        "{issued}"
    );
    assert_eq!(
        issued["user_id"].as_str(),
        Some(ks.user_id("alice")?),
        "{issued}"
    );
    let cli_token = issued["id"].as_str().ok_or("no token id")?.to_string();
    let (status, body) = ks.validate(&service, &cli_token).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(roles(&body), set(&["member", "reader"]));
    eprintln!("keystone: openstack token issue in {:.1?}", t.elapsed());

    let out = ks
        .openstack("alice", keystone::ALICE_PASSWORD, DEMO_PROJECT)
        .args(["catalog", "show", "placement", "-f", "json"])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("http://127.0.0.1:1/placement") && !text.contains("placement-old"),
        "placement endpoints in the catalog: {text}"
    );

    let pgid = ks.pid().ok_or("uWSGI not running")?;
    let t = Instant::now();
    drop(ks);
    eprintln!(
        "keystone: dropped in {:.0?}; whole test {:.1?}",
        t.elapsed(),
        t0.elapsed()
    );
    let left = group_processes(pgid);
    assert!(left.is_empty(), "processes left in uWSGI's group: {left:?}");
    Ok(())
}
