//! Keeping the daemon's resident memory to what it uses. Start-up is the heaviest moment: vmlinux
//! BTF is parsed twice (btf-rs for the struct offsets, then aya to load the programs) and /proc is
//! scanned, tens of MiB of short-lived heap that glibc keeps unless told otherwise.

/// All threads allocate from glibc's main heap. The loader thread would otherwise get an arena of
/// its own, and `malloc_trim` cannot hand back the top of a thread arena: the kernel BTF parsed
/// there stayed resident (15 MiB) for the daemon's whole life. The daemon's threads rarely
/// allocate at the same time (one runs the loop), so one arena costs no contention.
pub fn single_malloc_arena() {
    // SAFETY: mallopt only changes allocator tuning; called before the daemon starts threads.
    let applied = unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
    if applied == 0 {
        tracing::debug!("mallopt(M_ARENA_MAX, 1) refused: thread arenas keep their start-up heap");
    }
}

/// Returns free heap pages to the kernel (after the BTF parses and the /proc scan).
pub fn release_free_heap() {
    // SAFETY: malloc_trim has no preconditions; it only returns free heap pages to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}
