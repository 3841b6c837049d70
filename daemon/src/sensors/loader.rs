//! Loading the embedded kernel object, handing it this kernel's offsets, attaching every program
//! of the sensor registry (`families`, walked by `attach`), taking the maps the daemon reads.
//! Dropping [`Sensors`] detaches everything.
use aya::{
    maps::{Array, HashMap, Map, MapData, MapError, PerCpuArray, RingBuf},
    programs::ProgramError,
    Btf, BtfError, Ebpf, EbpfError, EbpfLoader,
};
use sealwatch_abi::{
    budget, interpreter_key, lane, names, BudgetKey, BudgetUse, Config, Settings, ABI_VERSION,
    INTERPRETER_NAME_LEN,
};
use thiserror::Error;

use crate::input::{BudgetClass, CgroupBudgetDrops};

use super::{
    attach,
    drain_window::{DrainWindows, WindowError},
    enforce::{AllowPrefix, EnforceError, Enforcement},
    offsets, preflight,
};

/// The kernel object built by `build.rs` (empty when built with `AYA_BUILD_SKIP=1`).
pub(crate) static PROBES: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/sealwatch-probes"));

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
    /// A required cgroup hook (none is today: see `families`).
    #[error("sensor {sensor}: program {program} failed: {reason}")]
    Hook {
        sensor: &'static str,
        program: &'static str,
        reason: String,
    },
    #[error("the kernel object has no {0} (stale build?)")]
    Missing(&'static str),
    #[error(transparent)]
    DrainWindows(#[from] WindowError),
    #[error("map {name}: {source}")]
    Map {
        name: &'static str,
        #[source]
        source: MapError,
    },
}

#[derive(Debug, Clone, Copy)]
pub struct LoadOptions {
    pub ring_critical_bytes: u32,
    pub ring_bulk_bytes: u32,
    /// At most one forced ring wake-up per CPU per this many nanoseconds for paced records
    /// (exec, file, connect); 0 forces one for every record.
    pub wakeup_pace_ns: u64,
    /// Records a cgroup may send per `budget::WINDOW_NS`, per class (0: no limit).
    pub budgets: [u32; budget::COUNT as usize],
}

pub struct Sensors {
    /// Owns the programs and their links: dropping it detaches them.
    ebpf: Ebpf,
    /// None when the enforcement hooks did not load (blocking unavailable).
    enforcement: Option<Enforcement>,
    rings: Vec<(u32, RingBuf<MapData>)>,
    drops: PerCpuArray<MapData, u64>,
    budgets: HashMap<MapData, BudgetKey, BudgetUse>,
    settings: Array<MapData, Settings>,
    container_cgroups: HashMap<MapData, u64, u8>,
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
            offsets: overlay_checked(offsets::resolve(std::path::Path::new(
                offsets::VMLINUX_BTF,
            ))?),
            wakeup_pace_ns: options.wakeup_pace_ns,
            budgets: options.budgets,
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
        attach::check_present(&ebpf)?;
        mark_interpreters(&mut ebpf)?;
        let mut attach_failures = Vec::new();
        attach::tp_btf(&mut ebpf, &btf, &mut attach_failures)?;
        // The BTF is done with: freed before the rings are mapped, so the two never add up.
        drop(loader);
        drop(btf);
        crate::memory::release_free_heap();
        preflight::ensure_tracefs()?;
        attach::tracepoints(&mut ebpf, &mut attach_failures)?;
        attach::root_cgroup_skb(&mut ebpf, &mut attach_failures)?;
        let enforcement = attach::enforcement(&mut ebpf, &mut attach_failures)?;
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
        let drops = take_map(&mut ebpf, names::DROPS)?;
        let budgets = take_map(&mut ebpf, names::BUDGETS)?;
        let settings = take_map(&mut ebpf, names::SETTINGS)?;
        let container_cgroups = take_map(&mut ebpf, names::CONTAINER_CGROUPS)?;
        let map = ebpf
            .take_map(names::DRAINING_UNTIL)
            .ok_or(SensorError::Missing(names::DRAINING_UNTIL))?;
        let drain_windows = DrainWindows::new(map)?;
        Ok(Sensors {
            ebpf,
            enforcement,
            rings,
            drops,
            budgets,
            settings,
            container_cgroups,
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

    /// Marks a cgroup as a container's (`present`), or forgets it. A full map leaves the
    /// cgroup unmarked: its processes are judged while their root is the overlay, not after a
    /// `chroot` (the error says so).
    pub fn mark_container_cgroup(
        &mut self,
        cgroup_id: u64,
        present: bool,
    ) -> Result<(), SensorError> {
        let name = names::CONTAINER_CGROUPS;
        let result = if present {
            self.container_cgroups.insert(cgroup_id, 1, 0)
        } else {
            match self.container_cgroups.remove(&cgroup_id) {
                Err(MapError::KeyNotFound) => Ok(()),
                other => other,
            }
        };
        result.map_err(|source| SensorError::Map { name, source })
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
    /// Records dropped over containers' budgets since start, node-wide, per class.
    pub fn budget_drop_totals(&self) -> [u64; budget::COUNT as usize] {
        let mut totals = [0u64; budget::COUNT as usize];
        for (class, total) in totals.iter_mut().enumerate() {
            if let Ok(values) = self.drops.get(&(budget::DROP_SLOT + class as u32), 0) {
                *total = values.iter().sum();
            }
        }
        totals
    }

    /// Per cgroup and class, the records dropped over its budget (totals, for the cgroups the
    /// kernel holds an entry for). One look-up per entry: called only when the totals moved.
    pub fn budget_drops(&self) -> Vec<CgroupBudgetDrops> {
        self.budgets
            .iter()
            .filter_map(Result::ok)
            .filter(|(_, used)| used.dropped > 0)
            .map(|(key, used)| CgroupBudgetDrops {
                cgroup_id: key.cgroup_id,
                class: if key.class == budget::BULK {
                    BudgetClass::File
                } else {
                    BudgetClass::Network
                },
                dropped: used.dropped,
            })
            .collect()
    }

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

/// Says at start-up, once, what degrades when the kernel cannot read overlayfs's layout.
fn overlay_checked(offsets: sealwatch_abi::KernelOffsets) -> sealwatch_abi::KernelOffsets {
    if offsets.has_ovl == 0 {
        tracing::warn!("{}", offsets::OVERLAY_DEGRADED);
    }
    if offsets.has_io_uring == 0 {
        tracing::warn!("{}", offsets::IO_URING_DEGRADED);
    } else if offsets.io_fixed_layout == sealwatch_abi::io_fixed_layout::NONE {
        tracing::warn!("{}", offsets::IO_FIXED_FILES_DEGRADED);
    }
    offsets
}

/// Takes map `name` out of the object as its typed handle.
fn take_map<T>(ebpf: &mut Ebpf, name: &'static str) -> Result<T, SensorError>
where
    T: TryFrom<Map, Error = MapError>,
{
    let map = ebpf.take_map(name).ok_or(SensorError::Missing(name))?;
    T::try_from(map).map_err(|source| SensorError::Map { name, source })
}

/// Fills the map of interpreter names the exec program checks (before any program is attached,
/// so that no interpreter starts unmarked).
fn mark_interpreters(ebpf: &mut Ebpf) -> Result<(), SensorError> {
    let name = names::INTERPRETERS;
    let map = ebpf.map_mut(name).ok_or(SensorError::Missing(name))?;
    let mut interpreters: HashMap<_, [u8; INTERPRETER_NAME_LEN], u8> =
        HashMap::try_from(map).map_err(|source| SensorError::Map { name, source })?;
    for interpreter in crate::detect::scripts::kernel_names() {
        let mut key = [0u8; INTERPRETER_NAME_LEN];
        let bytes = interpreter.as_bytes();
        let n = bytes.len().min(INTERPRETER_NAME_LEN - 1);
        key[..n].copy_from_slice(&bytes[..n]);
        interpreter_key(&mut key);
        interpreters
            .insert(key, 1, 0)
            .map_err(|source| SensorError::Map { name, source })?;
    }
    Ok(())
}
