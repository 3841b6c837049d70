//! The kernel's copy of each lane's draining window (`DRAINING_UNTIL`): until when the reader of
//! that ring drains it on its own timer, so paced records need not wake it.
//!
//! The map is created `BPF_F_MMAPABLE` and mapped into the daemon: publishing is one store to
//! shared memory. (Through the `bpf()` syscall it cost 2-3% of the daemon's CPU in a connect
//! storm: a window is published every other drain.)
use std::{
    num::NonZeroUsize,
    os::fd::AsFd,
    ptr::NonNull,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
};

use aya::maps::{Map, MapData};
use nix::sys::mman::{mmap, munmap, MapFlags, ProtFlags};
use sealwatch_abi::lane;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum WindowError {
    #[error("DRAINING_UNTIL is not an array map")]
    NotAnArray,
    #[error("mapping DRAINING_UNTIL into memory failed (the kernel needs BPF_F_MMAPABLE, Linux 5.5): {0}")]
    Mmap(nix::Error),
    #[error("there is no lane {0}")]
    NoSuchLane(u32),
}

/// Shared by the readers of both lanes (one map, one slot per lane).
#[derive(Clone)]
pub struct DrainWindows(Arc<Mapping>);

/// The map's values, mapped into this process.
struct Mapping {
    slots: NonNull<u64>,
    bytes: NonZeroUsize,
    /// Keeps the map (and its fd) for as long as it is mapped.
    _map: MapData,
}

// SAFETY: the mapping is shared memory written only through atomics (`publish`), and unmapped
// once, when the last handle goes.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: mapped in `DrainWindows::new` with this length; no reference outlives `self`.
        // Nothing useful can be done if it fails: the process keeps the mapping.
        let _ = unsafe { munmap(self.slots.cast(), self.bytes.get()) };
    }
}

impl std::fmt::Debug for DrainWindows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DrainWindows")
    }
}

impl DrainWindows {
    pub fn new(map: Map) -> Result<Self, WindowError> {
        let Map::Array(map) = map else {
            return Err(WindowError::NotAnArray);
        };
        // The kernel maps whole pages; the slots are the first `lane::COUNT` u64s.
        let bytes = NonZeroUsize::new(page_size()).ok_or(WindowError::Mmap(nix::Error::EINVAL))?;
        // SAFETY: a fresh shared mapping of the map's fd; nothing else in this process aliases it.
        let base = unsafe {
            mmap(
                None,
                bytes,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
                map.fd().as_fd(),
                0,
            )
        }
        .map_err(WindowError::Mmap)?;
        Ok(DrainWindows(Arc::new(Mapping {
            slots: base.cast(),
            bytes,
            _map: map,
        })))
    }

    /// The reader of `lane` drains its ring at least until `until_ns` (boot time).
    pub fn publish(&self, lane: u32, until_ns: u64) -> Result<(), WindowError> {
        if lane >= lane::COUNT {
            return Err(WindowError::NoSuchLane(lane));
        }
        // SAFETY: `lane` is inside the mapping (checked above, and a page holds many more
        // slots), the slot is 8-byte aligned (page-aligned base), and every access from this
        // side is atomic. The probes read it with one aligned load.
        let slot = unsafe { AtomicU64::from_ptr(self.0.slots.as_ptr().add(lane as usize)) };
        slot.store(until_ns, Ordering::Release);
        Ok(())
    }
}

fn page_size() -> usize {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|size| usize::try_from(size).ok())
        .unwrap_or(4096)
}
