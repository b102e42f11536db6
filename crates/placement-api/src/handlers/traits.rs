//! Traits: `GET /traits`, `GET/PUT/DELETE /traits/{name}` and
//! `GET/PUT/DELETE /resource_providers/{uuid}/traits` (`handlers/trait.py`), all from
//! microversion 1.6 (404 before).
//!
//! `GET /traits` filters by `name=in:A,B` / `name=startswith:P` and `associated=true|false`.
//! Lists are sorted by name (Placement's order is the database's, which no client relies on).

use std::collections::BTreeSet;
use std::sync::LazyLock;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use http::header::{HeaderValue, LOCATION};
use http::StatusCode;
use placement_types::{standard, Command, ErrorCode, Outcome, ResourceProvider, Timestamp};
use serde_json::{json, Value};

use super::providers::{load_provider, provider_last_modified};
use super::{extract_json, generation_value};
use crate::context::Ctx;
use crate::query_params::QueryParams;
use crate::response::{add_cache_headers, empty, json_response, now};
use crate::schema;
use crate::{ApiError, AppState, Backend};

pub(crate) fn routes<B: Backend>() -> Router<AppState<B>> {
    Router::new()
        .route("/traits", get(list::<B>))
        .route(
            "/traits/{name}",
            get(show::<B>).put(put_trait::<B>).delete(delete_trait::<B>),
        )
        .route(
            "/resource_providers/{uuid}/traits",
            get(list_for_provider::<B>)
                .put(set_for_provider::<B>)
                .delete(delete_for_provider::<B>),
        )
}

static CUSTOM_TRAIT: LazyLock<Value> = LazyLock::new(
    || json!({"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^CUSTOM_[A-Z0-9_]+$"}),
);

pub(crate) static SET_TRAITS_FOR_RP_SCHEMA: LazyLock<Value> = LazyLock::new(|| {
    json!({
        "type": "object",
        "properties": {
            "traits": {
                "type": "array",
                "items": {"type": "string", "minLength": 1, "maxLength": 255}
            },
            "resource_provider_generation": {"type": "integer"}
        },
        "required": ["traits", "resource_provider_generation"],
        "additionalProperties": false
    })
});

pub(crate) static LIST_TRAIT_SCHEMA: LazyLock<Value> = LazyLock::new(|| {
    json!({
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "associated": {"type": "string"}
        },
        "additionalProperties": false
    })
});

fn require_1_6(ctx: &Ctx) -> Result<(), ApiError> {
    if ctx.at_least(6) {
        Ok(())
    } else {
        Err(ApiError::not_found(""))
    }
}

async fn list<B: Backend>(
    State(st): State<AppState<B>>,
    ctx: Ctx,
    q: QueryParams,
) -> Result<Response, ApiError> {
    require_1_6(&ctx)?;
    ctx.check_accept()?;
    ctx.authorize("placement:traits:list")?;
    q.validate(&LIST_TRAIT_SCHEMA)?;
    let mut name_in: Option<BTreeSet<String>> = None;
    let mut prefix: Option<String> = None;
    if let Some(v) = q.get("name") {
        let Some((op, value)) = v.split_once(':') else {
            return Err(ApiError::bad_request(format!(
                "Badly formatted name parameter. Expected name query string parameter in form: \
                 ?name=[in|startswith]:[name1,name2|prefix]. Got: \"{v}\""
            )));
        };
        match op {
            "in" => name_in = Some(value.split(',').map(str::to_string).collect()),
            "startswith" => prefix = Some(value.to_string()),
            _ => {}
        }
    }
    let mut associated: Option<bool> = None;
    if let Some(v) = q.get("associated") {
        associated = match v.to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => {
                return Err(ApiError::bad_request(
                    "The query parameter \"associated\" only accepts \"true\" or \"false\"",
                ))
            }
        };
    }
    let (names, last) = st
        .read(|s| {
            let used: BTreeSet<&String> = if associated.is_some() {
                s.providers().flat_map(|p| p.traits.iter()).collect()
            } else {
                BTreeSet::new()
            };
            let mut last: Option<Timestamp> = None;
            let mut names: Vec<String> = Vec::new();
            let all = standard::traits()
                .iter()
                .map(|t| (t.to_string(), None))
                .chain(
                    s.custom_traits()
                        .map(|t| (t.name.clone(), Some(t.created_at))),
                );
            for (name, created) in all {
                if name_in.as_ref().is_some_and(|set| !set.contains(&name)) {
                    continue;
                }
                if prefix
                    .as_ref()
                    .is_some_and(|p| !name.starts_with(p.as_str()))
                {
                    continue;
                }
                if let Some(a) = associated {
                    if used.contains(&name) != a {
                        continue;
                    }
                }
                if let Some(c) = created {
                    last = Some(last.map_or(c, |l| l.max(c)));
                }
                names.push(name);
            }
            names.sort();
            (names, last)
        })
        .await?;
    Ok(json_response(
        &ctx,
        StatusCode::OK,
        &json!({"traits": names}),
        Some(last.unwrap_or_else(now)),
    ))
}

async fn show<B: Backend>(
    State(st): State<AppState<B>>,
    ctx: Ctx,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    require_1_6(&ctx)?;
    ctx.authorize("placement:traits:show")?;
    let found = st
        .read(|s| {
            if standard::is_standard_trait(&name) {
                Some(None)
            } else {
                s.custom_trait(&name).map(|t| Some(t.created_at))
            }
        })
        .await?;
    let Some(created) = found else {
        return Err(ApiError::not_found(format!("No such trait(s): {name}.")));
    };
    let mut resp = empty(StatusCode::NO_CONTENT);
    if ctx.at_least(15) {
        add_cache_headers(&mut resp, created.unwrap_or_else(now));
    }
    Ok(resp)
}

async fn put_trait<B: Backend>(
    State(st): State<AppState<B>>,
    ctx: Ctx,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    require_1_6(&ctx)?;
    ctx.authorize("placement:traits:update")?;
    if schema::validate(&CUSTOM_TRAIT, &Value::String(name.clone())).is_err() {
        return Err(ApiError::bad_request(
            "The trait is invalid. A valid trait must be no longer than 255 characters, start \
             with the prefix \"CUSTOM_\" and use following characters: \"A\"-\"Z\", \"0\"-\"9\" \
             and \"_\"",
        ));
    }
    let outcome = st
        .write(&ctx, Command::EnsureTrait { name: name.clone() })
        .await?;
    let status = match outcome {
        Outcome::Created(true) => StatusCode::CREATED,
        _ => StatusCode::NO_CONTENT,
    };
    let mut resp = empty(status);
    if let Ok(v) = HeaderValue::from_str(&format!("/traits/{name}")) {
        resp.headers_mut().insert(LOCATION, v);
    }
    if ctx.at_least(15) {
        let created = st
            .read(|s| s.custom_trait(&name).map(|t| t.created_at))
            .await?;
        add_cache_headers(&mut resp, created.unwrap_or_else(now));
    }
    Ok(resp)
}

async fn delete_trait<B: Backend>(
    State(st): State<AppState<B>>,
    ctx: Ctx,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    require_1_6(&ctx)?;
    ctx.authorize("placement:traits:delete")?;
    st.write(&ctx, Command::DeleteTrait { name }).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

fn provider_traits_response(ctx: &Ctx, p: &ResourceProvider) -> Response {
    let traits: Vec<&String> = p.traits.iter().collect();
    let body = json!({"traits": traits, "resource_provider_generation": p.generation});
    let last = if p.traits.is_empty() {
        now()
    } else {
        provider_last_modified(p)
    };
    json_response(ctx, StatusCode::OK, &body, Some(last))
}

async fn list_for_provider<B: Backend>(
    State(st): State<AppState<B>>,
    ctx: Ctx,
    Path(uuid): Path<String>,
) -> Result<Response, ApiError> {
    require_1_6(&ctx)?;
    ctx.check_accept()?;
    ctx.authorize("placement:resource_providers:traits:list")?;
    let p = load_provider(&st, &uuid).await.map_err(|e| {
        if e.status == StatusCode::NOT_FOUND {
            ApiError::not_found(format!(
                "No resource provider with uuid {uuid} found: {}",
                e.detail
            ))
        } else {
            e
        }
    })?;
    Ok(provider_traits_response(&ctx, &p))
}

async fn set_for_provider<B: Backend>(
    State(st): State<AppState<B>>,
    ctx: Ctx,
    Path(uuid): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    require_1_6(&ctx)?;
    ctx.require_json()?;
    ctx.authorize("placement:resource_providers:traits:update")?;
    let data = extract_json(&body, &SET_TRAITS_FOR_RP_SCHEMA)?.value;
    // The generation it equals (`1.0` is 1), if any: one outside u32 matches no provider.
    let generation = generation_value(&data["resource_provider_generation"]);
    let traits: BTreeSet<String> = data["traits"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let p = load_provider(&st, &uuid).await?;
    let Some(generation) = generation.filter(|g| *g == p.generation) else {
        return Err(ApiError::conflict(
            ErrorCode::ConcurrentUpdate,
            "Resource provider's generation already changed. Please update the generation and \
             try again.",
        ));
    };
    let outcome = st
        .write(
            &ctx,
            Command::SetProviderTraits {
                provider: p.uuid,
                generation,
                traits,
            },
        )
        .await?;
    let p = match outcome {
        Outcome::Provider(p) => *p,
        _ => load_provider(&st, &uuid).await?,
    };
    Ok(provider_traits_response(&ctx, &p))
}

async fn delete_for_provider<B: Backend>(
    State(st): State<AppState<B>>,
    ctx: Ctx,
    Path(uuid): Path<String>,
) -> Result<Response, ApiError> {
    require_1_6(&ctx)?;
    ctx.authorize("placement:resource_providers:traits:delete")?;
    let p = load_provider(&st, &uuid).await?;
    st.write(&ctx, Command::DeleteProviderTraits { provider: p.uuid })
        .await?;
    Ok(empty(StatusCode::NO_CONTENT))
}
