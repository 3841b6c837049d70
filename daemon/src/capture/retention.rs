//! Which capture files to delete: the flight-recorder policy (documented in
//! `docs/capture-format.md`, "Retention").
//!
//! 1. The file being written is never deleted.
//! 2. A file is *protected* when a violation happened within `violation_window` of its time span
//!    (`start - window <= violation <= end + window`), counting violations of every file.
//! 3. Age: an unprotected file is deleted once its end is older than `max_age`; a protected one
//!    once its end is older than `violation_max_age`.
//! 4. Size: while all files together exceed `max_bytes`, the oldest unprotected file goes; when
//!    only protected files are left, the oldest protected one goes. The size bound always wins.
use std::{
    fs::File,
    io::{BufReader, Read, Seek, SeekFrom},
    path::{Path, PathBuf},
};

use super::{
    format::{frame_type, ViolationsRecord, MAGIC},
    frame::FRAME_HEADER_LEN,
    naming,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    pub path: PathBuf,
    pub seq: u64,
    pub start_unix_ns: i64,
    /// Time of the last write (the file's mtime for files found on disk).
    pub end_unix_ns: i64,
    pub bytes: u64,
    /// Wall-clock times of the violations recorded in the file.
    pub violations: Vec<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    pub max_bytes: u64,
    pub max_age_ns: i64,
    pub violation_window_ns: i64,
    pub violation_max_age_ns: i64,
}

/// Indexes into `closed` (oldest first) of the files to delete now, oldest first.
pub fn select_deletions(
    closed: &[StoredFile],
    current: &StoredFile,
    now_ns: i64,
    policy: &RetentionPolicy,
) -> Vec<usize> {
    let violations: Vec<i64> = closed
        .iter()
        .chain(std::iter::once(current))
        .flat_map(|f| f.violations.iter().copied())
        .collect();
    let w = policy.violation_window_ns;
    let protected: Vec<bool> = closed
        .iter()
        .map(|f| {
            violations.iter().any(|&v| {
                v >= f.start_unix_ns.saturating_sub(w) && v <= f.end_unix_ns.saturating_add(w)
            })
        })
        .collect();
    let mut delete = vec![false; closed.len()];
    for (i, file) in closed.iter().enumerate() {
        let limit = if protected[i] {
            policy.violation_max_age_ns
        } else {
            policy.max_age_ns
        };
        delete[i] = now_ns.saturating_sub(file.end_unix_ns) > limit;
    }
    let mut total: u64 = current.bytes
        + closed
            .iter()
            .zip(&delete)
            .filter(|(_, d)| !**d)
            .map(|(f, _)| f.bytes)
            .sum::<u64>();
    for want_protected in [false, true] {
        for i in 0..closed.len() {
            if total <= policy.max_bytes {
                break;
            }
            if !delete[i] && protected[i] == want_protected {
                delete[i] = true;
                total -= closed[i].bytes;
            }
        }
    }
    (0..closed.len()).filter(|&i| delete[i]).collect()
}

/// Every capture file in `dir`, oldest (lowest sequence) first. Unreadable files are listed with
/// what their name and metadata tell.
pub fn scan_dir(dir: &Path) -> std::io::Result<Vec<StoredFile>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().and_then(naming::parse) else {
            continue;
        };
        let meta = entry.metadata()?;
        if !meta.is_file() {
            continue;
        }
        let end = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .and_then(|d| i64::try_from(d.as_nanos()).ok())
            .unwrap_or(name.start_unix_ns);
        files.push(StoredFile {
            path: entry.path(),
            seq: name.seq,
            start_unix_ns: name.start_unix_ns,
            end_unix_ns: end,
            bytes: meta.len(),
            violations: violations_in(&entry.path()),
        });
    }
    files.sort_by_key(|f| f.seq);
    Ok(files)
}

/// The violation times recorded in a file, reading only frame headers and violation frames
/// (seeking over everything else), so a start-up scan of a full directory stays cheap.
fn violations_in(path: &Path) -> Vec<i64> {
    let mut found = Vec::new();
    let Ok(file) = File::open(path) else {
        return found;
    };
    let mut input = BufReader::new(file);
    if input.seek(SeekFrom::Start(MAGIC.len() as u64)).is_err() {
        return found;
    }
    let mut head = [0u8; FRAME_HEADER_LEN];
    while input.read_exact(&mut head).is_ok() {
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        if head[4] == frame_type::VIOLATIONS && head[5] == 0 && len < 4096 {
            let mut payload = vec![0u8; len as usize];
            if input.read_exact(&mut payload).is_err() {
                break;
            }
            // A torn or foreign frame only costs its protection.
            if let Ok(record) = serde_json::from_slice::<ViolationsRecord>(&payload) {
                found.push(record.unix_ns);
            }
        } else if input.seek_relative(i64::from(len)).is_err() {
            break;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    fn file(seq: u64, start: i64, end: i64, bytes: u64, violations: &[i64]) -> StoredFile {
        StoredFile {
            path: PathBuf::from(format!("f{seq}")),
            seq,
            start_unix_ns: start * S,
            end_unix_ns: end * S,
            bytes,
            violations: violations.iter().map(|v| v * S).collect(),
        }
    }

    fn policy(max_bytes: u64) -> RetentionPolicy {
        RetentionPolicy {
            max_bytes,
            max_age_ns: 100 * S,
            violation_window_ns: 10 * S,
            violation_max_age_ns: 1000 * S,
        }
    }

    #[test]
    fn size_bound_deletes_oldest_unprotected_first() {
        // f2 has a violation; f1 ends 5 s before it (inside the window), f3 starts 30 s after.
        let closed = [
            file(1, 0, 50, 10, &[]),
            file(2, 50, 100, 10, &[55]),
            file(3, 100, 150, 10, &[]),
            file(4, 150, 200, 10, &[]),
        ];
        let current = file(5, 200, 210, 10, &[]);
        assert_eq!(
            select_deletions(&closed, &current, 210 * S, &policy(50)),
            vec![] as Vec<usize>
        );
        // 50 → 30 bytes: f3 and f4 go before the protected f1 and f2.
        assert_eq!(
            select_deletions(&closed, &current, 210 * S, &policy(30)),
            vec![2, 3]
        );
        // Only protected files left over the bound: the oldest protected one goes too.
        assert_eq!(
            select_deletions(&closed, &current, 210 * S, &policy(20)),
            vec![0, 2, 3]
        );
    }

    #[test]
    fn age_limit_is_longer_inside_a_violation_window() {
        let closed = [
            file(1, 0, 50, 10, &[]),
            file(2, 50, 100, 10, &[]),
            file(3, 100, 150, 10, &[]),
        ];
        // The violation in the current file is 5 s after f3's end: f3 is protected.
        let current = file(4, 150, 400, 10, &[155]);
        let kept = select_deletions(&closed, &current, 400 * S, &policy(1 << 20));
        assert_eq!(kept, vec![0, 1], "f3 ended 250 s ago but is protected");
        let later = select_deletions(&closed, &current, 1200 * S, &policy(1 << 20));
        assert_eq!(
            later,
            vec![0, 1, 2],
            "protection ends after violation_max_age"
        );
    }
}
