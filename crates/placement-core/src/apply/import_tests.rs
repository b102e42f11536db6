//! The import rules, as short scripts: batches in, state or refusal out.

use std::collections::{BTreeMap, BTreeSet};

use placement_types::{
    Allocation, Command, Consumer, ErrorKind, ImportBatch, Inventory, Request, ResourceClass,
    ResourceProvider, Timestamp, Trait, Uuid,
};

use crate::apply::apply;
use crate::state::State;

const T0: Timestamp = Timestamp(1_600_000_000_000_000);

fn u(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn rp(n: u128, parent: Option<u128>, root: u128, generation: u32) -> ResourceProvider {
    ResourceProvider {
        uuid: u(n),
        name: format!("rp{n}"),
        generation,
        parent: parent.map(u),
        root: u(root),
        created_at: T0,
        updated_at: Timestamp(T0.0 + n as i64),
        inventories: BTreeMap::new(),
        traits: BTreeSet::new(),
        aggregates: BTreeSet::new(),
    }
}

fn with_inventory(mut p: ResourceProvider, rc: &str, total: i64) -> ResourceProvider {
    p.inventories
        .insert(rc.to_string(), Inventory::with_total(total));
    p
}

fn consumer(n: u128, generation: u32, allocations: &[(u128, &str, i64)]) -> Consumer {
    Consumer {
        uuid: u(n),
        project_id: "p1".into(),
        user_id: "u1".into(),
        generation,
        consumer_type: Some("INSTANCE".into()),
        created_at: T0,
        updated_at: T0,
        allocations: allocations
            .iter()
            .map(|(p, rc, used)| Allocation {
                provider: u(*p),
                resource_class: rc.to_string(),
                used: *used,
            })
            .collect(),
    }
}

fn batch(seq: u32) -> ImportBatch {
    ImportBatch::empty(seq)
}

/// Applies a batch like the state machine does; the refusal's detail on failure.
fn run(state: &mut State, b: ImportBatch) -> Result<(), (ErrorKind, String)> {
    let request = Request {
        id: Uuid::from_u128(1000 + u128::from(b.seq)),
        at: T0,
        command: Command::Import(Box::new(b)),
    };
    let applied = apply(state, &request);
    match applied.result {
        Ok(_) => {
            state.commit(&applied.changes);
            Ok(())
        }
        Err(e) => {
            assert!(
                applied.changes.is_empty(),
                "a refused batch changes nothing"
            );
            Err((e.kind, e.detail))
        }
    }
}

fn refused(state: &mut State, b: ImportBatch, words: &str) {
    let before = state.records().count();
    match run(state, b) {
        Ok(()) => panic!("batch accepted; expected a refusal with {words:?}"),
        Err((_, detail)) => assert!(detail.contains(words), "{detail:?} lacks {words:?}"),
    }
    assert_eq!(state.records().count(), before);
}

/// A tree 1 -> 2 -> 3, a sharing provider 4 in aggregate 100 with the root, a custom class
/// and trait, and two consumers, split over three batches as the loader would send them.
fn import_small(state: &mut State) {
    let mut b0 = batch(0);
    b0.resource_classes.push(ResourceClass {
        id: 10_003,
        name: "CUSTOM_GOLD".into(),
        created_at: T0,
        updated_at: T0,
    });
    b0.traits.push(Trait {
        name: "CUSTOM_FAST".into(),
        created_at: T0,
    });
    run(state, b0).expect("batch 0");

    let mut b1 = batch(1);
    let mut root = with_inventory(rp(1, None, 1, 7), "VCPU", 8);
    root.aggregates.insert(u(100));
    root.traits.insert("CUSTOM_FAST".into());
    root.traits.insert("HW_CPU_X86_AVX2".into());
    b1.providers.push(root);
    b1.providers.push(rp(2, Some(1), 1, 3));
    b1.providers
        .push(with_inventory(rp(3, Some(2), 1, 12), "CUSTOM_GOLD", 5));
    let mut sharing = with_inventory(rp(4, None, 4, 2), "DISK_GB", 100);
    sharing.aggregates.insert(u(100));
    sharing
        .traits
        .insert("MISC_SHARES_VIA_AGGREGATE".to_string());
    b1.providers.push(sharing);
    run(state, b1).expect("batch 1");

    let mut b2 = batch(2);
    b2.consumers.push(consumer(
        50,
        4,
        &[(1, "VCPU", 2), (4, "DISK_GB", 10), (3, "CUSTOM_GOLD", 1)],
    ));
    b2.consumers
        .push(consumer(51, 0, &[(1, "VCPU", 3), (4, "DISK_GB", 20)]));
    run(state, b2).expect("batch 2");
}

#[test]
fn records_are_written_verbatim() {
    let mut state = State::new();
    import_small(&mut state);
    let p3 = state.provider(&u(3)).expect("imported");
    assert_eq!(p3.generation, 12, "generations are kept, not bumped");
    assert_eq!(p3.parent, Some(u(2)));
    assert_eq!(p3.root, u(1));
    assert_eq!(p3.updated_at, Timestamp(T0.0 + 3));
    assert_eq!(state.children(&u(1)).collect::<Vec<_>>(), vec![&u(2)]);
    assert_eq!(state.subtree(&u(1)), vec![u(1), u(2), u(3)]);
    let members: Vec<_> = state.aggregate_members(&u(100)).copied().collect();
    assert_eq!(members, vec![(u(1), u(1)), (u(4), u(4))]);
    assert_eq!(
        state
            .providers_with_trait("CUSTOM_FAST")
            .collect::<Vec<_>>(),
        vec![&u(1)]
    );
    assert_eq!(state.resource_class_id("CUSTOM_GOLD"), Some(10_003));
    let c = state.consumer(&u(50)).expect("imported");
    assert_eq!(c.generation, 4);
    assert_eq!(c.consumer_type.as_deref(), Some("INSTANCE"));
    assert_eq!(state.consumer(&u(51)).map(|c| c.generation), Some(0));
}

#[test]
fn usages_are_the_sum_of_allocations() {
    let mut state = State::new();
    import_small(&mut state);
    assert_eq!(state.usage(&u(1), "VCPU"), 5);
    assert_eq!(state.usage(&u(4), "DISK_GB"), 30);
    assert_eq!(state.usage(&u(3), "CUSTOM_GOLD"), 1);
    assert_eq!(state.usage(&u(2), "VCPU"), 0);
    let on_sharing: Vec<_> = state.provider_consumers(&u(4)).map(|c| c.uuid).collect();
    assert_eq!(on_sharing, vec![u(50), u(51)]);
}

#[test]
fn the_first_batch_needs_an_empty_state_and_a_second_import_is_refused() {
    let mut state = State::new();
    import_small(&mut state);
    let before = state.records().count();
    let mut again = batch(0);
    again.traits.push(Trait {
        name: "CUSTOM_OTHER".into(),
        created_at: T0,
    });
    let (kind, detail) = run(&mut state, again).expect_err("refused");
    assert_eq!(kind, ErrorKind::Conflict);
    assert!(
        detail.contains("already holds data (4 providers, 2 consumers"),
        "{detail}"
    );
    assert_eq!(state.records().count(), before);
    // Even an empty batch 0: the check does not depend on what the batch holds.
    assert!(run(&mut state, batch(0)).is_err());
}

#[test]
fn a_custom_class_or_trait_alone_makes_the_state_non_empty() {
    let mut state = State::new();
    let mut b = batch(0);
    b.traits.push(Trait {
        name: "CUSTOM_X".into(),
        created_at: T0,
    });
    run(&mut state, b).expect("first");
    assert!(run(&mut state, batch(0)).is_err());
}

#[test]
fn later_batches_never_overwrite() {
    let mut state = State::new();
    import_small(&mut state);
    let mut b = batch(3);
    b.providers.push(rp(1, None, 1, 0));
    refused(
        &mut state,
        b,
        "resource provider 00000000-0000-0000-0000-000000000001 exists",
    );
    let mut b = batch(3);
    let mut same_name = rp(9, None, 9, 0);
    same_name.name = "rp2".into();
    b.providers.push(same_name);
    refused(&mut state, b, "the name \"rp2\" is taken");
    let mut b = batch(3);
    b.consumers.push(consumer(50, 0, &[(1, "VCPU", 1)]));
    refused(&mut state, b, "exists already");
    let mut b = batch(3);
    b.resource_classes.push(ResourceClass {
        id: 10_003,
        name: "CUSTOM_SILVER".into(),
        created_at: T0,
        updated_at: T0,
    });
    refused(&mut state, b, "has id 10003, which is taken");
}

#[test]
fn parents_come_first_and_roots_follow_them() {
    let mut state = State::new();
    run(&mut state, batch(0)).expect("empty first batch");
    let mut b = batch(1);
    b.providers.push(rp(2, Some(1), 1, 0));
    b.providers.push(rp(1, None, 1, 0));
    refused(
        &mut state,
        b,
        "parent 00000000-0000-0000-0000-000000000001 is not imported",
    );
    let mut b = batch(1);
    b.providers.push(rp(1, None, 1, 0));
    b.providers.push(rp(2, Some(1), 2, 0));
    refused(&mut state, b, "its parent chain leads to");
    // A parent from an earlier batch.
    let mut b = batch(1);
    b.providers.push(rp(1, None, 1, 0));
    run(&mut state, b).expect("root");
    let mut b = batch(2);
    b.providers.push(rp(2, Some(1), 1, 0));
    run(&mut state, b).expect("child of a stored parent");
    assert_eq!(state.provider(&u(2)).map(|p| p.root), Some(u(1)));
}

#[test]
fn references_must_resolve() {
    let mut state = State::new();
    run(&mut state, batch(0)).expect("empty first batch");
    let mut b = batch(1);
    b.providers
        .push(with_inventory(rp(1, None, 1, 0), "CUSTOM_NOPE", 1));
    refused(&mut state, b, "unknown resource class CUSTOM_NOPE");
    let mut b = batch(1);
    let mut p = rp(1, None, 1, 0);
    p.traits.insert("CUSTOM_NOPE".into());
    b.providers.push(p);
    refused(&mut state, b, "unknown trait CUSTOM_NOPE");
    let mut b = batch(1);
    b.consumers.push(consumer(50, 0, &[(1, "VCPU", 1)]));
    refused(&mut state, b, "which is not imported");
    let mut b = batch(1);
    b.providers.push(rp(1, None, 1, 0));
    b.consumers.push(consumer(50, 0, &[]));
    refused(&mut state, b, "has no allocations");
}

#[test]
fn capacity_is_not_checked_but_syntax_is() {
    let mut state = State::new();
    run(&mut state, batch(0)).expect("empty first batch");
    let mut b = batch(1);
    b.providers
        .push(with_inventory(rp(1, None, 1, 0), "VCPU", 1));
    b.consumers.push(consumer(50, 1, &[(1, "VCPU", 5)]));
    run(&mut state, b).expect("usage over capacity is copied as it is");
    assert_eq!(state.usage(&u(1), "VCPU"), 5);
    let mut b = batch(2);
    b.providers
        .push(with_inventory(rp(2, None, 2, 0), "VCPU", 0));
    refused(&mut state, b, "total 0 is not between 1");
    let mut b = batch(2);
    b.consumers.push(consumer(52, 0, &[(1, "VCPU", 0)]));
    refused(&mut state, b, "at least 1 is allowed");
    let mut b = batch(2);
    let mut c = consumer(52, 0, &[(1, "VCPU", 1)]);
    c.project_id = String::new();
    b.consumers.push(c);
    refused(&mut state, b, "project id of 0 characters");
    let mut b = batch(2);
    let mut p = rp(2, None, 2, 0);
    p.created_at = Timestamp(-1);
    b.providers.push(p);
    refused(&mut state, b, "outside years 1970..=9999");
    let mut b = batch(2);
    b.traits.push(Trait {
        name: "HW_CPU_X86_AVX2".into(),
        created_at: T0,
    });
    refused(&mut state, b, "is not a custom trait name");
}

#[test]
fn an_import_survives_a_rebuild_from_records() {
    let mut state = State::new();
    import_small(&mut state);
    let mut rebuilt = State::new();
    for r in state.records() {
        rebuilt.insert_record(r);
    }
    for p in state.providers() {
        assert_eq!(rebuilt.usages(&p.uuid), state.usages(&p.uuid));
        assert_eq!(rebuilt.provider(&p.uuid), Some(p));
    }
    assert_eq!(rebuilt.records().count(), state.records().count());
}
