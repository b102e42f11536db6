//! Resource providers: `GET/POST /resource_providers`, `GET/PUT/DELETE
//! /resource_providers/{uuid}` (`handlers/resource_provider.py`).
//!
//! Microversion rules: parent/root uuids from 1.14 (and `parent_provider_uuid` in bodies);
//! link set grows at 1.1 (aggregates), 1.6 (traits), 1.11 (allocations); POST answers 201
//! without a body before 1.20 and 200 with the provider from 1.20; the list filters grow at
//! 1.3 (`member_of`), 1.4 (`resources`), 1.14 (`in_tree`), 1.18 (`required`), 1.22
//! (forbidden traits), 1.24 (repeated `member_of`), 1.32 (`!` aggregates), 1.39 (`in:`
//! traits); re-parenting and un-parenting from 1.37.
//!
//! Also home of the helpers other provider sub-resources use: [`path_uuid`],
//! [`load_provider`], [`provider_last_modified`].

use std::sync::LazyLock;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use http::header::{HeaderValue, CACHE_CONTROL, LOCATION};
use http::StatusCode;
use placement_core::query::{providers_matching, ProviderFilter, QueryError};
use placement_types::{Command, Outcome, ParentUpdate, ResourceProvider, Timestamp, Uuid};
use serde_json::{json, Value};

use super::extract_json;
use crate::context::Ctx;
use crate::qs;
use crate::query_params::QueryParams;
use crate::response::{add_cache_headers, empty, json_response, now};
use crate::{ApiError, AppState, Backend};

pub(crate) fn routes<B: Backend>() -> Router<AppState<B>> {
    Router::new()
        .route("/resource_providers", get(list::<B>).post(create::<B>))
        .route(
            "/resource_providers/{uuid}",
            get(show::<B>).put(update::<B>).delete(delete::<B>),
        )
}

/// A provider uuid from a path, if it is in the canonical form Placement stores (any other
/// spelling matches no provider there either).
pub(crate) fn path_uuid(s: &str) -> Option<Uuid> {
    let u = Uuid::parse_str(s).ok()?;
    (u.hyphenated().to_string() == s.to_ascii_lowercase()).then_some(u)
}

/// Reads one provider (after the read barrier); 404 in Placement's words if missing, raised
/// as `ResourceProvider.get_by_uuid`'s uncaught `NotFound` is.
pub(crate) async fn load_provider<B: Backend>(
    st: &AppState<B>,
    uuid: &str,
) -> Result<ResourceProvider, ApiError> {
    let found = match path_uuid(uuid) {
        Some(u) => st.read(|s| s.provider(&u).cloned()).await?,
        None => None,
    };
    found.ok_or_else(|| {
        ApiError::not_found(format!("No resource provider with uuid {uuid} found")).raised()
    })
}

/// `pick_last_modified` for one provider.
pub(crate) fn provider_last_modified(p: &ResourceProvider) -> Timestamp {
    p.updated_at.max(p.created_at)
}

fn provider_url(uuid: &Uuid) -> String {
    format!("/resource_providers/{uuid}")
}

/// `_serialize_provider`.
pub(crate) fn provider_json(ctx: &Ctx, p: &ResourceProvider) -> Value {
    let url = provider_url(&p.uuid);
    let mut links = vec![json!({"rel": "self", "href": url})];
    let mut rels = vec!["inventories", "usages"];
    if ctx.at_least(1) {
        rels.push("aggregates");
    }
    if ctx.at_least(6) {
        rels.push("traits");
    }
    if ctx.at_least(11) {
        rels.push("allocations");
    }
    for rel in rels {
        links.push(json!({"rel": rel, "href": format!("{url}/{rel}")}));
    }
    let mut v = json!({
        "uuid": p.uuid.to_string(),
        "name": p.name,
        "generation": p.generation,
        "links": links,
    });
    if ctx.at_least(14) {
        v["parent_provider_uuid"] = json!(p.parent.map(|u| u.to_string()));
        v["root_provider_uuid"] = json!(p.root.to_string());
    }
    v
}

/// The body schema of `POST /resource_providers` (also read by [`crate::openapi`]).
pub(crate) fn post_schema(ctx: &Ctx) -> &'static Value {
    static V1_0: LazyLock<Value> = LazyLock::new(|| {
        json!({
            "type": "object",
            "properties": {
                "name": {"type": "string", "maxLength": 200},
                "uuid": {"type": "string", "format": "uuid"}
            },
            "required": ["name"],
            "additionalProperties": false
        })
    });
    static V1_14: LazyLock<Value> = LazyLock::new(|| {
        json!({
            "type": "object",
            "properties": {
                "name": {"type": "string", "maxLength": 200},
                "uuid": {"type": "string", "format": "uuid"},
                "parent_provider_uuid": {
                    "anyOf": [{"type": "string", "format": "uuid"}, {"type": "null"}]
                }
            },
            "required": ["name"],
            "additionalProperties": false
        })
    });
    if ctx.at_least(14) {
        &V1_14
    } else {
        &V1_0
    }
}

/// The body schema of `PUT /resource_providers/{uuid}` (also read by [`crate::openapi`]).
pub(crate) fn put_schema(ctx: &Ctx) -> &'static Value {
    static V1_0: LazyLock<Value> = LazyLock::new(|| {
        json!({
            "type": "object",
            "properties": {"name": {"type": "string", "maxLength": 200}},
            "required": ["name"],
            "additionalProperties": false
        })
    });
    static V1_14: LazyLock<Value> = LazyLock::new(|| {
        json!({
            "type": "object",
            "properties": {
                "name": {"type": "string", "maxLength": 200},
                "parent_provider_uuid": {
                    "anyOf": [{"type": "string", "format": "uuid"}, {"type": "null"}]
                }
            },
            "required": ["name"],
            "additionalProperties": false
        })
    });
    if ctx.at_least(14) {
        &V1_14
    } else {
        &V1_0
    }
}

/// The query schema of `GET /resource_providers` (also read by [`crate::openapi`]).
pub(crate) fn list_schema(ctx: &Ctx) -> Value {
    let mut props = serde_json::Map::new();
    props.insert("name".into(), json!({"type": "string"}));
    props.insert("uuid".into(), json!({"type": "string", "format": "uuid"}));
    if ctx.at_least(3) {
        props.insert("member_of".into(), json!({"type": "string"}));
    }
    if ctx.at_least(4) {
        props.insert("resources".into(), json!({"type": "string"}));
    }
    if ctx.at_least(14) {
        props.insert(
            "in_tree".into(),
            json!({"type": "string", "format": "uuid"}),
        );
    }
    if ctx.at_least(18) {
        props.insert("required".into(), json!({"type": "string"}));
    }
    json!({"type": "object", "properties": props, "additionalProperties": false})
}

/// A uuid a schema has already checked with `format: uuid`.
fn checked_uuid(v: &Value) -> Result<Uuid, ApiError> {
    let s = v.as_str().unwrap_or("");
    Uuid::parse_str(s).map_err(|_| ApiError::bad_request(format!("Invalid uuid: {s}")))
}

fn optional_parent(data: &Value) -> Result<Option<Uuid>, ApiError> {
    match data.get("parent_provider_uuid") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => checked_uuid(v).map(Some),
    }
}

async fn list<B: Backend>(
    State(st): State<AppState<B>>,
    ctx: Ctx,
    q: QueryParams,
) -> Result<Response, ApiError> {
    ctx.check_accept()?;
    ctx.authorize("placement:resource_providers:list")?;
    q.validate(&list_schema(&ctx))?;
    let mut filter = ProviderFilter::default();
    if q.contains("member_of") {
        let (req, forb) = qs::normalize_member_of_params(&ctx, &q, "")?;
        filter.member_of = req;
        filter.forbidden_aggs = forb;
    }
    if q.contains("required") {
        let (req, forb) = qs::normalize_traits_params(&ctx, &q, "")?;
        filter.required_traits = req;
        filter.forbidden_traits = forb;
    }
    if let Some(v) = q.get("uuid") {
        // A uuid in another spelling matches nothing, as in Placement.
        match path_uuid(v) {
            Some(u) => filter.uuid = Some(u),
            None => return Ok(list_response(&ctx, &[])),
        }
    }
    if let Some(v) = q.get("name") {
        filter.name = Some(v.to_string());
    }
    if let Some(v) = q.get("in_tree") {
        match path_uuid(v) {
            Some(u) => filter.in_tree = Some(u),
            None => return Ok(list_response(&ctx, &[])),
        }
    }
    if let Some(v) = q.get("resources") {
        filter.resources = crate::qs::normalize_resources(v)?;
    }
    let found = st
        .read(|s| {
            providers_matching(s, &filter).map(|v| v.into_iter().cloned().collect::<Vec<_>>())
        })
        .await?;
    let providers = found.map_err(|e| match e {
        QueryError::UnknownResourceClass(_) => ApiError::bad_request(format!(
            "Invalid resource class in resources parameter: {e}"
        )),
        QueryError::UnknownTrait(_) => {
            ApiError::bad_request(format!("Invalid trait(s) in \"required\" parameter: {e}"))
        }
    })?;
    Ok(list_response(&ctx, &providers))
}

fn list_response(ctx: &Ctx, providers: &[ResourceProvider]) -> Response {
    let last = providers.iter().map(provider_last_modified).max();
    let body = json!({
        "resource_providers": providers.iter().map(|p| provider_json(ctx, p)).collect::<Vec<_>>()
    });
    json_response(ctx, StatusCode::OK, &body, Some(last.unwrap_or_else(now)))
}

async fn show<B: Backend>(
    State(st): State<AppState<B>>,
    ctx: Ctx,
    Path(uuid): Path<String>,
) -> Result<Response, ApiError> {
    ctx.check_accept()?;
    ctx.authorize("placement:resource_providers:show")?;
    let p = load_provider(&st, &uuid).await?;
    Ok(json_response(
        &ctx,
        StatusCode::OK,
        &provider_json(&ctx, &p),
        Some(provider_last_modified(&p)),
    ))
}

async fn create<B: Backend>(
    State(st): State<AppState<B>>,
    ctx: Ctx,
    body: Bytes,
) -> Result<Response, ApiError> {
    ctx.require_json()?;
    ctx.authorize("placement:resource_providers:create")?;
    let data = extract_json(&body, post_schema(&ctx))?.value;
    let uuid = match data.get("uuid") {
        Some(v) if v.as_str().is_some_and(|s| !s.is_empty()) => checked_uuid(v)?,
        _ => Uuid::new_v4(),
    };
    let name = data["name"].as_str().unwrap_or_default().to_string();
    let parent = optional_parent(&data)?;
    let outcome = st
        .write(&ctx, Command::CreateProvider { uuid, name, parent })
        .await?;
    let location = HeaderValue::from_str(&provider_url(&uuid))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let mut resp = if ctx.at_least(20) {
        let p = match outcome {
            Outcome::Provider(p) => *p,
            _ => st
                .read(|s| s.provider(&uuid).cloned())
                .await?
                .ok_or_else(|| {
                    ApiError::not_found(format!("No resource provider with uuid {uuid} found"))
                })?,
        };
        let mut r = json_response(&ctx, StatusCode::OK, &provider_json(&ctx, &p), None);
        add_cache_headers(&mut r, provider_last_modified(&p));
        r
    } else {
        empty(StatusCode::CREATED)
    };
    resp.headers_mut().insert(LOCATION, location);
    Ok(resp)
}

async fn update<B: Backend>(
    State(st): State<AppState<B>>,
    ctx: Ctx,
    Path(uuid): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    ctx.require_json()?;
    ctx.authorize("placement:resource_providers:update")?;
    let current = load_provider(&st, &uuid).await?;
    let data = extract_json(&body, put_schema(&ctx))?.value;
    let name = data["name"].as_str().unwrap_or_default().to_string();
    let parent = if ctx.at_least(14) && data.get("parent_provider_uuid").is_some() {
        let p = optional_parent(&data)?;
        if ctx.at_least(37) {
            ParentUpdate::Set(p)
        } else {
            ParentUpdate::SetOnce(p)
        }
    } else {
        ParentUpdate::Keep
    };
    let outcome = st
        .write(
            &ctx,
            Command::UpdateProvider {
                uuid: current.uuid,
                name,
                parent,
            },
        )
        .await?;
    let p = match outcome {
        Outcome::Provider(p) => *p,
        _ => load_provider(&st, &uuid).await?,
    };
    let mut resp = json_response(&ctx, StatusCode::OK, &provider_json(&ctx, &p), None);
    if ctx.at_least(15) {
        match update_last_modified(&current) {
            Some(at) => add_cache_headers(&mut resp, at),
            // webob sends `cache-control` whatever `last_modified` is.
            None => {
                resp.headers_mut()
                    .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            }
        }
    }
    Ok(resp)
}

/// `last-modified` of `PUT /resource_providers/{uuid}`: Placement sends the `updated_at` the
/// provider had *before* the update (its object is not refreshed after `save`), which is
/// NULL for a child provider never written since its creation (a root's row is updated
/// once at creation to set its root id; a child's is inserted whole), and then sends none.
fn update_last_modified(before: &ResourceProvider) -> Option<Timestamp> {
    let never_updated_child = before.parent.is_some() && before.updated_at == before.created_at;
    (!never_updated_child).then_some(before.updated_at)
}

async fn delete<B: Backend>(
    State(st): State<AppState<B>>,
    ctx: Ctx,
    Path(uuid): Path<String>,
) -> Result<Response, ApiError> {
    ctx.authorize("placement:resource_providers:delete")?;
    let Some(u) = path_uuid(&uuid) else {
        return Err(ApiError::not_found(format!(
            "No resource provider with uuid {uuid} found for delete"
        )));
    };
    st.write(&ctx, Command::DeleteProvider { uuid: u }).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}
