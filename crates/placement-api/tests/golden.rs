//! The HTTP API's golden scripts (`testscripts/*.txt`), one test per file: requests through
//! the real router over a [`LocalBackend`], answers printed with their status, headers and
//! JSON body (pretty, in the order the server wrote it).
//!
//! A request case: `METHOD PATH [version=1.39] [token=admin|none|<token>]
//! [headers=none|<name>,...] [nobody|body=<JSON pointer>]`, then optional input lines: `Name: value` header lines
//! first, the body after them (sent as it is written: JSON numbers a `Value` cannot hold
//! reach the API as a client sends them). Without `version=` no microversion header is
//! sent; the token defaults to `admin` (noauth2). `{cn1}` in the path, headers and body is
//! the fixture uuid of `cn1` ([`World::uuid`]), `{c1:hex}` its dashless form. `headers=`
//! lists the response headers to print (default: all but `content-length`), `body=` prints
//! only the value at a JSON pointer (an error's `detail`: a JSON string, so that its
//! newlines and trailing blanks show).
//!
//! In the output, fixture uuids read `{name}` again, other uuids `<uuid>` (request ids
//! `req-<uuid>`, uuids the server generated) and dates `<date>`: what varies from run to run
//! is masked, everything else is pinned.
//!
//! Other commands: `seed` (state-machine commands of `placement_core::fixture::script`, one
//! per line, applied to the world the next app starts from: set-up without HTTP), and
//! `reset` (an empty world, and the default app next), and
//! `app [config=<fixture>] [policy=legacy] [keystone=up|down]`, which starts a new app over
//! the world's state with that configuration (`config`: a name
//! `ApiConfig::for_conformance_fixture` knows; `policy=legacy`: the legacy defaults fixed,
//! as Placement's functional tests run; `keystone`: an identity service that knows the token
//! `good`, or is down). A file starts with the default app over an empty world.

use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::Router;
use http::Request;
use http_body_util::BodyExt;
use placement_api::{router, ApiConfig, LivePolicy, LocalBackend, Policy};
use placement_core::fixture::{script, World};
use placement_testkit::Case;
use serde_json::Value;
use tower::ServiceExt;

/// An identity service that knows one token (`good`), or is down.
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

fn config(case: &Case) -> ApiConfig {
    let mut config = match case.get("config") {
        Some(name) => ApiConfig::for_conformance_fixture(name),
        None => ApiConfig::default(),
    };
    if case.get("policy") == Some("legacy") {
        config.policy = Arc::new(LivePolicy::fixed(Policy::defaults(false)));
    }
    if let Some(k) = case.get("keystone") {
        config.auth = placement_api::AuthStrategy::Keystone {
            validator: Arc::new(OneToken { down: k == "down" }),
            www_authenticate_uri: "https://keystone.example.com/v3".into(),
        };
    }
    config
}

struct Api {
    world: World,
    app: Option<Router>,
    runtime: tokio::runtime::Runtime,
}

impl Api {
    fn new() -> Self {
        Api {
            world: World::new(),
            app: None,
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a current-thread runtime"),
        }
    }

    fn app(&mut self) -> Router {
        self.app
            .get_or_insert_with(|| {
                router(
                    Arc::new(LocalBackend::from_state(self.world.state.clone())),
                    ApiConfig::default(),
                )
            })
            .clone()
    }

    fn run(&mut self, case: &Case) -> String {
        match case.command.as_str() {
            "seed" => {
                assert!(
                    self.app.is_none(),
                    "{}: seed before the first request of an app (or after `app`)",
                    case.location()
                );
                script::seed(&mut self.world, case)
            }
            "reset" => {
                self.world = World::new();
                self.app = None;
                "ok\n".into()
            }
            "app" => {
                let backend = LocalBackend::from_state(self.world.state.clone());
                self.app = Some(router(Arc::new(backend), config(case)));
                "ok\n".into()
            }
            "GET" | "POST" | "PUT" | "DELETE" | "OPTIONS" | "PATCH" | "HEAD" => {
                let app = self.app();
                self.runtime.block_on(request(app, case))
            }
            other => panic!("{}: unknown command {other:?}", case.location()),
        }
    }
}

/// `{name}` → the fixture uuid, `{name:hex}` → its dashless form.
fn substitute(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        let inner = &rest[open + 1..open + close];
        let word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
        out.push_str(&rest[..open]);
        let uuid = match inner.split_once(':') {
            Some((name, "hex")) if !name.is_empty() && name.chars().all(word) => {
                Some(World::uuid(name).simple().to_string())
            }
            None if !inner.is_empty() && inner.len() <= 16 && inner.chars().all(word) => {
                Some(World::uuid(inner).to_string())
            }
            _ => None,
        };
        match uuid {
            Some(uuid) => {
                out.push_str(&uuid);
                rest = &rest[open + close + 1..];
            }
            // A JSON object's brace: keep it and look on from the next character.
            None => {
                out.push('{');
                rest = &rest[open + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Masks what varies between runs: fixture uuids read `{name}`, other version-4 and -7
/// uuids `<uuid>` (generated uuids; request ids, which are time-ordered).
fn mask(text: &str) -> String {
    let named = World::names(text);
    let mut out = String::with_capacity(named.len());
    let mut rest = named.as_str();
    while let Some(i) = find_generated(rest) {
        out.push_str(&rest[..i]);
        out.push_str("<uuid>");
        rest = &rest[i + 36..];
    }
    out.push_str(rest);
    out
}

fn find_generated(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    (0..b.len().saturating_sub(35)).find(|&i| {
        let s = &text[i..i + 36];
        s.is_char_boundary(0)
            && uuid::Uuid::parse_str(s).is_ok_and(|u| matches!(u.get_version_num(), 4 | 7))
            && s.as_bytes()[8] == b'-'
    })
}

async fn request(app: Router, case: &Case) -> String {
    let mut builder = Request::builder()
        .method(case.command.as_str())
        .uri(substitute(&path(case)));
    match case.get("token") {
        Some("none") => {}
        Some(token) => builder = builder.header("x-auth-token", token),
        None => builder = builder.header("x-auth-token", "admin"),
    }
    if let Some(v) = case.get("version") {
        builder = builder.header("openstack-api-version", format!("placement {v}"));
    }
    let mut lines = case.input.lines().peekable();
    let mut content_type = false;
    while let Some((name, value)) = lines.peek().and_then(|l| header_line(l)) {
        content_type |= name.eq_ignore_ascii_case("content-type");
        builder = builder.header(name, substitute(value));
        lines.next();
    }
    let body = substitute(&lines.collect::<Vec<_>>().join("\n"));
    if !body.is_empty() && !content_type {
        builder = builder.header("content-type", "application/json");
    }
    let response = app
        .oneshot(builder.body(Body::from(body)).expect("a request"))
        .await
        .expect("the router is infallible");
    let mut out = format!("{}\n", response.status());
    let shown = case.get("headers");
    if shown != Some("none") {
        let mut headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .filter(|(k, _)| {
                shown.map_or(k.as_str() != "content-length", |list| {
                    list.split(',').any(|h| h == k.as_str())
                })
            })
            .map(|(k, v)| {
                let v = String::from_utf8_lossy(v.as_bytes());
                let v = match k.as_str() {
                    "last-modified" | "date" => "<date>".to_string(),
                    _ => mask(&v),
                };
                (k.to_string(), v)
            })
            .collect();
        headers.sort();
        for (k, v) in headers {
            out.push_str(&format!("{k}: {v}\n"));
        }
    }
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("the body reads")
        .to_bytes();
    if !case.has_flag("nobody") && !bytes.is_empty() {
        let text = match (serde_json::from_slice::<Value>(&bytes), case.get("body")) {
            (Ok(json), Some(pointer)) => match json.pointer(pointer) {
                Some(v) => serde_json::to_string_pretty(v).expect("JSON prints"),
                None => format!("(no {pointer} in the body)"),
            },
            (Ok(json), None) => serde_json::to_string_pretty(&json).expect("JSON prints"),
            (Err(_), _) => String::from_utf8_lossy(&bytes).into_owned(),
        };
        for line in mask(&text).lines() {
            out.push_str(if line.trim().is_empty() {
                "<blank>"
            } else {
                line
            });
            out.push('\n');
        }
    }
    out
}

/// The first word of a request case: its path (a query string's `=` makes it a named
/// argument for the runner).
fn path(case: &Case) -> String {
    let first = case
        .args
        .first()
        .unwrap_or_else(|| panic!("{}: no path", case.location()));
    match &first.value {
        Some(v) => format!("{}={v}", first.key),
        None => first.key.clone(),
    }
}

/// `Name: value`, a header line of a request's input.
fn header_line(line: &str) -> Option<(&str, &str)> {
    let (name, value) = line.split_once(": ")?;
    (!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .then_some((name, value))
}

fn run(path: &Path) {
    let mut api = Api::new();
    placement_testkit::run(path, |case| api.run(case));
}

placement_testkit::golden_tests!(
    "testscripts", run;
    framework,
    resources,
    allocations,
    numbers,
);
