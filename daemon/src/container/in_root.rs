//! Which file a path names inside a container, decided the way the kernel resolves it and never
//! on the host's file system.
//!
//! A process in a container names a file by text the kernel resolved in the container's root:
//! `/tmp/e/passwd` where `/tmp/e` is a symlink to `/etc`, `/proc/self/root/etc/passwd`,
//! `../etc/passwd`. Joining that text to a host directory would let the host kernel follow the
//! container's symlinks into the host's own tree (an absolute target like `/etc` means the host's
//! `/etc` there). So the path is walked one component at a time from the container's root
//! directory (`/proc/<pid>/root`), holding a directory descriptor at every step
//! (`O_PATH | O_NOFOLLOW`): a symlink is read, never followed by the host, and an absolute target
//! restarts at the container's root; `..` stops at the root. The result is the canonical path
//! inside the container, every directory of it real, which the overlay layers can then be asked
//! about without following anything.
//!
//! `openat2(RESOLVE_IN_ROOT)` resolves the same way in one call, but hands back a descriptor, not
//! the path inside the container that the layers are keyed by; hence this walk.
use std::{
    ffi::OsStr,
    os::{
        fd::{AsRawFd, FromRawFd, OwnedFd},
        unix::ffi::OsStrExt,
    },
    path::Path,
};

use nix::{
    fcntl::{openat, readlinkat, AtFlags, OFlag},
    sys::stat::{fstatat, Mode, SFlag},
};

/// The kernel's own limit on symlinks followed in one resolution (`MAXSYMLINKS`).
const MAX_SYMLINKS: usize = 40;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InRootError {
    #[error("the container's root {0} cannot be opened (its process is gone?)")]
    Root(String),
    #[error("more than {MAX_SYMLINKS} symlinks")]
    Loop,
    #[error("/proc/self/{0} of the process cannot be read (the process or descriptor is gone)")]
    ProcLink(String),
    #[error("{0}")]
    Io(nix::errno::Errno),
}

/// How the last component is treated: `chmod`, `chown`, `truncate` and opens follow a symlink
/// there; `unlink`, `rename`, `rmdir` and `lchown` act on the link itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Last {
    Follow,
    NoFollow,
}

/// The container's view of one process: its root and its `/proc` entries on the host.
#[derive(Debug, Clone, Copy)]
pub struct ProcessView {
    /// Host pid of a process of the container (the one that named the path, when it lives).
    pub pid: u32,
}

impl ProcessView {
    /// The canonical path inside the container that `path` (absolute or relative to the
    /// process's working directory, as its syscall gave it) names. Components that do not exist
    /// are kept as written (an unlinked file's name, a file about to be created).
    pub fn canonical(&self, path: &[u8], last: Last) -> Result<Vec<u8>, InRootError> {
        let root_path = format!("/proc/{}/root", self.pid);
        let root =
            open_root(Path::new(&root_path)).map_err(|_| InRootError::Root(root_path.clone()))?;
        let (start, rest) = self.starting_point(path)?;
        let mut walk = Walk {
            root: &root,
            stack: Vec::new(),
            names: Vec::new(),
            symlinks: 0,
        };
        walk.descend(&start, Last::Follow)?;
        walk.descend(&rest, last)?;
        Ok(walk.path())
    }

    /// Where a walk starts, as a canonical path in the container, and what is left to walk.
    /// `/proc/self/root`, `/proc/thread-self/root` and `/proc/<pid>/root` name the root;
    /// `/proc/self/cwd` and `/proc/self/fd/N` (and a relative path) the process's directory or
    /// open file, read from the host's `/proc/<pid>` (so the process must still live).
    fn starting_point(&self, path: &[u8]) -> Result<(Vec<u8>, Vec<u8>), InRootError> {
        let mut text = path.to_vec();
        while let Some(after) = text.strip_prefix(b"/proc/") {
            let (who, tail) = split_first(after);
            let is_process = who == b"self"
                || who == b"thread-self"
                || (!who.is_empty() && who.iter().all(u8::is_ascii_digit));
            if !is_process {
                break;
            }
            let (link, tail) = split_first(tail);
            match link {
                b"root" => text = [b"/", tail].concat(),
                b"cwd" => return Ok((self.proc_link("cwd")?, tail.to_vec())),
                b"fd" => {
                    let (fd, tail) = split_first(tail);
                    let fd = String::from_utf8_lossy(fd);
                    return Ok((self.proc_link(&format!("fd/{fd}"))?, tail.to_vec()));
                }
                _ => break,
            }
        }
        if text.starts_with(b"/") {
            Ok((b"/".to_vec(), text))
        } else {
            Ok((self.proc_link("cwd")?, text))
        }
    }

    /// A `/proc/<pid>/{cwd,fd/N}` link as a path inside the container: the link names the file
    /// as the daemon's root sees it, so the container root's own name is cut off its front.
    fn proc_link(&self, link: &str) -> Result<Vec<u8>, InRootError> {
        let read = |name: &str| {
            std::fs::read_link(format!("/proc/{}/{name}", self.pid))
                .map(|p| p.into_os_string().into_vec())
                .map_err(|_| InRootError::ProcLink(name.to_owned()))
        };
        let target = read(link)?;
        let root = read("root")?;
        if root == b"/" {
            return Ok(target);
        }
        match target.strip_prefix(root.as_slice()) {
            Some(b"") => Ok(b"/".to_vec()),
            Some(rest) if rest.starts_with(b"/") => Ok(rest.to_vec()),
            _ => Err(InRootError::ProcLink(link.to_owned())),
        }
    }
}

use std::os::unix::ffi::OsStringExt as _;

/// `a/b/c` → (`a`, `b/c`); leading slashes skipped.
fn split_first(text: &[u8]) -> (&[u8], &[u8]) {
    let text = trim_slashes(text);
    match text.iter().position(|b| *b == b'/') {
        Some(at) => (&text[..at], &text[at + 1..]),
        None => (text, b""),
    }
}

fn trim_slashes(mut text: &[u8]) -> &[u8] {
    while let Some(rest) = text.strip_prefix(b"/") {
        text = rest;
    }
    text
}

/// One resolution in progress: the directories entered so far (descriptors held, so nothing
/// can be swapped under the walk), and names below the last one that do not exist.
struct Walk<'r> {
    root: &'r OwnedFd,
    stack: Vec<(Vec<u8>, OwnedFd)>,
    /// Components past the last existing directory, kept as written.
    names: Vec<Vec<u8>>,
    symlinks: usize,
}

impl Walk<'_> {
    fn current(&self) -> &OwnedFd {
        self.stack.last().map_or(self.root, |(_, fd)| fd)
    }

    /// Walks `path` (absolute: from the root; relative: from here).
    fn descend(&mut self, path: &[u8], last: Last) -> Result<(), InRootError> {
        if path.starts_with(b"/") {
            self.stack.clear();
            self.names.clear();
        }
        let parts: Vec<&[u8]> = path
            .split(|b| *b == b'/')
            .filter(|p| !p.is_empty() && *p != b".")
            .collect();
        for (i, part) in parts.iter().enumerate() {
            let is_last = i + 1 == parts.len();
            self.step(part, if is_last { last } else { Last::Follow })?;
        }
        Ok(())
    }

    fn step(&mut self, part: &[u8], last: Last) -> Result<(), InRootError> {
        if !self.names.is_empty() {
            // Below a name that does not exist: nothing more can be resolved.
            if part == b".." {
                self.names.pop();
            } else {
                self.names.push(part.to_vec());
            }
            return Ok(());
        }
        if part == b".." {
            // `..` of the root is the root, as in the kernel.
            self.stack.pop();
            return Ok(());
        }
        let fd = match open_dir(Some(self.current()), part) {
            Ok(fd) => fd,
            Err(nix::errno::Errno::ENOENT) => {
                self.names.push(part.to_vec());
                return Ok(());
            }
            Err(errno) => return Err(InRootError::Io(errno)),
        };
        let stat =
            fstatat(Some(fd.as_raw_fd()), "", AtFlags::AT_EMPTY_PATH).map_err(InRootError::Io)?;
        let kind = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT;
        if kind == SFlag::S_IFLNK && last == Last::Follow {
            self.symlinks += 1;
            if self.symlinks > MAX_SYMLINKS {
                return Err(InRootError::Loop);
            }
            let target = readlinkat(Some(fd.as_raw_fd()), "").map_err(InRootError::Io)?;
            return self.descend(target.as_bytes(), Last::Follow);
        }
        if kind == SFlag::S_IFDIR {
            self.stack.push((part.to_vec(), fd));
        } else {
            // A file (or a link not followed): the walk ends with its name.
            self.names.push(part.to_vec());
        }
        Ok(())
    }

    /// The canonical path walked.
    fn path(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for part in self
            .stack
            .iter()
            .map(|(name, _)| name)
            .chain(self.names.iter())
        {
            out.push(b'/');
            out.extend_from_slice(part);
        }
        if out.is_empty() {
            out.push(b'/');
        }
        out
    }
}

/// The container's root through the host's `/proc/<pid>/root`: the one link the walk follows.
fn open_root(path: &Path) -> Result<OwnedFd, nix::errno::Errno> {
    let fd = openat(
        None,
        path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    // SAFETY: `openat` just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `openat(dir, name, O_PATH | O_NOFOLLOW)`: the entry itself, whatever it is, never followed.
fn open_dir(dir: Option<&OwnedFd>, name: &[u8]) -> Result<OwnedFd, nix::errno::Errno> {
    let fd = openat(
        dir.map(AsRawFd::as_raw_fd),
        Path::new(OsStr::from_bytes(name)),
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    // SAFETY: `openat` just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A fake container root: `/proc/<pid>/root` is replaced by a directory of the test (the
    /// walk's root descriptor), so the symlink handling is tested without a container.
    fn walk_in(root: &Path, path: &[u8], last: Last) -> Vec<u8> {
        let root = open_root(root).unwrap();
        let mut walk = Walk {
            root: &root,
            stack: Vec::new(),
            names: Vec::new(),
            symlinks: 0,
        };
        walk.descend(path, last).unwrap();
        walk.path()
    }

    #[test]
    fn symlinks_resolve_inside_the_root_never_on_the_host() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/passwd"), "x").unwrap();
        std::fs::create_dir_all(root.join("tmp")).unwrap();
        // Absolute targets mean the container's root, not the host's.
        symlink("/etc", root.join("tmp/e")).unwrap();
        symlink("../etc/passwd", root.join("tmp/p")).unwrap();
        symlink("/tmp/loop", root.join("tmp/loop")).unwrap();
        assert_eq!(
            walk_in(root, b"/tmp/e/passwd", Last::NoFollow),
            b"/etc/passwd"
        );
        assert_eq!(
            walk_in(root, b"/tmp/e/../etc/passwd", Last::NoFollow),
            b"/etc/passwd"
        );
        assert_eq!(walk_in(root, b"/tmp/p", Last::Follow), b"/etc/passwd");
        assert_eq!(walk_in(root, b"/tmp/p", Last::NoFollow), b"/tmp/p");
        assert_eq!(
            walk_in(root, b"/../../etc/./passwd", Last::Follow),
            b"/etc/passwd"
        );
        // A name that does not exist (an unlinked file) keeps its text below a real parent.
        assert_eq!(walk_in(root, b"/tmp/e/gone", Last::NoFollow), b"/etc/gone");
        let root_fd = open_root(root).unwrap();
        let mut walk = Walk {
            root: &root_fd,
            stack: Vec::new(),
            names: Vec::new(),
            symlinks: 0,
        };
        assert_eq!(
            walk.descend(b"/tmp/loop/x", Last::Follow),
            Err(InRootError::Loop)
        );
    }

    #[test]
    fn proc_spellings_of_the_root_are_the_root() {
        let view = ProcessView {
            pid: std::process::id(),
        };
        for path in [
            &b"/proc/self/root/etc/passwd"[..],
            b"/proc/thread-self/root/etc/passwd",
            b"/proc/1/root/proc/self/root/etc/passwd",
        ] {
            assert_eq!(
                view.starting_point(path).unwrap(),
                (b"/".to_vec(), b"/etc/passwd".to_vec()),
                "{}",
                String::from_utf8_lossy(path)
            );
        }
        // This test process's own cwd, as its root sees it.
        let cwd = std::env::current_dir().unwrap().into_os_string().into_vec();
        assert_eq!(
            view.starting_point(b"x").unwrap(),
            (cwd.clone(), b"x".to_vec())
        );
        assert_eq!(
            view.starting_point(b"/proc/self/cwd/x").unwrap(),
            (cwd, b"x".to_vec())
        );
        // On this host the process's root is `/`, so the resolution is the host's own.
        assert_eq!(
            view.canonical(b"/proc/self/root/etc/../etc/hostname", Last::Follow)
                .unwrap(),
            b"/etc/hostname"
        );
    }
}
