//! inventories handlers.

use axum::Router;

use crate::{AppState, Backend};

pub(crate) fn routes<B: Backend>() -> Router<AppState<B>> {
    Router::new()
}
