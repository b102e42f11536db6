//! The comparison behind `placementd import --verify`: both services' answers turned into
//! the same flat set of named records, then compared record by record and field by field.
//!
//! # Records
//! Each answer of the REST API (microversion 1.39) becomes one or more records, keyed by a
//! name a person can read and look up again:
//!
//! | record                         | value                                              |
//! |--------------------------------|----------------------------------------------------|
//! | `resource class NAME`          | `{}` (it exists)                                   |
//! | `trait NAME`                   | `{}` (it exists)                                   |
//! | `provider U`                   | name, generation, parent and root provider uuids   |
//! | `provider U inventory RC`      | every inventory field                              |
//! | `provider U traits`            | the provider's traits, sorted                      |
//! | `provider U aggregates`        | the provider's aggregates, sorted                  |
//! | `provider U usages`            | usage per resource class                           |
//! | `provider U allocation C`      | consumer C's resources on provider U               |
//! | `consumer C`                   | consumer generation, project, user, consumer type  |
//! | `consumer C allocation U`      | consumer C's resources on provider U               |
//! | `project P usages`             | `GET /usages?project_id=P`: usage per consumer type|
//!
//! # What may differ, and nothing else
//! Placement promises no order for the lists of resource classes, traits, providers and
//! aggregates: they are sorted (or keyed) before comparing. Links (`links`) are derived from
//! the URL a service is reached under and are dropped. Numbers are compared as numbers
//! (`16` and `16.0` are the same allocation ratio). Timestamps are not in the bodies at
//! 1.39 (only in `Last-Modified` headers, which are not read). Every other field must be
//! equal, including every generation: nova caches provider generations, and an import that
//! changed one would make its next write fail.
//!
//! The provider generation that `GET /allocations/{c}` repeats per provider is dropped
//! there: it is compared once, in `provider U`.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

/// All records of one side, by record name.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Records(pub BTreeMap<String, Value>);

/// One difference between the source and the target.
#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    /// The record's name (`provider U inventory VCPU`).
    pub record: String,
    /// The field inside the record (`total`, `usages.all.VCPU`); empty for the whole record.
    pub field: String,
    /// The value on the source (the running Placement); `None` when it has no such record.
    pub source: Option<Value>,
    /// The value on the target (placementd); `None` when it has no such record.
    pub target: Option<Value>,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: &Option<Value>| match v {
            Some(v) => v.to_string(),
            None => "(absent)".to_string(),
        };
        match (&self.source, &self.target) {
            (Some(s), None) if self.field.is_empty() => {
                write!(f, "{}: only in the source: {s}", self.record)
            }
            (None, Some(t)) if self.field.is_empty() => {
                write!(f, "{}: only in the target: {t}", self.record)
            }
            (Some(Value::Array(s)), Some(Value::Array(t))) => {
                let only_s: Vec<&Value> = s.iter().filter(|v| !t.contains(v)).collect();
                let only_t: Vec<&Value> = t.iter().filter(|v| !s.contains(v)).collect();
                write!(
                    f,
                    "{}{}{}: only in the source {}, only in the target {}",
                    self.record,
                    if self.field.is_empty() { "" } else { ": " },
                    self.field,
                    Value::Array(only_s.into_iter().cloned().collect()),
                    Value::Array(only_t.into_iter().cloned().collect()),
                )
            }
            _ => write!(
                f,
                "{}{}{}: source {}, target {}",
                self.record,
                if self.field.is_empty() { "" } else { ": " },
                self.field,
                show(&self.source),
                show(&self.target)
            ),
        }
    }
}

/// Counts of what the source holds, for the summary line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counts {
    pub resource_classes: usize,
    pub traits: usize,
    pub providers: usize,
    pub inventories: usize,
    pub provider_traits: usize,
    pub aggregates: usize,
    pub allocations: usize,
    pub consumers: usize,
    pub projects: usize,
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} providers, {} inventories, {} provider traits, {} aggregates, {} allocations, \
             {} consumers, {} projects' usages, {} resource classes, {} traits",
            self.providers,
            self.inventories,
            self.provider_traits,
            self.aggregates,
            self.allocations,
            self.consumers,
            self.projects,
            self.resource_classes,
            self.traits
        )
    }
}

/// An answer that does not have the shape Placement gives it.
fn shape(what: &str, expected: &str) -> String {
    format!("{what}: the answer has no {expected}; is this a Placement API at microversion 1.39?")
}

/// The object `body[key]`, or an error naming the request.
fn object<'a>(body: &'a Value, key: &str, what: &str) -> Result<&'a Map<String, Value>, String> {
    body.get(key)
        .and_then(Value::as_object)
        .ok_or_else(|| shape(what, &format!("`{key}` object")))
}

/// The array `body[key]`, or an error naming the request.
fn array<'a>(body: &'a Value, key: &str, what: &str) -> Result<&'a [Value], String> {
    body.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .ok_or_else(|| shape(what, &format!("`{key}` list")))
}

/// The strings of a list, sorted (Placement promises no order).
fn sorted_strings(items: &[Value], what: &str) -> Result<Value, String> {
    let mut names = items
        .iter()
        .map(|v| v.as_str().map(str::to_string))
        .collect::<Option<Vec<String>>>()
        .ok_or_else(|| shape(what, "list of strings"))?;
    names.sort();
    Ok(Value::Array(names.into_iter().map(Value::String).collect()))
}

/// `fields` of `from`, each `null` when absent.
fn pick(from: &Map<String, Value>, fields: &[&str]) -> Value {
    Value::Object(
        fields
            .iter()
            .map(|f| {
                (
                    (*f).to_string(),
                    from.get(*f).cloned().unwrap_or(Value::Null),
                )
            })
            .collect(),
    )
}

/// `value` without `links` anywhere in it.
fn without_links(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| k.as_str() != "links")
                .map(|(k, v)| (k.clone(), without_links(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

impl Records {
    fn put(&mut self, record: String, value: Value) {
        self.0.insert(record, value);
    }

    /// `GET /resource_classes`.
    pub fn add_resource_classes(&mut self, body: &Value) -> Result<(), String> {
        const WHAT: &str = "GET /resource_classes";
        for class in array(body, "resource_classes", WHAT)? {
            let name = class
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| shape(WHAT, "resource class `name`"))?;
            self.put(format!("resource class {name}"), Value::Object(Map::new()));
        }
        Ok(())
    }

    /// `GET /traits`.
    pub fn add_traits(&mut self, body: &Value) -> Result<(), String> {
        const WHAT: &str = "GET /traits";
        for name in array(body, "traits", WHAT)? {
            let name = name
                .as_str()
                .ok_or_else(|| shape(WHAT, "list of strings"))?;
            self.put(format!("trait {name}"), Value::Object(Map::new()));
        }
        Ok(())
    }

    /// `GET /resource_providers`; returns the providers' uuids.
    pub fn add_providers(&mut self, body: &Value) -> Result<Vec<String>, String> {
        const WHAT: &str = "GET /resource_providers";
        let mut uuids = Vec::new();
        for rp in array(body, "resource_providers", WHAT)? {
            let rp = rp
                .as_object()
                .ok_or_else(|| shape(WHAT, "list of provider objects"))?;
            let uuid = rp
                .get("uuid")
                .and_then(Value::as_str)
                .ok_or_else(|| shape(WHAT, "provider `uuid`"))?;
            self.put(
                format!("provider {uuid}"),
                pick(
                    rp,
                    &[
                        "name",
                        "generation",
                        "parent_provider_uuid",
                        "root_provider_uuid",
                    ],
                ),
            );
            uuids.push(uuid.to_string());
        }
        Ok(uuids)
    }

    /// `GET /resource_providers/{rp}/inventories`.
    pub fn add_inventories(&mut self, rp: &str, body: &Value) -> Result<(), String> {
        let what = format!("GET /resource_providers/{rp}/inventories");
        for (class, inventory) in object(body, "inventories", &what)? {
            self.put(
                format!("provider {rp} inventory {class}"),
                without_links(inventory),
            );
        }
        Ok(())
    }

    /// `GET /resource_providers/{rp}/traits`.
    pub fn add_provider_traits(&mut self, rp: &str, body: &Value) -> Result<(), String> {
        let what = format!("GET /resource_providers/{rp}/traits");
        let traits = sorted_strings(array(body, "traits", &what)?, &what)?;
        self.put(format!("provider {rp} traits"), traits);
        Ok(())
    }

    /// `GET /resource_providers/{rp}/aggregates`.
    pub fn add_aggregates(&mut self, rp: &str, body: &Value) -> Result<(), String> {
        let what = format!("GET /resource_providers/{rp}/aggregates");
        let aggregates = sorted_strings(array(body, "aggregates", &what)?, &what)?;
        self.put(format!("provider {rp} aggregates"), aggregates);
        Ok(())
    }

    /// `GET /resource_providers/{rp}/usages`.
    pub fn add_provider_usages(&mut self, rp: &str, body: &Value) -> Result<(), String> {
        let what = format!("GET /resource_providers/{rp}/usages");
        let usages = object(body, "usages", &what)?;
        self.put(
            format!("provider {rp} usages"),
            Value::Object(usages.clone()),
        );
        Ok(())
    }

    /// `GET /resource_providers/{rp}/allocations`; returns the consumers found.
    pub fn add_provider_allocations(
        &mut self,
        rp: &str,
        body: &Value,
    ) -> Result<Vec<String>, String> {
        let what = format!("GET /resource_providers/{rp}/allocations");
        let mut consumers = Vec::new();
        for (consumer, allocation) in object(body, "allocations", &what)? {
            let resources = allocation
                .get("resources")
                .cloned()
                .ok_or_else(|| shape(&what, "`resources` in an allocation"))?;
            self.put(format!("provider {rp} allocation {consumer}"), resources);
            consumers.push(consumer.clone());
        }
        Ok(consumers)
    }

    /// `GET /allocations/{consumer}`; returns the consumer's project, if it has one.
    pub fn add_consumer(&mut self, consumer: &str, body: &Value) -> Result<Option<String>, String> {
        let what = format!("GET /allocations/{consumer}");
        let allocations = object(body, "allocations", &what)?;
        if allocations.is_empty() {
            // Placement answers an unknown consumer (or one without allocations, which it
            // deletes) with `{"allocations": {}}` only: no consumer record.
            return Ok(None);
        }
        for (rp, allocation) in allocations {
            let resources = allocation
                .get("resources")
                .cloned()
                .ok_or_else(|| shape(&what, "`resources` in an allocation"))?;
            self.put(format!("consumer {consumer} allocation {rp}"), resources);
        }
        let fields = body
            .as_object()
            .ok_or_else(|| shape(&what, "object body"))?;
        self.put(
            format!("consumer {consumer}"),
            pick(
                fields,
                &[
                    "consumer_generation",
                    "project_id",
                    "user_id",
                    "consumer_type",
                ],
            ),
        );
        Ok(fields
            .get("project_id")
            .and_then(Value::as_str)
            .map(str::to_string))
    }

    /// `GET /usages?project_id={project}`.
    pub fn add_project_usages(&mut self, project: &str, body: &Value) -> Result<(), String> {
        let what = format!("GET /usages?project_id={project}");
        let usages = object(body, "usages", &what)?;
        self.put(
            format!("project {project} usages"),
            Value::Object(usages.clone()),
        );
        Ok(())
    }

    /// What these records hold, by kind.
    pub fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        let mut aggregates = std::collections::BTreeSet::new();
        for (record, value) in &self.0 {
            let words: Vec<&str> = record.split(' ').collect();
            match words.as_slice() {
                ["resource", "class", _] => counts.resource_classes += 1,
                ["trait", _] => counts.traits += 1,
                ["provider", _] => counts.providers += 1,
                ["provider", _, "inventory", _] => counts.inventories += 1,
                ["provider", _, "traits"] => {
                    counts.provider_traits += value.as_array().map_or(0, Vec::len);
                }
                ["provider", _, "aggregates"] => {
                    aggregates.extend(value.as_array().into_iter().flatten().cloned().map(|v| {
                        match v {
                            Value::String(s) => s,
                            other => other.to_string(),
                        }
                    }));
                }
                ["provider", _, "allocation", _] => counts.allocations += 1,
                ["consumer", _] => counts.consumers += 1,
                ["project", _, "usages"] => counts.projects += 1,
                _ => {}
            }
        }
        counts.aggregates = aggregates.len();
        counts
    }
}

/// Every difference between `source` and `target`, in record order, then field order. A
/// provider's records are named with the provider's name too (`provider U (cn1) traits`).
pub fn compare(source: &Records, target: &Records) -> Vec<Difference> {
    let mut differences = raw_differences(source, target);
    for d in &mut differences {
        d.record = with_provider_name(&d.record, source, target);
    }
    differences
}

/// `provider U …` as `provider U (NAME) …`, NAME from either side; other records as they are.
fn with_provider_name(record: &str, source: &Records, target: &Records) -> String {
    let mut words = record.splitn(3, ' ');
    let (Some("provider"), Some(uuid)) = (words.next(), words.next()) else {
        return record.to_string();
    };
    let key = format!("provider {uuid}");
    let name = [source, target]
        .iter()
        .find_map(|side| side.0.get(&key)?.get("name")?.as_str());
    match (name, words.next()) {
        (Some(name), Some(rest)) => format!("provider {uuid} ({name}) {rest}"),
        (Some(name), None) => format!("provider {uuid} ({name})"),
        (None, _) => record.to_string(),
    }
}

fn raw_differences(source: &Records, target: &Records) -> Vec<Difference> {
    let mut differences = Vec::new();
    let mut names: Vec<&String> = source.0.keys().chain(target.0.keys()).collect();
    names.sort();
    names.dedup();
    for name in names {
        match (source.0.get(name), target.0.get(name)) {
            (Some(s), Some(t)) => compare_values(name, "", s, t, &mut differences),
            (s, t) => differences.push(Difference {
                record: name.clone(),
                field: String::new(),
                source: s.cloned(),
                target: t.cloned(),
            }),
        }
    }
    differences
}

/// Compares two values of one record; objects field by field (`a.b` for nested fields).
fn compare_values(record: &str, field: &str, s: &Value, t: &Value, out: &mut Vec<Difference>) {
    match (s, t) {
        (Value::Object(s), Value::Object(t)) => {
            let mut keys: Vec<&String> = s.keys().chain(t.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let path = if field.is_empty() {
                    key.clone()
                } else {
                    format!("{field}.{key}")
                };
                match (s.get(key), t.get(key)) {
                    (Some(sv), Some(tv)) => compare_values(record, &path, sv, tv, out),
                    (sv, tv) => out.push(Difference {
                        record: record.to_string(),
                        field: path,
                        source: sv.cloned(),
                        target: tv.cloned(),
                    }),
                }
            }
        }
        _ if same(s, t) => {}
        _ => out.push(Difference {
            record: record.to_string(),
            field: field.to_string(),
            source: Some(s.clone()),
            target: Some(t.clone()),
        }),
    }
}

/// Equal values, numbers compared by value (`16` = `16.0`).
fn same(s: &Value, t: &Value) -> bool {
    match (s, t) {
        (Value::Number(a), Value::Number(b)) => match (a.as_i64(), b.as_i64()) {
            (Some(a), Some(b)) => a == b,
            _ => a.as_f64() == b.as_f64(),
        },
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len() && a.iter().all(|(k, v)| b.get(k).is_some_and(|w| same(v, w)))
        }
        _ => s == t,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const RP: &str = "4e8e5957-649f-477b-9e5b-f1f75b21c03c";
    const CHILD: &str = "6c4b8a9e-2c55-4b6a-9d3a-8c1f2f5b0001";
    const C1: &str = "11111111-2222-3333-4444-555555555555";

    /// One side, built from the answers Placement 16.0.0 gives at 1.39.
    fn side(vcpu_total: u64, ratio: Value, traits: Value) -> Records {
        let mut r = Records::default();
        r.add_resource_classes(&json!({"resource_classes": [
            {"name": "VCPU", "links": [{"rel": "self", "href": "/resource_classes/VCPU"}]},
            {"name": "CUSTOM_FPGA", "links": []}
        ]}))
        .expect("classes");
        r.add_traits(&json!({"traits": ["HW_CPU_X86_AVX2", "CUSTOM_GOLD"]}))
            .expect("traits");
        let uuids = r
            .add_providers(&json!({"resource_providers": [
                {"uuid": RP, "name": "cn1", "generation": 7, "parent_provider_uuid": null,
                 "root_provider_uuid": RP, "links": [{"rel": "self", "href": "/x"}]},
                {"uuid": CHILD, "name": "cn1_numa0", "generation": 2,
                 "parent_provider_uuid": RP, "root_provider_uuid": RP, "links": []}
            ]}))
            .expect("providers");
        assert_eq!(uuids, vec![RP.to_string(), CHILD.to_string()]);
        r.add_inventories(
            RP,
            &json!({"resource_provider_generation": 7, "inventories": {
                "VCPU": {"total": vcpu_total, "reserved": 0, "min_unit": 1, "max_unit": 64,
                         "step_size": 1, "allocation_ratio": ratio}}}),
        )
        .expect("inventories");
        r.add_provider_traits(
            RP,
            &json!({"resource_provider_generation": 7, "traits": traits}),
        )
        .expect("provider traits");
        r.add_aggregates(
            RP,
            &json!({"resource_provider_generation": 7, "aggregates": ["b", "a"]}),
        )
        .expect("aggregates");
        r.add_provider_usages(
            RP,
            &json!({"resource_provider_generation": 7, "usages": {"VCPU": 2}}),
        )
        .expect("usages");
        let consumers = r
            .add_provider_allocations(
                RP,
                &json!({"resource_provider_generation": 7,
                        "allocations": {C1: {"resources": {"VCPU": 2}}}}),
            )
            .expect("provider allocations");
        assert_eq!(consumers, vec![C1.to_string()]);
        let project = r
            .add_consumer(
                C1,
                &json!({"allocations": {RP: {"generation": 7, "resources": {"VCPU": 2}}},
                        "consumer_generation": 1, "project_id": "p1", "user_id": "u1",
                        "consumer_type": "INSTANCE"}),
            )
            .expect("consumer");
        assert_eq!(project.as_deref(), Some("p1"));
        r.add_project_usages(
            "p1",
            &json!({"usages": {"all": {"consumer_count": 1, "VCPU": 2},
                               "INSTANCE": {"consumer_count": 1, "VCPU": 2}}}),
        )
        .expect("project usages");
        r
    }

    #[test]
    fn identical_sides_have_no_differences_whatever_the_list_order_and_number_form() {
        let a = side(64, json!(16.0), json!(["HW_CPU_X86_AVX2", "CUSTOM_GOLD"]));
        let b = side(64, json!(16), json!(["CUSTOM_GOLD", "HW_CPU_X86_AVX2"]));
        assert_eq!(compare(&a, &b), vec![]);
        assert_eq!(
            a.counts(),
            Counts {
                resource_classes: 2,
                traits: 2,
                providers: 2,
                inventories: 1,
                provider_traits: 2,
                aggregates: 2,
                allocations: 1,
                consumers: 1,
                projects: 1,
            }
        );
    }

    #[test]
    fn a_changed_field_names_the_record_the_field_and_both_values() {
        let a = side(64, json!(16.0), json!(["CUSTOM_GOLD"]));
        let b = side(65, json!(16.0), json!(["CUSTOM_GOLD"]));
        let d = compare(&a, &b);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].record, format!("provider {RP} (cn1) inventory VCPU"));
        assert_eq!(d[0].field, "total");
        assert_eq!(
            d[0].to_string(),
            format!("provider {RP} (cn1) inventory VCPU: total: source 64, target 65")
        );
        let b = side(64, json!(1.5), json!(["CUSTOM_GOLD"]));
        assert_eq!(
            compare(&a, &b)[0].to_string(),
            format!(
                "provider {RP} (cn1) inventory VCPU: allocation_ratio: source 16.0, target 1.5"
            )
        );
    }

    #[test]
    fn a_trait_list_difference_says_what_each_side_has_alone() {
        let a = side(64, json!(16.0), json!(["CUSTOM_GOLD", "HW_CPU_X86_AVX2"]));
        let b = side(64, json!(16.0), json!(["CUSTOM_SILVER", "HW_CPU_X86_AVX2"]));
        let d = compare(&a, &b);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(
            d[0].to_string(),
            format!(
                "provider {RP} (cn1) traits: only in the source [\"CUSTOM_GOLD\"], \
                 only in the target [\"CUSTOM_SILVER\"]"
            )
        );
    }

    #[test]
    fn generations_projects_and_missing_records_are_differences() {
        let a = side(64, json!(16.0), json!([]));
        let mut b = a.clone();
        b.0.insert(
            format!("provider {RP}"),
            json!({"name": "cn1", "generation": 8, "parent_provider_uuid": null,
                   "root_provider_uuid": RP}),
        );
        b.0.insert(
            format!("consumer {C1}"),
            json!({"consumer_generation": 1, "project_id": "p2", "user_id": "u1",
                   "consumer_type": "INSTANCE"}),
        );
        b.0.remove(&format!("provider {CHILD}"));
        b.0.insert("resource class CUSTOM_NEW".into(), json!({}));
        let d: Vec<String> = compare(&a, &b).iter().map(ToString::to_string).collect();
        assert_eq!(
            d,
            vec![
                format!("consumer {C1}: project_id: source \"p1\", target \"p2\""),
                format!("provider {RP} (cn1): generation: source 7, target 8"),
                format!("provider {CHILD} (cn1_numa0): only in the source: {{\"name\":\"cn1_numa0\",\"generation\":2,\"parent_provider_uuid\":\"{RP}\",\"root_provider_uuid\":\"{RP}\"}}"),
                "resource class CUSTOM_NEW: only in the target: {}".to_string(),
            ]
        );
    }

    #[test]
    fn nested_usages_are_compared_field_by_field() {
        let a = side(64, json!(16.0), json!([]));
        let mut b = a.clone();
        b.add_project_usages(
            "p1",
            &json!({"usages": {"all": {"consumer_count": 1, "VCPU": 2},
                               "INSTANCE": {"consumer_count": 1, "VCPU": 3}}}),
        )
        .expect("usages");
        let d: Vec<String> = compare(&a, &b).iter().map(ToString::to_string).collect();
        assert_eq!(
            d,
            vec!["project p1 usages: INSTANCE.VCPU: source 2, target 3".to_string()]
        );
    }

    #[test]
    fn an_unknown_consumer_has_no_record() {
        let mut r = Records::default();
        let project = r
            .add_consumer(C1, &json!({"allocations": {}}))
            .expect("empty allocations");
        assert_eq!(project, None);
        assert!(r.0.is_empty());
    }

    #[test]
    fn answers_of_the_wrong_shape_are_errors_naming_the_request() {
        let mut r = Records::default();
        let e = r
            .add_traits(&json!({"items": []}))
            .expect_err("no traits list");
        assert!(
            e.starts_with("GET /traits: the answer has no `traits` list"),
            "{e}"
        );
        let e = r
            .add_provider_traits(RP, &json!({"traits": [1]}))
            .expect_err("not strings");
        assert!(e.contains("list of strings"), "{e}");
        let e = r
            .add_providers(&json!({"resource_providers": [{"name": "x"}]}))
            .expect_err("no uuid");
        assert!(e.contains("provider `uuid`"), "{e}");
    }
}
