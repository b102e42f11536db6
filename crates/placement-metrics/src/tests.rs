//! The text encoder against exact expected output: escaping, histogram buckets, families.

use crate::family::{Family, MAX_CHILDREN, OVERFLOW};
use crate::metric::{Counter, Gauge, Histogram, Metric};
use crate::text::{Encode, Text};

fn render(metric: &dyn Encode) -> String {
    let mut out = Text::new();
    metric.encode(&mut out);
    out.finish()
}

#[test]
fn a_counter_has_help_type_and_value() {
    static C: Metric<Counter> =
        Metric::new("x_total", "Things.\nTwo lines \\ here.", Counter::new());
    C.add(41);
    C.inc();
    assert_eq!(
        render(&C),
        "# HELP x_total Things.\\nTwo lines \\\\ here.\n# TYPE x_total counter\nx_total 42\n"
    );
}

#[test]
fn label_values_are_escaped() {
    static F: Family<Counter, 2> = Family::new("y_total", "Y.", ["a", "b"], Counter::new);
    F.with(["back\\slash", "quote\"new\nline"]).inc();
    assert_eq!(
        render(&F),
        "# HELP y_total Y.\n# TYPE y_total counter\n\
         y_total{a=\"back\\\\slash\",b=\"quote\\\"new\\nline\"} 1\n"
    );
}

#[test]
fn histogram_buckets_are_cumulative_and_end_with_inf() {
    static BOUNDS: &[u64] = &[1_000_000, 5_000_000, 250_000_000];
    static H: Metric<Histogram> = Metric::new("z_seconds", "Z.", Histogram::seconds(BOUNDS));
    H.observe(500_000); // 0.5 ms: first bucket
    H.observe(1_000_000); // exactly 1 ms: first bucket (inclusive bound)
    H.observe(3_000_000); // second
    H.observe(2_000_000_000); // 2 s: +Inf only
    assert_eq!(
        render(&H),
        "# HELP z_seconds Z.\n# TYPE z_seconds histogram\n\
         z_seconds_bucket{le=\"0.001\"} 2\n\
         z_seconds_bucket{le=\"0.005\"} 3\n\
         z_seconds_bucket{le=\"0.25\"} 3\n\
         z_seconds_bucket{le=\"+Inf\"} 4\n\
         z_seconds_sum 2.0045\n\
         z_seconds_count 4\n"
    );
}

#[test]
fn a_labelled_histogram_puts_le_last() {
    static BOUNDS: &[u64] = &[1, 4];
    fn make() -> Histogram {
        Histogram::new(BOUNDS, 1.0)
    }
    static F: Family<Histogram, 1> = Family::new("n_entries", "N.", ["route"], make);
    F.with(["/r/{uuid}"]).observe(3);
    assert_eq!(
        render(&F),
        "# HELP n_entries N.\n# TYPE n_entries histogram\n\
         n_entries_bucket{route=\"/r/{uuid}\",le=\"1\"} 0\n\
         n_entries_bucket{route=\"/r/{uuid}\",le=\"4\"} 1\n\
         n_entries_bucket{route=\"/r/{uuid}\",le=\"+Inf\"} 1\n\
         n_entries_sum{route=\"/r/{uuid}\"} 3\n\
         n_entries_count{route=\"/r/{uuid}\"} 1\n"
    );
}

#[test]
fn special_floats_are_written_as_prometheus_reads_them() {
    let mut out = Text::new();
    out.sample("a", &[], f64::INFINITY);
    out.sample("b", &[], f64::NEG_INFINITY);
    out.sample("c", &[], f64::NAN);
    out.sample("d", &[], 0.1 + 0.2);
    out.sample("e", &[], 1e-7);
    assert_eq!(
        out.finish(),
        "a +Inf\nb -Inf\nc NaN\nd 0.30000000000000004\ne 0.0000001\n"
    );
}

#[test]
fn a_gauge_goes_down_when_its_guard_drops() {
    static G: Metric<Gauge> = Metric::new("p", "P.", Gauge::new());
    {
        let _one = G.track();
        let _two = G.track();
        assert_eq!(G.get(), 2);
    }
    assert_eq!(G.get(), 0);
}

#[test]
fn a_family_stops_growing_at_its_cap() {
    static F: Family<Counter, 1> = Family::new("w_total", "W.", ["id"], Counter::new);
    for i in 0..MAX_CHILDREN + 10 {
        F.with([&i.to_string()]).inc();
    }
    assert_eq!(F.len(), MAX_CHILDREN + 1);
    assert_eq!(F.with([OVERFLOW]).get(), 10);
    // A label set seen before the cap keeps its own child.
    F.with(["0"]).inc();
    assert_eq!(F.with(["0"]).get(), 2);
}

#[test]
fn the_catalog_encodes_every_metric_once() {
    let mut out = Text::new();
    crate::catalog::encode(&mut out);
    let text = out.finish();
    let types = text.lines().filter(|l| l.starts_with("# TYPE ")).count();
    assert_eq!(types, 24);
    for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let mut words = line.split(' ').skip(2);
        let (name, kind) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        assert!(name.starts_with("placementd_"), "{line}");
        assert_eq!(kind == "counter", name.ends_with("_total"), "{line}");
    }
}
