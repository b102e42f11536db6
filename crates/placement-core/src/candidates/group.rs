//! The search for one request group, and the request-wide context every group shares.
//!
//! A group yields *group requests* ([`Areq`]): which providers give which amounts, and the
//! root of the tree the request serves (its anchor; for a sharing provider, the root of a
//! tree it shares with). Two paths, as in Placement:
//!
//! - **one provider** (every suffixed group; the unsuffixed group when the deployment has
//!   neither trees nor sharing providers): providers that alone have room for every class and
//!   carry the traits and aggregates; a sharing provider also serves every tree it shares an
//!   aggregate with;
//! - **several providers** (the unsuffixed group with trees or sharing providers): per class,
//!   the providers of each tree (plus sharing providers anchored to it) with room; trees that
//!   have every class are kept, and each combination of one provider per class whose
//!   providers together carry the required traits (and none carries a forbidden one) is a
//!   group request. `member_of` there is met by the provider or by its anchor root.
//!
//! `None` from [`search_group`] / [`WideContext::new`] is Placement's `ResourceProviderNotFound`:
//! the whole answer is empty.

use std::collections::{BTreeMap, BTreeSet};

use placement_types::{ResourceProvider, Uuid};

use super::{CandidateRequest, RequestGroup, SearchError, SHARING_TRAIT};
use crate::query::has_room;
use crate::state::State;

/// One group's answer for one anchor tree.
#[derive(Debug, Clone)]
pub(super) struct Areq {
    /// Root of the tree this request serves.
    pub anchor: Uuid,
    /// From a granular group: exactly one provider.
    pub same_provider: bool,
    /// (provider, class, amount); a (provider, class) pair appears at most once.
    pub resources: Vec<(Uuid, String, i64)>,
    /// The group's suffix → its providers.
    pub mappings: BTreeMap<String, BTreeSet<Uuid>>,
}

/// Request-wide facts, computed once.
pub(super) struct WideContext<'a> {
    pub state: &'a State,
    /// Whether any provider has a parent.
    pub has_trees: bool,
    /// Roots allowed by `root_required`; `None` when it was not given.
    pub anchor_roots: Option<BTreeSet<Uuid>>,
    /// Providers with [`SHARING_TRAIT`].
    pub sharing: BTreeSet<Uuid>,
}

impl<'a> WideContext<'a> {
    pub fn new(
        state: &'a State,
        request: &CandidateRequest,
    ) -> Result<Option<WideContext<'a>>, SearchError> {
        let has_trees = state.providers().any(|p| p.parent.is_some());
        let mut anchor_roots = None;
        if !(request.root_required.is_empty() && request.root_forbidden.is_empty()) {
            check_traits(state, request.root_required.iter())?;
            check_traits(state, request.root_forbidden.iter())?;
            let roots: BTreeSet<Uuid> = state
                .providers()
                .filter(|p| p.parent.is_none())
                .filter(|p| request.root_required.iter().all(|t| p.traits.contains(t)))
                .filter(|p| !request.root_forbidden.iter().any(|t| p.traits.contains(t)))
                .map(|p| p.uuid)
                .collect();
            if roots.is_empty() {
                return Ok(None);
            }
            anchor_roots = Some(roots);
        }
        let sharing = state
            .providers()
            .filter(|p| p.traits.contains(SHARING_TRAIT))
            .map(|p| p.uuid)
            .collect();
        Ok(Some(WideContext {
            state,
            has_trees,
            anchor_roots,
            sharing,
        }))
    }

    fn in_filtered_anchors(&self, root: &Uuid) -> bool {
        self.anchor_roots.as_ref().is_none_or(|a| a.contains(root))
    }
}

fn check_traits<'t>(
    state: &State,
    names: impl Iterator<Item = &'t String>,
) -> Result<(), SearchError> {
    for t in names {
        if !state.trait_exists(t) {
            return Err(SearchError::UnknownTrait(t.clone()));
        }
    }
    Ok(())
}

/// Providers in at least one aggregate of every set.
fn providers_in_aggs(state: &State, member_of: &[BTreeSet<Uuid>]) -> BTreeSet<Uuid> {
    state
        .providers()
        .filter(|p| {
            member_of
                .iter()
                .all(|set| set.iter().any(|a| p.aggregates.contains(a)))
        })
        .map(|p| p.uuid)
        .collect()
}

/// Providers in any of the aggregates.
fn providers_in_any_agg(state: &State, aggs: &BTreeSet<Uuid>) -> BTreeSet<Uuid> {
    state
        .providers()
        .filter(|p| aggs.iter().any(|a| p.aggregates.contains(a)))
        .map(|p| p.uuid)
        .collect()
}

/// (sharing provider, root of a tree with a provider in one of its aggregates), the sharing
/// provider's own root included when it is in any aggregate.
fn anchors_for_sharing(state: &State, sharing: &BTreeSet<Uuid>) -> BTreeSet<(Uuid, Uuid)> {
    let mut out = BTreeSet::new();
    for sp in sharing {
        let Some(p) = state.provider(sp) else {
            continue;
        };
        if p.aggregates.is_empty() {
            continue;
        }
        for q in state.providers() {
            if q.aggregates.iter().any(|a| p.aggregates.contains(a)) {
                out.insert((*sp, q.root));
            }
        }
    }
    out
}

/// Searches one group. `Ok(None)`: nothing can match, the whole answer is empty.
pub(super) fn search_group(
    ctx: &WideContext<'_>,
    g: &RequestGroup,
) -> Result<Option<Vec<Areq>>, SearchError> {
    let state = ctx.state;
    // Placement's RequestGroupSearchContext, in its order.
    for (rc, _) in &g.resources {
        if !state.resource_class_exists(rc) {
            return Err(SearchError::UnknownResourceClass(rc.clone()));
        }
    }
    let rps_in_aggs = if g.member_of.is_empty() {
        BTreeSet::new()
    } else {
        let s = providers_in_aggs(state, &g.member_of);
        if s.is_empty() {
            return Ok(None);
        }
        s
    };
    check_traits(state, g.required_traits.iter().flatten())?;
    check_traits(state, g.forbidden_traits.iter())?;
    let tree_root = match g.in_tree {
        Some(u) => match state.provider(&u) {
            Some(p) => Some(p.root),
            None => return Ok(None),
        },
        None => None,
    };
    let mut with_resource: Vec<BTreeSet<(Uuid, Uuid)>> = Vec::with_capacity(g.resources.len());
    for (rc, amount) in &g.resources {
        let set: BTreeSet<(Uuid, Uuid)> = state
            .providers()
            .filter(|p| tree_root.is_none_or(|r| p.root == r))
            .filter(|p| has_room(state, p, rc, *amount))
            .map(|p| (p.uuid, p.root))
            .collect();
        if set.is_empty() {
            return Ok(None);
        }
        with_resource.push(set);
    }

    if !g.use_same_provider() && (!ctx.sharing.is_empty() || ctx.has_trees) {
        if !g.required_traits.is_empty() {
            let any: BTreeSet<&String> = g.required_traits.iter().flatten().collect();
            if !state
                .providers()
                .any(|p| any.iter().any(|t| p.traits.contains(*t)))
            {
                return Ok(Some(Vec::new()));
            }
        }
        let cands = trees_matching_all(ctx, g, &rps_in_aggs, tree_root, &with_resource);
        return Ok(Some(multiple_providers(ctx, g, &cands)));
    }
    let tuples = provider_ids_matching(ctx, g, &rps_in_aggs, &with_resource);
    Ok(Some(single_provider(ctx, g, &tuples)))
}

fn has_any_trait(p: &ResourceProvider, traits: &BTreeSet<String>) -> bool {
    traits.iter().any(|t| p.traits.contains(t))
}

/// Placement's `get_provider_ids_matching`: (provider, root) pairs of providers that alone
/// meet the group. An empty `filtered` set means "not filtered yet", as there.
fn provider_ids_matching(
    ctx: &WideContext<'_>,
    g: &RequestGroup,
    rps_in_aggs: &BTreeSet<Uuid>,
    with_resource: &[BTreeSet<(Uuid, Uuid)>],
) -> Vec<(Uuid, Uuid)> {
    let state = ctx.state;
    let mut filtered: BTreeSet<Uuid> = BTreeSet::new();
    if !g.required_traits.is_empty() {
        filtered = state
            .providers()
            .filter(|p| {
                g.required_traits
                    .iter()
                    .all(|set| set.iter().any(|t| p.traits.contains(t)))
            })
            .map(|p| p.uuid)
            .collect();
        if filtered.is_empty() {
            return Vec::new();
        }
    }
    if !g.member_of.is_empty() {
        if filtered.is_empty() {
            filtered = rps_in_aggs.clone();
        } else {
            filtered.retain(|u| rps_in_aggs.contains(u));
        }
        if filtered.is_empty() {
            return Vec::new();
        }
    }
    let mut forbidden: BTreeSet<Uuid> = BTreeSet::new();
    if !g.forbidden_aggs.is_empty() {
        let bad = providers_in_any_agg(state, &g.forbidden_aggs);
        if !filtered.is_empty() {
            filtered.retain(|u| !bad.contains(u));
            if filtered.is_empty() {
                return Vec::new();
            }
        }
        forbidden.extend(bad);
    }
    if !g.forbidden_traits.is_empty() {
        let bad: BTreeSet<Uuid> = state
            .providers()
            .filter(|p| has_any_trait(p, &g.forbidden_traits))
            .map(|p| p.uuid)
            .collect();
        if !filtered.is_empty() {
            filtered.retain(|u| !bad.contains(u));
            if filtered.is_empty() {
                return Vec::new();
            }
        }
        forbidden.extend(bad);
    }
    let mut provs: Vec<(Uuid, Uuid)> = Vec::new();
    for (i, set) in with_resource.iter().enumerate() {
        let ids: BTreeSet<Uuid> = set.iter().map(|(u, _)| *u).collect();
        if i == 0 && filtered.is_empty() {
            filtered = ids.difference(&forbidden).copied().collect();
        } else {
            filtered.retain(|u| ids.contains(u));
        }
        if filtered.is_empty() {
            return Vec::new();
        }
        provs = set.iter().copied().collect();
    }
    if with_resource.is_empty() {
        // A resourceless group (1.36). Placement filters the pairs by `filtered`, which is
        // empty (so nothing matches) when the group has neither traits nor aggregates.
        provs = state
            .providers()
            .filter(|p| !forbidden.contains(&p.uuid))
            .map(|p| (p.uuid, p.root))
            .collect();
    }
    provs.retain(|(u, _)| filtered.contains(u));
    provs
}

/// Placement's `_alloc_candidates_single_provider`.
fn single_provider(ctx: &WideContext<'_>, g: &RequestGroup, tuples: &[(Uuid, Uuid)]) -> Vec<Areq> {
    let mut out = Vec::new();
    for &(rp, root) in tuples {
        let areq = Areq {
            anchor: root,
            same_provider: g.use_same_provider(),
            resources: g
                .resources
                .iter()
                .map(|(rc, n)| (rp, rc.clone(), *n))
                .collect(),
            mappings: BTreeMap::from([(g.suffix.clone(), BTreeSet::from([rp]))]),
        };
        if ctx.in_filtered_anchors(&root) {
            out.push(areq.clone());
        }
        let shares = ctx
            .state
            .provider(&rp)
            .is_some_and(|p| p.traits.contains(SHARING_TRAIT));
        if shares {
            for (_, anchor) in anchors_for_sharing(ctx.state, &BTreeSet::from([rp])) {
                if anchor == root || !ctx.in_filtered_anchors(&anchor) {
                    continue;
                }
                out.push(Areq {
                    anchor,
                    ..areq.clone()
                });
            }
        }
    }
    out
}

/// (provider, anchor root, index of the class in the group).
type RpCandidates = BTreeSet<(Uuid, Uuid, usize)>;

fn trees(c: &RpCandidates) -> BTreeSet<Uuid> {
    c.iter().map(|(_, a, _)| *a).collect()
}

/// Placement's `get_trees_matching_all`: per class, the providers with room in each tree
/// (sharing providers counted in every tree they share with), kept only for trees that have
/// every class. Traits are checked later, per combination.
fn trees_matching_all(
    ctx: &WideContext<'_>,
    g: &RequestGroup,
    rps_in_aggs: &BTreeSet<Uuid>,
    tree_root: Option<Uuid>,
    with_resource: &[BTreeSet<(Uuid, Uuid)>],
) -> RpCandidates {
    let state = ctx.state;
    let bad_aggs = if g.forbidden_aggs.is_empty() {
        BTreeSet::new()
    } else {
        providers_in_any_agg(state, &g.forbidden_aggs)
    };
    let mut all: RpCandidates = BTreeSet::new();
    for (i, set) in with_resource.iter().enumerate() {
        let mut rc_set: RpCandidates = set.iter().map(|&(rp, root)| (rp, root, i)).collect();
        if rc_set.is_empty() {
            return BTreeSet::new();
        }
        let mut sharing: BTreeSet<Uuid> = ctx.sharing.clone();
        if !rps_in_aggs.is_empty() {
            sharing.retain(|u| rps_in_aggs.contains(u));
        }
        sharing.retain(|u| {
            state
                .provider(u)
                .is_some_and(|p| set.contains(&(p.uuid, p.root)))
        });
        if !sharing.is_empty() && tree_root.is_none() {
            for (sp, anchor) in anchors_for_sharing(state, &sharing) {
                rc_set.insert((sp, anchor, i));
            }
        }
        if let Some(anchors) = &ctx.anchor_roots {
            rc_set.retain(|(_, a, _)| anchors.contains(a));
            if rc_set.is_empty() {
                return BTreeSet::new();
            }
        }
        if !g.member_of.is_empty() {
            rc_set.retain(|(rp, a, _)| rps_in_aggs.contains(rp) || rps_in_aggs.contains(a));
            if rc_set.is_empty() {
                return BTreeSet::new();
            }
        }
        if !g.forbidden_aggs.is_empty() {
            rc_set.retain(|(rp, a, _)| !(bad_aggs.contains(rp) || bad_aggs.contains(a)));
            if rc_set.is_empty() {
                return BTreeSet::new();
            }
        }
        if all.is_empty() {
            all = rc_set;
        } else {
            let both: BTreeSet<Uuid> = trees(&all).intersection(&trees(&rc_set)).copied().collect();
            all.extend(rc_set);
            all.retain(|(_, a, _)| both.contains(a));
        }
        if all.is_empty() {
            return BTreeSet::new();
        }
    }
    all
}

/// Placement's `_alloc_candidates_multiple_providers`: per anchor tree, every combination of
/// one provider per class whose providers together satisfy the group's traits.
fn multiple_providers(ctx: &WideContext<'_>, g: &RequestGroup, cands: &RpCandidates) -> Vec<Areq> {
    let state = ctx.state;
    let mut by_tree: BTreeMap<Uuid, Vec<Vec<Uuid>>> = BTreeMap::new();
    for &(rp, anchor, i) in cands {
        by_tree
            .entry(anchor)
            .or_insert_with(|| vec![Vec::new(); g.resources.len()])[i]
            .push(rp);
    }
    let mut out = Vec::new();
    for (anchor, lists) in by_tree {
        if lists.iter().any(|l| l.is_empty()) {
            continue;
        }
        let mut idx = vec![0usize; lists.len()];
        'product: loop {
            let combo: Vec<Uuid> = idx.iter().zip(&lists).map(|(&j, l)| l[j]).collect();
            if traits_ok(state, g, &combo) {
                out.push(Areq {
                    anchor,
                    same_provider: false,
                    resources: combo
                        .iter()
                        .zip(&g.resources)
                        .map(|(rp, (rc, n))| (*rp, rc.clone(), *n))
                        .collect(),
                    mappings: BTreeMap::from([(g.suffix.clone(), combo.iter().copied().collect())]),
                });
            }
            // Odometer over the class lists, last class fastest (itertools.product order).
            let mut k = lists.len();
            loop {
                if k == 0 {
                    break 'product;
                }
                k -= 1;
                idx[k] += 1;
                if idx[k] < lists[k].len() {
                    break;
                }
                idx[k] = 0;
            }
        }
    }
    out
}

/// Placement's `_check_traits_for_alloc_request`: no provider of the combination has a
/// forbidden trait, and together they have one trait of every required set.
fn traits_ok(state: &State, g: &RequestGroup, combo: &[Uuid]) -> bool {
    let mut all: BTreeSet<&String> = BTreeSet::new();
    for u in combo {
        let Some(p) = state.provider(u) else {
            return false;
        };
        if has_any_trait(p, &g.forbidden_traits) {
            return false;
        }
        all.extend(p.traits.iter());
    }
    g.required_traits
        .iter()
        .all(|set| set.iter().any(|t| all.contains(t)))
}
