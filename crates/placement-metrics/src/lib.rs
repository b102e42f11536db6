//! placement-metrics: the numbers an operator scrapes from a placementd node, and the
//! Prometheus text exposition format (version 0.0.4) they are served in.
//!
//! # DESIGN
//! - **One catalog, process-wide.** Every metric the code updates is a `static` in
//!   [`catalog`], with its name, help and unit; an instrumented site is one line
//!   (`placement_metrics::catalog::DEDUPE_HITS.inc()`). A placementd process runs one node,
//!   so process-wide is node-wide. Values read at scrape time instead (Raft's term and
//!   indexes, RocksDB's size) are not kept here: the binary reads them from the node and
//!   writes them with the same [`Text`] encoder.
//! - **The hot path is an atomic add.** [`Counter`], [`Gauge`] and [`Histogram`] are
//!   relaxed atomics; a histogram observes integers (nanoseconds, entries) so its sum is an
//!   atomic add too, and is scaled to the base unit (seconds) only when encoded. A labelled
//!   [`Family`] takes a short lock to find its child; callers on a hot path may keep the
//!   child (`Arc`) it returns.
//! - **Bounded cardinality.** A family holds at most [`family::MAX_CHILDREN`] label sets;
//!   past that, new label sets share one child whose labels all read `overflow`, so a bug
//!   or a hostile client can never grow a scrape without bound.
//! - **Names follow Prometheus conventions**: `placementd_` prefix, base units in the name
//!   (`_seconds`, `_bytes`), `_total` on counters; the test in `tests/tests/metrics.rs` runs
//!   `promtool check metrics` on a real scrape.
//!
//! Why not the `prometheus` or `prometheus-client` crates: the first pulls `protobuf` and a
//! global registry with locks on every labelled update; the second writes OpenMetrics text
//! (`# EOF`, `_created` series, counter names without `_total` in `# TYPE`), which older
//! scrapers and `promtool check metrics` read differently. What placementd needs is small:
//! four types and a text writer, here in a few hundred lines with no dependency.
//!
//! Left out: summaries (quantiles are computed by Prometheus from the histograms),
//! exemplars, OpenMetrics, protobuf exposition, and metric removal (a label set, once seen,
//! is reported until the process exits).

pub mod catalog;
pub mod family;
mod metric;
mod text;

pub use family::Family;
pub use metric::{Counter, Gauge, GaugeGuard, Histogram, HistogramTimer, Metric};
pub use text::{Kind, Samples, Text, CONTENT_TYPE};

#[cfg(test)]
mod tests;
