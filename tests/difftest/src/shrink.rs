//! The shortest sequence that still shows a divergence, by delta debugging (Zeller's
//! ddmin) over the operations before the diverging one.
//!
//! A candidate sequence *still fails* when a fresh run of it (new names, both servers
//! emptied) diverges at its last operation, which is always the original diverging one.
//! Each try costs a whole run, so shrinking stops after a time budget with the shortest
//! sequence found so far.

use std::time::{Duration, Instant};

use crate::op::Op;
use crate::run::{Error, Outcome, Pair};

/// The shortest failing sequence found, and the outcome of its last failing run.
pub async fn shrink(
    pair: &Pair,
    failing: Vec<Op>,
    mut salt: impl FnMut() -> String,
    budget: Duration,
) -> Result<(Vec<Op>, Outcome, u32), Error> {
    let started = Instant::now();
    let mut tries = 0u32;
    let (last, mut prefix) = match failing.split_last() {
        Some((last, prefix)) => (last.clone(), prefix.to_vec()),
        None => return Err("nothing to shrink".into()),
    };
    let mut best: Option<Outcome> = None;
    let mut n = 2usize;
    'outer: while !prefix.is_empty() && started.elapsed() < budget {
        let n_now = n.min(prefix.len());
        let chunk = prefix.len().div_ceil(n_now);
        let mut start = 0;
        while start < prefix.len() {
            if started.elapsed() >= budget {
                break 'outer;
            }
            let end = (start + chunk).min(prefix.len());
            let mut attempt: Vec<Op> = prefix[..start].to_vec();
            attempt.extend_from_slice(&prefix[end..]);
            attempt.push(last.clone());
            tries += 1;
            let outcome = pair.run(&attempt, salt()).await?;
            if outcome
                .divergence
                .as_ref()
                .is_some_and(|d| d.index + 1 == attempt.len())
            {
                attempt.pop();
                prefix = attempt;
                best = Some(outcome);
                n = (n_now - 1).max(2);
                continue 'outer;
            }
            start = end;
        }
        if n_now >= prefix.len() {
            break;
        }
        n = (n_now * 2).min(prefix.len());
    }
    prefix.push(last);
    let outcome = match best {
        Some(o) => o,
        None => {
            tries += 1;
            pair.run(&prefix, salt()).await?
        }
    };
    Ok((prefix, outcome, tries))
}
