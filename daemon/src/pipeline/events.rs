//! Exec and file events: waiting for the facts their verdict needs, then judging and printing.
use super::{
    hold::{Held, Waiting},
    render, Pipeline, Request, ViolationKey,
};
use crate::{
    container::image_path::PathOrigin,
    detect::{
        drift::{interpreter_script, ExeLayer},
        immutability::{FileFacts, FileOrigin},
        paths::resolve,
        ContainerFacts, ExecFacts, Verdict,
    },
    event::{model::FileOp, ExecRecord, FileRecord, Layer},
    output::{EventLine, FileJson, LineSink, SessionJson, TextFields, ViolationJson, SCHEMA},
    state::{CgroupLookup, MetaState, ProcEntry},
};

/// Identical file violations within this window are counted, and printed once with the count of
/// repeats held back (`violation.repeats`), instead of flooding the stream (a write loop on an
/// image file).
pub(super) const REPEAT_WINDOW_NS: u64 = 10_000_000_000;
/// Distinct repeat keys kept at most.
pub(super) const REPEAT_KEYS_MAX: usize = 65_536;

/// File records travel on the bulk lane, exec records on the critical lane: a file event can
/// overtake the exec of the process that made it. It is judged only once a tick at least this
/// much later has passed, so the process table shows the right program.
const LANE_SKEW_NS: u64 = 50_000_000;

impl Pipeline {
    pub(super) fn exec(&mut self, exec: ExecRecord, sink: &mut dyn LineSink) {
        let parent_exe = self.procs.get(exec.ppid).map(|p| p.exe.clone());
        self.procs.exec(
            exec.task.pid,
            ProcEntry {
                ppid: exec.ppid,
                exe: std::sync::Arc::from(exec.exe.as_slice()),
                comm: exec.task.comm.clone(),
                args: std::sync::Arc::from(exec.args.as_slice()),
                cwd: std::sync::Arc::from(exec.cwd.as_slice()),
                exited_at: None,
                exec_ns: exec.task.ktime_ns,
                previous: None,
                json: crate::output::Memo::default(),
            },
        );
        let runtime_setup =
            self.is_runtime_setup(exec.task.cgroup_id, exec.task.mnt_ns, exec.host_root);
        let script = if runtime_setup {
            None
        } else {
            self.warm_up_layers(exec.task.cgroup_id, exec.task.pid);
            script_of(&exec)
        };
        if !runtime_setup && exec.pid_level > 0 {
            if let CgroupLookup::Container(_) = self.containers.lookup(exec.task.cgroup_id) {
                self.pidns_container
                    .insert(exec.task.pid_ns, exec.task.cgroup_id);
            }
        }
        let login = self.classify_login(&exec, parent_exe.as_deref(), runtime_setup);
        let session_id = match &login {
            Some(start) => Some(start.session.id.clone()),
            None => self.sessions.exec(exec.task.pid),
        };
        let cgroup_id = self.container_cgroup(&exec).unwrap_or(exec.task.cgroup_id);
        let held = Held {
            cgroup_id,
            ktime_ns: exec.task.ktime_ns,
            what: Waiting::Exec {
                exec,
                parent_exe,
                script,
                login: login.map(Box::new),
                session_id,
            },
        };
        self.hold_or_emit(held, sink);
    }

    /// A file record from the kernel: path-based ones wait for their syscall's result.
    pub(super) fn file(&mut self, file: FileRecord, sink: &mut dyn LineSink) {
        if file.needs_result {
            self.pending_files.insert(file.task.tid, file);
            return;
        }
        self.file_done(file, sink);
    }

    /// A file operation that happened (its syscall succeeded).
    pub(super) fn file_done(&mut self, file: FileRecord, sink: &mut dyn LineSink) {
        let paths = match &file.path {
            Some(path) => vec![path.clone()],
            None => {
                let base = file.base.clone().unwrap_or_else(|| b"/".to_vec());
                let mut paths = vec![resolve(&base, &file.name)];
                if file.op == FileOp::Rename {
                    paths.push(resolve(&base, &file.name2));
                }
                paths
            }
        };
        let needs_origin = file.layer == Layer::Unknown && !file.host_task;
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

    /// Asks for a container's layers at its first workload exec, while that process surely
    /// lives: later lookups for short-lived processes (`rm`, `chmod`) then hit the cache.
    fn warm_up_layers(&mut self, cgroup_id: u64, pid: u32) {
        if let CgroupLookup::Container(entry) = self.containers.lookup(cgroup_id) {
            // Answered already (the common case on every exec): no key to build.
            if self.origins.contains_key(&entry.info.id) {
                return;
            }
            let container_id = entry.info.id.clone();
            if self
                .asked_origins
                .insert((container_id.clone(), Vec::new()))
            {
                self.requests.push(Request::PathOrigins {
                    container_id,
                    pid,
                    paths: Vec::new(),
                });
            }
        }
    }

    /// A process in a container's cgroup that is not inside the container's root filesystem
    /// (or still in the host's mount namespace) is the runtime setting it up (runc init): it is
    /// attributed to the container but not judged as its workload.
    fn is_runtime_setup(&self, cgroup_id: u64, mnt_ns: u32, host_root: bool) -> bool {
        let in_container_cgroup = matches!(
            self.containers.lookup(cgroup_id),
            CgroupLookup::Container(_)
        );
        in_container_cgroup
            && (host_root || (self.config.host_mnt_ns != 0 && mnt_ns == self.config.host_mnt_ns))
    }

    pub(super) fn hold_or_emit(&mut self, held: Held, sink: &mut dyn LineSink) {
        let must_wait = !self.is_ready(&held);
        self.ask_for(&held);
        // Later events of a cgroup wait behind earlier ones, so a container's lines stay in order.
        if must_wait || self.held.is_holding(held.cgroup_id) {
            if let Some(oldest) = self.held.push(held) {
                self.emit(oldest, sink);
            }
        } else {
            self.emit(held, sink);
        }
    }

    fn is_ready(&self, held: &Held) -> bool {
        if matches!(held.what, Waiting::File { .. })
            && self.now_ns < held.ktime_ns.saturating_add(LANE_SKEW_NS)
        {
            return false;
        }
        match self.containers.lookup(held.cgroup_id) {
            CgroupLookup::Unknown => false,
            CgroupLookup::Host => true,
            CgroupLookup::Container(entry) => {
                let known = self.origins.get(&entry.info.id);
                entry.meta != MetaState::Pending
                    && held
                        .paths()
                        .iter()
                        .all(|path| known.is_some_and(|k| k.contains_key(*path)))
            }
        }
    }

    /// Asks (once) for what `held` is missing: the cgroup's path, or where its paths come from.
    fn ask_for(&mut self, held: &Held) {
        match self.containers.lookup(held.cgroup_id) {
            CgroupLookup::Unknown => {
                if self.asked_paths.insert(held.cgroup_id) {
                    self.requests.push(Request::CgroupPath(held.cgroup_id));
                }
            }
            CgroupLookup::Host => {}
            CgroupLookup::Container(entry) => {
                let paths = held.paths();
                if paths.is_empty() {
                    return;
                }
                let container_id = entry.info.id.clone();
                let mut missing = Vec::new();
                for path in paths {
                    if self
                        .asked_origins
                        .insert((container_id.clone(), path.to_vec()))
                    {
                        missing.push(path.to_vec());
                    }
                }
                if !missing.is_empty() {
                    self.requests.push(Request::PathOrigins {
                        container_id,
                        pid: held.pid(),
                        paths: missing,
                    });
                }
            }
        }
    }

    /// Emits held events that are resolved, or that `force` says must go now.
    pub(super) fn release(
        &mut self,
        sink: &mut dyn LineSink,
        mut force: impl FnMut(&Held) -> bool,
    ) {
        if self.held.is_empty() {
            return;
        }
        // Events whose container just became known may now need path lookups.
        let snapshot: Vec<Held> = self.held.take(|_| true);
        for held in &snapshot {
            self.ask_for(held);
        }
        let mut ready = Vec::new();
        for held in snapshot {
            if self.is_ready(&held) || force(&held) {
                ready.push(held);
            } else if let Some(oldest) = self.held.push(held) {
                ready.push(oldest);
            }
        }
        for held in ready {
            self.emit(held, sink);
        }
    }

    fn emit(&mut self, held: Held, sink: &mut dyn LineSink) {
        match held.what {
            Waiting::Exec {
                exec,
                parent_exe,
                script,
                login,
                session_id,
            } => self.emit_exec(exec, parent_exe, script, login, session_id, sink),
            Waiting::File { file, paths, .. } => self.emit_file(file, paths, sink),
            Waiting::Net(net) => self.emit_net(net, sink),
        }
    }

    fn emit_exec(
        &mut self,
        exec: ExecRecord,
        parent_exe: Option<std::sync::Arc<[u8]>>,
        script: Option<Vec<u8>>,
        login: Option<Box<super::logins::SessionStart>>,
        session_id: Option<String>,
        sink: &mut dyn LineSink,
    ) {
        let mut texts = TextFields::default();
        let exe_layer = exe_layer(&exec);
        let process =
            render::process_json(&exec, parent_exe.as_deref(), exe_layer.as_str(), &mut texts);
        let cgroup_id = self.container_cgroup(&exec).unwrap_or(exec.task.cgroup_id);
        let container = self.container_json(cgroup_id);
        let script_origin = script.as_ref().map(|path| {
            let origin = self.origin(exec.task.cgroup_id, path);
            (String::from_utf8_lossy(path).into_owned(), origin)
        });
        let mut verdicts =
            if self.is_runtime_setup(exec.task.cgroup_id, exec.task.mnt_ns, exec.host_root) {
                // runc init and friends: attributed to the container, but not its workload.
                Vec::new()
            } else {
                self.detector.on_exec(&ExecFacts {
                    uid: exec.task.uid,
                    exe: &process.exe,
                    args: &process.args,
                    container: container.as_ref().map(|c| container_facts(c)),
                    exe_layer,
                    script: script_origin.as_ref().map(|(p, o)| (p.as_str(), *o)),
                })
            };
        let escaped = texts.into_escaped();
        if let Some(start) = login {
            // The session line comes first: the exec line that opened it refers to it.
            self.emit_session(&start.session, None, process.clone(), escaped.clone(), sink);
            verdicts.insert(0, start.verdict);
        }
        let line = EventLine {
            schema: SCHEMA,
            time: self.config.clock.wall(exec.task.ktime_ns),
            node: self.config.node.clone(),
            kind: "exec",
            process: Some(process),
            container,
            file: None,
            network: None,
            session: session_id.map(|id| SessionJson {
                id,
                ..SessionJson::default()
            }),
            violation: None,
            loss: None,
            escaped,
        };
        self.emit_line(line, verdicts, true, 0, sink);
    }

    fn emit_file(&mut self, file: FileRecord, paths: Vec<Vec<u8>>, sink: &mut dyn LineSink) {
        let container = self.container_json(file.task.cgroup_id);
        // The runtime preparing a container (runc init creating mount points in the rootfs) is
        // not the container's workload; a host process writing into a container's overlay from
        // outside is neither a container event nor a host-path event.
        if self.is_runtime_setup(file.task.cgroup_id, file.task.mnt_ns, file.host_task)
            || (container.is_none() && !file.host_task)
        {
            return;
        }
        let mut texts = TextFields::default();
        let process = self.process_at(&file.task, &mut texts);
        let makes_executable = match file.op {
            FileOp::Create => true,
            FileOp::Chmod => file.mode & 0o111 != 0,
            _ => false,
        };
        let mut chosen = None;
        for path in &paths {
            let origin = if file.host_task {
                FileOrigin::Host
            } else {
                match file.layer {
                    Layer::Lower => FileOrigin::Image,
                    Layer::Upper => FileOrigin::Upper,
                    Layer::None => FileOrigin::Volume,
                    Layer::Unknown => match self.origin(file.task.cgroup_id, path) {
                        PathOrigin::Image => FileOrigin::Image,
                        PathOrigin::Upper => FileOrigin::Upper,
                        PathOrigin::Volume => FileOrigin::Volume,
                        PathOrigin::Absent | PathOrigin::Unknown => FileOrigin::Unknown,
                    },
                }
            };
            let shown = String::from_utf8_lossy(path).into_owned();
            let verdicts = self.detector.on_file(
                &FileFacts {
                    op: file.op,
                    path,
                    shown_path: &shown,
                    origin,
                    makes_executable,
                },
                &process.exe,
                &process.args,
                container.as_ref().map(|c| container_facts(c)).as_ref(),
            );
            if !verdicts.is_empty() {
                chosen = Some((path.clone(), origin, verdicts));
                break;
            }
        }
        // File lines are printed when a rule fires; the capture keeps every record.
        let Some((path, origin, verdicts)) = chosen else {
            return;
        };
        let mut repeats = 0;
        if let (Some(c), Some(first)) = (&container, verdicts.first()) {
            let key = (
                c.id.clone(),
                first.rule.as_str(),
                file.op.as_str(),
                path.clone(),
            );
            match self.repeat_gate(key, file.task.ktime_ns, u64::from(file.repeats)) {
                Some(held_back) => repeats = held_back,
                None => return,
            }
        }
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
        };
        let line = EventLine {
            schema: SCHEMA,
            time: self.config.clock.wall(file.task.ktime_ns),
            node: self.config.node.clone(),
            kind: "file",
            process: Some(process),
            container,
            file: Some(file_json),
            network: None,
            session: None,
            violation: None,
            loss: None,
            escaped: texts.into_escaped(),
        };
        self.emit_line(line, verdicts, false, repeats, sink);
    }

    /// The process behind a non-exec event, as the process table knew it at the event's time.
    pub(super) fn process_at(
        &self,
        task: &crate::event::Task,
        texts: &mut TextFields,
    ) -> crate::output::Shared<crate::output::ProcessJson> {
        let entry = self.procs.image_at(task.pid, task.ktime_ns);
        let parent_exe = entry.and_then(|e| self.procs.get(e.ppid)).map(|p| &*p.exe);
        render::process_from_table(task, entry, parent_exe, texts)
    }

    /// Whether a violation with `key` prints now: `Some(repeats held back since it last
    /// printed)`, or None when an identical one printed within [`REPEAT_WINDOW_NS`] (counted).
    /// `folded`: identical ones the kernel already counted into this event instead of sending.
    pub(super) fn repeat_gate(
        &mut self,
        key: super::RepeatKey,
        now: u64,
        folded: u64,
    ) -> Option<u64> {
        self.stats.repeats_suppressed += folded;
        match self.repeats.get_mut(&key) {
            Some((last, held_back)) if now.saturating_sub(*last) < REPEAT_WINDOW_NS => {
                *held_back += 1 + folded;
                self.stats.repeats_suppressed += 1;
                None
            }
            Some((last, held_back)) => {
                *last = now;
                Some(std::mem::take(held_back) + folded)
            }
            None => {
                self.repeats.insert(key, (now, 0));
                Some(folded)
            }
        }
    }

    pub(super) fn container_json(
        &self,
        cgroup_id: u64,
    ) -> Option<crate::output::Shared<crate::output::ContainerJson>> {
        match self.containers.lookup(cgroup_id) {
            CgroupLookup::Container(entry) => Some(render::container_json(entry)),
            _ => None,
        }
    }

    fn origin(&self, cgroup_id: u64, path: &[u8]) -> PathOrigin {
        let CgroupLookup::Container(entry) = self.containers.lookup(cgroup_id) else {
            return PathOrigin::Unknown;
        };
        self.origins
            .get(&entry.info.id)
            .and_then(|known| known.get(path))
            .copied()
            .unwrap_or(PathOrigin::Unknown)
    }

    /// Prints `line`, once per violation (each a complete event: alerting pipelines filter on one
    /// field), or once without one when `always` is set.
    pub(super) fn emit_line(
        &mut self,
        line: EventLine,
        verdicts: Vec<Verdict>,
        always: bool,
        repeats: u64,
        sink: &mut dyn LineSink,
    ) {
        if line
            .container
            .as_ref()
            .is_some_and(|c| c.metadata == "pending")
        {
            self.stats.metadata_pending += 1;
        }
        if verdicts.is_empty() {
            if always {
                self.write(&line, sink);
            }
            return;
        }
        let pod_namespace = line
            .container
            .as_ref()
            .and_then(|c| c.pod.as_ref())
            .and_then(|p| p.namespace.clone());
        for verdict in verdicts {
            self.stats.violations += 1;
            let key = ViolationKey {
                rule: verdict.rule.as_str(),
                severity: verdict.severity.as_str(),
                pod_namespace: pod_namespace.clone(),
            };
            *self.stats.violations_by.entry(key).or_default() += 1;
            let mut violating = line.clone();
            violating.violation = Some(ViolationJson {
                rule: verdict.rule.as_str(),
                severity: verdict.severity.as_str(),
                message: verdict.message,
                repeats: (repeats > 0).then_some(repeats),
                action: verdict.action,
            });
            self.write(&violating, sink);
        }
    }
}

pub(super) fn container_facts(c: &crate::output::ContainerJson) -> ContainerFacts<'_> {
    ContainerFacts {
        id: &c.id,
        name: c.name.as_deref(),
        image: c.image.as_deref(),
        pod_namespace: c.pod.as_ref().and_then(|p| p.namespace.as_deref()),
    }
}

/// The script an exec runs, if any: a `#!` script (the kernel swapped in an interpreter) or a
/// file given to an interpreter, as a container-relative path.
fn script_of(exec: &ExecRecord) -> Option<Vec<u8>> {
    if !exec.interp.is_empty() && exec.interp != exec.filename {
        return Some(resolve(&exec.cwd, &exec.filename));
    }
    interpreter_script(&exec.exe, &exec.args).map(|script| resolve(&exec.cwd, &script))
}

fn exe_layer(exec: &ExecRecord) -> ExeLayer {
    let origin = exec.exe_origin;
    if exec.exe.starts_with(b"/memfd:") {
        ExeLayer::Memfd
    } else if origin.deleted {
        ExeLayer::Deleted
    } else if origin.upper {
        ExeLayer::Upper
    } else if origin.overlay {
        ExeLayer::Lower
    } else {
        ExeLayer::Host
    }
}
