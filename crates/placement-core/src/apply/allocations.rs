//! Consumers, allocations and the reshaper.
//!
//! The rules are Placement's (`objects/allocation.py`, `objects/consumer.py`,
//! `objects/reshaper.py` and the handlers that wrap their errors), replayed step by step so
//! that the first error Placement would raise is the one we raise, with its text:
//!
//! 1. **Consumer generations**, consumer by consumer in request order: from microversion 1.28
//!    ([`GenerationCheck::Expect`]) an existing consumer must be named with its generation,
//!    a new one with `null` (409 `placement.concurrent_update`).
//! 2. **Providers exist** for every allocation line (400).
//! 3. **Resource classes exist** for every line (400).
//! 4. **Inventory, constraints, capacity**, line by line (409): the provider must have
//!    inventory of the class; `min_unit ≤ used ≤ max_unit` and `used % step_size == 0`;
//!    and `used_by_others + Σ requested ≤ (total − reserved) × allocation_ratio`, where
//!    `used_by_others` excludes the allocations of every consumer the command rewrites (a
//!    write *replaces* a consumer's whole set) and `Σ requested` sums all lines of the
//!    command on that provider and class, across consumers. A write that leaves a provider
//!    over capacity is still accepted when it does not make the overage worse (Placement's
//!    rule for inventories shrunk under existing allocations), so a state within capacity
//!    is never pushed over it.
//!
//! Amounts come from clients and may be as large as `i64::MAX` (`validate` only bounds them
//! below), so sums of amounts and usages are taken in `i128`, which no sum of `i64`s a
//! command can hold overflows, and capacity is compared in floating point, as Placement
//! does. A write whose resulting usage would not fit an `i64` is refused as exceeding the
//! capacity, which keeps every usage of the state (`State::usage`) within `i64`.
//!
//! Effects of an accepted write, as Placement has them:
//! - each rewritten consumer gets generation + 1 (a new one starts at 1; a consumer at
//!   `u32::MAX` cannot be rewritten, only emptied or deleted: 409), the request's
//!   project, user and (from 1.38) consumer type, and `updated_at = at`; a consumer whose
//!   set becomes empty is deleted (Placement deletes consumers without allocations);
//! - every provider *named* in the written lines gets generation + 1 and `updated_at = at`,
//!   once per command (refused with a 409, not wrapped, past `u32::MAX`). This includes the
//!   providers of a consumer that is being emptied, but NOT a provider a consumer merely
//!   moves away from in a non-empty rewrite, and NOT the
//!   providers of `DELETE /allocations/{consumer}`: Placement does not bump those, and its
//!   test suite observes the generations (`allocations.yaml` expects 7 after a delete).
//!
//! The reshaper runs the same checks between an *interim* and a *final* inventory per
//! provider, like `objects/reshaper.py`: interim = old ∪ new inventories (so allocations can
//! move before classes disappear), then allocations, then the final inventories, which fail
//! with `placement.inventory.inuse` if a removed class still has allocations. Each stage
//! bumps the provider generation as Placement's does (interim only for a non-empty new set).
//!
//! Left out: Placement keeps an allocation-less consumer record when a brand-new consumer is
//! written with an empty set; here a consumer with no allocations never exists, so its next
//! write expects `null` again rather than generation 0.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use placement_types::{
    Allocation, Command, Consumer, ConsumerTypeWrite, ConsumerWrite, DomainError, ErrorCode,
    GenerationCheck, Inventory, Outcome, ReshapeInventory, ResourceProvider, Timestamp, Uuid,
};

use super::providers::bump;
use super::Step;
use crate::state::{Change, State};

pub(super) fn apply(state: &State, at: Timestamp, command: &Command) -> Step {
    match command {
        Command::WriteAllocations { consumers } => write_allocations(state, at, consumers),
        Command::DeleteAllocations { consumer } => delete_allocations(state, *consumer),
        Command::Reshape {
            inventories,
            allocations,
        } => reshape(state, at, inventories, allocations),
        _ => Err(DomainError::bad_request(
            "provider command routed to the allocations module",
        )),
    }
}

/// Why an allocation write was refused, before it is worded for the endpoint that asked
/// (`PUT`/`POST /allocations` and `POST /reshaper` wrap the same causes differently).
#[derive(Debug, Clone, PartialEq)]
enum Refusal {
    /// Full message: `consumer generation conflict - expected … but got …`.
    ConsumerGeneration(String),
    /// An allocation names a provider that does not exist.
    NoSuchProvider(Uuid),
    /// A line names an unknown resource class (the consumer is the one of that line).
    NoSuchClass {
        consumer: Option<Uuid>,
        class: String,
    },
    /// Placement's `InvalidInventory` family: no inventory, constraints, capacity.
    Invalid(String),
    /// A reshape would remove inventory that still has allocations.
    InUse(String),
    /// A generation would pass its maximum; the error is final.
    Exhausted(DomainError),
}

impl Refusal {
    /// The wording of `PUT /allocations/{c}` and `POST /allocations`. The POST handler
    /// words an unknown class differently ("Unable to allocate inventory No such …"); it
    /// rewrites that one prefix itself, since both endpoints share this command.
    fn for_allocations(self) -> DomainError {
        match self {
            Refusal::ConsumerGeneration(msg) => {
                DomainError::conflict(ErrorCode::ConcurrentUpdate, msg)
            }
            Refusal::NoSuchProvider(p) => DomainError::bad_request(no_such_provider(p)),
            Refusal::NoSuchClass {
                consumer: Some(consumer),
                class,
            } => DomainError::bad_request(format!(
                "Unable to allocate inventory for consumer {consumer}: No such resource class \
                 {class}."
            )),
            Refusal::NoSuchClass {
                consumer: None,
                class,
            } => DomainError::bad_request(format!(
                "Unable to allocate inventory No such resource class {class}."
            )),
            Refusal::Invalid(msg) | Refusal::InUse(msg) => DomainError::conflict(
                ErrorCode::Undefined,
                format!("Unable to allocate inventory: {msg}"),
            ),
            Refusal::Exhausted(e) => e,
        }
    }

    /// The wording of `POST /reshaper` (`handlers/reshaper.py`).
    fn for_reshaper(self) -> DomainError {
        match self {
            Refusal::NoSuchClass { class, .. } => DomainError::bad_request(format!(
                "malformed reshaper data: No such resource class {class}."
            )),
            Refusal::InUse(msg) => {
                DomainError::conflict(ErrorCode::InventoryInUse, format!("update conflict: {msg}"))
            }
            other => other.for_allocations(),
        }
    }
}

fn no_such_provider(p: Uuid) -> String {
    format!("Allocation for resource provider '{p}' that does not exist.")
}

// ---- Commands ------------------------------------------------------------------------------

fn write_allocations(state: &State, at: Timestamp, writes: &[ConsumerWrite]) -> Step {
    let mut providers = Providers::new(state);
    let consumers =
        plan_writes(state, at, writes, &mut providers).map_err(Refusal::for_allocations)?;
    Ok((Outcome::Done, finish(consumers, providers)))
}

fn delete_allocations(state: &State, consumer: Uuid) -> Step {
    match state.consumer(&consumer) {
        Some(_) => Ok((Outcome::Done, vec![Change::Consumer(consumer, None)])),
        None => Err(DomainError::not_found(format!(
            "No allocations for consumer '{consumer}'"
        ))),
    }
}

fn reshape(
    state: &State,
    at: Timestamp,
    inventories: &[ReshapeInventory],
    writes: &[ConsumerWrite],
) -> Step {
    // 1. Every provider named in `inventories` (once each: `validate`) exists and is at the
    // stated generation.
    for inv in inventories {
        let Some(rp) = state.provider(&inv.provider) else {
            return Err(DomainError::bad_request(format!(
                "Resource provider {p} in inventories not found: No resource provider with \
                 uuid {p} found",
                p = inv.provider
            ))
            .with_code(ErrorCode::ProviderNotFound));
        };
        if rp.generation != inv.generation {
            return Err(DomainError::conflict(
                ErrorCode::ConcurrentUpdate,
                format!(
                    "resource provider generation conflict for provider {}: actual: {}, \
                     given: {}",
                    inv.provider, rp.generation, inv.generation
                ),
            ));
        }
    }
    // 2./3. Consumer generations and allocation providers, before any inventory moves.
    check_consumers(state, writes).map_err(Refusal::for_reshaper)?;

    // 4. Interim inventories: everything wanted at the end plus everything being removed.
    let mut providers = Providers::new(state);
    for inv in inventories.iter().filter(|i| !i.inventories.is_empty()) {
        if let Some(class) = inv
            .inventories
            .keys()
            .find(|c| !state.resource_class_exists(c))
        {
            return Err(Refusal::NoSuchClass {
                consumer: None,
                class: class.clone(),
            }
            .for_reshaper());
        }
        let rp = providers
            .touch(inv.provider, at)
            .map_err(Refusal::for_reshaper)?;
        for (class, new) in &inv.inventories {
            rp.inventories.insert(class.clone(), new.clone());
        }
    }

    // 5. Allocations, checked against the interim inventories.
    let consumers =
        plan_writes(state, at, writes, &mut providers).map_err(Refusal::for_reshaper)?;

    // 6. Final inventories: a class may go only if nothing is allocated from it any more.
    let usage = UsageAfter::new(state, &consumers);
    // (Classes of non-empty sets were checked at the interim stage; empty sets have none.)
    for inv in inventories {
        let rp = providers
            .touch(inv.provider, at)
            .map_err(Refusal::for_reshaper)?;
        let mut in_use: Vec<&String> = rp
            .inventories
            .keys()
            .filter(|c| !inv.inventories.contains_key(*c) && usage.get(inv.provider, c) > 0)
            .collect();
        if !in_use.is_empty() {
            in_use.sort_by_key(|c| state.resource_class_id(c));
            let classes: Vec<&str> = in_use.iter().map(|c| c.as_str()).collect();
            return Err(Refusal::InUse(format!(
                "Inventory for '{}' on resource provider '{}' in use.",
                classes.join(", "),
                inv.provider
            ))
            .for_reshaper());
        }
        rp.inventories = inv.inventories.clone();
    }
    Ok((Outcome::Done, finish(consumers, providers)))
}

// ---- The allocation write, shared by both commands -----------------------------------------

/// The providers a command changes, copied on first touch. Every touch is one generation
/// bump, as every `increment_generation()` is in Placement.
struct Providers<'s> {
    state: &'s State,
    changed: BTreeMap<Uuid, ResourceProvider>,
}

impl<'s> Providers<'s> {
    fn new(state: &'s State) -> Self {
        Providers {
            state,
            changed: BTreeMap::new(),
        }
    }

    /// The provider's inventories as the command sees them so far.
    fn inventories(&self, uuid: Uuid) -> Option<&BTreeMap<String, Inventory>> {
        self.changed
            .get(&uuid)
            .or_else(|| self.state.provider(&uuid))
            .map(|p| &p.inventories)
    }

    /// Marks a provider changed: generation + 1 and `updated_at = at`, and returns it for
    /// further edits. Refused for a generation at its maximum, and for a provider that does
    /// not exist (which callers have ruled out before).
    fn touch(&mut self, uuid: Uuid, at: Timestamp) -> Result<&mut ResourceProvider, Refusal> {
        let rp = match self.changed.entry(uuid) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => match self.state.provider(&uuid) {
                Some(p) => e.insert(p.clone()),
                None => return Err(Refusal::NoSuchProvider(uuid)),
            },
        };
        bump(rp, at).map_err(Refusal::Exhausted)?;
        Ok(rp)
    }
}

/// The records to write: consumers (replaced or removed) and the touched providers.
fn finish(consumers: Vec<(Uuid, Option<Consumer>)>, providers: Providers<'_>) -> Vec<Change> {
    let mut changes: Vec<Change> = providers
        .changed
        .into_iter()
        .map(|(uuid, rp)| Change::Provider(uuid, Some(rp)))
        .collect();
    changes.extend(
        consumers
            .into_iter()
            .map(|(uuid, c)| Change::Consumer(uuid, c)),
    );
    changes
}

/// Steps 1 and 2: consumer generations, then allocation providers. (Each consumer is named
/// once: `validate`.)
fn check_consumers(state: &State, writes: &[ConsumerWrite]) -> Result<(), Refusal> {
    for w in writes {
        check_generation(state.consumer(&w.consumer), w.generation)?;
    }
    for w in writes {
        if let Some(a) = w
            .allocations
            .iter()
            .find(|a| state.provider(&a.provider).is_none())
        {
            return Err(Refusal::NoSuchProvider(a.provider));
        }
    }
    Ok(())
}

/// Placement's `ensure_consumer` generation rule (`handlers/util.py`).
fn check_generation(existing: Option<&Consumer>, check: GenerationCheck) -> Result<(), Refusal> {
    let GenerationCheck::Expect(given) = check else {
        return Ok(());
    };
    let given_text = given.map_or_else(|| "None".to_string(), |g| g.to_string());
    match (existing, given) {
        (Some(c), Some(g)) if c.generation == g => Ok(()),
        (Some(c), _) => Err(Refusal::ConsumerGeneration(format!(
            "consumer generation conflict - expected {} but got {given_text}",
            c.generation
        ))),
        (None, None) => Ok(()),
        (None, Some(g)) => Err(Refusal::ConsumerGeneration(format!(
            "consumer generation conflict - expected null but got {g}"
        ))),
    }
}

/// One line of the write as Placement's `replace_all` sees it: `used == 0` marks the
/// removal of an allocation the consumer holds (how an emptied consumer is written).
struct Line<'a> {
    consumer: Uuid,
    provider: Uuid,
    class: &'a str,
    used: i64,
}

/// Checks a set of consumer writes against `providers`' inventories, bumps the providers
/// they name, and returns the consumer records to write.
fn plan_writes(
    state: &State,
    at: Timestamp,
    writes: &[ConsumerWrite],
    providers: &mut Providers<'_>,
) -> Result<Vec<(Uuid, Option<Consumer>)>, Refusal> {
    check_consumers(state, writes)?;

    // The lines, in request order; an empty set removes what the consumer holds.
    let mut lines: Vec<Line<'_>> = Vec::new();
    for w in writes {
        if w.allocations.is_empty() {
            if let Some(c) = state.consumer(&w.consumer) {
                lines.extend(c.allocations.iter().map(|a| Line {
                    consumer: w.consumer,
                    provider: a.provider,
                    class: &a.resource_class,
                    used: 0,
                }));
            }
        } else {
            lines.extend(w.allocations.iter().map(|a| Line {
                consumer: w.consumer,
                provider: a.provider,
                class: &a.resource_class,
                used: a.used,
            }));
        }
    }

    // 3. Resource classes exist.
    if let Some(l) = lines.iter().find(|l| !state.resource_class_exists(l.class)) {
        return Err(Refusal::NoSuchClass {
            consumer: Some(l.consumer),
            class: l.class.to_string(),
        });
    }

    // 4a. Every provider has inventory of at least one class of the request.
    let classes: BTreeSet<&str> = lines.iter().map(|l| l.class).collect();
    let mut missing: BTreeSet<Uuid> = BTreeSet::new();
    for l in &lines {
        let has_any = providers
            .inventories(l.provider)
            .is_some_and(|inv| classes.iter().any(|c| inv.contains_key(*c)));
        if !has_any {
            missing.insert(l.provider);
        }
    }
    if !missing.is_empty() {
        let mut by_id: Vec<&str> = classes.iter().copied().collect();
        by_id.sort_by_key(|c| state.resource_class_id(c));
        let provs: Vec<String> = missing.iter().map(Uuid::to_string).collect();
        return Err(Refusal::Invalid(invalid_inventory(
            &by_id.join(", "),
            &provs.join(", "),
        )));
    }

    // 4b. Line by line: inventory, unit constraints, capacity. Sums in i128 (module doc).
    let rewritten: BTreeSet<Uuid> = writes.iter().map(|w| w.consumer).collect();
    let mut released: HashMap<(Uuid, &str), i128> = HashMap::new();
    for uuid in &rewritten {
        for a in state
            .consumer(uuid)
            .map(|c| c.allocations.as_slice())
            .unwrap_or_default()
        {
            *released
                .entry((a.provider, a.resource_class.as_str()))
                .or_default() += i128::from(a.used);
        }
    }
    let mut requested: HashMap<(Uuid, &str), i128> = HashMap::new();
    for l in &lines {
        let key = (l.provider, l.class);
        let requested_all = requested.entry(key).or_default();
        *requested_all += i128::from(l.used);
        let requested_all = *requested_all;
        if l.used == 0 {
            continue;
        }
        let Some(inv) = providers
            .inventories(l.provider)
            .and_then(|inv| inv.get(l.class))
        else {
            return Err(Refusal::Invalid(invalid_inventory(
                l.class,
                &l.provider.to_string(),
            )));
        };
        let fits_units = l.used >= inv.min_unit
            && l.used <= inv.max_unit
            && l.used.checked_rem(inv.step_size) == Some(0);
        if !fits_units {
            return Err(Refusal::Invalid(format!(
                "Unable to create allocation for '{}' on resource provider '{}'. The requested \
                 amount would violate inventory constraints.",
                l.class, l.provider
            )));
        }
        let before = i128::from(state.usage(&l.provider, l.class));
        let others = before - released.get(&key).copied().unwrap_or(0);
        let after = others + requested_all;
        let over = exceeds(inv, others + i128::from(l.used)) || exceeds(inv, after);
        if over || after > i128::from(i64::MAX) {
            // Over capacity is accepted only if no worse than before (Placement's rule).
            let no_worse = before > 0 && after <= before;
            if !no_worse {
                return Err(Refusal::Invalid(format!(
                    "Unable to create allocation for '{}' on resource provider '{}'. The \
                     requested amount would exceed the capacity.",
                    l.class, l.provider
                )));
            }
        }
    }

    // Effects: bump every provider named in a line, once.
    let named: BTreeSet<Uuid> = lines.iter().map(|l| l.provider).collect();
    for p in named {
        providers.touch(p, at)?;
    }
    let mut out = Vec::new();
    for w in writes {
        let existing = state.consumer(&w.consumer);
        let touched = !w.allocations.is_empty() || existing.is_some();
        if !touched {
            continue;
        }
        // One record per provider and class (`validate` refuses a pair named twice, as the
        // API's bodies cannot name one twice), kept in the order the client wrote them:
        // Placement answers `GET /allocations/{consumer}` in its rows' insertion order, and
        // clients compare lists built from that answer.
        let allocations: Vec<Allocation> = w.allocations.clone();
        if allocations.is_empty() {
            out.push((w.consumer, None));
            continue;
        }
        let generation = match existing {
            None => 1,
            Some(c) => c
                .generation
                .checked_add(1)
                .ok_or_else(|| Refusal::Exhausted(consumer_generation_exhausted(c.uuid)))?,
        };
        let consumer_type = match &w.consumer_type {
            ConsumerTypeWrite::Set(t) => Some(t.clone()),
            ConsumerTypeWrite::Keep => existing.and_then(|c| c.consumer_type.clone()),
        };
        out.push((
            w.consumer,
            Some(Consumer {
                uuid: w.consumer,
                project_id: w.project_id.clone(),
                user_id: w.user_id.clone(),
                generation,
                consumer_type,
                created_at: existing.map_or(at, |c| c.created_at),
                updated_at: at,
                allocations,
            }),
        ));
    }
    Ok(out)
}

/// Placement's `InvalidInventory` message.
fn invalid_inventory(class: &str, provider: &str) -> String {
    format!("Inventory for '{class}' on resource provider '{provider}' invalid.")
}

fn consumer_generation_exhausted(consumer: Uuid) -> DomainError {
    DomainError::conflict(
        ErrorCode::ConcurrentUpdate,
        format!(
            "consumer generation conflict: the generation of consumer {consumer} is at its \
             maximum ({}) and cannot change any more; delete its allocations to start it \
             over",
            u32::MAX
        ),
    )
}

/// Whether `used` exceeds the inventory's capacity. Compared in floating point without
/// truncation, as Placement's capacity check does (equivalent for integer `used`); every
/// operand is converted first, so nothing overflows whatever the record holds.
fn exceeds(inv: &Inventory, used: i128) -> bool {
    (inv.total as f64 - inv.reserved as f64) * inv.allocation_ratio < used as f64
}

/// Usages once a set of consumer records is written (for the reshaper's in-use check), in
/// i128 like the sums of `plan_writes`.
struct UsageAfter<'s> {
    state: &'s State,
    delta: HashMap<(Uuid, String), i128>,
}

impl<'s> UsageAfter<'s> {
    fn new(state: &'s State, consumers: &[(Uuid, Option<Consumer>)]) -> Self {
        let mut delta: HashMap<(Uuid, String), i128> = HashMap::new();
        for (uuid, new) in consumers {
            for a in state
                .consumer(uuid)
                .map(|c| c.allocations.as_slice())
                .unwrap_or_default()
            {
                *delta
                    .entry((a.provider, a.resource_class.clone()))
                    .or_default() -= i128::from(a.used);
            }
            for a in new.iter().flat_map(|c| c.allocations.iter()) {
                *delta
                    .entry((a.provider, a.resource_class.clone()))
                    .or_default() += i128::from(a.used);
            }
        }
        UsageAfter { state, delta }
    }

    fn get(&self, provider: Uuid, class: &str) -> i128 {
        i128::from(self.state.usage(&provider, class))
            + self
                .delta
                .get(&(provider, class.to_string()))
                .copied()
                .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests;
