//! Apply rules for providers, inventories, resource classes, traits and aggregates, tested
//! directly on the pure state machine. Each test reads as a short script: commands in,
//! outcome or Placement's error out.

use std::collections::{BTreeMap, BTreeSet};

use placement_core::{apply, Change, State};
use placement_types::{
    Allocation, ApplyResult, Command, ConsumerTypeWrite, ConsumerWrite, ErrorCode, ErrorKind,
    GenerationCheck, Inventory, Outcome, ParentUpdate, Request, Timestamp, Uuid, MAX_INT,
};

/// A state plus a clock: applies commands like the state machine does (commit on success).
struct Script {
    state: State,
    tick: i64,
}

impl Script {
    fn new() -> Self {
        Script {
            state: State::new(),
            tick: 1_700_000_000_000_000,
        }
    }

    fn run(&mut self, command: Command) -> ApplyResult {
        self.tick += 1_000_000;
        let request = Request {
            id: Uuid::from_u128(self.tick as u128),
            at: Timestamp(self.tick),
            command,
        };
        let applied = apply(&self.state, &request);
        if applied.result.is_err() {
            assert!(
                applied.changes.is_empty(),
                "a rejected command changes nothing"
            );
        }
        self.state.commit(&applied.changes);
        applied.result
    }

    fn ok(&mut self, command: Command) -> Outcome {
        match self.run(command.clone()) {
            Ok(o) => o,
            Err(e) => panic!("{command:?} failed: {e:?}"),
        }
    }

    fn err(&mut self, command: Command) -> (ErrorKind, ErrorCode, String) {
        match self.run(command.clone()) {
            Ok(o) => panic!("{command:?} succeeded: {o:?}"),
            Err(e) => (e.kind, e.code, e.detail),
        }
    }

    fn provider(&mut self, n: u128, name: &str, parent: Option<u128>) -> Uuid {
        let uuid = Uuid::from_u128(n);
        self.ok(Command::CreateProvider {
            uuid,
            name: name.into(),
            parent: parent.map(Uuid::from_u128),
        });
        uuid
    }

    fn generation(&self, uuid: Uuid) -> u32 {
        self.state
            .provider(&uuid)
            .expect("provider exists")
            .generation
    }

    fn inventory(&mut self, rp: Uuid, rc: &str, total: i64) {
        let generation = self.generation(rp);
        let mut inventories = self
            .state
            .provider(&rp)
            .expect("provider exists")
            .inventories
            .clone();
        inventories.insert(rc.into(), Inventory::with_total(total));
        self.ok(Command::SetInventories {
            provider: rp,
            generation,
            inventories,
        });
    }

    fn allocate(&mut self, consumer: u128, rp: Uuid, rc: &str, used: i64) {
        self.ok(Command::WriteAllocations {
            consumers: vec![ConsumerWrite {
                consumer: Uuid::from_u128(consumer),
                project_id: "p".into(),
                user_id: "u".into(),
                generation: GenerationCheck::Unchecked,
                consumer_type: ConsumerTypeWrite::Keep,
                allocations: vec![Allocation {
                    provider: rp,
                    resource_class: rc.into(),
                    used,
                }],
            }],
        });
    }
}

fn invs(list: &[(&str, i64)]) -> BTreeMap<String, Inventory> {
    list.iter()
        .map(|(rc, total)| (rc.to_string(), Inventory::with_total(*total)))
        .collect()
}

#[test]
fn create_provider_rejects_duplicates_and_bad_parents() {
    let mut s = Script::new();
    let rp = s.provider(1, "cn1", None);
    assert_eq!(
        s.state.provider(&rp).map(|p| (p.generation, p.root)),
        Some((0, rp))
    );

    let (kind, code, detail) = s.err(Command::CreateProvider {
        uuid: rp,
        name: "other".into(),
        parent: None,
    });
    assert_eq!(
        (kind, code),
        (ErrorKind::Conflict, ErrorCode::DuplicateName)
    );
    assert_eq!(
        detail,
        format!("Conflicting resource provider uuid: {rp} already exists.")
    );

    let (_, _, detail) = s.err(Command::CreateProvider {
        uuid: Uuid::from_u128(2),
        name: "cn1".into(),
        parent: None,
    });
    assert_eq!(
        detail,
        "Conflicting resource provider name: cn1 already exists."
    );

    let (kind, _, detail) = s.err(Command::CreateProvider {
        uuid: Uuid::from_u128(3),
        name: "child".into(),
        parent: Some(Uuid::from_u128(3)),
    });
    assert_eq!(kind, ErrorKind::BadRequest);
    assert!(
        detail.contains("parent provider UUID cannot be same as UUID"),
        "{detail}"
    );

    let (_, _, detail) = s.err(Command::CreateProvider {
        uuid: Uuid::from_u128(3),
        name: "child".into(),
        parent: Some(Uuid::from_u128(99)),
    });
    assert!(
        detail.ends_with("parent provider UUID does not exist."),
        "{detail}"
    );
}

#[test]
fn child_inherits_root_and_reparenting_moves_the_subtree() {
    let mut s = Script::new();
    let a = s.provider(1, "a", None);
    let b = s.provider(2, "b", Some(1));
    let c = s.provider(3, "c", Some(2));
    let x = s.provider(4, "x", None);
    assert_eq!(s.state.provider(&c).map(|p| p.root), Some(a));

    // Before 1.37 a parent can be set once but never changed or removed.
    let (_, _, detail) = s.err(Command::UpdateProvider {
        uuid: b,
        name: "b".into(),
        parent: ParentUpdate::SetOnce(Some(x)),
    });
    assert!(detail.ends_with("re-parenting a provider is not currently allowed."));
    let (_, _, detail) = s.err(Command::UpdateProvider {
        uuid: b,
        name: "b".into(),
        parent: ParentUpdate::SetOnce(None),
    });
    assert!(detail.ends_with("un-parenting a provider is not currently allowed."));

    // 1.37: move b (and c below it) under x; loops are refused.
    let (_, _, detail) = s.err(Command::UpdateProvider {
        uuid: a,
        name: "a".into(),
        parent: ParentUpdate::Set(Some(c)),
    });
    assert!(detail.ends_with("creating loop in the provider tree is not allowed."));
    s.ok(Command::UpdateProvider {
        uuid: b,
        name: "b".into(),
        parent: ParentUpdate::Set(Some(x)),
    });
    assert_eq!(s.state.provider(&c).map(|p| p.root), Some(x));
    assert_eq!(s.state.children(&a).count(), 0);
    // Un-parent: b becomes a root of its own subtree.
    s.ok(Command::UpdateProvider {
        uuid: b,
        name: "b".into(),
        parent: ParentUpdate::Set(None),
    });
    assert_eq!(s.state.provider(&c).map(|p| p.root), Some(b));
    assert_eq!(
        s.generation(b),
        0,
        "re-parenting does not bump the generation"
    );
}

#[test]
fn delete_provider_refuses_parents_and_providers_with_allocations() {
    let mut s = Script::new();
    let a = s.provider(1, "a", None);
    let b = s.provider(2, "b", Some(1));
    let (_, code, detail) = s.err(Command::DeleteProvider { uuid: a });
    assert_eq!(code, ErrorCode::CannotDeleteParent);
    assert!(detail.contains("It has child resource providers."));
    s.inventory(b, "VCPU", 4);
    s.allocate(10, b, "VCPU", 1);
    let (_, code, detail) = s.err(Command::DeleteProvider { uuid: b });
    assert_eq!(code, ErrorCode::ProviderInUse);
    assert!(detail.ends_with("Resource provider has allocations."));
    let (kind, _, _) = s.err(Command::DeleteProvider {
        uuid: Uuid::from_u128(77),
    });
    assert_eq!(kind, ErrorKind::NotFound);
}

#[test]
fn inventory_writes_check_and_bump_the_generation() {
    let mut s = Script::new();
    let rp = s.provider(1, "cn", None);
    let (kind, code, detail) = s.err(Command::SetInventories {
        provider: rp,
        generation: 5,
        inventories: invs(&[("VCPU", 8)]),
    });
    assert_eq!(
        (kind, code),
        (ErrorKind::Conflict, ErrorCode::ConcurrentUpdate)
    );
    assert_eq!(detail, "resource provider generation conflict");

    s.ok(Command::SetInventories {
        provider: rp,
        generation: 0,
        inventories: invs(&[("VCPU", 8), ("DISK_GB", 100)]),
    });
    assert_eq!(s.generation(rp), 1);

    let (kind, _, detail) = s.err(Command::SetInventories {
        provider: rp,
        generation: 1,
        inventories: invs(&[("NO_SUCH", 1)]),
    });
    assert_eq!(kind, ErrorKind::BadRequest);
    assert!(
        detail.ends_with("No such resource class NO_SUCH."),
        "{detail}"
    );

    // POST of an existing class conflicts; of a new one bumps the generation.
    let (_, code, detail) = s.err(Command::CreateInventory {
        provider: rp,
        generation: None,
        resource_class: "VCPU".into(),
        inventory: Inventory::with_total(1),
    });
    assert_eq!(code, ErrorCode::ConcurrentUpdate);
    assert!(detail.starts_with("Update conflict"));
    s.ok(Command::CreateInventory {
        provider: rp,
        generation: None,
        resource_class: "MEMORY_MB".into(),
        inventory: Inventory::with_total(1024),
    });
    assert_eq!(s.generation(rp), 2);

    let (kind, _, detail) = s.err(Command::UpdateInventory {
        provider: rp,
        generation: 2,
        resource_class: "IPV4_ADDRESS".into(),
        inventory: Inventory::with_total(1),
    });
    assert_eq!(kind, ErrorKind::BadRequest);
    assert!(detail.ends_with("No inventory of class IPV4_ADDRESS found."));

    s.ok(Command::DeleteInventory {
        provider: rp,
        resource_class: "MEMORY_MB".into(),
    });
    assert_eq!(s.generation(rp), 3);
    let (kind, _, _) = s.err(Command::DeleteInventory {
        provider: rp,
        resource_class: "MEMORY_MB".into(),
    });
    assert_eq!(kind, ErrorKind::NotFound);
}

#[test]
fn inventory_in_use_cannot_be_removed_but_may_shrink() {
    let mut s = Script::new();
    let rp = s.provider(1, "cn", None);
    s.inventory(rp, "VCPU", 8);
    s.inventory(rp, "DISK_GB", 100);
    s.allocate(10, rp, "VCPU", 4);

    let g = s.generation(rp);
    let (_, code, detail) = s.err(Command::SetInventories {
        provider: rp,
        generation: g,
        inventories: invs(&[("DISK_GB", 100)]),
    });
    assert_eq!(code, ErrorCode::InventoryInUse);
    assert_eq!(
        detail,
        format!("update conflict: Inventory for 'VCPU' on resource provider '{rp}' in use.")
    );
    let (_, code, _) = s.err(Command::DeleteAllInventories { provider: rp });
    assert_eq!(code, ErrorCode::InventoryInUse);
    let (_, code, detail) = s.err(Command::DeleteInventory {
        provider: rp,
        resource_class: "VCPU".into(),
    });
    assert_eq!(code, ErrorCode::ConcurrentUpdate);
    assert!(detail.starts_with("Unable to delete inventory of class VCPU: "));

    // Shrinking below usage is allowed (Placement only warns).
    s.ok(Command::SetInventories {
        provider: rp,
        generation: g,
        inventories: invs(&[("VCPU", 2), ("DISK_GB", 100)]),
    });
}

#[test]
fn resource_classes_are_custom_unique_and_protected_while_in_use() {
    let mut s = Script::new();
    s.ok(Command::CreateResourceClass {
        name: "CUSTOM_GOLD".into(),
    });
    let (_, _, detail) = s.err(Command::CreateResourceClass {
        name: "CUSTOM_GOLD".into(),
    });
    assert_eq!(
        detail,
        "Conflicting resource class already exists: CUSTOM_GOLD"
    );
    assert_eq!(
        s.ok(Command::EnsureResourceClass {
            name: "CUSTOM_GOLD".into()
        }),
        Outcome::Created(false)
    );
    assert_eq!(
        s.ok(Command::EnsureResourceClass {
            name: "CUSTOM_SILVER".into()
        }),
        Outcome::Created(true)
    );
    assert_eq!(s.state.resource_class_id("CUSTOM_GOLD"), Some(10_000));
    assert_eq!(s.state.resource_class_id("CUSTOM_SILVER"), Some(10_001));

    let rp = s.provider(1, "cn", None);
    s.inventory(rp, "CUSTOM_GOLD", 3);
    let (kind, _, detail) = s.err(Command::DeleteResourceClass {
        name: "CUSTOM_GOLD".into(),
    });
    assert_eq!(kind, ErrorKind::Conflict);
    assert!(detail.ends_with("Class is in use in inventory."));
    let (kind, _, _) = s.err(Command::DeleteResourceClass {
        name: "VCPU".into(),
    });
    assert_eq!(kind, ErrorKind::BadRequest);

    // A rename (before 1.7) carries inventories along.
    s.ok(Command::RenameResourceClass {
        name: "CUSTOM_GOLD".into(),
        new_name: "CUSTOM_PLATINUM".into(),
    });
    assert!(s
        .state
        .provider(&rp)
        .is_some_and(|p| p.inventories.contains_key("CUSTOM_PLATINUM")));
    s.ok(Command::DeleteResourceClass {
        name: "CUSTOM_SILVER".into(),
    });
    assert!(!s.state.resource_class_exists("CUSTOM_SILVER"));
}

#[test]
fn traits_bump_the_generation_only_when_the_set_changes() {
    let mut s = Script::new();
    let rp = s.provider(1, "cn", None);
    assert_eq!(
        s.ok(Command::EnsureTrait {
            name: "CUSTOM_A".into()
        }),
        Outcome::Created(true)
    );
    let traits: BTreeSet<String> = ["CUSTOM_A".to_string(), "HW_CPU_X86_AVX2".to_string()].into();
    s.ok(Command::SetProviderTraits {
        provider: rp,
        generation: 0,
        traits: traits.clone(),
    });
    assert_eq!(s.generation(rp), 1);
    s.ok(Command::SetProviderTraits {
        provider: rp,
        generation: 1,
        traits,
    });
    assert_eq!(s.generation(rp), 1, "same set: no bump");

    let (_, code, _) = s.err(Command::SetProviderTraits {
        provider: rp,
        generation: 0,
        traits: BTreeSet::new(),
    });
    assert_eq!(code, ErrorCode::ConcurrentUpdate);
    let (kind, _, detail) = s.err(Command::SetProviderTraits {
        provider: rp,
        generation: 1,
        traits: ["CUSTOM_NOPE".to_string()].into(),
    });
    assert_eq!(
        (kind, detail.as_str()),
        (ErrorKind::BadRequest, "No such trait CUSTOM_NOPE")
    );

    let (kind, _, detail) = s.err(Command::DeleteTrait {
        name: "CUSTOM_A".into(),
    });
    assert_eq!(kind, ErrorKind::Conflict);
    assert_eq!(
        detail,
        "The trait CUSTOM_A is in use by a resource provider."
    );
    let (kind, _, _) = s.err(Command::DeleteTrait {
        name: "HW_CPU_X86_AVX2".into(),
    });
    assert_eq!(kind, ErrorKind::BadRequest);

    s.ok(Command::DeleteProviderTraits { provider: rp });
    assert_eq!(s.generation(rp), 2);
    s.ok(Command::DeleteTrait {
        name: "CUSTOM_A".into(),
    });
    let (kind, _, detail) = s.err(Command::DeleteTrait {
        name: "CUSTOM_A".into(),
    });
    assert_eq!(
        (kind, detail.as_str()),
        (ErrorKind::NotFound, "No such trait(s): CUSTOM_A.")
    );
}

#[test]
fn aggregates_bump_the_generation_only_from_1_19() {
    let mut s = Script::new();
    let rp = s.provider(1, "cn", None);
    let aggs: BTreeSet<Uuid> = [Uuid::from_u128(100)].into();
    s.ok(Command::SetProviderAggregates {
        provider: rp,
        generation: None,
        aggregates: aggs.clone(),
    });
    assert_eq!(s.generation(rp), 0);
    s.ok(Command::SetProviderAggregates {
        provider: rp,
        generation: Some(0),
        aggregates: aggs,
    });
    assert_eq!(s.generation(rp), 1);
    let (_, code, _) = s.err(Command::SetProviderAggregates {
        provider: rp,
        generation: Some(0),
        aggregates: BTreeSet::new(),
    });
    assert_eq!(code, ErrorCode::ConcurrentUpdate);
}

#[test]
fn derived_indexes_match_a_rebuild_from_records() {
    let mut s = Script::new();
    let a = s.provider(1, "a", None);
    let b = s.provider(2, "b", Some(1));
    s.inventory(a, "VCPU", 8);
    s.inventory(b, "DISK_GB", 100);
    s.allocate(10, a, "VCPU", 2);
    s.allocate(11, b, "DISK_GB", 10);
    s.allocate(10, a, "VCPU", 3); // replaces consumer 10's allocation
    let mut rebuilt = State::new();
    for record in s.state.records() {
        rebuilt.insert_record(record);
    }
    for rp in [a, b] {
        assert_eq!(rebuilt.usages(&rp), s.state.usages(&rp));
        assert_eq!(rebuilt.provider(&rp), s.state.provider(&rp));
    }
    assert_eq!(rebuilt.children(&a).collect::<Vec<_>>(), vec![&b]);
    assert!(rebuilt.has_nested_providers() && s.state.has_nested_providers());
    assert_eq!(s.state.usage(&a, "VCPU"), 3);
    let _ = Change::Trait("unused".into(), None);
}

// ---- Syntax: what apply refuses before it reads the state -----------------------------------

/// Applies one command at `at` to a fresh script with provider 1 (`cn`, VCPU 8).
fn validated_at(at: Timestamp, command: Command) -> ApplyResult {
    let mut s = Script::new();
    let rp = s.provider(1, "cn", None);
    s.inventory(rp, "VCPU", 8);
    let applied = apply(
        &s.state,
        &Request {
            id: Uuid::from_u128(7),
            at,
            command,
        },
    );
    if applied.result.is_err() {
        assert!(
            applied.changes.is_empty(),
            "a rejected command changes nothing"
        );
    }
    applied.result
}

fn validated(command: Command) -> ApplyResult {
    validated_at(Timestamp(1_800_000_000_000_000), command)
}

/// An inventory for provider 1's `SetInventories` at generation 1 (its generation after
/// `validated`'s setup).
fn set_one(rc: &str, inventory: Inventory) -> Command {
    Command::SetInventories {
        provider: Uuid::from_u128(1),
        generation: 1,
        inventories: [(rc.to_string(), inventory)].into(),
    }
}

fn with(f: impl FnOnce(&mut Inventory)) -> Inventory {
    let mut inv = Inventory::with_total(8);
    f(&mut inv);
    inv
}

/// One row per rule of `apply/validate.rs`: each command is what a buggy or hostile
/// producer could put in the log; apply refuses it with a 400 and changes nothing. Rows with
/// `None` are odd values the API (and Placement) accept, which must keep passing.
#[test]
fn requests_are_validated_before_the_state_is_read() {
    let rp = Uuid::from_u128(1);
    let custom = |n: usize| format!("CUSTOM_{}", "A".repeat(n - 7));
    let create = |name: &str| Command::CreateProvider {
        uuid: Uuid::from_u128(5),
        name: name.into(),
        parent: None,
    };
    let rename = |name: &str| Command::UpdateProvider {
        uuid: rp,
        name: name.into(),
        parent: ParentUpdate::Keep,
    };
    let new_rc = |name: &str| Command::CreateResourceClass { name: name.into() };
    let traits = |t: &str| Command::SetProviderTraits {
        provider: rp,
        generation: 1,
        traits: [t.to_string()].into(),
    };
    #[rustfmt::skip]
    let rows: Vec<(&str, Command, Option<&str>)> = vec![
        ("provider name empty", create(""),
         Some("Unable to create resource provider \"\", 00000000-0000-0000-0000-000000000005: Object action create failed because: name is required")),
        ("provider name of 200", create(&"n".repeat(200)), None),
        ("provider name of 201", create(&"n".repeat(201)), Some("Invalid resource provider name: it has 201 characters")),
        ("provider name of 200 characters, 400 bytes", create(&"é".repeat(200)), None),
        ("rename to empty (Placement allows it)", rename(""), None),
        ("rename to 201", rename(&"n".repeat(201)), Some("at most 200 are allowed")),
        ("total 0", set_one("VCPU", with(|i| i.total = 0)), Some("Invalid inventory for 'VCPU' on resource provider '00000000-0000-0000-0000-000000000001': total 0 is not between 1 and 2147483647.")),
        ("total MAX_INT", set_one("VCPU", with(|i| i.total = MAX_INT)), None),
        ("total MAX_INT + 1", set_one("VCPU", with(|i| i.total = MAX_INT + 1)), Some("total 2147483648 is not between 1 and 2147483647")),
        ("total i64::MAX", set_one("VCPU", with(|i| i.total = i64::MAX)), Some("total 9223372036854775807 is not between")),
        ("reserved -1", set_one("VCPU", with(|i| i.reserved = -1)), Some("reserved -1 is not between 0 and 2147483647")),
        ("min_unit 0", set_one("VCPU", with(|i| i.min_unit = 0)), Some("min_unit 0 is not between 1")),
        ("max_unit 0", set_one("VCPU", with(|i| i.max_unit = 0)), Some("max_unit 0 is not between 1")),
        ("step_size 0", set_one("VCPU", with(|i| i.step_size = 0)), Some("step_size 0 is not between 1")),
        ("step_size i64::MIN", set_one("VCPU", with(|i| i.step_size = i64::MIN)), Some("step_size -9223372036854775808 is not")),
        ("min_unit > max_unit (Placement allows it)", set_one("VCPU", with(|i| { i.min_unit = 5; i.max_unit = 2 })), None),
        ("ratio NaN", set_one("VCPU", with(|i| i.allocation_ratio = f64::NAN)), Some("allocation_ratio NaN is not a finite number of at most 3.40282e38")),
        ("ratio inf", set_one("VCPU", with(|i| i.allocation_ratio = f64::INFINITY)), Some("allocation_ratio inf is not a finite number")),
        ("ratio -inf", set_one("VCPU", with(|i| i.allocation_ratio = f64::NEG_INFINITY)), Some("allocation_ratio -inf is not")),
        ("ratio 1e39", set_one("VCPU", with(|i| i.allocation_ratio = 1e39)), Some("allocation_ratio 1e39 is not")),
        ("ratio SQL_SP_FLOAT_MAX", set_one("VCPU", with(|i| i.allocation_ratio = 3.40282e38)), None),
        ("ratio 0 (capacity 0)", set_one("VCPU", with(|i| i.allocation_ratio = 0.0)), None),
        ("capacity < 0", set_one("VCPU", with(|i| i.reserved = 9)),
         Some("Unable to update inventory for resource provider 00000000-0000-0000-0000-000000000001: Invalid inventory for 'VCPU' on resource provider '00000000-0000-0000-0000-000000000001'. The reserved value is greater than total.")),
        ("capacity = 0 (1.26+)", set_one("VCPU", with(|i| i.reserved = 8)), None),
        ("negative ratio, capacity ≥ 0 (Placement allows it)", set_one("VCPU", with(|i| { i.total = 1; i.reserved = 10; i.allocation_ratio = -1.0 })), None),
        ("a record under an impossible class is left to the state check", set_one("vcpu", with(|i| i.total = 0)), Some("Unknown resource class in inventory for resource provider 00000000-0000-0000-0000-000000000001: No such resource class vcpu.")),
        ("POST inventory: class pattern", Command::CreateInventory { provider: rp, generation: None, resource_class: "disk".into(), inventory: Inventory::with_total(1) },
         Some("Invalid resource class name \"disk\" in inventory")),
        ("POST inventory: capacity", Command::CreateInventory { provider: rp, generation: None, resource_class: "DISK_GB".into(), inventory: with(|i| i.reserved = 10) },
         Some("Unable to create inventory for resource provider")),
        ("PUT inventory: fields", Command::UpdateInventory { provider: rp, generation: 1, resource_class: "VCPU".into(), inventory: with(|i| i.total = -8) },
         Some("total -8 is not between 1")),
        ("custom class of 255", new_rc(&custom(255)), None),
        ("custom class of 256", new_rc(&custom(256)), Some("The resource class is invalid.")),
        ("class without CUSTOM_", new_rc("FOO"), Some("The resource class is invalid.")),
        ("class CUSTOM_ alone", new_rc("CUSTOM_"), Some("The resource class is invalid.")),
        ("class in lower case", Command::EnsureResourceClass { name: "CUSTOM_foo".into() }, Some("The resource class is invalid.")),
        ("rename a class to a bad name", Command::RenameResourceClass { name: "CUSTOM_A".into(), new_name: "VCPU2".into() }, Some("The resource class is invalid.")),
        ("trait without CUSTOM_", Command::EnsureTrait { name: "HW_NEW".into() }, Some("The trait is invalid. A valid trait must be no longer than 255 characters")),
        ("trait of 256", Command::EnsureTrait { name: custom(256) }, Some("The trait is invalid.")),
        ("provider trait empty", traits(""), Some("Invalid trait name of 0 characters")),
        ("provider trait of 256", traits(&"T".repeat(256)), Some("Invalid trait name of 256 characters")),
        ("provider trait unknown (state check)", traits("CUSTOM_NOPE"), Some("No such trait CUSTOM_NOPE")),
    ];
    for (what, command, refused) in rows {
        match (validated(command), refused) {
            (Ok(_), None) => {}
            (Err(e), Some(text)) => {
                assert_eq!(e.kind, ErrorKind::BadRequest, "{what}: {}", e.detail);
                assert!(
                    e.detail.contains(text),
                    "{what}: {:?} lacks {text:?}",
                    e.detail
                );
            }
            (r, _) => panic!("{what}: unexpected {r:?}"),
        }
    }
}

#[test]
fn the_request_time_must_be_one_an_http_date_can_show() {
    let ok = Command::EnsureTrait {
        name: "CUSTOM_T".into(),
    };
    for at in [Timestamp(0), Timestamp::MAX] {
        assert!(validated_at(at, ok.clone()).is_ok(), "{at:?}");
    }
    for at in [
        Timestamp(-1),
        Timestamp(i64::MIN),
        Timestamp(Timestamp::MAX.0 + 1),
        Timestamp(i64::MAX),
    ] {
        let e = validated_at(at, ok.clone()).expect_err("refused");
        assert_eq!(e.kind, ErrorKind::BadRequest);
        assert!(
            e.detail
                .starts_with(&format!("Invalid request time {}", at.0)),
            "{}",
            e.detail
        );
    }
}

// ---- Generations and ids never wrap ---------------------------------------------------------

/// Sets a provider's generation directly (no command can bring it to `u32::MAX` quickly).
fn force_generation(s: &mut Script, rp: Uuid, generation: u32) {
    let mut p = s.state.provider(&rp).expect("provider exists").clone();
    p.generation = generation;
    s.state.commit(&[Change::Provider(rp, Some(p))]);
}

#[test]
fn a_provider_generation_at_its_maximum_is_never_wrapped() {
    let mut s = Script::new();
    let rp = s.provider(1, "cn", None);
    s.inventory(rp, "VCPU", 8);
    s.ok(Command::EnsureTrait {
        name: "CUSTOM_T".into(),
    });
    force_generation(&mut s, rp, u32::MAX - 1);
    s.ok(Command::SetInventories {
        provider: rp,
        generation: u32::MAX - 1,
        inventories: invs(&[("VCPU", 16)]),
    });
    assert_eq!(s.generation(rp), u32::MAX);
    let g = u32::MAX;
    let refused = vec![
        Command::SetInventories {
            provider: rp,
            generation: g,
            inventories: invs(&[("VCPU", 4)]),
        },
        Command::CreateInventory {
            provider: rp,
            generation: None,
            resource_class: "DISK_GB".into(),
            inventory: Inventory::with_total(1),
        },
        Command::UpdateInventory {
            provider: rp,
            generation: g,
            resource_class: "VCPU".into(),
            inventory: Inventory::with_total(4),
        },
        Command::DeleteInventory {
            provider: rp,
            resource_class: "VCPU".into(),
        },
        Command::DeleteAllInventories { provider: rp },
        Command::SetProviderTraits {
            provider: rp,
            generation: g,
            traits: ["CUSTOM_T".to_string()].into(),
        },
        Command::SetProviderAggregates {
            provider: rp,
            generation: Some(g),
            aggregates: [Uuid::from_u128(100)].into(),
        },
    ];
    for command in refused {
        let (kind, code, detail) = s.err(command.clone());
        assert_eq!(
            (kind, code),
            (ErrorKind::Conflict, ErrorCode::ConcurrentUpdate),
            "{command:?}"
        );
        assert_eq!(
            detail,
            format!(
                "resource provider generation conflict: the generation of resource provider \
                 {rp} is at its maximum (4294967295) and cannot change any more"
            )
        );
        assert_eq!(s.generation(rp), u32::MAX);
    }
    // What does not bump the generation still works.
    s.ok(Command::SetProviderAggregates {
        provider: rp,
        generation: None,
        aggregates: [Uuid::from_u128(100)].into(),
    });
    s.ok(Command::UpdateProvider {
        uuid: rp,
        name: "renamed".into(),
        parent: ParentUpdate::Keep,
    });
    assert_eq!(s.generation(rp), u32::MAX);
}

#[test]
fn resource_class_ids_never_wrap() {
    let mut s = Script::new();
    s.state.commit(&[Change::ResourceClass(
        "CUSTOM_LAST".into(),
        Some(placement_types::ResourceClass {
            id: u32::MAX,
            name: "CUSTOM_LAST".into(),
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
        }),
    )]);
    let (kind, _, detail) = s.err(Command::CreateResourceClass {
        name: "CUSTOM_NEXT".into(),
    });
    assert_eq!(kind, ErrorKind::Conflict);
    assert!(
        detail.starts_with("No resource class id is left"),
        "{detail}"
    );
    // An existing class is still "ensured" without a new id.
    assert_eq!(
        s.ok(Command::EnsureResourceClass {
            name: "CUSTOM_LAST".into()
        }),
        Outcome::Created(false)
    );
}
