//! One JSON line → one OTLP LogRecord: the line itself as the body, its time, a severity on
//! OpenTelemetry's scale, and its fields as attributes under OpenTelemetry's semantic-convention
//! names where one exists (`process.pid`, `container.id`, `k8s.pod.name`, ...) and `sealwatch.*`
//! for the rest. Built from the line's text, on the sink's thread: the daemon's loop pays nothing
//! for it.
use std::borrow::Cow;

use opentelemetry_proto::tonic::{
    common::v1::{any_value::Value, AnyValue, ArrayValue, KeyValue},
    logs::v1::{LogRecord, SeverityNumber},
};
use serde::Deserialize;

/// The fields of a line that become attributes (the rest is in the body).
#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(borrow)]
    time: Cow<'a, str>,
    #[serde(borrow)]
    node: Cow<'a, str>,
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    process: Option<Process<'a>>,
    #[serde(borrow)]
    container: Option<Container<'a>>,
    #[serde(borrow)]
    file: Option<File<'a>>,
    #[serde(borrow)]
    network: Option<Network<'a>>,
    #[serde(borrow)]
    session: Option<Session<'a>>,
    #[serde(borrow)]
    violation: Option<Violation<'a>>,
}

#[derive(Deserialize)]
struct Process<'a> {
    pid: i64,
    ppid: i64,
    uid: i64,
    #[serde(borrow)]
    exe: Cow<'a, str>,
    #[serde(borrow)]
    comm: Cow<'a, str>,
    #[serde(borrow)]
    args: Vec<Cow<'a, str>>,
    #[serde(borrow)]
    cwd: Cow<'a, str>,
    #[serde(borrow)]
    tty: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Container<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    runtime: Cow<'a, str>,
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    image: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pod: Option<Pod<'a>>,
}

#[derive(Deserialize)]
struct Pod<'a> {
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    namespace: Option<Cow<'a, str>>,
    #[serde(borrow)]
    uid: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct File<'a> {
    #[serde(borrow)]
    path: Cow<'a, str>,
    #[serde(borrow)]
    op: Cow<'a, str>,
}

#[derive(Deserialize)]
struct Network<'a> {
    #[serde(borrow)]
    protocol: Cow<'a, str>,
    #[serde(borrow)]
    direction: Option<Cow<'a, str>>,
    #[serde(borrow)]
    src: Cow<'a, str>,
    sport: i64,
    #[serde(borrow)]
    dst: Option<Cow<'a, str>>,
    dport: Option<i64>,
    #[serde(borrow)]
    result: Cow<'a, str>,
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Session<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    user: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Violation<'a> {
    #[serde(borrow)]
    rule: Cow<'a, str>,
    #[serde(borrow)]
    severity: Cow<'a, str>,
    #[serde(borrow)]
    message: Cow<'a, str>,
    #[serde(borrow)]
    action: Option<Cow<'a, str>>,
}

/// The record for one line, observed at `observed_ns`. A line that is not a sealwatch event (it
/// cannot be: the daemon wrote it) still goes out, as a body without attributes.
pub fn log_record(line: &str, observed_ns: u64) -> LogRecord {
    let mut record = LogRecord {
        observed_time_unix_nano: observed_ns,
        body: Some(string(line)),
        ..LogRecord::default()
    };
    let Ok(fields) = serde_json::from_str::<Fields<'_>>(line) else {
        record.time_unix_nano = observed_ns;
        return record;
    };
    record.time_unix_nano = humantime::parse_rfc3339(&fields.time)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(observed_ns, |d| d.as_nanos() as u64);
    let (number, text) = severity(&fields);
    record.severity_number = number as i32;
    record.severity_text = text.to_string();
    record.event_name = format!("sealwatch.{}", fields.kind);
    record.attributes = attributes(&fields);
    record
}

/// OpenTelemetry's severity scale: events are INFO, `loss` lines WARN, violations by their
/// severity from WARN (low) to FATAL (critical), so a collector's severity filter can pick
/// "violations of high and above" as `severity_number >= 17`.
fn severity(fields: &Fields<'_>) -> (SeverityNumber, &'static str) {
    match fields.violation.as_ref().map(|v| &*v.severity) {
        Some("critical") => (SeverityNumber::Fatal, "critical"),
        Some("high") => (SeverityNumber::Error, "high"),
        Some("medium") => (SeverityNumber::Warn2, "medium"),
        Some(_) => (SeverityNumber::Warn, "low"),
        None if fields.kind == "loss" => (SeverityNumber::Warn, "loss"),
        None => (SeverityNumber::Info, "info"),
    }
}

fn attributes(fields: &Fields<'_>) -> Vec<KeyValue> {
    let mut out = Attributes(Vec::with_capacity(24));
    out.str("host.name", &fields.node);
    out.str("sealwatch.kind", &fields.kind);
    if let Some(v) = &fields.violation {
        out.str("sealwatch.rule", &v.rule);
        out.str("sealwatch.severity", &v.severity);
        out.str("sealwatch.message", &v.message);
        out.opt_str("sealwatch.action", v.action.as_deref());
    }
    if let Some(p) = &fields.process {
        out.int("process.pid", p.pid);
        out.int("process.parent_pid", p.ppid);
        out.int("process.user.id", p.uid);
        out.str("process.executable.path", &p.exe);
        out.str("process.executable.name", &p.comm);
        out.0.push(key_value(
            "process.command_args",
            Value::ArrayValue(ArrayValue {
                values: p.args.iter().map(|a| string(a)).collect(),
            }),
        ));
        out.str("process.working_directory", &p.cwd);
        out.opt_str("sealwatch.process.tty", p.tty.as_deref());
    }
    if let Some(c) = &fields.container {
        out.str("container.id", &c.id);
        out.str("container.runtime", &c.runtime);
        out.opt_str("container.name", c.name.as_deref());
        out.opt_str("container.image.name", c.image.as_deref());
        if let Some(pod) = &c.pod {
            out.opt_str("k8s.pod.name", pod.name.as_deref());
            out.opt_str("k8s.namespace.name", pod.namespace.as_deref());
            out.opt_str("k8s.pod.uid", pod.uid.as_deref());
        }
    }
    if let Some(f) = &fields.file {
        out.str("file.path", &f.path);
        out.str("sealwatch.file.op", &f.op);
    }
    if let Some(n) = &fields.network {
        out.str("network.transport", &n.protocol);
        out.opt_str("network.io.direction", n.direction.as_deref());
        out.str("source.address", &n.src);
        out.int("source.port", n.sport);
        out.opt_str("destination.address", n.dst.as_deref());
        if let Some(port) = n.dport {
            out.int("destination.port", port);
        }
        out.opt_str("server.address", n.name.as_deref());
        out.str("sealwatch.network.result", &n.result);
    }
    if let Some(s) = &fields.session {
        out.str("sealwatch.session.id", &s.id);
        out.opt_str("sealwatch.session.type", s.kind.as_deref());
        out.opt_str("user.name", s.user.as_deref());
    }
    out.0
}

struct Attributes(Vec<KeyValue>);

impl Attributes {
    fn str(&mut self, key: &str, value: &str) {
        self.0
            .push(key_value(key, Value::StringValue(value.to_string())));
    }

    fn opt_str(&mut self, key: &str, value: Option<&str>) {
        if let Some(value) = value {
            self.str(key, value);
        }
    }

    fn int(&mut self, key: &str, value: i64) {
        self.0.push(key_value(key, Value::IntValue(value)));
    }
}

pub fn key_value(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}

pub fn string(text: &str) -> AnyValue {
    AnyValue {
        value: Some(Value::StringValue(text.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attribute<'r>(record: &'r LogRecord, key: &str) -> Option<&'r Value> {
        record
            .attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref()?.value.as_ref())
    }

    #[test]
    fn a_violation_line_maps_to_semantic_conventions() {
        let line = r#"{"schema":"sealwatch.event/v1","time":"2026-12-07T14:50:01.123456789Z","node":"n1","kind":"exec","process":{"pid":42,"ppid":7,"uid":0,"gid":0,"comm":"x","exe":"/tmp/x","args":["/tmp/x","-v"],"args_truncated":false,"cwd":"/","tty":null,"loginuid":null,"sessionid":null,"parent_exe":"/bin/sh"},"container":{"id":"abc","runtime":"containerd","name":"web","image":"nginx:1","pod":{"name":"web-0","namespace":"shop","uid":"u-1"},"metadata":"complete"},"violation":{"rule":"drift-exec","severity":"critical","message":"m"}}"#;
        let record = log_record(line, 1);
        assert_eq!(record.time_unix_nano, 1_796_655_001_123_456_789);
        assert_eq!(record.severity_number, SeverityNumber::Fatal as i32);
        assert_eq!(record.event_name, "sealwatch.exec");
        let body = record.body.as_ref().and_then(|b| b.value.as_ref());
        assert!(matches!(body, Some(Value::StringValue(b)) if b == line));
        let s = |key| match attribute(&record, key) {
            Some(Value::StringValue(v)) => v.clone(),
            other => panic!("{key}: {other:?}"),
        };
        assert_eq!(s("sealwatch.rule"), "drift-exec");
        assert_eq!(s("container.image.name"), "nginx:1");
        assert_eq!(s("k8s.namespace.name"), "shop");
        assert_eq!(s("k8s.pod.uid"), "u-1");
        assert_eq!(s("process.executable.path"), "/tmp/x");
        assert_eq!(s("host.name"), "n1");
        assert!(matches!(
            attribute(&record, "process.pid"),
            Some(Value::IntValue(42))
        ));
        assert!(
            matches!(attribute(&record, "process.command_args"), Some(Value::ArrayValue(a)) if a.values.len() == 2)
        );
    }

    #[test]
    fn events_without_violation_are_info_and_escapes_survive() {
        let line = r#"{"schema":"sealwatch.event/v1","time":"2026-12-07T14:50:01Z","node":"n\"1","kind":"connect","container":null,"network":{"protocol":"tcp","family":"ipv4","direction":"egress","src":"10.0.0.2","sport":4000,"dst":"10.0.0.3","dport":443,"result":"ok","workload":"w"}}"#;
        let record = log_record(line, 1);
        assert_eq!(record.severity_number, SeverityNumber::Info as i32);
        assert!(
            matches!(attribute(&record, "host.name"), Some(Value::StringValue(n)) if n == "n\"1")
        );
        assert!(matches!(
            attribute(&record, "destination.port"),
            Some(Value::IntValue(443))
        ));
    }

    #[test]
    fn a_line_that_does_not_parse_still_goes_out_as_its_body() {
        let record = log_record("not json", 5);
        assert_eq!(record.time_unix_nano, 5);
        assert!(record.attributes.is_empty());
    }
}
