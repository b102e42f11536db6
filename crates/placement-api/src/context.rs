//! The per-request pipeline that wraps every handler, in Placement's middleware order:
//!
//! 1. **request id** — `req-<uuid7>` (time-ordered, see `pipeline`), returned in
//!    `openstack-request-id` and `x-openstack-request-id`, shown in error bodies, and used as
//!    `Request.id` for writes.
//!    An incoming `X-Openstack-Request-Id` of exactly the form `req-<uuid>` (lowercase hex,
//!    oslo.context's `_UUID_RE`) is the caller's **global request id**: logged with the local
//!    one, never echoed (the answer names the local id, as oslo.middleware's `request_id`
//!    does); anything else in that header is ignored. Both ids, and the caller once
//!    authenticated, go into every response's extensions as a [`crate::RequestLog`] (errors
//!    included) for the access log, and the rest of the request runs in a `request` tracing
//!    span carrying them, so that every line logged on its behalf (a forwarded write, say)
//!    names them;
//! 2. **authentication** — [`crate::auth`]: Keystone's word on `x-auth-token` (401 with
//!    `WWW-Authenticate` without a valid one, 503 when Keystone cannot be asked), or noauth2's
//!    trust in the client's headers; `GET /` needs no token;
//! 3. **microversion** — `openstack-api-version: placement X.Y` (or the legacy
//!    `x-openstack-placement-api-version`), `latest` = 1.39, absent = 1.0; a malformed value is
//!    400, an out-of-range one 406 (with `min_version`/`max_version` in the error); every
//!    response after this step carries `openstack-api-version`, and `vary` when a handler
//!    returned it: Placement's middleware adds `vary` only to what its handlers return
//!    (webob errors they raise included), not to what is raised past it (policy refusals,
//!    uncaught lookups, routing errors, 5xx; see [`ApiError::raised`]);
//! 4. **content-length** — `content-length` that is not an integer → 400; > 0 without a
//!    `content-type` → 400 (`PlacementHandler.__call__`). hyper would refuse a non-integer
//!    length before we see the request; `placement_net::head_guard` renames it so it
//!    arrives here (see `content_length_error`);
//! 5. the handler, which sees a [`Ctx`] (extract it as a handler argument);
//! 6. **error rendering** — any 4xx/5xx response (an [`ApiError`] or one of axum's own
//!    rejections) gets Placement's error body; a 405 gets `allow` in Placement's format.
//!
//! Policy is a per-handler call, [`Ctx::authorize`], as in Placement (handlers call
//! `context.can(...)` before validating their input); the rules live in [`crate::policy`].
//!
//! CORS (when [`crate::ApiConfig::cors`] is set) sits before auth, as oslo's CORS middleware
//! does: a preflight `OPTIONS` with `Origin` and `Access-Control-Request-Method` is answered
//! 200 at once (with the `access-control-*` headers only if origin, method and headers are
//! allowed); other requests from an allowed origin get `access-control-allow-origin`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::header::{HeaderMap, HeaderName, HeaderValue, ALLOW, CONTENT_TYPE, LOCATION, VARY};
use http::request::Parts;
use http::{Method, StatusCode};
use placement_types::Uuid;

use crate::auth::{AuthError, AuthStrategy};
use crate::error::{explanation, title, ApiError, ErrorMark};
use crate::policy::Target;
use crate::ApiConfig;
use crate::RequestLog;
use placement_net::head_guard::RENAMED_CONTENT_LENGTH;
use placement_net::layers::Detail;
use tracing::Instrument;

/// The oldest microversion served.
pub const MIN_VERSION: Microversion = Microversion { major: 1, minor: 0 };
/// The newest microversion served (`latest`).
pub const MAX_VERSION: Microversion = Microversion {
    major: 1,
    minor: 39,
};
/// Placement's service type in the microversion header.
const SERVICE_TYPE: &str = "placement";
const STANDARD_HEADER: &str = "openstack-api-version";
const LEGACY_HEADER: &str = "x-openstack-placement-api-version";

/// A negotiated microversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Microversion {
    pub major: u32,
    pub minor: u32,
}

impl std::fmt::Display for Microversion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Why a microversion header was refused.
enum VersionError {
    /// 400: not `X.Y`.
    Malformed(String),
    /// 406: outside [`MIN_VERSION`, `MAX_VERSION`].
    Unacceptable(String),
}

/// The value the client asked for, as microversion_parse finds it.
/// Several values (repeated headers, or one with commas) are read in order and the last one
/// for `placement` wins, as microversion_parse's dict of service → version does.
fn requested_version(headers: &HeaderMap) -> Option<String> {
    let mut standard: Vec<String> = Vec::new();
    for v in headers.get_all(STANDARD_HEADER) {
        if let Ok(s) = v.to_str() {
            standard.extend(s.split(',').map(|p| p.trim().to_string()));
        }
    }
    let mut found = None;
    for item in standard {
        let mut it = item.split_whitespace();
        if let (Some(service), Some(version)) = (it.next(), it.next()) {
            if service.eq_ignore_ascii_case(SERVICE_TYPE) {
                found = Some(version.to_string());
            }
        }
    }
    if found.is_some() {
        return found;
    }
    let legacy: Vec<&str> = headers
        .get_all(LEGACY_HEADER)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if legacy.is_empty() {
        None
    } else {
        Some(legacy.join(",").trim().to_string())
    }
}

fn parse_version(headers: &HeaderMap) -> Result<Microversion, VersionError> {
    let Some(s) = requested_version(headers) else {
        return Ok(MIN_VERSION);
    };
    if s == "latest" {
        return Ok(MAX_VERSION);
    }
    let malformed = || VersionError::Malformed(format!("invalid version string: {s}"));
    let (major, minor) = s.split_once('.').ok_or_else(malformed)?;
    let parse = |p: &str| -> Option<u32> {
        let t = p.trim();
        let t = t.strip_prefix('+').unwrap_or(t);
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    };
    let v = Microversion {
        major: parse(major).ok_or_else(malformed)?,
        minor: parse(minor).ok_or_else(malformed)?,
    };
    if v < MIN_VERSION || v > MAX_VERSION {
        return Err(VersionError::Unacceptable(format!(
            "Unacceptable version header: {s}"
        )));
    }
    Ok(v)
}

/// Who is calling: what Keystone said of the request's token (or what noauth2 made up).
/// These are oslo.context's policy credentials (`RequestContext.to_policy_values`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    pub user_id: String,
    pub user_domain_id: Option<String>,
    /// `None` when the token is not project-scoped (system or domain scope).
    pub project_id: Option<String>,
    pub project_domain_id: Option<String>,
    /// The domain of a domain-scoped token.
    pub domain_id: Option<String>,
    /// Role names, as Keystone spells them (policy compares them case-insensitively).
    pub roles: Vec<String>,
    /// A system-scoped token (`system: {all: true}`).
    pub system_scope: bool,
    /// Keystone's `is_admin_project` (true when Keystone does not say).
    pub is_admin_project: bool,
    /// The user of a valid `X-Service-Token`, if one came with the request.
    pub service_user_id: Option<String>,
    pub service_project_id: Option<String>,
    /// The roles of the service token.
    pub service_roles: Vec<String>,
}

impl Caller {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r.eq_ignore_ascii_case(role))
    }
}

/// What a handler knows about its request. Extract it as a handler argument.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The uuid of `req-<uuid>`; also the `Request.id` of a write.
    pub request_id: Uuid,
    pub version: Microversion,
    /// `None` only for `GET /` without a token.
    pub caller: Option<Caller>,
    /// The raw `Accept` header, if any.
    pub accept: Option<String>,
    /// The media type of `Content-Type` (parameters stripped), if any.
    pub content_type: Option<String>,
    pub config: Arc<ApiConfig>,
}

impl Ctx {
    /// Whether the request's microversion is at least `1.minor` (Placement's `matches`).
    pub fn at_least(&self, minor: u32) -> bool {
        self.version >= Microversion { major: 1, minor }
    }

    /// Placement's `check_accept('application/json')`: 406 unless an explicit `Accept`
    /// admits JSON.
    pub fn check_accept(&self) -> Result<(), ApiError> {
        match &self.accept {
            Some(a) if !a.trim().is_empty() => {
                if accept_quality(a, "application/json") > 0.0 {
                    Ok(())
                } else {
                    Err(ApiError::not_acceptable_json())
                }
            }
            _ => Ok(()),
        }
    }

    /// Placement's `require_content('application/json')`: 415 otherwise.
    pub fn require_json(&self) -> Result<(), ApiError> {
        match self.content_type.as_deref() {
            Some("application/json") => Ok(()),
            other => Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "The media type {} is not supported, use application/json",
                    other.unwrap_or("None")
                ),
            )),
        }
    }

    /// Checks a policy rule for the caller against the default target (the caller's own
    /// project and user); 403 in Placement's words when refused. See [`crate::policy`].
    pub fn authorize(&self, rule: &str) -> Result<(), ApiError> {
        let target = self.caller.as_ref().map(Target::of).unwrap_or_default();
        self.authorize_target(rule, &target)
    }

    /// Checks a policy rule for a target owned by `project` (`GET /usages` passes the
    /// `project_id` it was asked about).
    pub fn authorize_for_project(&self, rule: &str, project: Option<&str>) -> Result<(), ApiError> {
        let target = project.map(Target::project).unwrap_or_default();
        self.authorize_target(rule, &target)
    }

    fn authorize_target(&self, rule: &str, target: &Target) -> Result<(), ApiError> {
        let allowed = self
            .caller
            .as_ref()
            .is_some_and(|c| self.config.policy.current().enforce(rule, c, target));
        if allowed {
            Ok(())
        } else {
            // PolicyNotAuthorized escapes the handler; PlacementHandler turns it into a 403.
            Err(
                ApiError::forbidden(format!("Policy doesn't allow {rule} to be performed."))
                    .raised(),
            )
        }
    }

    /// `req-<uuid>` as shown to clients.
    pub fn request_id_string(&self) -> String {
        format!("req-{}", self.request_id)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Ctx>().cloned().ok_or_else(|| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "request context missing (middleware not installed)",
            )
        })
    }
}

/// The q-value an `Accept` header gives a concrete media type (most specific range wins).
pub(crate) fn accept_quality(accept: &str, offer: &str) -> f32 {
    let (otype, osub) = offer.split_once('/').unwrap_or((offer, ""));
    let mut best: Option<(u8, f32)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        if media.is_empty() {
            continue;
        }
        let mut q = 1.0f32;
        for p in parts {
            if let Some((k, v)) = p.split_once('=') {
                if k.trim().eq_ignore_ascii_case("q") {
                    q = v.trim().parse().unwrap_or(0.0);
                }
            }
        }
        let (t, s) = media.split_once('/').unwrap_or((media.as_str(), ""));
        let specificity = if t == otype && s == osub {
            3
        } else if t == otype && s == "*" {
            2
        } else if t == "*" && s == "*" {
            1
        } else {
            continue;
        };
        if best.is_none_or(|(sp, _)| specificity > sp) {
            best = Some((specificity, q));
        }
    }
    best.map(|(_, q)| q).unwrap_or(0.0)
}

/// The body format of an error response, as webob picks it from `Accept`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ErrorFormat {
    Json,
    Html,
    Plain,
}

fn error_format(accept: Option<&str>) -> ErrorFormat {
    let Some(a) = accept.filter(|a| !a.trim().is_empty()) else {
        return ErrorFormat::Json;
    };
    let html = accept_quality(a, "text/html");
    let json = accept_quality(a, "application/json");
    if json <= 0.0 && html <= 0.0 {
        ErrorFormat::Plain
    } else if html > json {
        ErrorFormat::Html
    } else {
        ErrorFormat::Json
    }
}

/// What error rendering needs to know about the request.
struct ErrorEnv<'a> {
    request_id: &'a str,
    version: Option<Microversion>,
    accept: Option<&'a str>,
    content_type: &'a str,
    method: &'a str,
}

fn render_error(status: StatusCode, detail: &str, code: &str, env: &ErrorEnv<'_>) -> Response {
    let title = title(status);
    let expl = explanation(
        status,
        env.method,
        env.accept.unwrap_or("*/*"),
        env.content_type,
    );
    let (ctype, body) = match error_format(env.accept) {
        ErrorFormat::Json => {
            let mut e = serde_json::Map::new();
            e.insert("status".into(), status.as_u16().into());
            e.insert("title".into(), title.into());
            e.insert("detail".into(), json_detail(&expl, detail).into());
            if let Some(v) = env.version {
                if v >= (Microversion {
                    major: 1,
                    minor: 23,
                }) {
                    e.insert("code".into(), code.into());
                }
            }
            e.insert("request_id".into(), env.request_id.into());
            if status == StatusCode::NOT_ACCEPTABLE && env.version.is_none() {
                e.insert("max_version".into(), MAX_VERSION.to_string().into());
                e.insert("min_version".into(), MIN_VERSION.to_string().into());
            }
            let body = serde_json::json!({ "errors": [serde_json::Value::Object(e)] });
            ("application/json", body.to_string())
        }
        ErrorFormat::Html => {
            let st = format!("{} {}", status.as_u16(), title);
            (
                "text/html; charset=UTF-8",
                format!(
                    "<html>\n <head>\n  <title>{st}</title>\n </head>\n <body>\n  <h1>{st}</h1>\n  \
                     {}<br /><br />\n{}\n\n\n </body>\n</html>",
                    html_escape(&expl),
                    html_escape(detail)
                ),
            )
        }
        ErrorFormat::Plain => (
            "text/plain; charset=UTF-8",
            format!("{} {}\n\n{expl}\n\n{detail}\n\n", status.as_u16(), title),
        ),
    };
    let mut resp = (status, body).into_response();
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(ctype));
    resp
}

/// The `detail` of a JSON error as webob builds it: its HTML body template
/// (`${explanation}<br /><br />\n${detail}\n${html_comment}\n`, the comment empty) through `webob.exc.strip_tags`, which folds
/// line breaks into spaces, turns `<br>` into a line break and drops anything tag-like. So a
/// multi-line message (a schema error) reads on one line, as clients that show only the
/// last line of `detail` (osc-placement) expect.
fn json_detail(explanation: &str, detail: &str) -> String {
    static BR: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"(?is)<br.*?>").expect("a valid pattern"));
    static TAG: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"(?s)<.*?>").expect("a valid pattern"));
    let body = format!("{explanation}<br /><br />\n{detail}\n\n")
        .replace('\n', " ")
        .replace('\r', "");
    let body = BR.replace_all(&body, "\n");
    let body = body.replace("<!--", "").replace("-->", "");
    TAG.replace_all(&body, "").into_owned()
}

/// A request without a valid token. noauth2 answers in Placement's error shape;
/// keystonemiddleware with its own JSON body and `WWW-Authenticate`.
fn unauthorized(strategy: &AuthStrategy, env: &ErrorEnv<'_>) -> Response {
    let AuthStrategy::Keystone {
        www_authenticate_uri,
        ..
    } = strategy
    else {
        return render_error(StatusCode::UNAUTHORIZED, "", "", env);
    };
    let body = serde_json::json!({"error": {
        "code": 401,
        "title": "Unauthorized",
        "message": "The request you have made requires authentication.",
    }});
    let mut resp = (StatusCode::UNAUTHORIZED, body.to_string()).into_response();
    let h = resp.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("Keystone uri=\"{www_authenticate_uri}\"")) {
        h.insert(http::header::WWW_AUTHENTICATE, v);
    }
    resp
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub(crate) fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Placement's check of a request's length (`PlacementHandler.__call__`): the message of
/// the 400 it answers, if any.
///
/// A `content-length` hyper would refuse (not digits, or repeated with different values)
/// arrives renamed to [`RENAMED_CONTENT_LENGTH`] (by `placement_net::head_guard`; hyper read
/// no body for it), and that header alone is a length that is not an integer, whatever its
/// value: Placement's `int()` takes a few spellings hyper refuses (`+5`, ` 5`), but a request
/// whose body hyper did not read cannot be served. `placement_net::serve` closes the
/// connection after answering it. A client that sends that header itself gets the same 400
/// and a closed connection; nothing else reads it.
fn content_length_error(headers: &HeaderMap, content_type: Option<&str>) -> Option<&'static str> {
    const NOT_INTEGER: &str = "content-length header must be an integer";
    if headers.contains_key(RENAMED_CONTENT_LENGTH) {
        return Some(NOT_INTEGER);
    }
    let length = headers.get(http::header::CONTENT_LENGTH)?;
    match length
        .to_str()
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
    {
        None => Some(NOT_INTEGER),
        Some(n) if n > 0 && content_type.is_none_or(str::is_empty) => {
            Some("content-type header required when content-length > 0")
        }
        Some(_) => None,
    }
}

/// Whether Placement raises this answer past its microversion middleware rather than
/// returning it from a handler: every 5xx, axum's own rejections (no route, body too large;
/// not a wrong method) and the errors handlers mark [`ApiError::raised`]. Errors handlers
/// return otherwise are `wsgify`'s returned webob exceptions, and get `vary` like successes.
fn raised_past_middleware(resp: &Response) -> bool {
    if resp.status().is_server_error() {
        return true;
    }
    match resp.extensions().get::<ErrorMark>() {
        Some(mark) => mark.raised,
        // `handle_405` is a WSGI app that returns its answer; an unmatched path is raised.
        None => resp.status().is_client_error() && resp.status() != StatusCode::METHOD_NOT_ALLOWED,
    }
}

/// The header a caller names its global request id in (oslo's `INBOUND_HEADER`).
const GLOBAL_REQUEST_ID_HEADER: &str = "x-openstack-request-id";

/// The caller's global request id: the header's value when it is exactly `req-` and a
/// lowercase hyphenated UUID (oslo.context's check); `None` otherwise, so that nothing a
/// client made up reaches the log.
fn global_request_id(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(GLOBAL_REQUEST_ID_HEADER)?.to_str().ok()?;
    let uuid = value.strip_prefix("req-")?;
    let shape_ok = uuid.len() == 36
        && uuid.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        });
    shape_ok.then(|| value.to_string())
}

/// The pipeline described in the module doc, as an axum middleware: [`handle`] inside the
/// request's tracing span, its [`RequestLog`] put into the response.
pub(crate) async fn pipeline(
    State(config): State<Arc<ApiConfig>>,
    req: Request<Body>,
    next: Next,
) -> Response {
    // Time-ordered (UUIDv7): the state machine keeps each write's outcome under its request
    // id (`placement-storage/src/dedup.rs`) and evicts the oldest, so ordered ids put both at
    // the ends of one key range instead of two random places in the memtable (12 % less apply
    // CPU per write in `docs/benchmarks-raw/2026-12-07/request-id-v7-ab/`). Clients still see
    // `req-` + a UUID; the id only names a request, it guards nothing.
    let request_id = Uuid::now_v7();
    let mut log = RequestLog {
        request_id: format!("req-{request_id}"),
        global_request_id: global_request_id(req.headers()),
        user_id: None,
        project_id: None,
    };
    let span = tracing::info_span!(
        "request",
        request_id = %log.request_id,
        global_request_id = log.global_request_id.as_deref().unwrap_or(""),
    );
    let mut resp = handle(config, req, next, request_id, &mut log)
        .instrument(span)
        .await;
    resp.extensions_mut().insert(log);
    resp
}

/// The steps of the module doc for one request; fills `log`'s caller once known.
async fn handle(
    config: Arc<ApiConfig>,
    mut req: Request<Body>,
    next: Next,
    request_id: Uuid,
    log: &mut RequestLog,
) -> Response {
    let rid = log.request_id.clone();
    let method = req.method().clone();
    let headers = req.headers().clone();
    let accept = header_str(&headers, "accept").map(str::to_string);
    let raw_ctype = header_str(&headers, "content-type").map(str::to_string);
    let content_type = raw_ctype
        .as_deref()
        .map(|c| {
            c.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|c| !c.is_empty());
    let mut env = ErrorEnv {
        request_id: &rid,
        version: None,
        accept: accept.as_deref(),
        content_type: content_type.as_deref().unwrap_or("None"),
        method: method.as_str(),
    };
    let public = crate::auth::is_public_path(req.uri().path());
    let tls = req
        .extensions()
        .get::<placement_net::ConnInfo>()
        .is_some_and(|c| c.tls);
    let trust_proxy = config.enable_proxy_headers_parsing;
    let origin = header_str(&headers, "origin").map(str::to_string);
    let cors = config.cors.clone();
    if let (Some(cors), Some(origin)) = (&cors, &origin) {
        if method == Method::OPTIONS && headers.contains_key("access-control-request-method") {
            return cors_preflight(cors, origin, &headers, &rid);
        }
    }

    // Whether a handler returned the answer: only then does Placement's microversion
    // middleware add `vary` (an error raised past it gets the version header alone).
    let mut returned = false;
    let mut resp = 'resp: {
        // Authentication (keystonemiddleware or noauth2, see `crate::auth`).
        let caller = match crate::auth::authenticate(&config.auth, &headers, public).await {
            Ok(caller) => {
                if let Some(c) = &caller {
                    log.user_id = Some(c.user_id.clone());
                    log.project_id = c.project_id.clone();
                }
                caller
            }
            Err(AuthError::Unauthorized) => break 'resp unauthorized(&config.auth, &env),
            Err(AuthError::Unavailable(reason)) => {
                tracing::error!(%reason, "cannot validate a token: Keystone is unavailable");
                break 'resp render_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The Keystone service is temporarily unavailable.",
                    "",
                    &env,
                );
            }
        };

        // Microversion.
        let version = match parse_version(&headers) {
            Ok(v) => v,
            Err(VersionError::Malformed(m)) => {
                break 'resp render_error(
                    StatusCode::BAD_REQUEST,
                    &format!("Invalid microversion: {m}"),
                    "",
                    &env,
                );
            }
            Err(VersionError::Unacceptable(m)) => {
                break 'resp render_error(
                    StatusCode::NOT_ACCEPTABLE,
                    &format!("Invalid microversion: {m}"),
                    "",
                    &env,
                );
            }
        };
        env.version = Some(version);

        // Content-length / content-type (PlacementHandler.__call__).
        if let Some(message) = content_length_error(&headers, raw_ctype.as_deref()) {
            break 'resp render_error(
                StatusCode::BAD_REQUEST,
                message,
                placement_types::ErrorCode::Undefined.as_str(),
                &env,
            );
        }

        req.extensions_mut().insert(Ctx {
            request_id,
            version,
            caller,
            accept: accept.clone(),
            content_type: content_type.clone(),
            config,
        });
        // Placement routes only the methods it declares, so HEAD is 405 there; axum would
        // answer it with the GET handler. A method no route has gets axum's 405 with
        // `allow` (the detail names the method the client sent, from `env`).
        if req.method() == Method::HEAD {
            *req.method_mut() = Method::from_bytes(b"PLACEMENTD-HEAD").unwrap_or(Method::TRACE);
        }
        let resp = next.run(req).await;
        returned = !raised_past_middleware(&resp);
        finish(resp, &env)
    };

    // webob makes a relative `location` absolute with the request's scheme and host.
    if let Some(loc) = resp.headers().get(LOCATION).and_then(|v| v.to_str().ok()) {
        if loc.starts_with('/') {
            let scheme = request_scheme(&headers, tls, trust_proxy);
            let host = header_str(&headers, "host")
                .filter(|h| is_plain_authority(h))
                .unwrap_or("localhost");
            if let Ok(v) = HeaderValue::from_str(&format!("{scheme}://{host}{loc}")) {
                resp.headers_mut().insert(LOCATION, v);
            }
        }
    }
    let h = resp.headers_mut();
    if let Some(v) = env.version {
        if let Ok(val) = HeaderValue::from_str(&format!("{SERVICE_TYPE} {v}")) {
            h.insert(HeaderName::from_static(STANDARD_HEADER), val);
        }
        if returned {
            h.insert(VARY, HeaderValue::from_static(STANDARD_HEADER));
        }
    }
    if let Ok(val) = HeaderValue::from_str(&rid) {
        h.insert(HeaderName::from_static("openstack-request-id"), val.clone());
        h.insert(HeaderName::from_static("x-openstack-request-id"), val);
    }
    if let (Some(cors), Some(origin)) = (&cors, &origin) {
        if cors.allows_origin(origin) {
            if let Ok(v) = HeaderValue::from_str(origin) {
                h.insert("access-control-allow-origin", v);
            }
            if cors.allow_credentials {
                h.insert(
                    "access-control-allow-credentials",
                    HeaderValue::from_static("true"),
                );
            }
            if !cors.expose_headers.is_empty() {
                if let Ok(v) = HeaderValue::from_str(&cors.expose_headers.join(",")) {
                    h.insert("access-control-expose-headers", v);
                }
            }
            h.append(VARY, HeaderValue::from_static("Origin"));
        }
    }
    if method == Method::HEAD {
        // webob answers HEAD without generating an error body, so the content type stays
        // its Response default (hyper sends no body to a HEAD anyway).
        resp.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=UTF-8"),
        );
    }
    resp
}

/// The scheme clients used: `https` on a TLS connection, or what a trusted proxy says in
/// `X-Forwarded-Proto` (only `http` or `https`; oslo's `enable_proxy_headers_parsing`).
fn request_scheme(headers: &HeaderMap, tls: bool, trust_proxy: bool) -> &'static str {
    let forwarded = trust_proxy
        .then(|| header_str(headers, "x-forwarded-proto"))
        .flatten()
        .map(|p| p.trim().to_ascii_lowercase());
    match forwarded.as_deref() {
        Some("https") => "https",
        Some("http") => "http",
        _ if tls => "https",
        _ => "http",
    }
}

/// Whether a `Host` value is a bare `host[:port]` that can go into a URL as it is: no user
/// info, path, query, whitespace or control characters (a client's header is never trusted
/// to build a redirect target with).
fn is_plain_authority(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']' | b'_')
        })
        && host.parse::<http::uri::Authority>().is_ok()
}

/// Headers a CORS preflight may always ask for.
const CORS_SIMPLE_HEADERS: [&str; 6] = [
    "cache-control",
    "content-language",
    "content-type",
    "expires",
    "last-modified",
    "pragma",
];

/// oslo.middleware's CORS preflight: always 200; the `access-control-*` headers only when
/// origin, method and every requested header are allowed.
fn cors_preflight(
    cors: &crate::CorsConfig,
    origin: &str,
    headers: &HeaderMap,
    rid: &str,
) -> Response {
    let mut resp = StatusCode::OK.into_response();
    if let Ok(v) = HeaderValue::from_str(rid) {
        resp.headers_mut()
            .insert(HeaderName::from_static("openstack-request-id"), v.clone());
        resp.headers_mut()
            .insert(HeaderName::from_static("x-openstack-request-id"), v);
    }
    if !cors.allows_origin(origin) {
        return resp;
    }
    let method = header_str(headers, "access-control-request-method").unwrap_or("");
    if !cors.allow_methods.iter().any(|m| m == method) {
        return resp;
    }
    let requested: Vec<String> = header_str(headers, "access-control-request-headers")
        .unwrap_or("")
        .split(',')
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| !h.is_empty())
        .collect();
    let permitted = |h: &String| {
        CORS_SIMPLE_HEADERS.contains(&h.as_str())
            || cors.allow_headers.iter().any(|a| a.eq_ignore_ascii_case(h))
    };
    if !requested.iter().all(permitted) {
        return resp;
    }
    let h = resp.headers_mut();
    h.insert(VARY, HeaderValue::from_static("Origin"));
    if let Ok(v) = HeaderValue::from_str(origin) {
        h.insert("access-control-allow-origin", v);
    }
    if cors.allow_credentials {
        h.insert(
            "access-control-allow-credentials",
            HeaderValue::from_static("true"),
        );
    }
    if let Some(age) = cors.max_age {
        h.insert("access-control-max-age", HeaderValue::from(age));
    }
    if let Ok(v) = HeaderValue::from_str(method) {
        h.insert("access-control-allow-methods", v);
    }
    if !requested.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&requested.join(",")) {
            h.insert("access-control-allow-headers", v);
        }
    }
    resp
}

/// Renders error responses coming back from the router in Placement's shape.
fn finish(resp: Response, env: &ErrorEnv<'_>) -> Response {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let (parts, _body) = resp.into_parts();
    let (detail, code) = match parts.extensions.get::<ErrorMark>() {
        Some(m) => (m.detail.clone(), m.code),
        // A limit's answer (shed load, a deadline, a caught panic).
        None if parts.extensions.get::<Detail>().is_some() => (
            parts
                .extensions
                .get::<Detail>()
                .map(|d| d.0.to_string())
                .unwrap_or_default(),
            placement_types::ErrorCode::Undefined,
        ),
        None => {
            let detail = match status {
                StatusCode::METHOD_NOT_ALLOWED => {
                    "The method specified is not allowed for this resource.".to_string()
                }
                _ => String::new(),
            };
            (detail, placement_types::ErrorCode::Undefined)
        }
    };
    let mut out = render_error(status, &detail, code.as_str(), env);
    // The route that answered (`route_template`), for the access log and the HTTP metrics:
    // a 404 of a missing provider still came from `/resource_providers/{uuid}`.
    if let Some(matched) = parts.extensions.get::<axum::extract::MatchedPath>() {
        out.extensions_mut().insert(matched.clone());
    }
    for (name, value) in parts.headers.iter() {
        if name == CONTENT_TYPE || name == http::header::CONTENT_LENGTH {
            continue;
        }
        if name == ALLOW {
            // axum lists HEAD with GET and separates with ","; Placement lists the
            // declared methods separated by ", ".
            let methods: Vec<&str> = value
                .to_str()
                .unwrap_or("")
                .split(',')
                .map(str::trim)
                .filter(|m| !m.is_empty() && *m != Method::HEAD.as_str())
                .collect();
            if let Ok(v) = HeaderValue::from_str(&methods.join(", ")) {
                out.headers_mut().insert(ALLOW, v);
            }
            continue;
        }
        out.headers_mut().append(name.clone(), value.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hv(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn only_a_well_formed_req_uuid_is_a_global_request_id() {
        let global = |v: &'static str| global_request_id(&hv(&[("x-openstack-request-id", v)]));
        let good = "req-0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b";
        assert_eq!(global(good).as_deref(), Some(good));
        for bad in [
            "",
            "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b",
            "req-0F1E2D3C-4B5A-6978-8A9B-0C1D2E3F4A5B",
            "req-0f1e2d3c4b5a69788a9b0c1d2e3f4a5b",
            "req-0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b ",
            "req-0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5bx",
            "req-0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5g",
            "req-<script>",
        ] {
            assert_eq!(global(bad), None, "{bad:?}");
        }
        assert_eq!(global_request_id(&HeaderMap::new()), None);
    }

    /// Every answer, an error or a success, carries its [`RequestLog`]; the local id is the
    /// one answered, the caller's global id is kept but never echoed.
    #[tokio::test]
    async fn every_response_carries_its_request_log() {
        use tower::ServiceExt;
        let app = crate::router(
            Arc::new(crate::LocalBackend::new()),
            crate::ApiConfig::default(),
        );
        let global = "req-0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b";
        let call = |path: &str, token: Option<&str>| {
            let mut b = http::Request::get(path)
                .header("openstack-api-version", "placement 1.39")
                .header("x-openstack-request-id", global);
            if let Some(t) = token {
                b = b.header("x-auth-token", t);
            }
            b.body(Body::empty()).expect("request")
        };
        for (path, token, status, user) in [
            ("/resource_providers", Some("admin:p1"), 200, Some("admin")),
            (
                "/resource_providers/x",
                Some("admin:p1"),
                404,
                Some("admin"),
            ),
            ("/resource_providers", Some("alice:p1"), 403, Some("alice")),
            ("/resource_providers", None, 401, None),
            ("/", None, 200, None),
        ] {
            let resp = app
                .clone()
                .oneshot(call(path, token))
                .await
                .expect("infallible");
            assert_eq!(resp.status().as_u16(), status, "{path}");
            let log = resp
                .extensions()
                .get::<RequestLog>()
                .expect("a RequestLog in every response");
            assert_eq!(resp.headers()["openstack-request-id"], log.request_id);
            assert_ne!(log.request_id, global, "the local id is a new one");
            assert_eq!(log.global_request_id.as_deref(), Some(global));
            assert_eq!(log.user_id.as_deref(), user, "{path}");
            if user.is_some() {
                assert_eq!(log.project_id.as_deref(), Some("p1"));
            }
        }
    }

    #[test]
    fn versions_parse_like_microversion_parse() {
        let ok = |h: &[(&'static str, &'static str)]| match parse_version(&hv(h)) {
            Ok(v) => v.to_string(),
            Err(VersionError::Malformed(m)) => format!("400 {m}"),
            Err(VersionError::Unacceptable(m)) => format!("406 {m}"),
        };
        assert_eq!(ok(&[]), "1.0");
        assert_eq!(ok(&[("openstack-api-version", "placement latest")]), "1.39");
        assert_eq!(
            ok(&[("openstack-api-version", "compute 2.1, placement 1.5")]),
            "1.5"
        );
        assert_eq!(ok(&[("x-openstack-placement-api-version", "1.7")]), "1.7");
        assert_eq!(
            ok(&[("openstack-api-version", "placement 0.5")]),
            "406 Unacceptable version header: 0.5"
        );
        assert_eq!(
            ok(&[("openstack-api-version", "placement 1.2.3")]),
            "400 invalid version string: 1.2.3"
        );
        assert_eq!(
            ok(&[("openstack-api-version", "placement pony.horse")]),
            "400 invalid version string: pony.horse"
        );
        // The last value for placement wins, in one header or across repeated ones.
        assert_eq!(
            ok(&[
                ("openstack-api-version", "placement 1.5"),
                ("openstack-api-version", "placement 1.20")
            ]),
            "1.20"
        );
        assert_eq!(
            ok(&[("openstack-api-version", "placement 1.2, placement 1.3")]),
            "1.3"
        );
    }

    #[test]
    fn json_details_read_as_webob_strips_them() {
        let expl = "The server could not comply with the request since it is either malformed \
                    or otherwise incorrect.";
        assert_eq!(
            json_detail(expl, "No such resource class."),
            format!("{expl}\n\n No such resource class.  ")
        );
        // A multi-line schema error reads on one line.
        assert_eq!(
            json_detail(
                expl,
                "JSON does not validate: 'abc' is not a 'uuid'\n\nFailed validating"
            ),
            format!(
                "{expl}\n\n JSON does not validate: 'abc' is not a 'uuid'  Failed validating  "
            )
        );
        // Anything tag-like goes, as webob's strip_tags drops it.
        assert_eq!(
            json_detail(expl, "name <b>x</b>\r"),
            format!("{expl}\n\n name x  ")
        );
        // No detail at all (an unrouted path): the three spaces Placement sends.
        assert_eq!(json_detail(expl, ""), format!("{expl}\n\n   "));
    }

    #[test]
    fn location_parts_come_only_from_sane_headers() {
        let h = hv(&[("x-forwarded-proto", "javascript")]);
        assert_eq!(request_scheme(&h, false, true), "http");
        assert_eq!(request_scheme(&h, true, true), "https");
        let h = hv(&[("x-forwarded-proto", "HTTPS")]);
        assert_eq!(request_scheme(&h, false, true), "https");
        assert_eq!(request_scheme(&h, false, false), "http");
        for good in [
            "placement.example:8778",
            "127.0.0.1:8778",
            "[::1]:8778",
            "a_b",
        ] {
            assert!(is_plain_authority(good), "{good}");
        }
        for bad in ["evil.com/x?", "u@evil.com", "a b", "", "x\\y", "h\"q"] {
            assert!(!is_plain_authority(bad), "{bad}");
        }
    }

    #[test]
    fn content_lengths_are_checked_as_placement_does() {
        let check = |h: &[(&'static str, &'static str)]| {
            let headers = hv(h);
            content_length_error(&headers, header_str(&headers, "content-type")).unwrap_or("ok")
        };
        let json = ("content-type", "application/json");
        assert_eq!(check(&[]), "ok");
        assert_eq!(check(&[("content-length", "0")]), "ok");
        assert_eq!(check(&[("content-length", "12"), json]), "ok");
        assert_eq!(
            check(&[("content-length", "12")]),
            "content-type header required when content-length > 0"
        );
        assert_eq!(
            check(&[("content-length", "12"), ("content-type", "")]),
            "content-type header required when content-length > 0"
        );
        assert_eq!(
            check(&[("content-length", "hi mom"), json]),
            "content-length header must be an integer"
        );
        // What hyper would have refused arrives renamed: a 400 whatever the value, with or
        // without a content-length beside it.
        for h in [
            &[(RENAMED_CONTENT_LENGTH, "hi mom"), json][..],
            &[(RENAMED_CONTENT_LENGTH, "5"), json],
            &[(RENAMED_CONTENT_LENGTH, ""), ("content-length", "0")],
        ] {
            assert_eq!(
                check(h),
                "content-length header must be an integer",
                "{h:?}"
            );
        }
    }

    #[test]
    fn accept_matching() {
        assert!(accept_quality("*/*", "application/json") > 0.0);
        assert!(accept_quality("text/plain", "application/json") <= 0.0);
        assert!(
            accept_quality(
                "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
                "application/json"
            ) > 0.0
        );
        assert!(
            accept_quality(
                "text/html,application/xhtml+xml,application/xml;q=0.9",
                "application/json"
            ) <= 0.0
        );
        assert!(error_format(Some("*/*")) == ErrorFormat::Json);
        assert!(error_format(Some("text/html")) == ErrorFormat::Html);
    }
}
