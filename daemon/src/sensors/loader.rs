//! Loading the embedded kernel object, handing it this kernel's offsets, attaching every program.
//! Dropping [`Sensors`] detaches everything.
use aya::{
    maps::{Array, MapData, PerCpuArray, RingBuf},
    programs::{
        BtfTracePoint, CgroupAttachMode, CgroupSkb, CgroupSkbAttachType, ProgramError, TracePoint,
    },
    Btf, BtfError, Ebpf, EbpfError, EbpfLoader,
};
use sealwatch_abi::{lane, names, Config, Settings, ABI_VERSION};
use thiserror::Error;

use super::{
    drain_window::{DrainWindows, WindowError},
    enforce::{AllowPrefix, EnforceError, Enforcement},
    offsets, preflight,
};

/// The kernel object built by `build.rs` (empty when built with `AYA_BUILD_SKIP=1`).
static PROBES: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/sealwatch-probes"));

/// (program, tracepoint, sensor): the sensor name is what logs and metrics call it.
const PROGRAMS: &[(&str, &str, &str)] = &[
    ("sched_process_exec", "sched_process_exec", "process"),
    ("sched_process_fork", "sched_process_fork", "process"),
    ("sched_process_exit", "sched_process_exit", "process"),
    ("cgroup_mkdir", "cgroup_mkdir", "container"),
    ("cgroup_rmdir", "cgroup_rmdir", "container"),
];

/// Syscall tracepoints of the file sensor (program name = tracepoint name). Each is optional: a
/// kernel without one (fchmodat2 is Linux 6.6+) loses only that syscall, and the daemon says so.
const FILE_TRACEPOINTS: &[&str] = &[
    "sys_exit_openat",
    "sys_exit_openat2",
    "sys_exit_open",
    "sys_exit_creat",
    "sys_enter_fchmod",
    "sys_enter_fchown",
    "sys_enter_ftruncate",
    "sys_enter_unlinkat",
    "sys_exit_unlinkat",
    "sys_enter_unlink",
    "sys_exit_unlink",
    "sys_enter_rmdir",
    "sys_exit_rmdir",
    "sys_enter_renameat2",
    "sys_exit_renameat2",
    "sys_enter_renameat",
    "sys_exit_renameat",
    "sys_enter_rename",
    "sys_exit_rename",
    "sys_enter_fchmodat",
    "sys_exit_fchmodat",
    "sys_enter_fchmodat2",
    "sys_exit_fchmodat2",
    "sys_enter_chmod",
    "sys_exit_chmod",
    "sys_enter_fchownat",
    "sys_exit_fchownat",
    "sys_enter_chown",
    "sys_exit_chown",
    "sys_enter_lchown",
    "sys_exit_lchown",
    "sys_enter_truncate",
    "sys_exit_truncate",
];

/// Syscall tracepoints of the network sensor (program name = tracepoint name), optional like the
/// file sensor's.
const NET_TRACEPOINTS: &[&str] = &[
    "sys_enter_connect",
    "sys_exit_connect",
    "sys_enter_bind",
    "sys_exit_bind",
    "sys_exit_accept",
    "sys_exit_accept4",
    "sys_enter_listen",
    "sys_exit_listen",
    "sys_enter_sendto",
    "sys_exit_sendto",
    "sys_enter_sendmsg",
    "sys_exit_sendmsg",
    "sys_enter_recvfrom",
    "sys_exit_recvfrom",
    "sys_enter_recvmsg",
    "sys_exit_recvmsg",
];

/// A program that could not be attached; the sensor runs degraded.
#[derive(Debug, Clone)]
pub struct AttachFailure {
    pub sensor: &'static str,
    pub program: &'static str,
    pub error: String,
}

#[derive(Debug, Error)]
pub enum SensorError {
    #[error("this sealwatch binary was built with AYA_BUILD_SKIP=1 and carries no kernel programs: rebuild without it")]
    NotEmbedded,
    #[error(transparent)]
    Preflight(#[from] preflight::PreflightError),
    #[error(transparent)]
    Offsets(#[from] offsets::OffsetError),
    #[error("loading the kernel object failed: {0}")]
    Load(#[from] Box<EbpfError>),
    #[error("reading kernel BTF for tp_btf programs failed: {0}")]
    Btf(#[from] BtfError),
    #[error("sensor {sensor}: program {program} failed to {step}: {source}")]
    Program {
        sensor: &'static str,
        program: &'static str,
        step: &'static str,
        #[source]
        source: Box<ProgramError>,
    },
    #[error("the kernel object has no {0} (stale build?)")]
    Missing(&'static str),
    #[error(transparent)]
    DrainWindows(#[from] WindowError),
    #[error("map {name}: {source}")]
    Map {
        name: &'static str,
        #[source]
        source: aya::maps::MapError,
    },
}

#[derive(Debug, Clone, Copy)]
pub struct LoadOptions {
    pub ring_critical_bytes: u32,
    pub ring_bulk_bytes: u32,
    /// At most one forced ring wake-up per CPU per this many nanoseconds for paced records
    /// (exec, file, connect); 0 forces one for every record.
    pub wakeup_pace_ns: u64,
}

pub struct Sensors {
    /// Owns the programs and their links: dropping it detaches them.
    ebpf: Ebpf,
    /// None when the enforcement hooks did not load (blocking unavailable).
    enforcement: Option<Enforcement>,
    rings: Vec<(u32, RingBuf<MapData>)>,
    drops: PerCpuArray<MapData, u64>,
    settings: Array<MapData, Settings>,
    drain_windows: DrainWindows,
    attach_failures: Vec<AttachFailure>,
}

impl Sensors {
    pub fn load(options: LoadOptions) -> Result<Sensors, SensorError> {
        if PROBES.is_empty() {
            return Err(SensorError::NotEmbedded);
        }
        preflight::check()?;
        raise_memlock();
        let config = Config {
            abi_version: ABI_VERSION,
            self_tgid: std::process::id(),
            offsets: offsets::resolve(std::path::Path::new(offsets::VMLINUX_BTF))?,
            wakeup_pace_ns: options.wakeup_pace_ns,
        };
        // One parse of vmlinux BTF for relocations and tp_btf alike: `EbpfLoader::new()` parses
        // its own copy, dropped here before ours is made (two copies were most of the start-up
        // peak of memory).
        let mut loader = EbpfLoader::new();
        loader.btf(None);
        let btf = Btf::from_sys_fs()?;
        let mut ebpf = loader
            .btf(Some(&btf))
            .override_global(names::CONFIG, &config, true)
            .map_max_entries(names::RING_CRITICAL, options.ring_critical_bytes)
            .map_max_entries(names::RING_BULK, options.ring_bulk_bytes)
            .load(PROBES)
            .map_err(Box::new)?;
        for &(program, tracepoint, sensor) in PROGRAMS {
            let fail = |step, source| SensorError::Program {
                sensor,
                program,
                step,
                source: Box::new(source),
            };
            let prog: &mut BtfTracePoint = ebpf
                .program_mut(program)
                .ok_or(SensorError::Missing(program))?
                .try_into()
                .map_err(|e| fail("load", e))?;
            prog.load(tracepoint, &btf).map_err(|e| fail("load", e))?;
            prog.attach().map_err(|e| fail("attach", e))?;
            tracing::debug!(sensor, program, "attached");
        }
        // The BTF is done with: freed before the rings are mapped, so the two never add up.
        drop(loader);
        drop(btf);
        crate::memory::release_free_heap();
        preflight::ensure_tracefs()?;
        let mut attach_failures = Vec::new();
        let tracepoints = FILE_TRACEPOINTS
            .iter()
            .map(|p| ("file", *p))
            .chain(NET_TRACEPOINTS.iter().map(|p| ("network", *p)));
        for (sensor, program) in tracepoints {
            let attached = (|| -> Result<(), ProgramError> {
                let prog: &mut TracePoint = ebpf
                    .program_mut(program)
                    .ok_or(ProgramError::NotLoaded)?
                    .try_into()?;
                prog.load()?;
                prog.attach("syscalls", program)?;
                Ok(())
            })();
            if let Err(err) = attached {
                tracing::warn!(
                    sensor,
                    program,
                    error = %err,
                    "syscall tracepoint not attached: this syscall is not watched"
                );
                attach_failures.push(AttachFailure {
                    sensor,
                    program,
                    error: err.to_string(),
                });
            }
        }
        if let Err(err) = attach_dns_answers(&mut ebpf) {
            tracing::warn!(%err, "DNS answers over UDP are not seen: name-based network allow entries match only TCP-resolved names");
            attach_failures.push(AttachFailure {
                sensor: "network",
                program: "dns_answers",
                error: err,
            });
        }
        let enforcement = match Enforcement::load(&mut ebpf) {
            Ok(enforcement) => Some(enforcement),
            Err(err) => {
                tracing::warn!(%err, "network `action: block` cannot be enforced; connections are still judged and reported");
                attach_failures.push(AttachFailure {
                    sensor: "enforce",
                    program: "cgroup_sock_addr",
                    error: err.to_string(),
                });
                None
            }
        };
        let mut rings = Vec::new();
        for (lane_id, name) in [
            (lane::CRITICAL, names::RING_CRITICAL),
            (lane::BULK, names::RING_BULK),
        ] {
            let map = ebpf.take_map(name).ok_or(SensorError::Missing(name))?;
            let ring =
                RingBuf::try_from(map).map_err(|source| SensorError::Map { name, source })?;
            rings.push((lane_id, ring));
        }
        let map = ebpf
            .take_map(names::DROPS)
            .ok_or(SensorError::Missing(names::DROPS))?;
        let drops = PerCpuArray::try_from(map).map_err(|source| SensorError::Map {
            name: names::DROPS,
            source,
        })?;
        let map = ebpf
            .take_map(names::SETTINGS)
            .ok_or(SensorError::Missing(names::SETTINGS))?;
        let settings = Array::try_from(map).map_err(|source| SensorError::Map {
            name: names::SETTINGS,
            source,
        })?;
        let map = ebpf
            .take_map(names::DRAINING_UNTIL)
            .ok_or(SensorError::Missing(names::DRAINING_UNTIL))?;
        let drain_windows = DrainWindows::new(map)?;
        Ok(Sensors {
            ebpf,
            enforcement,
            rings,
            drops,
            settings,
            drain_windows,
            attach_failures,
        })
    }

    /// Programs that could not be attached (the daemon runs without them).
    pub fn attach_failures(&self) -> &[AttachFailure] {
        &self.attach_failures
    }

    /// Turns reporting of host (non-container) file writes on or off (`host-file-modified`).
    pub fn set_host_watch(&mut self, enabled: bool) -> Result<(), SensorError> {
        let value = Settings {
            host_watch: u32::from(enabled),
            _pad: 0,
        };
        self.settings
            .set(0, value, 0)
            .map_err(|source| SensorError::Map {
                name: names::SETTINGS,
                source,
            })
    }

    /// Enforces workload `key`'s egress allowlist on the cgroup at `dir`.
    pub fn enforce_cgroup(
        &mut self,
        cgroup_id: u64,
        dir: &std::path::Path,
        key: u32,
    ) -> Result<(), EnforceError> {
        let Some(enforcement) = self.enforcement.as_mut() else {
            return Err(EnforceError::Unavailable(
                "the hooks did not load at start-up".to_owned(),
            ));
        };
        enforcement.attach(&mut self.ebpf, cgroup_id, dir, key)
    }

    /// Stops enforcing a cgroup.
    pub fn release_cgroup(&mut self, cgroup_id: u64) {
        if let Some(enforcement) = self.enforcement.as_mut() {
            enforcement.detach(&mut self.ebpf, cgroup_id);
        }
    }

    /// Replaces workload `key`'s allowlist (`add_only`: add these prefixes to it instead).
    pub fn set_allowlist(
        &mut self,
        key: u32,
        prefixes: &[AllowPrefix],
        add_only: bool,
    ) -> Result<(), EnforceError> {
        let Some(enforcement) = self.enforcement.as_mut() else {
            return Err(EnforceError::Unavailable(
                "the hooks did not load at start-up".to_owned(),
            ));
        };
        if add_only {
            prefixes.iter().try_for_each(|p| enforcement.insert(key, p))
        } else {
            enforcement.set_allowlist(key, prefixes)
        }
    }

    /// Removes one prefix from workload `key`'s allowlist (a learned address expired).
    pub fn remove_allowed(&mut self, key: u32, addr: std::net::Ipv6Addr, prefix_len: u8) {
        if let Some(enforcement) = self.enforcement.as_mut() {
            enforcement.remove(key, addr, prefix_len);
        }
    }

    /// Empties every allowlist (policy change).
    pub fn clear_allowlists(&mut self) {
        if let Some(enforcement) = self.enforcement.as_mut() {
            enforcement.clear_allowlists();
        }
    }

    /// Container cgroups whose egress is enforced now.
    pub fn enforced_cgroups(&self) -> usize {
        self.enforcement.as_ref().map_or(0, Enforcement::enforced)
    }

    /// Hands the ring buffers to their readers (once).
    pub fn take_rings(&mut self) -> Vec<(u32, RingBuf<MapData>)> {
        std::mem::take(&mut self.rings)
    }

    /// Where the readers tell the kernel how long they drain on their own.
    pub fn drain_windows(&self) -> DrainWindows {
        self.drain_windows.clone()
    }

    /// Records dropped in the kernel so far, per lane (summed over CPUs).
    pub fn kernel_drops(&self) -> [u64; lane::COUNT as usize] {
        let mut totals = [0u64; lane::COUNT as usize];
        for (lane_id, total) in totals.iter_mut().enumerate() {
            if let Ok(values) = self.drops.get(&(lane_id as u32), 0) {
                *total = values.iter().sum();
            }
        }
        totals
    }
}

/// The DNS-answer reader on the root of the cgroup v2 tree: it sees the datagrams of every
/// container's sockets.
fn attach_dns_answers(ebpf: &mut Ebpf) -> Result<(), String> {
    let root = crate::container::cgroup2_mount().map_err(|e| e.to_string())?;
    let cgroup =
        std::fs::File::open(&root).map_err(|e| format!("opening {}: {e}", root.display()))?;
    let program: &mut CgroupSkb = ebpf
        .program_mut("dns_answers")
        .ok_or("the object has no dns_answers program")?
        .try_into()
        .map_err(|e: ProgramError| e.to_string())?;
    program.load().map_err(|e| e.to_string())?;
    // Through a BPF link the kernel attaches as ALLOW_MULTI and refuses any flag (see enforce).
    program
        .attach(
            &cgroup,
            CgroupSkbAttachType::Ingress,
            CgroupAttachMode::Single,
        )
        .map_err(|e| format!("attaching to {}: {e}", root.display()))?;
    Ok(())
}

/// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK; newer ones use memcg and ignore it.
/// Raising it may be refused (no CAP_SYS_RESOURCE): that only matters on old kernels, so warn.
fn raise_memlock() {
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit with a valid struct pointer.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) } != 0 {
        tracing::debug!(
            error = %std::io::Error::last_os_error(),
            "could not raise RLIMIT_MEMLOCK; fine on Linux 5.11+ (BPF memory is charged to memcg)"
        );
    }
}
