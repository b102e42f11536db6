//! Providers, inventories, resource classes, traits and aggregates.

use placement_types::{Command, Timestamp};

use super::Step;
use crate::state::State;

pub(super) fn apply(state: &State, at: Timestamp, command: &Command) -> Step {
    let _ = (state, at, command);
    Err(placement_types::DomainError::bad_request("not implemented"))
}
