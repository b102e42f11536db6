//! History checkers: each one reads a recorded [`History`] and proves (or refutes) one
//! property the cluster must have kept through the chaos.
//!
//! | checker                  | property                                                              |
//! |--------------------------|-----------------------------------------------------------------------|
//! | [`lost_writes`]          | an acknowledged one-shot write is on every node at the end; a refused one is on none |
//! | [`capacity`]             | no read (during the run or at the end) shows usage above capacity     |
//! | [`usage_sum`]            | at the end, a provider's usages equal the sum of its allocations      |
//! | [`convergence`]          | at the end, every node holds the same state (digest and reads)        |
//! | [`linearizable`]         | every consumer behaves as one atomic register with generations (WGL search) |
//! | [`provider_generations`] | provider generations never go backwards in real time                  |
//!
//! Every checker is *sound* in the sense that it only reports a failure the server could not
//! have produced had it kept the property: outcomes the client cannot be sure of
//! ([`Outcome::Unknown`](crate::history::Outcome::Unknown)) are treated as "may or may not have
//! happened", and refusals that carry no information are dropped. Conversely a checker never
//! passes silently on missing data: no final reads, or a search that ran out of budget, is a
//! failure with a message saying so.
//!
//! [`run_all`] runs them all in the order of the table.

use crate::history::{History, Op, OpKind, Outcome, Seen, Value};

mod capacity;
mod convergence;
mod generations;
mod linear;
mod lost;
#[cfg(test)]
mod testkit;

pub use capacity::{capacity, usage_sum};
pub use convergence::convergence;
pub use generations::provider_generations;
pub use linear::linearizable;
pub use lost::lost_writes;

/// The verdict of one checker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The checker's name (`"lost-writes"`, `"linearizable"`, ...).
    pub name: &'static str,
    /// Whether the property held (and could be established).
    pub ok: bool,
    /// One line: what was checked and the verdict.
    pub summary: String,
    /// A multi-line explanation of the failures; empty when `ok`.
    pub detail: String,
}

impl Report {
    fn new(name: &'static str, ok: bool, summary: String, detail: String) -> Report {
        let detail = if ok { String::new() } else { detail };
        Report {
            name,
            ok,
            summary,
            detail,
        }
    }
}

/// Tuning of the checkers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Per consumer budget of the linearizability search, in distinct configurations
    /// visited; a consumer that exhausts it is reported as inconclusive (a failure).
    pub max_search_states: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            max_search_states: 2_000_000,
        }
    }
}

/// Runs every checker, in the order: lost-writes, capacity, usage-sum, convergence,
/// linearizable, provider-generations.
pub fn run_all(h: &History, opts: &Options) -> Vec<Report> {
    vec![
        lost_writes(h),
        capacity(h),
        usage_sum(h),
        convergence(h),
        linearizable(h, opts),
        provider_generations(h),
    ]
}

/// How many violation lines a detail lists before summarising the rest.
const DETAIL_LINES: usize = 40;

/// Collects failure lines for a detail, keeping the first few and counting the rest.
#[derive(Debug, Default)]
struct Violations {
    lines: Vec<String>,
    total: usize,
}

impl Violations {
    /// Records one violation; `line` is only rendered while under the listing limit.
    fn push(&mut self, line: impl FnOnce() -> String) {
        self.total = self.total.saturating_add(1);
        if self.lines.len() < DETAIL_LINES {
            self.lines.push(line());
        }
    }

    fn total(&self) -> usize {
        self.total
    }

    fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The listed lines, then how many were left out.
    fn into_detail(self) -> String {
        let mut out = self.lines.join("\n");
        let more = self.total.saturating_sub(self.lines.len());
        if more > 0 {
            out.push_str(&format!("\n... and {} more", count(more)));
        }
        out
    }
}

/// `1234567` -> `"1,234,567"`.
fn count(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Nanoseconds as milliseconds with three decimals: `1234567890` -> `"1234.567"`.
fn ms(ns: u64) -> String {
    format!("{}.{:03}", ns / 1_000_000, (ns / 1_000) % 1_000)
}

/// The first 8 hex digits of a UUID-like string (enough to tell providers apart in a listing).
fn short_id(s: &str) -> &str {
    s.get(..8).unwrap_or(s)
}

/// A value compactly: `{3fa85f64/VCPU:2, 3fa85f64/MEMORY_MB:512}`.
fn short_value(v: &Value) -> String {
    let parts: Vec<String> = v
        .iter()
        .map(|(k, amount)| match k.split_once('/') {
            Some((provider, class)) => format!("{}/{class}:{amount}", short_id(provider)),
            None => format!("{k}:{amount}"),
        })
        .collect();
    format!("{{{}}}", parts.join(", "))
}

/// A reading compactly: `absent`, or `g3 {..}`.
fn short_seen(s: &Seen) -> String {
    match s.generation {
        None if s.value.is_empty() => "absent".to_string(),
        None => format!("g- {}", short_value(&s.value)),
        Some(g) => format!("g{g} {}", short_value(&s.value)),
    }
}

/// An expected consumer generation: `null` or `g3`.
fn short_gen(g: Option<u64>) -> String {
    match g {
        None => "null".to_string(),
        Some(g) => format!("g{g}"),
    }
}

/// An outcome compactly: `ok`, `fail 409 placement.concurrent_update`, `unknown (timeout)`.
fn short_outcome(o: &Outcome) -> String {
    match o {
        Outcome::Ok => "ok".to_string(),
        Outcome::Fail { status, code } => match code {
            Some(code) => format!("fail {status} {code}"),
            None => format!("fail {status}"),
        },
        Outcome::Unknown { why } => format!("unknown ({why})"),
    }
}

/// Who ran an operation and when: `#12 c3 n2 [10.000..12.500 ms]`.
fn op_header(op: &Op) -> String {
    format!(
        "#{} c{} n{} [{}..{} ms]",
        op.id,
        op.client,
        op.node,
        ms(op.invoke_ns),
        ms(op.complete_ns)
    )
}

/// One operation on one line, all of it.
fn describe_op(op: &Op) -> String {
    let what = match &op.kind {
        OpKind::Write { writes } => {
            let parts: Vec<String> = writes
                .iter()
                .map(|w| {
                    format!(
                        "{} exp={} -> {}",
                        short_id(&w.consumer.to_string()),
                        short_gen(w.expected_generation),
                        short_value(&w.value)
                    )
                })
                .collect();
            format!("write [{}]", parts.join("; "))
        }
        OpKind::Delete { consumer } => format!("delete {consumer}"),
        OpKind::ReadConsumer { consumer, seen } => match seen {
            Some(seen) => format!("read {consumer} -> {}", short_seen(seen)),
            None => format!("read {consumer}"),
        },
        OpKind::ReadProvider {
            provider,
            generation,
            usages,
        } => {
            let gen = generation.map_or_else(|| "-".to_string(), |g| g.to_string());
            match usages {
                Some(u) => format!("read provider {provider} -> gen {gen} usages {u:?}"),
                None => format!("read provider {provider} -> gen {gen}"),
            }
        }
    };
    format!("{} {what} {}", op_header(op), short_outcome(&op.outcome))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_have_separators() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000), "1,000");
        assert_eq!(count(2_345_678), "2,345,678");
    }

    #[test]
    fn millis_have_three_decimals() {
        assert_eq!(ms(1_234_567_890), "1234.567");
        assert_eq!(ms(5), "0.000");
    }

    #[test]
    fn violations_cap_their_listing() {
        let mut v = Violations::default();
        for i in 0..DETAIL_LINES + 3 {
            v.push(|| format!("line {i}"));
        }
        assert_eq!(v.total(), DETAIL_LINES + 3);
        assert!(v.into_detail().ends_with("... and 3 more"));
    }

    #[test]
    fn run_all_keeps_the_order_and_fails_an_empty_history() {
        let reports = run_all(&History::default(), &Options::default());
        let names: Vec<&str> = reports.iter().map(|r| r.name).collect();
        assert_eq!(
            names,
            [
                "lost-writes",
                "capacity",
                "usage-sum",
                "convergence",
                "linearizable",
                "provider-generations"
            ]
        );
        // Without final reads, nothing about the end state can be established.
        assert!(!reports[0].ok);
        assert!(!reports[3].ok);
    }
}
