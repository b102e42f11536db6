//! reshaper handlers (owned by the allocations helper; see the crate doc for the conventions).

use axum::Router;

use crate::{AppState, Backend};

pub(crate) fn routes<B: Backend>() -> Router<AppState<B>> {
    Router::new()
}
