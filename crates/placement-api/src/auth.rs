//! Who is calling: the authentication step of the pipeline ([`crate::context`]), in the two
//! strategies of Placement's `[api] auth_strategy`.
//!
//! - **keystone** — keystonemiddleware's `auth_token`: the request's `X-Auth-Token` (and an
//!   `X-Service-Token`, if sent) is validated by an [`Authenticate`] implementation (the
//!   `placement-keystone` crate asks Keystone, with a cache); the [`Caller`] is what Keystone
//!   said of the token. Identity headers a client sends (`X-Roles`, `X-Project-Id`,
//!   `OpenStack-System-Scope`, …) are ignored. No token, or a token Keystone refuses, is
//!   401 with keystonemiddleware's body and `WWW-Authenticate: Keystone uri="…"`; Keystone
//!   unreachable is 503.
//! - **noauth2** — Placement's development middleware: any token is accepted, `user[:project]`;
//!   roles come from `X-Roles`, or are `admin` for the user `admin`; `X-Project-Id` wins over
//!   the token's project; `OpenStack-System-Scope: all` makes the request system-scoped.
//!   Only a missing token is refused (401). Anyone can claim any role: never in a real cloud.
//!
//! Either way the [`PUBLIC_PATHS`] (the version document `GET /` and the OpenAPI document
//! `GET /openapi.json`) need no token.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http::HeaderMap;

use crate::context::Caller;

/// The request header with the caller's token.
pub const AUTH_TOKEN_HEADER: &str = "x-auth-token";
/// Its legacy name, still read by keystonemiddleware when `X-Auth-Token` is absent.
pub const STORAGE_TOKEN_HEADER: &str = "x-storage-token";
/// The request header with a service's token (a service acting for a user).
pub const SERVICE_TOKEN_HEADER: &str = "x-service-token";

/// The paths served without a token, under either strategy: the version document (as
/// Placement's `PlacementKeystoneAuth` lets `/` through) and the OpenAPI document, which
/// says how to get and send a token. Any method: the others answer 405 without one.
pub const PUBLIC_PATHS: [&str; 2] = ["/", "/openapi.json"];

/// Whether a request path needs no token (an empty path is `/`).
pub fn is_public_path(path: &str) -> bool {
    path.is_empty() || PUBLIC_PATHS.contains(&path)
}

/// Why a request was not authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// No token, or a token (or service token) the identity service refused: 401.
    Unauthorized,
    /// The identity service could not be asked: 503. The text is for the log.
    Unavailable(String),
}

/// The future [`Authenticate::authenticate`] returns.
pub type AuthFuture<'a> = Pin<Box<dyn Future<Output = Result<Caller, AuthError>> + Send + 'a>>;

/// Validates tokens (keystonemiddleware's `auth_token`).
pub trait Authenticate: Send + Sync + fmt::Debug + 'static {
    /// The caller `token` stands for; with a `service_token`, that one must be valid too
    /// (and, if so configured, carry a service role), and its identity is added to the
    /// caller's `service_*` fields.
    fn authenticate<'a>(&'a self, token: &'a str, service_token: Option<&'a str>)
        -> AuthFuture<'a>;

    /// What the last call to the identity service found (for `/readyz`), without calling
    /// it; `None` before the first call.
    fn reachability(&self) -> Option<Reachability> {
        None
    }
}

/// The outcome of the last call to the identity service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reachability {
    /// How long ago that call ended.
    pub age: std::time::Duration,
    /// Why it got no answer; `None` when it got one (any answer, a refused token included).
    pub error: Option<String>,
}

/// `[api] auth_strategy`.
#[derive(Clone, Default)]
pub enum AuthStrategy {
    /// Trust the client's headers (development and the conformance suite only).
    #[default]
    Noauth2,
    Keystone {
        validator: Arc<dyn Authenticate>,
        /// `[keystone_authtoken] www_authenticate_uri`: where a refused client should get a
        /// token, sent in `WWW-Authenticate`.
        www_authenticate_uri: String,
    },
}

impl fmt::Debug for AuthStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthStrategy::Noauth2 => f.write_str("noauth2"),
            AuthStrategy::Keystone {
                www_authenticate_uri,
                ..
            } => write!(f, "keystone ({www_authenticate_uri})"),
        }
    }
}

/// The caller of a request: `Ok(None)` only for a public path ([`is_public_path`]) without a
/// token (under keystone, a public path is never authenticated, token or not).
pub(crate) async fn authenticate(
    strategy: &AuthStrategy,
    headers: &HeaderMap,
    public: bool,
) -> Result<Option<Caller>, AuthError> {
    let token = header(headers, AUTH_TOKEN_HEADER)
        .or_else(|| match strategy {
            AuthStrategy::Keystone { .. } => header(headers, STORAGE_TOKEN_HEADER),
            AuthStrategy::Noauth2 => None,
        })
        .filter(|t| !t.is_empty());
    if public && matches!(strategy, AuthStrategy::Keystone { .. }) {
        // Placement's `PlacementKeystoneAuth` lets the version document through untouched.
        return Ok(None);
    }
    let Some(token) = token else {
        return if public {
            Ok(None)
        } else {
            Err(AuthError::Unauthorized)
        };
    };
    match strategy {
        AuthStrategy::Noauth2 => Ok(Some(noauth2(token, headers))),
        AuthStrategy::Keystone { validator, .. } => {
            let service_token = header(headers, SERVICE_TOKEN_HEADER).filter(|t| !t.is_empty());
            validator.authenticate(token, service_token).await.map(Some)
        }
    }
}

/// A header's value, trimmed (keystonemiddleware strips tokens too).
fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    crate::context::header_str(headers, name).map(str::trim)
}

/// Placement's `NoAuthMiddleware`.
fn noauth2(token: &str, headers: &HeaderMap) -> Caller {
    let (user, project) = match token.split_once(':') {
        Some((u, p)) if !p.is_empty() => (u, p),
        Some((u, _)) => (u, u),
        None => (token, token),
    };
    let roles: Vec<String> = match header(headers, "x-roles") {
        Some(r) => r.split(',').map(|s| s.trim().to_string()).collect(),
        None if user == "admin" => vec!["admin".into()],
        None => vec![],
    };
    let system_scope = header(headers, "openstack-system-scope").is_some_and(|s| !s.is_empty());
    let project = header(headers, "x-project-id").unwrap_or(project);
    Caller {
        user_id: user.to_string(),
        project_id: (!system_scope).then(|| project.to_string()),
        roles,
        system_scope,
        is_admin_project: true,
        ..Caller::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().expect("header value"));
        }
        h
    }

    #[derive(Debug)]
    struct Fixed(Result<Caller, AuthError>);

    impl Authenticate for Fixed {
        fn authenticate<'a>(&'a self, _: &'a str, _: Option<&'a str>) -> AuthFuture<'a> {
            let answer = self.0.clone();
            Box::pin(async move { answer })
        }
    }

    fn keystone(answer: Result<Caller, AuthError>) -> AuthStrategy {
        AuthStrategy::Keystone {
            validator: Arc::new(Fixed(answer)),
            www_authenticate_uri: "http://keystone/v3".into(),
        }
    }

    #[tokio::test]
    async fn noauth2_takes_the_callers_word() {
        let h = headers(&[("x-auth-token", "alice:p1"), ("x-roles", "reader, member")]);
        let c = authenticate(&AuthStrategy::Noauth2, &h, false)
            .await
            .expect("accepted")
            .expect("caller");
        assert_eq!(c.user_id, "alice");
        assert_eq!(c.project_id.as_deref(), Some("p1"));
        assert_eq!(c.roles, ["reader", "member"]);
        let h = headers(&[("x-auth-token", "admin"), ("openstack-system-scope", "all")]);
        let c = authenticate(&AuthStrategy::Noauth2, &h, false)
            .await
            .expect("accepted")
            .expect("caller");
        assert!(c.system_scope && c.project_id.is_none() && c.has_role("admin"));
    }

    #[tokio::test]
    async fn a_missing_token_is_refused_except_at_the_root() {
        for strategy in [AuthStrategy::Noauth2, keystone(Ok(Caller::default()))] {
            let none = HeaderMap::new();
            assert_eq!(
                authenticate(&strategy, &none, false).await,
                Err(AuthError::Unauthorized)
            );
            assert_eq!(authenticate(&strategy, &none, true).await, Ok(None));
            let empty = headers(&[("x-auth-token", "")]);
            assert_eq!(
                authenticate(&strategy, &empty, false).await,
                Err(AuthError::Unauthorized)
            );
        }
    }

    #[tokio::test]
    async fn the_version_and_openapi_documents_need_no_token() {
        assert!(is_public_path("/") && is_public_path("") && is_public_path("/openapi.json"));
        for private in ["/openapi.json/", "/openapi", "/resource_providers", "//"] {
            assert!(!is_public_path(private), "{private}");
        }
        let refused = keystone(Err(AuthError::Unauthorized));
        for strategy in [AuthStrategy::Noauth2, refused] {
            for path in PUBLIC_PATHS {
                let public = is_public_path(path);
                assert_eq!(
                    authenticate(&strategy, &HeaderMap::new(), public).await,
                    Ok(None),
                    "{strategy:?} {path}"
                );
            }
        }
    }

    #[tokio::test]
    async fn keystone_ignores_identity_headers_and_passes_its_failures_on() {
        let said = Caller {
            user_id: "u".into(),
            project_id: Some("p".into()),
            roles: vec!["reader".into()],
            ..Caller::default()
        };
        let h = headers(&[
            ("x-auth-token", "tok"),
            ("x-roles", "admin"),
            ("x-project-id", "other"),
            ("openstack-system-scope", "all"),
        ]);
        let c = authenticate(&keystone(Ok(said.clone())), &h, false)
            .await
            .expect("accepted");
        assert_eq!(c, Some(said));
        let refused = keystone(Err(AuthError::Unauthorized));
        assert_eq!(
            authenticate(&refused, &h, false).await,
            Err(AuthError::Unauthorized)
        );
        assert_eq!(authenticate(&refused, &h, true).await, Ok(None));
        let down = keystone(Err(AuthError::Unavailable("down".into())));
        assert!(matches!(
            authenticate(&down, &h, false).await,
            Err(AuthError::Unavailable(_))
        ));
        assert_eq!(authenticate(&down, &h, true).await, Ok(None));
    }
}
