//! Combining the groups' requests into candidates (Placement's `_merge_candidates`,
//! `exclude_nested_providers` and `limit_results`).
//!
//! For every anchor tree that every group can serve, each combination of one request per
//! group (Cartesian product, groups in request order) becomes a candidate if
//! - `group_policy=isolate`: the granular groups use pairwise distinct providers;
//! - every `same_subtree` set: its groups' providers all lie under one of them;
//! - summed per provider and class, `used + amount ≤ capacity` and `amount ≤ max_unit`.
//!   The sums are taken in `i128`: each group's amount is a client's number (up to
//!   `i64::MAX`), and no sum of a few `i64`s overflows an `i128`.
//!
//! Both the policy and the capacity rule only get stricter as a combination grows, so the
//! product is pruned as soon as a partial combination breaks one of them; the result is the
//! same as filtering the full product. Equal candidates reached through different anchors
//! are returned once. Under `limit` the product stops after that many candidates (the first
//! N are what Placement returns without randomisation), so a small limit stays cheap on a
//! large deployment.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::BuildHasher;

use placement_types::Uuid;

use super::group::{Areq, Matches, WideContext};
use super::{
    AllocationRequest, CandidateRequest, Candidates, GroupPolicy, ProviderSummary, SummaryResource,
};
use crate::state::State;

/// Merges every group's matches in one go.
pub(super) fn merge(
    ctx: &WideContext<'_>,
    request: &CandidateRequest,
    per_group: Vec<Matches>,
) -> Candidates {
    let mut product = Product::new(ctx, request);
    product.add(ctx, request, &per_group);
    product.finish(ctx, request)
}

/// Before 1.29 a candidate may not use two providers of one tree; then the summaries depend
/// on every candidate, so the search must see every anchor (no early stop at `limit`).
pub(super) fn needs_every_anchor(ctx: &WideContext<'_>, request: &CandidateRequest) -> bool {
    !request.nested_aware && ctx.has_trees
}

impl<'s> Product<'s> {
    pub(super) fn new(ctx: &WideContext<'s>, request: &'s CandidateRequest) -> Product<'s> {
        Product {
            state: ctx.state,
            isolate: request.group_policy == Some(GroupPolicy::Isolate),
            same_subtrees: &request.same_subtrees,
            // With the nested exclusion, summaries depend on every candidate (see
            // `finish`), so the product can stop early only without it — or at the bound.
            stop_after: if needs_every_anchor(ctx, request) {
                request.max_candidates
            } else {
                request.stop_after()
            },
            steps_left: request.walk_budget(),
            seen: HashMap::new(),
            hasher: RandomState::new(),
            out: Vec::new(),
        }
    }

    /// Adds the candidates of every anchor all groups can serve, in anchor uuid order
    /// (anchors must come after those of earlier calls), until full.
    pub(super) fn add(
        &mut self,
        ctx: &WideContext<'_>,
        request: &CandidateRequest,
        per_group: &[Matches],
    ) {
        let state = ctx.state;
        let n = per_group.len();
        // Anchors every group can serve, in uuid order (walked lazily: a `limit` may stop
        // early).
        let Some(fewest) = per_group.iter().min_by_key(|m| m.len()) else {
            return;
        };
        let anchors = fewest
            .anchors()
            .iter()
            .copied()
            .filter(|a| per_group.iter().all(|m| m.contains(a)));
        for anchor in anchors {
            if self.full() {
                break;
            }
            let lists: Vec<Vec<Areq>> = per_group
                .iter()
                .zip(&request.groups)
                .map(|(m, g)| m.areqs(state, g, &anchor, request.max_candidates))
                .collect();
            if lists.iter().any(|l| l.is_empty()) {
                continue;
            }
            let refs: Vec<Vec<&Areq>> = lists.iter().map(|l| l.iter().collect()).collect();
            Walk {
                p: self,
                amounts: Vec::new(),
                granular_rps: Vec::new(),
                chosen: Vec::with_capacity(n),
            }
            .walk(&refs);
        }
    }

    /// The answer: the nested exclusion, `limit`, and the provider summaries.
    pub(super) fn finish(self, ctx: &WideContext<'_>, request: &CandidateRequest) -> Candidates {
        let state = ctx.state;
        let mut areqs = self.out;
        // Placement keeps, before 1.29, only the summaries of providers used by a remaining
        // candidate; then, under `limit`, only those of trees used by a kept candidate.
        let mut used_by_any: Option<BTreeSet<Uuid>> = None;
        if needs_every_anchor(ctx, request) {
            areqs.retain(|a| {
                let roots: BTreeSet<Uuid> =
                    a.allocations.keys().map(|u| root_of(state, u)).collect();
                roots.len() == a.allocations.len()
            });
            used_by_any = Some(
                areqs
                    .iter()
                    .flat_map(|a| a.allocations.keys().copied())
                    .collect(),
            );
        }
        if let Some(limit) = request.limit {
            areqs.truncate(limit);
        }
        if areqs.is_empty() {
            return Candidates::default();
        }
        let mut summaries = summaries_for(state, &areqs);
        if let Some(used) = used_by_any {
            summaries.retain(|s| used.contains(&s.uuid));
        }
        Candidates {
            allocation_requests: areqs,
            provider_summaries: summaries,
        }
    }
}

fn root_of(state: &State, u: &Uuid) -> Uuid {
    state.provider(u).map(|p| p.root).unwrap_or(*u)
}

fn roots_of(state: &State, areqs: &[AllocationRequest]) -> BTreeSet<Uuid> {
    areqs
        .iter()
        .flat_map(|a| a.allocations.keys())
        .map(|u| root_of(state, u))
        .collect()
}

/// Every provider of every tree that gives resources to some candidate, by uuid.
fn summaries_for(state: &State, areqs: &[AllocationRequest]) -> Vec<ProviderSummary> {
    let mut members: Vec<&placement_types::ResourceProvider> = roots_of(state, areqs)
        .iter()
        .flat_map(|root| state.subtree(root))
        .filter_map(|u| state.provider(&u))
        .collect();
    members.sort_unstable_by_key(|p| p.uuid);
    members
        .into_iter()
        .map(|p| ProviderSummary {
            uuid: p.uuid,
            parent: p.parent,
            root: p.root,
            traits: p.traits.clone(),
            resources: p
                .inventories
                .iter()
                .map(|(rc, inv)| SummaryResource {
                    resource_class: rc.clone(),
                    capacity: inv.capacity(),
                    used: state.usage(&p.uuid, rc),
                })
                .collect(),
        })
        .collect()
}

/// The candidates found so far, over all anchors.
pub(super) struct Product<'s> {
    state: &'s State,
    isolate: bool,
    same_subtrees: &'s [BTreeSet<String>],
    /// Stop once this many candidates are found (`limit`, or the bound).
    stop_after: Option<usize>,
    /// Steps the walk may still take (the bound's work budget); `None`: unbounded.
    steps_left: Option<usize>,
    /// Hash of a candidate -> indexes in `out` of the candidates with that hash (equal
    /// candidates are returned once; `out` holds them, so they are not cloned into a set).
    seen: HashMap<u64, Vec<usize>>,
    hasher: RandomState,
    out: Vec<AllocationRequest>,
}

impl Product<'_> {
    /// No more candidates are wanted: as many as asked for, or the work budget is spent.
    pub(super) fn full(&self) -> bool {
        self.stop_after.is_some_and(|n| self.out.len() >= n) || self.steps_left == Some(0)
    }

    /// Counts one step of the walk.
    fn step(&mut self) {
        if let Some(left) = &mut self.steps_left {
            *left = left.saturating_sub(1);
        }
    }
}

/// The pruned Cartesian product over one anchor's group lists.
struct Walk<'p, 's, 'a> {
    p: &'p mut Product<'s>,
    /// Summed amounts of the partial combination (i128: see the module doc), per provider
    /// and class: a handful of entries, so a vector searched linearly (no hashing, and no
    /// table per anchor).
    amounts: Vec<((Uuid, &'a str), i128)>,
    /// Providers of the granular groups chosen so far (for `isolate`).
    granular_rps: Vec<Uuid>,
    chosen: Vec<&'a Areq>,
}

impl<'a> Walk<'_, '_, 'a> {
    fn walk(&mut self, lists: &[Vec<&'a Areq>]) {
        let depth = self.chosen.len();
        if depth == lists.len() {
            self.emit();
            return;
        }
        for &a in &lists[depth] {
            if self.p.full() {
                return;
            }
            self.p.step();
            let granular = if a.same_provider {
                a.mappings
                    .values()
                    .next()
                    .and_then(|s| s.iter().next())
                    .copied()
            } else {
                None
            };
            if self.p.isolate {
                if let Some(rp) = granular {
                    if self.granular_rps.contains(&rp) {
                        continue;
                    }
                }
            }
            if !self.add(a) {
                self.remove(a);
                continue;
            }
            if let Some(rp) = granular {
                self.granular_rps.push(rp);
            }
            self.chosen.push(a);
            self.walk(lists);
            self.chosen.pop();
            if granular.is_some() {
                self.granular_rps.pop();
            }
            self.remove(a);
        }
    }

    /// Adds a request's amounts; false if some provider would then exceed its capacity or
    /// max_unit (the amounts are added even then; the caller removes them).
    fn add(&mut self, a: &'a Areq) -> bool {
        let mut fits = true;
        for (rp, rc, n) in &a.resources {
            let key = (*rp, rc.as_str());
            let total = match self.amounts.iter().position(|(k, _)| *k == key) {
                Some(i) => &mut self.amounts[i].1,
                None => {
                    self.amounts.push((key, 0));
                    &mut self.amounts.last_mut().expect("just pushed").1
                }
            };
            *total += i128::from(*n);
            if !fits_capacity(self.p.state, rp, rc, *total) {
                fits = false;
            }
        }
        fits
    }

    fn remove(&mut self, a: &'a Areq) {
        for (rp, rc, n) in &a.resources {
            let key = (*rp, rc.as_str());
            if let Some(i) = self.amounts.iter().position(|(k, _)| *k == key) {
                self.amounts[i].1 -= i128::from(*n);
                if self.amounts[i].1 == 0 {
                    self.amounts.swap_remove(i);
                }
            }
        }
    }

    fn emit(&mut self) {
        let mut mappings: BTreeMap<String, BTreeSet<Uuid>> = BTreeMap::new();
        for a in &self.chosen {
            for (suffix, rps) in &a.mappings {
                mappings.entry(suffix.clone()).or_default().extend(rps);
            }
        }
        for set in self.p.same_subtrees {
            let rps: BTreeSet<Uuid> = set
                .iter()
                .filter_map(|s| mappings.get(s))
                .flatten()
                .copied()
                .collect();
            if !same_subtree(self.p.state, &rps) {
                return;
            }
        }
        // Every sum here passed `fits_capacity`, so it is at most a capacity, an i64; the
        // saturation only keeps this total.
        let mut allocations: BTreeMap<Uuid, BTreeMap<String, i64>> = BTreeMap::new();
        for a in &self.chosen {
            for (rp, rc, n) in &a.resources {
                let sum = allocations
                    .entry(*rp)
                    .or_default()
                    .entry(rc.clone())
                    .or_insert(0);
                *sum = sum.saturating_add(*n);
            }
        }
        let ar = AllocationRequest {
            allocations,
            mappings,
        };
        let hash = self.p.hasher.hash_one(&ar);
        let same_hash = self.p.seen.entry(hash).or_default();
        if !same_hash.iter().any(|&i| self.p.out[i] == ar) {
            same_hash.push(self.p.out.len());
            self.p.out.push(ar);
        }
    }
}

/// `used + total ≤ capacity` and `total ≤ max_unit` for one provider and class, in i128.
fn fits_capacity(state: &State, rp: &Uuid, rc: &str, total: i128) -> bool {
    let Some(inv) = state.provider(rp).and_then(|p| p.inventories.get(rc)) else {
        return false;
    };
    i128::from(state.usage(rp, rc)) + total <= i128::from(inv.capacity())
        && total <= i128::from(inv.max_unit)
}

/// Placement's `_check_same_subtree`: one of the providers is an ancestor-or-self of all.
fn same_subtree(state: &State, rps: &BTreeSet<Uuid>) -> bool {
    if rps.len() <= 1 {
        return true;
    }
    let ancestors = |u: &Uuid| {
        let mut out = BTreeSet::from([*u]);
        let mut cur = state.provider(u).and_then(|p| p.parent);
        while let Some(p) = cur {
            if !out.insert(p) {
                break;
            }
            cur = state.provider(&p).and_then(|x| x.parent);
        }
        out
    };
    let mut iter = rps.iter();
    let Some(first) = iter.next() else {
        return true;
    };
    let mut common = ancestors(first);
    for u in iter {
        let a = ancestors(u);
        common.retain(|x| a.contains(x));
    }
    rps.iter().any(|u| common.contains(u))
}
