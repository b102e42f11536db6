//! placement-api: OpenStack Placement's REST API (microversions 1.0–1.39) on axum.
//!
//! The crate knows nothing of Raft or RocksDB: it talks to the rest of placementd through the
//! small [`Backend`] trait ([`backend`]), and [`LocalBackend`] runs the same pure `apply` in
//! memory for fast tests. The binary calls [`router`] and serves the result.
//!
//! # How a request flows (for handler authors)
//!
//! 1. [`context::pipeline`] (one middleware, see [`context`]) assigns the request id,
//!    authenticates the caller ([`auth`]: Keystone or noauth2), negotiates the microversion, checks `content-length`/`content-type`, and puts
//!    a [`Ctx`] into the request. Afterwards it renders every 4xx/5xx in Placement's error
//!    shape and adds `openstack-api-version`, `vary` and the request-id headers.
//! 2. A handler is an axum handler generic over the backend, taking what it needs among:
//!    `State(st): State<AppState<B>>`, `ctx: Ctx`, `QueryParams`, `Path(..)`, `body: Bytes`
//!    (the body limit of [`ApiConfig`] applies; too large → 413). It returns
//!    `Result<Response, ApiError>`.
//! 3. Inside a handler, in Placement's order:
//!    - `ctx.authorize("placement:...")?` — the policy rule (403; see [`policy`]), or
//!      `ctx.authorize_for_project(rule, Some(project))` when the target is another project;
//!    - `ctx.check_accept()?` on GETs (406 unless JSON is acceptable);
//!    - `ctx.require_json()?` on writes with a body (415);
//!    - `json_body::extract_json(&body, &schema)?` — JSON parse + [`schema::validate`] with
//!      Python jsonschema's messages (400 `Malformed JSON` / `JSON does not validate`);
//!    - `query.validate(&schema)?` for query strings (400 `Invalid query string parameters`);
//!    - microversion rules with `ctx.at_least(minor)` / `ctx.version`;
//!    - writes: `st.write(&ctx, Command::...).await?` → [`placement_types::Outcome`] (a
//!      `DomainError` becomes 400/404/409 with its code, a backend failure 503);
//!    - reads: `st.read(|state| ...).await?` (read barrier, then the [`placement_core::State`]);
//!    - reply with `response::json_response(&ctx, status, &value, last_modified)` (adds
//!      `last-modified`/`cache-control` from 1.15 when given a time) or `response::empty(204)`;
//!    - errors: `ApiError::bad_request(msg)`, `not_found`, `conflict(code, msg)`,
//!      `.with_code(ErrorCode::..)` — `detail` is Placement's message.
//!
//! # Adding routes
//!
//! Each module in [`handlers`] exposes `pub(crate) fn routes<B: Backend>() ->
//! axum::Router<AppState<B>>`; [`router`] merges them. A path belongs to exactly one module
//! (axum answers 405 with `allow` for other methods on a known path, 404 for unknown paths).
//! Add the route to [`openapi`]'s operation table too: a test compares the two.
//!
//! # The OpenAPI document
//!
//! [`openapi::document`] describes the whole API, every microversion, and is served at
//! `GET /openapi.json` without a token. It is built from the handlers' own request and query
//! schemas and checked against the routes and the handlers' answers (see [`openapi`]).
//!

mod app_state;
pub mod auth;
pub mod backend;
pub mod context;
pub mod error;
pub mod handlers;
pub mod json_body;
pub mod openapi;
pub mod policy;
pub mod qs;
pub mod query_params;
mod read_pool;
pub mod request_log;
pub mod response;
mod route_template;
pub mod schema;

pub use request_log::RequestLog;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use placement_net::layers;

pub use auth::{AuthError, AuthFuture, AuthStrategy, Authenticate};
pub use backend::{Backend, BackendError, LocalBackend};
pub use context::{Ctx, Microversion};
pub use error::ApiError;
pub use policy::{LivePolicy, Policy, PolicyError, PolicyOptions};
pub use query_params::QueryParams;

/// Default number of requests served at once; more are answered 503 with `Retry-After`.
/// A node's throughput saturates far below it (2 cores serve a few thousand requests a
/// second of a few ms each), so it only bounds memory under a flood.
pub const DEFAULT_MAX_REQUESTS_IN_FLIGHT: usize = 1024;

/// Default deadline of a request. Reads wait at most 5 s for a read barrier and writes 10 s
/// for their entry; this cuts off only what would otherwise hang a client.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Default largest request body accepted (bytes). Placement has no limit of its own; the
/// largest legitimate bodies (a reshape or `POST /allocations` for thousands of consumers)
/// stay well below this.
pub const DEFAULT_MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Settings of the HTTP API.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Largest request body accepted; larger bodies get 413.
    pub max_body_bytes: usize,
    /// How callers are authenticated (`[api] auth_strategy`).
    pub auth: AuthStrategy,
    /// Placement's policy rules: defaults, `enforce_new_defaults`, the policy file (read
    /// again when it changes, see [`LivePolicy`]).
    pub policy: Arc<LivePolicy>,
    /// Cross-origin resource sharing; `None` disables it (preflights then get 405).
    pub cors: Option<CorsConfig>,
    /// Requests served at once; more get 503.
    pub max_requests_in_flight: usize,
    /// A request not answered within this gets 503.
    pub request_timeout: Duration,
    /// Stop enumerating allocation candidates after this many (Placement's
    /// `[placement] max_allocation_candidates`); `None`: no bound.
    pub max_allocation_candidates: Option<usize>,
    /// Take the scheme of `Location` from `X-Forwarded-Proto` (oslo.middleware's
    /// `enable_proxy_headers_parsing`): only behind a proxy that sets it.
    pub enable_proxy_headers_parsing: bool,
    /// `[placement] randomize_allocation_candidates`: under `limit`, return a random sample
    /// of the candidates instead of the first ones (spreads load when many hosts fit).
    pub randomize_allocation_candidates: bool,
    /// `[placement] incomplete_consumer_project_id`: the project recorded for consumers
    /// written without one (before microversion 1.8).
    pub incomplete_consumer_project_id: String,
    /// `[placement] incomplete_consumer_user_id`: likewise for the user.
    pub incomplete_consumer_user_id: String,
}

/// Placement's default `incomplete_consumer_project_id` and `incomplete_consumer_user_id`.
pub const INCOMPLETE_CONSUMER_ID: &str = "00000000-0000-0000-0000-000000000000";

/// Default of [`ApiConfig::max_allocation_candidates`]. Placement's default is unlimited,
/// and a few granular groups over a wide tree then multiply into hundreds of megabytes; nova
/// asks for at most 1,000 (`[scheduler] max_placement_results`), so ten times that leaves
/// every real scheduler its full answer.
pub const DEFAULT_MAX_ALLOCATION_CANDIDATES: usize = 10_000;

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            auth: AuthStrategy::Noauth2,
            policy: Arc::new(LivePolicy::fixed(Policy::defaults(true))),
            cors: None,
            max_requests_in_flight: DEFAULT_MAX_REQUESTS_IN_FLIGHT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_allocation_candidates: Some(DEFAULT_MAX_ALLOCATION_CANDIDATES),
            enable_proxy_headers_parsing: false,
            randomize_allocation_candidates: false,
            incomplete_consumer_project_id: INCOMPLETE_CONSUMER_ID.into(),
            incomplete_consumer_user_id: INCOMPLETE_CONSUMER_ID.into(),
        }
    }
}

impl ApiConfig {
    /// The configuration Placement's test fixture of this name runs with (the conformance
    /// suite passes it as `$CONFORMANCE_FIXTURE`): `SecureRBACPolicyFixture` → the new policy
    /// defaults, `OpenPolicyFixture` → open policy, `CORSFixture` → CORS for
    /// `http://valid.example.com`, anything else → the legacy (deprecated) policy defaults,
    /// as Placement's functional tests run.
    pub fn for_conformance_fixture(fixture: &str) -> Self {
        let mut c = ApiConfig {
            policy: Arc::new(LivePolicy::fixed(Policy::defaults(false))),
            ..ApiConfig::default()
        };
        match fixture {
            "SecureRBACPolicyFixture" => {
                c.policy = Arc::new(LivePolicy::fixed(Policy::defaults(true)))
            }
            "OpenPolicyFixture" => c.policy = Arc::new(LivePolicy::fixed(Policy::open())),
            "CORSFixture" => {
                c.cors = Some(CorsConfig {
                    allowed_origins: vec!["http://valid.example.com".into()],
                    allow_headers: vec!["openstack-api-version".into()],
                    ..CorsConfig::default()
                })
            }
            _ => {}
        }
        c
    }
}

/// CORS settings (oslo.middleware's `[cors]` options).
#[derive(Debug, Clone)]
pub struct CorsConfig {
    /// Origins allowed (exactly as the browser sends them); `*` allows any.
    pub allowed_origins: Vec<String>,
    /// Request headers a preflight may ask for (case-insensitive).
    pub allow_headers: Vec<String>,
    pub allow_methods: Vec<String>,
    /// Response headers exposed to the browser.
    pub expose_headers: Vec<String>,
    pub allow_credentials: bool,
    /// Seconds a browser may cache a preflight answer (`Access-Control-Max-Age`).
    pub max_age: Option<u64>,
}

impl CorsConfig {
    /// Whether requests from `origin` may be shared with it.
    pub fn allows_origin(&self, origin: &str) -> bool {
        self.allowed_origins.iter().any(|o| o == origin || o == "*")
    }
}

impl Default for CorsConfig {
    fn default() -> Self {
        CorsConfig {
            allowed_origins: Vec::new(),
            allow_headers: Vec::new(),
            allow_methods: ["GET", "PUT", "POST", "DELETE", "PATCH"]
                .map(String::from)
                .to_vec(),
            expose_headers: Vec::new(),
            allow_credentials: true,
            max_age: None,
        }
    }
}

/// What every handler can reach.
pub struct AppState<B> {
    pub backend: Arc<B>,
    pub config: Arc<ApiConfig>,
}

impl<B> Clone for AppState<B> {
    fn clone(&self) -> Self {
        AppState {
            backend: self.backend.clone(),
            config: self.config.clone(),
        }
    }
}

/// The complete Placement API over a backend.
pub fn router<B: Backend>(backend: Arc<B>, config: ApiConfig) -> Router {
    let config = Arc::new(config);
    let state = AppState {
        backend,
        config: config.clone(),
    };
    // The limits sit inside the pipeline, so that their 503s and 500s get Placement's error
    // body: shed load first (cheapest), then the deadline, then panics closest to handlers.
    let inner = handlers::routes::<B>()
        .route_layer(axum::middleware::from_fn(route_template::expose))
        .fallback(|| async { ApiError::not_found("").raised() })
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(axum::middleware::from_fn(layers::catch_panic))
        .layer(axum::middleware::from_fn_with_state(
            config.request_timeout,
            layers::deadline,
        ))
        .layer(axum::middleware::from_fn_with_state(
            layers::InFlight::new(config.max_requests_in_flight),
            layers::shed,
        ))
        .with_state(state);
    // The pipeline wraps the whole inner router (not each route), so that it also sees the
    // 405s and `allow` headers axum's method routers produce. A panic in the pipeline itself
    // still becomes a (plain) 500 rather than a dropped connection.
    Router::new()
        .fallback_service(inner)
        .layer(axum::middleware::from_fn_with_state(
            config,
            context::pipeline,
        ))
        .layer(axum::middleware::from_fn(layers::catch_panic))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use placement_core::State;
    use placement_types::{ApplyResult, Origin, Request};
    use tower::ServiceExt;

    use super::*;

    /// A backend whose reads panic: a bug in a handler's read path, as the far-future
    /// timestamp in HTTP date formatting was.
    struct PanickingBackend;

    impl Backend for PanickingBackend {
        async fn write(&self, _: Request, _: Origin) -> Result<ApplyResult, BackendError> {
            Err(BackendError::Unavailable("not used".into()))
        }
        async fn read_barrier(&self) -> Result<(), BackendError> {
            Ok(())
        }
        fn state(&self) -> Arc<State> {
            panic!("a bug in a read")
        }
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_placements_500_and_the_next_request_is_served() {
        let app = router(Arc::new(PanickingBackend), ApiConfig::default());
        let request = |path: &str| {
            http::Request::get(path)
                .header("x-auth-token", "admin")
                .header("openstack-api-version", "placement 1.39")
                .body(Body::empty())
                .expect("request")
        };
        let response = app
            .clone()
            .oneshot(request("/resource_providers"))
            .await
            .expect("infallible");
        assert_eq!(response.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
        assert!(response.headers().contains_key("openstack-request-id"));
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .expect("body")
            .to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&body).expect("JSON error body");
        assert_eq!(body["errors"][0]["status"], 500);
        assert!(body["errors"][0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("failed to serve")));
        // The root needs no state: served as usual after the panic.
        let root = app.oneshot(request("/")).await.expect("infallible");
        assert_eq!(root.status(), http::StatusCode::OK);
    }
}
