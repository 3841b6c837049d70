//! Origins are never stale: an answer serves the events that waited for it, and the next event
//! about the same path asks again (the file may have been written since).

use super::{
    test_support::{path_record, task_100},
    Input, Pipeline, Request,
};
use crate::{
    container::image_path::PathOrigin,
    event::{model::ExeOrigin, ExecRecord, KernelEvent},
    output::EventLine,
};

const ID: &str = "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd";
const CGROUP: u64 = 78;
const SCRIPT: &[u8] = b"/tmp/x.sh";

/// `/tmp/x.sh` run by the kernel through its `#!` line, with an interpreter whose reads the
/// kernel does not report (so the script is judged at the exec, by a look-up).
fn run_script(pid: u32, t: u64) -> Input {
    Input::Kernel(KernelEvent::Exec(ExecRecord {
        task: crate::event::Task {
            pid,
            tid: pid,
            mnt_ns: 2,
            ..task_100(t, CGROUP, b"runner")
        },
        ppid: 1,
        exe: b"/opt/bin/runner".to_vec(),
        filename: SCRIPT.to_vec(),
        interp: b"/opt/bin/runner".to_vec(),
        args: vec![b"/opt/bin/runner".to_vec(), SCRIPT.to_vec()],
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
        canonical: Vec::new(),
    }
}

#[test]
fn a_path_is_asked_again_after_its_answer_was_used() {
    let (mut p, mut lines) = Pipeline::with_test_container(CGROUP, ID);
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

/// `rm /tmp/e/passwd` where the container made `/tmp/e` a symlink to `/etc`: the resolver walks
/// the text inside the container's root and answers with the file it names; the verdict and the
/// line are about that file.
#[test]
fn a_path_through_a_container_symlink_is_judged_as_the_file_it_names() {
    use crate::event::model::FileOp;
    let (mut p, mut lines) = Pipeline::with_test_container(CGROUP, ID);
    let asked = b"/tmp/e/passwd".to_vec();
    p.handle(
        Input::Kernel(KernelEvent::File(path_record(
            task_100(1_000, CGROUP, b"rm"),
            FileOp::Unlink,
            &asked,
        ))),
        &mut lines,
    );
    let follows = p.take_requests().into_iter().find_map(|r| match r {
        Request::PathOrigins {
            paths, follow_last, ..
        } if paths.contains(&asked) => Some(follow_last),
        _ => None,
    });
    assert_eq!(follows, Some(false), "unlink acts on the name itself");
    p.handle(
        Input::PathOrigins {
            container_id: ID.into(),
            origins: vec![(asked.clone(), PathOrigin::Image)],
            canonical: vec![(asked, b"/etc/passwd".to_vec())],
        },
        &mut lines,
    );
    p.handle(
        Input::Tick {
            ktime_ns: 1_000_000_000,
            drops: Default::default(),
        },
        &mut lines,
    );
    let hit = lines
        .iter()
        .find(|l| {
            l.violation
                .as_ref()
                .is_some_and(|v| v.rule == "image-file-modified")
        })
        .expect("the unlink of an image file is a violation");
    let path = &hit.file.as_ref().expect("a file line").path;
    assert_eq!(path.as_str(), "/etc/passwd");
}

/// A kernel that cannot read overlayfs's layout sends an exec on overlayfs without its layer:
/// the executable's path is looked up, and a copy written in the container is drift, not an
/// image program.
#[test]
fn an_exec_the_kernel_could_not_place_is_looked_up() {
    let (mut p, mut lines) = Pipeline::with_test_container(CGROUP, ID);
    let exe = b"/tmp/copy".to_vec();
    p.handle(
        Input::Kernel(KernelEvent::Exec(ExecRecord {
            task: task_100(1_000, CGROUP, b"copy"),
            ppid: 1,
            exe: exe.clone(),
            filename: exe.clone(),
            interp: exe.clone(),
            args: vec![exe.clone()],
            cwd: b"/".to_vec(),
            exe_origin: ExeOrigin {
                overlay: true,
                ..ExeOrigin::default()
            },
            ..ExecRecord::default()
        })),
        &mut lines,
    );
    let asked = p.take_requests().into_iter().any(|r| {
        matches!(r, Request::PathOrigins { paths, follow_last: true, .. } if paths.contains(&exe))
    });
    assert!(asked, "the executable's layer is looked up");
    assert!(
        lines.iter().all(|l| l.kind != "exec"),
        "the exec waits for it"
    );
    p.handle(
        Input::PathOrigins {
            container_id: ID.into(),
            origins: vec![(exe, PathOrigin::Upper)],
            canonical: Vec::new(),
        },
        &mut lines,
    );
    let drift = lines
        .iter()
        .find(|l| l.violation.as_ref().is_some_and(|v| v.rule == "drift-exec"))
        .expect("a copy written in the container is drift");
    let process = drift.process.as_ref().expect("an exec line");
    assert_eq!(process.exe_layer, Some("upper"));
}

/// `sh -o errexit /tmp/x.sh` from the image's busybox: the exec is not drift by itself; the
/// kernel reports the shell's read of `/tmp/x.sh` (a file of the container's own), and argv
/// says it is the script. A read of a file named after the script (its argument) is data.
#[test]
fn a_script_is_judged_by_the_interpreters_read_of_it() {
    use crate::event::{model::FileOp, FileRecord, Layer};
    let (mut p, mut lines) = Pipeline::with_test_container(CGROUP, ID);
    let args = ["sh", "-o", "errexit", "/tmp/x.sh", "/tmp/data"];
    p.handle(
        Input::Kernel(KernelEvent::Exec(ExecRecord {
            task: task_100(1_000, CGROUP, b"sh"),
            ppid: 1,
            exe: b"/bin/busybox".to_vec(),
            filename: b"/bin/sh".to_vec(),
            interp: b"/bin/sh".to_vec(),
            args: args.iter().map(|a| a.as_bytes().to_vec()).collect(),
            cwd: b"/".to_vec(),
            exe_origin: ExeOrigin {
                overlay: true,
                lower: true,
                ..ExeOrigin::default()
            },
            ..ExecRecord::default()
        })),
        &mut lines,
    );
    let read = |path: &[u8], t: u64| {
        Input::Kernel(KernelEvent::File(FileRecord {
            layer: Layer::Upper,
            ino: 7,
            dev: 1,
            path: Some(path.to_vec()),
            base: None,
            ..path_record(task_100(t, CGROUP, b"sh"), FileOp::ScriptRead, path)
        }))
    };
    p.handle(read(b"/tmp/data", 2_000), &mut lines);
    p.handle(read(SCRIPT, 3_000), &mut lines);
    p.handle(
        Input::Tick {
            ktime_ns: 1_000_000_000,
            drops: Default::default(),
        },
        &mut lines,
    );
    let drift: Vec<&EventLine> = lines
        .iter()
        .filter(|l| l.violation.as_ref().is_some_and(|v| v.rule == "drift-exec"))
        .collect();
    assert_eq!(drift.len(), 1, "only the script is drift: {drift:#?}");
    let file = drift[0].file.as_ref().expect("a file line");
    assert_eq!((file.path.as_str(), file.op), ("/tmp/x.sh", "script_read"));
}
