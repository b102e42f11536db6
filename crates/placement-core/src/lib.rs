//! The pure logic of Placement: the in-memory [`State`] and [`apply`], which turns one
//! [`placement_types::Request`] into an outcome and the record [`Change`]s it implies.
//!
//! Nothing here does I/O, reads a clock or draws randomness: `apply` is a function of the
//! state and the request alone, so every node of the cluster reaches byte-identical state
//! from the same log. Storage (RocksDB) and Raft are adapters around this crate.
//!
//! Left out on purpose: schema validation and microversion rules (the API crate checks those
//! before a command is built). Allocation candidates ([`candidates`]) are a pure read over
//! the state.

pub mod apply;
pub mod candidates;
#[cfg(any(test, feature = "fixture"))]
pub mod fixture;
#[cfg(test)]
mod golden_tests;
pub mod query;
pub mod state;

pub use apply::{apply, Applied};
pub use state::{Change, Rebuild, Record, State};
