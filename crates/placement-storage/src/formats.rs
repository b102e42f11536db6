//! Pinned formats: the bytes of everything this crate persists, compared with
//! `golden/formats.txt` (see `placement_types::golden` for the rules: an encoding that changes
//! without a format version bump fails; `UPDATE_GOLDEN=1` pins a new version or new samples).
//!
//! One sample per encoding a data directory or a snapshot holds: the log entry payload of
//! every `Command` variant, the three kinds of openraft entry, the log key, every record kind
//! with its key, every metadata value, a dedupe row (success and refusal) and a whole
//! snapshot file of one record. Reordering an enum variant, a field or a key tag changes
//! these bytes; so does a serde attribute or a bincode configuration change.

use std::collections::{BTreeMap, BTreeSet};

use openraft::entry::RaftEntry;
use placement_core::Change;
use placement_types::golden::encoded as enc;
use placement_types::{
    Allocation, Command, Consumer, ConsumerTypeWrite, ConsumerWrite, DomainError, ErrorCode,
    GenerationCheck, ImportBatch, Inventory, LogPayload, Outcome, ParentUpdate, Request,
    ReshapeInventory, ResourceClass, ResourceProvider, Timestamp, Trait, Uuid,
};

use crate::dedup::Remembered;
use crate::keys::{
    self, APPLIED, COMMITTED, FORMAT, FORMAT_VERSION, LAST_PURGED, MEMBERSHIP, NODE_ID, VOTE,
};
use crate::snapshot::{SnapshotWriter, SNAPSHOT_FORMAT};
use crate::types::{Entry, LogId, Membership, PeerNode, SnapshotMeta, StoredMembership, Vote};

const P: Uuid = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
const Q: Uuid = Uuid::from_u128(0xfedc_ba98_7654_3210_fedc_ba98_7654_3210);
const AT: Timestamp = Timestamp(1_764_979_200_000_000);

fn log_id(index: u64) -> LogId {
    openraft::testing::log_id::<crate::TypeConfig>(3, 2, index)
}

fn inventory() -> Inventory {
    Inventory {
        total: 64,
        reserved: 2,
        min_unit: 1,
        max_unit: 16,
        step_size: 2,
        allocation_ratio: 1.5,
    }
}

fn allocation() -> Allocation {
    Allocation {
        provider: P,
        resource_class: "VCPU".into(),
        used: 4,
    }
}

fn consumer_write() -> ConsumerWrite {
    ConsumerWrite {
        consumer: Q,
        project_id: "project".into(),
        user_id: "user".into(),
        generation: GenerationCheck::Expect(Some(3)),
        consumer_type: ConsumerTypeWrite::Set("INSTANCE".into()),
        allocations: vec![allocation()],
    }
}

fn provider() -> ResourceProvider {
    ResourceProvider {
        uuid: P,
        name: "compute-1".into(),
        generation: 7,
        parent: Some(Q),
        root: Q,
        created_at: AT,
        updated_at: Timestamp(AT.0 + 1),
        inventories: BTreeMap::from([("VCPU".into(), inventory())]),
        traits: BTreeSet::from(["HW_CPU_X86_AVX2".into()]),
        aggregates: BTreeSet::from([Q]),
    }
}

fn consumer() -> Consumer {
    Consumer {
        uuid: Q,
        project_id: "project".into(),
        user_id: "user".into(),
        generation: 2,
        consumer_type: Some("MIGRATION".into()),
        created_at: AT,
        updated_at: AT,
        allocations: vec![allocation()],
    }
}

fn resource_class() -> ResourceClass {
    ResourceClass {
        id: 10_001,
        name: "CUSTOM_GPU".into(),
        created_at: AT,
        updated_at: AT,
    }
}

fn a_trait() -> Trait {
    Trait {
        name: "CUSTOM_FAST".into(),
        created_at: AT,
    }
}

/// One of every `Command` variant (a new variant must be added here: the match is total).
fn commands() -> Vec<Command> {
    let all = vec![
        Command::CreateProvider {
            uuid: P,
            name: "rp".into(),
            parent: Some(Q),
        },
        Command::UpdateProvider {
            uuid: P,
            name: "rp2".into(),
            parent: ParentUpdate::SetOnce(Some(Q)),
        },
        Command::DeleteProvider { uuid: P },
        Command::SetInventories {
            provider: P,
            generation: 1,
            inventories: BTreeMap::from([("VCPU".into(), inventory())]),
        },
        Command::CreateInventory {
            provider: P,
            generation: Some(2),
            resource_class: "DISK_GB".into(),
            inventory: inventory(),
        },
        Command::UpdateInventory {
            provider: P,
            generation: 3,
            resource_class: "DISK_GB".into(),
            inventory: inventory(),
        },
        Command::DeleteInventory {
            provider: P,
            resource_class: "DISK_GB".into(),
        },
        Command::DeleteAllInventories { provider: P },
        Command::CreateResourceClass {
            name: "CUSTOM_A".into(),
        },
        Command::EnsureResourceClass {
            name: "CUSTOM_B".into(),
        },
        Command::RenameResourceClass {
            name: "CUSTOM_A".into(),
            new_name: "CUSTOM_C".into(),
        },
        Command::DeleteResourceClass {
            name: "CUSTOM_C".into(),
        },
        Command::EnsureTrait {
            name: "CUSTOM_T".into(),
        },
        Command::DeleteTrait {
            name: "CUSTOM_T".into(),
        },
        Command::SetProviderTraits {
            provider: P,
            generation: 4,
            traits: BTreeSet::from(["CUSTOM_T".into()]),
        },
        Command::DeleteProviderTraits { provider: P },
        Command::SetProviderAggregates {
            provider: P,
            generation: None,
            aggregates: BTreeSet::from([Q]),
        },
        Command::WriteAllocations {
            consumers: vec![consumer_write()],
        },
        Command::DeleteAllocations { consumer: Q },
        Command::Reshape {
            inventories: vec![ReshapeInventory {
                provider: P,
                generation: 5,
                inventories: BTreeMap::from([("VCPU".into(), inventory())]),
            }],
            allocations: vec![consumer_write()],
        },
        Command::Import(Box::new(ImportBatch {
            seq: 1,
            resource_classes: vec![resource_class()],
            traits: vec![a_trait()],
            providers: vec![provider()],
            consumers: vec![consumer()],
        })),
    ];
    // Totality: a new variant fails to compile here until it gets a sample above.
    for c in &all {
        match c {
            Command::CreateProvider { .. }
            | Command::UpdateProvider { .. }
            | Command::DeleteProvider { .. }
            | Command::SetInventories { .. }
            | Command::CreateInventory { .. }
            | Command::UpdateInventory { .. }
            | Command::DeleteInventory { .. }
            | Command::DeleteAllInventories { .. }
            | Command::CreateResourceClass { .. }
            | Command::EnsureResourceClass { .. }
            | Command::RenameResourceClass { .. }
            | Command::DeleteResourceClass { .. }
            | Command::EnsureTrait { .. }
            | Command::DeleteTrait { .. }
            | Command::SetProviderTraits { .. }
            | Command::DeleteProviderTraits { .. }
            | Command::SetProviderAggregates { .. }
            | Command::WriteAllocations { .. }
            | Command::DeleteAllocations { .. }
            | Command::Reshape { .. }
            | Command::Import(_) => {}
        }
    }
    all
}

fn variant_name(c: &Command) -> String {
    let debug = format!("{c:?}");
    debug
        .split([' ', '('])
        .next()
        .unwrap_or_default()
        .to_string()
}

fn membership() -> Membership {
    let nodes = BTreeMap::from([
        (
            1u64,
            PeerNode {
                api_addr: "10.0.0.1:8778".into(),
                peer_addr: "10.0.0.1:8779".into(),
            },
        ),
        (
            2u64,
            PeerNode {
                api_addr: "10.0.0.2:8778".into(),
                peer_addr: "10.0.0.2:8779".into(),
            },
        ),
    ]);
    Membership::new(vec![[1u64, 2].into()], nodes).expect("valid membership")
}

fn samples() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, command) in commands().into_iter().enumerate() {
        let name = format!("log_payload.v1.{}", variant_name(&command));
        let payload = LogPayload::V1(Request {
            id: Uuid::from_u128(0xAAAA_0000 + i as u128),
            at: AT,
            command,
        });
        out.push((name, enc(&payload)));
    }
    let normal = Entry::new_normal(
        log_id(9),
        LogPayload::V1(Request {
            id: P,
            at: AT,
            command: Command::DeleteProvider { uuid: Q },
        }),
    );
    out.push(("log_entry.normal".into(), enc(&normal)));
    out.push(("log_entry.blank".into(), enc(&Entry::new_blank(log_id(10)))));
    out.push((
        "log_entry.membership".into(),
        enc(&Entry::new_membership(log_id(11), membership())),
    ));
    out.push(("log_key.11".into(), keys::log_key(11).to_vec()));

    let changes = [
        ("provider", Change::Provider(P, Some(provider()))),
        ("consumer", Change::Consumer(Q, Some(consumer()))),
        (
            "resource_class",
            Change::ResourceClass("CUSTOM_GPU".into(), Some(resource_class())),
        ),
        (
            "trait",
            Change::Trait("CUSTOM_FAST".into(), Some(a_trait())),
        ),
    ];
    for (name, change) in &changes {
        let (key, value) = keys::encode_change(change).expect("encodes");
        out.push((format!("record.{name}.key"), key));
        out.push((format!("record.{name}.value"), value.unwrap_or_default()));
    }

    let vote: Vote = Vote::new_committed(3, 2);
    let stored = StoredMembership::new(Some(log_id(11)), membership());
    let meta = [
        ("meta.format", FORMAT.key, FORMAT.encode(&FORMAT_VERSION)),
        ("meta.node_id", NODE_ID.key, NODE_ID.encode(&2)),
        ("meta.vote", VOTE.key, VOTE.encode(&vote)),
        (
            "meta.committed",
            COMMITTED.key,
            COMMITTED.encode(&log_id(9)),
        ),
        (
            "meta.last_purged",
            LAST_PURGED.key,
            LAST_PURGED.encode(&log_id(8)),
        ),
        ("meta.applied", APPLIED.key, APPLIED.encode(&log_id(9))),
        (
            "meta.membership",
            MEMBERSHIP.key,
            MEMBERSHIP.encode(&stored),
        ),
    ];
    for (name, key, value) in meta {
        out.push((format!("{name}.key"), key.to_vec()));
        out.push((format!("{name}.value"), value.expect("encodes")));
    }

    out.push(("dedupe.key".into(), keys::request_key(&P)));
    let done = Remembered {
        index: 9,
        result: Ok(Outcome::Created(true)),
    };
    out.push(("dedupe.value.ok".into(), enc(&done)));
    let refused = Remembered {
        index: 10,
        result: Err(DomainError::conflict(
            ErrorCode::ConcurrentUpdate,
            "consumer generation conflict",
        )),
    };
    out.push(("dedupe.value.refused".into(), enc(&refused)));

    let dir = tempfile::TempDir::new().expect("temp dir");
    let path = dir.path().join("snap");
    let meta = SnapshotMeta {
        last_log_id: Some(log_id(11)),
        last_membership: stored,
    };
    let mut writer = SnapshotWriter::create(&path, &meta).expect("snapshot");
    let (key, value) = keys::encode_change(&changes[3].1).expect("encodes");
    writer
        .record(&key, &value.unwrap_or_default())
        .expect("record");
    writer.finish().expect("finish");
    out.push((
        "snapshot.file".into(),
        std::fs::read(&path).expect("snapshot bytes"),
    ));
    out
}

#[test]
fn every_persisted_encoding_matches_its_golden_bytes() {
    let path = placement_testkit::crate_dir!().join("golden/formats.txt");
    let version = format!("storage {FORMAT_VERSION}, snapshot {SNAPSHOT_FORMAT}, log payload V1");
    if let Err(e) = placement_types::golden::check(&path, &version, &samples()) {
        panic!("{e}");
    }
}

#[test]
fn every_sample_decodes_back() {
    for (name, bytes) in samples() {
        if let Some(rest) = name.strip_prefix("log_payload.") {
            let decoded: LogPayload = placement_types::decode(&bytes).expect(rest);
            assert_eq!(placement_types::encode(&decoded).expect("encodes"), bytes);
        }
        if name.starts_with("log_entry.") {
            let decoded: Entry = placement_types::decode(&bytes).expect("entry decodes");
            assert_eq!(placement_types::encode(&decoded).expect("encodes"), bytes);
        }
    }
}
