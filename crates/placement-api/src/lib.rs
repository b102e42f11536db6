//! placement-api: Placement's REST API on axum.

pub mod backend;

pub use backend::{Backend, BackendError, LocalBackend};
