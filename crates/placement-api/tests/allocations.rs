//! Allocations, usages and the reshaper over HTTP, against a LocalBackend seeded with
//! providers through the same commands the provider handlers send.

use std::sync::Arc;

use axum::body::Body;
use axum::Router;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use placement_api::{router, ApiConfig, Backend, LivePolicy, LocalBackend, Policy};
use placement_types::{Command, Inventory, Request as Proposal, Timestamp, Uuid};
use serde_json::{json, Value};
use tower::ServiceExt;

const RP1: &str = "00000000-0000-0000-0000-0000000000a1";
const RP2: &str = "00000000-0000-0000-0000-0000000000a2";
const C1: &str = "00000000-0000-0000-0000-0000000000c1";
const C2: &str = "00000000-0000-0000-0000-0000000000c2";

fn uuid(s: &str) -> Uuid {
    Uuid::parse_str(s).expect("test uuid")
}

async fn seed(backend: &LocalBackend, command: Command) {
    let result = backend
        .write(
            Proposal {
                id: Uuid::new_v4(),
                at: Timestamp(1_700_000_000_000_000),
                command,
            },
            Default::default(),
        )
        .await
        .expect("local backend");
    result.expect("seed command accepted");
}

/// Two providers: RP1 with VCPU 8 and DISK_GB 100 (step 10), RP2 with VCPU 4.
async fn app() -> Router {
    let backend = Arc::new(LocalBackend::new());
    for (rp, name) in [(RP1, "one"), (RP2, "two")] {
        seed(
            &backend,
            Command::CreateProvider {
                uuid: uuid(rp),
                name: name.into(),
                parent: None,
            },
        )
        .await;
    }
    let disk = Inventory {
        step_size: 10,
        ..Inventory::with_total(100)
    };
    seed(
        &backend,
        Command::SetInventories {
            provider: uuid(RP1),
            generation: 0,
            inventories: [
                ("VCPU".to_string(), Inventory::with_total(8)),
                ("DISK_GB".to_string(), disk),
            ]
            .into(),
        },
    )
    .await;
    seed(
        &backend,
        Command::SetInventories {
            provider: uuid(RP2),
            generation: 0,
            inventories: [("VCPU".to_string(), Inventory::with_total(4))].into(),
        },
    )
    .await;
    // Placement's functional tests run with the legacy policy defaults, where the admin
    // token may reshape (the new defaults keep reshaping to the service role).
    let config = ApiConfig {
        policy: Arc::new(LivePolicy::fixed(Policy::defaults(false))),
        ..ApiConfig::default()
    };
    router(backend, config)
}

async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    version: &str,
    body: Option<Value>,
) -> (StatusCode, http::HeaderMap, Value) {
    let mut b = Request::builder()
        .method(method)
        .uri(uri)
        .header("x-auth-token", "admin")
        .header("openstack-api-version", format!("placement {version}"));
    if body.is_some() {
        b = b.header("content-type", "application/json");
    }
    let body = body.map(|v| v.to_string()).unwrap_or_default();
    let resp = app
        .clone()
        .oneshot(b.body(Body::from(body)).expect("request"))
        .await
        .expect("infallible");
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, json)
}

fn detail(v: &Value) -> String {
    v.pointer("/errors/0/detail")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn put_get_delete_across_microversions() {
    let app = app().await;
    // 1.0: list form, no project/user: the consumer gets the incomplete-consumer ids.
    let list_body = json!({"allocations": [
        {"resource_provider": {"uuid": RP1}, "resources": {"VCPU": 2}}
    ]});
    let (s, h, _) = call(
        &app,
        "PUT",
        &format!("/allocations/{C1}"),
        "1.0",
        Some(list_body),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert!(h.get("last-modified").is_none());

    let (s, h, j) = call(&app, "GET", &format!("/allocations/{C1}"), "1.38", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        h.get("cache-control").map(|v| v.as_bytes()),
        Some(&b"no-cache"[..])
    );
    assert_eq!(
        j,
        json!({
            "allocations": {RP1: {"resources": {"VCPU": 2}, "generation": 2}},
            "project_id": "00000000-0000-0000-0000-000000000000",
            "user_id": "00000000-0000-0000-0000-000000000000",
            "consumer_generation": 1,
            "consumer_type": "unknown",
        })
    );
    // Before 1.12 only the allocations are shown.
    let (_, _, j) = call(&app, "GET", &format!("/allocations/{C1}"), "1.11", None).await;
    assert_eq!(j.as_object().map(|o| o.len()), Some(1));

    // 1.28: generations are required and checked; dashless uuids are normalised.
    let dashless = C1.replace('-', "");
    let put = |g: Value| {
        json!({"allocations": {RP1: {"resources": {"VCPU": 3}}},
               "project_id": "p", "user_id": "u", "consumer_generation": g})
    };
    let (s, _, j) = call(
        &app,
        "PUT",
        &format!("/allocations/{dashless}"),
        "1.28",
        Some(put(json!(7))),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(detail(&j).contains("consumer generation conflict - expected 1 but got 7"));
    assert_eq!(
        j.pointer("/errors/0/code"),
        Some(&json!("placement.concurrent_update"))
    );
    let (s, _, _) = call(
        &app,
        "PUT",
        &format!("/allocations/{dashless}"),
        "1.28",
        Some(put(json!(1))),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);

    // Provider view and usages.
    let (_, _, j) = call(
        &app,
        "GET",
        &format!("/resource_providers/{RP1}/allocations"),
        "1.28",
        None,
    )
    .await;
    assert_eq!(
        j,
        json!({"allocations": {C1: {"resources": {"VCPU": 3}, "consumer_generation": 2}},
               "resource_provider_generation": 3})
    );
    let (_, _, j) = call(
        &app,
        "GET",
        &format!("/resource_providers/{RP1}/usages"),
        "1.0",
        None,
    )
    .await;
    assert_eq!(
        j,
        json!({"resource_provider_generation": 3, "usages": {"VCPU": 3, "DISK_GB": 0}})
    );

    // DELETE, then 404 with Placement's words.
    let (s, _, _) = call(&app, "DELETE", &format!("/allocations/{C1}"), "1.0", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _, j) = call(&app, "DELETE", &format!("/allocations/{C1}"), "1.0", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(detail(&j).contains(&format!("No allocations for consumer '{C1}'")));
    let (_, _, j) = call(&app, "GET", &format!("/allocations/{C1}"), "1.28", None).await;
    assert_eq!(j, json!({"allocations": {}}));
}

#[tokio::test]
async fn write_errors_carry_placements_messages() {
    let app = app().await;
    let body = |rp: &str, rc: &str, n: i64| json!({"allocations": {rp: {"resources": {rc: n}}}, "project_id": "p", "user_id": "u"});
    let cases = [
        (
            body(RP1, "COWS", 1),
            400,
            "Unable to allocate inventory for consumer",
        ),
        (body(RP1, "COWS", 1), 400, "No such resource class COWS"),
        (
            body(RP1, "VCPU", 9),
            409,
            "The requested amount would exceed the capacity",
        ),
        (
            body(RP1, "DISK_GB", 15),
            409,
            "would violate inventory constraints",
        ),
        (
            body(RP2, "DISK_GB", 10),
            409,
            "Inventory for 'DISK_GB' on resource provider",
        ),
        (
            body("00000000-0000-0000-0000-0000000000ff", "VCPU", 1),
            400,
            "that does not exist",
        ),
        (
            json!({"allocations": {}, "project_id": "p", "user_id": "u"}),
            400,
            "JSON does not validate",
        ),
    ];
    for (b, status, text) in cases {
        let (s, _, j) = call(&app, "PUT", &format!("/allocations/{C1}"), "1.12", Some(b)).await;
        assert_eq!(s.as_u16(), status, "{text}: {j}");
        assert!(detail(&j).contains(text), "{:?} lacks {text:?}", detail(&j));
    }
}

#[tokio::test]
async fn post_many_consumers_and_usages_by_type() {
    let app = app().await;
    let consumer = |rp: &str, n: i64, ct: &str| {
        json!({"allocations": {rp: {"resources": {"VCPU": n}}}, "project_id": "p",
               "user_id": "u", "consumer_generation": null, "consumer_type": ct})
    };
    // Too much for RP2 together: nothing is written.
    let (s, _, _) = call(
        &app,
        "POST",
        "/allocations",
        "1.38",
        Some(json!({C1: consumer(RP2, 3, "INSTANCE"), C2: consumer(RP2, 2, "MIGRATION")})),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _, _) = call(
        &app,
        "POST",
        "/allocations",
        "1.38",
        Some(json!({C1: consumer(RP2, 3, "INSTANCE"), C2: consumer(RP1, 2, "MIGRATION")})),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, _, j) = call(&app, "GET", "/usages?project_id=p", "1.38", None).await;
    assert_eq!(
        j,
        json!({"usages": {"INSTANCE": {"VCPU": 3, "consumer_count": 1},
                          "MIGRATION": {"VCPU": 2, "consumer_count": 1}}})
    );
    let (_, _, j) = call(
        &app,
        "GET",
        "/usages?project_id=p&consumer_type=all",
        "1.38",
        None,
    )
    .await;
    assert_eq!(
        j,
        json!({"usages": {"all": {"VCPU": 5, "consumer_count": 2}}})
    );
    let (_, _, j) = call(&app, "GET", "/usages?project_id=p", "1.9", None).await;
    assert_eq!(j, json!({"usages": {"VCPU": 5}}));
    let (s, _, _) = call(&app, "GET", "/usages?project_id=p", "1.8", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // POST's own wording for an unknown class.
    let (s, _, j) = call(
        &app,
        "POST",
        "/allocations",
        "1.13",
        Some(
            json!({C1: {"allocations": {RP1: {"resources": {"CUSTOM_PONY": 1}}},
                         "project_id": "p", "user_id": "u"}}),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(detail(&j).contains("Unable to allocate inventory No such resource class CUSTOM_PONY."));
}

#[tokio::test]
async fn reshape_moves_vcpu_to_a_child() {
    let app = app().await;
    let put = json!({"allocations": {RP1: {"resources": {"VCPU": 2}}}, "project_id": "p",
                     "user_id": "u", "consumer_generation": null});
    let (s, _, _) = call(
        &app,
        "PUT",
        &format!("/allocations/{C1}"),
        "1.28",
        Some(put),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let body = json!({
        "inventories": {
            RP1: {"resource_provider_generation": 2, "inventories": {"DISK_GB": {"total": 100, "step_size": 10}}},
            RP2: {"resource_provider_generation": 1, "inventories": {"VCPU": {"total": 8}}}
        },
        "allocations": {
            C1: {"allocations": {RP2: {"resources": {"VCPU": 2}}}, "project_id": "p",
                 "user_id": "u", "consumer_generation": 1}
        }
    });
    let (s, _, _) = call(&app, "POST", "/reshaper", "1.29", Some(body.clone())).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, j) = call(&app, "POST", "/reshaper", "1.30", Some(body)).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{j}");
    let (_, _, j) = call(
        &app,
        "GET",
        &format!("/resource_providers/{RP2}/usages"),
        "1.30",
        None,
    )
    .await;
    assert_eq!(
        j,
        json!({"resource_provider_generation": 4, "usages": {"VCPU": 2}})
    );
    let (_, _, j) = call(
        &app,
        "GET",
        &format!("/resource_providers/{RP1}/usages"),
        "1.30",
        None,
    )
    .await;
    assert_eq!(
        j,
        json!({"resource_provider_generation": 4, "usages": {"DISK_GB": 0}})
    );
}

/// Like `call`, with the body as raw text: JSON numbers a `Value` cannot hold
/// (`100000000000000000000`, `1e400`) must reach the API as a client sends them.
async fn call_raw(
    app: &Router,
    method: &str,
    uri: &str,
    version: &str,
    body: &str,
) -> (u16, String) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("x-auth-token", "admin")
        .header("openstack-api-version", format!("placement {version}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("request");
    let resp = app.clone().oneshot(req).await.expect("infallible");
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, detail(&json))
}

/// Numbers at the edges, answered as the real Placement 16.0.0 answers them (status and
/// message, captured with `/tmp/probe.sh` against it): nothing is clamped into a value that
/// could match, and every number is echoed as sent.
#[tokio::test]
async fn numbers_at_the_edges_are_answered_as_placement_answers_them() {
    let app = app().await;
    let put = |amount: &str, generation: &str| {
        format!(
            r#"{{"allocations": {{"{RP1}": {{"resources": {{"VCPU": {amount}}}}}}}, "project_id": "p",
                "user_id": "u", "consumer_generation": {generation}, "consumer_type": "INSTANCE"}}"#
        )
    };
    let c1 = format!("/allocations/{C1}");
    let c2 = format!("/allocations/{C2}");
    let inventories = format!("/resource_providers/{RP1}/inventories");
    let traits = format!("/resource_providers/{RP1}/traits");
    let aggregates = format!("/resource_providers/{RP1}/aggregates");
    #[rustfmt::skip]
    let steps: Vec<(&str, &str, String, u16, &str)> = vec![
        ("PUT", &c2, put("1e3", "null"), 409, "The requested amount would exceed the capacity."),
        ("PUT", &c2, put("2147483648", "null"), 409, "The requested amount would violate inventory constraints."),
        ("PUT", &c2, put("100000000000000000000", "null"), 409, "The requested amount would violate inventory constraints."),
        ("PUT", &c2, put("1e400", "null"), 400, "JSON does not validate: inf is not of type 'integer'"),
        ("PUT", &c2, put("-100000000000000000000", "null"), 400, "JSON does not validate: -100000000000000000000 is less than the minimum of 1"),
        ("PUT", &c2, put("1", "100000000000000000000"), 409, "consumer generation conflict - expected null but got 100000000000000000000"),
        ("PUT", &c2, put("1", "4294967297"), 409, "consumer generation conflict - expected null but got 4294967297"),
        ("PUT", &c2, put("1", "-1"), 409, "consumer generation conflict - expected null but got -1"),
        ("PUT", &c2, put("1", "1.0"), 409, "consumer generation conflict - expected null but got 1.0"),
        ("PUT", &c2, put("1", "1e400"), 400, "inf is not of type 'integer', 'null'"),
        ("PUT", &c1, put("1", "null"), 204, ""),
        ("PUT", &c1, put("1", "1.0"), 204, ""), // 1.0 == 1, as Python compares
        ("PUT", &c1, put("1", "4294967298"), 409, "consumer generation conflict - expected 2 but got 4294967298"),
        ("PUT", &c1, put("1", "1e20"), 409, "consumer generation conflict - expected 2 but got 1e+20"),
        // POST: the first conflict in request order wins, whichever the API decides.
        ("POST", "/allocations", format!(r#"{{"{C2}": {}, "{C1}": {}}}"#, put("1", "7"), put("1", "100000000000000000000")),
         409, "consumer generation conflict - expected null but got 7"),
        ("POST", "/allocations", format!(r#"{{"{C1}": {}, "{C2}": {}}}"#, put("1", "2"), put("1", "100000000000000000000")),
         409, "consumer generation conflict - expected null but got 100000000000000000000"),
        ("POST", "/allocations", format!(r#"{{"{C1}": {}}}"#, put("2", "2.0")), 204, ""),
        // Provider generations outside u32 match none; totals echo as sent.
        ("PUT", &inventories, r#"{"resource_provider_generation": 4294967299, "inventories": {}}"#.into(), 409, "resource provider generation conflict"),
        ("PUT", &inventories, r#"{"resource_provider_generation": 3, "inventories": {"VCPU": {"total": 123456789012345678901}}}"#.into(),
         400, "JSON does not validate: 123456789012345678901 is greater than the maximum of 2147483647"),
        ("PUT", &inventories, r#"{"resource_provider_generation": 3, "inventories": {"VCPU": {"total": 8, "allocation_ratio": 1e400}}}"#.into(),
         400, "JSON does not validate: inf is greater than the maximum of 3.40282e+38"),
        ("PUT", &traits, r#"{"resource_provider_generation": 100000000000000000000, "traits": []}"#.into(),
         409, "Resource provider's generation already changed."),
        ("PUT", &aggregates, r#"{"resource_provider_generation": -1, "aggregates": []}"#.into(),
         409, "Resource provider's generation already changed."),
        ("PUT", &aggregates, r#"{"resource_provider_generation": 4.0, "aggregates": []}"#.into(), 200, ""),
    ];
    for (method, uri, body, status, text) in steps {
        let (s, d) = call_raw(&app, method, uri, "1.38", &body).await;
        assert_eq!(s, status, "{method} {uri} {body}: {d}");
        assert!(
            d.contains(text),
            "{method} {uri} {body}: {d:?} lacks {text:?}"
        );
    }
    // The reshaper echoes a provider generation as sent, after checking every provider.
    let reshape = |generation: &str| {
        format!(
            r#"{{"inventories": {{"{RP2}": {{"resource_provider_generation": {generation},
                 "inventories": {{"VCPU": {{"total": 1e1}}}}}}}}, "allocations": {{}}}}"#
        )
    };
    let (s, d) = call_raw(
        &app,
        "POST",
        "/reshaper",
        "1.30",
        &reshape("100000000000000000000"),
    )
    .await;
    assert_eq!(s, 409, "{d}");
    assert!(d.contains(&format!(
        "resource provider generation conflict for provider {RP2}: actual: 1, given: \
         100000000000000000000"
    )));
    let (s, d) = call_raw(&app, "POST", "/reshaper", "1.30", &reshape("1.0")).await;
    assert_eq!(s, 204, "{d}");
    let (_, _, j) = call(
        &app,
        "GET",
        &format!("/resource_providers/{RP2}/inventories"),
        "1.30",
        None,
    )
    .await;
    assert_eq!(j["inventories"]["VCPU"]["total"], json!(10));
    // Amounts beyond i64 in a query find nothing; a negative one is echoed.
    let (s, _, j) = call(
        &app,
        "GET",
        "/allocation_candidates?resources=VCPU:100000000000000000000",
        "1.38",
        None,
    )
    .await;
    assert_eq!(
        (s, j),
        (
            StatusCode::OK,
            json!({"allocation_requests": [], "provider_summaries": {}})
        )
    );
    let (s, _, j) = call(
        &app,
        "GET",
        "/resource_providers?resources=VCPU:-100000000000000000000",
        "1.38",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(detail(&j)
        .contains("Requested resource VCPU requires amount >= 1. Got: -100000000000000000000."));
}
