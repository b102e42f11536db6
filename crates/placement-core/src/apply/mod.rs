//! `apply`: the deterministic, total transition function of the state machine.
//!
//! Each command is checked against the state first and only then turned into [`Change`]s, so
//! a rejected command changes nothing. Errors carry Placement's own messages and codes.
//!
//! Submodules by subject: `providers` (providers, inventories, traits, aggregates, resource
//! classes) and `allocations` (consumers, allocations, reshaper).

mod allocations;
mod providers;

use placement_types::{ApplyResult, Command, DomainError, Outcome, Request, Timestamp};

use crate::state::{Change, State};

/// What applying one request produced: the result returned to the proposer, and the record
/// changes to persist (empty when the command was rejected).
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub result: ApplyResult,
    pub changes: Vec<Change>,
}

/// The output of one command handler: the outcome and the changes, or a rejection.
pub(crate) type Step = Result<(Outcome, Vec<Change>), DomainError>;

/// Applies one request to a read-only view of the state. The caller persists `changes` (in
/// the same write batch as the applied log id) and then calls [`State::commit`] with them.
/// Never panics, whatever the command.
pub fn apply(state: &State, request: &Request) -> Applied {
    match dispatch(state, request.at, &request.command) {
        Ok((outcome, changes)) => Applied {
            result: Ok(outcome),
            changes,
        },
        Err(err) => Applied {
            result: Err(err),
            changes: Vec::new(),
        },
    }
}

fn dispatch(state: &State, at: Timestamp, command: &Command) -> Step {
    use Command::*;
    match command {
        CreateProvider { .. }
        | UpdateProvider { .. }
        | DeleteProvider { .. }
        | SetInventories { .. }
        | CreateInventory { .. }
        | UpdateInventory { .. }
        | DeleteInventory { .. }
        | DeleteAllInventories { .. }
        | CreateResourceClass { .. }
        | EnsureResourceClass { .. }
        | RenameResourceClass { .. }
        | DeleteResourceClass { .. }
        | EnsureTrait { .. }
        | DeleteTrait { .. }
        | SetProviderTraits { .. }
        | DeleteProviderTraits { .. }
        | SetProviderAggregates { .. } => providers::apply(state, at, command),
        WriteAllocations { .. } | DeleteAllocations { .. } | Reshape { .. } => {
            allocations::apply(state, at, command)
        }
    }
}
