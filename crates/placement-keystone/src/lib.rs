//! placement-keystone: Keystone token validation for the Placement API, as keystonemiddleware's
//! `auth_token` does it for the real Placement.
//!
//! [`Keystone`] implements [`placement_api::Authenticate`]: for each request it looks the
//! token up in a per-node cache ([`cache`]: by SHA-256, at most `token_cache_time`, never
//! past the token's expiry, refusals too, bounded) and otherwise asks Keystone
//! ([`client`]), one call per token however many requests carry it at once. A token that
//! has expired is refused even if Keystone still describes it. An `X-Service-Token` is
//! validated the same way; with `service_token_roles_required` it must also carry one of
//! `service_token_roles`, and its user, project and roles become the caller's `service_*`
//! credentials.
//!
//! Keystone being down never stops placementd from starting: [`Keystone::spawn_warm_up`]
//! keeps trying to authenticate in the background and logs until it succeeds; meanwhile
//! requests are answered 503, and they succeed again as soon as Keystone answers, without a
//! restart.
//!
//! Writes forwarded from a follower to the leader are not validated again: the follower
//! validated the token and checked policy, and the caller's identity travels inside the
//! forwarded command over the peer port (mutually authenticated TLS between members).

pub mod cache;
pub mod client;
pub mod token;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use placement_api::auth::Reachability;
use placement_api::context::Caller;
use placement_api::{AuthError, AuthFuture, Authenticate};
use tokio::sync::OnceCell;

use crate::cache::{Key, TokenCache, Verdict};
use crate::client::{Client, Unavailable, Validation};

/// keystonemiddleware's default `token_cache_time`.
pub const DEFAULT_TOKEN_CACHE_TIME: Duration = Duration::from_secs(300);
/// Tokens remembered per node; beyond it the oldest are forgotten (and asked about again).
pub const TOKEN_CACHE_CAPACITY: usize = 10_000;
/// keystonemiddleware's default `http_request_max_retries`.
pub const DEFAULT_MAX_RETRIES: u32 = 3;
/// How long one call to Keystone may take.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// `[keystone_authtoken]`, as placementd uses it.
#[derive(Debug, Clone)]
pub struct KeystoneConfig {
    pub auth_url: String,
    pub username: Option<String>,
    pub user_id: Option<String>,
    pub password: String,
    pub user_domain_name: Option<String>,
    pub user_domain_id: Option<String>,
    pub project_name: Option<String>,
    pub project_id: Option<String>,
    pub project_domain_name: Option<String>,
    pub project_domain_id: Option<String>,
    pub region_name: Option<String>,
    /// Which identity endpoint of the catalog validates tokens (`internal` by default).
    pub interface: String,
    pub cafile: Option<PathBuf>,
    pub certfile: Option<PathBuf>,
    pub keyfile: Option<PathBuf>,
    pub insecure: bool,
    pub connect_timeout: Option<Duration>,
    pub request_timeout: Duration,
    pub max_retries: u32,
    /// `None`: no caching (`token_cache_time = -1`).
    pub token_cache_time: Option<Duration>,
    pub service_token_roles: Vec<String>,
    pub service_token_roles_required: bool,
}

impl KeystoneConfig {
    /// keystonemiddleware's defaults for everything but `auth_url`.
    pub fn new(auth_url: &str) -> KeystoneConfig {
        KeystoneConfig {
            auth_url: auth_url.to_string(),
            username: None,
            user_id: None,
            password: String::new(),
            user_domain_name: None,
            user_domain_id: None,
            project_name: None,
            project_id: None,
            project_domain_name: None,
            project_domain_id: None,
            region_name: None,
            interface: "internal".into(),
            cafile: None,
            certfile: None,
            keyfile: None,
            insecure: false,
            connect_timeout: None,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_retries: DEFAULT_MAX_RETRIES,
            token_cache_time: Some(DEFAULT_TOKEN_CACHE_TIME),
            service_token_roles: vec!["service".into()],
            service_token_roles_required: true,
        }
    }
}

/// Counters for operators (issue: metrics).
#[derive(Debug, Default)]
pub struct Stats {
    pub cache_hits: AtomicU64,
    pub cache_misses: AtomicU64,
    pub refused: AtomicU64,
    pub unavailable: AtomicU64,
}

/// A token validation in flight, shared by every request carrying that token.
type Pending = Arc<OnceCell<Result<Verdict, Unavailable>>>;

#[derive(Debug)]
pub struct Keystone {
    client: Client,
    service_token_roles: Vec<String>,
    service_token_roles_required: bool,
    cache: Mutex<TokenCache>,
    pending: Mutex<HashMap<Key, Pending>>,
    pub stats: Stats,
    warned_service_roles: std::sync::atomic::AtomicBool,
    /// When the last call to Keystone ended, and why it got no answer if it did not
    /// (`/readyz`'s `keystone` check).
    last_call: Mutex<Option<(Instant, Option<String>)>>,
}

impl Keystone {
    pub fn new(config: KeystoneConfig) -> Result<Arc<Keystone>, String> {
        let cache = TokenCache::new(config.token_cache_time, TOKEN_CACHE_CAPACITY);
        let (roles, required) = (
            config.service_token_roles.clone(),
            config.service_token_roles_required,
        );
        Ok(Arc::new(Keystone {
            client: Client::new(config)?,
            service_token_roles: roles,
            service_token_roles_required: required,
            cache: Mutex::new(cache),
            pending: Mutex::new(HashMap::new()),
            stats: Stats::default(),
            warned_service_roles: false.into(),
            last_call: Mutex::new(None),
        }))
    }

    /// Authenticates placementd to Keystone in the background, retrying until it works, so
    /// that a misconfiguration shows in the log at start and not at the first request.
    pub fn spawn_warm_up(self: &Arc<Self>) {
        let me = self.clone();
        tokio::spawn(async move {
            let mut delay = Duration::from_secs(1);
            let mut attempts = 0u32;
            loop {
                let result = me.client.authenticate_service().await;
                me.called(result.as_ref().err());
                match result {
                    Ok(identity) => {
                        tracing::info!(%identity, "authenticated to Keystone");
                        return;
                    }
                    Err(Unavailable(reason)) => {
                        attempts += 1;
                        if attempts == 1 || attempts.is_multiple_of(10) {
                            tracing::error!(
                                %reason,
                                attempts,
                                "cannot authenticate to Keystone; API requests are answered \
                                 503 until it works (retrying)"
                            );
                        }
                    }
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        });
    }

    /// The verdict on one token: cached, or asked of Keystone (once for all concurrent
    /// requests with the same token).
    async fn verdict(&self, token: &str) -> Result<Verdict, Unavailable> {
        let key = cache::key(token);
        let cached = lock(&self.cache).get(&key, Instant::now());
        let verdict = match cached {
            Some(v) => {
                self.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
                placement_metrics::catalog::TOKEN_CACHE_HITS.inc();
                v
            }
            None => {
                self.stats.cache_misses.fetch_add(1, Ordering::Relaxed);
                placement_metrics::catalog::TOKEN_CACHE_MISSES.inc();
                let cell = lock(&self.pending).entry(key).or_default().clone();
                let result = cell
                    .get_or_init(|| async {
                        let result = self.ask(token).await;
                        if let Ok(v) = &result {
                            lock(&self.cache).put(
                                key,
                                v.clone(),
                                Instant::now(),
                                SystemTime::now(),
                            );
                        }
                        result
                    })
                    .await
                    .clone();
                let mut pending = lock(&self.pending);
                if pending.get(&key).is_some_and(|p| Arc::ptr_eq(p, &cell)) {
                    pending.remove(&key);
                }
                result?
            }
        };
        // Cached or not, an expired token is refused (keystonemiddleware's
        // `will_expire_soon(0)`).
        Ok(match verdict {
            Verdict::Valid(v) if v.expires_at <= SystemTime::now() => Verdict::Invalid,
            v => v,
        })
    }

    /// Notes how a call to Keystone ended.
    fn called(&self, error: Option<&Unavailable>) {
        *lock(&self.last_call) = Some((Instant::now(), error.map(|Unavailable(e)| e.clone())));
    }

    async fn ask(&self, token: &str) -> Result<Verdict, Unavailable> {
        let validation = self.client.validate(token).await;
        self.called(validation.as_ref().err());
        Ok(match validation? {
            Validation::Valid(v) => Verdict::Valid(Arc::from(v)),
            Validation::Invalid => Verdict::Invalid,
        })
    }

    async fn caller(&self, token: &str, service_token: Option<&str>) -> Result<Caller, AuthError> {
        let unavailable = |Unavailable(reason)| {
            self.stats.unavailable.fetch_add(1, Ordering::Relaxed);
            placement_metrics::catalog::KEYSTONE_UNAVAILABLE.inc();
            AuthError::Unavailable(reason)
        };
        let refused = || {
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
            placement_metrics::catalog::TOKENS_REFUSED.inc();
            AuthError::Unauthorized
        };
        let service = match service_token {
            None => None,
            Some(t) => match self.verdict(t.trim()).await.map_err(unavailable)? {
                Verdict::Invalid => return Err(refused()),
                Verdict::Valid(v) => {
                    if !self.has_service_role(&v.caller) {
                        if self.service_token_roles_required {
                            return Err(refused());
                        }
                        if !self.warned_service_roles.swap(true, Ordering::Relaxed) {
                            tracing::warn!(
                                "a valid token was sent as a service token but has none of \
                                 service_token_roles; accepted (service_token_roles_required \
                                 is false)"
                            );
                        }
                    }
                    Some(v)
                }
            },
        };
        match self.verdict(token.trim()).await.map_err(unavailable)? {
            Verdict::Invalid => Err(refused()),
            Verdict::Valid(v) => {
                let mut caller = v.caller.clone();
                if let Some(s) = service {
                    caller.service_user_id = Some(s.caller.user_id.clone());
                    caller.service_project_id = s.caller.project_id.clone();
                    caller.service_roles = s.caller.roles.clone();
                }
                Ok(caller)
            }
        }
    }

    fn has_service_role(&self, caller: &Caller) -> bool {
        self.service_token_roles.iter().any(|r| caller.has_role(r))
    }
}

impl Authenticate for Keystone {
    fn authenticate<'a>(
        &'a self,
        token: &'a str,
        service_token: Option<&'a str>,
    ) -> AuthFuture<'a> {
        Box::pin(self.caller(token, service_token))
    }

    fn reachability(&self) -> Option<Reachability> {
        lock(&self.last_call)
            .as_ref()
            .map(|(at, error)| Reachability {
                age: at.elapsed(),
                error: error.clone(),
            })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
