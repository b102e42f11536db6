//! Reading one Placement service through its REST API for `placementd import --verify`.
//!
//! Every request is a `GET` at microversion 1.39 with the service's token
//! (`X-Auth-Token`; `admin` is what `auth_strategy = noauth2` accepts). Each request has a
//! timeout; a connection error, a timeout, or a 502/503/504 (a load balancer between
//! backends, a leader election) is retried a few times with a growing pause; any other
//! status than 200 is an error naming the URL. Bodies are read up to `MAX_BODY_BYTES`.
//! Many requests run at once (`--verify-concurrency`), so that ~50,000 GETs against a slow
//! Placement take minutes, not hours.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use futures::stream::{self, StreamExt, TryStreamExt};
use serde_json::Value;

/// The microversion every request asks for: the newest both services serve, which shows
/// consumer types (1.38) and generations everywhere.
const MICROVERSION: &str = "placement 1.39";
/// How long one request may take (a provider list of 10,000 providers is a few MB).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts per request when the connection fails or the service is briefly unavailable.
const ATTEMPTS: u32 = 5;
/// The pause before the first retry; doubled before each next one.
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(200);
/// The largest answer read (a `GET /resource_providers` of 100,000 providers is ~40 MB).
const MAX_BODY_BYTES: usize = 256 << 20;

/// A progress line every this many answers, in a long series of requests.
const PROGRESS_EVERY: usize = 10_000;

/// One service to read: where, with which token, trusting which CA.
pub struct Service {
    /// `source` or `target`, for messages.
    pub role: &'static str,
    base: String,
    token: String,
    http: reqwest::Client,
    /// Requests sent, retries included.
    pub requests: AtomicU64,
}

impl Service {
    /// A client for the service at `base` (`http(s)://host:port[/prefix]`).
    pub fn new(
        role: &'static str,
        base: &str,
        token: &str,
        ca_file: Option<&Path>,
    ) -> Result<Service, String> {
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(format!(
                "--{role}-url {base} is not an http:// or https:// URL of a Placement API"
            ));
        }
        let mut builder = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none());
        if let Some(ca) = ca_file {
            let pem =
                std::fs::read(ca).map_err(|e| format!("--{role}-ca-file {}: {e}", ca.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                format!(
                    "--{role}-ca-file {}: not PEM certificates: {e}",
                    ca.display()
                )
            })?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder
            .build()
            .map_err(|e| format!("HTTP client for the {role}: {e}"))?;
        Ok(Service {
            role,
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
            http,
            requests: AtomicU64::new(0),
        })
    }

    /// `GET path`, its JSON body; retried as the module doc says.
    pub async fn get(&self, path: &str) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        let mut pause = FIRST_RETRY_PAUSE;
        let mut attempt = 1;
        loop {
            self.requests.fetch_add(1, Ordering::Relaxed);
            let retryable = match self.try_get(&url).await {
                Ok(body) => return Ok(body),
                Err(Failure::Retryable(message)) => message,
                Err(Failure::Final(message)) => return Err(message),
            };
            if attempt >= ATTEMPTS {
                return Err(format!("{retryable} (gave up after {ATTEMPTS} attempts)"));
            }
            tokio::time::sleep(pause).await;
            pause *= 2;
            attempt += 1;
        }
    }

    async fn try_get(&self, url: &str) -> Result<Value, Failure> {
        let mut response = self
            .http
            .get(url)
            .header("x-auth-token", &self.token)
            .header("openstack-api-version", MICROVERSION)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| {
                let message = format!("the {} at {url} cannot be read: {}", self.role, chain(&e));
                if e.is_connect() || e.is_timeout() || e.is_request() {
                    Failure::Retryable(message)
                } else {
                    Failure::Final(message)
                }
            })?;
        let status = response.status();
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_BODY_BYTES {
                        return Err(Failure::Final(format!(
                            "the {} answered GET {url} with more than {MAX_BODY_BYTES} bytes",
                            self.role
                        )));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(Failure::Retryable(format!(
                        "the {} broke off its answer to GET {url}: {}",
                        self.role,
                        chain(&e)
                    )))
                }
            }
        }
        if matches!(status.as_u16(), 502..=504) {
            return Err(Failure::Retryable(format!(
                "the {} answered GET {url} with {status}",
                self.role
            )));
        }
        if status.as_u16() != 200 {
            let text = String::from_utf8_lossy(&body);
            let text: String = text.chars().take(300).collect();
            let hint = if status.as_u16() == 401 {
                format!(" (give a valid token with --{}-token)", self.role)
            } else {
                String::new()
            };
            return Err(Failure::Final(format!(
                "the {} answered GET {url} with {status}{hint}: {text}",
                self.role
            )));
        }
        serde_json::from_slice(&body).map_err(|e| {
            Failure::Final(format!(
                "the {} answered GET {url} with something that is not JSON: {e}",
                self.role
            ))
        })
    }

    /// `GET` of every path, `concurrency` at a time; the bodies by path.
    pub async fn get_all(
        &self,
        paths: Vec<String>,
        concurrency: usize,
    ) -> Result<BTreeMap<String, Value>, String> {
        let total = paths.len();
        let done = AtomicUsize::new(0);
        let done = &done;
        stream::iter(paths)
            .map(|path| async move {
                let body = self.get(&path).await?;
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                if total >= 2 * PROGRESS_EVERY && n.is_multiple_of(PROGRESS_EVERY) {
                    eprintln!("verify: {}: {n} of {total} read", self.role);
                }
                Ok::<_, String>((path, body))
            })
            .buffer_unordered(concurrency.max(1))
            .try_collect()
            .await
    }
}

enum Failure {
    /// Worth another attempt: the connection failed, timed out, or a proxy had no backend.
    Retryable(String),
    /// The service answered, and another attempt would get the same answer.
    Final(String),
}

/// An error and its causes, `: `-separated (reqwest's own message hides the cause).
fn chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        message.push_str(&format!(": {s}"));
        source = s.source();
    }
    message
}
