//! Everything that changes the pipeline's state, in the order it happened. A capture is a
//! recording of this stream; replaying it reproduces the live output.
use serde::{Deserialize, Serialize};

use crate::{
    container::{image_path::PathOrigin, CgroupContainer, ContainerMeta},
    event::KernelEvent,
    state::ProcSeed,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "input", rename_all = "snake_case")]
pub enum Input {
    /// A record from the kernel.
    Kernel(KernelEvent),
    /// Processes that existed at start-up.
    ProcSnapshot { procs: Vec<ProcSeed> },
    /// cgroup v2 directories (id, path) that existed at start-up.
    CgroupSnapshot { cgroups: Vec<(u64, String)> },
    /// Answer to [`Request::CgroupPath`]; None when no such cgroup exists any more.
    CgroupPath { id: u64, path: Option<String> },
    /// Answer to [`Request::Metadata`]; None when the runtime's state could not be read.
    Metadata {
        container_id: String,
        meta: Option<ContainerMeta>,
    },
    /// Answer to [`Request::PathOrigins`]: where paths of a container come from.
    PathOrigins {
        container_id: String,
        origins: Vec<(Vec<u8>, PathOrigin)>,
        /// The file each asked path names, where the text differs: resolved inside the
        /// container's root (symlinks, `..`, `/proc/self/root`), as the kernel did.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        canonical: Vec<(Vec<u8>, Vec<u8>)>,
    },
    /// Time passes (boot-time ns) and loss counters as they stand (totals since start).
    Tick { ktime_ns: u64, drops: DropCounts },
    /// Records the kernel dropped over containers' budgets: per cgroup and class, totals since
    /// the cgroup was first counted. Sent before a tick when the node-wide totals moved.
    BudgetDrops { drops: Vec<CgroupBudgetDrops> },
}

/// What one cgroup lost to its budget of one class (a total).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupBudgetDrops {
    pub cgroup_id: u64,
    pub class: BudgetClass,
    pub dropped: u64,
}

/// The kernel's budget classes (`sealwatch_abi::budget`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetClass {
    File,
    Network,
}

/// Monotonic totals of what was lost, by place.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropCounts {
    pub kernel_critical: u64,
    pub kernel_bulk: u64,
    pub decode: u64,
    /// Lines stdout dropped (its reader too slow).
    pub output: u64,
    /// Lines the file and OTLP sinks dropped (queue full, refused). Absent from captures made
    /// before sinks existed.
    #[serde(default)]
    pub output_file: u64,
    #[serde(default)]
    pub output_otlp: u64,
    /// Inputs the capture could not record (its queue full, its disk full). Absent from
    /// captures made before it was counted apart (it was in `output` then).
    #[serde(default)]
    pub capture: u64,
}

/// Lookups the pipeline needs from the outside world. Live, a resolver answers them with an
/// [`Input`]; in replay the recorded answers are already in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Fetch name, image and pod of a container from its runtime.
    Metadata(CgroupContainer),
    /// Find the path of a cgroup id that was never announced.
    CgroupPath(u64),
    /// Find where these container paths come from (image, upper layer, volume); `pid` is a
    /// process of the container, whose mount table names the layers.
    PathOrigins {
        container_id: String,
        pid: u32,
        paths: Vec<Vec<u8>>,
        /// Whether a symlink as the last component is followed (chmod, chown, truncate, an
        /// open, a script) or is itself the file (unlink, rename, create).
        follow_last: bool,
    },
    /// Tell the kernel that this cgroup is (`true`) or is no longer (`false`) a container's:
    /// its tasks stay the container's when their root leaves the overlay (`chroot`). Nothing
    /// comes back; replay ignores it.
    ContainerCgroup { cgroup_id: u64, present: bool },
    /// Change what the kernel enforces (network `action: block`). Not a lookup: nothing comes
    /// back, and replay ignores it like every request.
    Enforce(Enforce),
}

/// In-kernel egress enforcement the pipeline asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enforce {
    /// Enforce `workload`'s egress allowlist on this container cgroup (attach the hooks), or stop
    /// enforcing it (`None`: detach).
    Cgroup {
        cgroup_id: u64,
        /// Path below the cgroup v2 mount (empty when the cgroup is gone).
        path: String,
        workload: Option<crate::policy::WorkloadId>,
    },
    /// A DNS answer mapped a name the blocking `workload` allows to `addr`; `names` are all the
    /// names the container has learned for `addr` (their entries' ports all apply).
    Address {
        workload: crate::policy::WorkloadId,
        names: Vec<String>,
        addr: std::net::IpAddr,
        ttl_secs: u32,
    },
}
