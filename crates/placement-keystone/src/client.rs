//! placementd's own conversation with Keystone: it authenticates as its service user
//! (`[keystone_authtoken]` password options), keeps that token and renews it before it
//! expires, finds the identity endpoint in the catalog (`interface`, `region_name`), and asks
//! `GET /v3/auth/tokens?nocatalog` about each token it is shown (`X-Subject-Token`).
//!
//! Answers: 200 with a token body → valid; 404 (and any answer that is not a token) →
//! invalid; 401/403 → placementd's own token is no longer good: authenticate again and ask
//! once more; a connection failure or a timeout is retried `http_request_max_retries` times,
//! then reported as Keystone unavailable (the API answers 503), as are 5xx answers.

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Mutex;

use crate::token::{self, Validated};
use crate::KeystoneConfig;

/// Renew placementd's own token when it has less than this left.
const RENEW_BEFORE: Duration = Duration::from_secs(120);
/// Largest Keystone answer read (a token with a large catalog is tens of KiB).
const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;
/// Pause between retries of a failed connection.
const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// What a token validation found.
#[derive(Debug)]
pub enum Validation {
    Valid(Box<Validated>),
    Invalid,
}

/// Keystone could not be asked; the text says why (for the log).
#[derive(Debug, Clone)]
pub struct Unavailable(pub String);

/// placementd's own token.
#[derive(Debug, Clone)]
struct ServiceAuth {
    token: String,
    expires_at: SystemTime,
    /// The identity API (`…/v3`) to validate tokens with.
    identity_v3: String,
}

#[derive(Debug)]
pub struct Client {
    http: reqwest::Client,
    config: KeystoneConfig,
    auth_v3: String,
    service: Mutex<Option<ServiceAuth>>,
}

impl Client {
    pub fn new(config: KeystoneConfig) -> Result<Client, String> {
        let mut builder = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .redirect(reqwest::redirect::Policy::limited(3))
            .user_agent(concat!("placementd/", env!("CARGO_PKG_VERSION")));
        if let Some(t) = config.connect_timeout {
            builder = builder.connect_timeout(t);
        }
        if let Some(cafile) = &config.cafile {
            let pem = std::fs::read(cafile)
                .map_err(|e| format!("[keystone_authtoken] cafile {}: {e}", cafile.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("[keystone_authtoken] cafile {}: {e}", cafile.display()))?;
            if certs.is_empty() {
                return Err(format!(
                    "[keystone_authtoken] cafile {}: no PEM certificate in it",
                    cafile.display()
                ));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        if let (Some(cert), Some(key)) = (&config.certfile, &config.keyfile) {
            let mut pem = std::fs::read(cert)
                .map_err(|e| format!("[keystone_authtoken] certfile {}: {e}", cert.display()))?;
            pem.extend(
                std::fs::read(key)
                    .map_err(|e| format!("[keystone_authtoken] keyfile {}: {e}", key.display()))?,
            );
            let identity = reqwest::Identity::from_pem(&pem)
                .map_err(|e| format!("[keystone_authtoken] certfile/keyfile: {e}"))?;
            builder = builder.identity(identity);
        }
        if config.insecure {
            builder = builder.danger_accept_invalid_certs(true);
        }
        let http = builder
            .build()
            .map_err(|e| format!("Keystone HTTP client: {e}"))?;
        let auth_v3 = v3_url(&config.auth_url);
        Ok(Client {
            http,
            config,
            auth_v3,
            service: Mutex::new(None),
        })
    }

    /// What Keystone says of `token`.
    pub async fn validate(&self, token: &str) -> Result<Validation, Unavailable> {
        let mut renewed = false;
        loop {
            let service = self.service_auth(renewed).await?;
            let url = format!("{}/auth/tokens?nocatalog", service.identity_v3);
            let response = self
                .send(|| {
                    self.http
                        .get(&url)
                        .header("X-Auth-Token", &service.token)
                        .header("X-Subject-Token", token)
                })
                .await?;
            match response.status() {
                StatusCode::OK => {
                    let body = read_body(response).await?;
                    return Ok(match token::parse(&body) {
                        Some(v) => Validation::Valid(Box::new(v)),
                        None => {
                            tracing::warn!("Keystone answered a token validation with no token");
                            Validation::Invalid
                        }
                    });
                }
                StatusCode::NOT_FOUND => return Ok(Validation::Invalid),
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN if !renewed => {
                    // Our own token was revoked or lost its roles: authenticate again.
                    renewed = true;
                }
                status => {
                    return Err(Unavailable(format!(
                        "Keystone answered {status} to a token validation at {url}"
                    )))
                }
            }
        }
    }

    /// Authenticates placementd's service user now (start-up warm-up); returns who it is.
    pub async fn authenticate_service(&self) -> Result<String, Unavailable> {
        let auth = self.service_auth(true).await?;
        Ok(auth.identity_v3)
    }

    /// placementd's own token: the kept one, or a new one when it is close to expiry or
    /// `renew` is set.
    async fn service_auth(&self, renew: bool) -> Result<ServiceAuth, Unavailable> {
        let mut kept = self.service.lock().await;
        if let Some(auth) = kept.as_ref() {
            let fresh = auth
                .expires_at
                .duration_since(SystemTime::now())
                .is_ok_and(|left| left > RENEW_BEFORE);
            if fresh && !renew {
                return Ok(auth.clone());
            }
        }
        let auth = self.password_auth().await?;
        *kept = Some(auth.clone());
        Ok(auth)
    }

    async fn password_auth(&self) -> Result<ServiceAuth, Unavailable> {
        let c = &self.config;
        let url = format!("{}/auth/tokens", self.auth_v3);
        let body = password_request(c);
        let response = self.send(|| self.http.post(&url).json(&body)).await?;
        let status = response.status();
        if status != StatusCode::CREATED && status != StatusCode::OK {
            return Err(Unavailable(format!(
                "Keystone at {url} refused placementd's credentials ([keystone_authtoken] \
                 username/password/project): {status}"
            )));
        }
        let token = response
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| Unavailable(format!("Keystone at {url}: no X-Subject-Token")))?;
        let body = read_body(response).await?;
        let issued: Issued = serde_json::from_slice(&body)
            .map_err(|e| Unavailable(format!("Keystone at {url}: unreadable token: {e}")))?;
        let expires_at = token::parse_time(&issued.token.expires_at)
            .ok_or_else(|| Unavailable(format!("Keystone at {url}: unreadable expires_at")))?;
        let identity_v3 = issued
            .token
            .catalog
            .iter()
            .find(|s| s.kind == "identity")
            .and_then(|s| {
                s.endpoints
                    .iter()
                    .find(|e| {
                        e.interface == c.interface
                            && c.region_name.as_ref().is_none_or(|r| {
                                e.region_id.as_ref() == Some(r) || e.region.as_ref() == Some(r)
                            })
                    })
                    .map(|e| v3_url(&e.url))
            })
            .unwrap_or_else(|| self.auth_v3.clone());
        Ok(ServiceAuth {
            token,
            expires_at,
            identity_v3,
        })
    }

    /// Sends a request, retrying connection failures and timeouts.
    async fn send(
        &self,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, Unavailable> {
        let mut attempt = 0;
        loop {
            match request().send().await {
                Ok(r) if r.status().is_server_error() && attempt < self.config.max_retries => {}
                Ok(r) => return Ok(r),
                // A pooled connection the server closed fails as a request error: retried.
                Err(e)
                    if (e.is_connect() || e.is_timeout() || e.is_request())
                        && attempt < self.config.max_retries =>
                {
                    tracing::debug!(error = %e, attempt, "Keystone request failed; retrying");
                }
                Err(e) => return Err(Unavailable(error_chain(&e))),
            }
            attempt += 1;
            tokio::time::sleep(RETRY_PAUSE * attempt).await;
        }
    }
}

/// keystoneauth's v3 password plugin request, scoped to the service project.
fn password_request(c: &KeystoneConfig) -> serde_json::Value {
    let domain = |id: &Option<String>, name: &Option<String>| match (id, name) {
        (Some(id), _) => Some(json!({ "id": id })),
        (None, Some(name)) => Some(json!({ "name": name })),
        (None, None) => None,
    };
    let mut user = serde_json::Map::new();
    match (&c.user_id, &c.username) {
        (Some(id), _) => {
            user.insert("id".into(), json!(id));
        }
        (None, name) => {
            user.insert("name".into(), json!(name.clone().unwrap_or_default()));
            if let Some(d) = domain(&c.user_domain_id, &c.user_domain_name) {
                user.insert("domain".into(), d);
            }
        }
    }
    user.insert("password".into(), json!(c.password));
    let mut auth = json!({
        "identity": { "methods": ["password"], "password": { "user": user } }
    });
    let project = match (&c.project_id, &c.project_name) {
        (Some(id), _) => Some(json!({ "id": id })),
        (None, Some(name)) => {
            let mut p = json!({ "name": name });
            if let Some(d) = domain(&c.project_domain_id, &c.project_domain_name) {
                p["domain"] = d;
            }
            Some(p)
        }
        (None, None) => None,
    };
    if let Some(project) = project {
        auth["scope"] = json!({ "project": project });
    }
    json!({ "auth": auth })
}

#[derive(Deserialize)]
struct Issued {
    token: IssuedToken,
}

#[derive(Deserialize)]
struct IssuedToken {
    expires_at: String,
    #[serde(default)]
    catalog: Vec<CatalogService>,
}

#[derive(Deserialize)]
struct CatalogService {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    endpoints: Vec<CatalogEndpoint>,
}

#[derive(Deserialize)]
struct CatalogEndpoint {
    url: String,
    interface: String,
    #[serde(default)]
    region_id: Option<String>,
    #[serde(default)]
    region: Option<String>,
}

/// An identity URL as given (`http://k:5000`, `…/v3`, `…/identity/v3/`) → its `…/v3`.
fn v3_url(url: &str) -> String {
    let base = url.trim_end_matches('/');
    if base.ends_with("/v3") {
        base.to_string()
    } else {
        format!("{base}/v3")
    }
}

async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>, Unavailable> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| Unavailable(error_chain(&e)))?
    {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(Unavailable(format!(
                "Keystone answer larger than {MAX_ANSWER_BYTES} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_urls_end_in_v3() {
        assert_eq!(v3_url("http://k:5000"), "http://k:5000/v3");
        assert_eq!(v3_url("http://k:5000/"), "http://k:5000/v3");
        assert_eq!(v3_url("http://k/identity/v3/"), "http://k/identity/v3");
    }

    #[test]
    fn the_password_request_names_user_and_project_by_name_or_id() {
        let mut c = KeystoneConfig::new("http://k:5000");
        c.username = Some("placement".into());
        c.password = "pw".into();
        c.user_domain_name = Some("Default".into());
        c.project_name = Some("service".into());
        c.project_domain_id = Some("default".into());
        let r = password_request(&c);
        let user = &r["auth"]["identity"]["password"]["user"];
        assert_eq!(user["name"], "placement");
        assert_eq!(user["domain"]["name"], "Default");
        assert_eq!(user["password"], "pw");
        assert_eq!(r["auth"]["scope"]["project"]["name"], "service");
        assert_eq!(r["auth"]["scope"]["project"]["domain"]["id"], "default");
        c.user_id = Some("u1".into());
        c.project_id = Some("p1".into());
        let r = password_request(&c);
        assert_eq!(r["auth"]["identity"]["password"]["user"]["id"], "u1");
        assert_eq!(r["auth"]["scope"]["project"], json!({"id": "p1"}));
    }
}
