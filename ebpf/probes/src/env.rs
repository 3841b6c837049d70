//! Finding the login variables (`KUBERNETES_EXEC_AUDIT_ID`, `SPO_EXEC_REQUEST_UID`,
//! `SSH_CONNECTION`) in a new program's environment, wherever they are: Kubernetes pods easily
//! carry several KiB of service-link variables before them. Only login candidates pay for it.
use aya_ebpf::helpers::generated as gen;
use sealwatch_abi::DATA_MASK;

use crate::{
    kernel::scratch_data,
    maps::{ENV_SCAN, ENV_VAR},
};

/// Variables examined at most (and 255-byte chunks of long ones): 128 KiB of environment.
const ENV_STEPS: u32 = 512;
/// Bytes read per step; a longer variable is skipped chunk by chunk.
pub const ENV_CHUNK: usize = 256;
/// At most this many bytes of found variables are kept.
const ENV_OUT_MAX: u64 = 1024;

const WANTED: [&[u8]; 3] = [
    b"KUBERNETES_EXEC_AUDIT_ID=",
    b"SPO_EXEC_REQUEST_UID=",
    b"SSH_CONNECTION=",
];

/// Scan state in a per-CPU map, so the verifier checks the loop body once (see `walk_path`).
#[repr(C)]
pub struct EnvScan {
    cur: u64,
    end: u64,
    out: u64,
    out_start: u64,
    /// 1 while inside a variable longer than one chunk.
    skipping: u64,
    target: u64,
}

/// Copies the wanted variables of `[start, end)` (NUL-terminated each) into the scratch
/// record's data area of `target` at `off`; returns the bytes written.
#[inline(always)]
pub fn scan_env(target: u64, off: usize, start: u64, end: u64) -> usize {
    let Some(scan) = ENV_SCAN.get_ptr_mut(0) else {
        return 0;
    };
    // SAFETY: per-CPU slot, ours until the program returns.
    let scan = unsafe { &mut *scan };
    scan.cur = start;
    scan.end = end;
    scan.out = off as u64;
    scan.out_start = off as u64;
    scan.skipping = 0;
    scan.target = target;
    // SAFETY: `env_step` matches the callback signature and takes its state from ENV_SCAN.
    unsafe {
        gen::bpf_loop(
            ENV_STEPS,
            env_step as *mut core::ffi::c_void,
            core::ptr::null_mut(),
            0,
        );
    }
    (scan.out.wrapping_sub(scan.out_start) as usize) & (ENV_OUT_MAX as usize * 2 - 1)
}

extern "C" fn env_step(_index: u64, _ctx: *mut core::ffi::c_void) -> i64 {
    let (Some(scan), Some(var)) = (ENV_SCAN.get_ptr_mut(0), ENV_VAR.get_ptr_mut(0)) else {
        return 1;
    };
    // SAFETY: per-CPU slots, ours until the program returns.
    let (scan, var) = unsafe { (&mut *scan, &mut *var) };
    if scan.cur >= scan.end {
        return 1;
    }
    // SAFETY: reads at most ENV_CHUNK bytes into a buffer of that size.
    let n = unsafe {
        gen::bpf_probe_read_user_str(
            var.as_mut_ptr() as *mut _,
            ENV_CHUNK as u32,
            scan.cur as *const _,
        )
    };
    if n <= 0 {
        return 1;
    }
    let n = n as u64;
    let starts_a_variable = scan.skipping == 0;
    // A full chunk without its NUL inside means the variable goes on.
    if n >= ENV_CHUNK as u64 {
        scan.cur += ENV_CHUNK as u64 - 1;
        scan.skipping = 1;
    } else {
        scan.cur += n;
        scan.skipping = 0;
    }
    if !starts_a_variable || !wanted(var) || scan.out - scan.out_start + n > ENV_OUT_MAX {
        return 0;
    }
    if let Some(data) = scratch_data(scan.target) {
        // SAFETY: masked offset plus one chunk stays inside the data area.
        unsafe {
            gen::bpf_probe_read_kernel(
                data.wrapping_add(scan.out as usize & DATA_MASK) as *mut _,
                (n as u32) & (ENV_CHUNK as u32 - 1),
                var.as_ptr() as *const _,
            );
        }
        scan.out += n & (ENV_CHUNK as u64 - 1);
    }
    0
}

#[inline(always)]
fn wanted(var: &[u8; ENV_CHUNK]) -> bool {
    WANTED.iter().any(|prefix| {
        let mut i = 0;
        while i < prefix.len() {
            if var[i] != prefix[i] {
                return false;
            }
            i += 1;
        }
        true
    })
}
