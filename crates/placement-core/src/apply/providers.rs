//! Providers, inventories, resource classes, traits and aggregates.
//!
//! Rules follow Placement's objects layer (`objects/resource_provider.py`,
//! `resource_class.py`, `trait.py`) and the messages its handlers wrap them in, since the
//! conformance suite checks many of them word for word. Generation rules:
//! - inventory writes (set, create, update, delete) always bump the provider generation;
//! - trait writes bump it only when the set actually changes;
//! - aggregate writes bump it only from microversion 1.19 (`generation: Some`);
//! - renaming or re-parenting a provider does not bump it;
//! - a bump past `u32::MAX` is refused (409 `placement.concurrent_update`), never wrapped:
//!   a wrapped generation could match a client's stale one.

use std::collections::BTreeMap;

use placement_types::{
    standard, Command, DomainError, ErrorCode, Inventory, Outcome, ParentUpdate, ResourceClass,
    ResourceProvider, Timestamp, Trait, Uuid,
};

use super::Step;
use crate::state::{Change, State};

pub(super) fn apply(state: &State, at: Timestamp, command: &Command) -> Step {
    use Command::*;
    match command {
        CreateProvider { uuid, name, parent } => create_provider(state, at, *uuid, name, *parent),
        UpdateProvider { uuid, name, parent } => update_provider(state, at, *uuid, name, *parent),
        DeleteProvider { uuid } => delete_provider(state, *uuid),
        SetInventories {
            provider,
            generation,
            inventories,
        } => set_inventories(state, at, *provider, *generation, inventories),
        CreateInventory {
            provider,
            generation,
            resource_class,
            inventory,
        } => create_inventory(state, at, *provider, *generation, resource_class, inventory),
        UpdateInventory {
            provider,
            generation,
            resource_class,
            inventory,
        } => update_inventory(state, at, *provider, *generation, resource_class, inventory),
        DeleteInventory {
            provider,
            resource_class,
        } => delete_inventory(state, at, *provider, resource_class),
        DeleteAllInventories { provider } => delete_all_inventories(state, at, *provider),
        CreateResourceClass { name } => create_resource_class(state, at, name),
        EnsureResourceClass { name } => ensure_resource_class(state, at, name),
        RenameResourceClass { name, new_name } => rename_resource_class(state, at, name, new_name),
        DeleteResourceClass { name } => delete_resource_class(state, name),
        EnsureTrait { name } => ensure_trait(state, at, name),
        DeleteTrait { name } => delete_trait(state, name),
        SetProviderTraits {
            provider,
            generation,
            traits,
        } => set_provider_traits(state, at, *provider, *generation, traits),
        DeleteProviderTraits { provider } => delete_provider_traits(state, at, *provider),
        SetProviderAggregates {
            provider,
            generation,
            aggregates,
        } => set_provider_aggregates(state, at, *provider, *generation, aggregates),
        WriteAllocations { .. } | DeleteAllocations { .. } | Reshape { .. } | Import(_) => Err(
            DomainError::bad_request("allocation command routed to the provider module"),
        ),
    }
}

/// The provider, or Placement's generic not-found error for it.
pub(crate) fn get_provider(state: &State, uuid: Uuid) -> Result<&ResourceProvider, DomainError> {
    state.provider(&uuid).ok_or_else(|| {
        DomainError::not_found(format!("No resource provider with uuid {uuid} found"))
    })
}

/// Bumps a provider's generation (as Placement's `increment_generation`) and stamps it;
/// refused when the generation is already at its maximum.
pub(crate) fn bump(provider: &mut ResourceProvider, at: Timestamp) -> Result<(), DomainError> {
    provider.generation = provider.generation.checked_add(1).ok_or_else(|| {
        generation_conflict(&format!(
            "resource provider generation conflict: the generation of resource provider {} \
             is at its maximum ({}) and cannot change any more",
            provider.uuid,
            u32::MAX
        ))
    })?;
    provider.updated_at = at;
    Ok(())
}

fn provider_changed(p: ResourceProvider) -> (Outcome, Vec<Change>) {
    let change = Change::Provider(p.uuid, Some(p.clone()));
    (Outcome::Provider(Box::new(p)), vec![change])
}

fn generation_conflict(detail: &str) -> DomainError {
    DomainError::conflict(ErrorCode::ConcurrentUpdate, detail)
}

// ---- Providers ------------------------------------------------------------------------------

fn create_provider(
    state: &State,
    at: Timestamp,
    uuid: Uuid,
    name: &str,
    parent: Option<Uuid>,
) -> Step {
    let fail = |reason: &str| {
        DomainError::bad_request(format!(
            "Unable to create resource provider \"{name}\", {uuid}: Object action create failed \
             because: {reason}"
        ))
    };
    let root = match parent {
        Some(p) if p == uuid => {
            return Err(fail(
                "parent provider UUID cannot be same as UUID. Please set parent provider UUID \
                 to None if there is no parent.",
            ))
        }
        Some(p) => match state.provider(&p) {
            Some(parent) => parent.root,
            None => return Err(fail("parent provider UUID does not exist.")),
        },
        None => uuid,
    };
    let mut duplicates = Vec::new();
    if state.provider(&uuid).is_some() {
        duplicates.push(format!("uuid: {uuid}"));
    }
    if state.provider_by_name(name).is_some() {
        duplicates.push(format!("name: {name}"));
    }
    if !duplicates.is_empty() {
        return Err(DomainError::conflict(
            ErrorCode::DuplicateName,
            format!(
                "Conflicting resource provider {} already exists.",
                duplicates.join(", ")
            ),
        ));
    }
    Ok(provider_changed(ResourceProvider {
        uuid,
        name: name.to_string(),
        generation: 0,
        parent,
        root,
        created_at: at,
        updated_at: at,
        inventories: BTreeMap::new(),
        traits: Default::default(),
        aggregates: Default::default(),
    }))
}

fn update_provider(
    state: &State,
    at: Timestamp,
    uuid: Uuid,
    name: &str,
    parent: ParentUpdate,
) -> Step {
    let current = get_provider(state, uuid)?;
    let fail = |action: &str, reason: &str| {
        DomainError::bad_request(format!(
            "Unable to save resource provider {uuid}: Object action {action} failed because: \
             {reason}"
        ))
    };
    let (new_parent, allow_reparenting) = match parent {
        ParentUpdate::Keep => (current.parent, false),
        ParentUpdate::SetOnce(p) => (p, false),
        ParentUpdate::Set(p) => (p, true),
    };
    // The new root of this provider's subtree, if the parent changes.
    let mut new_root = None;
    match new_parent {
        Some(p) => {
            let Some(parent_rp) = state.provider(&p) else {
                return Err(fail("create", "parent provider UUID does not exist."));
            };
            if current.parent.is_some() && current.parent != Some(p) && !allow_reparenting {
                return Err(fail(
                    "update",
                    "re-parenting a provider is not currently allowed.",
                ));
            }
            if current.parent != Some(p) {
                if state.subtree(&uuid).contains(&p) {
                    return Err(fail(
                        "update",
                        "creating loop in the provider tree is not allowed.",
                    ));
                }
                new_root = Some(parent_rp.root);
            }
        }
        None => {
            if current.parent.is_some() {
                if !allow_reparenting {
                    return Err(fail(
                        "update",
                        "un-parenting a provider is not currently allowed.",
                    ));
                }
                new_root = Some(uuid);
            }
        }
    }
    if let Some(other) = state.provider_by_name(name) {
        if other.uuid != uuid {
            return Err(DomainError::conflict(
                ErrorCode::DuplicateName,
                format!("Conflicting resource provider {name} already exists."),
            ));
        }
    }
    let mut updated = current.clone();
    updated.name = name.to_string();
    updated.parent = new_parent;
    updated.updated_at = at;
    let mut changes = Vec::new();
    if let Some(root) = new_root {
        updated.root = root;
        for member in state.subtree(&uuid).into_iter().skip(1) {
            if let Some(rp) = state.provider(&member) {
                let mut rp = rp.clone();
                rp.root = root;
                changes.push(Change::Provider(member, Some(rp)));
            }
        }
    }
    changes.insert(0, Change::Provider(uuid, Some(updated.clone())));
    Ok((Outcome::Provider(Box::new(updated)), changes))
}

fn delete_provider(state: &State, uuid: Uuid) -> Step {
    let Some(_) = state.provider(&uuid) else {
        return Err(DomainError::not_found(format!(
            "No resource provider with uuid {uuid} found for delete"
        )));
    };
    if state.children(&uuid).next().is_some() {
        return Err(DomainError::conflict(
            ErrorCode::CannotDeleteParent,
            format!(
                "Unable to delete parent resource provider {uuid}: It has child resource \
                 providers."
            ),
        ));
    }
    if state.provider_consumers(&uuid).next().is_some() {
        return Err(DomainError::conflict(
            ErrorCode::ProviderInUse,
            format!(
                "Unable to delete resource provider {uuid}: Resource provider has allocations."
            ),
        ));
    }
    Ok((Outcome::Done, vec![Change::Provider(uuid, None)]))
}

// ---- Inventories ----------------------------------------------------------------------------

/// Classes among `classes` that have allocations on the provider, in resource-class id order,
/// joined as Placement's `InventoryInUse` message shows them.
fn classes_in_use<'a>(
    state: &State,
    provider: Uuid,
    classes: impl Iterator<Item = &'a String>,
) -> Option<String> {
    let mut in_use: Vec<&String> = classes
        .filter(|rc| state.usage(&provider, rc) > 0)
        .collect();
    if in_use.is_empty() {
        return None;
    }
    in_use.sort_by_key(|rc| {
        (
            state.resource_class_id(rc).unwrap_or(u32::MAX),
            rc.to_string(),
        )
    });
    Some(
        in_use
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    )
}

fn in_use_message(classes: &str, provider: Uuid) -> String {
    format!("Inventory for '{classes}' on resource provider '{provider}' in use.")
}

/// Replaces a provider's whole inventory (`PUT .../inventories`, and the reshaper).
/// Shrinking below current usage is allowed (Placement only logs it); removing a class that
/// has allocations is not.
pub(crate) fn replace_inventories(
    state: &State,
    provider: &ResourceProvider,
    inventories: &BTreeMap<String, Inventory>,
    at: Timestamp,
) -> Result<ResourceProvider, DomainError> {
    if let Some(rc) = inventories
        .keys()
        .find(|rc| !state.resource_class_exists(rc))
    {
        return Err(DomainError::bad_request(format!(
            "Unknown resource class in inventory for resource provider {}: No such resource \
             class {rc}.",
            provider.uuid
        )));
    }
    let removed = provider
        .inventories
        .keys()
        .filter(|rc| !inventories.contains_key(*rc));
    if let Some(classes) = classes_in_use(state, provider.uuid, removed) {
        return Err(DomainError::conflict(
            ErrorCode::InventoryInUse,
            format!(
                "update conflict: {}",
                in_use_message(&classes, provider.uuid)
            ),
        ));
    }
    let mut updated = provider.clone();
    updated.inventories = inventories.clone();
    bump(&mut updated, at)?;
    Ok(updated)
}

fn set_inventories(
    state: &State,
    at: Timestamp,
    uuid: Uuid,
    generation: u32,
    inventories: &BTreeMap<String, Inventory>,
) -> Step {
    let current = get_provider(state, uuid)?;
    if current.generation != generation {
        return Err(generation_conflict("resource provider generation conflict"));
    }
    let updated = replace_inventories(state, current, inventories, at)?;
    Ok(provider_changed(updated))
}

fn create_inventory(
    state: &State,
    at: Timestamp,
    uuid: Uuid,
    generation: Option<u32>,
    resource_class: &str,
    inventory: &Inventory,
) -> Step {
    let current = get_provider(state, uuid)?;
    if generation.is_some_and(|g| g != current.generation) {
        return Err(generation_conflict("resource provider generation conflict"));
    }
    if !state.resource_class_exists(resource_class) {
        return Err(DomainError::bad_request(format!(
            "Unable to create inventory for resource provider {uuid}: No such resource class \
             {resource_class}."
        )));
    }
    if current.inventories.contains_key(resource_class) {
        return Err(generation_conflict(&format!(
            "Update conflict: Inventory of class {resource_class} already exists on resource \
             provider {uuid}."
        )));
    }
    let mut updated = current.clone();
    updated
        .inventories
        .insert(resource_class.to_string(), inventory.clone());
    bump(&mut updated, at)?;
    Ok(provider_changed(updated))
}

fn update_inventory(
    state: &State,
    at: Timestamp,
    uuid: Uuid,
    generation: u32,
    resource_class: &str,
    inventory: &Inventory,
) -> Step {
    let current = get_provider(state, uuid)?;
    if current.generation != generation {
        return Err(generation_conflict("resource provider generation conflict"));
    }
    if !state.resource_class_exists(resource_class) {
        return Err(DomainError::not_found(format!(
            "No such resource class {resource_class}."
        )));
    }
    if !current.inventories.contains_key(resource_class) {
        return Err(DomainError::bad_request(format!(
            "No inventory record with resource class for resource provider {uuid}: No \
             inventory of class {resource_class} found."
        )));
    }
    let mut updated = current.clone();
    updated
        .inventories
        .insert(resource_class.to_string(), inventory.clone());
    bump(&mut updated, at)?;
    Ok(provider_changed(updated))
}

fn delete_inventory(state: &State, at: Timestamp, uuid: Uuid, resource_class: &str) -> Step {
    let current = get_provider(state, uuid)?;
    if !state.resource_class_exists(resource_class) {
        return Err(DomainError::not_found(format!(
            "No inventory of class {resource_class} found for delete: No such resource class \
             {resource_class}."
        )));
    }
    if state.usage(&uuid, resource_class) > 0 {
        return Err(generation_conflict(&format!(
            "Unable to delete inventory of class {resource_class}: {}",
            in_use_message(resource_class, uuid)
        )));
    }
    if !current.inventories.contains_key(resource_class) {
        return Err(DomainError::not_found(format!(
            "No inventory of class {resource_class} found for delete: No inventory of class \
             {resource_class} found for delete"
        )));
    }
    let mut updated = current.clone();
    updated.inventories.remove(resource_class);
    bump(&mut updated, at)?;
    Ok(provider_changed(updated))
}

fn delete_all_inventories(state: &State, at: Timestamp, uuid: Uuid) -> Step {
    let current = get_provider(state, uuid)?;
    if let Some(classes) = classes_in_use(state, uuid, current.inventories.keys()) {
        return Err(DomainError::conflict(
            ErrorCode::InventoryInUse,
            in_use_message(&classes, uuid),
        ));
    }
    let mut updated = current.clone();
    updated.inventories.clear();
    bump(&mut updated, at)?;
    Ok(provider_changed(updated))
}

// ---- Resource classes -----------------------------------------------------------------------

/// One more than the highest custom id (ids are never reused while their class exists);
/// refused, not wrapped, once an id of `u32::MAX` exists.
fn next_resource_class_id(state: &State) -> Result<u32, DomainError> {
    let next = match state.custom_resource_classes().map(|rc| rc.id).max() {
        None => standard::FIRST_CUSTOM_RESOURCE_CLASS_ID,
        Some(highest) => highest.checked_add(1).ok_or_else(|| {
            DomainError::conflict(
                ErrorCode::Undefined,
                "No resource class id is left: a custom resource class has the highest id.",
            )
        })?,
    };
    Ok(next.max(standard::FIRST_CUSTOM_RESOURCE_CLASS_ID))
}

fn new_resource_class(
    state: &State,
    at: Timestamp,
    name: &str,
) -> Result<ResourceClass, DomainError> {
    Ok(ResourceClass {
        id: next_resource_class_id(state)?,
        name: name.to_string(),
        created_at: at,
        updated_at: at,
    })
}

fn create_resource_class(state: &State, at: Timestamp, name: &str) -> Step {
    if state.resource_class_exists(name) {
        return Err(DomainError::conflict(
            ErrorCode::Undefined,
            format!("Conflicting resource class already exists: {name}"),
        ));
    }
    let rc = new_resource_class(state, at, name)?;
    Ok((
        Outcome::ResourceClass(rc.clone()),
        vec![Change::ResourceClass(name.to_string(), Some(rc))],
    ))
}

fn ensure_resource_class(state: &State, at: Timestamp, name: &str) -> Step {
    if state.resource_class_exists(name) {
        return Ok((Outcome::Created(false), Vec::new()));
    }
    let rc = new_resource_class(state, at, name)?;
    Ok((
        Outcome::Created(true),
        vec![Change::ResourceClass(name.to_string(), Some(rc))],
    ))
}

fn rename_resource_class(state: &State, at: Timestamp, name: &str, new_name: &str) -> Step {
    if standard::is_standard_resource_class(name) {
        return Err(DomainError::bad_request(format!(
            "Cannot update standard resource class {name}"
        )));
    }
    let Some(current) = state.custom_resource_class(name) else {
        return Err(DomainError::not_found(format!(
            "No such resource class {name}."
        )));
    };
    if new_name != name && state.resource_class_exists(new_name) {
        return Err(DomainError::conflict(
            ErrorCode::Undefined,
            format!("Resource class already exists: {new_name}"),
        ));
    }
    let mut renamed = current.clone();
    renamed.name = new_name.to_string();
    renamed.updated_at = at;
    let mut changes = vec![
        Change::ResourceClass(name.to_string(), None),
        Change::ResourceClass(new_name.to_string(), Some(renamed.clone())),
    ];
    if new_name != name {
        // Inventories and allocations refer to classes by name here, so a rename carries
        // them along (Placement refers to them by id, which a rename keeps).
        for p in state.providers() {
            if let Some(inv) = p.inventories.get(name) {
                let mut p = p.clone();
                p.inventories.insert(new_name.to_string(), inv.clone());
                p.inventories.remove(name);
                changes.push(Change::Provider(p.uuid, Some(p)));
            }
        }
        for c in state.consumers() {
            if c.allocations.iter().any(|a| a.resource_class == name) {
                let mut c = c.clone();
                for a in &mut c.allocations {
                    if a.resource_class == name {
                        a.resource_class = new_name.to_string();
                    }
                }
                changes.push(Change::Consumer(c.uuid, Some(c)));
            }
        }
    } else {
        changes.remove(0);
    }
    Ok((Outcome::ResourceClass(renamed), changes))
}

fn delete_resource_class(state: &State, name: &str) -> Step {
    if standard::is_standard_resource_class(name) {
        return Err(DomainError::bad_request(format!(
            "Error in delete resource class: Cannot delete standard resource class {name}."
        )));
    }
    if state.custom_resource_class(name).is_none() {
        return Err(DomainError::not_found(format!(
            "No such resource class {name}."
        )));
    }
    if state.resource_class_in_use(name) {
        return Err(DomainError::conflict(
            ErrorCode::Undefined,
            format!(
                "Error in delete resource class: Cannot delete resource class {name}. Class is \
                 in use in inventory."
            ),
        ));
    }
    Ok((
        Outcome::Done,
        vec![Change::ResourceClass(name.to_string(), None)],
    ))
}

// ---- Traits ---------------------------------------------------------------------------------

fn ensure_trait(state: &State, at: Timestamp, name: &str) -> Step {
    if state.trait_exists(name) {
        return Ok((Outcome::Created(false), Vec::new()));
    }
    let t = Trait {
        name: name.to_string(),
        created_at: at,
    };
    Ok((
        Outcome::Created(true),
        vec![Change::Trait(name.to_string(), Some(t))],
    ))
}

fn delete_trait(state: &State, name: &str) -> Step {
    if !state.trait_exists(name) {
        return Err(DomainError::not_found(format!("No such trait(s): {name}.")));
    }
    if !name.starts_with("CUSTOM_") {
        return Err(DomainError::bad_request(format!(
            "Cannot delete standard trait {name}."
        )));
    }
    if state.trait_in_use(name) {
        return Err(DomainError::conflict(
            ErrorCode::Undefined,
            format!("The trait {name} is in use by a resource provider."),
        ));
    }
    Ok((Outcome::Done, vec![Change::Trait(name.to_string(), None)]))
}

fn set_provider_traits(
    state: &State,
    at: Timestamp,
    uuid: Uuid,
    generation: u32,
    traits: &std::collections::BTreeSet<String>,
) -> Step {
    let current = get_provider(state, uuid)?;
    if current.generation != generation {
        return Err(generation_conflict(
            "Resource provider's generation already changed. Please update the generation and \
             try again.",
        ));
    }
    let missing: Vec<&str> = traits
        .iter()
        .filter(|t| !state.trait_exists(t))
        .map(|t| t.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(DomainError::bad_request(format!(
            "No such trait {}",
            missing.join(", ")
        )));
    }
    if current.traits == *traits {
        return Ok((Outcome::Provider(Box::new(current.clone())), Vec::new()));
    }
    let mut updated = current.clone();
    updated.traits = traits.clone();
    bump(&mut updated, at)?;
    Ok(provider_changed(updated))
}

fn delete_provider_traits(state: &State, at: Timestamp, uuid: Uuid) -> Step {
    let current = get_provider(state, uuid)?;
    if current.traits.is_empty() {
        return Ok((Outcome::Provider(Box::new(current.clone())), Vec::new()));
    }
    let mut updated = current.clone();
    updated.traits.clear();
    bump(&mut updated, at)?;
    Ok(provider_changed(updated))
}

// ---- Aggregates -----------------------------------------------------------------------------

fn set_provider_aggregates(
    state: &State,
    at: Timestamp,
    uuid: Uuid,
    generation: Option<u32>,
    aggregates: &std::collections::BTreeSet<Uuid>,
) -> Step {
    let current = get_provider(state, uuid)?;
    let mut updated = current.clone();
    updated.aggregates = aggregates.clone();
    match generation {
        Some(g) => {
            if g != current.generation {
                return Err(generation_conflict(
                    "Resource provider's generation already changed. Please update the \
                     generation and try again.",
                ));
            }
            bump(&mut updated, at)?;
        }
        None => {
            if current.aggregates == *aggregates {
                return Ok((Outcome::Provider(Box::new(current.clone())), Vec::new()));
            }
        }
    }
    Ok(provider_changed(updated))
}
