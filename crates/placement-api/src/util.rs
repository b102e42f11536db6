//! Helpers every handler uses: reading and validating JSON bodies, query strings, building
//! JSON responses with Placement's caching headers, and turning a [`Command`] into a
//! backend write.
//!
//! - [`extract_json`]: Placement's `util.extract_json` — `Malformed JSON: ...` or
//!   `JSON does not validate: ...` (400).
//! - [`QueryParams`]: the decoded query string (an extractor); [`QueryParams::validate`] is
//!   `util.validate_query_params` (`Invalid query string parameters: ...`).
//! - [`json_response`]: a JSON body plus, from microversion 1.15, `cache-control: no-cache`
//!   and `last-modified` when the handler passes a time (Placement sets them on GETs and on
//!   most writes that return a body).
//! - [`AppState::write`] / [`AppState::read`]: the write path (stamp a [`Request`] with the
//!   request id and the time, `backend.write`, map a rejection to its status) and the read
//!   path (`read_barrier`, then a closure over the [`State`]).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, LAST_MODIFIED};
use http::request::Parts;
use http::StatusCode;
use placement_core::State;
use placement_types::{Command, Origin, Outcome, Request, Timestamp};
use serde::Serialize;
use serde_json::Value;

use crate::backend::Backend;
use crate::context::Ctx;
use crate::error::ApiError;
use crate::schema;
use crate::AppState;

/// Parses a request body as JSON and validates it against a schema, with Placement's
/// messages.
pub fn extract_json(body: &[u8], schema_value: &Value) -> Result<Value, ApiError> {
    let data: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("Malformed JSON: {}", python_json_error(&e))))?;
    schema::validate(schema_value, &data)
        .map_err(|e| ApiError::bad_request(format!("JSON does not validate: {e}")))?;
    Ok(data)
}

/// An approximation of Python's `json` error text for a serde_json error.
fn python_json_error(e: &serde_json::Error) -> String {
    let what = match e.classify() {
        serde_json::error::Category::Eof if e.line() == 1 && e.column() == 0 => {
            "Expecting value".to_string()
        }
        _ => {
            let s = e.to_string();
            s.split(" at line ").next().unwrap_or(&s).to_string()
        }
    };
    format!("{what}: line {} column {}", e.line(), e.column().max(1))
}

/// The current time as a [`Timestamp`] (microseconds since the epoch).
pub fn now() -> Timestamp {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    Timestamp(d.as_micros() as i64)
}

/// An HTTP date for a [`Timestamp`]. Total: a time outside what an HTTP date can show
/// (before 1970, after the year 9999; `apply` never stores one, but a record written by an
/// older version might hold one) is shown as the nearest date that can be shown, because
/// `httpdate` panics on a five-digit year.
pub fn http_date(ts: Timestamp) -> String {
    let secs = ts.secs().clamp(0, Timestamp::MAX.secs());
    let t = UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs());
    httpdate::fmt_http_date(t)
}

/// A JSON response; with `last_modified` and microversion ≥ 1.15 it also carries
/// `last-modified` and `cache-control: no-cache`. The body is any `Serialize` (usually a
/// `Value`; hot paths serialize typed views instead), written compactly as
/// `Value::to_string` would.
pub fn json_response<T: Serialize + ?Sized>(
    ctx: &Ctx,
    status: StatusCode,
    body: &T,
    last_modified: Option<Timestamp>,
) -> Response {
    let bytes = match serde_json::to_vec(body) {
        Ok(b) => b,
        // Only a map with non-string keys could fail; none of the bodies has one.
        Err(e) => {
            return ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("response not serializable: {e}"),
            )
            .into_response()
        }
    };
    let mut resp = (status, bytes).into_response();
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(ts) = last_modified {
        if ctx.at_least(15) {
            add_cache_headers(&mut resp, ts);
        }
    }
    resp
}

/// Adds `last-modified` and `cache-control: no-cache` (callers check the microversion).
pub fn add_cache_headers(resp: &mut Response, ts: Timestamp) {
    let h = resp.headers_mut();
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&http_date(ts)) {
        h.insert(LAST_MODIFIED, v);
    }
}

/// A response with a status and no body (204 and friends).
pub fn empty(status: StatusCode) -> Response {
    status.into_response()
}

/// The decoded query string, in order, repeated keys kept.
#[derive(Debug, Clone, Default)]
pub struct QueryParams(pub Vec<(String, String)>);

impl QueryParams {
    pub fn parse(raw: Option<&str>) -> Self {
        QueryParams(
            raw.map(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default(),
        )
    }

    /// The last value of a key (what `dict(req.GET)` keeps).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a key, in order (`req.GET.getall`).
    pub fn get_all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn contains(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }

    /// `dict(req.GET)` as a JSON object (last value wins), for schema validation.
    pub fn as_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        for (k, v) in &self.0 {
            m.insert(k.clone(), Value::String(v.clone()));
        }
        Value::Object(m)
    }

    /// `util.validate_query_params`.
    pub fn validate(&self, schema_value: &Value) -> Result<(), ApiError> {
        schema::validate(schema_value, &self.as_json())
            .map_err(|e| ApiError::bad_request(format!("Invalid query string parameters: {e}")))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(QueryParams::parse(parts.uri.query()))
    }
}

impl<B: Backend> AppState<B> {
    /// Proposes one command, stamped with the request id and the current time, and waits
    /// for its result. A rejection becomes its HTTP error; an unavailable backend a 503.
    pub async fn write(&self, ctx: &Ctx, command: Command) -> Result<Outcome, ApiError> {
        let request = Request {
            id: ctx.request_id,
            at: now(),
            command,
        };
        let origin = ctx
            .caller
            .as_ref()
            .map(|c| Origin {
                user_id: c.user_id.clone(),
                project_id: c.project_id.clone(),
            })
            .unwrap_or_default();
        let result = self.backend.write(request, origin).await?;
        Ok(result?)
    }

    /// A linearizable read: waits for the read barrier, then runs `f` over a snapshot of
    /// the state (writes go on meanwhile).
    pub async fn read<R>(&self, f: impl FnOnce(&State) -> R) -> Result<R, ApiError> {
        self.backend.read_barrier().await?;
        Ok(f(&self.backend.state()))
    }

    /// [`Self::read`] for a read that costs real CPU (an allocation-candidates search and its
    /// serialization): `f` runs on a search thread (`read_pool.rs`), at a lower priority than
    /// the runtime's threads, so that however many such reads run, writes and small reads keep
    /// their CPU; holding only a snapshot, it never holds up the state machine either.
    pub async fn read_blocking<R: Send + 'static>(
        &self,
        f: impl FnOnce(&State) -> R + Send + 'static,
    ) -> Result<R, ApiError> {
        self.backend.read_barrier().await?;
        let state = self.backend.state();
        crate::read_pool::run(move || f(&state))
            .await
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "read task failed".to_string(),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_are_total() {
        assert_eq!(http_date(Timestamp(0)), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(Timestamp(-5)), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(Timestamp::MAX), "Fri, 31 Dec 9999 23:59:59 GMT");
        // A five-digit year made httpdate panic inside a handler.
        assert_eq!(
            http_date(Timestamp(i64::MAX)),
            "Fri, 31 Dec 9999 23:59:59 GMT"
        );
    }
}
