//! The example agent and collector configurations in `deploy/otel-collector/`, checked offline:
//! no collector binary (otelcol, Fluent Bit, Vector, Loki) can be installed on this project's
//! machines, so each file is parsed as YAML and checked for internal consistency (every component a
//! pipeline names exists, the extensions used are enabled, the agents tail sealwatch's file sink
//! and insert into the table `deploy/clickhouse/schema.sql` creates).
//!
//! Plus a self-test of the OTLP test receiver harness (`sealwatch_tests::otlp`): real requests,
//! encoded by the official Python definitions, gzip'd, with a token and over TLS. No root, no
//! daemon.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};

use sealwatch_tests::otlp::{self, OtlpReceiver, ReceiverOptions};
use sealwatch_tests::{cmd, repo_root};

/// The file sink path every agent example tails.
const FILE_SINK: &str = "/var/log/sealwatch/events.jsonl";
/// The table the agents insert raw lines into.
const INGEST_DATABASE: &str = "sealwatch";
const INGEST_TABLE: &str = "ingest";
const INSERT: &str = "INSERT INTO sealwatch.ingest FORMAT JSONEachRow";

fn example_path(name: &str) -> PathBuf {
    repo_root().join("deploy/otel-collector").join(name)
}

fn example_text(name: &str) -> Result<String> {
    let path = example_path(name);
    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

/// The YAML file as JSON values (every key in these files is a string).
fn example(name: &str) -> Result<Value> {
    serde_yaml_ng::from_str(&example_text(name)?)
        .with_context(|| format!("deploy/otel-collector/{name} is not valid YAML"))
}

fn names(list: &Value, what: &str) -> Result<Vec<String>> {
    list.as_array()
        .with_context(|| format!("{what} is not a list: {list}"))?
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_owned)
                .with_context(|| format!("{what} holds a non-string {v}"))
        })
        .collect()
}

fn section_has(config: &Value, section: &str, name: &str) -> bool {
    config[section]
        .as_object()
        .is_some_and(|s| s.contains_key(name))
}

/// The type of a collector component id: `otlp_http/loki` -> `otlp_http`.
fn component_type(id: &str) -> &str {
    id.split('/').next().unwrap_or(id)
}

/// Every `"key": "value"` string value under `value`, at any depth, whose key is `key`.
fn find_strings<'a>(value: &'a Value, key: &str, out: &mut Vec<(&'a str, String)>, at: String) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let here = format!("{at}.{k}");
                if k == key {
                    if let Some(s) = v.as_str() {
                        out.push((s, here.clone()));
                    }
                }
                find_strings(v, key, out, here);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                find_strings(v, key, out, format!("{at}[{i}]"));
            }
        }
        _ => {}
    }
}

#[test]
fn collector_pipelines_name_declared_components() -> Result<()> {
    let config = example("collector.yaml")?;
    let pipelines = config["service"]["pipelines"]
        .as_object()
        .context("collector.yaml has no service.pipelines")?;
    ensure!(!pipelines.is_empty(), "collector.yaml has no pipeline");
    for (pipeline, spec) in pipelines {
        for section in ["receivers", "processors", "exporters"] {
            if spec[section].is_null() && section == "processors" {
                continue;
            }
            for name in names(&spec[section], &format!("{pipeline}.{section}"))? {
                ensure!(
                    section_has(&config, section, &name)
                        || section_has(&config, "connectors", &name),
                    "pipeline {pipeline} names {section} `{name}`, which collector.yaml does not \
                     define under {section}:"
                );
            }
        }
    }
    let enabled = names(&config["service"]["extensions"], "service.extensions")?;
    for name in &enabled {
        ensure!(
            section_has(&config, "extensions", name),
            "service.extensions names `{name}`, which is not defined under extensions:"
        );
    }
    // Extensions used by components must be started: the collector only runs those listed in
    // service.extensions.
    let mut used = Vec::new();
    find_strings(
        &config["exporters"],
        "storage",
        &mut used,
        "exporters".into(),
    );
    find_strings(
        &config["receivers"],
        "authenticator",
        &mut used,
        "receivers".into(),
    );
    ensure!(
        !used.is_empty(),
        "no storage or authenticator extension is used"
    );
    for (name, at) in used {
        ensure!(
            section_has(&config, "extensions", name) && enabled.iter().any(|e| e == name),
            "{at} uses extension `{name}`, which is not defined and enabled in service.extensions"
        );
    }
    Ok(())
}

#[test]
fn collector_logs_pipeline_goes_to_clickhouse_and_loki() -> Result<()> {
    let config = example("collector.yaml")?;
    let logs = &config["service"]["pipelines"]["logs"];
    ensure!(
        names(&logs["receivers"], "logs.receivers")? == ["otlp"],
        "the logs pipeline must receive from otlp only: {}",
        logs["receivers"]
    );
    let processors = names(&logs["processors"], "logs.processors")?;
    ensure!(
        processors.first().map(String::as_str) == Some("memory_limiter"),
        "memory_limiter must be the first processor: {processors:?}"
    );
    // Batching is in the exporters' queues (see collector.yaml): a batch processor would answer
    // sealwatch before the data is in a queue.
    ensure!(
        !processors.iter().any(|p| component_type(p) == "batch"),
        "batching belongs in each exporter's sending_queue, not in a batch processor: {processors:?}"
    );
    let exporters = names(&logs["exporters"], "logs.exporters")?;
    ensure!(
        exporters.iter().any(|e| e == "clickhouse"),
        "the logs pipeline must export to clickhouse: {exporters:?}"
    );
    let loki: Vec<&String> = exporters
        .iter()
        .filter(|e| {
            matches!(component_type(e), "otlp_http" | "otlphttp")
                && config["exporters"][e.as_str()]["endpoint"]
                    .as_str()
                    .is_some_and(|u| u.trim_end_matches('/').ends_with("/otlp"))
        })
        .collect();
    ensure!(
        loki.len() == 1,
        "the logs pipeline must export to Loki's native OTLP endpoint (an otlp_http exporter \
         whose endpoint ends in /otlp), once: {exporters:?}"
    );

    let receiver = &config["receivers"]["otlp"]["protocols"];
    for (protocol, port) in [("http", ":4318"), ("grpc", ":4317")] {
        let endpoint = receiver[protocol]["endpoint"].as_str().unwrap_or_default();
        ensure!(
            endpoint.ends_with(port),
            "the otlp receiver's {protocol} endpoint must be on {port}: {endpoint:?}"
        );
    }

    let clickhouse = &config["exporters"]["clickhouse"];
    ensure!(
        clickhouse["database"] == INGEST_DATABASE,
        "clickhouse exporter database: {}",
        clickhouse["database"]
    );
    for key in ["endpoint", "logs_table_name", "ttl"] {
        ensure!(
            clickhouse[key].is_string(),
            "the clickhouse exporter must set {key}"
        );
    }
    ensure!(
        clickhouse["create_schema"].is_boolean(),
        "the clickhouse exporter must say create_schema (true or false)"
    );
    for name in exporters {
        let exporter = &config["exporters"][name.as_str()];
        ensure!(
            exporter["retry_on_failure"]["enabled"] == true,
            "exporter {name} must retry"
        );
        let queue = &exporter["sending_queue"];
        ensure!(
            queue["enabled"] == true && queue["batch"].is_object(),
            "exporter {name} must batch in an enabled sending_queue: {queue}"
        );
        let storage = queue["storage"].as_str().unwrap_or_default();
        ensure!(
            component_type(storage) == "file_storage",
            "exporter {name}'s sending_queue must be persistent (storage: file_storage/...): {queue}"
        );
    }
    Ok(())
}

#[test]
fn fluent_bit_tails_the_file_sink_into_clickhouse() -> Result<()> {
    let config = example("fluent-bit.yaml")?;
    let inputs = config["pipeline"]["inputs"]
        .as_array()
        .context("fluent-bit.yaml has no pipeline.inputs list")?;
    let tails: Vec<&Value> = inputs.iter().filter(|i| i["name"] == "tail").collect();
    ensure!(tails.len() == 1, "expected one tail input: {inputs:?}");
    let tail = tails[0];
    ensure!(tail["path"] == FILE_SINK, "tail path: {}", tail["path"]);
    ensure!(
        tail["key"] == "line",
        "the tail input must put the raw line in `line` (key: line): {}",
        tail["key"]
    );
    ensure!(
        tail.get("parser").is_none() && tail.get("parsers").is_none(),
        "the tail input must not parse the line: ClickHouse does"
    );
    for key in ["db", "rotate_wait"] {
        ensure!(
            !tail[key].is_null(),
            "the tail input must set {key} (offsets by inode across renames)"
        );
    }
    let tag = tail["tag"].as_str().context("the tail input has no tag")?;

    let outputs = config["pipeline"]["outputs"]
        .as_array()
        .context("fluent-bit.yaml has no pipeline.outputs list")?;
    let http: Vec<&Value> = outputs.iter().filter(|o| o["name"] == "http").collect();
    ensure!(http.len() == 1, "expected one http output: {outputs:?}");
    let http = http[0];
    let matched = http["match"].as_str().unwrap_or_default();
    ensure!(
        matched == tag || matched == "*",
        "the http output matches {matched:?}, the tail input is tagged {tag:?}"
    );
    let uri = http["uri"].as_str().context("the http output has no uri")?;
    ensure!(
        uri.contains(&percent_encode(INSERT)),
        "the http output's uri must carry the url-encoded `{INSERT}`: {uri}"
    );
    let query = uri
        .split_once("query=")
        .map(|(_, q)| q.split('&').next().unwrap_or(q))
        .context("no query= in the uri")?;
    ensure!(
        percent_decode(query)? == INSERT,
        "the uri's query decodes to {:?}",
        percent_decode(query)?
    );
    ensure!(
        http["format"] == "json_lines",
        "http output format: {}",
        http["format"]
    );
    ensure!(
        http["json_date_key"] == false,
        "json_lines adds a `date` field unless json_date_key is false; sealwatch.ingest has only \
         `line`"
    );
    // The OTLP alternative is there, commented out.
    let text = example_text("fluent-bit.yaml")?;
    ensure!(
        text.lines().any(|l| {
            let l = l.trim_start();
            l.starts_with('#') && l.contains("name: opentelemetry")
        }),
        "fluent-bit.yaml should show the opentelemetry output as a commented alternative"
    );
    Ok(())
}

#[test]
fn vector_reads_the_file_sink_into_clickhouse() -> Result<()> {
    let config = example("vector.yaml")?;
    let sources = config["sources"]
        .as_object()
        .context("vector.yaml has no sources")?;
    let transforms = config["transforms"]
        .as_object()
        .context("vector.yaml has no transforms")?;
    let sinks = config["sinks"]
        .as_object()
        .context("vector.yaml has no sinks")?;
    for (kind, components) in [("transform", transforms), ("sink", sinks)] {
        for (name, spec) in components {
            let inputs = names(&spec["inputs"], &format!("{kind} {name}.inputs"))?;
            ensure!(!inputs.is_empty(), "{kind} {name} has no inputs");
            for input in inputs {
                ensure!(
                    sources.contains_key(&input) || transforms.contains_key(&input),
                    "{kind} {name} reads `{input}`, which is no source or transform"
                );
            }
        }
    }
    let files: Vec<(&String, &Value)> = sources
        .iter()
        .filter(|(_, s)| s["type"] == "file")
        .collect();
    ensure!(files.len() == 1, "expected one file source");
    let (file_name, file) = files[0];
    let include = names(&file["include"], "file source include")?;
    ensure!(
        include.iter().any(|p| p == FILE_SINK),
        "the file source must include {FILE_SINK}: {include:?}"
    );
    ensure!(
        file["read_from"] == "beginning",
        "read_from: {}",
        file["read_from"]
    );
    ensure!(
        file["fingerprint"]["strategy"] == "checksum",
        "the file source must identify files by content (fingerprint.strategy: checksum)"
    );

    let remaps: Vec<(&String, &Value)> = transforms
        .iter()
        .filter(|(_, t)| t["type"] == "remap")
        .collect();
    ensure!(remaps.len() == 1, "expected one remap transform");
    let (remap_name, remap) = remaps[0];
    ensure!(
        names(&remap["inputs"], "remap inputs")? == [file_name.as_str()],
        "the remap must read the file source"
    );
    let program = remap["source"].as_str().unwrap_or_default();
    ensure!(
        program.contains("\"line\"") && program.contains(".message"),
        "the remap must keep the raw line (.message) in a field `line`: {program}"
    );

    let clickhouse: Vec<(&String, &Value)> = sinks
        .iter()
        .filter(|(_, s)| s["type"] == "clickhouse")
        .collect();
    ensure!(clickhouse.len() == 1, "expected one clickhouse sink");
    let (sink_name, sink) = clickhouse[0];
    ensure!(
        names(&sink["inputs"], "sink inputs")? == [remap_name.as_str()],
        "sink {sink_name} must read the remap, not the raw events (they carry file, host, ...)"
    );
    ensure!(
        sink["database"] == INGEST_DATABASE && sink["table"] == INGEST_TABLE,
        "sink {sink_name} inserts into {}.{}, not {INGEST_DATABASE}.{INGEST_TABLE}",
        sink["database"],
        sink["table"]
    );
    ensure!(
        sink["format"] == "json_each_row",
        "format: {}",
        sink["format"]
    );
    ensure!(
        sink["buffer"]["type"] == "disk" && sink["buffer"]["when_full"] == "block",
        "sink {sink_name} must buffer on disk and block when full: {}",
        sink["buffer"]
    );
    ensure!(
        sink["acknowledgements"]["enabled"] == true,
        "sink {sink_name} must have end-to-end acknowledgements"
    );
    Ok(())
}

#[test]
fn the_ingest_table_exists_in_the_clickhouse_schema() -> Result<()> {
    let schema_path = repo_root().join("deploy/clickhouse/schema.sql");
    if !schema_path.exists() {
        // The schema is optional to this check: the configs name the table, schema.sql (when it
        // is there) must create it.
        eprintln!(
            "{} is absent: nothing to compare the agents' table with",
            schema_path.display()
        );
        return Ok(());
    }
    let schema = std::fs::read_to_string(&schema_path)
        .with_context(|| format!("reading {}", schema_path.display()))?;
    let table = format!("{INGEST_DATABASE}.{INGEST_TABLE}");
    let statement = schema
        .split(';')
        .map(|s| {
            s.lines()
                .filter(|l| !l.trim_start().starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .find(|s| {
            let flat = s.split_whitespace().collect::<Vec<_>>().join(" ");
            flat.starts_with("CREATE TABLE")
                && flat
                    .trim_start_matches("CREATE TABLE ")
                    .trim_start_matches("IF NOT EXISTS ")
                    .strip_prefix(&table)
                    .is_some_and(|rest| rest.starts_with([' ', '(']))
        });
    let Some(statement) = statement else {
        bail!(
            "{} does not create {table}, which fluent-bit.yaml and vector.yaml insert into",
            schema_path.display()
        );
    };
    ensure!(
        statement
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .any(|w| w == "line"),
        "{table} in schema.sql has no `line` column, which the agents' rows carry: {statement}"
    );
    Ok(())
}

#[test]
fn the_agents_and_collector_agree() -> Result<()> {
    // Both agents tail the daemon's file sink, and insert into the same table.
    let fluent_bit = example("fluent-bit.yaml")?;
    let vector = example("vector.yaml")?;
    let collector = example("collector.yaml")?;
    ensure!(fluent_bit["pipeline"]["inputs"][0]["path"] == FILE_SINK);
    ensure!(vector["sources"]["sealwatch_file"]["include"][0] == FILE_SINK);
    // The collector writes its own table in the same database.
    ensure!(
        collector["exporters"]["clickhouse"]["database"]
            == vector["sinks"]["clickhouse_ingest"]["database"]
    );
    // And the README says what is not run.
    let readme = example_text("README.md")?;
    ensure!(
        readme.contains("collector_examples.rs"),
        "deploy/otel-collector/README.md should name the test that checks these files"
    );
    Ok(())
}

// --- the OTLP receiver harness, for real --------------------------------------------------------

/// Posts a two-record ExportLogsServiceRequest built with the official Python definitions to
/// `url`; prints `STATUS RETRY-AFTER`.
const POST_PY: &str = r#"
import gzip, ssl, sys, urllib.request, urllib.error
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as s
from opentelemetry.proto.common.v1 import common_pb2 as c
url, marker, token, cafile, zipped = sys.argv[1:6]
req = s.ExportLogsServiceRequest()
rl = req.resource_logs.add()
rl.resource.attributes.add(key="host.name", value=c.AnyValue(string_value="vm"))
sl = rl.scope_logs.add()
sl.scope.name = "sealwatch"
for i in range(2):
    r = sl.log_records.add(time_unix_nano=1700000000000000000 + i, severity_number=13)
    r.body.string_value = '{"kind":"exec","marker":"%s","n":%d}' % (marker, i)
    r.attributes.add(key="process.pid", value=c.AnyValue(int_value=4242))
    a = c.AnyValue()
    a.array_value.values.add(string_value="/bin/echo")
    a.array_value.values.add(string_value=marker)
    r.attributes.add(key="process.args", value=a)
body = req.SerializeToString()
headers = {"Content-Type": "application/x-protobuf"}
if zipped == "gzip":
    body = gzip.compress(body)
    headers["Content-Encoding"] = "gzip"
if token:
    headers["Authorization"] = "Bearer " + token
ctx = ssl.create_default_context(cafile=cafile) if cafile else None
try:
    with urllib.request.urlopen(urllib.request.Request(url, body, headers), context=ctx, timeout=10) as r:
        print(r.status, r.headers.get("Retry-After"))
except urllib.error.HTTPError as e:
    print(e.code, e.headers.get("Retry-After"))
"#;

fn post(
    receiver: &OtlpReceiver,
    marker: &str,
    token: &str,
    ca: Option<&std::path::Path>,
) -> Result<(u16, Option<String>)> {
    let ca = ca
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut command = Command::new("python3");
    command.args([
        "-c",
        POST_PY,
        &receiver.logs_url(),
        marker,
        token,
        &ca,
        "gzip",
    ]);
    let out = cmd::run_ok(&mut command, Duration::from_secs(60))?;
    let mut words = out.split_whitespace();
    let status = words
        .next()
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("the python client printed {out:?}"))?;
    let retry_after = words.next().filter(|w| *w != "None").map(str::to_owned);
    Ok((status, retry_after))
}

fn with_marker(records: &[Value], marker: &str) -> usize {
    records
        .iter()
        .filter(|r| {
            otlp::body_json(r)
                .map(|b| b["marker"] == marker)
                .unwrap_or(false)
        })
        .count()
}

#[test]
fn otlp_receiver_harness() -> Result<()> {
    let mut receiver = OtlpReceiver::start(ReceiverOptions {
        token: Some("s3cret".into()),
        tls: None,
    })?;
    ensure!(receiver.endpoint().starts_with("http://127.0.0.1:"));

    // Accepted, gzip'd, decoded with the official definitions.
    assert_eq!(post(&receiver, "one", "s3cret", None)?, (200, None));
    let records =
        receiver.wait_for_records("2 records", Duration::from_secs(10), |r| r.len() >= 2)?;
    let first = &records[0];
    assert_eq!(first["attributes"]["process.pid"], 4242);
    assert_eq!(
        first["attributes"]["process.args"],
        json!(["/bin/echo", "one"])
    );
    assert_eq!(first["resource"]["host.name"], "vm");
    assert_eq!(first["scope"]["name"], "sealwatch");
    assert_eq!(first["severity_number"], 13);
    assert_eq!(first["time_unix_nano"], 1_700_000_000_000_000_000_u64);
    let requests = receiver.requests()?;
    assert_eq!(requests[0]["status"], 200);
    assert_eq!(requests[0]["gzip"], true);
    assert_eq!(requests[0]["records"], 2);

    // Wrong token: 401, nothing recorded.
    assert_eq!(post(&receiver, "bad-token", "nope", None)?.0, 401);

    // Told to refuse: two 503s, then 200 again; 429 carries Retry-After: 1.
    receiver.set_status(503, 2)?;
    assert_eq!(post(&receiver, "refused", "s3cret", None)?.0, 503);
    assert_eq!(post(&receiver, "refused", "s3cret", None)?.0, 503);
    assert_eq!(post(&receiver, "two", "s3cret", None)?.0, 200);
    receiver.set_status(429, 1)?;
    assert_eq!(
        post(&receiver, "refused", "s3cret", None)?,
        (429, Some("1".into()))
    );

    // A partial success: 200, records kept, the answer says one was rejected.
    let state = receiver.control(&json!({"status": 200, "rejected": 1, "count": 1}))?;
    assert_eq!(state["rejected"], 1);
    assert_eq!(post(&receiver, "partial", "s3cret", None)?.0, 200);
    ensure!(receiver.control(&json!({"bogus": 1})).is_err());

    // Down, then up again on the same port, appending to the same files.
    let port = receiver.port();
    receiver.stop()?;
    ensure!(!receiver.is_up());
    let down = post(&receiver, "down", "s3cret", None);
    ensure!(down.is_err(), "a stopped receiver answered: {down:?}");
    receiver.restart()?;
    assert_eq!(receiver.port(), port);
    assert_eq!(post(&receiver, "three", "s3cret", None)?.0, 200);
    let records = receiver.records()?;
    assert_eq!(with_marker(&records, "one"), 2);
    assert_eq!(with_marker(&records, "two"), 2);
    assert_eq!(with_marker(&records, "three"), 2);
    assert_eq!(with_marker(&records, "refused"), 0);
    assert_eq!(with_marker(&records, "bad-token"), 0);
    let statuses: Vec<u64> = receiver
        .requests()?
        .iter()
        .filter_map(|r| r["status"].as_u64())
        .collect();
    assert_eq!(statuses, [200, 401, 503, 503, 200, 429, 200, 200]);
    let rejected: Vec<u64> = receiver
        .requests()?
        .iter()
        .filter_map(|r| r["rejected"].as_u64())
        .collect();
    assert_eq!(rejected, [0, 0, 0, 0, 0, 0, 1, 0]);
    assert_eq!(with_marker(&records, "partial"), 2);
    drop(receiver);

    // TLS with a throwaway CA: trusted with the CA, refused without it.
    let certs = otlp::test_certs()?;
    let receiver = OtlpReceiver::start(ReceiverOptions {
        token: None,
        tls: Some(certs.server_pair()),
    })?;
    ensure!(receiver.endpoint().starts_with("https://127.0.0.1:"));
    assert_eq!(post(&receiver, "tls", "", Some(&certs.ca))?.0, 200);
    let untrusted = post(&receiver, "untrusted", "", None);
    ensure!(
        untrusted.is_err(),
        "a client without the test CA got an answer: {untrusted:?}"
    );
    let records = receiver.records()?;
    assert_eq!(with_marker(&records, "tls"), 2);
    assert_eq!(with_marker(&records, "untrusted"), 0);
    Ok(())
}

fn percent_encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(text: &str) -> Result<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = text.get(i + 1..i + 3).context("truncated %-escape")?;
                out.push(u8::from_str_radix(hex, 16).context("bad %-escape")?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Ok(String::from_utf8(out)?)
}
