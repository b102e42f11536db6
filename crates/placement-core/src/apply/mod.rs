//! `apply`: the deterministic, total transition function of the state machine.
//!
//! Each request is checked in two steps before it is turned into [`Change`]s, so a rejected
//! command changes nothing. Errors carry Placement's own messages and codes.
//!
//! 1. **Syntax** (`validate`): the request time, names, inventory fields, amounts and ids,
//!    i.e. every rule the API checks that does not depend on the state. The API checks them
//!    before proposing a command, but the log is the one input every node applies, so a
//!    request from a buggy or hostile producer must not reach the state either: a
//!    far-future time stored in a record once made HTTP date formatting panic. `validate`'s
//!    module doc lists the rules and why each is (or is not) there.
//! 2. **State**: existence, generations, capacity, uniqueness, in-use, per command.
//!
//! Arithmetic on amounts, usages and capacities never overflows (wide or checked integers,
//! capacities compared in floating point, as Placement does), and generations never wrap: a
//! command that would bump a provider or consumer generation past `u32::MAX` is refused
//! with a conflict instead.
//!
//! Submodules by subject: `providers` (providers, inventories, traits, aggregates, resource
//! classes), `allocations` (consumers, allocations, reshaper) and `import` (records loaded
//! verbatim from a running Placement's database).

mod allocations;
mod import;
mod providers;
mod validate;

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
    let result =
        validate::check(request).and_then(|()| dispatch(state, request.at, &request.command));
    match result {
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
        Import(batch) => import::apply(state, batch),
    }
}
