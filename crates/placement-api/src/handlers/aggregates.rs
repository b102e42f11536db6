//! Provider aggregates: `GET/PUT /resource_providers/{uuid}/aggregates`
//! (`handlers/aggregate.py`), from microversion 1.1 (404 before).
//!
//! Before 1.19 the body is a bare list and the provider generation is neither checked nor
//! bumped; from 1.19 the body is `{aggregates, resource_provider_generation}`, a stale
//! generation is a 409 `placement.concurrent_update`, and responses carry the generation.
//! `last-modified` is always "now": Placement records no time for an association.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use http::StatusCode;
use placement_types::{Command, ErrorCode, Outcome, ResourceProvider, Uuid};
use serde_json::{json, Value};

use super::providers::load_provider;
use super::{extract_json, generation_value};
use crate::context::Ctx;
use crate::response::{json_response, now};
use crate::{ApiError, AppState, Backend};

pub(crate) fn routes<B: Backend>() -> Router<AppState<B>> {
    Router::new().route(
        "/resource_providers/{uuid}/aggregates",
        get(show::<B>).put(update::<B>),
    )
}

fn list_schema() -> Value {
    json!({
        "type": "array",
        "items": {"type": "string", "format": "uuid"},
        "uniqueItems": true
    })
}

static PUT_V1_1: LazyLock<Value> = LazyLock::new(list_schema);
static PUT_V1_19: LazyLock<Value> = LazyLock::new(|| {
    json!({
        "type": "object",
        "properties": {
            "aggregates": list_schema(),
            "resource_provider_generation": {"type": "integer"}
        },
        "required": ["aggregates", "resource_provider_generation"],
        "additionalProperties": false
    })
});

/// The body schema of `PUT .../aggregates` at the request's microversion (also read by
/// [`crate::openapi`]).
pub(crate) fn put_schema(ctx: &Ctx) -> &'static Value {
    if ctx.at_least(19) {
        &PUT_V1_19
    } else {
        &PUT_V1_1
    }
}

fn require_1_1(ctx: &Ctx) -> Result<(), ApiError> {
    if ctx.at_least(1) {
        Ok(())
    } else {
        Err(ApiError::not_found(""))
    }
}

fn send(ctx: &Ctx, p: &ResourceProvider, aggregates: &[String]) -> Response {
    let mut body = json!({"aggregates": aggregates});
    if ctx.at_least(19) {
        body["resource_provider_generation"] = json!(p.generation);
    }
    json_response(ctx, StatusCode::OK, &body, Some(now()))
}

async fn show<B: Backend>(
    State(st): State<AppState<B>>,
    ctx: Ctx,
    Path(uuid): Path<String>,
) -> Result<Response, ApiError> {
    ctx.check_accept()?;
    require_1_1(&ctx)?;
    ctx.authorize("placement:resource_providers:aggregates:list")?;
    let p = load_provider(&st, &uuid).await?;
    let aggs: Vec<String> = p.aggregates.iter().map(Uuid::to_string).collect();
    Ok(send(&ctx, &p, &aggs))
}

async fn update<B: Backend>(
    State(st): State<AppState<B>>,
    ctx: Ctx,
    Path(uuid): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    ctx.require_json()?;
    require_1_1(&ctx)?;
    ctx.authorize("placement:resource_providers:aggregates:update")?;
    let with_generation = ctx.at_least(19);
    let p = load_provider(&st, &uuid).await?;
    let data = extract_json(&body, put_schema(&ctx))?.value;
    let (list, generation) = if with_generation {
        // The generation it equals (`1.0` is 1), if any: one outside u32 matches none.
        let given = generation_value(&data["resource_provider_generation"]);
        let Some(g) = given.filter(|g| *g == p.generation) else {
            return Err(ApiError::conflict(
                ErrorCode::ConcurrentUpdate,
                "Resource provider's generation already changed. Please update the generation \
                 and try again.",
            ));
        };
        (data["aggregates"].clone(), Some(g))
    } else {
        (data, None)
    };
    let strings: Vec<String> = list
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mut aggregates = BTreeSet::new();
    for s in &strings {
        let u = Uuid::parse_str(s).map_err(|_| {
            ApiError::bad_request(format!("JSON does not validate: '{s}' is not a 'uuid'"))
        })?;
        aggregates.insert(u);
    }
    let outcome = st
        .write(
            &ctx,
            Command::SetProviderAggregates {
                provider: p.uuid,
                generation,
                aggregates,
            },
        )
        .await?;
    let p = match outcome {
        Outcome::Provider(p) => *p,
        _ => load_provider(&st, &uuid).await?,
    };
    Ok(send(&ctx, &p, &strings))
}
