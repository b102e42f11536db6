//! The Prometheus text exposition format, version 0.0.4 (what `promtool check metrics` and
//! every Prometheus server read): for each metric a `# HELP` line, a `# TYPE` line, then
//! its samples, one per line: `name{label="value",...} value`.
//!
//! Escaping, as the format defines it: in help text `\` and newline become `\\` and `\n`;
//! in label values `\`, `"` and newline become `\\`, `\"` and `\n`. Values are Go-style
//! floats: `+Inf`, `-Inf`, `NaN`, otherwise Rust's shortest round-trip decimal (never an
//! exponent Prometheus could not read).

use std::fmt::Write;

/// The `Content-Type` of a scrape answer.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A metric's type, as its `# TYPE` line names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// A value type that writes its sample lines under a name and labels (the header is the
/// caller's).
pub trait Samples {
    /// The `# TYPE` of a metric holding this value.
    const KIND: Kind;
    /// Writes this value's samples for `name` with `labels`.
    fn write_samples(&self, name: &str, labels: &[(&str, &str)], out: &mut Text);
}

/// Something that writes a whole metric (header and samples) into a scrape.
pub trait Encode: Sync {
    fn encode(&self, out: &mut Text);
}

/// A scrape being written.
#[derive(Debug, Default)]
pub struct Text {
    out: String,
}

impl Text {
    pub fn new() -> Self {
        Text::default()
    }

    /// The scrape so far.
    pub fn finish(self) -> String {
        self.out
    }

    /// The `# HELP` and `# TYPE` lines of metric `name`.
    pub fn header(&mut self, name: &str, help: &str, kind: Kind) {
        self.out.push_str("# HELP ");
        self.out.push_str(name);
        self.out.push(' ');
        for c in help.chars() {
            match c {
                '\\' => self.out.push_str("\\\\"),
                '\n' => self.out.push_str("\\n"),
                c => self.out.push(c),
            }
        }
        self.out.push_str("\n# TYPE ");
        self.out.push_str(name);
        self.out.push(' ');
        self.out.push_str(kind.as_str());
        self.out.push('\n');
    }

    /// One sample line: `name{labels} value`.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (label, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(label);
                self.out.push_str("=\"");
                escape_label_value(v, &mut self.out);
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        push_value(value, &mut self.out);
        self.out.push('\n');
    }

    /// A whole gauge with one unlabelled sample (values read at scrape time).
    pub fn gauge(&mut self, name: &str, help: &str, value: f64) {
        self.header(name, help, Kind::Gauge);
        self.sample(name, &[], value);
    }
}

fn escape_label_value(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A float as the format reads it.
pub(crate) fn push_value(value: f64, out: &mut String) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value == f64::INFINITY {
        out.push_str("+Inf");
    } else if value == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        // `Display` of f64 is the shortest decimal that reads back the same, with no
        // exponent; writing into a String cannot fail.
        let _ = write!(out, "{value}");
    }
}

/// `value` formatted as a sample value (for `le` labels).
pub(crate) fn format_value(value: f64) -> String {
    let mut s = String::new();
    push_value(value, &mut s);
    s
}
