//! placementd behind a real Keystone: keystone 30.0.0 under uWSGI (`tests/src/keystone.rs`)
//! in front of a real 3-node cluster (mutual TLS between nodes, HTTPS API) configured by a
//! placement.conf with `auth_strategy = keystone`, the new policy defaults and a policy file;
//! then the real `openstack` CLI (python-openstackclient + osc-placement) through the
//! Keystone catalog.
//!
//! One test walks the whole story, because a Keystone takes ~30 s to set up: each step says
//! what it checks. Needs `KEYSTONE_VENV` (`scripts/keystone-venv`); `scripts/test` runs it.

use std::path::Path;
use std::time::{Duration, Instant};

use placementd_tests::keystone::{self, Keystone};
use placementd_tests::{Client, Cluster, Resp, Result};
use serde_json::{json, Value};

/// Short, so that revocation shows within the test; the cache still serves repeated calls.
const TOKEN_CACHE_TIME: u64 = 4;

fn placement_conf(ks: &Keystone, dir: &Path) -> Result<String> {
    std::fs::write(
        dir.join("policy.yaml"),
        "# members may list traits (a rule opened to one more role)\n\
         \"placement:traits:list\": \"role:admin or role:service or role:member\"\n",
    )?;
    let (user, password, project) = Keystone::placement_service_user();
    let conf = dir.join("placement.conf");
    std::fs::write(
        &conf,
        format!(
            "[DEFAULT]\ndebug = false\n\n\
             [api]\nauth_strategy = keystone\n\n\
             [keystone_authtoken]\n\
             www_authenticate_uri = {www}\n\
             auth_url = {auth}\n\
             auth_type = password\n\
             username = {user}\npassword = {password}\nproject_name = {project}\n\
             user_domain_name = Default\nproject_domain_name = Default\n\
             region_name = {region}\ninterface = public\n\
             http_connect_timeout = 2\nhttp_request_max_retries = 1\n\
             token_cache_time = {TOKEN_CACHE_TIME}\n\
             service_token_roles = service\nservice_token_roles_required = true\n\
             memcached_servers = 127.0.0.1:1\n\n\
             [placement_database]\nconnection = mysql+pymysql://placement:x@127.0.0.1/placement\n\n\
             [oslo_policy]\npolicy_file = policy.yaml\nenforce_new_defaults = true\n",
            www = ks.v3_url(),
            auth = ks.url(),
            region = keystone::REGION,
        ),
    )?;
    Ok(conf.display().to_string())
}

/// Prints and checks one step.
fn step(what: &str, r: &Resp, want: u16) -> Result<()> {
    eprintln!("  {what}: HTTP {}", r.status);
    if r.status != want {
        return Err(format!("{what}: expected {want}, got {}: {}", r.status, r.text).into());
    }
    Ok(())
}

/// Polls `f` until it answers `want` or `timeout` passes; how long it took.
async fn until_status<F, Fut>(timeout: Duration, want: u16, mut f: F) -> Result<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Resp>>,
{
    let t0 = Instant::now();
    loop {
        let r = f().await?;
        if r.status == want {
            return Ok(t0.elapsed());
        }
        if t0.elapsed() > timeout {
            return Err(format!(
                "still HTTP {} after {timeout:?} (wanted {want}): {}",
                r.status, r.text
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs a Keystone venv (scripts/keystone-venv); scripts/test runs it"]
async fn a_three_node_cluster_behind_a_real_keystone() -> Result<()> {
    let venv = keystone::venv_from_env()?;
    let mut ks = Keystone::start(&venv).await?;
    eprintln!("keystone ready at {} in {:?}", ks.url(), ks.startup_time());
    let dir = tempfile::tempdir()?;
    let conf = placement_conf(&ks, dir.path())?;
    let t0 = Instant::now();
    let cluster = Cluster::start_with(3, &["--config-file", &conf]).await?;
    eprintln!("3-node cluster ready in {:?}", t0.elapsed());
    // Clients talk to a follower where it matters: its writes are forwarded to the leader,
    // which must not validate the token again.
    let leader = cluster.leader(Duration::from_secs(10)).await?;
    let follower = (leader + 1) % 3;
    let node = &cluster.nodes[follower];
    let api: Client = node.client()?;
    let demo = ks.project_id(keystone::DEMO_PROJECT)?.to_string();
    let other_project = ks.project_id(keystone::SERVICE_PROJECT)?.to_string();

    eprintln!("authentication:");
    step(
        "GET / without a token",
        &api.with_token(None).get("/").await?,
        200,
    )?;
    let r = api.with_token(None).get("/resource_providers").await?;
    step("no token", &r, 401)?;
    let www = r.header("www-authenticate").unwrap_or_default().to_string();
    assert_eq!(www, format!("Keystone uri=\"{}\"", ks.v3_url()));
    assert_eq!(
        r.body["error"]["code"], 401,
        "keystonemiddleware's body: {}",
        r.text
    );
    let r = api
        .with_token(Some("not-a-token"))
        .get("/resource_providers")
        .await?;
    step("a token Keystone does not know", &r, 401)?;
    assert!(r.header("www-authenticate").is_some());
    // noauth2's trust in headers is gone: the admin token of noauth2 is no Keystone token.
    let r = api.get("/resource_providers").await?;
    step("noauth2's `admin` token", &r, 401)?;

    eprintln!("roles under the new policy defaults:");
    let carol = ks.user_token("carol", keystone::DEMO_PROJECT).await?;
    let admin = api.with_token(Some(&carol));
    step(
        "project admin lists providers",
        &admin.get("/resource_providers").await?,
        200,
    )?;
    let rp = uuid::Uuid::new_v4().to_string();
    let r = admin
        .post("/resource_providers", &json!({"name": "cn1", "uuid": rp}))
        .await?;
    step("project admin creates a provider on a follower", &r, 200)?;
    let r = cluster.nodes[leader]
        .client()?
        .with_token(Some(&carol))
        .get(&format!("/resource_providers/{rp}"))
        .await?;
    step("the leader has it", &r, 200)?;
    let alice = ks.user_token("alice", keystone::DEMO_PROJECT).await?;
    let member = api.with_token(Some(&alice));
    step(
        "member lists providers",
        &member.get("/resource_providers").await?,
        403,
    )?;
    step(
        "member creates a provider",
        &member
            .post("/resource_providers", &json!({"name": "nope"}))
            .await?,
        403,
    )?;
    step(
        "member lists traits (opened by the policy file)",
        &member.get("/traits").await?,
        200,
    )?;
    let bob = ks.user_token("bob", keystone::DEMO_PROJECT).await?;
    let reader = api.with_token(Some(&bob));
    step(
        "reader reads its project's usages",
        &reader.get(&format!("/usages?project_id={demo}")).await?,
        200,
    )?;
    step(
        "reader reads another project's usages",
        &reader
            .get(&format!("/usages?project_id={other_project}"))
            .await?,
        403,
    )?;
    step(
        "reader writes",
        &reader
            .put(
                &format!("/resource_providers/{rp}/traits"),
                &json!({"traits": [], "resource_provider_generation": 0}),
            )
            .await?,
        403,
    )?;
    // Headers a client sends about itself are ignored.
    let forged = reader
        .request_with_headers(
            reqwest::Method::GET,
            "/resource_providers",
            &[("x-roles", "admin"), ("x-project-id", "whatever")],
        )
        .await?;
    step("reader claiming admin in X-Roles", &forged, 403)?;
    let system = ks.system_token("admin").await?;
    step(
        "system-scoped admin (enforce_scope)",
        &api.with_token(Some(&system))
            .get("/resource_providers")
            .await?,
        403,
    )?;

    eprintln!("service tokens:");
    let (svc_user, _, svc_project) = Keystone::placement_service_user();
    let service = ks.user_token(svc_user, svc_project).await?;
    let r = admin
        .request_with_headers(
            reqwest::Method::GET,
            "/resource_providers",
            &[("x-service-token", service.as_str())],
        )
        .await?;
    step(
        "user token + a service token with the service role",
        &r,
        200,
    )?;
    let r = admin
        .request_with_headers(
            reqwest::Method::GET,
            "/resource_providers",
            &[("x-service-token", alice.as_str())],
        )
        .await?;
    step(
        "user token + a service token without it (required)",
        &r,
        401,
    )?;
    let r = admin
        .request_with_headers(
            reqwest::Method::GET,
            "/resource_providers",
            &[("x-service-token", "garbage")],
        )
        .await?;
    step("user token + an invalid service token", &r, 401)?;

    eprintln!("revocation (token_cache_time = {TOKEN_CACHE_TIME} s):");
    let revoked = ks.user_token("carol", keystone::DEMO_PROJECT).await?;
    let client = api.with_token(Some(&revoked));
    step(
        "a fresh token, used once (now cached)",
        &client.get("/resource_providers").await?,
        200,
    )?;
    ks.revoke(&revoked).await?;
    let took = until_status(Duration::from_secs(TOKEN_CACHE_TIME + 10), 401, || {
        client.get("/resource_providers")
    })
    .await?;
    eprintln!("  revoked token refused after {took:?}");
    assert!(took <= Duration::from_secs(TOKEN_CACHE_TIME + 3));

    eprintln!("Keystone down and back:");
    let unused = ks.user_token("carol", keystone::DEMO_PROJECT).await?;
    ks.stop()?;
    let r = api
        .with_token(Some(&unused))
        .get("/resource_providers")
        .await?;
    step("a token placementd has not seen, Keystone stopped", &r, 503)?;
    ks.restart().await?;
    let again = api.with_token(Some(&unused));
    let took = until_status(Duration::from_secs(30), 200, || {
        again.get("/resource_providers")
    })
    .await?;
    eprintln!("  served again {took:?} after Keystone answered, no restart of placementd");

    eprintln!("the openstack CLI through the catalog:");
    openstack_session(&ks, &cluster, &carol, &demo).await?;
    Ok(())
}

/// The real `openstack` CLI as the project admin `carol`, against the endpoint registered
/// in the catalog (a follower of the cluster, over HTTPS with the cluster's CA).
async fn openstack_session(
    ks: &Keystone,
    cluster: &Cluster,
    token: &str,
    demo: &str,
) -> Result<()> {
    let node = &cluster.nodes[1];
    ks.register_placement_endpoint(&node.url()).await?;
    let ca = node.pki().ok_or("the cluster runs TLS")?.ca();
    let osc = |args: &[&str]| -> Result<String> {
        let password = Keystone::password("carol")?;
        let out = ks
            .openstack("carol", password, keystone::DEMO_PROJECT)
            .env("OS_CACERT", &ca)
            .arg("--os-placement-api-version")
            .arg("1.39")
            .args(args)
            .output()?;
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        eprintln!("  $ openstack {}\n{}", args.join(" "), indent(&stdout));
        if !out.status.success() {
            return Err(format!(
                "openstack {} failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        Ok(stdout)
    };
    let created: Value = serde_json::from_str(&osc(&[
        "resource",
        "provider",
        "create",
        "osc-compute-1",
        "-f",
        "json",
    ])?)?;
    let rp = created["uuid"].as_str().ok_or("no uuid")?.to_string();
    let listed: Value =
        serde_json::from_str(&osc(&["resource", "provider", "list", "-f", "json"])?)?;
    assert!(listed
        .as_array()
        .is_some_and(|l| l.iter().any(|p| p["uuid"] == rp.as_str())));
    osc(&[
        "resource",
        "provider",
        "inventory",
        "set",
        &rp,
        "--resource",
        "VCPU=16",
        "--resource",
        "MEMORY_MB=32768",
        "-f",
        "json",
    ])?;
    let consumer = uuid::Uuid::new_v4().to_string();
    let user = ks.user_id("carol")?.to_string();
    osc(&[
        "resource",
        "provider",
        "allocation",
        "set",
        &consumer,
        "--allocation",
        &format!("rp={rp},VCPU=2,MEMORY_MB=2048"),
        "--project-id",
        demo,
        "--user-id",
        &user,
        "--consumer-type",
        "INSTANCE",
        "-f",
        "json",
    ])?;
    let usages: Value = serde_json::from_str(&osc(&[
        "resource", "provider", "usage", "show", &rp, "-f", "json",
    ])?)?;
    let vcpu = usages
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["resource_class"] == "VCPU"))
        .map(|r| r["usage"].clone());
    assert_eq!(vcpu, Some(json!(2)), "{usages}");
    // The same allocation, read over the API by another node.
    let r = cluster.nodes[2]
        .client()?
        .with_token(Some(token))
        .get(&format!("/allocations/{consumer}"))
        .await?
        .expect(200)?;
    assert_eq!(r.body["allocations"][&rp]["resources"]["VCPU"], 2);
    Ok(())
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}\n"))
        .collect::<String>()
}
