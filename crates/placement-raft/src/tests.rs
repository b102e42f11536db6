//! One-node cluster tests on real RocksDB in temp dirs: bootstrap, writes, reads, restart
//! with data, snapshots, and concurrent writers sharing fsyncs.

use std::sync::Arc;
use std::time::Duration;

use placement_types::{Command, ErrorKind, Outcome, Request, Timestamp, Uuid};
use tempfile::TempDir;

use crate::{Error, NodeConfig, PlacementNode};

fn request(command: Command) -> Request {
    Request {
        id: Uuid::new_v4(),
        at: Timestamp(1_700_000_000_000_000),
        command,
    }
}

fn create_provider(n: u128) -> Request {
    request(Command::CreateProvider {
        uuid: Uuid::from_u128(n),
        name: format!("rp-{n}"),
        parent: None,
    })
}

async fn open(dir: &TempDir, id: u64) -> Result<PlacementNode, Error> {
    PlacementNode::open(NodeConfig::single(dir.path(), id, "127.0.0.1:0")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_node_bootstraps_writes_and_reads() {
    let dir = TempDir::new().expect("tempdir");
    let node = open(&dir, 1).await.expect("open");
    let status = node.status();
    assert!(status.is_leader, "{status:?}");
    assert_eq!(status.leader, Some(1));

    let result = node.write(create_provider(1)).await.expect("write");
    assert!(matches!(result, Ok(Outcome::Provider(_))), "{result:?}");
    // A rejected command is a normal outcome, not an error of the node.
    let again = node.write(create_provider(1)).await.expect("write");
    assert_eq!(again.expect_err("duplicate").kind, ErrorKind::Conflict);

    node.read_barrier().await.expect("read barrier");
    assert_eq!(node.with_state(|s| s.provider_count()), 1);
    node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_data_and_accepts_new_writes() {
    let dir = TempDir::new().expect("tempdir");
    {
        let node = open(&dir, 7).await.expect("open");
        for n in 1..=20 {
            let r = node.write(create_provider(n)).await.expect("write");
            assert!(r.is_ok(), "{r:?}");
        }
        node.shutdown().await.expect("shutdown");
    }
    let started = std::time::Instant::now();
    let node = open(&dir, 7).await.expect("reopen");
    // A lone voter elects itself at once instead of waiting for an election timeout.
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(node.with_state(|s| s.provider_count()), 20);
    let r = node.write(create_provider(21)).await.expect("write");
    assert!(r.is_ok(), "{r:?}");
    node.read_barrier().await.expect("read barrier");
    assert_eq!(node.with_state(|s| s.provider_count()), 21);
    node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_without_shutdown_replays_the_log() {
    let dir = TempDir::new().expect("tempdir");
    {
        let node = open(&dir, 1).await.expect("open");
        for n in 1..=10 {
            node.write(create_provider(n))
                .await
                .expect("write")
                .expect("ok");
        }
        // Dropped without shutdown: the closest an in-process test gets to a crash.
        drop(node);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let node = open(&dir, 1).await.expect("reopen");
    assert_eq!(node.with_state(|s| s.provider_count()), 10);
    node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_node_id_is_refused() {
    let dir = TempDir::new().expect("tempdir");
    open(&dir, 1)
        .await
        .expect("open")
        .shutdown()
        .await
        .expect("shutdown");
    let err = open(&dir, 2).await.expect_err("wrong id");
    assert!(
        matches!(
            err,
            Error::Storage(placement_storage::Error::NodeIdMismatch {
                stored: 1,
                requested: 2
            })
        ),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_are_all_applied() {
    let dir = TempDir::new().expect("tempdir");
    let node = Arc::new(open(&dir, 1).await.expect("open"));
    let mut tasks = Vec::new();
    for n in 1..=200u128 {
        let node = node.clone();
        tasks.push(tokio::spawn(
            async move { node.write(create_provider(n)).await },
        ));
    }
    for task in tasks {
        let result = task.await.expect("join").expect("write");
        assert!(result.is_ok(), "{result:?}");
    }
    assert_eq!(node.with_state(|s| s.provider_count()), 200);
    node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_then_restart() {
    let dir = TempDir::new().expect("tempdir");
    {
        let node = open(&dir, 1).await.expect("open");
        for n in 1..=30 {
            node.write(create_provider(n))
                .await
                .expect("write")
                .expect("ok");
        }
        node.trigger_snapshot().await.expect("trigger");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while node.status().snapshot_index.is_none() {
            assert!(tokio::time::Instant::now() < deadline, "no snapshot");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        node.write(create_provider(31))
            .await
            .expect("write")
            .expect("ok");
        node.shutdown().await.expect("shutdown");
    }
    let node = open(&dir, 1).await.expect("reopen");
    assert!(node.status().snapshot_index.is_some());
    assert_eq!(node.with_state(|s| s.provider_count()), 31);
    node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_data_dir_is_an_error_not_a_panic() {
    let dir = TempDir::new().expect("tempdir");
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").expect("write");
    let err = PlacementNode::open(NodeConfig::single(&file, 1, "127.0.0.1:0"))
        .await
        .expect_err("a file is not a data dir");
    assert!(matches!(err, Error::Storage(_)), "{err:?}");
}

/// A vote with term 2^64−1 that an older version granted to a forged vote request made every
/// node panic at its next election, and again at every restart: now the node refuses to
/// start, saying why and what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_insane_vote_is_refused_at_start_not_panicked_on() {
    use openraft::storage::RaftLogStorage;
    let dir = TempDir::new().expect("tempdir");
    {
        let node = open(&dir, 1).await.expect("open");
        node.shutdown().await.expect("shutdown");
    }
    {
        let store = placement_storage::Store::open(dir.path()).expect("store");
        let mut log = store.log_store();
        log.save_vote(&placement_storage::Vote::new(u64::MAX, 2))
            .await
            .expect("save vote");
        store.sync().expect("sync");
    }
    let err = open(&dir, 1).await.expect_err("refused");
    let message = err.to_string();
    assert!(matches!(err, Error::Refused(_)), "{message}");
    assert!(message.contains("stored vote"), "{message}");
    assert!(
        message.contains("Restore this node from a backup"),
        "{message}"
    );
}
