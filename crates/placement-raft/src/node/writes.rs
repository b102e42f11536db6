//! Write routing and read barriers: a write is proposed on the leader or forwarded to it
//! (batched by `forward.rs`), retried on whichever member leads next until
//! [`WRITE_TIMEOUT`]; a read barrier is ReadIndex, asked of the leader by a follower.

use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use openraft::errors::{ClientWriteError, ForwardToLeader, LinearizableReadError, RaftError};
use openraft::ReadPolicy;
use placement_storage::{NodeId, TypeConfig};
use placement_types::{ApplyResult, LogPayload, Origin, Request};

use crate::transport::{Forwarded, Peer, PeerError, TransportError};
use crate::Error;

use super::{PlacementNode, READ_BARRIER_TIMEOUT, RETRY_BACKOFF, WRITE_TIMEOUT};

impl PlacementNode {
    /// Commits one request through the leader (this node, or forwarded to it) and returns the
    /// result of applying it. When it returns, this node has applied the entry too (a
    /// forwarded write waits for that), so a read on this node sees the write.
    ///
    /// Retries across leader changes until [`WRITE_TIMEOUT`]; the request keeps its id, so a
    /// retry of a write that did commit is answered with the first outcome, not applied twice.
    pub async fn write(&self, request: Request) -> Result<ApplyResult, Error> {
        self.write_as(request, Origin::default()).await
    }

    /// [`Self::write`] on behalf of `origin` (the API caller), which a forward carries to the
    /// leader for its log.
    pub async fn write_as(&self, request: Request, origin: Origin) -> Result<ApplyResult, Error> {
        self.write_routed(request, origin, LocalApply::Wait).await
    }

    /// [`Self::write_as`] for a caller whose every read passes [`Self::read_barrier`]: a
    /// forwarded write returns as soon as the leader answers, without waiting for this node to
    /// apply the entry. The barrier of the next read on this node waits for it instead (the
    /// leader's read index covers every acknowledged write), so reads stay linearizable; what
    /// is saved is, for each forwarded write, the wait until the leader's next append tells
    /// this node that the entry is committed (about half the latency of a forwarded write at
    /// moderate load). A caller that reads without the barrier (stale reads) must use
    /// [`Self::write_as`] to read its own writes.
    pub async fn write_as_for_barrier_reads(
        &self,
        request: Request,
        origin: Origin,
    ) -> Result<ApplyResult, Error> {
        self.write_routed(request, origin, LocalApply::DontWait)
            .await
    }

    pub(super) async fn write_routed(
        &self,
        request: Request,
        origin: Origin,
        local: LocalApply,
    ) -> Result<ApplyResult, Error> {
        let forwarded = &Forwarded { request, origin };
        self.on_leader(
            WRITE_TIMEOUT,
            || format!("request {} not applied in time", forwarded.request.id),
            |leader, remaining| async move {
                match leader {
                    Leader::Here => self.write_local(forwarded.request.clone()).await,
                    Leader::At(peer) => {
                        self.forward_write(&peer, forwarded, local, remaining).await
                    }
                }
            },
        )
        .await
    }

    /// Runs `attempt` on the leader — this node ([`Leader::Here`]) or a peer — until it
    /// succeeds, fails for good, or `timeout` passes. An error [`Error::is_retryable`] names
    /// (leadership moved, no quorum yet, outcome unknown, a peer unreachable) is retried after
    /// [`RETRY_BACKOFF`] on whichever member leads then; while no leader is known, the call
    /// waits. An attempt on a peer is abandoned as soon as another member leads
    /// ([`Self::unless_leader_moves`]). `attempt` gets the time left; `what` describes the
    /// call for the timeout error.
    pub(super) async fn on_leader<T, F, Fut>(
        &self,
        timeout: Duration,
        what: impl Fn() -> String,
        mut attempt: F,
    ) -> Result<T, Error>
    where
        F: FnMut(Leader, Duration) -> Fut,
        Fut: std::future::Future<Output = Result<T, Error>>,
    {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last: Option<Error> = None;
        loop {
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(last.unwrap_or_else(|| Error::Timeout(what())));
            }
            let remaining = deadline - now;
            let result = match self.leader() {
                Some(Leader::At(peer)) => {
                    let id = peer.id;
                    self.unless_leader_moves(id, attempt(Leader::At(peer), remaining))
                        .await
                        .and_then(|answer| answer)
                }
                Some(Leader::Here) => attempt(Leader::Here, remaining).await,
                None => Err(Error::NotLeader {
                    leader: None,
                    leader_api_addr: None,
                }),
            };
            match result {
                Ok(value) => return Ok(value),
                Err(e) if e.is_retryable() => {
                    tracing::debug!(error = %e, "retried on the leader");
                    last = Some(e);
                    tokio::time::sleep(RETRY_BACKOFF.min(remaining)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Where the leader is, as far as this node knows (`None` while no leader is known).
    pub(super) fn leader(&self) -> Option<Leader> {
        let status = self.status();
        match status.leader {
            _ if status.is_leader => Some(Leader::Here),
            Some(leader) if leader != self.id => self.peer_of(leader).map(Leader::At),
            _ => None,
        }
    }

    /// Forwards a write to the leader `peer`; with [`LocalApply::Wait`], then waits until this
    /// node has applied at least as far as the leader's entry, so a read on this node after
    /// the write sees it even without a read barrier.
    pub(super) async fn forward_write(
        &self,
        peer: &Peer,
        forwarded: &Forwarded,
        local: LocalApply,
        timeout: Duration,
    ) -> Result<ApplyResult, Error> {
        tracing::info!(request_id = %format_args!("req-{}", forwarded.request.id), leader = peer.id, "forwarding a write to the leader");
        placement_metrics::catalog::RAFT_FORWARDED_WRITES.inc();
        let answer = self
            .forwarder
            .forward(peer, forwarded.clone(), timeout)
            .await
            .map_err(Error::from)?;
        let (result, index) = answer?;
        if local == LocalApply::Wait {
            self.wait_applied(index, timeout).await?;
        }
        Ok(result)
    }

    /// Runs `call` to the leader `leader` unless this node learns first that another node
    /// leads: then the call is abandoned with a retryable error, and [`Self::on_leader`]'s
    /// retry goes to the new leader at once. Without it, a call to a leader that stopped
    /// answering without closing its connections (a paused process, a hung host) waits out
    /// its whole deadline while the others have long elected a new leader. Abandoning a
    /// forwarded write is safe: its retry keeps the request id, so it is applied once even if
    /// the old leader's copy commits as well.
    async fn unless_leader_moves<T>(
        &self,
        leader: NodeId,
        call: impl std::future::Future<Output = T>,
    ) -> Result<T, Error> {
        tokio::select! {
            answer = call => Ok(answer),
            new = self.leader_other_than(leader) => Err(Error::OutcomeUnknown(format!(
                "node {new} leads now; the call to node {leader} was abandoned"
            ))),
        }
    }

    /// Resolves once this node knows a leader other than `old` (never, if Raft stops).
    async fn leader_other_than(&self, old: NodeId) -> NodeId {
        let mut metrics = self.raft.metrics();
        loop {
            if let Some(leader) = metrics.borrow_watched().current_leader {
                if leader != old {
                    return leader;
                }
            }
            if metrics.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }

    /// Waits until this node has applied entry `index`.
    pub(super) async fn wait_applied(&self, index: u64, timeout: Duration) -> Result<(), Error> {
        // Mostly it is applied already: look before setting up a wait on the metrics.
        let applied = self
            .raft
            .metrics()
            .borrow_watched()
            .last_applied
            .map(|l| l.index);
        if applied >= Some(index) {
            return Ok(());
        }
        self.raft
            .wait(Some(timeout))
            .applied_index_at_least(Some(index), "read or forwarded write")
            .await
            .map(|_| ())
            .map_err(|e| Error::Timeout(format!("applying up to {index}: {e}")))
    }

    /// Proposes `request` on this node's Raft only (the leader's half of a forward); returns
    /// the outcome and the index of the entry that carried it.
    pub(crate) async fn write_local_indexed(
        &self,
        request: Request,
    ) -> Result<(ApplyResult, u64), Error> {
        let request_id = request.id;
        let _pending = placement_metrics::catalog::RAFT_PROPOSALS_PENDING.track();
        let write = self.raft.client_write(LogPayload::V1(request));
        let outcome = match tokio::time::timeout(WRITE_TIMEOUT, write).await {
            Err(_) => Err(Error::Timeout(format!(
                "request {request_id} not applied within {WRITE_TIMEOUT:?}"
            ))),
            Ok(Ok(response)) => Ok((response.data, response.log_id.index)),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => Err(f.into()),
            Ok(Err(RaftError::APIError(e @ ClientWriteError::LogEntryDiscarded(_)))) => {
                Err(Error::OutcomeUnknown(e.to_string()))
            }
            Ok(Err(RaftError::APIError(e))) => Err(Error::Raft(e.to_string())),
            Ok(Err(RaftError::Fatal(e))) => Err(Error::Stopped(e.to_string())),
        };
        crate::observe::proposal_done(outcome.is_ok());
        outcome
    }

    /// Proposes `request` on this node's Raft only.
    pub(crate) async fn write_local(&self, request: Request) -> Result<ApplyResult, Error> {
        self.write_local_indexed(request).await.map(|(r, _)| r)
    }

    /// Returns once this node's state includes every write acknowledged anywhere before the
    /// call (ReadIndex: the leader confirms its leadership with a quorum; this node then
    /// waits until it has applied up to the leader's read index). On a follower the read
    /// index comes from the leader over the peer port. Concurrent reads share one read index
    /// round (`read_rounds.rs`). Retries across leader changes until [`READ_BARRIER_TIMEOUT`].
    pub async fn read_barrier(&self) -> Result<(), Error> {
        self.on_leader(
            READ_BARRIER_TIMEOUT,
            || format!("read barrier not reached within {READ_BARRIER_TIMEOUT:?}"),
            |leader, remaining| async move {
                if matches!(leader, Leader::Here) && self.sole_voter() {
                    // Leadership needs no quorum round here: nothing to share.
                    return self.local_read_barrier().await;
                }
                let shared = self.reads.read_index(|| self.read_index_round());
                let index = tokio::time::timeout(remaining, shared)
                    .await
                    .map_err(|_| {
                        Error::Timeout(format!("no read index within {READ_BARRIER_TIMEOUT:?}"))
                    })??;
                self.wait_applied(index, remaining).await
            },
        )
        .await
    }

    /// ReadIndex on the leader of a one-node cluster: immediate, but for the wait until
    /// applied.
    async fn local_read_barrier(&self) -> Result<(), Error> {
        let barrier = self.raft.ensure_linearizable(ReadPolicy::ReadIndex);
        match tokio::time::timeout(READ_BARRIER_TIMEOUT, barrier).await {
            Err(_) => Err(Error::Timeout(format!(
                "read barrier not reached within {READ_BARRIER_TIMEOUT:?}"
            ))),
            Ok(Ok(_read_log_id)) => Ok(()),
            Ok(Err(e)) => Err(linearizable_error(e)),
        }
    }

    /// One read index round, for every read that shares it: from this node if it leads,
    /// else from the leader over the peer port (abandoned if another member takes over).
    async fn read_index_round(&self) -> Result<u64, Error> {
        match self.leader() {
            Some(Leader::Here) => self.leader_read_index().await,
            Some(Leader::At(peer)) => {
                let id = peer.id;
                let call = self.peers.read_index(&peer, READ_BARRIER_TIMEOUT);
                Ok(self.unless_leader_moves(id, call).await???)
            }
            None => Err(Error::NotLeader {
                leader: None,
                leader_api_addr: None,
            }),
        }
    }

    /// The leader's half of a read: confirm leadership with a quorum and return the index
    /// the reader must have applied.
    pub(crate) async fn leader_read_index(&self) -> Result<u64, Error> {
        let linearizer = self.raft.get_read_linearizer(ReadPolicy::ReadIndex);
        match tokio::time::timeout(READ_BARRIER_TIMEOUT, linearizer).await {
            Err(_) => Err(Error::Timeout(format!(
                "leadership not confirmed within {READ_BARRIER_TIMEOUT:?}"
            ))),
            Ok(Ok(l)) => Ok(l.read_log_id().index()),
            Ok(Err(e)) => Err(linearizable_error(e)),
        }
    }
}

/// Whether a forwarded write waits until this node has applied it (see
/// [`PlacementNode::write_as_for_barrier_reads`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LocalApply {
    Wait,
    DontWait,
}

/// Where the leader is: this node, or another member.
pub(super) enum Leader {
    Here,
    At(Peer),
}

pub(super) fn linearizable_error(
    e: RaftError<TypeConfig, LinearizableReadError<TypeConfig>>,
) -> Error {
    match e {
        RaftError::APIError(LinearizableReadError::ForwardToLeader(f)) => f.into(),
        RaftError::APIError(LinearizableReadError::QuorumNotEnough(e)) => {
            Error::NoQuorum(e.to_string())
        }
        RaftError::Fatal(e) => Error::Stopped(e.to_string()),
    }
}

impl From<ForwardToLeader<TypeConfig>> for Error {
    /// openraft's "not the leader" (from a write, a read barrier or a membership change).
    fn from(f: ForwardToLeader<TypeConfig>) -> Self {
        Error::NotLeader {
            leader: f.leader_id,
            leader_api_addr: f.leader_node.map(|n| n.api_addr),
        }
    }
}

impl From<TransportError> for Error {
    fn from(e: TransportError) -> Self {
        Error::Peer(e.to_string())
    }
}

impl From<PeerError> for Error {
    fn from(e: PeerError) -> Self {
        match e {
            PeerError::NotLeader { leader } => Error::NotLeader {
                leader,
                leader_api_addr: None,
            },
            PeerError::Unavailable(message) => Error::Peer(message),
            PeerError::Refused(message) => Error::Refused(message),
        }
    }
}
