//! The in-memory model of Placement's state, and the [`Change`]s that move it.
//!
//! [`State`] holds every stored record (providers, consumers, custom resource classes, custom
//! traits) plus indexes derived from them (names, children, usages, consumers per provider,
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
use placement_types::{standard, Consumer, ResourceClass, ResourceProvider, Trait, Uuid};

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
    children: HashMap<Uuid, OrdSet<Uuid>>,
    /// provider -> resource class -> units used.
    usages: HashMap<Uuid, Usages>,
    /// provider -> consumers holding allocations against it.
    provider_consumers: HashMap<Uuid, OrdSet<Uuid>>,
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
        for change in changes {
            match change {
                Change::Provider(uuid, p) => self.set_provider(*uuid, p.clone()),
                Change::Consumer(uuid, c) => self.set_consumer(*uuid, c.clone()),
                Change::ResourceClass(name, rc) => match rc {
                    Some(rc) => {
                        self.resource_classes
                            .insert(name.clone(), Arc::new(rc.clone()));
                    }
                    None => {
                        self.resource_classes.remove(name);
                    }
                },
                Change::Trait(name, t) => match t {
                    Some(t) => {
                        self.traits.insert(name.clone(), Arc::new(t.clone()));
                    }
                    None => {
                        self.traits.remove(name);
                    }
                },
            }
        }
    }

    fn set_provider(&mut self, uuid: Uuid, new: Option<ResourceProvider>) {
        if let Some(old) = self.providers.remove(&uuid) {
            if self.provider_names.get(&old.name) == Some(&uuid) {
                self.provider_names.remove(&old.name);
            }
            if let Some(parent) = old.parent {
                if let Some(set) = self.children.get_mut(&parent) {
                    set.remove(&uuid);
                    if set.is_empty() {
                        self.children.remove(&parent);
                    }
                }
            }
            for t in &old.traits {
                if let Some(set) = self.trait_providers.get_mut(t) {
                    set.remove(&uuid);
                    if set.is_empty() {
                        self.trait_providers.remove(t);
                    }
                }
            }
            for a in &old.aggregates {
                if let Some(set) = self.aggregate_members.get_mut(a) {
                    set.remove(&(old.root, uuid));
                    if set.is_empty() {
                        self.aggregate_members.remove(a);
                    }
                }
            }
        }
        if let Some(p) = new {
            self.provider_names.insert(p.name.clone(), uuid);
            if let Some(parent) = p.parent {
                self.children.entry(parent).or_default().insert(uuid);
            }
            for t in &p.traits {
                self.trait_providers
                    .entry(t.clone())
                    .or_default()
                    .insert(uuid);
            }
            for a in &p.aggregates {
                self.aggregate_members
                    .entry(*a)
                    .or_default()
                    .insert((p.root, uuid));
            }
            self.providers.insert(uuid, Arc::new(p));
        }
    }

    fn set_consumer(&mut self, uuid: Uuid, new: Option<Consumer>) {
        if let Some(old) = self.consumers.remove(&uuid) {
            for a in &old.allocations {
                if let Some(by_rc) = self.usages.get_mut(&a.provider) {
                    if let Some(u) = by_rc.get_mut(&a.resource_class) {
                        *u -= a.used;
                        if *u == 0 {
                            by_rc.remove(&a.resource_class);
                        }
                    }
                    if by_rc.is_empty() {
                        self.usages.remove(&a.provider);
                    }
                }
                if let Some(set) = self.provider_consumers.get_mut(&a.provider) {
                    set.remove(&uuid);
                    if set.is_empty() {
                        self.provider_consumers.remove(&a.provider);
                    }
                }
            }
        }
        if let Some(c) = new {
            for a in &c.allocations {
                *self
                    .usages
                    .entry(a.provider)
                    .or_default()
                    .entry(a.resource_class.clone())
                    .or_default() += a.used;
                self.provider_consumers
                    .entry(a.provider)
                    .or_default()
                    .insert(uuid);
            }
            self.consumers.insert(uuid, Arc::new(c));
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
        self.usages.get(provider)
    }

    pub fn usage(&self, provider: &Uuid, resource_class: &str) -> i64 {
        self.usages
            .get(provider)
            .and_then(|m| m.get(resource_class))
            .copied()
            .unwrap_or(0)
    }

    /// Consumers holding allocations against a provider.
    pub fn provider_consumers(&self, provider: &Uuid) -> impl Iterator<Item = &Consumer> {
        self.provider_consumers
            .get(provider)
            .into_iter()
            .flatten()
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use placement_types::{ResourceProvider, Timestamp, Uuid};

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
}
