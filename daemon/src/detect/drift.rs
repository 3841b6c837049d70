//! `drift-exec`: a container runs something that is not part of its image.
use super::{
    immutability::{FileFacts, FileOrigin},
    paths::resolve,
    scripts::{is_script, reads_are_watched, OpenedFile},
    shown, Actor,
};
use crate::{
    container::image_path::PathOrigin,
    event::{model::FileOp, ExecRecord},
};

/// Where the executed program came from (the JSON `process.exe_layer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExeLayer {
    Lower,
    Upper,
    Memfd,
    Deleted,
    Host,
    /// On overlayfs, but the kernel could not tell the layer (its BTF lacks overlayfs's layout):
    /// the pipeline looks the path up in the container's layers instead.
    Unknown,
}

impl ExeLayer {
    /// Where the kernel found the executable of `exec`.
    pub fn of(exec: &ExecRecord) -> ExeLayer {
        let origin = exec.exe_origin;
        if exec.exe.starts_with(b"/memfd:") {
            ExeLayer::Memfd
        } else if origin.deleted {
            ExeLayer::Deleted
        } else if origin.upper {
            ExeLayer::Upper
        } else if origin.lower {
            ExeLayer::Lower
        } else if origin.overlay {
            ExeLayer::Unknown
        } else {
            ExeLayer::Host
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            ExeLayer::Lower => "lower",
            ExeLayer::Upper => "upper",
            ExeLayer::Memfd => "memfd",
            ExeLayer::Deleted => "deleted",
            ExeLayer::Host => "host",
            ExeLayer::Unknown => "unknown",
        }
    }

    /// The layer of an executable the kernel could not place, from a look-up of its path.
    pub fn looked_up(self, origin: PathOrigin) -> ExeLayer {
        match (self, origin) {
            (ExeLayer::Unknown, PathOrigin::Image) => ExeLayer::Lower,
            (ExeLayer::Unknown, PathOrigin::Upper) => ExeLayer::Upper,
            (ExeLayer::Unknown, PathOrigin::Volume) => ExeLayer::Host,
            (layer, _) => layer,
        }
    }
}

/// The `#!` script an exec runs (the kernel swapped in an interpreter), as a container-relative
/// path, when its interpreter is not one whose reads the kernel reports: a known interpreter's
/// script is judged when it opens it (see `scripts`), like `sh x.sh`.
pub fn script_of(exec: &ExecRecord) -> Option<Vec<u8>> {
    let shebang = !exec.interp.is_empty() && exec.interp != exec.filename;
    (shebang && !reads_are_watched(&exec.exe)).then(|| resolve(&exec.cwd, &exec.filename))
}

/// The drift message for code loaded from a file of the container's own, if it is drift: an
/// executable mapping always is; a read by an interpreter when it is the script it runs.
pub fn judge_code(facts: &FileFacts<'_>, actor: &Actor<'_>) -> Option<String> {
    if facts.origin != FileOrigin::Upper {
        return None;
    }
    let path = facts.shown_path;
    let exe = shown(actor.exe);
    match facts.op {
        FileOp::MapExec => Some(format!(
            "{path} was mapped executable by {exe}: it is not part of the image, it was written to the container's writable layer after start"
        )),
        FileOp::ScriptRead => {
            let opened = OpenedFile {
                path: facts.path,
                text: facts.text,
                cwd: facts.cwd,
            };
            is_script(actor.exe, actor.args, &opened).then(|| format!(
                "script {path} run by {exe} is not part of the image: it was written after the container started"
            ))
        }
        _ => None,
    }
}

/// The drift message for an exec, if it is drift.
pub fn judge(exe: &str, layer: ExeLayer, script: Option<(&str, PathOrigin)>) -> Option<String> {
    match layer {
        ExeLayer::Upper => {
            return Some(format!(
                "{exe} is not part of the image: it was written to the container's writable layer after start"
            ))
        }
        ExeLayer::Memfd => return Some(format!("{exe} runs from memory (memfd), not from the image")),
        ExeLayer::Deleted => {
            return Some(format!("{exe} has no links left (deleted): it is not part of the image"))
        }
        ExeLayer::Lower | ExeLayer::Host | ExeLayer::Unknown => {}
    }
    match script {
        Some((path, PathOrigin::Upper)) => Some(format!(
            "script {path} run by {exe} is not part of the image: it was written after the container started"
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_verdicts() {
        assert!(judge("/tmp/x", ExeLayer::Upper, None).is_some());
        assert!(judge("/memfd:x", ExeLayer::Memfd, None).is_some());
        assert!(judge("/bin/busybox", ExeLayer::Lower, None).is_none());
        assert!(judge(
            "/bin/busybox",
            ExeLayer::Lower,
            Some(("/tmp/s.sh", PathOrigin::Upper))
        )
        .is_some());
        assert!(judge(
            "/bin/busybox",
            ExeLayer::Lower,
            Some(("/etc/s.sh", PathOrigin::Image))
        )
        .is_none());
    }
}
