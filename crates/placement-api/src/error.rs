//! API errors and their rendering in Placement's shape.
//!
//! Handlers return [`ApiError`]: an HTTP status, Placement's message (`detail`) and an
//! [`ErrorCode`]. Turning it into a response only *marks* the response (an [`ErrorMark`]
//! extension); the request middleware in [`crate::context`] renders the final body, because
//! only it knows the request's microversion (`code` appears from 1.23), its request id and its
//! `Accept` header (webob answers `text/html` or `text/plain` when the client prefers them).
//! The same middleware renders axum's own rejections (unknown path, wrong method, body too
//! large), so every error leaves the service in one shape:
//!
//! ```json
//! {"errors": [{"status": 404, "title": "Not Found", "detail": "...", "code": "...", "request_id": "req-..."}]}
//! ```
//!
//! `detail` reproduces webob's text: the status' standard explanation, a blank line, then the
//! handler's message (Placement's gabbits match on substrings of it).
//!
//! The status is chosen here and only here: [`DomainError`] kinds map to 400/404/409,
//! [`BackendError`] to 503.

use axum::response::{IntoResponse, Response};
use http::{HeaderName, HeaderValue, StatusCode};
use placement_types::{DomainError, ErrorCode, ErrorKind};

use crate::backend::BackendError;

/// An error response a handler (or the middleware) wants to send.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    /// Placement's message for this error (without webob's standard explanation).
    pub detail: String,
    pub code: ErrorCode,
    /// Extra response headers (e.g. `allow` on a 405).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Whether Placement raises this error past its microversion middleware instead of
    /// returning it from the handler: the answer then has no `vary` (see [`ApiError::raised`]).
    pub raised: bool,
}

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            detail: detail.into(),
            code: ErrorCode::Undefined,
            headers: Vec::new(),
            raised: false,
        }
    }
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }
    pub fn conflict(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, detail).with_code(code)
    }
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, detail)
    }
    pub fn with_code(mut self, code: ErrorCode) -> Self {
        self.code = code;
        self
    }
    /// An error Placement raises outside its handlers' `wsgify` (a policy refusal, a lookup
    /// whose `NotFound` the handler leaves uncaught, a path no route serves): it passes its
    /// microversion middleware as an exception, which gets `openstack-api-version` but no
    /// `vary`. Errors a handler raises as webob exceptions are *returned* by `wsgify` and
    /// get both.
    pub fn raised(mut self) -> Self {
        self.raised = true;
        self
    }
    /// [`ApiError::raised`] if it is a 404: for handlers whose Placement original leaves a
    /// lookup's `NotFound` uncaught.
    pub fn raised_if_not_found(self) -> Self {
        if self.status == StatusCode::NOT_FOUND {
            self.raised()
        } else {
            self
        }
    }
    /// The 406 `check_accept` raises when the client does not accept JSON.
    pub fn not_acceptable_json() -> Self {
        Self::new(
            StatusCode::NOT_ACCEPTABLE,
            "Only application/json is provided",
        )
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        let status = match e.kind {
            ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
        };
        ApiError::new(status, e.detail).with_code(e.code)
    }
}

impl From<BackendError> for ApiError {
    fn from(e: BackendError) -> Self {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
    }
}

/// Attached to a response produced from an [`ApiError`]; the middleware renders the body.
#[derive(Debug, Clone)]
pub(crate) struct ErrorMark {
    pub detail: String,
    pub code: ErrorCode,
    /// [`ApiError::raised`].
    pub raised: bool,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = self.status.into_response();
        for (k, v) in self.headers {
            resp.headers_mut().insert(k, v);
        }
        resp.extensions_mut().insert(ErrorMark {
            detail: self.detail,
            code: self.code,
            raised: self.raised,
        });
        resp
    }
}

/// webob's title for a status.
pub(crate) fn title(status: StatusCode) -> &'static str {
    match status.as_u16() {
        413 => "Request Entity Too Large",
        s => StatusCode::from_u16(s)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Error"),
    }
}

/// webob's standard explanation for a status, with its `${...}` substitutions done.
pub(crate) fn explanation(status: StatusCode, method: &str, accept: &str, ctype: &str) -> String {
    match status.as_u16() {
        400 => "The server could not comply with the request since it is either malformed or \
                otherwise incorrect."
            .into(),
        401 => "This server could not verify that you are authorized to access the document you \
                requested.  Either you supplied the wrong credentials (e.g., bad password), or \
                your browser does not understand how to supply the credentials required."
            .into(),
        403 => "Access was denied to this resource.".into(),
        404 => "The resource could not be found.".into(),
        405 => format!("The method {method} is not allowed for this resource."),
        406 => format!(
            "The resource could not be generated that was acceptable to your browser (content \
             of type {accept}."
        ),
        409 => "There was a conflict when trying to complete your request.".into(),
        413 => "The request is larger than the server is willing or able to process.".into(),
        415 => format!("The request media type {ctype} is not supported by this server."),
        503 => "The server is currently unavailable. Please try again at a later time.".into(),
        _ => "The server has either erred or is incapable of performing the requested \
              operation."
            .into(),
    }
}
