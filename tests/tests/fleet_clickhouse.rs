//! A fleet you can query, on a real engine: `deploy/clickhouse/` against a real ClickHouse
//! server (Debian's 18.16, the oldest the files promise to run on).
//!
//! Two daemons run one after the other as `--node node-a` and `--node node-b`, each writing its
//! lines to a rotated `--file` as well as stdout. In each, a podman container of the test image
//! runs an entrypoint as root, is entered once for a three-command session, has an image file
//! modified and runs a dropped binary (the same path on both nodes, node-a first); on node-b a
//! binary with a hostile name (`"rule":"x"`, braces, a newline, a trailing backslash) is dropped
//! and run, and a containerd container with Kubernetes pod annotations is entered. Each node's
//! file output (rotated files oldest first, then the live file) must equal its stdout line for
//! line; it is loaded into `sealwatch.ingest` as a shipper would, one `{"line": ...}` row per
//! line, after `schema.sql` was loaded with `clickhouse-client --multiquery`.
//!
//! Then: every row's typed columns equal the fields of its own JSON line (time in seconds and
//! nanoseconds, UTC whatever the server's zone, pid, exe, args, container, pod, ...); the day
//! partitions are the lines' UTC days; EVERY query of `queries.sql` is run and its answer
//! compared with the same question answered from the daemons' own lines, and with what the test
//! did (the rules each node triggered, the session's commands in order, the image on both nodes,
//! node-a as first sighting of the dropped binary, the pod of the containerd login); the hostile
//! name changes no typed column; and `retention.sql` drops a back-dated day and nothing else.

#![expect(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};

use sealwatch_tests::clickhouse::{
    ingest_body, named_queries, string_literal, substitute, ClickHouse, NamedQuery,
};
use sealwatch_tests::daemon::Daemon;
use sealwatch_tests::events::{is_exec_of, violation_rule, wait_in_container};
use sealwatch_tests::image::PODMAN_IMAGE;
use sealwatch_tests::runtime::{Container, PodIdentity, RunOptions, Runtime};
use sealwatch_tests::{repo_root, require_root, unique_name};

const NODE_A: &str = "node-a";
const NODE_B: &str = "node-b";
const LOGIN_RULES: [&str; 3] = [
    "container-exec",
    "interactive-session-in-container",
    "node-interactive-login",
];
/// The rules every node's podman container breaks in [`play_node`].
const PLAYED_RULES: [&str; 5] = [
    "root-in-container",
    "container-exec",
    "image-file-modified",
    "new-executable",
    "drift-exec",
];

/// What one node's daemon printed and what the test did there.
struct NodeRun {
    node: &'static str,
    /// The lines as loaded into ClickHouse (the --file output).
    lines: Vec<String>,
    /// The podman container.
    container: String,
    /// The session opened by one `podman exec ... sh -c`, and the argv of each program it ran.
    session_id: String,
    session_argv: Vec<Vec<String>>,
    /// The containerd container with pod annotations (node-b only).
    pod: Option<(String, PodIdentity)>,
}

/// `sh -c <script>` inside `c`; returns its stdout.
fn sh(c: &Container, script: &str) -> Result<String> {
    c.exec(&["sh", "-c", script])
}

/// Waits for a line of `c` that satisfies `matches`.
fn wait_in(
    daemon: &mut Daemon,
    c: &Container,
    what: &str,
    matches: impl FnMut(&Value) -> bool,
) -> Result<Value> {
    wait_in_container(daemon, c, what, |_| true, matches)
}

fn wait_rule(
    daemon: &mut Daemon,
    c: &Container,
    rule: &str,
    what: &str,
    mut matches: impl FnMut(&Value) -> bool,
) -> Result<Value> {
    wait_in(daemon, c, &format!("{rule} for {what}"), |ev| {
        violation_rule(ev) == Some(rule) && matches(ev)
    })
}

/// Runs one node: a daemon with `--node node` and a rotated `--file` under `dir`, the activity
/// described at the top, then stop; returns the file output (checked equal to stdout).
fn play_node(
    node: &'static str,
    dir: &Path,
    dropped: &str,
    hostile: Option<&str>,
    pod: Option<PodIdentity>,
) -> Result<NodeRun> {
    let file = dir.join(format!("{node}.jsonl"));
    let file_arg = file.to_str().context("temp path is not UTF-8")?;
    // 4 KiB files (the smallest allowed): a node's lines rotate several times.
    let mut daemon = Daemon::start(&[
        "--metrics-addr",
        "none",
        "--tail-socket",
        "none",
        "--node",
        node,
        "--file",
        file_arg,
        "--file-max-size",
        "4KiB",
        "--file-keep",
        "10000",
    ])?;
    let c = Runtime::Podman.run_detached(&unique_name("sw-fleet"), &["sleep", "300"])?;
    wait_rule(
        &mut daemon,
        &c,
        "root-in-container",
        "the entrypoint",
        |ev| is_exec_of(ev, &["sleep", "300"]),
    )?;

    // One session: the shell execs each program; the last one replaces the shell.
    let m = unique_name("sw-fleet-session");
    let script = format!("/bin/echo {m}-1; /bin/true {m}-2; /bin/echo {m}-3");
    ensure!(
        sh(&c, &script)? == format!("{m}-1\n{m}-3"),
        "the session's commands did not run"
    );
    let opened = wait_rule(&mut daemon, &c, "container-exec", "the session", |ev| {
        is_exec_of(ev, &["sh", "-c", &script])
    })?;
    let session_id = opened["session"]["id"]
        .as_str()
        .with_context(|| format!("no session id on {opened}"))?
        .to_owned();
    wait_in(&mut daemon, &c, "the session's end", |ev| {
        ev["kind"] == "session"
            && ev["session"]["state"] == "end"
            && ev["session"]["id"] == session_id.as_str()
    })?;
    let session_argv = vec![
        vec!["sh".to_owned(), "-c".to_owned(), script.clone()],
        vec!["/bin/echo".to_owned(), format!("{m}-1")],
        vec!["/bin/true".to_owned(), format!("{m}-2")],
        vec!["/bin/echo".to_owned(), format!("{m}-3")],
    ];

    sh(&c, &format!("echo {m} >> /etc/passwd"))?;
    wait_rule(
        &mut daemon,
        &c,
        "image-file-modified",
        "/etc/passwd",
        |ev| ev["file"]["path"] == "/etc/passwd",
    )?;

    for binary in std::iter::once(dropped).chain(hostile) {
        c.exec(&["cp", "/bin/busybox", binary])?;
        // busybox runs the applet argv[1] names when argv[0]'s base name starts with "busybox".
        ensure!(
            c.exec(&[binary, "echo", &m])? == m,
            "{binary:?} did not run"
        );
        wait_rule(&mut daemon, &c, "new-executable", binary, |ev| {
            ev["file"]["path"] == binary
        })?;
        wait_rule(&mut daemon, &c, "drift-exec", binary, |ev| {
            ev["process"]["exe"] == binary
        })?;
    }

    let pod = match pod {
        Some(pod) => {
            let rt = Runtime::ContainerdCri;
            let options = RunOptions {
                pod: Some(pod.clone()),
                ..RunOptions::default()
            };
            let k =
                rt.run_detached_with(&unique_name("sw-fleet-pod"), &options, &["sleep", "300"])?;
            let marker = unique_name("sw-fleet-pod-exec");
            ensure!(
                k.exec(&["/bin/echo", &marker])? == marker,
                "exec in the pod"
            );
            wait_rule(&mut daemon, &k, "container-exec", "the pod exec", |ev| {
                is_exec_of(ev, &["/bin/echo", &marker]) && ev["container"]["pod"].is_object()
            })?;
            Some((k.id.clone(), pod))
        }
        None => None,
    };

    let stopped = daemon.stop()?;
    let lines = file_output(&file)?;
    ensure!(
        lines == stopped.lines,
        "{node}: --file holds {} lines, stdout {}; they must be the same lines in the same order",
        lines.len(),
        stopped.lines.len()
    );
    eprintln!("{node}: {} lines", lines.len());
    Ok(NodeRun {
        node,
        lines,
        container: c.id.clone(),
        session_id,
        session_argv,
        pod,
    })
}

/// The lines of a `--file` output in the order written: `PATH.N` (oldest) .. `PATH.1`, then
/// `PATH`. Requires at least one rotation (the test sets a small size) and whole lines.
fn file_output(path: &Path) -> Result<Vec<String>> {
    let mut files: Vec<PathBuf> = Vec::new();
    for n in 1.. {
        let rotated = PathBuf::from(format!("{}.{n}", path.display()));
        if !rotated.exists() {
            break;
        }
        files.push(rotated);
    }
    ensure!(
        !files.is_empty(),
        "{} was never rotated: the test wants rotated files loaded too",
        path.display()
    );
    files.reverse();
    files.push(path.to_path_buf());
    let mut lines = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("reading {} (must be UTF-8)", file.display()))?;
        ensure!(
            text.is_empty() || text.ends_with('\n'),
            "{} ends in the middle of a line",
            file.display()
        );
        lines.extend(text.lines().map(str::to_owned));
    }
    Ok(lines)
}

// ---- time arithmetic (days since 1970-01-01, proleptic Gregorian) -----------------------------
// Computed here, not asked of ClickHouse, so that a time zone slip in the schema cannot hide.

/// Days since 1970-01-01 of a date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

/// The date `z` days after 1970-01-01 (the inverse).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// An event's `time` (`2026-12-07T14:50:01.123456789Z`) as the columns hold it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Time {
    epoch: i64,
    ns: u32,
    /// `2026-12-07 14:50:01`: how ClickHouse prints a DateTime('UTC').
    text: String,
    /// `20261207`: the day partition's id.
    day: String,
}

fn parse_time(t: &str) -> Result<Time> {
    let num = |range: std::ops::Range<usize>| -> Result<i64> {
        t.get(range.clone())
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("time {t:?}: no number at {range:?}"))
    };
    ensure!(
        t.len() == 30 && &t[10..11] == "T" && t.ends_with('Z'),
        "time {t:?}"
    );
    let days = days_from_civil(num(0..4)?, num(5..7)?, num(8..10)?);
    let epoch = days * 86_400 + num(11..13)? * 3600 + num(14..16)? * 60 + num(17..19)?;
    Ok(Time {
        epoch,
        ns: u32::try_from(num(20..29)?)?,
        text: format!("{} {}", &t[..10], &t[11..19]),
        day: format!("{}{}{}", &t[..4], &t[5..7], &t[8..10]),
    })
}

// ---- what a row should hold ------------------------------------------------------------------

/// A string field of a JSON line, "" when absent or null (as the columns hold it).
fn text<'a>(ev: &'a Value, pointer: &str) -> &'a str {
    ev.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// A number in a ClickHouse JSON answer: 18.16 quotes 64-bit integers, newer releases may not.
fn number(v: &Value) -> Option<i64> {
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

/// The typed columns a line must give, as `name -> JSON value` in the form compared.
fn expected_columns(line: &str) -> Result<BTreeMap<&'static str, Value>> {
    let ev: Value = serde_json::from_str(line).with_context(|| format!("line {line}"))?;
    let time = parse_time(text(&ev, "/time"))?;
    let args = ev
        .pointer("/process/args")
        .map_or(json!(""), |args| json!(args.to_string()));
    Ok(BTreeMap::from([
        ("epoch", json!(time.epoch)),
        ("time_text", json!(time.text)),
        ("time_ns", json!(time.ns)),
        ("node", json!(text(&ev, "/node"))),
        ("kind", json!(text(&ev, "/kind"))),
        ("rule", json!(text(&ev, "/violation/rule"))),
        ("severity", json!(text(&ev, "/violation/severity"))),
        (
            "repeats",
            json!(ev
                .pointer("/violation/repeats")
                .and_then(Value::as_i64)
                .unwrap_or(0)),
        ),
        ("container_id", json!(text(&ev, "/container/id"))),
        ("container_name", json!(text(&ev, "/container/name"))),
        ("image", json!(text(&ev, "/container/image"))),
        (
            "pod_namespace",
            json!(text(&ev, "/container/pod/namespace")),
        ),
        ("pod_name", json!(text(&ev, "/container/pod/name"))),
        (
            "pid",
            json!(ev
                .pointer("/process/pid")
                .and_then(Value::as_i64)
                .unwrap_or(0)),
        ),
        ("exe", json!(text(&ev, "/process/exe"))),
        ("args", args),
        ("session_id", json!(text(&ev, "/session/id"))),
        ("file_path", json!(text(&ev, "/file/path"))),
        ("file_op", json!(text(&ev, "/file/op"))),
    ]))
}

/// A row's column in the compared form: numbers as numbers, `args` re-serialised from its
/// JSON text (so that `\/` and other spellings of the same array compare equal).
fn row_column(row: &Value, name: &str) -> Result<Value> {
    let v = &row[name];
    Ok(match name {
        "epoch" | "time_ns" | "repeats" | "pid" => {
            json!(number(v).with_context(|| format!("{name} in {row}"))?)
        }
        "args" => {
            let raw = v.as_str().unwrap_or_default();
            if raw.is_empty() {
                json!("")
            } else {
                let parsed: Value = serde_json::from_str(raw)
                    .with_context(|| format!("args {raw:?} is not JSON"))?;
                json!(parsed.to_string())
            }
        }
        _ => v.clone(),
    })
}

/// Every row against its own line, and the rows' lines against the loaded lines.
fn check_rows(ch: &ClickHouse, loaded: &[String]) -> Result<Vec<Value>> {
    let rows = ch.rows(
        "SELECT toUnixTimestamp(time) AS epoch, toString(time) AS time_text, time_ns, node, kind, \
         rule, severity, repeats, container_id, container_name, image, pod_namespace, pod_name, \
         pid, exe, args, session_id, file_path, file_op, line FROM sealwatch.events",
    )?;
    let mut got: Vec<&str> = rows
        .iter()
        .map(|r| r["line"].as_str().unwrap_or(""))
        .collect();
    let mut want: Vec<&str> = loaded.iter().map(String::as_str).collect();
    got.sort_unstable();
    want.sort_unstable();
    ensure!(
        got == want,
        "the `line` column does not hold exactly the {} loaded lines ({} rows)",
        want.len(),
        got.len()
    );
    let mut mismatches = Vec::new();
    for row in &rows {
        let line = row["line"].as_str().unwrap_or_default();
        for (name, want) in expected_columns(line)? {
            let got = row_column(row, name)?;
            if got != want {
                mismatches.push(format!(
                    "{name}: got {got}, expected {want}\n  line: {line}"
                ));
            }
        }
    }
    ensure!(
        mismatches.is_empty(),
        "{} typed columns differ from their lines, first ones:\n{}",
        mismatches.len(),
        mismatches[..mismatches.len().min(10)].join("\n")
    );
    Ok(rows)
}

// ---- the queries ---------------------------------------------------------------------------

fn load_queries(file: &str) -> Result<BTreeMap<String, NamedQuery>> {
    let path = repo_root().join("deploy/clickhouse").join(file);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(named_queries(&text)?
        .into_iter()
        .map(|q| (q.name.clone(), q))
        .collect())
}

fn run(
    ch: &ClickHouse,
    queries: &BTreeMap<String, NamedQuery>,
    name: &str,
    values: &[(&str, String)],
) -> Result<Vec<Value>> {
    let query = queries
        .get(name)
        .with_context(|| format!("no query {name}"))?;
    let sql = substitute(&query.sql, values)?;
    ch.rows(&sql)
        .with_context(|| format!("query {name} ({})", query.description))
}

/// The events, parsed, with their times.
struct Ev {
    v: Value,
    t: Time,
}

fn parse_all(lines: &[String]) -> Result<Vec<Ev>> {
    lines
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_str(l)?;
            let t = parse_time(text(&v, "/time"))?;
            Ok(Ev { v, t })
        })
        .collect()
}

fn s(row: &Value, name: &str) -> String {
    row[name].as_str().unwrap_or_default().to_owned()
}

fn n(row: &Value, name: &str) -> i64 {
    number(&row[name]).unwrap_or(-1)
}

/// A DateTime column printed by ClickHouse and its nanoseconds column, as a [`Time`].
fn row_time(row: &Value, seconds: &str, ns: &str) -> Result<Time> {
    let text = s(row, seconds);
    ensure!(text.len() == 19, "{seconds} {text:?} in {row}");
    parse_time(&format!(
        "{}T{}.{:09}Z",
        &text[..10],
        &text[11..],
        n(row, ns)
    ))
}

/// args column text -> the argv.
fn argv_of(raw: &str) -> Result<Vec<String>> {
    serde_json::from_str(raw).with_context(|| format!("args {raw:?}"))
}

fn check_violations_last_hour(rows: &[Value], evs: &[Ev], runs: &[NodeRun]) -> Result<()> {
    let mut want: BTreeMap<(String, String, String), (i64, i64)> = BTreeMap::new();
    for e in evs.iter().filter(|e| e.v.get("violation").is_some()) {
        let key = (
            text(&e.v, "/node").to_owned(),
            text(&e.v, "/violation/rule").to_owned(),
            text(&e.v, "/violation/severity").to_owned(),
        );
        let repeats = e.v.pointer("/violation/repeats").and_then(Value::as_i64);
        let entry = want.entry(key).or_default();
        entry.0 += 1;
        entry.1 += 1 + repeats.unwrap_or(0);
    }
    let got: BTreeMap<(String, String, String), (i64, i64)> = rows
        .iter()
        .map(|r| {
            (
                (s(r, "node"), s(r, "rule"), s(r, "severity")),
                (n(r, "lines"), n(r, "occurrences")),
            )
        })
        .collect();
    ensure!(
        got.len() == rows.len() && got == want,
        "violations_last_hour:\n  got  {got:?}\n  from the lines {want:?}"
    );
    for run in runs {
        for rule in PLAYED_RULES {
            ensure!(
                got.keys().any(|(node, r, _)| node == run.node && r == rule),
                "violations_last_hour has no {rule} on {}",
                run.node
            );
        }
    }
    let occurrences = rows.iter().map(|r| n(r, "occurrences"));
    ensure!(
        occurrences
            .clone()
            .zip(occurrences.skip(1))
            .all(|(a, b)| a >= b),
        "violations_last_hour is not ordered by occurrences"
    );
    Ok(())
}

fn check_session_commands(rows: &[Value], evs: &[Ev], run: &NodeRun) -> Result<()> {
    type Exec = (i64, u32, i64, String, String, Vec<String>);
    let mut want: Vec<Exec> = Vec::new();
    for e in evs {
        if e.v["kind"] == "exec" && text(&e.v, "/session/id") == run.session_id {
            ensure!(
                e.v["node"] == run.node,
                "session {} on two nodes",
                run.session_id
            );
            let argv = serde_json::from_value(e.v["process"]["args"].clone())?;
            let exec = (
                e.t.epoch,
                e.t.ns,
                e.v["process"]["pid"].as_i64().unwrap_or(0),
                text(&e.v, "/process/exe").to_owned(),
                text(&e.v, "/node").to_owned(),
                argv,
            );
            if !want.contains(&exec) {
                want.push(exec);
            }
        }
    }
    want.sort_by_key(|a| (a.0, a.1, a.2));
    let got: Vec<Exec> = rows
        .iter()
        .map(|r| {
            Ok((
                row_time(r, "time", "time_ns")?.epoch,
                u32::try_from(n(r, "time_ns"))?,
                n(r, "pid"),
                s(r, "exe"),
                s(r, "node"),
                argv_of(&s(r, "args"))?,
            ))
        })
        .collect::<Result<_>>()?;
    ensure!(
        got == want,
        "session_commands of {}:\n  got  {got:?}\n  from the lines {want:?}",
        run.session_id
    );
    let argv: Vec<Vec<String>> = got.iter().map(|g| g.5.clone()).collect();
    ensure!(
        argv == run.session_argv,
        "session_commands of {} on {}: {argv:?}, the test ran {:?}",
        run.session_id,
        run.node,
        run.session_argv
    );
    Ok(())
}

fn check_image_activity(rows: &[Value], evs: &[Ev], runs: &[NodeRun], dropped: &str) -> Result<()> {
    type Key = (String, String, String, String, String);
    let mut want: BTreeMap<Key, (i64, BTreeSet<String>, String, String)> = BTreeMap::new();
    for e in evs
        .iter()
        .filter(|e| text(&e.v, "/container/image") == PODMAN_IMAGE)
    {
        let key = (
            text(&e.v, "/node").to_owned(),
            text(&e.v, "/kind").to_owned(),
            text(&e.v, "/violation/rule").to_owned(),
            text(&e.v, "/process/exe").to_owned(),
            text(&e.v, "/file/path").to_owned(),
        );
        let entry = want
            .entry(key)
            .or_insert_with(|| (0, BTreeSet::new(), e.t.text.clone(), e.t.text.clone()));
        entry.0 += 1;
        entry.1.insert(text(&e.v, "/container/id").to_owned());
        entry.2 = entry.2.clone().min(e.t.text.clone());
        entry.3 = entry.3.clone().max(e.t.text.clone());
    }
    let want: BTreeMap<Key, (i64, i64, String, String)> = want
        .into_iter()
        .map(|(k, (lines, containers, first, last))| {
            (
                k,
                (lines, i64::try_from(containers.len()).unwrap(), first, last),
            )
        })
        .collect();
    let got: BTreeMap<Key, (i64, i64, String, String)> = rows
        .iter()
        .map(|r| {
            (
                (
                    s(r, "node"),
                    s(r, "kind"),
                    s(r, "rule"),
                    s(r, "exe"),
                    s(r, "file_path"),
                ),
                (
                    n(r, "lines"),
                    n(r, "containers"),
                    s(r, "first"),
                    s(r, "last"),
                ),
            )
        })
        .collect();
    ensure!(
        got.len() == rows.len() && got == want,
        "image_activity of {PODMAN_IMAGE}:\n  got  {got:#?}\n  from the lines {want:#?}"
    );
    for run in runs {
        ensure!(
            got.keys().any(|(node, kind, rule, exe, _)| node == run.node
                && kind == "exec"
                && rule == "drift-exec"
                && exe == dropped),
            "image_activity has no drift-exec of {dropped} on {}",
            run.node
        );
    }
    Ok(())
}

/// Per executable, from the lines: the first exec (time, node, container, image), the nodes and
/// the execs (an exec breaking two rules is two lines, one exec).
struct Sighting {
    first: Time,
    node: String,
    container: String,
    image: String,
    nodes: BTreeSet<String>,
    execs: BTreeSet<(String, i64, i64, u32)>,
}

fn sightings(evs: &[Ev]) -> BTreeMap<String, Sighting> {
    let mut out: BTreeMap<String, Sighting> = BTreeMap::new();
    for e in evs.iter().filter(|e| e.v["kind"] == "exec") {
        let exe = text(&e.v, "/process/exe").to_owned();
        let node = text(&e.v, "/node").to_owned();
        let entry = out.entry(exe).or_insert_with(|| Sighting {
            first: e.t.clone(),
            node: node.clone(),
            container: text(&e.v, "/container/id").to_owned(),
            image: text(&e.v, "/container/image").to_owned(),
            nodes: BTreeSet::new(),
            execs: BTreeSet::new(),
        });
        if (e.t.epoch, e.t.ns) < (entry.first.epoch, entry.first.ns) {
            entry.first = e.t.clone();
            entry.node = node.clone();
            entry.container = text(&e.v, "/container/id").to_owned();
            entry.image = text(&e.v, "/container/image").to_owned();
        }
        let pid = e.v["process"]["pid"].as_i64().unwrap_or(0);
        entry.execs.insert((node.clone(), pid, e.t.epoch, e.t.ns));
        entry.nodes.insert(node);
    }
    out
}

fn check_first_sighting(rows: &[Value], evs: &[Ev], a: &NodeRun, dropped: &str) -> Result<()> {
    let all = sightings(evs);
    let want = all.get(dropped).context("no exec of the dropped binary")?;
    ensure!(rows.len() == 1, "first_sighting of {dropped}: {rows:?}");
    let r = &rows[0];
    let got = (
        s(r, "first_time"),
        n(r, "first_time_ns"),
        s(r, "first_node"),
        s(r, "first_container_id"),
        s(r, "first_image"),
        n(r, "nodes"),
        n(r, "execs"),
    );
    let expected = (
        want.first.text.clone(),
        i64::from(want.first.ns),
        want.node.clone(),
        want.container.clone(),
        want.image.clone(),
        i64::try_from(want.nodes.len())?,
        i64::try_from(want.execs.len())?,
    );
    ensure!(
        got == expected,
        "first_sighting of {dropped}: got {got:?}, from the lines {expected:?}"
    );
    ensure!(
        got.2 == a.node
            && got.3 == a.container
            && got.4 == PODMAN_IMAGE
            && got.5 == 2
            && got.6 == 2,
        "first_sighting of {dropped}: {got:?}; the test ran it first on {} in {}, then on the \
         other node",
        a.node,
        a.container
    );
    Ok(())
}

fn check_new_executables(rows: &[Value], evs: &[Ev], now: i64, dropped: &str) -> Result<()> {
    type Row = (String, i64, String, String, i64, i64);
    let want: BTreeMap<String, Row> = sightings(evs)
        .into_iter()
        .filter(|(_, sg)| sg.first.epoch >= now - 86_400)
        .map(|(exe, sg)| {
            let row = (
                sg.first.text.clone(),
                i64::from(sg.first.ns),
                sg.node.clone(),
                sg.image.clone(),
                i64::try_from(sg.nodes.len()).unwrap(),
                i64::try_from(sg.execs.len()).unwrap(),
            );
            (exe, row)
        })
        .collect();
    let got: BTreeMap<String, Row> = rows
        .iter()
        .map(|r| {
            (
                s(r, "exe"),
                (
                    s(r, "first_time"),
                    n(r, "first_time_ns"),
                    s(r, "first_node"),
                    s(r, "first_image"),
                    n(r, "nodes"),
                    n(r, "execs"),
                ),
            )
        })
        .collect();
    if got != want || got.len() != rows.len() {
        let differ: Vec<String> = want
            .keys()
            .chain(got.keys())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .filter(|exe| got.get(*exe) != want.get(*exe))
            .take(10)
            .map(|exe| {
                format!(
                    "  {exe}: got {:?}, from the lines {:?}",
                    got.get(exe),
                    want.get(exe)
                )
            })
            .collect();
        bail!(
            "new_executables: {} rows, {} executables in the lines; differing:\n{}",
            rows.len(),
            want.len(),
            differ.join("\n")
        );
    }
    let order: Vec<(String, i64)> = rows
        .iter()
        .map(|r| (s(r, "first_time"), n(r, "first_time_ns")))
        .collect();
    ensure!(
        order.windows(2).all(|w| w[0] >= w[1]),
        "new_executables is not newest first"
    );
    ensure!(
        got.get(dropped).is_some_and(|row| row.2 == NODE_A),
        "new_executables: {dropped} not first seen on {NODE_A}: {:?}",
        got.get(dropped)
    );
    Ok(())
}

fn check_logins(rows: &[Value], evs: &[Ev], runs: &[NodeRun]) -> Result<()> {
    type Login = (
        Time,
        String,
        String,
        String,
        String,
        String,
        String,
        String,
        String,
        String,
        String,
        Vec<String>,
    );
    let login = |t: Time, get: &dyn Fn(&str) -> String, argv: Vec<String>| -> Login {
        (
            t,
            get("node"),
            get("rule"),
            get("severity"),
            get("container_id"),
            get("container_name"),
            get("image"),
            get("pod_namespace"),
            get("pod_name"),
            get("session_id"),
            get("exe"),
            argv,
        )
    };
    let mut want: Vec<Login> = Vec::new();
    for e in evs {
        if !violation_rule(&e.v).is_some_and(|r| LOGIN_RULES.contains(&r)) {
            continue;
        }
        let get = |name: &str| -> String {
            let pointer = match name {
                "node" => "/node",
                "rule" => "/violation/rule",
                "severity" => "/violation/severity",
                "container_id" => "/container/id",
                "container_name" => "/container/name",
                "image" => "/container/image",
                "pod_namespace" => "/container/pod/namespace",
                "pod_name" => "/container/pod/name",
                "session_id" => "/session/id",
                _ => "/process/exe",
            };
            text(&e.v, pointer).to_owned()
        };
        let argv = serde_json::from_value(e.v["process"]["args"].clone())?;
        want.push(login(e.t.clone(), &get, argv));
    }
    let mut got: Vec<Login> = Vec::new();
    for r in rows {
        let t = row_time(r, "time", "time_ns")?;
        let get = |name: &str| s(r, name);
        got.push(login(t, &get, argv_of(&s(r, "args"))?));
    }
    let times: Vec<(i64, u32)> = got.iter().map(|l| (l.0.epoch, l.0.ns)).collect();
    ensure!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "logins_last_day is not newest first"
    );
    got.sort();
    want.sort();
    ensure!(
        got == want,
        "logins_last_day ({} rows) differs from the login lines ({}):\n  got  {got:?}\n  want {want:?}",
        got.len(),
        want.len()
    );
    for run in runs {
        ensure!(
            got.iter()
                .any(|l| l.1 == run.node && l.9 == run.session_id && l.2 == "container-exec"),
            "logins_last_day lacks the session {} on {}",
            run.session_id,
            run.node
        );
        if let Some((id, pod)) = &run.pod {
            ensure!(
                got.iter().any(|l| l.1 == run.node
                    && &l.4 == id
                    && l.7 == pod.namespace
                    && l.8 == pod.name),
                "logins_last_day lacks the exec into pod {}/{} on {}",
                pod.namespace,
                pod.name,
                run.node
            );
        }
    }
    Ok(())
}

/// The hostile file name lands whole in `file_path` / `exe` and forges nothing.
fn check_hostile(rows: &[Value], hostile: &str, b: &NodeRun) -> Result<()> {
    let named: Vec<&Value> = rows
        .iter()
        .filter(|r| r["file_path"] == hostile || r["exe"] == hostile)
        .collect();
    let summary: BTreeSet<(String, String, String, String, String)> = named
        .iter()
        .map(|r| {
            (
                s(r, "kind"),
                s(r, "rule"),
                s(r, "severity"),
                s(r, "node"),
                s(r, "container_id"),
            )
        })
        .collect();
    let want = BTreeSet::from([
        (
            "file".to_owned(),
            "new-executable".to_owned(),
            "high".to_owned(),
            b.node.to_owned(),
            b.container.clone(),
        ),
        (
            "exec".to_owned(),
            "drift-exec".to_owned(),
            "critical".to_owned(),
            b.node.to_owned(),
            b.container.clone(),
        ),
    ]);
    // Its run through `podman exec` also opened a session: a container-exec line and the
    // session's start and end lines name it too.
    ensure!(
        want.is_subset(&summary)
            && summary.iter().all(|k| {
                ["new-executable", "drift-exec", "container-exec", ""].contains(&k.1.as_str())
                    && k.3 == b.node
                    && k.4 == b.container
            }),
        "rows naming the hostile file: {summary:?}, expected {want:?} and session lines"
    );
    let forged: Vec<&Value> = rows
        .iter()
        .filter(|r| {
            r["rule"] == "x"
                || r["severity"] == "low"
                || r["container_id"] == "forged"
                || s(r, "node").contains('"')
        })
        .collect();
    ensure!(forged.is_empty(), "forged columns: {forged:?}");
    Ok(())
}

/// `retention.sql`: a line back-dated 40 days lands in its own day partition; with 30 days,
/// expired_partitions lists exactly that day, drop_partition removes exactly its row; `ttl`
/// runs on 19.6 and later and is refused by older servers.
fn check_retention(ch: &ClickHouse, sample: &str, loaded: usize, now: i64) -> Result<()> {
    let queries = load_queries("retention.sql")?;
    let ev: Value = serde_json::from_str(sample)?;
    let old = text(&ev, "/time").to_owned();
    let (y, m, d) = civil_from_days(now.div_euclid(86_400) - 40);
    let back = format!("{y:04}-{m:02}-{d:02}{}", &old[10..]);
    let day = format!("{y:04}{m:02}{d:02}");
    let line = sample.replacen(
        &format!("\"time\":\"{old}\""),
        &format!("\"time\":\"{back}\""),
        1,
    );
    ensure!(line != sample, "the time of {sample} was not replaced");
    ch.query_bytes(&ingest_body(&[line])?)?;
    let count = |ch: &ClickHouse| -> Result<i64> {
        Ok(ch
            .query("SELECT count() FROM sealwatch.events")?
            .trim()
            .parse()?)
    };
    ensure!(
        count(ch)? == i64::try_from(loaded)? + 1,
        "the back-dated line was not stored"
    );
    let days = [("days", "30".to_owned())];
    let expired = run(ch, &queries, "expired_partitions", &days)?;
    let ids: Vec<String> = expired.iter().map(|r| s(r, "partition_id")).collect();
    ensure!(
        ids == [day.clone()],
        "expired_partitions: {ids:?}, expected [{day}]"
    );
    for id in &ids {
        run(
            ch,
            &queries,
            "drop_partition",
            &[("partition_id", string_literal(id))],
        )?;
    }
    ensure!(
        count(ch)? == i64::try_from(loaded)?,
        "drop_partition removed more or less than the back-dated row"
    );
    ensure!(
        run(ch, &queries, "expired_partitions", &days)?.is_empty(),
        "expired partitions left after dropping them"
    );
    let version = ch.version()?;
    let ttl = run(ch, &queries, "ttl", &days);
    if version >= (19, 6) {
        ttl.context("ttl on a server that has TTL")?;
    } else {
        let err = ttl.err().context("18.16 accepted the TTL statement")?;
        ensure!(
            format!("{err:#}").contains("Syntax error"),
            "ttl on {version:?}: {err:#}"
        );
    }
    Ok(())
}

#[test]
fn two_nodes_in_clickhouse_answer_the_documented_queries() -> Result<()> {
    require_root()?;
    Runtime::Podman.ensure_ready()?;
    Runtime::ContainerdCri.ensure_ready()?;
    let ch = ClickHouse::start()?;
    eprintln!("ClickHouse {:?}", ch.version()?);
    ch.run_script(&repo_root().join("deploy/clickhouse/schema.sql"))?;
    let queries = load_queries("queries.sql")?;

    let dir = tempfile::tempdir()?;
    let u = unique_name("sw-fleet");
    let dropped = format!("/tmp/busybox-{u}-dropped");
    let hostile =
        format!("/tmp/busybox-{u}\"rule\":\"x\",\"severity\":\"low\",\"id\":\"forged\"}}\n{{[\\");
    let pod = PodIdentity {
        namespace: "shop".to_owned(),
        name: format!("{u}-web"),
        uid: "6f1d2c3b-0000-4000-8000-5ea1c0ffee02".to_owned(),
    };
    let a = play_node(NODE_A, dir.path(), &dropped, None, None)?;
    let b = play_node(NODE_B, dir.path(), &dropped, Some(&hostile), Some(pod))?;
    let runs = [a, b];
    let lines: Vec<String> = runs.iter().flat_map(|r| r.lines.clone()).collect();
    ch.query_bytes(&ingest_body(&lines)?)?;

    let rows = check_rows(&ch, &lines)?;
    let evs = parse_all(&lines)?;
    let days: BTreeSet<String> = evs.iter().map(|e| e.t.day.clone()).collect();
    let partitions: BTreeSet<String> = ch
        .rows("SELECT DISTINCT partition_id FROM system.parts WHERE database = 'sealwatch' AND table = 'events' AND active")?
        .iter()
        .map(|r| s(r, "partition_id"))
        .collect();
    ensure!(
        partitions == days,
        "partitions {partitions:?}, UTC days of the lines {days:?}"
    );
    let now: i64 = ch.query("SELECT toUnixTimestamp(now())")?.trim().parse()?;
    // Every line is minutes old: "the last hour" holds all of them, whatever the boundary.
    ensure!(
        evs.iter()
            .all(|e| e.t.epoch > now - 3000 && e.t.epoch <= now + 5),
        "lines outside the last 50 minutes: the clocks disagree"
    );

    let mut answered = BTreeSet::new();
    let mut ask = |name: &str, values: &[(&str, String)]| -> Result<Vec<Value>> {
        answered.insert(name.to_owned());
        run(&ch, &queries, name, values)
    };
    check_violations_last_hour(&ask("violations_last_hour", &[])?, &evs, &runs)?;
    for run in &runs {
        let rows = ask(
            "session_commands",
            &[("session_id", string_literal(&run.session_id))],
        )?;
        check_session_commands(&rows, &evs, run)?;
    }
    let image = ask("image_activity", &[("image", string_literal(PODMAN_IMAGE))])?;
    check_image_activity(&image, &evs, &runs, &dropped)?;
    let first = ask("first_sighting", &[("exe", string_literal(&dropped))])?;
    check_first_sighting(&first, &evs, &runs[0], &dropped)?;
    // The hostile name as a parameter: the literal quoting holds.
    let hostile_first = ask("first_sighting", &[("exe", string_literal(&hostile))])?;
    ensure!(
        hostile_first.len() == 1 && s(&hostile_first[0], "first_node") == NODE_B,
        "first_sighting of the hostile name: {hostile_first:?}"
    );
    check_new_executables(&ask("new_executables", &[])?, &evs, now, &dropped)?;
    check_logins(&ask("logins_last_day", &[])?, &evs, &runs)?;
    let all: BTreeSet<String> = queries.keys().cloned().collect();
    ensure!(
        answered == all,
        "queries.sql has queries this test does not check: {:?}",
        all.difference(&answered).collect::<Vec<_>>()
    );

    check_hostile(&rows, &hostile, &runs[1])?;
    let sample = runs[0]
        .lines
        .iter()
        .find(|l| l.contains(&runs[0].container))
        .unwrap();
    check_retention(&ch, sample, lines.len(), now)?;
    Ok(())
}
