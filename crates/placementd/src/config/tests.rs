//! Whole-file tests: the fixtures rendered by kolla-ansible and openstack-helm, the example,
//! every typed option, the ignored list and the errors as an operator reads them.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::*;

/// A file of the repository, by its path from the workspace root.
fn repo_file(path: &str) -> PathBuf {
    placement_testkit::crate_dir!().join("../..").join(path)
}

const KOLLA: &str = "tests/fixtures/placement-conf/kolla.conf";
const HELM: &str = "tests/fixtures/placement-conf/helm.conf";
const EXAMPLE: &str = "deploy/placement.conf.example";

/// The path test texts are parsed as.
const CONF: &str = "/etc/placement/placement.conf";

fn parse(text: &str) -> ConfigFile {
    match ConfigFile::parse(Path::new(CONF), text) {
        Ok(config) => config,
        Err(e) => panic!("test config refused: {e}"),
    }
}

fn error(text: &str) -> String {
    match ConfigFile::parse(Path::new(CONF), text) {
        Ok(config) => panic!("test config accepted: {config:?}"),
        Err(e) => e.to_string(),
    }
}

/// Loads the repository's file `path` (see [`repo_file`]).
fn load(path: &str) -> ConfigFile {
    let path = repo_file(path);
    match ConfigFile::load(&path) {
        Ok(config) => config,
        Err(e) => panic!("{} refused: {e}", path.display()),
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// A unique scratch file under the system temp directory, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, bytes: &[u8]) -> TempFile {
        let path = std::env::temp_dir().join(format!(
            "placementd-config-test-{}-{name}",
            std::process::id()
        ));
        std::fs::write(&path, bytes).expect("the temp directory is writable");
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

// --- fixtures -------------------------------------------------------------------------------

#[test]
fn kolla_ansible_placement_conf_loads() {
    let c = load(KOLLA);
    let kolla = repo_file(KOLLA);
    let dir = kolla.parent().expect("a fixture has a directory");
    assert_eq!(c.default.debug, Some(false));
    assert_eq!(
        c.default.log_file,
        Some(PathBuf::from("/var/log/kolla/placement/placement-api.log"))
    );
    assert_eq!(c.oslo_middleware.enable_proxy_headers_parsing, Some(true));
    let ka = &c.keystone_authtoken;
    assert_eq!(
        ka.www_authenticate_uri.as_deref(),
        Some("https://openstack.example.com:5000")
    );
    assert_eq!(
        ka.auth_url.as_deref(),
        Some("https://openstack-int.example.com:5000")
    );
    assert_eq!(ka.auth_type, Some(AuthType::Password));
    assert_eq!(ka.project_domain_id.as_deref(), Some("default"));
    assert_eq!(ka.user_domain_id.as_deref(), Some("default"));
    assert_eq!(ka.project_name.as_deref(), Some("service"));
    assert_eq!(ka.username.as_deref(), Some("placement"));
    assert_eq!(ka.password.as_deref(), Some("kEy5t0nePa55w0rd"));
    assert_eq!(ka.cafile, None, "kolla renders `cafile =` without TLS");
    assert_eq!(ka.region_name.as_deref(), Some("RegionOne"));
    assert_eq!(
        c.oslo_policy.policy_file,
        Some(std::path::absolute(dir.join("policy.yaml")).expect("absolute"))
    );
    assert_eq!(c.api.auth_strategy, None);
    assert_eq!(c.cors, Cors::default());
    assert_eq!(
        c.ignored(),
        strings(&[
            "DEFAULT.state_path",
            "oslo_concurrency.lock_path",
            "placement_database.connection",
            "placement_database.connection_recycle_time",
            "placement_database.max_overflow",
            "placement_database.max_pool_size",
            "placement_database.max_retries",
            "cache.backend",
            "cache.enabled",
            "cache.memcache_servers",
            "keystone_authtoken.service_type",
            "keystone_authtoken.memcache_security_strategy",
            "keystone_authtoken.memcache_secret_key",
            "keystone_authtoken.memcached_servers",
            "profiler.enabled",
            "profiler.trace_sqlalchemy",
            "profiler.hmac_keys",
            "profiler.connection_string",
        ])
    );
}

#[test]
fn openstack_helm_placement_conf_loads() {
    let c = load(HELM);
    assert_eq!(c.default.debug, Some(false));
    assert_eq!(c.default.log_file, None);
    let ka = &c.keystone_authtoken;
    assert_eq!(
        ka.www_authenticate_uri.as_deref(),
        Some("http://keystone-api.openstack.svc.cluster.local:5000/v3"),
        "read from the deprecated auth_uri"
    );
    assert_eq!(ka.auth_type, Some(AuthType::Password));
    assert_eq!(ka.service_token_roles, Some(strings(&["service"])));
    assert_eq!(ka.service_token_roles_required, Some(true));
    assert_eq!(ka.project_domain_name.as_deref(), Some("service"));
    assert_eq!(ka.user_domain_name.as_deref(), Some("service"));
    assert_eq!(ka.username.as_deref(), Some("placement"));
    assert_eq!(ka.password.as_deref(), Some("password"));
    assert_eq!(
        ka.region_name, None,
        "helm sets os_region_name, which keystonemiddleware does not read"
    );
    assert_eq!(
        c.ignored(),
        strings(&[
            "DEFAULT.log_config_append",
            "DEFAULT.use_syslog",
            "keystone_authtoken.auth_version",
            "keystone_authtoken.memcache_secret_key",
            "keystone_authtoken.memcache_security_strategy",
            "keystone_authtoken.memcached_servers",
            "keystone_authtoken.os_region_name",
            "keystone_authtoken.service_type",
            "placement_database.connection",
        ])
    );
}

#[test]
fn the_example_loads_with_every_placementd_option() {
    let c = load(EXAMPLE);
    let addr = |s: &str| Some(s.parse::<SocketAddr>().expect("test address"));
    assert_eq!(c.api.auth_strategy, Some(AuthStrategy::Keystone));
    assert_eq!(c.default.use_json, Some(false));
    let ka = &c.keystone_authtoken;
    assert_eq!(ka.auth_type, Some(AuthType::Password));
    assert_eq!(ka.interface, Some(Interface::Internal));
    assert_eq!(ka.http_connect_timeout, Some(5));
    assert_eq!(ka.token_cache_time, Some(300));
    // The example leaves policy_file commented: policy.yaml beside it is then read if it
    // exists (settings.rs), and a named file must exist.
    assert_eq!(c.oslo_policy.policy_file, None);
    assert_eq!(c.oslo_policy.enforce_new_defaults, Some(true));
    assert_eq!(c.oslo_middleware.enable_proxy_headers_parsing, Some(true));
    assert_eq!(c.placement.max_allocation_candidates, Some(10_000));
    let p = &c.placementd;
    assert_eq!(p.node_id, Some(1));
    assert_eq!(p.listen, addr("10.0.0.1:8778"));
    assert_eq!(p.peer_listen, addr("10.0.0.1:8779"));
    assert_eq!(p.data_dir, Some(PathBuf::from("/var/lib/placementd")));
    assert_eq!(
        p.initial_cluster.as_deref(),
        Some(
            "1=10.0.0.1:8778@10.0.0.1:8779,2=10.0.0.2:8778@10.0.0.2:8779,\
             3=10.0.0.3:8778@10.0.0.3:8779"
        )
    );
    assert_eq!(p.initial_cluster_state, Some(InitialClusterState::New));
    assert_eq!(p.read_consistency, Some(ReadConsistency::Linearizable));
    assert_eq!(p.peer_ca, Some(PathBuf::from("/etc/placementd/ca.pem")));
    assert_eq!(p.max_connections, Some(4096));
    assert_eq!(p.request_timeout, Some(60));
    assert!(c.ignored().is_empty(), "ignored: {:?}", c.ignored());
}

// --- file reading ---------------------------------------------------------------------------

#[test]
fn a_file_over_one_mebibyte_is_refused() {
    let big = format!("[DEFAULT]\n{}", "# padding\n".repeat(2 * 1024 * 1024 / 10));
    assert!(big.len() > MAX_CONFIG_FILE_BYTES);
    let e = error(&big);
    assert_eq!(
        e,
        format!("{CONF}: larger than {MAX_CONFIG_FILE_BYTES} bytes: not a placement.conf")
    );
    let file = TempFile::new("big.conf", big.as_bytes());
    let e = ConfigFile::load(&file.0).expect_err("too large");
    assert!(matches!(e, ConfigError::TooLarge { .. }), "{e}");

    let exactly = format!("[DEFAULT]\n{}", "#".repeat(MAX_CONFIG_FILE_BYTES - 10));
    assert_eq!(exactly.len(), MAX_CONFIG_FILE_BYTES);
    parse(&exactly);
}

#[test]
fn load_errors_name_the_file() {
    let e = ConfigFile::load(Path::new("/nonexistent/placement.conf")).expect_err("missing");
    assert!(
        e.to_string()
            .starts_with("/nonexistent/placement.conf: cannot read: "),
        "{e}"
    );
    let file = TempFile::new("latin1.conf", b"[DEFAULT]\ndebug = \xe9\n");
    let e = ConfigFile::load(&file.0).expect_err("not UTF-8");
    assert_eq!(
        e.to_string(),
        format!("{}: not UTF-8 text", file.0.display())
    );
}

#[test]
fn load_makes_the_path_absolute() {
    let file = TempFile::new("relative.conf", b"[oslo_policy]\npolicy_file = p.yaml\n");
    let c = ConfigFile::load(&file.0).expect("loads");
    assert!(c.path.is_absolute());
    assert_eq!(
        c.oslo_policy.policy_file,
        Some(file.0.parent().expect("in temp dir").join("p.yaml"))
    );
}

#[test]
fn an_empty_file_sets_nothing() {
    let c = parse("");
    assert_eq!(c.default, DefaultOptions::default());
    assert_eq!(c.keystone_authtoken, KeystoneAuthtoken::default());
    assert_eq!(c.placementd, PlacementdOptions::default());
    assert_eq!(c.cors, Cors::default());
    assert!(c.ignored().is_empty());
    assert_eq!(c.path, PathBuf::from(CONF));
}

#[test]
fn a_byte_order_mark_is_skipped() {
    assert_eq!(
        parse("\u{feff}[DEFAULT]\ndebug = yes\n").default.debug,
        Some(true)
    );
}

// --- syntax errors --------------------------------------------------------------------------

#[test]
fn syntax_errors_name_file_and_line() {
    assert_eq!(
        error("debug = true\n"),
        format!(
            "{CONF}:1: `debug` is set before any [section] header (options must be in a \
             section, e.g. [DEFAULT])"
        )
    );
    assert_eq!(
        error("[DEFAULT]\n\ndebug\n"),
        format!("{CONF}:3: no `=` or `:` in this line (expected `option = value`): \"debug\"")
    );
}

// --- names ----------------------------------------------------------------------------------

#[test]
fn unknown_sections_are_errors_with_a_suggestion() {
    assert_eq!(
        error("[DEFAULT]\ndebug = true\n[keystone_authtokn]\nauth_url = x\n"),
        format!(
            "{CONF}:3: unknown section [keystone_authtokn] (did you mean [keystone_authtoken]?)"
        )
    );
    assert_eq!(
        error("[default]\ndebug = true\n"),
        format!("{CONF}:1: unknown section [default] (did you mean [DEFAULT]?)")
    );
    assert_eq!(
        error("[nova]\n"),
        format!("{CONF}:1: unknown section [nova]")
    );
}

#[test]
fn misspelt_options_are_errors_with_a_suggestion() {
    assert_eq!(
        error("[keystone_authtoken]\nauth_url = http://k\nauth_typ = password\n"),
        format!(
            "{CONF}:3: [keystone_authtoken] auth_typ: unknown option (did you mean auth_type?)"
        )
    );
    assert_eq!(
        error("[keystone_authtoken]\nauth-url = http://k\n"),
        format!("{CONF}:2: [keystone_authtoken] auth-url: unknown option (did you mean auth_url?)")
    );
    assert_eq!(
        error("[DEFAULT]\nDebug = true\n"),
        format!("{CONF}:2: [DEFAULT] Debug: unknown option (did you mean debug?)")
    );
    assert_eq!(
        error("[placementd]\nfrobnicate = 1\n"),
        format!("{CONF}:2: [placementd] frobnicate: unknown option")
    );
}

#[test]
fn the_first_bad_name_in_file_order_is_reported() {
    let e = error("[DEFAULT]\nnope = 1\n[nova]\n");
    assert!(e.starts_with(&format!("{CONF}:2:")), "{e}");
}

#[test]
fn section_names_are_case_insensitive_except_default() {
    let c = parse("[Keystone_AuthToken]\nusername = a\n[API]\nauth_strategy = noauth2\n");
    assert_eq!(c.keystone_authtoken.username.as_deref(), Some("a"));
    assert_eq!(c.api.auth_strategy, Some(AuthStrategy::Noauth2));
}

#[test]
fn repeated_sections_merge_and_the_last_value_wins() {
    let c = parse("[DEFAULT]\ndebug = true\n[api]\n[DEFAULT]\ndebug = false\n");
    assert_eq!(c.default.debug, Some(false));
}

// --- ignored --------------------------------------------------------------------------------

#[test]
fn ignored_options_are_listed_once_in_file_order() {
    let c = parse(
        "[oslo_messaging_rabbit]\nrabbit_ha_queues = true\n\
         [DEFAULT]\ntransport_url = rabbit://\nlog_config_append = /etc/x\n\
         [oslo_messaging_notifications]\ndriver = messagingv2\ndriver = log\n\
         [placement]\nallocation_conflict_retry_count = 10\n\
         [workarounds]\noptimize_for_wide_provider_trees = true\n\
         [keystone_authtoken]\nmemcache_pool_maxsize = 10\n\
         [Database]\nconnection = sqlite://\n",
    );
    assert_eq!(
        c.ignored(),
        strings(&[
            "oslo_messaging_rabbit.rabbit_ha_queues",
            "DEFAULT.transport_url",
            "DEFAULT.log_config_append",
            "oslo_messaging_notifications.driver",
            "placement.allocation_conflict_retry_count",
            "workarounds.optimize_for_wide_provider_trees",
            "keystone_authtoken.memcache_pool_maxsize",
            "database.connection",
        ])
    );
}

#[test]
fn every_ignored_section_accepts_anything() {
    for section in catalog::IGNORED_SECTIONS {
        let c = parse(&format!("[{section}]\nwhatever = 1\n"));
        assert_eq!(c.ignored(), strings(&[&format!("{section}.whatever")]));
    }
}

#[test]
fn a_shadowed_alias_is_ignored_and_a_used_one_is_not() {
    let c = parse(
        "[keystone_authtoken]\nauth_uri = http://old\nwww_authenticate_uri = http://new\n\
         tenant_name = used\n",
    );
    assert_eq!(
        c.keystone_authtoken.www_authenticate_uri.as_deref(),
        Some("http://new")
    );
    assert_eq!(c.keystone_authtoken.project_name.as_deref(), Some("used"));
    assert_eq!(c.ignored(), strings(&["keystone_authtoken.auth_uri"]));

    // Two aliases: the first in oslo.config's lookup order wins.
    let c = parse("[keystone_authtoken]\ntenant-name = second\ntenant_name = first\n");
    assert_eq!(c.keystone_authtoken.project_name.as_deref(), Some("first"));
    assert_eq!(c.ignored(), strings(&["keystone_authtoken.tenant-name"]));
}

// --- [DEFAULT] ------------------------------------------------------------------------------

#[test]
fn default_options() {
    let c = parse("[DEFAULT]\ndebug = True\nuse_json = on\nuse_stderr = 0\n");
    assert_eq!(c.default.debug, Some(true));
    assert_eq!(c.default.use_json, Some(true));
    assert_eq!(c.default.use_stderr, Some(false));
    assert_eq!(
        error("[DEFAULT]\ndebug = true # verbose\n"),
        format!(
            "{CONF}:2: [DEFAULT] debug: \"true # verbose\" is not a boolean (true/false, \
             yes/no, on/off, 1/0)"
        )
    );
}

#[test]
fn log_file_combines_with_log_dir_as_oslo_log_does() {
    let log = |text: &str| parse(text).default.log_file;
    assert_eq!(log("[DEFAULT]\n"), None);
    assert_eq!(
        log("[DEFAULT]\nlog_file = /var/log/p.log\n"),
        Some(PathBuf::from("/var/log/p.log"))
    );
    assert_eq!(
        log("[DEFAULT]\nlog_dir = /var/log/placement\nlog_file = api.log\n"),
        Some(PathBuf::from("/var/log/placement/api.log"))
    );
    assert_eq!(
        log("[DEFAULT]\nlog_dir = /var/log/placement\nlog_file = /abs.log\n"),
        Some(PathBuf::from("/abs.log"))
    );
    assert_eq!(
        log("[DEFAULT]\nlog_dir = /var/log/placement\n"),
        Some(PathBuf::from("/var/log/placement/placementd.log"))
    );
    assert_eq!(
        log("[DEFAULT]\nlog_file = api.log\n"),
        Some(PathBuf::from("/etc/placement/api.log"))
    );
    assert_eq!(
        log("[DEFAULT]\nlogdir = /l\nlogfile = f.log\n"),
        Some(PathBuf::from("/l/f.log")),
        "deprecated names"
    );
    assert_eq!(
        log("[DEFAULT]\nstate_path = /var/lib/p\nlog_dir = $state_path/log\n"),
        Some(PathBuf::from("/var/lib/p/log/placementd.log")),
        "substitution"
    );
}

// --- [api] ----------------------------------------------------------------------------------

#[test]
fn auth_strategy() {
    let get = |text: &str| parse(text).api.auth_strategy;
    assert_eq!(
        get("[api]\nauth_strategy = keystone\n"),
        Some(AuthStrategy::Keystone)
    );
    assert_eq!(
        get("[api]\nauth_strategy = noauth2\n"),
        Some(AuthStrategy::Noauth2)
    );
    assert_eq!(
        get("[DEFAULT]\nauth_strategy = noauth2\n"),
        Some(AuthStrategy::Noauth2),
        "deprecated group"
    );
    assert_eq!(
        get("[DEFAULT]\nauth_strategy = noauth2\n[api]\nauth_strategy = keystone\n"),
        Some(AuthStrategy::Keystone)
    );
    assert_eq!(
        error("[api]\nauth_strategy = noauth\n"),
        format!("{CONF}:2: [api] auth_strategy: \"noauth\" is not one of: keystone, noauth2")
    );
    assert_eq!(
        error("[DEFAULT]\nauth_strategy = Keystone\n"),
        format!("{CONF}:2: [DEFAULT] auth_strategy: \"Keystone\" is not one of: keystone, noauth2")
    );
}

// --- [keystone_authtoken] -------------------------------------------------------------------

#[test]
fn keystone_authtoken_every_option() {
    let c = parse(
        "[keystone_authtoken]\n\
         www_authenticate_uri = https://k.example.com:5000\n\
         auth_url = https://k-int:5000/v3\n\
         auth_type = v3password\n\
         username = placement\n\
         user_id = u1\n\
         password = \"s3cr$$t\"\n\
         project_name = service\n\
         project_id = p1\n\
         user_domain_name = Default\n\
         user_domain_id = default\n\
         project_domain_name = Default\n\
         project_domain_id = default\n\
         region_name = RegionTwo\n\
         interface = publicURL\n\
         cafile = ca.pem\n\
         certfile = /etc/pki/c.pem\n\
         keyfile = /etc/pki/k.pem\n\
         insecure = yes\n\
         http_connect_timeout = 7\n\
         http_request_max_retries = 5\n\
         token_cache_time = -1\n\
         service_token_roles = service, admin\n\
         service_token_roles_required = false\n\
         delay_auth_decision = true\n\
         include_service_catalog = false\n\
         auth_section = keystone_authtoken\n",
    );
    let expected = KeystoneAuthtoken {
        www_authenticate_uri: Some("https://k.example.com:5000".into()),
        auth_url: Some("https://k-int:5000/v3".into()),
        auth_type: Some(AuthType::V3Password),
        username: Some("placement".into()),
        user_id: Some("u1".into()),
        password: Some("s3cr$t".into()),
        project_name: Some("service".into()),
        project_id: Some("p1".into()),
        user_domain_name: Some("Default".into()),
        user_domain_id: Some("default".into()),
        project_domain_name: Some("Default".into()),
        project_domain_id: Some("default".into()),
        region_name: Some("RegionTwo".into()),
        interface: Some(Interface::Public),
        cafile: Some(PathBuf::from("/etc/placement/ca.pem")),
        certfile: Some(PathBuf::from("/etc/pki/c.pem")),
        keyfile: Some(PathBuf::from("/etc/pki/k.pem")),
        insecure: Some(true),
        http_connect_timeout: Some(7),
        http_request_max_retries: Some(5),
        token_cache_time: Some(-1),
        service_token_roles: Some(strings(&["service", "admin"])),
        service_token_roles_required: Some(false),
        delay_auth_decision: Some(true),
        include_service_catalog: Some(false),
    };
    assert_eq!(c.keystone_authtoken, expected);
    assert!(c.ignored().is_empty(), "{:?}", c.ignored());
}

#[test]
fn keystone_authtoken_invalid_values() {
    assert_eq!(
        error("[keystone_authtoken]\nauth_type = v3applicationcredential\n"),
        format!(
            "{CONF}:2: [keystone_authtoken] auth_type: \"v3applicationcredential\" is not one \
             of: password, v3password"
        )
    );
    assert_eq!(
        error("[keystone_authtoken]\nauth_plugin = token\n"),
        format!("{CONF}:2: [keystone_authtoken] auth_plugin: \"token\" is not one of: password, v3password")
    );
    assert_eq!(
        error("[keystone_authtoken]\ntoken_cache_time = -2\n"),
        format!(
            "{CONF}:2: [keystone_authtoken] token_cache_time: -2 is out of range: seconds, or \
             -1 to disable the token cache"
        )
    );
    assert_eq!(
        error("[keystone_authtoken]\nhttp_request_max_retries = 5000000000\n"),
        format!(
            "{CONF}:2: [keystone_authtoken] http_request_max_retries: 5000000000 is out of \
             range: must be from 0 to 4294967295"
        )
    );
    assert_eq!(
        error("[keystone_authtoken]\nhttp_connect_timeout = soon\n"),
        format!("{CONF}:2: [keystone_authtoken] http_connect_timeout: \"soon\" is not an integer")
    );
    assert_eq!(
        error("[keystone_authtoken]\ninterface = private\n"),
        format!(
            "{CONF}:2: [keystone_authtoken] interface: \"private\" is not one of: public, \
             internal, admin, publicURL, internalURL, adminURL"
        )
    );
    assert_eq!(
        error("[keystone_authtoken]\nauth_section = service_user\n"),
        format!(
            "{CONF}:2: [keystone_authtoken] auth_section: placementd reads the service \
             credentials from [keystone_authtoken] only: move the options of [service_user] \
             there and remove auth_section"
        )
    );
    assert_eq!(
        error("[keystone_authtoken]\npassword = pa$word\n"),
        format!(
            "{CONF}:2: [keystone_authtoken] password: `$word` refers to an option not set in \
             this file (write `$$` for a literal `$`)"
        )
    );
}

#[test]
fn keystone_authtoken_aliases() {
    let c = parse(
        "[keystone_authtoken]\nauth_uri = http://pub\nauth_plugin = password\n\
         user_name = u\ntenant_id = t\n",
    );
    let ka = &c.keystone_authtoken;
    assert_eq!(ka.www_authenticate_uri.as_deref(), Some("http://pub"));
    assert_eq!(ka.auth_type, Some(AuthType::Password));
    assert_eq!(ka.username.as_deref(), Some("u"));
    assert_eq!(ka.project_id.as_deref(), Some("t"));
    assert!(c.ignored().is_empty());
}

// --- [oslo_policy] --------------------------------------------------------------------------

#[test]
fn oslo_policy() {
    let c = parse(
        "[oslo_policy]\npolicy_file = policy.yaml\nenforce_new_defaults = false\n\
         enforce_scope = true\npolicy_dirs = policy.d\n",
    );
    assert_eq!(
        c.oslo_policy,
        OsloPolicy {
            policy_file: Some(PathBuf::from("/etc/placement/policy.yaml")),
            enforce_new_defaults: Some(false),
            enforce_scope: Some(true),
        }
    );
    assert_eq!(c.ignored(), strings(&["oslo_policy.policy_dirs"]));
    let c = parse("[oslo_policy]\npolicy_file = /srv/policy.yaml\n");
    assert_eq!(
        c.oslo_policy.policy_file,
        Some(PathBuf::from("/srv/policy.yaml"))
    );
}

// --- [cors] ---------------------------------------------------------------------------------

#[test]
fn cors_defaults_when_the_section_is_absent() {
    let c = parse("[DEFAULT]\n");
    assert_eq!(
        c.cors,
        Cors {
            allowed_origin: vec![],
            allow_credentials: true,
            expose_headers: strings(&[
                "X-Auth-Token",
                "X-Openstack-Request-Id",
                "X-Subject-Token",
                "X-Service-Token",
                "OpenStack-API-Version",
            ]),
            max_age: Some(3600),
            allow_methods: strings(&["GET", "PUT", "POST", "DELETE", "PATCH"]),
            allow_headers: strings(&[
                "X-Auth-Token",
                "X-Openstack-Request-Id",
                "X-Identity-Status",
                "X-Roles",
                "X-Service-Catalog",
                "X-User-Id",
                "X-Tenant-Id",
                "OpenStack-API-Version",
            ]),
        }
    );
}

#[test]
fn cors_options_override_the_defaults_one_by_one() {
    let c = parse(
        "[cors]\nallowed_origin = https://a.example.com,https://b.example.com\n\
         allow_credentials = false\nmax_age =\nallow_headers =\n",
    );
    assert_eq!(
        c.cors.allowed_origin,
        strings(&["https://a.example.com", "https://b.example.com"])
    );
    assert!(!c.cors.allow_credentials);
    assert_eq!(c.cors.max_age, None, "an empty max_age sends no header");
    assert!(c.cors.allow_headers.is_empty());
    assert_eq!(c.cors.allow_methods, Cors::default().allow_methods);
    assert_eq!(c.cors.expose_headers, Cors::default().expose_headers);

    let c = parse("[cors]\nallowed_origin = https://a\nmax_age = 60\nexpose_headers = X-A\nallow_methods = GET\n");
    assert_eq!(c.cors.max_age, Some(60));
    assert_eq!(c.cors.expose_headers, strings(&["X-A"]));
    assert_eq!(c.cors.allow_methods, strings(&["GET"]));
    assert_eq!(
        error("[cors]\nmax_age = -1\n"),
        format!("{CONF}:2: [cors] max_age: -1 is out of range: seconds, 0 or more")
    );
}

// --- [oslo_middleware] and [placement] ------------------------------------------------------

#[test]
fn oslo_middleware() {
    let c = parse("[oslo_middleware]\nenable_proxy_headers_parsing = True\n");
    assert_eq!(c.oslo_middleware.enable_proxy_headers_parsing, Some(true));
}

#[test]
fn placement_options() {
    let c = parse(
        "[placement]\nmax_allocation_candidates = -1\nrandomize_allocation_candidates = true\n\
         incomplete_consumer_project_id = p\nincomplete_consumer_user_id = u\n\
         allocation_candidates_generation_strategy = breadth-first\n",
    );
    assert_eq!(
        c.placement,
        PlacementOptions {
            max_allocation_candidates: Some(-1),
            randomize_allocation_candidates: Some(true),
            incomplete_consumer_project_id: Some("p".into()),
            incomplete_consumer_user_id: Some("u".into()),
        }
    );
    assert_eq!(
        c.ignored(),
        strings(&["placement.allocation_candidates_generation_strategy"])
    );
    assert_eq!(
        error("[placement]\nmax_allocation_candidates = -5\n"),
        format!(
            "{CONF}:2: [placement] max_allocation_candidates: -5 is out of range: a number of \
             candidates, or -1 for no limit"
        )
    );
}

// --- [placementd] ---------------------------------------------------------------------------

#[test]
fn placementd_every_option() {
    let c = parse(
        "[placementd]\nnode_id = 3\nlisten = 0.0.0.0:8778\npeer_listen = [::1]:8779\n\
         data_dir = data\ninitial_cluster = 1=a:1@a:2,3=c:1@c:2\n\
         initial_cluster_state = existing\nread_consistency = stale\nsnapshot_every = 500\n\
         peer_cert = tls/node3.pem\npeer_key = tls/node3-key.pem\npeer_ca = /etc/ca.pem\n\
         tls_cert = api.pem\ntls_key = api-key.pem\nmax_connections = 100\n\
         header_timeout = 5\nmax_requests_in_flight = 64\nrequest_timeout = 30\n\
         metrics_listen = 127.0.0.1:9000\n",
    );
    let addr = |s: &str| Some(s.parse::<SocketAddr>().expect("test address"));
    let etc = |s: &str| Some(PathBuf::from("/etc/placement").join(s));
    assert_eq!(
        c.placementd,
        PlacementdOptions {
            node_id: Some(3),
            listen: addr("0.0.0.0:8778"),
            peer_listen: addr("[::1]:8779"),
            data_dir: etc("data"),
            initial_cluster: Some("1=a:1@a:2,3=c:1@c:2".into()),
            initial_cluster_state: Some(InitialClusterState::Existing),
            read_consistency: Some(ReadConsistency::Stale),
            snapshot_every: Some(500),
            peer_cert: etc("tls/node3.pem"),
            peer_key: etc("tls/node3-key.pem"),
            peer_ca: Some(PathBuf::from("/etc/ca.pem")),
            tls_cert: etc("api.pem"),
            tls_key: etc("api-key.pem"),
            max_connections: Some(100),
            header_timeout: Some(5),
            max_requests_in_flight: Some(64),
            request_timeout: Some(30),
            metrics_listen: addr("127.0.0.1:9000"),
        }
    );
}

#[test]
fn placementd_invalid_values() {
    let cases = [
        ("node_id = 0", "0 is out of range: must be from 1 to 18446744073709551615"),
        ("listen = localhost:8778", "\"localhost:8778\" is not an address: expected IP:PORT, e.g. 10.0.0.1:8778 or [::1]:8778"),
        ("initial_cluster = 1=a:1@a:2,1=b:1@b:2", "node 1 is listed twice"),
        ("initial_cluster = 1=a:1", "`1=a:1` is not ID=API_ADDR@PEER_ADDR"),
        ("initial_cluster_state = old", "\"old\" is not one of: new, existing"),
        ("read_consistency = eventual", "\"eventual\" is not one of: linearizable, stale"),
        ("snapshot_every = 0", "0 is out of range: must be from 1 to 18446744073709551615"),
        ("max_connections = 2000000", "2000000 is out of range: must be from 1 to 1000000"),
        ("header_timeout = 0", "0 is out of range: must be from 1 to 3600"),
        ("request_timeout = 3601", "3601 is out of range: must be from 1 to 3600"),
        ("max_requests_in_flight = lots", "\"lots\" is not an integer"),
    ];
    for (line, message) in cases {
        let option = line.split(' ').next().expect("an option name");
        assert_eq!(
            error(&format!("[placementd]\n{line}\n")),
            format!("{CONF}:2: [placementd] {option}: {message}"),
        );
    }
}

// --- the catalog matches the readers --------------------------------------------------------

#[test]
fn the_catalog_lists_exactly_the_options_the_readers_read() {
    let sections = value::Sections::default();
    let reader = value::Reader::new(Path::new(CONF), &sections);
    DefaultOptions::read(&reader).expect("empty");
    ApiOptions::read(&reader).expect("empty");
    KeystoneAuthtoken::read(&reader).expect("empty");
    OsloPolicy::read(&reader).expect("empty");
    Cors::read(&reader).expect("empty");
    OsloMiddleware::read(&reader).expect("empty");
    PlacementOptions::read(&reader).expect("empty");
    PlacementdOptions::read(&reader).expect("empty");
    let asked: BTreeSet<(&str, &str)> = reader.asked().into_iter().collect();
    let listed: BTreeSet<(&str, &str)> = catalog::CHECKED
        .iter()
        .flat_map(|s| s.implemented.iter().map(move |o| (s.name, *o)))
        .collect();
    assert_eq!(asked, listed);
}
