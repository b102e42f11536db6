//! Assembles the document: the operation table ([`super::operations`]), the handlers' request
//! and query schemas sampled at every microversion, the response schemas of
//! [`super::schemas`], and the parts every operation shares (error answers, headers, the
//! microversion header, the token).

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use placement_types::Uuid;
use serde_json::{json, Map, Value};

use super::operations::{self, Answer, Operation, Query};
use super::schemas::{self, component, REQUEST_ID};
use super::Minor;
use crate::context::{Ctx, Microversion, MAX_VERSION, MIN_VERSION};
use crate::ApiConfig;

pub(super) const FIRST: Minor = MIN_VERSION.minor;
pub(super) const LAST: Minor = MAX_VERSION.minor;

/// Errors carry `code` from this minor version on (`context::render_error`).
const CODE_SINCE: Minor = 23;

/// `1.x` as the document writes it.
fn version(minor: Minor) -> String {
    format!("{}.{minor}", MIN_VERSION.major)
}

/// A request context at `1.minor`, to ask the handlers' schema functions for their schema.
pub(super) fn ctx_at(minor: Minor) -> Ctx {
    static CONFIG: LazyLock<Arc<ApiConfig>> = LazyLock::new(Default::default);
    Ctx {
        request_id: Uuid::nil(),
        version: Microversion {
            major: MIN_VERSION.major,
            minor,
        },
        caller: None,
        accept: None,
        content_type: None,
        config: CONFIG.clone(),
    }
}

/// A value that holds over an inclusive range of minor versions.
struct Range {
    min: Minor,
    max: Minor,
    value: Value,
}

/// `at` sampled over `first..=last`, equal neighbours merged (`None`: nothing there).
fn ranges(first: Minor, last: Minor, at: impl Fn(Minor) -> Option<Value>) -> Vec<Range> {
    let mut out: Vec<Range> = Vec::new();
    for m in first..=last {
        let Some(value) = at(m) else { continue };
        match out.last_mut() {
            Some(r) if r.max + 1 == m && r.value == value => r.max = m,
            _ => out.push(Range {
                min: m,
                max: m,
                value,
            }),
        }
    }
    out
}

/// Whether `ranges` cover `first..=last` without a gap.
fn covers(ranges: &[Range], first: Minor, last: Minor) -> bool {
    ranges.first().is_some_and(|r| r.min == first)
        && ranges.last().is_some_and(|r| r.max == last)
        && ranges.windows(2).all(|w| w[0].max + 1 == w[1].min)
}

/// The `anyOf` of distinct schemas (nested `anyOf`s flattened); a lone schema as it is.
fn any_of<'a>(schemas: impl IntoIterator<Item = &'a Value>) -> Value {
    let mut all: Vec<Value> = Vec::new();
    for s in schemas {
        let parts = match s
            .as_object()
            .and_then(|o| o.get("anyOf").filter(|_| o.len() == 1))
        {
            Some(Value::Array(parts)) => parts.clone(),
            _ => vec![s.clone()],
        };
        for p in parts {
            if !all.contains(&p) {
                all.push(p);
            }
        }
    }
    if all.len() == 1 {
        all.remove(0)
    } else {
        json!({ "anyOf": all })
    }
}

/// A media type object for bodies that hold over `first..=last` in `ranges`.
fn media(first: Minor, last: Minor, ranges: &[Range]) -> Option<Value> {
    match ranges {
        [] => None,
        [one] if one.min == first && one.max == last => Some(json!({ "schema": one.value })),
        _ => Some(json!({
            "schema": any_of(ranges.iter().map(|r| &r.value)),
            "x-microversions": ranges
                .iter()
                .map(|r| json!({"min": version(r.min), "max": version(r.max), "schema": r.value}))
                .collect::<Vec<_>>()
        })),
    }
}

/// Adds `x-min-version` / `x-max-version` when narrower than `first..=last`.
fn limit(object: &mut Map<String, Value>, min: Minor, max: Minor, first: Minor, last: Minor) {
    if min > first {
        object.insert("x-min-version".into(), version(min).into());
    }
    if max < last {
        object.insert("x-max-version".into(), version(max).into());
    }
}

pub(super) fn document() -> Value {
    let errors = error_responses();
    let mut paths = Map::new();
    for op in operations::all() {
        let operation = operation(&op);
        let item = paths
            .entry(op.path)
            .or_insert_with(|| Value::Object(Map::new()));
        item[op.method.key()] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "placementd: the OpenStack Placement API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": description(),
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
            "x-min-version": version(FIRST),
            "x-max-version": version(LAST),
        },
        "tags": operations::TAGS
            .iter()
            .map(|(name, description)| json!({"name": name, "description": description}))
            .collect::<Vec<_>>(),
        "security": [{"token": []}],
        "paths": paths,
        "components": {
            "schemas": schemas::components(),
            "responses": errors,
            "parameters": {
                "OpenStackApiVersion": {
                    "name": "OpenStack-API-Version",
                    "in": "header",
                    "required": false,
                    "description": format!(
                        "The microversion asked for: `placement 1.x` or `placement latest` \
                         (= {}); absent: {}. A malformed value is refused with 400, one \
                         outside {}–{} with 406.",
                        version(LAST), version(FIRST), version(FIRST), version(LAST)
                    ),
                    "schema": {"type": "string"},
                    "example": format!("placement {}", version(LAST)),
                },
                "LegacyApiVersion": {
                    "name": "X-OpenStack-Placement-API-Version",
                    "in": "header",
                    "required": false,
                    "deprecated": true,
                    "description": "The legacy microversion header (`1.x`), read when \
                                    `OpenStack-API-Version` names no placement version.",
                    "schema": {"type": "string"},
                },
            },
            "headers": headers(),
            "securitySchemes": {
                "token": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Auth-Token",
                    "description": "auth_strategy = keystone: a Keystone token (and \
                                    `X-Service-Token` for a service acting for a user). \
                                    auth_strategy = noauth2 (development only): \
                                    `user[:project]`, roles from `X-Roles` (`admin` for the \
                                    user `admin`). `GET /` and `GET /openapi.json` need none.",
                },
            },
        },
    })
}

fn description() -> String {
    format!(
        "placementd serves the OpenStack Placement API, microversions {first}–{last}. A \
         request picks one with `OpenStack-API-Version: placement 1.x` (`latest` = {last}, \
         none = {first}); every answer after that negotiation says which in \
         `OpenStack-API-Version`.\n\n\
         How this document marks microversions:\n\
         - `x-min-version` on an operation: it exists from that microversion; below it the \
         path answers 404 (405 for `DELETE /resource_providers/{{uuid}}/inventories` before \
         1.5).\n\
         - `x-min-version` / `x-max-version` on a response or a parameter: it exists only in \
         that inclusive range; without them, at every microversion.\n\
         - `x-microversions` on a media type or a parameter: `[{{min, max, schema}}]` over \
         disjoint inclusive ranges; the body at a microversion follows the entry whose range \
         holds it. The plain `schema` beside it is the `anyOf` of those entries, for tools \
         that know nothing of microversions.\n\
         - Error documents carry `code` from 1.{code_since}, except errors raised before a \
         microversion was agreed (401, a malformed or unacceptable microversion header).\n\n\
         Every GET also answers HEAD (the same status and headers, no body). Other methods on \
         a known path answer 405 with `Allow`; unknown paths 404.",
        first = version(FIRST),
        last = version(LAST),
        code_since = CODE_SINCE,
    )
}

fn header_refs(names: &[&str]) -> Value {
    let refs: Map<String, Value> = names
        .iter()
        .map(|n| {
            (
                n.to_string(),
                json!({ "$ref": format!("#/components/headers/{n}") }),
            )
        })
        .collect();
    Value::Object(refs)
}

/// The headers every answer after microversion negotiation has.
const NEGOTIATED: [&str; 3] = [
    "OpenStack-API-Version",
    "OpenStack-Request-Id",
    "X-OpenStack-Request-Id",
];

fn headers() -> Value {
    let string = json!({"type": "string"});
    let request_id = json!({
        "description": "This request's id (`req-` and a uuid), also in error documents.",
        "schema": {"type": "string", "pattern": REQUEST_ID},
    });
    json!({
        "OpenStack-API-Version": {
            "description": "The microversion of the answer: `placement 1.x`. Absent when no \
                            microversion was agreed (401, a refused microversion header).",
            "schema": {"type": "string", "pattern": "^placement [0-9]+\\.[0-9]+$"},
        },
        "Vary": {
            "description": "`openstack-api-version` on the answers that pass Placement's \
                            microversion middleware (not on errors raised past it: no \
                            token, policy, routing, 5xx); `Origin` added for CORS.",
            "schema": string,
        },
        "OpenStack-Request-Id": request_id,
        "X-OpenStack-Request-Id": request_id,
        "Location": {
            "description": "The URL of the created (or ensured) resource.",
            "schema": string,
        },
        "Last-Modified": {
            "description": "From 1.15, on answers that carry a time: when the resource last \
                            changed (\"now\" where Placement records no time).",
            "schema": string,
        },
        "Cache-Control": {
            "description": "`no-cache`, from 1.15 alongside `Last-Modified`.",
            "schema": string,
        },
        "Allow": {
            "description": "The methods this path serves, comma-separated.",
            "schema": string,
        },
        "WWW-Authenticate": {
            "description": "auth_strategy = keystone: `Keystone uri=\"…\"`, where to get a \
                            token.",
            "schema": string,
        },
    })
}

/// The name of an error status's answer under `#/components/responses`.
fn error_name(status: u16) -> &'static str {
    match status {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        406 => "NotAcceptable",
        409 => "Conflict",
        413 => "PayloadTooLarge",
        415 => "UnsupportedMediaType",
        500 => "InternalServerError",
        503 => "ServiceUnavailable",
        _ => "Error",
    }
}

/// Every error status an operation may give.
const ERROR_STATUSES: [u16; 11] = [400, 401, 403, 404, 405, 406, 409, 413, 415, 500, 503];

/// The error answers, shared by all operations: Placement's error document, with `code`
/// from 1.23; webob's HTML or plain text when `Accept` prefers them.
fn error_responses() -> Map<String, Value> {
    let before = || component("ErrorWithoutCode");
    let after = || component("ErrorWithCode");
    let versioned = |before: Value, after: Value| {
        json!({
            "schema": any_of([&before, &after]),
            "x-microversions": [
                {"min": version(FIRST), "max": version(CODE_SINCE - 1), "schema": before},
                {"min": version(CODE_SINCE), "max": version(LAST), "schema": after},
            ]
        })
    };
    let mut out = Map::new();
    for status in ERROR_STATUSES {
        let (description, json_media) = match status {
            400 => (
                "A body or query string that does not validate, a value Placement refuses, or \
                 a malformed microversion header (that one without `code`: no microversion \
                 was agreed).",
                versioned(before(), after()),
            ),
            401 => (
                "No token, or one Keystone refuses. noauth2 answers in Placement's shape, \
                 keystone in keystonemiddleware's (with `WWW-Authenticate`); never a `code`.",
                json!({"schema": any_of([&before(), &component("KeystoneError")])}),
            ),
            403 => (
                "Policy does not allow the caller this.",
                versioned(before(), after()),
            ),
            404 => (
                "Not found, or the operation does not exist at this microversion.",
                versioned(before(), after()),
            ),
            405 => (
                "The method is not served on this path (at this microversion); `Allow` lists \
                 those that are.",
                versioned(before(), after()),
            ),
            406 => (
                "A microversion outside the served range (with the range, without `code`), \
                 or an `Accept` that excludes JSON.",
                versioned(
                    any_of([&before(), &component("VersionError")]),
                    any_of([&after(), &component("VersionError")]),
                ),
            ),
            409 => (
                "A stale generation (`placement.concurrent_update`), a duplicate, or \
                 resources in use.",
                versioned(before(), after()),
            ),
            413 => (
                "The body is larger than the configured limit.",
                versioned(before(), after()),
            ),
            415 => (
                "A body that is not `application/json`.",
                versioned(before(), after()),
            ),
            500 => ("A bug in placementd.", versioned(before(), after())),
            _ => (
                "Overloaded, past the request deadline, or unable to reach the cluster's \
                 leader; or (keystone, without `code`) Keystone is unreachable.",
                versioned(before(), any_of([&after(), &before()])),
            ),
        };
        let mut headers = vec!["OpenStack-Request-Id", "X-OpenStack-Request-Id"];
        if status != 401 {
            headers.insert(0, "OpenStack-API-Version");
        }
        if status == 401 {
            headers.push("WWW-Authenticate");
        } else {
            headers.push("Vary");
        }
        if status == 405 {
            headers.push("Allow");
        }
        let text = json!({"schema": {"type": "string"}});
        out.insert(
            error_name(status).into(),
            json!({
                "description": description,
                "headers": header_refs(&headers),
                "content": {
                    "application/json": json_media,
                    "text/html": text,
                    "text/plain": text,
                },
            }),
        );
    }
    out
}

fn operation(op: &Operation) -> Value {
    let first = op.since;
    let mut o = Map::new();
    o.insert("operationId".into(), op.id.into());
    o.insert("summary".into(), op.summary.into());
    o.insert("tags".into(), json!([op.tag]));
    let mut notes: Vec<String> = Vec::new();
    if first > FIRST {
        o.insert("x-min-version".into(), version(first).into());
        notes.push(format!(
            "Exists from microversion {}; below, the path answers {}.",
            version(first),
            op.errors
                .iter()
                .find(|e| e.until < first)
                .map_or(404, |e| e.status)
        ));
    }
    let mut parameters = vec![
        json!({"$ref": "#/components/parameters/OpenStackApiVersion"}),
        json!({"$ref": "#/components/parameters/LegacyApiVersion"}),
    ];
    parameters.extend(path_parameters(op.path));
    if let Some(query) = &op.query {
        let (params, closed) = query_parameters(first, query);
        parameters.extend(params);
        if closed {
            notes.push("Query parameters other than these are refused with 400.".into());
        }
    }
    o.insert("parameters".into(), Value::Array(parameters));
    if let Some(body) = op.body {
        let found = ranges(first, LAST, |m| body(&ctx_at(m)));
        if let Some(media) = media(first, LAST, &found) {
            o.insert(
                "requestBody".into(),
                json!({
                    "required": covers(&found, first, LAST),
                    "content": {"application/json": media},
                }),
            );
        }
        if !covers(&found, first, LAST) {
            notes.push("No body is read at the microversions `x-microversions` leaves out.".into());
        }
    }
    if !notes.is_empty() {
        o.insert("description".into(), notes.join(" ").into());
    }
    o.insert("responses".into(), responses(op));
    if op.public {
        o.insert("security".into(), json!([]));
    }
    Value::Object(o)
}

fn responses(op: &Operation) -> Value {
    let mut by_status: BTreeMap<u16, Value> = BTreeMap::new();
    for a in &op.answers {
        by_status.insert(a.status, success(op, a));
    }
    let mut common = vec![400, 406, 500, 503];
    if !op.public {
        common.extend([401, 403]);
    }
    if op.body.is_some() {
        common.extend([413, 415]);
    }
    let errors = common.into_iter().map(operations::error).chain(
        op.errors
            .iter()
            .map(|e| operations::error(e.status).from(e.since).until(e.until)),
    );
    for e in errors {
        let entry = if e.since == FIRST && e.until == LAST {
            json!({ "$ref": format!("#/components/responses/{}", error_name(e.status)) })
        } else {
            let mut r = error_responses()
                .remove(error_name(e.status))
                .unwrap_or_else(|| json!({"description": "An error."}));
            if let Some(o) = r.as_object_mut() {
                limit(o, e.since, e.until, FIRST, LAST);
            }
            r
        };
        by_status.entry(e.status).or_insert(entry);
    }
    Value::Object(
        by_status
            .into_iter()
            .map(|(s, r)| (s.to_string(), r))
            .collect(),
    )
}

fn success(op: &Operation, a: &Answer) -> Value {
    let since = a.since.max(op.since);
    let mut r = Map::new();
    r.insert("description".into(), a.description.into());
    let mut headers: Vec<&str> = NEGOTIATED.to_vec();
    headers.push("Vary");
    headers.extend(a.headers);
    r.insert("headers".into(), header_refs(&headers));
    if let Some(body) = a.body {
        let found = ranges(since, a.until, |m| Some(body(m)));
        if let Some(media) = media(since, a.until, &found) {
            r.insert("content".into(), json!({ "application/json": media }));
        }
    }
    limit(&mut r, since, a.until, FIRST, LAST);
    Value::Object(r)
}

fn path_parameters(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| {
            json!({
                "name": name,
                "in": "path",
                "required": true,
                "description": operations::path_parameter_description(path, name),
                "schema": {"type": "string"},
            })
        })
        .collect()
}

/// The query parameters of the handler's query schema over `first..=LAST`, and whether
/// unknown parameters are refused at every version.
fn query_parameters(first: Minor, query: &Query) -> (Vec<Value>, bool) {
    let at: Vec<Value> = (first..=LAST).map(|m| (query.schema)(&ctx_at(m))).collect();
    let schema_at = |m: Minor| &at[(m - first) as usize];
    let closed = at
        .iter()
        .all(|s| s.get("additionalProperties") == Some(&Value::Bool(false)));
    let mut names: Vec<String> = Vec::new();
    for s in &at {
        for name in s
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|p| p.keys())
        {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
    }
    let mut out = Vec::new();
    for name in &names {
        let found = ranges(first, LAST, |m| {
            let s = schema_at(m);
            let property = s.get("properties")?.get(name)?;
            let required = s
                .get("required")
                .and_then(Value::as_array)
                .is_some_and(|r| r.iter().any(|x| x == name.as_str()));
            Some(json!({"schema": property, "required": required}))
        });
        out.push(parameter(
            name,
            first,
            &found,
            operations::query_parameter_description(name),
        ));
    }
    if !query.patterns_as.is_empty() {
        let found = ranges(first, LAST, |m| {
            let patterns = schema_at(m).get("patternProperties")?;
            Some(json!({
                "schema": {"type": "object", "patternProperties": patterns},
                "required": false,
            }))
        });
        if !found.is_empty() {
            let mut p = parameter(
                query.patterns_as,
                first,
                &found,
                Some(
                    "Parameters whose names match these patterns (`resources`, `resources1`, \
                     `required_NET`, …): request groups, one per suffix. Not a parameter of \
                     its own: its keys are sent as parameters (`form`, `explode`).",
                ),
            );
            p["style"] = "form".into();
            p["explode"] = true.into();
            out.push(p);
        }
    }
    (out, closed)
}

/// One query parameter from its `{schema, required}` over ranges of versions.
fn parameter(name: &str, first: Minor, found: &[Range], description: Option<&str>) -> Value {
    let (min, max) = match (found.first(), found.last()) {
        (Some(a), Some(b)) => (a.min, b.max),
        _ => (first, LAST),
    };
    let required = covers(found, first, LAST) && found.iter().all(|r| r.value["required"] == true);
    let mut p = Map::new();
    p.insert("name".into(), name.into());
    p.insert("in".into(), "query".into());
    if let Some(d) = description {
        p.insert("description".into(), d.into());
    }
    p.insert("required".into(), required.into());
    p.insert(
        "schema".into(),
        any_of(found.iter().map(|r| &r.value["schema"])),
    );
    limit(&mut p, min, max, first, LAST);
    // Ranges as they are when the schema changes, or when `required` holds only in some
    // (`resources` of `GET /allocation_candidates` before 1.25).
    if found.len() > 1 || found.iter().any(|r| r.value["required"] != required) {
        p.insert(
            "x-microversions".into(),
            found
                .iter()
                .map(|r| {
                    json!({
                        "min": version(r.min),
                        "max": version(r.max),
                        "schema": r.value["schema"],
                        "required": r.value["required"],
                    })
                })
                .collect(),
        );
    }
    Value::Object(p)
}
