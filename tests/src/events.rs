//! Small helpers to pick and check events from the JSON stream.

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// `event.kind == "exec"`.
pub fn is_exec(event: &Value) -> bool {
    event["kind"] == "exec"
}

/// `process.args` as strings (escaped ones in their escaped form); empty when absent.
pub fn args(event: &Value) -> Vec<&str> {
    event["process"]["args"]
        .as_array()
        .map(|list| list.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// An exec event whose argv is exactly `expected`.
pub fn is_exec_of(event: &Value, expected: &[&str]) -> bool {
    is_exec(event) && args(event) == expected
}

/// An exec event with `marker` among its args.
pub fn is_exec_with_arg(event: &Value, marker: &str) -> bool {
    is_exec(event) && args(event).contains(&marker)
}

/// `container.id`, when the event is attributed to a container.
pub fn container_id(event: &Value) -> Option<&str> {
    event["container"]["id"].as_str()
}

/// `violation.rule`, when the event is a violation.
pub fn violation_rule(event: &Value) -> Option<&str> {
    event["violation"]["rule"].as_str()
}

/// Checks several fields at once (`(JSON pointer, expected value)`) and reports every mismatch
/// together with the whole event. A missing field counts as a mismatch (compare with `null` to
/// require that it is present and null).
pub fn check_fields(event: &Value, expected: &[(&str, Value)]) -> Result<()> {
    let mismatches: Vec<String> = expected
        .iter()
        .filter_map(|(pointer, want)| match event.pointer(pointer) {
            Some(got) if got == want => None,
            Some(got) => Some(format!("  {pointer}: got {got}, expected {want}")),
            None => Some(format!("  {pointer}: missing, expected {want}")),
        })
        .collect();
    if !mismatches.is_empty() {
        bail!(
            "event fields differ:\n{}\n  event: {event}",
            mismatches.join("\n")
        );
    }
    Ok(())
}

/// The node name the daemon should report (`/proc/sys/kernel/hostname`).
pub fn hostname() -> Result<String> {
    let name =
        std::fs::read_to_string("/proc/sys/kernel/hostname").context("reading the hostname")?;
    Ok(name.trim().to_owned())
}

/// Waits for a line of container `c` that satisfies `matches`. On failure the error lists the
/// lines of `c` that `shown` selects and every loss line so far (the daemon's own failure report
/// shows only its last lines).
pub fn wait_in_container(
    daemon: &mut crate::daemon::Daemon,
    c: &crate::runtime::Container,
    description: &str,
    shown: impl Fn(&Value) -> bool,
    mut matches: impl FnMut(&Value) -> bool,
) -> Result<Value> {
    let result = daemon.wait_for(description, crate::daemon::EVENT_TIMEOUT, |ev| {
        container_id(ev) == Some(c.id.as_str()) && matches(ev)
    });
    result.map_err(|e| {
        let lines: Vec<String> = daemon
            .events()
            .iter()
            .filter(|ev| {
                (container_id(ev) == Some(c.id.as_str()) && shown(ev)) || ev["kind"] == "loss"
            })
            .map(Value::to_string)
            .collect();
        e.context(format!(
            "{description}: lines of container {} and loss lines so far:\n{}",
            c.name,
            lines.join("\n")
        ))
    })
}

/// How long a loop of a few thousand `/bin/true` may take on a slow, busy machine.
pub const TAGGED_LOOP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// Runs `/bin/true <tag>-<i>` for `i` in `0..n` on the host, one after the other: lines a test
/// can tell from everything else the machine does.
pub fn run_tagged_execs(tag: &str, n: u64) -> Result<()> {
    let script = format!("i=0; while [ $i -lt {n} ]; do /bin/true {tag}-$i; i=$((i+1)); done");
    crate::cmd::run_ok(
        &mut crate::cmd::command("sh", &["-c", &script]),
        TAGGED_LOOP_TIMEOUT,
    )?;
    Ok(())
}

/// `i` when `event` is the exec of `/bin/true <tag>-<i>` ([`run_tagged_execs`]).
pub fn tagged_index(event: &Value, tag: &str) -> Option<u64> {
    if !is_exec(event) {
        return None;
    }
    match args(event).as_slice() {
        ["/bin/true", arg] => arg.strip_prefix(tag)?.strip_prefix('-')?.parse().ok(),
        _ => None,
    }
}
