//! Every operation the router serves, with the microversion it starts at and its answers.
//!
//! Request bodies and query strings name the handlers' own schema functions (see the module
//! doc of [`super`]); response bodies name [`super::schemas`]. The tests compare this table
//! with the `.route(...)` calls of [`crate::handlers`].

use serde_json::Value;

use super::{schemas, Minor};
use crate::context::{Ctx, MAX_VERSION};
use crate::handlers::{
    aggregates, allocation_candidates, allocations, inventories, providers, reshaper,
    resource_classes, traits, usages,
};

/// The methods routed (HEAD is not: Placement answers it 405, and so does placementd).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Method {
    Get,
    Post,
    Put,
    Delete,
}

impl Method {
    /// As OpenAPI names it (a path item's key).
    pub(super) fn key(self) -> &'static str {
        match self {
            Method::Get => "get",
            Method::Post => "post",
            Method::Put => "put",
            Method::Delete => "delete",
        }
    }
}

/// One documented status of an operation, in an inclusive range of minor versions.
pub(super) struct Answer {
    pub status: u16,
    pub since: Minor,
    pub until: Minor,
    pub description: &'static str,
    /// The body schema at a minor version; `None`: no body.
    pub body: Option<fn(Minor) -> Value>,
    /// Headers besides the ones every answer has (names of `#/components/headers`).
    pub headers: &'static [&'static str],
}

impl Answer {
    pub(super) fn from(mut self, minor: Minor) -> Self {
        self.since = minor;
        self
    }
    pub(super) fn until(mut self, minor: Minor) -> Self {
        self.until = minor;
        self
    }
    pub(super) fn headers(mut self, headers: &'static [&'static str]) -> Self {
        self.headers = headers;
        self
    }
}

/// A success with a JSON body.
fn json(status: u16, description: &'static str, body: fn(Minor) -> Value) -> Answer {
    Answer {
        status,
        since: 0,
        until: MAX_VERSION.minor,
        description,
        body: Some(body),
        headers: CACHED,
    }
}

/// A success without a body.
fn empty(status: u16, description: &'static str) -> Answer {
    Answer {
        status,
        since: 0,
        until: MAX_VERSION.minor,
        description,
        body: None,
        headers: &[],
    }
}

/// An error status an operation can give (its body is `#/components/responses/...`).
pub(super) fn error(status: u16) -> Answer {
    Answer {
        status,
        since: 0,
        until: MAX_VERSION.minor,
        description: "",
        body: None,
        headers: &[],
    }
}

const CACHED: &[&str] = &["Last-Modified", "Cache-Control"];
const LOCATION: &[&str] = &["Location"];
const LOCATION_CACHED: &[&str] = &["Location", "Last-Modified", "Cache-Control"];

/// A query string: the handler's schema of it at a microversion, and the name under which
/// its `patternProperties` (keys with a suffix, `resources1`) are documented as one
/// `form`/`explode` object parameter.
pub(super) struct Query {
    pub schema: fn(&Ctx) -> Value,
    pub patterns_as: &'static str,
}

pub(super) struct Operation {
    pub method: Method,
    /// axum's path, which is also OpenAPI's template syntax (`{uuid}`).
    pub path: &'static str,
    pub id: &'static str,
    pub summary: &'static str,
    pub tag: &'static str,
    /// The first minor version it exists at.
    pub since: Minor,
    /// Served without a token.
    pub public: bool,
    pub query: Option<Query>,
    /// The request body's schema at a microversion (the handler's); `None` where no body is
    /// read.
    pub body: Option<fn(&Ctx) -> Option<Value>>,
    pub answers: Vec<Answer>,
    /// Error statuses besides those every operation can give (400, 406, 500, 503; 401 and
    /// 403 unless public; 413 and 415 when it reads a body).
    pub errors: Vec<Answer>,
}

fn op(method: Method, path: &'static str, id: &'static str, summary: &'static str) -> Operation {
    Operation {
        method,
        path,
        id,
        summary,
        tag: "",
        since: 0,
        public: false,
        query: None,
        body: None,
        answers: Vec::new(),
        errors: Vec::new(),
    }
}

impl Operation {
    fn tag(mut self, tag: &'static str) -> Self {
        self.tag = tag;
        self
    }
    fn since(mut self, minor: Minor) -> Self {
        self.since = minor;
        self
    }
    fn public(mut self) -> Self {
        self.public = true;
        self
    }
    fn query(mut self, schema: fn(&Ctx) -> Value) -> Self {
        self.query = Some(Query {
            schema,
            patterns_as: "",
        });
        self
    }
    fn query_with_patterns(mut self, schema: fn(&Ctx) -> Value, name: &'static str) -> Self {
        self.query = Some(Query {
            schema,
            patterns_as: name,
        });
        self
    }
    fn body(mut self, schema: fn(&Ctx) -> Option<Value>) -> Self {
        self.body = Some(schema);
        self
    }
    fn answers(mut self, answers: Vec<Answer>) -> Self {
        self.answers = answers;
        self
    }
    fn errors(mut self, statuses: &[u16]) -> Self {
        self.errors.extend(statuses.iter().map(|s| error(*s)));
        self
    }
    fn error(mut self, answer: Answer) -> Self {
        self.errors.push(answer);
        self
    }
}

/// The tags, in the order of the api-ref.
pub(super) const TAGS: &[(&str, &str)] = &[
    ("Root", "Version discovery and this document."),
    (
        "Resource providers",
        "Entities that provide consumable inventory of one or more classes of resource.",
    ),
    (
        "Resource classes",
        "Standard and custom (`CUSTOM_`) classes of resource (from 1.2).",
    ),
    (
        "Inventories",
        "What a provider has of each resource class, and the constraints on consuming it.",
    ),
    ("Aggregates", "Groups of providers (from 1.1)."),
    (
        "Traits",
        "Qualitative characteristics of providers (from 1.6).",
    ),
    (
        "Allocations",
        "Resources consumed by a consumer from providers.",
    ),
    ("Usages", "Sums of allocations, by provider or by project."),
    (
        "Allocation candidates",
        "Sets of providers that can satisfy a request (from 1.10).",
    ),
    (
        "Reshaper",
        "Moving inventories and allocations between providers in one step (from 1.30).",
    ),
];

/// What the query parameters mean (the handlers' schemas say only what they accept).
pub(super) fn query_parameter_description(name: &str) -> Option<&'static str> {
    Some(match name {
        "name" => "A name to filter by; for traits, `in:A,B` or `startswith:PREFIX`.",
        "uuid" => "A resource provider uuid to filter by.",
        "member_of" => {
            "An aggregate uuid, or `in:` and a comma-separated list of them; repeatable from \
             1.24, `!` forbids from 1.32."
        }
        "resources" => "Amounts the providers must have room for: `VCPU:2,MEMORY_MB:1024`.",
        "in_tree" => "A provider uuid: only providers in its tree.",
        "required" => {
            "Comma-separated traits the providers must have; `!` forbids (1.22), `in:` any of \
             (1.39), repeatable (1.39)."
        }
        "limit" => "The largest number of allocation candidates to return.",
        "group_policy" => "How suffixed request groups interact: `none` or `isolate`.",
        "root_required" => {
            "Traits the root provider of each tree must (or, with `!`, must not) have."
        }
        "same_subtree" => "Comma-separated group suffixes whose providers must share a subtree.",
        "associated" => "`true`: only traits some provider has; `false`: only those none has.",
        "project_id" => "The project whose consumers' usages are summed.",
        "user_id" => "Only the consumers of this user.",
        "consumer_type" => {
            "Only consumers of this type; `all` sums all types as one, `unknown` the untyped."
        }
        _ => return None,
    })
}

/// What a path parameter is.
pub(super) fn path_parameter_description(path: &str, name: &str) -> &'static str {
    match name {
        "uuid" => "The uuid of a resource provider.",
        "consumer_uuid" => "The uuid of a consumer.",
        "resource_class" => "The name of a resource class.",
        "name" if path.starts_with("/traits") => "The name of a trait.",
        "name" => "The name of a resource class.",
        _ => "",
    }
}

fn some(schema: &Value) -> Option<Value> {
    Some(schema.clone())
}

/// Every operation, in the api-ref's order.
pub(super) fn all() -> Vec<Operation> {
    use Method::*;
    vec![
        // ---- root --------------------------------------------------------------------
        op(Get, "/", "getVersions", "List API versions")
            .tag("Root")
            .public()
            .answers(vec![json(
                200,
                "The only major version, with its microversion range.",
                schemas::versions,
            )]),
        op(Get, "/openapi.json", "getOpenApiDocument", "This document")
            .tag("Root")
            .public()
            .answers(vec![Answer {
                headers: &[],
                ..json(200, "The OpenAPI 3.1 document.", schemas::openapi_document)
            }]),
        // ---- resource providers --------------------------------------------------------
        op(
            Get,
            "/resource_providers",
            "listResourceProviders",
            "List resource providers",
        )
        .tag("Resource providers")
        .query(providers::list_schema)
        .answers(vec![json(
            200,
            "The matching providers.",
            schemas::resource_providers,
        )])
        .errors(&[]),
        op(
            Post,
            "/resource_providers",
            "createResourceProvider",
            "Create resource provider",
        )
        .tag("Resource providers")
        .body(|c| some(providers::post_schema(c)))
        .answers(vec![
            empty(201, "Created (before 1.20: no body).")
                .until(19)
                .headers(LOCATION),
            json(
                200,
                "Created: the provider (from 1.20).",
                schemas::resource_provider,
            )
            .from(20)
            .headers(LOCATION_CACHED),
        ])
        .errors(&[409]),
        op(
            Get,
            "/resource_providers/{uuid}",
            "showResourceProvider",
            "Show resource provider",
        )
        .tag("Resource providers")
        .answers(vec![json(200, "The provider.", schemas::resource_provider)])
        .errors(&[404]),
        op(
            Put,
            "/resource_providers/{uuid}",
            "updateResourceProvider",
            "Update resource provider",
        )
        .tag("Resource providers")
        .body(|c| some(providers::put_schema(c)))
        .answers(vec![json(
            200,
            "The updated provider.",
            schemas::resource_provider,
        )])
        .errors(&[404, 409]),
        op(
            Delete,
            "/resource_providers/{uuid}",
            "deleteResourceProvider",
            "Delete resource provider",
        )
        .tag("Resource providers")
        .answers(vec![empty(204, "Deleted.")])
        .errors(&[404, 409]),
        // ---- resource classes ----------------------------------------------------------
        op(
            Get,
            "/resource_classes",
            "listResourceClasses",
            "List resource classes",
        )
        .tag("Resource classes")
        .since(2)
        .answers(vec![json(
            200,
            "Standard classes, then custom ones.",
            schemas::resource_classes,
        )])
        .errors(&[404]),
        op(
            Post,
            "/resource_classes",
            "createResourceClass",
            "Create resource class",
        )
        .tag("Resource classes")
        .since(2)
        .body(|_| some(&resource_classes::RC_SCHEMA))
        .answers(vec![empty(201, "Created.").headers(LOCATION)])
        .errors(&[404, 409]),
        op(
            Get,
            "/resource_classes/{name}",
            "showResourceClass",
            "Show resource class",
        )
        .tag("Resource classes")
        .since(2)
        .answers(vec![json(200, "The class.", schemas::resource_class)])
        .errors(&[404]),
        op(
            Put,
            "/resource_classes/{name}",
            "updateResourceClass",
            "Update (1.2–1.6) or ensure (1.7+) resource class",
        )
        .tag("Resource classes")
        .since(2)
        .body(|c| (!c.at_least(7)).then(|| resource_classes::RC_SCHEMA.clone()))
        .answers(vec![
            json(
                200,
                "Renamed: the class under its new name (1.2–1.6).",
                schemas::resource_class,
            )
            .until(6)
            .headers(&[]),
            empty(201, "Created (from 1.7; no body).")
                .from(7)
                .headers(LOCATION),
            empty(204, "Already existed (from 1.7).")
                .from(7)
                .headers(LOCATION),
        ])
        .errors(&[404, 409]),
        op(
            Delete,
            "/resource_classes/{name}",
            "deleteResourceClass",
            "Delete resource class",
        )
        .tag("Resource classes")
        .since(2)
        .answers(vec![empty(204, "Deleted.")])
        .errors(&[404, 409]),
        // ---- inventories ---------------------------------------------------------------
        op(
            Get,
            "/resource_providers/{uuid}/inventories",
            "listInventories",
            "List resource provider inventories",
        )
        .tag("Inventories")
        .answers(vec![json(
            200,
            "Every inventory of the provider.",
            schemas::inventories,
        )])
        .errors(&[404]),
        op(
            Post,
            "/resource_providers/{uuid}/inventories",
            "createInventory",
            "Create resource provider inventory",
        )
        .tag("Inventories")
        .body(|_| some(&inventories::POST_SCHEMA))
        .answers(vec![json(
            201,
            "Created: the inventory.",
            schemas::inventory_record,
        )
        .headers(LOCATION_CACHED)])
        .errors(&[404, 409]),
        op(
            Put,
            "/resource_providers/{uuid}/inventories",
            "replaceInventories",
            "Update resource provider inventories",
        )
        .tag("Inventories")
        .body(|_| some(&inventories::PUT_SCHEMA))
        .answers(vec![json(
            200,
            "The provider's inventories now.",
            schemas::inventories,
        )])
        .errors(&[404, 409]),
        op(
            Delete,
            "/resource_providers/{uuid}/inventories",
            "deleteInventories",
            "Delete resource provider inventories",
        )
        .tag("Inventories")
        .since(5)
        .answers(vec![empty(204, "Deleted.")])
        .errors(&[404, 409])
        .error(error(405).until(4)),
        op(
            Get,
            "/resource_providers/{uuid}/inventories/{resource_class}",
            "showInventory",
            "Show resource provider inventory",
        )
        .tag("Inventories")
        .answers(vec![json(200, "The inventory.", schemas::inventory_record)])
        .errors(&[404]),
        op(
            Put,
            "/resource_providers/{uuid}/inventories/{resource_class}",
            "updateInventory",
            "Update resource provider inventory",
        )
        .tag("Inventories")
        .body(|_| some(&inventories::BASE_SCHEMA))
        .answers(vec![json(
            200,
            "The inventory now.",
            schemas::inventory_record,
        )])
        .errors(&[404, 409]),
        op(
            Delete,
            "/resource_providers/{uuid}/inventories/{resource_class}",
            "deleteInventory",
            "Delete resource provider inventory",
        )
        .tag("Inventories")
        .answers(vec![empty(204, "Deleted.")])
        .errors(&[404, 409]),
        // ---- aggregates ----------------------------------------------------------------
        op(
            Get,
            "/resource_providers/{uuid}/aggregates",
            "listProviderAggregates",
            "List resource provider aggregates",
        )
        .tag("Aggregates")
        .since(1)
        .answers(vec![json(
            200,
            "The provider's aggregates.",
            schemas::aggregates,
        )])
        .errors(&[404]),
        op(
            Put,
            "/resource_providers/{uuid}/aggregates",
            "updateProviderAggregates",
            "Update resource provider aggregates",
        )
        .tag("Aggregates")
        .since(1)
        .body(|c| some(aggregates::put_schema(c)))
        .answers(vec![json(
            200,
            "The provider's aggregates now.",
            schemas::aggregates,
        )])
        .errors(&[404, 409]),
        // ---- traits --------------------------------------------------------------------
        op(Get, "/traits", "listTraits", "List traits")
            .tag("Traits")
            .since(6)
            .query(|_| traits::LIST_TRAIT_SCHEMA.clone())
            .answers(vec![json(200, "The matching traits.", schemas::traits)])
            .errors(&[404]),
        op(Get, "/traits/{name}", "showTrait", "Show trait")
            .tag("Traits")
            .since(6)
            .answers(vec![empty(204, "The trait exists.").headers(CACHED)])
            .errors(&[404]),
        op(
            Put,
            "/traits/{name}",
            "createTrait",
            "Create (ensure) custom trait",
        )
        .tag("Traits")
        .since(6)
        .answers(vec![
            empty(201, "Created.").headers(LOCATION_CACHED),
            empty(204, "Already existed.").headers(LOCATION_CACHED),
        ])
        .errors(&[404]),
        op(
            Delete,
            "/traits/{name}",
            "deleteTrait",
            "Delete custom trait",
        )
        .tag("Traits")
        .since(6)
        .answers(vec![empty(204, "Deleted.")])
        .errors(&[404, 409]),
        op(
            Get,
            "/resource_providers/{uuid}/traits",
            "listProviderTraits",
            "List resource provider traits",
        )
        .tag("Traits")
        .since(6)
        .answers(vec![json(
            200,
            "The provider's traits.",
            schemas::provider_traits,
        )])
        .errors(&[404]),
        op(
            Put,
            "/resource_providers/{uuid}/traits",
            "updateProviderTraits",
            "Update resource provider traits",
        )
        .tag("Traits")
        .since(6)
        .body(|_| some(&traits::SET_TRAITS_FOR_RP_SCHEMA))
        .answers(vec![json(
            200,
            "The provider's traits now.",
            schemas::provider_traits,
        )])
        .errors(&[404, 409]),
        op(
            Delete,
            "/resource_providers/{uuid}/traits",
            "deleteProviderTraits",
            "Delete resource provider traits",
        )
        .tag("Traits")
        .since(6)
        .answers(vec![empty(204, "Deleted.")])
        .errors(&[404, 409]),
        // ---- allocations ---------------------------------------------------------------
        op(
            Post,
            "/allocations",
            "manageAllocations",
            "Manage allocations",
        )
        .tag("Allocations")
        .since(13)
        .body(|c| some(allocations::post_body_schema(c)))
        .answers(vec![empty(204, "Written.")])
        .errors(&[404, 409]),
        op(
            Get,
            "/allocations/{consumer_uuid}",
            "listConsumerAllocations",
            "List allocations",
        )
        .tag("Allocations")
        .answers(vec![json(
            200,
            "The consumer's allocations (empty for an unknown consumer).",
            schemas::consumer_allocations,
        )]),
        op(
            Put,
            "/allocations/{consumer_uuid}",
            "updateConsumerAllocations",
            "Update allocations",
        )
        .tag("Allocations")
        .body(|c| some(allocations::put_body_schema(c)))
        .answers(vec![empty(204, "Written.")])
        .errors(&[409]),
        op(
            Delete,
            "/allocations/{consumer_uuid}",
            "deleteConsumerAllocations",
            "Delete allocations",
        )
        .tag("Allocations")
        .answers(vec![empty(204, "Deleted.")])
        .errors(&[404]),
        op(
            Get,
            "/resource_providers/{uuid}/allocations",
            "listProviderAllocations",
            "List resource provider allocations",
        )
        .tag("Allocations")
        .answers(vec![json(
            200,
            "The allocations against the provider, by consumer.",
            schemas::provider_allocations,
        )])
        .errors(&[404]),
        // ---- usages --------------------------------------------------------------------
        op(Get, "/usages", "listUsages", "List usages")
            .tag("Usages")
            .since(9)
            .query(|c| usages::query_schema(c).clone())
            .answers(vec![json(
                200,
                "The project's (and user's) usages.",
                schemas::usages,
            )])
            .errors(&[404]),
        op(
            Get,
            "/resource_providers/{uuid}/usages",
            "listProviderUsages",
            "List resource provider usages",
        )
        .tag("Usages")
        .answers(vec![json(
            200,
            "The provider's usages, by class it has inventory of.",
            schemas::provider_usages,
        )])
        .errors(&[404]),
        // ---- allocation candidates -----------------------------------------------------
        op(
            Get,
            "/allocation_candidates",
            "listAllocationCandidates",
            "List allocation candidates",
        )
        .tag("Allocation candidates")
        .since(10)
        .query_with_patterns(
            |c| allocation_candidates::query_schema(c).clone(),
            "request_groups",
        )
        .answers(vec![json(
            200,
            "Allocation requests and the summaries of their providers.",
            schemas::allocation_candidates,
        )])
        .errors(&[404]),
        // ---- reshaper ------------------------------------------------------------------
        op(
            Post,
            "/reshaper",
            "reshape",
            "Reshape provider inventories and allocations",
        )
        .tag("Reshaper")
        .since(30)
        .body(|c| Some(reshaper::reshaper_schema(c)))
        .answers(vec![empty(204, "Reshaped.")])
        .errors(&[404, 409]),
    ]
}
