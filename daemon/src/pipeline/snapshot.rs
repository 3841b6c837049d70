//! [`Pipeline::snapshot`]: the pipeline's state as inputs, so a fresh pipeline fed with them
//! knows what this one knows. Every capture file after the first starts with one, which makes each
//! file replayable on its own.
//!
//! Not in a snapshot, by design: events still held (they are inputs of the previous file), file
//! records waiting for their syscall's result, rules' memory (e.g. which containers already
//! reported running as root), and the exit time of processes within their grace period (they come
//! back as running).
use super::{DropCounts, Input, Pipeline};
use crate::state::ProcSeed;

impl Pipeline {
    /// Inputs that rebuild the current state in a fresh pipeline. Lines a fresh pipeline prints
    /// while taking them in belong to the past and should be discarded.
    pub fn snapshot(&self) -> Vec<Input> {
        let mut procs: Vec<ProcSeed> = self
            .state
            .procs
            .iter()
            .map(|(pid, entry)| ProcSeed {
                pid,
                ppid: entry.ppid,
                exe: entry.exe.to_vec(),
                comm: entry.comm.clone(),
                args: entry.args.to_vec(),
                cwd: entry.cwd.to_vec(),
                workload: entry.workload,
            })
            .collect();
        procs.sort_by_key(|p| p.pid);
        let registry = self.state.containers.snapshot();
        let mut inputs = vec![
            Input::ProcSnapshot { procs },
            Input::CgroupSnapshot {
                cgroups: registry.cgroups,
            },
        ];
        inputs.extend(
            registry
                .host_without_path
                .into_iter()
                .map(|id| Input::CgroupPath { id, path: None }),
        );
        inputs.extend(
            registry
                .metadata
                .into_iter()
                .map(|(container_id, meta)| Input::Metadata { container_id, meta }),
        );
        inputs.extend(self.state.origins.sorted().into_iter().map(
            |(container_id, origins, canonical)| Input::PathOrigins {
                container_id,
                origins,
                canonical,
            },
        ));
        // Loss totals so far: the next tick reports only what is new, as it did live. Time 0
        // sweeps and releases nothing.
        if self.last_drops != DropCounts::default() {
            inputs.push(Input::Tick {
                ktime_ns: 0,
                drops: self.last_drops,
            });
        }
        inputs
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{
        container::ContainerMeta, output::EventLine, pipeline::PipelineConfig, policy::Policy,
    };

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn pipeline() -> Pipeline {
        let config = PipelineConfig {
            node: "n".into(),
            clock: crate::clock::BootClock { boot_to_unix_ns: 0 },
            hold_ns: 1_000_000_000,
            host_mnt_ns: 1,
            net_env: crate::policy::NetEnvironment::default(),
        };
        Pipeline::new(config, Arc::new(Policy::embedded_default()))
    }

    fn state_inputs() -> Vec<Input> {
        vec![
            Input::ProcSnapshot {
                procs: vec![ProcSeed {
                    pid: 10,
                    ppid: 1,
                    exe: b"/bin/sh".to_vec(),
                    comm: b"sh".to_vec(),
                    args: vec![b"sh".to_vec()],
                    cwd: b"/".to_vec(),
                    workload: false,
                }],
            },
            Input::CgroupSnapshot {
                cgroups: vec![
                    (4, "/system.slice/ssh.service".into()),
                    (5, format!("/libpod_parent/libpod-{ID}")),
                    (6, format!("/machine.slice/libpod-{ID}.scope/container")),
                ],
            },
            Input::CgroupPath { id: 7, path: None },
            Input::Metadata {
                container_id: ID.into(),
                meta: Some(ContainerMeta {
                    name: Some("web".into()),
                    ..ContainerMeta::default()
                }),
            },
            Input::Tick {
                ktime_ns: 5,
                drops: DropCounts {
                    kernel_bulk: 3,
                    ..DropCounts::default()
                },
            },
        ]
    }

    #[test]
    fn a_fresh_pipeline_fed_the_snapshot_has_the_same_snapshot() {
        let mut live = pipeline();
        let mut lines: Vec<EventLine> = Vec::new();
        for input in state_inputs() {
            live.handle(input, &mut lines);
        }
        let snapshot = live.snapshot();
        assert!(snapshot
            .iter()
            .any(|i| matches!(i, Input::CgroupPath { id: 7, path: None })));
        let mut fresh = pipeline();
        for input in snapshot.clone() {
            fresh.handle(input, &mut Vec::<EventLine>::new());
        }
        assert_eq!(fresh.snapshot(), snapshot);
        assert_eq!(fresh.container_count(), live.container_count());
        assert_eq!(fresh.process_count(), live.process_count());
        // The loss baseline came along: the same next tick reports the same loss line.
        let tick = Input::Tick {
            ktime_ns: 10,
            drops: DropCounts {
                kernel_bulk: 4,
                ..DropCounts::default()
            },
        };
        let (mut a, mut b): (Vec<EventLine>, Vec<EventLine>) = (Vec::new(), Vec::new());
        live.handle(tick.clone(), &mut a);
        fresh.handle(tick, &mut b);
        assert_eq!(a, b);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].loss.as_ref().map(|l| l.kernel_bulk), Some(1));
    }
}
