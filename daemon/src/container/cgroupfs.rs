//! The cgroup v2 hierarchy on disk: where it is mounted, and cgroup id <-> path.
//!
//! `bpf_get_current_cgroup_id()` returns the kernfs node id of the task's v2 cgroup, which is the
//! inode number of that cgroup's directory under the v2 mount; scanning directories and comparing
//! inodes is how an id from an event becomes a path (at start-up, or for a cgroup whose `mkdir`
//! the daemon missed).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

const MOUNTINFO: &str = "/proc/self/mountinfo";

#[derive(Debug, thiserror::Error)]
pub enum CgroupFsError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no cgroup2 filesystem in {path}: cgroup v2 is required (on hybrid hosts it is usually at /sys/fs/cgroup/unified)")]
    NoCgroup2 { path: PathBuf },
}

/// The cgroup v2 mount point in `/proc/self/mountinfo` text.
///
/// Pure v2 hosts mount it at `/sys/fs/cgroup`, hybrid ones at `/sys/fs/cgroup/unified`, and a
/// DaemonSet may see the host's under another path, so it is looked up, never assumed. When there
/// are several (bind mounts, nested cgroup namespaces), the first whose root is the hierarchy root
/// wins, since ids are only meaningful relative to that root.
pub fn find_cgroup2_mount(mountinfo: &str) -> Option<PathBuf> {
    let mut fallback = None;
    for line in mountinfo.lines() {
        // `id parent maj:min root mount-point options [optional...] - fstype source super-options`
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        if post.split_whitespace().next() != Some("cgroup2") {
            continue;
        }
        let mut fields = pre.split_whitespace();
        let (Some(root), Some(mount_point)) = (fields.nth(3), fields.next()) else {
            continue;
        };
        let mount_point = PathBuf::from(unescape_octal(mount_point));
        if root == "/" {
            return Some(mount_point);
        }
        fallback.get_or_insert(mount_point);
    }
    fallback
}

/// [`find_cgroup2_mount`] on this process's `/proc/self/mountinfo`.
pub fn cgroup2_mount() -> Result<PathBuf, CgroupFsError> {
    let text = std::fs::read_to_string(MOUNTINFO).map_err(|source| CgroupFsError::Io {
        path: MOUNTINFO.into(),
        source,
    })?;
    find_cgroup2_mount(&text).ok_or(CgroupFsError::NoCgroup2 {
        path: MOUNTINFO.into(),
    })
}

/// Every cgroup under `root` as `(cgroup id, path relative to root)`; the root itself is `"/"`.
///
/// Cgroups come and go while we walk: directories that vanish or cannot be read are skipped
/// rather than failing the whole scan.
pub fn scan_cgroups(root: &Path) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    walk(root, |id, rel| {
        out.push((id, rel.to_owned()));
        false
    });
    out
}

/// The path (relative to `root`, starting with '/') of the cgroup whose id is `id`.
pub fn find_cgroup_by_id(root: &Path, id: u64) -> Option<String> {
    let mut found = None;
    walk(root, |ino, rel| {
        if ino == id {
            found = Some(rel.to_owned());
        }
        found.is_some()
    });
    found
}

/// Depth-first walk of the directory tree under `root`, without following symlinks (cgroupfs has
/// none; a test tree might). `visit` returns true to stop.
fn walk(root: &Path, mut visit: impl FnMut(u64, &str) -> bool) {
    let Ok(meta) = std::fs::symlink_metadata(root) else {
        return;
    };
    if !meta.is_dir() || visit(meta.ino(), "/") {
        return;
    }
    let mut stack: Vec<(PathBuf, String)> = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(file_type) = entry.file_type() else {
                continue;
            };
            if !file_type.is_dir() {
                continue;
            }
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            let child_rel = format!("{rel}/{}", entry.file_name().to_string_lossy());
            if visit(meta.ino(), &child_rel) {
                return;
            }
            stack.push((entry.path(), child_rel));
        }
    }
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_octal(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| b == b'\\' && d.iter().all(|d| (b'0'..=b'7').contains(d)))
            .and_then(|d| {
                u8::try_from(d.iter().fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'))).ok()
            });
        match octal {
            Some(byte) => {
                out.push(byte);
                i += 4;
            }
            None => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
#[path = "cgroupfs_tests.rs"]
mod tests;
