//! Responses: JSON bodies with, from microversion 1.15, Placement's `cache-control: no-cache`
//! and `last-modified` (set on GETs and on most writes that return a body), empty answers
//! (204 and friends), and the clock that stamps commands and `last-modified`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::response::{IntoResponse, Response};
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, LAST_MODIFIED};
use http::StatusCode;
use placement_types::Timestamp;
use serde::Serialize;

use crate::context::Ctx;
use crate::error::ApiError;

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
