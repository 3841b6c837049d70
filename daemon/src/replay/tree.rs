//! `sealwatch capture tree`: who started what, for one container or one session, as an indented
//! tree built from the exec lines a replay prints (pid, ppid, exe, args, time, violations).
use std::path::PathBuf;

use clap::{ArgGroup, Args};
use serde_json::Value;

use super::{check_damage, load_override, output::passes, replay_files, ReplayError};
use crate::{
    capture::capture_files,
    filter::{Filter, FilterArgs},
    output::{EventLine, LineSink},
};

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("subject").required(true).args(["container", "session"])))]
pub struct TreeArgs {
    /// A capture file or directory.
    pub path: PathBuf,
    /// The container: full id, id prefix or name.
    #[arg(long, value_name = "ID|NAME")]
    pub container: Option<String>,
    /// The session: `session.id`, or the audit session id on lines without one.
    #[arg(long, value_name = "SESSION")]
    pub session: Option<String>,
    /// Judge with this policy instead of the recorded one (marks different violations).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
}

/// One exec: a process image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub pid: u64,
    pub ppid: u64,
    pub exe: String,
    pub args: Vec<String>,
    pub time: String,
    pub rules: Vec<String>,
    /// True when this image replaced an earlier one of the same pid (exec without fork).
    pub replaces: bool,
    pub children: Vec<usize>,
}

/// Nodes in time order, and the indexes of those without a parent in the set.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Forest {
    pub nodes: Vec<Node>,
    pub roots: Vec<usize>,
}

/// Builds the forest from exec lines in output order. A line repeated once per violation is one
/// node carrying every rule. A node's parent is the latest earlier image of the same pid (it
/// exec'd) or else of its ppid.
pub fn build(lines: &[Value]) -> Forest {
    let mut forest = Forest::default();
    for line in lines {
        if line.get("kind").and_then(Value::as_str) != Some("exec") {
            continue;
        }
        let num = |p: &str| line.pointer(p).and_then(Value::as_u64).unwrap_or(0);
        let text = |p: &str| {
            line.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let (pid, time) = (num("/process/pid"), text("/time"));
        let rule = line.pointer("/violation/rule").and_then(Value::as_str);
        if let Some(prev) = forest.nodes.last_mut() {
            if prev.pid == pid && prev.time == time {
                prev.rules.extend(rule.map(str::to_owned));
                continue;
            }
        }
        let args = line
            .pointer("/process/args")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let ppid = num("/process/ppid");
        let index = forest.nodes.len();
        let same_pid = forest.nodes.iter().rposition(|n| n.pid == pid);
        let parent = same_pid.or_else(|| forest.nodes.iter().rposition(|n| n.pid == ppid));
        forest.nodes.push(Node {
            pid,
            ppid,
            exe: text("/process/exe"),
            args,
            time,
            rules: rule.map(str::to_owned).into_iter().collect(),
            replaces: same_pid.is_some(),
            children: Vec::new(),
        });
        match parent {
            Some(parent) => forest.nodes[parent].children.push(index),
            None => forest.roots.push(index),
        }
    }
    forest
}

/// Renders the forest with box-drawing guides, one process image per line:
/// `pid exe args  time  [rules]`.
pub fn render(forest: &Forest) -> String {
    let mut out = String::new();
    let count = forest.roots.len();
    for (i, &root) in forest.roots.iter().enumerate() {
        render_node(forest, root, "", i + 1 == count, &mut out);
    }
    out
}

fn render_node(forest: &Forest, index: usize, prefix: &str, last: bool, out: &mut String) {
    let node = &forest.nodes[index];
    let branch = if last { "└─ " } else { "├─ " };
    let args = node
        .args
        .iter()
        .map(|a| quote(a))
        .collect::<Vec<_>>()
        .join(" ");
    let mut line = format!("{prefix}{branch}{} {}", node.pid, node.exe);
    if !args.is_empty() {
        line.push_str(&format!("  [{args}]"));
    }
    line.push_str(&format!("  {}", node.time));
    if node.replaces {
        line.push_str("  (exec, same pid)");
    }
    if !node.rules.is_empty() {
        line.push_str(&format!("  !! {}", node.rules.join(", ")));
    }
    out.push_str(&line);
    out.push('\n');
    let child_prefix = format!("{prefix}{}", if last { "   " } else { "│  " });
    let count = node.children.len();
    for (i, &child) in node.children.iter().enumerate() {
        render_node(forest, child, &child_prefix, i + 1 == count, out);
    }
}

/// An argument as a shell would need it: bare when plain, JSON-quoted otherwise.
fn quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
    if plain {
        arg.to_owned()
    } else {
        serde_json::to_string(arg).unwrap_or_else(|_| arg.to_owned())
    }
}

/// Keeps the JSON form of the lines that pass the filter.
struct Collect {
    filter: Filter,
    lines: Vec<Value>,
}

impl LineSink for Collect {
    fn emit(&mut self, line: &EventLine) {
        if passes(&self.filter, line) {
            if let Ok(value) = serde_json::to_value(line) {
                self.lines.push(value);
            }
        }
    }
}

/// `sealwatch capture tree`.
pub fn tree(args: &TreeArgs) -> Result<(), ReplayError> {
    let filter = Filter::compile(&FilterArgs {
        container: args.container.clone().into_iter().collect(),
        session: args.session.clone().into_iter().collect(),
        kind: vec!["exec".to_owned()],
        ..FilterArgs::default()
    })?;
    let policy = load_override(args.policy.as_deref())?;
    let files = capture_files(&args.path)?;
    let mut collect = Collect {
        filter,
        lines: Vec::new(),
    };
    let reports = replay_files(&files, policy, &mut collect, &mut |_, _| {})?;
    let title = match (&args.container, &args.session) {
        (Some(c), _) => collect
            .lines
            .first()
            .map(|l| {
                let t = |p: &str| {
                    l.pointer(p)
                        .and_then(Value::as_str)
                        .unwrap_or("-")
                        .to_owned()
                };
                format!(
                    "container {} ({}, image {}, {})",
                    t("/container/id"),
                    t("/container/name"),
                    t("/container/image"),
                    t("/container/runtime")
                )
            })
            .unwrap_or_else(|| format!("container {c}")),
        (None, Some(s)) => format!("session {s}"),
        (None, None) => String::new(),
    };
    let forest = build(&collect.lines);
    if forest.nodes.is_empty() {
        eprintln!("sealwatch: no exec of {title} in the capture");
    } else {
        print!("{title}\n{}", render(&forest));
    }
    check_damage(&reports)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn exec(pid: u64, ppid: u64, exe: &str, args: &[&str], t: u32, rule: Option<&str>) -> Value {
        let mut line = json!({"kind":"exec","time":format!("2026-01-01T00:00:{t:02}.000000000Z"),
            "process":{"pid":pid,"ppid":ppid,"exe":exe,"args":args}});
        if let Some(rule) = rule {
            line["violation"] = json!({"rule": rule});
        }
        line
    }

    #[test]
    fn builds_and_renders_who_started_what() {
        let lines = vec![
            exec(10, 1, "/bin/sh", &["sh", "-c", "id; sleep 1"], 1, None),
            exec(11, 10, "/bin/id", &["id"], 2, Some("root-in-container")),
            exec(11, 10, "/bin/id", &["id"], 2, Some("drift-exec")),
            exec(12, 10, "/bin/sleep", &["sleep", "1"], 3, None),
            exec(12, 10, "/bin/busybox", &["busybox"], 4, None),
            exec(20, 2, "/bin/true", &[], 5, None),
            json!({"kind":"loss","time":"2026-01-01T00:00:06Z"}),
        ];
        let forest = build(&lines);
        assert_eq!(forest.nodes.len(), 5);
        assert_eq!(forest.roots, vec![0, 4]);
        assert_eq!(
            forest.nodes[1].rules,
            vec!["root-in-container", "drift-exec"]
        );
        assert_eq!(
            render(&forest),
            "├─ 10 /bin/sh  [sh -c \"id; sleep 1\"]  2026-01-01T00:00:01.000000000Z\n\
             │  ├─ 11 /bin/id  [id]  2026-01-01T00:00:02.000000000Z  !! root-in-container, drift-exec\n\
             │  └─ 12 /bin/sleep  [sleep 1]  2026-01-01T00:00:03.000000000Z\n\
             │     └─ 12 /bin/busybox  [busybox]  2026-01-01T00:00:04.000000000Z  (exec, same pid)\n\
             └─ 20 /bin/true  2026-01-01T00:00:05.000000000Z\n"
        );
    }
}
