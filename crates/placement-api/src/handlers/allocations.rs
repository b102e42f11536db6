//! Allocations: `GET/PUT/DELETE /allocations/{consumer_uuid}`, `POST /allocations` (1.13) and
//! `GET /resource_providers/{uuid}/allocations` (`handlers/allocation.py`).
//!
//! Request bodies change shape with the microversion:
//! - before 1.8: a list of `{resource_provider: {uuid}, resources}`; no project or user, so
//!   the consumer gets Placement's "incomplete consumer" project and user ids;
//! - 1.8: `project_id` and `user_id` required;
//! - 1.12: `allocations` becomes a dict keyed by provider uuid (the shape `GET` returns);
//! - 1.28: `consumer_generation` required (`null` for a new consumer); an empty dict then
//!   removes the consumer's allocations;
//! - 1.34: optional `mappings` (accepted and ignored, as Placement does);
//! - 1.38: `consumer_type` required.
//!
//! Every write becomes one [`Command::WriteAllocations`] (or `DeleteAllocations`); all state
//! checks and their messages live in `placement_core::apply` (allocations module). The POST
//! body parser and the schemas are shared with the reshaper.
//!
//! Numbers as Placement reads them: an amount is any integral JSON number ≥ 1 (`1e3` is
//! 1000); one beyond `i64` travels as `i64::MAX`, which exceeds every `max_unit`, as the
//! exact number does in Placement. A consumer generation is compared as Python's `!=` does
//! and echoed with `%s`: one the command cannot carry as sent (negative, larger than `u32`,
//! or written as a float) is decided here against the state, in Placement's order, and the
//! conflict message shows it as sent (`expected null but got 100000000000000000000`).

use std::sync::LazyLock;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use http::StatusCode;
use placement_core::State as PlacementState;
use placement_types::{
    Allocation, Command, ConsumerTypeWrite, ConsumerWrite, ErrorCode, GenerationCheck, Timestamp,
    Uuid,
};
use serde_json::{json, Map, Value};

use super::{extract_json, plain_generation, saturating_i64, SentGeneration};
use crate::context::Ctx;
use crate::response::{empty, json_response, now};
use crate::schema::Numbers;
use crate::{ApiError, AppState, Backend};

pub(crate) const UUID_PATTERN: &str = "^[0-9a-fA-F-]{36}$";
pub(crate) const RC_PATTERN: &str = "^[A-Z0-9_]+$";
const CONSUMER_TYPE_PATTERN: &str = RC_PATTERN;
const GROUP_PAT_1_33: &str = "[a-zA-Z0-9_-]{1,64}";

pub(crate) fn routes<B: Backend>() -> Router<AppState<B>> {
    Router::new()
        .route(
            "/allocations/{consumer_uuid}",
            get(list_for_consumer::<B>)
                .put(set_for_consumer::<B>)
                .delete(delete_for_consumer::<B>),
        )
        .route("/allocations", post(set_allocations::<B>))
        .route(
            "/resource_providers/{uuid}/allocations",
            get(list_for_provider::<B>),
        )
}

// ---- Schemas (schemas/allocation.py; key order as in Placement's dicts) --------------------

fn insert_property(schema: &mut Value, name: &str, property: Value, required: bool) {
    if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        props.insert(name.to_string(), property);
    }
    if required {
        if let Some(req) = schema.get_mut("required").and_then(Value::as_array_mut) {
            req.push(Value::String(name.to_string()));
        }
    }
}

fn id_property() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": 255})
}

/// `ALLOCATION_SCHEMA` (1.0–1.7).
static PUT_V1_0: LazyLock<Value> = LazyLock::new(|| {
    json!({
        "type": "object",
        "properties": {
            "allocations": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "properties": {
                        "resource_provider": {
                            "type": "object",
                            "properties": {
                                "uuid": {"type": "string", "format": "uuid"}
                            },
                            "additionalProperties": false,
                            "required": ["uuid"]
                        },
                        "resources": {
                            "type": "object",
                            "minProperties": 1,
                            "patternProperties": {
                                RC_PATTERN: {"type": "integer", "minimum": 1}
                            },
                            "additionalProperties": false
                        }
                    },
                    "required": ["resource_provider", "resources"],
                    "additionalProperties": false
                }
            }
        },
        "required": ["allocations"],
        "additionalProperties": false
    })
});

/// `ALLOCATION_SCHEMA_V1_8`.
static PUT_V1_8: LazyLock<Value> = LazyLock::new(|| {
    let mut s = PUT_V1_0.clone();
    insert_property(&mut s, "project_id", id_property(), true);
    insert_property(&mut s, "user_id", id_property(), true);
    s
});

/// `ALLOCATION_SCHEMA_V1_12`.
static PUT_V1_12: LazyLock<Value> = LazyLock::new(|| {
    json!({
        "type": "object",
        "properties": {
            "allocations": {
                "type": "object",
                "minProperties": 1,
                "patternProperties": {
                    UUID_PATTERN: {
                        "type": "object",
                        "properties": {
                            "generation": {"type": "integer"},
                            "resources": {
                                "type": "object",
                                "minProperties": 1,
                                "patternProperties": {
                                    RC_PATTERN: {"type": "integer", "minimum": 1}
                                },
                                "additionalProperties": false
                            }
                        },
                        "required": ["resources"],
                        "additionalProperties": false
                    }
                },
                "additionalProperties": false
            },
            "project_id": id_property(),
            "user_id": id_property()
        },
        "additionalProperties": false,
        "required": ["allocations", "project_id", "user_id"]
    })
});

/// `DELETABLE_ALLOCATIONS`: 1.12 with an empty allocations dict allowed.
static DELETABLE: LazyLock<Value> = LazyLock::new(|| {
    let mut s = PUT_V1_12.clone();
    if let Some(a) = s.pointer_mut("/properties/allocations/minProperties") {
        *a = json!(0);
    }
    s
});

fn generation_property() -> Value {
    json!({"type": ["integer", "null"], "additionalProperties": false})
}

/// `ALLOCATION_SCHEMA_V1_28` (equal to `REQUIRED_GENERATION_ALLOCS_POST`).
static PUT_V1_28: LazyLock<Value> = LazyLock::new(|| {
    let mut s = DELETABLE.clone();
    insert_property(&mut s, "consumer_generation", generation_property(), true);
    s
});

/// `ALLOCATION_SCHEMA_V1_34`.
static PUT_V1_34: LazyLock<Value> = LazyLock::new(|| {
    let mut s = PUT_V1_28.clone();
    let mappings = json!({
        "type": "object",
        "minProperties": 1,
        "patternProperties": {
            GROUP_PAT_1_33: {
                "type": "array",
                "minItems": 1,
                "items": {"type": "string", "format": "uuid"}
            }
        }
    });
    insert_property(&mut s, "mappings", mappings, false);
    s
});

/// `ALLOCATION_SCHEMA_V1_38`.
static PUT_V1_38: LazyLock<Value> = LazyLock::new(|| {
    let mut s = PUT_V1_34.clone();
    let ct = json!({
        "type": "string",
        "pattern": CONSUMER_TYPE_PATTERN,
        "minLength": 1,
        "maxLength": 255
    });
    insert_property(&mut s, "consumer_type", ct, true);
    s
});

/// `POST_ALLOCATIONS_*`: a dict of consumer uuid → one consumer's body.
fn post_schema(per_consumer: &Value, min_properties: u32) -> Value {
    json!({
        "type": "object",
        "minProperties": min_properties,
        "additionalProperties": false,
        "patternProperties": {UUID_PATTERN: per_consumer}
    })
}

static POST_V1_13: LazyLock<Value> = LazyLock::new(|| post_schema(&DELETABLE, 1));
static POST_V1_28: LazyLock<Value> = LazyLock::new(|| post_schema(&PUT_V1_28, 1));
static POST_V1_34: LazyLock<Value> = LazyLock::new(|| post_schema(&PUT_V1_34, 1));
static POST_V1_38: LazyLock<Value> = LazyLock::new(|| post_schema(&PUT_V1_38, 1));

/// The body schema of `PUT /allocations/{consumer_uuid}` at the request's microversion (also
/// read by [`crate::openapi`]).
pub(crate) fn put_body_schema(ctx: &Ctx) -> &'static Value {
    match ctx.version.minor {
        0..=7 => &PUT_V1_0,
        8..=11 => &PUT_V1_8,
        12..=27 => &PUT_V1_12,
        28..=33 => &PUT_V1_28,
        34..=37 => &PUT_V1_34,
        _ => &PUT_V1_38,
    }
}

/// The body schema of `POST /allocations` (1.13+) at the request's microversion (also read
/// by [`crate::openapi`]).
pub(crate) fn post_body_schema(ctx: &Ctx) -> &'static Value {
    if ctx.at_least(38) {
        &POST_V1_38
    } else if ctx.at_least(34) {
        &POST_V1_34
    } else if ctx.at_least(28) {
        &POST_V1_28
    } else {
        &POST_V1_13
    }
}

/// The `allocations` member of a reshape (`POST_ALLOCATIONS_*` with `minProperties: 0`).
pub(crate) fn reshaper_allocations_schema(ctx: &Ctx) -> Value {
    let per_consumer: &Value = if ctx.at_least(38) {
        &PUT_V1_38
    } else if ctx.at_least(34) {
        &PUT_V1_34
    } else {
        &PUT_V1_28
    };
    post_schema(per_consumer, 0)
}

// ---- Body parsing --------------------------------------------------------------------------

fn parse_uuid(s: &str) -> Option<Uuid> {
    Uuid::parse_str(s.trim()).ok()
}

fn str_field(obj: &Map<String, Value>, key: &str) -> Option<String> {
    obj.get(key).and_then(Value::as_str).map(str::to_string)
}

/// A `resources` dict as allocation lines on one provider.
fn lines_for(provider: Uuid, resources: Option<&Value>) -> Vec<Allocation> {
    resources
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(class, used)| Allocation {
            provider,
            resource_class: class.clone(),
            // Validated integral numbers ≥ 1; one beyond i64 can only exceed max_unit.
            used: saturating_i64(used).unwrap_or(i64::MAX),
        })
        .collect()
}

/// The dict form (1.12+) of one consumer's allocations.
fn lines_from_dict(allocations: Option<&Value>) -> Result<Vec<Allocation>, ApiError> {
    let mut out = Vec::new();
    for (rp, entry) in allocations.and_then(Value::as_object).into_iter().flatten() {
        let provider = parse_uuid(rp).ok_or_else(|| {
            ApiError::bad_request(format!(
                "Allocation for resource provider '{rp}' that does not exist."
            ))
        })?;
        out.extend(lines_for(provider, entry.get("resources")));
    }
    Ok(out)
}

/// The list form (before 1.12); a provider named twice keeps its last entry, as Placement's
/// conversion to a dict does.
fn lines_from_list(allocations: Option<&Value>) -> Result<Vec<Allocation>, ApiError> {
    let mut by_provider: Vec<(Uuid, Option<&Value>)> = Vec::new();
    for item in allocations.and_then(Value::as_array).into_iter().flatten() {
        let raw = item
            .pointer("/resource_provider/uuid")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let provider = parse_uuid(raw).ok_or_else(|| {
            ApiError::bad_request(format!(
                "Allocation for resource provider '{raw}' that does not exist."
            ))
        })?;
        by_provider.retain(|(p, _)| *p != provider);
        by_provider.push((provider, item.get("resources")));
    }
    Ok(by_provider
        .into_iter()
        .flat_map(|(p, r)| lines_for(p, r))
        .collect())
}

/// One consumer's write from its validated body (the dict form, 1.12+).
fn consumer_write(
    ctx: &Ctx,
    consumer: Uuid,
    body: &Map<String, Value>,
    numbers: &Numbers,
) -> Result<(ConsumerWrite, Option<SentGeneration>), ApiError> {
    let allocations = lines_from_dict(body.get("allocations"))?;
    let (generation, sent) = generation_check(ctx, body, numbers);
    let write = ConsumerWrite {
        consumer,
        project_id: str_field(body, "project_id")
            .unwrap_or_else(|| ctx.config.incomplete_consumer_project_id.clone()),
        user_id: str_field(body, "user_id")
            .unwrap_or_else(|| ctx.config.incomplete_consumer_user_id.clone()),
        generation,
        consumer_type: consumer_type_write(ctx, body),
        allocations,
    };
    Ok((write, sent))
}

fn generation_check(
    ctx: &Ctx,
    body: &Map<String, Value>,
    numbers: &Numbers,
) -> (GenerationCheck, Option<SentGeneration>) {
    if !ctx.at_least(28) {
        return (GenerationCheck::Unchecked, None);
    }
    match body.get("consumer_generation").filter(|g| !g.is_null()) {
        None => (GenerationCheck::Expect(None), None),
        Some(g) => match SentGeneration::unless_plain(g, numbers) {
            // Provisional: `ConsumerWrites::settle` sets what it matched.
            Some(sent) => (GenerationCheck::Expect(sent.equals), Some(sent)),
            None => (GenerationCheck::Expect(plain_generation(g)), None),
        },
    }
}

/// Consumer writes as parsed from a body, with the generations they cannot carry as sent.
pub(crate) struct ConsumerWrites {
    writes: Vec<ConsumerWrite>,
    sent: Vec<Option<SentGeneration>>,
}

impl ConsumerWrites {
    /// Whether some generation must be decided here ([`Self::settle`]).
    pub(crate) fn needs_settling(&self) -> bool {
        self.sent.iter().any(Option::is_some)
    }

    /// The writes for the command. When a generation cannot travel as sent, every
    /// consumer's generation is checked here, in request order, as Placement's
    /// `ensure_consumer` does (the first conflict wins, worded as `apply` words it, with the
    /// number as sent); if all match, the command carries the generations they matched.
    pub(crate) async fn settle<B: Backend>(
        mut self,
        st: &AppState<B>,
    ) -> Result<Vec<ConsumerWrite>, ApiError> {
        if !self.needs_settling() {
            return Ok(self.writes);
        }
        let uuids: Vec<Uuid> = self.writes.iter().map(|w| w.consumer).collect();
        let current: Vec<Option<u32>> = st
            .read(|s| {
                uuids
                    .iter()
                    .map(|u| s.consumer(u).map(|c| c.generation))
                    .collect()
            })
            .await?;
        for ((w, sent), current) in self.writes.iter_mut().zip(&self.sent).zip(current) {
            let GenerationCheck::Expect(given) = w.generation else {
                continue;
            };
            let (equals, text) = match sent {
                Some(s) => (s.equals, s.text.clone()),
                None => (
                    given,
                    given.map_or_else(|| "None".into(), |g| g.to_string()),
                ),
            };
            let expected = match current {
                Some(c) if equals == Some(c) => None,
                Some(c) => Some(c.to_string()),
                None if sent.is_none() && given.is_none() => None,
                None => Some("null".to_string()),
            };
            if let Some(expected) = expected {
                return Err(ApiError::conflict(
                    ErrorCode::ConcurrentUpdate,
                    format!("consumer generation conflict - expected {expected} but got {text}"),
                ));
            }
            w.generation = GenerationCheck::Expect(equals);
        }
        Ok(self.writes)
    }
}

fn consumer_type_write(ctx: &Ctx, body: &Map<String, Value>) -> ConsumerTypeWrite {
    match str_field(body, "consumer_type") {
        Some(t) if ctx.at_least(38) => ConsumerTypeWrite::Set(t),
        _ => ConsumerTypeWrite::Keep,
    }
}

/// The consumers of a validated `POST /allocations` (or reshaper `allocations`) body, in
/// request order.
pub(crate) fn consumer_writes(
    ctx: &Ctx,
    data: &Value,
    numbers: &Numbers,
) -> Result<ConsumerWrites, ApiError> {
    let mut out = ConsumerWrites {
        writes: Vec::new(),
        sent: Vec::new(),
    };
    for (key, body) in data.as_object().into_iter().flatten() {
        let consumer = parse_uuid(key)
            .ok_or_else(|| ApiError::bad_request(format!("Malformed consumer_uuid: {key}")))?;
        let body = body.as_object().cloned().unwrap_or_default();
        let (write, sent) = consumer_write(ctx, consumer, &body, numbers)?;
        out.writes.push(write);
        out.sent.push(sent);
    }
    Ok(out)
}

// ---- Handlers ------------------------------------------------------------------------------

async fn list_for_consumer<B: Backend>(
    State(st): State<AppState<B>>,
    ctx: Ctx,
    Path(consumer): Path<String>,
) -> Result<Response, ApiError> {
    ctx.check_accept()?;
    ctx.authorize("placement:allocations:list")?;
    // No 404 here: an unknown (or malformed) consumer simply has no allocations.
    let uuid = parse_uuid(&consumer);
    let (body, last_modified) = st
        .read(|state| consumer_allocations_json(&ctx, state, uuid))
        .await?;
    Ok(json_response(
        &ctx,
        StatusCode::OK,
        &body,
        Some(last_modified),
    ))
}

fn consumer_allocations_json(
    ctx: &Ctx,
    state: &PlacementState,
    uuid: Option<Uuid>,
) -> (Value, Timestamp) {
    let Some(c) = uuid.and_then(|u| state.consumer(&u)) else {
        return (json!({"allocations": {}}), now());
    };
    let mut by_rp = Map::new();
    for a in &c.allocations {
        let entry = by_rp
            .entry(a.provider.to_string())
            .or_insert_with(|| json!({"resources": {}}));
        if let Some(resources) = entry.get_mut("resources").and_then(Value::as_object_mut) {
            resources.insert(a.resource_class.clone(), json!(a.used));
        }
        let generation = state.provider(&a.provider).map(|p| p.generation);
        if let Some(obj) = entry.as_object_mut() {
            obj.insert("generation".into(), json!(generation));
        }
    }
    let mut body = Map::new();
    body.insert("allocations".into(), Value::Object(by_rp));
    if ctx.at_least(12) {
        body.insert("project_id".into(), json!(c.project_id));
        body.insert("user_id".into(), json!(c.user_id));
        if ctx.at_least(28) {
            body.insert("consumer_generation".into(), json!(c.generation));
        }
        if ctx.at_least(38) {
            body.insert(
                "consumer_type".into(),
                json!(c.consumer_type.as_deref().unwrap_or("unknown")),
            );
        }
    }
    // Allocations are rewritten as a whole, so they all date from the consumer's last write.
    (Value::Object(body), c.updated_at)
}

async fn list_for_provider<B: Backend>(
    State(st): State<AppState<B>>,
    ctx: Ctx,
    Path(uuid): Path<String>,
) -> Result<Response, ApiError> {
    ctx.check_accept()?;
    ctx.authorize("placement:resource_providers:allocations:list")?;
    let not_found = || {
        ApiError::not_found(format!(
            "Resource provider '{uuid}' not found: No resource provider with uuid {uuid} found"
        ))
    };
    let provider = parse_uuid(&uuid).ok_or_else(not_found)?;
    let found = st
        .read(|state| {
            let rp = state.provider(&provider)?;
            let show_generation = ctx.at_least(28);
            let mut last_modified: Option<Timestamp> = None;
            let mut by_consumer = Map::new();
            for c in state.provider_consumers(&provider) {
                let mut resources = Map::new();
                for a in c.allocations.iter().filter(|a| a.provider == provider) {
                    resources.insert(a.resource_class.clone(), json!(a.used));
                }
                let mut entry = Map::new();
                entry.insert("resources".into(), Value::Object(resources));
                if show_generation {
                    entry.insert("consumer_generation".into(), json!(c.generation));
                }
                by_consumer.insert(c.uuid.to_string(), Value::Object(entry));
                last_modified = last_modified.max(Some(c.updated_at));
            }
            let body = json!({
                "allocations": by_consumer,
                "resource_provider_generation": rp.generation,
            });
            Some((body, last_modified.unwrap_or_else(now)))
        })
        .await?;
    let (body, last_modified) = found.ok_or_else(not_found)?;
    Ok(json_response(
        &ctx,
        StatusCode::OK,
        &body,
        Some(last_modified),
    ))
}

async fn set_for_consumer<B: Backend>(
    State(st): State<AppState<B>>,
    ctx: Ctx,
    Path(consumer): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    ctx.require_json()?;
    ctx.authorize("placement:allocations:update")?;
    let uuid = parse_uuid(&consumer)
        .ok_or_else(|| ApiError::bad_request(format!("Malformed consumer_uuid: {consumer}")))?;
    let body = extract_json(&body, put_body_schema(&ctx))?;
    let obj = body.value.as_object().cloned().unwrap_or_default();
    let (mut write, sent) = consumer_write(&ctx, uuid, &obj, &body.numbers)?;
    if !ctx.at_least(12) {
        write.allocations = lines_from_list(obj.get("allocations"))?;
    }
    let consumers = ConsumerWrites {
        writes: vec![write],
        sent: vec![sent],
    }
    .settle(&st)
    .await?;
    st.write(&ctx, Command::WriteAllocations { consumers })
        .await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

async fn set_allocations<B: Backend>(
    State(st): State<AppState<B>>,
    ctx: Ctx,
    body: Bytes,
) -> Result<Response, ApiError> {
    if !ctx.at_least(13) {
        return Err(ApiError::not_found(""));
    }
    ctx.require_json()?;
    ctx.authorize("placement:allocations:manage")?;
    let body = extract_json(&body, post_body_schema(&ctx))?;
    let consumers = consumer_writes(&ctx, &body.value, &body.numbers)?
        .settle(&st)
        .await?;
    st.write(&ctx, Command::WriteAllocations { consumers })
        .await
        .map_err(post_wording)?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// `POST /allocations` words an unknown resource class as "Unable to allocate inventory No
/// such resource class X." where `PUT` (and the shared command) name the consumer.
fn post_wording(mut e: ApiError) -> ApiError {
    const PUT_PREFIX: &str = "Unable to allocate inventory for consumer ";
    if e.status == StatusCode::BAD_REQUEST && e.detail.starts_with(PUT_PREFIX) {
        if let Some((_, cause)) = e.detail.split_once(": ") {
            e.detail = format!("Unable to allocate inventory {cause}");
        }
    }
    e
}

async fn delete_for_consumer<B: Backend>(
    State(st): State<AppState<B>>,
    ctx: Ctx,
    Path(consumer): Path<String>,
) -> Result<Response, ApiError> {
    ctx.authorize("placement:allocations:delete")?;
    let uuid = parse_uuid(&consumer)
        .ok_or_else(|| ApiError::not_found(format!("No allocations for consumer '{consumer}'")))?;
    st.write(&ctx, Command::DeleteAllocations { consumer: uuid })
        .await?;
    Ok(empty(StatusCode::NO_CONTENT))
}
