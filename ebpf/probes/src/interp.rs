//! Which processes are interpreters, so that the files they read can be told apart from the
//! scripts they run: `sh -e /tmp/x.sh` runs a file that no exec names. The exec program marks a
//! process whose executable's file name is in [`INTERPRETERS`] (filled by the daemon); a
//! read-only open by a marked process of a file of the container's own is then reported (see
//! `file::exit_open`), and the daemon decides from argv whether it is the script.
use aya_ebpf::{
    macros::map,
    maps::{HashMap, LruHashMap},
};
use sealwatch_abi::{interpreter_key, INTERPRETER_NAME_LEN};

use crate::{
    kernel::{read_kernel_str, read_ptr, Ptr},
    maps::config,
};

/// Interpreter names ([`interpreter_key`]); written by the daemon at load.
#[map(name = "INTERPRETERS")]
pub static INTERPRETERS: HashMap<[u8; INTERPRETER_NAME_LEN], u8> = HashMap::with_max_entries(64, 0);

/// Processes (tgid) running an interpreter. An LRU map, so that it never refuses a process; what
/// it evicts first is the interpreter that has gone longest without an exec or a look-up.
#[map(name = "SCRIPT_READERS")]
static SCRIPT_READERS: LruHashMap<u32, u8> = LruHashMap::with_max_entries(32768, 0);

/// At exec: marks `tgid` if its new executable (`exe_dentry`) is an interpreter, and unmarks it
/// otherwise (the process may have been one before this exec).
#[inline(always)]
pub fn note_exec(tgid: u32, exe_dentry: Ptr) {
    let mut key = [0u8; INTERPRETER_NAME_LEN];
    let named = read_ptr(exe_dentry, config!(offsets.dentry_d_name_name))
        .map(|name| read_kernel_str(key.as_mut_ptr(), INTERPRETER_NAME_LEN as u32, name) > 0)
        .unwrap_or(false);
    // The last byte is the string's NUL when the name is longer: the key is the first 15.
    key[INTERPRETER_NAME_LEN - 1] = 0;
    interpreter_key(&mut key);
    // SAFETY: only presence matters.
    if named && unsafe { INTERPRETERS.get(key) }.is_some() {
        let _ = SCRIPT_READERS.insert(tgid, 1, 0);
    } else {
        let _ = SCRIPT_READERS.remove(tgid);
    }
}

/// At the exit of a thread-group leader.
#[inline(always)]
pub fn note_exit(tgid: u32) {
    let _ = SCRIPT_READERS.remove(tgid);
}

/// Whether the current process runs an interpreter.
#[inline(always)]
pub fn reads_scripts(tgid: u32) -> bool {
    // SAFETY: only presence matters.
    unsafe { SCRIPT_READERS.get(tgid) }.is_some()
}
