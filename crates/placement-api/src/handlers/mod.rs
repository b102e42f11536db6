//! One module per Placement resource; each exposes `routes<B: Backend>()`.
//!
//! Also the helpers every write handler shares for reading numbers as Placement does:
//! bodies are parsed with Python's numbers ([`extract_json`]), integers are taken as the
//! `i64` they saturate to ([`saturating_i64`]: a number beyond `i64` can only exceed a limit
//! in `apply`, as Python's unbounded int would), and generations as the `u32` they equal, if
//! any ([`generation_value`]): a number outside `u32` can never match a stored generation, so
//! its conflict is certain and decided here, never clamped into a generation that exists.

pub(crate) mod aggregates;
pub(crate) mod allocation_candidates;
pub(crate) mod allocations;
pub(crate) mod inventories;
pub(crate) mod providers;
pub(crate) mod reshaper;
pub(crate) mod resource_classes;
pub(crate) mod root;
pub(crate) mod traits;
pub(crate) mod usages;

use axum::Router;
use serde_json::Value;

use crate::error::ApiError;
use crate::schema::{self, Numbers};
use crate::{json_body, AppState, Backend};

/// Every route of the API.
pub(crate) fn routes<B: Backend>() -> Router<AppState<B>> {
    Router::new()
        .merge(root::routes::<B>())
        .merge(providers::routes::<B>())
        .merge(inventories::routes::<B>())
        .merge(resource_classes::routes::<B>())
        .merge(traits::routes::<B>())
        .merge(aggregates::routes::<B>())
        .merge(allocations::routes::<B>())
        .merge(usages::routes::<B>())
        .merge(reshaper::routes::<B>())
        .merge(allocation_candidates::routes::<B>())
}

/// A validated request body: the JSON value, and what Python reads for the numbers `Value`
/// cannot hold (for the messages that echo them).
pub(crate) struct Body {
    pub value: Value,
    pub numbers: Numbers,
}

/// Placement's `util.extract_json` (`Malformed JSON: …` / `JSON does not validate: …`, 400),
/// reading numbers as Python's `json.loads` does (see [`schema::python_numbers`]).
pub(crate) fn extract_json(raw: &[u8], schema_value: &Value) -> Result<Body, ApiError> {
    let (text, numbers) = schema::python_numbers(raw);
    // The parse and its error words; the schema is checked below, knowing the numbers.
    let value = json_body::extract_json(&text, &Value::Bool(true))?;
    schema::validate_numbers(schema_value, &value, &numbers)
        .map_err(|e| ApiError::bad_request(format!("JSON does not validate: {e}")))?;
    Ok(Body { value, numbers })
}

/// An integral number of a validated body (`1000` or `1e3`, as jsonschema's `integer` admits
/// both) as an `i64`, saturating beyond it. `None` for anything else.
pub(crate) fn saturating_i64(v: &Value) -> Option<i64> {
    let Value::Number(n) = v else {
        return None;
    };
    n.as_i64()
        .or_else(|| n.as_u64().map(|_| i64::MAX))
        .or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && f.fract() == 0.0)
                .map(|f| f as i64) // `as` saturates
        })
}

/// The generation a client's number equals under Python's `!=` (`1.0` equals 1), if it
/// equals one at all: a negative, fractional or larger-than-`u32` number equals none.
pub(crate) fn generation_value(v: &Value) -> Option<u32> {
    if let Some(u) = v.as_u64() {
        return u32::try_from(u).ok();
    }
    let f = v.as_f64().filter(|f| f.fract() == 0.0)?;
    (0.0..=f64::from(u32::MAX)).contains(&f).then_some(f as u32)
}

/// Whether a generation can travel in a command as sent: a plain integer that is a `u32`,
/// which `apply` then shows in its messages exactly as the client wrote it.
pub(crate) fn plain_generation(v: &Value) -> Option<u32> {
    v.as_u64().and_then(|u| u32::try_from(u).ok())
}

/// A generation a command cannot carry as sent (not a [`plain_generation`]): the handler
/// decides its conflict against the state, with Placement's `%s` of the number.
#[derive(Debug, Clone)]
pub(crate) struct SentGeneration {
    /// What it equals under Python's `!=` ([`generation_value`]).
    pub equals: Option<u32>,
    /// How Python shows it.
    pub text: String,
}

impl SentGeneration {
    /// `None` for a plain generation, which travels in the command.
    pub(crate) fn unless_plain(given: &Value, numbers: &Numbers) -> Option<Self> {
        plain_generation(given).is_none().then(|| SentGeneration {
            equals: generation_value(given),
            text: numbers.repr(given),
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn integers_saturate_and_generations_match_like_python() {
        let body = extract_json(b"[1, 1e3, 100000000000000000000, -1e30, 1.5]", &json!({}))
            .expect("valid JSON");
        let ints: Vec<Option<i64>> = body
            .value
            .as_array()
            .into_iter()
            .flatten()
            .map(saturating_i64)
            .collect();
        assert_eq!(
            ints,
            vec![Some(1), Some(1000), Some(i64::MAX), Some(i64::MIN), None]
        );
        let gens: Vec<Option<u32>> = [
            json!(7),
            json!(7.0),
            json!(-1),
            json!(4294967296_u64),
            json!(7.5),
        ]
        .iter()
        .map(generation_value)
        .collect();
        assert_eq!(gens, vec![Some(7), Some(7), None, None, None]);
        assert_eq!(plain_generation(&json!(7.0)), None);
        assert_eq!(plain_generation(&json!(4294967295_u64)), Some(u32::MAX));
    }
}
