//! `GET /`: version discovery (no auth needed).

use axum::response::Response;
use axum::routing::get;
use axum::Router;
use http::StatusCode;
use serde_json::json;

use crate::context::{Ctx, MAX_VERSION, MIN_VERSION};
use crate::util::{json_response, now};
use crate::{ApiError, AppState, Backend};

pub(crate) fn routes<B: Backend>() -> Router<AppState<B>> {
    Router::new().route("/", get(home))
}

async fn home(ctx: Ctx) -> Result<Response, ApiError> {
    let body = json!({"versions": [{
        "id": format!("v{MIN_VERSION}"),
        "max_version": MAX_VERSION.to_string(),
        "min_version": MIN_VERSION.to_string(),
        "status": "CURRENT",
        "links": [{"rel": "self", "href": ""}],
    }]});
    Ok(json_response(&ctx, StatusCode::OK, &body, Some(now())))
}
