//! Placement's policy rules (`placement/policies/*.py`, listed in `spec/policy-defaults.yaml`)
//! and the three ways a deployment may enforce them.
//!
//! Every `placement:*` rule is scoped to projects: a system-scoped token
//! (`openstack-system-scope: all`) is refused whatever its roles (oslo.policy's
//! `enforce_scope`, on by default). Otherwise a rule's check string decides:
//!
//! | base rule | secure RBAC (new defaults) | legacy (deprecated defaults) |
//! |---|---|---|
//! | `admin_or_service_api` | admin or service | admin |
//! | `admin_or_project_reader_or_service_api` | admin, service, or reader of the target project | admin |
//! | `service_api` | service | admin |
//!
//! (Legacy is what Placement 16.0.0 does with `enforce_new_defaults = False`: its gabbits
//! require a project member/reader to be refused even its own usages.)
//!
//! [`PolicyMode::Open`] sets every rule to `@` (anyone), as Placement's `OpenPolicyFixture`.
//!
//! Left out: reading a policy file; rules are the defaults.

use crate::context::Caller;

/// How policy is enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PolicyMode {
    /// `enforce_new_defaults = False`: the deprecated checks (`role:admin`).
    #[default]
    Legacy,
    /// `enforce_new_defaults = True`: only the new (secure RBAC) checks.
    SecureRbac,
    /// Every rule is `@`.
    Open,
}

/// The check string behind a `placement:*` rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Base {
    AdminOrService,
    AdminOrProjectReaderOrService,
    Service,
}

fn base_of(rule: &str) -> Base {
    match rule {
        "placement:usages" => Base::AdminOrProjectReaderOrService,
        "placement:reshaper:reshape" => Base::Service,
        _ => Base::AdminOrService,
    }
}

/// Whether `caller` may perform `rule` on a target owned by `target_project`.
pub fn allowed(
    mode: PolicyMode,
    rule: &str,
    caller: &Caller,
    target_project: Option<&str>,
) -> bool {
    if mode == PolicyMode::Open {
        return true;
    }
    if caller.system_scope {
        return false;
    }
    let admin = caller.has_role("admin");
    if mode == PolicyMode::Legacy {
        return admin;
    }
    let service = caller.has_role("service");
    match base_of(rule) {
        Base::AdminOrService => admin || service,
        Base::Service => service,
        Base::AdminOrProjectReaderOrService => {
            let project_reader = caller.has_role("reader")
                && target_project.is_some()
                && caller.project_id.as_deref() == target_project;
            admin || service || project_reader
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(roles: &[&str], project: &str, system: bool) -> Caller {
        Caller {
            user_id: "u".into(),
            project_id: (!system).then(|| project.to_string()),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            system_scope: system,
        }
    }

    #[test]
    fn rules() {
        let admin = caller(&["admin"], "p", false);
        let member = caller(&["member", "reader"], "p", false);
        let service = caller(&["service"], "s", false);
        let sys_admin = caller(&["admin"], "", true);
        let m = PolicyMode::SecureRbac;
        assert!(allowed(
            m,
            "placement:resource_providers:list",
            &admin,
            None
        ));
        assert!(!allowed(
            m,
            "placement:resource_providers:list",
            &member,
            None
        ));
        assert!(!allowed(
            m,
            "placement:resource_providers:list",
            &sys_admin,
            None
        ));
        assert!(allowed(m, "placement:usages", &member, Some("p")));
        assert!(!allowed(m, "placement:usages", &member, Some("q")));
        assert!(!allowed(m, "placement:reshaper:reshape", &admin, None));
        assert!(allowed(m, "placement:reshaper:reshape", &service, None));
        assert!(allowed(
            PolicyMode::Legacy,
            "placement:reshaper:reshape",
            &admin,
            None
        ));
        assert!(allowed(
            PolicyMode::Open,
            "placement:reshaper:reshape",
            &member,
            None
        ));
    }
}
