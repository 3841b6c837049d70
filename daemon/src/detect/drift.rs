//! `drift-exec`: a container runs something that is not part of its image.
use super::paths::resolve;
use crate::{container::image_path::PathOrigin, event::ExecRecord};

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

/// Programs that run a script named by their first non-option argument.
const INTERPRETERS: &[&str] = &[
    "sh", "ash", "bash", "dash", "zsh", "ksh", "busybox", "python", "python2", "python3", "perl",
    "ruby", "node", "php", "lua",
];

/// The script an interpreter is asked to run, if any: `sh /tmp/x.sh`, `python3 app.py`.
/// `-c CODE` runs no file; `busybox sh x` names the applet first.
pub fn interpreter_script(exe: &[u8], args: &[Vec<u8>]) -> Option<Vec<u8>> {
    let base = |p: &[u8]| p.rsplit(|b| *b == b'/').next().unwrap_or(p).to_vec();
    let mut name = String::from_utf8_lossy(&base(exe)).into_owned();
    let mut rest = args.get(1..).unwrap_or_default();
    if name == "busybox" {
        // The applet is argv[0] (symlink) or argv[1] (`busybox sh`).
        let applet = args
            .first()
            .map(|a| String::from_utf8_lossy(&base(a)).into_owned());
        match applet.as_deref() {
            Some("busybox") => {
                name = String::from_utf8_lossy(&base(rest.first()?)).into_owned();
                rest = rest.get(1..).unwrap_or_default();
            }
            Some(applet) => name = applet.to_owned(),
            None => return None,
        }
    }
    let name = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    if !INTERPRETERS
        .iter()
        .any(|i| i.trim_end_matches(|c: char| c.is_ascii_digit()) == name)
    {
        return None;
    }
    for arg in rest {
        if arg.as_slice() == b"-c" || arg.as_slice() == b"-e" || arg.as_slice() == b"-m" {
            return None;
        }
        if arg.starts_with(b"-") {
            continue;
        }
        return Some(arg.clone());
    }
    None
}

/// The script an exec runs, if any: a `#!` script (the kernel swapped in an interpreter) or a
/// file given to an interpreter, as a container-relative path.
pub fn script_of(exec: &ExecRecord) -> Option<Vec<u8>> {
    if !exec.interp.is_empty() && exec.interp != exec.filename {
        return Some(resolve(&exec.cwd, &exec.filename));
    }
    interpreter_script(&exec.exe, &exec.args).map(|script| resolve(&exec.cwd, &script))
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

    fn args(list: &[&str]) -> Vec<Vec<u8>> {
        list.iter().map(|a| a.as_bytes().to_vec()).collect()
    }

    #[test]
    fn finds_scripts_of_interpreters() {
        assert_eq!(
            interpreter_script(b"/bin/busybox", &args(&["sh", "/tmp/x.sh"])),
            Some(b"/tmp/x.sh".to_vec())
        );
        assert_eq!(
            interpreter_script(b"/bin/busybox", &args(&["sh", "-c", "id"])),
            None
        );
        assert_eq!(
            interpreter_script(b"/bin/busybox", &args(&["ls", "/tmp"])),
            None
        );
        assert_eq!(
            interpreter_script(b"/usr/bin/python3.11", &args(&["python3", "-u", "app.py"])),
            Some(b"app.py".to_vec())
        );
        assert_eq!(
            interpreter_script(b"/bin/busybox", &args(&["busybox", "sh", "s.sh"])),
            Some(b"s.sh".to_vec())
        );
    }

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
