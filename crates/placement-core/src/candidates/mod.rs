//! Allocation candidates: the search behind `GET /allocation_candidates`.
//!
//! # The concept
//!
//! A request is a list of *request groups*. The unsuffixed group (`resources`, `required`,
//! `member_of`, `in_tree`) may be satisfied by several providers of one tree together with
//! sharing providers (providers with `MISC_SHARES_VIA_AGGREGATE` that share an aggregate with
//! a provider of the tree); every suffixed group (`resources1`, `resources_NET`, …) must be
//! satisfied by a single provider. Each group is searched on its own ([`group`]), giving
//! per-group allocation requests, each tagged with the root of the tree it serves (its
//! *anchor*). The groups' requests are then combined per anchor ([`merge`]): one request
//! from every group, filtered by `group_policy=isolate`, `same_subtree` and a final capacity
//! check of the summed amounts. Provider summaries describe every provider of every tree that
//! contributes resources to a returned candidate.
//!
//! The semantics follow Placement 16.0's `AllocationCandidates.get_by_requests`
//! (`objects/allocation_candidate.py`, `research_context.py`) step for step, including the
//! order in which it gives up: a group whose aggregates, `in_tree` provider or resources match
//! no provider, or whose requests are all ruled out (for the unsuffixed group over trees: no
//! combination of providers in any tree has its traits), makes the whole answer empty
//! *before* later groups are looked at, so an unknown trait in a later group is then not
//! reported.
//!
//! # Invariants
//!
//! - Pure: a function of the [`State`] and the request. No I/O, no clock, no randomness.
//! - Deterministic order: every intermediate set is ordered by provider uuid, so the result
//!   does not depend on the order in which providers were created. Placement's own order is
//!   that of a Python `set` (arbitrary); ours is: anchors by uuid, then the Cartesian product
//!   of the groups' requests in group order. `limit` keeps the first N of that order
//!   (Placement's default, `randomize_allocation_candidates = false`).
//! - Every returned candidate fits: for each provider and class, `used + amount ≤ capacity`
//!   and `amount ≤ max_unit`; each single group's amount also respects `min_unit` and
//!   `step_size` (as Placement checks them per group, not on the sum).
//!
//! # The bound
//!
//! [`CandidateRequest::max_candidates`] is Placement's `[placement] max_allocation_candidates`:
//! generation stops once that many candidates exist, before `limit` applies. Without it, a
//! few granular groups over one wide tree multiply into millions of candidates (30 children
//! and 4 groups: 810,000, hundreds of megabytes). Under the bound nothing grows with the
//! product: each group's alternatives within one tree stop at the bound too, and the walk
//! over combinations gives up after [`WALK_STEPS_PER_CANDIDATE`] steps per allowed candidate
//! (combinations that fail capacity or `same_subtree` cost steps but produce nothing), so
//! the work is bounded as well as the answer. The search stays pure and deterministic: the
//! same state and request give the same prefix.
//!
//! # Left out on purpose
//!
//! - Placement's tuning knob `allocation_candidates_generation_strategy` (default
//!   depth-first, which is ours). Random sampling under `limit`
//!   (`[placement] randomize_allocation_candidates`) is done by the API crate
//!   (`allocation_candidates.rs::random_sample`); the search here stays deterministic.
//! - Placement's anchor-less de-duplication inside the unsuffixed group: a Python `set` there
//!   keeps one of several equal requests that differ only in their anchor, which can drop a
//!   valid combination with another group depending on hash order. We keep every anchor and
//!   de-duplicate only the final candidates.

mod group;
mod merge;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use placement_types::Uuid;

use crate::state::State;

/// The trait that marks a provider whose inventory is shared through its aggregates.
pub const SHARING_TRAIT: &str = "MISC_SHARES_VIA_AGGREGATE";

/// One request group, already parsed and checked for syntax.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestGroup {
    /// `""` for the unsuffixed group (may span a tree plus sharing providers); anything else
    /// for a granular group (one provider).
    pub suffix: String,
    /// Resource classes and amounts, in request order; empty for a resourceless group (1.36).
    pub resources: Vec<(String, i64)>,
    /// Each set: at least one of its traits (sets are AND'ed).
    pub required_traits: Vec<BTreeSet<String>>,
    pub forbidden_traits: BTreeSet<String>,
    /// Each set: a provider (or, for the unsuffixed group, its root) in one of them.
    pub member_of: Vec<BTreeSet<Uuid>>,
    pub forbidden_aggs: BTreeSet<Uuid>,
    /// Only providers of the tree of this provider.
    pub in_tree: Option<Uuid>,
}

impl RequestGroup {
    /// Whether the group must be satisfied by a single provider.
    pub fn use_same_provider(&self) -> bool {
        !self.suffix.is_empty()
    }
}

/// How granular groups may share providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupPolicy {
    None,
    /// No provider serves two granular groups.
    Isolate,
}

/// A whole `GET /allocation_candidates` request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CandidateRequest {
    /// In the order their keys first appear in the query string.
    pub groups: Vec<RequestGroup>,
    pub group_policy: Option<GroupPolicy>,
    pub limit: Option<usize>,
    /// `root_required`: traits the root of each candidate's tree must have …
    pub root_required: BTreeSet<String>,
    /// … and must not have.
    pub root_forbidden: BTreeSet<String>,
    /// Each set of suffixes: their providers all lie under one of those providers.
    pub same_subtrees: Vec<BTreeSet<String>>,
    /// From 1.29; before it, candidates using two providers of one tree are dropped.
    pub nested_aware: bool,
    /// Generate at most this many candidates (see "The bound" above); `None`: unbounded.
    pub max_candidates: Option<usize>,
}

/// Steps of the combination walk allowed per candidate of the bound (see "The bound").
pub const WALK_STEPS_PER_CANDIDATE: usize = 1_000;

/// The least walk budget, whatever the bound (a small bound must still see real trees).
pub const MIN_WALK_STEPS: usize = 1_000_000;

impl CandidateRequest {
    /// How many candidates to generate at most: the smaller of `limit` and the bound.
    pub fn stop_after(&self) -> Option<usize> {
        match (self.limit, self.max_candidates) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Steps the combination walk may take under the bound.
    pub(crate) fn walk_budget(&self) -> Option<usize> {
        self.max_candidates.map(|n| {
            n.saturating_mul(WALK_STEPS_PER_CANDIDATE)
                .max(MIN_WALK_STEPS)
        })
    }
}

/// One candidate: the body of a `PUT /allocations/{consumer}` plus which group got which
/// providers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AllocationRequest {
    /// provider → resource class → amount.
    pub allocations: BTreeMap<Uuid, BTreeMap<String, i64>>,
    /// group suffix → providers serving it (resourceless groups included).
    pub mappings: BTreeMap<String, BTreeSet<Uuid>>,
}

/// Inventory and usage of one class on a summarised provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryResource {
    pub resource_class: String,
    pub capacity: i64,
    pub used: i64,
}

/// A provider of a tree that takes part in some candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderSummary {
    pub uuid: Uuid,
    pub parent: Option<Uuid>,
    pub root: Uuid,
    pub traits: BTreeSet<String>,
    /// Every inventory of the provider (the API drops unrequested classes before 1.27).
    pub resources: Vec<SummaryResource>,
}

/// The answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Candidates {
    pub allocation_requests: Vec<AllocationRequest>,
    /// Ordered by provider uuid.
    pub provider_summaries: Vec<ProviderSummary>,
}

/// Why a request cannot be evaluated (the API maps both to 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SearchError {
    #[error("No such resource class {0}.")]
    UnknownResourceClass(String),
    #[error("No such trait(s): {0}.")]
    UnknownTrait(String),
}

/// Roots in the first window of a search under `limit`, at least (see [`search`]).
#[cfg(not(test))]
const MIN_WINDOW_ROOTS: usize = 32;
/// In tests, windows as small as `limit`, so the small generated deployments of the property
/// tests span several windows.
#[cfg(test)]
const MIN_WINDOW_ROOTS: usize = 1;
/// Each further window holds this many times the roots of the one before, so a sparse
/// answer costs at most about twice a full pass.
const WINDOW_GROWTH: usize = 2;

/// Runs the search. `Ok` with no candidates when nothing fits.
///
/// Under `limit` (and unless the answer depends on every anchor), the trees are searched in
/// windows of consecutive roots in uuid order, and the search stops once `limit` candidates
/// are found: a deployment of 10,000 compute nodes costs a few windows, not a full pass.
/// Every group's matches for an anchor do not depend on the window (a window scans its
/// trees and every sharing provider), and anchors are visited in the same order, so the
/// candidates are those of a full pass. Which group fails first, though, is a global
/// question (it decides the error reported, and whether later groups are looked at at all);
/// [`search_windows`] answers it from what the windows saw, and runs a group over every tree
/// only when the windows cannot tell.
pub fn search(state: &State, request: &CandidateRequest) -> Result<Candidates, SearchError> {
    let Some(ctx) = group::WideContext::new(state, request)? else {
        return Ok(Candidates::default());
    };
    let windowed = request.stop_after().is_some()
        && !merge::needs_every_anchor(&ctx, request)
        && request.groups.iter().all(|g| g.in_tree.is_none());
    if windowed {
        return search_windows(&ctx, request);
    }
    let Some(per_group) = search_groups(&ctx, request)? else {
        return Ok(Candidates::default());
    };
    Ok(merge::merge(&ctx, request, per_group))
}

/// What the windows have seen of one group.
#[derive(Debug, Clone, Copy, Default)]
struct GroupSeen {
    /// It matched some anchor in some window (so it matches in a full pass).
    matched: bool,
    /// Windows that searched it over all of their trees (the others stopped at an earlier
    /// group, or searched it only on the anchors the earlier groups matched).
    searched: usize,
}

/// Every group's matches over every tree, groups in request order; `None` as soon as one
/// matches nothing (later groups are then not searched).
fn search_groups(
    ctx: &group::WideContext<'_>,
    request: &CandidateRequest,
) -> Result<Option<Vec<group::Matches>>, SearchError> {
    let mut per_group = Vec::with_capacity(request.groups.len());
    for g in &request.groups {
        let Some(found) =
            group::search_group(ctx, g, &group::Scope::All)?.filter(|m| !m.is_empty())
        else {
            return Ok(None);
        };
        per_group.push(found);
    }
    Ok(Some(per_group))
}

/// Every group's matches within a window, groups in request order, recording in `seen`
/// which groups were searched and which matched; `None` when the window has no candidate.
/// A candidate needs an anchor every group serves, so each group after the first is
/// searched only on the trees of the anchors all earlier groups matched (their matches
/// there are the same as over the whole window), and the window stops early once no
/// anchor is left.
fn search_groups_in_window(
    ctx: &group::WideContext<'_>,
    request: &CandidateRequest,
    window: &group::Window<'_>,
    seen: &mut [GroupSeen],
) -> Result<Option<Vec<group::Matches>>, SearchError> {
    let mut per_group: Vec<group::Matches> = Vec::with_capacity(request.groups.len());
    let mut narrowed: Option<group::Window<'_>> = None;
    for (i, g) in request.groups.iter().enumerate() {
        let scope = group::Scope::Window(narrowed.as_ref().unwrap_or(window));
        let found = group::search_group(ctx, g, &scope)?.filter(|m| !m.is_empty());
        seen[i].matched |= found.is_some();
        if narrowed.is_none() {
            seen[i].searched += 1;
        }
        let Some(found) = found else {
            return Ok(None);
        };
        per_group.push(found);
        if i + 1 < request.groups.len() {
            let common = group::Matches::common_anchors(&per_group);
            if common.is_empty() {
                return Ok(None);
            }
            narrowed = Some(window.narrowed(ctx, &common));
        }
    }
    Ok(Some(per_group))
}

/// The windowed search. A window in which some group matches nothing just has no
/// candidates; the search goes on to the next one. At the end, the groups decide the answer
/// as a full pass would (groups in order: the first that errs or matches nothing anywhere
/// ends it), from what the windows saw:
///
/// - an error is the same in every scope (unknown class or trait), so a group searched in
///   any window did not err, and one that erred would have stopped the search at once;
/// - a group that matched in some window matches in a full pass;
/// - a group searched over all the trees of every window without a match matches nothing in
///   a full pass;
/// - only a group that never matched and was not searched so in every window (or there was
///   no window: no providers) is searched again, over every tree. Its error, or its matching
///   nothing, is then the answer, as in a full pass (every group before it matches, and none
///   errs).
///
/// Otherwise every group matches somewhere, and the windows found every candidate a full
/// pass finds up to `limit`: an anchor every group serves lies in a window where every group
/// matched something, so that window merged it.
fn search_windows(
    ctx: &group::WideContext<'_>,
    request: &CandidateRequest,
) -> Result<Candidates, SearchError> {
    let limit = request.stop_after().unwrap_or(usize::MAX);
    let mut product = merge::Product::new(ctx, request);
    let mut seen = vec![GroupSeen::default(); request.groups.len()];
    let mut size = limit.max(MIN_WINDOW_ROOTS);
    let mut after: Option<Uuid> = None;
    let mut windows = 0;
    while let Some(window) = group::Window::after(ctx, after.as_ref(), size) {
        windows += 1;
        if let Some(per_group) = search_groups_in_window(ctx, request, &window, &mut seen)? {
            product.add(ctx, request, &per_group);
        }
        if product.full() || window.roots.len() < size {
            break;
        }
        after = window.roots.last().copied();
        size = size.saturating_mul(WINDOW_GROWTH);
    }
    for (g, seen) in request.groups.iter().zip(&seen) {
        if seen.matched {
            continue;
        }
        if windows == 0 || seen.searched < windows {
            let found = group::search_group(ctx, g, &group::Scope::All)?;
            if found.is_some_and(|m| !m.is_empty()) {
                continue;
            }
        }
        return Ok(Candidates::default());
    }
    Ok(product.finish(ctx, request))
}
