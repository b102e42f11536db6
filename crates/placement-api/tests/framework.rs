//! The request pipeline end to end over a LocalBackend: auth, microversions, error shapes.

use std::sync::Arc;

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use placement_api::{router, ApiConfig, LocalBackend};
use serde_json::Value;
use tower::ServiceExt;

async fn call(
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (StatusCode, http::HeaderMap, Value) {
    let app = router(Arc::new(LocalBackend::new()), ApiConfig::default());
    let mut b = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let resp = app
        .oneshot(b.body(Body::from(body.to_string())).expect("request"))
        .await
        .expect("infallible");
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let json = serde_json::from_slice(&bytes)
        .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, headers, json)
}

#[tokio::test]
async fn root_needs_no_token_and_has_version_headers() {
    let (s, h, j) = call(
        "GET",
        "/",
        &[("openstack-api-version", "placement latest")],
        "",
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["openstack-api-version"], "placement 1.39");
    assert_eq!(h["vary"], "openstack-api-version");
    assert!(h["openstack-request-id"]
        .to_str()
        .unwrap_or("")
        .starts_with("req-"));
    assert!(h.contains_key("last-modified"));
    assert_eq!(j["versions"][0]["max_version"], "1.39");
}

#[tokio::test]
async fn errors_carry_the_version_but_no_vary() {
    let headers = [
        ("x-auth-token", "admin"),
        ("openstack-api-version", "placement 1.39"),
    ];
    let missing = "/resource_providers/2a5c8a5e-3b2c-4f0a-9f3a-0d3c1f4b5e6a";
    let (s, h, _) = call("GET", missing, &headers, "").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(h["openstack-api-version"], "placement 1.39");
    assert!(!h.contains_key("vary"), "{h:?}");
    let (s, h, _) = call("GET", "/resource_providers", &headers, "").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["vary"], "openstack-api-version");
}

#[tokio::test]
async fn unknown_path_wrong_method_no_token() {
    let (s, _, j) = call(
        "GET",
        "/barnabas",
        &[
            ("x-auth-token", "admin"),
            ("openstack-api-version", "placement 1.23"),
        ],
        "",
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(j["errors"][0]["title"], "Not Found");
    assert_eq!(j["errors"][0]["code"], "placement.undefined_code");
    let (s, h, j) = call("DELETE", "/", &[("x-auth-token", "admin")], "").await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(h["allow"], "GET");
    assert!(j["errors"][0]["detail"]
        .as_str()
        .unwrap_or("")
        .contains("The method DELETE is not allowed"));
    let (s, _, _) = call("GET", "/resource_providers", &[], "").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn bad_microversions() {
    let (s, _, j) = call(
        "GET",
        "/",
        &[("openstack-api-version", "placement 0.5")],
        "",
    )
    .await;
    assert_eq!(s, StatusCode::NOT_ACCEPTABLE);
    assert_eq!(j["errors"][0]["max_version"], "1.39");
    let (s, _, _) = call(
        "GET",
        "/",
        &[("openstack-api-version", "placement 1.2.3")],
        "",
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

async fn call_with(
    config: ApiConfig,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, http::HeaderMap) {
    let app = router(Arc::new(LocalBackend::new()), config);
    let mut b = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let resp = app
        .oneshot(b.body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    (resp.status(), resp.headers().clone())
}

#[tokio::test]
async fn cors_preflight_and_simple_requests() {
    let cors = || ApiConfig::for_conformance_fixture("CORSFixture");
    let pre = [
        ("origin", "http://valid.example.com"),
        ("access-control-request-method", "GET"),
        ("access-control-request-headers", "openstack-api-version"),
    ];
    let (s, h) = call_with(cors(), "OPTIONS", "/", &pre).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["access-control-allow-origin"], "http://valid.example.com");
    assert_eq!(h["access-control-allow-headers"], "openstack-api-version");
    let (s, h) = call_with(
        cors(),
        "OPTIONS",
        "/",
        &[
            ("origin", "http://evil.example.com"),
            ("access-control-request-method", "GET"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(!h.contains_key("access-control-allow-origin"));
    // Without CORS configured a preflight is just a wrong method.
    let (s, _) = call_with(ApiConfig::default(), "OPTIONS", "/", &pre).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    let (s, h) = call_with(
        cors(),
        "GET",
        "/",
        &[("origin", "http://valid.example.com")],
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["access-control-allow-origin"], "http://valid.example.com");
}

#[tokio::test]
async fn policy_modes() {
    let secure = || ApiConfig::for_conformance_fixture("SecureRBACPolicyFixture");
    let service = [
        ("x-auth-token", "user"),
        ("x-roles", "service"),
        ("x-project-id", "svc"),
    ];
    let member = [
        ("x-auth-token", "user"),
        ("x-roles", "member,reader"),
        ("x-project-id", "p"),
    ];
    let system_admin = [
        ("x-auth-token", "user"),
        ("x-roles", "admin"),
        ("openstack-system-scope", "all"),
    ];
    assert_eq!(
        call_with(secure(), "GET", "/resource_providers", &service)
            .await
            .0,
        StatusCode::OK
    );
    // The legacy defaults are oslo.policy's "new rule OR deprecated rule": the service
    // role still passes, a member does not.
    let legacy = || ApiConfig::for_conformance_fixture("APIFixture");
    assert_eq!(
        call_with(legacy(), "GET", "/resource_providers", &service)
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        call_with(legacy(), "GET", "/resource_providers", &member)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call_with(secure(), "GET", "/resource_providers", &member)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call_with(secure(), "GET", "/resource_providers", &system_admin)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let open = ApiConfig::for_conformance_fixture("OpenPolicyFixture");
    assert_eq!(
        call_with(open, "GET", "/resource_providers", &member)
            .await
            .0,
        StatusCode::OK
    );
}

/// An identity service that knows one token, or is down.
#[derive(Debug)]
struct OneToken {
    down: bool,
}

impl placement_api::Authenticate for OneToken {
    fn authenticate<'a>(
        &'a self,
        token: &'a str,
        _service_token: Option<&'a str>,
    ) -> placement_api::AuthFuture<'a> {
        let answer = if self.down {
            Err(placement_api::AuthError::Unavailable(
                "connection refused".into(),
            ))
        } else if token == "good" {
            Ok(placement_api::context::Caller {
                user_id: "u".into(),
                project_id: Some("p".into()),
                roles: vec!["admin".into()],
                ..Default::default()
            })
        } else {
            Err(placement_api::AuthError::Unauthorized)
        };
        Box::pin(async move { answer })
    }
}

fn keystone(down: bool) -> ApiConfig {
    ApiConfig {
        auth: placement_api::AuthStrategy::Keystone {
            validator: Arc::new(OneToken { down }),
            www_authenticate_uri: "https://keystone.example.com/v3".into(),
        },
        ..ApiConfig::default()
    }
}

#[tokio::test]
async fn keystone_answers_as_keystonemiddleware_does() {
    let good = [("x-auth-token", "good")];
    let (s, _) = call_with(keystone(false), "GET", "/resource_providers", &good).await;
    assert_eq!(s, StatusCode::OK);
    for headers in [&[("x-auth-token", "bad")][..], &[][..]] {
        let (s, h) = call_with(keystone(false), "GET", "/resource_providers", headers).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert_eq!(
            h["www-authenticate"],
            "Keystone uri=\"https://keystone.example.com/v3\""
        );
        assert!(h.contains_key("openstack-request-id"));
    }
    // The legacy header name of the token is read too.
    let (s, _) = call_with(
        keystone(false),
        "GET",
        "/resource_providers",
        &[("x-storage-token", "good")],
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, h) = call_with(keystone(true), "GET", "/resource_providers", &good).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert!(!h.contains_key("www-authenticate"));
    // The root needs neither a token nor Keystone.
    let (s, _) = call_with(keystone(true), "GET", "/", &[]).await;
    assert_eq!(s, StatusCode::OK);
}
