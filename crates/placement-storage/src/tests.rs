//! Storage tests on real RocksDB in temp dirs: openraft's own storage suite for the log store
//! and state machine, then placementd's apply / restart / snapshot round trips.

use std::collections::BTreeMap;

use futures::stream;
use openraft::entry::RaftEntry;
use openraft::storage::{RaftLogReader, RaftLogStorage, RaftSnapshotBuilder, RaftStateMachine};
use openraft::testing::log::{StoreBuilder, Suite};
use openraft::type_config::TypeConfigExt;
use openraft::StorageError;
use placement_core::{Record, State};
use placement_types::{
    Allocation, Command, ConsumerTypeWrite, ConsumerWrite, ErrorKind, GenerationCheck, Inventory,
    LogPayload, Outcome, Request, Timestamp, Uuid,
};
use tempfile::TempDir;

use crate::{Entry, LogId, LogStore, Membership, PeerNode, StateMachine, Store, TypeConfig};

// ---- openraft's storage suite --------------------------------------------------------------

struct RocksBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for RocksBuilder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError<TypeConfig>> {
        let dir = TempDir::new().map_err(suite_err)?;
        let store = Store::open(dir.path()).map_err(suite_err)?;
        let sm = store.state_machine().map_err(suite_err)?;
        Ok((dir, store.log_store(), sm))
    }
}

fn suite_err(e: impl std::error::Error + 'static) -> StorageError<TypeConfig> {
    StorageError::read(TypeConfig::err_from_error(&e))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openraft_storage_suite() {
    if let Err(e) = Suite::test_all(RocksBuilder).await {
        panic!("openraft storage suite failed: {e}");
    }
}

// ---- helpers -------------------------------------------------------------------------------

fn log_id(index: u64) -> LogId {
    openraft::testing::log_id::<TypeConfig>(1, 1, index)
}

fn request(n: u128, command: Command) -> Request {
    Request {
        id: Uuid::from_u128(0xAAAA_0000 + n),
        at: Timestamp(1_700_000_000_000_000 + n as i64),
        command,
    }
}

fn normal(index: u64, command: Command) -> Entry {
    Entry::new_normal(
        log_id(index),
        LogPayload::V1(request(u128::from(index), command)),
    )
}

fn membership(index: u64) -> Entry {
    let nodes = BTreeMap::from([(
        1u64,
        PeerNode {
            api_addr: "127.0.0.1:8778".into(),
            peer_addr: String::new(),
        },
    )]);
    Entry::new_membership(
        log_id(index),
        Membership::new(vec![[1u64].into()], nodes).expect("valid membership"),
    )
}

const RP1: Uuid = Uuid::from_u128(0x1111);
const RP2: Uuid = Uuid::from_u128(0x2222);
const CONSUMER: Uuid = Uuid::from_u128(0xC0C0);

/// A small history: a membership entry, a blank, custom class and trait, two providers with
/// inventory, an allocation, and one rejected command (duplicate provider name).
fn history() -> Vec<Entry> {
    vec![
        membership(1),
        Entry::new_blank(log_id(2)),
        normal(
            3,
            Command::CreateResourceClass {
                name: "CUSTOM_GPU".into(),
            },
        ),
        normal(
            4,
            Command::EnsureTrait {
                name: "CUSTOM_FAST".into(),
            },
        ),
        normal(
            5,
            Command::CreateProvider {
                uuid: RP1,
                name: "compute-1".into(),
                parent: None,
            },
        ),
        normal(
            6,
            Command::CreateProvider {
                uuid: RP2,
                name: "compute-1".into(),
                parent: None,
            },
        ),
        normal(
            7,
            Command::SetInventories {
                provider: RP1,
                generation: 0,
                inventories: BTreeMap::from([
                    ("VCPU".to_string(), Inventory::with_total(8)),
                    ("CUSTOM_GPU".to_string(), Inventory::with_total(2)),
                ]),
            },
        ),
        normal(
            8,
            Command::WriteAllocations {
                consumers: vec![ConsumerWrite {
                    consumer: CONSUMER,
                    project_id: "p".into(),
                    user_id: "u".into(),
                    generation: GenerationCheck::Expect(None),
                    consumer_type: ConsumerTypeWrite::Keep,
                    allocations: vec![Allocation {
                        provider: RP1,
                        resource_class: "VCPU".into(),
                        used: 3,
                    }],
                }],
            },
        ),
    ]
}

fn records(state: &State) -> Vec<Record> {
    state.records().collect()
}

async fn apply_all(sm: &mut StateMachine, entries: Vec<Entry>) {
    let items = entries.into_iter().map(|e| Ok((e, None)));
    sm.apply(stream::iter(items)).await.expect("apply");
}

fn open(dir: &TempDir) -> (Store, StateMachine) {
    let store = Store::open(dir.path()).expect("open store");
    let sm = store.state_machine().expect("open state machine");
    (store, sm)
}

// ---- state machine -------------------------------------------------------------------------

#[tokio::test]
async fn apply_answers_each_entry_and_persists_changes() {
    let dir = TempDir::new().expect("tempdir");
    let (_store, mut sm) = open(&dir);
    let mut results = Vec::new();
    for entry in history() {
        results.push(sm.apply_entry(entry).expect("apply entry"));
    }
    assert_eq!(results[0], Ok(Outcome::Done), "membership entry");
    assert_eq!(results[1], Ok(Outcome::Done), "blank entry");
    assert!(
        matches!(results[4], Ok(Outcome::Provider(_))),
        "{:?}",
        results[4]
    );
    let rejected = results[5].clone().expect_err("duplicate name is rejected");
    assert_eq!(rejected.kind, ErrorKind::Conflict);
    assert!(results[7].is_ok(), "{:?}", results[7]);

    let state = sm.state();
    let state = state.snapshot();
    assert_eq!(state.provider_count(), 1);
    assert_eq!(state.usage(&RP1, "VCPU"), 3);
    assert!(state.custom_resource_class("CUSTOM_GPU").is_some());
    assert_eq!(sm.applied(), Some(&log_id(8)));
}

#[tokio::test]
async fn restart_rebuilds_the_same_state() {
    let dir = TempDir::new().expect("tempdir");
    let before = {
        let (_store, mut sm) = open(&dir);
        apply_all(&mut sm, history()).await;
        let state = sm.state();
        records(&state.snapshot())
    };
    let (_store, mut sm) = open(&dir);
    let (applied, membership) = sm.applied_state().await.expect("applied state");
    assert_eq!(applied, Some(log_id(8)));
    assert_eq!(membership.log_id(), &Some(log_id(1)));
    let state = sm.state();
    let state = state.snapshot();
    assert_eq!(records(&state), before);
    assert_eq!(state.usage(&RP1, "VCPU"), 3);
    assert_eq!(
        state.provider_by_name("compute-1").map(|p| p.uuid),
        Some(RP1),
        "derived indexes are rebuilt"
    );
}

#[tokio::test]
async fn applying_an_old_index_is_refused_not_repeated() {
    let dir = TempDir::new().expect("tempdir");
    let (_store, mut sm) = open(&dir);
    apply_all(&mut sm, history()).await;
    let again = normal(
        8,
        Command::CreateResourceClass {
            name: "CUSTOM_OTHER".into(),
        },
    );
    assert!(sm.apply_entry(again).is_err());
    assert_eq!(sm.applied(), Some(&log_id(8)));
}

/// The same request (same id) in a second entry — a forward retried across a leader change —
/// answers the first outcome and changes nothing, also after a restart and on a replica that
/// got the table through a snapshot.
#[tokio::test]
async fn a_retried_request_is_applied_once() {
    let dir = TempDir::new().expect("tempdir");
    let (_store, mut sm) = open(&dir);
    apply_all(&mut sm, history()).await;
    // Entry 5 of history() creates provider RP1; applied again it would be a 409 (name taken).
    let retried = history()
        .into_iter()
        .find(|e| e.log_id.index == 5)
        .expect("entry 5");
    let first = {
        let dir2 = TempDir::new().expect("tempdir");
        let (_s, mut fresh) = open(&dir2);
        let mut out = None;
        for e in history() {
            let index = e.log_id.index;
            let r = fresh.apply_entry(e).expect("apply");
            if index == 5 {
                out = Some(r);
            }
        }
        out.expect("result of entry 5")
    };
    assert!(matches!(first, Ok(Outcome::Provider(_))), "{first:?}");
    let records_before = records(&sm.state().snapshot());
    let mut again = retried.clone();
    again.log_id = log_id(9);
    assert_eq!(sm.apply_entry(again).expect("apply"), first);
    assert_eq!(records(&sm.state().snapshot()), records_before);
    assert_eq!(sm.applied(), Some(&log_id(9)));
    drop(sm);
    drop(_store);

    // After a restart the table is still there.
    let (_store, mut sm) = open(&dir);
    let mut again = retried.clone();
    again.log_id = log_id(10);
    assert_eq!(sm.apply_entry(again).expect("apply"), first);
    assert_eq!(records(&sm.state().snapshot()), records_before);

    // And a replica that installs a snapshot gets it too.
    let snapshot = sm
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .expect("build");
    let other_dir = TempDir::new().expect("tempdir");
    let (_other_store, mut other) = open(&other_dir);
    other
        .install_snapshot(&snapshot.meta, snapshot.snapshot)
        .await
        .expect("install");
    let mut again = retried;
    again.log_id = log_id(11);
    assert_eq!(other.apply_entry(again).expect("apply"), first);
    assert_eq!(records(&other.state().snapshot()), records_before);
}

// ---- snapshots -----------------------------------------------------------------------------

#[tokio::test]
async fn snapshot_round_trip_replaces_follower_state() {
    let leader_dir = TempDir::new().expect("tempdir");
    let (_leader_store, mut leader) = open(&leader_dir);
    apply_all(&mut leader, history()).await;

    // The follower has unrelated state that the snapshot must replace entirely.
    let follower_dir = TempDir::new().expect("tempdir");
    {
        let (_store, mut follower) = open(&follower_dir);
        apply_all(
            &mut follower,
            vec![
                membership(1),
                normal(
                    2,
                    Command::CreateProvider {
                        uuid: Uuid::from_u128(0x9999),
                        name: "stale".into(),
                        parent: None,
                    },
                ),
            ],
        )
        .await;
    }

    let mut builder = leader.get_snapshot_builder().await;
    let snapshot = builder.build_snapshot().await.expect("build");
    assert_eq!(snapshot.meta.last_log_id, Some(log_id(8)));
    assert_eq!(snapshot.meta.last_membership.log_id(), &Some(log_id(1)));
    let current = leader
        .get_current_snapshot()
        .await
        .expect("current")
        .expect("some");
    assert_eq!(current.meta, snapshot.meta);

    let leader_records = records(&leader.state().snapshot());
    {
        let (_store, mut follower) = open(&follower_dir);
        follower
            .install_snapshot(&snapshot.meta, snapshot.snapshot)
            .await
            .expect("install");
        assert_eq!(records(&follower.state().snapshot()), leader_records);
        assert_eq!(
            follower.applied_state().await.expect("applied").0,
            Some(log_id(8))
        );
        let installed = follower
            .get_current_snapshot()
            .await
            .expect("current")
            .expect("some");
        assert_eq!(installed.meta, snapshot.meta);
    }
    // Durable: a restart of the follower sees the installed state, not the stale one.
    let (_store, mut follower) = open(&follower_dir);
    let state = follower.state();
    assert_eq!(records(&state.snapshot()), leader_records);
    assert!(state.snapshot().provider_by_name("stale").is_none());
    assert_eq!(
        follower.applied_state().await.expect("applied").0,
        Some(log_id(8))
    );
}

#[tokio::test]
async fn snapshot_for_another_log_id_is_refused_and_changes_nothing() {
    let dir_a = TempDir::new().expect("tempdir");
    let (_store_a, mut a) = open(&dir_a);
    apply_all(&mut a, history()).await;
    let snapshot = a
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .expect("build");

    let dir_b = TempDir::new().expect("tempdir");
    let (_store_b, mut b) = open(&dir_b);
    let mut wrong_meta = snapshot.meta.clone();
    wrong_meta.last_log_id = Some(log_id(99));
    assert!(b
        .install_snapshot(&wrong_meta, snapshot.snapshot)
        .await
        .is_err());
    assert_eq!(b.applied_state().await.expect("applied").0, None);
    assert_eq!(b.state().snapshot().provider_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_metadata_matches_its_data_while_applies_continue() {
    // Entry i (i >= 2) creates trait CUSTOM_T{i}: a state at applied index k holds exactly
    // k - 1 traits. Snapshots built while entries keep being applied must agree with that.
    let dir = TempDir::new().expect("tempdir");
    let (_store, mut sm) = open(&dir);
    apply_all(&mut sm, vec![membership(1)]).await;
    let mut next = 2u64;
    for round in 0..5 {
        let mut builder = sm.get_snapshot_builder().await;
        let build = tokio::spawn(async move { builder.build_snapshot().await });
        while !build.is_finished() || next < 200 * (round + 1) {
            let chunk: Vec<Entry> = (next..next + 20)
                .map(|i| {
                    normal(
                        i,
                        Command::EnsureTrait {
                            name: format!("CUSTOM_T{i}"),
                        },
                    )
                })
                .collect();
            next += 20;
            apply_all(&mut sm, chunk).await;
            tokio::task::yield_now().await;
        }
        let snapshot = build.await.expect("join").expect("build");
        let index = snapshot.meta.last_log_id.expect("applied").index;

        let other = TempDir::new().expect("tempdir");
        let (_other_store, mut installed) = open(&other);
        installed
            .install_snapshot(&snapshot.meta, snapshot.snapshot)
            .await
            .expect("install");
        let traits = installed.state().snapshot().custom_traits().count() as u64;
        assert_eq!(
            traits,
            index - 1,
            "round {round}: snapshot at {index} holds {traits} traits"
        );
    }
}

// ---- log store -----------------------------------------------------------------------------

#[tokio::test]
async fn appended_batch_survives_reopen() {
    let dir = TempDir::new().expect("tempdir");
    {
        let store = Store::open(dir.path()).expect("open");
        let mut log = store.log_store();
        let entries: Vec<Entry> = (1..=50)
            .map(|i| {
                normal(
                    i,
                    Command::EnsureTrait {
                        name: format!("CUSTOM_T{i}"),
                    },
                )
            })
            .collect();
        let (tx, rx) = TypeConfig::oneshot();
        log.append(entries, openraft::storage::IOFlushed::signal(tx))
            .await
            .expect("append");
        rx.await.expect("callback called").expect("append durable");
        log.save_committed(Some(log_id(50))).await.expect("commit");
    }
    let store = Store::open(dir.path()).expect("reopen");
    let mut log = store.log_store();
    let state = log.get_log_state().await.expect("log state");
    assert_eq!(state.last_log_id, Some(log_id(50)));
    assert_eq!(
        log.read_committed().await.expect("committed"),
        Some(log_id(50))
    );
    log.purge(log_id(20)).await.expect("purge");
    let state = log.get_log_state().await.expect("log state");
    assert_eq!(state.last_purged_log_id, Some(log_id(20)));
    let mut reader = log.get_log_reader().await;
    let entries = openraft::RaftLogReader::try_get_log_entries(&mut reader, 0..100)
        .await
        .expect("read");
    assert_eq!(entries.first().map(|e| e.index()), Some(21));
    assert_eq!(entries.len(), 30);
}

/// Every read of the log through the store's recent entries equals the same read from
/// RocksDB alone, through appends, a truncation, a purge, a new term and more entries than
/// the recent ones hold.
#[tokio::test]
async fn recent_entries_always_read_as_the_log() {
    let dir = TempDir::new().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    let mut log = store.log_store();
    let rocks = store.uncached_log_store();
    let trait_at = |term: u64, index: u64| {
        Entry::new_normal(
            openraft::testing::log_id::<TypeConfig>(term, 1, index),
            LogPayload::V1(request(
                u128::from(index),
                Command::EnsureTrait {
                    name: format!("CUSTOM_T{term}_{index}"),
                },
            )),
        )
    };
    async fn append(log: &mut LogStore, entries: Vec<Entry>) {
        let (tx, rx) = TypeConfig::oneshot();
        log.append(entries, openraft::storage::IOFlushed::signal(tx))
            .await
            .expect("append");
        rx.await.expect("callback called").expect("append durable");
    }
    async fn same(log: &LogStore, rocks: &LogStore, ranges: &[(u64, u64)]) -> usize {
        let mut longest = 0;
        for &(start, end) in ranges {
            let mut a = log.clone();
            let mut b = rocks.clone();
            let cached = openraft::RaftLogReader::try_get_log_entries(&mut a, start..end)
                .await
                .expect("read");
            let stored = openraft::RaftLogReader::try_get_log_entries(&mut b, start..end)
                .await
                .expect("read");
            let bytes = |e: &[Entry]| placement_types::encode(&e).expect("encode");
            assert_eq!(bytes(&cached), bytes(&stored), "{start}..{end}");
            longest = longest.max(cached.len());
        }
        longest
    }
    let ranges = [
        (0, 10_000),
        (1, 2),
        (40, 60),
        (79, 85),
        (95, 200),
        (500, 600),
    ];
    for first in (1..=100).step_by(7) {
        let batch = (first..(first + 7).min(101))
            .map(|i| trait_at(1, i))
            .collect();
        append(&mut log, batch).await;
    }
    assert_eq!(same(&log, &rocks, &ranges).await, 100);
    log.truncate_after(Some(log_id(80)))
        .await
        .expect("truncate");
    assert_eq!(same(&log, &rocks, &ranges).await, 80);
    append(&mut log, (81..=90).map(|i| trait_at(2, i)).collect()).await;
    assert_eq!(same(&log, &rocks, &ranges).await, 90);
    log.purge(log_id(30)).await.expect("purge");
    assert_eq!(same(&log, &rocks, &ranges).await, 60);
    // More than the recent entries hold: older reads go to RocksDB, and still agree.
    let last = 90 + crate::log_store::RECENT_MAX_ENTRIES as u64 + 500;
    let mut next = 91;
    while next <= last {
        let end = (next + 499).min(last);
        append(&mut log, (next..=end).map(|i| trait_at(2, i)).collect()).await;
        next = end + 1;
    }
    let tail = [
        (31, last + 1),
        (100, 200),
        (last - 10, last + 5),
        (last - 600, last - 400),
    ];
    assert_eq!(same(&log, &rocks, &tail).await, (last - 30) as usize);
    // After a restart nothing is cached, and the first append starts a new run.
    drop((log, rocks, store));
    let store = Store::open(dir.path()).expect("reopen");
    let mut log = store.log_store();
    let rocks = store.uncached_log_store();
    append(&mut log, vec![trait_at(3, last + 1)]).await;
    let tail = [(31, last + 2), (last, last + 2), (last + 1, last + 2)];
    assert_eq!(same(&log, &rocks, &tail).await, (last - 29) as usize);
}

#[test]
fn node_id_is_bound_once() {
    let dir = TempDir::new().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    store.bind_node_id(3).expect("first bind");
    store.bind_node_id(3).expect("same id again");
    assert!(matches!(
        store.bind_node_id(4),
        Err(crate::Error::NodeIdMismatch {
            stored: 3,
            requested: 4
        })
    ));
}

#[test]
fn second_open_of_the_same_directory_fails_cleanly() {
    let dir = TempDir::new().expect("tempdir");
    let _first = Store::open(dir.path()).expect("open");
    let second = Store::open(dir.path());
    assert!(
        matches!(second, Err(crate::Error::Open { .. })),
        "{second:?}"
    );
}

#[tokio::test]
async fn a_backup_restores_into_an_empty_directory_as_a_one_node_cluster() {
    let leader_dir = TempDir::new().expect("tempdir");
    let (_leader_store, mut leader) = open(&leader_dir);
    apply_all(&mut leader, history()).await;
    let snapshot = leader
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .expect("build");
    let backup = snapshot.snapshot.path().to_path_buf();
    let leader_records = records(&leader.state().snapshot());

    let me = PeerNode {
        api_addr: "127.0.0.1:1".into(),
        peer_addr: "127.0.0.1:2".into(),
    };
    let target = TempDir::new().expect("tempdir");
    let restored = crate::restore(target.path(), 7, me.clone(), &backup).expect("restore");
    assert_eq!(restored.last_log_id, log_id(8));

    let store = Store::open(target.path()).expect("open");
    assert_eq!(store.node_id().expect("node id"), Some(7));
    let mut sm = store.state_machine().expect("state machine");
    assert_eq!(records(&sm.state().snapshot()), leader_records);
    let (applied, membership) = sm.applied_state().await.expect("applied");
    assert_eq!(applied, Some(log_id(8)));
    assert_eq!(
        membership.membership().voter_ids().collect::<Vec<_>>(),
        vec![7]
    );
    assert_eq!(membership.membership().get_node(&7), Some(&me));
    let current = sm
        .get_current_snapshot()
        .await
        .expect("current")
        .expect("some");
    assert_eq!(current.meta.last_log_id, Some(log_id(8)));
    assert_eq!(current.meta.last_membership, membership);

    let mut log = store.log_store();
    let state = log.get_log_state().await.expect("log state");
    assert_eq!(state.last_purged_log_id, Some(log_id(8)));
    assert_eq!(state.last_log_id, Some(log_id(8)));
    let vote = log.read_vote().await.expect("vote").expect("some");
    assert!(vote.is_committed());
    drop(sm);
    drop(log);
    drop(store);

    // Never into a directory that holds anything.
    let again = crate::restore(target.path(), 7, me, &backup);
    assert!(matches!(again, Err(crate::Error::Restore(_))), "{again:?}");
}

// ---- what a restart replays ----------------------------------------------------------------

/// The number of level-0 files of the column family `name`.
fn level0_files(store: &Store, name: &'static str) -> u64 {
    let db = store.db();
    let handle = crate::store::cf(db, name).expect("column family");
    db.property_int_value_cf(handle, "rocksdb.num-files-at-level0")
        .expect("property")
        .expect("known property")
}

/// Polls [`level0_files`] until `done` holds (`secs` at most); returns the last count.
fn level0_files_until(
    store: &Store,
    name: &'static str,
    secs: u64,
    done: impl Fn(u64) -> bool,
) -> u64 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        let files = level0_files(store, name);
        if done(files) || std::time::Instant::now() > deadline {
            return files;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn compactions_wait_for_the_state_rebuild() {
    let dir = TempDir::new().expect("tempdir");
    drop(Store::open(dir.path()).expect("create"));
    let store = Store::open_loading(dir.path()).expect("open");
    let db = store.db();
    let log = crate::store::cf(db, crate::keys::CF_RAFT_LOG).expect("raft_log");
    // Five level-0 files: one more than RocksDB's default compaction trigger.
    for i in 0u64..5 {
        db.put_cf(log, i.to_be_bytes(), b"entry").expect("put");
        db.flush_cf(log).expect("flush");
    }
    let paused = level0_files_until(&store, crate::keys::CF_RAFT_LOG, 1, |n| n < 5);
    assert_eq!(paused, 5, "no compaction before the state is loaded");
    let _sm = store.state_machine().expect("load");
    let resumed = level0_files_until(&store, crate::keys::CF_RAFT_LOG, 10, |n| n < 5);
    assert!(
        resumed < 5,
        "compactions run once loaded: {resumed} level-0 files"
    );
}

#[test]
fn a_wal_replay_writes_no_table_files() {
    let dir = TempDir::new().expect("tempdir");
    {
        let store = Store::open(dir.path()).expect("create");
        let db = store.db();
        let records = crate::store::cf(db, crate::keys::CF_SM_RECORDS).expect("sm_records");
        db.put_cf(records, b"\x04replayed", b"row").expect("put");
        // Closed without a flush: the row is only in the WAL, as after a kill.
    }
    let store = Store::open_loading(dir.path()).expect("reopen");
    let db = store.db();
    let records = crate::store::cf(db, crate::keys::CF_SM_RECORDS).expect("sm_records");
    assert_eq!(
        db.get_cf(records, b"\x04replayed").expect("get").as_deref(),
        Some(&b"row"[..]),
        "the replay kept the row"
    );
    assert_eq!(
        level0_files(&store, crate::keys::CF_SM_RECORDS),
        0,
        "the replayed memtable stays in memory"
    );
}

#[test]
fn a_clean_stop_leaves_no_wal_to_replay() {
    let dir = TempDir::new().expect("tempdir");
    let store = Store::open(dir.path()).expect("create");
    let db = store.db();
    let records = crate::store::cf(db, crate::keys::CF_SM_RECORDS).expect("sm_records");
    db.put_cf(records, b"\x04written", b"row").expect("put");
    assert_eq!(level0_files(&store, crate::keys::CF_SM_RECORDS), 0);
    store.sync().expect("sync");
    assert_eq!(
        level0_files(&store, crate::keys::CF_SM_RECORDS),
        1,
        "the memtable was written out"
    );
}

#[tokio::test]
async fn metadata_is_flushed_every_so_many_entries() {
    let dir = TempDir::new().expect("tempdir");
    let (store, mut sm) = open(&dir);
    let every = crate::state_machine::META_FLUSH_EVERY;
    apply_all(
        &mut sm,
        (1..every).map(|i| Entry::new_blank(log_id(i))).collect(),
    )
    .await;
    let before = level0_files(&store, crate::keys::CF_SM_META);
    assert_eq!(before, 0, "nothing flushed yet");
    apply_all(&mut sm, vec![Entry::new_blank(log_id(every))]).await;
    for name in [crate::keys::CF_SM_META, crate::keys::CF_RAFT_META] {
        let after = level0_files_until(&store, name, 10, |n| n > 0);
        assert!(after > 0, "{name} flushed after {every} entries");
    }
}

// ---- a measurement, not a test ---------------------------------------------------------

/// CPU of the process (all threads: apply and RocksDB's own), from /proc/self/stat.
fn process_cpu_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("stat");
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .expect("fields")
        .split_whitespace()
        .collect();
    let ticks: f64 =
        fields[11].parse::<f64>().expect("utime") + fields[12].parse::<f64>().expect("stime");
    ticks / 100.0
}

/// Apply cost of allocation writes whose request ids are random (UUIDv4-like) or in time
/// order (UUIDv7-like): the remembered outcome is keyed by the id. Run with
/// `cargo nextest run --release --workspace --run-ignored only -E 'test(apply_cost)'
/// --no-capture` (`--workspace`, not `-p`: another feature set rebuilds RocksDB).
#[tokio::test]
#[ignore = "a measurement"]
async fn apply_cost_by_request_id_order() {
    const PROVIDERS: u64 = 10_000;
    const WARM: u64 = 100_000;
    const TIMED: u64 = 100_000;
    const BATCH: usize = 25;
    for round in 1..=2 {
        for ordered in [false, true] {
            let dir = TempDir::new().expect("tempdir");
            let (_store, mut sm) = open(&dir);
            let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ round;
            let mut next = move || {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng
            };
            let mut index = 0u64;
            let mut entry = |command: Command, rand: &mut dyn FnMut() -> u64| {
                index += 1;
                let id = if ordered {
                    Uuid::from_u128((u128::from(index) << 64) | u128::from(rand()))
                } else {
                    Uuid::from_u128((u128::from(rand()) << 64) | u128::from(rand()))
                };
                let at = Timestamp(1_700_000_000_000_000 + index as i64);
                Entry::new_normal(log_id(index), LogPayload::V1(Request { id, at, command }))
            };
            let provider = |i: u64| Uuid::from_u128(0x5000_0000_0000 + u128::from(i));
            let mut setup = Vec::new();
            for i in 0..PROVIDERS {
                let uuid = provider(i);
                setup.push(entry(
                    Command::CreateProvider {
                        uuid,
                        name: format!("cn-{i}"),
                        parent: None,
                    },
                    &mut next,
                ));
                setup.push(entry(
                    Command::SetInventories {
                        provider: uuid,
                        generation: 0,
                        inventories: BTreeMap::from([
                            ("VCPU".to_string(), Inventory::with_total(1_000_000)),
                            (
                                "MEMORY_MB".to_string(),
                                Inventory::with_total(1_000_000_000),
                            ),
                            ("DISK_GB".to_string(), Inventory::with_total(1_000_000)),
                        ]),
                    },
                    &mut next,
                ));
            }
            for chunk in setup.chunks(1000) {
                apply_all(&mut sm, chunk.to_vec()).await;
            }
            let mut write = |n: u64| -> Vec<Entry> {
                (0..n)
                    .map(|_| {
                        let rp = provider(next() % PROVIDERS);
                        let consumer =
                            Uuid::from_u128((u128::from(next()) << 64) | u128::from(next()));
                        let alloc = |rc: &str, used| Allocation {
                            provider: rp,
                            resource_class: rc.into(),
                            used,
                        };
                        entry(
                            Command::WriteAllocations {
                                consumers: vec![ConsumerWrite {
                                    consumer,
                                    project_id: "p".into(),
                                    user_id: "u".into(),
                                    generation: GenerationCheck::Expect(None),
                                    consumer_type: ConsumerTypeWrite::Keep,
                                    allocations: vec![
                                        alloc("VCPU", 1),
                                        alloc("MEMORY_MB", 512),
                                        alloc("DISK_GB", 1),
                                    ],
                                }],
                            },
                            &mut next,
                        )
                    })
                    .collect()
            };
            let warm = write(WARM);
            for chunk in warm.chunks(BATCH) {
                apply_all(&mut sm, chunk.to_vec()).await;
            }
            let timed = write(TIMED);
            let (cpu0, wall0) = (process_cpu_s(), std::time::Instant::now());
            for chunk in timed.chunks(BATCH) {
                apply_all(&mut sm, chunk.to_vec()).await;
            }
            let (cpu, wall) = (process_cpu_s() - cpu0, wall0.elapsed().as_secs_f64());
            println!(
                "round {round} ids {}: {TIMED} writes, {:.2} us CPU and {:.2} us wall per write",
                if ordered { "ordered" } else { "random " },
                cpu * 1e6 / TIMED as f64,
                wall * 1e6 / TIMED as f64
            );
        }
    }
}
