//! What a running node is told: its flags and `PLACEMENTD_*` environment variables, over a
//! placement.conf (`--config-file`, read by [`crate::config`]), over built-in defaults —
//! resolved option by option, in that order — and what they turn into: the API's
//! configuration (authentication, policy, CORS, limits), TLS, and logging.
//!
//! Start-up order matters for the operator: the file is read and checked before anything
//! else (a typo is an error naming file, line, section and option); logging is set up from
//! it; then one line lists the file's options that placementd accepts but does not use, and
//! with `noauth2`, one warning says that any token is admin.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::ArgMatches;
use placement_api::policy::{LivePolicy, PolicyOptions};
use placement_api::{ApiConfig, AuthStrategy, CorsConfig};
use placement_keystone::{Keystone, KeystoneConfig};
use placement_net::{TlsPaths, TlsRole, TlsSource};
use tracing_subscriber::EnvFilter;

use crate::config::{self, ConfigFile};

/// The flags of a running node.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Address of the Placement REST API.
    #[arg(long, env = "PLACEMENTD_LISTEN", default_value = "127.0.0.1:8778")]
    pub(crate) listen: SocketAddr,

    /// Data directory (Raft log, state, snapshots); created if missing.
    #[arg(long, env = "PLACEMENTD_DATA_DIR", default_value = "./placementd-data")]
    pub(crate) data_dir: PathBuf,

    /// This node's Raft id (≥ 1). Bound to the data directory at first start; never reuse
    /// the id of a node whose data was lost.
    #[arg(long, env = "PLACEMENTD_NODE_ID", default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) node_id: u64,

    /// Address of the peer port (Raft RPCs, snapshots, forwarded writes, read indexes).
    /// Defaults to 127.0.0.1:8779 when --initial-cluster is given; a one-node cluster opens
    /// no peer port unless this is set.
    #[arg(long, env = "PLACEMENTD_PEER_LISTEN")]
    pub(crate) peer_listen: Option<SocketAddr>,

    /// Address of the Prometheus metrics endpoint (`GET /metrics`, plain HTTP, no
    /// authentication: bind it to a management network). Off when not given.
    #[arg(long, env = "PLACEMENTD_METRICS_LISTEN")]
    pub(crate) metrics_listen: Option<SocketAddr>,

    /// The initial members, the same list on every member: `ID=API_ADDR@PEER_ADDR` separated
    /// by commas, e.g. `1=10.0.0.1:8778@10.0.0.1:8779,2=...,3=...`. The lowest id
    /// initializes the cluster on its first start; the others join it.
    #[arg(long, env = "PLACEMENTD_INITIAL_CLUSTER")]
    pub(crate) initial_cluster: Option<String>,

    /// `new`: the members of --initial-cluster form a new cluster (the lowest id initializes
    /// it). `existing`: this node joins a running cluster; on a fresh data directory it waits
    /// until a member adds it (`placementd cluster add`). --initial-cluster must then name at
    /// least this node (its addresses).
    #[arg(long, env = "PLACEMENTD_INITIAL_CLUSTER_STATE", value_enum,
          default_value_t = InitialClusterState::New)]
    pub(crate) initial_cluster_state: InitialClusterState,

    /// Build a snapshot and compact the Raft log after this many applied entries.
    #[arg(long, env = "PLACEMENTD_SNAPSHOT_EVERY",
          default_value_t = placement_raft::SNAPSHOT_EVERY_ENTRIES,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) snapshot_every: u64,

    /// `linearizable` (default): every read first confirms with the leader that it sees every
    /// write acknowledged before it (ReadIndex), on any node. `stale`: reads answer from what
    /// this node has applied, without that round trip; a follower may briefly miss a write
    /// acknowledged by another node. Writes are linearizable either way.
    #[arg(long, env = "PLACEMENTD_READ_CONSISTENCY", value_enum,
          default_value_t = ReadConsistency::Linearizable)]
    pub(crate) read_consistency: ReadConsistency,

    /// A placement.conf (Placement's sections and options, plus `[placementd]`): flags and
    /// environment variables override it, option by option. With a file, `[api]
    /// auth_strategy` defaults to `keystone`, as in Placement.
    #[arg(long, env = "PLACEMENTD_CONFIG_FILE")]
    pub(crate) config_file: Option<PathBuf>,

    /// `keystone`: validate tokens with Keystone (`[keystone_authtoken]` of --config-file).
    /// `noauth2`: trust the client's headers, any token is admin (development only). Default:
    /// `keystone` with --config-file, `noauth2` without.
    #[arg(long, env = "PLACEMENTD_AUTH_STRATEGY", value_enum)]
    pub(crate) auth_strategy: Option<AuthStrategyArg>,

    /// A policy file (YAML or JSON) overriding Placement's policy rules (`[oslo_policy]
    /// policy_file`).
    #[arg(long, env = "PLACEMENTD_POLICY_FILE")]
    pub(crate) policy_file: Option<PathBuf>,

    /// `true` (default): Placement's new (secure RBAC) policy defaults: admin, service, and
    /// a project's reader for its usages. `false`: the deprecated defaults, OR-ed in (admin).
    #[arg(long, env = "PLACEMENTD_ENFORCE_NEW_DEFAULTS",
          value_parser = clap::builder::BoolishValueParser::new())]
    pub(crate) enforce_new_defaults: Option<bool>,

    /// `true` (default): a token whose scope (system, domain) is not one a rule allows
    /// (project) is refused.
    #[arg(long, env = "PLACEMENTD_ENFORCE_SCOPE",
          value_parser = clap::builder::BoolishValueParser::new())]
    pub(crate) enforce_scope: Option<bool>,

    /// Log at debug level (`[DEFAULT] debug`); RUST_LOG, when set, wins.
    #[arg(long, env = "PLACEMENTD_DEBUG")]
    pub(crate) debug: bool,

    /// Append the log to this file instead of stderr (`[DEFAULT] log_file`).
    #[arg(long, env = "PLACEMENTD_LOG_FILE")]
    pub(crate) log_file: Option<PathBuf>,

    /// Log format: `text`, or `json` for a log pipeline (one JSON object per line, span
    /// fields such as `request_id` flattened in; `[DEFAULT] use_json = true` means `json`).
    #[arg(long, env = "PLACEMENTD_LOG_FORMAT", value_enum)]
    pub(crate) log_format: Option<LogFormat>,

    /// The same as `--log-format json` (kept for existing scripts).
    #[arg(long, env = "PLACEMENTD_LOG_JSON", hide = true)]
    pub(crate) log_json: bool,

    /// An origin allowed to make cross-origin requests (CORS; `*` for any); repeat for
    /// several. CORS is off when none is given (here or in `[cors] allowed_origin`).
    #[arg(
        long = "cors-allowed-origin",
        env = "PLACEMENTD_CORS_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub(crate) cors_allowed_origins: Vec<String>,

    /// A request header a CORS preflight may ask for; repeat for several (default:
    /// Placement's list, `docs/openstack.md`).
    #[arg(
        long = "cors-allow-header",
        env = "PLACEMENTD_CORS_ALLOW_HEADERS",
        value_delimiter = ','
    )]
    pub(crate) cors_allow_headers: Vec<String>,

    /// PEM certificate of this node from the cluster CA, naming `node<ID>` (and the
    /// addresses it is reached at). With --peer-key and --peer-ca, the peer port accepts only
    /// mutual TLS from holders of certificates of that CA, and this node calls the others
    /// the same way.
    #[arg(long, env = "PLACEMENTD_PEER_CERT", requires_all = ["peer_key", "peer_ca"])]
    pub(crate) peer_cert: Option<PathBuf>,

    /// PEM private key of --peer-cert.
    #[arg(long, env = "PLACEMENTD_PEER_KEY", requires_all = ["peer_cert", "peer_ca"])]
    pub(crate) peer_key: Option<PathBuf>,

    /// PEM certificate(s) of the cluster CA.
    #[arg(long, env = "PLACEMENTD_PEER_CA", requires_all = ["peer_cert", "peer_key"])]
    pub(crate) peer_ca: Option<PathBuf>,

    /// PEM certificate chain for HTTPS on the REST API (it may be the peer certificate).
    #[arg(long, env = "PLACEMENTD_TLS_CERT", requires = "tls_key")]
    pub(crate) tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(long, env = "PLACEMENTD_TLS_KEY", requires = "tls_cert")]
    pub(crate) tls_key: Option<PathBuf>,

    /// Open connections per port; one more is closed at once.
    #[arg(long, env = "PLACEMENTD_MAX_CONNECTIONS",
          default_value_t = placement_net::serve::DEFAULT_MAX_CONNECTIONS as u64,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub(crate) max_connections: u64,

    /// Seconds a client has to send a request's headers (after connecting or after the
    /// previous response: idle keep-alive connections close after it too).
    #[arg(long, env = "PLACEMENTD_HEADER_TIMEOUT",
          default_value_t = placement_net::serve::DEFAULT_HEADER_TIMEOUT.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub(crate) header_timeout: u64,

    /// API requests served at once; more are answered 503 with Retry-After.
    #[arg(long, env = "PLACEMENTD_MAX_REQUESTS_IN_FLIGHT",
          default_value_t = placement_api::DEFAULT_MAX_REQUESTS_IN_FLIGHT as u64,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub(crate) max_requests_in_flight: u64,

    /// Seconds an API request may take before it is answered 503.
    #[arg(long, env = "PLACEMENTD_REQUEST_TIMEOUT",
          default_value_t = placement_api::DEFAULT_REQUEST_TIMEOUT.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub(crate) request_timeout: u64,

    /// Generate at most this many allocation candidates per request, before `limit`
    /// (Placement's `[placement] max_allocation_candidates`); -1: no bound.
    #[arg(long, env = "PLACEMENTD_MAX_ALLOCATION_CANDIDATES",
          default_value_t = placement_api::DEFAULT_MAX_ALLOCATION_CANDIDATES as i64,
          value_parser = clap::value_parser!(i64).range(-1..),
          allow_negative_numbers = true)]
    pub(crate) max_allocation_candidates: i64,

    /// Take the scheme of `Location` headers from `X-Forwarded-Proto` (set it behind a
    /// proxy that terminates TLS; oslo.middleware's `enable_proxy_headers_parsing`).
    #[arg(long, env = "PLACEMENTD_ENABLE_PROXY_HEADERS_PARSING")]
    pub(crate) enable_proxy_headers_parsing: bool,
}

/// `--read-consistency` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ReadConsistency {
    Linearizable,
    Stale,
}

/// `--initial-cluster-state` values (etcd's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum InitialClusterState {
    New,
    Existing,
}

/// `--auth-strategy` values (`[api] auth_strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum AuthStrategyArg {
    Keystone,
    Noauth2,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

/// The default log filter when `RUST_LOG` is not set. openraft is verbose at info level
/// about routine elections and snapshots, so it gets warnings only.
const DEFAULT_LOG_FILTER: &str = "info,openraft=warn";
/// With `debug`: everything of placementd's, the libraries' chatter at info.
const DEBUG_LOG_FILTER: &str = "debug,openraft=info,hyper=info,hyper_util=info,h2=info,\
                                rustls=info,reqwest=info,tokio_rustls=info";

/// Log lines that may wait for the log thread before a caller waits for it (about 25 MB of
/// access-log lines: seconds of the heaviest load behind a stalled disk).
const LOG_QUEUE_LINES: usize = 128_000;

/// Keeps the log thread (see [`Settings::init_tracing`]); dropping it writes out the lines
/// still queued, waiting at most a second for each output.
pub(crate) struct LogGuard(Vec<tracing_appender::non_blocking::WorkerGuard>);

/// Flags and environment variables merged over the config file.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) args: Args,
    file: Option<ConfigFile>,
    auth: AuthStrategyArg,
}

/// Whether an option was left at its built-in default (neither a flag nor an environment
/// variable set it), so that the config file may set it.
fn unset(matches: &ArgMatches, id: &str) -> bool {
    !matches!(
        matches.value_source(id),
        Some(ValueSource::CommandLine | ValueSource::EnvVariable)
    )
}

impl Settings {
    /// Reads `--config-file` (if any) and lets it fill every option the command line and the
    /// environment left unset.
    pub(crate) fn resolve(mut args: Args, matches: &ArgMatches) -> Result<Settings, String> {
        let file = match &args.config_file {
            Some(path) => Some(ConfigFile::load(path).map_err(|e| e.to_string())?),
            None => None,
        };
        if let Some(file) = &file {
            merge(&mut args, matches, file);
        }
        let auth = match (args.auth_strategy, &file) {
            (Some(a), _) => a,
            (None, Some(f)) => match f.api.auth_strategy {
                Some(config::AuthStrategy::Noauth2) => AuthStrategyArg::Noauth2,
                Some(config::AuthStrategy::Keystone) | None => AuthStrategyArg::Keystone,
            },
            (None, None) => AuthStrategyArg::Noauth2,
        };
        let tls_given = [&args.peer_cert, &args.peer_key, &args.peer_ca]
            .iter()
            .filter(|p| p.is_some())
            .count();
        if tls_given != 0 && tls_given != 3 {
            return Err(
                "peer TLS needs all three of peer_cert, peer_key and peer_ca (flags, environment \
                 or [placementd]); only some are set"
                    .into(),
            );
        }
        if args.tls_cert.is_some() != args.tls_key.is_some() {
            return Err("API TLS needs both tls_cert and tls_key; only one is set".into());
        }
        Ok(Settings { args, file, auth })
    }

    /// Sets up logging: `[DEFAULT] debug`, `log_file` (+ `use_stderr`), `use_json`, each
    /// overridden by its flag; `RUST_LOG` overrides the level.
    ///
    /// Lines are formatted where they are logged and written by a thread of their own
    /// ([`LogGuard`]), so no async worker waits in write(2) for the access log: the thread
    /// writes what has queued up in one go, and flushes whenever the queue is empty. No line
    /// is dropped: a logger more than [`LOG_QUEUE_LINES`] lines behind holds the callers back,
    /// as a blocking write did. The returned guard must live until the process exits; its
    /// drop writes out what is still queued.
    pub(crate) fn init_tracing(&self) -> Result<LogGuard, String> {
        use std::io::IsTerminal;
        use tracing_subscriber::fmt::writer::{BoxMakeWriter, MakeWriterExt};
        let d = self.file.as_ref().map(|f| &f.default);
        let debug = self.args.debug || d.and_then(|d| d.debug).unwrap_or(false);
        let json = match self.args.log_format {
            Some(format) => format == LogFormat::Json,
            None => self.args.log_json || d.and_then(|d| d.use_json).unwrap_or(false),
        };
        let log_file = self
            .args
            .log_file
            .clone()
            .or_else(|| d.and_then(|d| d.log_file.clone()));
        let also_stderr = d.and_then(|d| d.use_stderr).unwrap_or(false);
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
            EnvFilter::new(if debug {
                DEBUG_LOG_FILTER
            } else {
                DEFAULT_LOG_FILTER
            })
        });
        let mut guard = LogGuard(Vec::new());
        let mut queued = |out: Box<dyn std::io::Write + Send>| {
            let (writer, worker) = tracing_appender::non_blocking::NonBlockingBuilder::default()
                .lossy(false)
                .buffered_lines_limit(LOG_QUEUE_LINES)
                .thread_name("placementd-log")
                .finish(std::io::BufWriter::new(out));
            guard.0.push(worker);
            writer
        };
        let (writer, ansi) = match &log_file {
            Some(path) => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| format!("log_file {}: {e}", path.display()))?;
                let file = queued(Box::new(file));
                if also_stderr {
                    let stderr = queued(Box::new(std::io::stderr()));
                    (BoxMakeWriter::new(file.and(stderr)), false)
                } else {
                    (BoxMakeWriter::new(file), false)
                }
            }
            // Colours only for a human at a terminal; journald gets plain text.
            None => (
                BoxMakeWriter::new(queued(Box::new(std::io::stderr()))),
                std::io::stderr().is_terminal(),
            ),
        };
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(writer);
        let installed = if json {
            builder
                .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
                .event_format(crate::log_format::FlatJson)
                .try_init()
        } else {
            builder.with_ansi(ansi).try_init()
        };
        installed.map_err(|e| format!("logging: {e}"))?;
        Ok(guard)
    }

    /// The start-up notes an operator should see once.
    pub(crate) fn log_notes(&self) {
        if let Some(file) = &self.file {
            tracing::info!(config_file = %file.path.display(), "configuration read");
            if !file.ignored().is_empty() {
                tracing::info!(
                    options = %file.ignored().join(", "),
                    "options of the config file that placementd accepts but does not use"
                );
            }
            let k = &file.keystone_authtoken;
            if k.delay_auth_decision == Some(true) {
                tracing::warn!(
                    "[keystone_authtoken] delay_auth_decision = true is not supported: requests \
                     without a valid token are refused (401)"
                );
            }
        }
        if self.auth == AuthStrategyArg::Noauth2 {
            tracing::warn!(
                "auth_strategy = noauth2: any X-Auth-Token is accepted and the caller's roles \
                 come from its own headers, so any token is admin. For development and tests \
                 only; a cloud sets [api] auth_strategy = keystone (docs/openstack.md)."
            );
        }
    }

    /// The API configuration: authentication, policy, CORS, limits and `[placement]`.
    /// Keystone is not contacted here (see [`Keystone::spawn_warm_up`]).
    pub(crate) fn api_config(&self) -> Result<ApiConfig, String> {
        let args = &self.args;
        let file = self.file.as_ref();
        let placement = file.map(|f| &f.placement);
        let defaults = ApiConfig::default();
        Ok(ApiConfig {
            auth: self.auth_strategy()?,
            policy: Arc::new(self.policy()?),
            cors: self.cors(),
            max_requests_in_flight: usize::try_from(args.max_requests_in_flight)
                .unwrap_or(usize::MAX),
            request_timeout: Duration::from_secs(args.request_timeout),
            max_allocation_candidates: usize::try_from(args.max_allocation_candidates).ok(),
            enable_proxy_headers_parsing: args.enable_proxy_headers_parsing,
            randomize_allocation_candidates: placement
                .and_then(|p| p.randomize_allocation_candidates)
                .unwrap_or(false),
            incomplete_consumer_project_id: placement
                .and_then(|p| p.incomplete_consumer_project_id.clone())
                .unwrap_or(defaults.incomplete_consumer_project_id),
            incomplete_consumer_user_id: placement
                .and_then(|p| p.incomplete_consumer_user_id.clone())
                .unwrap_or(defaults.incomplete_consumer_user_id),
            ..ApiConfig::default()
        })
    }

    fn auth_strategy(&self) -> Result<AuthStrategy, String> {
        if self.auth == AuthStrategyArg::Noauth2 {
            return Ok(AuthStrategy::Noauth2);
        }
        let Some(file) = &self.file else {
            return Err(
                "auth_strategy keystone needs the [keystone_authtoken] section of a \
                 --config-file"
                    .into(),
            );
        };
        let k = &file.keystone_authtoken;
        let missing = |option: &str| {
            format!(
                "{}: [keystone_authtoken] {option} is required with auth_strategy = keystone",
                file.path.display()
            )
        };
        let auth_url = k.auth_url.clone().ok_or_else(|| missing("auth_url"))?;
        if k.username.is_none() && k.user_id.is_none() {
            return Err(missing("username (or user_id)"));
        }
        let mut c = KeystoneConfig::new(&auth_url);
        c.password = k.password.clone().ok_or_else(|| missing("password"))?;
        c.username = k.username.clone();
        c.user_id = k.user_id.clone();
        c.user_domain_name = k.user_domain_name.clone();
        c.user_domain_id = k.user_domain_id.clone();
        c.project_name = k.project_name.clone();
        c.project_id = k.project_id.clone();
        c.project_domain_name = k.project_domain_name.clone();
        c.project_domain_id = k.project_domain_id.clone();
        c.region_name = k.region_name.clone();
        if let Some(i) = k.interface {
            c.interface = i.as_str().to_string();
        }
        c.cafile = k.cafile.clone();
        c.certfile = k.certfile.clone();
        c.keyfile = k.keyfile.clone();
        c.insecure = k.insecure.unwrap_or(false);
        c.connect_timeout = k.http_connect_timeout.map(Duration::from_secs);
        if let Some(r) = k.http_request_max_retries {
            c.max_retries = r;
        }
        if let Some(t) = k.token_cache_time {
            c.token_cache_time = u64::try_from(t).ok().map(Duration::from_secs);
        }
        if let Some(roles) = &k.service_token_roles {
            c.service_token_roles = roles.clone();
        }
        if let Some(required) = k.service_token_roles_required {
            c.service_token_roles_required = required;
        }
        let www_authenticate_uri = k.www_authenticate_uri.clone().unwrap_or(auth_url);
        let keystone = Keystone::new(c).map_err(|e| format!("{}: {e}", file.path.display()))?;
        keystone.spawn_warm_up();
        Ok(AuthStrategy::Keystone {
            validator: keystone,
            www_authenticate_uri,
        })
    }

    /// The policy: defaults chosen by `enforce_new_defaults`, overridden by the policy file.
    fn policy(&self) -> Result<LivePolicy, String> {
        let oslo = self.file.as_ref().map(|f| &f.oslo_policy);
        let configured = self
            .args
            .policy_file
            .clone()
            .or_else(|| oslo.and_then(|o| o.policy_file.clone()));
        // oslo.policy's default `policy_file` is `policy.yaml` in the config file's
        // directory; only a file named on purpose must exist.
        let fallback = self
            .file
            .as_ref()
            .and_then(|f| f.path.parent().map(|d| d.join("policy.yaml")))
            .filter(|p| p.is_file());
        let options = PolicyOptions {
            enforce_new_defaults: self
                .args
                .enforce_new_defaults
                .or_else(|| oslo.and_then(|o| o.enforce_new_defaults))
                .unwrap_or(true),
            enforce_scope: self
                .args
                .enforce_scope
                .or_else(|| oslo.and_then(|o| o.enforce_scope))
                .unwrap_or(true),
            policy_file: configured.or(fallback),
        };
        let policy = LivePolicy::load(options.clone()).map_err(|e| e.to_string())?;
        tracing::info!(
            enforce_new_defaults = options.enforce_new_defaults,
            enforce_scope = options.enforce_scope,
            policy_file = ?options.policy_file,
            "policy loaded"
        );
        Ok(policy)
    }

    /// CORS: `[cors]` with Placement's defaults; `--cors-allowed-origin` and
    /// `--cors-allow-header` override its origins and headers. Off without origins.
    fn cors(&self) -> Option<CorsConfig> {
        let c = self
            .file
            .as_ref()
            .map(|f| f.cors.clone())
            .unwrap_or_default();
        let origins = if self.args.cors_allowed_origins.is_empty() {
            c.allowed_origin
        } else {
            self.args.cors_allowed_origins.clone()
        };
        if origins.is_empty() {
            return None;
        }
        let allow_headers = if self.args.cors_allow_headers.is_empty() {
            c.allow_headers
        } else {
            self.args.cors_allow_headers.clone()
        };
        Some(CorsConfig {
            allowed_origins: origins,
            allow_headers,
            allow_methods: c.allow_methods,
            expose_headers: c.expose_headers,
            allow_credentials: c.allow_credentials,
            max_age: c.max_age,
        })
    }

    /// Whether reads may answer from this node's state without asking the leader.
    pub(crate) fn stale_reads(&self) -> bool {
        self.args.read_consistency == ReadConsistency::Stale
    }
}

/// How often the policy file is checked for changes.
const POLICY_POLL: Duration = Duration::from_secs(10);

/// Reads the policy file again when it changes (checked every [`POLICY_POLL`]) and on
/// SIGHUP, as oslo.policy re-reads its file; a file that does not load is logged and the
/// previous policy stays in force.
pub(crate) fn spawn_policy_reloader(policy: Arc<LivePolicy>) {
    let Some(file) = policy.file().map(Path::to_path_buf) else {
        return;
    };
    placement_net::reload::spawn("the policy file", POLICY_POLL, move |force| {
        match policy.reload(force) {
            Ok(true) => tracing::info!(policy_file = %file.display(), "policy reloaded"),
            Ok(false) => {}
            Err(e) => tracing::error!(
                error = %e,
                "policy file not reloaded; the previous policy stays in force"
            ),
        }
    });
}

/// Lets the file set what flags and environment left unset.
fn merge(args: &mut Args, matches: &ArgMatches, file: &ConfigFile) {
    let p = &file.placementd;
    macro_rules! take {
        ($field:ident, $value:expr) => {
            if unset(matches, stringify!($field)) {
                if let Some(v) = $value {
                    args.$field = v;
                }
            }
        };
    }
    take!(listen, p.listen);
    take!(data_dir, p.data_dir.clone());
    take!(node_id, p.node_id);
    take!(peer_listen, p.peer_listen.map(Some));
    take!(metrics_listen, p.metrics_listen.map(Some));
    take!(initial_cluster, p.initial_cluster.clone().map(Some));
    take!(
        initial_cluster_state,
        p.initial_cluster_state.map(|s| match s {
            config::InitialClusterState::New => InitialClusterState::New,
            config::InitialClusterState::Existing => InitialClusterState::Existing,
        })
    );
    take!(
        read_consistency,
        p.read_consistency.map(|r| match r {
            config::ReadConsistency::Linearizable => ReadConsistency::Linearizable,
            config::ReadConsistency::Stale => ReadConsistency::Stale,
        })
    );
    take!(snapshot_every, p.snapshot_every);
    take!(peer_cert, p.peer_cert.clone().map(Some));
    take!(peer_key, p.peer_key.clone().map(Some));
    take!(peer_ca, p.peer_ca.clone().map(Some));
    take!(tls_cert, p.tls_cert.clone().map(Some));
    take!(tls_key, p.tls_key.clone().map(Some));
    take!(max_connections, p.max_connections);
    take!(header_timeout, p.header_timeout);
    take!(max_requests_in_flight, p.max_requests_in_flight);
    take!(request_timeout, p.request_timeout);
    take!(
        max_allocation_candidates,
        file.placement.max_allocation_candidates
    );
    take!(
        enable_proxy_headers_parsing,
        file.oslo_middleware.enable_proxy_headers_parsing
    );
}

impl Args {
    /// How a port is served: TLS, and the connection limits of these flags.
    pub(crate) fn serve_config(
        &self,
        name: &'static str,
        tls: Option<Arc<TlsSource>>,
    ) -> placement_net::ServeConfig {
        let mut config = placement_net::ServeConfig::new(name, tls);
        config.max_connections = usize::try_from(self.max_connections).unwrap_or(usize::MAX);
        config.header_timeout = std::time::Duration::from_secs(self.header_timeout);
        config
    }

    /// The peer port's TLS, from --peer-cert/--peer-key/--peer-ca.
    pub(crate) fn peer_tls(&self) -> Result<Option<Arc<TlsSource>>, String> {
        let (Some(cert), Some(key), Some(ca)) = (&self.peer_cert, &self.peer_key, &self.peer_ca)
        else {
            return Ok(None);
        };
        let paths = TlsPaths {
            cert: cert.clone(),
            key: key.clone(),
            ca: Some(ca.clone()),
        };
        let tls =
            TlsSource::load("peer", paths, TlsRole::Peer).map_err(|e| format!("peer TLS: {e}"))?;
        let expected = placement_net::Identity::Node(self.node_id);
        if tls.identity() != expected {
            return Err(format!(
                "peer TLS: {} names {}, but this is node {} (its certificate must name {})",
                cert.display(),
                tls.identity(),
                self.node_id,
                placement_net::node_name(self.node_id)
            ));
        }
        Ok(Some(tls))
    }

    /// The API port's TLS, from --tls-cert/--tls-key.
    pub(crate) fn api_tls(&self) -> Result<Option<Arc<TlsSource>>, String> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Ok(None);
        };
        let paths = TlsPaths {
            cert: cert.clone(),
            key: key.clone(),
            ca: None,
        };
        TlsSource::load("api", paths, TlsRole::Api)
            .map(Some)
            .map_err(|e| format!("API TLS: {e}"))
    }
}
