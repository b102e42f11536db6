//! Decisions of whole policies: the defaults (legacy and secure RBAC), scope, the open policy,
//! policy files and their errors. The decision tables were checked against oslo.policy 6.0.1
//! enforcing Placement's registered rules (same callers, targets and files).

use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

const PROJECT: &str = "p";
const OTHER: &str = "q";

fn caller(roles: &[&str], project: Option<&str>) -> Caller {
    Caller {
        user_id: "u".into(),
        project_id: project.map(str::to_string),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        is_admin_project: true,
        ..Caller::default()
    }
}

fn project_caller(roles: &[&str]) -> Caller {
    caller(roles, Some(PROJECT))
}

fn system_caller(roles: &[&str]) -> Caller {
    Caller {
        system_scope: true,
        ..caller(roles, None)
    }
}

fn domain_caller(roles: &[&str]) -> Caller {
    Caller {
        domain_id: Some("d".into()),
        ..caller(roles, None)
    }
}

/// Placement's default target for `caller` (`ctx.authorize`).
fn own(policy: &Policy, rule: &str, caller: &Caller) -> bool {
    policy.enforce(rule, caller, &Target::of(caller))
}

/// The target `GET /usages?project_id=q` checks.
fn other(policy: &Policy, rule: &str, caller: &Caller) -> bool {
    policy.enforce(rule, caller, &Target::project(OTHER))
}

/// A policy file in a fresh temporary directory (removed when dropped).
struct TempFile {
    dir: PathBuf,
    path: PathBuf,
}

impl TempFile {
    fn new(name: &str, contents: &[u8]) -> TempFile {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "placement-policy-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let path = dir.join(name);
        std::fs::write(&path, contents).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        TempFile { dir, path }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn options(file: Option<&TempFile>, new_defaults: bool) -> PolicyOptions {
    PolicyOptions {
        enforce_new_defaults: new_defaults,
        enforce_scope: true,
        policy_file: file.map(|f| f.path.clone()),
    }
}

fn load_yaml(yaml: &str, new_defaults: bool) -> Result<Policy, PolicyError> {
    let file = TempFile::new("policy.yaml", yaml.as_bytes());
    Policy::load(&options(Some(&file), new_defaults))
}

fn loaded(yaml: &str, new_defaults: bool) -> Policy {
    load_yaml(yaml, new_defaults).unwrap_or_else(|e| panic!("{yaml:?}: {e}"))
}

/// The error message of a file that must not load, with the temporary path replaced by
/// `FILE`.
fn load_error(yaml: &str) -> String {
    let file = TempFile::new("policy.yaml", yaml.as_bytes());
    match Policy::load(&options(Some(&file), true)) {
        Ok(_) => panic!("{yaml:?} loaded"),
        Err(e) => e
            .to_string()
            .replace(&file.path.display().to_string(), "FILE"),
    }
}

const ALL_PLACEMENT_RULES: usize = 33;

fn placement_rules() -> impl Iterator<Item = &'static str> {
    Policy::registered_rules()
        .iter()
        .map(|r| r.name)
        .filter(|n| n.starts_with("placement:"))
}

#[test]
fn policy_is_shareable() {
    fn shareable<T: Send + Sync + std::fmt::Debug + 'static>() {}
    shareable::<Policy>();
    shareable::<PolicyError>();
    assert_eq!(placement_rules().count(), ALL_PLACEMENT_RULES);
    let policy = Policy::defaults(true);
    assert_eq!(policy.rule_names().count(), 38);
    assert_eq!(policy.rule_names().next(), Some("admin_api"));
}

/// The cases of the former three-mode `policy.rs`.
#[test]
fn former_modes() {
    let admin = project_caller(&["admin"]);
    let member = project_caller(&["member", "reader"]);
    let service = caller(&["service"], Some("s"));
    let sys_admin = system_caller(&["admin"]);
    let secure = Policy::defaults(true);
    let rp_list = "placement:resource_providers:list";
    assert!(own(&secure, rp_list, &admin));
    assert!(!own(&secure, rp_list, &member));
    assert!(!own(&secure, rp_list, &sys_admin));
    assert!(own(&secure, "placement:usages", &member));
    assert!(!other(&secure, "placement:usages", &member));
    assert!(!own(&secure, "placement:reshaper:reshape", &admin));
    assert!(own(&secure, "placement:reshaper:reshape", &service));
    assert!(own(
        &Policy::defaults(false),
        "placement:reshaper:reshape",
        &admin
    ));
    assert!(own(&Policy::open(), "placement:reshaper:reshape", &member));
}

/// Every base rule under both defaults: `(rule, caller, target is own project,
/// legacy, new)`.
#[test]
fn base_rules_legacy_and_new() {
    let admin = project_caller(&["admin"]);
    let service = caller(&["service"], Some("s"));
    let reader = project_caller(&["reader"]);
    let member = project_caller(&["member"]);
    let nobody = project_caller(&[]);
    let cases: &[(&str, &Caller, bool, bool, bool)] = &[
        ("admin_api", &admin, true, true, true),
        ("admin_api", &service, true, false, false),
        ("admin_api", &reader, true, false, false),
        // service_api: `role:service`, formerly `role:admin`.
        ("service_api", &admin, true, true, false),
        ("service_api", &service, true, true, true),
        ("service_api", &reader, true, false, false),
        ("admin_or_service_api", &admin, true, true, true),
        ("admin_or_service_api", &service, true, true, true),
        ("admin_or_service_api", &reader, true, false, false),
        ("admin_or_service_api", &member, true, false, false),
        // project_reader_api: `role:reader and project_id:%(project_id)s`.
        ("project_reader_api", &reader, true, true, true),
        ("project_reader_api", &reader, false, false, false),
        ("project_reader_api", &member, true, false, false),
        ("project_reader_api", &admin, true, true, false),
        ("project_reader_api", &admin, false, true, false),
        ("project_reader_api", &service, true, false, false),
        (
            "admin_or_project_reader_or_service_api",
            &admin,
            false,
            true,
            true,
        ),
        (
            "admin_or_project_reader_or_service_api",
            &service,
            false,
            true,
            true,
        ),
        (
            "admin_or_project_reader_or_service_api",
            &reader,
            true,
            true,
            true,
        ),
        (
            "admin_or_project_reader_or_service_api",
            &reader,
            false,
            false,
            false,
        ),
        (
            "admin_or_project_reader_or_service_api",
            &member,
            true,
            false,
            false,
        ),
        (
            "admin_or_project_reader_or_service_api",
            &nobody,
            true,
            false,
            false,
        ),
    ];
    let legacy = Policy::defaults(false);
    let new = Policy::defaults(true);
    for (rule, c, own_project, want_legacy, want_new) in cases {
        let decide = |p: &Policy| {
            if *own_project {
                own(p, rule, c)
            } else {
                other(p, rule, c)
            }
        };
        assert_eq!(decide(&legacy), *want_legacy, "legacy {rule} {:?}", c.roles);
        assert_eq!(decide(&new), *want_new, "new {rule} {:?}", c.roles);
    }
}

#[test]
fn effective_checks_print_as_oslo_does() {
    let legacy = Policy::defaults(false);
    let new = Policy::defaults(true);
    let show = |p: &Policy, r: &str| p.effective_check(r).unwrap_or_default();
    assert_eq!(
        show(&new, "admin_or_service_api"),
        "(role:admin or role:service)"
    );
    assert_eq!(
        show(&legacy, "admin_or_service_api"),
        "((role:admin or role:service) or role:admin)"
    );
    assert_eq!(show(&legacy, "admin_api"), "role:admin");
    assert_eq!(
        show(&legacy, "placement:usages"),
        "rule:admin_or_project_reader_or_service_api"
    );
    assert_eq!(show(&Policy::open(), "placement:usages"), "@");
    assert_eq!(new.effective_check("nope"), None);
}

/// What the conformance suite's gabbits require of the legacy defaults
/// (`LegacyRBACPolicyFixture`) and the new ones (`SecureRBACPolicyFixture`).
#[test]
fn conformance_expectations() {
    let legacy = Policy::defaults(false);
    let new = Policy::defaults(true);
    let admin = project_caller(&["admin", "member", "reader"]);
    let member = project_caller(&["member", "reader"]);
    let reader = project_caller(&["reader"]);
    let service = caller(&["service"], Some("s"));
    for rule in placement_rules() {
        // Legacy: a project member and reader is refused everything of its own project but
        // its own usages (the deprecated rule is OR-ed, not substituted), and usages of
        // another project.
        assert_eq!(
            own(&legacy, rule, &member),
            rule == "placement:usages",
            "{rule}"
        );
        assert!(!other(&legacy, rule, &member), "{rule}");
        assert!(own(&legacy, rule, &admin), "{rule}");
        assert!(other(&legacy, rule, &admin), "{rule}");
        // New: the service role may do everything; admin all but reshape.
        assert!(own(&new, rule, &service), "{rule}");
        assert_eq!(
            own(&new, rule, &admin),
            rule != "placement:reshaper:reshape",
            "{rule}"
        );
        assert_eq!(
            own(&new, rule, &reader),
            rule == "placement:usages",
            "{rule}"
        );
        assert!(!other(&new, rule, &reader), "{rule}");
        assert!(!other(&new, rule, &member), "{rule}");
    }
}

#[test]
fn scope() {
    let sys_admin = system_caller(&["admin"]);
    let sys_reader = system_caller(&["reader"]);
    let domain_admin = domain_caller(&["admin"]);
    let rp_list = "placement:resource_providers:list";
    for new in [false, true] {
        let scoped = Policy::defaults(new);
        assert!(!own(&scoped, rp_list, &sys_admin));
        assert!(!own(&scoped, rp_list, &domain_admin));
        assert!(!other(&scoped, "placement:usages", &sys_admin));
        let unscoped = Policy::load(&PolicyOptions {
            enforce_new_defaults: new,
            enforce_scope: false,
            policy_file: None,
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(own(&unscoped, rp_list, &sys_admin));
        assert!(own(&unscoped, rp_list, &domain_admin));
        assert!(!own(&unscoped, rp_list, &sys_reader));
        // A system reader has no project: `project_id:%(project_id)s` compares nothing
        // (oslo compares "None" with "None" and lets it pass).
        assert!(!own(&unscoped, "placement:usages", &sys_reader));
    }
    // project_reader_api has no scope_types: scope never refuses it.
    assert!(own(
        &Policy::defaults(false),
        "project_reader_api",
        &sys_admin
    ));
    // A project-scoped token whose caller also names a domain is still project-scoped.
    let both = Caller {
        domain_id: Some("d".into()),
        ..project_caller(&["admin"])
    };
    assert!(own(&Policy::defaults(true), rp_list, &both));
}

#[test]
fn open_policy() {
    let open = Policy::open();
    let nobody = project_caller(&[]);
    for rule in placement_rules() {
        assert!(own(&open, rule, &nobody), "{rule}");
        assert!(other(&open, rule, &nobody), "{rule}");
        assert!(
            !own(&open, rule, &system_caller(&["admin"])),
            "{rule}: scope still applies"
        );
    }
    assert!(!own(&open, "admin_api", &nobody));
    assert!(own(&open, "admin_api", &project_caller(&["admin"])));
}

#[test]
fn file_opens_a_rule_to_members() {
    let yaml = "\"placement:resource_providers:list\": \"role:member\"\n";
    let member = project_caller(&["member"]);
    let admin = project_caller(&["admin"]);
    for new in [false, true] {
        let policy = loaded(yaml, new);
        let rule = "placement:resource_providers:list";
        assert!(own(&policy, rule, &member));
        // The file replaces the rule: admin no longer passes it.
        assert!(!own(&policy, rule, &admin));
        // Scope types stay the registered ones.
        assert!(!own(&policy, rule, &system_caller(&["member"])));
        // Other rules keep their defaults.
        assert!(!own(&policy, "placement:resource_providers:show", &member));
        assert!(own(&policy, "placement:resource_providers:show", &admin));
    }
}

#[test]
fn file_with_an_alias_rule() {
    let yaml = "\
# A rule of our own, used by two of Placement's.
project_member_or_admin: role:admin or (role:member and project_id:%(project_id)s)
placement:usages: rule:project_member_or_admin
placement:traits:list: rule:project_member_or_admin
";
    let policy = loaded(yaml, true);
    let member = project_caller(&["member"]);
    assert!(own(&policy, "placement:usages", &member));
    assert!(!other(&policy, "placement:usages", &member));
    assert!(own(&policy, "placement:traits:list", &member));
    assert!(!own(&policy, "placement:traits:show", &member));
    assert_eq!(
        policy.effective_check("project_member_or_admin").as_deref(),
        Some("(role:admin or (role:member and project_id:%(project_id)s))")
    );
}

#[test]
fn file_in_json_and_in_the_old_list_form() {
    let json = r#"{
        "placement:resource_providers:show": [["role:member"], ["role:service", "project_id:%(project_id)s"]],
        "placement:traits:show": [],
        "placement:traits:update": ""
    }"#;
    let file = TempFile::new("policy.json", json.as_bytes());
    let policy = Policy::load(&options(Some(&file), true)).unwrap_or_else(|e| panic!("{e}"));
    let nobody = project_caller(&[]);
    let service = caller(&["service"], Some("s"));
    assert!(own(
        &policy,
        "placement:resource_providers:show",
        &project_caller(&["member"])
    ));
    assert!(own(&policy, "placement:resource_providers:show", &service));
    assert!(!other(
        &policy,
        "placement:resource_providers:show",
        &service
    ));
    assert!(own(&policy, "placement:traits:show", &nobody));
    assert!(own(&policy, "placement:traits:update", &nobody));
}

/// A file that sets the deprecated name `rule:admin_api` (and not the new rule) replaces every
/// base rule that deprecated it, whatever `enforce_new_defaults` says; unless it sets it to
/// the deprecated default itself.
#[test]
fn file_overriding_the_deprecated_name() {
    let superuser = project_caller(&["superuser"]);
    let admin = project_caller(&["admin"]);
    for new in [false, true] {
        let policy = loaded(
            "\"rule:admin_api\": role:superuser\nservice_api: role:service\n",
            new,
        );
        assert!(own(
            &policy,
            "placement:resource_providers:list",
            &superuser
        ));
        assert!(!own(&policy, "placement:resource_providers:list", &admin));
        assert!(
            !own(&policy, "placement:reshaper:reshape", &superuser),
            "service_api is set"
        );
        // admin_api has no deprecated rule.
        assert!(own(&policy, "admin_api", &admin));
    }
    let same = loaded("\"rule:admin_api\": role:admin\n", true);
    assert!(!own(&same, "placement:reshaper:reshape", &admin));
    let legacy_same = loaded("\"rule:admin_api\": role:admin\n", false);
    assert!(own(&legacy_same, "placement:reshaper:reshape", &admin));
}

#[test]
fn credentials_a_file_may_check() {
    let yaml = "\
placement:traits:list: is_admin:True
placement:traits:show: system_scope:all
placement:traits:update: service_roles:service and service_user_id:nova
placement:traits:delete: user_id:%(user_id)s and is_admin_project:True
placement:allocations:list: \"'p':%(project_id)s\"
placement:allocations:update: domain_id:d
";
    let file = TempFile::new("p.yaml", yaml.as_bytes());
    let policy = Policy::load(&PolicyOptions {
        enforce_new_defaults: true,
        enforce_scope: false,
        policy_file: Some(file.path.clone()),
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let admin = project_caller(&["Admin"]);
    let nobody = project_caller(&[]);
    assert!(own(&policy, "placement:traits:list", &admin));
    assert!(!own(&policy, "placement:traits:list", &nobody));
    assert!(own(&policy, "placement:traits:show", &system_caller(&[])));
    assert!(!own(&policy, "placement:traits:show", &nobody));
    let service_token = Caller {
        service_roles: vec!["service".into()],
        service_user_id: Some("nova".into()),
        ..nobody.clone()
    };
    assert!(own(&policy, "placement:traits:update", &service_token));
    assert!(!own(&policy, "placement:traits:update", &nobody));
    assert!(own(&policy, "placement:traits:delete", &nobody));
    assert!(
        !other(&policy, "placement:traits:delete", &nobody),
        "no user_id in the target"
    );
    let outsider = Caller {
        is_admin_project: false,
        ..nobody.clone()
    };
    assert!(!own(&policy, "placement:traits:delete", &outsider));
    assert!(own(&policy, "placement:allocations:list", &nobody));
    assert!(!other(&policy, "placement:allocations:list", &nobody));
    assert!(own(
        &policy,
        "placement:allocations:update",
        &domain_caller(&[])
    ));
}

#[test]
fn empty_files_change_nothing() {
    for contents in ["", "{}", "# nothing yet\n", "---\n"] {
        let policy = loaded(contents, true);
        assert!(!own(
            &policy,
            "placement:reshaper:reshape",
            &project_caller(&["admin"])
        ));
        assert!(own(
            &policy,
            "placement:reshaper:reshape",
            &project_caller(&["service"])
        ));
    }
}

#[test]
fn missing_file_is_its_own_error() {
    let file = TempFile::new("other.yaml", b"");
    let missing = file.dir.join("policy.yaml");
    let e = Policy::load(&PolicyOptions {
        policy_file: Some(missing.clone()),
        ..PolicyOptions::default()
    })
    .err();
    assert!(e.as_ref().is_some_and(PolicyError::is_not_found), "{e:?}");
    assert_eq!(e.as_ref().map(|e| e.path()), Some(missing.as_path()));
    // Neither a directory nor an unparsable file is "not found".
    let dir = Policy::load(&PolicyOptions {
        policy_file: Some(file.dir.clone()),
        ..PolicyOptions::default()
    });
    assert!(dir.is_err_and(|e| !e.is_not_found()));
}

#[test]
fn file_errors_name_the_file_and_the_rule() {
    assert_eq!(
        load_error("placement:resource_providers:list: role:admin role:member\n"),
        "policy file FILE: rule \"placement:resource_providers:list\": cannot parse \
         \"role:admin role:member\": checks must be joined by \"and\" or \"or\""
    );
    assert_eq!(
        load_error("placement:traits:list: (role:admin\n"),
        "policy file FILE: rule \"placement:traits:list\": cannot parse \"(role:admin\": \
         a \"(\" without its \")\""
    );
    assert_eq!(
        load_error("placement:resource_provider:list: role:admin\n"),
        "policy file FILE: rule \"placement:resource_provider:list\": Placement has no such \
         rule and no check string refers to it with rule:NAME (a misspelt rule name?)"
    );
    assert_eq!(
        load_error("placement:traits:list: 42\n"),
        "policy file FILE: rule \"placement:traits:list\": the check string must be a string, \
         not a number (42)"
    );
    assert_eq!(
        load_error("placement:traits:list:\n"),
        "policy file FILE: rule \"placement:traits:list\": no check string (null); write \"@\" \
         to allow anyone or \"!\" to allow no one"
    );
    assert_eq!(
        load_error("- placement:traits:list\n"),
        "policy file FILE: not a mapping of rule names to check strings (it is a list)"
    );
    assert!(load_error("a: [b\n").starts_with("policy file FILE: not YAML or JSON: "));
    assert!(load_error("placement:traits:list: http://opa/check\n").contains("not supported"));
    // An alias that refers only to itself is not "referred to".
    assert!(load_error("me: rule:me\n").contains("rule \"me\": Placement has no such rule"));
    let e = {
        let file = TempFile::new(
            "policy.yaml",
            b"placement:traits:list: '!!'\nplacement:nope: '@'\n",
        );
        Policy::load(&options(Some(&file), true)).err()
    };
    assert_eq!(
        e.as_ref().and_then(|e| e.rule()),
        Some("placement:traits:list")
    );
}

#[test]
fn rule_cycles_and_long_chains_are_refused() {
    let cycle = "\
a: rule:b
b: rule:c or role:x
c: not rule:a
placement:traits:list: rule:a
";
    assert_eq!(
        load_error(cycle),
        "policy file FILE: rule \"a\": its rule: references form a cycle: a -> b -> c -> a"
    );
    assert!(load_error("admin_api: rule:admin_api\n").contains("cycle: admin_api -> admin_api"));
    assert!(load_error("service_api: rule:placement:reshaper:reshape\n").contains("cycle"));
    // A chain of MAX_RULE_CHAIN references loads; one more does not.
    let chain = |n: u32| {
        let mut yaml = String::from("placement:traits:list: rule:alias0\n");
        for i in 0..n {
            yaml.push_str(&format!("alias{i}: rule:alias{}\n", i + 1));
        }
        yaml.push_str(&format!("alias{n}: role:x\n"));
        yaml
    };
    let policy = loaded(&chain(MAX_RULE_CHAIN - 1), true);
    assert!(own(
        &policy,
        "placement:traits:list",
        &project_caller(&["x"])
    ));
    assert!(load_error(&chain(MAX_RULE_CHAIN)).contains("nest deeper than"));
    // A long chain is refused without recursing through it.
    assert!(load_error(&chain(30_000)).contains("nest deeper than"));
}

#[test]
fn deep_nesting_is_refused_without_overflowing() {
    let deep = format!(
        "placement:traits:list: \"{}role:x{}\"\n",
        "(role:y and ".repeat(5_000),
        ")".repeat(5_000)
    );
    assert!(load_error(&deep).contains("nested more than"));
    let nots = format!(
        "placement:traits:list: \"{}role:x\"\n",
        "not ".repeat(200_000)
    );
    assert!(load_error(&nots).contains("nested more than"));
}

#[test]
fn undefined_references_are_false() {
    let policy = loaded(
        "placement:traits:list: rule:nowhere or role:x\nplacement:traits:show: not rule:nowhere\n",
        true,
    );
    let nobody = project_caller(&[]);
    assert!(!own(&policy, "placement:traits:list", &nobody));
    assert!(own(
        &policy,
        "placement:traits:list",
        &project_caller(&["x"])
    ));
    assert!(own(&policy, "placement:traits:show", &nobody));
}

#[test]
#[cfg_attr(debug_assertions, should_panic(expected = "is not registered"))]
fn unregistered_rules_are_refused() {
    let policy = loaded("alias: '@'\nplacement:traits:list: rule:alias\n", true);
    // Only registered rules may be enforced, not a file's aliases.
    assert!(!own(&policy, "alias", &project_caller(&["admin"])));
}
