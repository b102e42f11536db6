//! A JSON-schema validator that answers in Python `jsonschema`'s words.
//!
//! Placement validates request bodies and query strings with `jsonschema` and puts
//! `str(ValidationError)` into its 400 responses; clients and Placement's own tests match on
//! those texts (`'beta' is not of type 'array'`, `Additional properties are not allowed ('x'
//! was unexpected)`, `Failed validating 'pattern'` ...). This module reproduces them for the
//! subset of JSON Schema Placement's schemas use: `type` (one or a list), `properties`,
//! `patternProperties`, `additionalProperties` (bool or schema), `required`, `minimum`,
//! `maximum`, `minLength`, `maxLength`, `pattern`, `enum`, `format: uuid`, `items`,
//! `minItems`, `maxItems`, `uniqueItems`, `minProperties`, `maxProperties`, `anyOf`, `oneOf`.
//!
//! Like `jsonschema.validate`, all errors are collected and the *best match* is reported
//! (shallowest instance path first; `anyOf`/`oneOf` are weak and descend into their most
//! relevant sub-error). Keywords are checked in the schema's own key order, so schemas must be
//! written with `serde_json::json!` in the same key order as Placement's Python dicts
//! (the workspace enables serde_json's `preserve_order`).
//!
//! Values in messages are rendered with Python's `repr` ([`py_repr`]): `'str'`, `True`,
//! `None`, `{'a': 1}`.
//!
//! Use [`validate`] (the full `str(ValidationError)`, what Placement wraps as `JSON does not
//! validate: ...` or `Invalid query string parameters: ...`), or [`crate::util::extract_json`]
//! for a request body.
//!
//! Left out: `$ref`, `const`, `not`, `allOf`, `dependencies` and formats other than `uuid`
//! (none used by Placement).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use regex::Regex;
use serde_json::Value;

/// Most distinct patterns [`compiled`] keeps. Placement's schemas, all written in this crate,
/// use a few dozen; the bound only makes sure the cache cannot grow without limit.
const MAX_CACHED_PATTERNS: usize = 256;

/// A schema pattern, compiled once per process (`None` if it does not compile). Shared, not
/// cloned: a cloned `Regex` would build its matching caches anew.
///
/// Schemas are built per request, but compiling a pattern costs far more than matching it:
/// the query schema of `GET /allocation_candidates` at 1.33+ has four patterns like
/// `^resources([a-zA-Z0-9_-]{1,64})?$`, each checked twice (`patternProperties` and
/// `additionalProperties`): compiling them took ~5 M instructions per request, more than the
/// search itself (`examples/candidates_http.rs`).
fn compiled(pattern: &str) -> Option<Arc<Regex>> {
    static CACHE: OnceLock<RwLock<HashMap<String, Option<Arc<Regex>>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(re) = cache.read().unwrap_or_else(|e| e.into_inner()).get(pattern) {
        return re.clone();
    }
    let re = Regex::new(pattern).ok().map(Arc::new);
    let mut w = cache.write().unwrap_or_else(|e| e.into_inner());
    if w.len() < MAX_CACHED_PATTERNS {
        w.insert(pattern.to_string(), re.clone());
    }
    re
}

/// One validation failure, as `jsonschema.ValidationError` holds it.
#[derive(Debug, Clone)]
pub struct SchemaError {
    pub message: String,
    /// The keyword that failed (`type`, `required` ...).
    pub validator: String,
    /// Path of keywords/keys from the root schema to the failing keyword.
    pub schema_path: Vec<Value>,
    /// Path of keys/indexes from the root instance to the failing value.
    pub path: Vec<Value>,
    /// The (sub)schema that holds the failing keyword.
    pub schema: Value,
    /// The failing value.
    pub instance: Value,
    /// Sub-errors of `anyOf` / `oneOf`.
    pub context: Vec<SchemaError>,
}

impl std::fmt::Display for SchemaError {
    /// `str(ValidationError)`: the message, then where it failed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut spath: Vec<Value> = self.schema_path.clone();
        spath.pop();
        write!(
            f,
            "{}\n\nFailed validating {} in {}:\n    {}\n\nOn {}:\n    {}",
            self.message,
            py_repr(&Value::String(self.validator.clone())),
            format_index("schema", &spath),
            py_repr(&self.schema),
            format_index("instance", &self.path),
            py_repr(&self.instance)
        )
    }
}

fn format_index(name: &str, path: &[Value]) -> String {
    let mut s = name.to_string();
    for p in path {
        s.push('[');
        s.push_str(&py_repr(p));
        s.push(']');
    }
    s
}

/// Validates `instance` against `schema`; on failure returns the best-matching error's full
/// text (`str(ValidationError)` in Python).
pub fn validate(schema: &Value, instance: &Value) -> Result<(), String> {
    match best_error(schema, instance) {
        None => Ok(()),
        Some(e) => Err(e.to_string()),
    }
}

/// The best-matching error (`jsonschema.exceptions.best_match`), if any.
pub fn best_error(schema: &Value, instance: &Value) -> Option<SchemaError> {
    let errors = iter_errors(schema, instance);
    let mut best: Option<SchemaError> = None;
    for e in errors {
        // max(): keep the first among equals.
        if best.as_ref().is_none_or(|b| relevance(&e) > relevance(b)) {
            best = Some(e);
        }
    }
    let mut best = best?;
    while !best.context.is_empty() {
        let mut ctx = std::mem::take(&mut best.context);
        // nsmallest(2) keeps the first among equals; stop if the two best tie.
        let mut order: Vec<usize> = (0..ctx.len()).collect();
        order.sort_by_key(|&i| relevance(&ctx[i]));
        if order.len() >= 2 && relevance(&ctx[order[0]]) == relevance(&ctx[order[1]]) {
            best.context = ctx;
            return Some(best);
        }
        best = ctx.swap_remove(order[0]);
    }
    Some(best)
}

/// `by_relevance()`: `(-len(path), not weak, strong, not matches_type)`.
fn relevance(e: &SchemaError) -> (i64, bool, bool, bool) {
    let weak = e.validator == "anyOf" || e.validator == "oneOf";
    (-(e.path.len() as i64), !weak, false, !matches_type(e))
}

fn matches_type(e: &SchemaError) -> bool {
    match e.schema.get("type") {
        Some(Value::String(t)) => is_type(&e.instance, t),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .any(|t| is_type(&e.instance, t)),
        _ => false,
    }
}

/// Every error of `instance` against `schema`, in jsonschema's order.
pub fn iter_errors(schema: &Value, instance: &Value) -> Vec<SchemaError> {
    let mut out = Vec::new();
    check(schema, instance, &mut out);
    out
}

fn is_type(v: &Value, t: &str) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        "number" => v.is_number(),
        "integer" => match v {
            Value::Number(n) => {
                n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
            }
            _ => false,
        },
        _ => false,
    }
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn py_len(s: &str) -> usize {
    s.chars().count()
}

/// uuidutils.is_uuid_like: any hex-32 form (dashes, braces, `urn:uuid:` optional).
pub fn is_uuid_like(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    let stripped = lower
        .trim_start_matches("urn:")
        .trim_start_matches("uuid:")
        .replace(['{', '}', '-'], "");
    stripped.len() == 32 && stripped.bytes().all(|b| b.is_ascii_hexdigit())
}

fn error(
    keyword: &str,
    message: String,
    schema: &Value,
    instance: &Value,
    context: Vec<SchemaError>,
) -> SchemaError {
    SchemaError {
        message,
        validator: keyword.to_string(),
        schema_path: vec![Value::String(keyword.to_string())],
        path: Vec::new(),
        schema: schema.clone(),
        instance: instance.clone(),
        context,
    }
}

/// Errors of a sub-instance, with their paths prefixed.
fn descend(
    schema: &Value,
    instance: &Value,
    path: Option<Value>,
    schema_path: &[Value],
    out: &mut Vec<SchemaError>,
) {
    let mut sub = Vec::new();
    check(schema, instance, &mut sub);
    for mut e in sub {
        if let Some(p) = &path {
            e.path.insert(0, p.clone());
        }
        for (i, s) in schema_path.iter().enumerate() {
            e.schema_path.insert(i, s.clone());
        }
        out.push(e);
    }
}

fn check(schema: &Value, instance: &Value, out: &mut Vec<SchemaError>) {
    let Some(obj) = schema.as_object() else {
        return;
    };
    for (kw, val) in obj {
        match kw.as_str() {
            "type" => {
                let types: Vec<&str> = match val {
                    Value::String(s) => vec![s.as_str()],
                    Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                    _ => continue,
                };
                if !types.iter().any(|t| is_type(instance, t)) {
                    let list = types
                        .iter()
                        .map(|t| py_repr(&Value::String((*t).to_string())))
                        .collect::<Vec<_>>()
                        .join(", ");
                    out.push(error(
                        kw,
                        format!("{} is not of type {}", py_repr(instance), list),
                        schema,
                        instance,
                        vec![],
                    ));
                }
            }
            "properties" => {
                let (Some(props), Some(inst)) = (val.as_object(), instance.as_object()) else {
                    continue;
                };
                for (name, sub) in props {
                    if let Some(v) = inst.get(name) {
                        descend(
                            sub,
                            v,
                            Some(Value::String(name.clone())),
                            &[Value::String(kw.clone()), Value::String(name.clone())],
                            out,
                        );
                    }
                }
            }
            "patternProperties" => {
                let (Some(pats), Some(inst)) = (val.as_object(), instance.as_object()) else {
                    continue;
                };
                for (pat, sub) in pats {
                    let Some(re) = compiled(pat) else { continue };
                    for (k, v) in inst {
                        if re.is_match(k) {
                            descend(
                                sub,
                                v,
                                Some(Value::String(k.clone())),
                                &[Value::String(kw.clone()), Value::String(pat.clone())],
                                out,
                            );
                        }
                    }
                }
            }
            "additionalProperties" => {
                let Some(inst) = instance.as_object() else {
                    continue;
                };
                let props = obj.get("properties").and_then(Value::as_object);
                let pats: Vec<(String, Option<Arc<Regex>>)> = obj
                    .get("patternProperties")
                    .and_then(Value::as_object)
                    .map(|p| p.keys().map(|k| (k.clone(), compiled(k))).collect())
                    .unwrap_or_default();
                let extras: Vec<&String> = inst
                    .keys()
                    .filter(|k| !props.is_some_and(|p| p.contains_key(*k)))
                    .filter(|k| {
                        !pats
                            .iter()
                            .any(|(_, re)| re.as_ref().is_some_and(|re| re.is_match(k)))
                    })
                    .collect();
                if val.is_object() {
                    for k in &extras {
                        if let Some(v) = inst.get(*k) {
                            descend(
                                val,
                                v,
                                Some(Value::String((*k).clone())),
                                &[Value::String(kw.clone())],
                                out,
                            );
                        }
                    }
                } else if val == &Value::Bool(false) && !extras.is_empty() {
                    let mut sorted: Vec<&String> = extras.clone();
                    sorted.sort();
                    let joined = sorted
                        .iter()
                        .map(|k| py_repr(&Value::String((*k).clone())))
                        .collect::<Vec<_>>()
                        .join(", ");
                    let msg = if obj.contains_key("patternProperties") {
                        let mut pnames: Vec<&String> = pats.iter().map(|(k, _)| k).collect();
                        pnames.sort();
                        let patterns = pnames
                            .iter()
                            .map(|k| py_repr(&Value::String((*k).clone())))
                            .collect::<Vec<_>>()
                            .join(", ");
                        let verb = if sorted.len() == 1 { "does" } else { "do" };
                        format!("{joined} {verb} not match any of the regexes: {patterns}")
                    } else {
                        let verb = if sorted.len() == 1 { "was" } else { "were" };
                        format!(
                            "Additional properties are not allowed ({joined} {verb} unexpected)"
                        )
                    };
                    out.push(error(kw, msg, schema, instance, vec![]));
                }
            }
            "required" => {
                let (Some(req), Some(inst)) = (val.as_array(), instance.as_object()) else {
                    continue;
                };
                for r in req {
                    if let Some(name) = r.as_str() {
                        if !inst.contains_key(name) {
                            out.push(error(
                                kw,
                                format!("{} is a required property", py_repr(r)),
                                schema,
                                instance,
                                vec![],
                            ));
                        }
                    }
                }
            }
            "minimum" | "maximum" => {
                let (Some(limit), Some(x)) = (num(val), num(instance)) else {
                    continue;
                };
                if instance.is_boolean() {
                    continue;
                }
                let (bad, word) = if kw == "minimum" {
                    (x < limit, "less than the minimum")
                } else {
                    (x > limit, "greater than the maximum")
                };
                if bad {
                    out.push(error(
                        kw,
                        format!("{} is {} of {}", py_repr(instance), word, py_repr(val)),
                        schema,
                        instance,
                        vec![],
                    ));
                }
            }
            "minLength" | "maxLength" => {
                let (Some(limit), Some(s)) = (val.as_u64(), instance.as_str()) else {
                    continue;
                };
                let n = py_len(s) as u64;
                if kw == "minLength" && n < limit {
                    let msg = format!("{} is too short", py_repr(instance));
                    out.push(error(kw, msg, schema, instance, vec![]));
                } else if kw == "maxLength" && n > limit {
                    let msg = format!("{} is too long", py_repr(instance));
                    out.push(error(kw, msg, schema, instance, vec![]));
                }
            }
            "minItems" | "maxItems" => {
                let (Some(limit), Some(a)) = (val.as_u64(), instance.as_array()) else {
                    continue;
                };
                let n = a.len() as u64;
                if kw == "minItems" && n < limit {
                    let msg = format!("{} is too short", py_repr(instance));
                    out.push(error(kw, msg, schema, instance, vec![]));
                } else if kw == "maxItems" && n > limit {
                    let msg = format!("{} is too long", py_repr(instance));
                    out.push(error(kw, msg, schema, instance, vec![]));
                }
            }
            "minProperties" | "maxProperties" => {
                let (Some(limit), Some(o)) = (val.as_u64(), instance.as_object()) else {
                    continue;
                };
                let n = o.len() as u64;
                if kw == "minProperties" && n < limit {
                    let msg = format!("{} does not have enough properties", py_repr(instance));
                    out.push(error(kw, msg, schema, instance, vec![]));
                } else if kw == "maxProperties" && n > limit {
                    let msg = format!("{} has too many properties", py_repr(instance));
                    out.push(error(kw, msg, schema, instance, vec![]));
                }
            }
            "pattern" => {
                let (Some(p), Some(s)) = (val.as_str(), instance.as_str()) else {
                    continue;
                };
                if let Some(re) = compiled(p) {
                    if !re.is_match(s) {
                        out.push(error(
                            kw,
                            format!("{} does not match {}", py_repr(instance), py_repr(val)),
                            schema,
                            instance,
                            vec![],
                        ));
                    }
                }
            }
            "enum" => {
                let Some(options) = val.as_array() else {
                    continue;
                };
                if !options.iter().any(|o| json_eq(o, instance)) {
                    out.push(error(
                        kw,
                        format!("{} is not one of {}", py_repr(instance), py_repr(val)),
                        schema,
                        instance,
                        vec![],
                    ));
                }
            }
            "format" => {
                if let (Some("uuid"), Some(s)) = (val.as_str(), instance.as_str()) {
                    if !is_uuid_like(s) {
                        out.push(error(
                            kw,
                            format!("{} is not a {}", py_repr(instance), py_repr(val)),
                            schema,
                            instance,
                            vec![],
                        ));
                    }
                }
            }
            "items" => {
                let Some(a) = instance.as_array() else {
                    continue;
                };
                if val.is_object() {
                    for (i, item) in a.iter().enumerate() {
                        descend(
                            val,
                            item,
                            Some(Value::from(i)),
                            &[Value::String(kw.clone())],
                            out,
                        );
                    }
                }
            }
            "uniqueItems" => {
                let Some(a) = instance.as_array() else {
                    continue;
                };
                if val == &Value::Bool(true) {
                    let dup = a
                        .iter()
                        .enumerate()
                        .any(|(i, x)| a[i + 1..].iter().any(|y| json_eq(x, y)));
                    if dup {
                        out.push(error(
                            kw,
                            format!("{} has non-unique elements", py_repr(instance)),
                            schema,
                            instance,
                            vec![],
                        ));
                    }
                }
            }
            "anyOf" | "oneOf" => {
                let Some(subs) = val.as_array() else {
                    continue;
                };
                let mut context = Vec::new();
                let mut valid = Vec::new();
                for (i, sub) in subs.iter().enumerate() {
                    let mut errs = Vec::new();
                    descend(
                        sub,
                        instance,
                        None,
                        &[Value::String(kw.clone()), Value::from(i)],
                        &mut errs,
                    );
                    if errs.is_empty() {
                        valid.push(i);
                        if kw == "anyOf" {
                            break;
                        }
                    }
                    context.extend(errs);
                }
                // Context errors' schema paths are relative to the anyOf/oneOf list.
                for e in &mut context {
                    e.schema_path.remove(0);
                }
                if valid.is_empty() {
                    out.push(error(
                        kw,
                        format!(
                            "{} is not valid under any of the given schemas",
                            py_repr(instance)
                        ),
                        schema,
                        instance,
                        context,
                    ));
                } else if kw == "oneOf" && valid.len() > 1 {
                    let reprs = valid
                        .iter()
                        .map(|i| py_repr(&subs[*i]))
                        .collect::<Vec<_>>()
                        .join(", ");
                    out.push(error(
                        kw,
                        format!("{} is valid under each of {}", py_repr(instance), reprs),
                        schema,
                        instance,
                        vec![],
                    ));
                }
            }
            _ => {}
        }
    }
}

/// JSON equality with Python's `1 == 1.0`.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// Python's `repr` of the value `json.loads` would have produced.
pub fn py_repr(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => {
            if n.is_i64() || n.is_u64() {
                n.to_string()
            } else {
                py_float(n.as_f64().unwrap_or(0.0))
            }
        }
        Value::String(s) => py_str(s),
        Value::Array(a) => format!("[{}]", a.iter().map(py_repr).collect::<Vec<_>>().join(", ")),
        Value::Object(o) => format!(
            "{{{}}}",
            o.iter()
                .map(|(k, v)| format!("{}: {}", py_str(k), py_repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn py_float(f: f64) -> String {
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if f.is_nan() {
        return "nan".into();
    }
    let a = f.abs();
    if a != 0.0 && !(1e-4..1e16).contains(&a) {
        // Python: 1e+16, 1.5e-05
        let s = format!("{f:e}");
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        let exp: i32 = e.parse().unwrap_or(0);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{m}e{sign}{:02}", exp.abs());
    }
    let s = format!("{f:?}");
    if s.contains('.') || s.contains('e') {
        s
    } else {
        format!("{s}.0")
    }
}

/// Python's `repr` of a `str`.
pub fn py_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn first_line(schema: &Value, inst: &Value) -> String {
        validate(schema, inst)
            .err()
            .map(|e| e.lines().next().unwrap_or("").to_string())
            .unwrap_or_default()
    }

    #[test]
    fn messages_match_python() {
        let s = json!({"type": "object", "properties": {"mappings": {"type": "array"}}});
        assert_eq!(
            first_line(&s, &json!({"mappings": "beta"})),
            "'beta' is not of type 'array'"
        );
        let s = json!({"type": "object", "properties": {"a": {"type": "string"}},
                       "required": ["a"], "additionalProperties": false});
        assert_eq!(first_line(&s, &json!({})), "'a' is a required property");
        assert_eq!(
            first_line(&s, &json!({"a": "x", "z": 1, "b": 2})),
            "Additional properties are not allowed ('b', 'z' were unexpected)"
        );
        let s = json!({"type": "object", "patternProperties": {"^[A-Z]+$": {}},
                       "additionalProperties": false});
        assert_eq!(
            first_line(&s, &json!({"x": 1})),
            "'x' does not match any of the regexes: '^[A-Z]+$'"
        );
        let s = json!({"type": "integer", "minimum": 1});
        assert_eq!(first_line(&s, &json!(0)), "0 is less than the minimum of 1");
        assert_eq!(
            first_line(&s, &json!(true)),
            "True is not of type 'integer'"
        );
        assert_eq!(first_line(&s, &json!(1.0)), "");
        let s = json!({"type": ["string", "null"], "format": "uuid"});
        assert_eq!(first_line(&s, &json!("x")), "'x' is not a 'uuid'");
        assert_eq!(first_line(&s, &json!(null)), "");
        assert_eq!(
            first_line(&json!({"type": "string"}), &json!({"a": [1, null, 1.5]})),
            "{'a': [1, None, 1.5]} is not of type 'string'"
        );
    }

    #[test]
    fn full_text_names_the_keyword() {
        let s = json!({"type": "object", "properties": {"limit": {"type": "string", "pattern": "^[1-9][0-9]*$"}}});
        let e = validate(&s, &json!({"limit": "0"})).expect_err("pattern fails");
        assert!(
            e.contains("Failed validating 'pattern' in schema['properties']['limit']"),
            "{e}"
        );
        assert!(e.contains("On instance['limit']"), "{e}");
    }

    #[test]
    fn repr_of_strings() {
        assert_eq!(py_str("it's"), "\"it's\"");
        assert_eq!(py_str("a\nb"), "'a\\nb'");
    }
}
