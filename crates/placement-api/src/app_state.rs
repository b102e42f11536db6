//! The two paths every handler takes to the state: [`AppState::write`] (stamp a [`Request`]
//! with the request id and the time, `backend.write`, map a rejection to its status) and
//! [`AppState::read`] / [`AppState::read_blocking`] (`read_barrier`, then a closure over a
//! snapshot of the [`State`], on a search thread for the costly ones).

use http::StatusCode;
use placement_core::State;
use placement_types::{Command, Origin, Outcome, Request};

use crate::backend::Backend;
use crate::context::Ctx;
use crate::error::ApiError;
use crate::response::now;
use crate::AppState;

impl<B: Backend> AppState<B> {
    /// Proposes one command, stamped with the request id and the current time, and waits
    /// for its result. A rejection becomes its HTTP error; an unavailable backend a 503.
    pub async fn write(&self, ctx: &Ctx, command: Command) -> Result<Outcome, ApiError> {
        let request = Request {
            id: ctx.request_id,
            at: now(),
            command,
        };
        let origin = ctx
            .caller
            .as_ref()
            .map(|c| Origin {
                user_id: c.user_id.clone(),
                project_id: c.project_id.clone(),
            })
            .unwrap_or_default();
        let result = self.backend.write(request, origin).await?;
        Ok(result?)
    }

    /// A linearizable read: waits for the read barrier, then runs `f` over a snapshot of
    /// the state (writes go on meanwhile).
    pub async fn read<R>(&self, f: impl FnOnce(&State) -> R) -> Result<R, ApiError> {
        self.backend.read_barrier().await?;
        Ok(f(&self.backend.state()))
    }

    /// [`Self::read`] for a read that costs real CPU (an allocation-candidates search and its
    /// serialization): `f` runs on a search thread (`read_pool.rs`), at a lower priority than
    /// the runtime's threads, so that however many such reads run, writes and small reads keep
    /// their CPU; holding only a snapshot, it never holds up the state machine either.
    pub async fn read_blocking<R: Send + 'static>(
        &self,
        f: impl FnOnce(&State) -> R + Send + 'static,
    ) -> Result<R, ApiError> {
        self.backend.read_barrier().await?;
        let state = self.backend.state();
        crate::read_pool::run(move || f(&state))
            .await
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "read task failed".to_string(),
                )
            })
    }
}
