//! The small interface the HTTP layer needs from the rest of placementd.
//!
//! The API crate does not know about Raft or RocksDB. `placement-raft` implements
//! [`Backend`] for a real node; [`LocalBackend`] applies commands directly to an in-memory
//! [`State`] with the same pure `apply`, for the API crate's own fast tests.

use std::future::Future;
use std::sync::{Arc, RwLock};

use placement_core::State;
use placement_types::{ApplyResult, Origin, Request};

/// Why a write or read barrier could not be served (not a domain rejection: those come
/// back inside [`ApplyResult`]). Mapped to 503.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BackendError {
    #[error("service unavailable: {0}")]
    Unavailable(String),
}

/// What an implementor must guarantee:
/// - `write` returns only after the request is committed, with the result `apply` produced,
///   and so that a read that follows on this node sees it: either the write was applied here
///   before it returns, or (a follower's forwarded write, with linearizable reads) the next
///   `read_barrier` waits for it. `origin` is the caller the request is for (for logs), never
///   part of the command.
/// - `read_barrier` returns once this node's state includes every write acknowledged by any
///   node before the call (linearizable reads).
/// - `state` returns a consistent view of one applied prefix of the log that later writes do
///   not change, cheaply (readers hold it while they build an answer; it must not hold up
///   writes).
pub trait Backend: Send + Sync + 'static {
    fn write(
        &self,
        request: Request,
        origin: Origin,
    ) -> impl Future<Output = Result<ApplyResult, BackendError>> + Send;
    fn read_barrier(&self) -> impl Future<Output = Result<(), BackendError>> + Send;
    fn state(&self) -> Arc<State>;
}

/// An in-process backend: applies each request at once to a state behind a lock.
#[derive(Debug, Default, Clone)]
pub struct LocalBackend {
    state: Arc<RwLock<Arc<State>>>,
}

impl LocalBackend {
    pub fn new() -> Self {
        Self::default()
    }

    /// A backend over a state built elsewhere (benchmarks and tests that load a whole
    /// deployment without going through the API).
    pub fn from_state(state: State) -> Self {
        LocalBackend {
            state: Arc::new(RwLock::new(Arc::new(state))),
        }
    }
}

impl Backend for LocalBackend {
    async fn write(&self, request: Request, _origin: Origin) -> Result<ApplyResult, BackendError> {
        let mut current = self
            .state
            .write()
            .map_err(|_| BackendError::Unavailable("state lock poisoned".into()))?;
        let applied = placement_core::apply(&current, &request);
        if !applied.changes.is_empty() {
            // A persistent state: the clone shares everything until the commit.
            let mut next = State::clone(&current);
            next.commit(&applied.changes);
            *current = Arc::new(next);
        }
        Ok(applied.result)
    }

    async fn read_barrier(&self) -> Result<(), BackendError> {
        Ok(())
    }

    fn state(&self) -> Arc<State> {
        self.state.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
