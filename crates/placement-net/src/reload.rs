//! Re-reading files a running node depends on (certificates, the policy file): on every
//! SIGHUP, and on a poll so that an edited file applies without a signal. The caller's
//! `reload(force)` decides what changed (`force` on SIGHUP) and logs its own failures.

use std::time::Duration;

/// Runs `reload(false)` every `poll` and `reload(true)` on each SIGHUP, until the runtime
/// stops. `what` names the files in the log.
pub fn spawn(what: &'static str, poll: Duration, mut reload: impl FnMut(bool) + Send + 'static) {
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP; {what} reload on file change only");
                None
            }
        };
        let mut tick = tokio::time::interval(poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let force = tokio::select! {
                _ = tick.tick() => false,
                Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => None } } => {
                    tracing::info!("SIGHUP: reloading {what}");
                    true
                }
            };
            reload(force);
        }
    });
}
