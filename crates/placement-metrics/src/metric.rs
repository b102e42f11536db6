//! The value types: [`Counter`], [`Gauge`], [`Histogram`], and [`Metric`], which gives one
//! a name and help text so it can sit in a `static`.
//!
//! Every update is a relaxed atomic operation: a scrape may see a histogram's buckets and
//! its sum from slightly different instants (never a torn number), which Prometheus
//! tolerates. A histogram's `_count` and `+Inf` bucket are computed from the same bucket
//! reads, so they always agree.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::text::{format_value, Encode, Kind, Samples, Text};

/// A value that only goes up (resets to zero when the process restarts).
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub const fn new() -> Self {
        Counter(AtomicU64::new(0))
    }

    pub fn inc(&self) {
        self.add(1);
    }

    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Samples for Counter {
    const KIND: Kind = Kind::Counter;
    fn write_samples(&self, name: &str, labels: &[(&str, &str)], out: &mut Text) {
        out.sample(name, labels, self.get() as f64);
    }
}

/// A value that goes up and down (things in flight).
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    pub const fn new() -> Self {
        Gauge(AtomicI64::new(0))
    }

    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }

    pub fn add(&self, n: i64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Adds one now and takes it back when the guard is dropped (also when the future
    /// holding it is cancelled).
    pub fn track(&self) -> GaugeGuard<'_> {
        self.add(1);
        GaugeGuard(self)
    }
}

/// See [`Gauge::track`].
#[derive(Debug)]
pub struct GaugeGuard<'a>(&'a Gauge);

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        self.0.add(-1);
    }
}

impl Samples for Gauge {
    const KIND: Kind = Kind::Gauge;
    fn write_samples(&self, name: &str, labels: &[(&str, &str)], out: &mut Text) {
        out.sample(name, labels, self.get() as f64);
    }
}

/// Most buckets a [`Histogram`] may have (the `+Inf` bucket not counted).
pub const MAX_BUCKETS: usize = 20;

/// A distribution of integer observations (nanoseconds, entries) in fixed buckets.
///
/// `bounds` are the buckets' inclusive upper bounds in the observed unit, ascending; an
/// observation above the last lands in `+Inf` only. Encoded values (bounds and sum) are
/// divided by `divisor`: 1e9 turns nanoseconds into the seconds Prometheus expects.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [u64],
    divisor: f64,
    /// Per bucket, not cumulative; the last slot used is the `+Inf` overflow.
    counts: [AtomicU64; MAX_BUCKETS + 1],
    sum: AtomicU64,
}

impl Histogram {
    /// A histogram of `bounds` (at most [`MAX_BUCKETS`], ascending), scaled by `divisor`.
    pub const fn new(bounds: &'static [u64], divisor: f64) -> Self {
        assert!(
            bounds.len() <= MAX_BUCKETS,
            "a histogram has at most MAX_BUCKETS buckets"
        );
        let mut i = 1;
        while i < bounds.len() {
            assert!(bounds[i - 1] < bounds[i], "histogram bounds must ascend");
            i += 1;
        }
        Histogram {
            bounds,
            divisor,
            counts: [const { AtomicU64::new(0) }; MAX_BUCKETS + 1],
            sum: AtomicU64::new(0),
        }
    }

    /// A histogram of durations with `bounds` in nanoseconds, reported in seconds.
    pub const fn seconds(bounds_ns: &'static [u64]) -> Self {
        Histogram::new(bounds_ns, 1e9)
    }

    /// Records one observation.
    pub fn observe(&self, value: u64) {
        let bucket = self
            .bounds
            .iter()
            .position(|&b| value <= b)
            .unwrap_or(self.bounds.len());
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(value, Ordering::Relaxed);
    }

    /// Records a duration (nanoseconds; a duration beyond 584 years is capped).
    pub fn observe_duration(&self, d: Duration) {
        self.observe(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Records the time since `start`.
    pub fn observe_since(&self, start: Instant) {
        self.observe_duration(start.elapsed());
    }

    /// Records the time until the returned guard is dropped.
    pub fn start_timer(&self) -> HistogramTimer<'_> {
        HistogramTimer {
            histogram: self,
            start: Instant::now(),
        }
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.counts[..=self.bounds.len()]
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }
}

/// See [`Histogram::start_timer`].
#[derive(Debug)]
pub struct HistogramTimer<'a> {
    histogram: &'a Histogram,
    start: Instant,
}

impl Drop for HistogramTimer<'_> {
    fn drop(&mut self) {
        self.histogram.observe_since(self.start);
    }
}

impl Samples for Histogram {
    const KIND: Kind = Kind::Histogram;
    fn write_samples(&self, name: &str, labels: &[(&str, &str)], out: &mut Text) {
        let bucket = format!("{name}_bucket");
        let mut with_le: Vec<(&str, &str)> = labels.to_vec();
        let mut cumulative = 0u64;
        let les: Vec<String> = self
            .bounds
            .iter()
            .map(|&b| format_value(b as f64 / self.divisor))
            .chain(std::iter::once("+Inf".to_string()))
            .collect();
        for (i, le) in les.iter().enumerate() {
            cumulative += self.counts[i].load(Ordering::Relaxed);
            with_le.truncate(labels.len());
            with_le.push(("le", le));
            out.sample(&bucket, &with_le, cumulative as f64);
        }
        let sum = self.sum.load(Ordering::Relaxed) as f64 / self.divisor;
        out.sample(&format!("{name}_sum"), labels, sum);
        out.sample(&format!("{name}_count"), labels, cumulative as f64);
    }
}

/// A value with its name and help text: one unlabelled metric, fit for a `static`.
#[derive(Debug)]
pub struct Metric<M> {
    pub name: &'static str,
    pub help: &'static str,
    value: M,
}

impl<M> Metric<M> {
    pub const fn new(name: &'static str, help: &'static str, value: M) -> Self {
        Metric { name, help, value }
    }
}

impl<M> std::ops::Deref for Metric<M> {
    type Target = M;
    fn deref(&self) -> &M {
        &self.value
    }
}

impl<M: Samples + Sync> Encode for Metric<M> {
    fn encode(&self, out: &mut Text) {
        out.header(self.name, self.help, M::KIND);
        self.value.write_samples(self.name, &[], out);
    }
}
