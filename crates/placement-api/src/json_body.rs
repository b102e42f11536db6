//! Request bodies: JSON parsed and validated against a schema, with Placement's messages
//! (`util.extract_json`: `Malformed JSON: ...` or `JSON does not validate: ...`, 400).

use serde_json::Value;

use crate::error::ApiError;
use crate::schema;

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
