//! One operation of a sequence: a request written with symbolic names, so that the same
//! sequence can be replayed (while shrinking) against fresh names, and printed readably.
//!
//! Names in paths, query strings, JSON strings and JSON keys:
//!
//! - `{rp3}`, `{c2}`, `{agg1}`, `{proj0}`, `{user1}`: a provider, consumer, aggregate,
//!   project or user of the run ([`crate::names::Names`] makes them concrete);
//! - a JSON string that is exactly `{gen:rp3}` or `{cgen:c2}`: the provider's or the
//!   consumer's current generation, read from the reference server just before the request
//!   is sent (a consumer without allocations has `null`).

use std::fmt;

use serde_json::Value;

/// A request body.
#[derive(Debug, Clone)]
pub enum Body {
    /// JSON, with symbolic names.
    Json(Value),
    /// Bytes sent as they are (malformed JSON and the like).
    Raw(String),
}

/// How answers to an operation are compared beyond status and headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    /// The normalized JSON bodies are equal.
    Body,
    /// `allocation_candidates` with a `limit`: which candidates come first is each server's
    /// own order, so only the number of candidates is compared (the same query without the
    /// limit follows it in the sequence and is compared whole).
    CandidateCount,
}

/// One request of a sequence.
#[derive(Debug, Clone)]
pub struct Op {
    /// What kind of operation (for statistics): `providers.create`, ...
    pub kind: &'static str,
    pub method: &'static str,
    /// Path and query string, with symbolic names.
    pub path: String,
    /// The `openstack-api-version` header's version (`1.39`, `latest`, `abc`), if sent.
    pub version: Option<String>,
    pub body: Option<Body>,
    /// `content-type` of the body; `application/json` when `None` and there is a body.
    pub content_type: Option<&'static str>,
    pub compare: Compare,
}

impl Op {
    /// A request without a body at `version`.
    pub fn new(kind: &'static str, method: &'static str, path: String, version: &str) -> Op {
        Op {
            kind,
            method,
            path,
            version: Some(version.to_string()),
            body: None,
            content_type: None,
            compare: Compare::Body,
        }
    }

    /// The same request with a JSON body.
    pub fn json(mut self, body: Value) -> Op {
        self.body = Some(Body::Json(body));
        self
    }

    /// The path without its query string.
    pub fn path_only(&self) -> &str {
        self.path.split('?').next().unwrap_or(&self.path)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.path)?;
        if let Some(v) = &self.version {
            write!(f, "  [placement {v}]")?;
        }
        if let Some(ct) = self.content_type {
            write!(f, "  [content-type: {ct}]")?;
        }
        match &self.body {
            None => Ok(()),
            Some(Body::Json(v)) => write!(f, "  {v}"),
            Some(Body::Raw(s)) => write!(f, "  raw {s:?}"),
        }
    }
}
