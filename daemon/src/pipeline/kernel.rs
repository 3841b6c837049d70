//! Kernel events in: each goes to the file that handles its kind; cgroups are registered here.
use super::{Pipeline, Request, CGROUP_V2_HIERARCHY_ID};
use crate::{event::KernelEvent, output::LineSink};

impl Pipeline {
    pub(super) fn kernel(&mut self, event: KernelEvent, sink: &mut dyn LineSink) {
        self.stats.events += 1;
        *self.stats.events_by_kind.entry(event.name()).or_default() += 1;
        match event {
            KernelEvent::Exec(exec) => self.exec(exec, sink),
            KernelEvent::Fork { task, child_pid } => {
                self.state.procs.fork(task.pid, child_pid, &task.comm);
                self.state.sessions.fork(task.pid, child_pid);
            }
            KernelEvent::Exit { task, .. } => {
                self.state.procs.exit(task.pid, task.ktime_ns);
                self.session_exit(task.pid, task.ktime_ns, sink);
            }
            KernelEvent::File(file) => self.file(file, sink),
            KernelEvent::SyscallResult { task, ret } => {
                if let Some(file) = self.held.take_file(task.tid) {
                    if ret == 0 {
                        self.file_done(file, sink);
                    }
                }
            }
            KernelEvent::CgroupMkdir {
                id,
                hierarchy_id,
                path,
                ..
            } if hierarchy_id == CGROUP_V2_HIERARCHY_ID => {
                self.add_cgroup(id, &String::from_utf8_lossy(&path));
            }
            KernelEvent::CgroupRmdir {
                id, hierarchy_id, ..
            } if hierarchy_id == CGROUP_V2_HIERARCHY_ID => {
                // Whatever still waits for this cgroup goes out now, with what is known.
                self.release(sink, |held| held.cgroup_id == id);
                self.cgroup_gone(id);
                if self.state.container(id).is_some() {
                    self.requests.push(Request::ContainerCgroup {
                        cgroup_id: id,
                        present: false,
                    });
                }
                self.state.remove_cgroup(id);
            }
            KernelEvent::CgroupMkdir { .. } | KernelEvent::CgroupRmdir { .. } => {}
            KernelEvent::Net(net) => self.net(net, sink),
            KernelEvent::Dns(dns) => self.dns(dns),
        }
    }

    /// Registers a cgroup; the first cgroup of a new container asks for its metadata.
    pub(super) fn add_cgroup(&mut self, id: u64, path: &str) {
        if let Some(container) = self.state.containers.add_cgroup(id, path) {
            self.stats.metadata_requested += 1;
            self.requests.push(Request::Metadata(container));
        }
        if self.state.container(id).is_some() {
            self.requests.push(Request::ContainerCgroup {
                cgroup_id: id,
                present: true,
            });
        }
    }
}
