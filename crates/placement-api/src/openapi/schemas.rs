//! Response bodies, as JSON Schema (2020-12, the dialect of OpenAPI 3.1), by microversion.
//!
//! Written here rather than derived: the handlers build their bodies with `json!` and typed
//! serializers, not from a schema. They are kept honest by the tests (`openapi::tests`): the
//! api-ref samples validate against them, and so does every answer the router gives for a
//! scenario run at every microversion.
//!
//! Precise where Placement's answer is fixed: every object lists its `required` keys and
//! refuses others (`additionalProperties: false`), maps keyed by uuid or resource class say
//! so with `patternProperties`, link lists name their relations. Only keywords that the
//! crate's own validator ([`crate::schema`]) also understands are used (no `const`,
//! `prefixItems`, `propertyNames`), so that the tests can check answers without another
//! implementation; `$ref`s point into `#/components/schemas` only.

use serde_json::{json, Map, Value};

use super::Minor;
use placement_types::ErrorCode;

/// A map key that is a uuid as placementd writes them (lower-case, hyphenated).
pub(super) const UUID_KEY: &str = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$";
/// A map key that is a resource class (standard or `CUSTOM_`).
pub(super) const CLASS_KEY: &str = "^[A-Z0-9_]+$";
/// A request id as shown in `openstack-request-id` and error bodies.
pub(super) const REQUEST_ID: &str =
    "^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$";
/// A microversion as written in documents (`1.39`).
const VERSION: &str = "^[0-9]+\\.[0-9]+$";
/// Placement's `MAX_INT`: the bound of every inventory integer.
const MAX_INT: i64 = placement_types::MAX_INT;

/// Every error code, for the `code` of errors from 1.23. The `match` fails to compile when
/// a code is added to [`ErrorCode`] and not here.
pub(super) fn error_codes() -> Vec<&'static str> {
    const ALL: [ErrorCode; 10] = [
        ErrorCode::Undefined,
        ErrorCode::InventoryInUse,
        ErrorCode::ConcurrentUpdate,
        ErrorCode::DuplicateName,
        ErrorCode::ProviderInUse,
        ErrorCode::CannotDeleteParent,
        ErrorCode::ProviderNotFound,
        ErrorCode::QueryDuplicateKey,
        ErrorCode::QueryBadValue,
        ErrorCode::QueryMissingValue,
    ];
    for code in ALL {
        match code {
            ErrorCode::Undefined
            | ErrorCode::InventoryInUse
            | ErrorCode::ConcurrentUpdate
            | ErrorCode::DuplicateName
            | ErrorCode::ProviderInUse
            | ErrorCode::CannotDeleteParent
            | ErrorCode::ProviderNotFound
            | ErrorCode::QueryDuplicateKey
            | ErrorCode::QueryBadValue
            | ErrorCode::QueryMissingValue => {}
        }
    }
    ALL.iter().map(|c| c.as_str()).collect()
}

pub(super) fn component(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn uuid() -> Value {
    json!({"type": "string", "format": "uuid"})
}

fn generation() -> Value {
    json!({"type": "integer", "minimum": 0})
}

fn string() -> Value {
    json!({"type": "string"})
}

/// An object with exactly these properties, the `required` ones always present.
fn object(properties: Vec<(&str, Value)>, required: &[&str]) -> Value {
    let props: Map<String, Value> = properties
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    json!({
        "type": "object",
        "required": required,
        "properties": props,
        "additionalProperties": false
    })
}

/// An object whose every key matches `key` and holds a `value`.
fn map_of(key: &str, value: Value) -> Value {
    json!({
        "type": "object",
        "patternProperties": { key: value },
        "additionalProperties": false
    })
}

/// A `links` list with exactly these relations (in any order).
fn links(rels: &[&str]) -> Value {
    json!({
        "type": "array",
        "minItems": rels.len(),
        "maxItems": rels.len(),
        "uniqueItems": true,
        "items": object(
            vec![("rel", json!({"enum": rels})), ("href", string())],
            &["rel", "href"],
        )
    })
}

/// Schemas shared by many operations, under `#/components/schemas`.
pub(super) fn components() -> Map<String, Value> {
    let mut c = Map::new();
    let item = |extra: Vec<(&str, Value)>, required: &[&str]| {
        let mut props = vec![
            (
                "status",
                json!({"type": "integer", "minimum": 400, "maximum": 599}),
            ),
            ("title", string()),
            ("detail", string()),
            (
                "request_id",
                json!({"type": "string", "pattern": REQUEST_ID}),
            ),
        ];
        props.extend(extra);
        let mut req = vec!["status", "title", "detail", "request_id"];
        req.extend(required);
        object(
            vec![(
                "errors",
                json!({
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 1,
                    "items": object(props, &req)
                }),
            )],
            &["errors"],
        )
    };
    let code = || json!({"type": "string", "enum": error_codes()});
    let version = || json!({"type": "string", "pattern": VERSION});
    c.insert(
        "Error".into(),
        with_description(
            item(
                vec![
                    ("code", code()),
                    ("max_version", version()),
                    ("min_version", version()),
                ],
                &[],
            ),
            "Placement's error document (OpenStack API-SIG errors guideline), any version: \
             `code` from 1.23, `min_version`/`max_version` on a refused microversion.",
        ),
    );
    c.insert(
        "ErrorWithoutCode".into(),
        with_description(
            item(vec![], &[]),
            "An error before microversion 1.23, or one raised before the microversion was \
             negotiated (no token, a malformed microversion header): no `code`.",
        ),
    );
    c.insert(
        "ErrorWithCode".into(),
        with_description(
            item(vec![("code", code())], &["code"]),
            "An error at microversion 1.23 or later: `code` is always present \
             (`placement.undefined_code` when nothing more specific applies).",
        ),
    );
    c.insert(
        "VersionError".into(),
        with_description(
            item(
                vec![("max_version", version()), ("min_version", version())],
                &["max_version", "min_version"],
            ),
            "406 for a microversion outside the served range: the range, and no `code` \
             (no microversion was agreed).",
        ),
    );
    c.insert(
        "KeystoneError".into(),
        with_description(
            object(
                vec![(
                    "error",
                    object(
                        vec![
                            ("code", json!({"type": "integer"})),
                            ("title", string()),
                            ("message", string()),
                        ],
                        &["code", "title", "message"],
                    ),
                )],
                &["error"],
            ),
            "keystonemiddleware's 401 (auth_strategy = keystone), not Placement's shape.",
        ),
    );
    c.insert("Inventory".into(), inventory(false));
    c.insert("InventoryWithGeneration".into(), inventory(true));
    c.insert(
        "Inventories".into(),
        map_of(CLASS_KEY, component("Inventory")),
    );
    c.insert(
        "Resources".into(),
        with_description(
            json!({
                "type": "object",
                "patternProperties": {CLASS_KEY: {"type": "integer", "minimum": 1}},
                "additionalProperties": false
            }),
            "Amounts by resource class (an allocation).",
        ),
    );
    c.insert(
        "Usages".into(),
        with_description(
            map_of(CLASS_KEY, json!({"type": "integer", "minimum": 0})),
            "Amounts used by resource class.",
        ),
    );
    c
}

fn with_description(mut schema: Value, text: &str) -> Value {
    if let Some(o) = schema.as_object_mut() {
        o.insert("description".into(), text.into());
    }
    schema
}

/// An inventory record; `resource_provider_generation` with it in the single-class answers
/// (absent when the generation is 0, as Placement's truthiness test leaves it out).
fn inventory(with_generation: bool) -> Value {
    let int = |min: i64| json!({"type": "integer", "minimum": min, "maximum": MAX_INT});
    let mut props = vec![
        ("total", int(1)),
        ("reserved", int(0)),
        ("min_unit", int(1)),
        ("max_unit", int(1)),
        ("step_size", int(1)),
        ("allocation_ratio", json!({"type": "number"})),
    ];
    if with_generation {
        props.push(("resource_provider_generation", generation()));
    }
    object(
        props,
        &[
            "total",
            "reserved",
            "min_unit",
            "max_unit",
            "step_size",
            "allocation_ratio",
        ],
    )
}

// ---- Bodies by operation ----------------------------------------------------------------

/// `GET /`.
pub(super) fn versions(_: Minor) -> Value {
    object(
        vec![(
            "versions",
            json!({
                "type": "array",
                "minItems": 1,
                "maxItems": 1,
                "items": object(
                    vec![
                        ("id", json!({"type": "string", "pattern": "^v[0-9]+\\.[0-9]+$"})),
                        ("max_version", json!({"type": "string", "pattern": VERSION})),
                        ("min_version", json!({"type": "string", "pattern": VERSION})),
                        ("status", json!({"enum": ["CURRENT"]})),
                        ("links", links(&["self"])),
                    ],
                    &["id", "max_version", "min_version", "status", "links"],
                )
            }),
        )],
        &["versions"],
    )
}

/// `GET /openapi.json`: an OpenAPI 3.1 document (not described further here).
pub(super) fn openapi_document(_: Minor) -> Value {
    json!({
        "type": "object",
        "required": ["openapi", "info", "paths"],
        "properties": {
            "openapi": {"type": "string", "pattern": "^3\\.1\\.[0-9]+$"},
            "info": {"type": "object"},
            "paths": {"type": "object"}
        }
    })
}

/// One resource provider (`_serialize_provider`): links grow at 1.1, 1.6 and 1.11; parent
/// and root uuids from 1.14.
pub(super) fn resource_provider(minor: Minor) -> Value {
    let mut rels = vec!["self", "inventories", "usages"];
    if minor >= 1 {
        rels.push("aggregates");
    }
    if minor >= 6 {
        rels.push("traits");
    }
    if minor >= 11 {
        rels.push("allocations");
    }
    let mut props = vec![
        ("uuid", uuid()),
        ("name", string()),
        ("generation", generation()),
        ("links", links(&rels)),
    ];
    let mut required = vec!["uuid", "name", "generation", "links"];
    if minor >= 14 {
        props.push((
            "parent_provider_uuid",
            json!({"type": ["string", "null"], "format": "uuid"}),
        ));
        props.push(("root_provider_uuid", uuid()));
        required.extend(["parent_provider_uuid", "root_provider_uuid"]);
    }
    object(props, &required)
}

pub(super) fn resource_providers(minor: Minor) -> Value {
    object(
        vec![(
            "resource_providers",
            json!({"type": "array", "items": resource_provider(minor)}),
        )],
        &["resource_providers"],
    )
}

/// Every inventory of a provider, with its generation.
pub(super) fn inventories(_: Minor) -> Value {
    object(
        vec![
            ("resource_provider_generation", generation()),
            ("inventories", component("Inventories")),
        ],
        &["resource_provider_generation", "inventories"],
    )
}

/// One inventory record.
pub(super) fn inventory_record(_: Minor) -> Value {
    component("InventoryWithGeneration")
}

/// A provider's aggregates; its generation from 1.19.
pub(super) fn aggregates(minor: Minor) -> Value {
    let list = json!({"type": "array", "items": uuid(), "uniqueItems": true});
    if minor >= 19 {
        object(
            vec![
                ("aggregates", list),
                ("resource_provider_generation", generation()),
            ],
            &["aggregates", "resource_provider_generation"],
        )
    } else {
        object(vec![("aggregates", list)], &["aggregates"])
    }
}

fn resource_class_schema() -> Value {
    object(
        vec![
            ("name", json!({"type": "string", "pattern": CLASS_KEY})),
            ("links", links(&["self"])),
        ],
        &["name", "links"],
    )
}

pub(super) fn resource_class(_: Minor) -> Value {
    resource_class_schema()
}

pub(super) fn resource_classes(_: Minor) -> Value {
    object(
        vec![(
            "resource_classes",
            json!({"type": "array", "items": resource_class_schema()}),
        )],
        &["resource_classes"],
    )
}

fn trait_list() -> Value {
    json!({
        "type": "array",
        "uniqueItems": true,
        "items": {"type": "string", "pattern": CLASS_KEY}
    })
}

pub(super) fn traits(_: Minor) -> Value {
    object(vec![("traits", trait_list())], &["traits"])
}

pub(super) fn provider_traits(_: Minor) -> Value {
    object(
        vec![
            ("traits", trait_list()),
            ("resource_provider_generation", generation()),
        ],
        &["traits", "resource_provider_generation"],
    )
}

/// `GET /allocations/{consumer_uuid}`: by provider, with each provider's generation; the
/// consumer's project and user from 1.12 (absent, as everything else, for a consumer
/// without allocations), its generation from 1.28 and its type from 1.38.
pub(super) fn consumer_allocations(minor: Minor) -> Value {
    let by_provider = map_of(
        UUID_KEY,
        object(
            vec![
                ("resources", component("Resources")),
                ("generation", generation()),
            ],
            &["resources", "generation"],
        ),
    );
    if minor < 12 {
        return object(vec![("allocations", by_provider)], &["allocations"]);
    }
    let none = object(
        vec![("allocations", json!({"type": "object", "maxProperties": 0}))],
        &["allocations"],
    );
    let mut props = vec![
        ("allocations", by_provider),
        ("project_id", string()),
        ("user_id", string()),
    ];
    let mut required = vec!["allocations", "project_id", "user_id"];
    if minor >= 28 {
        props.push(("consumer_generation", generation()));
        required.push("consumer_generation");
    }
    if minor >= 38 {
        props.push((
            "consumer_type",
            json!({"type": "string", "pattern": "^[A-Z0-9_]+$|^unknown$"}),
        ));
        required.push("consumer_type");
    }
    json!({"anyOf": [none, object(props, &required)]})
}

/// `GET /resource_providers/{uuid}/allocations`: by consumer; each consumer's generation
/// from 1.28.
pub(super) fn provider_allocations(minor: Minor) -> Value {
    let mut props = vec![("resources", component("Resources"))];
    let mut required = vec!["resources"];
    if minor >= 28 {
        props.push(("consumer_generation", generation()));
        required.push("consumer_generation");
    }
    object(
        vec![
            ("allocations", map_of(UUID_KEY, object(props, &required))),
            ("resource_provider_generation", generation()),
        ],
        &["allocations", "resource_provider_generation"],
    )
}

pub(super) fn provider_usages(_: Minor) -> Value {
    object(
        vec![
            ("resource_provider_generation", generation()),
            ("usages", component("Usages")),
        ],
        &["resource_provider_generation", "usages"],
    )
}

/// `GET /usages`: sums by class; from 1.38 grouped by consumer type, each group with its
/// `consumer_count`.
pub(super) fn usages(minor: Minor) -> Value {
    if minor < 38 {
        return object(vec![("usages", component("Usages"))], &["usages"]);
    }
    let group = json!({
        "type": "object",
        "required": ["consumer_count"],
        "properties": {"consumer_count": {"type": "integer", "minimum": 0}},
        "patternProperties": {CLASS_KEY: {"type": "integer", "minimum": 0}},
        "additionalProperties": false
    });
    object(
        vec![("usages", map_of("^[A-Z0-9_]+$|^all$|^unknown$", group))],
        &["usages"],
    )
}

/// `GET /allocation_candidates` (`_transform_allocation_candidates`).
pub(super) fn allocation_candidates(minor: Minor) -> Value {
    let request = if minor < 12 {
        object(
            vec![(
                "allocations",
                json!({
                    "type": "array",
                    "items": object(
                        vec![
                            ("resource_provider", object(vec![("uuid", uuid())], &["uuid"])),
                            ("resources", component("Resources")),
                        ],
                        &["resource_provider", "resources"],
                    )
                }),
            )],
            &["allocations"],
        )
    } else {
        let allocations = map_of(
            UUID_KEY,
            object(vec![("resources", component("Resources"))], &["resources"]),
        );
        if minor >= 34 {
            let mappings = map_of(
                "^([a-zA-Z0-9_-]{1,64})?$",
                json!({"type": "array", "minItems": 1, "items": uuid()}),
            );
            object(
                vec![("allocations", allocations), ("mappings", mappings)],
                &["allocations", "mappings"],
            )
        } else {
            object(vec![("allocations", allocations)], &["allocations"])
        }
    };
    let capacity = object(
        vec![
            ("capacity", json!({"type": "integer"})),
            ("used", json!({"type": "integer", "minimum": 0})),
        ],
        &["capacity", "used"],
    );
    let mut summary = vec![("resources", map_of(CLASS_KEY, capacity))];
    let mut required = vec!["resources"];
    if minor >= 17 {
        summary.push(("traits", trait_list()));
        required.push("traits");
    }
    if minor >= 29 {
        summary.push((
            "parent_provider_uuid",
            json!({"type": ["string", "null"], "format": "uuid"}),
        ));
        summary.push(("root_provider_uuid", uuid()));
        required.extend(["parent_provider_uuid", "root_provider_uuid"]);
    }
    object(
        vec![
            (
                "allocation_requests",
                json!({"type": "array", "items": request}),
            ),
            (
                "provider_summaries",
                map_of(UUID_KEY, object(summary, &required)),
            ),
        ],
        &["allocation_requests", "provider_summaries"],
    )
}
