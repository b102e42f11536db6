//! What Keystone's answer to `GET /v3/auth/tokens` says of a token: the caller (oslo.context's
//! policy credentials) and when the token expires.
//!
//! Only the fields the policy engine reads are taken (keystoneauth's `AccessInfoV3`):
//! `user.id` and its domain, `project.id` and its domain, `domain.id` (a domain-scoped token),
//! `roles[].name`, `system.all`, `is_admin_project` (true when absent, as keystoneauth reads
//! it) and `expires_at`. An answer without a user id or an expiry is not a token.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use placement_api::context::Caller;
use serde::Deserialize;

/// A token Keystone vouched for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validated {
    pub caller: Caller,
    pub expires_at: SystemTime,
}

#[derive(Deserialize)]
struct Body {
    token: Token,
}

#[derive(Deserialize)]
struct Token {
    expires_at: String,
    user: Named,
    #[serde(default)]
    project: Option<Named>,
    #[serde(default)]
    domain: Option<Id>,
    #[serde(default)]
    roles: Vec<Role>,
    #[serde(default)]
    system: Option<System>,
    #[serde(default)]
    is_admin_project: Option<bool>,
}

#[derive(Deserialize)]
struct Named {
    id: String,
    #[serde(default)]
    domain: Option<Id>,
}

#[derive(Deserialize)]
struct Id {
    id: String,
}

#[derive(Deserialize)]
struct Role {
    name: String,
}

#[derive(Deserialize)]
struct System {
    #[serde(default)]
    all: bool,
}

/// Reads a token validation (or issue) answer; `None` if it is not one.
pub fn parse(body: &[u8]) -> Option<Validated> {
    let Body { token } = serde_json::from_slice(body).ok()?;
    let expires_at = parse_time(&token.expires_at)?;
    if token.user.id.is_empty() {
        return None;
    }
    let system_scope = token.system.is_some_and(|s| s.all);
    let (project_id, project_domain_id) = match token.project {
        Some(p) => (Some(p.id), p.domain.map(|d| d.id)),
        None => (None, None),
    };
    let caller = Caller {
        user_id: token.user.id,
        user_domain_id: token.user.domain.map(|d| d.id),
        project_id,
        project_domain_id,
        domain_id: token.domain.map(|d| d.id),
        roles: token.roles.into_iter().map(|r| r.name).collect(),
        system_scope,
        is_admin_project: token.is_admin_project.unwrap_or(true),
        ..Caller::default()
    };
    Some(Validated { caller, expires_at })
}

/// Keystone's `expires_at`: `YYYY-MM-DDTHH:MM:SS[.ffffff](Z|+00:00)`, always UTC.
pub fn parse_time(s: &str) -> Option<SystemTime> {
    let s = s
        .strip_suffix('Z')
        .or_else(|| s.strip_suffix("+00:00"))
        .unwrap_or(s);
    let (date, time) = s.split_once('T')?;
    let mut d = date.splitn(3, '-');
    let year: i64 = d.next()?.parse().ok()?;
    let month: u32 = d.next()?.parse().ok()?;
    let day: u32 = d.next()?.parse().ok()?;
    let (hms, _fraction) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.splitn(3, ':');
    let hour: u64 = t.next()?.parse().ok()?;
    let minute: u64 = t.next()?.parse().ok()?;
    let second: u64 = t.next()?.parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 || !(1970..=9999).contains(&year) {
        return None;
    }
    let days = u64::try_from(days_from_civil(year, month, day)).ok()?;
    let secs = days * 86_400 + hour * 3_600 + minute * 60 + second;
    UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real answer of keystone 30.0.0 for a reader of a project (trimmed of what is not
    /// read).
    const READER: &str = r#"{"token": {"methods": ["password"],
        "user": {"domain": {"id": "default", "name": "Default"}, "id": "b0b", "name": "bob",
                 "password_expires_at": null},
        "audit_ids": ["x"], "expires_at": "2026-12-06T05:21:08.000000Z",
        "issued_at": "2026-12-06T04:21:08.000000Z",
        "project": {"domain": {"id": "default", "name": "Default"}, "id": "p1", "name": "demo"},
        "is_domain": false,
        "roles": [{"id": "r", "name": "reader"}]}}"#;

    const SYSTEM_ADMIN: &str = r#"{"token": {"methods": ["password"],
        "user": {"domain": {"id": "default", "name": "Default"}, "id": "adm", "name": "admin"},
        "expires_at": "2026-12-06T05:21:08.000000Z", "system": {"all": true},
        "roles": [{"id": "a", "name": "admin"}, {"id": "m", "name": "member"},
                  {"id": "r", "name": "reader"}]}}"#;

    #[test]
    fn a_project_token_gives_its_user_project_and_roles() {
        let v = parse(READER.as_bytes()).expect("a token");
        assert_eq!(v.caller.user_id, "b0b");
        assert_eq!(v.caller.user_domain_id.as_deref(), Some("default"));
        assert_eq!(v.caller.project_id.as_deref(), Some("p1"));
        assert_eq!(v.caller.project_domain_id.as_deref(), Some("default"));
        assert_eq!(v.caller.roles, ["reader"]);
        assert!(!v.caller.system_scope);
        assert!(v.caller.is_admin_project);
        assert_eq!(
            v.expires_at,
            parse_time("2026-12-06T05:21:08Z").expect("time")
        );
    }

    #[test]
    fn a_system_token_has_no_project() {
        let v = parse(SYSTEM_ADMIN.as_bytes()).expect("a token");
        assert!(v.caller.system_scope);
        assert_eq!(v.caller.project_id, None);
        assert!(v.caller.has_role("admin"));
    }

    #[test]
    fn what_is_not_a_token_is_refused() {
        for bad in [
            "",
            "{}",
            r#"{"token": {}}"#,
            r#"{"token": {"expires_at": "soon", "user": {"id": "u"}}}"#,
            r#"{"token": {"expires_at": "2026-12-06T05:21:08Z", "user": {"id": ""}}}"#,
        ] {
            assert_eq!(parse(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn times_are_read_as_utc() {
        let t = |s| {
            parse_time(s)
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_secs())
        };
        assert_eq!(t("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(t("2000-03-01T00:00:00.000000Z"), Some(951_868_800));
        assert_eq!(t("2026-12-06T05:21:08+00:00"), Some(1_796_534_468));
        for bad in [
            "2026-13-01T00:00:00Z",
            "2026-12-06",
            "x",
            "2026-12-06T25:00:00Z",
        ] {
            assert_eq!(t(bad), None, "{bad}");
        }
    }
}
