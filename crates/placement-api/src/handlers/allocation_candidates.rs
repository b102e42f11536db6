//! `GET /allocation_candidates` (`handlers/allocation_candidate.py`, 1.10+).
//!
//! Parsing and validation happen here, in Placement's order: microversion (404 below 1.10),
//! `Accept`, policy, the query-string schema of the microversion, the request-wide parameters
//! (`limit`, `group_policy`, `root_required`, `same_subtree`), the request groups (each key
//! `resources|required|member_of|in_tree` with its suffix, groups in the order their first
//! key appears) and their consistency checks. The search itself is
//! [`placement_core::candidates::search`], run on the state after the read barrier.
//!
//! Response shape by microversion: 1.10 lists allocations (`resource_provider.uuid` +
//! `resources`), 1.12 keys them by provider; provider summaries carry `traits` from 1.17,
//! every inventory (not only the requested classes) from 1.27, parent and root uuids from
//! 1.29; candidates carry `mappings` from 1.34. Before 1.29 candidates that use two providers
//! of one tree are dropped (the search's `nested_aware`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use http::StatusCode;
use placement_core::candidates::{
    search, AllocationRequest, CandidateRequest, Candidates, GroupPolicy, ProviderSummary,
    RequestGroup, SearchError,
};
use placement_core::State as PState;
use placement_types::{ErrorCode, Uuid};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::{json, Map, Value};

use crate::context::Ctx;
use crate::qs;
use crate::query_params::QueryParams;
use crate::response::{json_response, now};
use crate::{ApiError, AppState, Backend};

pub(crate) fn routes<B: Backend>() -> Router<AppState<B>> {
    Router::new().route("/allocation_candidates", get(list::<B>))
}

/// Group suffix patterns: numbers from 1.25, short names from 1.33.
const GROUP_PAT: &str = "[1-9][0-9]*";
const GROUP_PAT_1_33: &str = "[a-zA-Z0-9_-]{1,64}";

/// The four group keys, in Placement's schema order.
const GROUP_KEYS: [&str; 4] = ["resources", "required", "member_of", "in_tree"];

/// The query-string schema at the request's microversion, built once per microversion
/// (also read by [`crate::openapi`]).
pub(crate) fn query_schema(ctx: &Ctx) -> &'static Value {
    const VERSIONS: usize = crate::context::MAX_VERSION.minor as usize + 1;
    static SCHEMAS: [OnceLock<Value>; VERSIONS] = [const { OnceLock::new() }; VERSIONS];
    let minor = ctx.version.minor.min(crate::context::MAX_VERSION.minor);
    SCHEMAS[minor as usize].get_or_init(|| build_query_schema(ctx))
}

/// The query-string schema of a microversion (`schemas/allocation_candidate.py`), its keys in
/// the order of Placement's dicts (each version a `deepcopy` of the one before, with keys
/// added at the end and `patternProperties` after `additionalProperties` from 1.25): the
/// order decides which error is reported first among equals, and how the schema prints.
fn build_query_schema(ctx: &Ctx) -> Value {
    let mut props = Map::new();
    if !ctx.at_least(25) {
        props.insert("resources".into(), json!({"type": "string"}));
    }
    if ctx.at_least(16) {
        props.insert(
            "limit".into(),
            json!({
                "type": ["integer", "string"],
                "pattern": "^[1-9][0-9]*$",
                "minimum": 1,
                "minLength": 1
            }),
        );
    }
    if ctx.at_least(25) {
        props.insert(
            "group_policy".into(),
            json!({"type": "string", "enum": ["none", "isolate"]}),
        );
    } else {
        if ctx.at_least(17) {
            props.insert("required".into(), json!({"type": ["string"]}));
        }
        if ctx.at_least(21) {
            props.insert("member_of".into(), json!({"type": ["string"]}));
        }
    }
    if ctx.at_least(35) {
        props.insert("root_required".into(), json!({"type": ["string"]}));
    }
    if ctx.at_least(36) {
        props.insert("same_subtree".into(), json!({"type": ["string"]}));
    }
    let mut schema = Map::new();
    schema.insert("type".into(), json!("object"));
    schema.insert("properties".into(), Value::Object(props));
    if !ctx.at_least(25) {
        schema.insert("required".into(), json!(["resources"]));
    }
    schema.insert("additionalProperties".into(), json!(false));
    if ctx.at_least(25) {
        let pat = if ctx.at_least(33) {
            GROUP_PAT_1_33
        } else {
            GROUP_PAT
        };
        let keys: &[&str] = if ctx.at_least(31) {
            &GROUP_KEYS
        } else {
            &GROUP_KEYS[..3]
        };
        let mut pp = Map::new();
        for k in keys {
            pp.insert(format!("^{k}({pat})?$"), json!({"type": "string"}));
        }
        schema.insert("patternProperties".into(), Value::Object(pp));
    }
    Value::Object(schema)
}

/// Splits a group key into its kind and suffix (Placement's `_QS_KEY_PATTERN[_1_33]`).
fn group_key(key: &str, verbose: bool) -> Option<(&'static str, &str)> {
    for kind in GROUP_KEYS {
        if let Some(suffix) = key.strip_prefix(kind) {
            let ok = if suffix.is_empty() {
                true
            } else if verbose {
                suffix.len() <= 64
                    && suffix
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            } else {
                !suffix.starts_with('0') && suffix.chars().all(|c| c.is_ascii_digit())
            };
            return ok.then_some((kind, suffix));
        }
    }
    None
}

/// Python's `repr()` of a string (for messages that print lists of suffixes).
fn py_repr(s: &str) -> String {
    if s.contains('\'') && !s.contains('"') {
        format!("\"{s}\"")
    } else {
        format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

fn py_list(items: &[&str]) -> String {
    let inner: Vec<String> = items.iter().map(|s| py_repr(s)).collect();
    format!("[{}]", inner.join(", "))
}

/// `RequestWideParams.from_request` (everything but the groups).
fn request_wide(q: &QueryParams, req: &mut CandidateRequest) -> Result<(), ApiError> {
    if let Some(v) = q.get_all("limit").first() {
        // The schema has checked the form.
        req.limit = v.trim().parse::<usize>().ok();
    }
    req.group_policy = match q.get_all("group_policy").first().copied() {
        Some("isolate") => Some(GroupPolicy::Isolate),
        Some(_) => Some(GroupPolicy::None),
        None => None,
    };
    let roots = q.get_all("root_required");
    if let Some(v) = roots.first() {
        if roots.len() > 1 {
            return Err(ApiError::bad_request(
                "Query parameter 'root_required' may be specified only once.",
            )
            .with_code(ErrorCode::QueryDuplicateKey));
        }
        let (required, forbidden) = qs::normalize_traits_param(v, true, false)?;
        let required: BTreeSet<String> = required.into_iter().flatten().collect();
        let conflicts: Vec<&String> = forbidden.intersection(&required).collect();
        if !conflicts.is_empty() {
            let names: Vec<&str> = conflicts.iter().map(|s| s.as_str()).collect();
            return Err(ApiError::bad_request(format!(
                "Conflicting required and forbidden traits found in root_required: {}",
                names.join(", ")
            ))
            .with_code(ErrorCode::QueryBadValue));
        }
        req.root_required = required;
        req.root_forbidden = forbidden;
    }
    for v in q.get_all("same_subtree") {
        let suffixes: BTreeSet<String> = v.split(',').map(|s| s.trim().to_string()).collect();
        if suffixes.contains("") {
            return Err(ApiError::bad_request(
                "Empty string (unsuffixed group) can not be specified in `same_subtree` ",
            )
            .with_code(ErrorCode::QueryBadValue));
        }
        req.same_subtrees.push(suffixes);
    }
    Ok(())
}

/// `RequestGroup.dict_from_request`.
fn request_groups(
    ctx: &Ctx,
    q: &QueryParams,
    same_subtrees: &[BTreeSet<String>],
) -> Result<Vec<RequestGroup>, ApiError> {
    let verbose = ctx.at_least(33);
    let mut groups: Vec<RequestGroup> = Vec::new();
    for (key, val) in &q.0 {
        let Some((kind, suffix)) = group_key(key, verbose) else {
            continue;
        };
        let i = match groups.iter().position(|g| g.suffix == suffix) {
            Some(i) => i,
            None => {
                groups.push(RequestGroup {
                    suffix: suffix.to_string(),
                    ..RequestGroup::default()
                });
                groups.len() - 1
            }
        };
        let g = &mut groups[i];
        match kind {
            "resources" => g.resources = crate::qs::normalize_resources(val)?,
            "required" => {
                let (r, f) = qs::normalize_traits_params(ctx, q, suffix)?;
                g.required_traits = r;
                g.forbidden_traits = f;
            }
            "member_of" => {
                let (r, f) = qs::normalize_member_of_params(ctx, q, suffix)?;
                g.member_of = r;
                g.forbidden_aggs = f;
            }
            _ => g.in_tree = Some(qs::normalize_in_tree(val)?),
        }
    }

    if ctx.at_least(36) {
        let resourceless: Vec<&str> = groups
            .iter()
            .filter(|g| g.resources.is_empty())
            .map(|g| g.suffix.as_str())
            .collect();
        if resourceless.len() == groups.len() {
            return Err(ApiError::bad_request(
                "There must be at least one resources or resources[$S] parameter.",
            )
            .with_code(ErrorCode::QueryMissingValue));
        }
        let subtree: BTreeSet<&str> = same_subtrees.iter().flatten().map(|s| s.as_str()).collect();
        let bad: Vec<&str> = resourceless
            .iter()
            .copied()
            .filter(|s| !subtree.contains(s))
            .collect();
        if !bad.is_empty() {
            return Err(ApiError::bad_request(format!(
                "Resourceless suffixed group request should be specified in `same_subtree` \
                 query param: bad group(s) - {}.",
                py_list(&bad)
            ))
            .with_code(ErrorCode::QueryBadValue));
        }
        let bad: Vec<&str> = subtree
            .iter()
            .copied()
            .filter(|s| !groups.iter().any(|g| g.suffix == *s))
            .collect();
        if !bad.is_empty() {
            let all: Vec<&str> = groups.iter().map(|g| g.suffix.as_str()).collect();
            return Err(ApiError::bad_request(format!(
                "Real suffixes should be specified in `same_subtree`: {} not found in {}.",
                py_list(&bad),
                py_list(&all)
            ))
            .with_code(ErrorCode::QueryBadValue));
        }
    } else {
        check_for_orphans(&groups)?;
    }

    if ctx.at_least(22) {
        let mut conflicts: Vec<String> = Vec::new();
        for g in &groups {
            for any in &g.required_traits {
                if any.iter().all(|t| g.forbidden_traits.contains(t)) {
                    let names: Vec<&str> = any.iter().map(|s| s.as_str()).collect();
                    conflicts.push(format!("required{}: ({})", g.suffix, names.join(", ")));
                }
            }
        }
        if !conflicts.is_empty() {
            conflicts.sort();
            return Err(ApiError::bad_request(format!(
                "Conflicting required and forbidden traits found in the following traits \
                 keys: {}",
                conflicts.join(", ")
            )));
        }
    }
    Ok(groups)
}

/// `_check_for_orphans` (before 1.36).
fn check_for_orphans(groups: &[RequestGroup]) -> Result<(), ApiError> {
    let orphans: Vec<String> = groups
        .iter()
        .filter(|g| !g.required_traits.is_empty() && g.resources.is_empty())
        .map(|g| format!("required{}", g.suffix))
        .collect();
    if !orphans.is_empty() {
        return Err(ApiError::bad_request(format!(
            "All traits parameters must be associated with resources.  Found the following \
             orphaned traits keys: {}",
            orphans.join(", ")
        )));
    }
    let orphans: Vec<String> = groups
        .iter()
        .filter(|g| {
            g.resources.is_empty() && !(g.member_of.is_empty() && g.forbidden_aggs.is_empty())
        })
        .map(|g| format!("member_of{}", g.suffix))
        .collect();
    if !orphans.is_empty() {
        return Err(ApiError::bad_request(format!(
            "All member_of parameters must be associated with resources. Found the following \
             orphaned member_of keys: {}",
            orphans.join(", ")
        )));
    }
    if groups.iter().any(|g| g.resources.is_empty()) {
        return Err(ApiError::bad_request(
            "All request groups must specify resources.",
        ));
    }
    if groups.is_empty() {
        return Err(ApiError::bad_request(
            "At least one request group (`resources` or `resources{$S}`) is required.",
        ));
    }
    Ok(())
}

async fn list<B: Backend>(
    State(st): State<AppState<B>>,
    ctx: Ctx,
    q: QueryParams,
) -> Result<Response, ApiError> {
    if !ctx.at_least(10) {
        return Err(ApiError::not_found(""));
    }
    ctx.check_accept()?;
    ctx.authorize("placement:allocation_candidates:list")?;
    q.validate(query_schema(&ctx))?;
    let mut req = CandidateRequest {
        nested_aware: ctx.at_least(29),
        max_candidates: st.config.max_allocation_candidates,
        ..CandidateRequest::default()
    };
    request_wide(&q, &mut req)?;
    req.groups = request_groups(&ctx, &q, &req.same_subtrees)?;
    if req.group_policy.is_none() && req.groups.iter().filter(|g| g.use_same_provider()).count() > 1
    {
        return Err(ApiError::bad_request(
            "The \"group_policy\" parameter is required when specifying more than one \
             \"resources{N}\" parameter.",
        ));
    }
    // `randomize_allocation_candidates`: search without `limit`, then sample.
    let sample = if st.config.randomize_allocation_candidates {
        req.limit.take()
    } else {
        None
    };
    // On a snapshot of the state, on a search thread (`read_pool.rs`): writes go on, and
    // keep their CPU however many searches run.
    let answer = move |s: &PState| -> Result<Response, ApiError> {
        let mut cands = search(s, &req).map_err(|e| match e {
            SearchError::UnknownResourceClass(_) => ApiError::bad_request(format!(
                "Invalid resource class in resources parameter: {e}"
            )),
            SearchError::UnknownTrait(_) => ApiError::bad_request(e.to_string()),
        })?;
        if let Some(limit) = sample {
            random_sample(&mut cands, limit);
        }
        let traits = cands
            .provider_summaries
            .iter()
            .map(|p| traits_in_id_order(s, &p.traits))
            .collect::<Vec<_>>();
        let body = Body::new(&ctx, &req, &cands, &traits);
        Ok(json_response(&ctx, StatusCode::OK, &body, Some(now())))
    };
    st.read_blocking(answer).await?
}

/// Placement's `_limit_results` under `randomize_allocation_candidates`: `limit` candidates
/// picked at random (in random order), and only the summaries of the trees they use.
fn random_sample(cands: &mut Candidates, limit: usize) {
    let n = cands.allocation_requests.len();
    if n <= limit {
        return;
    }
    let picked = rand::seq::index::sample(&mut rand::rng(), n, limit);
    let all = std::mem::take(&mut cands.allocation_requests);
    cands.allocation_requests = picked.iter().map(|i| all[i].clone()).collect();
    let root_of: std::collections::HashMap<_, _> = cands
        .provider_summaries
        .iter()
        .map(|p| (p.uuid, p.root))
        .collect();
    let roots: BTreeSet<_> = cands
        .allocation_requests
        .iter()
        .flat_map(|r| r.allocations.keys())
        .filter_map(|p| root_of.get(p).copied())
        .collect();
    cands.provider_summaries.retain(|p| roots.contains(&p.root));
}

/// A provider's traits in Placement's database order (by trait id): standard traits first
/// (their ids come from a one-time sync, in no meaningful order; we use the name), then
/// custom traits in the order they were created.
fn traits_in_id_order(state: &PState, traits: &BTreeSet<String>) -> Vec<String> {
    let mut v: Vec<&String> = traits.iter().collect();
    v.sort_by_key(|t| match state.custom_trait(t) {
        Some(c) => (1, c.created_at.0, *t),
        None => (0, 0, *t),
    });
    v.into_iter().cloned().collect()
}

/// `_transform_allocation_candidates`: the response body, serialized straight from the
/// search's answer.
///
/// No `serde_json::Value` tree is built: at 10,000 providers a `limit=50` answer has ~50
/// candidates and ~60 summaries, and building them as order-preserving maps of owned strings
/// took 2.7 M instructions, most of what the search itself took then (3.4 M); serializing
/// the typed view below takes ~0.35 M (`examples/candidates_http.rs`). The bytes are those of the `Value` rendering Placement's
/// shapes were first written in (the test `typed_body_has_the_bytes_of_the_value_rendering`
/// compares them for every microversion):
/// keys in insertion order, maps of providers and classes in their `BTreeMap` order, uuids
/// lower-case and hyphenated.
struct Body<'a> {
    /// 1.12: allocations keyed by provider (before: a list).
    by_provider: bool,
    /// 1.34: `mappings` on each candidate.
    mappings: bool,
    /// 1.17: `traits` in the summaries.
    traits: bool,
    /// 1.27: every inventory in the summaries (before: only requested classes).
    all_resources: bool,
    /// 1.29: parent and root uuids in the summaries.
    tree: bool,
    /// The classes some group asks for (summaries before 1.27).
    requested: BTreeSet<&'a str>,
    cands: &'a Candidates,
    /// Each summary's traits, in Placement's order.
    summary_traits: &'a [Vec<String>],
}

impl<'a> Body<'a> {
    fn new(
        ctx: &Ctx,
        req: &'a CandidateRequest,
        cands: &'a Candidates,
        summary_traits: &'a [Vec<String>],
    ) -> Self {
        Body {
            by_provider: ctx.at_least(12),
            mappings: ctx.at_least(34),
            traits: ctx.at_least(17),
            all_resources: ctx.at_least(27),
            tree: ctx.at_least(29),
            requested: req
                .groups
                .iter()
                .flat_map(|g| g.resources.iter().map(|(rc, _)| rc.as_str()))
                .collect(),
            cands,
            summary_traits,
        }
    }
}

impl Serialize for Body<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("allocation_requests", &AllocationRequests(self))?;
        m.serialize_entry("provider_summaries", &Summaries(self))?;
        m.end()
    }
}

struct AllocationRequests<'a>(&'a Body<'a>);

impl Serialize for AllocationRequests<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let body = self.0;
        s.collect_seq(
            body.cands
                .allocation_requests
                .iter()
                .map(|a| Candidate { body, a }),
        )
    }
}

/// One allocation request: `{"allocations": {rp: {"resources": ...}}, "mappings": ...}`
/// from 1.12, `{"allocations": [{"resource_provider": {"uuid": rp}, "resources": ...}]}`
/// before.
struct Candidate<'a> {
    body: &'a Body<'a>,
    a: &'a AllocationRequest,
}

impl Serialize for Candidate<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (body, a) = (self.body, self.a);
        if !body.by_provider {
            let mut m = s.serialize_map(Some(1))?;
            m.serialize_entry("allocations", &ListedAllocations(&a.allocations))?;
            return m.end();
        }
        let mut m = s.serialize_map(Some(1 + usize::from(body.mappings)))?;
        m.serialize_entry("allocations", &AllocationsByProvider(&a.allocations))?;
        if body.mappings {
            m.serialize_entry("mappings", &a.mappings)?;
        }
        m.end()
    }
}

/// provider → resource class → amount.
type Allocations = BTreeMap<Uuid, BTreeMap<String, i64>>;

#[derive(Serialize)]
struct ResourcesOf<'a> {
    resources: &'a BTreeMap<String, i64>,
}

struct AllocationsByProvider<'a>(&'a Allocations);

impl Serialize for AllocationsByProvider<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(
            self.0
                .iter()
                .map(|(rp, resources)| (rp, ResourcesOf { resources })),
        )
    }
}

#[derive(Serialize)]
struct ProviderRef {
    uuid: Uuid,
}

#[derive(Serialize)]
struct ListedAllocation<'a> {
    resource_provider: ProviderRef,
    resources: &'a BTreeMap<String, i64>,
}

struct ListedAllocations<'a>(&'a Allocations);

impl Serialize for ListedAllocations<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|(rp, resources)| ListedAllocation {
            resource_provider: ProviderRef { uuid: *rp },
            resources,
        }))
    }
}

/// `provider_summaries`: provider uuid → summary.
struct Summaries<'a>(&'a Body<'a>);

impl Serialize for Summaries<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let body = self.0;
        s.collect_map(
            body.cands
                .provider_summaries
                .iter()
                .zip(body.summary_traits)
                .map(|(p, traits)| (&p.uuid, Summary { body, p, traits })),
        )
    }
}

struct Summary<'a> {
    body: &'a Body<'a>,
    p: &'a ProviderSummary,
    traits: &'a [String],
}

impl Serialize for Summary<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (body, p) = (self.body, self.p);
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("resources", &SummaryResources { body, p })?;
        if body.traits {
            m.serialize_entry("traits", self.traits)?;
        }
        if body.tree {
            m.serialize_entry("parent_provider_uuid", &p.parent)?;
            m.serialize_entry("root_provider_uuid", &p.root)?;
        }
        m.end()
    }
}

#[derive(Serialize)]
struct CapacityUsed {
    capacity: i64,
    used: i64,
}

/// A summary's inventories: all from 1.27, only the requested classes before.
struct SummaryResources<'a> {
    body: &'a Body<'a>,
    p: &'a ProviderSummary,
}

impl Serialize for SummaryResources<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let body = self.body;
        s.collect_map(
            self.p
                .resources
                .iter()
                .filter(|r| {
                    body.all_resources || body.requested.contains(r.resource_class.as_str())
                })
                .map(|r| {
                    (
                        &r.resource_class,
                        CapacityUsed {
                            capacity: r.capacity,
                            used: r.used,
                        },
                    )
                }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_random_sample_keeps_limit_candidates_and_the_summaries_of_their_trees() {
        let uuid = |i: u128| Uuid::from_u128(i);
        let summary = |p: u128| ProviderSummary {
            uuid: uuid(p),
            parent: None,
            root: uuid(p),
            traits: BTreeSet::new(),
            resources: Vec::new(),
        };
        let request = |p: u128| AllocationRequest {
            allocations: BTreeMap::from([(uuid(p), BTreeMap::from([("VCPU".into(), 1)]))]),
            mappings: BTreeMap::new(),
        };
        for _ in 0..20 {
            let mut cands = Candidates {
                allocation_requests: (1..=10).map(request).collect(),
                provider_summaries: (1..=10).map(summary).collect(),
            };
            random_sample(&mut cands, 3);
            assert_eq!(cands.allocation_requests.len(), 3);
            let used: BTreeSet<Uuid> = cands
                .allocation_requests
                .iter()
                .flat_map(|r| r.allocations.keys().copied())
                .collect();
            let summarised: BTreeSet<Uuid> =
                cands.provider_summaries.iter().map(|p| p.uuid).collect();
            assert_eq!(used, summarised);
        }
        let mut few = Candidates {
            allocation_requests: vec![request(1)],
            provider_summaries: vec![summary(1)],
        };
        random_sample(&mut few, 3);
        assert_eq!(few.allocation_requests, vec![request(1)]);
    }

    /// The `Value` rendering that [`Body`] replaced, kept as the reference its bytes must
    /// match (`_transform_allocation_candidates`).
    pub(super) fn render_value(
        ctx: &Ctx,
        req: &CandidateRequest,
        cands: &Candidates,
        traits: &[Vec<String>],
    ) -> Value {
        let areqs: Vec<Value> = cands
            .allocation_requests
            .iter()
            .map(|a| {
                if ctx.at_least(12) {
                    let mut allocs = Map::new();
                    for (rp, res) in &a.allocations {
                        allocs.insert(rp.to_string(), json!({"resources": res}));
                    }
                    let mut v = json!({"allocations": allocs});
                    if ctx.at_least(34) {
                        let mut m = Map::new();
                        for (suffix, rps) in &a.mappings {
                            let list: Vec<String> = rps.iter().map(|u| u.to_string()).collect();
                            m.insert(suffix.clone(), json!(list));
                        }
                        v["mappings"] = Value::Object(m);
                    }
                    v
                } else {
                    let allocs: Vec<Value> = a
                        .allocations
                        .iter()
                        .map(|(rp, res)| {
                            json!({"resource_provider": {"uuid": rp.to_string()}, "resources": res})
                        })
                        .collect();
                    json!({ "allocations": allocs })
                }
            })
            .collect();
        let requested: BTreeSet<&str> = req
            .groups
            .iter()
            .flat_map(|g| g.resources.iter().map(|(rc, _)| rc.as_str()))
            .collect();
        let all_resources = ctx.at_least(27);
        let mut sums = Map::new();
        for (s, traits) in cands.provider_summaries.iter().zip(traits) {
            let mut res = Map::new();
            for r in &s.resources {
                if all_resources || requested.contains(r.resource_class.as_str()) {
                    res.insert(
                        r.resource_class.clone(),
                        json!({"capacity": r.capacity, "used": r.used}),
                    );
                }
            }
            let mut v = json!({ "resources": res });
            if ctx.at_least(17) {
                v["traits"] = json!(traits);
            }
            if ctx.at_least(29) {
                v["parent_provider_uuid"] = json!(s.parent.map(|u| u.to_string()));
                v["root_provider_uuid"] = json!(s.root.to_string());
            }
            sums.insert(s.uuid.to_string(), v);
        }
        json!({"allocation_requests": areqs, "provider_summaries": sums})
    }

    fn ctx_at(minor: u32) -> Ctx {
        Ctx {
            request_id: Uuid::nil(),
            version: crate::Microversion { major: 1, minor },
            caller: None,
            accept: None,
            content_type: None,
            config: Default::default(),
        }
    }

    /// The query schema prints (and orders its errors) as Placement's dicts do; the texts
    /// are Placement 16.0's `detail`s (after `Invalid query string parameters: `, with
    /// webob's newlines as spaces) for `?resources=VCPU:1&bogus=1`.
    #[test]
    fn query_schema_keys_are_in_placements_order() {
        let bogus = json!({"resources": "VCPU:1", "bogus": "1"});
        let text = |minor: u32| {
            crate::schema::validate(query_schema(&ctx_at(minor)), &bogus)
                .expect_err("bogus is not allowed")
                .replace('\n', " ")
        };
        assert_eq!(text(39), "'bogus' does not match any of the regexes: '^in_tree([a-zA-Z0-9_-]{1,64})?$', '^member_of([a-zA-Z0-9_-]{1,64})?$', '^required([a-zA-Z0-9_-]{1,64})?$', '^resources([a-zA-Z0-9_-]{1,64})?$'  Failed validating 'additionalProperties' in schema:     {'type': 'object',      'properties': {'limit': {'type': ['integer', 'string'],                               'pattern': '^[1-9][0-9]*$',                               'minimum': 1,                               'minLength': 1},                     'group_policy': {'type': 'string',                                      'enum': ['none', 'isolate']},                     'root_required': {'type': ['string']},                     'same_subtree': {'type': ['string']}},      'additionalProperties': False,      'patternProperties': {'^resources([a-zA-Z0-9_-]{1,64})?$': {'type': 'string'},                            '^required([a-zA-Z0-9_-]{1,64})?$': {'type': 'string'},                            '^member_of([a-zA-Z0-9_-]{1,64})?$': {'type': 'string'},                            '^in_tree([a-zA-Z0-9_-]{1,64})?$': {'type': 'string'}}}  On instance:     {'resources': 'VCPU:1', 'bogus': '1'}");
        assert_eq!(text(21), "Additional properties are not allowed ('bogus' was unexpected)  Failed validating 'additionalProperties' in schema:     {'type': 'object',      'properties': {'resources': {'type': 'string'},                     'limit': {'type': ['integer', 'string'],                               'pattern': '^[1-9][0-9]*$',                               'minimum': 1,                               'minLength': 1},                     'required': {'type': ['string']},                     'member_of': {'type': ['string']}},      'required': ['resources'],      'additionalProperties': False}  On instance:     {'resources': 'VCPU:1', 'bogus': '1'}");
    }

    #[test]
    fn group_keys_split_like_placement() {
        assert_eq!(group_key("resources", false), Some(("resources", "")));
        assert_eq!(group_key("resources12", false), Some(("resources", "12")));
        assert_eq!(group_key("resources01", false), None);
        assert_eq!(group_key("required_NET", true), Some(("required", "_NET")));
        assert_eq!(group_key("required_NET", false), None);
        assert_eq!(group_key("member_of@", true), None);
        assert_eq!(group_key("limit", true), None);
    }

    #[test]
    fn python_reprs() {
        assert_eq!(py_list(&["a", "_B"]), "['a', '_B']");
        assert_eq!(py_repr("it's"), "\"it's\"");
    }

    /// A small deployment with every shape the body has: flat compute nodes (some used), a
    /// nested tree, a sharing provider, and a provider with a class nobody asks for.
    fn deployment() -> PState {
        use placement_core::Record;
        use placement_types::{Allocation, Consumer, Inventory, ResourceProvider, Timestamp};
        let agg = Uuid::from_u128(0xa99);
        let rp = |n: u128, parent: Option<u128>, root: u128| ResourceProvider {
            uuid: Uuid::from_u128(n),
            name: format!("rp-{n}"),
            generation: 1,
            parent: parent.map(Uuid::from_u128),
            root: Uuid::from_u128(root),
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
            inventories: BTreeMap::new(),
            traits: BTreeSet::new(),
            aggregates: BTreeSet::from([agg]),
        };
        let inv = |total: i64| Inventory {
            max_unit: total,
            ..Inventory::with_total(total)
        };
        let mut s = PState::new();
        for n in 1..=4u128 {
            let mut p = rp(n << 100 | n, None, n << 100 | n);
            p.inventories.insert("VCPU".into(), inv(8));
            p.inventories.insert("MEMORY_MB".into(), inv(4096));
            p.inventories.insert("DISK_GB".into(), inv(100));
            if n % 2 == 0 {
                p.traits.insert("HW_CPU_X86_AVX2".into());
                p.traits.insert("CUSTOM_GOLD".into());
                p.inventories.insert("SRIOV_NET_VF".into(), inv(4));
            }
            s.insert_record(Record::Provider(p));
        }
        let root = 9u128 << 100;
        let mut r = rp(root, None, root);
        r.inventories.insert("DISK_GB".into(), inv(100));
        s.insert_record(Record::Provider(r));
        for k in 1..=2u128 {
            let mut numa = rp(root | k, Some(root), root);
            numa.inventories.insert("VCPU".into(), inv(4));
            numa.inventories.insert("MEMORY_MB".into(), inv(2048));
            numa.traits.insert("HW_NUMA_ROOT".into());
            numa.traits.insert("HW_CPU_X86_AVX2".into());
            s.insert_record(Record::Provider(numa));
        }
        let shared = 7u128 << 100;
        let mut sp = rp(shared, None, shared);
        sp.inventories.insert("DISK_GB".into(), inv(1000));
        sp.traits.insert("MISC_SHARES_VIA_AGGREGATE".into());
        s.insert_record(Record::Provider(sp));
        s.insert_record(Record::Consumer(Consumer {
            uuid: Uuid::from_u128(0xc0),
            project_id: "p".into(),
            user_id: "u".into(),
            generation: 1,
            consumer_type: None,
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
            allocations: vec![Allocation {
                provider: Uuid::from_u128(2 << 100 | 2),
                resource_class: "VCPU".into(),
                used: 3,
            }],
        }));
        s
    }

    fn group(suffix: &str, resources: &[(&str, i64)], required: &[&str]) -> RequestGroup {
        RequestGroup {
            suffix: suffix.into(),
            resources: resources.iter().map(|(r, n)| (r.to_string(), *n)).collect(),
            required_traits: required
                .iter()
                .map(|t| BTreeSet::from([t.to_string()]))
                .collect(),
            ..RequestGroup::default()
        }
    }

    #[test]
    fn typed_body_has_the_bytes_of_the_value_rendering() {
        let state = deployment();
        let requests = [
            vec![group(
                "",
                &[("VCPU", 1), ("MEMORY_MB", 512), ("DISK_GB", 1)],
                &[],
            )],
            vec![
                group("1", &[("VCPU", 1)], &["HW_CPU_X86_AVX2"]),
                group("_NET", &[("SRIOV_NET_VF", 1)], &[]),
                group("", &[("DISK_GB", 5)], &[]),
            ],
            vec![group("", &[("MEMORY_MB", 1024)], &[])],
        ];
        let max = crate::context::MAX_VERSION.minor;
        let mut checked = 0;
        for groups in requests {
            for limit in [None, Some(2)] {
                for minor in 10..=max {
                    let ctx = ctx_at(minor);
                    let req = CandidateRequest {
                        groups: groups.clone(),
                        group_policy: Some(GroupPolicy::None),
                        limit,
                        nested_aware: minor >= 29,
                        ..CandidateRequest::default()
                    };
                    let cands = search(&state, &req).expect("search");
                    assert!(!cands.allocation_requests.is_empty(), "{groups:?}");
                    let traits: Vec<Vec<String>> = cands
                        .provider_summaries
                        .iter()
                        .map(|p| traits_in_id_order(&state, &p.traits))
                        .collect();
                    let typed = serde_json::to_string(&Body::new(&ctx, &req, &cands, &traits))
                        .expect("serializable");
                    let value = render_value(&ctx, &req, &cands, &traits).to_string();
                    assert_eq!(typed, value, "1.{minor} {groups:?} limit {limit:?}");
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 3 * 2 * (max - 9) as usize);
    }
}
