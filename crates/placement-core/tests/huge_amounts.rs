//! Amounts as large as a client can send (`i64::MAX`: the API maps any larger number to it)
//! in the read paths: the provider filter and the allocation-candidates search answer
//! "no room" for them and never overflow, even over records that are larger than any
//! command can write today (an older version's, or a restored backup's).

use std::collections::BTreeMap;

use placement_core::candidates::{search, CandidateRequest, GroupPolicy, RequestGroup};
use placement_core::query::{providers_matching, ProviderFilter};
use placement_core::{Change, State};
use placement_types::{
    Allocation, Consumer, Inventory, ResourceProvider, Timestamp, Uuid, MAX_INT,
};

const MAX: i64 = i64::MAX;

/// Provider 1 with `inventory` of VCPU, `used` of it allocated to one consumer.
fn state(inventory: Inventory, used: i64) -> State {
    let uuid = Uuid::from_u128(1);
    let mut state = State::new();
    state.commit(&[
        Change::Provider(
            uuid,
            Some(ResourceProvider {
                uuid,
                name: "cn".into(),
                generation: 1,
                parent: None,
                root: uuid,
                created_at: Timestamp(0),
                updated_at: Timestamp(0),
                inventories: BTreeMap::from([("VCPU".to_string(), inventory)]),
                traits: Default::default(),
                aggregates: Default::default(),
            }),
        ),
        Change::Consumer(
            Uuid::from_u128(9),
            Some(Consumer {
                uuid: Uuid::from_u128(9),
                project_id: "p".into(),
                user_id: "u".into(),
                generation: 1,
                consumer_type: None,
                created_at: Timestamp(0),
                updated_at: Timestamp(0),
                allocations: vec![Allocation {
                    provider: uuid,
                    resource_class: "VCPU".into(),
                    used,
                }],
            }),
        ),
    ]);
    state
}

fn group(suffix: &str, amount: i64) -> RequestGroup {
    RequestGroup {
        suffix: suffix.into(),
        resources: vec![("VCPU".into(), amount)],
        ..RequestGroup::default()
    }
}

fn candidates(state: &State, groups: Vec<RequestGroup>) -> usize {
    let request = CandidateRequest {
        groups,
        group_policy: Some(GroupPolicy::None),
        nested_aware: true,
        ..CandidateRequest::default()
    };
    search(state, &request)
        .expect("search")
        .allocation_requests
        .len()
}

fn matching(state: &State, amount: i64) -> usize {
    let filter = ProviderFilter {
        resources: vec![("VCPU".into(), amount)],
        ..ProviderFilter::default()
    };
    providers_matching(state, &filter).expect("filter").len()
}

#[test]
fn huge_amounts_find_no_room_on_ordinary_inventory() {
    let s = state(Inventory::with_total(8), 3);
    for amount in [MAX_INT, MAX_INT + 1, MAX - 2, MAX] {
        assert_eq!(matching(&s, amount), 0, "{amount}");
        assert_eq!(candidates(&s, vec![group("", amount)]), 0, "{amount}");
    }
    assert_eq!(matching(&s, 5), 1);
    assert_eq!(candidates(&s, vec![group("", 5)]), 1);
}

/// A record with `max_unit` and capacity beyond what `validate` allows: one group's amount
/// fits alone, and the merge's sums over groups (2 × i64::MAX) must not overflow.
#[test]
fn sums_of_huge_amounts_do_not_overflow_over_huge_records() {
    let huge = Inventory {
        max_unit: MAX,
        allocation_ratio: 4.0,
        ..Inventory::with_total(MAX)
    };
    let s = state(huge, MAX - 1);
    assert_eq!(matching(&s, MAX), 1, "capacity 4 × i64::MAX has room");
    assert_eq!(
        candidates(&s, vec![group("", MAX)]),
        0,
        "used + MAX > capacity()"
    );
    assert_eq!(candidates(&s, vec![group("1", MAX), group("2", MAX)]), 0);
    let s = state(
        Inventory {
            max_unit: MAX,
            ..Inventory::with_total(MAX)
        },
        1,
    );
    assert_eq!(
        candidates(&s, vec![group("1", MAX / 2), group("2", MAX / 2)]),
        1
    );
    assert_eq!(
        candidates(&s, vec![group("1", MAX - 1), group("2", MAX - 1)]),
        0
    );
}
