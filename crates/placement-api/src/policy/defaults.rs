//! The rules Placement 16.0.0 registers (`placement/policies/*.py`; the list in
//! `spec/policy-defaults.yaml`): name, default check string, the token scopes allowed, and the
//! deprecated default that `enforce_new_defaults = False` still honours.
//!
//! The five base rules carry the check strings; every `placement:*` rule refers to one of
//! them (`rule:admin_or_service_api`, `rule:service_api`, or for `GET /usages`
//! `rule:admin_or_project_reader_or_service_api`). The base rules other than `admin_api`
//! were `role:admin` before secure RBAC; that is their deprecated rule, registered under
//! the name `rule:admin_api` (Placement spells it so; a policy file can only override it under
//! that exact key).

use std::fmt;

/// A token's scope, as oslo.policy's `scope_types` name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// A system-scoped token (`system: {all: true}`).
    System,
    /// A domain-scoped token.
    Domain,
    /// A project-scoped token (and any token neither system- nor domain-scoped).
    Project,
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scope::System => "system",
            Scope::Domain => "domain",
            Scope::Project => "project",
        })
    }
}

/// A default that a rule replaced (oslo.policy's `DeprecatedRule`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeprecatedRule {
    /// The name the old rule had; a policy file that sets this name (and not the new one)
    /// overrides the new rule with its check string.
    pub name: &'static str,
    pub check_str: &'static str,
}

/// One registered rule (oslo.policy's `RuleDefault` / `DocumentedRuleDefault`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleDefault {
    pub name: &'static str,
    pub check_str: &'static str,
    pub description: &'static str,
    /// The token scopes the rule admits when `enforce_scope` is on; empty: any.
    pub scope_types: &'static [Scope],
    pub deprecated: Option<DeprecatedRule>,
    /// The API calls the rule guards, as `(method, path)`.
    pub operations: &'static [(&'static str, &'static str)],
}

/// Placement's `base.DEPRECATED_ADMIN_POLICY`.
const ADMIN_DEPRECATED: DeprecatedRule = DeprecatedRule {
    name: "rule:admin_api",
    check_str: "role:admin",
};

/// Every rule Placement registers, in its registration order.
pub static RULES: &[RuleDefault] = &[
    RuleDefault {
        name: "admin_api",
        check_str: "role:admin",
        description: "Default rule for most placement APIs.",
        scope_types: &[Scope::Project],
        deprecated: None,
        operations: &[],
    },
    RuleDefault {
        name: "service_api",
        check_str: "role:service",
        description: "Default rule for service-to-service placement APIs.",
        scope_types: &[Scope::Project],
        deprecated: Some(ADMIN_DEPRECATED),
        operations: &[],
    },
    RuleDefault {
        name: "admin_or_service_api",
        check_str: "role:admin or role:service",
        description: "Default rule for most placement APIs.",
        scope_types: &[Scope::Project],
        deprecated: Some(ADMIN_DEPRECATED),
        operations: &[],
    },
    RuleDefault {
        name: "project_reader_api",
        check_str: "role:reader and project_id:%(project_id)s",
        description: "Default rule for Project level reader APIs.",
        scope_types: &[],
        deprecated: Some(ADMIN_DEPRECATED),
        operations: &[],
    },
    RuleDefault {
        name: "admin_or_project_reader_or_service_api",
        check_str: "role:admin or rule:project_reader_api or role:service",
        description: "Default rule for project level reader APIs.",
        scope_types: &[Scope::Project],
        deprecated: Some(ADMIN_DEPRECATED),
        operations: &[],
    },
    RuleDefault {
        name: "placement:resource_providers:list",
        check_str: "rule:admin_or_service_api",
        description: "List resource providers.",
        scope_types: &[Scope::Project],
        deprecated: None,
        operations: &[("GET", "/resource_providers")],
    },
    RuleDefault {
        name: "placement:resource_providers:create",
        check_str: "rule:admin_or_service_api",
        description: "Create resource provider.",
        scope_types: &[Scope::Project],
        deprecated: None,
        operations: &[("POST", "/resource_providers")],
    },
    RuleDefault {
        name: "placement:resource_providers:show",
        check_str: "rule:admin_or_service_api",
        description: "Show resource provider.",
        scope_types: &[Scope::Project],
        deprecated: None,
        operations: &[("GET", "/resource_providers/{uuid}")],
    },
    RuleDefault {
        name: "placement:resource_providers:update",
        check_str: "rule:admin_or_service_api",
        description: "Update resource provider.",
        scope_types: &[Scope::Project],
        deprecated: None,
        operations: &[("PUT", "/resource_providers/{uuid}")],
    },
    RuleDefault {
        name: "placement:resource_providers:delete",
        check_str: "rule:admin_or_service_api",
        description: "Delete resource provider.",
        scope_types: &[Scope::Project],
        deprecated: None,
        operations: &[("DELETE", "/resource_providers/{uuid}")],
    },
    RuleDefault {
        name: "placement:resource_classes:list",
        check_str: "rule:admin_or_service_api",
        description: "List resource classes.",
        scope_types: &[Scope::Project],
        deprecated: None,
        operations: &[("GET", "/resource_classes")],
    },
    RuleDefault {
        name: "placement:resource_classes:create",
        check_str: "rule:admin_or_service_api",
        description: "Create resource class.",
        scope_types: &[Scope::Project],
        deprecated: None,
        operations: &[("POST", "/resource_classes")],
    },
    RuleDefault {
        name: "placement:resource_classes:show",
        check_str: "rule:admin_or_service_api",
        description: "Show resource class.",
        scope_types: &[Scope::Project],
        deprecated: None,
        operations: &[("GET", "/resource_classes/{name}")],
    },
    RuleDefault {
        name: "placement:resource_classes:update",
        check_str: "rule:admin_or_service_api",
        description: "Update resource class.",
        scope_types: &[Scope::Project],
        deprecated: None,
        operations: &[("PUT", "/resource_classes/{name}")],
    },
    RuleDefault {
        name: "placement:resource_classes:delete",
        check_str: "rule:admin_or_service_api",
        description: "Delete resource class.",
        scope_types: &[Scope::Project],
        deprecated: None,
        operations: &[("DELETE", "/resource_classes/{name}")],
    },
    RuleDefault {
        name: "placement:resource_providers:inventories:list",
        check_str: "rule:admin_or_service_api",
        description: "List resource provider inventories.",
        scope_types: &[Scope::Project],
        deprecated: None,
        operations: &[("GET", "/resource_providers/{uuid}/inventories")],
    },
    RuleDefault {
        name: "placement:resource_providers:inventories:create",
        check_str: "rule:admin_or_service_api",
        description: "Create one resource provider inventory.",
        scope_types: &[Scope::Project],
        deprecated: None,
        operations: &[("POST", "/resource_providers/{uuid}/inventories")],
    },
    RuleDefault {
        name: "placement:resource_providers:inventories:show",
        check_str: "rule:admin_or_service_api",
        description: "Show resource provider inventory.",
        scope_types: &[Scope::Project],
        deprecated: None,
        operations: &[(
            "GET",
            "/resource_providers/{uuid}/inventories/{resource_class}",
        )],
    },
    RuleDefault {
        name: "placement:resource_providers:inventories:update",
        check_str: "rule:admin_or_service_api",
        description: "Update resource provider inventory.",
        scope_types: &[Scope::Project],
        deprecated: None,
        operations: &[
            ("PUT", "/resource_providers/{uuid}/inventories"),
            (
                "PUT",
                "/resource_providers/{uuid}/inventories/{resource_class}",
            ),
        ],
    },
    RuleDefault {
        name: "placement:resource_providers:inventories:delete",
        check_str: "rule:admin_or_service_api",
        description: "Delete resource provider inventory.",
        scope_types: &[Scope::Project],
        deprecated: None,
        operations: &[
            ("DELETE", "/resource_providers/{uuid}/inventories"),
            (
                "DELETE",
                "/resource_providers/{uuid}/inventories/{resource_class}",
            ),
        ],
    },
    RuleDefault {
        name: "placement:resource_providers:aggregates:list",
        check_str: "rule:admin_or_service_api",
        description: "List resource provider aggregates.",
        scope_types: &[Scope::Project],
        deprecated: None,
        operations: &[("GET", "/resource_providers/{uuid}/aggregates")],
    },
    RuleDefault {
        name: "placement:resource_providers:aggregates:update",
        check_str: "rule:admin_or_service_api",
        description: "Update resource provider aggregates.",
        scope_types: &[Scope::Project],
        deprecated: None,
        operations: &[("PUT", "/resource_providers/{uuid}/aggregates")],
    },
    RuleDefault {
        name: "placement:resource_providers:usages",
        check_str: "rule:admin_or_service_api",
        description: "List resource provider usages.",
        scope_types: &[Scope::Project],
        deprecated: None,
        operations: &[("GET", "/resource_providers/{uuid}/usages")],
    },
    RuleDefault {
        name: "placement:usages",
        check_str: "rule:admin_or_project_reader_or_service_api",
        description: "List total resource usages for a given project.",
        scope_types: &[Scope::Project],
        deprecated: None,
        operations: &[("GET", "/usages")],
    },
    RuleDefault {
        name: "placement:traits:list",
        check_str: "rule:admin_or_service_api",
        description: "List traits.",
        scope_types: &[Scope::Project],
        deprecated: None,
        operations: &[("GET", "/traits")],
    },
    RuleDefault {
        name: "placement:traits:show",
        check_str: "rule:admin_or_service_api",
        description: "Show trait.",
        scope_types: &[Scope::Project],
        deprecated: None,
        operations: &[("GET", "/traits/{name}")],
    },
    RuleDefault {
        name: "placement:traits:update",
        check_str: "rule:admin_or_service_api",
        description: "Update trait.",
        scope_types: &[Scope::Project],
        deprecated: None,
        operations: &[("PUT", "/traits/{name}")],
    },
    RuleDefault {
        name: "placement:traits:delete",
        check_str: "rule:admin_or_service_api",
        description: "Delete trait.",
        scope_types: &[Scope::Project],
        deprecated: None,
        operations: &[("DELETE", "/traits/{name}")],
    },
    RuleDefault {
        name: "placement:resource_providers:traits:list",
        check_str: "rule:admin_or_service_api",
        description: "List resource provider traits.",
        scope_types: &[Scope::Project],
        deprecated: None,
        operations: &[("GET", "/resource_providers/{uuid}/traits")],
    },
    RuleDefault {
        name: "placement:resource_providers:traits:update",
        check_str: "rule:admin_or_service_api",
        description: "Update resource provider traits.",
        scope_types: &[Scope::Project],
        deprecated: None,
        operations: &[("PUT", "/resource_providers/{uuid}/traits")],
    },
    RuleDefault {
        name: "placement:resource_providers:traits:delete",
        check_str: "rule:admin_or_service_api",
        description: "Delete resource provider traits.",
        scope_types: &[Scope::Project],
        deprecated: None,
        operations: &[("DELETE", "/resource_providers/{uuid}/traits")],
    },
    RuleDefault {
        name: "placement:allocations:manage",
        check_str: "rule:admin_or_service_api",
        description: "Manage allocations.",
        scope_types: &[Scope::Project],
        deprecated: None,
        operations: &[("POST", "/allocations")],
    },
    RuleDefault {
        name: "placement:allocations:list",
        check_str: "rule:admin_or_service_api",
        description: "List allocations.",
        scope_types: &[Scope::Project],
        deprecated: None,
        operations: &[("GET", "/allocations/{consumer_uuid}")],
    },
    RuleDefault {
        name: "placement:allocations:update",
        check_str: "rule:admin_or_service_api",
        description: "Update allocations.",
        scope_types: &[Scope::Project],
        deprecated: None,
        operations: &[("PUT", "/allocations/{consumer_uuid}")],
    },
    RuleDefault {
        name: "placement:allocations:delete",
        check_str: "rule:admin_or_service_api",
        description: "Delete allocations.",
        scope_types: &[Scope::Project],
        deprecated: None,
        operations: &[("DELETE", "/allocations/{consumer_uuid}")],
    },
    RuleDefault {
        name: "placement:resource_providers:allocations:list",
        check_str: "rule:admin_or_service_api",
        description: "List resource provider allocations.",
        scope_types: &[Scope::Project],
        deprecated: None,
        operations: &[("GET", "/resource_providers/{uuid}/allocations")],
    },
    RuleDefault {
        name: "placement:allocation_candidates:list",
        check_str: "rule:admin_or_service_api",
        description: "List allocation candidates.",
        scope_types: &[Scope::Project],
        deprecated: None,
        operations: &[("GET", "/allocation_candidates")],
    },
    RuleDefault {
        name: "placement:reshaper:reshape",
        check_str: "rule:service_api",
        description: "Reshape Inventory and Allocations.",
        scope_types: &[Scope::Project],
        deprecated: None,
        operations: &[("POST", "/reshaper")],
    },
];

/// The registered rule called `name`.
pub fn registered(name: &str) -> Option<&'static RuleDefault> {
    RULES.iter().find(|r| r.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_placement_rules_are_project_scoped() {
        for (i, r) in RULES.iter().enumerate() {
            assert!(
                RULES[..i].iter().all(|o| o.name != r.name),
                "{} registered twice",
                r.name
            );
            if r.name.starts_with("placement:") {
                assert_eq!(r.scope_types, &[Scope::Project], "{}", r.name);
                assert!(!r.operations.is_empty(), "{}", r.name);
                assert!(r.deprecated.is_none(), "{}", r.name);
            }
        }
        assert_eq!(RULES.len(), 38);
        assert_eq!(RULES.iter().filter(|r| r.deprecated.is_some()).count(), 4);
        assert_eq!(
            registered("placement:usages").map(|r| r.check_str),
            Some("rule:admin_or_project_reader_or_service_api")
        );
        assert!(registered("placement:nope").is_none());
    }
}
