//! Property tests of the allocation-candidates search: small random deployments, built
//! through commands by the fixture builder ([`World`]), and random requests; every returned
//! candidate is checked against the request (capacity, traits, aggregates, `isolate`), a
//! brute-force enumeration must find the same candidates where one is simple to write
//! (granular groups over flat providers), and the result must not depend on the order in
//! which the state was built. The behaviours the API relies on (trees, sharing, granular
//! policies, `same_subtree`, `root_required`, `limit`, errors and early exits, the bound)
//! are pinned by the golden scripts `testscripts/candidates*.txt`.

use std::collections::{BTreeMap, BTreeSet};

use placement_types::{
    Allocation, Command, ConsumerTypeWrite, ConsumerWrite, GenerationCheck, Inventory,
    ResourceProvider, Uuid,
};
use proptest::prelude::*;

use super::*;
use crate::fixture::World;
use crate::query::has_room;
use crate::state::Record;

/// Generated provider `n` (from 1).
fn u(n: u128) -> Uuid {
    World::uuid(&format!("p{n}"))
}

// ---- Property tests ------------------------------------------------------------------

const CLASSES: [&str; 3] = ["VCPU", "MEMORY_MB", "DISK_GB"];
const TRAITS: [&str; 3] = ["HW_CPU_X86_AVX", "HW_CPU_X86_SSE", "HW_NUMA_ROOT"];
const AGGS: [u128; 2] = [500, 501];

/// One generated provider: parent index (into earlier providers), inventories (total,
/// used), traits and aggregates as bit masks, whether it shares.
#[derive(Debug, Clone)]
struct GenRp {
    parent: Option<usize>,
    inv: Vec<(usize, i64, i64)>,
    traits: u8,
    aggs: u8,
    sharing: bool,
}

fn gen_rp() -> impl Strategy<Value = GenRp> {
    (
        proptest::option::weighted(0.4, 0usize..8),
        proptest::collection::vec((0usize..3, 1i64..6, 0i64..3), 0..3),
        0u8..8,
        0u8..4,
        proptest::bool::weighted(0.15),
    )
        .prop_map(|(parent, inv, traits, aggs, sharing)| GenRp {
            parent,
            inv,
            traits,
            aggs,
            sharing,
        })
}

/// A generated deployment, built through commands: provider i is `p{i+1}` (uuid order is
/// index order), each with one consumer `c{i+1}` holding the generated usage.
fn build(gen: &[GenRp]) -> State {
    let mut world = World::new();
    for (i, g) in gen.iter().enumerate() {
        let n = i as u128 + 1;
        // Only earlier providers can be parents; sharing providers stay roots.
        let parent = g
            .parent
            .filter(|p| *p < i && !g.sharing)
            .map(|p| u(p as u128 + 1));
        world.must(Command::CreateProvider {
            uuid: u(n),
            name: format!("p{n}"),
            parent,
        });
        let mut traits: BTreeSet<String> = TRAITS
            .iter()
            .enumerate()
            .filter(|(b, _)| g.traits & (1 << b) != 0)
            .map(|(_, t)| t.to_string())
            .collect();
        if g.sharing {
            traits.insert(SHARING_TRAIT.into());
        }
        let aggregates: BTreeSet<Uuid> = AGGS
            .iter()
            .enumerate()
            .filter(|(b, _)| g.aggs & (1 << b) != 0)
            .map(|(_, a)| u(*a))
            .collect();
        let inventories: BTreeMap<String, Inventory> = g
            .inv
            .iter()
            .map(|(c, t, _)| (CLASSES[*c].to_string(), Inventory::with_total(*t)))
            .collect();
        world.must(Command::SetInventories {
            provider: u(n),
            generation: 0,
            inventories,
        });
        let generation = world.state.provider(&u(n)).map_or(0, |p| p.generation);
        world.must(Command::SetProviderTraits {
            provider: u(n),
            generation,
            traits,
        });
        world.must(Command::SetProviderAggregates {
            provider: u(n),
            generation: None,
            aggregates,
        });
        // A class generated twice takes its last entry, for the total and the usage alike.
        let mut used: BTreeMap<&str, i64> = g
            .inv
            .iter()
            .map(|(c, t, used)| (CLASSES[*c], (*used).min(*t)))
            .collect();
        used.retain(|_, used| *used > 0);
        if !used.is_empty() {
            world.must(Command::WriteAllocations {
                consumers: vec![ConsumerWrite {
                    consumer: World::uuid(&format!("c{n}")),
                    project_id: "p".into(),
                    user_id: "u".into(),
                    generation: GenerationCheck::Unchecked,
                    consumer_type: ConsumerTypeWrite::Keep,
                    allocations: used
                        .into_iter()
                        .map(|(rc, used)| Allocation {
                            provider: u(n),
                            resource_class: rc.into(),
                            used,
                        })
                        .collect(),
                }],
            });
        }
    }
    world.state
}

#[derive(Debug, Clone)]
struct GenGroup {
    resources: Vec<(usize, i64)>,
    required: u8,
    forbidden: u8,
    member_of: Option<usize>,
}

fn gen_group() -> impl Strategy<Value = GenGroup> {
    (
        proptest::collection::vec((0usize..3, 1i64..4), 1..3),
        0u8..8,
        0u8..8,
        proptest::option::weighted(0.2, 0usize..2),
    )
        .prop_map(|(resources, required, forbidden, member_of)| GenGroup {
            resources,
            required,
            forbidden: forbidden & !required,
            member_of,
        })
}

fn to_group(suffix: &str, g: &GenGroup) -> RequestGroup {
    let res: BTreeMap<&str, i64> = g.resources.iter().map(|(c, n)| (CLASSES[*c], *n)).collect();
    let bits = |m: u8| -> BTreeSet<String> {
        TRAITS
            .iter()
            .enumerate()
            .filter(|(b, _)| m & (1 << b) != 0)
            .map(|(_, t)| t.to_string())
            .collect()
    };
    RequestGroup {
        suffix: suffix.into(),
        resources: res.into_iter().map(|(r, n)| (r.to_string(), n)).collect(),
        required_traits: bits(g.required)
            .into_iter()
            .map(|t| BTreeSet::from([t]))
            .collect(),
        forbidden_traits: bits(g.forbidden),
        member_of: g
            .member_of
            .map(|i| vec![BTreeSet::from([u(AGGS[i])])])
            .unwrap_or_default(),
        ..RequestGroup::default()
    }
}

fn gen_request() -> impl Strategy<Value = CandidateRequest> {
    (
        proptest::option::of(gen_group()),
        proptest::collection::vec(gen_group(), 0..3),
        proptest::bool::ANY,
    )
        .prop_filter("at least one group", |(u, g, _)| {
            u.is_some() || !g.is_empty()
        })
        .prop_map(|(unsuffixed, granular, isolate)| {
            let mut groups = Vec::new();
            if let Some(g) = unsuffixed {
                groups.push(to_group("", &g));
            }
            for (i, g) in granular.iter().enumerate() {
                groups.push(to_group(&format!("{}", i + 1), g));
            }
            CandidateRequest {
                groups,
                group_policy: Some(if isolate {
                    GroupPolicy::Isolate
                } else {
                    GroupPolicy::None
                }),
                nested_aware: true,
                ..CandidateRequest::default()
            }
        })
}

/// Checks one candidate against the request; returns a description of the first breach.
fn breach(s: &State, r: &CandidateRequest, ar: &AllocationRequest) -> Option<String> {
    for (p, by_rc) in &ar.allocations {
        let prov = s.provider(p)?;
        for (rc, n) in by_rc {
            let Some(inv) = prov.inventories.get(rc) else {
                return Some(format!("{p} has no {rc}"));
            };
            if s.usage(p, rc) + n > inv.capacity() || *n > inv.max_unit {
                return Some(format!("{p} {rc} {n} over capacity"));
            }
        }
    }
    let mut granular_rps = Vec::new();
    for g in &r.groups {
        let Some(rps) = ar.mappings.get(&g.suffix) else {
            return Some(format!("group {:?} not mapped", g.suffix));
        };
        let provs: Vec<&ResourceProvider> = rps.iter().filter_map(|u| s.provider(u)).collect();
        if g.use_same_provider() {
            if provs.len() != 1 {
                return Some(format!("group {} on {} providers", g.suffix, provs.len()));
            }
            let p = provs[0];
            granular_rps.push(p.uuid);
            for (rc, n) in &g.resources {
                if !has_room(s, p, rc, *n) {
                    return Some(format!("group {} {rc} does not fit {}", g.suffix, p.uuid));
                }
            }
            if !g
                .member_of
                .iter()
                .all(|set| set.iter().any(|a| p.aggregates.contains(a)))
            {
                return Some(format!("group {} outside aggregates", g.suffix));
            }
        } else {
            for (rc, n) in &g.resources {
                let have: i64 = provs
                    .iter()
                    .filter_map(|p| ar.allocations.get(&p.uuid).and_then(|m| m.get(rc)))
                    .sum();
                if have < *n {
                    return Some(format!("unsuffixed {rc}: {have} < {n}"));
                }
            }
            for p in &provs {
                let in_aggs = |x: &ResourceProvider| {
                    g.member_of
                        .iter()
                        .all(|set| set.iter().any(|a| x.aggregates.contains(a)))
                };
                let root_in = s.provider(&p.root).is_some_and(in_aggs);
                if !(in_aggs(p) || root_in || p.traits.contains(SHARING_TRAIT)) {
                    return Some(format!("unsuffixed provider {} outside aggregates", p.uuid));
                }
            }
        }
        let all: BTreeSet<&String> = provs.iter().flat_map(|p| p.traits.iter()).collect();
        if !g
            .required_traits
            .iter()
            .all(|set| set.iter().any(|t| all.contains(t)))
        {
            return Some(format!("group {:?} misses a required trait", g.suffix));
        }
        if provs
            .iter()
            .any(|p| g.forbidden_traits.iter().any(|t| p.traits.contains(t)))
        {
            return Some(format!("group {:?} has a forbidden trait", g.suffix));
        }
    }
    if r.group_policy == Some(GroupPolicy::Isolate) {
        let distinct: BTreeSet<&Uuid> = granular_rps.iter().collect();
        if distinct.len() != granular_rps.len() {
            return Some("isolate: a provider serves two groups".into());
        }
    }
    None
}

/// Brute force for granular-only requests without sharing providers: every assignment of
/// one provider per group, within one tree.
fn brute_force_granular(s: &State, r: &CandidateRequest) -> BTreeSet<AllocationRequest> {
    let provs: Vec<&ResourceProvider> = s.providers().collect();
    let mut out = BTreeSet::new();
    let k = r.groups.len();
    let mut idx = vec![0usize; k];
    if provs.is_empty() {
        return out;
    }
    'all: loop {
        let chosen: Vec<&ResourceProvider> = idx.iter().map(|&i| provs[i]).collect();
        let ok_each = r.groups.iter().zip(&chosen).all(|(g, p)| {
            g.resources.iter().all(|(rc, n)| has_room(s, p, rc, *n))
                && g.required_traits
                    .iter()
                    .all(|set| set.iter().any(|t| p.traits.contains(t)))
                && !g.forbidden_traits.iter().any(|t| p.traits.contains(t))
                && g.member_of
                    .iter()
                    .all(|set| set.iter().any(|a| p.aggregates.contains(a)))
        });
        // Without sharing providers every group of a candidate is served from one tree.
        let one_tree = chosen.iter().all(|p| p.root == chosen[0].root);
        let distinct: BTreeSet<Uuid> = chosen.iter().map(|p| p.uuid).collect();
        let isolate_ok =
            r.group_policy != Some(GroupPolicy::Isolate) || distinct.len() == chosen.len();
        if ok_each && one_tree && isolate_ok {
            let mut ar = AllocationRequest {
                allocations: BTreeMap::new(),
                mappings: BTreeMap::new(),
            };
            for (g, p) in r.groups.iter().zip(&chosen) {
                for (rc, n) in &g.resources {
                    *ar.allocations
                        .entry(p.uuid)
                        .or_default()
                        .entry(rc.clone())
                        .or_insert(0) += n;
                }
                ar.mappings
                    .entry(g.suffix.clone())
                    .or_default()
                    .insert(p.uuid);
            }
            if breach(s, r, &ar).is_none() {
                out.insert(ar);
            }
        }
        let mut j = k;
        loop {
            if j == 0 {
                break 'all;
            }
            j -= 1;
            idx[j] += 1;
            if idx[j] < provs.len() {
                break;
            }
            idx[j] = 0;
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn every_candidate_satisfies_its_request(
        gen in proptest::collection::vec(gen_rp(), 1..9),
        r in gen_request(),
    ) {
        let s = build(&gen);
        let c = search(&s, &r).expect("only known names are generated");
        for ar in &c.allocation_requests {
            prop_assert_eq!(breach(&s, &r, ar), None, "candidate {:?}", ar);
        }
        // Summaries cover every provider in a candidate, and only trees in use.
        let summarised: BTreeSet<Uuid> = c.provider_summaries.iter().map(|p| p.uuid).collect();
        let roots: BTreeSet<Uuid> = c
            .allocation_requests
            .iter()
            .flat_map(|a| a.allocations.keys())
            .filter_map(|p| s.provider(p).map(|x| x.root))
            .collect();
        for ar in &c.allocation_requests {
            for p in ar.allocations.keys() {
                prop_assert!(summarised.contains(p));
            }
        }
        for p in &c.provider_summaries {
            prop_assert!(roots.contains(&p.root));
        }
    }

    /// The shortcut that decides whether a tree has a combination with the group's traits
    /// agrees with walking every combination (lists of existing providers, as the search
    /// builds them).
    #[test]
    fn the_trait_shortcut_agrees_with_every_combination(
        gen in proptest::collection::vec(gen_rp(), 1..9),
        lists in proptest::collection::vec(proptest::collection::vec(0u128..9, 0..4), 1..4),
        required in proptest::collection::vec(1u8..8, 0..3),
        forbidden in 0u8..8,
    ) {
        let s = build(&gen);
        let bits = |m: u8| -> BTreeSet<String> {
            TRAITS
                .iter()
                .enumerate()
                .filter(|(b, _)| m & (1 << b) != 0)
                .map(|(_, t)| t.to_string())
                .collect()
        };
        let g = RequestGroup {
            required_traits: required.iter().map(|m| bits(*m)).collect(),
            forbidden_traits: bits(forbidden),
            resources: lists.iter().enumerate().map(|(i, _)| (format!("C{i}"), 1)).collect(),
            ..RequestGroup::default()
        };
        let lists: Vec<Vec<Uuid>> = lists
            .iter()
            .map(|l| l.iter().map(|n| u(n % gen.len() as u128 + 1)).collect::<BTreeSet<_>>().into_iter().collect())
            .collect();
        let walked = !group::combinations(&s, &g, &lists, usize::MAX).is_empty();
        prop_assert_eq!(group::some_combination_has_traits(&s, &g, &lists), walked);
    }

    #[test]
    fn results_do_not_depend_on_insertion_order(
        gen in proptest::collection::vec(gen_rp(), 1..9),
        r in gen_request(),
        seed in any::<u64>(),
    ) {
        let forward = build(&gen);
        // A deterministic shuffle of the same records.
        let mut records: Vec<Record> = forward.records().collect();
        let mut x = seed | 1;
        for i in (1..records.len()).rev() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            records.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let mut shuffled = State::new();
        for rec in records {
            shuffled.insert_record(rec);
        }
        prop_assert_eq!(search(&forward, &r), search(&shuffled, &r));
    }

    #[test]
    fn limit_returns_a_prefix_of_the_full_answer(
        gen in proptest::collection::vec(gen_rp(), 1..9),
        r in gen_request(),
        limit in 1usize..4,
        nested_aware in proptest::bool::ANY,
    ) {
        let s = build(&gen);
        let full = search(&s, &CandidateRequest { nested_aware, ..r.clone() })
            .expect("known names");
        let limited = search(&s, &CandidateRequest { nested_aware, limit: Some(limit), ..r })
            .expect("known names");
        let n = limit.min(full.allocation_requests.len());
        prop_assert_eq!(&limited.allocation_requests[..], &full.allocation_requests[..n]);
        let roots: BTreeSet<Uuid> = limited
            .allocation_requests
            .iter()
            .flat_map(|a| a.allocations.keys())
            .filter_map(|p| s.provider(p).map(|x| x.root))
            .collect();
        let expected: Vec<&ProviderSummary> = full
            .provider_summaries
            .iter()
            .filter(|p| roots.contains(&p.root))
            .collect();
        let got: Vec<&ProviderSummary> = limited.provider_summaries.iter().collect();
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn granular_groups_match_brute_force(
        gen in proptest::collection::vec(gen_rp(), 1..7),
        groups in proptest::collection::vec(gen_group(), 1..4),
        isolate in proptest::bool::ANY,
    ) {
        // Trees without sharing providers: every assignment of one provider per group
        // within one tree that fits is a candidate.
        let gen: Vec<GenRp> = gen
            .into_iter()
            .map(|g| GenRp { sharing: false, ..g })
            .collect();
        let s = build(&gen);
        let r = CandidateRequest {
            groups: groups
                .iter()
                .enumerate()
                .map(|(i, g)| to_group(&format!("{}", i + 1), g))
                .collect(),
            group_policy: Some(if isolate { GroupPolicy::Isolate } else { GroupPolicy::None }),
            nested_aware: true,
            ..CandidateRequest::default()
        };
        let c = search(&s, &r).expect("known names");
        let got: BTreeSet<AllocationRequest> = c.allocation_requests.iter().cloned().collect();
        prop_assert_eq!(got.len(), c.allocation_requests.len(), "no duplicates");
        prop_assert_eq!(got, brute_force_granular(&s, &r));
    }

    /// A window's sharing anchors, found from its trees (the path of windows cut down to a
    /// few roots) or by a scan of the aggregate index over the roots' range, are the anchors
    /// a full pass gives the sharing provider, restricted to the window's roots.
    #[test]
    fn sharing_anchors_of_a_window_agree_with_the_full_pass(
        gen in proptest::collection::vec(gen_rp(), 1..9),
        pick in proptest::collection::vec(proptest::bool::ANY, 9),
        size in 1usize..9,
    ) {
        let s = build(&gen);
        let request = CandidateRequest::default();
        let ctx = group::WideContext::new(&s, &request).expect("no traits").expect("no filter");
        let mut after: Option<Uuid> = None;
        while let Some(window) = group::Window::after(&ctx, after.as_ref(), size) {
            let roots: Vec<Uuid> = window
                .roots
                .iter()
                .enumerate()
                .filter(|(i, _)| pick[*i % pick.len()])
                .map(|(_, r)| *r)
                .collect();
            let narrowed = window.narrowed(&ctx, &roots);
            for w in [&window, &narrowed] {
                for sp in s.providers_with_trait(SHARING_TRAIT) {
                    let full: Vec<Uuid> = group::anchors_for_sharing(&s, sp, None)
                        .into_iter()
                        .filter(|a| w.roots.contains(a))
                        .collect();
                    prop_assert_eq!(group::sharing_anchors_by_range(&s, sp, &w.roots), full.clone());
                    prop_assert_eq!(group::sharing_anchors_by_root(&s, sp, w), full);
                }
            }
            after = window.roots.last().copied();
        }
    }
}
