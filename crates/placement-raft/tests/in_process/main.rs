//! Multi-node behaviour of placement-raft, with every member in this test process
//! (`cluster.rs`): forwarding, follower reads, request-id dedupe, leader failover and
//! handover, membership changes and snapshot catch-up, under dropped, delayed and partitioned
//! messages. Each test takes seconds; what needs real processes (kill -9, fsync, the HTTP API,
//! TLS) stays in the workspace's `tests/` crate and the chaos suite.

mod cluster;

use std::time::{Duration, Instant};

use placement_raft::memory::{Fault, Rule};
use placement_raft::{paths, Forwarded, PeerClient, PeerError, TransportError};
use placement_types::{ErrorKind, Outcome};

use cluster::{applied, create_provider, has_provider, TestCluster, SETTLE};

/// A write sent to a follower travels to the leader in a forwarded batch, and every member
/// applies it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_on_a_follower_is_forwarded_and_applied_everywhere() {
    let cluster = TestCluster::start(3).await;
    let leader = cluster.leader().await;
    let follower = cluster.others(leader)[0];

    applied(cluster.node(follower).write(create_provider(1)).await);

    assert_eq!(cluster.net.served(follower, leader, paths::WRITES), 1);
    // `write` returns once the follower has applied the entry too: it reads its own write.
    assert!(has_provider(cluster.node(follower), 1));
    let digest = cluster.assert_converged().await;
    assert!(digest.records > 0);
    cluster.shutdown().await;
}

/// A follower that lags (its appends delayed) has not applied an acknowledged write; its read
/// barrier waits until it has, so a read after the barrier sees the write.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lagging_follower_reads_an_acknowledged_write_after_its_barrier() {
    let cluster = TestCluster::start(3).await;
    let leader = cluster.leader().await;
    let [fast, slow] = cluster.others(leader)[..] else {
        unreachable!("3 members")
    };
    let lag = Duration::from_millis(600);
    cluster
        .net
        .add(Rule::between(leader, slow, Fault::Delay(lag)).on(paths::APPEND));

    applied(cluster.node(fast).write(create_provider(2)).await);
    // The write is acknowledged (the leader and `fast` have it); `slow` has not heard of it.
    assert!(
        !has_provider(cluster.node(slow), 2),
        "the delayed follower already applied the write: the delay did not hold"
    );

    let started = Instant::now();
    cluster.node(slow).read_barrier().await.expect("barrier");
    assert!(has_provider(cluster.node(slow), 2));
    assert!(
        started.elapsed() >= Duration::from_millis(100),
        "the barrier did not wait for the delayed append: {:?}",
        started.elapsed()
    );
    cluster.net.heal();
    cluster.shutdown().await;
}

/// The leader applies a forwarded write but its answer is lost: the follower retries with the
/// same request id, and the leader answers from its dedupe table instead of applying the
/// command again (which would fail: the provider exists).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_answer_to_a_forwarded_write_is_answered_from_the_dedupe_table() {
    let cluster = TestCluster::start(3).await;
    let leader = cluster.leader().await;
    let follower = cluster.others(leader)[0];
    cluster.net.add(
        Rule::between(follower, leader, Fault::DropReply)
            .on(paths::WRITES)
            .times(1),
    );

    let result = cluster
        .node(follower)
        .write(create_provider(3))
        .await
        .expect("write");

    assert!(
        matches!(result, Ok(Outcome::Provider(_))),
        "the retry was not deduplicated: {result:?}"
    );
    assert_eq!(
        cluster.net.served(follower, leader, paths::WRITES),
        2,
        "one lost answer, one retry"
    );
    // The same command under a new request id is a new write, and is refused.
    let again = cluster
        .node(follower)
        .write(create_provider(3))
        .await
        .expect("write");
    assert_eq!(again.expect_err("duplicate").kind, ErrorKind::Conflict);
    cluster.assert_converged().await;
    cluster.shutdown().await;
}

/// An isolated leader leaves the rotation (unready), the others elect a new one and keep
/// writing; once healed, the old leader follows and holds the same state.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_isolated_leader_is_replaced_and_catches_up_when_healed() {
    let cluster = TestCluster::start(3).await;
    let old = cluster.leader().await;
    let rest = cluster.others(old);
    cluster.net.isolate(old);

    let new = cluster.leader_among(&rest).await;
    assert_ne!(new, old);
    applied(cluster.node(rest[0]).write(create_provider(4)).await);
    applied(cluster.node(rest[1]).write(create_provider(5)).await);
    let deadline = Instant::now() + SETTLE;
    while cluster.node(old).status().ready() {
        assert!(Instant::now() < deadline, "the isolated leader stays ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!has_provider(cluster.node(old), 4));

    cluster.net.heal();
    assert_eq!(cluster.leader().await, new);
    cluster.node(old).read_barrier().await.expect("barrier");
    assert!(has_provider(cluster.node(old), 5));
    cluster.assert_converged().await;
    cluster.shutdown().await;
}

/// A follower cut off from the leader forwards a write that cannot get through; once the
/// partition heals (well within the write's deadline), the retried write is applied once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_retried_across_a_healed_partition_is_applied_once() {
    let cluster = TestCluster::start(3).await;
    let leader = cluster.leader().await;
    let follower = cluster.others(leader)[0];
    cluster
        .net
        .add(Rule::between(follower, leader, Fault::Drop));

    let node = cluster.node(follower).clone();
    let write = tokio::spawn(async move { node.write(create_provider(6)).await });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!write.is_finished(), "the write got through the partition");
    cluster.net.heal();

    applied(write.await.expect("write task"));
    cluster.node(leader).read_barrier().await.expect("barrier");
    assert!(has_provider(cluster.node(leader), 6));
    cluster.assert_converged().await;
    cluster.shutdown().await;
}

/// The leader stops answering (a paused process: calls to it hang rather than fail). A write
/// a follower forwarded to it is sent again to the leader elected meanwhile, as soon as the
/// follower learns of it, instead of waiting out its deadline on the old one; the request
/// keeps its id, so it is applied once even if the paused leader's copy commits too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_forwarded_to_a_paused_leader_is_sent_again_to_the_new_one() {
    let cluster = TestCluster::start(3).await;
    let old = cluster.leader().await;
    let follower = cluster.others(old)[0];
    cluster.net.pause(old);

    let node = cluster.node(follower).clone();
    let write = tokio::spawn(async move { node.write(create_provider(9)).await });
    let new = cluster.leader_among(&cluster.others(old)).await;
    assert_ne!(new, old);
    applied(write.await.expect("write task"));
    // Sent to the new leader, unless the follower was elected itself and proposed it.
    assert!(new == follower || cluster.net.served(follower, new, paths::WRITES) >= 1);
    assert!(has_provider(cluster.node(follower), 9));
    // Reads through the follower go to the new leader too.
    cluster
        .node(follower)
        .read_barrier()
        .await
        .expect("barrier");

    cluster.net.heal();
    assert_eq!(cluster.leader().await, new);
    cluster.assert_converged().await;
    cluster.shutdown().await;
}

/// A leader that is shutting down hands leadership over: another member leads well before
/// an election timeout would have passed, and writes go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_shutting_down_hands_leadership_over() {
    let mut cluster = TestCluster::start(3).await;
    let old = cluster.leader().await;

    let started = Instant::now();
    assert!(cluster.node(old).hand_over_leadership().await);
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(placement_raft::ELECTION_TIMEOUT_MIN_MS),
        "handover took {took:?}, no faster than an election"
    );
    cluster.stop(old).await;

    let new = cluster.leader().await;
    assert_ne!(new, old);
    applied(cluster.node(new).write(create_provider(7)).await);
    cluster.restart(old).await;
    cluster.node(old).read_barrier().await.expect("barrier");
    assert!(has_provider(cluster.node(old), 7));
    cluster.assert_converged().await;
    cluster.shutdown().await;
}

/// A fresh member joins a cluster whose log is compacted, so it catches up from a snapshot
/// streamed over the peer transport; then the leader is removed and the rest go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_member_catches_up_by_snapshot_and_the_leader_is_removed() {
    let mut cluster = TestCluster::start_with(3, 20).await;
    let leader = cluster.leader().await;
    for n in 0..60 {
        applied(cluster.node(leader).write(create_provider(100 + n)).await);
    }
    cluster
        .node(leader)
        .trigger_snapshot()
        .await
        .expect("snapshot");
    let deadline = Instant::now() + SETTLE;
    while cluster.node(leader).status().purged_index.is_none() {
        assert!(Instant::now() < deadline, "the leader's log was not purged");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    cluster
        .add(4, cluster.others(leader)[0])
        .await
        .expect("add");
    assert!(
        cluster.net.served(leader, 4, paths::SNAPSHOT) >= 1,
        "node 4 caught up without a snapshot"
    );
    assert!(has_provider(cluster.node(4), 159));
    let voters = cluster.node(4).members().iter().filter(|m| m.voter).count();
    assert_eq!(voters, 4);

    let via = cluster.others(leader)[0];
    cluster.remove(leader, via).await.expect("remove");
    let new = cluster.leader().await;
    applied(cluster.node(4).write(create_provider(999)).await);
    assert!(cluster.node(new).members().iter().all(|m| m.id != leader));
    cluster.assert_converged().await;
    cluster.shutdown().await;
}

/// A follower that was down while writes went on catches up from the log when restarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restarted_follower_catches_up_from_the_log() {
    let mut cluster = TestCluster::start(3).await;
    let leader = cluster.leader().await;
    let follower = cluster.others(leader)[0];
    cluster.stop(follower).await;
    for n in 0..20 {
        applied(cluster.node(leader).write(create_provider(200 + n)).await);
    }
    cluster.restart(follower).await;
    cluster
        .node(follower)
        .read_barrier()
        .await
        .expect("barrier");
    assert!(has_provider(cluster.node(follower), 219));
    assert_eq!(cluster.net.served(leader, follower, paths::SNAPSHOT), 0);
    cluster.assert_converged().await;
    cluster.shutdown().await;
}

/// The peer port checks who sends: a node outside the membership may not forward writes,
/// and a member may not speak for another in a vote (the memory network presents each
/// sender's identity as its certificate would).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_peer_port_refuses_senders_outside_the_membership() {
    let cluster = TestCluster::start(3).await;
    let leader = cluster.leader().await;
    let stranger = PeerClient::over(cluster.net.link(99));
    let peer = placement_raft::Peer {
        id: leader,
        addr: cluster::addresses(leader).peer_addr,
    };
    let forwarded = Forwarded {
        request: create_provider(8),
        origin: Default::default(),
    };
    let answer = stranger
        .forward_write(&peer, &forwarded, Duration::from_secs(5))
        .await;
    match answer {
        Err(TransportError::Call { message, .. }) => {
            assert!(message.contains("403"), "{message}")
        }
        other => panic!("a stranger's forward was not refused: {other:?}"),
    }
    assert!(!has_provider(cluster.node(leader), 8));

    // A member asking for a read index is served.
    let member = PeerClient::over(cluster.net.link(cluster.others(leader)[0]));
    let index: Result<u64, PeerError> = member
        .read_index(&peer, Duration::from_secs(5))
        .await
        .expect("read index call");
    assert!(index.expect("read index") > 0);
    cluster.shutdown().await;
}
