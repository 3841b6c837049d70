//! Origins are never stale: an answer serves the events that waited for it, and the next event
//! about the same path asks again (the file may have been written since).
use std::sync::Arc;

use super::{test_support::task_100, Input, Pipeline, PipelineConfig, Request};
use crate::{
    container::image_path::PathOrigin,
    event::{model::ExeOrigin, ExecRecord, KernelEvent},
    output::EventLine,
    policy::Policy,
};

const ID: &str = "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd";
const CGROUP: u64 = 78;
const SCRIPT: &[u8] = b"/tmp/x.sh";

/// `sh /tmp/x.sh` in the container, from the image's shell.
fn run_script(pid: u32, t: u64) -> Input {
    Input::Kernel(KernelEvent::Exec(ExecRecord {
        task: crate::event::Task {
            pid,
            tid: pid,
            mnt_ns: 2,
            ..task_100(t, CGROUP, b"sh")
        },
        ppid: 1,
        exe: b"/bin/sh".to_vec(),
        filename: b"/bin/sh".to_vec(),
        interp: b"/bin/sh".to_vec(),
        args: vec![b"sh".to_vec(), SCRIPT.to_vec()],
        cwd: b"/".to_vec(),
        exe_origin: ExeOrigin {
            overlay: true,
            lower: true,
            ..ExeOrigin::default()
        },
        ..ExecRecord::default()
    }))
}

/// The script look-ups among the pipeline's requests.
fn asked_for_script(p: &mut Pipeline) -> bool {
    p.take_requests().into_iter().any(
        |r| matches!(r, Request::PathOrigins { paths, .. } if paths.iter().any(|q| q == SCRIPT)),
    )
}

fn answer(origin: PathOrigin) -> Input {
    Input::PathOrigins {
        container_id: ID.into(),
        origins: vec![(SCRIPT.to_vec(), origin)],
    }
}

#[test]
fn a_path_is_asked_again_after_its_answer_was_used() {
    let mut p = Pipeline::new(
        PipelineConfig::for_tests(),
        Arc::new(Policy::embedded_default()),
    );
    let mut lines: Vec<EventLine> = Vec::new();
    p.with_podman_container(CGROUP, ID, "web", "localhost/app:1", &mut lines);
    p.handle(run_script(40, 1_000), &mut lines);
    assert!(asked_for_script(&mut p), "the first run asks");
    p.handle(answer(PathOrigin::Absent), &mut lines);
    let drift = |lines: &[EventLine]| {
        lines
            .iter()
            .filter(|l| l.violation.as_ref().is_some_and(|v| v.rule == "drift-exec"))
            .count()
    };
    assert_eq!(drift(&lines), 0, "a script that does not exist ran nothing");
    // The script is written meanwhile (the kernel reports nothing: no exec bit), then run.
    p.handle(run_script(41, 2_000), &mut lines);
    assert!(asked_for_script(&mut p), "the second run asks again");
    p.handle(answer(PathOrigin::Upper), &mut lines);
    assert_eq!(drift(&lines), 1, "the written script is drift");
}
