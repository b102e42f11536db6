//! `GET /`: version discovery; `GET /openapi.json`: the OpenAPI document of the API
//! ([`crate::openapi`]). Neither needs a token ([`crate::auth::PUBLIC_PATHS`]) nor a
//! microversion (they answer the same at every one).

use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::StatusCode;
use serde_json::json;

use crate::context::{Ctx, MAX_VERSION, MIN_VERSION};
use crate::response::{json_response, now};
use crate::{ApiError, AppState, Backend};

pub(crate) fn routes<B: Backend>() -> Router<AppState<B>> {
    Router::new()
        .route("/", get(home))
        .route("/openapi.json", get(openapi_document))
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

/// The document, serialized once per process.
async fn openapi_document() -> Response {
    let mut resp = (StatusCode::OK, crate::openapi::document_bytes()).into_response();
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}
