//! Resource classes: `GET/POST /resource_classes`, `GET/PUT/DELETE /resource_classes/{name}`
//! (`handlers/resource_class.py`), all from microversion 1.2 (404 before).
//!
//! `PUT` renames a custom class with a body before 1.7 and is a bodiless "ensure exists"
//! from 1.7 (201 created / 204 existed). Standard classes are listed first, in Placement's
//! id order, then custom classes by id.

use std::sync::LazyLock;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use http::header::{HeaderValue, LOCATION};
use http::StatusCode;
use placement_types::{standard, Command, Outcome};
use serde_json::{json, Value};

use super::extract_json;
use crate::context::Ctx;
use crate::response::{empty, json_response, now};
use crate::{ApiError, AppState, Backend};

pub(crate) fn routes<B: Backend>() -> Router<AppState<B>> {
    Router::new()
        .route("/resource_classes", get(list::<B>).post(create::<B>))
        .route(
            "/resource_classes/{name}",
            get(show::<B>).put(update::<B>).delete(delete::<B>),
        )
}

/// `POST_RC_SCHEMA_V1_2` (= `PUT_RC_SCHEMA_V1_2`).
pub(crate) static RC_SCHEMA: LazyLock<Value> = LazyLock::new(|| {
    json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "pattern": "^CUSTOM_[A-Z0-9_]+$", "maxLength": 255}
        },
        "required": ["name"],
        "additionalProperties": false
    })
});

fn rc_url(name: &str) -> String {
    format!("/resource_classes/{name}")
}

fn rc_json(name: &str) -> Value {
    json!({"name": name, "links": [{"rel": "self", "href": rc_url(name)}]})
}

fn require_1_2(ctx: &Ctx) -> Result<(), ApiError> {
    if ctx.at_least(2) {
        Ok(())
    } else {
        Err(ApiError::not_found(""))
    }
}

fn with_location(mut resp: Response, name: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(&rc_url(name)) {
        resp.headers_mut().insert(LOCATION, v);
    }
    resp
}

async fn list<B: Backend>(State(st): State<AppState<B>>, ctx: Ctx) -> Result<Response, ApiError> {
    require_1_2(&ctx)?;
    ctx.check_accept()?;
    ctx.authorize("placement:resource_classes:list")?;
    let (custom, last) = st
        .read(|s| {
            let mut custom: Vec<_> = s.custom_resource_classes().cloned().collect();
            custom.sort_by_key(|rc| rc.id);
            let last = custom
                .iter()
                .map(|rc| rc.updated_at.max(rc.created_at))
                .max();
            (custom, last)
        })
        .await?;
    let mut out: Vec<Value> = standard::resource_classes()
        .iter()
        .map(|n| rc_json(n))
        .collect();
    out.extend(custom.iter().map(|rc| rc_json(&rc.name)));
    let body = json!({"resource_classes": out});
    Ok(json_response(
        &ctx,
        StatusCode::OK,
        &body,
        Some(last.unwrap_or_else(now)),
    ))
}

async fn show<B: Backend>(
    State(st): State<AppState<B>>,
    ctx: Ctx,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    require_1_2(&ctx)?;
    ctx.check_accept()?;
    ctx.authorize("placement:resource_classes:show")?;
    let found = st
        .read(|s| {
            if standard::is_standard_resource_class(&name) {
                Some(None)
            } else {
                s.custom_resource_class(&name)
                    .map(|rc| Some(rc.updated_at.max(rc.created_at)))
            }
        })
        .await?;
    // `ResourceClass.get_by_name`'s NotFound is left uncaught by every handler here.
    let Some(modified) = found else {
        return Err(ApiError::not_found(format!("No such resource class {name}.")).raised());
    };
    Ok(json_response(
        &ctx,
        StatusCode::OK,
        &rc_json(&name),
        Some(modified.unwrap_or_else(now)),
    ))
}

async fn create<B: Backend>(
    State(st): State<AppState<B>>,
    ctx: Ctx,
    body: Bytes,
) -> Result<Response, ApiError> {
    require_1_2(&ctx)?;
    ctx.require_json()?;
    ctx.authorize("placement:resource_classes:create")?;
    let data = extract_json(&body, &RC_SCHEMA)?.value;
    let name = data["name"].as_str().unwrap_or_default().to_string();
    st.write(&ctx, Command::CreateResourceClass { name: name.clone() })
        .await?;
    Ok(with_location(empty(StatusCode::CREATED), &name))
}

async fn update<B: Backend>(
    State(st): State<AppState<B>>,
    ctx: Ctx,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    require_1_2(&ctx)?;
    if ctx.at_least(7) {
        ctx.authorize("placement:resource_classes:update")?;
        // Placement validates the name by formatting it into a JSON document.
        let doc = format!("{{\"name\": \"{name}\"}}");
        extract_json(doc.as_bytes(), &RC_SCHEMA)?;
        let outcome = st
            .write(&ctx, Command::EnsureResourceClass { name: name.clone() })
            .await?;
        let status = match outcome {
            Outcome::Created(true) => StatusCode::CREATED,
            _ => StatusCode::NO_CONTENT,
        };
        return Ok(with_location(empty(status), &name));
    }
    ctx.require_json()?;
    ctx.authorize("placement:resource_classes:update")?;
    let data = extract_json(&body, &RC_SCHEMA)?.value;
    let new_name = data["name"].as_str().unwrap_or_default().to_string();
    st.write(
        &ctx,
        Command::RenameResourceClass {
            name,
            new_name: new_name.clone(),
        },
    )
    .await
    .map_err(ApiError::raised_if_not_found)?;
    Ok(json_response(
        &ctx,
        StatusCode::OK,
        &rc_json(&new_name),
        None,
    ))
}

async fn delete<B: Backend>(
    State(st): State<AppState<B>>,
    ctx: Ctx,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    require_1_2(&ctx)?;
    ctx.authorize("placement:resource_classes:delete")?;
    st.write(&ctx, Command::DeleteResourceClass { name })
        .await
        .map_err(ApiError::raised_if_not_found)?;
    Ok(empty(StatusCode::NO_CONTENT))
}
