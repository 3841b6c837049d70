//! File events: path-based records wait for their syscall's result, then for their container's
//! metadata and (when the kernel could not tell the layer) their paths' origins; the
//! immutability rules judge them, and only violations are printed (the capture keeps every
//! record).
use super::{
    hold::{Held, Waiting},
    Pipeline,
};
use crate::{
    container::image_path::PathOrigin,
    detect::{
        immutability::{makes_executable, FileFacts, FileOrigin},
        Actor, ContainerFacts, Verdict,
    },
    event::{model::FileOp, FileRecord, Layer},
    output::{FileJson, LineSink, TextFields},
};

impl Pipeline {
    /// A file record from the kernel: path-based ones wait for their syscall's result.
    pub(super) fn file(&mut self, file: FileRecord, sink: &mut dyn LineSink) {
        if file.needs_result {
            self.stats.file_results_lost += self.held.park_file(file);
            return;
        }
        self.file_done(file, sink);
    }

    /// A file operation that happened (its syscall succeeded).
    pub(super) fn file_done(&mut self, file: FileRecord, sink: &mut dyn LineSink) {
        let paths = match &file.path {
            Some(path) => vec![path.clone()],
            // As the process wrote them: `..` after a symlink is not what `..` of the text says,
            // so the resolver walks the text inside the container's root (see `file_named`).
            None => {
                let base = file.base.clone().unwrap_or_else(|| b"/".to_vec());
                // From a chroot, an absolute name starts at the chroot (`/1/root/etc/passwd`
                // with root `/proc` is `/proc/1/root/etc/passwd` in the container).
                let rooted = |name: &[u8]| match &file.root {
                    Some(root) if name.starts_with(b"/") && root.as_slice() != b"/" => {
                        [root.as_slice(), name].concat()
                    }
                    _ => name.to_vec(),
                };
                let mut paths = vec![join(&base, &rooted(&file.name))];
                if file.op == FileOp::Rename {
                    let base2 = file.base2.as_deref().unwrap_or(&base);
                    paths.push(join(base2, &rooted(&file.name2)));
                }
                paths
            }
        };
        // A cut name is judged without a look-up (see `FileFacts::name_cut`).
        // A chrooted container process is flagged a host task by the kernel (its root is not on
        // overlayfs) but names container files.
        let container_task = !file.host_task || file.root.is_some();
        let needs_origin = file.layer == Layer::Unknown && container_task && !file.path_truncated;
        let held = Held {
            cgroup_id: file.task.cgroup_id,
            ktime_ns: file.task.ktime_ns,
            what: Waiting::File {
                file,
                paths,
                needs_origin,
            },
        };
        self.hold_or_emit(held, sink);
    }

    /// Judges each path of the record (two for renames) until one breaks a rule.
    fn judge_file(
        &mut self,
        file: &FileRecord,
        paths: Vec<Vec<u8>>,
    ) -> Option<(Vec<u8>, FileOrigin, Vec<Verdict>)> {
        let image = self.state.procs.image_at(file.task.pid, file.task.ktime_ns);
        let actor = Actor {
            exe: image.map_or(&[][..], |e| &e.exe),
            args: image.map_or(&[][..], |e| &e.args),
            container: self
                .state
                .container(file.task.cgroup_id)
                .map(ContainerFacts::of),
        };
        for asked in paths {
            let mut unanswered = false;
            let origin = FileOrigin::of(file, || {
                let looked_up = self.state.origin(file.task.cgroup_id, &asked);
                unanswered = looked_up == PathOrigin::Unknown;
                looked_up
            });
            if unanswered {
                self.stats.path_lookups_unanswered += 1;
            }
            // The verdict and the line are about the file the kernel touched, whatever the text.
            let path = self.state.file_named(file.task.cgroup_id, &asked);
            let shown = String::from_utf8_lossy(&path).into_owned();
            let facts = FileFacts {
                op: file.op,
                path: &path,
                shown_path: &shown,
                text: &file.name,
                // A path-based record whose name was cut names no file sealwatch can find.
                name_cut: file.path_truncated && file.path.is_none(),
                cwd: image.map_or(&[][..], |e| &e.cwd),
                origin,
                makes_executable: makes_executable(file),
            };
            let verdicts = self.detector.on_file(&facts, &actor);
            if !verdicts.is_empty() {
                return Some((path, origin, verdicts));
            }
        }
        None
    }

    pub(super) fn emit_file(
        &mut self,
        file: FileRecord,
        paths: Vec<Vec<u8>>,
        sink: &mut dyn LineSink,
    ) {
        let in_container = self.state.container(file.task.cgroup_id).is_some();
        // The runtime preparing a container (runc init creating mount points in the rootfs) is
        // not the container's workload; a host process writing into a container's overlay from
        // outside is neither a container event nor a host-path event.
        let runtime_setup =
            self.state
                .is_runtime_setup(&file.task, file.host_task, self.config.host_mnt_ns);
        if runtime_setup || (!in_container && !file.host_task) {
            return;
        }
        // The kernel flags a task whose root is not on overlayfs as the host's; a container's
        // workload that chrooted out of the overlay is still the container's (lineage).
        let mut file = file;
        if in_container && file.host_task {
            file.host_task = false;
        }
        // File lines are printed when a rule fires; the capture keeps every record.
        let Some((path, origin, verdicts)) = self.judge_file(&file, paths) else {
            return;
        };
        let key = self
            .state
            .container(file.task.cgroup_id)
            .zip(verdicts.first())
            .map(|(entry, first)| {
                (
                    entry.info.id.clone(),
                    first.rule.as_str(),
                    file.op.as_str(),
                    path.clone(),
                )
            });
        let gate = key.map(|key| {
            let passed = self.repeat_gate(key.clone(), file.task.ktime_ns, u64::from(file.repeats));
            (key, passed)
        });
        let mut texts = TextFields::default();
        let process = self.process_at(&file.task, &mut texts);
        let container = self.container_json(file.task.cgroup_id);
        let file_json = FileJson {
            path: texts.text("/file/path", &path),
            op: file.op.as_str(),
            layer: match origin {
                FileOrigin::Image => "lower",
                FileOrigin::Upper => "upper",
                _ => "none",
            },
            mode: matches!(
                file.op,
                FileOp::Chmod | FileOp::Create | FileOp::OpenWrite | FileOp::Truncate
            )
            .then_some(file.mode)
            .filter(|mode| *mode != 0),
            path_truncated: file.path_truncated,
        };
        let line = crate::output::EventLine {
            process: Some(process),
            container,
            file: Some(file_json),
            escaped: texts.into_escaped(),
            ..self.line(file.task.ktime_ns, "file")
        };
        match gate {
            // Held back: printed with its count when the window closes, unless an identical
            // violation after the window carries the count first.
            Some((key, None)) => self.repeats.hold_line(&key, line, verdicts),
            Some((_, Some(repeats))) => self.emit_line(line, verdicts, false, repeats, sink),
            None => self.emit_line(line, verdicts, false, 0, sink),
        }
    }
}

/// `name` made absolute against `base` (its directory), without touching `.` or `..`.
fn join(base: &[u8], name: &[u8]) -> Vec<u8> {
    if name.starts_with(b"/") {
        return name.to_vec();
    }
    let mut joined = base.to_vec();
    if !joined.ends_with(b"/") {
        joined.push(b'/');
    }
    joined.extend_from_slice(name);
    joined
}
