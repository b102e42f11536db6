//! Which sections and options a placement.conf may contain, and what placementd does with
//! each: the single table the loader checks a file against.
//!
//! Three kinds of section:
//! - **checked** sections list every option name they accept. Each name is either
//!   *implemented* (placementd reads it, `sections.rs`) or *ignored* (registered by
//!   OpenStack Placement 16.0.0 or a library it loads, but meaningless here: accepted and
//!   reported by `ConfigFile::ignored`). Any other name is an error, since oslo.config would
//!   silently drop it and a misspelt option is a configuration bug.
//! - **ignored** sections (the database, messaging, caching, profiling, …) are accepted with
//!   any content, every option reported as ignored: placementd has no counterpart for them,
//!   so there is nothing to get wrong.
//! - anything else is an unknown section: an error with a spelling suggestion.
//!
//! Deprecated names that oslo.config still reads for an implemented option are *aliases*
//! (e.g. `[keystone_authtoken] auth_uri` for `www_authenticate_uri`): the canonical name
//! wins when both are present, as in oslo.config, and the shadowed alias is reported as
//! ignored.
//!
//! # Sources
//! The option names were read from the registering code: Placement 16.0.0's
//! `placement/conf/*.py` and `placement/wsgi/__init__.py`; keystonemiddleware 13.0.1's
//! `auth_token/_opts.py` plus keystoneauth1 5.18's option lists (`password` and `v3password`
//! plugins, common, session and adapter options); oslo.log 8.3.2; oslo.policy 6.0.1;
//! oslo.middleware 8.2.0; oslo.messaging 18.3's `[DEFAULT]` options.

/// What a checked section accepts.
#[derive(Debug)]
pub(crate) struct SectionSpec {
    pub name: &'static str,
    /// Options placementd reads (canonical names).
    pub implemented: &'static [&'static str],
    /// Options accepted and ignored.
    pub ignored: &'static [&'static str],
}

/// A deprecated name oslo.config still reads for an implemented option.
pub(crate) struct Alias {
    pub section: &'static str,
    pub name: &'static str,
    /// The option it sets: `(section, name)`.
    pub canonical: (&'static str, &'static str),
}

/// How a (normalized) section name is treated.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SectionKind {
    Checked(&'static SectionSpec),
    Ignored,
}

/// Every checked section.
pub(crate) const CHECKED: &[SectionSpec] = &[
    DEFAULT,
    API,
    KEYSTONE_AUTHTOKEN,
    OSLO_POLICY,
    CORS,
    OSLO_MIDDLEWARE,
    PLACEMENT,
    WORKAROUNDS,
    PLACEMENTD,
];

/// Sections accepted whatever they contain, every option ignored.
pub(crate) const IGNORED_SECTIONS: &[&str] = &[
    "placement_database",
    "database",
    "oslo_concurrency",
    "profiler",
    "profiler_jaeger",
    "profiler_otlp",
    "cache",
    "healthcheck",
    "oslo_reports",
    "wsgi",
    "privsep",
    "vault",
    "ssl",
    "audit",
    "audit_middleware_notifications",
    "oslo_versionedobjects",
    "key_manager",
    "barbican",
];

/// Any section whose name starts with this is ignored (`oslo_messaging_rabbit`,
/// `oslo_messaging_notifications`, …).
pub(crate) const IGNORED_SECTION_PREFIX: &str = "oslo_messaging_";

pub(crate) const DEFAULT: SectionSpec = SectionSpec {
    name: "DEFAULT",
    implemented: &["debug", "log_file", "log_dir", "use_json", "use_stderr"],
    ignored: &[
        // oslo.log
        "log_config_append",
        "log_config",
        "log_date_format",
        "use_syslog",
        "use_journal",
        "syslog_log_facility",
        "log_color",
        "log_rotate_interval",
        "log_rotate_interval_type",
        "max_logfile_count",
        "max_logfile_size_mb",
        "log_rotation_type",
        "logging_context_format_string",
        "logging_default_format_string",
        "logging_debug_format_suffix",
        "logging_exception_prefix",
        "logging_user_identity_format",
        "default_log_levels",
        "publish_errors",
        "instance_format",
        "instance_uuid_format",
        "rate_limit_interval",
        "rate_limit_burst",
        "rate_limit_except_level",
        "fatal_deprecations",
        // Placement (paths, base, service options)
        "pybasedir",
        "state_path",
        "tempdir",
        "log_options",
        // oslo.messaging: Placement sends no notifications, but shared templates set these.
        "transport_url",
        "control_exchange",
        "rpc_response_timeout",
        "executor_thread_pool_size",
        "rpc_thread_pool_size",
        "rpc_ping_enabled",
    ],
};

pub(crate) const API: SectionSpec = SectionSpec {
    name: "api",
    implemented: &["auth_strategy"],
    ignored: &[],
};

pub(crate) const KEYSTONE_AUTHTOKEN: SectionSpec = SectionSpec {
    name: "keystone_authtoken",
    implemented: &[
        "www_authenticate_uri",
        "auth_url",
        "auth_type",
        "auth_section",
        "username",
        "user_id",
        "password",
        "project_name",
        "project_id",
        "user_domain_name",
        "user_domain_id",
        "project_domain_name",
        "project_domain_id",
        "region_name",
        "interface",
        "cafile",
        "certfile",
        "keyfile",
        "insecure",
        "http_connect_timeout",
        "http_request_max_retries",
        "token_cache_time",
        "service_token_roles",
        "service_token_roles_required",
        "delay_auth_decision",
        "include_service_catalog",
    ],
    ignored: &[
        // keystonemiddleware auth_token
        "auth_version",
        "cache",
        "memcached_servers",
        "memcache_servers",
        "memcache_security_strategy",
        "memcache_secret_key",
        "memcache_tls_enabled",
        "memcache_tls_cafile",
        "memcache_tls_certfile",
        "memcache_tls_keyfile",
        "memcache_tls_allowed_ciphers",
        "memcache_pool_dead_retry",
        "memcache_pool_maxsize",
        "memcache_pool_socket_timeout",
        "memcache_pool_unused_timeout",
        "memcache_pool_conn_get_timeout",
        "memcache_use_advanced_pool",
        "memcache_sasl_enabled",
        "memcache_username",
        "memcache_password",
        "enforce_token_bind",
        "service_type",
        // keystoneauth1 password / v3password plugins (the scope options other than the
        // project ones)
        "system_scope",
        "domain_id",
        "domain_name",
        "trust_id",
        "default_domain_id",
        "default_domain_name",
        // keystoneauth1 session
        "timeout",
        "collect_timing",
        "split_loggers",
        "tls_ciphers",
        "tls_min_version",
        // keystoneauth1 adapter
        "service_name",
        "valid_interfaces",
        "endpoint_override",
        "version",
        "min_version",
        "max_version",
        "connect_retries",
        "connect_retry_delay",
        "status_code_retries",
        "status_code_retry_delay",
        "retriable_status_codes",
        // Not registered by anything Placement loads, but rendered by openstack-helm's chart
        // (oslo.config drops it silently).
        "os_region_name",
    ],
};

pub(crate) const OSLO_POLICY: SectionSpec = SectionSpec {
    name: "oslo_policy",
    implemented: &["policy_file", "enforce_new_defaults", "enforce_scope"],
    ignored: &[
        "policy_default_rule",
        "policy_dirs",
        "remote_content_type",
        "remote_ssl_verify_server_crt",
        "remote_ssl_ca_crt_file",
        "remote_ssl_client_crt_file",
        "remote_ssl_client_key_file",
        "remote_timeout",
    ],
};

pub(crate) const CORS: SectionSpec = SectionSpec {
    name: "cors",
    implemented: &[
        "allowed_origin",
        "allow_credentials",
        "expose_headers",
        "max_age",
        "allow_methods",
        "allow_headers",
    ],
    ignored: &[],
};

pub(crate) const OSLO_MIDDLEWARE: SectionSpec = SectionSpec {
    name: "oslo_middleware",
    implemented: &["enable_proxy_headers_parsing"],
    ignored: &["max_request_body_size", "http_basic_auth_user_file"],
};

pub(crate) const PLACEMENT: SectionSpec = SectionSpec {
    name: "placement",
    implemented: &[
        "max_allocation_candidates",
        "randomize_allocation_candidates",
        "incomplete_consumer_project_id",
        "incomplete_consumer_user_id",
    ],
    ignored: &[
        // Writes are serialized by the Raft log: there is no generation conflict to retry.
        "allocation_conflict_retry_count",
        "allocation_candidates_generation_strategy",
    ],
};

pub(crate) const WORKAROUNDS: SectionSpec = SectionSpec {
    name: "workarounds",
    implemented: &[],
    ignored: &["optimize_for_wide_provider_trees"],
};

pub(crate) const PLACEMENTD: SectionSpec = SectionSpec {
    name: "placementd",
    implemented: &[
        "node_id",
        "listen",
        "peer_listen",
        "data_dir",
        "initial_cluster",
        "initial_cluster_state",
        "read_consistency",
        "snapshot_every",
        "peer_cert",
        "peer_key",
        "peer_ca",
        "tls_cert",
        "tls_key",
        "max_connections",
        "header_timeout",
        "max_requests_in_flight",
        "request_timeout",
        "metrics_listen",
    ],
    ignored: &[],
};

/// Deprecated names of implemented options, in the order oslo.config looks them up.
pub(crate) const ALIASES: &[Alias] = &[
    alias("DEFAULT", "auth_strategy", ("api", "auth_strategy")),
    alias("DEFAULT", "logfile", ("DEFAULT", "log_file")),
    alias("DEFAULT", "logdir", ("DEFAULT", "log_dir")),
    alias(KA, "auth_uri", (KA, "www_authenticate_uri")),
    alias(KA, "auth_plugin", (KA, "auth_type")),
    alias(KA, "user_name", (KA, "username")),
    alias(KA, "user-name", (KA, "username")),
    alias(KA, "tenant_name", (KA, "project_name")),
    alias(KA, "tenant-name", (KA, "project_name")),
    alias(KA, "tenant_id", (KA, "project_id")),
    alias(KA, "tenant-id", (KA, "project_id")),
];

const KA: &str = "keystone_authtoken";

const fn alias(
    section: &'static str,
    name: &'static str,
    canonical: (&'static str, &'static str),
) -> Alias {
    Alias {
        section,
        name,
        canonical,
    }
}

/// oslo.config's group-name normalization: `DEFAULT` is matched exactly, every other section
/// name case-insensitively (so `[default]` is not `[DEFAULT]`).
pub(crate) fn normalize_section(name: &str) -> String {
    if name == "DEFAULT" {
        name.to_string()
    } else {
        name.to_lowercase()
    }
}

/// How a normalized section name is treated; `None` for an unknown section.
pub(crate) fn section_kind(normalized: &str) -> Option<SectionKind> {
    if let Some(spec) = CHECKED.iter().find(|s| s.name == normalized) {
        return Some(SectionKind::Checked(spec));
    }
    let ignored = IGNORED_SECTIONS.contains(&normalized)
        || (normalized.starts_with(IGNORED_SECTION_PREFIX)
            && normalized.len() > IGNORED_SECTION_PREFIX.len());
    ignored.then_some(SectionKind::Ignored)
}

/// The aliases of a section: deprecated names accepted there.
pub(crate) fn aliases_in(section: &str) -> impl Iterator<Item = &'static Alias> + '_ {
    ALIASES.iter().filter(move |a| a.section == section)
}

/// The aliases of an implemented option, in lookup order.
pub(crate) fn aliases_of<'a>(
    section: &'a str,
    option: &'a str,
) -> impl Iterator<Item = &'static Alias> + 'a {
    ALIASES
        .iter()
        .filter(move |a| a.canonical == (section, option))
}

/// Whether `option` is a name a checked section accepts (implemented, ignored or alias).
pub(crate) fn is_known_option(spec: &SectionSpec, option: &str) -> bool {
    spec.implemented.contains(&option)
        || spec.ignored.contains(&option)
        || aliases_in(spec.name).any(|a| a.name == option)
}

/// Whether `option` of a checked section is accepted and ignored.
pub(crate) fn is_ignored_option(spec: &SectionSpec, option: &str) -> bool {
    spec.ignored.contains(&option)
}

/// The known section name closest to an unknown one, if one is close enough to be a typo.
pub(crate) fn suggest_section(unknown: &str) -> Option<&'static str> {
    let names = CHECKED
        .iter()
        .map(|s| s.name)
        .chain(IGNORED_SECTIONS.iter().copied())
        .chain(["oslo_messaging_notifications", "oslo_messaging_rabbit"]);
    closest(unknown, names)
}

/// The option name of `spec` closest to an unknown one, if one is close enough.
pub(crate) fn suggest_option(spec: &SectionSpec, unknown: &str) -> Option<&'static str> {
    let names = spec
        .implemented
        .iter()
        .chain(spec.ignored)
        .copied()
        .chain(aliases_in(spec.name).map(|a| a.name));
    closest(unknown, names)
}

/// The candidate with the smallest edit distance to `word` (compared case-insensitively,
/// `-` read as `_`), if that distance is at most a third of the word's length (and at least
/// 1, so that a one-letter slip in a short name is still caught).
fn closest(word: &str, candidates: impl Iterator<Item = &'static str>) -> Option<&'static str> {
    let key = |s: &str| s.to_lowercase().replace('-', "_");
    let word = key(word);
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .map(|c| (edit_distance(&word, &key(c)), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance (insertions, deletions, substitutions), over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = Vec::with_capacity(b.len() + 1);
        current.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            let insertion = current[j] + 1;
            let deletion = previous[j + 1] + 1;
            current.push(substitution.min(insertion).min(deletion));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("keystone_authtokn", "keystone_authtoken"), 1);
        assert_eq!(edit_distance("auth_typ", "auth_type"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            suggest_section("keystone_authtokn"),
            Some("keystone_authtoken")
        );
        assert_eq!(suggest_section("default"), Some("DEFAULT"));
        assert_eq!(suggest_section("oslo_polcy"), Some("oslo_policy"));
        assert_eq!(suggest_section("nova"), None);
        assert_eq!(
            suggest_option(&KEYSTONE_AUTHTOKEN, "auth_typ"),
            Some("auth_type")
        );
        assert_eq!(
            suggest_option(&KEYSTONE_AUTHTOKEN, "auth-url"),
            Some("auth_url")
        );
        assert_eq!(suggest_option(&DEFAULT, "Debug"), Some("debug"));
        assert_eq!(suggest_option(&DEFAULT, "something_else"), None);
    }

    #[test]
    fn section_kinds() {
        assert!(matches!(
            section_kind("DEFAULT"),
            Some(SectionKind::Checked(_))
        ));
        assert!(matches!(
            section_kind("placementd"),
            Some(SectionKind::Checked(_))
        ));
        assert!(matches!(section_kind("cache"), Some(SectionKind::Ignored)));
        assert!(matches!(
            section_kind("oslo_messaging_rabbit"),
            Some(SectionKind::Ignored)
        ));
        assert!(section_kind("oslo_messaging_").is_none());
        assert!(section_kind("default").is_none());
        assert!(section_kind("nova").is_none());
        assert_eq!(
            normalize_section("Keystone_AuthToken"),
            "keystone_authtoken"
        );
        assert_eq!(normalize_section("DEFAULT"), "DEFAULT");
        assert_eq!(normalize_section("Default"), "default");
    }

    #[test]
    fn no_name_is_listed_twice() {
        for spec in CHECKED {
            let mut seen = HashSet::new();
            let names = spec
                .implemented
                .iter()
                .chain(spec.ignored)
                .copied()
                .chain(aliases_in(spec.name).map(|a| a.name));
            for name in names {
                assert!(seen.insert(name), "[{}] {name} is listed twice", spec.name);
            }
        }
        let mut sections = HashSet::new();
        for name in CHECKED
            .iter()
            .map(|s| s.name)
            .chain(IGNORED_SECTIONS.iter().copied())
        {
            assert!(sections.insert(name), "section {name} is listed twice");
            assert_eq!(normalize_section(name), name, "{name} is not normalized");
        }
    }

    #[test]
    fn aliases_point_at_implemented_options() {
        for a in ALIASES {
            let spec = CHECKED
                .iter()
                .find(|s| s.name == a.canonical.0)
                .expect("an alias's canonical section is a checked section");
            assert!(
                spec.implemented.contains(&a.canonical.1),
                "alias {} -> [{}] {} is not implemented",
                a.name,
                a.canonical.0,
                a.canonical.1
            );
            assert!(
                CHECKED.iter().any(|s| s.name == a.section),
                "alias {} is in an unchecked section",
                a.name
            );
        }
    }
}
