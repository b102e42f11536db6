//! Inventories: the seven routes under `/resource_providers/{uuid}/inventories`
//! (`handlers/inventory.py`).
//!
//! Stateless checks happen here, in Placement's order: provider exists (404), schema (400),
//! the caller's generation (409 `placement.concurrent_update`), then capacity —
//! `(total - reserved) * allocation_ratio` must be > 0 before 1.26 and ≥ 0 from 1.26. The
//! rest (unknown class, class in use, capacity vs. allocations) is decided by `apply`.
//! `DELETE .../inventories` exists from 1.5 (405 before).
//!
//! The caller's generation matches when it equals the provider's as Python's `!=` sees it
//! (`1.0` matches 1); a negative or larger-than-`u32` one matches none.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use http::header::{HeaderValue, LOCATION};
use http::StatusCode;
use placement_types::{Command, ErrorCode, Inventory, Outcome, ResourceProvider, MAX_INT};
use serde_json::{json, Map, Value};

use super::providers::{load_provider, provider_last_modified};
use super::{extract_json, generation_value, saturating_i64};
use crate::context::Ctx;
use crate::response::{add_cache_headers, empty, json_response};
use crate::schema::Numbers;
use crate::{ApiError, AppState, Backend};

/// `SQL_SP_FLOAT_MAX`: the largest allocation ratio Placement accepts.
const SQL_SP_FLOAT_MAX: f64 = 3.40282e38;

pub(crate) fn routes<B: Backend>() -> Router<AppState<B>> {
    Router::new()
        .route(
            "/resource_providers/{uuid}/inventories",
            get(list::<B>)
                .post(create::<B>)
                .put(set_all::<B>)
                .delete(delete_all::<B>),
        )
        .route(
            "/resource_providers/{uuid}/inventories/{resource_class}",
            get(show::<B>).put(update::<B>).delete(delete::<B>),
        )
}

fn record_props() -> Map<String, Value> {
    let int = |min: i64| json!({"type": "integer", "maximum": MAX_INT, "minimum": min});
    let mut p = Map::new();
    p.insert(
        "resource_provider_generation".into(),
        json!({"type": "integer"}),
    );
    p.insert("total".into(), int(1));
    p.insert("reserved".into(), int(0));
    p.insert("min_unit".into(), int(1));
    p.insert("max_unit".into(), int(1));
    p.insert("step_size".into(), int(1));
    p.insert(
        "allocation_ratio".into(),
        json!({"type": "number", "maximum": SQL_SP_FLOAT_MAX}),
    );
    p
}

/// `BASE_INVENTORY_SCHEMA` (PUT one class).
pub(crate) static BASE_SCHEMA: LazyLock<Value> = LazyLock::new(|| {
    json!({
        "type": "object",
        "properties": record_props(),
        "required": ["total", "resource_provider_generation"],
        "additionalProperties": false
    })
});

/// `POST_INVENTORY_SCHEMA`.
pub(crate) static POST_SCHEMA: LazyLock<Value> = LazyLock::new(|| {
    let mut props = record_props();
    props.insert(
        "resource_class".into(),
        json!({"type": "string", "pattern": "^[A-Z0-9_]+$"}),
    );
    json!({
        "type": "object",
        "properties": props,
        "required": ["total", "resource_class"],
        "additionalProperties": false
    })
});

/// `PUT_INVENTORY_SCHEMA` (replace all).
pub(crate) static PUT_SCHEMA: LazyLock<Value> = LazyLock::new(|| {
    let record = json!({
        "type": "object",
        "properties": record_props(),
        "required": ["total"],
        "additionalProperties": false
    });
    json!({
        "type": "object",
        "properties": {
            "resource_provider_generation": {"type": "integer"},
            "inventories": {
                "type": "object",
                "patternProperties": {"^[A-Z0-9_]+$": record}
            }
        },
        "required": ["resource_provider_generation", "inventories"],
        "additionalProperties": false
    })
});

fn int_field(v: &Value, key: &str, default: i64) -> i64 {
    v.get(key).and_then(saturating_i64).unwrap_or(default)
}

/// An inventory record from JSON, with Placement's defaults. The schema validates the
/// records of classes matching its pattern only, so a record under another key may hold
/// anything (`apply` refuses its class); the ratio is read as Python reads it (`-1e400` is
/// `-inf`, which `apply` refuses).
fn inventory_from(v: &Value, numbers: &Numbers) -> Inventory {
    Inventory {
        total: int_field(v, "total", 0),
        reserved: int_field(v, "reserved", 0),
        min_unit: int_field(v, "min_unit", 1),
        max_unit: int_field(v, "max_unit", MAX_INT),
        step_size: int_field(v, "step_size", 1),
        allocation_ratio: v
            .get("allocation_ratio")
            .and_then(|r| numbers.float(r))
            .unwrap_or(1.0),
    }
}

/// `_validate_inventory_capacity`: the message of the failed check, if any.
fn capacity_error(
    ctx: &Ctx,
    rc: &str,
    provider: &ResourceProvider,
    inv: &Inventory,
) -> Option<String> {
    // In f64: the fields of an unvalidated record (see `inventory_from`) may be any i64.
    let capacity = ((inv.total as f64 - inv.reserved as f64) * inv.allocation_ratio) as i64;
    if ctx.at_least(26) {
        (capacity < 0).then(|| {
            format!(
                "Invalid inventory for '{rc}' on resource provider '{}'. The reserved value is \
                 greater than total.",
                provider.uuid
            )
        })
    } else {
        (capacity <= 0).then(|| {
            format!(
                "Invalid inventory for '{rc}' on resource provider '{}'. The reserved value is \
                 greater than or equal to total.",
                provider.uuid
            )
        })
    }
}

fn inventory_json(inv: &Inventory) -> Value {
    json!({
        "total": inv.total,
        "reserved": inv.reserved,
        "min_unit": inv.min_unit,
        "max_unit": inv.max_unit,
        "step_size": inv.step_size,
        "allocation_ratio": inv.allocation_ratio,
    })
}

/// `_send_inventory`: one class plus the provider generation (omitted when 0, as Python's
/// truthiness test does).
fn send_inventory(
    ctx: &Ctx,
    provider: &ResourceProvider,
    inv: &Inventory,
    status: StatusCode,
) -> Response {
    let mut body = inventory_json(inv);
    if provider.generation != 0 {
        body["resource_provider_generation"] = json!(provider.generation);
    }
    json_response(ctx, status, &body, Some(provider_last_modified(provider)))
}

/// `_send_inventories`: every class; `last-modified` only when there is some inventory.
fn send_inventories(ctx: &Ctx, provider: &ResourceProvider) -> Response {
    let invs: Map<String, Value> = provider
        .inventories
        .iter()
        .map(|(rc, inv)| (rc.clone(), inventory_json(inv)))
        .collect();
    let body = json!({
        "resource_provider_generation": provider.generation,
        "inventories": invs,
    });
    let mut resp = json_response(ctx, StatusCode::OK, &body, None);
    if ctx.at_least(15) {
        if provider.inventories.is_empty() {
            resp.headers_mut().insert(
                http::header::CACHE_CONTROL,
                HeaderValue::from_static("no-cache"),
            );
        } else {
            add_cache_headers(&mut resp, provider_last_modified(provider));
        }
    }
    resp
}

/// The generation the body's `resource_provider_generation` equals, if any.
fn generation_of(data: &Value) -> Option<u32> {
    data.get("resource_provider_generation")
        .and_then(generation_value)
}

fn generation_conflict() -> ApiError {
    ApiError::conflict(
        ErrorCode::ConcurrentUpdate,
        "resource provider generation conflict",
    )
}

fn provider_from(outcome: Outcome, fallback: ResourceProvider) -> ResourceProvider {
    match outcome {
        Outcome::Provider(p) => *p,
        _ => fallback,
    }
}

fn not_found_listing(uuid: &str, e: ApiError) -> ApiError {
    if e.status == StatusCode::NOT_FOUND {
        ApiError::not_found(format!(
            "No resource provider with uuid {uuid} found : {}",
            e.detail
        ))
    } else {
        e
    }
}

async fn list<B: Backend>(
    State(st): State<AppState<B>>,
    ctx: Ctx,
    Path(uuid): Path<String>,
) -> Result<Response, ApiError> {
    ctx.check_accept()?;
    ctx.authorize("placement:resource_providers:inventories:list")?;
    let p = load_provider(&st, &uuid)
        .await
        .map_err(|e| not_found_listing(&uuid, e))?;
    Ok(send_inventories(&ctx, &p))
}

async fn show<B: Backend>(
    State(st): State<AppState<B>>,
    ctx: Ctx,
    Path((uuid, rc)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    ctx.check_accept()?;
    ctx.authorize("placement:resource_providers:inventories:show")?;
    let p = load_provider(&st, &uuid)
        .await
        .map_err(|e| not_found_listing(&uuid, e))?;
    let Some(inv) = p.inventories.get(&rc) else {
        return Err(ApiError::not_found(format!(
            "No inventory of class {rc} for {uuid}"
        )));
    };
    Ok(send_inventory(&ctx, &p, inv, StatusCode::OK))
}

async fn create<B: Backend>(
    State(st): State<AppState<B>>,
    ctx: Ctx,
    Path(uuid): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    ctx.require_json()?;
    ctx.authorize("placement:resource_providers:inventories:create")?;
    let p = load_provider(&st, &uuid).await?;
    let body = extract_json(&body, &POST_SCHEMA)?;
    let data = &body.value;
    let rc = data["resource_class"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let inv = inventory_from(data, &body.numbers);
    if let Some(msg) = capacity_error(&ctx, &rc, &p, &inv) {
        return Err(ApiError::bad_request(format!(
            "Unable to create inventory for resource provider {}: {msg}",
            p.uuid
        )));
    }
    let outcome = st
        .write(
            &ctx,
            Command::CreateInventory {
                provider: p.uuid,
                generation: Some(p.generation),
                resource_class: rc.clone(),
                inventory: inv.clone(),
            },
        )
        .await?;
    let p = provider_from(outcome, p);
    let inv = p.inventories.get(&rc).cloned().unwrap_or(inv);
    let mut resp = send_inventory(&ctx, &p, &inv, StatusCode::CREATED);
    if let Ok(v) =
        HeaderValue::from_str(&format!("/resource_providers/{}/inventories/{rc}", p.uuid))
    {
        resp.headers_mut().insert(LOCATION, v);
    }
    Ok(resp)
}

async fn set_all<B: Backend>(
    State(st): State<AppState<B>>,
    ctx: Ctx,
    Path(uuid): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    ctx.require_json()?;
    ctx.authorize("placement:resource_providers:inventories:update")?;
    let p = load_provider(&st, &uuid).await?;
    let body = extract_json(&body, &PUT_SCHEMA)?;
    let data = &body.value;
    let Some(generation) = generation_of(data).filter(|g| *g == p.generation) else {
        return Err(generation_conflict());
    };
    let mut inventories = BTreeMap::new();
    if let Some(m) = data["inventories"].as_object() {
        for (rc, v) in m {
            let inv = inventory_from(v, &body.numbers);
            if let Some(msg) = capacity_error(&ctx, rc, &p, &inv) {
                return Err(ApiError::bad_request(format!(
                    "Unable to update inventory for resource provider {}: {msg}",
                    p.uuid
                )));
            }
            inventories.insert(rc.clone(), inv);
        }
    }
    let outcome = st
        .write(
            &ctx,
            Command::SetInventories {
                provider: p.uuid,
                generation,
                inventories,
            },
        )
        .await?;
    let p = provider_from(outcome, p);
    Ok(send_inventories(&ctx, &p))
}

async fn update<B: Backend>(
    State(st): State<AppState<B>>,
    ctx: Ctx,
    Path((uuid, rc)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    ctx.require_json()?;
    ctx.authorize("placement:resource_providers:inventories:update")?;
    let p = load_provider(&st, &uuid).await?;
    let body = extract_json(&body, &BASE_SCHEMA)?;
    let data = &body.value;
    let Some(generation) = generation_of(data).filter(|g| *g == p.generation) else {
        return Err(generation_conflict());
    };
    let inv = inventory_from(data, &body.numbers);
    if let Some(msg) = capacity_error(&ctx, &rc, &p, &inv) {
        return Err(ApiError::bad_request(format!(
            "Unable to update inventory for resource provider {}: {msg}",
            p.uuid
        )));
    }
    let outcome = st
        .write(
            &ctx,
            Command::UpdateInventory {
                provider: p.uuid,
                generation,
                resource_class: rc.clone(),
                inventory: inv.clone(),
            },
        )
        .await
        // Placement's update_inventory leaves ResourceClassNotFound uncaught.
        .map_err(ApiError::raised_if_not_found)?;
    let p = provider_from(outcome, p);
    let inv = p.inventories.get(&rc).cloned().unwrap_or(inv);
    Ok(send_inventory(&ctx, &p, &inv, StatusCode::OK))
}

async fn delete<B: Backend>(
    State(st): State<AppState<B>>,
    ctx: Ctx,
    Path((uuid, rc)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    ctx.authorize("placement:resource_providers:inventories:delete")?;
    let p = load_provider(&st, &uuid).await?;
    st.write(
        &ctx,
        Command::DeleteInventory {
            provider: p.uuid,
            resource_class: rc,
        },
    )
    .await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

async fn delete_all<B: Backend>(
    State(st): State<AppState<B>>,
    ctx: Ctx,
    Path(uuid): Path<String>,
) -> Result<Response, ApiError> {
    if !ctx.at_least(5) {
        return Err(ApiError::new(StatusCode::METHOD_NOT_ALLOWED, ""));
    }
    ctx.authorize("placement:resource_providers:inventories:delete")?;
    let p = load_provider(&st, &uuid).await?;
    st.write(&ctx, Command::DeleteAllInventories { provider: p.uuid })
        .await?;
    Ok(empty(StatusCode::NO_CONTENT))
}
