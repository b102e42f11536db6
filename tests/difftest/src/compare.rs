//! What two answers to the same request must share.
//!
//! - the status;
//! - the headers clients read: `openstack-api-version`, `vary`, `content-type`,
//!   `cache-control` (exactly), `location` (its path: the hosts differ), `allow` (as a set),
//!   `last-modified` (present or not: the clocks differ);
//! - the body as JSON, normalized: an error keeps its `status`, `title` and `code` (its
//!   `detail` is free text and `request_id` random); lists are compared as sets; objects
//!   ignore key order, except the providers of `GET /allocations/{consumer}`, which keep
//!   the order the allocation was written in (clients compare lists built from them);
//! - for `allocation_candidates` with a `limit`, only how many candidates came back.
//!
//! Bodies that are not JSON are compared by being empty or not.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::op::{Compare, Op};

/// One server's answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    /// Lower-case names; repeated headers joined with `, `.
    pub headers: BTreeMap<String, String>,
    pub body: Option<Value>,
    pub text: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// The error code of an error document (`placement.concurrent_update`).
    pub fn error_code(&self) -> Option<&str> {
        self.body
            .as_ref()?
            .get("errors")?
            .get(0)?
            .get("code")?
            .as_str()
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

const EXACT_HEADERS: &[&str] = &[
    "openstack-api-version",
    "vary",
    "content-type",
    "cache-control",
];

/// How `candidate` differs from `reference`, one line per difference.
pub fn differences(op: &Op, reference: &Answer, candidate: &Answer) -> Vec<String> {
    let mut out = Vec::new();
    if reference.status != candidate.status {
        out.push(format!(
            "status: {} vs {}",
            reference.status, candidate.status
        ));
    }
    for name in EXACT_HEADERS {
        let (r, c) = (reference.header(name), candidate.header(name));
        if r != c {
            out.push(format!("header {name}: {r:?} vs {c:?}"));
        }
    }
    let (r, c) = (
        reference.header("location").map(location_path),
        candidate.header("location").map(location_path),
    );
    if r != c {
        out.push(format!("header location: {r:?} vs {c:?}"));
    }
    let (r, c) = (
        reference.header("allow").map(method_set),
        candidate.header("allow").map(method_set),
    );
    if r != c {
        out.push(format!("header allow: {r:?} vs {c:?}"));
    }
    let (r, c) = (
        reference.header("last-modified").is_some(),
        candidate.header("last-modified").is_some(),
    );
    if r != c {
        out.push(format!("header last-modified present: {r} vs {c}"));
    }
    match (&reference.body, &candidate.body) {
        (Some(r), Some(c)) => body_differences(op, r, c, &mut out),
        (None, None) => {
            if reference.text.trim().is_empty() != candidate.text.trim().is_empty() {
                out.push(format!(
                    "body: {:?} vs {:?}",
                    clip(&reference.text),
                    clip(&candidate.text)
                ));
            }
        }
        _ => out.push(format!(
            "body: {:?} vs {:?}",
            clip(&reference.text),
            clip(&candidate.text)
        )),
    }
    out
}

fn body_differences(op: &Op, reference: &Value, candidate: &Value, out: &mut Vec<String>) {
    if op.compare == Compare::CandidateCount && reference.get("errors").is_none() {
        let count = |v: &Value| {
            v.get("allocation_requests")
                .and_then(Value::as_array)
                .map(Vec::len)
        };
        if count(reference) != count(candidate) {
            out.push(format!(
                "allocation_requests: {:?} vs {:?} candidates",
                count(reference),
                count(candidate)
            ));
        }
        return;
    }
    if op.method == "GET" && op.path_only().starts_with("/allocations/") {
        let order = |v: &Value| -> Vec<String> {
            v.get("allocations")
                .and_then(Value::as_object)
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default()
        };
        if order(reference) != order(candidate) {
            out.push(format!(
                "order of providers: {:?} vs {:?}",
                order(reference),
                order(candidate)
            ));
        }
    }
    let (r, c) = (normalize(reference), normalize(candidate));
    json_differences("$", &r, &c, out);
}

/// The `allocation_requests` of an allocation candidates answer (none for any other body).
pub fn allocation_requests(body: &Value) -> &[Value] {
    body.get("allocation_requests")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// The comparable form of a body: errors without free text, lists sorted, keys sorted.
pub fn normalize(v: &Value) -> Value {
    if let Some(errors) = v.get("errors").and_then(Value::as_array) {
        let errors: Vec<Value> = errors
            .iter()
            .map(|e| {
                let mut kept = Map::new();
                for key in ["status", "title", "code"] {
                    if let Some(x) = e.get(key) {
                        kept.insert(key.into(), x.clone());
                    }
                }
                Value::Object(kept)
            })
            .collect();
        return serde_json::json!({ "errors": errors });
    }
    canonical(v)
}

fn canonical(v: &Value) -> Value {
    match v {
        Value::Array(items) => {
            let mut items: Vec<Value> = items.iter().map(canonical).collect();
            items.sort_by_key(|i| i.to_string());
            Value::Array(items)
        }
        Value::Object(map) => {
            let sorted: BTreeMap<&String, Value> =
                map.iter().map(|(k, v)| (k, canonical(v))).collect();
            Value::Object(sorted.into_iter().map(|(k, v)| (k.clone(), v)).collect())
        }
        other => other.clone(),
    }
}

fn json_differences(at: &str, r: &Value, c: &Value, out: &mut Vec<String>) {
    if r == c || out.len() > 12 {
        return;
    }
    match (r, c) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, va) in a {
                match b.get(k) {
                    Some(vb) => json_differences(&format!("{at}.{k}"), va, vb, out),
                    None => out.push(format!("{at}.{k}: {} vs absent", clip(&va.to_string()))),
                }
            }
            for (k, vb) in b {
                if !a.contains_key(k) {
                    out.push(format!("{at}.{k}: absent vs {}", clip(&vb.to_string())));
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            let only = |x: &[Value], y: &[Value]| -> Vec<String> {
                x.iter()
                    .filter(|i| !y.contains(i))
                    .take(3)
                    .map(|i| clip(&i.to_string()))
                    .collect()
            };
            out.push(format!(
                "{at}: {} vs {} items; only in reference {:?}; only in placementd {:?}",
                a.len(),
                b.len(),
                only(a, b),
                only(b, a)
            ));
        }
        _ => out.push(format!(
            "{at}: {} vs {}",
            clip(&r.to_string()),
            clip(&c.to_string())
        )),
    }
}

fn location_path(v: &str) -> String {
    match v.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]).to_string(),
        None => v.to_string(),
    }
}

fn method_set(v: &str) -> Vec<String> {
    let mut m: Vec<String> = v.split(',').map(|s| s.trim().to_string()).collect();
    m.sort();
    m
}

/// At most 300 characters of a text.
pub fn clip(s: &str) -> String {
    if s.chars().count() <= 300 {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(300).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn answer(status: u16, body: Value) -> Answer {
        Answer {
            status,
            headers: BTreeMap::from([("content-type".into(), "application/json".into())]),
            text: body.to_string(),
            body: Some(body),
        }
    }

    #[test]
    fn free_text_and_list_order_do_not_count() {
        let op = Op::new("t", "GET", "/traits".into(), "1.39");
        let a = answer(200, json!({"traits": ["A", "B"]}));
        let b = answer(200, json!({"traits": ["B", "A"]}));
        assert!(differences(&op, &a, &b).is_empty());
        let e1 = answer(
            404,
            json!({"errors": [{"status": 404, "title": "Not Found", "detail": "x", "request_id": "1"}]}),
        );
        let e2 = answer(
            404,
            json!({"errors": [{"status": 404, "title": "Not Found", "detail": "y", "request_id": "2"}]}),
        );
        assert!(differences(&op, &e1, &e2).is_empty());
        let b = answer(200, json!({"traits": ["A"]}));
        assert_eq!(differences(&op, &a, &b).len(), 1);
    }

    #[test]
    fn a_consumers_providers_keep_their_order() {
        let op = Op::new("t", "GET", "/allocations/{c1}".into(), "1.39");
        let a = answer(200, json!({"allocations": {"x": {}, "y": {}}}));
        let b = answer(200, json!({"allocations": {"y": {}, "x": {}}}));
        let diffs = differences(&op, &a, &b);
        assert_eq!(diffs.len(), 1, "{diffs:?}");
        assert!(diffs[0].starts_with("order of providers"));
    }

    #[test]
    fn locations_compare_by_path() {
        assert_eq!(
            location_path("http://127.0.0.1:1/resource_providers/x"),
            "/resource_providers/x"
        );
        assert_eq!(location_path("/traits/A"), "/traits/A");
    }
}
