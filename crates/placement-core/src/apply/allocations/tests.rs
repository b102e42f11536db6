//! The allocation rules as a spec: each table row is one situation and what Placement does.

use std::collections::BTreeMap;

use placement_types::{
    Allocation, Command, ConsumerTypeWrite, ConsumerWrite, DomainError, ErrorCode, ErrorKind,
    GenerationCheck, Inventory, Request, ReshapeInventory, ResourceProvider, Timestamp, Uuid,
    MAX_INT,
};
use proptest::prelude::*;

use crate::state::{Change, State};

const T0: Timestamp = Timestamp(1_000_000);
const T1: Timestamp = Timestamp(2_000_000);

fn rp(n: u128) -> Uuid {
    Uuid::from_u128(0xA000 + n)
}

fn cons(n: u128) -> Uuid {
    Uuid::from_u128(0xC000 + n)
}

fn inv(total: i64) -> Inventory {
    Inventory::with_total(total)
}

/// A state holding providers `rp(i)` with the given inventories (generation 0).
fn state_with(providers: &[(u128, Vec<(&str, Inventory)>)]) -> State {
    let mut state = State::new();
    let changes: Vec<Change> = providers
        .iter()
        .map(|(n, invs)| {
            let uuid = rp(*n);
            Change::Provider(
                uuid,
                Some(ResourceProvider {
                    uuid,
                    name: format!("rp{n}"),
                    generation: 0,
                    parent: None,
                    root: uuid,
                    created_at: T0,
                    updated_at: T0,
                    inventories: invs
                        .iter()
                        .map(|(c, i)| (c.to_string(), i.clone()))
                        .collect(),
                    traits: Default::default(),
                    aggregates: Default::default(),
                }),
            )
        })
        .collect();
    state.commit(&changes);
    state
}

/// A consumer write with last-writer-wins generation handling (before 1.28).
fn write(consumer: Uuid, lines: &[(u128, &str, i64)]) -> ConsumerWrite {
    ConsumerWrite {
        consumer,
        project_id: "p".into(),
        user_id: "u".into(),
        generation: GenerationCheck::Unchecked,
        consumer_type: ConsumerTypeWrite::Keep,
        allocations: lines
            .iter()
            .map(|(p, c, used)| Allocation {
                provider: rp(*p),
                resource_class: c.to_string(),
                used: *used,
            })
            .collect(),
    }
}

fn with_gen(mut w: ConsumerWrite, g: Option<u32>) -> ConsumerWrite {
    w.generation = GenerationCheck::Expect(g);
    w
}

/// Applies a command at `at` and commits it, as a node does.
fn run_at(state: &mut State, at: Timestamp, command: Command) -> Result<(), DomainError> {
    let applied = crate::apply(
        state,
        &Request {
            id: Uuid::from_u128(1),
            at,
            command,
        },
    );
    state.commit(&applied.changes);
    applied.result.map(|_| ())
}

fn run(state: &mut State, command: Command) -> Result<(), DomainError> {
    run_at(state, T1, command)
}

fn put(state: &mut State, w: ConsumerWrite) -> Result<(), DomainError> {
    run(state, Command::WriteAllocations { consumers: vec![w] })
}

fn gen(state: &State, n: u128) -> u32 {
    state.provider(&rp(n)).map_or(u32::MAX, |p| p.generation)
}

fn cgen(state: &State, c: Uuid) -> Option<u32> {
    state.consumer(&c).map(|c| c.generation)
}

fn expect_err(r: Result<(), DomainError>, kind: ErrorKind, code: ErrorCode, text: &str) {
    match r {
        Ok(()) => panic!("expected an error containing {text:?}, got Ok"),
        Err(e) => {
            assert_eq!((e.kind, e.code), (kind, code), "{}", e.detail);
            assert!(e.detail.contains(text), "{:?} lacks {text:?}", e.detail);
        }
    }
}

const CAPACITY: &str = "The requested amount would exceed the capacity.";
const CONSTRAINTS: &str = "The requested amount would violate inventory constraints.";

#[test]
fn capacity_and_unit_constraints() {
    struct Row {
        what: &'static str,
        inv: Inventory,
        /// Held by another consumer before the write.
        others: i64,
        request: i64,
        /// `None`: accepted; `Some(text)`: refused with 409 and this text.
        refused: Option<&'static str>,
    }
    let full = |total, reserved, ratio| Inventory {
        reserved,
        allocation_ratio: ratio,
        ..inv(total)
    };
    let units = |min, max, step| Inventory {
        min_unit: min,
        max_unit: max,
        step_size: step,
        ..inv(100)
    };
    #[rustfmt::skip]
    let rows = [
        Row { what: "fits exactly", inv: inv(10), others: 4, request: 6, refused: None },
        Row { what: "one over", inv: inv(10), others: 4, request: 7, refused: Some(CAPACITY) },
        Row { what: "reserved counts", inv: full(10, 2, 1.0), others: 0, request: 9, refused: Some(CAPACITY) },
        Row { what: "reserved edge", inv: full(10, 2, 1.0), others: 0, request: 8, refused: None },
        Row { what: "ratio multiplies", inv: full(10, 0, 1.5), others: 10, request: 5, refused: None },
        Row { what: "ratio edge", inv: full(10, 0, 1.5), others: 10, request: 6, refused: Some(CAPACITY) },
        Row { what: "capacity 4.5 holds 4", inv: full(3, 0, 1.5), others: 0, request: 4, refused: None },
        Row { what: "capacity 4.5 refuses 5", inv: full(3, 0, 1.5), others: 0, request: 5, refused: Some(CAPACITY) },
        Row { what: "capacity 4.5 with others", inv: full(3, 0, 1.5), others: 3, request: 2, refused: Some(CAPACITY) },
        Row { what: "already over, new consumer", inv: inv(4), others: 6, request: 1, refused: Some(CAPACITY) },
        Row { what: "below min_unit", inv: units(2, 8, 1), others: 0, request: 1, refused: Some(CONSTRAINTS) },
        Row { what: "at min_unit", inv: units(2, 8, 1), others: 0, request: 2, refused: None },
        Row { what: "at max_unit", inv: units(2, 8, 1), others: 0, request: 8, refused: None },
        Row { what: "above max_unit", inv: units(2, 8, 1), others: 0, request: 9, refused: Some(CONSTRAINTS) },
        Row { what: "off step", inv: units(1, 100, 4), others: 0, request: 6, refused: Some(CONSTRAINTS) },
        Row { what: "on step", inv: units(1, 100, 4), others: 0, request: 8, refused: None },
        Row { what: "constraints before capacity", inv: Inventory { max_unit: 5, ..inv(4) }, others: 0, request: 6, refused: Some(CONSTRAINTS) },
    ];
    for row in rows {
        // Seed the other consumer under a roomy inventory, then set the row's inventory
        // (shrinking inventory under allocations is allowed, as in Placement).
        let mut s = state_with(&[(1, vec![("VCPU", inv(1_000))])]);
        if row.others > 0 {
            put(&mut s, write(cons(9), &[(1, "VCPU", row.others)])).expect(row.what);
        }
        set_inventory(&mut s, 1, "VCPU", row.inv.clone());
        let r = put(&mut s, write(cons(1), &[(1, "VCPU", row.request)]));
        match row.refused {
            None => assert!(r.is_ok(), "{}: {r:?}", row.what),
            Some(text) => expect_err(r, ErrorKind::Conflict, ErrorCode::Undefined, text),
        }
    }
}

/// Replaces one inventory record directly (the provider module's rules are not under test).
fn set_inventory(s: &mut State, n: u128, class: &str, inventory: Inventory) {
    let mut p = s
        .provider(&rp(n))
        .cloned()
        .expect("provider exists in the test");
    p.inventories.insert(class.into(), inventory);
    s.commit(&[Change::Provider(rp(n), Some(p))]);
}

#[test]
fn replacing_own_allocations_frees_their_capacity() {
    let mut s = state_with(&[(1, vec![("VCPU", inv(10))])]);
    put(&mut s, write(cons(1), &[(1, "VCPU", 8)])).expect("first");
    // 8 + 9 > 10, but the 8 are replaced, not added to.
    put(&mut s, write(cons(1), &[(1, "VCPU", 9)])).expect("replace");
    assert_eq!(s.usage(&rp(1), "VCPU"), 9);
    expect_err(
        put(&mut s, write(cons(2), &[(1, "VCPU", 2)])),
        ErrorKind::Conflict,
        ErrorCode::Undefined,
        CAPACITY,
    );
}

#[test]
fn over_capacity_is_tolerated_only_when_not_made_worse() {
    let mut s = state_with(&[(1, vec![("VCPU", inv(10))])]);
    put(&mut s, write(cons(1), &[(1, "VCPU", 8)])).expect("first");
    // The operator shrinks the inventory under the allocation.
    set_inventory(&mut s, 1, "VCPU", inv(4));
    put(&mut s, write(cons(1), &[(1, "VCPU", 6)])).expect("shrinking the overage is fine");
    put(&mut s, write(cons(1), &[(1, "VCPU", 6)])).expect("keeping it is fine");
    expect_err(
        put(&mut s, write(cons(1), &[(1, "VCPU", 7)])),
        ErrorKind::Conflict,
        ErrorCode::Undefined,
        CAPACITY,
    );
}

#[test]
fn multi_consumer_post_counts_every_consumer_on_a_provider() {
    let mut s = state_with(&[(1, vec![("VCPU", inv(10))]), (2, vec![("VCPU", inv(10))])]);
    // 6 + 6 on one provider do not fit, even though each alone would.
    let r = run(
        &mut s,
        Command::WriteAllocations {
            consumers: vec![
                write(cons(1), &[(1, "VCPU", 6)]),
                write(cons(2), &[(1, "VCPU", 6)]),
            ],
        },
    );
    expect_err(r, ErrorKind::Conflict, ErrorCode::Undefined, CAPACITY);
    assert_eq!(s.consumer_count(), 0, "all or nothing");
    assert_eq!(gen(&s, 1), 0);
    // Moving capacity between consumers in one POST works: the old sets are released first.
    run(
        &mut s,
        Command::WriteAllocations {
            consumers: vec![
                write(cons(1), &[(1, "VCPU", 10)]),
                write(cons(2), &[(2, "VCPU", 10)]),
            ],
        },
    )
    .expect("fits");
    run(
        &mut s,
        Command::WriteAllocations {
            consumers: vec![
                write(cons(1), &[(2, "VCPU", 10)]),
                write(cons(2), &[(1, "VCPU", 10)]),
            ],
        },
    )
    .expect("swap");
    assert_eq!(
        (gen(&s, 1), gen(&s, 2)),
        (2, 2),
        "one bump per command per provider"
    );
}

#[test]
fn errors_come_in_placements_order_with_its_words() {
    struct Row {
        what: &'static str,
        write: ConsumerWrite,
        kind: ErrorKind,
        code: ErrorCode,
        text: &'static str,
    }
    let mut s = state_with(&[
        (1, vec![("DISK_GB", inv(100))]),
        (2, vec![("VCPU", inv(4))]),
    ]);
    put(&mut s, write(cons(1), &[(1, "DISK_GB", 10)])).expect("seed");
    let c2 = cons(2);
    #[rustfmt::skip]
    let rows = vec![
        Row { what: "generation before provider", write: with_gen(write(cons(1), &[(7, "COWS", 1)]), Some(9)),
              kind: ErrorKind::Conflict, code: ErrorCode::ConcurrentUpdate,
              text: "consumer generation conflict - expected 1 but got 9" },
        Row { what: "existing consumer named as new", write: with_gen(write(cons(1), &[(1, "DISK_GB", 1)]), None),
              kind: ErrorKind::Conflict, code: ErrorCode::ConcurrentUpdate,
              text: "consumer generation conflict - expected 1 but got None" },
        Row { what: "new consumer with a generation", write: with_gen(write(c2, &[(1, "DISK_GB", 1)]), Some(5)),
              kind: ErrorKind::Conflict, code: ErrorCode::ConcurrentUpdate,
              text: "consumer generation conflict - expected null but got 5" },
        Row { what: "provider before class", write: write(c2, &[(7, "COWS", 1)]),
              kind: ErrorKind::BadRequest, code: ErrorCode::Undefined,
              text: "Allocation for resource provider '00000000-0000-0000-0000-00000000a007' that does not exist." },
        Row { what: "unknown class", write: write(c2, &[(1, "COWS", 1)]),
              kind: ErrorKind::BadRequest, code: ErrorCode::Undefined,
              text: "Unable to allocate inventory for consumer 00000000-0000-0000-0000-00000000c002: No such resource class COWS." },
        Row { what: "provider without any such inventory", write: write(c2, &[(2, "DISK_GB", 1)]),
              kind: ErrorKind::Conflict, code: ErrorCode::Undefined,
              text: "Unable to allocate inventory: Inventory for 'DISK_GB' on resource provider '00000000-0000-0000-0000-00000000a002' invalid." },
        Row { what: "one class missing on a provider", write: write(c2, &[(2, "VCPU", 1), (2, "DISK_GB", 1)]),
              kind: ErrorKind::Conflict, code: ErrorCode::Undefined,
              text: "Inventory for 'DISK_GB' on resource provider '00000000-0000-0000-0000-00000000a002' invalid." },
    ];
    for row in rows {
        let before = s.clone().records().count();
        let r = put(&mut s, row.write);
        assert!(r.is_err(), "{}", row.what);
        expect_err(r, row.kind, row.code, row.text);
        assert_eq!(s.records().count(), before, "{}: nothing written", row.what);
    }
}

#[test]
fn consumer_generations_and_attributes() {
    let mut s = state_with(&[(1, vec![("VCPU", inv(10))])]);
    let c = cons(1);
    put(&mut s, with_gen(write(c, &[(1, "VCPU", 1)]), None)).expect("new consumer");
    assert_eq!(cgen(&s, c), Some(1));
    put(&mut s, with_gen(write(c, &[(1, "VCPU", 2)]), Some(1))).expect("matching");
    assert_eq!(cgen(&s, c), Some(2));
    put(&mut s, write(c, &[(1, "VCPU", 2)])).expect("pre-1.28 ignores generations");
    assert_eq!(cgen(&s, c), Some(3));

    // Project, user and type follow the latest write; `Keep` keeps the type.
    let mut w = with_gen(write(c, &[(1, "VCPU", 2)]), Some(3));
    w.project_id = "p2".into();
    w.user_id = "u2".into();
    w.consumer_type = ConsumerTypeWrite::Set("INSTANCE".into());
    put(&mut s, w).expect("set type");
    put(&mut s, write(c, &[(1, "VCPU", 2)])).expect("keep type");
    let rec = s.consumer(&c).expect("consumer");
    assert_eq!(
        (rec.project_id.as_str(), rec.consumer_type.as_deref()),
        ("p", Some("INSTANCE"))
    );
    assert_eq!((rec.created_at, rec.updated_at), (T1, T1));

    // Emptying a consumer deletes it; a later write starts again from null.
    put(&mut s, with_gen(write(c, &[]), Some(5))).expect("empty");
    assert_eq!(s.consumer(&c), None);
    assert_eq!(s.usage(&rp(1), "VCPU"), 0);
    put(&mut s, with_gen(write(c, &[(1, "VCPU", 1)]), None)).expect("new again");
    assert_eq!(cgen(&s, c), Some(1));
}

#[test]
fn provider_generations_follow_placement() {
    let mut s = state_with(&[(1, vec![("VCPU", inv(10))]), (2, vec![("VCPU", inv(10))])]);
    let c = cons(1);
    run_at(
        &mut s,
        T1,
        Command::WriteAllocations {
            consumers: vec![write(c, &[(1, "VCPU", 1)])],
        },
    )
    .expect("write");
    assert_eq!((gen(&s, 1), gen(&s, 2)), (1, 0));
    assert_eq!(s.provider(&rp(1)).map(|p| p.updated_at), Some(T1));
    // Moving to provider 2 bumps only the provider named in the new set (Placement).
    put(&mut s, write(c, &[(2, "VCPU", 1)])).expect("move");
    assert_eq!((gen(&s, 1), gen(&s, 2)), (1, 1));
    // Emptying names the consumer's providers, so they are bumped.
    put(&mut s, with_gen(write(c, &[]), Some(2))).expect("empty");
    assert_eq!((gen(&s, 1), gen(&s, 2)), (1, 2));
    // DELETE bumps nothing, as in Placement.
    put(&mut s, write(c, &[(1, "VCPU", 1)])).expect("again");
    run(&mut s, Command::DeleteAllocations { consumer: c }).expect("delete");
    assert_eq!((gen(&s, 1), gen(&s, 2)), (2, 2));
    // Refused writes bump nothing.
    assert!(put(&mut s, write(c, &[(1, "VCPU", 11)])).is_err());
    assert_eq!(gen(&s, 1), 2);
}

#[test]
fn delete_allocations() {
    let mut s = state_with(&[(1, vec![("VCPU", inv(10))])]);
    put(&mut s, write(cons(1), &[(1, "VCPU", 3)])).expect("write");
    run(&mut s, Command::DeleteAllocations { consumer: cons(1) }).expect("delete");
    assert_eq!(s.usage(&rp(1), "VCPU"), 0);
    expect_err(
        run(&mut s, Command::DeleteAllocations { consumer: cons(1) }),
        ErrorKind::NotFound,
        ErrorCode::Undefined,
        "No allocations for consumer '00000000-0000-0000-0000-00000000c001'",
    );
}

// ---- Reshaper ------------------------------------------------------------------------------

fn reshape_inv(n: u128, generation: u32, invs: &[(&str, Inventory)]) -> ReshapeInventory {
    ReshapeInventory {
        provider: rp(n),
        generation,
        inventories: invs
            .iter()
            .map(|(c, i)| (c.to_string(), i.clone()))
            .collect::<BTreeMap<_, _>>(),
    }
}

/// Placement's `reshaper.yaml` story: VCPU moves from a root to its child and back.
#[test]
fn reshape_moves_inventory_and_allocations_atomically() {
    let disk = || Inventory {
        min_unit: 10,
        max_unit: 1000,
        step_size: 10,
        ..inv(2048)
    };
    let mut s = state_with(&[
        (1, vec![("DISK_GB", disk()), ("VCPU", inv(10))]),
        (2, vec![]),
    ]);
    let (c0, c1) = (cons(0), cons(1));
    put(&mut s, write(c0, &[(1, "DISK_GB", 1000)])).expect("seed");
    put(&mut s, write(c1, &[(1, "VCPU", 6)])).expect("seed");
    assert_eq!(gen(&s, 1), 2);

    struct Row {
        what: &'static str,
        command: Command,
        kind: ErrorKind,
        code: ErrorCode,
        text: &'static str,
    }
    #[rustfmt::skip]
    let rows = vec![
        Row { what: "removing inventory still allocated",
              command: Command::Reshape { inventories: vec![reshape_inv(1, 2, &[("VCPU", inv(10))])], allocations: vec![] },
              kind: ErrorKind::Conflict, code: ErrorCode::InventoryInUse,
              text: "update conflict: Inventory for 'DISK_GB' on resource provider '00000000-0000-0000-0000-00000000a001' in use." },
        Row { what: "stale provider generation",
              command: Command::Reshape { inventories: vec![reshape_inv(1, 1, &[])], allocations: vec![] },
              kind: ErrorKind::Conflict, code: ErrorCode::ConcurrentUpdate,
              text: "resource provider generation conflict for provider 00000000-0000-0000-0000-00000000a001: actual: 2, given: 1" },
        Row { what: "unknown provider in inventories",
              command: Command::Reshape { inventories: vec![reshape_inv(9, 0, &[])], allocations: vec![] },
              kind: ErrorKind::BadRequest, code: ErrorCode::ProviderNotFound,
              text: "Resource provider 00000000-0000-0000-0000-00000000a009 in inventories not found" },
        Row { what: "unknown class in inventories",
              command: Command::Reshape { inventories: vec![reshape_inv(2, 0, &[("DISK_OF_STEEL", inv(1))])], allocations: vec![] },
              kind: ErrorKind::BadRequest, code: ErrorCode::Undefined,
              text: "malformed reshaper data: No such resource class DISK_OF_STEEL." },
        Row { what: "consumer generation",
              command: Command::Reshape { inventories: vec![], allocations: vec![with_gen(write(c1, &[(2, "VCPU", 6)]), Some(7))] },
              kind: ErrorKind::Conflict, code: ErrorCode::ConcurrentUpdate,
              text: "consumer generation conflict - expected 1 but got 7" },
        Row { what: "allocation exceeding the final inventory",
              command: Command::Reshape {
                  inventories: vec![reshape_inv(1, 2, &[("DISK_GB", disk())]), reshape_inv(2, 0, &[("VCPU", inv(4))])],
                  allocations: vec![write(c1, &[(2, "VCPU", 6)])] },
              kind: ErrorKind::Conflict, code: ErrorCode::Undefined,
              text: "Unable to allocate inventory: Unable to create allocation for 'VCPU'" },
    ];
    for row in rows {
        let before: Vec<_> = s.records().collect();
        expect_err(run(&mut s, row.command), row.kind, row.code, row.text);
        assert_eq!(
            s.records().collect::<Vec<_>>(),
            before,
            "{}: nothing written",
            row.what
        );
    }

    // The move: VCPU inventory and its allocation go to the child in one step.
    run(
        &mut s,
        Command::Reshape {
            inventories: vec![
                reshape_inv(1, 2, &[("DISK_GB", disk())]),
                reshape_inv(2, 0, &[("VCPU", inv(10))]),
            ],
            allocations: vec![
                with_gen(write(c0, &[(1, "DISK_GB", 1000)]), Some(1)),
                with_gen(write(c1, &[(2, "VCPU", 6)]), Some(1)),
            ],
        },
    )
    .expect("move");
    assert_eq!(s.usage(&rp(1), "VCPU"), 0);
    assert_eq!(s.usage(&rp(2), "VCPU"), 6);
    assert!(!s
        .provider(&rp(1))
        .expect("rp1")
        .inventories
        .contains_key("VCPU"));
    // interim + allocations + final on the root; the same on the child.
    assert_eq!((gen(&s, 1), gen(&s, 2)), (5, 3));
    assert_eq!((cgen(&s, c0), cgen(&s, c1)), (Some(2), Some(2)));

    // And back, emptying the consumer on the child and removing the child's inventory.
    run(
        &mut s,
        Command::Reshape {
            inventories: vec![
                reshape_inv(1, 5, &[("DISK_GB", disk()), ("VCPU", inv(10))]),
                reshape_inv(2, 3, &[]),
            ],
            allocations: vec![
                with_gen(write(c1, &[]), Some(2)),
                with_gen(write(cons(5), &[(1, "VCPU", 6)]), None),
            ],
        },
    )
    .expect("move back");
    assert_eq!(s.consumer(&c1), None);
    assert_eq!(s.usage(&rp(1), "VCPU"), 6);
    assert!(s.provider(&rp(2)).expect("rp2").inventories.is_empty());
    assert_eq!((gen(&s, 1), gen(&s, 2)), (8, 5));
}

// ---- Properties ----------------------------------------------------------------------------

const CLASSES: [&str; 2] = ["VCPU", "DISK_GB"];

/// One generated allocation line: (provider, class index, used).
type GenLine = (u8, usize, i64);

#[derive(Debug, Clone)]
enum Op {
    /// POST of several consumers: (consumer, lines).
    Write(Vec<(u8, Vec<GenLine>)>),
    Delete(u8),
}

fn op() -> impl Strategy<Value = Op> {
    let lines = prop::collection::vec((0u8..3, 0usize..2, 0i64..12), 0..4);
    let consumers = prop::collection::vec((0u8..5, lines), 1..3);
    prop_oneof![
        4 => consumers.prop_map(Op::Write),
        1 => (0u8..5).prop_map(Op::Delete),
    ]
}

fn to_command(op: &Op) -> Command {
    match op {
        Op::Delete(c) => Command::DeleteAllocations {
            consumer: cons(u128::from(*c)),
        },
        Op::Write(ws) => {
            let mut seen = std::collections::BTreeSet::new();
            let mut consumers = Vec::new();
            for (c, lines) in ws {
                if !seen.insert(*c) {
                    continue;
                }
                // As the API sends them: a class at most once per provider (the last wins).
                let lines: BTreeMap<(u128, &str), i64> = lines
                    .iter()
                    .filter(|(_, _, used)| *used > 0)
                    .map(|(p, k, used)| ((u128::from(*p), CLASSES[*k]), *used))
                    .collect();
                let lines: Vec<(u128, &str, i64)> = lines
                    .into_iter()
                    .map(|((p, c), used)| (p, c, used))
                    .collect();
                consumers.push(write(cons(u128::from(*c)), &lines));
            }
            Command::WriteAllocations { consumers }
        }
    }
}

proptest! {
    /// Whatever writes arrive, no provider is ever over capacity and the usage index is the
    /// sum of the consumers' allocations; a rejected write changes nothing.
    #[test]
    fn random_writes_never_over_allocate(
        totals in prop::collection::vec((1i64..20, 0i64..3, 1u8..4), 6),
        ops in prop::collection::vec(op(), 1..40),
    ) {
        let invs = |p: usize| -> Vec<(&str, Inventory)> {
            CLASSES.iter().enumerate().map(|(k, c)| {
                let (total, reserved, step) = totals[p * 2 + k];
                (*c, Inventory {
                    reserved: reserved.min(total - 1),
                    step_size: i64::from(step),
                    allocation_ratio: if k == 0 { 1.5 } else { 1.0 },
                    ..inv(total)
                })
            }).collect()
        };
        let mut s = state_with(&[(0, invs(0)), (1, invs(1)), (2, invs(2))]);
        for op in &ops {
            let before: Vec<_> = s.records().collect();
            if run(&mut s, to_command(op)).is_err() {
                prop_assert_eq!(s.records().collect::<Vec<_>>(), before);
            }
            let mut sums: BTreeMap<(Uuid, String), i64> = BTreeMap::new();
            for c in s.consumers() {
                prop_assert!(!c.allocations.is_empty());
                for a in &c.allocations {
                    *sums.entry((a.provider, a.resource_class.clone())).or_default() += a.used;
                }
            }
            for p in s.providers() {
                for (class, inv) in &p.inventories {
                    let used = s.usage(&p.uuid, class);
                    prop_assert!(used <= inv.capacity(), "{} {} {} > {}", p.name, class, used, inv.capacity());
                    prop_assert_eq!(used, sums.get(&(p.uuid, class.clone())).copied().unwrap_or(0));
                }
            }
        }
    }
}

// ---- Syntax (`validate`) --------------------------------------------------------------------

/// Rules of `validate` for allocation writes and the reshaper: each row is a command the API
/// never builds; apply refuses it with a 400 before it reads the state, and writes nothing.
#[test]
fn malformed_allocation_writes_are_refused_whole() {
    let mut s = state_with(&[(1, vec![("VCPU", inv(10))]), (2, vec![("VCPU", inv(10))])]);
    put(&mut s, write(cons(1), &[(1, "VCPU", 1)])).expect("seed");
    let attrs = |f: fn(&mut ConsumerWrite)| {
        let mut w = write(cons(2), &[(1, "VCPU", 1)]);
        f(&mut w);
        Command::WriteAllocations { consumers: vec![w] }
    };
    let one = |lines: &[(u128, &str, i64)]| Command::WriteAllocations {
        consumers: vec![write(cons(2), lines)],
    };
    #[rustfmt::skip]
    let rows: Vec<(&str, Command, &str)> = vec![
        ("amount 0", one(&[(1, "VCPU", 0)]), "Invalid allocation of 0 VCPU from resource provider 00000000-0000-0000-0000-00000000a001 for consumer 00000000-0000-0000-0000-00000000c002: an amount must be at least 1."),
        ("amount i64::MIN", one(&[(1, "VCPU", i64::MIN)]), "Invalid allocation of -9223372036854775808 VCPU"),
        ("a class twice on a provider", one(&[(1, "VCPU", 3), (1, "VCPU", 4)]),
         "Resource class VCPU named twice for resource provider 00000000-0000-0000-0000-00000000a001 in the allocations of consumer 00000000-0000-0000-0000-00000000c002"),
        ("class not matching [A-Z0-9_]+", one(&[(1, "vcpu", 1)]), "Invalid resource class name \"vcpu\" in allocations"),
        ("a consumer twice", Command::WriteAllocations { consumers: vec![write(cons(2), &[(1, "VCPU", 1)]), write(cons(2), &[(2, "VCPU", 1)])] },
         "Consumer 00000000-0000-0000-0000-00000000c002 named twice in one request"),
        ("empty project", attrs(|w| w.project_id.clear()), "Invalid project_id of 0 characters for consumer 00000000-0000-0000-0000-00000000c002"),
        ("project of 256", attrs(|w| w.project_id = "p".repeat(256)), "Invalid project_id of 256 characters"),
        ("empty user", attrs(|w| w.user_id.clear()), "Invalid user_id of 0 characters"),
        ("user of 256", attrs(|w| w.user_id = "u".repeat(256)), "Invalid user_id of 256 characters"),
        ("consumer type in lower case", attrs(|w| w.consumer_type = ConsumerTypeWrite::Set("instance".into())), "Invalid consumer_type \"instance\""),
        ("consumer type empty", attrs(|w| w.consumer_type = ConsumerTypeWrite::Set(String::new())), "Invalid consumer_type \"\""),
        ("consumer type of 256", attrs(|w| w.consumer_type = ConsumerTypeWrite::Set("T".repeat(256))), "and have at most 255 characters"),
        ("reshape: a provider twice", Command::Reshape { inventories: vec![reshape_inv(1, 1, &[]), reshape_inv(1, 1, &[])], allocations: vec![] },
         "Resource provider 00000000-0000-0000-0000-00000000a001 named twice in inventories"),
        ("reshape: inventory fields", Command::Reshape { inventories: vec![reshape_inv(2, 0, &[("VCPU", inv(0))])], allocations: vec![] },
         "Invalid inventory for 'VCPU' on resource provider '00000000-0000-0000-0000-00000000a002': total 0 is not between 1 and 2147483647."),
        ("reshape: allocations", Command::Reshape { inventories: vec![], allocations: vec![write(cons(2), &[(1, "VCPU", 0)])] }, "Invalid allocation of 0 VCPU"),
    ];
    for (what, command, text) in rows {
        let before: Vec<_> = s.records().collect();
        expect_err(
            run(&mut s, command),
            ErrorKind::BadRequest,
            ErrorCode::Undefined,
            text,
        );
        assert_eq!(
            s.records().collect::<Vec<_>>(),
            before,
            "{what}: nothing written"
        );
    }
    // What the API does build passes: type and ids at their longest, a 1.0-style write.
    let mut w = write(cons(2), &[(1, "VCPU", 1), (2, "VCPU", 1)]);
    w.project_id = "p".repeat(255);
    w.user_id = "u".repeat(255);
    w.consumer_type = ConsumerTypeWrite::Set("T".repeat(255));
    put(&mut s, w).expect("valid");
    // A reshape does not check capacity (Placement's reshaper does not either).
    let negative = Inventory {
        reserved: 20,
        ..inv(10)
    };
    let g = gen(&s, 2);
    run(
        &mut s,
        Command::Reshape {
            inventories: vec![reshape_inv(2, g, &[("VCPU", negative)])],
            allocations: vec![write(cons(2), &[(1, "VCPU", 1)])],
        },
    )
    .expect("reshape with capacity < 0");
}

// ---- No overflow, no wrap ------------------------------------------------------------------

/// Amounts from a client may be as large as `i64::MAX` (the API maps any larger JSON number
/// to it): apply answers them like any amount that is too large, without overflowing.
#[test]
fn amounts_up_to_i64_max_never_overflow() {
    let max = i64::MAX;
    let mut s = state_with(&[(1, vec![("VCPU", inv(10))])]);
    put(&mut s, write(cons(1), &[(1, "VCPU", 4)])).expect("seed");
    // Above max_unit: the constraints refuse it, as Placement does for 2147483648 and up.
    for amount in [MAX_INT + 1, max] {
        expect_err(
            put(&mut s, write(cons(2), &[(1, "VCPU", amount)])),
            ErrorKind::Conflict,
            ErrorCode::Undefined,
            CONSTRAINTS,
        );
    }
    // At max_unit: the capacity refuses it.
    expect_err(
        put(&mut s, write(cons(2), &[(1, "VCPU", MAX_INT)])),
        ErrorKind::Conflict,
        ErrorCode::Undefined,
        CAPACITY,
    );

    // A record no command can write any more (an older version's, or restored), so large
    // that sums of amounts leave i64: refused as exceeding the capacity, never wrapped.
    let huge = Inventory {
        max_unit: max,
        allocation_ratio: 4.0,
        ..inv(max)
    };
    set_inventory(&mut s, 1, "VCPU", huge);
    put(&mut s, write(cons(1), &[(1, "VCPU", max - 4)])).expect("fits an i64");
    for command in [
        Command::WriteAllocations {
            consumers: vec![write(cons(2), &[(1, "VCPU", max)])],
        },
        Command::WriteAllocations {
            consumers: vec![
                write(cons(2), &[(1, "VCPU", max)]),
                write(cons(3), &[(1, "VCPU", max)]),
            ],
        },
        Command::Reshape {
            inventories: vec![],
            allocations: vec![write(cons(2), &[(1, "VCPU", 5)])],
        },
    ] {
        let before: Vec<_> = s.records().collect();
        expect_err(
            run(&mut s, command),
            ErrorKind::Conflict,
            ErrorCode::Undefined,
            CAPACITY,
        );
        assert_eq!(s.records().collect::<Vec<_>>(), before);
    }
    assert_eq!(s.usage(&rp(1), "VCPU"), max - 4);
    // Replacing the holder's own allocation releases it first: max fits.
    put(&mut s, write(cons(1), &[(1, "VCPU", max)])).expect("replace");
    assert_eq!(s.usage(&rp(1), "VCPU"), max);
}

/// Sets a generation directly (no sequence of commands gets there in a test's time).
fn force_provider_generation(s: &mut State, n: u128, generation: u32) {
    let mut p = s.provider(&rp(n)).cloned().expect("provider exists");
    p.generation = generation;
    s.commit(&[Change::Provider(rp(n), Some(p))]);
}

fn force_consumer_generation(s: &mut State, c: Uuid, generation: u32) {
    let mut rec = s.consumer(&c).cloned().expect("consumer exists");
    rec.generation = generation;
    s.commit(&[Change::Consumer(c, Some(rec))]);
}

#[test]
fn generations_at_u32_max_are_refused_not_wrapped() {
    let mut s = state_with(&[(1, vec![("VCPU", inv(10))]), (2, vec![("VCPU", inv(10))])]);
    let c = cons(1);
    put(&mut s, write(c, &[(1, "VCPU", 1)])).expect("seed");

    // A consumer at u32::MAX cannot be rewritten; it can be emptied, and starts over.
    force_consumer_generation(&mut s, c, u32::MAX);
    let before: Vec<_> = s.records().collect();
    let exhausted = "consumer generation conflict: the generation of consumer \
                     00000000-0000-0000-0000-00000000c001 is at its maximum (4294967295)";
    expect_err(
        put(
            &mut s,
            with_gen(write(c, &[(1, "VCPU", 2)]), Some(u32::MAX)),
        ),
        ErrorKind::Conflict,
        ErrorCode::ConcurrentUpdate,
        exhausted,
    );
    expect_err(
        run(
            &mut s,
            Command::Reshape {
                inventories: vec![],
                allocations: vec![write(c, &[(2, "VCPU", 1)])],
            },
        ),
        ErrorKind::Conflict,
        ErrorCode::ConcurrentUpdate,
        exhausted,
    );
    assert_eq!(s.records().collect::<Vec<_>>(), before, "nothing written");
    put(&mut s, with_gen(write(c, &[]), Some(u32::MAX))).expect("empty it");
    put(&mut s, with_gen(write(c, &[(1, "VCPU", 1)]), None)).expect("start over");
    assert_eq!(cgen(&s, c), Some(1));

    // A provider at u32::MAX cannot be named in a write or a reshape; others are untouched.
    force_provider_generation(&mut s, 2, u32::MAX);
    let before: Vec<_> = s.records().collect();
    let exhausted = "resource provider generation conflict: the generation of resource \
                     provider 00000000-0000-0000-0000-00000000a002 is at its maximum \
                     (4294967295) and cannot change any more";
    expect_err(
        put(&mut s, write(cons(2), &[(1, "VCPU", 1), (2, "VCPU", 1)])),
        ErrorKind::Conflict,
        ErrorCode::ConcurrentUpdate,
        exhausted,
    );
    for inventories in [
        vec![reshape_inv(2, u32::MAX, &[("VCPU", inv(20))])],
        vec![reshape_inv(2, u32::MAX, &[])],
    ] {
        expect_err(
            run(
                &mut s,
                Command::Reshape {
                    inventories,
                    allocations: vec![],
                },
            ),
            ErrorKind::Conflict,
            ErrorCode::ConcurrentUpdate,
            exhausted,
        );
    }
    assert_eq!(s.records().collect::<Vec<_>>(), before, "nothing written");
    // Deleting allocations bumps no provider, so it still works.
    run(&mut s, Command::DeleteAllocations { consumer: c }).expect("delete");
    assert_eq!(gen(&s, 2), u32::MAX);
}
