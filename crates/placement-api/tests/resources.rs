//! Providers, inventories, resource classes, traits and aggregates over a LocalBackend, as
//! readable request/response steps. Each step: method, path, microversion, body → status
//! (and, where it matters, a JSON value at a path).

use std::sync::Arc;

use axum::body::Body;
use axum::Router;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use placement_api::{router, ApiConfig, LocalBackend};
use serde_json::{json, Value};
use tower::ServiceExt;

const RP: &str = "11111111-2222-3333-4444-555555555555";
const CHILD: &str = "11111111-2222-3333-4444-666666666666";
const AGG: &str = "aaaaaaaa-2222-3333-4444-555555555555";

struct Api {
    app: Router,
}

struct Reply {
    status: StatusCode,
    headers: http::HeaderMap,
    json: Value,
}

impl Api {
    fn new() -> Self {
        Api {
            app: router(Arc::new(LocalBackend::new()), ApiConfig::default()),
        }
    }

    async fn call(&self, method: &str, path: &str, version: &str, body: Option<Value>) -> Reply {
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header("x-auth-token", "admin")
            .header("openstack-api-version", format!("placement {version}"));
        let body = match body {
            Some(v) => {
                b = b.header("content-type", "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        let resp = self
            .app
            .clone()
            .oneshot(b.body(body).expect("request builds"))
            .await
            .expect("router is infallible");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .expect("body reads")
            .to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            json,
        }
    }

    /// Calls and asserts the status, returning the reply for further checks.
    async fn expect(
        &self,
        method: &str,
        path: &str,
        version: &str,
        body: Option<Value>,
        status: u16,
    ) -> Reply {
        let r = self.call(method, path, version, body).await;
        assert_eq!(
            r.status.as_u16(),
            status,
            "{method} {path} @{version}: {}",
            r.json
        );
        r
    }
}

fn detail(r: &Reply) -> String {
    r.json["errors"][0]["detail"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[tokio::test]
async fn provider_lifecycle_across_microversions() {
    let api = Api::new();
    // Before 1.20: 201, no body, absolute-path location.
    let r = api
        .expect(
            "POST",
            "/resource_providers",
            "1.19",
            Some(json!({"name": "cn1", "uuid": RP})),
            201,
        )
        .await;
    assert!(r.headers["location"]
        .to_str()
        .unwrap_or("")
        .ends_with(&format!("/resource_providers/{RP}")));
    // Duplicate name: 409 with the code from 1.23.
    let r = api
        .expect(
            "POST",
            "/resource_providers",
            "1.23",
            Some(json!({"name": "cn1"})),
            409,
        )
        .await;
    assert_eq!(r.json["errors"][0]["code"], "placement.duplicate_name");
    // From 1.20 the provider comes back; 1.14 adds parent/root.
    let r = api
        .expect(
            "POST",
            "/resource_providers",
            "1.20",
            Some(json!({"name": "child", "uuid": CHILD, "parent_provider_uuid": RP})),
            200,
        )
        .await;
    assert_eq!(r.json["root_provider_uuid"], RP);
    assert!(r.headers.contains_key("last-modified"));
    // Schema errors read like Python's jsonschema.
    let r = api
        .expect(
            "POST",
            "/resource_providers",
            "1.0",
            Some(json!({"name": "x", "color": 1})),
            400,
        )
        .await;
    assert!(detail(&r).contains("Additional properties are not allowed ('color' was unexpected)"));
    // Links grow with the microversion.
    let r = api
        .expect(
            "GET",
            &format!("/resource_providers/{RP}"),
            "1.0",
            None,
            200,
        )
        .await;
    assert_eq!(r.json["links"].as_array().map(Vec::len), Some(3));
    assert!(r.json.get("parent_provider_uuid").is_none());
    let r = api
        .expect(
            "GET",
            &format!("/resource_providers/{RP}"),
            "1.11",
            None,
            200,
        )
        .await;
    assert_eq!(r.json["links"].as_array().map(Vec::len), Some(6));
    // in_tree finds the whole tree.
    let r = api
        .expect(
            "GET",
            &format!("/resource_providers?in_tree={CHILD}"),
            "1.14",
            None,
            200,
        )
        .await;
    assert_eq!(
        r.json["resource_providers"].as_array().map(Vec::len),
        Some(2)
    );
    // A parent with children cannot go.
    api.expect(
        "DELETE",
        &format!("/resource_providers/{RP}"),
        "1.0",
        None,
        409,
    )
    .await;
    api.expect(
        "DELETE",
        &format!("/resource_providers/{CHILD}"),
        "1.0",
        None,
        204,
    )
    .await;
    api.expect(
        "DELETE",
        &format!("/resource_providers/{RP}"),
        "1.0",
        None,
        204,
    )
    .await;
    let r = api
        .expect(
            "GET",
            &format!("/resource_providers/{RP}"),
            "1.0",
            None,
            404,
        )
        .await;
    assert!(detail(&r).contains(&format!("No resource provider with uuid {RP} found")));
}

#[tokio::test]
async fn inventories_generations_and_capacity() {
    let api = Api::new();
    api.expect(
        "POST",
        "/resource_providers",
        "1.0",
        Some(json!({"name": "cn", "uuid": RP})),
        201,
    )
    .await;
    let inv = format!("/resource_providers/{RP}/inventories");
    let r = api
        .expect(
            "POST",
            &inv,
            "1.0",
            Some(json!({"resource_class": "VCPU", "total": 8})),
            201,
        )
        .await;
    assert_eq!(r.json["resource_provider_generation"], 1);
    assert_eq!(r.json["max_unit"], 2147483647);
    // A stale generation is a conflict.
    let r = api
        .expect(
            "PUT",
            &inv,
            "1.23",
            Some(json!({"resource_provider_generation": 0, "inventories": {}})),
            409,
        )
        .await;
    assert_eq!(r.json["errors"][0]["code"], "placement.concurrent_update");
    // reserved == total: refused before 1.26, allowed from 1.26.
    let body = json!({"resource_provider_generation": 1, "total": 8, "reserved": 8});
    let r = api
        .expect(
            "PUT",
            &format!("{inv}/VCPU"),
            "1.25",
            Some(body.clone()),
            400,
        )
        .await;
    assert!(detail(&r).contains("The reserved value is greater than or equal to total."));
    api.expect("PUT", &format!("{inv}/VCPU"), "1.26", Some(body), 200)
        .await;
    let r = api.expect("GET", &inv, "1.0", None, 200).await;
    assert_eq!(r.json["inventories"]["VCPU"]["reserved"], 8);
    // DELETE all exists from 1.5 only.
    api.expect("DELETE", &inv, "1.4", None, 405).await;
    api.expect("DELETE", &inv, "1.5", None, 204).await;
    let r = api
        .expect("GET", &format!("{inv}/VCPU"), "1.0", None, 404)
        .await;
    assert!(detail(&r).contains("No inventory of class VCPU"));
}

#[tokio::test]
async fn resource_classes_traits_and_aggregates() {
    let api = Api::new();
    // Resource classes exist from 1.2.
    api.expect("GET", "/resource_classes", "1.1", None, 404)
        .await;
    api.expect(
        "POST",
        "/resource_classes",
        "1.2",
        Some(json!({"name": "CUSTOM_GOLD"})),
        201,
    )
    .await;
    let r = api
        .expect(
            "POST",
            "/resource_classes",
            "1.2",
            Some(json!({"name": "GOLD"})),
            400,
        )
        .await;
    assert!(detail(&r).contains("'GOLD' does not match '^CUSTOM_[A-Z0-9_]+$'"));
    api.expect("PUT", "/resource_classes/CUSTOM_SILVER", "1.7", None, 201)
        .await;
    api.expect("PUT", "/resource_classes/CUSTOM_SILVER", "1.7", None, 204)
        .await;
    let r = api
        .expect("GET", "/resource_classes", "1.2", None, 200)
        .await;
    let names: Vec<&str> = r.json["resource_classes"]
        .as_array()
        .map(|a| a.iter().filter_map(|c| c["name"].as_str()).collect())
        .unwrap_or_default();
    assert!(names.contains(&"VCPU") && names.contains(&"CUSTOM_SILVER"));

    // Traits, globally and on a provider.
    api.expect("PUT", "/traits/CUSTOM_FAST", "1.6", None, 201)
        .await;
    api.expect("PUT", "/traits/FAST", "1.6", None, 400).await;
    api.expect(
        "POST",
        "/resource_providers",
        "1.0",
        Some(json!({"name": "cn", "uuid": RP})),
        201,
    )
    .await;
    let traits = format!("/resource_providers/{RP}/traits");
    let r = api
        .expect(
            "PUT",
            &traits,
            "1.6",
            Some(json!({"traits": ["CUSTOM_FAST", "HW_CPU_X86_AVX"], "resource_provider_generation": 0})),
            200,
        )
        .await;
    assert_eq!(r.json["resource_provider_generation"], 1);
    let r = api
        .expect("GET", "/traits?associated=true", "1.6", None, 200)
        .await;
    assert_eq!(r.json["traits"], json!(["CUSTOM_FAST", "HW_CPU_X86_AVX"]));
    // required / forbidden traits filter providers (forbidden from 1.22).
    let r = api
        .expect(
            "GET",
            "/resource_providers?required=CUSTOM_FAST",
            "1.18",
            None,
            200,
        )
        .await;
    assert_eq!(
        r.json["resource_providers"].as_array().map(Vec::len),
        Some(1)
    );
    api.expect(
        "GET",
        "/resource_providers?required=!CUSTOM_FAST",
        "1.21",
        None,
        400,
    )
    .await;
    let r = api
        .expect(
            "GET",
            "/resource_providers?required=!CUSTOM_FAST",
            "1.22",
            None,
            200,
        )
        .await;
    assert_eq!(
        r.json["resource_providers"].as_array().map(Vec::len),
        Some(0)
    );
    api.expect("DELETE", "/traits/CUSTOM_FAST", "1.6", None, 409)
        .await;

    // Aggregates: a bare list before 1.19, generation-checked after.
    let aggs = format!("/resource_providers/{RP}/aggregates");
    let r = api
        .expect("PUT", &aggs, "1.1", Some(json!([AGG])), 200)
        .await;
    assert!(r.json.get("resource_provider_generation").is_none());
    let r = api
        .expect(
            "PUT",
            &aggs,
            "1.19",
            Some(json!({"aggregates": [], "resource_provider_generation": 0})),
            409,
        )
        .await;
    assert!(detail(&r).contains("generation already changed"));
    let r = api
        .expect(
            "GET",
            &format!("/resource_providers?member_of={AGG}"),
            "1.3",
            None,
            200,
        )
        .await;
    assert_eq!(
        r.json["resource_providers"].as_array().map(Vec::len),
        Some(1)
    );
    let r = api
        .expect(
            "GET",
            &format!("/resource_providers?member_of=!{AGG}"),
            "1.32",
            None,
            200,
        )
        .await;
    assert_eq!(
        r.json["resource_providers"].as_array().map(Vec::len),
        Some(0)
    );
}

/// Placement's objects layer refuses an empty name on create but not on rename; `apply`
/// checks the same (its syntax step) with the same words.
#[tokio::test]
async fn an_empty_provider_name_is_refused_on_create_only() {
    let api = Api::new();
    let r = api
        .expect(
            "POST",
            "/resource_providers",
            "1.20",
            Some(json!({"name": "", "uuid": RP})),
            400,
        )
        .await;
    assert_eq!(
        detail(&r).lines().last().map(str::trim),
        Some(
            format!(
                "Unable to create resource provider \"\", {RP}: Object action create failed \
                 because: name is required"
            )
            .as_str()
        )
    );
    api.expect(
        "POST",
        "/resource_providers",
        "1.20",
        Some(json!({"name": "cn", "uuid": RP})),
        200,
    )
    .await;
    let r = api
        .expect(
            "PUT",
            &format!("/resource_providers/{RP}"),
            "1.20",
            Some(json!({"name": ""})),
            200,
        )
        .await;
    assert_eq!(r.json["name"], "");
}
