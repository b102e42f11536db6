//! Write forwarding, follower side: the client writes this node forwards to the leader travel
//! in batches, many per peer call.
//!
//! # Why
//! Behind a round-robin load balancer, (N-1)/N of the writes reach a follower. Forwarded one
//! per call, each cost an HTTP request and answer on both sides of the peer port, a large part
//! of a write's CPU. A batch costs one call however many writes it carries, and the leader
//! proposes them together, so they still share one log append (group commit).
//!
//! # How
//! [`Forwarder::forward`] queues the write and waits for its answer. One task drains the
//! queue: it takes whatever is queued at that moment (up to [`MAX_BATCH`]), sends it as one
//! call, and goes on with the next batch while that call is in flight, with at most
//! [`MAX_CALLS_IN_FLIGHT`] calls outstanding. So nothing waits for a batch to fill: under
//! light load a batch is one write and goes at once; under heavy load writes queue while the
//! calls in flight are answered, and the next batch takes them all.
//!
//! Each write keeps its own outcome. A transport failure fails every write of the batch with
//! the same error, which the caller retries as before ([`crate::node`]): the request keeps its
//! id, so a write that did commit is answered from the leader's dedupe table, not applied
//! twice. A leader that does not know the batch path (an older version during a rolling
//! upgrade) answers 404: the batch is then sent one write per call on the old path.

use std::time::Duration;

use placement_types::ApplyResult;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::transport::{Forwarded, Peer, PeerClient, PeerError, TransportError};

/// The most writes one call carries. A batch is at most this many requests, each well under
/// a few KiB, so it stays far below the peer port's body limit.
pub const MAX_BATCH: usize = 256;

/// Batch calls to the leader outstanding at once. More than one, so the next batch does not
/// wait for the answer to the last; few, so that writes queue and batches grow under load.
pub const MAX_CALLS_IN_FLIGHT: usize = 4;

/// The leader's answer to one forwarded write: its outcome and the index of its entry.
pub type Answer = Result<Result<(ApplyResult, u64), PeerError>, TransportError>;

struct Pending {
    peer: Peer,
    forwarded: Forwarded,
    deadline: Instant,
    reply: oneshot::Sender<Answer>,
}

/// Queues forwarded writes and sends them to the leader in batches (see the module doc).
/// Cheap to clone; the draining task ends when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct Forwarder {
    queue: mpsc::UnboundedSender<Pending>,
}

impl Forwarder {
    /// Starts the draining task on the current runtime.
    pub fn spawn(peers: PeerClient) -> Self {
        let (queue, rx) = mpsc::unbounded_channel();
        tokio::spawn(drain(peers, rx));
        Forwarder { queue }
    }

    /// Forwards `forwarded` to the leader `peer` and waits (at most `timeout`) for its answer.
    pub async fn forward(&self, peer: &Peer, forwarded: Forwarded, timeout: Duration) -> Answer {
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            peer: peer.clone(),
            forwarded,
            deadline: Instant::now() + timeout,
            reply,
        };
        let stopped = || TransportError::Call {
            addr: peer.addr.clone(),
            message: "the forwarding task has stopped".into(),
        };
        self.queue.send(pending).map_err(|_| stopped())?;
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(stopped()),
            Err(_) => Err(TransportError::Call {
                addr: peer.addr.clone(),
                message: format!("no answer within {timeout:?}"),
            }),
        }
    }
}

/// The draining task: one batch per loop, sent on its own task.
async fn drain(peers: PeerClient, mut rx: mpsc::UnboundedReceiver<Pending>) {
    let calls = std::sync::Arc::new(Semaphore::new(MAX_CALLS_IN_FLIGHT));
    loop {
        // Wait for a free call slot first: writes that arrive meanwhile join the next batch.
        let Ok(permit) = calls.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = rx.recv().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        tokio::spawn(send(peers.clone(), batch, permit));
    }
}

/// Sends one drained batch, one call per leader named in it (a leader change between two
/// writes can put two there), and answers every write.
async fn send(peers: PeerClient, mut batch: Vec<Pending>, _permit: OwnedSemaphorePermit) {
    batch.retain(|p| !p.reply.is_closed());
    while let Some(first) = batch.first() {
        let id = first.peer.id;
        let (group, rest): (Vec<_>, Vec<_>) = batch.into_iter().partition(|p| p.peer.id == id);
        batch = rest;
        send_group(&peers, group).await;
    }
}

async fn send_group(peers: &PeerClient, group: Vec<Pending>) {
    let peer = group[0].peer.clone();
    let deadline = group
        .iter()
        .map(|p| p.deadline)
        .max()
        .unwrap_or_else(Instant::now);
    let timeout = deadline.saturating_duration_since(Instant::now());
    let writes: Vec<&Forwarded> = group.iter().map(|p| &p.forwarded).collect();
    placement_metrics::catalog::RAFT_FORWARD_BATCH.observe(group.len() as u64);
    match peers.forward_writes(&peer, &writes, timeout).await {
        Ok(Ok(answers)) if answers.len() == group.len() => {
            for (p, answer) in group.into_iter().zip(answers) {
                let _ = p.reply.send(Ok(answer));
            }
        }
        Ok(Ok(answers)) => {
            let e = TransportError::Call {
                addr: peer.addr.clone(),
                message: format!(
                    "{} answers to a batch of {} forwarded writes",
                    answers.len(),
                    group.len()
                ),
            };
            fail(group, &e);
        }
        Ok(Err(e)) => {
            for p in group {
                let _ = p.reply.send(Ok(Err(e.clone())));
            }
        }
        Err(TransportError::NotFound { .. }) => {
            // An older leader: one write per call on the single-write path.
            let calls = group.into_iter().map(|p| async move {
                let timeout = p.deadline.saturating_duration_since(Instant::now());
                let answer = peers.forward_write(&p.peer, &p.forwarded, timeout).await;
                let _ = p.reply.send(answer);
            });
            futures::future::join_all(calls).await;
        }
        Err(e) => fail(group, &e),
    }
}

fn fail(group: Vec<Pending>, e: &TransportError) {
    for p in group {
        let _ = p.reply.send(Err(e.clone()));
    }
}
