//! A real Keystone for the integration tests: Keystone 30 from PyPI, SQLite, under uWSGI.
//!
//! [`Keystone::start`] takes the venv `scripts/keystone-venv` makes (tests find it in
//! `$KEYSTONE_VENV`, see [`venv_from_env`]) and, in a fresh temporary directory:
//!
//! 1. writes `keystone.conf` (SQLite database, fernet token / receipt and credential key
//!    repositories, Keystone's log in `keystone.log`, cheap bcrypt rounds so that
//!    password authentication costs milliseconds);
//! 2. runs `keystone-manage db_sync`, `fernet_setup` and `credential_setup` (in parallel:
//!    the key setups do not touch the database), then `bootstrap` (admin user, project and
//!    roles admin / manager / member / reader / service, the identity service with its
//!    public, internal and admin endpoints on `http://127.0.0.1:PORT/v3` in `RegionOne`);
//! 3. runs `uwsgi --http-socket 127.0.0.1:PORT --module keystone.wsgi.api:application` (one
//!    process with 8 threads and Keystone's in-memory cache, token validation and
//!    revocation uncached; its own process group) and waits until `GET /v3` answers 200
//!    ([`READY_TIMEOUT`]);
//! 4. creates, through the REST API as the bootstrap admin (system scope): projects
//!    [`SERVICE_PROJECT`] and [`DEMO_PROJECT`], the users below, and the `placement` service
//!    (type `placement`; its endpoints come later with [`Keystone::register_placement_endpoint`],
//!    once the placement URL is known).
//!
//! | user        | password               | roles                                          |
//! |-------------|------------------------|------------------------------------------------|
//! | `admin`     | [`ADMIN_PASSWORD`]     | admin on project `admin` and on the system     |
//! | `placement` | [`PLACEMENT_PASSWORD`] | admin + service on project `service`           |
//! | `alice`     | [`ALICE_PASSWORD`]     | member on `demo` (implies reader)              |
//! | `bob`       | [`BOB_PASSWORD`]       | reader on `demo`                               |
//! | `carol`     | [`CAROL_PASSWORD`]     | admin on `demo` (implies manager, member, reader) |
//!
//! Keystone's implied roles are expanded in tokens: alice's token lists `member` and
//! `reader`, carol's `admin`, `manager`, `member` and `reader`.
//!
//! uWSGI answers every request with `Connection: close` (its plain `--http-socket` closes
//! the connection after each response anyway, without saying so; the header keeps pooling
//! clients from reusing a dead connection).
//!
//! [`Keystone::stop`] ends uWSGI (master and workers, all reaped: nothing is left behind,
//! not even a zombie) and [`Keystone::restart`] starts it again on the same port with the
//! same database and keys, so tokens issued before still validate: that is how a test
//! simulates "Keystone unreachable" and "Keystone back". Dropping the fixture stops it.
//!
//! The port is a free one picked before the setup (the catalog needs it); if another
//! process takes it before uWSGI binds, `start` moves to a new one. [`Keystone::restart`]
//! cannot move (placementd is configured with the URL), so a port taken while Keystone is
//! stopped fails the restart. Everything listens on 127.0.0.1 only. Keystone's files and
//! logs stay in the temp dir ([`Keystone::dir`]) until the fixture is dropped; fixture
//! errors carry the log tails.
//!
//! Costs on 2 busy cores: `start` 15-25 s (mostly Python start-up of the four
//! `keystone-manage` runs and of Keystone itself), a password token ~90 ms, a validation
//! 15-20 ms, `stop` 1 s, `restart` 2-5 s.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::{free_port, wait_until_ok, NotAnswering, Result};

/// Password of the bootstrap `admin` user.
pub const ADMIN_PASSWORD: &str = "keystone-admin-secret";
/// Password of the `placement` service user.
pub const PLACEMENT_PASSWORD: &str = "placement-secret";
/// Password of `alice` (member of [`DEMO_PROJECT`]).
pub const ALICE_PASSWORD: &str = "alice-secret";
/// Password of `bob` (reader of [`DEMO_PROJECT`]).
pub const BOB_PASSWORD: &str = "bob-secret";
/// Password of `carol` (admin of [`DEMO_PROJECT`]).
pub const CAROL_PASSWORD: &str = "carol-secret";

/// The project of the bootstrap admin.
pub const ADMIN_PROJECT: &str = "admin";
/// The project of the service users (`placement`).
pub const SERVICE_PROJECT: &str = "service";
/// The tenant project the test users work in.
pub const DEMO_PROJECT: &str = "demo";
/// The only region.
pub const REGION: &str = "RegionOne";
/// The domain every user and project is in (`default`, named `Default`).
pub const DOMAIN_ID: &str = "default";

/// Every user the fixture has, with its password.
pub const USERS: &[(&str, &str)] = &[
    ("admin", ADMIN_PASSWORD),
    ("placement", PLACEMENT_PASSWORD),
    ("alice", ALICE_PASSWORD),
    ("bob", BOB_PASSWORD),
    ("carol", CAROL_PASSWORD),
];

/// The project role assignments the fixture makes (`bootstrap` makes admin's).
const ASSIGNMENTS: &[(&str, &str, &str)] = &[
    ("placement", SERVICE_PROJECT, "admin"),
    ("placement", SERVICE_PROJECT, "service"),
    ("alice", DEMO_PROJECT, "member"),
    ("bob", DEMO_PROJECT, "reader"),
    ("carol", DEMO_PROJECT, "admin"),
];

/// How long uWSGI may take until `GET /v3` answers (loading Keystone takes 3-10 s; CI
/// machines are slow and shared).
pub const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// Upper bound of one `keystone-manage` command (each takes 2-8 s).
const MANAGE_TIMEOUT: Duration = Duration::from_secs(180);
/// Per-request timeout of the fixture's own HTTP client.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long [`Keystone::stop`] waits for the uWSGI master to exit before it kills the
/// whole process group.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(50);
/// Attempts at starting uWSGI when the chosen port was taken in the meantime.
const START_ATTEMPTS: usize = 3;
/// Bytes of each log attached to fixture errors.
const LOG_TAIL_BYTES: u64 = 3000;
/// uWSGI: one process with 8 threads, so concurrent validations (several placementd nodes)
/// do not queue behind each other. One process because Keystone's cache is in memory:
/// with two, a role change or a disabled user made through one process would stay
/// invisible to the other until the cache entry expires (without the cache, a validation
/// costs 50x more).
const UWSGI_PROCESSES: u32 = 1;
const UWSGI_THREADS: u32 = 8;

/// The Keystone venv of `$KEYSTONE_VENV` (made by `scripts/keystone-venv`); an error that
/// says how to make one when the variable is unset or the venv lacks Keystone or uWSGI.
pub fn venv_from_env() -> Result<PathBuf> {
    let Some(venv) = std::env::var_os("KEYSTONE_VENV").filter(|v| !v.is_empty()) else {
        return Err("KEYSTONE_VENV is not set: make the venv with \
             `KEYSTONE_VENV=$(scripts/keystone-venv | tail -n 1)` and export it"
            .into());
    };
    let venv = PathBuf::from(venv);
    for bin in ["keystone-manage", "uwsgi", "openstack"] {
        if !venv.join("bin").join(bin).is_file() {
            return Err(format!(
                "KEYSTONE_VENV={} has no bin/{bin}; (re)make it with scripts/keystone-venv",
                venv.display()
            )
            .into());
        }
    }
    Ok(venv)
}

/// A running Keystone (see the module doc).
pub struct Keystone {
    venv: PathBuf,
    port: u16,
    /// Owns config, database, keys and logs; removed on drop.
    dir: tempfile::TempDir,
    /// The uWSGI master (leader of its own process group), if running.
    child: Option<Child>,
    http: reqwest::Client,
    /// A system-scoped token of `admin` (fernet: survives restarts).
    admin_token: String,
    /// Project and user ids by name.
    projects: HashMap<String, String>,
    users: HashMap<String, String>,
    /// Role ids by name.
    roles: HashMap<String, String>,
    /// The id of the `placement` service in the catalog.
    placement_service_id: String,
    /// How long [`Keystone::start`] took.
    startup: Duration,
}

impl Keystone {
    /// Sets up and starts a fresh Keystone from the venv `venv` and creates the projects,
    /// users and services of the module doc. Takes ~15-30 s on 2 cores.
    pub async fn start(venv: &Path) -> Result<Keystone> {
        let t0 = Instant::now();
        let venv = std::fs::canonicalize(venv)
            .map_err(|e| format!("Keystone venv {}: {e}", venv.display()))?;
        let dir = tempfile::Builder::new()
            .prefix("placementd-keystone-")
            .tempdir()?;
        let port = free_port()?;
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .pool_max_idle_per_host(0)
            .build()?;
        let mut ks = Keystone {
            venv,
            port,
            dir,
            child: None,
            http,
            admin_token: String::new(),
            projects: HashMap::new(),
            users: HashMap::new(),
            roles: HashMap::new(),
            placement_service_id: String::new(),
            startup: Duration::ZERO,
        };
        ks.write_config()?;
        ks.manage_setup().await?;
        let mut attempt = 1;
        loop {
            ks.spawn()?;
            match ks.wait_ready().await {
                Ok(()) => break,
                // Another process took the free port in the meantime: a new one (the
                // catalog's identity endpoints move with it).
                Err(_) if attempt < START_ATTEMPTS && ks.port_was_taken() => {
                    attempt += 1;
                    ks.port = free_port()?;
                    ks.bootstrap().await?;
                }
                Err(e) => return Err(e),
            }
        }
        ks.populate().await?;
        ks.startup = t0.elapsed();
        Ok(ks)
    }

    /// `http://127.0.0.1:PORT` (what a `[keystone_authtoken] www_authenticate_uri` names).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT/v3` (the identity endpoint in the catalog, `OS_AUTH_URL`).
    pub fn v3_url(&self) -> String {
        format!("{}/v3", self.url())
    }

    /// The port uWSGI listens on (kept across [`Keystone::restart`]).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The temp dir with `keystone.conf`, `keystone.db`, the key repositories and the logs
    /// (`keystone.log`, `uwsgi.log`, `keystone-manage.log`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The venv Keystone runs from.
    pub fn venv(&self) -> &Path {
        &self.venv
    }

    /// How long [`Keystone::start`] took (setup, uWSGI start, users and projects).
    pub fn startup_time(&self) -> Duration {
        self.startup
    }

    /// Whether uWSGI runs (not stopped).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The uWSGI master's pid, which is also its process group id, if running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// A system-scoped token of the bootstrap `admin` (issued at start; still valid after
    /// restarts).
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// The password of one of the fixture's [`USERS`].
    pub fn password(user: &str) -> Result<&'static str> {
        USERS
            .iter()
            .find(|(u, _)| *u == user)
            .map(|(_, p)| *p)
            .ok_or_else(|| format!("the Keystone fixture has no user {user:?}").into())
    }

    /// `(name, password, project)` of the service user placementd validates tokens with
    /// (roles admin and service on project `service`).
    pub fn placement_service_user() -> (&'static str, &'static str, &'static str) {
        ("placement", PLACEMENT_PASSWORD, SERVICE_PROJECT)
    }

    /// The id of project `name` (`admin`, `service`, `demo`).
    pub fn project_id(&self, name: &str) -> Result<&str> {
        self.projects
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| format!("the Keystone fixture has no project {name:?}").into())
    }

    /// The id of user `name` (one of [`USERS`]).
    pub fn user_id(&self, name: &str) -> Result<&str> {
        self.users
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| format!("the Keystone fixture has no user {name:?}").into())
    }

    /// The id of role `name` (`admin`, `manager`, `member`, `reader`, `service`).
    pub fn role_id(&self, name: &str) -> Result<&str> {
        self.roles
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| format!("the Keystone fixture has no role {name:?}").into())
    }

    /// A project-scoped token (`POST /v3/auth/tokens`, password method, user and project
    /// in the `Default` domain, no catalog in the response).
    pub async fn token(&self, user: &str, password: &str, project: &str) -> Result<String> {
        self.issue(
            user,
            password,
            json!({"project": {"name": project, "domain": {"id": DOMAIN_ID}}}),
        )
        .await
    }

    /// A project-scoped token of one of the fixture's [`USERS`] (its password looked up).
    pub async fn user_token(&self, user: &str, project: &str) -> Result<String> {
        self.token(user, Keystone::password(user)?, project).await
    }

    /// A system-scoped (`{"system": {"all": true}}`) token of one of the fixture's
    /// [`USERS`]; only `admin` has a role on the system.
    pub async fn system_token(&self, user: &str) -> Result<String> {
        self.issue(
            user,
            Keystone::password(user)?,
            json!({"system": {"all": true}}),
        )
        .await
    }

    /// An unscoped token (no roles; Keystone validates it, placement must refuse it).
    pub async fn unscoped_token(&self, user: &str, password: &str) -> Result<String> {
        self.issue(user, password, Value::Null).await
    }

    async fn issue(&self, user: &str, password: &str, scope: Value) -> Result<String> {
        let mut auth = json!({"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": DOMAIN_ID}, "password": password}}}});
        if !scope.is_null() {
            auth["scope"] = scope;
        }
        let resp = self
            .http
            .post(format!("{}/auth/tokens?nocatalog", self.v3_url()))
            .json(&json!({ "auth": auth }))
            .send()
            .await?;
        let status = resp.status().as_u16();
        let token = resp
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = resp.text().await?;
        match (status, token) {
            (201, Some(t)) => Ok(t),
            _ => Err(format!("token for {user}: HTTP {status}: {text}").into()),
        }
    }

    /// `GET /v3/auth/tokens` with `X-Auth-Token: auth_token` and `X-Subject-Token: subject`:
    /// `(status, body)` (200 with `{"token": {...}}`, 404 for an invalid or revoked subject,
    /// 401 for an invalid auth token).
    pub async fn validate(&self, auth_token: &str, subject: &str) -> Result<(u16, Value)> {
        let resp = self
            .http
            .get(format!("{}/auth/tokens", self.v3_url()))
            .header("x-auth-token", auth_token)
            .header("x-subject-token", subject)
            .send()
            .await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    /// Revokes `token` (`DELETE /v3/auth/tokens`, as the admin).
    pub async fn revoke(&self, token: &str) -> Result<()> {
        let resp = self
            .http
            .delete(format!("{}/auth/tokens", self.v3_url()))
            .header("x-auth-token", &self.admin_token)
            .header("x-subject-token", token)
            .send()
            .await?;
        let status = resp.status().as_u16();
        if status != 204 {
            return Err(format!("revoke: HTTP {status}: {}", resp.text().await?).into());
        }
        Ok(())
    }

    /// Grants `role` on `project` to `user` (`PUT /v3/projects/{p}/users/{u}/roles/{r}`);
    /// it shows in the user's tokens at the next validation, issued before or after.
    pub async fn grant_role(&self, user: &str, project: &str, role: &str) -> Result<()> {
        let path = self.assignment_path(user, project, role)?;
        self.api(reqwest::Method::PUT, &path, None).await?;
        Ok(())
    }

    /// Removes `role` on `project` from `user` (the reverse of [`Keystone::grant_role`]).
    pub async fn remove_role(&self, user: &str, project: &str, role: &str) -> Result<()> {
        let path = self.assignment_path(user, project, role)?;
        self.api(reqwest::Method::DELETE, &path, None).await?;
        Ok(())
    }

    fn assignment_path(&self, user: &str, project: &str, role: &str) -> Result<String> {
        Ok(format!(
            "/projects/{}/users/{}/roles/{}",
            self.project_id(project)?,
            self.user_id(user)?,
            self.role_id(role)?
        ))
    }

    /// Creates (or, on a later call, repoints) the `placement` service's public and
    /// internal endpoints in `RegionOne` to `url` (e.g. the placement cluster's URL).
    pub async fn register_placement_endpoint(&self, url: &str) -> Result<()> {
        let existing = self
            .api(
                reqwest::Method::GET,
                &format!("/endpoints?service_id={}", self.placement_service_id),
                None,
            )
            .await?;
        for interface in ["public", "internal"] {
            let found = existing["endpoints"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|e| e["interface"] == interface);
            match found {
                Some(e) => {
                    let id = e["id"].as_str().ok_or("endpoint without id")?;
                    self.api(
                        reqwest::Method::PATCH,
                        &format!("/endpoints/{id}"),
                        Some(json!({"endpoint": {"url": url}})),
                    )
                    .await?;
                }
                None => {
                    self.api(
                        reqwest::Method::POST,
                        "/endpoints",
                        Some(json!({"endpoint": {"service_id": self.placement_service_id,
                            "interface": interface, "region_id": REGION, "url": url}})),
                    )
                    .await?;
                }
            }
        }
        Ok(())
    }

    /// The environment that makes the real `openstack` CLI talk to this Keystone as `user`
    /// scoped to `project` (`OS_AUTH_URL`, `OS_USERNAME`, ...).
    pub fn openstack_env(
        &self,
        user: &str,
        password: &str,
        project: &str,
    ) -> Vec<(String, String)> {
        [
            ("OS_AUTH_URL", self.v3_url()),
            ("OS_USERNAME", user.to_string()),
            ("OS_PASSWORD", password.to_string()),
            ("OS_PROJECT_NAME", project.to_string()),
            ("OS_USER_DOMAIN_NAME", "Default".to_string()),
            ("OS_PROJECT_DOMAIN_NAME", "Default".to_string()),
            ("OS_IDENTITY_API_VERSION", "3".to_string()),
            ("OS_INTERFACE", "public".to_string()),
            ("OS_REGION_NAME", REGION.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// The venv's `openstack` binary.
    pub fn openstack_bin(&self) -> PathBuf {
        self.venv.join("bin/openstack")
    }

    /// A `Command` for the venv's `openstack` CLI with [`Keystone::openstack_env`] set and
    /// every other `OS_*` variable of the test's environment removed; stdin is null.
    pub fn openstack(&self, user: &str, password: &str, project: &str) -> Command {
        let mut cmd = Command::new(self.openstack_bin());
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("OS_") {
                cmd.env_remove(k);
            }
        }
        cmd.envs(self.openstack_env(user, password, project))
            .env("PYTHONWARNINGS", "ignore")
            .stdin(Stdio::null());
        cmd
    }

    /// Stops uWSGI: SIGTERM to the master (`--die-on-term`), SIGKILL to its workers (they
    /// would otherwise take seconds to finish), the master reaps them and exits; after
    /// [`STOP_TIMEOUT`] the whole process group is killed. Connections are refused
    /// afterwards. A no-op when stopped.
    pub fn stop(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let pgid = child.id();
        signal(&pgid.to_string(), "TERM");
        // Let the master run its SIGTERM handler (it then stops respawning workers).
        std::thread::sleep(POLL);
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if child.try_wait()?.is_some() {
                break;
            }
            if Instant::now() > deadline {
                signal(&format!("-{pgid}"), "KILL");
                child.wait()?;
                break;
            }
            for pid in group_members(pgid) {
                if pid != pgid {
                    signal(&pid.to_string(), "KILL");
                }
            }
            std::thread::sleep(POLL);
        }
        // Anything of the group still alive (only possible after the fallback above).
        for pid in group_members(pgid) {
            signal(&pid.to_string(), "KILL");
        }
        Ok(())
    }

    /// Starts uWSGI again on the same port with the same database and keys (after
    /// [`Keystone::stop`]; stops it first if it runs) and waits until it answers.
    pub async fn restart(&mut self) -> Result<()> {
        self.stop()?;
        self.spawn()?;
        self.wait_ready().await
    }

    /// The tails of Keystone's logs, for failure messages.
    pub fn log_tail(&self) -> String {
        ["keystone-manage.log", "uwsgi.log", "keystone.log"]
            .iter()
            .map(|name| {
                format!(
                    "--- {name} ---\n{}",
                    tail(&self.dir.path().join(name), LOG_TAIL_BYTES)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn conf_path(&self) -> PathBuf {
        self.dir.path().join("keystone.conf")
    }

    fn write_config(&self) -> Result<()> {
        let d = self.dir.path().display();
        let conf = format!(
            "# Written by tests/src/keystone.rs for one test.
[DEFAULT]
log_file = {d}/keystone.log
use_stderr = false
debug = false

[database]
connection = sqlite:///{d}/keystone.db

[fernet_tokens]
key_repository = {d}/fernet-keys

[fernet_receipts]
key_repository = {d}/fernet-receipts

[credential]
key_repository = {d}/credential-keys

[token]
provider = fernet
# Every validation reads the revocation events from the database: a revoked token is
# invalid at once.
caching = false

[revoke]
caching = false

[cache]
# uWSGI runs one process (see UWSGI_PROCESSES), so this in-memory cache is coherent: Keystone
# invalidates it on every change it makes. Without it a validation costs ~400 SQL queries
# (0.3-0.8 s on 2 cores); with it ~10 ms.
enabled = true
backend = dogpile.cache.memory

[identity]
# bcrypt's minimum cost: password authentication in milliseconds instead of ~0.3 s.
password_hash_rounds = 4

[oslo_messaging_notifications]
driver = noop
"
        );
        std::fs::write(self.conf_path(), conf)?;
        Ok(())
    }

    /// `keystone-manage` with the config file and `args`, output appended to
    /// `keystone-manage.log`; started, not waited for.
    fn manage(&self, args: &[&str]) -> Result<Child> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("keystone-manage.log"))?;
        let bin = self.venv.join("bin/keystone-manage");
        Command::new(&bin)
            .arg("--config-file")
            .arg(self.conf_path())
            .args(args)
            .env("PYTHONWARNINGS", "ignore")
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("spawning {}: {e}", bin.display()).into())
    }

    async fn manage_wait(&self, what: &str, mut child: Child) -> Result<()> {
        let status = wait_child(&mut child, MANAGE_TIMEOUT).await?;
        match status {
            Some(s) if s.success() => Ok(()),
            other => {
                if other.is_none() {
                    let _ = child.kill();
                    let _ = child.wait();
                }
                Err(format!(
                    "keystone-manage {what} failed ({other:?}); logs:\n{}",
                    self.log_tail()
                )
                .into())
            }
        }
    }

    async fn manage_setup(&self) -> Result<()> {
        // Key repositories are owned by the current user; keystone-manage requires the
        // names when run as root, and takes the current user otherwise.
        let owner = match (id_name("-un"), id_name("-gn")) {
            (Some(u), Some(g)) => vec![
                "--keystone-user".to_string(),
                u,
                "--keystone-group".into(),
                g,
            ],
            _ => Vec::new(),
        };
        let with_owner = |cmd: &'static str| -> Vec<&str> {
            std::iter::once(cmd)
                .chain(owner.iter().map(String::as_str))
                .collect()
        };
        let db = self.manage(&["db_sync"])?;
        let fernet = self.manage(&with_owner("fernet_setup"))?;
        let cred = self.manage(&with_owner("credential_setup"))?;
        self.manage_wait("db_sync", db).await?;
        self.manage_wait("fernet_setup", fernet).await?;
        self.manage_wait("credential_setup", cred).await?;
        self.bootstrap().await
    }

    /// `keystone-manage bootstrap` for the current port (again after a port change: it
    /// then updates the identity endpoints' URLs).
    async fn bootstrap(&self) -> Result<()> {
        let url = self.v3_url();
        let boot = self.manage(&[
            "bootstrap",
            "--bootstrap-password",
            ADMIN_PASSWORD,
            "--bootstrap-username",
            "admin",
            "--bootstrap-project-name",
            ADMIN_PROJECT,
            "--bootstrap-role-name",
            "admin",
            "--bootstrap-service-name",
            "keystone",
            "--bootstrap-admin-url",
            &url,
            "--bootstrap-public-url",
            &url,
            "--bootstrap-internal-url",
            &url,
            "--bootstrap-region-id",
            REGION,
        ])?;
        self.manage_wait("bootstrap", boot).await
    }

    fn spawn(&mut self) -> Result<()> {
        use std::os::unix::process::CommandExt;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("uwsgi.log"))?;
        let bin = self.venv.join("bin/uwsgi");
        let child = Command::new(&bin)
            .arg("--http-socket")
            .arg(format!("127.0.0.1:{}", self.port))
            .args(["--module", "keystone.wsgi.api:application"])
            .arg("--master")
            .args(["--processes", &UWSGI_PROCESSES.to_string()])
            .args(["--threads", &UWSGI_THREADS.to_string()])
            // Each worker loads Keystone after the fork (no SQLite handle crosses a fork).
            .arg("--lazy-apps")
            .arg("--single-interpreter")
            // Exit (instead of serving 500s) when Keystone cannot be loaded.
            .arg("--need-app")
            .arg("--die-on-term")
            .args(["--buffer-size", "65535"])
            .args(["--add-header", "Connection: close"])
            .args(["--worker-reload-mercy", "2"])
            .arg("--ignore-sigpipe")
            .arg("--ignore-write-errors")
            .arg("--disable-write-exception")
            .env("OS_KEYSTONE_CONFIG_FILES", self.conf_path())
            .env_remove("OS_KEYSTONE_CONFIG_DIR")
            .env("PYTHONWARNINGS", "ignore")
            .current_dir(self.dir.path())
            // Its own process group: stop() ends master and workers together.
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("spawning {}: {e}", bin.display()))?;
        self.child = Some(child);
        Ok(())
    }

    /// Whether uWSGI exited because its port was in use (from the tail of its log).
    fn port_was_taken(&self) -> bool {
        self.child.is_none()
            && tail(&self.dir.path().join("uwsgi.log"), LOG_TAIL_BYTES)
                .contains("Address already in use")
    }

    /// Polls `GET /v3` until 200; an error with the log tails if uWSGI exits or
    /// [`READY_TIMEOUT`] passes.
    async fn wait_ready(&mut self) -> Result<()> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(0)
            .build()?;
        let url = self.v3_url();
        match wait_until_ok(&http, &url, &mut self.child, READY_TIMEOUT).await? {
            Ok(()) => Ok(()),
            Err(NotAnswering::Exited(status)) => Err(format!(
                "uWSGI (Keystone) on port {} exited with {status} before it answered; \
                 logs:\n{}",
                self.port,
                self.log_tail()
            )
            .into()),
            Err(NotAnswering::TimedOut) => {
                let tail = self.log_tail();
                let _ = self.stop();
                Err(format!(
                    "Keystone on port {} did not answer GET /v3 within {READY_TIMEOUT:?}; \
                     logs:\n{tail}",
                    self.port
                )
                .into())
            }
        }
    }

    /// One identity API call as the admin; the JSON body of a 2xx answer.
    async fn api(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.v3_url()))
            .header("x-auth-token", &self.admin_token);
        if let Some(b) = &body {
            req = req.json(b);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let text = resp.text().await?;
        if !status.is_success() {
            return Err(format!("Keystone {method} {path}: HTTP {status}: {text}").into());
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// `{name: id}` of a collection (`roles`, `projects`, `users`).
    async fn names(&self, collection: &str) -> Result<HashMap<String, String>> {
        let body = self
            .api(reqwest::Method::GET, &format!("/{collection}"), None)
            .await?;
        Ok(body[collection]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| {
                Some((
                    e["name"].as_str()?.to_string(),
                    e["id"].as_str()?.to_string(),
                ))
            })
            .collect())
    }

    /// Creates the projects, users, role assignments and the placement service.
    async fn populate(&mut self) -> Result<()> {
        self.admin_token = self.system_token("admin").await?;
        self.roles = self.names("roles").await?;
        for role in ["admin", "member", "reader", "service"] {
            if !self.roles.contains_key(role) {
                let r = self
                    .api(
                        reqwest::Method::POST,
                        "/roles",
                        Some(json!({"role": {"name": role}})),
                    )
                    .await?;
                let id = r["role"]["id"].as_str().ok_or("role without id")?;
                self.roles.insert(role.to_string(), id.to_string());
            }
        }
        self.projects = self.names("projects").await?;
        for project in [SERVICE_PROJECT, DEMO_PROJECT] {
            if !self.projects.contains_key(project) {
                let r = self
                    .api(
                        reqwest::Method::POST,
                        "/projects",
                        Some(json!({"project": {"name": project, "domain_id": DOMAIN_ID,
                            "description": "placementd integration tests"}})),
                    )
                    .await?;
                let id = r["project"]["id"].as_str().ok_or("project without id")?;
                self.projects.insert(project.to_string(), id.to_string());
            }
        }
        self.users = self.names("users").await?;
        for (user, password) in USERS {
            if !self.users.contains_key(*user) {
                let r = self
                    .api(
                        reqwest::Method::POST,
                        "/users",
                        Some(json!({"user": {"name": user, "password": password,
                            "domain_id": DOMAIN_ID, "enabled": true}})),
                    )
                    .await?;
                let id = r["user"]["id"].as_str().ok_or("user without id")?;
                self.users.insert(user.to_string(), id.to_string());
            }
        }
        for (user, project, role) in ASSIGNMENTS {
            self.grant_role(user, project, role).await?;
        }
        let r = self
            .api(
                reqwest::Method::POST,
                "/services",
                Some(json!({"service": {"name": "placement", "type": "placement",
                    "description": "Placement API (placementd)", "enabled": true}})),
            )
            .await?;
        self.placement_service_id = r["service"]["id"]
            .as_str()
            .ok_or("service without id")?
            .to_string();
        Ok(())
    }
}

impl Drop for Keystone {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// `kill -SIG TARGET` (a pid, or `-PGID` for a process group); errors are ignored (the
/// process may be gone already).
fn signal(target: &str, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg("--")
        .arg(target)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The live (not zombie) processes of process group `pgid`, from `/proc/*/stat`.
fn group_members(pgid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // "pid (comm) state ppid pgrp ..."; comm may hold spaces and parentheses.
            let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
                return false;
            };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            fields.first().is_some_and(|s| *s != "Z")
                && fields.get(2).and_then(|g| g.parse::<u32>().ok()) == Some(pgid)
        })
        .collect()
}

/// Waits up to `timeout` for `child` without blocking the runtime; `None` on timeout.
async fn wait_child(child: &mut Child, timeout: Duration) -> Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() > deadline {
            return Ok(None);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// `id -un` / `id -gn`: the current user or group name (None without a passwd entry).
fn id_name(flag: &str) -> Option<String> {
    let out = Command::new("id")
        .arg(flag)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let name = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !name.is_empty()).then_some(name)
}

/// The last `bytes` of a file ("" if it does not exist).
fn tail(path: &Path, bytes: u64) -> String {
    let mut out = String::new();
    if let Ok(mut f) = File::open(path) {
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = f.seek(SeekFrom::Start(len.saturating_sub(bytes)));
        let mut buf = Vec::new();
        let _ = f.read_to_end(&mut buf);
        out = String::from_utf8_lossy(&buf).into_owned();
    }
    out
}
