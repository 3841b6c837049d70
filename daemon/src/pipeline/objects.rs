//! The process and container objects of lines: read from state, made by the render layer, and
//! reused through its cache (one rendering per process image and per container metadata state).
use super::{render, Pipeline};
use crate::{
    event::Task,
    output::{ContainerJson, ProcessJson, Shared, TextFields},
    state::{MetaState, ProcEntry},
};

/// What the render layer sees of a process table entry.
pub(super) fn image_view(entry: &ProcEntry) -> render::ImageView<'_> {
    render::ImageView {
        ppid: entry.ppid,
        exe: &entry.exe,
        args: &entry.args,
        cwd: &entry.cwd,
    }
}

impl Pipeline {
    /// The process behind a non-exec event, as the process table knew it at the event's time.
    pub(super) fn process_at(
        &mut self,
        task: &Task,
        texts: &mut TextFields,
    ) -> Shared<ProcessJson> {
        let procs = &self.state.procs;
        let entry = procs.image_at(task.pid, task.ktime_ns);
        let parent_exe = entry.and_then(|e| procs.get(e.ppid)).map(|p| &*p.exe);
        let image = entry.map(|e| (e.image, image_view(e)));
        self.render.process(task, image, parent_exe, texts)
    }

    /// The container object of the container of `cgroup_id`, if it is one.
    pub(super) fn container_json(&mut self, cgroup_id: u64) -> Option<Shared<ContainerJson>> {
        let entry = self.state.container(cgroup_id)?;
        Some(self.render.container(entry.revision, || {
            let (meta, status) = match &entry.meta {
                MetaState::Known(meta) => (Some(meta), "complete"),
                MetaState::Pending => (None, "pending"),
                MetaState::Unavailable => (None, "unavailable"),
            };
            render::container(&entry.info, meta, status)
        }))
    }
}
