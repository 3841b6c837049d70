//! The hand-written line writer (`json_out`) must write exactly what `#[derive(Serialize)]`
//! describes, for every field present and absent.
#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use std::sync::Arc;

use super::{
    fragment::Rendered, ContainerJson, EventLine, FileJson, LossJson, NetworkJson, PodJson,
    ProcessJson, SessionJson, ViolationJson, SCHEMA,
};

/// A line with no optional part, and a node name that needs escaping.
fn bare(kind: &'static str) -> EventLine {
    let mut line = crate::tail::test_line(kind);
    line.node = Arc::from("node \"a\"\n");
    line.loss = None;
    line
}

fn process() -> ProcessJson {
    ProcessJson {
        pid: 7,
        ppid: 1,
        uid: 0,
        gid: 0,
        comm: "sh".into(),
        exe: "/bin/sh".into(),
        args: vec!["sh".into(), "-c".into(), "echo \\x".into()],
        args_truncated: false,
        cwd: "/".into(),
        tty: Some("pts/0".into()),
        loginuid: None,
        sessionid: Some(3),
        parent_exe: None,
        exe_layer: Some("lower"),
    }
}

fn container() -> ContainerJson {
    ContainerJson {
        id: "c".repeat(64),
        runtime: "docker",
        name: Some("web".into()),
        image: None,
        pod: Some(PodJson {
            name: Some("p".into()),
            namespace: None,
            uid: None,
        }),
        metadata: "complete",
    }
}

fn network(direction: Option<&'static str>, name: Option<&str>) -> NetworkJson {
    NetworkJson {
        protocol: "tcp",
        family: "ipv6",
        direction,
        src: std::net::Ipv6Addr::LOCALHOST.into(),
        sport: 65535,
        dst: direction.map(|_| std::net::Ipv4Addr::new(10, 0, 0, 1).into()),
        dport: direction.map(|_| 443),
        result: "refused",
        errno: direction.map(|_| 111),
        name: name.map(str::to_owned),
        workload: "web \\ \"api\"".into(),
    }
}

fn every_shape() -> Vec<EventLine> {
    let mut lines = vec![bare("loss")];
    lines[0].loss = Some(LossJson {
        kernel_bulk: 3,
        ..LossJson::default()
    });

    let mut exec = bare("exec");
    exec.process = Some(Rendered::new(process(), vec!["/process/args/2".into()]));
    exec.escaped = vec!["/process/args/2".into()];
    exec.session = Some(SessionJson {
        id: "s1".into(),
        ..SessionJson::default()
    });
    lines.push(exec.clone());
    exec.container = Some(Rendered::new(container(), Vec::new()));
    lines.push(exec);

    let mut file = bare("file");
    file.process = Some(Rendered::new(process(), Vec::new()));
    file.container = Some(Rendered::new(container(), Vec::new()));
    file.file = Some(FileJson {
        path_truncated: false,
        path: "/etc/pass\twd".into(),
        op: "open_write",
        layer: "lower",
        mode: None,
    });
    file.violation = Some(ViolationJson {
        rule: "image-file-modified",
        severity: "high",
        message: "m".into(),
        repeats: Some(2),
        action: None,
    });
    lines.push(file);

    for (direction, name) in [
        (Some("egress"), Some("api.example")),
        (Some("ingress"), None),
        (None, None),
    ] {
        let mut net = bare("connect");
        net.container = Some(Rendered::new(container(), Vec::new()));
        net.network = Some(network(direction, name));
        lines.push(net);
    }
    lines
}

#[test]
fn hand_written_lines_match_the_derived_serialisation() {
    for line in every_shape() {
        let derived = serde_json::to_string(&line).unwrap();
        assert_eq!(line.to_json(), derived);
        // And it is one valid JSON line.
        let value: serde_json::Value = serde_json::from_str(&line.to_json()).unwrap();
        assert_eq!(value["schema"], SCHEMA);
        assert!(!line.to_json().contains('\n'));
    }
}
