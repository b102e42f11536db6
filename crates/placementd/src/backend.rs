//! The HTTP layer's [`Backend`] for a real Raft node.
//!
//! A thin newtype: writes go through Raft, the read barrier is Raft's ReadIndex, reads see
//! the state machine's in-memory state. Every node failure (not the leader, no quorum,
//! timeout, stopped) becomes [`BackendError::Unavailable`], which the API answers with 503;
//! domain rejections travel inside the `ApplyResult`.

use std::sync::Arc;

use placement_api::{Backend, BackendError};
use placement_core::State;
use placement_raft::PlacementNode;
use placement_types::{ApplyResult, Request};

/// [`Backend`] over a [`PlacementNode`].
#[derive(Debug, Clone)]
pub struct RaftBackend(pub Arc<PlacementNode>);

fn unavailable(e: placement_raft::Error) -> BackendError {
    BackendError::Unavailable(e.to_string())
}

impl Backend for RaftBackend {
    async fn write(&self, request: Request) -> Result<ApplyResult, BackendError> {
        self.0.write(request).await.map_err(unavailable)
    }

    async fn read_barrier(&self) -> Result<(), BackendError> {
        self.0.read_barrier().await.map_err(unavailable)
    }

    fn with_state<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        self.0.with_state(f)
    }
}
