//! From Placement's tables to placementd's records: a pure function of the rows read.
//!
//! Placement normalizes with internal integer ids (providers, classes, traits, aggregates,
//! projects, users, consumer types); placementd's records carry names and uuids. This module
//! resolves every id, keeps every uuid, name, generation and timestamp, and orders
//! providers parents first (as `apply` wants them). Only custom resource classes and traits
//! (`CUSTOM_*`) become records: the standard ones Placement's tables also hold are built
//! into placementd.
//!
//! What does not carry over, and why:
//! - a consumer without allocations (a row Placement leaves behind in some paths):
//!   placementd has no such consumer, and Placement's API shows none either; they are
//!   counted as skipped;
//! - an aggregate no provider is in: it exists only as a row, invisible through the API;
//! - allocations' own timestamps: placementd keeps the consumer's.
//!
//! Broken references (an allocation of a consumer that has no row, an inventory of a class
//! that does not exist, a parent cycle) are errors naming the row: Placement's migrations
//! refuse such databases too.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use placement_types::{
    Allocation, Consumer, Inventory, ResourceClass, ResourceProvider, Timestamp, Trait, Uuid,
};

use super::source::Tables;

/// The records to import, in the order they are written.
#[derive(Debug, Default, PartialEq)]
pub struct Dump {
    pub resource_classes: Vec<ResourceClass>,
    pub traits: Vec<Trait>,
    /// Parents before children.
    pub providers: Vec<ResourceProvider>,
    pub consumers: Vec<Consumer>,
    pub counts: Counts,
}

/// What was read, for the final report.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Counts {
    pub resource_classes: usize,
    pub traits: usize,
    pub providers: usize,
    pub inventories: usize,
    pub aggregates: usize,
    pub provider_aggregates: usize,
    pub provider_traits: usize,
    pub projects: usize,
    pub users: usize,
    pub consumer_types: usize,
    pub consumers: usize,
    pub allocations: usize,
    /// Consumers with no allocations, not imported.
    pub skipped_consumers: usize,
}

/// Parses Placement's `DATETIME` text (`YYYY-MM-DD HH:MM:SS[.ffffff]`, UTC) into
/// microseconds since the epoch.
pub fn parse_datetime(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    let (date, time) = text.split_once([' ', 'T'])?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, fraction) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (hour, minute, second) = (t.next()??, t.next()??, t.next()??);
    let valid = (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && (0..24).contains(&hour)
        && (0..60).contains(&minute)
        && (0..=60).contains(&second)
        && fraction.len() <= 9
        && fraction.bytes().all(|b| b.is_ascii_digit());
    if !valid {
        return None;
    }
    let micros = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<6}")[..6].parse::<i64>().ok()?
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3_600 + minute * 60 + second;
    Some(Timestamp(secs * 1_000_000 + micros))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A timestamp column: `None` for NULL, an error for text that is not a date.
fn time(table: &str, value: Option<String>) -> Result<Option<Timestamp>, String> {
    match value {
        None => Ok(None),
        Some(text) => parse_datetime(&text)
            .map(Some)
            .ok_or_else(|| format!("table {table}: {text:?} is not a date and time")),
    }
}

fn uuid(table: &str, text: &str) -> Result<Uuid, String> {
    Uuid::parse_str(text.trim()).map_err(|_| format!("table {table}: {text:?} is not a uuid"))
}

fn u32_of(table: &str, what: &str, v: i64) -> Result<u32, String> {
    u32::try_from(v).map_err(|_| format!("table {table}: {what} {v} is out of range"))
}

/// `(created_at, updated_at)` of a row: NULLs become the other one, or `now`.
fn stamps(
    created: Option<Timestamp>,
    updated: Option<Timestamp>,
    now: Timestamp,
) -> (Timestamp, Timestamp) {
    let created = created.or(updated).unwrap_or(now);
    (created, updated.unwrap_or(created))
}

/// A name by internal id (classes, traits, projects, users, consumer types).
fn names(tables: &Tables, table: &str) -> Result<HashMap<i64, String>, String> {
    tables
        .get(table)?
        .iter()
        .map(|r| Ok((r.int(0)?, r.text(1)?)))
        .collect()
}

/// Turns the rows into records. `now` stands in for a NULL `created_at`.
pub fn convert(tables: &Tables, now: Timestamp) -> Result<Dump, String> {
    let mut counts = Counts::default();
    let class_names = names(tables, "resource_classes")?;
    let trait_names = names(tables, "traits")?;
    let projects = names(tables, "projects")?;
    let users = names(tables, "users")?;
    let consumer_types = names(tables, "consumer_types")?;
    counts.projects = projects.len();
    counts.users = users.len();
    counts.consumer_types = consumer_types.len();

    let mut resource_classes = Vec::new();
    for r in tables.get("resource_classes")?.iter() {
        let name = r.text(1)?;
        if !name.starts_with("CUSTOM_") {
            continue;
        }
        let (created_at, updated_at) = stamps(
            time(r.table, r.opt_text(2)?)?,
            time(r.table, r.opt_text(3)?)?,
            now,
        );
        resource_classes.push(ResourceClass {
            id: u32_of(r.table, "id", r.int(0)?)?,
            name,
            created_at,
            updated_at,
        });
    }
    let mut traits = Vec::new();
    for r in tables.get("traits")?.iter() {
        let name = r.text(1)?;
        if name.starts_with("CUSTOM_") {
            let created_at = time(r.table, r.opt_text(2)?)?.unwrap_or(now);
            traits.push(Trait { name, created_at });
        }
    }
    counts.resource_classes = resource_classes.len();
    counts.traits = traits.len();

    let class = |table: &str, id: i64| {
        class_names
            .get(&id)
            .cloned()
            .ok_or_else(|| format!("table {table}: resource class id {id} does not exist"))
    };

    // Providers: first their own rows, then what hangs off them.
    let mut by_id: BTreeMap<i64, ResourceProvider> = BTreeMap::new();
    let mut links: HashMap<i64, (Option<i64>, Option<i64>)> = HashMap::new();
    for r in tables.get("resource_providers")?.iter() {
        let id = r.int(0)?;
        let uuid = uuid(r.table, &r.text(1)?)?;
        let name = r
            .opt_text(2)?
            .ok_or_else(|| format!("resource provider {uuid} has no name"))?;
        let generation = u32_of(r.table, "generation", r.opt_int(3)?.unwrap_or(0))?;
        let (created_at, updated_at) = stamps(
            time(r.table, r.opt_text(6)?)?,
            time(r.table, r.opt_text(7)?)?,
            now,
        );
        links.insert(id, (r.opt_int(4)?, r.opt_int(5)?));
        by_id.insert(
            id,
            ResourceProvider {
                uuid,
                name,
                generation,
                parent: None,
                root: uuid,
                created_at,
                updated_at,
                inventories: BTreeMap::new(),
                traits: BTreeSet::new(),
                aggregates: BTreeSet::new(),
            },
        );
    }
    let uuid_of: HashMap<i64, Uuid> = by_id.iter().map(|(id, p)| (*id, p.uuid)).collect();
    let provider_uuid = |table: &str, id: i64| {
        uuid_of
            .get(&id)
            .copied()
            .ok_or_else(|| format!("table {table}: resource provider id {id} does not exist"))
    };
    for (id, p) in by_id.iter_mut() {
        let (root, parent) = links.get(id).copied().unwrap_or_default();
        p.parent = parent
            .map(|parent| provider_uuid("resource_providers", parent))
            .transpose()?;
        p.root = match root {
            Some(root) => provider_uuid("resource_providers", root)?,
            None => {
                return Err(format!(
                    "resource provider {} has no root_provider_id; run Placement's \
                     `placement-manage db online_data_migrations` first",
                    p.uuid
                ))
            }
        };
    }
    for r in tables.get("inventories")?.iter() {
        let id = r.int(0)?;
        let rc = class(r.table, r.int(1)?)?;
        let inventory = Inventory {
            total: r.int(2)?,
            reserved: r.int(3)?,
            min_unit: r.int(4)?,
            max_unit: r.int(5)?,
            step_size: r.int(6)?,
            allocation_ratio: r.real(7)?,
        };
        let p = by_id.get_mut(&id).ok_or_else(|| {
            format!("table inventories: resource provider id {id} does not exist")
        })?;
        p.inventories.insert(rc, inventory);
        counts.inventories += 1;
    }
    let aggregates: HashMap<i64, Uuid> = tables
        .get("placement_aggregates")?
        .iter()
        .map(|r| Ok((r.int(0)?, uuid(r.table, &r.text(1)?)?)))
        .collect::<Result<_, String>>()?;
    let mut used_aggregates = BTreeSet::new();
    for r in tables.get("resource_provider_aggregates")?.iter() {
        let (id, agg) = (r.int(0)?, r.int(1)?);
        let agg = *aggregates
            .get(&agg)
            .ok_or_else(|| format!("table {}: aggregate id {agg} does not exist", r.table))?;
        let p = by_id.get_mut(&id).ok_or_else(|| {
            format!(
                "table {}: resource provider id {id} does not exist",
                r.table
            )
        })?;
        p.aggregates.insert(agg);
        used_aggregates.insert(agg);
        counts.provider_aggregates += 1;
    }
    counts.aggregates = used_aggregates.len();
    for r in tables.get("resource_provider_traits")?.iter() {
        let (id, t) = (r.int(0)?, r.int(1)?);
        let name = trait_names
            .get(&t)
            .cloned()
            .ok_or_else(|| format!("table {}: trait id {t} does not exist", r.table))?;
        let p = by_id.get_mut(&id).ok_or_else(|| {
            format!(
                "table {}: resource provider id {id} does not exist",
                r.table
            )
        })?;
        p.traits.insert(name);
        counts.provider_traits += 1;
    }
    let providers = parents_first(by_id.into_values().collect())?;
    counts.providers = providers.len();

    // Consumers and their allocations.
    let mut allocations: HashMap<Uuid, Vec<Allocation>> = HashMap::new();
    for r in tables.get("allocations")?.iter() {
        let consumer = uuid(r.table, &r.text(1)?)?;
        allocations.entry(consumer).or_default().push(Allocation {
            provider: provider_uuid(r.table, r.int(0)?)?,
            resource_class: class(r.table, r.int(2)?)?,
            used: r.int(3)?,
        });
        counts.allocations += 1;
    }
    let lookup = |map: &HashMap<i64, String>, what: &str, id: i64| {
        map.get(&id)
            .cloned()
            .ok_or_else(|| format!("table consumers: {what} id {id} does not exist"))
    };
    let mut consumers = Vec::new();
    for r in tables.get("consumers")?.iter() {
        let uuid = uuid(r.table, &r.text(1)?)?;
        let Some(allocations) = allocations.remove(&uuid) else {
            counts.skipped_consumers += 1;
            continue;
        };
        let (created_at, updated_at) = stamps(
            time(r.table, r.opt_text(6)?)?,
            time(r.table, r.opt_text(7)?)?,
            now,
        );
        consumers.push(Consumer {
            uuid,
            project_id: lookup(&projects, "project", r.int(2)?)?,
            user_id: lookup(&users, "user", r.int(3)?)?,
            generation: u32_of(r.table, "generation", r.int(4)?)?,
            consumer_type: r
                .opt_int(5)?
                .map(|t| lookup(&consumer_types, "consumer type", t))
                .transpose()?,
            created_at,
            updated_at,
            allocations,
        });
    }
    if let Some(orphan) = allocations.keys().min() {
        return Err(format!(
            "{} consumers have allocations but no consumers row (the first: {orphan}); run \
             Placement's `placement-manage db online_data_migrations` first",
            allocations.len()
        ));
    }
    counts.consumers = consumers.len();
    Ok(Dump {
        resource_classes,
        traits,
        providers,
        consumers,
        counts,
    })
}

/// Orders providers so that each parent comes before its children (by depth, then by the
/// order given); a parent that is missing or a cycle is an error.
fn parents_first(providers: Vec<ResourceProvider>) -> Result<Vec<ResourceProvider>, String> {
    let parent_of: HashMap<Uuid, Option<Uuid>> =
        providers.iter().map(|p| (p.uuid, p.parent)).collect();
    let mut depth: HashMap<Uuid, usize> = HashMap::with_capacity(providers.len());
    for p in &providers {
        let mut chain = vec![p.uuid];
        let base = loop {
            let last = chain[chain.len() - 1];
            if let Some(d) = depth.get(&last) {
                chain.pop();
                break *d + 1;
            }
            match parent_of.get(&last) {
                Some(Some(parent)) => {
                    if chain.contains(parent) || chain.len() > providers.len() {
                        return Err(format!("resource provider {last} is in a parent cycle"));
                    }
                    chain.push(*parent);
                }
                Some(None) => {
                    depth.insert(last, 0);
                    chain.pop();
                    break 1;
                }
                None => return Err(format!("resource provider {last} does not exist")),
            }
        };
        for (i, uuid) in chain.iter().rev().enumerate() {
            depth.insert(*uuid, base + i);
        }
    }
    let mut ordered: Vec<(usize, usize, ResourceProvider)> = providers
        .into_iter()
        .enumerate()
        .map(|(i, p)| (depth.get(&p.uuid).copied().unwrap_or(0), i, p))
        .collect();
    ordered.sort_by_key(|(d, i, _)| (*d, *i));
    Ok(ordered.into_iter().map(|(_, _, p)| p).collect())
}

#[cfg(test)]
#[path = "convert_tests.rs"]
mod tests;
