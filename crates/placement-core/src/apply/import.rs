//! `Command::Import`: records read from a running Placement's database, written verbatim.
//!
//! An import (`placementd import --from-db`) is a sequence of batches, each one log entry.
//! Nothing is derived or renumbered: uuids, names, provider and consumer generations,
//! resource class ids and timestamps are stored as the source had them, so clients that
//! cached a generation (nova's report client) stay valid after the cut-over. Derived indexes
//! (usages, children, trait and aggregate members) follow from the records as for any write.
//!
//! # Rules (each refusal is the whole batch: a refused batch changes nothing)
//! - **Only into an empty state.** Batch 0 is refused unless there are no providers, no
//!   consumers, no custom resource classes and no custom traits (aggregates exist only on
//!   providers). The check and the first records are one entry, so no write can slip in
//!   between; a second import's batch 0 is refused the same way.
//! - **No collisions.** A record whose key (uuid, provider name, class name or id, trait
//!   name) is already stored, or appears twice, is refused: later batches never overwrite.
//! - **References resolve.** A provider's parent is stored or comes earlier in the batch,
//!   and its root is its parent's root (its own uuid without a parent); inventory classes
//!   and provider traits exist (standard or custom); each allocation names a stored provider
//!   and an existing class. Capacity is *not* checked: the source may legitimately hold
//!   usage above capacity (a ratio lowered after allocating, or Placement's own races), and
//!   an import copies, it does not judge.
//! - **Syntax** as the API would have it (`validate`'s helpers): custom names, provider
//!   names, inventory fields, amounts ≥ 1, project and user ids of 1..=255 characters,
//!   consumer types, timestamps within years 1970..=9999, a consumer with at least one
//!   allocation and each (provider, class) at most once in it.
//!
//! Left out: deleting what an import wrote. A failed import leaves what earlier batches
//! wrote; the operator starts over on a fresh cluster (the CLI says so).

use std::collections::{BTreeSet, HashMap, HashSet};

use placement_types::{
    standard, Consumer, DomainError, ErrorCode, ImportBatch, Outcome, ResourceClass,
    ResourceProvider, Timestamp, Trait, Uuid,
};

use super::validate;
use super::Step;
use crate::state::{Change, State};

/// Whether the state holds nothing an import could collide with.
fn is_empty(state: &State) -> bool {
    state.provider_count() == 0
        && state.consumer_count() == 0
        && state.custom_resource_classes().next().is_none()
        && state.custom_traits().next().is_none()
}

pub(super) fn apply(state: &State, batch: &ImportBatch) -> Step {
    let seq = batch.seq;
    let refuse = |what: String| DomainError::bad_request(format!("Import batch {seq}: {what}"));
    if seq == 0 && !is_empty(state) {
        return Err(DomainError::conflict(
            ErrorCode::Undefined,
            format!(
                "Import refused: the target already holds data ({} providers, {} consumers, \
                 {} custom resource classes, {} custom traits); an import loads only into an \
                 empty cluster.",
                state.provider_count(),
                state.consumer_count(),
                state.custom_resource_classes().count(),
                state.custom_traits().count()
            ),
        ));
    }
    let mut batch_view = Pending::default();
    let mut changes = Vec::with_capacity(
        batch.resource_classes.len()
            + batch.traits.len()
            + batch.providers.len()
            + batch.consumers.len(),
    );
    for rc in &batch.resource_classes {
        resource_class(state, &batch_view, rc).map_err(refuse)?;
        batch_view.classes.insert(rc.name.clone());
        batch_view.class_ids.insert(rc.id);
        changes.push(Change::ResourceClass(rc.name.clone(), Some(rc.clone())));
    }
    for t in &batch.traits {
        custom_trait(state, &batch_view, t).map_err(refuse)?;
        batch_view.traits.insert(t.name.clone());
        changes.push(Change::Trait(t.name.clone(), Some(t.clone())));
    }
    for p in &batch.providers {
        provider(state, &batch_view, p).map_err(refuse)?;
        batch_view.names.insert(p.name.clone());
        batch_view.providers.insert(p.uuid, p.root);
        changes.push(Change::Provider(p.uuid, Some(p.clone())));
    }
    for c in &batch.consumers {
        consumer(state, &batch_view, c).map_err(refuse)?;
        batch_view.consumers.insert(c.uuid);
        changes.push(Change::Consumer(c.uuid, Some(c.clone())));
    }
    Ok((Outcome::Done, changes))
}

/// What earlier records of the same batch add to the state.
#[derive(Default)]
struct Pending {
    classes: HashSet<String>,
    class_ids: HashSet<u32>,
    traits: HashSet<String>,
    /// provider -> its root.
    providers: HashMap<Uuid, Uuid>,
    names: HashSet<String>,
    consumers: HashSet<Uuid>,
}

impl Pending {
    fn class_exists(&self, state: &State, name: &str) -> bool {
        state.resource_class_exists(name) || self.classes.contains(name)
    }

    fn trait_exists(&self, state: &State, name: &str) -> bool {
        state.trait_exists(name) || self.traits.contains(name)
    }

    /// The root of a stored or pending provider.
    fn root_of(&self, state: &State, uuid: &Uuid) -> Option<Uuid> {
        state
            .provider(uuid)
            .map(|p| p.root)
            .or_else(|| self.providers.get(uuid).copied())
    }
}

fn time(what: &str, at: Timestamp) -> Result<(), String> {
    if at.is_valid() {
        Ok(())
    } else {
        Err(format!(
            "{what} has a time outside years 1970..=9999 ({} µs since the epoch)",
            at.0
        ))
    }
}

fn resource_class(state: &State, pending: &Pending, rc: &ResourceClass) -> Result<(), String> {
    let name = &rc.name;
    if !validate::is_custom_name(name) {
        return Err(format!("{name:?} is not a custom resource class name"));
    }
    if pending.class_exists(state, name) {
        return Err(format!("resource class {name} exists already"));
    }
    if rc.id < standard::FIRST_CUSTOM_RESOURCE_CLASS_ID
        || pending.class_ids.contains(&rc.id)
        || state.custom_resource_classes().any(|c| c.id == rc.id)
    {
        return Err(format!(
            "resource class {name} has id {}, which is taken or below the first custom id {}",
            rc.id,
            standard::FIRST_CUSTOM_RESOURCE_CLASS_ID
        ));
    }
    time(&format!("resource class {name}"), rc.created_at)?;
    time(&format!("resource class {name}"), rc.updated_at)
}

fn custom_trait(state: &State, pending: &Pending, t: &Trait) -> Result<(), String> {
    let name = &t.name;
    if !validate::is_custom_name(name) {
        return Err(format!("{name:?} is not a custom trait name"));
    }
    if pending.trait_exists(state, name) {
        return Err(format!("trait {name} exists already"));
    }
    time(&format!("trait {name}"), t.created_at)
}

fn provider(state: &State, pending: &Pending, p: &ResourceProvider) -> Result<(), String> {
    let uuid = p.uuid;
    let what = format!("resource provider {uuid}");
    if state.provider(&uuid).is_some() || pending.providers.contains_key(&uuid) {
        return Err(format!("{what} exists already"));
    }
    validate::provider_name(&p.name, Some(uuid)).map_err(|e| e.detail)?;
    if state.provider_by_name(&p.name).is_some() || pending.names.contains(&p.name) {
        return Err(format!("{what}: the name {:?} is taken", p.name));
    }
    let root = match p.parent {
        None => uuid,
        Some(parent) => pending.root_of(state, &parent).ok_or_else(|| {
            format!("{what}: its parent {parent} is not imported yet (parents come first)")
        })?,
    };
    if p.root != root {
        return Err(format!(
            "{what} has root {} but its parent chain leads to {root}",
            p.root
        ));
    }
    for (rc, inv) in &p.inventories {
        if !pending.class_exists(state, rc) {
            return Err(format!(
                "{what} has inventory of unknown resource class {rc}"
            ));
        }
        validate::inventory(uuid, rc, inv, None).map_err(|e| e.detail)?;
    }
    for t in &p.traits {
        if !pending.trait_exists(state, t) {
            return Err(format!("{what} has unknown trait {t}"));
        }
    }
    time(&what, p.created_at)?;
    time(&what, p.updated_at)
}

fn consumer(state: &State, pending: &Pending, c: &Consumer) -> Result<(), String> {
    let what = format!("consumer {}", c.uuid);
    if state.consumer(&c.uuid).is_some() || pending.consumers.contains(&c.uuid) {
        return Err(format!("{what} exists already"));
    }
    for (field, value) in [("project", &c.project_id), ("user", &c.user_id)] {
        let n = value.chars().count();
        if !(1..=validate::MAX_NAME).contains(&n) {
            return Err(format!(
                "{what} has a {field} id of {n} characters (1 to {} allowed)",
                validate::MAX_NAME
            ));
        }
    }
    if let Some(t) = &c.consumer_type {
        if !validate::is_upper_word(t) || t.len() > validate::MAX_NAME {
            return Err(format!("{what} has an invalid consumer type {t:?}"));
        }
    }
    if c.allocations.is_empty() {
        return Err(format!(
            "{what} has no allocations (placementd keeps no such consumer)"
        ));
    }
    let mut lines = BTreeSet::new();
    for a in &c.allocations {
        let known_provider =
            state.provider(&a.provider).is_some() || pending.providers.contains_key(&a.provider);
        if !known_provider {
            return Err(format!(
                "{what} has an allocation against resource provider {}, which is not imported",
                a.provider
            ));
        }
        if !pending.class_exists(state, &a.resource_class) {
            return Err(format!(
                "{what} has an allocation of unknown resource class {}",
                a.resource_class
            ));
        }
        if a.used < 1 {
            return Err(format!(
                "{what} has an allocation of {} {} (at least 1 is allowed)",
                a.used, a.resource_class
            ));
        }
        if !lines.insert((a.provider, a.resource_class.as_str())) {
            return Err(format!(
                "{what} allocates {} from resource provider {} twice",
                a.resource_class, a.provider
            ));
        }
    }
    time(&what, c.created_at)?;
    time(&what, c.updated_at)
}
