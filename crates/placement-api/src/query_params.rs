//! The decoded query string ([`QueryParams`], an extractor), in order with repeated keys
//! kept, and [`QueryParams::validate`] (`util.validate_query_params`: `Invalid query string
//! parameters: ...`). The structured parameters are parsed by `qs.rs`.

use axum::extract::FromRequestParts;
use http::request::Parts;
use serde_json::Value;

use crate::error::ApiError;
use crate::schema;

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
