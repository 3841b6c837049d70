//! Getting records into the ring buffers, and counting every one that does not fit.
use aya_ebpf::maps::RingBuf;
use sealwatch_abi::lane;

use crate::maps::{config, DROPS, EVENTS_BULK, EVENTS_CRITICAL};

#[inline(always)]
pub fn ring(lane_id: u32) -> &'static RingBuf {
    if lane_id == lane::CRITICAL {
        &EVENTS_CRITICAL
    } else {
        &EVENTS_BULK
    }
}

/// Counts one lost record on `lane_id`; the daemon reports these as loss events and metrics.
#[inline(always)]
pub fn count_drop(lane_id: u32) {
    if let Some(counter) = DROPS.get_ptr_mut(lane_id) {
        // SAFETY: per-CPU slot, programs do not preempt each other on one CPU.
        unsafe { *counter += 1 };
    }
}

/// `BPF_RB_NO_WAKEUP`: the record waits for the next wake-up (another record's, or the reader's
/// timer).
pub const NO_WAKEUP: u64 = 1;
/// `BPF_RB_FORCE_WAKEUP`: wake the reader now. (The kernel's default wakes only when the reader
/// has consumed everything before the record, which the un-woken fork/exit records prevent.)
pub const WAKEUP: u64 = 2;

/// [`NO_WAKEUP`] while the daemon drains `lane_id` on its own timer (`DRAINING_UNTIL`) or when
/// this CPU forced a wake-up less than `CONFIG.wakeup_pace_ns` ago; [`WAKEUP`] otherwise.
///
/// A forced wake-up is paid by the traced task (an IPI, costly in a VM:
/// [`sealwatch_abi::WAKEUP_PACE_NS_DEFAULT`]). So an isolated event wakes the daemon at once;
/// then, while records keep coming, the daemon drains the ring every pace (`--wakeup-pace-us`,
/// default 5 ms) on a timer of its own and publishes until when it will, and the kernel stops
/// waking it. Between windows a CPU forces at most one wake-up per pace. A pace of 0 forces a
/// wake-up for every record (the daemon then publishes no window): an IPI or two per record.
#[inline(always)]
pub fn paced_wakeup(lane_id: u32) -> u64 {
    // SAFETY: plain helper without arguments.
    let now = unsafe { aya_ebpf::helpers::bpf_ktime_get_boot_ns() };
    if crate::maps::DRAINING_UNTIL
        .get(lane_id)
        .is_some_and(|until| now < *until)
    {
        return NO_WAKEUP;
    }
    let pace = config!(wakeup_pace_ns);
    match crate::maps::LAST_WAKEUP.get_ptr_mut(0) {
        // SAFETY: per-CPU slot, programs do not preempt each other on one CPU.
        Some(last) => unsafe {
            if now.wrapping_sub(*last) < pace {
                NO_WAKEUP
            } else {
                *last = now;
                WAKEUP
            }
        },
        None => WAKEUP,
    }
}

/// Reserves a fixed-size record, fills it with `fill` and submits it; a full ring counts a drop.
/// `fill` returning `Err` discards the record (a kernel read failed: no half-filled records).
/// `wakeup` is [`WAKEUP`] or [`NO_WAKEUP`]: fork and exit records need not wake the reader, which
/// saves most of the daemon's wake-ups (and CPU) per process.
#[inline(always)]
pub fn submit<T: 'static>(lane_id: u32, wakeup: u64, fill: impl FnOnce(&mut T) -> Result<(), i64>) {
    let Some(mut entry) = ring(lane_id).reserve::<T>(0) else {
        count_drop(lane_id);
        return;
    };
    // SAFETY: the record types are plain #[repr(C)] integers: zeroed memory is a valid value, and
    // zeroing first means padding never leaks kernel memory to userspace.
    let record = unsafe {
        core::ptr::write_bytes(entry.as_mut_ptr(), 0, 1);
        &mut *entry.as_mut_ptr()
    };
    match fill(record) {
        Ok(()) => entry.submit(wakeup),
        Err(_) => entry.discard(NO_WAKEUP),
    }
}

/// Copies the first `len` bytes of a scratch record into the ring (variable-size records).
/// `wakeup` as for [`submit`].
#[inline(always)]
pub fn output_bytes(lane_id: u32, wakeup: u64, data: *const u8, len: usize) {
    // SAFETY: `data` points into a map value of at least `len` bytes (callers clamp `len`).
    let bytes = unsafe { core::slice::from_raw_parts(data, len) };
    if ring(lane_id).output::<[u8]>(bytes, wakeup).is_err() {
        count_drop(lane_id);
    }
}
