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
//!   have every class, and some combination of one provider per class whose providers
//!   together carry the required traits (and none carries a forbidden one), are kept; each
//!   such combination is a group request. `member_of` there is met by the provider or by its
//!   anchor root.
//!
//! `None` from [`search_group`] / [`WideContext::new`] is Placement's `ResourceProviderNotFound`:
//! the whole answer is empty. A group's result is kept per anchor ([`Matches`]); its group
//! requests are built when the merge reaches the anchor.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::{BTreeMap, BTreeSet, HashSet};

use placement_types::{ResourceProvider, Uuid};

use super::{CandidateRequest, RequestGroup, SearchError, SHARING_TRAIT};
use crate::state::State;

/// One group's answer for one anchor tree.
#[derive(Debug, Clone)]
pub(super) struct Areq {
    /// From a granular group: exactly one provider.
    pub same_provider: bool,
    /// (provider, class, amount); a (provider, class) pair appears at most once.
    pub resources: Vec<(Uuid, String, i64)>,
    /// The group's suffix → its providers.
    pub mappings: BTreeMap<String, BTreeSet<Uuid>>,
}

/// A group's matches per anchor root. The group requests of an anchor are built only when
/// the merge reaches that anchor, so a small `limit` does not pay for every tree. Sorted
/// vectors rather than maps: they are built in bulk and searched by bisection.
#[derive(Debug, Default)]
pub(super) struct Matches {
    /// `false`: each provider alone serves the group (one list); `true`: one list per class
    /// of the group, in request order.
    multi: bool,
    /// The anchors every list serves (and, for `multi`, where some combination has the
    /// group's traits), sorted, unique.
    anchors: Vec<Uuid>,
    /// Per list, (anchor, provider) pairs, sorted, unique.
    lists: Vec<Vec<(Uuid, Uuid)>>,
}

/// The providers a sorted (anchor, provider) list has for one anchor.
fn providers_for(list: &[(Uuid, Uuid)], anchor: &Uuid) -> Vec<Uuid> {
    let start = list.partition_point(|(a, _)| a < anchor);
    list[start..]
        .iter()
        .take_while(|(a, _)| a == anchor)
        .map(|(_, rp)| *rp)
        .collect()
}

/// The anchors present in every list, sorted.
fn common_anchors(lists: &[Vec<(Uuid, Uuid)>]) -> Vec<Uuid> {
    let Some((first, rest)) = lists.split_first() else {
        return Vec::new();
    };
    let mut anchors: Vec<Uuid> = first.iter().map(|(a, _)| *a).collect();
    anchors.dedup();
    anchors.retain(|a| {
        rest.iter().all(|l| {
            let i = l.partition_point(|(x, _)| x < a);
            l.get(i).is_some_and(|(x, _)| x == a)
        })
    });
    anchors
}

impl Matches {
    /// Each list is sorted here; a stable sort, so lists made of a few sorted runs (the
    /// usual case) cost a merge, not a full sort.
    fn new(multi: bool, mut lists: Vec<Vec<(Uuid, Uuid)>>) -> Matches {
        for l in &mut lists {
            if !l.is_sorted() {
                l.sort();
            }
            l.dedup();
        }
        let anchors = common_anchors(&lists);
        Matches {
            multi,
            anchors,
            lists,
        }
    }

    pub fn len(&self) -> usize {
        self.anchors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }

    pub fn contains(&self, anchor: &Uuid) -> bool {
        self.anchors.binary_search(anchor).is_ok()
    }

    /// The anchors, in uuid order.
    pub fn anchors(&self) -> &[Uuid] {
        &self.anchors
    }

    /// The anchors every one of several groups' matches has, in uuid order.
    pub fn common_anchors(all: &[Matches]) -> Vec<Uuid> {
        let Some(fewest) = all.iter().min_by_key(|m| m.len()) else {
            return Vec::new();
        };
        fewest
            .anchors
            .iter()
            .copied()
            .filter(|a| all.iter().all(|m| m.contains(a)))
            .collect()
    }

    /// Keeps only the anchors for which `keep` holds, given the providers of each list there.
    fn retain_anchors(&mut self, mut keep: impl FnMut(&[Vec<Uuid>]) -> bool) {
        let lists = &self.lists;
        self.anchors.retain(|anchor| {
            let per_list: Vec<Vec<Uuid>> = lists.iter().map(|l| providers_for(l, anchor)).collect();
            keep(&per_list)
        });
    }

    /// The group's alternatives for one anchor, at most `cap` of them (the bound).
    pub fn areqs(
        &self,
        state: &State,
        g: &RequestGroup,
        anchor: &Uuid,
        cap: Option<usize>,
    ) -> Vec<Areq> {
        if !self.contains(anchor) {
            return Vec::new();
        }
        let per_list: Vec<Vec<Uuid>> = self
            .lists
            .iter()
            .map(|l| providers_for(l, anchor))
            .collect();
        let cap = cap.unwrap_or(usize::MAX);
        if self.multi {
            return combinations(state, g, &per_list, cap);
        }
        per_list
            .into_iter()
            .flatten()
            .take(cap)
            .map(|rp| Areq {
                same_provider: g.use_same_provider(),
                resources: g
                    .resources
                    .iter()
                    .map(|(rc, n)| (rp, rc.clone(), *n))
                    .collect(),
                mappings: BTreeMap::from([(g.suffix.clone(), BTreeSet::from([rp]))]),
            })
            .collect()
    }
}

/// The anchor trees one pass of the search looks at.
pub(super) enum Scope<'w> {
    /// Every tree.
    All,
    /// Only a window's trees: their providers and every sharing provider are scanned, and
    /// only (anchor, provider) pairs anchored in them are kept. A group's matches for an
    /// anchor in the window equal its matches for that anchor over `All`.
    Window(&'w Window<'w>),
}

/// Consecutive roots in uuid order, and the providers a pass over them scans; built once
/// per window and shared by every group.
pub(super) struct Window<'a> {
    /// Sorted, unique.
    pub roots: Vec<Uuid>,
    /// The roots' trees and every sharing provider, in uuid order, unique.
    providers: Vec<&'a ResourceProvider>,
    /// Roots of the window this one was cut down from (its own count if it was not).
    span: usize,
}

impl<'a> Window<'a> {
    /// The next `size` roots after `after` (from the first with `None`); `None` when there
    /// are no more.
    pub fn after(ctx: &WideContext<'a>, after: Option<&Uuid>, size: usize) -> Option<Self> {
        let state = ctx.state;
        let mut roots = Vec::with_capacity(size.min(state.provider_count()));
        // Providers in the window's uuid range, in order: its roots, and providers of other
        // trees (dropped below, once the roots are known).
        let mut providers: Vec<&'a ResourceProvider> = Vec::new();
        for p in state.providers_after(after) {
            if p.parent.is_none() {
                if roots.len() == size {
                    break;
                }
                roots.push(p.uuid);
            }
            providers.push(p);
        }
        if roots.is_empty() {
            return None;
        }
        providers.retain(|p| p.parent.is_none() || roots.binary_search(&p.root).is_ok());
        // Descendants outside the range, and sharing providers: a few extra runs, so the
        // stable sort below is about a merge.
        let in_range = providers.len();
        if ctx.has_trees {
            let (first, last) = (roots[0], roots[roots.len() - 1]);
            for r in state.parents_between(first, last) {
                if roots.binary_search(r).is_ok() {
                    providers.extend(
                        state
                            .subtree(r)
                            .iter()
                            .skip(1)
                            .filter_map(|u| state.provider(u)),
                    );
                }
            }
        }
        providers.extend(ctx.sharing.iter().filter_map(|u| state.provider(u)));
        if providers.len() > in_range {
            providers.sort_by_key(|p| p.uuid);
            providers.dedup_by_key(|p| p.uuid);
        }
        let span = roots.len();
        Some(Window {
            roots,
            providers,
            span,
        })
    }
}

impl<'a> Window<'a> {
    /// The same window cut down to some of its roots (sorted, unique): their trees, and
    /// every sharing provider.
    pub fn narrowed(&self, ctx: &WideContext<'_>, roots: &[Uuid]) -> Window<'a> {
        let providers = self
            .providers
            .iter()
            .copied()
            .filter(|p| roots.binary_search(&p.root).is_ok() || ctx.sharing.contains(&p.uuid))
            .collect();
        Window {
            roots: roots.to_vec(),
            providers,
            span: self.span,
        }
    }
}

impl<'w> Scope<'w> {
    fn contains(&self, root: &Uuid) -> bool {
        match self {
            Scope::All => true,
            Scope::Window(w) => w.roots.binary_search(root).is_ok(),
        }
    }

    /// The providers a pass scans, in uuid order.
    fn providers<'a>(&self, ctx: &WideContext<'a>) -> Cow<'w, [&'a ResourceProvider]>
    where
        'w: 'a,
    {
        match self {
            Scope::All => Cow::Owned(ctx.state.providers().collect()),
            Scope::Window(w) => Cow::Borrowed(&w.providers),
        }
    }
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
    /// Sharing provider -> roots of the trees with a provider in one of its aggregates (its
    /// own root included when it is in any aggregate), sorted, unique. Built on first use by
    /// a pass over every tree; a window asks the aggregate index for its own roots only
    /// ([`WideContext::sharing_anchors_in`]), since a sharing provider in a large aggregate
    /// serves thousands of trees.
    all_sharing_anchors: OnceCell<BTreeMap<Uuid, Vec<Uuid>>>,
}

impl<'a> WideContext<'a> {
    pub fn new(
        state: &'a State,
        request: &CandidateRequest,
    ) -> Result<Option<WideContext<'a>>, SearchError> {
        let has_trees = state.has_nested_providers();
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
        let sharing: BTreeSet<Uuid> = state.providers_with_trait(SHARING_TRAIT).copied().collect();
        Ok(Some(WideContext {
            state,
            has_trees,
            anchor_roots,
            sharing,
            all_sharing_anchors: OnceCell::new(),
        }))
    }

    /// The anchors in a scope that a sharing provider serves (see `all_sharing_anchors`),
    /// sorted, unique.
    fn sharing_anchors_in(&self, sp: &Uuid, scope: &Scope<'_>) -> Cow<'_, [Uuid]> {
        match scope {
            Scope::All => {
                let all = self.all_sharing_anchors.get_or_init(|| {
                    self.sharing
                        .iter()
                        .map(|sp| (*sp, anchors_for_sharing(self.state, sp, None)))
                        .collect()
                });
                Cow::Borrowed(all.get(sp).map_or(&[], Vec::as_slice))
            }
            Scope::Window(w) if by_root(w) => {
                Cow::Owned(sharing_anchors_by_root(self.state, sp, w))
            }
            Scope::Window(w) => Cow::Owned(sharing_anchors_by_range(self.state, sp, &w.roots)),
        }
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

/// Providers in at least one aggregate of every set (from the aggregate index).
fn providers_in_aggs(state: &State, member_of: &[BTreeSet<Uuid>]) -> BTreeSet<Uuid> {
    let mut out: Option<BTreeSet<Uuid>> = None;
    for set in member_of {
        let any = providers_in_any_agg(state, set);
        out = Some(match out {
            None => any,
            Some(prev) => prev.intersection(&any).copied().collect(),
        });
    }
    out.unwrap_or_default()
}

/// Providers in any of the aggregates (from the aggregate index).
fn providers_in_any_agg(state: &State, aggs: &BTreeSet<Uuid>) -> BTreeSet<Uuid> {
    aggs.iter()
        .flat_map(|a| state.aggregate_members(a))
        .map(|(_, rp)| *rp)
        .collect()
}

/// Roots of the trees with a provider in one of a sharing provider's aggregates (its own
/// root included when it is in any aggregate), sorted, unique; with `within`, only the roots
/// in that inclusive range.
pub(super) fn anchors_for_sharing(
    state: &State,
    sp: &Uuid,
    within: Option<(Uuid, Uuid)>,
) -> Vec<Uuid> {
    let Some(p) = state.provider(sp) else {
        return Vec::new();
    };
    // The index yields each aggregate's members by root: one sorted run per aggregate.
    let mut roots: Vec<Uuid> = Vec::new();
    for a in &p.aggregates {
        match within {
            None => roots.extend(state.aggregate_members(a).map(|(root, _)| *root)),
            Some((first, last)) => roots.extend(
                state
                    .aggregate_members_with_roots(a, first, last)
                    .map(|(root, _)| *root),
            ),
        }
    }
    if p.aggregates.len() > 1 {
        roots.sort();
    }
    roots.dedup();
    roots
}

/// Whether a window's sharing anchors are found from its trees ([`sharing_anchors_by_root`])
/// rather than by a scan of the aggregate index over the window's uuid range: when the window was cut down to a few of its roots (the anchors an
/// earlier group with a rare trait matched), its range still spans all the others, and the
/// members of a large aggregate there outnumber the roots asked about. In tests, whenever
/// the window was cut down at all, so the property tests walk this path too.
fn by_root(w: &Window<'_>) -> bool {
    if cfg!(test) {
        w.roots.len() < w.span
    } else {
        w.roots.len().saturating_mul(8) < w.span
    }
}

/// The roots among `roots` (sorted, unique) that a sharing provider serves, from one scan of
/// the aggregate index over their uuid range; sorted, unique.
pub(super) fn sharing_anchors_by_range(state: &State, sp: &Uuid, roots: &[Uuid]) -> Vec<Uuid> {
    let (Some(first), Some(last)) = (roots.first(), roots.last()) else {
        return Vec::new();
    };
    let mut anchors = anchors_for_sharing(state, sp, Some((*first, *last)));
    anchors.retain(|a| roots.binary_search(a).is_ok());
    anchors
}

/// The same as [`sharing_anchors_by_range`] for a window's own roots, from the window's
/// providers (its roots' trees): a root is an anchor when a provider of its tree shares an
/// aggregate with the sharing provider, which is what the aggregate index records. The cost
/// follows the window's trees, not the members of the aggregate in their uuid range.
pub(super) fn sharing_anchors_by_root(state: &State, sp: &Uuid, w: &Window<'_>) -> Vec<Uuid> {
    let Some(p) = state.provider(sp) else {
        return Vec::new();
    };
    let mut anchors: Vec<Uuid> = w
        .providers
        .iter()
        .filter(|q| q.aggregates.iter().any(|a| p.aggregates.contains(a)))
        .filter(|q| w.roots.binary_search(&q.root).is_ok())
        .map(|q| q.root)
        .collect();
    anchors.sort_unstable();
    anchors.dedup();
    anchors
}

/// Searches one group. `Ok(None)`: nothing can match, the whole answer is empty.
pub(super) fn search_group(
    ctx: &WideContext<'_>,
    g: &RequestGroup,
    scope: &Scope<'_>,
) -> Result<Option<Matches>, SearchError> {
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
    // One provider must carry the group's traits on this path: the providers that do (from
    // the trait index) bound the scan below, which then skips the others without looking
    // up their usages. A group with a rare trait thus costs little, even over every tree.
    let one_provider = g.use_same_provider() || (ctx.sharing.is_empty() && !ctx.has_trees);
    // Over every tree the trait index gives them; within a window, the window's own
    // providers are checked instead (the same set there: the index is derived from the
    // records), so a window costs its size, not the size of a common trait's index.
    let with_traits = (one_provider && !g.required_traits.is_empty()).then(|| match scope {
        Scope::All => providers_with_required_traits(state, g),
        Scope::Window(w) => w
            .providers
            .iter()
            .filter(|p| has_required_traits(p, g))
            .map(|p| p.uuid)
            .collect(),
    });
    // Per class, the providers with room, in uuid order. One pass over the providers, so
    // each provider record is visited once for all classes.
    let mut with_resource: Vec<Vec<&ResourceProvider>> = vec![Vec::new(); g.resources.len()];
    if !g.resources.is_empty() {
        for &p in scope.providers(ctx).iter() {
            if tree_root.is_some_and(|r| p.root != r) || p.inventories.is_empty() {
                continue;
            }
            if with_traits
                .as_ref()
                .is_some_and(|t| t.binary_search(&p.uuid).is_err())
            {
                continue;
            }
            let usages = state.usages(&p.uuid);
            for ((rc, amount), out) in g.resources.iter().zip(with_resource.iter_mut()) {
                let used = usages.and_then(|m| m.get(rc)).copied().unwrap_or(0);
                if fits_one_group(p, rc, *amount, used) {
                    out.push(p);
                }
            }
        }
    }
    if with_resource.iter().any(|v| v.is_empty()) {
        return Ok(None);
    }

    if !one_provider {
        if !g.required_traits.is_empty() {
            let mut any = g.required_traits.iter().flatten();
            if !any.any(|t| state.providers_with_trait(t).next().is_some()) {
                return Ok(Some(Matches::default()));
            }
        }
        let cands = trees_matching_all(ctx, g, &rps_in_aggs, tree_root, &with_resource, scope);
        return Ok(Some(cands));
    }
    let provs = provider_ids_matching(
        ctx,
        g,
        with_traits.unwrap_or_default(),
        &rps_in_aggs,
        &with_resource,
        scope,
    );
    Ok(Some(single_provider(ctx, &provs, scope)))
}

/// Placement's capacity clause for one group's amount (the same as
/// [`crate::query::has_room`], with the usage looked up by the caller). `amount` may be as
/// large as `i64::MAX`: the sum is taken in `i128`, the capacity in `f64`.
fn fits_one_group(p: &ResourceProvider, rc: &str, amount: i64, used: i64) -> bool {
    let Some(inv) = p.inventories.get(rc) else {
        return false;
    };
    (i128::from(used) + i128::from(amount)) as f64
        <= (inv.total as f64 - inv.reserved as f64) * inv.allocation_ratio
        && inv.min_unit <= amount
        && inv.max_unit >= amount
        && inv.step_size > 0
        && amount % inv.step_size == 0
}

fn has_any_trait(p: &ResourceProvider, traits: &BTreeSet<String>) -> bool {
    traits.iter().any(|t| p.traits.contains(t))
}

/// Whether a provider has a trait of every required set of the group.
fn has_required_traits(p: &ResourceProvider, g: &RequestGroup) -> bool {
    g.required_traits.iter().all(|set| has_any_trait(p, set))
}

/// Sorted, unique uuids in both sorted, unique sequences.
fn intersect_sorted(a: &[Uuid], b: impl Iterator<Item = Uuid>) -> Vec<Uuid> {
    let mut out = Vec::with_capacity(a.len());
    let mut i = 0;
    for u in b {
        while i < a.len() && a[i] < u {
            i += 1;
        }
        if i == a.len() {
            break;
        }
        if a[i] == u {
            out.push(u);
            i += 1;
        }
    }
    out
}

/// Providers with a trait of every required set (each set: any of its traits), sorted.
fn providers_with_required_traits(state: &State, g: &RequestGroup) -> Vec<Uuid> {
    let mut out: Vec<Uuid> = Vec::new();
    for (i, set) in g.required_traits.iter().enumerate() {
        let mut any: Vec<Uuid> = set
            .iter()
            .flat_map(|t| state.providers_with_trait(t))
            .copied()
            .collect();
        if set.len() > 1 {
            any.sort_unstable();
            any.dedup();
        }
        out = if i == 0 {
            any
        } else {
            intersect_sorted(&out, any.into_iter())
        };
    }
    out
}

/// Placement's `get_provider_ids_matching`: providers that alone meet the group, in uuid
/// order. An empty `filtered` set means "not filtered yet", as there. Sets are kept as sorted
/// vectors: the per-class lists come in uuid order, so intersections are merges.
fn provider_ids_matching<'a>(
    ctx: &WideContext<'a>,
    g: &RequestGroup,
    with_traits: Vec<Uuid>,
    rps_in_aggs: &BTreeSet<Uuid>,
    with_resource: &[Vec<&'a ResourceProvider>],
    scope: &Scope<'a>,
) -> Vec<&'a ResourceProvider> {
    let state = ctx.state;
    // Placement starts from the providers with the required traits.
    let mut filtered = with_traits;
    if !g.required_traits.is_empty() && filtered.is_empty() {
        return Vec::new();
    }
    if !g.member_of.is_empty() {
        if filtered.is_empty() {
            filtered = rps_in_aggs.iter().copied().collect();
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
        let bad: BTreeSet<Uuid> = g
            .forbidden_traits
            .iter()
            .flat_map(|t| state.providers_with_trait(t))
            .copied()
            .collect();
        if !filtered.is_empty() {
            filtered.retain(|u| !bad.contains(u));
            if filtered.is_empty() {
                return Vec::new();
            }
        }
        forbidden.extend(bad);
    }
    let mut provs: Vec<&ResourceProvider> = Vec::new();
    for (i, set) in with_resource.iter().enumerate() {
        if i == 0 && filtered.is_empty() {
            filtered = set
                .iter()
                .map(|p| p.uuid)
                .filter(|u| !forbidden.contains(u))
                .collect();
        } else {
            filtered = intersect_sorted(&filtered, set.iter().map(|p| p.uuid));
        }
        if filtered.is_empty() {
            return Vec::new();
        }
        provs.clone_from(set);
    }
    if with_resource.is_empty() {
        // A resourceless group (1.36). Placement filters the pairs by `filtered`, which is
        // empty (so nothing matches) when the group has neither traits nor aggregates.
        provs = scope.providers(ctx).into_owned();
        provs.retain(|p| !forbidden.contains(&p.uuid));
    }
    // Both in uuid order: keep the providers `filtered` still has.
    let mut keep = filtered.iter().peekable();
    provs.retain(|p| {
        while keep.next_if(|u| **u < p.uuid).is_some() {}
        keep.next_if(|u| **u == p.uuid).is_some()
    });
    provs
}

/// Placement's `_alloc_candidates_single_provider`: each provider serves its own tree and, if
/// it shares, every tree it shares an aggregate with (`root_required` permitting).
fn single_provider(
    ctx: &WideContext<'_>,
    provs: &[&ResourceProvider],
    scope: &Scope<'_>,
) -> Matches {
    let mut out: Vec<(Uuid, Uuid)> = Vec::with_capacity(provs.len());
    for p in provs {
        let (rp, root) = (p.uuid, p.root);
        if ctx.in_filtered_anchors(&root) && scope.contains(&root) {
            out.push((root, rp));
        }
        if p.traits.contains(SHARING_TRAIT) {
            for anchor in ctx.sharing_anchors_in(&rp, scope).iter() {
                if *anchor == root || !ctx.in_filtered_anchors(anchor) {
                    continue;
                }
                out.push((*anchor, rp));
            }
        }
    }
    Matches::new(false, vec![out])
}

/// Placement's `get_trees_matching_all` and the grouping half of
/// `_alloc_candidates_multiple_providers`: per anchor tree and class, the providers with
/// room (sharing providers counted in every tree they share with); only trees that have every
/// class are kept. Traits are checked later, per combination ([`combinations`]).
fn trees_matching_all(
    ctx: &WideContext<'_>,
    g: &RequestGroup,
    rps_in_aggs: &BTreeSet<Uuid>,
    tree_root: Option<Uuid>,
    with_resource: &[Vec<&ResourceProvider>],
    scope: &Scope<'_>,
) -> Matches {
    let state = ctx.state;
    let in_aggs: HashSet<Uuid> = rps_in_aggs.iter().copied().collect();
    let bad_aggs: HashSet<Uuid> = if g.forbidden_aggs.is_empty() {
        HashSet::new()
    } else {
        providers_in_any_agg(state, &g.forbidden_aggs)
            .into_iter()
            .collect()
    };
    let mut lists: Vec<Vec<(Uuid, Uuid)>> = Vec::with_capacity(with_resource.len());
    for set in with_resource {
        // (anchor, provider) for this class, as sorted runs (`Matches::new` merges them):
        // roots (in uuid order, so by anchor), then the few nested providers, then each
        // sharing provider's anchors.
        if set.is_empty() {
            return Matches::default();
        }
        let mut pairs: Vec<(Uuid, Uuid)> = Vec::with_capacity(set.len());
        pairs.extend(
            set.iter()
                .filter(|p| p.parent.is_none() && scope.contains(&p.uuid))
                .map(|p| (p.uuid, p.uuid)),
        );
        let mut nested: Vec<(Uuid, Uuid)> = set
            .iter()
            .filter(|p| p.parent.is_some() && scope.contains(&p.root))
            .map(|p| (p.root, p.uuid))
            .collect();
        nested.sort_unstable();
        pairs.append(&mut nested);
        let mut sharing: Vec<Uuid> = ctx
            .sharing
            .iter()
            .copied()
            .filter(|u| in_aggs.is_empty() || in_aggs.contains(u))
            .collect();
        sharing.retain(|u| set.binary_search_by(|p| p.uuid.cmp(u)).is_ok());
        if tree_root.is_none() {
            for sp in &sharing {
                let anchors = ctx.sharing_anchors_in(sp, scope);
                pairs.extend(anchors.iter().map(|a| (*a, *sp)));
            }
        }
        if let Some(anchors) = &ctx.anchor_roots {
            pairs.retain(|(a, _)| anchors.contains(a));
            if pairs.is_empty() {
                return Matches::default();
            }
        }
        if !g.member_of.is_empty() {
            // The provider or its anchor root in the aggregates.
            pairs.retain(|(a, rp)| in_aggs.contains(a) || in_aggs.contains(rp));
            if pairs.is_empty() {
                return Matches::default();
            }
        }
        if !g.forbidden_aggs.is_empty() {
            // Neither the provider nor its anchor root in them.
            pairs.retain(|(a, rp)| !(bad_aggs.contains(a) || bad_aggs.contains(rp)));
            if pairs.is_empty() {
                return Matches::default();
            }
        }
        if !pairs.is_sorted() {
            pairs.sort();
        }
        pairs.dedup();
        lists.push(pairs);
        // Only trees that have every class so far.
        if common_anchors(&lists).is_empty() {
            return Matches::default();
        }
    }
    let mut matches = Matches::new(true, lists);
    if !(g.required_traits.is_empty() && g.forbidden_traits.is_empty()) {
        // Placement builds this group's requests before it looks at the next group, checking
        // the traits of every combination (`_alloc_candidates_multiple_providers`): a tree none
        // of whose combinations has them serves nothing, and with no tree left the group
        // matches nothing, which ends the search before later groups (and their unknown
        // traits) are looked at.
        matches.retain_anchors(|per_list| some_combination_has_traits(state, g, per_list));
    }
    matches
}

/// Whether some combination of one provider per list meets the group's traits
/// ([`traits_ok`]), without walking the product: a provider with a forbidden trait never
/// takes part, and the others count only by which required sets they meet (their
/// *signature*), so each list reduces to its few distinct signatures, minus those another
/// signature of the list contains. The walk over the lists' signatures visits each
/// (list, sets met so far) state once: at most lists × 2^sets of them, in practice a handful.
pub(super) fn some_combination_has_traits(
    state: &State,
    g: &RequestGroup,
    lists: &[Vec<Uuid>],
) -> bool {
    let sets = &g.required_traits;
    let mut per_list: Vec<Vec<Vec<bool>>> = Vec::with_capacity(lists.len());
    for list in lists {
        let mut sigs: BTreeSet<Vec<bool>> = BTreeSet::new();
        for p in list.iter().filter_map(|u| state.provider(u)) {
            if has_any_trait(p, &g.forbidden_traits) {
                continue;
            }
            sigs.insert(sets.iter().map(|set| has_any_trait(p, set)).collect());
        }
        if sigs.is_empty() {
            return false;
        }
        let all: Vec<Vec<bool>> = sigs.into_iter().collect();
        let covers = |a: &[bool], b: &[bool]| a.iter().zip(b).all(|(x, y)| *x || !*y);
        let kept: Vec<Vec<bool>> = all
            .iter()
            .filter(|s| !all.iter().any(|o| o != *s && covers(o, s)))
            .cloned()
            .collect();
        per_list.push(kept);
    }
    let mut seen: HashSet<(usize, Vec<bool>)> = HashSet::new();
    let mut stack: Vec<(usize, Vec<bool>)> = vec![(0, vec![false; sets.len()])];
    while let Some((i, met)) = stack.pop() {
        if i == per_list.len() {
            if met.iter().all(|m| *m) {
                return true;
            }
            continue;
        }
        if !seen.insert((i, met.clone())) {
            continue;
        }
        for sig in &per_list[i] {
            let next: Vec<bool> = met.iter().zip(sig).map(|(a, b)| *a || *b).collect();
            stack.push((i + 1, next));
        }
    }
    false
}

/// The other half of Placement's `_alloc_candidates_multiple_providers`, for one tree: every
/// combination of one provider per class whose providers together satisfy the group's
/// traits.
/// At most `cap` combinations are kept, after at most `cap` × [`WALK_STEPS_PER_CANDIDATE`]
/// tried (combinations the traits rule out cost a step too).
pub(super) fn combinations(
    state: &State,
    g: &RequestGroup,
    lists: &[Vec<Uuid>],
    cap: usize,
) -> Vec<Areq> {
    let mut out = Vec::new();
    if lists.is_empty() || lists.iter().any(|l| l.is_empty()) {
        return out;
    }
    let check_traits = !(g.required_traits.is_empty() && g.forbidden_traits.is_empty());
    let mut idx = vec![0usize; lists.len()];
    let mut steps_left = cap.saturating_mul(super::WALK_STEPS_PER_CANDIDATE);
    'product: loop {
        if out.len() >= cap || steps_left == 0 {
            break;
        }
        steps_left -= 1;
        let combo: Vec<Uuid> = idx.iter().zip(lists).map(|(&j, l)| l[j]).collect();
        if !check_traits || traits_ok(state, g, &combo) {
            out.push(Areq {
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
