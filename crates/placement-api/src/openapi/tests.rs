//! The document cannot drift from the code:
//! - its paths and methods are exactly the routes of `handlers/*.rs` (read from the source);
//! - it is well-formed OpenAPI (operations answer, `$ref`s resolve, ids unique, version
//!   ranges ordered and disjoint, public paths are auth's);
//! - its request bodies and query parameters are, at every microversion, the schemas the
//!   handlers validate with;
//! - every answer the router gives for a scenario run at every microversion validates
//!   against it, and every documented success status is seen;
//! - the api-ref samples validate (when the spec is at hand).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use http::Request;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use super::build::{ctx_at, FIRST, LAST};
use super::lookup::{self, Documented};
use super::operations;
use super::*;
use crate::auth::{AuthError, AuthFuture, AuthStrategy, Authenticate, PUBLIC_PATHS};
use crate::context::Microversion;
use crate::{router, ApiConfig, LocalBackend};

fn v(minor: Minor) -> Microversion {
    Microversion { major: 1, minor }
}

/// Every `$ref` inlined (the crate's validator does not follow them).
fn inline(document: &Value, schema: &Value) -> Value {
    match schema {
        Value::Object(o) => {
            if let Some(r) = o.get("$ref").and_then(Value::as_str) {
                let target = lookup::resolve(document, r).expect("a resolvable $ref");
                return inline(document, target);
            }
            Value::Object(
                o.iter()
                    .map(|(k, v)| (k.clone(), inline(document, v)))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(|v| inline(document, v)).collect()),
        other => other.clone(),
    }
}

// ---- Routes ------------------------------------------------------------------------------

/// `(path, method)` of every `.route("…", …)` in `src/handlers/*.rs`, methods lower case.
fn routed() -> BTreeSet<(String, String)> {
    let dir = placement_testkit::crate_dir!().join("src/handlers");
    let method = regex::Regex::new(
        r"(?:^|[^A-Za-z0-9_])(get|post|put|delete|patch|head|options|trace)\s*\(",
    )
    .expect("a valid pattern");
    let mut out = BTreeSet::new();
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).expect("the handlers directory") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        files += 1;
        let text = std::fs::read_to_string(&path).expect("a readable handler file");
        let mut rest = text.as_str();
        while let Some(at) = rest.find(".route(") {
            rest = &rest[at + ".route(".len()..];
            // The arguments: up to the parenthesis that closes `.route(`.
            let mut depth = 1;
            let end = rest
                .char_indices()
                .find(|(_, c)| {
                    match c {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                    depth == 0
                })
                .map(|(i, _)| i)
                .expect("a closed .route(");
            let args = &rest[..end];
            let literal = args
                .split('"')
                .nth(1)
                .unwrap_or_else(|| panic!("a path literal in .route({args}) of {path:?}"));
            for m in method.captures_iter(args) {
                out.insert((literal.to_string(), m[1].to_string()));
            }
            rest = &rest[end..];
        }
    }
    assert!(files >= 10, "read only {files} handler files from {dir:?}");
    out
}

#[test]
fn the_document_has_exactly_the_routed_paths_and_methods() {
    let routes = routed();
    assert!(routes.len() >= 30, "{routes:?}");
    let doc = document();
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("a path item").keys() {
            documented.insert((path.clone(), method.clone()));
        }
    }
    let expected = routes.clone();
    let missing: Vec<_> = expected.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "routed but not documented: {missing:?}; documented but not routed: {extra:?}"
    );
}

#[test]
fn public_operations_are_the_paths_auth_lets_through() {
    let doc = document();
    let mut public = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for op in item.as_object().expect("a path item").values() {
            if op.get("security") == Some(&json!([])) {
                public.insert(path.as_str());
            }
        }
    }
    assert_eq!(public, PUBLIC_PATHS.into_iter().collect::<BTreeSet<_>>());
    assert!(PUBLIC_PATHS.iter().all(|p| crate::auth::is_public_path(p)));
}

// ---- Well-formedness ---------------------------------------------------------------------

fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(o) => {
            if let Some(r) = o.get("$ref").and_then(Value::as_str) {
                out.push(r);
            }
            o.values().for_each(|v| refs(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

/// Every `x-microversions` list: ordered, disjoint, inside the served range.
fn microversion_lists(at: &str, value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(o) => {
            for (k, value) in o {
                let here = format!("{at}/{k}");
                if k == "x-microversions" {
                    let mut last: Option<Microversion> = None;
                    for e in value.as_array().expect("a list") {
                        let min = lookup::parse_version(e["min"].as_str().unwrap_or(""));
                        let max = lookup::parse_version(e["max"].as_str().unwrap_or(""));
                        match (min, max) {
                            (Some(min), Some(max))
                                if min <= max
                                    && last.is_none_or(|l| l < min)
                                    && min >= v(FIRST)
                                    && max <= v(LAST)
                                    && e.get("schema").is_some() =>
                            {
                                last = Some(max)
                            }
                            _ => out.push(format!("{here}: bad entry {e}")),
                        }
                    }
                }
                for key in ["x-min-version", "x-max-version"] {
                    if k == key && value.as_str().and_then(lookup::parse_version).is_none() {
                        out.push(format!("{here}: {value}"));
                    }
                }
                microversion_lists(&here, value, out);
            }
        }
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, value)| microversion_lists(&format!("{at}/{i}"), value, out)),
        _ => {}
    }
}

#[test]
fn the_document_is_well_formed_openapi() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(doc["info"]["description"]
        .as_str()
        .is_some_and(|d| d.contains("1.0–1.39") && d.contains("x-microversions")));
    let mut ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let template: BTreeSet<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect();
        for (method, op) in item.as_object().expect("a path item") {
            let id = op["operationId"].as_str().expect("an operationId");
            assert!(ids.insert(id.to_string()), "operationId {id} twice");
            let responses = op["responses"].as_object().expect("responses");
            assert!(!responses.is_empty(), "{method} {path} answers nothing");
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{method} {path}: no success"
            );
            for (status, r) in responses {
                assert!(
                    status.len() == 3
                        && status.parse::<u16>().is_ok_and(|s| (100..600).contains(&s)),
                    "{method} {path}: status {status}"
                );
                let r = if let Some(to) = r.get("$ref").and_then(Value::as_str) {
                    lookup::resolve(&doc, to).expect("a response $ref")
                } else {
                    r
                };
                assert!(r["description"].is_string(), "{method} {path} {status}");
            }
            let declared: BTreeSet<&str> = op["parameters"]
                .as_array()
                .expect("parameters")
                .iter()
                .filter(|p| p["in"] == "path")
                .map(|p| p["name"].as_str().unwrap_or(""))
                .collect();
            assert_eq!(declared, template, "{method} {path}: path parameters");
            let mut names = BTreeSet::new();
            for p in op["parameters"].as_array().expect("parameters") {
                let p = match p.get("$ref").and_then(Value::as_str) {
                    Some(r) => lookup::resolve(&doc, r).expect("a parameter $ref"),
                    None => p,
                };
                assert!(
                    names.insert((p["name"].to_string(), p["in"].to_string())),
                    "{method} {path}: parameter {p} twice"
                );
            }
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(all.len() > 100);
    for r in all {
        assert!(lookup::resolve(&doc, r).is_ok(), "unresolved {r}");
    }
    let mut bad = Vec::new();
    microversion_lists("#", &doc, &mut bad);
    assert!(bad.is_empty(), "{bad:#?}");
    // Every documented answer can be read back.
    let answers = lookup::answers(&doc).expect("readable answers");
    assert!(answers.len() > 300, "{}", answers.len());
}

#[test]
fn the_document_is_built_once_and_served_as_is() {
    let bytes = document_bytes();
    let parsed: Value = serde_json::from_slice(&bytes).expect("JSON");
    assert_eq!(parsed, document());
    assert_eq!(document_bytes().as_ptr(), bytes.as_ptr(), "cached bytes");
}

// ---- Request bodies and query strings are the handlers' --------------------------------

/// The schema a media type (or parameter) documents at `minor`.
fn at_version(media: &Value, minor: Minor) -> Option<Value> {
    match media.get("x-microversions").and_then(Value::as_array) {
        Some(list) => list
            .iter()
            .find(|e| {
                let min = lookup::parse_version(e["min"].as_str().unwrap_or(""));
                let max = lookup::parse_version(e["max"].as_str().unwrap_or(""));
                min.is_some_and(|min| min <= v(minor)) && max.is_some_and(|max| v(minor) <= max)
            })
            .map(|e| e["schema"].clone()),
        None => media.get("schema").cloned(),
    }
}

fn in_range(object: &Value, minor: Minor) -> bool {
    let min = object["x-min-version"]
        .as_str()
        .and_then(lookup::parse_version);
    let max = object["x-max-version"]
        .as_str()
        .and_then(lookup::parse_version);
    min.is_none_or(|m| m <= v(minor)) && max.is_none_or(|m| v(minor) <= m)
}

#[test]
fn request_bodies_and_query_parameters_are_the_handlers_schemas_at_every_version() {
    let doc = document();
    let mut checked = 0;
    for op in operations::all() {
        let documented = &doc["paths"][op.path][op.method.key()];
        for minor in op.since..=LAST {
            let ctx = ctx_at(minor);
            if let Some(body) = op.body {
                let media = &documented["requestBody"]["content"]["application/json"];
                assert_eq!(
                    at_version(media, minor),
                    body(&ctx),
                    "{} {} request body at 1.{minor}",
                    op.id,
                    op.path
                );
                checked += 1;
            }
            if let Some(query) = &op.query {
                let schema = (query.schema)(&ctx);
                let empty = serde_json::Map::new();
                let properties = schema["properties"].as_object().unwrap_or(&empty);
                let required: Vec<&Value> = schema["required"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .collect();
                let params: BTreeMap<&str, &Value> = documented["parameters"]
                    .as_array()
                    .expect("parameters")
                    .iter()
                    .filter(|p| p["in"] == "query" && in_range(p, minor))
                    .map(|p| (p["name"].as_str().unwrap_or(""), p))
                    .collect();
                let mut expected: BTreeSet<&str> = properties.keys().map(String::as_str).collect();
                if schema.get("patternProperties").is_some() {
                    expected.insert(query.patterns_as);
                }
                assert_eq!(
                    params.keys().copied().collect::<BTreeSet<_>>(),
                    expected,
                    "{} query parameters at 1.{minor}",
                    op.id
                );
                for (name, p) in params {
                    let (want, want_required) = if name == query.patterns_as {
                        (
                            json!({"type": "object", "patternProperties": schema["patternProperties"]}),
                            false,
                        )
                    } else {
                        (properties[name].clone(), required.contains(&&json!(name)))
                    };
                    assert_eq!(
                        at_version(p, minor),
                        Some(want),
                        "{} {name} at 1.{minor}",
                        op.id
                    );
                    let got_required = match p.get("x-microversions").and_then(Value::as_array) {
                        Some(list) => list
                            .iter()
                            .find(|e| at_version(&json!({"x-microversions": [e]}), minor).is_some())
                            .is_some_and(|e| e["required"] == true),
                        None => p["required"] == true,
                    };
                    assert_eq!(
                        got_required, want_required,
                        "{} {name} required at 1.{minor}",
                        op.id
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 300, "{checked}");
}

// ---- Answers of the router ---------------------------------------------------------------

#[derive(Debug)]
struct Refuse;

impl Authenticate for Refuse {
    fn authenticate<'a>(&'a self, _: &'a str, _: Option<&'a str>) -> AuthFuture<'a> {
        Box::pin(async { Err(AuthError::Unauthorized) })
    }
}

/// Sends requests to a router over a fresh in-memory backend and checks every answer
/// against the document.
struct Client {
    app: axum::Router,
    doc: Value,
    answers: Vec<lookup::Answer>,
    /// (method, template, status) of every answer checked.
    seen: BTreeSet<(String, String, u16)>,
}

struct Reply {
    status: u16,
    headers: http::HeaderMap,
    body: Option<Value>,
}

impl Client {
    fn new(config: ApiConfig) -> Self {
        let doc = document();
        Client {
            app: router(Arc::new(LocalBackend::new()), config),
            answers: lookup::answers(&doc).expect("answers"),
            doc,
            seen: BTreeSet::new(),
        }
    }

    /// A new backend, under an open policy (the reshaper is for services only).
    fn fresh(&mut self) {
        let open = ApiConfig::for_conformance_fixture("OpenPolicyFixture");
        self.app = router(Arc::new(LocalBackend::new()), open);
    }

    /// A request as the admin at `1.minor` (`headers` added or, for `x-auth-token` with an
    /// empty value, removed), checked at `check_at` (the microversion the answer is read at).
    async fn send(
        &mut self,
        minor: Minor,
        method: &str,
        uri: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
        check_at: Microversion,
    ) -> Reply {
        let mut b = Request::builder().method(method).uri(uri);
        if !headers.iter().any(|(k, _)| *k == "x-auth-token") {
            b = b.header("x-auth-token", "admin");
        }
        if !headers.iter().any(|(k, _)| *k == "openstack-api-version") {
            b = b.header("openstack-api-version", format!("placement 1.{minor}"));
        }
        for (k, val) in headers {
            if !val.is_empty() {
                b = b.header(*k, *val);
            }
        }
        let body = match body {
            Some(v) => {
                if !headers.iter().any(|(k, _)| *k == "content-type") {
                    b = b.header("content-type", "application/json");
                }
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        let resp = self
            .app
            .clone()
            .oneshot(b.body(body).expect("a request"))
            .await
            .expect("infallible");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.expect("a body").to_bytes();
        let body = (!bytes.is_empty()).then(|| {
            serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!("{method} {uri} at 1.{minor}: {status} not JSON ({e}): {bytes:?}")
            })
        });
        let path = uri.split('?').next().unwrap_or(uri);
        if let Err(e) = self.check(method, path, status, check_at, body.as_ref()) {
            panic!("{method} {uri} at 1.{minor}: {status} {body:?}: {e}");
        }
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn call(&mut self, minor: Minor, method: &str, uri: &str, body: Option<Value>) -> Reply {
        self.send(minor, method, uri, body, &[], v(minor)).await
    }

    fn check(
        &mut self,
        method: &str,
        path: &str,
        status: u16,
        version: Microversion,
        body: Option<&Value>,
    ) -> Result<(), String> {
        let method = method.to_ascii_lowercase();
        let template = lookup::matching_templates(&self.doc, path)
            .first()
            .map(|t| t.to_string())
            .ok_or("no such path in the document")?;
        let documented: Documented = match self
            .answers
            .iter()
            .find(|a| a.method == method && a.path == template && a.status == status)
        {
            Some(a) => a.documented.clone(),
            None if status == 405
                && !self
                    .answers
                    .iter()
                    .any(|a| a.method == method && a.path == template) =>
            {
                Documented::of_response(
                    &self.doc,
                    &json!({"$ref": "#/components/responses/MethodNotAllowed"}),
                )?
            }
            None => return Err(format!("{status} not documented for {method} {template}")),
        };
        self.seen.insert((method.clone(), template.clone(), status));
        match (documented.schema_at(version)?, body) {
            (None, None) => Ok(()),
            (None, Some(b)) => Err(format!("a body where none is documented: {b}")),
            (Some(_), None) => Err("no body where one is documented".into()),
            (Some(schema), Some(b)) => crate::schema::validate(&inline(&self.doc, schema), b),
        }
    }
}

const RP1: &str = "5b9c0e9e-4a55-4d0d-9a43-7f0000000001";
const RP2: &str = "5b9c0e9e-4a55-4d0d-9a43-7f0000000002";
const NEW: &str = "5b9c0e9e-4a55-4d0d-9a43-7f00000000ee";
const MISSING: &str = "5b9c0e9e-4a55-4d0d-9a43-7fffffffffff";
const AGG: &str = "8f9c0e9e-4a55-4d0d-9a43-7f0000000001";
const C1: &str = "c0000000-0000-4000-8000-000000000001";
const C2: &str = "c0000000-0000-4000-8000-000000000002";
const C3: &str = "c0000000-0000-4000-8000-000000000003";

/// One consumer's allocations body, in the form `1.minor` takes.
fn consumer_body(minor: Minor, rp: &str, amount: u32) -> Value {
    let mut b = if minor < 12 {
        json!({"allocations": [{"resource_provider": {"uuid": rp}, "resources": {"VCPU": amount}}]})
    } else {
        json!({"allocations": {rp: {"resources": {"VCPU": amount}}}})
    };
    if minor >= 8 {
        b["project_id"] = "p".into();
        b["user_id"] = "u".into();
    }
    if minor >= 28 {
        b["consumer_generation"] = Value::Null;
    }
    if minor >= 38 {
        b["consumer_type"] = "MIGRATION".into();
    }
    b
}

impl Client {
    async fn generation(&mut self, rp: &str) -> Value {
        let r = self
            .call(LAST, "GET", &format!("/resource_providers/{rp}"), None)
            .await;
        r.body.expect("a provider")["generation"].clone()
    }

    /// A small deployment, written at the newest microversion.
    async fn deploy(&mut self) {
        let l = LAST;
        let r = self
            .call(
                l,
                "POST",
                "/resource_providers",
                Some(json!({"name": "cn1", "uuid": RP1})),
            )
            .await;
        assert_eq!(r.status, 200);
        let child = json!({"name": "numa", "uuid": RP2, "parent_provider_uuid": RP1});
        assert_eq!(
            self.call(l, "POST", "/resource_providers", Some(child))
                .await
                .status,
            200
        );
        let g = self.generation(RP1).await;
        let inventories = json!({"resource_provider_generation": g, "inventories": {
            "VCPU": {"total": 8}, "MEMORY_MB": {"total": 4096, "allocation_ratio": 1.5},
            "DISK_GB": {"total": 100, "reserved": 10}}});
        let path = format!("/resource_providers/{RP1}/inventories");
        assert_eq!(
            self.call(l, "PUT", &path, Some(inventories)).await.status,
            200
        );
        assert_eq!(
            self.call(l, "PUT", "/resource_classes/CUSTOM_GOLD", None)
                .await
                .status,
            201
        );
        assert_eq!(
            self.call(l, "PUT", "/traits/CUSTOM_FAST", None)
                .await
                .status,
            201
        );
        let g = self.generation(RP1).await;
        let traits = json!({"traits": ["CUSTOM_FAST", "HW_CPU_X86_AVX2"], "resource_provider_generation": g});
        let path = format!("/resource_providers/{RP1}/traits");
        assert_eq!(self.call(l, "PUT", &path, Some(traits)).await.status, 200);
        let g = self.generation(RP1).await;
        let aggs = json!({"aggregates": [AGG], "resource_provider_generation": g});
        let path = format!("/resource_providers/{RP1}/aggregates");
        assert_eq!(self.call(l, "PUT", &path, Some(aggs)).await.status, 200);
        let mut c1 = consumer_body(l, RP1, 2);
        c1["consumer_type"] = "INSTANCE".into();
        assert_eq!(
            self.call(l, "PUT", &format!("/allocations/{C1}"), Some(c1))
                .await
                .status,
            204
        );
    }

    /// Every operation at `1.minor`, over the deployment.
    async fn exercise(&mut self, m: Minor) {
        let rp = format!("/resource_providers/{RP1}");
        let new = format!("/resource_providers/{NEW}");
        for uri in [
            "/",
            "/openapi.json",
            "/resource_providers",
            "/resource_providers?name=cn1",
        ] {
            assert_eq!(self.call(m, "GET", uri, None).await.status, 200, "{uri}");
        }
        // Placement routes the methods it declares only: HEAD is 405, with `allow`.
        let head = self.call(m, "HEAD", "/resource_providers", None).await;
        assert_eq!(head.status, 405);
        for uri in [
            rp.clone(),
            format!("{rp}/inventories"),
            format!("{rp}/inventories/VCPU"),
            format!("{rp}/allocations"),
            format!("{rp}/usages"),
            format!("/allocations/{C1}"),
            format!("/allocations/{MISSING}"),
        ] {
            assert_eq!(self.call(m, "GET", &uri, None).await.status, 200, "{uri}");
        }
        let missing = format!("/resource_providers/{MISSING}");
        assert_eq!(self.call(m, "GET", &missing, None).await.status, 404);
        assert_eq!(
            self.call(m, "GET", &format!("{rp}/inventories/PCI_DEVICE"), None)
                .await
                .status,
            404
        );
        let bad_query = self
            .call(m, "GET", "/resource_providers?bogus=1", None)
            .await;
        assert_eq!(bad_query.status, 400);

        // A provider of its own, written at this version.
        let created = self
            .call(
                m,
                "POST",
                "/resource_providers",
                Some(json!({"name": "new", "uuid": NEW})),
            )
            .await;
        assert_eq!(created.status, if m >= 20 { 200 } else { 201 });
        let renamed = self
            .call(m, "PUT", &new, Some(json!({"name": "renamed"})))
            .await;
        assert_eq!(renamed.status, 200);
        let posted = self
            .call(
                m,
                "POST",
                &format!("{new}/inventories"),
                Some(json!({"resource_class": "DISK_GB", "total": 10})),
            )
            .await;
        assert_eq!(posted.status, 201);
        let g = self.generation(NEW).await;
        let one = json!({"resource_provider_generation": g, "total": 20});
        assert_eq!(
            self.call(m, "PUT", &format!("{new}/inventories/DISK_GB"), Some(one))
                .await
                .status,
            200
        );
        let stale = json!({"resource_provider_generation": 99, "inventories": {}});
        assert_eq!(
            self.call(m, "PUT", &format!("{new}/inventories"), Some(stale))
                .await
                .status,
            409
        );
        let g = self.generation(NEW).await;
        let all =
            json!({"resource_provider_generation": g, "inventories": {"DISK_GB": {"total": 30}}});
        assert_eq!(
            self.call(m, "PUT", &format!("{new}/inventories"), Some(all))
                .await
                .status,
            200
        );
        if m >= 30 {
            let g = self.generation(NEW).await;
            let reshape = json!({
                "inventories": {NEW: {"resource_provider_generation": g, "inventories": {"DISK_GB": {"total": 40}}}},
                "allocations": {}
            });
            assert_eq!(
                self.call(m, "POST", "/reshaper", Some(reshape))
                    .await
                    .status,
                204
            );
        } else {
            assert_eq!(
                self.call(m, "POST", "/reshaper", Some(json!({})))
                    .await
                    .status,
                404
            );
        }
        let deleted = self
            .call(m, "DELETE", &format!("{new}/inventories/DISK_GB"), None)
            .await;
        assert_eq!(deleted.status, 204);
        let cleared = self
            .call(m, "DELETE", &format!("{new}/inventories"), None)
            .await;
        assert_eq!(cleared.status, if m >= 5 { 204 } else { 405 });

        // Aggregates (1.1), traits (1.6).
        let aggs = self.call(m, "GET", &format!("{rp}/aggregates"), None).await;
        assert_eq!(aggs.status, if m >= 1 { 200 } else { 404 });
        let g = self.generation(NEW).await;
        let body = if m >= 19 {
            json!({"aggregates": [AGG], "resource_provider_generation": g})
        } else {
            json!([AGG])
        };
        let put = self
            .call(m, "PUT", &format!("{new}/aggregates"), Some(body))
            .await;
        assert_eq!(put.status, if m >= 1 { 200 } else { 404 });
        let traits_since = if m >= 6 { 200 } else { 404 };
        for uri in [
            "/traits",
            "/traits?name=startswith:CUSTOM",
            &format!("{rp}/traits"),
        ] {
            assert_eq!(
                self.call(m, "GET", uri, None).await.status,
                traits_since,
                "{uri}"
            );
        }
        let shown = self.call(m, "GET", "/traits/CUSTOM_FAST", None).await;
        assert_eq!(shown.status, if m >= 6 { 204 } else { 404 });
        let made = self.call(m, "PUT", "/traits/CUSTOM_MINE", None).await;
        assert_eq!(made.status, if m >= 6 { 201 } else { 404 });
        let again = self.call(m, "PUT", "/traits/CUSTOM_MINE", None).await;
        assert_eq!(again.status, if m >= 6 { 204 } else { 404 });
        let g = self.generation(NEW).await;
        let set = json!({"traits": ["CUSTOM_MINE"], "resource_provider_generation": g});
        assert_eq!(
            self.call(m, "PUT", &format!("{new}/traits"), Some(set))
                .await
                .status,
            traits_since
        );
        let unset = self.call(m, "DELETE", &format!("{new}/traits"), None).await;
        assert_eq!(unset.status, if m >= 6 { 204 } else { 404 });
        let dropped = self.call(m, "DELETE", "/traits/CUSTOM_MINE", None).await;
        assert_eq!(dropped.status, if m >= 6 { 204 } else { 404 });

        // Resource classes (1.2).
        let rc_since = |ok: u16| if m >= 2 { ok } else { 404 };
        for uri in [
            "/resource_classes",
            "/resource_classes/CUSTOM_GOLD",
            "/resource_classes/VCPU",
        ] {
            assert_eq!(
                self.call(m, "GET", uri, None).await.status,
                rc_since(200),
                "{uri}"
            );
        }
        let made = self
            .call(
                m,
                "POST",
                "/resource_classes",
                Some(json!({"name": "CUSTOM_MINE"})),
            )
            .await;
        assert_eq!(made.status, rc_since(201));
        if m < 7 {
            let renamed = self
                .call(
                    m,
                    "PUT",
                    "/resource_classes/CUSTOM_MINE",
                    Some(json!({"name": "CUSTOM_YOURS"})),
                )
                .await;
            assert_eq!(renamed.status, rc_since(200));
            let gone = self
                .call(m, "DELETE", "/resource_classes/CUSTOM_YOURS", None)
                .await;
            assert_eq!(gone.status, rc_since(204));
        } else {
            assert_eq!(
                self.call(m, "PUT", "/resource_classes/CUSTOM_MINE", None)
                    .await
                    .status,
                204
            );
            assert_eq!(
                self.call(m, "PUT", "/resource_classes/CUSTOM_NEW", None)
                    .await
                    .status,
                201
            );
            let dup = self
                .call(
                    m,
                    "POST",
                    "/resource_classes",
                    Some(json!({"name": "CUSTOM_NEW"})),
                )
                .await;
            assert_eq!(dup.status, 409);
            assert_eq!(
                self.call(m, "DELETE", "/resource_classes/CUSTOM_MINE", None)
                    .await
                    .status,
                204
            );
        }

        // Allocations.
        let c2 = format!("/allocations/{C2}");
        assert_eq!(
            self.call(m, "PUT", &c2, Some(consumer_body(m, RP1, 1)))
                .await
                .status,
            204
        );
        assert_eq!(self.call(m, "GET", &c2, None).await.status, 200);
        let post = json!({C3: consumer_body(m.max(12), RP1, 1)});
        let managed = self.call(m, "POST", "/allocations", Some(post)).await;
        assert_eq!(managed.status, if m >= 13 { 204 } else { 404 });
        for uri in [format!("{rp}/allocations"), format!("{rp}/usages")] {
            assert_eq!(self.call(m, "GET", &uri, None).await.status, 200, "{uri}");
        }
        let usages = self.call(m, "GET", "/usages?project_id=p", None).await;
        assert_eq!(usages.status, if m >= 9 { 200 } else { 404 });
        let typed = self
            .call(m, "GET", "/usages?project_id=p&consumer_type=all", None)
            .await;
        assert_eq!(
            typed.status,
            if m >= 38 {
                200
            } else if m >= 9 {
                400
            } else {
                404
            }
        );
        let candidates = [
            "/allocation_candidates?resources=VCPU:1,DISK_GB:1",
            "/allocation_candidates?resources=VCPU:1&limit=1",
            "/allocation_candidates?resources1=VCPU:1&resources2=MEMORY_MB:1&group_policy=none",
        ];
        for (uri, since) in candidates.into_iter().zip([10, 16, 25]) {
            let r = self.call(m, "GET", uri, None).await;
            let want = if m >= since {
                200
            } else if m >= 10 {
                400
            } else {
                404
            };
            assert_eq!(r.status, want, "{uri}");
            if want == 200 {
                let found = r
                    .body
                    .as_ref()
                    .and_then(|b| b["allocation_requests"].as_array())
                    .map(Vec::len);
                assert!(found.is_some_and(|n| n > 0), "{uri}: {:?}", r.body);
            }
        }
        assert_eq!(self.call(m, "DELETE", &c2, None).await.status, 204);
        assert_eq!(self.call(m, "DELETE", &c2, None).await.status, 404);
        assert_eq!(self.call(m, "DELETE", &new, None).await.status, 204);
        assert_eq!(self.call(m, "DELETE", &rp, None).await.status, 409);

        // Errors of the pipeline.
        let wrong_type = self
            .send(
                m,
                "POST",
                "/resource_providers",
                Some(json!({"name": "x"})),
                &[("content-type", "text/plain")],
                v(m),
            )
            .await;
        assert_eq!(wrong_type.status, 415);
        let not_allowed = self.call(m, "PATCH", "/resource_providers", None).await;
        assert_eq!(not_allowed.status, 405);
        assert!(not_allowed.headers.contains_key("allow"));
        let unauthenticated = self
            .send(
                m,
                "GET",
                "/resource_providers",
                None,
                &[("x-auth-token", "")],
                v(m),
            )
            .await;
        assert_eq!(unauthenticated.status, 401);
        let too_new = self
            .send(
                m,
                "GET",
                "/",
                None,
                &[("openstack-api-version", "placement 1.99")],
                v(99),
            )
            .await;
        assert_eq!(too_new.status, 406);
        // A malformed header agrees no microversion: its error is read at 1.0.
        let malformed = self
            .send(
                m,
                "GET",
                "/",
                None,
                &[("openstack-api-version", "placement x.y")],
                v(0),
            )
            .await;
        assert_eq!(malformed.status, 400);
    }
}

#[tokio::test]
async fn every_answer_of_the_router_matches_the_document_at_every_microversion() {
    let mut client = Client::new(ApiConfig::default());
    for minor in FIRST..=LAST {
        client.fresh();
        client.deploy().await;
        client.exercise(minor).await;
    }
    // Every documented success status was seen (HEAD's are GET's).
    let unseen: Vec<String> = client
        .answers
        .iter()
        .filter(|a| a.status < 300 && a.method != "head")
        .filter(|a| {
            !client
                .seen
                .contains(&(a.method.clone(), a.path.clone(), a.status))
        })
        .map(|a| format!("{} {} {}", a.method, a.path, a.status))
        .collect();
    assert!(unseen.is_empty(), "never answered: {unseen:#?}");
}

#[tokio::test]
async fn the_openapi_document_is_served_without_a_token_under_either_strategy() {
    let keystone = ApiConfig {
        auth: AuthStrategy::Keystone {
            validator: Arc::new(Refuse),
            www_authenticate_uri: "http://keystone/v3".into(),
        },
        ..ApiConfig::default()
    };
    for config in [ApiConfig::default(), keystone] {
        let strategy = format!("{:?}", config.auth);
        let mut client = Client::new(config);
        for version in ["", "placement 1.0", "placement latest"] {
            let r = client
                .send(
                    LAST,
                    "GET",
                    "/openapi.json",
                    None,
                    &[("x-auth-token", ""), ("openstack-api-version", version)],
                    v(LAST),
                )
                .await;
            assert_eq!(
                r.status, 200,
                "{strategy}: GET /openapi.json without a token (context.rs must ask \
                 auth::is_public_path for the path): {:?}",
                r.body
            );
            assert_eq!(r.headers["content-type"], "application/json");
            assert_eq!(r.body, Some(document()), "{strategy}");
        }
        // Everything else still needs one: the keystone 401 is documented too.
        let refused = client
            .send(
                LAST,
                "GET",
                "/resource_providers",
                None,
                &[("x-auth-token", "")],
                v(LAST),
            )
            .await;
        assert_eq!(refused.status, 401, "{strategy}");
    }
}

// ---- The api-ref samples -----------------------------------------------------------------

/// Where the api-ref samples are: `$PLACEMENT_SHARED/spec/api-ref/samples`, by default
/// `/work/shared/...` (absent in a clean clone: the test is skipped).
fn samples_dir() -> Option<PathBuf> {
    let root = std::env::var_os("PLACEMENT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/work/shared"));
    let dir = root.join("spec/api-ref/samples");
    dir.is_dir().then_some(dir)
}

/// (sample, method, path template, status or 0 for the request body, minor version,
/// whether it is valid there).
const SAMPLES: &[(&str, &str, &str, u16, Minor, bool)] = &[
    ("root/get-root.json", "get", "/", 200, 0, true),
    (
        "resource_providers/get-resource_providers.json",
        "get",
        "/resource_providers",
        200,
        14,
        true,
    ),
    (
        "resource_providers/get-resource_provider.json",
        "get",
        "/resource_providers/{uuid}",
        200,
        14,
        true,
    ),
    (
        "resource_providers/create-resource_provider.json",
        "post",
        "/resource_providers",
        200,
        20,
        true,
    ),
    (
        "resource_providers/create-resource_providers-request.json",
        "post",
        "/resource_providers",
        0,
        14,
        true,
    ),
    (
        "resource_providers/update-resource_provider.json",
        "put",
        "/resource_providers/{uuid}",
        200,
        14,
        true,
    ),
    (
        "resource_providers/update-resource_provider-request.json",
        "put",
        "/resource_providers/{uuid}",
        0,
        14,
        true,
    ),
    (
        "inventories/get-inventories.json",
        "get",
        "/resource_providers/{uuid}/inventories",
        200,
        0,
        true,
    ),
    (
        "inventories/update-inventories.json",
        "put",
        "/resource_providers/{uuid}/inventories",
        200,
        0,
        true,
    ),
    (
        "inventories/update-inventories-request.json",
        "put",
        "/resource_providers/{uuid}/inventories",
        0,
        0,
        true,
    ),
    (
        "inventories/get-inventory.json",
        "get",
        "/resource_providers/{uuid}/inventories/{resource_class}",
        200,
        0,
        true,
    ),
    (
        "inventories/update-inventory.json",
        "put",
        "/resource_providers/{uuid}/inventories/{resource_class}",
        200,
        0,
        true,
    ),
    (
        "inventories/update-inventory-request.json",
        "put",
        "/resource_providers/{uuid}/inventories/{resource_class}",
        0,
        0,
        true,
    ),
    (
        "aggregates/get-aggregates.json",
        "get",
        "/resource_providers/{uuid}/aggregates",
        200,
        1,
        true,
    ),
    (
        "aggregates/get-aggregates-1.19.json",
        "get",
        "/resource_providers/{uuid}/aggregates",
        200,
        19,
        true,
    ),
    (
        "aggregates/update-aggregates.json",
        "put",
        "/resource_providers/{uuid}/aggregates",
        200,
        1,
        true,
    ),
    (
        "aggregates/update-aggregates-1.19.json",
        "put",
        "/resource_providers/{uuid}/aggregates",
        200,
        19,
        true,
    ),
    (
        "aggregates/update-aggregates-request.json",
        "put",
        "/resource_providers/{uuid}/aggregates",
        0,
        1,
        true,
    ),
    (
        "aggregates/update-aggregates-request-1.19.json",
        "put",
        "/resource_providers/{uuid}/aggregates",
        0,
        19,
        true,
    ),
    (
        "resource_classes/get-resource_classes.json",
        "get",
        "/resource_classes",
        200,
        2,
        true,
    ),
    (
        "resource_classes/get-resource_class.json",
        "get",
        "/resource_classes/{name}",
        200,
        2,
        true,
    ),
    (
        "resource_classes/create-resource_classes-request.json",
        "post",
        "/resource_classes",
        0,
        2,
        true,
    ),
    (
        "resource_classes/update-resource_class.json",
        "put",
        "/resource_classes/{name}",
        200,
        2,
        true,
    ),
    (
        "resource_classes/update-resource_class-request.json",
        "put",
        "/resource_classes/{name}",
        0,
        2,
        true,
    ),
    ("traits/get-traits.json", "get", "/traits", 200, 6, true),
    (
        "resource_provider_traits/get-resource_provider-traits.json",
        "get",
        "/resource_providers/{uuid}/traits",
        200,
        6,
        true,
    ),
    (
        "resource_provider_traits/update-resource_provider-traits.json",
        "put",
        "/resource_providers/{uuid}/traits",
        200,
        6,
        true,
    ),
    (
        "resource_provider_traits/update-resource_provider-traits-request.json",
        "put",
        "/resource_providers/{uuid}/traits",
        0,
        6,
        true,
    ),
    (
        "allocations/get-allocations.json",
        "get",
        "/allocations/{consumer_uuid}",
        200,
        12,
        true,
    ),
    (
        "allocations/get-allocations-1.28.json",
        "get",
        "/allocations/{consumer_uuid}",
        200,
        28,
        true,
    ),
    (
        "allocations/get-allocations-1.38.json",
        "get",
        "/allocations/{consumer_uuid}",
        200,
        38,
        true,
    ),
    (
        "allocations/update-allocations-request.json",
        "put",
        "/allocations/{consumer_uuid}",
        0,
        8,
        true,
    ),
    (
        "allocations/update-allocations-request-1.12.json",
        "put",
        "/allocations/{consumer_uuid}",
        0,
        12,
        true,
    ),
    (
        "allocations/update-allocations-request-1.28.json",
        "put",
        "/allocations/{consumer_uuid}",
        0,
        28,
        true,
    ),
    (
        "allocations/update-allocations-request-1.38.json",
        "put",
        "/allocations/{consumer_uuid}",
        0,
        38,
        true,
    ),
    (
        "allocations/manage-allocations-request.json",
        "post",
        "/allocations",
        0,
        13,
        true,
    ),
    (
        "allocations/manage-allocations-request-1.28.json",
        "post",
        "/allocations",
        0,
        28,
        true,
    ),
    (
        "allocations/manage-allocations-request-1.38.json",
        "post",
        "/allocations",
        0,
        38,
        true,
    ),
    (
        "resource_provider_allocations/get-resource_provider_allocations.json",
        "get",
        "/resource_providers/{uuid}/allocations",
        200,
        0,
        true,
    ),
    (
        "resource_provider_usages/get-resource_provider_usages.json",
        "get",
        "/resource_providers/{uuid}/usages",
        200,
        0,
        true,
    ),
    ("usages/get-usages.json", "get", "/usages", 200, 9, true),
    (
        "usages/get-usages-1.38.json",
        "get",
        "/usages",
        200,
        38,
        true,
    ),
    (
        "allocation_candidates/get-allocation_candidates.json",
        "get",
        "/allocation_candidates",
        200,
        10,
        true,
    ),
    (
        "allocation_candidates/get-allocation_candidates-1.12.json",
        "get",
        "/allocation_candidates",
        200,
        12,
        true,
    ),
    (
        "allocation_candidates/get-allocation_candidates-1.17.json",
        "get",
        "/allocation_candidates",
        200,
        17,
        true,
    ),
    (
        "allocation_candidates/get-allocation_candidates-1.29.json",
        "get",
        "/allocation_candidates",
        200,
        29,
        true,
    ),
    (
        "allocation_candidates/get-allocation_candidates-1.34.json",
        "get",
        "/allocation_candidates",
        200,
        34,
        true,
    ),
    // The api-ref's reshaper samples send `"resource_provider_generation": null`, which
    // Placement's own schema (`PUT_INVENTORY_SCHEMA`: an integer) refuses.
    (
        "reshaper/post-reshaper-1.30.json",
        "post",
        "/reshaper",
        0,
        30,
        false,
    ),
    (
        "reshaper/post-reshaper-1.38.json",
        "post",
        "/reshaper",
        0,
        38,
        false,
    ),
];

#[test]
fn the_api_ref_samples_validate() {
    let Some(dir) = samples_dir() else {
        println!("skipped: no api-ref samples (set PLACEMENT_SHARED to the shared directory)");
        return;
    };
    let doc = document();
    let answers = lookup::answers(&doc).expect("answers");
    let mut failures = Vec::new();
    for (file, method, path, status, minor, valid) in SAMPLES {
        let text = std::fs::read_to_string(dir.join(file)).expect("a sample");
        let sample: Value = serde_json::from_str(&text).expect("a JSON sample");
        let schema = if *status == 0 {
            at_version(
                &doc["paths"][*path][*method]["requestBody"]["content"]["application/json"],
                *minor,
            )
            .unwrap_or_else(|| panic!("{file}: no request body at 1.{minor}"))
        } else {
            answers
                .iter()
                .find(|a| a.method == *method && a.path == *path && a.status == *status)
                .unwrap_or_else(|| panic!("{file}: {status} not documented"))
                .documented
                .schema_at(v(*minor))
                .expect("documented at its version")
                .expect("a body")
                .clone()
        };
        let result = crate::schema::validate(&inline(&doc, &schema), &sample);
        if result.is_ok() != *valid {
            failures.push(format!("{file} at 1.{minor}: {result:?}"));
        }
    }
    // Every sample file is in the table.
    let mut listed: BTreeSet<String> = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).expect("samples").flatten() {
        for f in std::fs::read_dir(entry.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = f.file_name().to_string_lossy().to_string();
            listed.insert(format!("{}/{name}", entry.file_name().to_string_lossy()));
        }
    }
    let known: BTreeSet<String> = SAMPLES.iter().map(|s| s.0.to_string()).collect();
    let untested: Vec<&String> = listed.difference(&known).collect();
    assert!(
        failures.is_empty() && untested.is_empty(),
        "{failures:#?}\nnot in SAMPLES: {untested:?}"
    );
}
