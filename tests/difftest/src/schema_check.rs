//! Every answer placementd gives, checked against placementd's own OpenAPI document
//! (`placement_api::openapi::document()`, also served at `GET /openapi.json`).
//!
//! The differential tester compares placementd with Placement answer by answer; this adds a
//! check that needs no second server: each answer has a documented status for its
//! operation and microversion, and its body matches the schema documented there.
//!
//! The schemas are compiled by an independent JSON Schema implementation (the `jsonschema`
//! crate, draft 2020-12 as OpenAPI 3.1 uses, formats such as `uuid` checked), not by
//! placement-api's own validator, so that a mistake shared by the document and that
//! validator cannot hide itself. Which schema applies is read with
//! [`placement_api::openapi::lookup`]: the status's microversion range
//! (`x-min-version`/`x-max-version`) and the media type's `x-microversions`.
//!
//! Every validator is compiled once, in [`SchemaCheck::new`]; [`SchemaCheck::check`] only
//! matches the path and validates.
//!
//! Conventions the caller must follow:
//! - `version` is the answer's `openstack-api-version`; an answer without one was refused
//!   before a microversion was agreed (401, a malformed or unacceptable microversion
//!   header). Pass the version the request asked for; for a malformed header (nothing to
//!   parse), pass (1, 0): such errors never carry `code`.
//! - A method the document does not list on a known path (`PATCH /resource_providers`) is
//!   accepted when answered 405 with the documented 405 body; any other status for it is an
//!   error. HEAD is answered 405 without a body.
//!
//! Left out: headers (documented, not checked here) and non-JSON bodies (the HTML and plain
//! text error pages): pass `None` for those only if the body is empty.

use std::collections::HashMap;
use std::sync::Arc;

use jsonschema::{Draft, Validator};
use placement_api::openapi::lookup::{self, Documented};
use placement_api::Microversion;
use serde_json::{json, Value};

/// How many schema errors one failed check describes.
const ERRORS_SHOWN: usize = 3;

/// Compiled validators for every (operation, status, microversion range) of a document.
pub struct SchemaCheck {
    paths: Vec<PathItem>,
    /// The answer to a method a known path does not serve.
    method_not_allowed: Compiled,
    /// The 404 of a path no route serves.
    not_found: Compiled,
}

struct PathItem {
    template: String,
    /// Literal segments: the most literal template wins, as in axum's router.
    literals: usize,
    /// Method (lower case) → status → what is documented.
    methods: HashMap<String, HashMap<u16, Compiled>>,
}

/// One status of one operation, compiled.
struct Compiled {
    range: Option<(Microversion, Microversion)>,
    /// The plain body schema; `None`: no body.
    plain: Option<Arc<Validator>>,
    variants: Vec<(Microversion, Microversion, Arc<Validator>)>,
}

/// Compiles schemas, each distinct one once (the error answers share theirs).
struct Compiler {
    components: Value,
    cache: HashMap<String, Arc<Validator>>,
}

impl Compiler {
    fn compile(&mut self, schema: &Value) -> Result<Arc<Validator>, String> {
        let key = schema.to_string();
        if let Some(v) = self.cache.get(&key) {
            return Ok(v.clone());
        }
        // `$ref`s point at `#/components/schemas/…`: the components travel with the schema,
        // at the same place as in the document.
        let wrapper = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "components": {"schemas": self.components},
            "allOf": [schema],
        });
        let validator = jsonschema::options()
            .with_draft(Draft::Draft202012)
            .should_validate_formats(true)
            .build(&wrapper)
            .map_err(|e| format!("schema does not compile: {e}: {schema}"))?;
        let validator = Arc::new(validator);
        self.cache.insert(key, validator.clone());
        Ok(validator)
    }

    fn documented(&mut self, d: &Documented) -> Result<Compiled, String> {
        Ok(Compiled {
            range: d.range,
            plain: d.schema.as_ref().map(|s| self.compile(s)).transpose()?,
            variants: d
                .variants
                .iter()
                .map(|v| Ok((v.min, v.max, self.compile(&v.schema)?)))
                .collect::<Result<_, String>>()?,
        })
    }
}

impl Compiled {
    fn check(&self, version: Microversion, body: Option<&Value>) -> Result<(), String> {
        if let Some((min, max)) = self.range {
            if version < min || version > max {
                return Err(format!(
                    "documented only at microversions {min}–{max}, not at {version}"
                ));
            }
        }
        match (&self.plain, body) {
            (None, None) => Ok(()),
            (None, Some(b)) => Err(format!("a body where none is documented: {b}")),
            (Some(_), None) => Err("no body where one is documented".into()),
            (Some(plain), Some(b)) => {
                // A version no variant covers (outside the served range) gets the plain
                // schema, as `Documented::schema_at` does.
                let validator = self
                    .variants
                    .iter()
                    .find(|(min, max, _)| *min <= version && version <= *max)
                    .map_or(plain, |(_, _, v)| v);
                let errors: Vec<String> = validator
                    .iter_errors(b)
                    .take(ERRORS_SHOWN)
                    .map(|e| format!("at '{}': {e}", e.instance_path()))
                    .collect();
                if errors.is_empty() {
                    Ok(())
                } else {
                    Err(format!(
                        "body does not match the schema of {version}: {}",
                        errors.join("; ")
                    ))
                }
            }
        }
    }
}

impl SchemaCheck {
    /// Compiles every response schema of `document` (the value of
    /// `placement_api::openapi::document()`).
    pub fn new(document: &Value) -> Result<SchemaCheck, String> {
        let mut compiler = Compiler {
            components: document
                .pointer("/components/schemas")
                .cloned()
                .unwrap_or_else(|| json!({})),
            cache: HashMap::new(),
        };
        let mut paths: Vec<PathItem> = Vec::new();
        for answer in lookup::answers(document)? {
            let compiled = compiler
                .documented(&answer.documented)
                .map_err(|e| format!("{} {} {}: {e}", answer.method, answer.path, answer.status))?;
            let item = match paths.iter().position(|p| p.template == answer.path) {
                Some(i) => &mut paths[i],
                None => {
                    paths.push(PathItem {
                        literals: answer
                            .path
                            .split('/')
                            .filter(|s| !s.starts_with('{'))
                            .count(),
                        template: answer.path.clone(),
                        methods: HashMap::new(),
                    });
                    paths.last_mut().ok_or("a path item just added")?
                }
            };
            item.methods
                .entry(answer.method)
                .or_default()
                .insert(answer.status, compiled);
        }
        if paths.is_empty() {
            return Err("the document has no operations".into());
        }
        let not_allowed = Documented::of_response(
            document,
            &json!({"$ref": "#/components/responses/MethodNotAllowed"}),
        )?;
        let not_found = Documented::of_response(
            document,
            &json!({"$ref": "#/components/responses/NotFound"}),
        )?;
        Ok(SchemaCheck {
            paths,
            method_not_allowed: compiler.documented(&not_allowed)?,
            not_found: compiler.documented(&not_found)?,
        })
    }

    /// Checks one answer of placementd. `path` is the concrete request path without the
    /// query string (e.g. `/resource_providers/5b9c…/inventories/VCPU`, possibly
    /// percent-encoded), matched against the document's path templates; `version` the
    /// (major, minor) microversion the answer was given at (its openstack-api-version
    /// header; for answers without one use the version the request asked for); `body` None
    /// for an empty body. Err(description) when the path/method is undocumented, the status
    /// is not documented for the operation, or the body does not match the schema for that
    /// version.
    pub fn check(
        &self,
        method: &str,
        path: &str,
        status: u16,
        version: (u32, u32),
        body: Option<&Value>,
    ) -> Result<(), String> {
        let version = Microversion {
            major: version.0,
            minor: version.1,
        };
        let item = self
            .paths
            .iter()
            .filter(|p| lookup::path_matches(&p.template, path))
            .max_by_key(|p| p.literals);
        let Some(item) = item else {
            // A path no route serves: the error document of a 404, nothing else.
            return match status {
                404 => self
                    .not_found
                    .check(version, body)
                    .map_err(|e| format!("{method} {path} 404: {e}")),
                _ => Err(format!("{method} {path}: no such path in the document")),
            };
        };
        let method = method.to_ascii_lowercase();
        if method == "head" {
            // HEAD is refused (405, or an error of the microversion or the token before
            // routing), with the headers of the error and no body.
            return match body {
                None if (400..500).contains(&status) => Ok(()),
                None => Err(format!("{method} {path} {status}: HEAD is answered 405")),
                Some(b) => Err(format!(
                    "{method} {path} {status}: a body on a HEAD answer: {b}"
                )),
            };
        }
        let what = format!(
            "{} {} ({}) {status} at {version}",
            method.to_ascii_uppercase(),
            path,
            item.template
        );
        let compiled = match item.methods.get(&method) {
            Some(statuses) => statuses.get(&status).ok_or_else(|| {
                let mut documented: Vec<&u16> = statuses.keys().collect();
                documented.sort();
                format!("{what}: status not documented (documented: {documented:?})")
            })?,
            None if status == 405 => &self.method_not_allowed,
            // Refused before routing (a malformed or unacceptable microversion, no token):
            // an error document of that status.
            None if [400, 401, 406].contains(&status) => {
                return match body.and_then(|b| b.pointer("/errors/0/status")) {
                    Some(s) if s.as_u64() == Some(u64::from(status)) => Ok(()),
                    _ => Err(format!("{what}: not an error document of {status}")),
                };
            }
            None => return Err(format!("{what}: method not documented for this path")),
        };
        compiled
            .check(version, body)
            .map_err(|e| format!("{what}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::LazyLock;

    use super::*;

    static CHECK: LazyLock<SchemaCheck> = LazyLock::new(|| {
        SchemaCheck::new(&placement_api::openapi::document()).expect("the document compiles")
    });

    const RP: &str = "5b9c0e9e-4a55-4d0d-9a43-7f0000000001";
    const REQUEST_ID: &str = "req-2a5c8a5e-3b2c-4f0a-9f3a-0d3c1f4b5e6a";

    /// A provider as placementd shows it at `1.minor`.
    fn provider(minor: u32) -> Value {
        let url = format!("/resource_providers/{RP}");
        let mut rels = vec!["inventories", "usages"];
        if minor >= 1 {
            rels.push("aggregates");
        }
        if minor >= 6 {
            rels.push("traits");
        }
        if minor >= 11 {
            rels.push("allocations");
        }
        let mut links = vec![json!({"rel": "self", "href": url})];
        links.extend(
            rels.iter()
                .map(|r| json!({"rel": r, "href": format!("{url}/{r}")})),
        );
        let mut p = json!({"uuid": RP, "name": "cn1", "generation": 3, "links": links});
        if minor >= 14 {
            p["parent_provider_uuid"] = Value::Null;
            p["root_provider_uuid"] = RP.into();
        }
        p
    }

    fn check(
        method: &str,
        path: &str,
        status: u16,
        minor: u32,
        body: Option<Value>,
    ) -> Result<(), String> {
        CHECK.check(method, path, status, (1, minor), body.as_ref())
    }

    #[test]
    fn the_document_compiles_once_with_shared_validators() {
        let answers = lookup::answers(&placement_api::openapi::document()).expect("answers");
        let compiled: usize = CHECK
            .paths
            .iter()
            .flat_map(|p| p.methods.values())
            .map(HashMap::len)
            .sum();
        assert_eq!(compiled, answers.len());
        assert!(CHECK.paths.len() >= 19);
    }

    #[test]
    fn a_provider_is_checked_in_the_shape_of_its_version() {
        let path = format!("/resource_providers/{RP}");
        for (minor, good) in [
            (0, 0),
            (1, 1),
            (6, 6),
            (11, 11),
            (14, 14),
            (20, 14),
            (39, 14),
        ] {
            assert_eq!(
                check("GET", &path, 200, minor, Some(provider(good))),
                Ok(()),
                "1.{minor}"
            );
        }
        // Another version's shape is refused: missing or extra links and uuids.
        for (minor, other) in [(0, 14), (14, 0), (13, 14), (20, 11), (5, 6)] {
            let e = check("GET", &path, 200, minor, Some(provider(other)))
                .expect_err("another version's shape");
            assert!(e.contains(&format!("at 1.{minor}")), "{e}");
        }
        // A bad uuid, a missing key, a wrong type.
        let mut bad = provider(14);
        bad["root_provider_uuid"] = "not-a-uuid".into();
        assert!(check("GET", &path, 200, 14, Some(bad)).is_err());
        let mut bad = provider(14);
        bad.as_object_mut().map(|o| o.remove("generation"));
        assert!(check("GET", &path, 200, 14, Some(bad)).is_err());
        let mut bad = provider(14);
        bad["generation"] = "3".into();
        assert!(check("GET", &path, 200, 14, Some(bad)).is_err());
        // The list, and PUT's answer, use the same shape.
        let list = json!({"resource_providers": [provider(20), provider(20)]});
        assert_eq!(
            check("GET", "/resource_providers", 200, 20, Some(list)),
            Ok(())
        );
        assert_eq!(check("PUT", &path, 200, 1, Some(provider(1))), Ok(()));
    }

    #[test]
    fn statuses_exist_only_at_their_versions() {
        // POST /resource_providers: 201 without a body before 1.20, 200 with the provider
        // from 1.20.
        assert_eq!(check("POST", "/resource_providers", 201, 19, None), Ok(()));
        assert!(check("POST", "/resource_providers", 201, 20, None).is_err());
        assert_eq!(
            check("POST", "/resource_providers", 200, 20, Some(provider(20))),
            Ok(())
        );
        assert!(check("POST", "/resource_providers", 200, 19, Some(provider(14))).is_err());
        assert!(check("POST", "/resource_providers", 201, 19, Some(provider(14))).is_err());
        // PUT /resource_classes/{name}: a rename (200) before 1.7, an ensure (201/204) after.
        let rc = json!({"name": "CUSTOM_X", "links": [{"rel": "self", "href": "/resource_classes/CUSTOM_X"}]});
        assert_eq!(
            check(
                "PUT",
                "/resource_classes/CUSTOM_X",
                200,
                6,
                Some(rc.clone())
            ),
            Ok(())
        );
        assert!(check("PUT", "/resource_classes/CUSTOM_X", 200, 7, Some(rc)).is_err());
        assert_eq!(
            check("PUT", "/resource_classes/CUSTOM_X", 201, 7, None),
            Ok(())
        );
        assert_eq!(
            check("PUT", "/resource_classes/CUSTOM_X", 204, 39, None),
            Ok(())
        );
        // DELETE .../inventories: 405 before 1.5.
        let inv = format!("/resource_providers/{RP}/inventories");
        assert_eq!(check("DELETE", &inv, 204, 5, None), Ok(()));
        assert!(check("DELETE", &inv, 204, 4, None).is_err());
        assert!(check("DELETE", &inv, 405, 5, Some(error(405, None))).is_err());
        assert_eq!(
            check("DELETE", &inv, 405, 4, Some(error(405, None))),
            Ok(())
        );
        // Not a status of the operation at all.
        let e = check("GET", "/resource_providers", 201, 1, None).expect_err("undocumented");
        assert!(e.contains("status not documented"), "{e}");
    }

    fn error(status: u16, code: Option<&str>) -> Value {
        let mut e = json!({"status": status, "title": "Not Found", "detail": "The resource could not be found.\n\n  ", "request_id": REQUEST_ID});
        if let Some(c) = code {
            e["code"] = c.into();
        }
        json!({ "errors": [e] })
    }

    #[test]
    fn error_documents_carry_code_from_1_23() {
        let missing = "/resource_providers/5b9c0e9e-4a55-4d0d-9a43-7fffffffffff";
        assert_eq!(
            check("GET", missing, 404, 0, Some(error(404, None))),
            Ok(())
        );
        assert_eq!(
            check("GET", missing, 404, 22, Some(error(404, None))),
            Ok(())
        );
        assert!(check("GET", missing, 404, 23, Some(error(404, None))).is_err());
        let code = Some("placement.undefined_code");
        assert_eq!(
            check("GET", missing, 404, 23, Some(error(404, code))),
            Ok(())
        );
        assert!(check("GET", missing, 404, 22, Some(error(404, code))).is_err());
        assert!(check(
            "GET",
            missing,
            404,
            39,
            Some(error(404, Some("placement.nonsense")))
        )
        .is_err());
        // Extra members, a bad request id, no body.
        let mut extra = error(404, code);
        extra["errors"][0]["stack"] = "…".into();
        assert!(check("GET", missing, 404, 39, Some(extra)).is_err());
        let mut bad_id = error(404, code);
        bad_id["errors"][0]["request_id"] = "req-1".into();
        assert!(check("GET", missing, 404, 39, Some(bad_id)).is_err());
        assert!(check("GET", missing, 404, 39, None).is_err());
        // Refused before a microversion was agreed: no code at any version.
        assert_eq!(
            check(
                "GET",
                "/resource_providers",
                401,
                39,
                Some(error(401, None))
            ),
            Ok(())
        );
        let keystone = json!({"error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}});
        assert_eq!(
            check("GET", "/resource_providers", 401, 39, Some(keystone)),
            Ok(())
        );
        let mut too_new = error(406, None);
        too_new["errors"][0]["max_version"] = "1.39".into();
        too_new["errors"][0]["min_version"] = "1.0".into();
        assert_eq!(check("GET", "/", 406, 99, Some(too_new)), Ok(()));
        assert_eq!(check("GET", "/", 400, 0, Some(error(400, None))), Ok(()));
    }

    #[test]
    fn paths_methods_and_bodies_must_be_documented() {
        assert!(check("GET", "/nothing", 200, 1, Some(json!({})))
            .is_err_and(|e| e.contains("no such path")));
        assert!(check("GET", "/resource_providers/", 404, 1, None).is_err());
        // Another method on a known path: only its 405 is documented.
        assert_eq!(
            check(
                "PATCH",
                "/resource_providers",
                405,
                1,
                Some(error(405, None))
            ),
            Ok(())
        );
        assert!(check("PATCH", "/resource_providers", 200, 1, None)
            .is_err_and(|e| e.contains("method not documented")));
        // ... or an error raised before routing (here a malformed microversion).
        assert_eq!(
            check(
                "PATCH",
                "/resource_providers",
                400,
                0,
                Some(error(400, None))
            ),
            Ok(())
        );
        // HEAD: refused, no body; an unknown path: a 404 error document.
        assert_eq!(check("HEAD", "/", 405, 39, None), Ok(()));
        assert_eq!(check("HEAD", "/", 406, 39, None), Ok(()));
        assert_eq!(
            check("GET", "/nowhere", 404, 1, Some(error(404, None))),
            Ok(())
        );
        assert!(check("GET", "/nowhere", 200, 1, Some(json!({}))).is_err());
        assert!(check("HEAD", "/", 200, 39, None).is_err());
        assert!(check("HEAD", "/", 405, 39, Some(json!({}))).is_err());
        // Percent-encoded literal segments still match their template.
        let traits = format!("/resource_%70roviders/{RP}/traits");
        let body = json!({"traits": ["CUSTOM_A"], "resource_provider_generation": 1});
        assert_eq!(check("GET", &traits, 200, 6, Some(body)), Ok(()));
        // A literal route wins over a parameter one.
        let inventory = format!("/resource_providers/{RP}/inventories/VCPU");
        let record = json!({"total": 8, "reserved": 0, "min_unit": 1, "max_unit": 8,
                            "step_size": 1, "allocation_ratio": 16.0,
                            "resource_provider_generation": 2});
        assert_eq!(check("GET", &inventory, 200, 39, Some(record)), Ok(()));
    }

    #[test]
    fn usages_and_candidates_follow_their_versions() {
        let flat = json!({"usages": {"VCPU": 2, "DISK_GB": 5}});
        let typed = json!({"usages": {"INSTANCE": {"consumer_count": 1, "VCPU": 2}, "unknown": {"consumer_count": 2}}});
        assert_eq!(check("GET", "/usages", 200, 9, Some(flat.clone())), Ok(()));
        assert!(check("GET", "/usages", 200, 38, Some(flat)).is_err());
        assert_eq!(
            check("GET", "/usages", 200, 38, Some(typed.clone())),
            Ok(())
        );
        assert!(check("GET", "/usages", 200, 37, Some(typed)).is_err());
        let listed = json!({
            "allocation_requests": [{"allocations": [{"resource_provider": {"uuid": RP}, "resources": {"VCPU": 1}}]}],
            "provider_summaries": {RP: {"resources": {"VCPU": {"capacity": 8, "used": 0}}}}
        });
        assert_eq!(
            check(
                "GET",
                "/allocation_candidates",
                200,
                10,
                Some(listed.clone())
            ),
            Ok(())
        );
        assert!(check("GET", "/allocation_candidates", 200, 12, Some(listed)).is_err());
        let mapped = json!({
            "allocation_requests": [{"allocations": {RP: {"resources": {"VCPU": 1}}}, "mappings": {"": [RP]}}],
            "provider_summaries": {RP: {"resources": {"VCPU": {"capacity": 8, "used": 0}},
                                        "traits": [], "parent_provider_uuid": null,
                                        "root_provider_uuid": RP}}
        });
        assert_eq!(
            check(
                "GET",
                "/allocation_candidates",
                200,
                34,
                Some(mapped.clone())
            ),
            Ok(())
        );
        assert!(check("GET", "/allocation_candidates", 200, 33, Some(mapped)).is_err());
    }
}
