//! Read-only queries over [`State`] that the API needs: the `GET /resource_providers` filter.
//!
//! The semantics follow Placement's `get_all_by_filters`, including the order in which it
//! gives up early: a missing `in_tree` provider, no provider with the required traits, or an
//! aggregate group with no known aggregate yields an empty result *before* unknown forbidden
//! traits or resource classes are reported. Everything here is a pure function of the state.
//!
//! Left out: allocation candidates (their own module).

use std::collections::BTreeSet;

use placement_types::{ResourceProvider, Uuid};

use crate::state::State;

/// The filters of `GET /resource_providers`, already parsed and checked for syntax.
#[derive(Debug, Clone, Default)]
pub struct ProviderFilter {
    pub name: Option<String>,
    pub uuid: Option<Uuid>,
    /// Any provider in the same tree as this one.
    pub in_tree: Option<Uuid>,
    /// Each set: the provider must be in at least one of its aggregates (sets are AND'ed).
    pub member_of: Vec<BTreeSet<Uuid>>,
    /// The provider must be in none of these aggregates.
    pub forbidden_aggs: BTreeSet<Uuid>,
    /// Each set: the provider must have at least one of its traits (sets are AND'ed).
    pub required_traits: Vec<BTreeSet<String>>,
    /// The provider must have none of these traits.
    pub forbidden_traits: BTreeSet<String>,
    /// Resource class and amount the provider must have room for.
    pub resources: Vec<(String, i64)>,
}

/// Why a filter cannot be evaluated (the API maps both to 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// `No such resource class X.`
    #[error("No such resource class {0}.")]
    UnknownResourceClass(String),
    /// `No such trait(s): X.`
    #[error("No such trait(s): {0}.")]
    UnknownTrait(String),
}

/// Whether `provider` could take `amount` more units of `rc` (Placement's capacity clause:
/// used + amount ≤ (total − reserved) × ratio, min_unit ≤ amount ≤ max_unit, step divides).
pub fn has_room(state: &State, provider: &ResourceProvider, rc: &str, amount: i64) -> bool {
    let Some(inv) = provider.inventories.get(rc) else {
        return false;
    };
    let used = state.usage(&provider.uuid, rc);
    (used + amount) as f64 <= (inv.total - inv.reserved) as f64 * inv.allocation_ratio
        && inv.min_unit <= amount
        && inv.max_unit >= amount
        && inv.step_size > 0
        && amount % inv.step_size == 0
}

/// The providers matching `filter`, in uuid order.
pub fn providers_matching<'a>(
    state: &'a State,
    filter: &ProviderFilter,
) -> Result<Vec<&'a ResourceProvider>, QueryError> {
    let tree_root = match filter.in_tree {
        Some(u) => match state.provider(&u) {
            Some(p) => Some(p.root),
            None => return Ok(Vec::new()),
        },
        None => None,
    };
    for set in &filter.required_traits {
        for t in set {
            if !state.trait_exists(t) {
                return Err(QueryError::UnknownTrait(t.clone()));
            }
        }
    }
    let has_required = |p: &ResourceProvider| {
        filter
            .required_traits
            .iter()
            .all(|set| set.iter().any(|t| p.traits.contains(t)))
    };
    if !filter.required_traits.is_empty() && !state.providers().any(has_required) {
        return Ok(Vec::new());
    }
    for t in &filter.forbidden_traits {
        if !state.trait_exists(t) {
            return Err(QueryError::UnknownTrait(t.clone()));
        }
    }
    // An aggregate "exists" when some provider is associated with it.
    if !filter.member_of.is_empty() {
        let known: BTreeSet<Uuid> = state
            .providers()
            .flat_map(|p| p.aggregates.iter().copied())
            .collect();
        if filter
            .member_of
            .iter()
            .any(|set| set.iter().all(|a| !known.contains(a)))
        {
            return Ok(Vec::new());
        }
    }
    for (rc, _) in &filter.resources {
        if !state.resource_class_exists(rc) {
            return Err(QueryError::UnknownResourceClass(rc.clone()));
        }
    }
    let out = state
        .providers()
        .filter(|p| filter.name.as_ref().is_none_or(|n| &p.name == n))
        .filter(|p| filter.uuid.is_none_or(|u| p.uuid == u))
        .filter(|p| tree_root.is_none_or(|r| p.root == r))
        .filter(|p| has_required(p))
        .filter(|p| !filter.forbidden_traits.iter().any(|t| p.traits.contains(t)))
        .filter(|p| {
            filter
                .member_of
                .iter()
                .all(|set| set.iter().any(|a| p.aggregates.contains(a)))
        })
        .filter(|p| {
            !filter
                .forbidden_aggs
                .iter()
                .any(|a| p.aggregates.contains(a))
        })
        .filter(|p| {
            filter
                .resources
                .iter()
                .all(|(rc, amount)| has_room(state, p, rc, *amount))
        })
        .collect();
    Ok(out)
}
