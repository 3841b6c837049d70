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

/// The kernel learns which cgroups are containers' (so that a process chrooted out of the
/// overlay stays the container's), and forgets them at rmdir; host cgroups are never marked.
#[test]
fn the_kernel_is_told_which_cgroups_are_containers() {
    use super::{Request, CGROUP_V2_HIERARCHY_ID};
    let marks = |p: &mut Pipeline| -> Vec<(u64, bool)> {
        p.take_requests()
            .into_iter()
            .filter_map(|r| match r {
                Request::ContainerCgroup { cgroup_id, present } => Some((cgroup_id, present)),
                _ => None,
            })
            .collect()
    };
    let mut p = Pipeline::new(
        super::PipelineConfig::for_tests(),
        std::sync::Arc::new(crate::policy::Policy::embedded_default()),
    );
    let mut lines = Vec::new();
    p.handle(
        Input::CgroupSnapshot {
            cgroups: vec![
                (CGROUP, format!("/machine.slice/libpod-{ID}.scope")),
                (5, "/system.slice/sshd.service".to_owned()),
            ],
        },
        &mut lines,
    );
    assert_eq!(marks(&mut p), vec![(CGROUP, true)]);
    for id in [5, CGROUP] {
        p.handle(
            Input::Kernel(KernelEvent::CgroupRmdir {
                task: task_100(9_000, 1, b"systemd"),
                id,
                hierarchy_id: CGROUP_V2_HIERARCHY_ID,
                path: Vec::new(),
            }),
            &mut lines,
        );
    }
    assert_eq!(marks(&mut p), vec![(CGROUP, false)]);
}

/// A workload chrooted to the container's `/proc` removes `/1/root/etc/passwd`: the kernel sends
/// the chroot as the record's root, and the name is looked up as `/proc/1/root/etc/passwd` in
/// the container by any of its processes (the chrooted one's own root is procfs).
#[test]
fn a_chrooted_path_operation_is_looked_up_from_its_root() {
    use super::{test_support::path_record, Request};
    use crate::event::model::FileOp;
    let (mut p, mut lines) = Pipeline::with_test_container(CGROUP, ID);
    p.handle(exec(60, 50, 1_000, "/bin/sh", false, false), &mut lines);
    p.take_requests();
    let mut record = path_record(
        crate::event::Task {
            pid: 60,
            tid: 60,
            mnt_ns: 2,
            ..task_100(2_000, CGROUP, b"rm")
        },
        FileOp::Unlink,
        b"/1/root/etc/passwd",
    );
    record.host_task = true;
    record.root = Some(b"/proc".to_vec());
    p.handle(Input::Kernel(KernelEvent::File(record)), &mut lines);
    let asked: Vec<(u32, Vec<Vec<u8>>)> = p
        .take_requests()
        .into_iter()
        .filter_map(|r| match r {
            Request::PathOrigins { pid, paths, .. } if !paths.is_empty() => Some((pid, paths)),
            _ => None,
        })
        .collect();
    assert_eq!(
        asked,
        vec![(0, vec![b"/proc/1/root/etc/passwd".to_vec()])],
        "looked up from the chroot, by none of its own"
    );
}
