//! Sending a sequence to both servers, side by side.
//!
//! Before a run both servers are emptied through the API ([`Server::reset`]): every
//! allocation of every provider, the providers (children first), custom resource classes
//! and custom traits. What the API cannot remove (the reference's empty consumers,
//! projects and users) cannot matter, as each run uses new names ([`Names`]).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;

use crate::compare::{allocation_requests, differences, Answer};
use crate::known::{classify, Memory};
use crate::names::{placeholders, Names, Placeholder};
use crate::op::{Body, Op};
use crate::schema_check::SchemaCheck;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Per request: a server that does not answer in this time fails the run.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// One Placement endpoint.
pub struct Server {
    pub name: &'static str,
    base: String,
    token: String,
    client: reqwest::Client,
}

impl Server {
    pub fn new(name: &'static str, base: &str, token: &str) -> Result<Server, Error> {
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Server {
            name,
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
            client,
        })
    }

    /// Sends one request as given.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        version: Option<&str>,
        body: Option<(&'static str, Vec<u8>)>,
    ) -> Result<Answer, Error> {
        let method = reqwest::Method::from_bytes(method.as_bytes())?;
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("x-auth-token", &self.token)
            .header("accept", "application/json");
        if let Some(v) = version {
            request = request.header("openstack-api-version", format!("placement {v}"));
        }
        if let Some((content_type, bytes)) = body {
            request = request.header("content-type", content_type).body(bytes);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("{} {path}: {e}", self.name))?;
        let status = response.status().as_u16();
        let mut headers: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in response.headers() {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            headers
                .entry(name.as_str().to_string())
                .and_modify(|v| {
                    v.push_str(", ");
                    v.push_str(&value);
                })
                .or_insert(value);
        }
        let text = response.text().await?;
        let body = serde_json::from_str(&text).ok();
        Ok(Answer {
            status,
            headers,
            body,
            text,
        })
    }

    async fn get(&self, path: &str, version: &str) -> Result<Value, Error> {
        let a = self.send("GET", path, Some(version), None).await?;
        match (a.status, a.body) {
            (200, Some(body)) => Ok(body),
            (status, _) => Err(format!("{}: GET {path}: {status} {}", self.name, a.text).into()),
        }
    }

    async fn delete(&self, path: &str, version: &str) -> Result<u16, Error> {
        Ok(self.send("DELETE", path, Some(version), None).await?.status)
    }

    /// Removes everything the API can remove.
    pub async fn reset(&self) -> Result<(), Error> {
        let list = self.get("/resource_providers", "1.14").await?;
        let mut parent: BTreeMap<String, Option<String>> = BTreeMap::new();
        for rp in list["resource_providers"].as_array().into_iter().flatten() {
            let uuid = rp["uuid"].as_str().unwrap_or_default().to_string();
            let p = rp["parent_provider_uuid"].as_str().map(str::to_string);
            parent.insert(uuid, p);
        }
        let mut consumers = BTreeSet::new();
        for uuid in parent.keys() {
            let a = self
                .get(&format!("/resource_providers/{uuid}/allocations"), "1.0")
                .await?;
            if let Some(m) = a["allocations"].as_object() {
                consumers.extend(m.keys().cloned());
            }
        }
        for c in consumers {
            self.delete(&format!("/allocations/{c}"), "1.0").await?;
        }
        while !parent.is_empty() {
            let leaves: Vec<String> = parent
                .keys()
                .filter(|u| !parent.values().any(|p| p.as_deref() == Some(u.as_str())))
                .cloned()
                .collect();
            if leaves.is_empty() {
                return Err(format!("{}: provider parents form a cycle", self.name).into());
            }
            for leaf in leaves {
                let status = self
                    .delete(&format!("/resource_providers/{leaf}"), "1.14")
                    .await?;
                if status != 204 && status != 404 {
                    return Err(format!("{}: deleting provider {leaf}: {status}", self.name).into());
                }
                parent.remove(&leaf);
            }
        }
        let classes = self.get("/resource_classes", "1.7").await?;
        for rc in classes["resource_classes"].as_array().into_iter().flatten() {
            if let Some(name) = rc["name"].as_str().filter(|n| n.starts_with("CUSTOM_")) {
                self.delete(&format!("/resource_classes/{name}"), "1.7")
                    .await?;
            }
        }
        let traits = self.get("/traits?name=startswith:CUSTOM_", "1.6").await?;
        for name in traits["traits"].as_array().into_iter().flatten() {
            if let Some(name) = name.as_str() {
                self.delete(&format!("/traits/{name}"), "1.6").await?;
            }
        }
        Ok(())
    }
}

/// The two servers, and the schema placementd's answers must match.
pub struct Pair {
    pub reference: Server,
    pub candidate: Server,
    pub schema: Option<SchemaCheck>,
}

/// A difference no known rule explains.
#[derive(Debug)]
pub struct Divergence {
    /// Index of the operation in the sequence run.
    pub index: usize,
    /// The request as sent (concrete names).
    pub sent: String,
    pub reference: Answer,
    pub candidate: Answer,
    pub differences: Vec<String>,
}

/// What a run found.
#[derive(Debug, Default)]
pub struct Outcome {
    pub divergence: Option<Divergence>,
    /// Known differences met, by name.
    pub known: BTreeMap<&'static str, u32>,
    /// Answers of placementd checked against the schema.
    pub schema_checked: u64,
    /// Successful (2xx) answers by kind of operation, and candidate answers with at least
    /// one candidate: how much of the run did more than meet an error.
    pub successes: BTreeMap<&'static str, u32>,
    pub candidates_found: u32,
    pub ops_run: usize,
}

impl Pair {
    /// Empties both servers, then runs `ops` until the first unexplained divergence.
    pub async fn run(&self, ops: &[Op], salt: String) -> Result<Outcome, Error> {
        let (r, c) = tokio::join!(self.reference.reset(), self.candidate.reset());
        r?;
        c?;
        let mut names = Names::new(salt);
        let mut memory = Memory::default();
        let mut outcome = Outcome::default();
        for (index, op) in ops.iter().enumerate() {
            let (path, body) = self.render(op, &names).await?;
            let send_body = body.as_ref().map(|b| {
                (
                    op.content_type.unwrap_or("application/json"),
                    b.clone().into_bytes(),
                )
            });
            let version = op.version.as_deref();
            let (reference, candidate) = tokio::join!(
                self.reference
                    .send(op.method, &path, version, send_body.clone()),
                self.candidate.send(op.method, &path, version, send_body),
            );
            let (reference, candidate) = (reference?, candidate?);
            outcome.ops_run = index + 1;
            if reference.is_success() {
                *outcome.successes.entry(op.kind).or_insert(0) += 1;
            }
            if reference
                .body
                .as_ref()
                .is_some_and(|b| !allocation_requests(b).is_empty())
            {
                outcome.candidates_found += 1;
            }
            let mut diffs = differences(op, &reference, &candidate);
            if let Some(schema) = &self.schema {
                if let Err(e) = schema.check(
                    op.method,
                    path.split('?').next().unwrap_or(&path),
                    candidate.status,
                    answered_version(&candidate, version),
                    candidate.body.as_ref(),
                ) {
                    diffs.push(format!("schema: {e}"));
                }
                outcome.schema_checked += 1;
            }
            if !diffs.is_empty() {
                match classify(op, &memory, &reference, &candidate) {
                    Some((name, resync)) => {
                        *outcome.known.entry(name).or_insert(0) += 1;
                        for consumer in resync.retire {
                            if let Some(uuid) = names.concrete(&consumer) {
                                let path = format!("/allocations/{uuid}");
                                let (_, _) = tokio::join!(
                                    self.reference.delete(&path, "1.0"),
                                    self.candidate.delete(&path, "1.0")
                                );
                            }
                            names.retire(&consumer);
                            memory.forget(&consumer);
                        }
                        continue;
                    }
                    None => {
                        let sent = match &body {
                            Some(b) => format!("{} {path}  {b}", op.method),
                            None => format!("{} {path}", op.method),
                        };
                        outcome.divergence = Some(Divergence {
                            index,
                            sent,
                            reference,
                            candidate,
                            differences: diffs,
                        });
                        return Ok(outcome);
                    }
                }
            }
            for consumer in memory.note(op, &reference) {
                *outcome.known.entry("phantom-consumer").or_insert(0) += 1;
                names.retire(&consumer);
            }
        }
        Ok(outcome)
    }

    /// The concrete path and body of `op`, generations read from the reference.
    async fn render(&self, op: &Op, names: &Names) -> Result<(String, Option<String>), Error> {
        let path = names.render(&op.path);
        let body = match &op.body {
            None => None,
            Some(Body::Raw(text)) => Some(text.clone()),
            Some(Body::Json(template)) => {
                let mut wanted = Vec::new();
                placeholders(template, &mut wanted);
                let mut values: BTreeMap<String, Value> = BTreeMap::new();
                for p in wanted {
                    let (key, value) = match &p {
                        Placeholder::ProviderGeneration(rp) => {
                            let uuid = names.concrete(rp).unwrap_or_default();
                            let a = self
                                .reference
                                .send(
                                    "GET",
                                    &format!("/resource_providers/{uuid}"),
                                    Some("1.14"),
                                    None,
                                )
                                .await?;
                            let generation = a
                                .body
                                .as_ref()
                                .and_then(|b| b.get("generation").cloned())
                                .unwrap_or(Value::from(0));
                            (format!("gen:{rp}"), generation)
                        }
                        Placeholder::ConsumerGeneration(c) => {
                            let uuid = names.concrete(c).unwrap_or_default();
                            let a = self
                                .reference
                                .send("GET", &format!("/allocations/{uuid}"), Some("1.28"), None)
                                .await?;
                            let generation = a
                                .body
                                .as_ref()
                                .and_then(|b| b.get("consumer_generation").cloned())
                                .unwrap_or(Value::Null);
                            (format!("cgen:{c}"), generation)
                        }
                    };
                    values.insert(key, value);
                }
                let rendered = names.render_json(template, &|p| {
                    let key = match p {
                        Placeholder::ProviderGeneration(rp) => format!("gen:{rp}"),
                        Placeholder::ConsumerGeneration(c) => format!("cgen:{c}"),
                    };
                    values.get(&key).cloned().unwrap_or(Value::Null)
                });
                Some(rendered.to_string())
            }
        };
        Ok((path, body))
    }
}

/// The microversion an answer was given at: its `openstack-api-version` header, else the
/// one asked for, else 1.0.
fn answered_version(answer: &Answer, asked: Option<&str>) -> (u32, u32) {
    let parse = |v: &str| -> Option<(u32, u32)> {
        let v = v.trim().strip_prefix("placement ").unwrap_or(v.trim());
        let (a, b) = v.split_once('.')?;
        Some((a.parse().ok()?, b.parse().ok()?))
    };
    answer
        .header("openstack-api-version")
        .and_then(parse)
        .or_else(|| asked.and_then(parse))
        .unwrap_or((1, 0))
}
