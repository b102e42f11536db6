//! The typed options of each section placementd reads, and how each is read.
//!
//! Every field is `Option<T>` — `None` when the file does not set it — so that the binary can
//! apply its precedence (flags > environment > file > built-in default) option by option.
//! The one exception is [`Cors`], whose fields are filled with Placement's defaults, since
//! CORS is configured as a whole (it is on exactly when `allowed_origin` is non-empty).
//! The defaults placementd applies when an option is not set are the upstream ones and are
//! documented on each field.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::error::ConfigError;
use super::value::{parse_int, Reader};

/// Base name of the log file when only `[DEFAULT] log_dir` is set: oslo.log names it after
/// the program (`<log_dir>/<program>.log`).
pub const LOG_FILE_STEM: &str = "placementd";

/// `[DEFAULT]`: oslo.log's options placementd applies. The other oslo.log options, and
/// Placement's `state_path`, `pybasedir`, `tempdir`, `log_options`, are accepted and ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DefaultOptions {
    /// `debug`: log at debug level (default false).
    pub debug: Option<bool>,
    /// Where to log, as oslo.log derives it: `log_dir/log_file` when both are set (an
    /// absolute `log_file` wins), `log_file` alone, or `log_dir/placementd.log`; a relative
    /// result resolves against the config file's directory. `None`: log to stderr only.
    /// (`logfile` and `logdir` are read as deprecated aliases.)
    pub log_file: Option<PathBuf>,
    /// `use_json`: log JSON lines (default false).
    pub use_json: Option<bool>,
    /// `use_stderr`: also log to stderr when logging to a file (default false).
    pub use_stderr: Option<bool>,
}

/// `[api] auth_strategy` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthStrategy {
    /// Tokens validated against Keystone (`[keystone_authtoken]`). Placement's default.
    Keystone,
    /// No authentication: the `X-Auth-Token` header names the user (`admin` is an admin).
    /// For tests only.
    Noauth2,
}

impl AuthStrategy {
    pub const ALL: [AuthStrategy; 2] = [AuthStrategy::Keystone, AuthStrategy::Noauth2];

    /// The word in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthStrategy::Keystone => "keystone",
            AuthStrategy::Noauth2 => "noauth2",
        }
    }
}

/// `[api]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiOptions {
    /// `auth_strategy` (default `keystone`); read from `[DEFAULT] auth_strategy` too, its
    /// deprecated place.
    pub auth_strategy: Option<AuthStrategy>,
}

/// `[keystone_authtoken] auth_type` values placementd supports: a service user with a
/// password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthType {
    /// keystoneauth1's `password` plugin (version-discovering).
    Password,
    /// keystoneauth1's `v3password` plugin.
    V3Password,
}

impl AuthType {
    pub const ALL: [AuthType; 2] = [AuthType::Password, AuthType::V3Password];

    /// The keystoneauth1 plugin name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthType::Password => "password",
            AuthType::V3Password => "v3password",
        }
    }
}

/// `[keystone_authtoken] interface`: which catalog endpoint of Keystone to call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interface {
    Public,
    /// keystonemiddleware's default.
    Internal,
    Admin,
}

impl Interface {
    pub const ALL: [Interface; 3] = [Interface::Public, Interface::Internal, Interface::Admin];

    /// The catalog's interface name.
    pub fn as_str(self) -> &'static str {
        match self {
            Interface::Public => "public",
            Interface::Internal => "internal",
            Interface::Admin => "admin",
        }
    }
}

/// `[keystone_authtoken]`: keystonemiddleware's auth_token options and the service user's
/// credentials (keystoneauth1's password plugins). The defaults noted are keystonemiddleware
/// 13.0.1's. The memcache, adapter and other session options, and the scopes other than a
/// project (`system_scope`, `domain_*`, `trust_id`), are accepted and ignored (placementd
/// caches validated tokens in process).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeystoneAuthtoken {
    /// `www_authenticate_uri`: the public Keystone endpoint sent in `WWW-Authenticate` on a
    /// 401 (deprecated alias `auth_uri`; the canonical name wins when both are set).
    pub www_authenticate_uri: Option<String>,
    /// `auth_url`: Keystone's endpoint for the service user's authentication and token
    /// validation.
    pub auth_url: Option<String>,
    /// `auth_type` (deprecated alias `auth_plugin`): `password` or `v3password`; other
    /// keystoneauth1 plugins are refused.
    pub auth_type: Option<AuthType>,
    /// `username` (aliases `user_name`, `user-name`).
    pub username: Option<String>,
    pub user_id: Option<String>,
    pub password: Option<String>,
    /// `project_name` (aliases `tenant_name`, `tenant-name`).
    pub project_name: Option<String>,
    /// `project_id` (aliases `tenant_id`, `tenant-id`).
    pub project_id: Option<String>,
    pub user_domain_name: Option<String>,
    pub user_domain_id: Option<String>,
    pub project_domain_name: Option<String>,
    pub project_domain_id: Option<String>,
    /// `region_name`: the region of the identity endpoint.
    pub region_name: Option<String>,
    /// `interface` (default `internal`); `publicURL`-style names are accepted too.
    pub interface: Option<Interface>,
    /// `cafile`: PEM bundle to verify Keystone's certificate (default: system roots).
    pub cafile: Option<PathBuf>,
    /// `certfile` / `keyfile`: a client certificate for Keystone.
    pub certfile: Option<PathBuf>,
    pub keyfile: Option<PathBuf>,
    /// `insecure`: do not verify Keystone's certificate (default false).
    pub insecure: Option<bool>,
    /// `http_connect_timeout`, seconds (default: none).
    pub http_connect_timeout: Option<u64>,
    /// `http_request_max_retries` (default 3).
    pub http_request_max_retries: Option<u32>,
    /// `token_cache_time`, seconds a validated token is cached (default 300; -1 disables
    /// caching).
    pub token_cache_time: Option<i64>,
    /// `service_token_roles` (default `service`): roles a service token must have one of.
    pub service_token_roles: Option<Vec<String>>,
    /// `service_token_roles_required` (default true in keystonemiddleware 13).
    pub service_token_roles_required: Option<bool>,
    /// `delay_auth_decision` (default false): pass unauthenticated requests on, marked as
    /// such, instead of answering 401.
    pub delay_auth_decision: Option<bool>,
    /// `include_service_catalog` (default true): ask Keystone for the catalog with the token.
    pub include_service_catalog: Option<bool>,
}

/// `[oslo_policy]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OsloPolicy {
    /// `policy_file`: rules overriding the defaults (Placement's default `policy.yaml`, looked
    /// up next to the config file). A relative path resolves against the config file's
    /// directory, as oslo.config's `find_file` does.
    pub policy_file: Option<PathBuf>,
    /// `enforce_new_defaults` (default true in oslo.policy 6.0.1): the secure-RBAC defaults
    /// instead of the deprecated admin-only ones.
    pub enforce_new_defaults: Option<bool>,
    /// `enforce_scope`: oslo.policy 6 removed the option (scope is always checked); older
    /// files still set it, so it is read.
    pub enforce_scope: Option<bool>,
}

/// `[cors]`, with Placement's defaults filled in for what the file does not set: oslo.middleware
/// 8.2.0's option defaults as overridden by Placement's `_set_middleware_defaults()`
/// (`placement/wsgi/__init__.py`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cors {
    /// Origins allowed (`scheme://host[:port]`); CORS is off when empty (the default).
    pub allowed_origin: Vec<String>,
    /// `allow_credentials` (default true).
    pub allow_credentials: bool,
    /// Response headers exposed to the browser.
    pub expose_headers: Vec<String>,
    /// `max_age`, seconds a preflight answer may be cached (default 3600); `None` (set to an
    /// empty value) sends no `Access-Control-Max-Age`.
    pub max_age: Option<u64>,
    /// Methods allowed in the actual request.
    pub allow_methods: Vec<String>,
    /// Request headers allowed in the actual request.
    pub allow_headers: Vec<String>,
}

/// Placement's CORS defaults.
pub mod cors_defaults {
    pub const ALLOW_CREDENTIALS: bool = true;
    pub const MAX_AGE: u64 = 3600;
    pub const EXPOSE_HEADERS: &[&str] = &[
        "X-Auth-Token",
        "X-Openstack-Request-Id",
        "X-Subject-Token",
        "X-Service-Token",
        "OpenStack-API-Version",
    ];
    pub const ALLOW_METHODS: &[&str] = &["GET", "PUT", "POST", "DELETE", "PATCH"];
    pub const ALLOW_HEADERS: &[&str] = &[
        "X-Auth-Token",
        "X-Openstack-Request-Id",
        "X-Identity-Status",
        "X-Roles",
        "X-Service-Catalog",
        "X-User-Id",
        "X-Tenant-Id",
        "OpenStack-API-Version",
    ];
}

impl Default for Cors {
    fn default() -> Cors {
        let strings = |s: &[&str]| s.iter().map(|h| h.to_string()).collect();
        Cors {
            allowed_origin: Vec::new(),
            allow_credentials: cors_defaults::ALLOW_CREDENTIALS,
            expose_headers: strings(cors_defaults::EXPOSE_HEADERS),
            max_age: Some(cors_defaults::MAX_AGE),
            allow_methods: strings(cors_defaults::ALLOW_METHODS),
            allow_headers: strings(cors_defaults::ALLOW_HEADERS),
        }
    }
}

/// `[oslo_middleware]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OsloMiddleware {
    /// `enable_proxy_headers_parsing` (default false): trust `X-Forwarded-Proto` and
    /// `Forwarded` from the proxy in front.
    pub enable_proxy_headers_parsing: Option<bool>,
}

/// `[placement]`: Placement's own options. `allocation_conflict_retry_count` (writes are
/// serialized by the Raft log: there is nothing to retry) and
/// `allocation_candidates_generation_strategy` are accepted and ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlacementOptions {
    /// `max_allocation_candidates`: -1 for no limit (Placement's default; placementd's
    /// built-in default is its `--max-allocation-candidates` default).
    pub max_allocation_candidates: Option<i64>,
    /// `randomize_allocation_candidates` (default false).
    pub randomize_allocation_candidates: Option<bool>,
    /// `incomplete_consumer_project_id` (default `00000000-0000-0000-0000-000000000000`):
    /// the project of allocations written by microversions before 1.8.
    pub incomplete_consumer_project_id: Option<String>,
    /// `incomplete_consumer_user_id` (same default).
    pub incomplete_consumer_user_id: Option<String>,
}

/// `[placementd] initial_cluster_state` values (etcd's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitialClusterState {
    New,
    Existing,
}

impl InitialClusterState {
    pub const ALL: [InitialClusterState; 2] =
        [InitialClusterState::New, InitialClusterState::Existing];

    /// The word in the config file (and of `--initial-cluster-state`).
    pub fn as_str(self) -> &'static str {
        match self {
            InitialClusterState::New => "new",
            InitialClusterState::Existing => "existing",
        }
    }
}

/// `[placementd] read_consistency` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadConsistency {
    Linearizable,
    Stale,
}

impl ReadConsistency {
    pub const ALL: [ReadConsistency; 2] = [ReadConsistency::Linearizable, ReadConsistency::Stale];

    /// The word in the config file (and of `--read-consistency`).
    pub fn as_str(self) -> &'static str {
        match self {
            ReadConsistency::Linearizable => "linearizable",
            ReadConsistency::Stale => "stale",
        }
    }
}

/// `(word, value)` pairs for [`Reader::choice`].
fn words<T: Copy, const N: usize>(
    all: [T; N],
    word: fn(T) -> &'static str,
) -> Vec<(&'static str, T)> {
    all.iter().map(|v| (word(*v), *v)).collect()
}

/// `[placementd]`: placementd's own options, one per command-line flag of the same name
/// (`--peer-listen` is `peer_listen`), with the same syntax and ranges. Relative paths
/// resolve against the config file's directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlacementdOptions {
    /// `node_id` (≥ 1).
    pub node_id: Option<u64>,
    /// `listen`: the Placement API address (`IP:PORT`).
    pub listen: Option<SocketAddr>,
    /// `peer_listen`: the peer port's address.
    pub peer_listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    /// `initial_cluster`: `ID=API_ADDR@PEER_ADDR,…`, checked for syntax here and kept as
    /// written.
    pub initial_cluster: Option<String>,
    pub initial_cluster_state: Option<InitialClusterState>,
    pub read_consistency: Option<ReadConsistency>,
    /// `snapshot_every` (≥ 1 applied entries).
    pub snapshot_every: Option<u64>,
    pub peer_cert: Option<PathBuf>,
    pub peer_key: Option<PathBuf>,
    pub peer_ca: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// `max_connections` per port (1 to 1 000 000).
    pub max_connections: Option<u64>,
    /// `header_timeout`, seconds (1 to 3600).
    pub header_timeout: Option<u64>,
    /// `max_requests_in_flight` (1 to 1 000 000).
    pub max_requests_in_flight: Option<u64>,
    /// `request_timeout`, seconds (1 to 3600).
    pub request_timeout: Option<u64>,
    /// `metrics_listen`: the Prometheus metrics endpoint's address (`--metrics-listen`).
    pub metrics_listen: Option<SocketAddr>,
}

/// Largest `max_connections` and `max_requests_in_flight` (the flags' bound).
const MAX_COUNT: u64 = 1_000_000;
/// Largest `header_timeout` and `request_timeout`, seconds (the flags' bound).
const MAX_TIMEOUT_SECS: u64 = 3600;

const DEFAULT: &str = "DEFAULT";
const KA: &str = "keystone_authtoken";

impl DefaultOptions {
    pub(crate) fn read(r: &Reader<'_>) -> Result<DefaultOptions, ConfigError> {
        let file = r.string(DEFAULT, "log_file")?;
        let dir = r.string(DEFAULT, "log_dir")?;
        let log_file = match (file, dir) {
            (Some(file), Some(dir)) => Some(Path::new(&dir).join(file)),
            (Some(file), None) => Some(PathBuf::from(file)),
            (None, Some(dir)) => Some(Path::new(&dir).join(format!("{LOG_FILE_STEM}.log"))),
            (None, None) => None,
        };
        Ok(DefaultOptions {
            debug: r.bool(DEFAULT, "debug")?,
            log_file: log_file.map(|p| r.resolve(&p)),
            use_json: r.bool(DEFAULT, "use_json")?,
            use_stderr: r.bool(DEFAULT, "use_stderr")?,
        })
    }
}

impl ApiOptions {
    pub(crate) fn read(r: &Reader<'_>) -> Result<ApiOptions, ConfigError> {
        let choices = words(AuthStrategy::ALL, AuthStrategy::as_str);
        Ok(ApiOptions {
            auth_strategy: r.choice("api", "auth_strategy", &choices)?,
        })
    }
}

impl KeystoneAuthtoken {
    pub(crate) fn read(r: &Reader<'_>) -> Result<KeystoneAuthtoken, ConfigError> {
        check_auth_section(r)?;
        let auth_types = words(AuthType::ALL, AuthType::as_str);
        // keystoneauth1 also takes the v2 catalog's spellings (`internalURL`, …).
        let mut interfaces = words(Interface::ALL, Interface::as_str);
        interfaces.extend([
            ("publicURL", Interface::Public),
            ("internalURL", Interface::Internal),
            ("adminURL", Interface::Admin),
        ]);
        let s = |o| r.string(KA, o);
        Ok(KeystoneAuthtoken {
            www_authenticate_uri: s("www_authenticate_uri")?,
            auth_url: s("auth_url")?,
            auth_type: r.choice(KA, "auth_type", &auth_types)?,
            username: s("username")?,
            user_id: s("user_id")?,
            password: s("password")?,
            project_name: s("project_name")?,
            project_id: s("project_id")?,
            user_domain_name: s("user_domain_name")?,
            user_domain_id: s("user_domain_id")?,
            project_domain_name: s("project_domain_name")?,
            project_domain_id: s("project_domain_id")?,
            region_name: s("region_name")?,
            interface: r.choice(KA, "interface", &interfaces)?,
            cafile: r.path(KA, "cafile")?,
            certfile: r.path(KA, "certfile")?,
            keyfile: r.path(KA, "keyfile")?,
            insecure: r.bool(KA, "insecure")?,
            http_connect_timeout: r.uint(KA, "http_connect_timeout", 0, u64::MAX)?,
            http_request_max_retries: r
                .uint(KA, "http_request_max_retries", 0, u64::from(u32::MAX))?
                .map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
            token_cache_time: r.int(
                KA,
                "token_cache_time",
                -1,
                "seconds, or -1 to disable the token cache",
            )?,
            service_token_roles: r.list(KA, "service_token_roles")?,
            service_token_roles_required: r.bool(KA, "service_token_roles_required")?,
            delay_auth_decision: r.bool(KA, "delay_auth_decision")?,
            include_service_catalog: r.bool(KA, "include_service_catalog")?,
        })
    }
}

/// `auth_section` moves the credentials to another section; placementd reads them from
/// `[keystone_authtoken]` only, so only that value (or none) is accepted.
fn check_auth_section(r: &Reader<'_>) -> Result<(), ConfigError> {
    match r.raw(KA, "auth_section")? {
        Some(raw) if !raw.text.is_empty() && raw.text != KA => Err(r.invalid(
            &raw,
            format!(
                "placementd reads the service credentials from [keystone_authtoken] only: \
                 move the options of [{}] there and remove auth_section",
                raw.text
            ),
        )),
        _ => Ok(()),
    }
}

impl OsloPolicy {
    pub(crate) fn read(r: &Reader<'_>) -> Result<OsloPolicy, ConfigError> {
        Ok(OsloPolicy {
            policy_file: r.path("oslo_policy", "policy_file")?,
            enforce_new_defaults: r.bool("oslo_policy", "enforce_new_defaults")?,
            enforce_scope: r.bool("oslo_policy", "enforce_scope")?,
        })
    }
}

impl Cors {
    pub(crate) fn read(r: &Reader<'_>) -> Result<Cors, ConfigError> {
        let d = Cors::default();
        Ok(Cors {
            allowed_origin: r
                .list("cors", "allowed_origin")?
                .unwrap_or(d.allowed_origin),
            allow_credentials: r
                .bool("cors", "allow_credentials")?
                .unwrap_or(d.allow_credentials),
            expose_headers: r
                .list("cors", "expose_headers")?
                .unwrap_or(d.expose_headers),
            max_age: read_max_age(r)?.unwrap_or(d.max_age),
            allow_methods: r.list("cors", "allow_methods")?.unwrap_or(d.allow_methods),
            allow_headers: r.list("cors", "allow_headers")?.unwrap_or(d.allow_headers),
        })
    }
}

/// `[cors] max_age`: `None` when unset, `Some(None)` when set empty (no max-age header).
fn read_max_age(r: &Reader<'_>) -> Result<Option<Option<u64>>, ConfigError> {
    let Some(raw) = r.raw("cors", "max_age")? else {
        return Ok(None);
    };
    match parse_int(&raw.text).map_err(|m| r.invalid(&raw, m))? {
        None => Ok(Some(None)),
        Some(n) => u64::try_from(n)
            .map(|n| Some(Some(n)))
            .map_err(|_| r.invalid(&raw, format!("{n} is out of range: seconds, 0 or more"))),
    }
}

impl OsloMiddleware {
    pub(crate) fn read(r: &Reader<'_>) -> Result<OsloMiddleware, ConfigError> {
        Ok(OsloMiddleware {
            enable_proxy_headers_parsing: r
                .bool("oslo_middleware", "enable_proxy_headers_parsing")?,
        })
    }
}

impl PlacementOptions {
    pub(crate) fn read(r: &Reader<'_>) -> Result<PlacementOptions, ConfigError> {
        let p = "placement";
        Ok(PlacementOptions {
            max_allocation_candidates: r.int(
                p,
                "max_allocation_candidates",
                -1,
                "a number of candidates, or -1 for no limit",
            )?,
            randomize_allocation_candidates: r.bool(p, "randomize_allocation_candidates")?,
            incomplete_consumer_project_id: r.string(p, "incomplete_consumer_project_id")?,
            incomplete_consumer_user_id: r.string(p, "incomplete_consumer_user_id")?,
        })
    }
}

impl PlacementdOptions {
    pub(crate) fn read(r: &Reader<'_>) -> Result<PlacementdOptions, ConfigError> {
        let p = "placementd";
        let states = words(InitialClusterState::ALL, InitialClusterState::as_str);
        let consistencies = words(ReadConsistency::ALL, ReadConsistency::as_str);
        Ok(PlacementdOptions {
            node_id: r.uint(p, "node_id", 1, u64::MAX)?,
            listen: r.socket_addr(p, "listen")?,
            peer_listen: r.socket_addr(p, "peer_listen")?,
            data_dir: r.path(p, "data_dir")?,
            initial_cluster: read_initial_cluster(r)?,
            initial_cluster_state: r.choice(p, "initial_cluster_state", &states)?,
            read_consistency: r.choice(p, "read_consistency", &consistencies)?,
            snapshot_every: r.uint(p, "snapshot_every", 1, u64::MAX)?,
            peer_cert: r.path(p, "peer_cert")?,
            peer_key: r.path(p, "peer_key")?,
            peer_ca: r.path(p, "peer_ca")?,
            tls_cert: r.path(p, "tls_cert")?,
            tls_key: r.path(p, "tls_key")?,
            max_connections: r.uint(p, "max_connections", 1, MAX_COUNT)?,
            header_timeout: r.uint(p, "header_timeout", 1, MAX_TIMEOUT_SECS)?,
            max_requests_in_flight: r.uint(p, "max_requests_in_flight", 1, MAX_COUNT)?,
            request_timeout: r.uint(p, "request_timeout", 1, MAX_TIMEOUT_SECS)?,
            metrics_listen: r.socket_addr(p, "metrics_listen")?,
        })
    }
}

/// `[placementd] initial_cluster`, checked for the `--initial-cluster` syntax so that a
/// mistake is reported with its line.
fn read_initial_cluster(r: &Reader<'_>) -> Result<Option<String>, ConfigError> {
    let Some(raw) = r.raw("placementd", "initial_cluster")? else {
        return Ok(None);
    };
    if raw.text.is_empty() {
        return Ok(None);
    }
    check_initial_cluster(&raw.text).map_err(|m| r.invalid(&raw, m))?;
    Ok(Some(raw.text))
}

/// Checks `ID=API_ADDR@PEER_ADDR` items separated by commas: ids ≥ 1 and distinct, both
/// addresses present.
fn check_initial_cluster(spec: &str) -> Result<(), String> {
    let mut ids = BTreeSet::new();
    for item in spec.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let bad = || format!("`{item}` is not ID=API_ADDR@PEER_ADDR");
        let (id, addrs) = item.split_once('=').ok_or_else(bad)?;
        let (api, peer) = addrs.split_once('@').ok_or_else(bad)?;
        let id: u64 = id.trim().parse().map_err(|_| bad())?;
        if id == 0 || api.trim().is_empty() || peer.trim().is_empty() {
            return Err(bad());
        }
        if !ids.insert(id) {
            return Err(format!("node {id} is listed twice"));
        }
    }
    if ids.is_empty() {
        return Err("no member listed (expected ID=API_ADDR@PEER_ADDR,…)".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_cluster_syntax() {
        assert_eq!(
            check_initial_cluster("1=10.0.0.1:8778@10.0.0.1:8779, 2=a:1@b:2"),
            Ok(())
        );
        assert_eq!(
            check_initial_cluster("1=a:1@b:2,1=c:1@d:2"),
            Err("node 1 is listed twice".into())
        );
        assert_eq!(
            check_initial_cluster("0=a:1@b:2"),
            Err("`0=a:1@b:2` is not ID=API_ADDR@PEER_ADDR".into())
        );
        assert!(check_initial_cluster("1=a:1").is_err());
        assert!(check_initial_cluster("x=a:1@b:2").is_err());
        assert!(check_initial_cluster("1=@b:2").is_err());
        assert!(check_initial_cluster(" , ").is_err());
    }

    #[test]
    fn cors_defaults_are_placements() {
        let c = Cors::default();
        assert!(c.allowed_origin.is_empty());
        assert!(c.allow_credentials);
        assert_eq!(c.max_age, Some(3600));
        assert_eq!(
            c.allow_methods,
            vec!["GET", "PUT", "POST", "DELETE", "PATCH"]
        );
        assert_eq!(c.allow_headers.len(), 8);
        assert_eq!(c.allow_headers[7], "OpenStack-API-Version");
        assert_eq!(c.expose_headers.len(), 5);
        assert_eq!(c.expose_headers[2], "X-Subject-Token");
    }
}
