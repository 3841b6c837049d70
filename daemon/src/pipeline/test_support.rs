//! Set-up shared by the pipeline's tests.
use super::{Input, Pipeline};
use crate::{
    container::ContainerMeta,
    event::{model::FileOp, FileRecord, Layer, Task},
    output::{EventLine, LineSink},
};

/// Pid 100 (a single-threaded process) in `cgroup_id`, seen at `ktime_ns`.
pub(super) fn task_100(ktime_ns: u64, cgroup_id: u64, comm: &[u8]) -> Task {
    Task {
        ktime_ns,
        pid: 100,
        tid: 100,
        cgroup_id,
        comm: comm.to_vec(),
        ..Task::default()
    }
}

/// `task` changed the file named `name` by path (`op`, relative to `/`, no result awaited):
/// every other field empty. Tests set what they need with struct update syntax.
pub(super) fn path_record(task: Task, op: FileOp, name: &[u8]) -> FileRecord {
    FileRecord {
        task,
        op,
        layer: Layer::Unknown,
        open_flags: 0,
        mode: 0,
        ino: 0,
        dev: 0,
        path: None,
        base: Some(b"/".to_vec()),
        name: name.to_vec(),
        name2: Vec::new(),
        base2: None,
        root: None,
        needs_result: false,
        path_truncated: false,
        host_task: false,
        deleted: false,
        repeats: 0,
    }
}

impl Pipeline {
    /// A test pipeline with podman container `id` ("web", `localhost/app:1`) in `cgroup`, and the
    /// lines printed so far.
    pub(super) fn with_test_container(cgroup: u64, id: &str) -> (Pipeline, Vec<EventLine>) {
        let mut p = Pipeline::new(
            super::PipelineConfig::for_tests(),
            std::sync::Arc::new(crate::policy::Policy::embedded_default()),
        );
        let mut lines = Vec::new();
        p.with_podman_container(cgroup, id, "web", "localhost/app:1", &mut lines);
        (p, lines)
    }

    /// A podman container `id` in cgroup `cgroup`, its metadata already answered.
    pub(super) fn with_podman_container(
        &mut self,
        cgroup: u64,
        id: &str,
        name: &str,
        image: &str,
        sink: &mut dyn LineSink,
    ) {
        self.handle(
            Input::CgroupSnapshot {
                cgroups: vec![(cgroup, format!("/machine.slice/libpod-{id}.scope"))],
            },
            sink,
        );
        self.handle(
            Input::Metadata {
                container_id: id.to_owned(),
                meta: Some(ContainerMeta {
                    name: Some(name.into()),
                    image: Some(image.into()),
                    pod: None,
                }),
            },
            sink,
        );
    }
}
