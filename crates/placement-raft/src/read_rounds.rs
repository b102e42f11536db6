//! Linearizable reads share read-index rounds.
//!
//! # Why
//! A linearizable read needs a read index that was fixed after the read arrived: on the
//! leader, a confirmation of its leadership (openraft's ReadIndex); on a follower, a call to
//! the leader over the peer port. Taken once per read, each costs a message through the Raft
//! core (and its metrics report) on the leader, and a whole HTTP exchange on both sides for a
//! follower read. Concurrent reads can share one: this is etcd's batching of ReadIndex
//! requests (`linearizableReadLoop`).
//!
//! # How
//! At most one round runs at a time. A read that arrives while none runs starts one itself
//! and answers every read that was waiting for it. A read that arrives while a round runs
//! waits for the *next* round, never the running one: that round's read index may have been
//! fixed before the read arrived, and answering with it could miss a write acknowledged in
//! between. Rounds are numbered as they start; a read may take the outcome of any round
//! numbered after the last one started before it arrived.
//!
//! When a round ends, the first of its waiters to wake starts the next one for everybody who
//! queued meanwhile. So under load a round carries every read that arrived during the
//! previous one, and a read waits at most two rounds; an idle node runs a round per read, as
//! before.
//!
//! A round whose reader gives up (its HTTP request dropped mid-round) is marked abandoned:
//! the waiters then start another one, so none waits on a round nobody drives. A failed
//! round fails each of its reads with the same error, which the caller retries as any
//! barrier error (`node/writes.rs::read_barrier`).

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use crate::Error;

/// The outcome of one round, as every read that shares it receives it.
type Outcome = Result<u64, Arc<Error>>;

/// The last round that ended.
#[derive(Clone, Debug)]
struct Ended {
    /// Its number (0: none yet).
    round: u64,
    /// Its outcome; `None` if its reader gave up before it ended.
    outcome: Option<Outcome>,
}

#[derive(Debug, Default)]
struct Rounds {
    /// Rounds started so far; the running one, if any, is number `started`.
    started: u64,
    running: bool,
}

/// Read-index rounds shared by concurrent reads (see the module doc).
#[derive(Debug)]
pub(crate) struct ReadRounds {
    rounds: Mutex<Rounds>,
    ended: watch::Sender<Ended>,
}

impl Default for ReadRounds {
    fn default() -> Self {
        ReadRounds {
            rounds: Mutex::default(),
            ended: watch::Sender::new(Ended {
                round: 0,
                outcome: None,
            }),
        }
    }
}

impl ReadRounds {
    /// A read index fixed after this call began: the outcome of the next round to start,
    /// which this call starts itself (with `round`) unless another read does first.
    pub(crate) async fn read_index<F, Fut>(&self, round: F) -> Result<u64, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<u64, Error>>,
    {
        let mut ended = self.ended.subscribe();
        // Every round numbered after the last one started so far starts after this read.
        let wanted = self.lock().started + 1;
        let mut round = Some(round);
        loop {
            {
                let last = ended.borrow_and_update();
                if last.round >= wanted {
                    if let Some(outcome) = &last.outcome {
                        return outcome.clone().map_err(|e| e.duplicate());
                    }
                }
            }
            let start = {
                let mut rounds = self.lock();
                (!rounds.running).then(|| {
                    rounds.running = true;
                    rounds.started += 1;
                    rounds.started
                })
            };
            if let Some(number) = start {
                // A read starts at most one round: it returns with that round's outcome.
                let round = round.take().expect("a read starts one round at most");
                let mut driving = Driving {
                    rounds: self,
                    number,
                    outcome: None,
                };
                let outcome = round().await;
                driving.outcome = Some(match &outcome {
                    Ok(index) => Ok(*index),
                    Err(e) => Err(Arc::new(e.duplicate())),
                });
                return outcome;
            }
            // A round runs: wait until it (or a later one) ends.
            if ended.changed().await.is_err() {
                // The sender lives in `self`, which outlives this call.
                unreachable!("ReadRounds dropped while a read waits on it");
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Rounds> {
        // Nothing panics while holding the lock; a poisoned one still holds sound counters.
        self.rounds.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The round a read is running; when dropped (the round ended, or its reader gave up),
/// marks it ended and wakes the waiting reads.
struct Driving<'a> {
    rounds: &'a ReadRounds,
    number: u64,
    outcome: Option<Outcome>,
}

impl Drop for Driving<'_> {
    fn drop(&mut self) {
        // Not running first, then the news: a waiter that wakes finds it may start the next.
        self.rounds.lock().running = false;
        self.rounds.ended.send_replace(Ended {
            round: self.number,
            outcome: self.outcome.take(),
        });
    }
}

impl Error {
    /// The same error again, for each read that shared a failed round (a storage error,
    /// which no read index round returns, becomes its message).
    pub(crate) fn duplicate(&self) -> Error {
        match self {
            Error::Storage(e) => Error::Stopped(format!("storage: {e}")),
            Error::Config(m) => Error::Config(m.clone()),
            Error::NotLeader {
                leader,
                leader_api_addr,
            } => Error::NotLeader {
                leader: *leader,
                leader_api_addr: leader_api_addr.clone(),
            },
            Error::NoQuorum(m) => Error::NoQuorum(m.clone()),
            Error::OutcomeUnknown(m) => Error::OutcomeUnknown(m.clone()),
            Error::Timeout(m) => Error::Timeout(m.clone()),
            Error::Stopped(m) => Error::Stopped(m.clone()),
            Error::Raft(m) => Error::Raft(m.clone()),
            Error::Peer(m) => Error::Peer(m.clone()),
            Error::Refused(m) => Error::Refused(m.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use tokio::sync::Notify;

    use super::*;

    /// A read-index source the test controls: each round takes the current index when it
    /// starts and ends when the test says so.
    #[derive(Default)]
    struct Source {
        index: AtomicU64,
        rounds: AtomicU64,
        release: Notify,
    }

    impl Source {
        async fn round(&self) -> Result<u64, Error> {
            self.rounds.fetch_add(1, Ordering::SeqCst);
            let index = self.index.load(Ordering::SeqCst);
            self.release.notified().await;
            Ok(index)
        }
    }

    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn a_read_that_arrives_during_a_round_waits_for_the_next_one() {
        let rounds = Arc::new(ReadRounds::default());
        let source = Arc::new(Source::default());
        source.index.store(1, Ordering::SeqCst);
        let read = |rounds: Arc<ReadRounds>, source: Arc<Source>| {
            tokio::spawn(async move {
                rounds
                    .read_index(|| source.round())
                    .await
                    .expect("read index")
            })
        };
        let first = read(rounds.clone(), source.clone());
        settle().await;
        // A write commits at index 2 while the first round runs; then a second read comes.
        source.index.store(2, Ordering::SeqCst);
        let second = read(rounds.clone(), source.clone());
        let third = read(rounds.clone(), source.clone());
        settle().await;
        source.release.notify_one();
        assert_eq!(first.await.expect("first read"), 1);
        settle().await;
        assert_eq!(
            source.rounds.load(Ordering::SeqCst),
            2,
            "the waiters share one round"
        );
        source.release.notify_one();
        assert_eq!(
            second.await.expect("second read"),
            2,
            "never the round that began before the read"
        );
        assert_eq!(third.await.expect("third read"), 2);
    }

    #[tokio::test]
    async fn a_failed_round_fails_each_of_its_reads() {
        let rounds = ReadRounds::default();
        let failed = rounds
            .read_index(|| async { Err(Error::NoQuorum("two of three down".into())) })
            .await;
        assert!(matches!(failed, Err(Error::NoQuorum(m)) if m == "two of three down"));
        let ok = rounds.read_index(|| async { Ok(7) }).await;
        assert_eq!(ok.expect("second round"), 7);
    }

    #[tokio::test]
    async fn an_abandoned_round_does_not_strand_its_waiters() {
        let rounds = Arc::new(ReadRounds::default());
        let source = Arc::new(Source::default());
        source.index.store(5, Ordering::SeqCst);
        let driver = {
            let (rounds, source) = (rounds.clone(), source.clone());
            tokio::spawn(async move { rounds.read_index(|| source.round()).await })
        };
        settle().await;
        let waiter = {
            let (rounds, source) = (rounds.clone(), source.clone());
            tokio::spawn(async move { rounds.read_index(|| source.round()).await })
        };
        settle().await;
        // The first reader's request is dropped mid-round.
        driver.abort();
        settle().await;
        assert_eq!(
            source.rounds.load(Ordering::SeqCst),
            2,
            "the waiter started its own"
        );
        source.release.notify_one();
        let index = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the waiter is answered")
            .expect("the waiter's task");
        assert_eq!(index.expect("read index"), 5);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn many_concurrent_reads_share_few_rounds_and_each_sees_what_preceded_it() {
        // Each read records the index committed when it began; its answer must be at least
        // that. The source's index grows all the time, as writes commit.
        let rounds = Arc::new(ReadRounds::default());
        let committed = Arc::new(AtomicU64::new(0));
        let ran = Arc::new(AtomicU64::new(0));
        let mut reads = Vec::new();
        for _ in 0..64 {
            let (rounds, committed, ran) = (rounds.clone(), committed.clone(), ran.clone());
            reads.push(tokio::spawn(async move {
                let mut shortfalls = 0;
                for _ in 0..50 {
                    let before = committed.fetch_add(1, Ordering::SeqCst) + 1;
                    let index = rounds
                        .read_index(|| async {
                            ran.fetch_add(1, Ordering::SeqCst);
                            let index = committed.load(Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_micros(200)).await;
                            Ok(index)
                        })
                        .await
                        .expect("read index");
                    if index < before {
                        shortfalls += 1;
                    }
                }
                shortfalls
            }));
        }
        let mut shortfalls = 0;
        for r in reads {
            shortfalls += r.await.expect("reader task");
        }
        assert_eq!(
            shortfalls, 0,
            "a read answered with an index fixed before it began"
        );
        let ran = ran.load(Ordering::SeqCst);
        assert!(ran < 64 * 50 / 4, "{ran} rounds for 3,200 reads");
    }
}
