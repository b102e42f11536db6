//! The known differences: the one place that lists where the real Placement 16.0.0 answers
//! wrongly and placementd, on purpose, does not (docs/compatibility.md explains each).
//!
//! A divergence is *known* only when its rule here matches the exact shape of the
//! difference; it is then counted under its name in the report, never dropped silently.
//! When the two servers' states part ways because of it, the rule says how the tester
//! brings them back together ([`Resync`]) so the sequence can go on.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::compare::{allocation_requests, normalize, Answer};
use crate::op::{Body, Op};

/// A reference bug placementd does not copy.
pub struct Known {
    pub name: &'static str,
    pub reason: &'static str,
}

/// Every known difference.
pub const KNOWN: &[Known] = &[
    Known {
        name: "phantom-consumer",
        reason: "Placement 16 keeps a consumer that a failed or empty allocation write \
                 created, empty, at generation 0 and invisible to GET /allocations/{c}; the \
                 next write with consumer_generation null gets 409 (\"expected 0 but got \
                 None\") and generation 0 is accepted. placementd keeps no consumer without \
                 allocations. Counted: each consumer the tester renames after such a write \
                 (so no later operation meets the phantom), and each divergence one explains.",
    },
    Known {
        name: "candidate-sums",
        reason: "Placement 16 sometimes returns allocation requests whose amounts are not \
                 the sum of the requested groups (e.g. VCPU 2 on a root plus VCPU 1 on its \
                 child when 2 were requested in all). Such requests are left out of the \
                 comparison; the rest must match.",
    },
    Known {
        name: "shared-group-amounts",
        reason: "Placement 16 adds the unnamed group's amount into a resource entry that \
                 candidates share when group_policy is isolate or absent \
                 (allocation_candidate.py _consolidate_allocation_requests: `amount +=` on \
                 an entry research_context.copy_arr_if_needed copies only for \
                 group_policy=none), so when the unnamed and a numbered group land on one \
                 provider it drops valid candidates or returns them with wrong amounts. \
                 Counted when what Placement returns, less its wrong sums, is a subset of \
                 placementd's answer.",
    },
    Known {
        name: "reference-500",
        reason: "Placement 16 fails with 500 on some queries (forbidden traits over nested \
                 trees); placementd answers them.",
    },
];

/// What the tester does after a known divergence that left the servers' states apart.
#[derive(Debug, Default)]
pub struct Resync {
    /// Consumer symbols to delete on both servers and give new names.
    pub retire: Vec<String>,
}

/// What the tester remembers of a run for the rules.
#[derive(Debug, Default)]
pub struct Memory {
    /// Consumers that hold allocations on the reference.
    holding: BTreeSet<String>,
}

impl Memory {
    /// Notes an answered operation; returns the consumers the reference may now keep as
    /// empty phantoms ("phantom-consumer"): a write naming a consumer that held nothing
    /// failed, or left it empty. The runner gives them new names, so no later operation
    /// meets a phantom; the rule in [`classify`] remains for any way to one this misses.
    pub fn note(&mut self, op: &Op, reference: &Answer) -> Vec<String> {
        if op.kind == "allocations.delete" && reference.is_success() {
            self.holding
                .remove(&symbol(op.path_only().trim_start_matches("/allocations/")));
        }
        let mut phantoms = Vec::new();
        for (consumer, empty) in written_consumers(op) {
            let held = self.holding.contains(&consumer);
            if reference.is_success() && !empty {
                self.holding.insert(consumer);
            } else {
                if reference.is_success() {
                    self.holding.remove(&consumer);
                }
                if !held {
                    phantoms.push(consumer);
                }
            }
        }
        phantoms
    }

    pub fn forget(&mut self, consumer: &str) {
        self.holding.remove(consumer);
    }

    /// Whether a consumer may be a phantom on the reference: one that holds nothing.
    fn may_be_phantom(&self, consumer: &str) -> bool {
        !self.holding.contains(consumer)
    }
}

fn symbol(key: &str) -> String {
    key.trim_matches(|c| c == '{' || c == '}').to_string()
}

/// The consumers an allocation write names, each with whether its allocations are empty.
fn written_consumers(op: &Op) -> Vec<(String, bool)> {
    let Some(Body::Json(body)) = &op.body else {
        return Vec::new();
    };
    let empty = |v: &Value| match v.get("allocations") {
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        _ => true,
    };
    match op.kind {
        "allocations.put" => {
            let c = op.path_only().trim_start_matches("/allocations/");
            vec![(symbol(c), empty(body))]
        }
        "allocations.post" => body
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (symbol(k), empty(v)))
            .collect(),
        "reshaper" => body
            .get("allocations")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(k, v)| (symbol(k), empty(v)))
            .collect(),
        _ => Vec::new(),
    }
}

/// The known difference these answers show, if any, and how to resync after it.
pub fn classify(
    op: &Op,
    memory: &Memory,
    reference: &Answer,
    candidate: &Answer,
) -> Option<(&'static str, Resync)> {
    if reference.status == 500 && candidate.status != 500 {
        return Some(("reference-500", Resync::default()));
    }
    let written = written_consumers(op);
    let phantoms: Vec<String> = written
        .iter()
        .map(|(c, _)| c.clone())
        .filter(|c| memory.may_be_phantom(c))
        .collect();
    if !phantoms.is_empty() {
        // The phantom's generation 0 decides the consumer check on one side only: the
        // reference refuses `null` (409) where placementd goes on to its next check or
        // succeeds, or accepts 0 where placementd refuses it (409).
        let conflict =
            |a: &Answer| a.status == 409 && a.error_code() == Some("placement.concurrent_update");
        if conflict(reference) != conflict(candidate) {
            return Some((
                "phantom-consumer",
                Resync {
                    retire: written.into_iter().map(|(c, _)| c).collect(),
                },
            ));
        }
    }
    if op.kind == "candidates" && reference.status == 200 && candidate.status == 200 {
        if let (Some(r), Some(c)) = (&reference.body, &candidate.body) {
            if candidate_sums_explain(op, r, c) {
                return Some(("candidate-sums", Resync::default()));
            }
            if shared_group_amounts_explain(op, r, c) {
                return Some(("shared-group-amounts", Resync::default()));
            }
        }
    }
    None
}

/// Whether the reference has allocation requests with wrong sums and, once they are left
/// out, with placementd's requests for the same placement of the groups (the same
/// `mappings`, or before 1.34 the same providers), the two sets are equal.
fn candidate_sums_explain(op: &Op, reference: &Value, candidate: &Value) -> bool {
    let wanted = requested_totals(&op.path);
    let (good, bad): (Vec<&Value>, Vec<&Value>) = allocation_requests(reference)
        .iter()
        .partition(|req| totals(req) == wanted);
    if bad.is_empty() {
        return false;
    }
    let misplaced: Vec<Value> = bad.into_iter().map(placement_of_groups).collect();
    let c: Vec<Value> = allocation_requests(candidate)
        .iter()
        .filter(|req| !misplaced.contains(&placement_of_groups(req)))
        .cloned()
        .collect();
    let good: Vec<Value> = good.into_iter().cloned().collect();
    normalize(&Value::Array(good)) == normalize(&Value::Array(c))
}

/// Whether the query is one where Placement shares resource entries between candidates
/// (an unnamed `resources` and a suffixed group, `group_policy` not `none`) and what it
/// returns, less its wrong sums, is a subset of placementd's answer.
fn shared_group_amounts_explain(op: &Op, reference: &Value, candidate: &Value) -> bool {
    let params = query_params(&op.path);
    let unnamed = params.iter().any(|(k, _)| *k == "resources");
    let suffixed = params
        .iter()
        .any(|(k, _)| k.starts_with("resources") && *k != "resources");
    let policy_none = params
        .iter()
        .any(|(k, v)| *k == "group_policy" && *v == "none");
    if !unnamed || !suffixed || policy_none {
        return false;
    }
    let wanted = requested_totals(&op.path);
    let theirs: Vec<Value> = allocation_requests(reference)
        .iter()
        .filter(|r| totals(r) == wanted)
        .map(normalize)
        .collect();
    let ours: Vec<Value> = allocation_requests(candidate)
        .iter()
        .map(normalize)
        .collect();
    theirs.len() < ours.len() && theirs.iter().all(|r| ours.contains(r))
}

/// Which providers serve which group: `mappings` (1.34), else the sorted providers.
fn placement_of_groups(request: &Value) -> Value {
    if let Some(m) = request.get("mappings") {
        return normalize(m);
    }
    let mut providers: Vec<String> = match request.get("allocations") {
        Some(Value::Object(by_rp)) => by_rp.keys().cloned().collect(),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(|a| a.pointer("/resource_provider/uuid").and_then(Value::as_str))
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    };
    providers.sort();
    Value::from(providers)
}

/// `(key, value)` of each parameter of a path's query string, as written.
fn query_params(path: &str) -> Vec<(&str, &str)> {
    let query = path.split_once('?').map_or("", |(_, q)| q);
    query.split('&').filter_map(|p| p.split_once('=')).collect()
}

/// Amount per class over every `resources*` parameter of a candidates query.
fn requested_totals(path: &str) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for (key, value) in query_params(path) {
        if !key.starts_with("resources") {
            continue;
        }
        for part in value.split(',') {
            if let Some((class, n)) = part.split_once(':') {
                *out.entry(class.to_string()).or_insert(0) += n.parse::<i64>().unwrap_or(0);
            }
        }
    }
    out
}

/// Amount per class of one allocation request (either body shape).
fn totals(request: &Value) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    let mut add = |resources: Option<&Value>| {
        for (class, n) in resources.and_then(Value::as_object).into_iter().flatten() {
            *out.entry(class.clone()).or_insert(0) += n.as_i64().unwrap_or(0);
        }
    };
    match request.get("allocations") {
        Some(Value::Object(by_rp)) => by_rp.values().for_each(|a| add(a.get("resources"))),
        Some(Value::Array(list)) => list.iter().for_each(|a| add(a.get("resources"))),
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn answer(status: u16, body: Value) -> Answer {
        Answer {
            status,
            headers: BTreeMap::new(),
            text: body.to_string(),
            body: Some(body),
        }
    }

    #[test]
    fn a_write_that_leaves_a_consumer_empty_makes_it_a_phantom() {
        let put = |allocations: Value| {
            Op::new("allocations.put", "PUT", "/allocations/{c1}".into(), "1.39")
                .json(json!({"allocations": allocations, "consumer_generation": null}))
        };
        let ok = answer(204, Value::Null);
        let bad = answer(400, json!({"errors": [{"status": 400}]}));
        let mut memory = Memory::default();
        assert_eq!(memory.note(&put(json!({})), &ok), vec!["c1".to_string()]);
        assert_eq!(
            memory.note(&put(json!({"{rp1}": {}})), &bad),
            vec!["c1".to_string()]
        );
        assert!(memory.note(&put(json!({"{rp1}": {}})), &ok).is_empty());
        // A consumer that holds allocations stays itself when a write to it fails.
        assert!(memory.note(&put(json!({"{rp1}": {}})), &bad).is_empty());
        let conflict = answer(
            409,
            json!({"errors": [{"status": 409, "code": "placement.concurrent_update"}]}),
        );
        assert!(classify(&put(json!({})), &memory, &conflict, &ok).is_none());
        memory.forget("c1");
        let (name, resync) = classify(&put(json!({})), &memory, &conflict, &ok).expect("known");
        assert_eq!(name, "phantom-consumer");
        assert_eq!(resync.retire, vec!["c1".to_string()]);
    }

    #[test]
    fn wrong_sums_are_left_out_and_the_rest_must_match() {
        let op = Op::new(
            "candidates",
            "GET",
            "/allocation_candidates?resources=VCPU:2".into(),
            "1.39",
        );
        let good = json!({"allocations": {"a": {"resources": {"VCPU": 2}}}});
        let bad = json!({"allocations": {"a": {"resources": {"VCPU": 2}}, "b": {"resources": {"VCPU": 1}}}});
        let reference = json!({"allocation_requests": [good.clone(), bad]});
        assert!(candidate_sums_explain(
            &op,
            &reference,
            &json!({"allocation_requests": [good]})
        ));
        assert!(!candidate_sums_explain(
            &op,
            &reference,
            &json!({"allocation_requests": []})
        ));
        // Placement's wrong amounts stand in for placementd's right ones for the same groups.
        let op = Op::new(
            "candidates",
            "GET",
            "/allocation_candidates?resources=Z:4&resources_N=Z:2".into(),
            "1.38",
        );
        let wrong = json!({"allocations": {"a": {"resources": {"Z": 6}}, "b": {"resources": {"Z": 2}}},
                           "mappings": {"": ["a"], "_N": ["b"]}});
        let right = json!({"allocations": {"a": {"resources": {"Z": 4}}, "b": {"resources": {"Z": 2}}},
                           "mappings": {"": ["a"], "_N": ["b"]}});
        let other = json!({"allocations": {"a": {"resources": {"Z": 6}}},
                           "mappings": {"": ["a"], "_N": ["a"]}});
        assert!(candidate_sums_explain(
            &op,
            &json!({"allocation_requests": [wrong, other.clone()]}),
            &json!({"allocation_requests": [right.clone(), other.clone()]})
        ));
        assert!(!candidate_sums_explain(
            &op,
            &json!({"allocation_requests": [other.clone()]}),
            &json!({"allocation_requests": [right, other]})
        ));
    }
}
