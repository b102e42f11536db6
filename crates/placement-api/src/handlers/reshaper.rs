//! `POST /reshaper` (1.30): replace some providers' inventories and rewrite allocations in
//! one atomic step, e.g. when VCPU moves from a compute node to its new NUMA children
//! (`handlers/reshaper.py`).
//!
//! The body is validated here (schema by microversion: consumer `mappings` from 1.34,
//! `consumer_type` from 1.38) and becomes one [`Command::Reshape`]; generations, existence,
//! capacity and in-use checks happen in `apply`, with Placement's messages.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use http::StatusCode;
use placement_types::{Command, ErrorCode, Inventory, ReshapeInventory, Uuid, MAX_INT};
use serde_json::{json, Value};

use super::allocations::{consumer_writes, reshaper_allocations_schema, RC_PATTERN, UUID_PATTERN};
use crate::context::Ctx;
use crate::util::{empty, extract_json};
use crate::{ApiError, AppState, Backend};

/// Placement's `SQL_SP_FLOAT_MAX`, the largest `allocation_ratio`.
const SQL_SP_FLOAT_MAX: f64 = 3.40282e+38;

pub(crate) fn routes<B: Backend>() -> Router<AppState<B>> {
    Router::new().route("/reshaper", post(reshape::<B>))
}

/// `PUT_INVENTORY_SCHEMA` of `schemas/inventory.py`: one provider's new inventories.
static PUT_INVENTORY: LazyLock<Value> = LazyLock::new(|| {
    let int = |min: i64| json!({"type": "integer", "maximum": MAX_INT, "minimum": min});
    let record = json!({
        "type": "object",
        "properties": {
            "resource_provider_generation": {"type": "integer"},
            "total": int(1),
            "reserved": int(0),
            "min_unit": int(1),
            "max_unit": int(1),
            "step_size": int(1),
            "allocation_ratio": {"type": "number", "maximum": SQL_SP_FLOAT_MAX}
        },
        "required": ["total"],
        "additionalProperties": false
    });
    json!({
        "type": "object",
        "properties": {
            "resource_provider_generation": {"type": "integer"},
            "inventories": {
                "type": "object",
                "patternProperties": {RC_PATTERN: record}
            }
        },
        "required": ["resource_provider_generation", "inventories"],
        "additionalProperties": false
    })
});

/// `POST_RESHAPER_SCHEMA` (and its 1.34 / 1.38 variants, which differ in `allocations`).
fn reshaper_schema(ctx: &Ctx) -> Value {
    json!({
        "type": "object",
        "properties": {
            "inventories": {
                "type": "object",
                "patternProperties": {UUID_PATTERN: &*PUT_INVENTORY},
                "minProperties": 1,
                "additionalProperties": false
            },
            "allocations": reshaper_allocations_schema(ctx)
        },
        "required": ["inventories", "allocations"],
        "additionalProperties": false
    })
}

/// One inventory record with Placement's `INVENTORY_DEFAULTS` for omitted fields.
fn inventory(record: &Value) -> Inventory {
    let int = |key: &str, default: i64| record.get(key).and_then(Value::as_i64).unwrap_or(default);
    Inventory {
        total: int("total", 0),
        reserved: int("reserved", 0),
        min_unit: int("min_unit", 1),
        max_unit: int("max_unit", MAX_INT),
        step_size: int("step_size", 1),
        allocation_ratio: record
            .get("allocation_ratio")
            .and_then(Value::as_f64)
            .unwrap_or(1.0),
    }
}

async fn reshape<B: Backend>(
    State(st): State<AppState<B>>,
    ctx: Ctx,
    body: Bytes,
) -> Result<Response, ApiError> {
    if !ctx.at_least(30) {
        return Err(ApiError::not_found(""));
    }
    ctx.require_json()?;
    ctx.authorize("placement:reshaper:reshape")?;
    let data = extract_json(&body, &reshaper_schema(&ctx))?;

    let mut inventories = Vec::new();
    for (key, entry) in data
        .get("inventories")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let provider = Uuid::parse_str(key.trim()).map_err(|_| {
            ApiError::bad_request(format!(
                "Resource provider {key} in inventories not found: No resource provider with \
                 uuid {key} found"
            ))
            .with_code(ErrorCode::ProviderNotFound)
        })?;
        // Validated as an integer; one outside u32 can match no provider generation.
        let generation = entry
            .get("resource_provider_generation")
            .and_then(Value::as_u64)
            .map_or(u32::MAX, |g| u32::try_from(g).unwrap_or(u32::MAX));
        let records: BTreeMap<String, Inventory> = entry
            .get("inventories")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(class, record)| (class.clone(), inventory(record)))
            .collect();
        inventories.push(ReshapeInventory {
            provider,
            generation,
            inventories: records,
        });
    }
    let allocations = consumer_writes(&ctx, data.get("allocations").unwrap_or(&Value::Null))?;
    st.write(
        &ctx,
        Command::Reshape {
            inventories,
            allocations,
        },
    )
    .await?;
    Ok(empty(StatusCode::NO_CONTENT))
}
