//! The route template of an answered request, for the access log and the HTTP metrics in
//! front of the router (`placementd`'s `observe.rs`). Only the router knows which route
//! matched, and it knows it only inside: this layer, applied to the routes (not the
//! fallback), copies axum's [`MatchedPath`] (`/resource_providers/{uuid}`) from the request
//! into the response's extensions. A response without one answered no route (a 404 of the
//! fallback, or a refusal before routing: a bad token, an unsupported microversion).

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;

/// Copies the request's [`MatchedPath`] into its response.
pub(crate) async fn expose(request: Request, next: Next) -> Response {
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let mut response = next.run(request).await;
    if let Some(matched) = matched {
        response.extensions_mut().insert(matched);
    }
    response
}
