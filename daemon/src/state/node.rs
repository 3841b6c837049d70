//! [`NodeState`]: everything the daemon knows about the node between events, none of it rendered.
use foldhash::{HashMap, HashSet};

use super::{
    origins::PathOrigins, sessions::SessionTracker, CgroupLookup, ContainerEntry,
    ContainerRegistry, ProcessTable,
};
use crate::{
    container::image_path::PathOrigin,
    detect::paths::resolve,
    event::{ExecRecord, Task},
    net::{names::NameCache, pending::PendingQueries},
    policy::WorkloadId,
};

/// Pid namespaces of containers the node state remembers at most (forgotten with their cgroup).
pub const PID_NAMESPACES_MAX: usize = 65_536;

#[derive(Debug, Default)]
pub struct NodeState {
    pub procs: ProcessTable,
    pub containers: ContainerRegistry,
    pub sessions: SessionTracker,
    /// DNS names each container resolved, by address.
    pub names: NameCache,
    /// DNS queries each container sent that no answer matched yet.
    pub dns_queries: PendingQueries,
    /// Where container paths come from (answers of the resolver), per container.
    pub origins: PathOrigins,
    /// cgroup ids whose path was already asked for.
    pub asked_paths: HashSet<u64>,
    /// Pid namespace → a cgroup of the container that owns it, learned from the container's own
    /// processes: attributes processes that joined its namespaces without its cgroup (nsenter).
    pub pidns_container: HashMap<u32, u64>,
    /// Pid namespaces not learned because [`PID_NAMESPACES_MAX`] were known.
    pub pid_namespaces_unlearned: u64,
    /// Container cgroups whose egress the kernel enforces, and for which workload.
    pub enforced: HashMap<u64, WorkloadId>,
    /// Latest tick time (boot-time ns): file events wait for the critical lane to catch up.
    pub now_ns: u64,
}

impl NodeState {
    /// The container of a cgroup, if it is one.
    pub fn container(&self, cgroup_id: u64) -> Option<&ContainerEntry> {
        match self.containers.lookup(cgroup_id) {
            CgroupLookup::Container(entry) => Some(entry),
            _ => None,
        }
    }

    /// The container cgroup a process belongs to: by its cgroup, or, for processes that joined
    /// a container's namespaces without its cgroup (`nsenter`), by its pid namespace.
    pub fn container_cgroup(&self, exec: &ExecRecord) -> Option<u64> {
        match self.containers.lookup(exec.task.cgroup_id) {
            CgroupLookup::Container(_) => Some(exec.task.cgroup_id),
            _ if exec.pid_level > 0 => self.pidns_container.get(&exec.task.pid_ns).copied(),
            _ => None,
        }
    }

    /// The cgroup that stands for the task's container: its own, or, for a process that joined
    /// a container's namespaces from outside (nsenter), the container's.
    pub fn task_container_cgroup(&self, task: &Task) -> u64 {
        match self.containers.lookup(task.cgroup_id) {
            CgroupLookup::Container(_) => task.cgroup_id,
            _ => self
                .pidns_container
                .get(&task.pid_ns)
                .copied()
                .unwrap_or(task.cgroup_id),
        }
    }

    /// A container's own exec (not the runtime's) tells which container its pid namespace is.
    pub fn learn_pid_namespace(&mut self, exec: &ExecRecord) {
        if exec.pid_level > 0 && self.container(exec.task.cgroup_id).is_some() {
            // Bounded: past the limit a new namespace is not learned (its `kubectl exec`-style
            // entries are then attributed by cgroup alone) and counted.
            if self.pidns_container.len() >= PID_NAMESPACES_MAX
                && !self.pidns_container.contains_key(&exec.task.pid_ns)
            {
                self.pid_namespaces_unlearned += 1;
                return;
            }
            self.pidns_container
                .insert(exec.task.pid_ns, exec.task.cgroup_id);
        }
    }

    /// Whether `task` is the runtime setting its container up (runc init before `pivot_root`,
    /// a process the runtime started from the host) rather than the container's workload: in a
    /// container's cgroup, outside the container's root by the kernel's account (`outside_root`:
    /// its root is not on overlayfs; or it still has the host's mount namespace), and not a
    /// workload by lineage ([`ProcEntry::workload`](super::ProcEntry::workload)). Such a task is
    /// attributed to the container but not judged. A workload that `chroot`s out of the overlay
    /// makes the first two true, never the last.
    pub fn is_runtime_setup(&self, task: &Task, outside_root: bool, host_mnt_ns: u32) -> bool {
        self.container(task.cgroup_id).is_some()
            && is_outside(task, outside_root, host_mnt_ns)
            && !self
                .procs
                .image_at(task.pid, task.ktime_ns)
                .is_some_and(|entry| entry.workload)
    }

    /// Whether an exec makes a workload: it runs inside a container's root (by the kernel's
    /// account), or the process or its parent already was one (lineage survives `chroot`).
    /// Asked before the exec enters the table.
    pub fn exec_is_workload(&self, exec: &ExecRecord, host_mnt_ns: u32) -> bool {
        let lineage = |pid| self.procs.get(pid).is_some_and(|entry| entry.workload);
        !is_outside(&exec.task, exec.host_root, host_mnt_ns)
            || lineage(exec.task.pid)
            || lineage(exec.ppid)
    }

    /// Where `path` of the container of `cgroup_id` comes from, as far as the resolver said.
    pub fn origin(&self, cgroup_id: u64, path: &[u8]) -> PathOrigin {
        match self.container(cgroup_id) {
            Some(entry) => self.origins.get(&entry.info.id, path),
            None => PathOrigin::Unknown,
        }
    }

    /// The file `path` names in the container of `cgroup_id`: as the resolver found it inside
    /// the container's root (symlinks, `..`, `/proc/self/root` resolved as the kernel did),
    /// else its text with `.` and `..` removed.
    pub fn file_named(&self, cgroup_id: u64, path: &[u8]) -> Vec<u8> {
        self.container(cgroup_id)
            .and_then(|entry| self.origins.canonical(&entry.info.id, path))
            .map_or_else(|| resolve(b"/", path), <[u8]>::to_vec)
    }

    /// A cgroup was removed: forgets it, and its container with its last cgroup (origins, DNS
    /// names, DNS queries). Returns the container id when the container went.
    pub fn remove_cgroup(&mut self, cgroup_id: u64) -> Option<String> {
        let container_id = self.container(cgroup_id).map(|entry| entry.info.id.clone());
        self.containers.remove_cgroup(cgroup_id);
        // The pid namespaces its processes made (a container can make them in a loop).
        self.pidns_container
            .retain(|_, cgroup| *cgroup != cgroup_id);
        let container_id = container_id?;
        let gone = matches!(self.containers.lookup(cgroup_id), CgroupLookup::Unknown)
            && !self.containers.has_container(&container_id);
        if !gone {
            return None;
        }
        self.origins.forget_container(&container_id);
        self.names.forget_container(&container_id);
        self.dns_queries.forget_container(&container_id);
        Some(container_id)
    }
}

/// Outside a container's root by the kernel's account: the task's root is not on overlayfs, or
/// it still has the host's mount namespace (0: unknown).
fn is_outside(task: &Task, outside_root: bool, host_mnt_ns: u32) -> bool {
    outside_root || (host_mnt_ns != 0 && task.mnt_ns == host_mnt_ns)
}
