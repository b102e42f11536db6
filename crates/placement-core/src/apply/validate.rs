//! The syntax of a request, checked before `apply` reads the state.
//!
//! Why this exists: every node applies every log entry, so whatever a [`Request`] holds ends
//! up in every node's records. The API validates a command before proposing it (Placement's
//! JSON schemas, with jsonschema's words), but the log can also be fed by a buggy or hostile
//! producer: a peer forwarding a write it built itself, a tool writing entries, a future
//! client of the log. `apply` must stay total and keep the state meaningful for any entry,
//! so it re-checks here every rule the API checks that does not depend on the state, and
//! refuses the whole command (400, nothing changed, the same on every node) when one fails.
//! What slipped through before this existed: a far-future `at` stored in a record made
//! every HTTP date rendering of it panic; a negative total or an infinite allocation ratio
//! would make capacity meaningless.
//!
//! The rules mirror the API, no more: every request the API builds passes them (including
//! the odd ones Placement accepts, such as a zero or negative allocation ratio whose capacity
//! is still ≥ 0, or `min_unit > max_unit`), so a valid client never meets these messages;
//! where Placement has words for a rule, they are used.
//!
//! - the request time: from the epoch to the end of year 9999 ([`Timestamp::is_valid`]);
//! - provider names: at most 200 characters, and not empty when a provider is created (the
//!   objects layer's `name is required`; a rename to `""` is allowed, as in Placement);
//! - names that create something: custom resource classes and traits match
//!   `CUSTOM_[A-Z0-9_]+` and have at most 255 characters; a provider's traits have 1..=255
//!   characters; allocation classes and `POST .../inventories`' class match `[A-Z0-9_]+`;
//! - inventory records: `total` 1..=MAX_INT, `reserved` 0..=MAX_INT, `min_unit`, `max_unit`
//!   and `step_size` 1..=MAX_INT, `allocation_ratio` finite and ≤ `SQL_SP_FLOAT_MAX`, and
//!   (except in a reshape, as in Placement) `int((total - reserved) * ratio) ≥ 0`;
//! - allocations: every amount ≥ 1, a provider and class at most once per consumer, a
//!   consumer at most once per command; project and user ids of 1..=255 characters; a
//!   consumer type matching `[A-Z0-9_]+` with at most 255 characters;
//! - a reshape names each provider's inventories at most once.
//!
//! Left out on purpose:
//! - names that are only looked up (the class of `PUT`/`DELETE .../inventories/{rc}`, a
//!   class or trait to delete, a class to rename): an impossible name is simply not found;
//! - inventory records under a name that cannot be a resource class: the API passes them
//!   unchecked (the schema's `patternProperties` does not cover them) and the state check
//!   refuses the class with Placement's message, so none of the record is ever stored;
//! - the capacity rule of microversions before 1.26 (capacity > 0): the command does not
//!   carry the microversion; the API checks it, this module the weaker rule of 1.26+.

use std::collections::BTreeSet;

use placement_types::{
    standard, Command, ConsumerTypeWrite, ConsumerWrite, DomainError, Inventory, Request,
    ReshapeInventory, Timestamp, Uuid, MAX_INT,
};

/// Placement's `SQL_SP_FLOAT_MAX`: the largest allocation ratio (a single-precision column).
pub const SQL_SP_FLOAT_MAX: f64 = 3.40282e38;
/// The longest provider name (`maxLength` of the provider schemas).
pub const MAX_PROVIDER_NAME: usize = 200;
/// The longest resource class, trait, project, user and consumer type name.
pub const MAX_NAME: usize = 255;

/// Checks everything about `request` that does not depend on the state.
pub(super) fn check(request: &Request) -> Result<(), DomainError> {
    check_time(request.at)?;
    use Command::*;
    match &request.command {
        CreateProvider { uuid, name, .. } => provider_name(name, Some(*uuid)),
        UpdateProvider { name, .. } => provider_name(name, None),
        SetInventories {
            provider,
            inventories,
            ..
        } => inventories
            .iter()
            .try_for_each(|(rc, inv)| inventory(*provider, rc, inv, Some("update"))),
        CreateInventory {
            provider,
            resource_class,
            inventory: inv,
            ..
        } => {
            class_pattern(resource_class, "inventory")?;
            inventory(*provider, resource_class, inv, Some("create"))
        }
        UpdateInventory {
            provider,
            resource_class,
            inventory: inv,
            ..
        } => inventory(*provider, resource_class, inv, Some("update")),
        CreateResourceClass { name } | EnsureResourceClass { name } => custom_resource_class(name),
        RenameResourceClass { new_name, .. } => custom_resource_class(new_name),
        EnsureTrait { name } => custom_trait(name),
        SetProviderTraits { traits, .. } => traits.iter().try_for_each(|t| provider_trait(t)),
        WriteAllocations { consumers } => consumer_writes(consumers),
        Reshape {
            inventories,
            allocations,
        } => {
            reshape_inventories(inventories)?;
            consumer_writes(allocations)
        }
        DeleteProvider { .. }
        | DeleteInventory { .. }
        | DeleteAllInventories { .. }
        | DeleteResourceClass { .. }
        | DeleteTrait { .. }
        | DeleteProviderTraits { .. }
        | SetProviderAggregates { .. }
        | DeleteAllocations { .. } => Ok(()),
        // Checked record by record with the helpers below, by `import::apply`, which walks
        // the records anyway.
        Import(_) => Ok(()),
    }
}

fn check_time(at: Timestamp) -> Result<(), DomainError> {
    if at.is_valid() {
        Ok(())
    } else {
        Err(DomainError::bad_request(format!(
            "Invalid request time {} (microseconds since the epoch): it must lie between \
             1970-01-01 and 9999-12-31.",
            at.0
        )))
    }
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

// ---- Names ----------------------------------------------------------------------------------

/// `creating`: the uuid of the provider being created (an empty name is refused then only).
pub(super) fn provider_name(name: &str, creating: Option<Uuid>) -> Result<(), DomainError> {
    if let Some(uuid) = creating.filter(|_| name.is_empty()) {
        return Err(DomainError::bad_request(format!(
            "Unable to create resource provider \"{name}\", {uuid}: Object action create \
             failed because: name is required"
        )));
    }
    if chars(name) > MAX_PROVIDER_NAME {
        return Err(DomainError::bad_request(format!(
            "Invalid resource provider name: it has {} characters, at most \
             {MAX_PROVIDER_NAME} are allowed.",
            chars(name)
        )));
    }
    Ok(())
}

/// `[A-Z0-9_]+`: Placement's `RC_PATTERN` (and consumer type pattern).
pub(super) fn is_upper_word(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// `CUSTOM_[A-Z0-9_]+` with at most [`MAX_NAME`] characters.
pub(super) fn is_custom_name(s: &str) -> bool {
    s.len() <= MAX_NAME && s.strip_prefix("CUSTOM_").is_some_and(is_upper_word)
}

/// Whether `name` could name a resource class: a standard one or a custom one's syntax.
fn could_be_resource_class(name: &str) -> bool {
    standard::is_standard_resource_class(name) || is_custom_name(name)
}

fn class_pattern(name: &str, what: &str) -> Result<(), DomainError> {
    if is_upper_word(name) {
        Ok(())
    } else {
        Err(DomainError::bad_request(format!(
            "Invalid resource class name {name:?} in {what}: it must match '^[A-Z0-9_]+$'."
        )))
    }
}

fn custom_resource_class(name: &str) -> Result<(), DomainError> {
    if is_custom_name(name) {
        Ok(())
    } else {
        Err(DomainError::bad_request(
            "The resource class is invalid. A valid custom resource class must be no longer \
             than 255 characters, start with the prefix \"CUSTOM_\" and use following \
             characters: \"A\"-\"Z\", \"0\"-\"9\" and \"_\"",
        ))
    }
}

fn custom_trait(name: &str) -> Result<(), DomainError> {
    if is_custom_name(name) {
        Ok(())
    } else {
        Err(DomainError::bad_request(
            "The trait is invalid. A valid trait must be no longer than 255 characters, start \
             with the prefix \"CUSTOM_\" and use following characters: \"A\"-\"Z\", \"0\"-\"9\" \
             and \"_\"",
        ))
    }
}

fn provider_trait(name: &str) -> Result<(), DomainError> {
    let n = chars(name);
    if (1..=MAX_NAME).contains(&n) {
        Ok(())
    } else {
        Err(DomainError::bad_request(format!(
            "Invalid trait name of {n} characters: a trait name has 1 to {MAX_NAME} characters."
        )))
    }
}

// ---- Inventories ----------------------------------------------------------------------------

/// One inventory record. `capacity_rule`: the action word of Placement's capacity message
/// (`update` / `create`), or `None` where Placement does not check capacity (reshaper).
pub(super) fn inventory(
    provider: Uuid,
    rc: &str,
    inv: &Inventory,
    capacity_rule: Option<&str>,
) -> Result<(), DomainError> {
    if !could_be_resource_class(rc) {
        return Ok(()); // refused by the state check (see the module doc)
    }
    let invalid = |what: String| {
        DomainError::bad_request(format!(
            "Invalid inventory for '{rc}' on resource provider '{provider}': {what}."
        ))
    };
    let fields = [
        ("total", inv.total, 1),
        ("reserved", inv.reserved, 0),
        ("min_unit", inv.min_unit, 1),
        ("max_unit", inv.max_unit, 1),
        ("step_size", inv.step_size, 1),
    ];
    for (name, value, min) in fields {
        if !(min..=MAX_INT).contains(&value) {
            return Err(invalid(format!(
                "{name} {value} is not between {min} and {MAX_INT}"
            )));
        }
    }
    let ratio = inv.allocation_ratio;
    if !ratio.is_finite() || ratio > SQL_SP_FLOAT_MAX {
        return Err(invalid(format!(
            "allocation_ratio {ratio:?} is not a finite number of at most {SQL_SP_FLOAT_MAX:e}"
        )));
    }
    // Placement's `_validate_inventory_capacity` from 1.26, `int()` truncating toward zero.
    // The fields are bounded above, so neither the difference nor the product overflows.
    let capacity = ((inv.total - inv.reserved) as f64 * ratio) as i64;
    match capacity_rule {
        Some(action) if capacity < 0 => Err(DomainError::bad_request(format!(
            "Unable to {action} inventory for resource provider {provider}: Invalid inventory \
             for '{rc}' on resource provider '{provider}'. The reserved value is greater than \
             total."
        ))),
        _ => Ok(()),
    }
}

fn reshape_inventories(inventories: &[ReshapeInventory]) -> Result<(), DomainError> {
    let mut seen = BTreeSet::new();
    for inv in inventories {
        if !seen.insert(inv.provider) {
            return Err(DomainError::bad_request(format!(
                "Resource provider {} named twice in inventories",
                inv.provider
            )));
        }
        for (rc, record) in &inv.inventories {
            inventory(inv.provider, rc, record, None)?;
        }
    }
    Ok(())
}

// ---- Allocations ----------------------------------------------------------------------------

fn consumer_writes(writes: &[ConsumerWrite]) -> Result<(), DomainError> {
    let mut seen = BTreeSet::new();
    for w in writes {
        if !seen.insert(w.consumer) {
            return Err(DomainError::bad_request(format!(
                "Consumer {} named twice in one request",
                w.consumer
            )));
        }
        consumer_write(w)?;
    }
    Ok(())
}

fn consumer_write(w: &ConsumerWrite) -> Result<(), DomainError> {
    let c = w.consumer;
    for (field, value) in [("project_id", &w.project_id), ("user_id", &w.user_id)] {
        let n = chars(value);
        if !(1..=MAX_NAME).contains(&n) {
            return Err(DomainError::bad_request(format!(
                "Invalid {field} of {n} characters for consumer {c}: it must have 1 to \
                 {MAX_NAME} characters."
            )));
        }
    }
    if let ConsumerTypeWrite::Set(t) = &w.consumer_type {
        if !is_upper_word(t) || t.len() > MAX_NAME {
            return Err(DomainError::bad_request(format!(
                "Invalid consumer_type {t:?} for consumer {c}: it must match '^[A-Z0-9_]+$' \
                 and have at most {MAX_NAME} characters."
            )));
        }
    }
    let mut lines = BTreeSet::new();
    for a in &w.allocations {
        class_pattern(&a.resource_class, "allocations")?;
        if a.used < 1 {
            return Err(DomainError::bad_request(format!(
                "Invalid allocation of {} {} from resource provider {} for consumer {c}: an \
                 amount must be at least 1.",
                a.used, a.resource_class, a.provider
            )));
        }
        if !lines.insert((a.provider, a.resource_class.as_str())) {
            return Err(DomainError::bad_request(format!(
                "Resource class {} named twice for resource provider {} in the allocations \
                 of consumer {c}",
                a.resource_class, a.provider
            )));
        }
    }
    Ok(())
}
