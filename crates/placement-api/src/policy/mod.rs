//! Policy: whether a caller may perform an action, decided as oslo.policy 6.0.1 decides it
//! for Placement 16.0.0.
//!
//! # Rules
//!
//! Placement registers 38 rules ([`RuleDefault`], listed in [`Policy::registered_rules`]):
//! five base rules holding check strings, and one `placement:*` rule per API action, each
//! `rule:` one of the base rules. A rule's check string is in oslo's language (see
//! `policy/check.rs`: `role:admin or (role:reader and project_id:%(project_id)s)`). A policy
//! file ([`PolicyOptions::policy_file`], YAML or JSON, see `policy/file.rs`) may replace any
//! rule's check string and add alias rules that other check strings use as `rule:NAME`.
//!
//! # Deciding
//!
//! [`Policy::enforce`]`(rule, caller, target)`, as oslo's `Enforcer.authorize`:
//! 1. `rule` must be registered (a handler asking for another is a bug: refused, and a
//!    `debug_assert` fails);
//! 2. with `enforce_scope`, a token whose scope is not among the rule's `scope_types` is
//!    refused (oslo raises `InvalidScope`, which Placement turns into a 403). The scope is
//!    `system` for a system-scoped token, `domain` for a domain-scoped one, else `project`.
//!    Every Placement rule except `project_reader_api` is `project`-only, so a system admin
//!    is refused everything. The scope types are the registered ones even when the file
//!    overrides the check string, and rules reached through `rule:` are not scope-checked;
//! 3. the rule's effective check is evaluated against the caller's credentials and the
//!    target.
//!
//! The effective check of a rule is, in oslo's order:
//! - the file's check string, if the file sets the rule;
//! - the file's check string for the rule's *deprecated name* (`rule:admin_api` for
//!   Placement's base rules), if the file sets that name to something other than the
//!   deprecated default and other than `rule:<the new name>`;
//! - with `enforce_new_defaults = false`, `(new) or (deprecated)` for a rule whose default
//!   changed (the four base rules that were `role:admin`; so under the legacy defaults an
//!   admin, a `service`, and for `placement:usages` a reader of the target project pass);
//! - the registered default.
//!
//! # Credentials and target
//!
//! Credentials are oslo.context's `to_policy_values()` of the [`Caller`]: `user_id`,
//! `user_domain_id`, `project_id`, `project_domain_id`, `domain_id`, `roles`, `system_scope`
//! (`all` for a system-scoped token), `system` (the same, oslo's older name),
//! `is_admin_project` (`True`/`False`), `service_user_id`, `service_project_id`,
//! `service_roles`, plus `is_admin` (`True` when the caller has the role `admin`, as nova's
//! context sets it). The [`Target`] is what Placement passes to `context.can`: by default the
//! caller's own project and user ([`Target::of`]); `GET /usages` passes only the project
//! asked about ([`Target::project`]).
//! A credential or target value that is absent matches nothing, where oslo would compare
//! the string `None`: `project_id:%(project_id)s` is false, not true, for a system-scoped
//! caller and its default target.
//!
//! # Loading
//!
//! [`Policy::load`] fails (naming the file and the rule) when the file cannot be read, is not
//! a mapping of names to check strings, a check string does not parse, a `rule:` chain is a
//! cycle or deeper than [`MAX_RULE_CHAIN`], or the file sets a name that Placement does not
//! register and no check string refers to (a misspelt rule name would otherwise be ignored).
//! A `rule:` reference to a rule that exists nowhere is legal in oslo (it is false); it is
//! logged as a warning. A missing file is an error of its own kind
//! ([`PolicyError::is_not_found`]), so that the caller may fall back to the defaults.
//!
//! # Left out
//!
//! Reloading the file when it changes (oslo checks its mtime on every request), `policy_dirs`,
//! `http:` checks, and oslo's own lenience (a check string that does not parse is `!` there,
//! an error here; see `policy/check.rs` for the few other places where this is stricter).

mod check;
mod defaults;
mod file;
mod live;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub use defaults::{DeprecatedRule, RuleDefault, Scope};
pub use file::MAX_FILE_BYTES;
pub use live::LivePolicy;

use crate::context::Caller;
use check::{Check, Credential, Env};
use file::{FileError, RawRule};

/// Longest chain of `rule:` references a policy may have (`a` → `rule:b` → `rule:c` is 2).
/// Placement's own deepest is 2 (`placement:usages`); the bound keeps evaluation's recursion
/// small whatever a file says.
pub const MAX_RULE_CHAIN: u32 = 16;

/// How to load the policy (the `[oslo_policy]` options).
#[derive(Debug, Clone, Default)]
pub struct PolicyOptions {
    /// oslo.policy's `enforce_new_defaults` (default true in current oslo.policy): false
    /// also accepts each changed rule's deprecated default (`role:admin`).
    pub enforce_new_defaults: bool,
    /// oslo.policy's `enforce_scope`: a token whose scope (system/domain/project) is not in
    /// the rule's `scope_types` is refused.
    pub enforce_scope: bool,
    /// `[oslo_policy] policy_file` (YAML or JSON; JSON is YAML too), already resolved to a
    /// path.
    pub policy_file: Option<PathBuf>,
}

/// What a policy decision is about (Placement's `context.can(action, target)`; the default
/// target is `{project_id: caller's project, user_id: caller's user}`). An absent value is a
/// key the target lacks: a check substituting it (`%(project_id)s`) is false.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    pub project_id: Option<String>,
    pub user_id: Option<String>,
}

impl Target {
    /// Placement's default target: the caller's own project and user.
    pub fn of(caller: &Caller) -> Target {
        Target {
            project_id: caller.project_id.clone(),
            user_id: Some(caller.user_id.clone()),
        }
    }

    /// `{project_id: project}` (what `GET /usages` checks against).
    pub fn project(project: &str) -> Target {
        Target {
            project_id: Some(project.to_string()),
            user_id: None,
        }
    }
}

/// The loaded rules. Cheap to share (`Send + Sync`); decisions take `&self`.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Every rule by name: the registered ones and the file's aliases.
    rules: HashMap<String, Entry>,
    enforce_scope: bool,
}

#[derive(Debug, Clone)]
struct Entry {
    check: Check,
    /// `None` for an alias rule the file added.
    registered: Option<&'static RuleDefault>,
}

/// Why a policy file could not be loaded. Its `Display` names the file and, where one is at
/// fault, the rule: `policy file /etc/placement/policy.yaml: rule "placement:foo": ...`.
#[derive(Debug, thiserror::Error)]
#[error("policy file {}: {kind}", path.display())]
pub struct PolicyError {
    path: PathBuf,
    kind: ErrorKind,
}

#[derive(Debug, thiserror::Error)]
enum ErrorKind {
    #[error("not found")]
    NotFound,
    #[error("cannot read it: {0}")]
    Io(std::io::Error),
    #[error("larger than {MAX_FILE_BYTES} bytes")]
    TooLarge,
    #[error("not UTF-8 text")]
    NotUtf8,
    #[error("not YAML or JSON: {0}")]
    Yaml(String),
    #[error("{0}")]
    Shape(String),
    #[error("rule {name:?}: {message}")]
    Rule { name: String, message: String },
}

impl PolicyError {
    /// The file does not exist (oslo.policy then quietly uses the defaults, for its default
    /// file name).
    pub fn is_not_found(&self) -> bool {
        matches!(self.kind, ErrorKind::NotFound)
    }

    /// The policy file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The rule at fault, if one is.
    pub fn rule(&self) -> Option<&str> {
        match &self.kind {
            ErrorKind::Rule { name, .. } => Some(name),
            _ => None,
        }
    }

    fn from_file(path: &Path, e: FileError) -> PolicyError {
        let kind = match e {
            FileError::NotFound => ErrorKind::NotFound,
            FileError::Io(e) => ErrorKind::Io(e),
            FileError::TooLarge => ErrorKind::TooLarge,
            FileError::NotUtf8 => ErrorKind::NotUtf8,
            FileError::Yaml(m) => ErrorKind::Yaml(m),
            FileError::Shape(m) => ErrorKind::Shape(m),
            FileError::Rule { name, message } => ErrorKind::Rule { name, message },
        };
        PolicyError {
            path: path.to_path_buf(),
            kind,
        }
    }
}

/// A rule that made the rule set invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RuleError {
    name: String,
    message: String,
}

impl Policy {
    /// Loads the defaults and, if given, the policy file. Errors (file unreadable, not a
    /// YAML/JSON mapping of string → string, a check string that does not parse, a rule name
    /// Placement does not register and no other rule references with `rule:NAME`) name the
    /// file and the rule.
    pub fn load(options: &PolicyOptions) -> Result<Policy, PolicyError> {
        let Some(path) = &options.policy_file else {
            return Ok(Self::build_defaults(
                Vec::new(),
                options.enforce_new_defaults,
                options.enforce_scope,
            ));
        };
        let overrides = file::read(path).map_err(|e| PolicyError::from_file(path, e))?;
        build(
            overrides,
            options.enforce_new_defaults,
            options.enforce_scope,
        )
        .map_err(|e| PolicyError {
            path: path.clone(),
            kind: ErrorKind::Rule {
                name: e.name,
                message: e.message,
            },
        })
    }

    /// Placement's in-code defaults with enforce_scope on: `new_defaults` picks secure RBAC
    /// (true) or legacy (false: each rule OR its deprecated rule).
    pub fn defaults(new_defaults: bool) -> Policy {
        Self::build_defaults(Vec::new(), new_defaults, true)
    }

    /// Every rule except `admin_api` set to `@` (Placement's `OpenPolicyFixture`), new
    /// defaults, enforce_scope on.
    pub fn open() -> Policy {
        let everyone = defaults::RULES
            .iter()
            .filter(|r| r.name != "admin_api")
            .map(|r| (r.name.to_string(), RawRule::Text("@".to_string())))
            .collect();
        Self::build_defaults(everyone, true, true)
    }

    /// Builds a rule set made in code (not read from an operator's file).
    fn build_defaults(overrides: Vec<(String, RawRule)>, new: bool, scope: bool) -> Policy {
        match build(overrides, new, scope) {
            Ok(p) => p,
            Err(e) => panic!(
                "Placement's registered defaults form a valid policy (tested): rule {:?}: {}",
                e.name, e.message
            ),
        }
    }

    /// Whether `caller` may perform `rule` on `target`. An unknown rule name is refused
    /// (and is a bug of the caller: debug_assert it is registered).
    pub fn enforce(&self, rule: &str, caller: &Caller, target: &Target) -> bool {
        let entry = self
            .rules
            .get(rule)
            .and_then(|e| e.registered.map(|r| (e, r)));
        debug_assert!(
            entry.is_some(),
            "policy rule {rule:?} is not registered by Placement"
        );
        let Some((entry, registered)) = entry else {
            return false;
        };
        if self.enforce_scope && !registered.scope_types.is_empty() {
            let scope = token_scope(caller);
            if !registered.scope_types.contains(&scope) {
                tracing::debug!(rule, %scope, "policy refuses the token's scope");
                return false;
            }
        }
        let env = CallerEnv {
            caller,
            target,
            rules: &self.rules,
        };
        check::evaluate(&entry.check, &env, 0).unwrap_or_else(|_| {
            tracing::error!(rule, "policy evaluation followed too many rule: references");
            false
        })
    }

    /// Names of the registered rules, in Placement's order.
    pub fn rule_names(&self) -> impl Iterator<Item = &str> {
        defaults::RULES.iter().map(|r| r.name)
    }

    /// Placement's registered rules (names, defaults, descriptions, operations).
    pub fn registered_rules() -> &'static [RuleDefault] {
        defaults::RULES
    }

    /// The check a rule is enforced with, as oslo prints it (`(role:admin or role:service)`);
    /// `None` for a name that is neither registered nor an alias of the file.
    pub fn effective_check(&self, rule: &str) -> Option<String> {
        self.rules.get(rule).map(|e| e.check.to_string())
    }
}

/// The scope of the caller's token, as oslo's `_enforce_scope` determines it.
fn token_scope(caller: &Caller) -> Scope {
    if caller.system_scope {
        Scope::System
    } else if caller.domain_id.is_some() && caller.project_id.is_none() {
        Scope::Domain
    } else {
        Scope::Project
    }
}

/// Parses a default check string of the registered table.
fn parse_default(name: &str, text: &str) -> Result<Check, RuleError> {
    check::parse(text).map_err(|e| RuleError {
        name: name.to_string(),
        message: format!("registered default {text:?} does not parse: {e}"),
    })
}

/// The rule set: the file's rules, then each registered rule the file does not set.
fn build(
    overrides: Vec<(String, RawRule)>,
    enforce_new_defaults: bool,
    enforce_scope: bool,
) -> Result<Policy, RuleError> {
    let mut file_rules: HashMap<String, Check> = HashMap::new();
    let mut file_order = Vec::new();
    for (name, raw) in overrides {
        let parsed = match &raw {
            RawRule::Text(text) => check::parse(text),
            RawRule::List(list) => check::parse_list(list),
        };
        let check = parsed.map_err(|e| RuleError {
            name: name.clone(),
            message: match &raw {
                RawRule::Text(text) => format!("cannot parse {text:?}: {e}"),
                RawRule::List(_) => format!("cannot parse its check list: {e}"),
            },
        })?;
        if file_rules.insert(name.clone(), check).is_none() {
            file_order.push(name);
        }
    }

    let mut rules: HashMap<String, Entry> = file_rules
        .iter()
        .map(|(name, check)| {
            let entry = Entry {
                check: check.clone(),
                registered: defaults::registered(name),
            };
            (name.clone(), entry)
        })
        .collect();
    for default in defaults::RULES {
        if rules.contains_key(default.name) {
            continue;
        }
        let check = effective_default(default, &file_rules, enforce_new_defaults)?;
        rules.insert(
            default.name.to_string(),
            Entry {
                check,
                registered: Some(default),
            },
        );
    }

    refuse_unknown_names(&file_order, &rules)?;
    check_references(&rules)?;
    Ok(Policy {
        rules,
        enforce_scope,
    })
}

/// oslo's `_handle_deprecated_rule` for a registered rule the file does not set.
fn effective_default(
    default: &RuleDefault,
    file_rules: &HashMap<String, Check>,
    enforce_new_defaults: bool,
) -> Result<Check, RuleError> {
    let new = parse_default(default.name, default.check_str)?;
    let Some(deprecated) = default.deprecated else {
        return Ok(new);
    };
    let old = parse_default(deprecated.name, deprecated.check_str)?;
    if deprecated.name != default.name {
        if let Some(file_check) = file_rules.get(deprecated.name) {
            let names_new_rule = matches!(file_check, Check::Rule(n) if n == default.name);
            if *file_check != old && !names_new_rule {
                return Ok(file_check.clone());
            }
        }
    }
    if !enforce_new_defaults && deprecated.check_str != default.check_str {
        return Ok(Check::Or(vec![new, old]));
    }
    Ok(new)
}

/// A file rule must be registered, be a registered rule's deprecated name, or be referred to
/// by some other rule: anything else is most likely a misspelt rule name.
fn refuse_unknown_names(
    file_order: &[String],
    rules: &HashMap<String, Entry>,
) -> Result<(), RuleError> {
    let mut referenced: HashMap<&str, Vec<&str>> = HashMap::new();
    for (name, entry) in rules {
        entry.check.for_each_reference(&mut |r| {
            if r != name {
                referenced.entry(r).or_default().push(name);
            }
        });
    }
    for name in file_order {
        let known = defaults::registered(name).is_some()
            || defaults::RULES
                .iter()
                .any(|r| r.deprecated.is_some_and(|d| d.name == name))
            || referenced.contains_key(name.as_str());
        if !known {
            return Err(RuleError {
                name: name.clone(),
                message: "Placement has no such rule and no check string refers to it \
                          with rule:NAME (a misspelt rule name?)"
                    .to_string(),
            });
        }
    }
    let mut undefined: Vec<(&str, &str)> = referenced
        .iter()
        .filter(|(r, _)| !rules.contains_key(**r))
        .flat_map(|(r, users)| users.iter().map(move |u| (*u, *r)))
        .collect();
    undefined.sort_unstable();
    for (user, reference) in undefined {
        tracing::warn!(
            rule = user,
            reference,
            "policy rule refers to a rule that is not defined; that reference is false"
        );
    }
    Ok(())
}

/// Refuses cycles of `rule:` references and chains longer than [`MAX_RULE_CHAIN`]. An
/// iterative depth-first search, so that a file of many chained aliases cannot overflow the
/// stack here either.
fn check_references(rules: &HashMap<String, Entry>) -> Result<(), RuleError> {
    /// The longest chain of references from a rule, once known.
    enum Mark {
        OnPath,
        Done(u32),
    }
    struct Frame<'a> {
        name: &'a str,
        references: Vec<&'a str>,
        next: usize,
        chain: u32,
    }
    let open = |name: &str| {
        let mut references = Vec::new();
        if let Some(entry) = rules.get(name) {
            entry.check.for_each_reference(&mut |r| {
                if rules.contains_key(r) {
                    references.push(r);
                }
            });
        }
        references
    };
    let mut names: Vec<&str> = rules.keys().map(String::as_str).collect();
    names.sort_unstable();
    let mut marks: HashMap<&str, Mark> = HashMap::new();
    for start in names {
        if marks.contains_key(start) {
            continue;
        }
        marks.insert(start, Mark::OnPath);
        let mut path = vec![Frame {
            name: start,
            references: open(start),
            next: 0,
            chain: 0,
        }];
        while let Some(top) = path.last_mut() {
            let Some(&child) = top.references.get(top.next) else {
                let done = path.pop();
                if let Some(done) = done {
                    if done.chain > MAX_RULE_CHAIN {
                        return Err(RuleError {
                            name: done.name.to_string(),
                            message: format!(
                                "its rule: references nest deeper than {MAX_RULE_CHAIN}"
                            ),
                        });
                    }
                    marks.insert(done.name, Mark::Done(done.chain));
                    if let Some(parent) = path.last_mut() {
                        parent.chain = parent.chain.max(done.chain + 1);
                    }
                }
                continue;
            };
            top.next += 1;
            match marks.get(child) {
                Some(Mark::Done(chain)) => top.chain = top.chain.max(chain + 1),
                Some(Mark::OnPath) => {
                    let from = path.iter().position(|f| f.name == child).unwrap_or(0);
                    let cycle: Vec<&str> = path[from..]
                        .iter()
                        .map(|f| f.name)
                        .chain(std::iter::once(child))
                        .collect();
                    return Err(RuleError {
                        name: child.to_string(),
                        message: format!(
                            "its rule: references form a cycle: {}",
                            cycle.join(" -> ")
                        ),
                    });
                }
                None => {
                    marks.insert(child, Mark::OnPath);
                    path.push(Frame {
                        name: child,
                        references: open(child),
                        next: 0,
                        chain: 0,
                    });
                }
            }
        }
    }
    Ok(())
}

/// An optional credential: Python's `None` when absent.
fn optional(value: &Option<String>) -> Credential<'_> {
    value.as_deref().map_or(Credential::Absent, Credential::One)
}

/// The credentials and target of one decision.
struct CallerEnv<'a> {
    caller: &'a Caller,
    target: &'a Target,
    rules: &'a HashMap<String, Entry>,
}

impl Env for CallerEnv<'_> {
    fn credential(&self, path: &[String]) -> Credential<'_> {
        let c = self.caller;
        let boolean = |b: bool| Credential::One(if b { "True" } else { "False" });
        let [key] = path else {
            return Credential::Absent;
        };
        match key.as_str() {
            "user_id" => Credential::One(&c.user_id),
            "user_domain_id" => optional(&c.user_domain_id),
            "project_id" => optional(&c.project_id),
            "project_domain_id" => optional(&c.project_domain_id),
            "domain_id" => optional(&c.domain_id),
            "roles" => Credential::Many(&c.roles),
            "system_scope" | "system" if c.system_scope => Credential::One("all"),
            "is_admin_project" => boolean(c.is_admin_project),
            "is_admin" => boolean(c.has_role("admin")),
            "service_user_id" => optional(&c.service_user_id),
            "service_project_id" => optional(&c.service_project_id),
            "service_roles" => Credential::Many(&c.service_roles),
            _ => Credential::Absent,
        }
    }

    fn target(&self, key: &str) -> Option<&str> {
        match key {
            "project_id" => self.target.project_id.as_deref(),
            "user_id" => self.target.user_id.as_deref(),
            _ => None,
        }
    }

    fn rule(&self, name: &str) -> Option<&Check> {
        self.rules.get(name).map(|e| &e.check)
    }
}
