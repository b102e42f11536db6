//! The HTTP layer's [`Backend`] for a real Raft node.
//!
//! A thin newtype: writes go through Raft, the read barrier is Raft's ReadIndex, reads see
//! the state machine's in-memory state. Every node failure (not the leader, no quorum,
//! timeout, stopped) becomes [`BackendError::Unavailable`], which the API answers with 503;
//! domain rejections travel inside the `ApplyResult`.
//!
//! With `--read-consistency stale` the read barrier is skipped: a node answers reads from
//! whatever it has applied, without asking the leader. Reads get cheaper (no round trip to
//! the leader, no quorum check) and keep working on a node cut off from the majority, but a
//! follower may then miss a write acknowledged a moment ago by another node. Writes, and
//! everything a write checks (generations, capacity), stay linearizable either way; with stale
//! reads a write sent to a follower also waits until that follower has applied it, so a client
//! that stays on one node reads its own writes.

use std::sync::Arc;

use placement_api::{Backend, BackendError};
use placement_core::State;
use placement_raft::PlacementNode;
use placement_types::{ApplyResult, Origin, Request};

/// [`Backend`] over a [`PlacementNode`].
#[derive(Debug, Clone)]
pub struct RaftBackend {
    pub node: Arc<PlacementNode>,
    /// Skip the read barrier (`--read-consistency stale`).
    pub stale_reads: bool,
}

fn unavailable(e: placement_raft::Error) -> BackendError {
    BackendError::Unavailable(e.to_string())
}

impl Backend for RaftBackend {
    async fn write(&self, request: Request, origin: Origin) -> Result<ApplyResult, BackendError> {
        // With the read barrier, a forwarded write need not wait to be applied here: the next
        // read's barrier does (`write_as_for_barrier_reads`). Stale reads read only what this
        // node applied, so there a write waits for it, and a client reads its own writes.
        let written = if self.stale_reads {
            self.node.write_as(request, origin).await
        } else {
            self.node.write_as_for_barrier_reads(request, origin).await
        };
        written.map_err(unavailable)
    }

    async fn read_barrier(&self) -> Result<(), BackendError> {
        if self.stale_reads {
            return Ok(());
        }
        self.node.read_barrier().await.map_err(unavailable)
    }

    fn state(&self) -> Arc<State> {
        self.node.state()
    }
}
