//! `image-file-modified`, `new-executable`, `host-file-modified`: nothing that came from the image
//! (or, for an immutable host, from the OS) changes while it runs.
use super::paths::under;
use crate::{
    container::image_path::PathOrigin,
    event::{model::FileOp, FileRecord, Layer},
    policy::RuleId,
};

/// Where the file an operation touches comes from, as far as the verdict goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileOrigin {
    /// A lower (image) layer.
    Image,
    /// The container's writable layer.
    Upper,
    /// A volume, bind mount or other non-image mount in a container.
    Volume,
    /// A host file touched by a host process.
    Host,
    /// Could not be told (layers unreadable, lookup timed out).
    Unknown,
}

impl FileOrigin {
    /// Where the file of `file` at `path` comes from: the layer the kernel saw, else what the
    /// resolver said about the path (`looked_up`, asked only then).
    pub fn of(file: &FileRecord, looked_up: impl FnOnce() -> PathOrigin) -> FileOrigin {
        if file.host_task {
            return FileOrigin::Host;
        }
        match file.layer {
            Layer::Lower => FileOrigin::Image,
            Layer::Upper => FileOrigin::Upper,
            Layer::None => FileOrigin::Volume,
            Layer::Unknown => match looked_up() {
                PathOrigin::Image => FileOrigin::Image,
                PathOrigin::Upper => FileOrigin::Upper,
                PathOrigin::Volume => FileOrigin::Volume,
                PathOrigin::Absent | PathOrigin::Unknown => FileOrigin::Unknown,
            },
        }
    }
}

/// Whether the operation may leave a new executable: any create, or a chmod that sets an x bit.
pub fn makes_executable(file: &FileRecord) -> bool {
    match file.op {
        FileOp::Create => true,
        FileOp::Chmod => file.mode & 0o111 != 0,
        _ => false,
    }
}

/// Host paths treated as immutable by `host-file-modified` (disabled by default).
pub const HOST_IMMUTABLE_PATHS: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/boot", "/etc",
];

/// Files under those paths that the OS itself rewrites in normal operation.
pub const HOST_MUTABLE_EXCEPTIONS: &[&str] = &[
    "/etc/resolv.conf",
    "/etc/mtab",
    "/etc/ld.so.cache",
    "/etc/adjtime",
    "/etc/.pwd.lock",
];

pub struct FileFacts<'a> {
    pub op: FileOp,
    pub path: &'a [u8],
    pub shown_path: &'a str,
    /// The path as the process gave it (opens by interpreters; empty otherwise).
    pub text: &'a [u8],
    /// The process's working directory at its exec (what a relative `text` is relative to).
    pub cwd: &'a [u8],
    pub origin: FileOrigin,
    /// The operation leaves the file with exec bits (create with x, chmod +x).
    pub makes_executable: bool,
    /// The path the process gave was longer than the kernel's record keeps: which file it
    /// named cannot be looked up.
    pub name_cut: bool,
}

/// The rule a file operation breaks, with its message.
pub fn judge(facts: &FileFacts<'_>) -> Option<(RuleId, String)> {
    let path = facts.shown_path;
    let op = facts.op.as_str();
    if facts.name_cut && facts.origin != FileOrigin::Host {
        // Judging the cut text would judge another file: an attacker's way past the rule.
        return Some((
            RuleId::ImageFileModified,
            format!("{op} of a path longer than sealwatch reads ({path}...): the file it names cannot be checked against the image, so it is reported as an image file"),
        ));
    }
    match facts.origin {
        FileOrigin::Image => Some((
            RuleId::ImageFileModified,
            format!("image file {path} modified ({op}) in a running container; change the image instead"),
        )),
        FileOrigin::Upper if facts.makes_executable => Some((
            RuleId::NewExecutable,
            format!("new executable {path} ({op}) in the container's writable layer"),
        )),
        FileOrigin::Host
            if HOST_IMMUTABLE_PATHS.iter().any(|p| under(facts.path, p.as_bytes()))
                && !HOST_MUTABLE_EXCEPTIONS.iter().any(|p| facts.path == p.as_bytes()) =>
        {
            Some((
                RuleId::HostFileModified,
                format!("immutable host path {path} modified ({op})"),
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(origin: FileOrigin, name_cut: bool) -> FileFacts<'static> {
        FileFacts {
            op: FileOp::Unlink,
            path: b"/tmp/././x",
            shown_path: "/tmp/././x",
            text: b"",
            cwd: b"/",
            origin,
            makes_executable: false,
            name_cut,
        }
    }

    /// A name cut at the record's limit is never judged as the file its beginning names.
    #[test]
    fn a_cut_name_is_reported_not_judged_as_another_file() {
        assert_eq!(judge(&facts(FileOrigin::Unknown, false)), None);
        let (rule, message) = judge(&facts(FileOrigin::Unknown, true)).expect("reported");
        assert_eq!(rule, RuleId::ImageFileModified);
        assert!(message.contains("cannot be checked"), "{message}");
        assert_eq!(judge(&facts(FileOrigin::Host, true)), None);
    }
}
