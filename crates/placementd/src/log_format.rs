//! `--log-format json` (`[DEFAULT] use_json`): one JSON object per line, for log pipelines.
//!
//! Each line is a flat object: `timestamp` (RFC 3339, UTC), `level`, `target`, then the
//! fields of every span the event is in (outermost first, so an inner span's field wins),
//! then the event's own fields, `message` among them:
//!
//! ```text
//! {"timestamp":"2026-12-06T09:30:00.123456Z","level":"INFO","target":"placement_raft::peer",
//!  "span":"request","request_id":"req-…","global_request_id":"req-…",
//!  "message":"applying a forwarded write","from_node":"Some(2)"}
//! ```
//!
//! Flat rather than tracing-subscriber's own JSON (`{"fields":{…},"span":{…},"spans":[…]}`):
//! a pipeline filters on `request_id` the same way whichever span or event carried it. A field
//! named like one of the first three keys is renamed `field_<name>` rather than lost.
//! `span` names the innermost span. Values keep their JSON type when tracing recorded one
//! (integers, floats, booleans, strings); anything else is its `Debug` text.

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The keys every line starts with; fields of the same name are renamed.
const RESERVED: [&str; 3] = ["timestamp", "level", "target"];

/// The JSON line format (install with `.fmt_fields(JsonFields::new())`, so span fields are
/// kept as JSON).
pub(crate) struct FlatJson;

impl<S> FormatEvent<S, JsonFields> for FlatJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = Map::new();
        let mut timestamp = String::new();
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        line.insert("timestamp".into(), timestamp.into());
        let meta = event.metadata();
        line.insert("level".into(), meta.level().as_str().into());
        line.insert("target".into(), meta.target().into());
        if let Some(scope) = ctx.event_scope() {
            let mut innermost = None;
            for span in scope.from_root() {
                innermost = Some(span.name());
                let extensions = span.extensions();
                let Some(fields) = extensions.get::<FormattedFields<JsonFields>>() else {
                    continue;
                };
                if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(fields) {
                    for (name, value) in fields {
                        insert(&mut line, &name, value);
                    }
                }
            }
            if let Some(name) = innermost {
                line.insert("span".into(), name.into());
            }
        }
        event.record(&mut Fields(&mut line));
        writeln!(writer, "{}", Value::Object(line))
    }
}

/// Inserts a field, renaming it when it would overwrite one of [`RESERVED`].
fn insert(line: &mut Map<String, Value>, name: &str, value: Value) {
    if RESERVED.contains(&name) {
        line.insert(format!("field_{name}"), value);
    } else {
        line.insert(name.to_string(), value);
    }
}

/// Collects an event's fields into the line.
struct Fields<'a>(&'a mut Map<String, Value>);

impl Visit for Fields<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        insert(self.0, field.name(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        insert(self.0, field.name(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        insert(self.0, field.name(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        insert(self.0, field.name(), value.into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        insert(self.0, field.name(), value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        insert(self.0, field.name(), value.to_string().into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        insert(self.0, field.name(), format!("{value:?}").into());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A writer the test reads back.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_are_flat_json_with_span_fields() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(JsonFields::new())
            .event_format(FlatJson)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let outer = tracing::info_span!("request", request_id = "req-1", node = 1u64);
            let _outer = outer.enter();
            let inner = tracing::info_span!("step", node = 2u64);
            let _inner = inner.enter();
            tracing::warn!(lag = 7u64, level = "mine", ok = true, "behind by {}", 7);
        });
        let text = String::from_utf8(buffer.0.lock().expect("lock").clone()).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1, "{text}");
        let line: Value = serde_json::from_str(lines[0]).expect("a JSON line");
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["target"], module_path!());
        assert!(line["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
        assert_eq!(line["message"], "behind by 7");
        assert_eq!(line["request_id"], "req-1");
        assert_eq!(line["node"], 2, "the inner span's field wins");
        assert_eq!(line["span"], "step");
        assert_eq!(line["lag"], 7);
        assert_eq!(line["ok"], true);
        assert_eq!(line["field_level"], "mine");
    }
}
