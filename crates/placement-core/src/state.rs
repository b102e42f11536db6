//! The in-memory model of Placement's state, and the [`Change`]s that move it.
//!
//! [`State`] holds every stored record (providers, consumers, custom resource classes, custom
//! traits) plus indexes derived from them (names, children, usages and consumers per provider,
//! providers per trait, members per aggregate).
//! Storage persists only the records: it writes each [`Change`] that `apply` returns and, at
//! start, rebuilds the state with [`State::insert_record`]. Derived indexes are never stored.
//!
//! Invariant: after every [`State::commit`] the derived indexes equal what a fresh rebuild
//! from the records would produce (tested in `tests`).
//!
//! # Snapshots for readers
//! Every map is persistent (`imbl`): cloning a `State` costs a handful of reference counts,
//! and the clone shares everything with the original until one of them changes a part,
//! which then copies only the path to it. Records sit behind an [`Arc`], so that a copied
//! node copies pointers, not providers. This is what lets a read hold a snapshot of the
//! whole state for as long as it takes to build and serialize its answer while the state
//! machine keeps committing (`placement-storage`'s `SharedState`): readers and the writer
//! never wait for each other.

use std::sync::Arc;

use imbl::{HashMap, OrdMap, OrdSet};
use std::collections::BTreeSet;

use placement_types::{
    standard, Allocation, Consumer, ResourceClass, ResourceProvider, Trait, Uuid,
};

/// One stored record replaced (`Some`) or removed (`None`). Storage maps each to one key.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Provider(Uuid, Option<ResourceProvider>),
    Consumer(Uuid, Option<Consumer>),
    ResourceClass(String, Option<ResourceClass>),
    Trait(String, Option<Trait>),
}

/// A stored record, as storage loads it back.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Provider(ResourceProvider),
    Consumer(Consumer),
    ResourceClass(ResourceClass),
    Trait(Trait),
}

/// Units of each resource class allocated from one provider.
pub type Usages = OrdMap<String, i64>;

/// What is allocated from one provider.
#[derive(Debug, Clone, Default, PartialEq)]
struct Load {
    /// Resource class -> units used; a class is dropped when its usage returns to 0.
    usages: Usages,
    /// Consumers holding allocations against the provider.
    consumers: OrdSet<Uuid>,
}

/// Placement's whole state. Read it freely; change it only through `apply`. Cheap to clone
/// (see the module doc).
#[derive(Debug, Clone, Default)]
pub struct State {
    providers: OrdMap<Uuid, Arc<ResourceProvider>>,
    consumers: OrdMap<Uuid, Arc<Consumer>>,
    resource_classes: OrdMap<String, Arc<ResourceClass>>,
    traits: OrdMap<String, Arc<Trait>>,
    // Derived indexes.
    provider_names: HashMap<String, Uuid>,
    /// parent -> its children; ordered, so a window of roots finds its parents by range.
    children: OrdMap<Uuid, OrdSet<Uuid>>,
    /// provider -> units used per class and the consumers holding them; no entry for a
    /// provider nobody allocates from. One map for both, so an allocation write looks up
    /// (and, under a reader's snapshot, copies the path to) one entry per provider.
    loads: HashMap<Uuid, Load>,
    /// trait -> providers that have it (allocation candidates: sharing providers, traits).
    trait_providers: HashMap<String, OrdSet<Uuid>>,
    /// aggregate -> (root, provider) of its members (allocation candidates: `member_of`,
    /// sharing providers). Keyed by root first so a sharing provider's trees come out sorted.
    aggregate_members: HashMap<Uuid, OrdSet<(Uuid, Uuid)>>,
}

impl State {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one stored record while rebuilding state at start or after a snapshot install.
    pub fn insert_record(&mut self, record: Record) {
        match record {
            Record::Provider(p) => self.set_provider(p.uuid, Some(p)),
            Record::Consumer(c) => self.set_consumer(c.uuid, Some(c)),
            Record::ResourceClass(rc) => {
                self.resource_classes.insert(rc.name.clone(), Arc::new(rc));
            }
            Record::Trait(t) => {
                self.traits.insert(t.name.clone(), Arc::new(t));
            }
        }
    }

    /// Every stored record, in a deterministic order (for snapshots and digests).
    pub fn records(&self) -> impl Iterator<Item = Record> + '_ {
        let rcs = self.resource_classes.values();
        rcs.map(|rc| Record::ResourceClass(ResourceClass::clone(rc)))
            .chain(self.traits.values().map(|t| Record::Trait(Trait::clone(t))))
            .chain(
                self.providers
                    .values()
                    .map(|p| Record::Provider(ResourceProvider::clone(p))),
            )
            .chain(
                self.consumers
                    .values()
                    .map(|c| Record::Consumer(Consumer::clone(c))),
            )
    }

    /// Applies changes computed by `apply` to the records and every derived index.
    pub fn commit(&mut self, changes: &[Change]) {
        self.commit_owned(changes.to_vec());
    }

    /// [`Self::commit`] taking the changes by value: the records move into the state instead
    /// of being cloned (the state machine's apply, where each write's records are new).
    pub fn commit_owned(&mut self, changes: Vec<Change>) {
        for change in changes {
            match change {
                Change::Provider(uuid, p) => self.set_provider(uuid, p),
                Change::Consumer(uuid, c) => self.set_consumer(uuid, c),
                Change::ResourceClass(name, rc) => match rc {
                    Some(rc) => {
                        self.resource_classes.insert(name, Arc::new(rc));
                    }
                    None => {
                        self.resource_classes.remove(&name);
                    }
                },
                Change::Trait(name, t) => match t {
                    Some(t) => {
                        self.traits.insert(name, Arc::new(t));
                    }
                    None => {
                        self.traits.remove(&name);
                    }
                },
            }
        }
    }

    /// Replaces or removes one provider. The derived indexes change only where the record's
    /// inputs to them changed: an allocation write bumps the generation of the providers it
    /// uses, and re-filing such a provider under every one of its traits and aggregates
    /// would copy a path of each of those (shared, large) sets for nothing.
    fn set_provider(&mut self, uuid: Uuid, new: Option<ResourceProvider>) {
        let new = new.map(Arc::new);
        let old = match &new {
            Some(p) => self.providers.insert(uuid, Arc::clone(p)),
            None => self.providers.remove(&uuid),
        };
        let (old, new) = (old.as_deref(), new.as_deref());
        if old.map(|p| &p.name) != new.map(|p| &p.name) {
            if let Some(old) = old {
                if self.provider_names.get(&old.name) == Some(&uuid) {
                    self.provider_names.remove(&old.name);
                }
            }
        }
        if let Some(new) = new {
            // (A lookup, not a write, when the name stays.)
            if self.provider_names.get(&new.name) != Some(&uuid) {
                self.provider_names.insert(new.name.clone(), uuid);
            }
        }
        let (old_parent, new_parent) = (old.and_then(|p| p.parent), new.and_then(|p| p.parent));
        if old_parent != new_parent {
            if let Some(parent) = old_parent {
                if let Some(set) = self.children.get_mut(&parent) {
                    set.remove(&uuid);
                    if set.is_empty() {
                        self.children.remove(&parent);
                    }
                }
            }
            if let Some(parent) = new_parent {
                self.children.entry(parent).or_default().insert(uuid);
            }
        }
        let no_traits = BTreeSet::new();
        let old_traits = old.map_or(&no_traits, |p| &p.traits);
        let new_traits = new.map_or(&no_traits, |p| &p.traits);
        if old_traits != new_traits {
            for t in old_traits.difference(new_traits) {
                if let Some(set) = self.trait_providers.get_mut(t) {
                    set.remove(&uuid);
                    if set.is_empty() {
                        self.trait_providers.remove(t);
                    }
                }
            }
            for t in new_traits.difference(old_traits) {
                self.trait_providers
                    .entry(t.clone())
                    .or_default()
                    .insert(uuid);
            }
        }
        // Members are filed under (root, provider): a new root re-files every aggregate.
        let no_aggs = BTreeSet::new();
        let old_aggs = old.map_or(&no_aggs, |p| &p.aggregates);
        let new_aggs = new.map_or(&no_aggs, |p| &p.aggregates);
        let moved = old.map(|p| p.root) != new.map(|p| p.root);
        if old_aggs != new_aggs || moved {
            if let Some(old) = old {
                for a in old_aggs.iter().filter(|a| moved || !new_aggs.contains(a)) {
                    if let Some(set) = self.aggregate_members.get_mut(a) {
                        set.remove(&(old.root, uuid));
                        if set.is_empty() {
                            self.aggregate_members.remove(a);
                        }
                    }
                }
            }
            if let Some(new) = new {
                for a in new_aggs.iter().filter(|a| moved || !old_aggs.contains(a)) {
                    self.aggregate_members
                        .entry(*a)
                        .or_default()
                        .insert((new.root, uuid));
                }
            }
        }
    }

    /// Replaces or removes one consumer. Its allocations are grouped by provider, so each
    /// provider's load is looked up (and, under a snapshot, copied) once per write, and not
    /// written at all when the write leaves it as it was.
    fn set_consumer(&mut self, uuid: Uuid, new: Option<Consumer>) {
        let new = new.map(Arc::new);
        let old = match &new {
            Some(c) => self.consumers.insert(uuid, Arc::clone(c)),
            None => self.consumers.remove(&uuid),
        };
        let no_allocations: &[Allocation] = &[];
        let old_allocs = old.as_deref().map_or(no_allocations, |c| &c.allocations);
        let new_allocs = new.as_deref().map_or(no_allocations, |c| &c.allocations);
        // The providers of either set, each once (the sets are a handful of allocations).
        let mut touched: Vec<Uuid> = Vec::with_capacity(old_allocs.len() + new_allocs.len());
        for a in old_allocs.iter().chain(new_allocs) {
            if !touched.contains(&a.provider) {
                touched.push(a.provider);
            }
        }
        for rp in touched {
            let olds: Vec<&Allocation> = old_allocs.iter().filter(|a| a.provider == rp).collect();
            let news: Vec<&Allocation> = new_allocs.iter().filter(|a| a.provider == rp).collect();
            self.update_load(rp, uuid, &olds, &news);
        }
    }

    /// One provider's load after a consumer's allocations there went from `olds` to `news`:
    /// the old amounts are taken off (a class at 0 is dropped), the new ones added, the
    /// consumer filed or unfiled, and the entry dropped once nothing is left.
    fn update_load(
        &mut self,
        rp: Uuid,
        consumer: Uuid,
        olds: &[&Allocation],
        news: &[&Allocation],
    ) {
        if !olds.is_empty() && !news.is_empty() {
            // A rewrite: often the same amounts (a consumer's other providers changed), and
            // then nothing here changes; look before copying anything.
            let current = self.loads.get(&rp).map(|l| &l.usages);
            let usage = |rc: &str| current.and_then(|m| m.get(rc)).copied();
            let mut classes: Vec<(&str, Option<i64>)> = Vec::new();
            for a in olds.iter().chain(news) {
                if !classes.iter().any(|(rc, _)| *rc == a.resource_class) {
                    classes.push((&a.resource_class, usage(&a.resource_class)));
                }
            }
            let before = classes.clone();
            for a in olds {
                let slot = classes.iter_mut().find(|(rc, _)| *rc == a.resource_class);
                if let Some((_, after)) = slot {
                    if let Some(u) = after {
                        *u -= a.used;
                        if *u == 0 {
                            *after = None;
                        }
                    }
                }
            }
            for a in news {
                if let Some((_, u)) = classes.iter_mut().find(|(rc, _)| *rc == a.resource_class) {
                    *u = Some(u.unwrap_or(0) + a.used);
                }
            }
            if classes == before {
                return;
            }
        }
        let load = self.loads.entry(rp).or_default();
        for a in olds {
            if let Some(u) = load.usages.get_mut(&a.resource_class) {
                *u -= a.used;
                if *u == 0 {
                    load.usages.remove(&a.resource_class);
                }
            }
        }
        for a in news {
            match load.usages.get_mut(&a.resource_class) {
                Some(u) => *u += a.used,
                None => {
                    load.usages.insert(a.resource_class.clone(), a.used);
                }
            }
        }
        if news.is_empty() {
            load.consumers.remove(&consumer);
        } else if olds.is_empty() {
            load.consumers.insert(consumer);
        }
        if load.usages.is_empty() && load.consumers.is_empty() {
            self.loads.remove(&rp);
        }
    }

    // ---- Read access -------------------------------------------------------------------

    pub fn provider(&self, uuid: &Uuid) -> Option<&ResourceProvider> {
        self.providers.get(uuid).map(|p| &**p)
    }

    pub fn providers(&self) -> impl Iterator<Item = &ResourceProvider> {
        self.providers.values().map(|p| &**p)
    }

    /// Providers with a uuid greater than `after` (all of them for `None`), in uuid order.
    pub fn providers_after(&self, after: Option<&Uuid>) -> impl Iterator<Item = &ResourceProvider> {
        use std::ops::Bound;
        let start = match after {
            Some(u) => Bound::Excluded(*u),
            None => Bound::Unbounded,
        };
        self.providers
            .range((start, Bound::Unbounded))
            .map(|(_, p)| &**p)
    }

    pub fn provider_count(&self) -> usize {
        self.providers.len()
    }

    pub fn provider_by_name(&self, name: &str) -> Option<&ResourceProvider> {
        self.provider_names.get(name).and_then(|u| self.provider(u))
    }

    /// Direct children of a provider, by uuid.
    pub fn children(&self, uuid: &Uuid) -> impl Iterator<Item = &Uuid> {
        self.children.get(uuid).into_iter().flatten()
    }

    /// The providers with children whose uuid lies in `first..=last` (nothing when `first >
    /// last`), in uuid order: a range of the index, not a lookup per provider.
    pub fn parents_between(&self, first: Uuid, last: Uuid) -> impl Iterator<Item = &Uuid> {
        let range = (first <= last).then(|| self.children.range(first..=last));
        range.into_iter().flatten().map(|(u, _)| u)
    }

    /// Whether any provider has a parent (Placement's `_has_provider_trees`).
    pub fn has_nested_providers(&self) -> bool {
        !self.children.is_empty()
    }

    /// Providers that have a trait, in uuid order.
    pub fn providers_with_trait(&self, name: &str) -> impl Iterator<Item = &Uuid> {
        self.trait_providers.get(name).into_iter().flatten()
    }

    /// (root, provider) of the members of an aggregate, ordered by root then provider.
    pub fn aggregate_members(&self, aggregate: &Uuid) -> impl Iterator<Item = &(Uuid, Uuid)> {
        self.aggregate_members.get(aggregate).into_iter().flatten()
    }

    /// The members of an aggregate whose root lies in `first..=last` (nothing when `first >
    /// last`), ordered by root then provider: a range of the index, not a scan.
    pub fn aggregate_members_with_roots(
        &self,
        aggregate: &Uuid,
        first: Uuid,
        last: Uuid,
    ) -> impl Iterator<Item = &(Uuid, Uuid)> {
        self.aggregate_members
            .get(aggregate)
            .filter(|_| first <= last)
            .into_iter()
            .flat_map(move |set| set.range((first, Uuid::nil())..=(last, Uuid::max())))
    }

    /// A provider and all its descendants, parents before children.
    pub fn subtree(&self, uuid: &Uuid) -> Vec<Uuid> {
        let mut out = vec![*uuid];
        let mut i = 0;
        while i < out.len() {
            let next: Vec<Uuid> = self.children(&out[i]).copied().collect();
            out.extend(next);
            i += 1;
        }
        out
    }

    /// Units of each resource class allocated from a provider.
    pub fn usages(&self, provider: &Uuid) -> Option<&Usages> {
        self.loads
            .get(provider)
            .map(|l| &l.usages)
            .filter(|u| !u.is_empty())
    }

    pub fn usage(&self, provider: &Uuid, resource_class: &str) -> i64 {
        self.loads
            .get(provider)
            .and_then(|l| l.usages.get(resource_class))
            .copied()
            .unwrap_or(0)
    }

    /// Consumers holding allocations against a provider.
    pub fn provider_consumers(&self, provider: &Uuid) -> impl Iterator<Item = &Consumer> {
        self.loads
            .get(provider)
            .into_iter()
            .flat_map(|l| &l.consumers)
            .filter_map(|c| self.consumer(c))
    }

    pub fn consumer(&self, uuid: &Uuid) -> Option<&Consumer> {
        self.consumers.get(uuid).map(|c| &**c)
    }

    pub fn consumers(&self) -> impl Iterator<Item = &Consumer> {
        self.consumers.values().map(|c| &**c)
    }

    pub fn consumer_count(&self) -> usize {
        self.consumers.len()
    }

    /// A custom resource class record.
    pub fn custom_resource_class(&self, name: &str) -> Option<&ResourceClass> {
        self.resource_classes.get(name).map(|rc| &**rc)
    }

    pub fn custom_resource_classes(&self) -> impl Iterator<Item = &ResourceClass> {
        self.resource_classes.values().map(|rc| &**rc)
    }

    /// Whether a resource class (standard or custom) exists.
    pub fn resource_class_exists(&self, name: &str) -> bool {
        standard::is_standard_resource_class(name) || self.resource_classes.contains_key(name)
    }

    pub fn custom_trait(&self, name: &str) -> Option<&Trait> {
        self.traits.get(name).map(|t| &**t)
    }

    pub fn custom_traits(&self) -> impl Iterator<Item = &Trait> {
        self.traits.values().map(|t| &**t)
    }

    /// Whether a trait (standard or custom) exists.
    pub fn trait_exists(&self, name: &str) -> bool {
        standard::is_standard_trait(name) || self.traits.contains_key(name)
    }

    /// Whether any provider has inventory of a class (Placement's "in use" for classes).
    pub fn resource_class_in_use(&self, name: &str) -> bool {
        self.providers
            .values()
            .any(|p| p.inventories.contains_key(name))
    }

    /// The id of a resource class: its index for standard classes, its stored id for custom
    /// ones. Placement orders classes by id in several messages and listings.
    pub fn resource_class_id(&self, name: &str) -> Option<u32> {
        standard::resource_classes()
            .iter()
            .position(|c| *c == name)
            .map(|i| i as u32)
            .or_else(|| self.resource_classes.get(name).map(|rc| rc.id))
    }

    /// Whether any provider has a trait.
    pub fn trait_in_use(&self, name: &str) -> bool {
        self.providers.values().any(|p| p.traits.contains(name))
    }
}

/// Builds a [`State`] from every stored record at once (a restart, a snapshot install): the
/// same state as one [`State::insert_record`] per record, built faster.
///
/// Each consumer's allocations also file it under its providers' loads. One at a time, that
/// is a walk down three persistent maps per allocation (the provider's entry, its usage per
/// class, its set of consumers) at a provider that the previous consumer, in uuid order, did
/// not touch: cache misses, most of a rebuild's time at a million consumers. Here the
/// loads are gathered in plain vectors per provider and turned into persistent maps once,
/// in [`Rebuild::finish`], each from sorted input.
#[derive(Debug, Default)]
pub struct Rebuild {
    state: State,
    loads: std::collections::HashMap<Uuid, LoadParts>,
}

/// One provider's load while a [`Rebuild`] gathers it.
#[derive(Debug, Default)]
struct LoadParts {
    usages: Vec<(String, i64)>,
    consumers: Vec<Uuid>,
}

impl Rebuild {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one stored record, in any order. Records are unique by key; a second record
    /// under a key replaces the first, as [`State::insert_record`] would.
    pub fn insert(&mut self, record: Record) {
        let Record::Consumer(consumer) = record else {
            self.state.insert_record(record);
            return;
        };
        let uuid = consumer.uuid;
        let consumer = Arc::new(consumer);
        if let Some(old) = self.state.consumers.insert(uuid, Arc::clone(&consumer)) {
            self.take_off(&old);
        }
        for a in &consumer.allocations {
            let parts = self.loads.entry(a.provider).or_default();
            match parts
                .usages
                .iter_mut()
                .find(|(rc, _)| *rc == a.resource_class)
            {
                Some((_, used)) => *used += a.used,
                None => parts.usages.push((a.resource_class.clone(), a.used)),
            }
            // A consumer's allocations are added together, so a provider it already uses
            // has it last.
            if parts.consumers.last() != Some(&uuid) {
                parts.consumers.push(uuid);
            }
        }
    }

    /// Undoes what a replaced consumer added (`update_load`'s rules: a class that returns to
    /// 0 is dropped).
    fn take_off(&mut self, old: &Consumer) {
        for a in &old.allocations {
            if let Some(parts) = self.loads.get_mut(&a.provider) {
                if let Some(i) = parts
                    .usages
                    .iter()
                    .position(|(rc, _)| *rc == a.resource_class)
                {
                    parts.usages[i].1 -= a.used;
                    if parts.usages[i].1 == 0 {
                        parts.usages.remove(i);
                    }
                }
                parts.consumers.retain(|c| *c != old.uuid);
            }
        }
    }

    /// The state, with every provider's load in place.
    pub fn finish(self) -> State {
        let Rebuild { mut state, loads } = self;
        for (rp, parts) in loads {
            let LoadParts {
                usages,
                mut consumers,
            } = parts;
            if usages.is_empty() && consumers.is_empty() {
                continue;
            }
            consumers.sort_unstable();
            consumers.dedup();
            let load = Load {
                usages: usages.into_iter().collect(),
                consumers: consumers.into_iter().collect(),
            };
            state.loads.insert(rp, load);
        }
        state
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use placement_types::{Allocation, ResourceProvider, Timestamp, Uuid};

    use super::*;

    fn rp(n: u128, parent: Option<u128>, traits: &[&str]) -> ResourceProvider {
        rp_in(n, parent, traits, &[])
    }

    fn rp_in(n: u128, parent: Option<u128>, traits: &[&str], aggs: &[u128]) -> ResourceProvider {
        ResourceProvider {
            uuid: Uuid::from_u128(n),
            name: format!("rp{n}"),
            generation: 0,
            parent: parent.map(Uuid::from_u128),
            root: Uuid::from_u128(parent.unwrap_or(n)),
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
            inventories: BTreeMap::new(),
            traits: traits.iter().map(|t| t.to_string()).collect(),
            aggregates: aggs.iter().map(|a| Uuid::from_u128(*a)).collect(),
        }
    }

    fn members(s: &State, agg: u128) -> Vec<(u128, u128)> {
        s.aggregate_members(&Uuid::from_u128(agg))
            .map(|(r, p)| (r.as_u128(), p.as_u128()))
            .collect()
    }

    fn rebuilt(s: &State) -> State {
        let mut out = State::new();
        for r in s.records() {
            out.insert_record(r);
        }
        out
    }

    #[test]
    fn aggregate_index_follows_commits_and_rebuilds() {
        let mut s = State::new();
        let change = |p: ResourceProvider| Change::Provider(p.uuid, Some(p));
        s.commit(&[
            change(rp_in(1, None, &[], &[100, 101])),
            change(rp_in(2, None, &[], &[100])),
            change(rp_in(3, Some(1), &[], &[101])),
        ]);
        assert_eq!(members(&s, 100), vec![(1, 1), (2, 2)]);
        assert_eq!(members(&s, 101), vec![(1, 1), (1, 3)]);
        assert_eq!(rebuilt(&s).aggregate_members, s.aggregate_members);
        // Re-parent 3 under 2 (its root changes), drop 1 from 100, delete 2.
        s.commit(&[
            change(rp_in(3, Some(2), &[], &[101, 102])),
            change(rp_in(1, None, &[], &[101])),
        ]);
        assert_eq!(members(&s, 100), vec![(2, 2)]);
        assert_eq!(members(&s, 101), vec![(1, 1), (2, 3)]);
        assert_eq!(members(&s, 102), vec![(2, 3)]);
        assert_eq!(rebuilt(&s).aggregate_members, s.aggregate_members);
        s.commit(&[
            Change::Provider(Uuid::from_u128(3), None),
            Change::Provider(Uuid::from_u128(2), None),
        ]);
        assert_eq!(members(&s, 100), Vec::<(u128, u128)>::new());
        assert!(!s.aggregate_members.contains_key(&Uuid::from_u128(102)));
        assert_eq!(rebuilt(&s).aggregate_members, s.aggregate_members);
    }

    #[test]
    fn aggregate_members_by_root_range() {
        let mut s = State::new();
        let change = |p: ResourceProvider| Change::Provider(p.uuid, Some(p));
        s.commit(&[
            change(rp_in(1, None, &[], &[100])),
            change(rp_in(2, None, &[], &[100])),
            change(rp_in(5, Some(2), &[], &[100])),
            change(rp_in(3, None, &[], &[100])),
            change(rp_in(4, None, &[], &[101])),
        ]);
        let within = |first: u128, last: u128| -> Vec<(u128, u128)> {
            s.aggregate_members_with_roots(
                &Uuid::from_u128(100),
                Uuid::from_u128(first),
                Uuid::from_u128(last),
            )
            .map(|(r, p)| (r.as_u128(), p.as_u128()))
            .collect()
        };
        assert_eq!(within(2, 3), vec![(2, 2), (2, 5), (3, 3)]);
        assert_eq!(within(0, 9), members(&s, 100));
        assert_eq!(within(4, 9), Vec::<(u128, u128)>::new());
        assert_eq!(within(3, 2), Vec::<(u128, u128)>::new());
    }

    fn with_trait(s: &State, t: &str) -> Vec<u128> {
        s.providers_with_trait(t).map(|u| u.as_u128()).collect()
    }

    #[test]
    fn trait_and_nesting_indexes_follow_commits_and_rebuilds() {
        let mut s = State::new();
        let change = |p: ResourceProvider| Change::Provider(p.uuid, Some(p));
        s.commit(&[
            change(rp(1, None, &["A", "B"])),
            change(rp(2, None, &["B"])),
        ]);
        assert!(!s.has_nested_providers());
        assert_eq!(with_trait(&s, "B"), vec![1, 2]);
        // Replace 1's traits, add a child, delete 2.
        s.commit(&[
            change(rp(1, None, &["C"])),
            change(rp(3, Some(1), &["B"])),
            Change::Provider(Uuid::from_u128(2), None),
        ]);
        assert_eq!(with_trait(&s, "A"), Vec::<u128>::new());
        assert_eq!(with_trait(&s, "B"), vec![3]);
        assert_eq!(with_trait(&s, "C"), vec![1]);
        assert!(s.has_nested_providers());
        let mut rebuilt = State::new();
        for r in s.records() {
            rebuilt.insert_record(r);
        }
        assert_eq!(rebuilt.trait_providers, s.trait_providers);
        assert_eq!(rebuilt.children, s.children);
        s.commit(&[Change::Provider(Uuid::from_u128(3), None)]);
        assert!(!s.has_nested_providers());
        assert!(!s.trait_providers.contains_key("B"));
    }

    /// One generated change: a provider (re)written with a name, parent, root, traits and
    /// aggregates drawn from small sets, a provider removed, a consumer (re)written with a
    /// few allocations, or a consumer removed.
    #[derive(Debug, Clone)]
    enum Op {
        Provider {
            n: u128,
            name: u8,
            parent: Option<u128>,
            root: Option<u128>,
            traits: u8,
            aggs: u8,
        },
        DeleteProvider(u128),
        Consumer(u128, Vec<(u128, usize, i64)>),
        DeleteConsumer(u128),
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            3 => (
                1u128..6,
                0u8..2,
                proptest::option::of(1u128..6),
                proptest::option::of(1u128..6),
                0u8..8,
                0u8..4
            )
                .prop_map(|(n, name, parent, root, traits, aggs)| Op::Provider {
                    n,
                    name,
                    parent,
                    root,
                    traits,
                    aggs
                }),
            1 => (1u128..6).prop_map(Op::DeleteProvider),
            4 => (
                1u128..5,
                proptest::collection::vec((1u128..6, 0usize..3, 1i64..4), 0..4)
            )
                .prop_map(|(c, allocs)| Op::Consumer(c, allocs)),
            1 => (1u128..5).prop_map(Op::DeleteConsumer),
        ]
    }

    fn change_of(op: &Op) -> Change {
        const TRAITS: [&str; 3] = ["A", "B", "C"];
        const CLASSES: [&str; 3] = ["VCPU", "MEMORY_MB", "DISK_GB"];
        match op {
            Op::Provider {
                n,
                name,
                parent,
                root,
                traits,
                aggs,
            } => {
                let traits: Vec<&str> = (0..3)
                    .filter(|b| traits & (1 << b) != 0)
                    .map(|b| TRAITS[b])
                    .collect();
                let aggs: Vec<u128> = (0..2)
                    .filter(|b| aggs & (1 << b) != 0)
                    .map(|b| 100 + b as u128)
                    .collect();
                let mut p = rp_in(*n, *parent, &traits, &aggs);
                // Names unique per provider (the API's rule), but they do change.
                p.name = format!("rp{n}-{name}");
                p.root = Uuid::from_u128(root.unwrap_or(*n));
                Change::Provider(p.uuid, Some(p))
            }
            Op::DeleteProvider(n) => Change::Provider(Uuid::from_u128(*n), None),
            Op::Consumer(c, allocs) => {
                let uuid = Uuid::from_u128(1000 + c);
                let consumer = Consumer {
                    uuid,
                    project_id: "p".into(),
                    user_id: "u".into(),
                    generation: 1,
                    consumer_type: None,
                    created_at: Timestamp(0),
                    updated_at: Timestamp(0),
                    allocations: allocs
                        .iter()
                        .map(|(rp, rc, used)| Allocation {
                            provider: Uuid::from_u128(*rp),
                            resource_class: CLASSES[*rc].to_string(),
                            used: *used,
                        })
                        .collect(),
                };
                Change::Consumer(uuid, Some(consumer))
            }
            Op::DeleteConsumer(c) => Change::Consumer(Uuid::from_u128(1000 + c), None),
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(500))]

        /// The module's invariant: after any sequence of commits, every derived index equals
        /// what a rebuild from the records gives (the indexes are kept up to date by
        /// difference, and a write that leaves a provider's load as it was skips it).
        #[test]
        fn commits_keep_every_index_equal_to_a_rebuild(
            batches in proptest::collection::vec(proptest::collection::vec(op(), 1..4), 1..12)
        ) {
            let mut s = State::new();
            for batch in &batches {
                let changes: Vec<Change> = batch.iter().map(change_of).collect();
                s.commit(&changes);
                let r = rebuilt(&s);
                proptest::prop_assert_eq!(&r.provider_names, &s.provider_names);
                proptest::prop_assert_eq!(&r.children, &s.children);
                proptest::prop_assert_eq!(&r.trait_providers, &s.trait_providers);
                proptest::prop_assert_eq!(&r.aggregate_members, &s.aggregate_members);
                proptest::prop_assert_eq!(&r.loads, &s.loads);
            }
        }

        /// [`Rebuild`] gives the state that one `insert_record` per record gives, whatever
        /// the order, and also when a consumer comes again (an older version of it first:
        /// the records of an earlier state, then the final ones).
        #[test]
        fn a_rebuild_equals_inserting_the_records_one_at_a_time(
            batches in proptest::collection::vec(proptest::collection::vec(op(), 1..4), 1..12),
            rotate in 0usize..64,
            earlier in proptest::option::of(0usize..12),
        ) {
            let mut s = State::new();
            let mut records: Vec<Record> = Vec::new();
            for (i, batch) in batches.iter().enumerate() {
                let changes: Vec<Change> = batch.iter().map(change_of).collect();
                s.commit(&changes);
                if earlier == Some(i) {
                    records.extend(s.records().filter(|r| matches!(r, Record::Consumer(_))));
                }
            }
            let mut last: Vec<Record> = s.records().collect();
            if !last.is_empty() {
                let k = rotate % last.len();
                last.rotate_left(k);
            }
            records.extend(last);
            let mut one_by_one = State::new();
            let mut bulk = Rebuild::new();
            for r in records {
                one_by_one.insert_record(r.clone());
                bulk.insert(r);
            }
            let (a, b) = (one_by_one, bulk.finish());
            proptest::prop_assert_eq!(&a.providers, &b.providers);
            proptest::prop_assert_eq!(&a.consumers, &b.consumers);
            proptest::prop_assert_eq!(&a.provider_names, &b.provider_names);
            proptest::prop_assert_eq!(&a.children, &b.children);
            proptest::prop_assert_eq!(&a.trait_providers, &b.trait_providers);
            proptest::prop_assert_eq!(&a.aggregate_members, &b.aggregate_members);
            proptest::prop_assert_eq!(&a.loads, &b.loads);
        }
    }
}
