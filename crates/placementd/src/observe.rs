//! The layer around the API port that measures and logs every request: one timing feeds
//! both the HTTP metrics and the access log.
//!
//! # Metrics
//! `placementd_http_requests_total{method,route,status}` and
//! `placementd_http_request_duration_seconds{method,route}` (`placement_metrics::catalog`).
//! Labels are bounded whatever clients send: `route` is the route template that matched
//! (`/resource_providers/{uuid}`, from axum's `MatchedPath`: on the request for this
//! binary's own routes, on the response for the API's, see `placement_api`'s
//! `route_template.rs`), or `unmatched` — a 404, or a request refused before routing (no
//! token, a bad microversion) — never the raw path; `method` is one of HTTP's standard
//! methods or `other`; `status` is a three-digit code. The duration runs from the request's
//! arrival at this layer to its response head (a streamed body's transfer is not in it).
//!
//! # Access log
//! One line per request at INFO, target `placementd::access`, with the fields `method`,
//! `route`, `path` (without the query string, which may be long), `status`, `duration_ms`,
//! `request_id`, `global_request_id`, `user_id`, `project_id`. The ids and the caller come
//! from the [`RequestLog`] the API puts into the response's extensions; a response without
//! one logs them empty, but for the request id, then read from the `openstack-request-id`
//! header the API answered with. Load-balancer probes (`/healthz`, `/readyz`,
//! `/readyz/leader`) log at DEBUG: they arrive every few seconds and say nothing an operator
//! reads a log for (they are still counted in the metrics).

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use placement_api::RequestLog;

/// The `route` label of a request that matched no route.
pub(crate) const UNMATCHED: &str = "unmatched";

/// Routes whose access-log lines go to DEBUG (load-balancer probes).
const PROBES: &[&str] = &["/healthz", "/readyz", "/readyz/leader"];

/// The `method` label: a standard method, or `other` (clients may send any token).
pub(crate) fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The `route` label: the template matched before the handler ran (this binary's routes)
/// or reported by the API in the response, else [`UNMATCHED`].
pub(crate) fn route_label(on_request: Option<String>, response: &Response) -> String {
    on_request
        .or_else(|| {
            response
                .extensions()
                .get::<MatchedPath>()
                .map(|m| m.as_str().to_string())
        })
        .unwrap_or_else(|| UNMATCHED.to_string())
}

/// The layer (`axum::middleware::from_fn`) on the API router.
pub(crate) async fn layer(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let matched = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let route = route_label(matched, &response);
    let status = response.status();
    placement_metrics::catalog::http_request(
        method_label(&method),
        &route,
        status.as_str(),
        elapsed,
    );
    let ids = response.extensions().get::<RequestLog>();
    let field = |f: fn(&RequestLog) -> Option<&str>| ids.and_then(f).unwrap_or("");
    // Until the API's pipeline reports a `RequestLog`, the id it answered with will do.
    let request_id = field(|l| Some(l.request_id.as_str()).filter(|s| !s.is_empty()));
    let request_id = match request_id {
        "" => response
            .headers()
            .get("openstack-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or(""),
        id => id,
    };
    let global_request_id = field(|l| l.global_request_id.as_deref());
    let user_id = field(|l| l.user_id.as_deref());
    let project_id = field(|l| l.project_id.as_deref());
    let duration_ms = (elapsed.as_secs_f64() * 1e6).round() / 1e3;
    macro_rules! access {
        ($level:expr) => {
            tracing::event!(
                target: "placementd::access",
                $level,
                method = %method,
                route = %route,
                path = %path,
                status = status.as_u16(),
                duration_ms,
                request_id,
                global_request_id,
                user_id,
                project_id,
                "request"
            )
        };
    }
    if PROBES.contains(&route.as_str()) {
        access!(tracing::Level::DEBUG);
    } else {
        access!(tracing::Level::INFO);
    }
    response
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::routing::get;
    use axum::Router;
    use placement_metrics::catalog::HTTP_REQUESTS;
    use tower::ServiceExt;

    use super::*;

    #[test]
    fn methods_outside_the_standard_set_share_one_label() {
        assert_eq!(method_label(&Method::PUT), "PUT");
        let odd = Method::from_bytes(b"FROBNICATE").expect("a valid token");
        assert_eq!(method_label(&odd), "other");
    }

    /// A router shaped like the binary's: its own route, and an inner router (the API's)
    /// as fallback that reports its template on the response.
    fn app() -> Router {
        async fn expose(request: Request, next: Next) -> Response {
            let matched = request.extensions().get::<MatchedPath>().cloned();
            let mut response = next.run(request).await;
            if let Some(m) = matched {
                response.extensions_mut().insert(m);
            }
            response
        }
        let inner = Router::new()
            .route("/observe-test/{id}", get(|| async { "inner" }))
            .route_layer(axum::middleware::from_fn(expose));
        Router::new()
            .route("/observe-probe", get(|| async { "own" }))
            .merge(Router::new().fallback_service(inner))
            .layer(axum::middleware::from_fn(layer))
    }

    async fn call(uri: &str) -> u16 {
        let request = axum::http::Request::get(uri)
            .body(Body::empty())
            .expect("a request");
        let response = app().oneshot(request).await.expect("infallible");
        response.status().as_u16()
    }

    #[tokio::test]
    async fn routes_are_counted_by_template_and_unknown_paths_as_unmatched() {
        assert_eq!(call("/observe-test/abc").await, 200);
        assert_eq!(call("/observe-test/def").await, 200);
        assert_eq!(call("/observe-probe").await, 200);
        assert_eq!(call("/observe-nowhere/xyz").await, 404);
        let count = |route: &str, status: &str| HTTP_REQUESTS.with(["GET", route, status]).get();
        assert_eq!(count("/observe-test/{id}", "200"), 2);
        assert_eq!(count("/observe-probe", "200"), 1);
        assert!(count(UNMATCHED, "404") >= 1);
        assert_eq!(
            count("/observe-nowhere/xyz", "404"),
            0,
            "never the raw path"
        );
    }
}
