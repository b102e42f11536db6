//! Parsers for Placement's structured query parameters (`resources`, `required`,
//! `member_of`, `in_tree`), with Placement's messages (`util.normalize_*`). Shared by
//! `GET /resource_providers` and `GET /allocation_candidates` (pass the group suffix).

use std::collections::BTreeSet;

use placement_types::Uuid;

use crate::context::Ctx;
use crate::error::ApiError;
use crate::query_params::QueryParams;
use crate::schema::is_uuid_like;

const RESOURCES_FORM: &str = "Badly formed resources parameter. Expected resources query \
                              string parameter in form: ?resources=VCPU:2,MEMORY_MB:1024.";

/// What Python's `int()` makes of a query value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PyInt {
    Fits(i64),
    /// Beyond `i64` (Python's integers have no bound): its sign, and its digits without
    /// leading zeros, as Python would print it.
    Big {
        negative: bool,
        digits: String,
    },
}

/// Parses Python's `int()` of a string (surrounding whitespace, a sign, digits, `_` separators).
fn py_int(s: &str) -> Option<PyInt> {
    let t = s.trim();
    let (negative, digits) = match t.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || !digits.chars().all(|c| c.is_ascii_digit() || c == '_')
    {
        return None;
    }
    let digits = digits.replace('_', "");
    Some(match digits.parse::<i64>() {
        Ok(v) => PyInt::Fits(if negative { -v } else { v }),
        Err(_) => PyInt::Big {
            negative,
            digits: digits.trim_start_matches('0').to_string(),
        },
    })
}

/// `normalize_resources_qs_param`: `VCPU:2,MEMORY_MB:1024` → classes and amounts, in order
/// (a repeated class keeps its last amount, at its first position). Amounts of any size are
/// read as Python reads them: one beyond `i64` is taken as `i64::MAX` (no provider has room
/// for it: an empty answer, as Placement gives), and a negative one beyond it is refused with
/// its own digits.
pub fn normalize_resources(qs: &str) -> Result<Vec<(String, i64)>, ApiError> {
    if qs.trim().is_empty() {
        return Err(ApiError::bad_request(format!(
            "{RESOURCES_FORM} Got: empty string."
        )));
    }
    let mut out: Vec<(String, i64)> = Vec::new();
    for rt in qs.split(',') {
        let parts: Vec<&str> = rt.split(':').collect();
        if parts.len() != 2 {
            return Err(ApiError::bad_request(format!(
                "{RESOURCES_FORM} Got: {rt}."
            )));
        }
        let (name, amount) = (parts[0], parts[1]);
        let too_small = |got: String| {
            ApiError::bad_request(format!(
                "Requested resource {name} requires amount >= 1. Got: {got}."
            ))
        };
        let n = match py_int(amount) {
            None => {
                return Err(ApiError::bad_request(format!(
                    "Requested resource {name} expected positive integer amount. Got: {amount}."
                )))
            }
            Some(PyInt::Fits(n)) if n < 1 => return Err(too_small(n.to_string())),
            Some(PyInt::Fits(n)) => n,
            Some(PyInt::Big {
                negative: true,
                digits,
            }) => return Err(too_small(format!("-{digits}"))),
            Some(PyInt::Big {
                negative: false, ..
            }) => i64::MAX,
        };
        match out.iter_mut().find(|(k, _)| k == name) {
            Some(e) => e.1 = n,
            None => out.push((name.to_string(), n)),
        }
    }
    Ok(out)
}

/// Required trait groups (each an any-of set) and forbidden traits.
pub type TraitQuery = (Vec<BTreeSet<String>>, BTreeSet<String>);

/// `normalize_traits_qs_param`: one value of `required`.
pub fn normalize_traits_param(
    val: &str,
    allow_forbidden: bool,
    allow_any_traits: bool,
) -> Result<TraitQuery, ApiError> {
    if let Some(rest) = val.strip_prefix("in:") {
        if !allow_any_traits {
            return Err(ApiError::bad_request(format!(
                "Invalid query string parameters: The format 'in:HW_CPU_X86_VMX,CUSTOM_MAGIC' \
                 only supported since microversion 1.39. Got: {val}"
            )));
        }
        let any: BTreeSet<String> = rest.split(',').map(|s| s.trim().to_string()).collect();
        if any.iter().any(|t| t.is_empty()) {
            return Err(ApiError::bad_request(format!(
                "Invalid query string parameters: Expected 'required' parameter value of the \
                 form: in:HW_CPU_X86_VMX,CUSTOM_MAGIC. Got an empty trait in: {val}"
            )));
        }
        if any.iter().any(|t| t.starts_with('!')) {
            return Err(ApiError::bad_request(format!(
                "Invalid query string parameters: The format 'in:HW_CPU_X86_VMX,CUSTOM_MAGIC' \
                 does not support forbidden traits. Got: {val}"
            )));
        }
        return Ok((vec![any], BTreeSet::new()));
    }
    let all: Vec<String> = val.split(',').map(|s| s.trim().to_string()).collect();
    let forbidden: BTreeSet<String> = all
        .iter()
        .filter_map(|t| t.strip_prefix('!'))
        .map(|t| t.trim_start_matches('!').to_string())
        .collect();
    if all.iter().any(|t| t.is_empty()) || forbidden.iter().any(|t| t.is_empty()) {
        let form = if allow_forbidden {
            "HW_CPU_X86_VMX,!CUSTOM_MAGIC"
        } else {
            "HW_CPU_X86_VMX,CUSTOM_MAGIC"
        };
        return Err(ApiError::bad_request(format!(
            "Invalid query string parameters: Expected 'required' parameter value of the form: \
             {form}. Got an empty trait in: {val}"
        )));
    }
    let required: Vec<BTreeSet<String>> = all
        .iter()
        .filter(|t| !t.starts_with('!'))
        .map(|t| BTreeSet::from([t.clone()]))
        .collect();
    if !forbidden.is_empty() && !allow_forbidden {
        return Err(ApiError::bad_request(format!(
            "Invalid query string parameters: Expected 'required' parameter value of the form: \
             HW_CPU_X86_VMX,CUSTOM_MAGIC. Got: {val}"
        )));
    }
    Ok((required, forbidden))
}

/// `normalize_traits_qs_params`: every `required<suffix>` (only the last before 1.39).
pub fn normalize_traits_params(
    ctx: &Ctx,
    q: &QueryParams,
    suffix: &str,
) -> Result<TraitQuery, ApiError> {
    let allow_forbidden = ctx.at_least(22);
    let allow_any = ctx.at_least(39);
    let mut values = q.get_all(&format!("required{suffix}"));
    if !allow_any && values.len() > 1 {
        values = values.split_off(values.len() - 1);
    }
    let mut required = Vec::new();
    let mut forbidden = BTreeSet::new();
    for v in values {
        let (r, f) = normalize_traits_param(v, allow_forbidden, allow_any)?;
        required.extend(r);
        forbidden.extend(f);
    }
    Ok((required, forbidden))
}

fn parse_agg(s: &str) -> Result<Uuid, ApiError> {
    let bad = || {
        ApiError::bad_request(format!(
            "Invalid query string parameters: Expected 'member_of' parameter to contain valid \
             UUID(s). Got: {s}"
        ))
    };
    if !is_uuid_like(s) {
        return Err(bad());
    }
    Uuid::parse_str(s.trim_start_matches("urn:").trim_start_matches("uuid:")).map_err(|_| bad())
}

/// `normalize_member_of_qs_param`: one value of `member_of`.
pub fn normalize_member_of_param(
    value: &str,
) -> Result<(BTreeSet<Uuid>, BTreeSet<Uuid>), ApiError> {
    if value.contains(',') && !(value.starts_with("in:") || value.starts_with("!in:")) {
        return Err(ApiError::bad_request(format!(
            "Multiple values for 'member_of' must be prefixed with the 'in:' or '!in:' keyword \
             using the valid microversion. Got: {value}"
        )));
    }
    let (req, forb): (Vec<&str>, Vec<&str>) = if let Some(r) = value.strip_prefix("!in:") {
        (vec![], r.split(',').collect())
    } else if let Some(r) = value.strip_prefix('!') {
        (vec![], vec![r])
    } else if let Some(r) = value.strip_prefix("in:") {
        (r.split(',').collect(), vec![])
    } else {
        (vec![value], vec![])
    };
    let mut required = BTreeSet::new();
    let mut forbidden = BTreeSet::new();
    for s in req {
        required.insert(parse_agg(s)?);
    }
    for s in forb {
        forbidden.insert(parse_agg(s)?);
    }
    Ok((required, forbidden))
}

/// `normalize_member_of_qs_params`: every `member_of<suffix>`.
pub fn normalize_member_of_params(
    ctx: &Ctx,
    q: &QueryParams,
    suffix: &str,
) -> Result<(Vec<BTreeSet<Uuid>>, BTreeSet<Uuid>), ApiError> {
    let key = format!("member_of{suffix}");
    let values = q.get_all(&key);
    if !ctx.at_least(24) && values.len() > 1 {
        return Err(ApiError::bad_request(format!(
            "Multiple member_of{suffix} parameters are not supported"
        )));
    }
    let mut required = Vec::new();
    let mut forbidden = BTreeSet::new();
    for v in values {
        let (r, f) = normalize_member_of_param(v)?;
        if !r.is_empty() {
            required.push(r);
        }
        if !f.is_empty() {
            if !ctx.at_least(32) {
                return Err(ApiError::bad_request(format!(
                    "Forbidden member_of{suffix} parameters are not supported in the specified \
                     microversion"
                )));
            }
            forbidden.extend(f);
        }
    }
    Ok((required, forbidden))
}

/// `normalize_in_tree_qs_params`.
pub fn normalize_in_tree(value: &str) -> Result<Uuid, ApiError> {
    let v = value.trim();
    let bad = || {
        ApiError::bad_request(format!(
            "Invalid query string parameters: Expected 'in_tree' parameter to be a format of \
             uuid. Got: {value}"
        ))
    };
    if !is_uuid_like(v) {
        return Err(bad());
    }
    Uuid::parse_str(v).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_parse_like_placement() {
        assert_eq!(
            normalize_resources("VCPU:2,DISK_GB:10").ok(),
            Some(vec![("VCPU".into(), 2), ("DISK_GB".into(), 10)])
        );
        let e = normalize_resources("VCPU:0").err().map(|e| e.detail);
        assert_eq!(
            e.as_deref(),
            Some("Requested resource VCPU requires amount >= 1. Got: 0.")
        );
        assert!(normalize_resources("VCPU").is_err());
        assert!(normalize_resources("VCPU:x").is_err());
    }

    #[test]
    fn resources_of_any_size() {
        let ok = |v: &str| normalize_resources(v).map_err(|e| e.detail);
        assert_eq!(
            ok("VCPU:100000000000000000000,DISK_GB:1_0"),
            Ok(vec![("VCPU".into(), i64::MAX), ("DISK_GB".into(), 10)])
        );
        assert_eq!(
            ok("VCPU:-000100000000000000000000"),
            Err(
                "Requested resource VCPU requires amount >= 1. Got: -100000000000000000000.".into()
            )
        );
        assert_eq!(
            ok("VCPU:-9223372036854775808"),
            Err("Requested resource VCPU requires amount >= 1. Got: -9223372036854775808.".into())
        );
        // An earlier bad entry is reported first, as Placement does.
        assert_eq!(
            ok("VCPU:x,DISK_GB:-100000000000000000000"),
            Err("Requested resource VCPU expected positive integer amount. Got: x.".into())
        );
        assert_eq!(ok("VCPU:2"), Ok(vec![("VCPU".into(), 2)]));
    }

    #[test]
    fn traits_parse_like_placement() {
        let (r, f) = normalize_traits_param("A,!B", true, false).expect("valid");
        assert_eq!(r.len(), 1);
        assert!(f.contains("B"));
        assert!(normalize_traits_param("A,!B", false, false).is_err());
        assert!(normalize_traits_param("in:A,B", true, false).is_err());
        assert!(normalize_traits_param("A,,B", true, true).is_err());
    }
}
