//! Per-request limits, as axum middleware: shed load beyond a number of requests in flight,
//! give every request a deadline, and turn a panic into a 500 instead of a dropped
//! connection.
//!
//! Each produces a bare status (503 with `Retry-After`, or 500) with a short text body; the
//! API port's pipeline renders those in Placement's error format, the peer port sends them
//! as they are.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::FutureExt;
use http::header::RETRY_AFTER;
use http::{HeaderValue, StatusCode};
use tokio::sync::Semaphore;

/// Seconds a client is told to wait (`Retry-After`) when a request is shed or times out.
pub const RETRY_AFTER_SECS: u64 = 1;

/// What a response made here says, as an extension: a router that renders errors its own
/// way (the API's Placement error bodies) takes its text from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Detail(pub &'static str);

fn bare(status: StatusCode, message: &'static str) -> Response {
    let mut response = (status, message).into_response();
    response.extensions_mut().insert(Detail(message));
    response
}

/// A 503 with `Retry-After`.
pub fn unavailable(message: &'static str) -> Response {
    let mut response = bare(StatusCode::SERVICE_UNAVAILABLE, message);
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    response
}

/// The number of requests a port serves at once; more are shed.
#[derive(Debug, Clone)]
pub struct InFlight(Arc<Semaphore>);

impl InFlight {
    pub fn new(max: usize) -> Self {
        InFlight(Arc::new(Semaphore::new(max)))
    }
}

/// Middleware: serves the request if a slot is free, else answers 503 at once (shedding is
/// better than queueing: a queued request times out at the client anyway, after holding
/// memory). Use with `axum::middleware::from_fn_with_state(InFlight::new(n), shed)`.
pub async fn shed(State(slots): State<InFlight>, request: Request, next: Next) -> Response {
    let Ok(slot) = slots.0.try_acquire_owned() else {
        return unavailable("The server is overloaded: too many requests in flight. Retry later.");
    };
    let response = next.run(request).await;
    drop(slot);
    response
}

/// Middleware: answers 503 if the handler has not answered within the deadline (the work is
/// cancelled; a write already proposed may still be applied, as with any timeout). Use with
/// `axum::middleware::from_fn_with_state(deadline, deadline)`.
pub async fn deadline(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => unavailable("The request did not complete in time. Retry later."),
    }
}

/// Middleware: a panic in a handler becomes a logged 500, and the connection lives on.
pub async fn catch_panic(request: Request, next: Next) -> Response {
    // Kept to name the request if it panics (cheap clones: the path is shared, not copied).
    let (method, uri) = (request.method().clone(), request.uri().clone());
    match AssertUnwindSafe(next.run(request)).catch_unwind().await {
        Ok(response) => response,
        Err(panic) => {
            let what = format!("{method} {}", uri.path());
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(no message)".into());
            tracing::error!(request = %what, panic = %message, "handler panicked; answered 500");
            bare(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The server failed to serve this request.",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;

    fn app() -> Router {
        Router::new()
            .route(
                "/boom",
                get(|| async {
                    if true {
                        panic!("kaboom");
                    }
                    "unreachable"
                }),
            )
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    "late"
                }),
            )
            .route("/fine", get(|| async { "ok" }))
    }

    async fn status(app: &Router, path: &str) -> (StatusCode, Option<Detail>) {
        let request = http::Request::get(path)
            .body(Body::empty())
            .expect("request");
        let response = app.clone().oneshot(request).await.expect("infallible");
        (
            response.status(),
            response.extensions().get::<Detail>().copied(),
        )
    }

    #[tokio::test]
    async fn a_panic_is_a_500_and_the_next_request_is_served() {
        let app = app().layer(axum::middleware::from_fn(catch_panic));
        let (code, detail) = status(&app, "/boom").await;
        assert_eq!(code, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(detail.is_some());
        assert_eq!(status(&app, "/fine").await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn a_request_past_its_deadline_is_a_503() {
        let app = app().layer(axum::middleware::from_fn_with_state(
            Duration::from_millis(50),
            deadline,
        ));
        assert_eq!(
            status(&app, "/slow").await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(status(&app, "/fine").await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn requests_beyond_the_slots_are_shed_with_retry_after() {
        let slots = InFlight::new(1);
        let app = app().layer(axum::middleware::from_fn_with_state(slots.clone(), shed));
        // Hold the only slot with a slow request, then ask for another.
        let held = tokio::spawn({
            let app = app.clone();
            async move { status(&app, "/slow").await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        let request = http::Request::get("/fine")
            .body(Body::empty())
            .expect("request");
        let shed_response = app.clone().oneshot(request).await.expect("infallible");
        assert_eq!(shed_response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            shed_response.headers().get(RETRY_AFTER),
            Some(&HeaderValue::from(RETRY_AFTER_SECS))
        );
        assert_eq!(held.await.expect("task").0, StatusCode::OK);
        assert_eq!(status(&app, "/fine").await.0, StatusCode::OK);
    }
}
