//! Unit and property tests of the allocation-candidates search.
//!
//! Unit tests pin the behaviours the API relies on (trees, sharing, granular policies,
//! `same_subtree`, `root_required`, `limit`, errors and early exits). Property tests generate
//! small random deployments and requests and check every returned candidate against the
//! request (capacity, traits, aggregates, `isolate`), that a brute-force enumeration finds the
//! same candidates where one is simple to write (granular groups over flat providers), and
//! that the result does not depend on the order in which the state was built.

use std::collections::{BTreeMap, BTreeSet};

use placement_types::{Allocation, Consumer, Inventory, ResourceProvider, Timestamp, Uuid};
use proptest::prelude::*;

use super::*;
use crate::query::has_room;
use crate::state::Record;

fn u(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

/// A provider record: `inv` is (class, total).
fn rp(
    n: u128,
    parent: Option<u128>,
    root: u128,
    inv: &[(&str, i64)],
    traits: &[&str],
    aggs: &[u128],
) -> ResourceProvider {
    ResourceProvider {
        uuid: u(n),
        name: format!("rp{n}"),
        generation: 1,
        parent: parent.map(u),
        root: u(root),
        created_at: Timestamp(0),
        updated_at: Timestamp(0),
        inventories: inv
            .iter()
            .map(|(rc, t)| (rc.to_string(), Inventory::with_total(*t)))
            .collect(),
        traits: traits.iter().map(|t| t.to_string()).collect(),
        aggregates: aggs.iter().map(|a| u(*a)).collect(),
    }
}

fn consumer(n: u128, allocs: &[(u128, &str, i64)]) -> Consumer {
    Consumer {
        uuid: u(n),
        project_id: "p".into(),
        user_id: "u".into(),
        generation: 1,
        consumer_type: None,
        created_at: Timestamp(0),
        updated_at: Timestamp(0),
        allocations: allocs
            .iter()
            .map(|(p, rc, used)| Allocation {
                provider: u(*p),
                resource_class: rc.to_string(),
                used: *used,
            })
            .collect(),
    }
}

fn state_of(providers: Vec<ResourceProvider>, consumers: Vec<Consumer>) -> State {
    let mut s = State::new();
    for p in providers {
        s.insert_record(Record::Provider(p));
    }
    for c in consumers {
        s.insert_record(Record::Consumer(c));
    }
    s
}

fn group(suffix: &str, resources: &[(&str, i64)]) -> RequestGroup {
    RequestGroup {
        suffix: suffix.into(),
        resources: resources.iter().map(|(r, n)| (r.to_string(), *n)).collect(),
        ..RequestGroup::default()
    }
}

fn request(groups: Vec<RequestGroup>) -> CandidateRequest {
    CandidateRequest {
        groups,
        nested_aware: true,
        ..CandidateRequest::default()
    }
}

/// Each candidate as provider number → class → amount, sorted.
fn shapes(c: &Candidates) -> BTreeSet<Vec<(u128, String, i64)>> {
    c.allocation_requests
        .iter()
        .map(|a| {
            a.allocations
                .iter()
                .flat_map(|(p, m)| m.iter().map(move |(rc, n)| (p.as_u128(), rc.clone(), *n)))
                .collect()
        })
        .collect()
}

fn summary_ids(c: &Candidates) -> Vec<u128> {
    c.provider_summaries
        .iter()
        .map(|s| s.uuid.as_u128())
        .collect()
}

fn a(p: u128, rc: &str, n: i64) -> (u128, String, i64) {
    (p, rc.to_string(), n)
}

/// One root with `children` children, each with 4 VCPU and 4 MEMORY_MB (units), and the
/// request of `groups` granular groups of 1 VCPU each under `isolate`: the product of the
/// children, `children * (children - 1) * ...` candidates.
fn wide_tree(children: u128, groups: usize) -> (State, CandidateRequest) {
    let mut providers = vec![rp(1, None, 1, &[], &[], &[])];
    for c in 0..children {
        providers.push(rp(
            100 + c,
            Some(1),
            1,
            &[("VCPU", 4), ("MEMORY_MB", 4)],
            &[],
            &[],
        ));
    }
    let groups = (0..groups)
        .map(|g| group(&format!("{g}"), &[("VCPU", 1)]))
        .collect();
    let mut r = request(groups);
    r.group_policy = Some(GroupPolicy::Isolate);
    (state_of(providers, vec![]), r)
}

#[test]
fn the_bound_stops_generation_without_building_the_product() {
    // 30 children, 4 isolated groups: 657,720 candidates unbounded.
    let (s, mut r) = wide_tree(30, 4);
    r.max_candidates = Some(1_000);
    let found = search(&s, &r).expect("search");
    assert_eq!(found.allocation_requests.len(), 1_000);
    // `limit` under the bound, and a bound under `limit`.
    r.limit = Some(7);
    assert_eq!(search(&s, &r).expect("search").allocation_requests.len(), 7);
    r.limit = Some(5_000);
    assert_eq!(
        search(&s, &r).expect("search").allocation_requests.len(),
        1_000
    );
}

#[test]
fn the_bound_keeps_a_prefix_of_the_unbounded_answer() {
    let (s, mut r) = wide_tree(6, 3);
    let full = search(&s, &r).expect("search");
    assert_eq!(full.allocation_requests.len(), 6 * 5 * 4);
    r.max_candidates = Some(25);
    let bounded = search(&s, &r).expect("search");
    assert_eq!(
        bounded.allocation_requests[..],
        full.allocation_requests[..25]
    );
}

#[test]
fn the_bound_also_cuts_one_groups_alternatives_in_a_tree() {
    // The unsuffixed group may take each class from any provider of the tree: with 30
    // children and 4 classes that alone would be 30^4 alternatives.
    let classes = ["VCPU", "MEMORY_MB", "DISK_GB", "IPV4_ADDRESS"];
    let mut providers = vec![rp(1, None, 1, &[], &[], &[])];
    for c in 0..30u128 {
        let inv: Vec<(&str, i64)> = classes.iter().map(|rc| (*rc, 10)).collect();
        providers.push(rp(100 + c, Some(1), 1, &inv, &[], &[]));
    }
    let s = state_of(providers, vec![]);
    let mut r = request(vec![group(
        "",
        &classes.iter().map(|rc| (*rc, 1)).collect::<Vec<_>>(),
    )]);
    r.max_candidates = Some(500);
    let found = search(&s, &r).expect("search");
    assert_eq!(found.allocation_requests.len(), 500);
}

#[test]
fn flat_providers_with_room() {
    let s = state_of(
        vec![
            rp(1, None, 1, &[("VCPU", 4), ("MEMORY_MB", 1024)], &[], &[]),
            rp(2, None, 2, &[("VCPU", 4), ("MEMORY_MB", 1024)], &[], &[]),
            rp(3, None, 3, &[("VCPU", 1)], &[], &[]),
        ],
        vec![consumer(100, &[(2, "VCPU", 3)])],
    );
    let c = search(
        &s,
        &request(vec![group("", &[("VCPU", 2), ("MEMORY_MB", 512)])]),
    )
    .expect("valid request");
    assert_eq!(
        shapes(&c),
        BTreeSet::from([vec![a(1, "MEMORY_MB", 512), a(1, "VCPU", 2)]])
    );
    assert_eq!(summary_ids(&c), vec![1]);
    let sum = &c.provider_summaries[0];
    assert_eq!(sum.resources.len(), 2);
}

#[test]
fn min_unit_max_unit_and_step_size_apply_per_group() {
    let mut p = rp(1, None, 1, &[("DISK_GB", 100)], &[], &[]);
    if let Some(inv) = p.inventories.get_mut("DISK_GB") {
        inv.min_unit = 10;
        inv.max_unit = 50;
        inv.step_size = 10;
    }
    let s = state_of(vec![p], vec![]);
    let found = |n: i64| {
        search(&s, &request(vec![group("", &[("DISK_GB", n)])]))
            .expect("valid")
            .allocation_requests
            .len()
    };
    assert_eq!(found(5), 0, "below min_unit");
    assert_eq!(found(15), 0, "not a multiple of step_size");
    assert_eq!(found(60), 0, "above max_unit");
    assert_eq!(found(50), 1);
}

#[test]
fn sharing_provider_serves_every_tree_of_its_aggregate() {
    let s = state_of(
        vec![
            rp(1, None, 1, &[("VCPU", 4)], &[], &[50]),
            rp(2, None, 2, &[("VCPU", 4)], &[], &[50]),
            rp(3, None, 3, &[("VCPU", 4)], &[], &[]),
            rp(9, None, 9, &[("DISK_GB", 100)], &[SHARING_TRAIT], &[50]),
        ],
        vec![],
    );
    let c = search(
        &s,
        &request(vec![group("", &[("VCPU", 1), ("DISK_GB", 10)])]),
    )
    .expect("valid");
    assert_eq!(
        shapes(&c),
        BTreeSet::from([
            vec![a(1, "VCPU", 1), a(9, "DISK_GB", 10)],
            vec![a(2, "VCPU", 1), a(9, "DISK_GB", 10)],
        ])
    );
    assert_eq!(summary_ids(&c), vec![1, 2, 9]);
    // The same through granular groups (a sharing provider is anchored to each tree).
    let mut r = request(vec![
        group("1", &[("VCPU", 1)]),
        group("2", &[("DISK_GB", 10)]),
    ]);
    r.group_policy = Some(GroupPolicy::Isolate);
    let c = search(&s, &r).expect("valid");
    assert_eq!(c.allocation_requests.len(), 2);
    for ar in &c.allocation_requests {
        assert_eq!(ar.mappings["2"], BTreeSet::from([u(9)]));
    }
}

fn numa_tree() -> State {
    // cn (MEMORY_MB) with numa0, numa1 (VCPU 2 each), numa1 has CUSTOM_FAST.
    state_of(
        vec![
            rp(1, None, 1, &[("MEMORY_MB", 1024)], &["HW_CPU_X86_AVX"], &[]),
            rp(2, Some(1), 1, &[("VCPU", 2)], &[], &[]),
            rp(3, Some(1), 1, &[("VCPU", 2)], &["HW_CPU_X86_SSE"], &[]),
        ],
        vec![],
    )
}

#[test]
fn nested_providers_combine_within_a_tree() {
    let s = numa_tree();
    let mut r = request(vec![group("", &[("VCPU", 1), ("MEMORY_MB", 10)])]);
    let c = search(&s, &r).expect("valid");
    assert_eq!(c.allocation_requests.len(), 2);
    assert_eq!(summary_ids(&c), vec![1, 2, 3]);
    // Traits are met by the providers of the combination together; the root's trait does
    // not count for VCPU on a child, but the root gives MEMORY_MB here so it does.
    r.groups[0].required_traits = vec![BTreeSet::from(["HW_CPU_X86_SSE".to_string()])];
    let c = search(&s, &r).expect("valid");
    assert_eq!(
        shapes(&c),
        BTreeSet::from([vec![a(1, "MEMORY_MB", 10), a(3, "VCPU", 1)]])
    );
    // Before 1.29 a candidate may not use two providers of one tree.
    r.nested_aware = false;
    assert!(search(&s, &r)
        .expect("valid")
        .allocation_requests
        .is_empty());
}

#[test]
fn granular_groups_and_isolate() {
    let s = numa_tree();
    let mut r = request(vec![group("1", &[("VCPU", 1)]), group("2", &[("VCPU", 1)])]);
    r.group_policy = Some(GroupPolicy::None);
    let c = search(&s, &r).expect("valid");
    // (2,2) (2,3) (3,2) (3,3) → three distinct allocations; mappings tell the last two apart.
    assert_eq!(c.allocation_requests.len(), 4);
    assert_eq!(shapes(&c).len(), 3);
    r.group_policy = Some(GroupPolicy::Isolate);
    let c = search(&s, &r).expect("valid");
    assert_eq!(c.allocation_requests.len(), 2);
    for ar in &c.allocation_requests {
        assert_ne!(ar.mappings["1"], ar.mappings["2"]);
    }
    // Summed amounts must fit: 2 + 1 VCPU does not fit a numa node of 2.
    let mut r = request(vec![group("1", &[("VCPU", 2)]), group("2", &[("VCPU", 1)])]);
    r.group_policy = Some(GroupPolicy::None);
    let c = search(&s, &r).expect("valid");
    assert_eq!(c.allocation_requests.len(), 2);
}

#[test]
fn same_subtree_and_resourceless_groups() {
    // root 1 → a 2 → (b 3 with VCPU), and root 1 → c 4 with VCPU; 2 has HW_NUMA_ROOT.
    let s = state_of(
        vec![
            rp(1, None, 1, &[], &[], &[]),
            rp(2, Some(1), 1, &[], &["HW_NUMA_ROOT"], &[]),
            rp(3, Some(2), 1, &[("VCPU", 2)], &[], &[]),
            rp(4, Some(1), 1, &[("VCPU", 2)], &[], &[]),
        ],
        vec![],
    );
    let mut anchor = group("_A", &[]);
    anchor.required_traits = vec![BTreeSet::from(["HW_NUMA_ROOT".to_string()])];
    let mut r = request(vec![group("_CPU", &[("VCPU", 1)]), anchor]);
    r.group_policy = Some(GroupPolicy::None);
    r.same_subtrees = vec![BTreeSet::from(["_CPU".to_string(), "_A".to_string()])];
    let c = search(&s, &r).expect("valid");
    assert_eq!(shapes(&c), BTreeSet::from([vec![a(3, "VCPU", 1)]]));
    let ar = &c.allocation_requests[0];
    assert_eq!(ar.mappings["_A"], BTreeSet::from([u(2)]));
}

#[test]
fn root_required_filters_anchors() {
    let s = state_of(
        vec![
            rp(
                1,
                None,
                1,
                &[("VCPU", 4)],
                &["COMPUTE_VOLUME_MULTI_ATTACH"],
                &[],
            ),
            rp(2, None, 2, &[("VCPU", 4)], &[], &[]),
        ],
        vec![],
    );
    let mut r = request(vec![group("", &[("VCPU", 1)])]);
    r.root_required = BTreeSet::from(["COMPUTE_VOLUME_MULTI_ATTACH".to_string()]);
    assert_eq!(summary_ids(&search(&s, &r).expect("valid")), vec![1]);
    r.root_required = BTreeSet::new();
    r.root_forbidden = BTreeSet::from(["COMPUTE_VOLUME_MULTI_ATTACH".to_string()]);
    assert_eq!(summary_ids(&search(&s, &r).expect("valid")), vec![2]);
    r.root_forbidden = BTreeSet::from(["CUSTOM_NOPE".to_string()]);
    assert_eq!(
        search(&s, &r),
        Err(SearchError::UnknownTrait("CUSTOM_NOPE".into()))
    );
}

#[test]
fn limit_keeps_the_first_and_their_summaries() {
    let s = state_of(
        (1..=5)
            .map(|n| rp(n, None, n, &[("VCPU", 1)], &[], &[]))
            .collect(),
        vec![],
    );
    let mut r = request(vec![group("", &[("VCPU", 1)])]);
    r.limit = Some(2);
    let c = search(&s, &r).expect("valid");
    assert_eq!(c.allocation_requests.len(), 2);
    assert_eq!(summary_ids(&c), vec![1, 2]);
}

#[test]
fn unknown_names_and_early_exits() {
    let s = numa_tree();
    let r = request(vec![group("", &[("CUSTOM_NOPE", 1)])]);
    assert_eq!(
        search(&s, &r),
        Err(SearchError::UnknownResourceClass("CUSTOM_NOPE".into()))
    );
    let mut g = group("", &[("VCPU", 1)]);
    g.forbidden_traits = BTreeSet::from(["CUSTOM_NOPE".to_string()]);
    assert_eq!(
        search(&s, &request(vec![g.clone()])),
        Err(SearchError::UnknownTrait("CUSTOM_NOPE".into()))
    );
    // No provider in the aggregate: empty before the unknown trait is looked up.
    g.member_of = vec![BTreeSet::from([u(777)])];
    assert_eq!(
        search(&s, &request(vec![g.clone()])),
        Ok(Candidates::default())
    );
    // An in_tree provider that does not exist: empty.
    let mut g = group("", &[("VCPU", 1)]);
    g.in_tree = Some(u(777));
    assert_eq!(search(&s, &request(vec![g])), Ok(Candidates::default()));
    // A later group is not looked at once an earlier one matches nothing.
    let mut r = request(vec![
        group("1", &[("VCPU", 100)]),
        group("2", &[("CUSTOM_NOPE", 1)]),
    ]);
    r.group_policy = Some(GroupPolicy::None);
    assert_eq!(search(&s, &r), Ok(Candidates::default()));
}

/// Placement builds the unsuffixed group's requests (checking the traits of each combination
/// of providers in a tree) before it looks at the next group: when no combination has the
/// traits, the answer is empty and a later group's unknown trait is not reported. Found
/// against Placement 16.0: `resources=VCPU:1,PCI_DEVICE:2&required=CUSTOM_A&resources1=
/// PCI_DEVICE:2&required1=CUSTOM_NOPE&group_policy=none` answers 200 with no candidates.
#[test]
fn a_group_whose_combinations_lack_the_traits_ends_the_search() {
    type Case = (
        Vec<BTreeSet<String>>,
        BTreeSet<String>,
        Result<usize, SearchError>,
    );
    // Tree 1: VCPU on the root (SSE2); PCI_DEVICE on its children 2 (SSE) and 3 (NUMA_ROOT).
    // Root 5: VCPU and AVX, no PCI_DEVICE.
    let s = state_of(
        vec![
            rp(1, None, 1, &[("VCPU", 1)], &["HW_CPU_X86_SSE2"], &[]),
            rp(
                2,
                Some(1),
                1,
                &[("PCI_DEVICE", 3)],
                &["HW_CPU_X86_SSE"],
                &[],
            ),
            rp(3, Some(1), 1, &[("PCI_DEVICE", 3)], &["HW_NUMA_ROOT"], &[]),
            rp(5, None, 5, &[("VCPU", 2)], &["HW_CPU_X86_AVX"], &[]),
        ],
        vec![],
    );
    let traits =
        |names: &[&str]| -> BTreeSet<String> { names.iter().map(|t| t.to_string()).collect() };
    let mut unnamed = group("", &[("VCPU", 1), ("PCI_DEVICE", 2)]);
    let mut unknown = group("1", &[("PCI_DEVICE", 2)]);
    unknown.required_traits = vec![traits(&["CUSTOM_NOPE"])];
    let nope = Err(SearchError::UnknownTrait("CUSTOM_NOPE".into()));
    // (required, forbidden, the answer: candidates or the later group's error)
    let cases: Vec<Case> = vec![
        // Tree 1 has every class but not AVX; root 5 has AVX but no PCI_DEVICE.
        (vec![traits(&["HW_CPU_X86_AVX"])], BTreeSet::new(), Ok(0)),
        // Every PCI_DEVICE provider of tree 1 has a forbidden trait.
        (vec![], traits(&["HW_CPU_X86_SSE", "HW_NUMA_ROOT"]), Ok(0)),
        // SSE and NUMA_ROOT are in tree 1, but on its two PCI_DEVICE providers: never together.
        (
            vec![traits(&["HW_CPU_X86_SSE"]), traits(&["HW_NUMA_ROOT"])],
            BTreeSet::new(),
            Ok(0),
        ),
        (
            vec![traits(&["HW_NUMA_ROOT"])],
            traits(&["HW_CPU_X86_SSE"]),
            nope.clone(),
        ),
        // AVX or NUMA_ROOT: child 3 has NUMA_ROOT, so the group matches and group 1's error
        // is reported.
        (
            vec![traits(&["HW_CPU_X86_AVX", "HW_NUMA_ROOT"])],
            BTreeSet::new(),
            nope.clone(),
        ),
        (vec![], traits(&["HW_NUMA_ROOT"]), nope.clone()),
        // SSE2 on the root and NUMA_ROOT on child 3: together, they have both.
        (
            vec![traits(&["HW_CPU_X86_SSE2"]), traits(&["HW_NUMA_ROOT"])],
            BTreeSet::new(),
            nope.clone(),
        ),
    ];
    for (required, forbidden, want) in cases {
        unnamed.required_traits = required.clone();
        unnamed.forbidden_traits = forbidden.clone();
        let mut r = request(vec![unnamed.clone(), unknown.clone()]);
        r.group_policy = Some(GroupPolicy::None);
        let got = search(&s, &r).map(|c| c.allocation_requests.len());
        assert_eq!(got, want, "required {required:?} forbidden {forbidden:?}");
        r.limit = Some(1);
        let windowed = search(&s, &r).map(|c| c.allocation_requests.len());
        assert_eq!(
            windowed, want,
            "windowed: required {required:?} forbidden {forbidden:?}"
        );
        // Alone, the group's answer agrees: candidates exactly when it matched above.
        let alone = search(&s, &request(vec![unnamed.clone()])).expect("known traits");
        assert_eq!(alone.allocation_requests.is_empty(), want == Ok(0));
    }
}

/// Under `limit` the trees are searched in windows (one root each in tests); which group
/// fails first must still be decided over every tree, as without `limit`.
#[test]
fn windows_decide_errors_and_early_exits_like_a_full_pass() {
    // Roots 1..=4 with VCPU; only the last has the trait and DISK_GB.
    let mut provs: Vec<ResourceProvider> = (1..=3)
        .map(|n| rp(n, None, n, &[("VCPU", 4)], &[], &[]))
        .collect();
    provs.push(rp(
        4,
        None,
        4,
        &[("VCPU", 4), ("DISK_GB", 10)],
        &["HW_CPU_X86_AVX"],
        &[],
    ));
    let s = state_of(provs, vec![]);
    let mut avx = group("1", &[("VCPU", 1)]);
    avx.required_traits = vec![BTreeSet::from(["HW_CPU_X86_AVX".to_string()])];
    let mut unknown = group("2", &[("VCPU", 1)]);
    unknown.required_traits = vec![BTreeSet::from(["CUSTOM_NOPE".to_string()])];
    let disk = group("3", &[("DISK_GB", 1)]);
    let mut no_avx = group("4", &[("VCPU", 1)]);
    no_avx.forbidden_traits = BTreeSet::from(["HW_CPU_X86_AVX".to_string()]);
    let nope = SearchError::UnknownTrait("CUSTOM_NOPE".into());
    let cases = [
        // Group 1 matches only in the last window: group 2's error is still reported.
        (
            vec![avx.clone(), unknown.clone()],
            Err(SearchError::UnknownTrait("CUSTOM_NOPE".into())),
        ),
        // Group 1 matches nowhere: group 2 is never looked at.
        (vec![group("1", &[("VCPU", 100)]), unknown.clone()], Ok(0)),
        // Group 2 matches only where group 1 does: found though the first windows miss.
        (vec![avx.clone(), disk.clone()], Ok(1)),
        // Group 1 matches in every window but the last; group 2 only in the last.
        (vec![group("1", &[("VCPU", 1)]), disk.clone()], Ok(1)),
        // No window has both of the first two groups, so none looks at the third; both
        // match somewhere, so a full pass reports the third's error.
        (
            vec![no_avx.clone(), avx.clone(), unknown.clone()],
            Err(nope.clone()),
        ),
        (vec![no_avx.clone(), avx.clone()], Ok(0)),
    ];
    for (groups, want) in cases {
        let mut r = request(groups.clone());
        r.group_policy = Some(GroupPolicy::None);
        let full = search(&s, &r);
        let got = search(
            &s,
            &CandidateRequest {
                limit: Some(1),
                ..r
            },
        );
        assert_eq!(got, full, "{groups:?}");
        assert_eq!(got.map(|c| c.allocation_requests.len()), want, "{groups:?}");
    }
    // Windows of two roots; VCPU on roots 1 and 3, DISK_GB on 2 and 4. Every window has a
    // VCPU match, but the DISK_GB group, searched there only on the VCPU trees, never
    // matches: it still matches in a full pass, so the third group's error is reported.
    let s2 = state_of(
        vec![
            rp(1, None, 1, &[("VCPU", 4)], &[], &[]),
            rp(2, None, 2, &[("DISK_GB", 10)], &[], &[]),
            rp(3, None, 3, &[("VCPU", 4)], &[], &[]),
            rp(4, None, 4, &[("DISK_GB", 10)], &[], &[]),
        ],
        vec![],
    );
    for (groups, want) in [
        (
            vec![group("1", &[("VCPU", 1)]), disk.clone(), unknown.clone()],
            Err(nope.clone()),
        ),
        (vec![group("1", &[("VCPU", 1)]), disk.clone()], Ok(0)),
    ] {
        let mut r = request(groups.clone());
        r.group_policy = Some(GroupPolicy::None);
        let full = search(&s2, &r);
        let got = search(
            &s2,
            &CandidateRequest {
                limit: Some(2),
                ..r
            },
        );
        assert_eq!(got, full, "{groups:?}");
        assert_eq!(got.map(|c| c.allocation_requests.len()), want, "{groups:?}");
    }
    // No providers at all: errors are still those of the request.
    let empty = State::new();
    let mut r = request(vec![unknown]);
    r.limit = Some(1);
    assert_eq!(
        search(&empty, &r),
        Err(SearchError::UnknownTrait("CUSTOM_NOPE".into()))
    );
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

/// Provider records and consumers for a generated deployment (provider i is uuid i+1).
fn build(gen: &[GenRp]) -> (Vec<ResourceProvider>, Vec<Consumer>) {
    let mut out: Vec<ResourceProvider> = Vec::new();
    let mut consumers = Vec::new();
    for (i, g) in gen.iter().enumerate() {
        let n = i as u128 + 1;
        // Only earlier providers can be parents; sharing providers stay roots.
        let parent = g
            .parent
            .filter(|p| *p < i && !g.sharing)
            .map(|p| p as u128 + 1);
        let root = parent
            .and_then(|p| out.get(p as usize - 1).map(|x| x.root.as_u128()))
            .unwrap_or(n);
        let mut traits: Vec<&str> = TRAITS
            .iter()
            .enumerate()
            .filter(|(b, _)| g.traits & (1 << b) != 0)
            .map(|(_, t)| *t)
            .collect();
        if g.sharing {
            traits.push(SHARING_TRAIT);
        }
        let aggs: Vec<u128> = AGGS
            .iter()
            .enumerate()
            .filter(|(b, _)| g.aggs & (1 << b) != 0)
            .map(|(_, a)| *a)
            .collect();
        let inv: BTreeMap<&str, i64> = g.inv.iter().map(|(c, t, _)| (CLASSES[*c], *t)).collect();
        let inv: Vec<(&str, i64)> = inv.into_iter().collect();
        out.push(rp(n, parent, root, &inv, &traits, &aggs));
        let used: BTreeMap<&str, i64> = g
            .inv
            .iter()
            .map(|(c, t, used)| (CLASSES[*c], (*used).min(*t)))
            .filter(|(_, used)| *used > 0)
            .collect();
        if !used.is_empty() {
            let allocs: Vec<(u128, &str, i64)> =
                used.into_iter().map(|(rc, n2)| (n, rc, n2)).collect();
            consumers.push(consumer(1000 + n, &allocs));
        }
    }
    (out, consumers)
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
        let (provs, consumers) = build(&gen);
        let s = state_of(provs, consumers);
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
        let (provs, consumers) = build(&gen);
        let s = state_of(provs, consumers);
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
        let (provs, consumers) = build(&gen);
        let forward = state_of(provs.clone(), consumers.clone());
        // A deterministic shuffle of the same records.
        let mut records: Vec<Record> = provs
            .into_iter()
            .map(Record::Provider)
            .chain(consumers.into_iter().map(Record::Consumer))
            .collect();
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
        let (provs, consumers) = build(&gen);
        let s = state_of(provs, consumers);
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
        let (provs, consumers) = build(&gen);
        let s = state_of(provs, consumers);
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
        let (provs, consumers) = build(&gen);
        let s = state_of(provs, consumers);
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
