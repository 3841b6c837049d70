//! sealwatch kernel programs. One file per hook family; every entry function is a thin wrapper
//! around a `try_` function so that errors (a failed kernel read) end the program quietly instead
//! of reporting half-filled records.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]
// The BPF target has no `AtomicU64::fetch_add` (core offers atomic loads and stores only there),
// while the kernel has atomic adds: the intrinsic reaches them (see `file::fold_repeat`).
#![cfg_attr(target_arch = "bpf", feature(core_intrinsics))]
#![cfg_attr(
    target_arch = "bpf",
    expect(internal_features, reason = "atomic_xadd, see above")
)]

/// Ties a program to its name in `sealwatch_abi::programs`: the aya macros name a program after
/// its function, and the daemon finds it by that constant, so the two must be equal. Checked at
/// compile time, next to each program.
#[cfg(target_arch = "bpf")]
macro_rules! abi_name {
    ($function:ident, $name:expr) => {
        const _: () = assert!(
            sealwatch_abi::programs::same_name(stringify!($function), $name),
            concat!(
                "program `",
                stringify!($function),
                "` is not named as in sealwatch_abi::programs"
            )
        );
    };
}

#[cfg(target_arch = "bpf")]
mod block;
#[cfg(target_arch = "bpf")]
mod budget;
#[cfg(target_arch = "bpf")]
mod cgroup;
#[cfg(target_arch = "bpf")]
mod dns;
#[cfg(target_arch = "bpf")]
mod emit;
#[cfg(target_arch = "bpf")]
mod env;
#[cfg(target_arch = "bpf")]
mod file;
#[cfg(target_arch = "bpf")]
mod interp;
#[cfg(target_arch = "bpf")]
mod kernel;
#[cfg(target_arch = "bpf")]
mod maps;
#[cfg(target_arch = "bpf")]
mod net;
#[cfg(target_arch = "bpf")]
mod process;
#[cfg(target_arch = "bpf")]
mod syscall;
#[cfg(target_arch = "bpf")]
mod uring;

#[cfg(target_arch = "bpf")]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // An endless loop, not `unreachable_unchecked`: if a panic path were reachable, that would be
    // undefined behaviour the optimiser may turn into anything (falling into the next function);
    // a loop the verifier sees as unbounded instead makes it reject the program at load time.
    loop {}
}

/// The kernel programs only exist for the BPF target; a host build (e.g. `cargo check
/// --workspace`) produces this empty binary.
#[cfg(not(target_arch = "bpf"))]
fn main() {}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
#[cfg(target_arch = "bpf")]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
