//! Recorder → files → replay, end to end without a kernel: what the live pipeline printed must
//! come back byte for byte, across a rotation and a policy reload, and every file must replay on
//! its own.
#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use std::{sync::Arc, time::Duration};

use super::{capture_files, retention::RetentionPolicy, Recorder, RecorderOptions};
use crate::{
    container::ContainerMeta,
    driver::{
        recording::config_record,
        run_ready,
        tests::{Move, Script},
        Driver,
    },
    event::{ExecRecord, KernelEvent, Task},
    input::{DropCounts, Input},
    output::EventLine,
    pipeline::{Pipeline, PipelineConfig},
    policy::Policy,
    replay::replay_files,
    state::ProcSeed,
};

const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const S: u64 = 1_000_000_000;

fn config() -> PipelineConfig {
    PipelineConfig {
        node: "node-1".into(),
        clock: crate::clock::BootClock {
            boot_to_unix_ns: 1_700_000_000_000_000_000,
        },
        hold_ns: S,
        host_mnt_ns: 1,
        net_env: crate::policy::NetEnvironment::default(),
    }
}

pub(crate) fn exec(pid: u32, ppid: u32, uid: u32, cgroup_id: u64, t: u64, exe: &str) -> Input {
    Input::Kernel(KernelEvent::Exec(ExecRecord {
        task: Task {
            ktime_ns: t,
            pid,
            tid: pid,
            uid,
            gid: uid,
            cgroup_id,
            mnt_ns: 2,
            pid_ns: 2,
            comm: exe.rsplit('/').next().unwrap_or(exe).as_bytes().to_vec(),
        },
        ppid,
        exe: exe.as_bytes().to_vec(),
        exe_ino: 1,
        exe_dev: 1,
        cwd: b"/".to_vec(),
        filename: exe.as_bytes().to_vec(),
        interp: exe.as_bytes().to_vec(),
        args: vec![exe.as_bytes().to_vec(), b"--flag".to_vec()],
        ..ExecRecord::default()
    }))
}

fn tick(t: u64) -> Input {
    Input::Tick {
        ktime_ns: t,
        drops: DropCounts::default(),
    }
}

fn metadata(id: &str, name: &str) -> Input {
    Input::Metadata {
        container_id: id.into(),
        meta: Some(ContainerMeta {
            name: Some(name.into()),
            image: Some("localhost/app:1".into()),
            pod: None,
        }),
    }
}

/// Records a run through the driver, as the live daemon does, with a rotation in the middle and
/// a policy reload after it; returns the live lines, and how many of them were printed before
/// the rotation.
pub(crate) fn record_run(dir: &std::path::Path) -> (Vec<EventLine>, usize) {
    let policy = Arc::new(Policy::embedded_default());
    let opts = RecorderOptions {
        dir: dir.to_owned(),
        file_bytes: 1 << 20,
        file_age: Duration::from_secs(3600),
        retention: RetentionPolicy {
            max_bytes: 1 << 30,
            max_age_ns: i64::MAX,
            violation_window_ns: 0,
            violation_max_age_ns: i64::MAX,
        },
        queue: 4096,
    };
    let live = Pipeline::new(config(), policy.clone());
    let recorder = Recorder::start(opts, config_record(live.config()), &policy).unwrap();
    // After the rotation: a new container whose metadata is late, then a reload that makes
    // root-in-container high.
    let stricter = Policy::parse(
        "version: 1\nrules:\n  root-in-container:\n    severity: high\n",
        "stricter.yaml",
    )
    .unwrap();
    let moves = vec![
        Move::Inputs(vec![
            Input::ProcSnapshot {
                procs: vec![ProcSeed {
                    pid: 100,
                    ppid: 1,
                    exe: b"/usr/bin/conmon".to_vec(),
                    comm: b"conmon".to_vec(),
                    args: Vec::new(),
                    cwd: b"/".to_vec(),
                    workload: false,
                }],
            },
            Input::CgroupSnapshot {
                cgroups: vec![
                    (4, "/system.slice/ssh.service".into()),
                    (5, format!("/libpod_parent/libpod-{A}")),
                ],
            },
            metadata(A, "web"),
            exec(101, 100, 0, 5, 10 * S, "/bin/sh"),
            exec(102, 101, 0, 5, 11 * S, "/bin/id"),
            exec(200, 1, 1000, 4, 12 * S, "/usr/bin/ls"),
            tick(13 * S),
        ]),
        Move::Rotate,
        Move::Inputs(vec![
            exec(103, 101, 0, 5, 14 * S, "/bin/cat"),
            Input::Kernel(KernelEvent::CgroupMkdir {
                task: Task {
                    ktime_ns: 15 * S,
                    pid: 1,
                    tid: 1,
                    uid: 0,
                    gid: 0,
                    cgroup_id: 1,
                    mnt_ns: 1,
                    pid_ns: 1,
                    comm: b"runc".to_vec(),
                },
                id: 6,
                hierarchy_id: 0,
                path: format!("/libpod_parent/libpod-{B}").into_bytes(),
            }),
            exec(300, 1, 0, 6, 16 * S, "/bin/sleep"),
            tick(16 * S + S / 2),
        ]),
        Move::Policy(Arc::new(stricter)),
        Move::Inputs(vec![
            metadata(B, "db"),
            exec(301, 300, 0, 6, 17 * S, "/bin/true"),
            tick(18 * S),
        ]),
    ];
    let mut script = Script {
        moves: moves.into_iter(),
        recorder,
        lines: Vec::new(),
        lines_at_rotation: None,
    };
    let Ok(_) = run_ready(Driver::new(live).run(&mut script));
    script.recorder.finish().unwrap();
    let before = script.lines_at_rotation.unwrap();
    (script.lines, before)
}

fn replay(paths: &[std::path::PathBuf]) -> Vec<EventLine> {
    let mut out: Vec<EventLine> = Vec::new();
    replay_files(paths, None, &mut out, &mut |_, _| {}).unwrap();
    out
}

#[test]
fn a_recorded_run_replays_byte_for_byte_and_each_file_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let (live, before) = record_run(dir.path());
    assert!(live
        .iter()
        .any(|l| l.violation.as_ref().is_some_and(|v| v.severity == "high")));
    let files = capture_files(dir.path()).unwrap();
    assert_eq!(files.len(), 2, "one rotation, two files");

    let replayed = replay(&files);
    let json = |lines: &[EventLine]| lines.iter().map(EventLine::to_json).collect::<Vec<_>>();
    assert_eq!(json(&replayed), json(&live));

    // The second file alone starts from its snapshot: the same exec lines as live after the
    // rotation (rules' memory is not in a snapshot, so violations may repeat).
    let execs = |lines: &[EventLine]| {
        lines
            .iter()
            .map(|l| {
                let mut l = l.clone();
                l.violation = None;
                l.to_json()
            })
            .fold(Vec::<String>::new(), |mut v, l| {
                if v.last() != Some(&l) {
                    v.push(l);
                }
                v
            })
    };
    let alone = replay(&files[1..]);
    assert_eq!(execs(&alone), execs(&live[before..]));
}

#[test]
fn a_torn_tail_replays_up_to_the_cut() {
    let dir = tempfile::tempdir().unwrap();
    let (live, _) = record_run(dir.path());
    let files = capture_files(dir.path()).unwrap();
    let last = &files[1];
    let full = std::fs::read(last).unwrap();
    // Cut 20 bytes into the end record's frame and into the frame before it.
    for cut in [full.len() - 10, full.len() - 60] {
        std::fs::write(last, &full[..cut]).unwrap();
        let mut out: Vec<EventLine> = Vec::new();
        let reports = replay_files(&files, None, &mut out, &mut |_, _| {}).unwrap();
        assert!(
            matches!(reports[1].damage, Some(super::Damage::TornTail { .. })),
            "{cut}"
        );
        assert!(out.len() <= live.len());
        assert!(!out.is_empty());
    }
}
