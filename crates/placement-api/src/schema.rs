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
//! (shallowest instance path first, then the greatest path: the last bad item of an array;
//! `anyOf`/`oneOf` are weak and descend into their most relevant sub-error). Messages are
//! jsonschema 4.26's (`'' should be non-empty` where older releases said `is too short`). Keywords are checked in the schema's own key order, so schemas must be
//! written with `serde_json::json!` in the same key order as Placement's Python dicts
//! (the workspace enables serde_json's `preserve_order`).
//!
//! Values in messages are rendered with Python's `repr` ([`py_repr`]): `'str'`, `True`,
//! `None`, `{'a': 1}`; the schema and the instance under `Failed validating` / `On instance`
//! with `pprint.pformat(width=72)`, which breaks long dicts, lists and strings over lines.
//!
//! **Numbers as Python reads them.** `json.loads` keeps an integer of any size exact and
//! reads a float literal beyond `f64` (`1e400`) as `inf`; `serde_json::Value` turns the first
//! into an `f64` (`100000000000000000000` would show as `1e+20`) and refuses the second. A
//! body parsed with [`python_numbers`] first records such literals in [`Numbers`], which the
//! validator ([`validate_numbers`]) and the handlers ask for a number's Python value and repr,
//! so `100000000000000000000 is greater than the maximum of 2147483647` and `inf is not of
//! type 'integer'` read as Placement's do.
//!
//! Use [`validate`] (the full `str(ValidationError)`, what Placement wraps as `JSON does not
//! validate: ...` or `Invalid query string parameters: ...`), or the handlers'
//! `extract_json` for a request body (which parses with [`python_numbers`]).
//!
//! Left out: `$ref`, `const`, `not`, `allOf`, `dependencies` and formats other than `uuid`
//! (none used by Placement); Python's `NaN` / `Infinity` literals, which `json.loads` accepts
//! and no client sends (they are malformed JSON here).

use std::borrow::Cow;
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

impl SchemaError {
    /// `str(ValidationError)`: the message, then where it failed, the schema and instance
    /// pretty-printed and indented by four spaces (jsonschema's `_pretty` and `dedent`).
    pub fn render(&self, numbers: &Numbers) -> String {
        let mut spath: Vec<Value> = self.schema_path.clone();
        spath.pop();
        let indented = |v: &Value| pformat(v, numbers).replace('\n', "\n    ");
        format!(
            "{}\n\nFailed validating {} in {}:\n    {}\n\nOn {}:\n    {}",
            self.message,
            py_repr(&Value::String(self.validator.clone())),
            format_index("schema", &spath),
            indented(&self.schema),
            format_index("instance", &self.path),
            indented(&self.instance)
        )
    }
}

impl std::fmt::Display for SchemaError {
    /// `str(ValidationError)` of a value parsed without [`python_numbers`].
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render(&Numbers::default()))
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
    validate_numbers(schema, instance, &Numbers::default())
}

/// [`validate`] for a body parsed with [`python_numbers`], whose numbers `Value` cannot hold
/// are read (and shown) as Python reads them.
pub fn validate_numbers(schema: &Value, instance: &Value, numbers: &Numbers) -> Result<(), String> {
    match best_error(schema, instance, numbers) {
        None => Ok(()),
        Some(e) => Err(e.render(numbers)),
    }
}

/// The best-matching error (`jsonschema.exceptions.best_match`), if any.
pub fn best_error(schema: &Value, instance: &Value, numbers: &Numbers) -> Option<SchemaError> {
    let errors = iter_errors(schema, instance, numbers);
    let mut best: Option<SchemaError> = None;
    for e in errors {
        // max(): keep the first among equals.
        if best
            .as_ref()
            .is_none_or(|b| relevance(&e, numbers) > relevance(b, numbers))
        {
            best = Some(e);
        }
    }
    let mut best = best?;
    while !best.context.is_empty() {
        let mut ctx = std::mem::take(&mut best.context);
        // nsmallest(2) keeps the first among equals; stop if the two best tie.
        let mut order: Vec<usize> = (0..ctx.len()).collect();
        order.sort_by(|&i, &j| relevance(&ctx[i], numbers).cmp(&relevance(&ctx[j], numbers)));
        if order.len() >= 2
            && relevance(&ctx[order[0]], numbers) == relevance(&ctx[order[1]], numbers)
        {
            best.context = ctx;
            return Some(best);
        }
        best = ctx.swap_remove(order[0]);
    }
    Some(best)
}

/// One step of an instance path as Python compares it: an index as a number, a key as a
/// string (by code point, which is the order of UTF-8 bytes). Paths compared are of one
/// length, and where they first differ they have the same parent, so an index never meets a
/// key (Python would raise `TypeError`).
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Step<'a> {
    Index(u64),
    Key(&'a str),
}

/// `by_relevance()`'s key: `(-len(path), path, not weak, strong, not matches_type)`.
///
/// The path counts (jsonschema 4.26, Placement 16.0's): among errors equally deep, `max`
/// takes the one with the greatest path, so of several bad items of an array the *last*
/// is reported (`['a', 'b', 'c']` as aggregates names `'c'`), and of several bad properties
/// of an object the one whose key sorts last (`total` before `reserved` and `max_unit`),
/// whatever their order in the body. Errors at one path keep jsonschema's order (the first
/// wins), which follows the schema's keywords.
type Relevance<'a> = (i64, Vec<Step<'a>>, bool, bool, bool);

fn relevance<'a>(e: &'a SchemaError, numbers: &Numbers) -> Relevance<'a> {
    let weak = e.validator == "anyOf" || e.validator == "oneOf";
    let path = e
        .path
        .iter()
        .map(|p| match p {
            Value::Number(n) => Step::Index(n.as_u64().unwrap_or(0)),
            Value::String(k) => Step::Key(k.as_str()),
            _ => Step::Key(""),
        })
        .collect();
    (
        -(e.path.len() as i64),
        path,
        !weak,
        false,
        !matches_type(e, numbers),
    )
}

fn matches_type(e: &SchemaError, numbers: &Numbers) -> bool {
    match e.schema.get("type") {
        Some(Value::String(t)) => numbers.is_type(&e.instance, t),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .any(|t| numbers.is_type(&e.instance, t)),
        _ => false,
    }
}

/// Every error of `instance` against `schema`, in jsonschema's order.
pub fn iter_errors(schema: &Value, instance: &Value, numbers: &Numbers) -> Vec<SchemaError> {
    let mut out = Vec::new();
    check(numbers, schema, instance, &mut out);
    out
}

// ---- Numbers as Python reads them ------------------------------------------------------------

/// What Python's `json.loads` makes of the numbers of a body that `serde_json::Value` cannot
/// hold, recorded by [`python_numbers`] (the module doc explains why):
/// - an integer beyond `i64`/`u64`: Python keeps it exact; the `Value` holds its nearest
///   `f64` (clamped to `±f64::MAX` when the literal is even beyond that), and this records the
///   literal's digits for that `f64`;
/// - a float literal beyond `f64` (`1e400`): Python reads `±inf`; the body is given to
///   serde_json with the stand-in [`INF_STAND_IN`] (or its negation) in its place.
///
/// Values are the `f64`s serde_json itself makes of the literals (its rounding of a long
/// literal may differ from `str::parse`'s). The lookup is by value: a body that also holds
/// the very `f64` of such a literal as an ordinary number (`1e20` next to
/// `100000000000000000000`) shows both the same way.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Numbers {
    /// (bits of the `f64` in the `Value`, the integer literal).
    big_ints: Vec<(u64, String)>,
    /// Whether the stand-in / its negation stand for `inf` / `-inf` in this body.
    pos_inf: bool,
    neg_inf: bool,
}

/// The literal an overflowing float literal is replaced with: short enough (5 characters;
/// the shortest literal beyond `f64` is `1e309`) to be padded to the literal's length, so
/// that positions in parse errors do not move.
pub const INF_STAND_IN: &str = "1e308";

/// The `f64` serde_json makes of a number literal.
fn serde_f64(literal: &str) -> Option<f64> {
    serde_json::from_str::<f64>(literal).ok()
}

fn inf_stand_in() -> f64 {
    serde_f64(INF_STAND_IN).unwrap_or(f64::MAX)
}

impl Numbers {
    fn big_int(&self, f: f64) -> Option<&str> {
        let bits = f.to_bits();
        self.big_ints
            .iter()
            .find(|(b, _)| *b == bits)
            .map(|(_, s)| s.as_str())
    }

    /// The value Python holds as a float (`inf` for a stand-in), `None` for a non-number.
    pub fn float(&self, v: &Value) -> Option<f64> {
        let f = v.as_f64()?;
        Some(if self.pos_inf && f == inf_stand_in() {
            f64::INFINITY
        } else if self.neg_inf && f == -inf_stand_in() {
            f64::NEG_INFINITY
        } else {
            f
        })
    }

    /// jsonschema's `integer` (draft 4+): an `int`, or a `float` with an integral value.
    fn is_integer(&self, v: &Value) -> bool {
        match v {
            Value::Number(n) if n.is_i64() || n.is_u64() => true,
            Value::Number(_) => self
                .float(v)
                .is_some_and(|f| f.is_finite() && f.fract() == 0.0),
            _ => false,
        }
    }

    fn is_type(&self, v: &Value, t: &str) -> bool {
        match t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "boolean" => v.is_boolean(),
            "null" => v.is_null(),
            "number" => v.is_number(),
            "integer" => self.is_integer(v),
            _ => false,
        }
    }

    /// Python's `repr` (and `str`) of the value `json.loads` produced for `v`.
    pub fn repr(&self, v: &Value) -> String {
        match v {
            Value::Number(n) if !(n.is_i64() || n.is_u64()) => {
                let f = n.as_f64().unwrap_or(0.0);
                match self.big_int(f) {
                    Some(digits) => digits.to_string(),
                    None => py_float(self.float(v).unwrap_or(f)),
                }
            }
            Value::Array(a) => format!(
                "[{}]",
                a.iter()
                    .map(|x| self.repr(x))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Value::Object(o) => format!(
                "{{{}}}",
                o.iter()
                    .map(|(k, x)| format!("{}: {}", py_str(k), self.repr(x)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            other => py_repr(other),
        }
    }
}

/// Whether `t` is a JSON number: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
fn is_json_number(t: &[u8]) -> bool {
    let digits = |i: usize| {
        t[i.min(t.len())..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    };
    let mut i = usize::from(t.first() == Some(&b'-'));
    match digits(i) {
        0 => return false,
        n if n > 1 && t[i] == b'0' => return false,
        n => i += n,
    }
    if t.get(i) == Some(&b'.') {
        let n = digits(i + 1);
        if n == 0 {
            return false;
        }
        i += 1 + n;
    }
    if matches!(t.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(t.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let n = digits(i);
        if n == 0 {
            return false;
        }
        i += n;
    }
    i == t.len()
}

/// Prepares a body for serde_json the way Python's `json.loads` would read it: every number
/// literal outside strings that `Value` cannot hold is recorded in [`Numbers`] and, where
/// serde_json would refuse it (beyond `f64`), replaced by a stand-in padded with spaces to the
/// same length. Anything that is not valid JSON is left as it is, for serde_json to report.
pub fn python_numbers(body: &[u8]) -> (Cow<'_, [u8]>, Numbers) {
    let mut numbers = Numbers::default();
    let mut text = Cow::Borrowed(body);
    let (mut i, mut in_string) = (0, false);
    while i < body.len() {
        let b = body[i];
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        if b == b'"' {
            in_string = true;
            i += 1;
            continue;
        }
        if !(b == b'-' || b.is_ascii_digit()) {
            i += 1;
            continue;
        }
        let len = body[i..]
            .iter()
            .take_while(|c| c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.' | b'e' | b'E'))
            .count();
        let token = &body[i..i + len];
        if let Some(stand_in) = record_number(token, &mut numbers) {
            let bytes = text.to_mut();
            let mut replacement = stand_in.into_bytes();
            replacement.resize(len, b' ');
            bytes[i..i + len].copy_from_slice(&replacement);
        }
        i += len;
    }
    (text, numbers)
}

/// Records one number literal if `Value` cannot hold it as Python does; returns the text to
/// put in its place when serde_json would refuse it.
fn record_number(token: &[u8], numbers: &mut Numbers) -> Option<String> {
    let literal = std::str::from_utf8(token).ok()?;
    if !is_json_number(token) {
        return None;
    }
    let integer = !literal.contains(['.', 'e', 'E']);
    if integer && (literal.parse::<i64>().is_ok() || literal.parse::<u64>().is_ok()) {
        return None;
    }
    let negative = literal.starts_with('-');
    let sign = if negative { "-" } else { "" };
    if integer {
        // What serde_json holds for it; beyond f64, ±f64::MAX in its place.
        let (held, replacement) = match serde_f64(literal) {
            Some(f) => (f, None),
            None => {
                let max = format!("{sign}{:e}", f64::MAX);
                (serde_f64(&max)?, Some(max))
            }
        };
        numbers.big_ints.push((held.to_bits(), literal.to_string()));
        return replacement;
    }
    if serde_f64(literal).is_some() {
        return None;
    }
    // Valid JSON that serde_json refuses: beyond f64, which Python reads as ±inf.
    if negative {
        numbers.neg_inf = true;
    } else {
        numbers.pos_inf = true;
    }
    Some(format!("{sign}{INF_STAND_IN}"))
}

// ---- pprint ----------------------------------------------------------------------------------

/// `pprint.pformat(value, width=72, sort_dicts=False)`: the repr when it fits the width,
/// else dicts and lists one item per line and strings cut at whitespace into adjacent
/// literals (Python's `PrettyPrinter._format` and its `_pprint_dict`, `_pprint_list`,
/// `_pprint_str`; JSON holds no other type it breaks up).
pub fn pformat(v: &Value, numbers: &Numbers) -> String {
    let mut out = String::new();
    Pretty { numbers, width: 72 }.format(v, &mut out, 0, 0, 0);
    out
}

struct Pretty<'n> {
    numbers: &'n Numbers,
    width: i64,
}

fn chars_of(s: &str) -> i64 {
    s.chars().count() as i64
}

impl Pretty<'_> {
    fn format(&self, v: &Value, out: &mut String, indent: i64, allowance: i64, level: u32) {
        let rep = self.numbers.repr(v);
        if chars_of(&rep) <= self.width - indent - allowance {
            out.push_str(&rep);
            return;
        }
        match v {
            Value::Object(o) => {
                out.push('{');
                let last = o.len().saturating_sub(1);
                let indent = indent + 1;
                for (i, (k, x)) in o.iter().enumerate() {
                    let key = py_str(k);
                    out.push_str(&key);
                    out.push_str(": ");
                    let allowance = if i == last { allowance + 1 } else { 1 };
                    self.format(x, out, indent + chars_of(&key) + 2, allowance, level + 1);
                    if i != last {
                        out.push_str(",\n");
                        out.push_str(&" ".repeat(indent as usize));
                    }
                }
                out.push('}');
            }
            Value::Array(a) => {
                out.push('[');
                let last = a.len().saturating_sub(1);
                let indent = indent + 1;
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push_str(",\n");
                        out.push_str(&" ".repeat(indent as usize));
                    }
                    let allowance = if i == last { allowance + 1 } else { 1 };
                    self.format(x, out, indent, allowance, level + 1);
                }
                out.push(']');
            }
            Value::String(s) => self.string(s, out, indent, allowance, level + 1),
            _ => out.push_str(&rep),
        }
    }

    /// `_pprint_str`: each line's repr if it fits, else the line cut after whitespace runs.
    fn string(&self, s: &str, out: &mut String, indent: i64, allowance: i64, level: u32) {
        let (indent, allowance) = if level == 1 {
            (indent + 1, allowance + 1)
        } else {
            (indent, allowance)
        };
        let lines = py_splitlines(s);
        let max_width = self.width - indent;
        let mut chunks: Vec<String> = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let last_line = i + 1 == lines.len();
            let rep = py_str(line);
            let max_width1 = if last_line {
                max_width - allowance
            } else {
                max_width
            };
            if chars_of(&rep) <= max_width1 {
                chunks.push(rep);
                continue;
            }
            let parts = space_runs(line);
            let mut current = String::new();
            for (j, part) in parts.iter().enumerate() {
                let max_width2 = if last_line && j + 1 == parts.len() {
                    max_width - allowance
                } else {
                    max_width
                };
                let candidate = format!("{current}{part}");
                if chars_of(&py_str(&candidate)) > max_width2 {
                    if !current.is_empty() {
                        chunks.push(py_str(&current));
                    }
                    current = part.to_string();
                } else {
                    current = candidate;
                }
            }
            if !current.is_empty() {
                chunks.push(py_str(&current));
            }
        }
        if chunks.len() <= 1 {
            out.push_str(&py_str(s));
            return;
        }
        if level == 1 {
            out.push('(');
        }
        for (i, chunk) in chunks.iter().enumerate() {
            if i > 0 {
                out.push('\n');
                out.push_str(&" ".repeat(indent.max(0) as usize));
            }
            out.push_str(chunk);
        }
        if level == 1 {
            out.push(')');
        }
    }
}

/// Python's `str.splitlines(keepends=True)`.
fn py_splitlines(s: &str) -> Vec<&str> {
    let is_break = |c: char| {
        matches!(
            c,
            '\n' | '\r'
                | '\x0b'
                | '\x0c'
                | '\x1c'
                | '\x1d'
                | '\x1e'
                | '\u{85}'
                | '\u{2028}'
                | '\u{2029}'
        )
    };
    let mut lines = Vec::new();
    let mut start = 0;
    let mut it = s.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        if is_break(c) {
            let mut end = i + c.len_utf8();
            if c == '\r' && it.peek().is_some_and(|(_, n)| *n == '\n') {
                it.next();
                end += 1;
            }
            lines.push(&s[start..end]);
            start = end;
        }
    }
    if start < s.len() {
        lines.push(&s[start..]);
    }
    lines
}

/// `re.findall(r'\S*\s*', line)` without the final empty match: runs of non-whitespace,
/// each with the whitespace after it.
fn space_runs(line: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut seen_space = false;
    for (i, c) in line.char_indices() {
        if c.is_whitespace() {
            seen_space = true;
        } else if seen_space {
            parts.push(&line[start..i]);
            start = i;
            seen_space = false;
        }
    }
    if start < line.len() {
        parts.push(&line[start..]);
    }
    parts
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
    numbers: &Numbers,
    schema: &Value,
    instance: &Value,
    path: Option<Value>,
    schema_path: &[Value],
    out: &mut Vec<SchemaError>,
) {
    let mut sub = Vec::new();
    check(numbers, schema, instance, &mut sub);
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

fn check(numbers: &Numbers, schema: &Value, instance: &Value, out: &mut Vec<SchemaError>) {
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
                if !types.iter().any(|t| numbers.is_type(instance, t)) {
                    let list = types
                        .iter()
                        .map(|t| py_repr(&Value::String((*t).to_string())))
                        .collect::<Vec<_>>()
                        .join(", ");
                    out.push(error(
                        kw,
                        format!("{} is not of type {}", numbers.repr(instance), list),
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
                            numbers,
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
                                numbers,
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
                                numbers,
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
                let (Some(limit), Some(x)) = (val.as_f64(), numbers.float(instance)) else {
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
                        format!("{} is {} of {}", numbers.repr(instance), word, py_repr(val)),
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
                    let msg = format!(
                        "{} {}",
                        numbers.repr(instance),
                        too_few(limit, "is too short")
                    );
                    out.push(error(kw, msg, schema, instance, vec![]));
                } else if kw == "maxLength" && n > limit {
                    let msg = format!(
                        "{} {}",
                        numbers.repr(instance),
                        too_many(limit, "is too long")
                    );
                    out.push(error(kw, msg, schema, instance, vec![]));
                }
            }
            "minItems" | "maxItems" => {
                let (Some(limit), Some(a)) = (val.as_u64(), instance.as_array()) else {
                    continue;
                };
                let n = a.len() as u64;
                if kw == "minItems" && n < limit {
                    let msg = format!(
                        "{} {}",
                        numbers.repr(instance),
                        too_few(limit, "is too short")
                    );
                    out.push(error(kw, msg, schema, instance, vec![]));
                } else if kw == "maxItems" && n > limit {
                    let msg = format!(
                        "{} {}",
                        numbers.repr(instance),
                        too_many(limit, "is too long")
                    );
                    out.push(error(kw, msg, schema, instance, vec![]));
                }
            }
            "minProperties" | "maxProperties" => {
                let (Some(limit), Some(o)) = (val.as_u64(), instance.as_object()) else {
                    continue;
                };
                let n = o.len() as u64;
                if kw == "minProperties" && n < limit {
                    let msg = format!(
                        "{} {}",
                        numbers.repr(instance),
                        too_few(limit, "does not have enough properties")
                    );
                    out.push(error(kw, msg, schema, instance, vec![]));
                } else if kw == "maxProperties" && n > limit {
                    let msg = format!(
                        "{} {}",
                        numbers.repr(instance),
                        too_many(limit, "has too many properties")
                    );
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
                            format!("{} does not match {}", numbers.repr(instance), py_repr(val)),
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
                        format!("{} is not one of {}", numbers.repr(instance), py_repr(val)),
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
                            format!("{} is not a {}", numbers.repr(instance), py_repr(val)),
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
                            numbers,
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
                            format!("{} has non-unique elements", numbers.repr(instance)),
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
                        numbers,
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
                            numbers.repr(instance)
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
                        format!(
                            "{} is valid under each of {}",
                            numbers.repr(instance),
                            reprs
                        ),
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
/// jsonschema 4.23+'s words for a value below a `min*` keyword: `should be non-empty` when
/// the least is 1, `otherwise` (`is too short` ...) else.
fn too_few(least: u64, otherwise: &'static str) -> &'static str {
    if least == 1 {
        "should be non-empty"
    } else {
        otherwise
    }
}

/// jsonschema 4.23+'s words for a value above a `max*` keyword: `is expected to be empty`
/// when the most is 0, `otherwise` (`is too long` ...) else.
fn too_many(most: u64, otherwise: &'static str) -> &'static str {
    if most == 0 {
        "is expected to be empty"
    } else {
        otherwise
    }
}

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

    /// Of several errors equally deep, jsonschema 4.26's `best_match` reports the one with the
    /// greatest instance path: the last bad item of an array, the bad property whose key
    /// sorts last (not the last in the body). Texts from Placement 16.0.
    #[test]
    fn the_greatest_path_wins_among_equally_deep_errors() {
        // PUT /resource_providers/{uuid}/aggregates at 1.1 with ["a", "b", "c"].
        let s = json!({"type": "array", "items": {"type": "string", "format": "uuid"}});
        assert_eq!(
            validate(&s, &json!(["a", "b", "c"])).expect_err("no uuids"),
            "'c' is not a 'uuid'\n\nFailed validating 'format' in schema['items']:\n    \
             {'type': 'string', 'format': 'uuid'}\n\nOn instance[2]:\n    'c'"
        );
        assert_eq!(
            first_line(&s, &json!(["a", "1a0b2c3d-1111-2222-3333-444455556666", 7])),
            "7 is not of type 'string'"
        );
        // Inventories: `total` sorts after `reserved` and `max_unit`, `VCPU` after `DISK_GB`,
        // in whatever order the body has them.
        let inv = json!({"type": "object", "properties": {
            "total": {"type": "integer", "maximum": 2147483647, "minimum": 1},
            "reserved": {"type": "integer", "maximum": 2147483647, "minimum": 0},
            "max_unit": {"type": "integer", "maximum": 2147483647, "minimum": 1}}});
        let s = json!({"type": "object", "properties": {"inventories": {
            "type": "object", "patternProperties": {"^[A-Z0-9_]+$": inv}}}});
        for body in [
            json!({"inventories": {"VCPU": {"max_unit": -1, "total": "x", "reserved": "y"}}}),
            json!({"inventories": {"VCPU": {"reserved": "y", "total": "x", "max_unit": -1}}}),
            json!({"inventories": {"VCPU": {"total": "x"}, "DISK_GB": {"total": "y"}}}),
            json!({"inventories": {"DISK_GB": {"total": "y"}, "VCPU": {"total": "x"}}}),
        ] {
            let e = validate(&s, &body).expect_err("bad values");
            assert!(
                e.starts_with("'x' is not of type 'integer'")
                    && e.ends_with("On instance['inventories']['VCPU']['total']:\n    'x'"),
                "{body}: {e}"
            );
        }
        // A shallower error still comes first, and errors at one path keep the schema's
        // keyword order.
        assert_eq!(
            first_line(&s, &json!({"inventories": 5})),
            "5 is not of type 'object'"
        );
        let s = json!({"type": "string", "minLength": 3, "pattern": "^[a-z]+$"});
        assert_eq!(first_line(&s, &json!("A")), "'A' is too short");
    }

    /// jsonschema 4.23+ words an empty value below a least of 1 (or above a most of 0)
    /// differently (`GET /usages?project_id=&user_id=` at Placement 16.0 answers
    /// `'' should be non-empty`, the bad `user_id` sorting after `project_id`).
    #[test]
    fn size_limits_read_as_jsonschema_4_26() {
        let id = json!({"type": "string", "minLength": 1, "maxLength": 255});
        let s = json!({"type": "object", "properties": {"project_id": id, "user_id": id}});
        assert_eq!(
            validate(&s, &json!({"project_id": "", "user_id": ""})).expect_err("empty"),
            "'' should be non-empty\n\nFailed validating 'minLength' in \
             schema['properties']['user_id']:\n    {'type': 'string', 'minLength': 1, \
             'maxLength': 255}\n\nOn instance['user_id']:\n    ''"
        );
        let cases = [
            (json!({"minLength": 2}), json!("a"), "'a' is too short"),
            (
                json!({"maxLength": 0}),
                json!("a"),
                "'a' is expected to be empty",
            ),
            (json!({"maxLength": 1}), json!("ab"), "'ab' is too long"),
            (json!({"minItems": 1}), json!([]), "[] should be non-empty"),
            (json!({"minItems": 2}), json!([1]), "[1] is too short"),
            (
                json!({"maxItems": 0}),
                json!([1]),
                "[1] is expected to be empty",
            ),
            (json!({"maxItems": 1}), json!([1, 2]), "[1, 2] is too long"),
            (
                json!({"minProperties": 1}),
                json!({}),
                "{} should be non-empty",
            ),
            (
                json!({"minProperties": 2}),
                json!({"a": 1}),
                "{'a': 1} does not have enough properties",
            ),
            (
                json!({"maxProperties": 0}),
                json!({"a": 1}),
                "{'a': 1} is expected to be empty",
            ),
            (
                json!({"maxProperties": 1}),
                json!({"a": 1, "b": 2}),
                "{'a': 1, 'b': 2} has too many properties",
            ),
        ];
        for (schema, instance, want) in cases {
            assert_eq!(first_line(&schema, &instance), want, "{schema}");
        }
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

    /// `str(ValidationError)` as jsonschema 4.26 on Python 3.11 (Placement 16.0.0's) writes
    /// it, captured from the real thing: long schemas and instances wrap as `pprint` wraps
    /// them, and numbers read as `json.loads` reads them.
    #[test]
    fn full_text_matches_jsonschema_for_wide_values_and_python_numbers() {
        // Schemas as the handlers build them (`json!`, Rust's float literals: serde_json's
        // parser rounds `3.40282e+38` differently).
        let cases: [(Value, &str, &str); 8] = [
            (
                json!({"type": "object", "properties": {"limit": {"type": ["integer", "string"], "pattern": "^[1-9][0-9]*$", "minimum": 1, "minLength": 1}}}),
                r#"{"limit": "-1"}"#,
                "'-1' does not match '^[1-9][0-9]*$'\n\nFailed validating 'pattern' in schema['properties']['limit']:\n    {'type': ['integer', 'string'],\n     'pattern': '^[1-9][0-9]*$',\n     'minimum': 1,\n     'minLength': 1}\n\nOn instance['limit']:\n    '-1'",
            ),
            (
                json!({"type": "object", "properties": {"total": {"type": "integer", "maximum": 2147483647, "minimum": 1}}}),
                r#"{"total": 123456789012345678901}"#,
                "123456789012345678901 is greater than the maximum of 2147483647\n\nFailed validating 'maximum' in schema['properties']['total']:\n    {'type': 'integer', 'maximum': 2147483647, 'minimum': 1}\n\nOn instance['total']:\n    123456789012345678901",
            ),
            (
                json!({"type": "object", "properties": {"total": {"type": "integer", "maximum": 2147483647, "minimum": 1}}}),
                r#"{"total": 1e400}"#,
                "inf is not of type 'integer'\n\nFailed validating 'type' in schema['properties']['total']:\n    {'type': 'integer', 'maximum': 2147483647, 'minimum': 1}\n\nOn instance['total']:\n    inf",
            ),
            (
                json!({"type": "object", "properties": {"r": {"type": "number", "maximum": 3.40282e+38}}}),
                r#"{"r": 1e400}"#,
                "inf is greater than the maximum of 3.40282e+38\n\nFailed validating 'maximum' in schema['properties']['r']:\n    {'type': 'number', 'maximum': 3.40282e+38}\n\nOn instance['r']:\n    inf",
            ),
            (
                json!({"type": "string", "maxLength": 20}),
                r#""a long string with many words that goes on and on and on well past the width of seventy two characters""#,
                "'a long string with many words that goes on and on and on well past the width of seventy two characters' is too long\n\nFailed validating 'maxLength' in schema:\n    {'type': 'string', 'maxLength': 20}\n\nOn instance:\n    ('a long string with many words that goes on and on and on well past '\n     'the width of seventy two characters')",
            ),
            (
                json!({"type": "object", "properties": {"a": {"type": "string"}}}),
                r#"{"a": ["xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyy", {"k": "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"}, 1e400]}"#,
                "['xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx', 'yyyyyyyyyyyyyyyyyyyyyyyyyyyyyy', {'k': 'zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz'}, inf] is not of type 'string'\n\nFailed validating 'type' in schema['properties']['a']:\n    {'type': 'string'}\n\nOn instance['a']:\n    ['xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',\n     'yyyyyyyyyyyyyyyyyyyyyyyyyyyyyy',\n     {'k': 'zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz'},\n     inf]",
            ),
            (
                json!({"type": "object", "additionalProperties": false}),
                r#"{"some_long_key_name_0": 0, "some_long_key_name_1": 1, "some_long_key_name_2": 2, "some_long_key_name_3": 3, "some_long_key_name_4": 4}"#,
                "Additional properties are not allowed ('some_long_key_name_0', 'some_long_key_name_1', 'some_long_key_name_2', 'some_long_key_name_3', 'some_long_key_name_4' were unexpected)\n\nFailed validating 'additionalProperties' in schema:\n    {'type': 'object', 'additionalProperties': False}\n\nOn instance:\n    {'some_long_key_name_0': 0,\n     'some_long_key_name_1': 1,\n     'some_long_key_name_2': 2,\n     'some_long_key_name_3': 3,\n     'some_long_key_name_4': 4}",
            ),
            (
                json!({"type": "object", "properties": {"n": {"type": "string"}}}),
                r#"{"n": [-100000000000000000000, 1.5, 100000000000000000000]}"#,
                "[-100000000000000000000, 1.5, 100000000000000000000] is not of type 'string'\n\nFailed validating 'type' in schema['properties']['n']:\n    {'type': 'string'}\n\nOn instance['n']:\n    [-100000000000000000000, 1.5, 100000000000000000000]",
            ),
        ];
        for (schema, body, expected) in cases {
            let (text, numbers) = python_numbers(body.as_bytes());
            let value: Value = serde_json::from_slice(&text).expect("parses after the stand-ins");
            assert_eq!(
                validate_numbers(&schema, &value, &numbers),
                Err(expected.to_string()),
                "{body}"
            );
        }
    }

    #[test]
    fn python_numbers_keep_positions_and_leave_strings_and_bad_tokens_alone() {
        let body =
            br#"{"s": "1e400", "a": [-1e999, 1e400 ], "b": 01e400, "i": -123456789012345678901}"#;
        let (text, numbers) = python_numbers(body);
        assert_eq!(text.len(), body.len());
        assert_eq!(
            std::str::from_utf8(&text).ok(),
            Some(
                r#"{"s": "1e400", "a": [-1e308, 1e308 ], "b": 01e400, "i": -123456789012345678901}"#
            )
        );
        assert!(numbers.pos_inf && numbers.neg_inf);
        // (`01e400` is not JSON: left for serde_json to refuse.)
        assert!(serde_json::from_slice::<Value>(&text).is_err());
        let (text, numbers) = python_numbers(br#"[-123456789012345678901, 1e999, -1e400]"#);
        let v: Value = serde_json::from_slice(&text).expect("parses");
        let v = json!([v[0], v[1], v[2], 1e20]);
        let reprs: Vec<String> = v
            .as_array()
            .into_iter()
            .flatten()
            .map(|x| numbers.repr(x))
            .collect();
        assert_eq!(reprs, ["-123456789012345678901", "inf", "-inf", "1e+20"]);
        // An integer beyond f64 keeps its digits; the body still parses.
        let huge = format!("[{}]", "9".repeat(400));
        let (text, numbers) = python_numbers(huge.as_bytes());
        let v: Value = serde_json::from_slice(&text).expect("parses");
        assert_eq!(numbers.repr(&v), huge);
        assert!(numbers.is_integer(&v[0]));
        // Nothing to record: borrowed as it is.
        assert!(matches!(
            python_numbers(b"[1, 2.5, -3]").0,
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn repr_of_strings() {
        assert_eq!(py_str("it's"), "\"it's\"");
        assert_eq!(py_str("a\nb"), "'a\\nb'");
    }
}
