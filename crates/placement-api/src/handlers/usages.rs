//! Usages: `GET /resource_providers/{uuid}/usages` and `GET /usages` (1.9)
//! (`handlers/usage.py`, `objects/usage.py`).
//!
//! - A provider's usages list every class it has inventory of, 0 when nothing is allocated
//!   (Placement joins inventories to allocations).
//! - `/usages` sums the allocations of a project's (and optionally a user's) consumers. From
//!   1.38 the sums are grouped by consumer type (`unknown` for consumers without one), each
//!   group with its `consumer_count`; `consumer_type=all` puts everything in one `all` group,
//!   `consumer_type=unknown` keeps only consumers without a type, any other value keeps that
//!   type only.
//! - Both answer "what is the usage now", so `last-modified` (1.15+) is the current time.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use http::StatusCode;
use placement_types::Uuid;
use serde_json::{json, Map, Value};

use crate::context::Ctx;
use crate::response::{json_response, now};
use crate::{ApiError, AppState, Backend, QueryParams};

pub(crate) fn routes<B: Backend>() -> Router<AppState<B>> {
    Router::new()
        .route(
            "/resource_providers/{uuid}/usages",
            get(provider_usages::<B>),
        )
        .route("/usages", get(total_usages::<B>))
}

/// `GET_USAGES_SCHEMA_1_9`.
static USAGES_V1_9: LazyLock<Value> = LazyLock::new(|| {
    json!({
        "type": "object",
        "properties": {
            "project_id": {"type": "string", "minLength": 1, "maxLength": 255},
            "user_id": {"type": "string", "minLength": 1, "maxLength": 255}
        },
        "required": ["project_id"],
        "additionalProperties": false
    })
});

/// `GET_USAGES_SCHEMA_V1_38`: adds `consumer_type` (`CONSUMER_TYPE_GET_PATTERN`).
static USAGES_V1_38: LazyLock<Value> = LazyLock::new(|| {
    let mut s = USAGES_V1_9.clone();
    if let Some(props) = s.get_mut("properties").and_then(Value::as_object_mut) {
        props.insert(
            "consumer_type".into(),
            json!({
                "type": "string",
                "pattern": "^[A-Z0-9_]+$|^all|^unknown$",
                "minLength": 1,
                "maxLength": 255
            }),
        );
    }
    s
});

/// The query schema of `GET /usages` at the request's microversion (also read by
/// [`crate::openapi`]).
pub(crate) fn query_schema(ctx: &Ctx) -> &'static Value {
    if ctx.at_least(38) {
        &USAGES_V1_38
    } else {
        &USAGES_V1_9
    }
}

/// How consumers without a type are shown from 1.38 (`NULL_CONSUMER_TYPE_ALIAS`).
const UNKNOWN_TYPE: &str = "unknown";

async fn provider_usages<B: Backend>(
    State(st): State<AppState<B>>,
    ctx: Ctx,
    Path(uuid): Path<String>,
) -> Result<Response, ApiError> {
    ctx.check_accept()?;
    ctx.authorize("placement:resource_providers:usages")?;
    let not_found = || {
        ApiError::not_found(format!(
            "No resource provider with uuid {uuid} found: No resource provider with uuid \
             {uuid} found"
        ))
    };
    let provider = Uuid::parse_str(uuid.trim()).map_err(|_| not_found())?;
    let body = st
        .read(|state| {
            let rp = state.provider(&provider)?;
            let usages: Map<String, Value> = rp
                .inventories
                .keys()
                .map(|class| (class.clone(), json!(state.usage(&provider, class))))
                .collect();
            Some(json!({
                "resource_provider_generation": rp.generation,
                "usages": usages,
            }))
        })
        .await?
        .ok_or_else(not_found)?;
    Ok(json_response(&ctx, StatusCode::OK, &body, Some(now())))
}

async fn total_usages<B: Backend>(
    State(st): State<AppState<B>>,
    ctx: Ctx,
    query: QueryParams,
) -> Result<Response, ApiError> {
    if !ctx.at_least(9) {
        return Err(ApiError::not_found(""));
    }
    ctx.check_accept()?;
    // The target is the project asked about, so a project reader sees only its own.
    ctx.authorize_for_project("placement:usages", query.get("project_id"))?;
    let by_type = ctx.at_least(38);
    query.validate(query_schema(&ctx))?;
    let project = query.get("project_id").unwrap_or_default().to_string();
    let user = query.get("user_id").filter(|u| !u.is_empty());
    let wanted_type = if by_type {
        query.get("consumer_type")
    } else {
        None
    };

    let body = st
        .read(|state| {
            // group -> (class -> units, consumers)
            let mut groups: BTreeMap<String, (BTreeMap<String, i64>, BTreeSet<Uuid>)> =
                BTreeMap::new();
            for c in state.consumers() {
                if c.project_id != project || user.is_some_and(|u| c.user_id != u) {
                    continue;
                }
                let ctype = c.consumer_type.as_deref();
                let group = match wanted_type {
                    Some("all") => "all",
                    Some(UNKNOWN_TYPE) if ctype.is_none() => UNKNOWN_TYPE,
                    Some(UNKNOWN_TYPE) => continue,
                    Some(t) if ctype == Some(t) => t,
                    Some(_) => continue,
                    None => ctype.unwrap_or(UNKNOWN_TYPE),
                };
                let (sums, consumers) = groups.entry(group.to_string()).or_default();
                consumers.insert(c.uuid);
                for a in &c.allocations {
                    // Each provider's usage fits an i64 (apply keeps it so); a sum over
                    // several providers might not, and saturates.
                    let sum = sums.entry(a.resource_class.clone()).or_default();
                    *sum = sum.saturating_add(a.used);
                }
            }
            if by_type {
                let usages: Map<String, Value> = groups
                    .into_iter()
                    .map(|(group, (sums, consumers))| {
                        let mut g: Map<String, Value> =
                            sums.into_iter().map(|(k, v)| (k, json!(v))).collect();
                        g.insert("consumer_count".into(), json!(consumers.len()));
                        (group, Value::Object(g))
                    })
                    .collect();
                json!({ "usages": usages })
            } else {
                let mut total: BTreeMap<String, i64> = BTreeMap::new();
                for (sums, _) in groups.into_values() {
                    for (class, used) in sums {
                        let sum = total.entry(class).or_default();
                        *sum = sum.saturating_add(used);
                    }
                }
                json!({ "usages": total })
            }
        })
        .await?;
    Ok(json_response(&ctx, StatusCode::OK, &body, Some(now())))
}
