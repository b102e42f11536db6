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

use std::collections::BTreeSet;

use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use http::StatusCode;
use placement_core::candidates::{
    search, CandidateRequest, Candidates, GroupPolicy, RequestGroup, SearchError,
};
use placement_core::State as PState;
use placement_types::ErrorCode;
use serde_json::{json, Map, Value};

use crate::context::Ctx;
use crate::qs;
use crate::util::{json_response, now, QueryParams};
use crate::{ApiError, AppState, Backend};

pub(crate) fn routes<B: Backend>() -> Router<AppState<B>> {
    Router::new().route("/allocation_candidates", get(list::<B>))
}

/// Group suffix patterns: numbers from 1.25, short names from 1.33.
const GROUP_PAT: &str = "[1-9][0-9]*";
const GROUP_PAT_1_33: &str = "[a-zA-Z0-9_-]{1,64}";

/// The four group keys, in Placement's schema order.
const GROUP_KEYS: [&str; 4] = ["resources", "required", "member_of", "in_tree"];

/// The query-string schema of a microversion (`schemas/allocation_candidate.py`).
fn query_schema(ctx: &Ctx) -> Value {
    let mut props = Map::new();
    let mut schema = Map::new();
    schema.insert("type".into(), json!("object"));
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
        props.insert(
            "group_policy".into(),
            json!({"type": "string", "enum": ["none", "isolate"]}),
        );
    } else {
        props.insert("resources".into(), json!({"type": "string"}));
        schema.insert("required".into(), json!(["resources"]));
        if ctx.at_least(17) {
            props.insert("required".into(), json!({"type": ["string"]}));
        }
        if ctx.at_least(21) {
            props.insert("member_of".into(), json!({"type": ["string"]}));
        }
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
    if ctx.at_least(35) {
        props.insert("root_required".into(), json!({"type": ["string"]}));
    }
    if ctx.at_least(36) {
        props.insert("same_subtree".into(), json!({"type": ["string"]}));
    }
    schema.insert("properties".into(), Value::Object(props));
    schema.insert("additionalProperties".into(), json!(false));
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
            "resources" => g.resources = qs::normalize_resources(val)?,
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
    q.validate(&query_schema(&ctx))?;
    let mut req = CandidateRequest {
        nested_aware: ctx.at_least(29),
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
    let found = st
        .read(|s| {
            search(s, &req).map(|c| {
                let traits = c
                    .provider_summaries
                    .iter()
                    .map(|p| traits_in_id_order(s, &p.traits))
                    .collect::<Vec<_>>();
                (c, traits)
            })
        })
        .await?;
    let (cands, traits) = found.map_err(|e| match e {
        SearchError::UnknownResourceClass(_) => ApiError::bad_request(format!(
            "Invalid resource class in resources parameter: {e}"
        )),
        SearchError::UnknownTrait(_) => ApiError::bad_request(e.to_string()),
    })?;
    let body = render(&ctx, &req, &cands, &traits);
    Ok(json_response(&ctx, StatusCode::OK, &body, Some(now())))
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

/// `_transform_allocation_candidates`.
fn render(ctx: &Ctx, req: &CandidateRequest, cands: &Candidates, traits: &[Vec<String>]) -> Value {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
