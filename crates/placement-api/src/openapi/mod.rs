//! The OpenAPI 3.1 document of the whole API as placementd serves it, answered at
//! `GET /openapi.json` (no token needed, like `GET /`).
//!
//! # Built from the code, so it cannot drift
//!
//! - **Operations** are one table ([`operations`]): path, method, the microversion it starts
//!   at, its answers. A test reads every `.route("…", …)` of [`crate::handlers`] and checks
//!   that the table has exactly those paths and methods, both ways.
//! - **Request bodies and query parameters** are not written here: the builder calls the
//!   very functions and statics the handlers validate with (`providers::post_schema`,
//!   `allocations::put_body_schema`, `allocation_candidates::query_schema`, …) at every
//!   microversion 1.0–1.39 and merges neighbours that are equal into ranges.
//! - **Response bodies** are written in [`schemas`] (the handlers build theirs with `json!`
//!   and typed serializers, not from a schema). Tests check them against the api-ref
//!   samples and against every answer the router gives for a scenario run at every
//!   microversion.
//!
//! # Microversions in the document
//!
//! - `x-min-version` on an operation: it exists from that microversion; below it the path
//!   answers 404 (405 for `DELETE /resource_providers/{uuid}/inventories` before 1.5).
//! - `x-min-version` / `x-max-version` on a response or a query parameter: it exists only in
//!   that inclusive range; without them, at every microversion.
//! - `x-microversions` on a media type (or a parameter): `[{min, max, schema}]` over
//!   disjoint inclusive ranges; the body at a microversion follows the entry whose range
//!   holds it. The media type's plain `schema` is the `anyOf` of the entries, for tools that
//!   know nothing of microversions (`anyOf`, not `oneOf`: neighbouring versions' shapes
//!   overlap, e.g. an empty list is valid under all of them).
//!
//! [`lookup`] reads those back: which schema applies to one answer (the differential tester
//! and this crate's tests use it).
//!
//! # Left out
//!
//! - Response headers are documented, not constrained by version (`Last-Modified` and
//!   `Cache-Control` appear from 1.15 on the answers that carry a time).
//! - CORS preflights (`OPTIONS`, when `[cors]` is configured) and the admin API (another
//!   port).
//! - Error bodies in `text/html` / `text/plain` (webob's, when `Accept` prefers them) are
//!   documented as strings.

mod build;
pub mod lookup;
mod operations;
mod schemas;
#[cfg(test)]
mod tests;

use std::sync::LazyLock;

use bytes::Bytes;
use serde_json::Value;

/// A minor version of microversion 1.x (every Placement microversion is one).
pub(crate) type Minor = u32;

static DOCUMENT: LazyLock<Value> = LazyLock::new(build::document);

static DOCUMENT_BYTES: LazyLock<Bytes> = LazyLock::new(|| {
    Bytes::from(
        serde_json::to_vec(&*DOCUMENT)
            .expect("a serde_json::Value with string keys always serializes"),
    )
});

/// The OpenAPI 3.1 document (built once per process).
pub fn document() -> Value {
    DOCUMENT.clone()
}

/// The document as compact JSON, as `GET /openapi.json` sends it (built once per process).
pub fn document_bytes() -> Bytes {
    DOCUMENT_BYTES.clone()
}
