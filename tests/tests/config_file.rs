//! `placementd --config-file`: the placement.conf files kolla-ansible and openstack-helm
//! render start a real node unchanged; a Keystone that cannot be reached does not stop a node
//! from starting (it answers 503 until Keystone answers); bad files stop it at once with a
//! message naming file, line, section, option or rule. No Keystone runs here: every
//! `auth_url` is a closed loopback port, and the kolla/helm files run with
//! `--auth-strategy noauth2` (their Keystone addresses are not on this machine).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use placementd_tests::{free_port, placementd_bin, Client, Node, Result};

fn fixtures() -> PathBuf {
    placement_testkit::crate_dir!().join("fixtures/placement-conf")
}

/// Copies a fixture into `dir` (with an empty `policy.yaml` beside it, as kolla-ansible
/// installs one when it renders `policy_file`).
fn install(fixture: &str, dir: &Path) -> Result<PathBuf> {
    let conf = dir.join("placement.conf");
    std::fs::copy(fixtures().join(fixture), &conf)?;
    std::fs::write(dir.join("policy.yaml"), "{}\n")?;
    Ok(conf)
}

#[tokio::test]
async fn the_files_kolla_and_helm_render_start_a_node_unchanged() -> Result<()> {
    for fixture in ["kolla.conf", "helm.conf"] {
        let dir = tempfile::tempdir()?;
        let conf = install(fixture, dir.path())?;
        let log = dir.path().join("placement-api.log");
        let mut node = Node::start().await?;
        let (conf_s, log_s) = (conf.display().to_string(), log.display().to_string());
        // kolla's log_file is /var/log/kolla/...: moved to the temp dir by the flag.
        node.set_more_args(&[
            "--config-file",
            &conf_s,
            "--auth-strategy",
            "noauth2",
            "--log-file",
            &log_s,
        ]);
        node.restart().await?;
        node.client()?
            .get("/resource_providers")
            .await?
            .expect(200)?;
        let text = placementd_tests::log_with(&log, "accepts but does not use").await;
        assert!(
            text.contains("accepts but does not use") && text.contains("placement_database"),
            "{fixture}: the ignored options are listed once:\n{text}"
        );
    }
    Ok(())
}

/// A config file for Keystone at a loopback port nothing listens on.
fn unreachable_keystone_conf(dir: &Path) -> Result<PathBuf> {
    let port = free_port()?;
    let conf = dir.join("placement.conf");
    std::fs::write(
        &conf,
        format!(
            "[api]\nauth_strategy = keystone\n\n[keystone_authtoken]\n\
             auth_url = http://127.0.0.1:{port}\nauth_type = password\nusername = placement\n\
             password = secret\nuser_domain_name = Default\nproject_name = service\n\
             project_domain_name = Default\nhttp_connect_timeout = 1\n\
             http_request_max_retries = 1\n"
        ),
    )?;
    Ok(conf)
}

#[tokio::test]
async fn a_node_starts_without_keystone_and_answers_503_with_a_clear_log() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let conf = unreachable_keystone_conf(dir.path())?;
    let mut node = Node::start().await?;
    node.set_more_args(&["--config-file", &conf.display().to_string()]);
    node.restart().await?;
    let client = node.client()?;
    let root = client.with_token(None).get("/").await?;
    assert_eq!(root.status, 200, "GET / needs neither a token nor Keystone");
    let r = client
        .with_token(Some("gAAAAABsome-token"))
        .get("/resource_providers")
        .await?;
    assert_eq!(r.status, 503, "{}", r.text);
    let r = client.with_token(None).get("/resource_providers").await?;
    assert_eq!(
        r.status, 401,
        "no token is refused before Keystone is asked"
    );
    assert!(r
        .header("www-authenticate")
        .is_some_and(|h| h.starts_with("Keystone uri=\"http://127.0.0.1:")));
    let log = node.log_with("cannot authenticate to Keystone").await;
    assert!(
        log.contains("cannot authenticate to Keystone"),
        "the log says why:\n{log}"
    );
    Ok(())
}

/// Runs placementd with `args` and waits (bounded) for it to exit; its status and stderr.
fn run_to_exit(args: &[&str]) -> Result<(i32, String)> {
    let data = tempfile::tempdir()?;
    let mut child = Command::new(placementd_bin()?)
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path().join("data"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait()? {
            let mut stderr = String::new();
            if let Some(mut e) = child.stderr.take() {
                std::io::Read::read_to_string(&mut e, &mut stderr)?;
            }
            return Ok((status.code().unwrap_or(-1), stderr));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("placementd {args:?} still runs after 20 s").into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn bad_config_and_policy_files_stop_the_node_with_a_message_naming_the_mistake() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let write = |name: &str, text: &str| -> Result<String> {
        let p = dir.path().join(name);
        std::fs::write(&p, text)?;
        Ok(p.display().to_string())
    };
    let noauth = "[api]\nauth_strategy = noauth2\n";
    let cases = [
        (
            write("garbage.conf", "this is not ini\n")?,
            vec!["garbage.conf:1"],
        ),
        (
            write(
                "typo.conf",
                "[api]\nauth_strategy = keystone\n[keystone_authtoken]\nauth_typ = password\n",
            )?,
            vec!["typo.conf:4", "[keystone_authtoken] auth_typ", "auth_type"],
        ),
        (
            write("section.conf", "[keystone_authtokn]\nauth_url = x\n")?,
            vec!["section.conf:1", "keystone_authtokn", "[keystone_authtoken]"],
        ),
        (
            write("strategy.conf", "[api]\nauth_strategy = ldap\n")?,
            vec!["strategy.conf:2", "auth_strategy"],
        ),
        (
            write(
                "missing.conf",
                "[api]\nauth_strategy = keystone\n[keystone_authtoken]\nauth_url = http://127.0.0.1:1\n",
            )?,
            vec!["missing.conf", "[keystone_authtoken] username"],
        ),
        (
            write(
                "badpolicy.conf",
                &format!("{noauth}[oslo_policy]\npolicy_file = bad-policy.yaml\n"),
            )?,
            vec!["bad-policy.yaml", "placement:resource_providers:list"],
        ),
        (
            write(
                "unknownrule.conf",
                &format!("{noauth}[oslo_policy]\npolicy_file = unknown-rule.yaml\n"),
            )?,
            vec!["unknown-rule.yaml", "placement:resource_provider:list"],
        ),
        (
            write(
                "nopolicy.conf",
                &format!("{noauth}[oslo_policy]\npolicy_file = does-not-exist.yaml\n"),
            )?,
            vec!["does-not-exist.yaml"],
        ),
    ];
    write(
        "bad-policy.yaml",
        "\"placement:resource_providers:list\": \"role:admin or (role:member\"\n",
    )?;
    write(
        "unknown-rule.yaml",
        "\"placement:resource_provider:list\": \"role:member\"\n",
    )?;
    for (conf, wanted) in cases {
        let (code, stderr) = run_to_exit(&["--config-file", &conf])?;
        assert_eq!(code, 1, "{conf}: exit status 1, stderr:\n{stderr}");
        for w in wanted {
            assert!(stderr.contains(w), "{conf}: {w:?} in:\n{stderr}");
        }
        assert!(!stderr.contains("panicked"), "{conf}: {stderr}");
    }
    Ok(())
}

#[tokio::test]
async fn flags_override_the_file_and_the_file_overrides_the_defaults() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let conf = dir.path().join("placement.conf");
    // The file asks for a port; the flag Node::start passes (--listen) must win, so the
    // node still answers where the test expects it. The file's max_allocation_candidates
    // applies (no flag sets it).
    std::fs::write(
        &conf,
        format!(
            "[api]\nauth_strategy = noauth2\n[placementd]\nlisten = 127.0.0.1:{port}\n\
             [placement]\nmax_allocation_candidates = 1\n"
        ),
    )?;
    let mut node = Node::start().await?;
    node.set_more_args(&["--config-file", &conf.display().to_string()]);
    node.restart().await?;
    let client: Client = node.client()?;
    for name in ["a", "b"] {
        let rp = client.create_provider(name).await?;
        client
            .put(
                &format!("/resource_providers/{rp}/inventories"),
                &serde_json::json!({
                    "inventories": {"VCPU": {"total": 8}},
                    "resource_provider_generation": 0,
                }),
            )
            .await?
            .expect(200)?;
    }
    let r = client
        .get("/allocation_candidates?resources=VCPU:1")
        .await?
        .expect(200)?;
    assert_eq!(
        r.body["allocation_requests"].as_array().map(Vec::len),
        Some(1),
        "[placement] max_allocation_candidates = 1 from the file: {}",
        r.text
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the file's listen address lost to the flag"
    );
    Ok(())
}

#[tokio::test]
async fn a_changed_policy_file_takes_effect_on_sighup_and_a_broken_one_changes_nothing(
) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, "{}\n")?;
    let conf = dir.path().join("placement.conf");
    std::fs::write(
        &conf,
        "[api]\nauth_strategy = noauth2\n[oslo_policy]\npolicy_file = policy.yaml\n",
    )?;
    let mut node = Node::start().await?;
    node.set_more_args(&["--config-file", &conf.display().to_string()]);
    node.restart().await?;
    let member = node.client()?.with_token(Some("alice:p1"));
    let list = || {
        member.request_with_headers(
            reqwest::Method::GET,
            "/resource_providers",
            &[("x-roles", "member,reader")],
        )
    };
    assert_eq!(list().await?.status, 403, "the defaults: members may not");
    let rule = "placement:resource_providers:list";
    let sighup = |pid: u32| {
        Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
    };
    std::fs::write(&policy, format!("\"{rule}\": \"role:member\"\n"))?;
    sighup(node.pid().ok_or("node runs")?)?;
    let t0 = Instant::now();
    while list().await?.status != 200 {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the new rule applies"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    std::fs::write(&policy, format!("\"{rule}\": \"role:member or (\"\n"))?;
    sighup(node.pid().ok_or("node runs")?)?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        list().await?.status,
        200,
        "a broken file keeps the last good policy"
    );
    assert!(node
        .log_with("policy file not reloaded")
        .await
        .contains("policy file not reloaded"));
    Ok(())
}
