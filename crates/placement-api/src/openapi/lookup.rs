//! Reading the document back: which body schema applies to one answer of placementd.
//!
//! [`answers`] lists every (path, method, status) the document has, each with its
//! [`Documented`] bodies: the range of microversions the status exists at, the plain schema,
//! and the per-range schemas of `x-microversions`. [`Documented::schema_at`] picks the one
//! for a microversion; [`path_matches`] matches a concrete request path against a template.
//!
//! Only `application/json` bodies are read (errors' HTML and plain text are left out), and
//! only references into the document itself (`#/...`) are followed.

use percent_encoding::percent_decode_str;
use serde_json::Value;

use crate::context::Microversion;

/// A body schema that holds over an inclusive range of microversions.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    pub min: Microversion,
    pub max: Microversion,
    pub schema: Value,
}

/// What the document says of one status of one operation.
#[derive(Debug, Clone, PartialEq)]
pub struct Documented {
    /// The microversions the status exists at (`x-min-version`/`x-max-version`); `None`: at
    /// every one, including those outside the served range (a refused microversion).
    pub range: Option<(Microversion, Microversion)>,
    /// The plain JSON body schema (the `anyOf` of the variants); `None`: no JSON body.
    pub schema: Option<Value>,
    /// `x-microversions`, if the body depends on the microversion.
    pub variants: Vec<Variant>,
}

/// One documented answer: a status of an operation.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// Lower case, as OpenAPI's path items name methods (`get`, `head`, …).
    pub method: String,
    /// The path template (`/resource_providers/{uuid}`).
    pub path: String,
    pub status: u16,
    pub documented: Documented,
}

/// `1.23` → 1.23.
pub fn parse_version(s: &str) -> Option<Microversion> {
    let (major, minor) = s.split_once('.')?;
    Some(Microversion {
        major: major.parse().ok()?,
        minor: minor.parse().ok()?,
    })
}

/// A `#/...` reference's target in `document`.
pub fn resolve<'a>(document: &'a Value, reference: &str) -> Result<&'a Value, String> {
    reference
        .strip_prefix('#')
        .and_then(|pointer| document.pointer(pointer))
        .ok_or_else(|| format!("unresolved $ref {reference}"))
}

/// A value, or the target of its `$ref`.
fn followed<'a>(document: &'a Value, value: &'a Value) -> Result<&'a Value, String> {
    match value.get("$ref").and_then(Value::as_str) {
        Some(r) => resolve(document, r),
        None => Ok(value),
    }
}

fn version_field(object: &Value, key: &str) -> Result<Option<Microversion>, String> {
    match object.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_str()
            .and_then(parse_version)
            .map(Some)
            .ok_or_else(|| format!("{key} is not a microversion: {v}")),
    }
}

impl Documented {
    /// What a response object (or a `$ref` to one) documents.
    pub fn of_response(document: &Value, response: &Value) -> Result<Documented, String> {
        let response = followed(document, response)?;
        let min = version_field(response, "x-min-version")?;
        let max = version_field(response, "x-max-version")?;
        let range = match (min, max) {
            (None, None) => None,
            (min, max) => Some((
                min.unwrap_or(Microversion { major: 0, minor: 0 }),
                max.unwrap_or(Microversion {
                    major: u32::MAX,
                    minor: u32::MAX,
                }),
            )),
        };
        let Some(media) = response.pointer("/content/application~1json") else {
            return Ok(Documented {
                range,
                schema: None,
                variants: Vec::new(),
            });
        };
        let mut variants = Vec::new();
        for v in media
            .get("x-microversions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let (Some(min), Some(max)) = (version_field(v, "min")?, version_field(v, "max")?)
            else {
                return Err(format!("x-microversions entry without min/max: {v}"));
            };
            let schema = v
                .get("schema")
                .ok_or_else(|| format!("x-microversions entry without schema: {v}"))?;
            variants.push(Variant {
                min,
                max,
                schema: schema.clone(),
            });
        }
        Ok(Documented {
            range,
            schema: Some(
                media
                    .get("schema")
                    .cloned()
                    .ok_or("a media type without schema")?,
            ),
            variants,
        })
    }

    /// The body schema at `version`: `Ok(None)` for no body, `Err` when the status is not
    /// documented at that version. A version no variant covers (one outside the served
    /// range) gets the plain schema.
    pub fn schema_at(&self, version: Microversion) -> Result<Option<&Value>, String> {
        if let Some((min, max)) = self.range {
            if version < min || version > max {
                return Err(format!("documented only at {min}–{max}, not at {version}"));
            }
        }
        if self.schema.is_none() {
            return Ok(None);
        }
        Ok(self
            .variants
            .iter()
            .find(|v| v.min <= version && version <= v.max)
            .map(|v| &v.schema)
            .or(self.schema.as_ref()))
    }
}

/// Every documented answer of every operation, in the document's order.
pub fn answers(document: &Value) -> Result<Vec<Answer>, String> {
    let mut out = Vec::new();
    let paths = document
        .get("paths")
        .and_then(Value::as_object)
        .ok_or("no paths")?;
    for (path, item) in paths {
        for (method, op) in item.as_object().into_iter().flatten() {
            let Some(responses) = op.get("responses").and_then(Value::as_object) else {
                continue;
            };
            for (status, response) in responses {
                let status: u16 = status
                    .parse()
                    .map_err(|_| format!("{method} {path}: status {status} is not a number"))?;
                out.push(Answer {
                    method: method.clone(),
                    path: path.clone(),
                    status,
                    documented: Documented::of_response(document, response)
                        .map_err(|e| format!("{method} {path} {status}: {e}"))?,
                });
            }
        }
    }
    Ok(out)
}

/// Whether a request path (without query, possibly percent-encoded) matches a template:
/// the same number of segments, literal segments equal (after percent-decoding), every
/// `{parameter}` segment non-empty.
pub fn path_matches(template: &str, path: &str) -> bool {
    let t: Vec<&str> = template.split('/').collect();
    let p: Vec<&str> = path.split('/').collect();
    t.len() == p.len()
        && t.iter().zip(&p).all(|(t, p)| {
            if t.starts_with('{') && t.ends_with('}') {
                !p.is_empty()
            } else {
                *t == *p || percent_decode_str(p).decode_utf8_lossy() == *t
            }
        })
}

/// The templates of `document` that `path` matches, most literal segments first (so that a
/// literal route wins over a parameter one, as in axum's router).
pub fn matching_templates<'a>(document: &'a Value, path: &str) -> Vec<&'a str> {
    let mut found: Vec<&str> = document
        .get("paths")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|p| p.keys())
        .map(String::as_str)
        .filter(|t| path_matches(t, path))
        .collect();
    found.sort_by_key(|t| std::cmp::Reverse(t.split('/').filter(|s| !s.starts_with('{')).count()));
    found
}
