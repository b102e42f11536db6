//! A seeded generator of operation sequences over the whole API.
//!
//! The generator keeps a rough model of what it has asked for (which providers exist, their
//! parents and inventory classes, which custom classes and traits exist, which consumers
//! hold allocations) so that most requests are meaningful (allocations against inventory
//! that exists, candidates for classes that are offered), and mixes in the invalid ones on
//! purpose: wrong and missing generations, values out of range, names that break the
//! patterns, features below their microversion, bad JSON, wrong methods and versions. The
//! model is only a guide: whatever the servers answer, the sequence is the same.
//!
//! Every operation is a function of the random stream alone, so a seed always gives the
//! same sequence.

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};

use crate::op::{Body, Compare, Op};

/// Slots per kind of thing: providers `rp0..`, consumers `c0..`, aggregates `agg0..`.
pub const POOL: usize = 8;
/// Projects and users.
const PEOPLE: usize = 3;

const STANDARD_CLASSES: &[&str] = &["VCPU", "MEMORY_MB", "DISK_GB", "PCI_DEVICE", "SRIOV_NET_VF"];
const CUSTOM_CLASSES: &[&str] = &["CUSTOM_DT_X", "CUSTOM_DT_Y", "CUSTOM_DT_Z"];
const STANDARD_TRAITS: &[&str] = &[
    "HW_CPU_X86_AVX",
    "HW_CPU_X86_SSE2",
    "STORAGE_DISK_SSD",
    "COMPUTE_VOLUME_MULTI_ATTACH",
    "HW_NIC_SRIOV",
];
const CUSTOM_TRAITS: &[&str] = &["CUSTOM_DT_A", "CUSTOM_DT_B", "CUSTOM_DT_C"];
/// Versions no Placement serves, or not versions at all.
const ODD_VERSIONS: &[&str] = &["1.40", "2.0", "0.9", "latest", "abc", "1.", "1.01"];

#[derive(Debug, Clone, Default)]
struct Provider {
    parent: Option<usize>,
    classes: Vec<String>,
}

/// What the generator believes the servers hold.
#[derive(Debug, Default)]
struct Model {
    providers: Vec<Option<Provider>>,
    classes: Vec<String>,
    traits: Vec<String>,
    holding: Vec<bool>,
}

/// The sequence of seed `seed`: `count` operations (a few more when a `limit` query brings
/// its unlimited twin).
pub fn sequence(seed: u64, count: usize) -> Vec<Op> {
    let mut g = Gen {
        rng: StdRng::seed_from_u64(seed),
        model: Model {
            providers: vec![None; POOL],
            holding: vec![false; POOL],
            ..Model::default()
        },
    };
    let mut ops = Vec::with_capacity(count + 16);
    while ops.len() < count {
        let op = g.next();
        if op.compare == Compare::CandidateCount {
            let mut whole = op.clone();
            whole.compare = Compare::Body;
            whole.path = strip_limit(&whole.path);
            ops.push(op);
            ops.push(whole);
        } else {
            ops.push(op);
        }
    }
    ops
}

fn strip_limit(path: &str) -> String {
    let (base, query) = path.split_once('?').unwrap_or((path, ""));
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| !p.starts_with("limit="))
        .collect();
    format!("{base}?{}", kept.join("&"))
}

struct Gen {
    rng: StdRng,
    model: Model,
}

type Maker = fn(&mut Gen) -> Op;

/// The operations and how often each comes.
const MAKERS: &[(u32, Maker)] = &[
    (8, Gen::create_provider),
    (3, Gen::update_provider),
    (2, Gen::delete_provider),
    (2, Gen::show_provider),
    (5, Gen::list_providers),
    (9, Gen::put_inventories),
    (2, Gen::post_inventory),
    (3, Gen::put_inventory),
    (1, Gen::delete_inventory),
    (1, Gen::delete_inventories),
    (2, Gen::show_inventories),
    (3, Gen::resource_classes),
    (3, Gen::traits),
    (3, Gen::provider_traits),
    (3, Gen::aggregates),
    (14, Gen::put_allocations),
    (4, Gen::post_allocations),
    (3, Gen::show_allocations),
    (1, Gen::delete_allocations),
    (3, Gen::usages),
    (2, Gen::reshape),
    (14, Gen::candidates),
    (2, Gen::oddities),
];

impl Gen {
    fn next(&mut self) -> Op {
        let total: u32 = MAKERS.iter().map(|(w, _)| w).sum();
        let mut pick = self.rng.random_range(0..total);
        for (weight, make) in MAKERS {
            if pick < *weight {
                return make(self);
            }
            pick -= weight;
        }
        unreachable!("the weights sum to total")
    }

    // ---- helpers ---------------------------------------------------------------------

    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p)
    }

    fn below(&mut self, n: usize) -> usize {
        self.rng.random_range(0..n)
    }

    /// A microversion in `1.min..=1.max`, now and then one no server serves.
    fn version(&mut self, min: u32, max: u32) -> String {
        if self.chance(0.02) {
            return ODD_VERSIONS
                .choose(&mut self.rng)
                .map_or("1.0", |v| v)
                .to_string();
        }
        format!("1.{}", self.rng.random_range(min..=max))
    }

    fn minor(version: &str) -> u32 {
        version
            .strip_prefix("1.")
            .and_then(|m| m.parse().ok())
            .unwrap_or(if version == "latest" { 39 } else { 0 })
    }

    /// A provider slot: usually one the model has, sometimes any.
    fn provider(&mut self) -> usize {
        let existing: Vec<usize> = (0..POOL)
            .filter(|&i| self.model.providers[i].is_some())
            .collect();
        if existing.is_empty() || self.chance(0.1) {
            self.below(POOL)
        } else {
            existing[self.below(existing.len())]
        }
    }

    fn class(&mut self) -> String {
        if !self.model.classes.is_empty() && self.chance(0.3) {
            let i = self.below(self.model.classes.len());
            return self.model.classes[i].clone();
        }
        if self.chance(0.04) {
            return CUSTOM_CLASSES[self.below(CUSTOM_CLASSES.len())].to_string();
        }
        STANDARD_CLASSES[self.below(STANDARD_CLASSES.len())].to_string()
    }

    /// A class the provider offers, if the model knows one.
    fn offered_class(&mut self, rp: usize) -> String {
        let offered = self.model.providers[rp]
            .as_ref()
            .map(|p| p.classes.clone())
            .unwrap_or_default();
        if offered.is_empty() || self.chance(0.08) {
            self.class()
        } else {
            offered[self.below(offered.len())].clone()
        }
    }

    fn a_trait(&mut self) -> String {
        if !self.model.traits.is_empty() && self.chance(0.35) {
            let i = self.below(self.model.traits.len());
            return self.model.traits[i].clone();
        }
        if self.chance(0.05) {
            return CUSTOM_TRAITS[self.below(CUSTOM_TRAITS.len())].to_string();
        }
        STANDARD_TRAITS[self.below(STANDARD_TRAITS.len())].to_string()
    }

    fn provider_generation(&mut self, rp: usize) -> Value {
        match self.below(20) {
            0 => json!(self.rng.random_range(0..4)),
            1 => json!(99),
            _ => json!(format!("{{gen:rp{rp}}}")),
        }
    }

    fn inventory(&mut self) -> Map<String, Value> {
        let mut inv = Map::new();
        let total: i64 = match self.below(40) {
            0 => 0,
            1 => -1,
            2 => {
                inv.insert("total".into(), json!("12"));
                return inv;
            }
            _ => self.rng.random_range(1..=64),
        };
        inv.insert("total".into(), json!(total));
        if self.chance(0.4) {
            let reserved = if self.chance(0.05) {
                total + 1
            } else {
                self.rng.random_range(0..=total.max(0))
            };
            inv.insert("reserved".into(), json!(reserved));
        }
        if self.chance(0.3) {
            inv.insert("min_unit".into(), json!(self.rng.random_range(1..=2)));
            inv.insert(
                "max_unit".into(),
                json!(self.rng.random_range(1..=total.max(1))),
            );
            inv.insert("step_size".into(), json!(self.rng.random_range(1..=2)));
        }
        if self.chance(0.3) {
            let ratios = [1.0, 1.5, 2.0, 16.0, 0.5];
            inv.insert(
                "allocation_ratio".into(),
                json!(ratios[self.below(ratios.len())]),
            );
        }
        inv
    }

    fn is_descendant(&self, candidate: usize, of: usize) -> bool {
        let mut at = Some(candidate);
        let mut steps = 0;
        while let Some(i) = at {
            if i == of {
                return true;
            }
            at = self.model.providers[i].as_ref().and_then(|p| p.parent);
            steps += 1;
            if steps > POOL {
                return true;
            }
        }
        false
    }

    // ---- providers -------------------------------------------------------------------

    fn create_provider(&mut self) -> Op {
        let slot = self.below(POOL);
        let parent = if self.chance(0.45) {
            let p = self.provider();
            (p != slot && self.model.providers[p].is_some()).then_some(p)
        } else {
            None
        };
        let version = self.version(if parent.is_some() { 14 } else { 0 }, 39);
        let name = match self.below(30) {
            // Another slot's name: a conflict when that provider exists.
            0 => format!("rp-{}", self.below(POOL)),
            1 => String::new(),
            2 => "x".repeat(201),
            3 => format!("rp-\u{e9}-{slot}"),
            _ => format!("rp-{slot}"),
        };
        let mut body = json!({"name": name, "uuid": format!("{{rp{slot}}}")});
        if let Some(p) = parent {
            body["parent_provider_uuid"] = json!(format!("{{rp{p}}}"));
        }
        if self.model.providers[slot].is_none() && !name.is_empty() && name.len() <= 200 {
            self.model.providers[slot] = Some(Provider {
                parent,
                classes: Vec::new(),
            });
        }
        Op::new(
            "providers.create",
            "POST",
            "/resource_providers".into(),
            &version,
        )
        .json(body)
    }

    fn update_provider(&mut self) -> Op {
        let rp = self.provider();
        let version = self.version(0, 39);
        let mut body = json!({"name": format!("rp-{rp}-{}", self.below(3))});
        if self.chance(0.4) {
            let target = self.provider();
            if self.chance(0.2) {
                body["parent_provider_uuid"] = Value::Null;
            } else {
                body["parent_provider_uuid"] = json!(format!("{{rp{target}}}"));
                let allowed = Self::minor(&version) >= 37
                    || self.model.providers[rp]
                        .as_ref()
                        .is_some_and(|p| p.parent.is_none());
                if allowed && Self::minor(&version) >= 14 && !self.is_descendant(target, rp) {
                    if let Some(p) = self.model.providers[rp].as_mut() {
                        p.parent = Some(target);
                    }
                }
            }
        }
        Op::new(
            "providers.update",
            "PUT",
            format!("/resource_providers/{{rp{rp}}}"),
            &version,
        )
        .json(body)
    }

    fn delete_provider(&mut self) -> Op {
        let rp = self.provider();
        let has_children = self
            .model
            .providers
            .iter()
            .flatten()
            .any(|p| p.parent == Some(rp));
        if !has_children {
            self.model.providers[rp] = None;
        }
        let version = self.version(0, 39);
        Op::new(
            "providers.delete",
            "DELETE",
            format!("/resource_providers/{{rp{rp}}}"),
            &version,
        )
    }

    fn show_provider(&mut self) -> Op {
        let rp = self.provider();
        let version = self.version(0, 39);
        Op::new(
            "providers.show",
            "GET",
            format!("/resource_providers/{{rp{rp}}}"),
            &version,
        )
    }

    fn list_providers(&mut self) -> Op {
        let mut query = Vec::new();
        let mut min = 0;
        if self.chance(0.15) {
            query.push(format!("name=rp-{}", self.below(POOL)));
        }
        if self.chance(0.15) {
            query.push(format!("uuid={{rp{}}}", self.below(POOL)));
        }
        if self.chance(0.25) {
            let (a, b) = (self.below(4), self.below(4));
            query.push(match self.below(3) {
                0 => format!("member_of={{agg{a}}}"),
                1 => format!("member_of=in:{{agg{a}}},{{agg{b}}}"),
                _ => {
                    min = min.max(32);
                    format!("member_of=!{{agg{a}}}")
                }
            });
            min = min.max(3);
        }
        if self.chance(0.3) {
            let class = self.class();
            let amount = self.rng.random_range(1..=8);
            query.push(format!("resources={class}:{amount}"));
            min = min.max(4);
        }
        if self.chance(0.25) {
            query.push(format!("in_tree={{rp{}}}", self.provider()));
            min = min.max(14);
        }
        if self.chance(0.3) {
            let (t1, t2) = (self.a_trait(), self.a_trait());
            query.push(match self.below(3) {
                0 => format!("required={t1}"),
                1 => {
                    min = min.max(22);
                    format!("required={t1},!{t2}")
                }
                _ => {
                    min = min.max(39);
                    format!("required=in:{t1},{t2}")
                }
            });
            min = min.max(18);
        }
        // Now and then below the features' version: Placement's 400 for unknown parameters.
        let version = if self.chance(0.1) {
            self.version(0, 39)
        } else {
            self.version(min, 39)
        };
        let path = if query.is_empty() {
            "/resource_providers".to_string()
        } else {
            format!("/resource_providers?{}", query.join("&"))
        };
        Op::new("providers.list", "GET", path, &version)
    }

    // ---- inventories -----------------------------------------------------------------

    fn put_inventories(&mut self) -> Op {
        let rp = self.provider();
        let mut inventories = Map::new();
        let mut classes = Vec::new();
        for _ in 0..self.rng.random_range(0..=3) {
            let class = self.class();
            inventories.insert(class.clone(), Value::Object(self.inventory()));
            classes.push(class);
        }
        let mut body = json!({"inventories": inventories});
        if !self.chance(0.03) {
            body["resource_provider_generation"] = self.provider_generation(rp);
        }
        if let Some(p) = self.model.providers[rp].as_mut() {
            p.classes = classes;
        }
        let version = self.version(0, 39);
        Op::new(
            "inventories.put_all",
            "PUT",
            format!("/resource_providers/{{rp{rp}}}/inventories"),
            &version,
        )
        .json(body)
    }

    fn post_inventory(&mut self) -> Op {
        let rp = self.provider();
        let class = self.class();
        let mut body = self.inventory();
        body.insert("resource_class".into(), json!(class));
        body.insert(
            "resource_provider_generation".into(),
            self.provider_generation(rp),
        );
        if let Some(p) = self.model.providers[rp].as_mut() {
            if !p.classes.contains(&class) {
                p.classes.push(class);
            }
        }
        let version = self.version(0, 39);
        Op::new(
            "inventories.post",
            "POST",
            format!("/resource_providers/{{rp{rp}}}/inventories"),
            &version,
        )
        .json(Value::Object(body))
    }

    fn put_inventory(&mut self) -> Op {
        let rp = self.provider();
        let class = self.offered_class(rp);
        let mut body = self.inventory();
        body.insert(
            "resource_provider_generation".into(),
            self.provider_generation(rp),
        );
        let version = self.version(0, 39);
        Op::new(
            "inventories.put_one",
            "PUT",
            format!("/resource_providers/{{rp{rp}}}/inventories/{class}"),
            &version,
        )
        .json(Value::Object(body))
    }

    fn delete_inventory(&mut self) -> Op {
        let rp = self.provider();
        let class = self.offered_class(rp);
        let version = self.version(0, 39);
        Op::new(
            "inventories.delete_one",
            "DELETE",
            format!("/resource_providers/{{rp{rp}}}/inventories/{class}"),
            &version,
        )
    }

    fn delete_inventories(&mut self) -> Op {
        let rp = self.provider();
        // Below 1.5 the method is not allowed.
        let version = self.version(3, 39);
        Op::new(
            "inventories.delete_all",
            "DELETE",
            format!("/resource_providers/{{rp{rp}}}/inventories"),
            &version,
        )
    }

    fn show_inventories(&mut self) -> Op {
        let rp = self.provider();
        let version = self.version(0, 39);
        if self.chance(0.5) {
            let class = self.offered_class(rp);
            Op::new(
                "inventories.show_one",
                "GET",
                format!("/resource_providers/{{rp{rp}}}/inventories/{class}"),
                &version,
            )
        } else {
            Op::new(
                "inventories.show_all",
                "GET",
                format!("/resource_providers/{{rp{rp}}}/inventories"),
                &version,
            )
        }
    }

    // ---- resource classes and traits -------------------------------------------------

    fn resource_classes(&mut self) -> Op {
        let name = match self.below(12) {
            0 => "custom_dt_lower".to_string(),
            1 => "VCPU".to_string(),
            2 => "CUSTOM_".to_string(),
            _ => CUSTOM_CLASSES[self.below(CUSTOM_CLASSES.len())].to_string(),
        };
        let version = self.version(0, 39);
        match self.below(6) {
            0 | 1 => {
                if name.starts_with("CUSTOM_DT") && !self.model.classes.contains(&name) {
                    self.model.classes.push(name.clone());
                }
                Op::new(
                    "classes.create",
                    "POST",
                    "/resource_classes".into(),
                    &version,
                )
                .json(json!({"name": name}))
            }
            2 => {
                let version = self.version(2, 39);
                if Self::minor(&version) >= 7
                    && name.starts_with("CUSTOM_DT")
                    && !self.model.classes.contains(&name)
                {
                    self.model.classes.push(name.clone());
                }
                let op = Op::new(
                    "classes.put",
                    "PUT",
                    format!("/resource_classes/{name}"),
                    &version,
                );
                if Self::minor(&version) < 7 {
                    // Before 1.7 PUT renames a class.
                    let to = CUSTOM_CLASSES[self.below(CUSTOM_CLASSES.len())];
                    op.json(json!({"name": to}))
                } else {
                    op
                }
            }
            3 => {
                self.model.classes.retain(|c| c != &name);
                Op::new(
                    "classes.delete",
                    "DELETE",
                    format!("/resource_classes/{name}"),
                    &version,
                )
            }
            4 => Op::new(
                "classes.show",
                "GET",
                format!("/resource_classes/{name}"),
                &version,
            ),
            _ => Op::new("classes.list", "GET", "/resource_classes".into(), &version),
        }
    }

    fn traits(&mut self) -> Op {
        let name = match self.below(10) {
            0 => "NOT_CUSTOM_DT".to_string(),
            1 => STANDARD_TRAITS[self.below(STANDARD_TRAITS.len())].to_string(),
            _ => CUSTOM_TRAITS[self.below(CUSTOM_TRAITS.len())].to_string(),
        };
        let version = self.version(5, 39);
        match self.below(6) {
            0 | 1 => {
                if name.starts_with("CUSTOM_") && !self.model.traits.contains(&name) {
                    self.model.traits.push(name.clone());
                }
                Op::new("traits.put", "PUT", format!("/traits/{name}"), &version)
            }
            2 => {
                self.model.traits.retain(|t| t != &name);
                Op::new(
                    "traits.delete",
                    "DELETE",
                    format!("/traits/{name}"),
                    &version,
                )
            }
            3 => Op::new("traits.show", "GET", format!("/traits/{name}"), &version),
            _ => {
                let query = match self.below(5) {
                    0 => "?name=startswith:CUSTOM_".to_string(),
                    1 => format!("?name=in:{},{}", self.a_trait(), self.a_trait()),
                    2 => "?associated=true&name=startswith:CUSTOM".to_string(),
                    3 => "?associated=false&name=startswith:HW_CPU_X86_SSE".to_string(),
                    _ => "?name=startswith:HW_NIC".to_string(),
                };
                Op::new("traits.list", "GET", format!("/traits{query}"), &version)
            }
        }
    }

    fn provider_traits(&mut self) -> Op {
        let rp = self.provider();
        let version = self.version(5, 39);
        let path = format!("/resource_providers/{{rp{rp}}}/traits");
        match self.below(5) {
            0 => Op::new("provider_traits.delete", "DELETE", path, &version),
            1 => Op::new("provider_traits.show", "GET", path, &version),
            _ => {
                let mut traits = Vec::new();
                for _ in 0..self.rng.random_range(0..=3) {
                    let t = self.a_trait();
                    if !traits.contains(&t) {
                        traits.push(t);
                    }
                }
                let body = json!({
                    "traits": traits,
                    "resource_provider_generation": self.provider_generation(rp),
                });
                Op::new("provider_traits.put", "PUT", path, &version).json(body)
            }
        }
    }

    fn aggregates(&mut self) -> Op {
        let rp = self.provider();
        let version = self.version(1, 39);
        let path = format!("/resource_providers/{{rp{rp}}}/aggregates");
        if self.chance(0.35) {
            return Op::new("aggregates.show", "GET", path, &version);
        }
        let mut members: Vec<Value> = Vec::new();
        for _ in 0..self.rng.random_range(0..=3) {
            members.push(json!(format!("{{agg{}}}", self.below(4))));
        }
        if self.chance(0.05) {
            members.push(json!("not-a-uuid"));
            members.push(json!("abc"));
        }
        let body = if Self::minor(&version) >= 19 {
            json!({
                "aggregates": members,
                "resource_provider_generation": self.provider_generation(rp),
            })
        } else {
            Value::Array(members)
        };
        Op::new("aggregates.put", "PUT", path, &version).json(body)
    }

    // ---- allocations -----------------------------------------------------------------

    /// `(provider, class, amount)` lines for one consumer.
    fn allocation_lines(&mut self) -> Vec<(usize, String, i64)> {
        let mut lines: Vec<(usize, String, i64)> = Vec::new();
        for _ in 0..self.rng.random_range(1..=3) {
            let rp = self.provider();
            let class = self.offered_class(rp);
            if lines.iter().any(|(r, c, _)| *r == rp && *c == class) {
                continue;
            }
            let amount = match self.below(30) {
                0 => 0,
                1 => 1000,
                _ => self.rng.random_range(1..=4),
            };
            lines.push((rp, class, amount));
        }
        lines
    }

    fn allocations_dict(lines: &[(usize, String, i64)]) -> Value {
        let mut by_rp = Map::new();
        for (rp, class, amount) in lines {
            let entry = by_rp
                .entry(format!("{{rp{rp}}}"))
                .or_insert_with(|| json!({"resources": {}}));
            entry["resources"][class] = json!(amount);
        }
        Value::Object(by_rp)
    }

    fn consumer_generation(&mut self, c: usize) -> Value {
        match self.below(20) {
            0 => Value::Null,
            1 => json!(0),
            2 => json!(1),
            _ => json!(format!("{{cgen:c{c}}}")),
        }
    }

    fn consumer_type(&mut self) -> Value {
        json!(["INSTANCE", "MIGRATION", "CUSTOM_DT"][self.below(3)])
    }

    /// One consumer's body at `minor` (1.12 and later: the dict form).
    fn consumer_body(&mut self, c: usize, minor: u32, lines: &[(usize, String, i64)]) -> Value {
        let mut body = Map::new();
        body.insert("allocations".into(), Self::allocations_dict(lines));
        let (proj, user) = (self.below(PEOPLE), self.below(PEOPLE));
        body.insert("project_id".into(), json!(format!("{{proj{proj}}}")));
        body.insert("user_id".into(), json!(format!("{{user{user}}}")));
        if minor >= 28 {
            body.insert("consumer_generation".into(), self.consumer_generation(c));
        }
        if minor >= 38 && !self.chance(0.03) {
            body.insert("consumer_type".into(), self.consumer_type());
        }
        Value::Object(body)
    }

    fn put_allocations(&mut self) -> Op {
        let c = self.below(POOL);
        let version = self.version(0, 39);
        let minor = Self::minor(&version);
        let lines = if self.chance(0.06) {
            Vec::new()
        } else {
            self.allocation_lines()
        };
        self.model.holding[c] = !lines.is_empty();
        let body = if minor < 12 {
            let list: Vec<Value> = lines
                .iter()
                .map(|(rp, class, amount)| {
                    json!({
                        "resource_provider": {"uuid": format!("{{rp{rp}}}")},
                        "resources": {class.as_str(): amount},
                    })
                })
                .collect();
            let mut body = json!({"allocations": list});
            if minor >= 8 {
                body["project_id"] = json!(format!("{{proj{}}}", self.below(PEOPLE)));
                body["user_id"] = json!(format!("{{user{}}}", self.below(PEOPLE)));
            }
            body
        } else {
            self.consumer_body(c, minor, &lines)
        };
        Op::new(
            "allocations.put",
            "PUT",
            format!("/allocations/{{c{c}}}"),
            &version,
        )
        .json(body)
    }

    fn post_allocations(&mut self) -> Op {
        let version = self.version(13, 39);
        let minor = Self::minor(&version);
        let mut body = Map::new();
        for _ in 0..self.rng.random_range(1..=3) {
            let c = self.below(POOL);
            let lines = if self.chance(0.15) {
                Vec::new()
            } else {
                self.allocation_lines()
            };
            self.model.holding[c] = !lines.is_empty();
            let consumer = self.consumer_body(c, minor, &lines);
            body.insert(format!("{{c{c}}}"), consumer);
        }
        Op::new("allocations.post", "POST", "/allocations".into(), &version)
            .json(Value::Object(body))
    }

    fn show_allocations(&mut self) -> Op {
        let version = self.version(0, 39);
        if self.chance(0.35) {
            let rp = self.provider();
            return Op::new(
                "allocations.of_provider",
                "GET",
                format!("/resource_providers/{{rp{rp}}}/allocations"),
                &version,
            );
        }
        let c = self.below(POOL);
        Op::new(
            "allocations.show",
            "GET",
            format!("/allocations/{{c{c}}}"),
            &version,
        )
    }

    fn delete_allocations(&mut self) -> Op {
        let c = self.below(POOL);
        self.model.holding[c] = false;
        let version = self.version(0, 39);
        Op::new(
            "allocations.delete",
            "DELETE",
            format!("/allocations/{{c{c}}}"),
            &version,
        )
    }

    fn usages(&mut self) -> Op {
        if self.chance(0.4) {
            let rp = self.provider();
            let version = self.version(0, 39);
            return Op::new(
                "usages.provider",
                "GET",
                format!("/resource_providers/{{rp{rp}}}/usages"),
                &version,
            );
        }
        let version = self.version(9, 39);
        let mut query = format!("project_id={{proj{}}}", self.below(PEOPLE));
        if self.chance(0.4) {
            query.push_str(&format!("&user_id={{user{}}}", self.below(PEOPLE)));
        }
        if self.chance(0.3) {
            let t = ["INSTANCE", "all", "unknown", "MIGRATION"][self.below(4)];
            query.push_str(&format!("&consumer_type={t}"));
        }
        Op::new(
            "usages.project",
            "GET",
            format!("/usages?{query}"),
            &version,
        )
    }

    fn reshape(&mut self) -> Op {
        let version = self.version(30, 39);
        let minor = Self::minor(&version);
        let mut inventories = Map::new();
        for _ in 0..self.rng.random_range(1..=2) {
            let rp = self.provider();
            let mut invs = Map::new();
            let mut classes = Vec::new();
            for _ in 0..self.rng.random_range(0..=2) {
                let class = self.class();
                invs.insert(class.clone(), Value::Object(self.inventory()));
                classes.push(class);
            }
            if let Some(p) = self.model.providers[rp].as_mut() {
                p.classes = classes;
            }
            inventories.insert(
                format!("{{rp{rp}}}"),
                json!({
                    "inventories": invs,
                    "resource_provider_generation": self.provider_generation(rp),
                }),
            );
        }
        let mut allocations = Map::new();
        for _ in 0..self.rng.random_range(0..=2) {
            let c = self.below(POOL);
            let lines = self.allocation_lines();
            self.model.holding[c] = !lines.is_empty();
            let consumer = self.consumer_body(c, minor, &lines);
            allocations.insert(format!("{{c{c}}}"), consumer);
        }
        Op::new("reshaper", "POST", "/reshaper".into(), &version)
            .json(json!({"inventories": inventories, "allocations": allocations}))
    }

    // ---- allocation candidates -------------------------------------------------------

    fn resources_param(&mut self) -> String {
        let mut parts: Vec<String> = Vec::new();
        for _ in 0..self.rng.random_range(1..=2) {
            let class = self.class();
            if parts.iter().any(|p| p.starts_with(&format!("{class}:"))) {
                continue;
            }
            let amount = if self.chance(0.05) {
                0
            } else {
                self.rng.random_range(1..=6)
            };
            parts.push(format!("{class}:{amount}"));
        }
        parts.join(",")
    }

    fn traits_param(&mut self, min: &mut u32) -> String {
        let (t1, t2) = (self.a_trait(), self.a_trait());
        match self.below(5) {
            0 | 1 => t1,
            2 => {
                *min = (*min).max(22);
                format!("!{t1}")
            }
            3 => {
                *min = (*min).max(22);
                format!("{t1},!{t2}")
            }
            _ => {
                *min = (*min).max(39);
                format!("in:{t1},{t2}")
            }
        }
    }

    fn candidates(&mut self) -> Op {
        let mut query: Vec<String> = Vec::new();
        let mut min = 10;
        if !self.chance(0.1) {
            query.push(format!("resources={}", self.resources_param()));
        }
        if self.chance(0.25) {
            query.push(format!("required={}", self.traits_param(&mut min)));
            min = min.max(17);
        }
        if self.chance(0.15) {
            let a = self.below(4);
            query.push(if self.chance(0.7) {
                format!("member_of={{agg{a}}}")
            } else {
                min = min.max(32);
                format!("member_of=!{{agg{a}}}")
            });
            min = min.max(21);
        }
        if self.chance(0.12) {
            query.push(format!("in_tree={{rp{}}}", self.provider()));
            min = min.max(31);
        }
        if self.chance(0.1) {
            query.push(format!("root_required={}", self.traits_param(&mut min)));
            min = min.max(35);
        }
        let groups = if self.chance(0.4) {
            self.rng.random_range(1..=3)
        } else {
            0
        };
        let mut suffixes = Vec::new();
        for g in 1..=groups {
            let suffix = if self.chance(0.2) {
                min = min.max(33);
                ["_NET", "_ACCEL", "_X"][g - 1].to_string()
            } else {
                g.to_string()
            };
            query.push(format!("resources{suffix}={}", self.resources_param()));
            if self.chance(0.25) {
                query.push(format!("required{suffix}={}", self.traits_param(&mut min)));
            }
            if self.chance(0.1) {
                query.push(format!("member_of{suffix}={{agg{}}}", self.below(4)));
            }
            if self.chance(0.1) {
                query.push(format!("in_tree{suffix}={{rp{}}}", self.provider()));
                min = min.max(31);
            }
            suffixes.push(suffix);
            min = min.max(25);
        }
        // Now and then no policy where one is required.
        if (groups > 1 || (groups == 1 && self.chance(0.3))) && !self.chance(0.05) {
            let policy = if self.chance(0.5) { "isolate" } else { "none" };
            query.push(format!("group_policy={policy}"));
        }
        if suffixes.len() >= 2 && self.chance(0.3) {
            let same: Vec<String> = suffixes.iter().map(|s| format!("_{s}")).collect();
            query.push(format!(
                "same_subtree={}",
                same.join(",").replace("__", "_")
            ));
            min = min.max(36);
        }
        let limited = self.chance(0.15);
        if limited {
            query.push(format!("limit={}", self.rng.random_range(1..=3)));
            min = min.max(16);
        }
        let version = if self.chance(0.08) {
            self.version(0, 39)
        } else {
            self.version(min, 39)
        };
        let mut op = Op::new(
            "candidates",
            "GET",
            format!("/allocation_candidates?{}", query.join("&")),
            &version,
        );
        if limited {
            op.compare = Compare::CandidateCount;
        }
        op
    }

    // ---- everything else -------------------------------------------------------------

    fn oddities(&mut self) -> Op {
        let version = self.version(0, 39);
        match self.below(9) {
            0 => {
                let mut op = Op::new("odd.root", "GET", "/".into(), &version);
                if self.chance(0.5) {
                    op.version = None;
                }
                op
            }
            1 => Op::new(
                "odd.method",
                "PATCH",
                "/resource_providers".into(),
                &version,
            ),
            2 => Op::new(
                "odd.method",
                "POST",
                format!("/resource_providers/{{rp{}}}", self.provider()),
                &version,
            ),
            3 => {
                let path = ["/traits", "/", "/resource_providers"][self.below(3)];
                let method = if self.chance(0.5) { "DELETE" } else { "HEAD" };
                Op::new("odd.method", method, path.into(), &version)
            }
            4 => Op::new("odd.path", "GET", "/nowhere".into(), &version),
            5 => {
                let mut op = Op::new("odd.json", "POST", "/resource_providers".into(), &version);
                op.body = Some(Body::Raw("{\"name\": \"broken\"".into()));
                op
            }
            6 => {
                let mut op = Op::new(
                    "odd.content_type",
                    "POST",
                    "/resource_providers".into(),
                    &version,
                )
                .json(json!({"name": "rp-text"}));
                op.content_type = Some("text/plain");
                op
            }
            7 => {
                let mut op = Op::new(
                    "odd.no_version",
                    "GET",
                    format!("/resource_providers/{{rp{}}}", self.provider()),
                    &version,
                );
                op.version = None;
                op
            }
            _ => Op::new(
                "odd.bad_uuid",
                "GET",
                "/resource_providers/not-a-uuid".into(),
                &version,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_always_gives_the_same_sequence() {
        let a: Vec<String> = sequence(7, 200).iter().map(|o| o.to_string()).collect();
        let b: Vec<String> = sequence(7, 200).iter().map(|o| o.to_string()).collect();
        assert_eq!(a, b);
        assert_ne!(
            a,
            sequence(8, 200)
                .iter()
                .map(|o| o.to_string())
                .collect::<Vec<_>>()
        );
        assert!(a.len() >= 200);
    }

    #[test]
    fn a_limited_query_is_followed_by_its_whole_twin() {
        let ops = sequence(3, 2000);
        let limited = ops
            .iter()
            .position(|o| o.compare == Compare::CandidateCount)
            .expect("2000 operations include a limited query");
        let twin = &ops[limited + 1];
        assert_eq!(twin.compare, Compare::Body);
        assert!(!twin.path.contains("limit="));
        assert_eq!(twin.path, strip_limit(&ops[limited].path));
    }
}
