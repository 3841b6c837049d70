//! Who is a container's workload is decided by lineage, not by where a process's root is: runc
//! init before `pivot_root` is not judged, a workload that `chroot`s out of the overlay is.

use super::{test_support::task_100, Input, Pipeline};
use crate::{
    event::{model::ExeOrigin, ExecRecord, KernelEvent},
    output::EventLine,
};

const ID: &str = "abababababababababababababababababababababababababababababababab";
const CGROUP: u64 = 77;

/// An exec in the container's cgroup; `outside_root`: the kernel saw its root off overlayfs.
fn exec(pid: u32, ppid: u32, t: u64, exe: &str, outside_root: bool, upper: bool) -> Input {
    Input::Kernel(KernelEvent::Exec(ExecRecord {
        task: crate::event::Task {
            pid,
            tid: pid,
            mnt_ns: 2,
            ..task_100(t, CGROUP, b"x")
        },
        ppid,
        exe: exe.as_bytes().to_vec(),
        filename: exe.as_bytes().to_vec(),
        interp: exe.as_bytes().to_vec(),
        args: vec![exe.as_bytes().to_vec()],
        cwd: b"/".to_vec(),
        host_root: outside_root,
        exe_origin: ExeOrigin {
            overlay: !outside_root || upper,
            lower: !upper,
            upper,
            deleted: false,
        },
        ..ExecRecord::default()
    }))
}

fn rules(lines: &[EventLine], exe: &str) -> Vec<&'static str> {
    lines
        .iter()
        .filter(|l| l.process.as_ref().is_some_and(|p| p.exe.as_str() == exe))
        .filter_map(|l| l.violation.as_ref().map(|v| v.rule))
        .collect()
}

#[test]
fn a_chrooted_workload_is_judged_and_runc_init_is_not() {
    let (mut p, mut lines) = Pipeline::with_test_container(CGROUP, ID);
    // runc init: started by runc on the host (pid 50, unknown to the table), root still the
    // host's; a copy of runc is not in the image, yet it is the runtime, not drift.
    p.handle(exec(60, 50, 1_000, "/usr/bin/runc", true, true), &mut lines);
    // The entrypoint, in the container's root: a workload.
    p.handle(exec(60, 50, 2_000, "/bin/sh", false, false), &mut lines);
    p.handle(
        Input::Kernel(KernelEvent::Fork {
            task: task_100(3_000, CGROUP, b"sh"),
            child_pid: 61,
        }),
        &mut lines,
    );
    // The workload's child chroots to /proc and runs a dropped copy of busybox from there.
    p.handle(exec(61, 60, 4_000, "/tmp/bb", true, true), &mut lines);
    p.finish(&mut lines);
    assert_eq!(
        rules(&lines, "/usr/bin/runc"),
        Vec::<&str>::new(),
        "runc init"
    );
    assert!(
        rules(&lines, "/tmp/bb").contains(&"drift-exec"),
        "the chrooted drop: {:?}",
        rules(&lines, "/tmp/bb")
    );
}
