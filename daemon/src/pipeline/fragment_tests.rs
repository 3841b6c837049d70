//! The process and container objects are rendered once and reused by the lines that repeat them
//! (`output::fragment`): reuse must never show stale facts or lose an escaped field.
#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use std::sync::Arc;

use super::{Input, Pipeline, PipelineConfig};
use crate::{
    container::ContainerMeta,
    event::{ExecRecord, KernelEvent, NetOp, NetRecord, Task},
    net::Protocol,
    output::EventLine,
    policy::Policy,
};

const CGROUP: u64 = 4343;

fn container_id() -> String {
    format!("{:064x}", 9)
}

fn metadata(name: &str) -> Input {
    Input::Metadata {
        container_id: container_id(),
        meta: Some(ContainerMeta {
            name: Some(name.into()),
            image: Some("localhost/app:1".into()),
            pod: None,
        }),
    }
}

fn pipeline(out: &mut Vec<EventLine>) -> Pipeline {
    let policy = Policy::parse("version: 1\n", "test.yaml").unwrap();
    let mut p = Pipeline::new(PipelineConfig::for_tests(), Arc::new(policy));
    let cgroups = vec![(
        CGROUP,
        format!("/machine.slice/libpod-{}.scope", container_id()),
    )];
    p.handle(Input::CgroupSnapshot { cgroups }, out);
    p.handle(metadata("app-1"), out);
    p
}

fn task(ktime_ns: u64, uid: u32) -> Task {
    Task {
        ktime_ns,
        pid: 100,
        tid: 100,
        uid,
        cgroup_id: CGROUP,
        comm: b"client".to_vec(),
        ..Task::default()
    }
}

/// The process runs `client --name <non-UTF-8>`: its args need the escaped form.
fn exec() -> Input {
    Input::Kernel(KernelEvent::Exec(ExecRecord {
        task: task(1_000, 0),
        ppid: 1,
        exe: b"/usr/bin/client".to_vec(),
        cwd: b"/".to_vec(),
        filename: b"/usr/bin/client".to_vec(),
        args: vec![b"client".to_vec(), b"--name".to_vec(), b"x\xffy".to_vec()],
        ..ExecRecord::default()
    }))
}

fn connect(ktime_ns: u64, uid: u32) -> Input {
    Input::Kernel(KernelEvent::Net(NetRecord {
        task: task(ktime_ns, uid),
        op: NetOp::Connect,
        ret: 0,
        ipv6: false,
        protocol: Some(Protocol::Tcp),
        local: "10.0.0.1".parse().unwrap(),
        local_port: 40000,
        // A new peer port each time: identical violations within 10 s are folded.
        peer: "10.0.0.2".parse().unwrap(),
        peer_port: 8000 + (ktime_ns / 1_000) as u16,
        blocked: false,
    }))
}

fn connects(out: &[EventLine]) -> Vec<&EventLine> {
    out.iter().filter(|line| line.kind == "connect").collect()
}

#[test]
fn repeated_lines_share_one_rendering_and_keep_escaped_fields() {
    let mut out = Vec::new();
    let mut p = pipeline(&mut out);
    p.handle(exec(), &mut out);
    p.handle(connect(2_000, 0), &mut out);
    p.handle(connect(3_000, 0), &mut out);
    let lines = connects(&out);
    assert_eq!(lines.len(), 2, "{out:#?}");
    let (first, second) = (lines[0], lines[1]);
    assert!(Arc::ptr_eq(
        first.process.as_ref().unwrap(),
        second.process.as_ref().unwrap()
    ));
    assert!(Arc::ptr_eq(
        first.container.as_ref().unwrap(),
        second.container.as_ref().unwrap()
    ));
    for line in [first, second] {
        let json: serde_json::Value = serde_json::from_str(&line.to_json()).unwrap();
        assert_eq!(json["process"]["args"][2], "x\\xffy", "{json}");
        assert_eq!(
            json["escaped"],
            serde_json::json!(["/process/args/2"]),
            "{json}"
        );
        assert_eq!(json["container"]["name"], "app-1", "{json}");
    }
}

#[test]
fn a_changed_uid_or_new_metadata_is_rendered_again() {
    let mut out = Vec::new();
    let mut p = pipeline(&mut out);
    p.handle(exec(), &mut out);
    p.handle(connect(2_000, 0), &mut out);
    p.handle(connect(3_000, 1000), &mut out);
    p.handle(metadata("app-renamed"), &mut out);
    p.handle(connect(4_000, 1000), &mut out);
    let lines: Vec<serde_json::Value> = connects(&out)
        .iter()
        .map(|line| serde_json::from_str(&line.to_json()).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{out:#?}");
    let uids: Vec<_> = lines.iter().map(|l| l["process"]["uid"].clone()).collect();
    assert_eq!(uids, [0, 1000, 1000]);
    let names: Vec<_> = lines
        .iter()
        .map(|l| l["container"]["name"].clone())
        .collect();
    assert_eq!(names, ["app-1", "app-1", "app-renamed"]);
}

#[test]
fn what_was_rendered_goes_with_the_process_and_the_container() {
    let mut out = Vec::new();
    let mut p = pipeline(&mut out);
    p.handle(exec(), &mut out);
    p.handle(connect(2_000, 0), &mut out);
    assert_eq!(p.render.len(), 2, "one process and one container object");
    // New metadata retires the container's rendering; the next tick drops it.
    p.handle(metadata("app-renamed"), &mut out);
    let tick = |ktime_ns| Input::Tick {
        ktime_ns,
        drops: crate::pipeline::DropCounts::default(),
    };
    p.handle(tick(3_000), &mut out);
    assert_eq!(p.render.len(), 1, "the process object stays");
    // The process exits; once the table sweeps it, its rendering goes too.
    p.handle(
        Input::Kernel(KernelEvent::Exit {
            task: task(4_000, 0),
            exit_code: 0,
        }),
        &mut out,
    );
    p.handle(tick(60_000_000_000), &mut out);
    assert!(p.render.is_empty(), "{}", p.render.len());
}
