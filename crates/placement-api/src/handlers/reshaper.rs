//! `POST /reshaper` (1.30): replace some providers' inventories and rewrite allocations in
//! one atomic step, e.g. when VCPU moves from a compute node to its new NUMA children
//! (`handlers/reshaper.py`).
//!
//! The body is validated here (schema by microversion: consumer `mappings` from 1.34,
//! `consumer_type` from 1.38) and becomes one [`Command::Reshape`]; generations, existence,
//! capacity and in-use checks happen in `apply`, with Placement's messages.
//!
//! A generation the command cannot carry as sent (a provider's or a consumer's that is
//! negative, larger than `u32`, or written as a float) is decided here instead, against the
//! state and in Placement's order: every provider of `inventories` (found, at its generation),
//! then every consumer's generation; the message shows the number as sent
//! (`actual: 4, given: 100000000000000000000`).

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
use super::{extract_json, plain_generation, saturating_i64, SentGeneration};
use crate::context::Ctx;
use crate::response::empty;
use crate::schema::Numbers;
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
pub(crate) fn reshaper_schema(ctx: &Ctx) -> Value {
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

/// One inventory record with Placement's `INVENTORY_DEFAULTS` for omitted fields (`1e3` is
/// 1000, as jsonschema's `integer` admits it; the ratio as Python reads it).
fn inventory(record: &Value, numbers: &Numbers) -> Inventory {
    let int = |key: &str, default: i64| record.get(key).and_then(saturating_i64).unwrap_or(default);
    Inventory {
        total: int("total", 0),
        reserved: int("reserved", 0),
        min_unit: int("min_unit", 1),
        max_unit: int("max_unit", MAX_INT),
        step_size: int("step_size", 1),
        allocation_ratio: record
            .get("allocation_ratio")
            .and_then(|r| numbers.float(r))
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
    let body = extract_json(&body, &reshaper_schema(&ctx))?;
    let data = &body.value;

    let mut inventories = Vec::new();
    let mut sent = Vec::new();
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
        let given = entry
            .get("resource_provider_generation")
            .unwrap_or(&Value::Null);
        // Provisional for a generation not sent plain: `settle_providers` sets it.
        let generation = plain_generation(given).unwrap_or_default();
        sent.push(SentGeneration::unless_plain(given, &body.numbers));
        let records: BTreeMap<String, Inventory> = entry
            .get("inventories")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(class, record)| (class.clone(), inventory(record, &body.numbers)))
            .collect();
        inventories.push(ReshapeInventory {
            provider,
            generation,
            inventories: records,
        });
    }
    let allocations = consumer_writes(
        &ctx,
        data.get("allocations").unwrap_or(&Value::Null),
        &body.numbers,
    )?;
    if allocations.needs_settling() || sent.iter().any(Option::is_some) {
        settle_providers(&st, &mut inventories, &sent).await?;
    }
    let allocations = allocations.settle(&st).await?;
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

/// Step 1 of the reshape, decided here when a generation cannot travel as sent: each
/// provider of `inventories`, in request order, exists and is at the given generation
/// (`apply`'s checks and words, with the number as sent). On success the inventories carry
/// the generations they matched.
async fn settle_providers<B: Backend>(
    st: &AppState<B>,
    inventories: &mut [ReshapeInventory],
    sent: &[Option<SentGeneration>],
) -> Result<(), ApiError> {
    let uuids: Vec<Uuid> = inventories.iter().map(|i| i.provider).collect();
    let current: Vec<Option<u32>> = st
        .read(|s| {
            uuids
                .iter()
                .map(|u| s.provider(u).map(|p| p.generation))
                .collect()
        })
        .await?;
    for ((inv, sent), current) in inventories.iter_mut().zip(sent).zip(current) {
        let p = inv.provider;
        let Some(actual) = current else {
            return Err(ApiError::bad_request(format!(
                "Resource provider {p} in inventories not found: No resource provider with \
                 uuid {p} found"
            ))
            .with_code(ErrorCode::ProviderNotFound));
        };
        let (equals, text) = match sent {
            Some(s) => (s.equals, s.text.clone()),
            None => (Some(inv.generation), inv.generation.to_string()),
        };
        if equals != Some(actual) {
            return Err(ApiError::conflict(
                ErrorCode::ConcurrentUpdate,
                format!(
                    "resource provider generation conflict for provider {p}: actual: \
                     {actual}, given: {text}"
                ),
            ));
        }
        inv.generation = actual;
    }
    Ok(())
}
