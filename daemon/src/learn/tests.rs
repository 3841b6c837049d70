//! The learner end to end: event lines in, policy files out.
use std::io::Cursor;
use std::time::Duration;

use serde_json::{json, Value};

use super::*;

fn net_line(time: &str, kind: &str, image: Option<&str>, network: Value) -> String {
    let container = image.map(|image| {
        json!({"id": "c0ffee", "runtime": "podman", "name": "web-1", "image": image,
               "pod": null, "metadata": "complete"})
    });
    json!({"schema": "sealwatch.event/v1", "time": time, "node": "n1", "kind": kind,
           "process": {"pid": 7}, "container": container, "network": network})
    .to_string()
}

fn connect(
    time: &str,
    image: &str,
    dst: &str,
    dport: u16,
    name: Option<&str>,
    result: &str,
) -> String {
    let mut network = json!({"protocol": "tcp", "family": "ipv4", "direction": "egress",
        "src": "10.231.1.1", "sport": 40312, "dst": dst, "dport": dport,
        "result": result, "errno": null, "workload": "default"});
    if let Some(name) = name {
        network["name"] = json!(name);
    }
    net_line(time, "connect", Some(image), network)
}

fn accept(time: &str, image: &str, src: &str, dport: u16) -> String {
    net_line(
        time,
        "accept",
        Some(image),
        json!({"protocol": "tcp", "family": "ipv4",
        "direction": "ingress", "src": src, "sport": 51000, "dst": "10.231.1.1", "dport": dport,
        "result": "success", "errno": null}),
    )
}

fn listen(time: &str, image: &str, protocol: &str, port: u16) -> String {
    net_line(
        time,
        "listen",
        Some(image),
        json!({"protocol": protocol, "family": "ipv4",
        "direction": "ingress", "src": "0.0.0.0", "sport": port, "dst": null, "dport": null,
        "result": "success", "errno": null}),
    )
}

const WEB: &str = "localhost/web:1";

fn web_lines() -> Vec<String> {
    vec![
        json!({"schema": "sealwatch.event/v1", "time": "2026-11-22T10:00:00.000000000Z",
               "node": "n1", "kind": "exec", "container": null})
        .to_string(),
        connect(
            "2026-11-22T10:00:02.000000000Z",
            WEB,
            "10.231.1.2",
            80,
            Some("API.sealwatch.test."),
            "success",
        ),
        connect(
            "2026-11-22T10:00:01.500000000Z",
            WEB,
            "10.231.1.3",
            80,
            Some("api.sealwatch.test"),
            "in-progress",
        ),
        connect(
            "2026-11-22T10:00:03.000000000Z",
            WEB,
            "10.231.1.2",
            443,
            Some("api.sealwatch.test"),
            "blocked",
        ),
        connect(
            "2026-11-22T10:00:04.000000000Z",
            WEB,
            "10.9.9.9",
            5432,
            None,
            "refused",
        ),
        connect(
            "2026-11-22T10:00:04.000000000Z",
            WEB,
            "::ffff:10.9.9.9",
            5432,
            Some("bad name!"),
            "success",
        ),
        connect(
            "2026-11-22T10:00:04.000000000Z",
            WEB,
            "127.0.0.1",
            9000,
            None,
            "success",
        ),
        accept("2026-11-22T10:00:05.000000000Z", WEB, "10.231.1.7", 8080),
        accept("2026-11-22T10:00:06.000000000Z", WEB, "10.231.1.6", 8080),
        {
            let mut line: Value =
                serde_json::from_str(&accept("2026-11-22T10:00:07Z", WEB, "10.231.1.6", 8080))
                    .unwrap_or_default();
            line["violation"] = json!({"rule": "unexpected-connection", "severity": "high",
                                       "message": "m", "action": "alert", "repeats": 3});
            line.to_string()
        },
        listen("2026-11-22T10:00:00.500000000Z", WEB, "tcp", 8080),
        listen("2026-11-22T10:00:00.600000000Z", WEB, "udp", 5353),
        // A host process, a container whose metadata was pending, garbage.
        net_line(
            "2026-11-22T10:00:07.000000000Z",
            "connect",
            None,
            json!({"protocol": "tcp"}),
        ),
        "{\"kind\": \"connect\", \"container\": {\"image\": \"x\"}".to_owned(),
        "not json".to_owned(),
        json!({"schema": "sealwatch.event/v1", "time": "2026-11-22T10:05:00.000000000Z",
               "node": "n1", "kind": "loss"})
        .to_string(),
    ]
}

const WEB_YAML: &str = r#"# sealwatch learn: image localhost/web:1, node n1, observed 2026-11-22T10:00:00.000000000Z to 2026-11-22T10:05:00.000000000Z
# Review every entry, then merge the workload into your policy's network.workloads.
version: 1
network:
  workloads:
    - name: "learned-localhost-web-1"
      match:
        image: "localhost/web:1"
      egress:
        # loopback, as the default rules allow; first seen 2026-11-22T10:00:04.000000000Z, 1 connection
        - to: ["set:loopback"]
        # first seen 2026-11-22T10:00:01.500000000Z, 3 connections (1 blocked)
        - to: ["api.sealwatch.test"]
          ports: [80, 443]
          protocol: tcp
        # first seen 2026-11-22T10:00:04.000000000Z, 2 connections (1 refused)
        - to: ["10.9.9.9"]
          ports: [5432]
          protocol: tcp
      ingress:
        # loopback, as the default rules allow (none seen)
        - from: ["set:loopback"]
        # first seen 2026-11-22T10:00:05.000000000Z, 6 connections
        - from: ["10.231.1.6", "10.231.1.7"]
          ports: [8080]
          protocol: tcp
      listen:
        # first seen 2026-11-22T10:00:00.500000000Z, 1 time
        - ports: [8080]
          protocol: tcp
        # first seen 2026-11-22T10:00:00.600000000Z, 1 time
        - ports: [5353]
          protocol: udp
"#;

#[test]
fn learns_one_reviewable_policy_per_image() {
    let mut learner = Learner::new();
    for line in web_lines() {
        learner.observe_line(&line);
    }
    assert_eq!(
        learner.counts(),
        Counts {
            lines: 16,
            learned: 11,
            without_image: 1,
            malformed: 2,
            dropped: 0
        }
    );
    let files = learner.render_all(Path::new("out"), &LearnHeader::default());
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].0, Path::new("out/localhost-web-1.yaml"));
    assert_eq!(files[0].1, WEB_YAML);
}

#[test]
fn the_order_of_lines_does_not_matter() {
    let render = |lines: &[String]| {
        let mut learner = Learner::new();
        for line in lines {
            learner.observe_line(line);
        }
        learner.render_all(Path::new("."), &LearnHeader::default())
    };
    let mut lines = web_lines();
    let forward = render(&lines);
    lines.reverse();
    assert_eq!(render(&lines), forward);
}

#[test]
fn header_overrides_and_odd_images() {
    let odd = "reg.example/we\"ird:[1]*\nline";
    let mut learner = Learner::new();
    learner.observe_line(&listen("2026-11-22T10:00:00Z", odd, "tcp", 80));
    learner.observe_line(&listen("2026-11-22T10:00:00Z", "a/b:1", "tcp", 81));
    learner.observe_line(&listen("2026-11-22T10:00:00Z", "a-b:1", "tcp", 82));
    let header = LearnHeader {
        node: Some("node\nx".to_owned()),
        window: Some(("A".to_owned(), "B".to_owned())),
    };
    let files = learner.render_all(Path::new("d"), &header);
    let names: Vec<&Path> = files.iter().map(|(path, _)| path.as_path()).collect();
    assert_eq!(names.len(), 3);
    assert!(names[0].starts_with("d") && names[0] != names[1]);
    for (path, text) in &files {
        assert!(text.starts_with("# sealwatch learn: image "), "{path:?}");
        assert!(
            text.contains(", node node\\x0ax, observed A to B\n"),
            "{text}"
        );
        let value: serde_yaml_ng::Value = match serde_yaml_ng::from_str(text) {
            Ok(value) => value,
            Err(err) => panic!("{path:?} is not YAML: {err}\n{text}"),
        };
        let image = value["network"]["workloads"][0]["match"]["image"].as_str();
        let expected = if text.contains("we\\\"ird") {
            "reg.example/we\"ird:\\[1\\]\\*\nline"
        } else if text.contains("\"a/b:1\"") {
            "a/b:1"
        } else {
            "a-b:1"
        };
        assert_eq!(image, Some(expected));
        if let Err(err) = crate::policy::Policy::parse(text, "learned.yaml") {
            panic!("{err}\n{text}");
        }
    }
}

#[test]
fn every_file_is_a_valid_policy() {
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(err) => panic!("tempdir: {err}"),
    };
    let mut lines = web_lines();
    lines.push(connect(
        "2026-11-22T10:01:00Z",
        "quay.io/x/db:2",
        "fd00::5",
        53,
        None,
        "success",
    ));
    let input = lines.join("\n");
    let summary = learn_from_events(Cursor::new(input), dir.path(), &LearnHeader::default());
    let summary = match summary {
        Ok(summary) => summary,
        Err(err) => panic!("learn: {err:#}"),
    };
    assert_eq!(summary.images, 2);
    assert_eq!(
        summary.files,
        [
            dir.path().join("localhost-web-1.yaml"),
            dir.path().join("quay.io-x-db-2.yaml")
        ]
    );
    for path in &summary.files {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if let Err(err) = crate::policy::Policy::parse(&text, &path.display().to_string()) {
            panic!("{err}\n{text}");
        }
    }
}

#[test]
fn a_flood_is_bounded_and_counted() {
    let mut learner = Learner::new();
    for i in 0..(model::MAX_ITEMS_PER_IMAGE as u32 + 5) {
        let dst = std::net::Ipv4Addr::from(0x0a00_0000 + i).to_string();
        learner.observe_line(&connect(
            "2026-11-22T10:00:00Z",
            WEB,
            &dst,
            80,
            None,
            "success",
        ));
    }
    assert_eq!(learner.counts().dropped, 5);
    let files = learner.render_all(Path::new("."), &LearnHeader::default());
    assert!(files[0]
        .1
        .contains("# 5 further observations are not listed"));
}

#[test]
fn learn_args() {
    use clap::{CommandFactory, Parser};

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        learn: LearnArgs,
    }
    Cli::command().debug_assert();
    let parse = |args: &[&str]| Cli::try_parse_from([&["sealwatch"], args].concat());
    let live = parse(&["--duration", "10m", "--output", "d"]);
    assert!(live.is_ok_and(|cli| cli.learn.duration == Some(Duration::from_secs(600))));
    let saved = parse(&["--from-events", "-", "--output", "d"]);
    assert!(saved.is_ok_and(|cli| cli.learn.from_events == Some(PathBuf::from("-"))));
    assert!(parse(&["--output", "d"]).is_err());
    assert!(parse(&["--duration", "1m", "--from-events", "f", "--output", "d"]).is_err());
    assert!(parse(&["--duration", "1m"]).is_err());
}
