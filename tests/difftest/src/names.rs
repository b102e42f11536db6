//! Concrete names for one run of a sequence.
//!
//! Every run (a seed's first run, and each replay while shrinking) gets a fresh salt, so its
//! providers, consumers, aggregates, projects and users are new to both servers: the real
//! Placement keeps rows an API reset cannot remove (empty consumers, projects, users), and
//! none of them may leak into the next run.
//!
//! A consumer can be *retired* during a run (see [`crate::known`]): from then on its symbol
//! names a new consumer.

use std::collections::HashMap;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Generation placeholders, resolved by the runner before a request is sent.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Placeholder {
    /// `{gen:rpN}`: the provider's generation.
    ProviderGeneration(String),
    /// `{cgen:cN}`: the consumer's generation, or null.
    ConsumerGeneration(String),
}

/// The concrete names of one run.
#[derive(Debug)]
pub struct Names {
    salt: String,
    incarnation: HashMap<String, u32>,
}

impl Names {
    pub fn new(salt: String) -> Names {
        Names {
            salt,
            incarnation: HashMap::new(),
        }
    }

    /// The concrete value of a symbol (`rp3`, `c2`, `agg1`, `proj0`, `user1`); `None` for a
    /// string that is no symbol.
    pub fn concrete(&self, symbol: &str) -> Option<String> {
        let prefix = symbol.trim_end_matches(|c: char| c.is_ascii_digit());
        if prefix.len() == symbol.len() || !["rp", "c", "agg", "proj", "user"].contains(&prefix) {
            return None;
        }
        let incarnation = self.incarnation.get(symbol).copied().unwrap_or(0);
        let digest = Sha256::digest(format!("{}/{symbol}/{incarnation}", self.salt));
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        let uuid = uuid::Builder::from_random_bytes(bytes).into_uuid();
        Some(match prefix {
            // Projects and users are free-form strings in Placement.
            "proj" | "user" => format!("{prefix}-{}", &uuid.simple().to_string()[..12]),
            _ => uuid.to_string(),
        })
    }

    /// Gives a consumer symbol a new concrete uuid from now on.
    pub fn retire(&mut self, symbol: &str) {
        *self.incarnation.entry(symbol.to_string()).or_insert(0) += 1;
    }

    /// `text` with every `{symbol}` replaced.
    pub fn render(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len() + 32);
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            match after.find('}') {
                Some(close) => match self.concrete(&after[..close]) {
                    Some(value) => {
                        out.push_str(&value);
                        rest = &after[close + 1..];
                    }
                    None => {
                        out.push('{');
                        rest = after;
                    }
                },
                None => {
                    out.push('{');
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// A JSON body with names replaced, and placeholders set from `resolve`.
    pub fn render_json(&self, v: &Value, resolve: &dyn Fn(&Placeholder) -> Value) -> Value {
        match v {
            Value::String(s) => match placeholder(s) {
                Some(p) => resolve(&p),
                None => Value::String(self.render(s)),
            },
            Value::Array(items) => {
                Value::Array(items.iter().map(|i| self.render_json(i, resolve)).collect())
            }
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (self.render(k), self.render_json(v, resolve)))
                    .collect::<Map<_, _>>(),
            ),
            other => other.clone(),
        }
    }
}

/// The placeholder a JSON string is, if any.
pub fn placeholder(s: &str) -> Option<Placeholder> {
    let inner = s.strip_prefix('{')?.strip_suffix('}')?;
    if let Some(rp) = inner.strip_prefix("gen:") {
        return Some(Placeholder::ProviderGeneration(rp.to_string()));
    }
    inner
        .strip_prefix("cgen:")
        .map(|c| Placeholder::ConsumerGeneration(c.to_string()))
}

/// Every placeholder in a body.
pub fn placeholders(v: &Value, out: &mut Vec<Placeholder>) {
    match v {
        Value::String(s) => out.extend(placeholder(s)),
        Value::Array(items) => items.iter().for_each(|i| placeholders(i, out)),
        Value::Object(map) => map.values().for_each(|i| placeholders(i, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn symbols_become_stable_names_and_retiring_changes_one() {
        let mut names = Names::new("s1".into());
        let rp = names.concrete("rp3").expect("a symbol");
        assert_eq!(names.concrete("rp3"), Some(rp.clone()));
        assert_ne!(Names::new("s2".into()).concrete("rp3"), Some(rp.clone()));
        assert_eq!(names.concrete("rpx"), None);
        assert_eq!(names.concrete("CUSTOM_1"), None);
        assert_eq!(
            names.render("/resource_providers/{rp3}?x={y}"),
            format!("/resource_providers/{rp}?x={{y}}")
        );
        let c = names.concrete("c1");
        names.retire("c1");
        assert_ne!(names.concrete("c1"), c);
        assert_eq!(names.concrete("rp3"), Some(rp));
    }

    #[test]
    fn placeholders_are_whole_strings() {
        let names = Names::new("s".into());
        let body = json!({"generation": "{gen:rp1}", "{rp1}": {"x": "{cgen:c0}"}, "n": "{gen"});
        let out = names.render_json(&body, &|p| match p {
            Placeholder::ProviderGeneration(_) => json!(4),
            Placeholder::ConsumerGeneration(_) => Value::Null,
        });
        let rp1 = names.concrete("rp1").expect("a symbol");
        assert_eq!(out, json!({"generation": 4, rp1: {"x": null}, "n": "{gen"}));
    }
}
