//! The policy in force, replaceable while the server runs: oslo.policy reads its policy file
//! again when the file changes, and operators expect the same. [`LivePolicy::reload`] loads
//! the file again when its size or modification time changed (or when forced, on SIGHUP);
//! a file that no longer loads leaves the previous policy in force and is reported once.
//! Each request takes the policy current when it is authorized.

use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use super::{Policy, PolicyError, PolicyOptions};

/// What identifies a version of the policy file.
type Stamp = Option<(SystemTime, u64)>;

#[derive(Debug)]
pub struct LivePolicy {
    current: RwLock<Arc<Policy>>,
    /// How to load it again; `None` for a fixed policy (tests, fixtures).
    options: Option<PolicyOptions>,
    /// The file version last looked at (loaded or refused).
    seen: Mutex<Stamp>,
}

impl LivePolicy {
    /// A policy that never changes.
    pub fn fixed(policy: Policy) -> LivePolicy {
        LivePolicy {
            current: RwLock::new(Arc::new(policy)),
            options: None,
            seen: Mutex::new(None),
        }
    }

    /// Loads the policy `options` describe; [`LivePolicy::reload`] reads its file again.
    pub fn load(options: PolicyOptions) -> Result<LivePolicy, PolicyError> {
        let seen = stamp(&options);
        let policy = Policy::load(&options)?;
        Ok(LivePolicy {
            current: RwLock::new(Arc::new(policy)),
            options: Some(options),
            seen: Mutex::new(seen),
        })
    }

    /// The policy in force.
    pub fn current(&self) -> Arc<Policy> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Loads the file again if it changed since last looked at, or if `force`. `Ok(true)`
    /// when a new policy is in force, `Ok(false)` when nothing changed; an error (the file
    /// no longer loads) leaves the previous policy in force and is returned once per file
    /// version.
    pub fn reload(&self, force: bool) -> Result<bool, PolicyError> {
        let Some(options) = &self.options else {
            return Ok(false);
        };
        let now = stamp(options);
        {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            if !force && *seen == now {
                return Ok(false);
            }
            *seen = now;
        }
        let policy = Policy::load(options)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(policy);
        Ok(true)
    }

    /// The policy file, if there is one to watch.
    pub fn file(&self) -> Option<&std::path::Path> {
        self.options.as_ref()?.policy_file.as_deref()
    }
}

fn stamp(options: &PolicyOptions) -> Stamp {
    let meta = std::fs::metadata(options.policy_file.as_ref()?).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::Caller;
    use crate::policy::Target;

    #[test]
    fn a_changed_file_is_loaded_again_and_a_broken_one_keeps_the_old_policy() {
        let dir = tempfile_dir();
        let path = dir.join("policy.yaml");
        std::fs::write(&path, "{}\n").expect("write");
        let live = LivePolicy::load(PolicyOptions {
            enforce_new_defaults: true,
            enforce_scope: true,
            policy_file: Some(path.clone()),
        })
        .expect("loads");
        let member = Caller {
            user_id: "u".into(),
            project_id: Some("p".into()),
            roles: vec!["member".into()],
            ..Caller::default()
        };
        let rule = "placement:resource_providers:list";
        let allowed =
            |live: &LivePolicy| live.current().enforce(rule, &member, &Target::of(&member));
        assert!(!allowed(&live));
        assert!(!live.reload(false).expect("unchanged"));
        std::fs::write(&path, format!("\"{rule}\": \"role:member\"\n")).expect("write");
        assert!(live.reload(true).expect("reloads"));
        assert!(allowed(&live));
        std::fs::write(&path, format!("\"{rule}\": \"role:member or (\"\n")).expect("write");
        assert!(live.reload(true).is_err());
        assert!(allowed(&live), "the previous policy stays in force");
        assert!(!live.reload(false).expect("reported once"));
        let _ = std::fs::remove_dir_all(dir);
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("live-policy-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }
}
