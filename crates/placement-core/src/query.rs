//! Read-only queries over [`State`] that the API needs: the `GET /resource_providers` filter.
//!
//! The semantics follow Placement's `get_all_by_filters`, including the order in which it
//! gives up early: a missing `in_tree` provider, no provider with the required traits, or no
//! provider in the requested aggregates yields an empty result *before* unknown forbidden
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
///
/// `amount` is a client's number, up to `i64::MAX`: the sum is taken in `i128` and every
/// operand is converted to `f64` before it is combined, so nothing overflows.
pub fn has_room(state: &State, provider: &ResourceProvider, rc: &str, amount: i64) -> bool {
    let Some(inv) = provider.inventories.get(rc) else {
        return false;
    };
    let used = state.usage(&provider.uuid, rc);
    (i128::from(used) + i128::from(amount)) as f64
        <= (inv.total as f64 - inv.reserved as f64) * inv.allocation_ratio
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
    let in_aggs = |p: &ResourceProvider| {
        filter
            .member_of
            .iter()
            .all(|set| set.iter().any(|a| p.aggregates.contains(a)))
    };
    // Placement stops here when no provider is in the requested aggregates.
    if !filter.member_of.is_empty() && !state.providers().any(in_aggs) {
        return Ok(Vec::new());
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
        .filter(|p| in_aggs(p))
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

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use placement_types::{Inventory, ResourceProvider, Timestamp, Uuid};

    use super::*;
    use crate::state::Record;

    fn rp(n: u128, name: &str, traits: &[&str], aggs: &[u128], vcpu: i64) -> ResourceProvider {
        let uuid = Uuid::from_u128(n);
        let mut inventories = BTreeMap::new();
        if vcpu > 0 {
            inventories.insert("VCPU".to_string(), Inventory::with_total(vcpu));
        }
        ResourceProvider {
            uuid,
            name: name.into(),
            generation: 1,
            parent: None,
            root: uuid,
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
            inventories,
            traits: traits.iter().map(|t| t.to_string()).collect(),
            aggregates: aggs.iter().map(|a| Uuid::from_u128(*a)).collect(),
        }
    }

    fn state() -> State {
        let mut s = State::new();
        s.insert_record(Record::Provider(rp(1, "a", &["HW_CPU_X86_AVX"], &[100], 4)));
        s.insert_record(Record::Provider(rp(2, "b", &[], &[100, 200], 0)));
        s.insert_record(Record::Provider(rp(
            3,
            "c",
            &["HW_CPU_X86_AVX", "HW_CPU_X86_SSE"],
            &[],
            8,
        )));
        s
    }

    fn names(s: &State, f: &ProviderFilter) -> Result<Vec<String>, QueryError> {
        providers_matching(s, f).map(|v| v.into_iter().map(|p| p.name.clone()).collect())
    }

    #[test]
    fn filters_combine_like_placement() {
        let s = state();
        let set = |v: &[&str]| v.iter().map(|t| t.to_string()).collect::<BTreeSet<_>>();
        let agg = |v: &[u128]| {
            v.iter()
                .map(|a| Uuid::from_u128(*a))
                .collect::<BTreeSet<_>>()
        };
        let f = ProviderFilter {
            required_traits: vec![set(&["HW_CPU_X86_AVX"])],
            ..Default::default()
        };
        assert_eq!(names(&s, &f), Ok(vec!["a".into(), "c".into()]));
        let f = ProviderFilter {
            forbidden_traits: set(&["HW_CPU_X86_SSE"]),
            resources: vec![("VCPU".into(), 2)],
            ..Default::default()
        };
        assert_eq!(names(&s, &f), Ok(vec!["a".into()]));
        let f = ProviderFilter {
            member_of: vec![agg(&[100]), agg(&[200, 300])],
            ..Default::default()
        };
        assert_eq!(names(&s, &f), Ok(vec!["b".into()]));
        let f = ProviderFilter {
            forbidden_aggs: agg(&[100]),
            ..Default::default()
        };
        assert_eq!(names(&s, &f), Ok(vec!["c".into()]));
        let f = ProviderFilter {
            resources: vec![("VCPU".into(), 5)],
            ..Default::default()
        };
        assert_eq!(names(&s, &f), Ok(vec!["c".into()]));
    }

    #[test]
    fn unknown_names_and_early_exits() {
        let s = state();
        let f = ProviderFilter {
            resources: vec![("CUSTOM_NOPE".into(), 1)],
            ..Default::default()
        };
        assert_eq!(
            names(&s, &f),
            Err(QueryError::UnknownResourceClass("CUSTOM_NOPE".into()))
        );
        // No provider in the aggregate: empty before the class is looked up.
        let f = ProviderFilter {
            member_of: vec![[Uuid::from_u128(999)].into()],
            resources: vec![("CUSTOM_NOPE".into(), 1)],
            ..Default::default()
        };
        assert_eq!(names(&s, &f), Ok(vec![]));
        let f = ProviderFilter {
            required_traits: vec![["CUSTOM_NOPE".to_string()].into()],
            ..Default::default()
        };
        assert_eq!(
            names(&s, &f),
            Err(QueryError::UnknownTrait("CUSTOM_NOPE".into()))
        );
    }
}
