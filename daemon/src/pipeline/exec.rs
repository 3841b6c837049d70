//! Exec events: the process table learns the new image at arrival (children forked right after
//! must see it), the login rules decide whether it opens a session, and the line waits for the
//! container's metadata and its script's origin before the exec rules judge it.
use std::sync::Arc;

use super::{
    hold::{Held, Waiting},
    logins::SessionStart,
    render, Pipeline, Request,
};
use crate::{
    detect::{
        drift::{script_of, ExeLayer},
        Actor, ContainerFacts, ExecFacts,
    },
    event::ExecRecord,
    output::{LineSink, SessionJson, TextFields},
    state::{CgroupLookup, ProcEntry},
};

impl Pipeline {
    pub(super) fn exec(&mut self, exec: ExecRecord, sink: &mut dyn LineSink) {
        let parent_exe = self.state.procs.get(exec.ppid).map(|p| p.exe.clone());
        let workload = self.state.exec_is_workload(&exec, self.config.host_mnt_ns);
        self.state.procs.exec(
            exec.task.pid,
            ProcEntry {
                ppid: exec.ppid,
                exe: Arc::from(exec.exe.as_slice()),
                comm: exec.task.comm.clone(),
                args: Arc::from(exec.args.as_slice()),
                cwd: Arc::from(exec.cwd.as_slice()),
                exited_at: None,
                exec_ns: exec.task.ktime_ns,
                previous: None,
                image: 0,
                workload,
            },
        );
        let runtime_setup = self.is_runtime_setup(&exec);
        let script = if runtime_setup {
            None
        } else {
            self.warm_up_layers(exec.task.cgroup_id, exec.task.pid);
            self.state.learn_pid_namespace(&exec);
            script_of(&exec)
        };
        let login = if runtime_setup {
            None
        } else {
            self.open_session(&exec, parent_exe.as_deref())
        };
        let session_id = match &login {
            Some(start) => Some(start.session.id.clone()),
            None => self.state.sessions.exec(exec.task.pid),
        };
        let cgroup_id = self
            .state
            .container_cgroup(&exec)
            .unwrap_or(exec.task.cgroup_id);
        // A kernel that cannot read overlayfs's layout leaves the layer to a path look-up.
        let exe_lookup =
            (!runtime_setup && ExeLayer::of(&exec) == ExeLayer::Unknown).then(|| exec.exe.clone());
        let held = Held {
            cgroup_id,
            ktime_ns: exec.task.ktime_ns,
            what: Waiting::Exec {
                exec,
                parent_exe,
                script,
                exe_lookup,
                login: login.map(Box::new),
                session_id,
            },
        };
        self.hold_or_emit(held, sink);
    }

    /// runc init and friends: attributed to the container, but not its workload.
    fn is_runtime_setup(&self, exec: &ExecRecord) -> bool {
        self.state
            .is_runtime_setup(&exec.task, exec.host_root, self.config.host_mnt_ns)
    }

    /// Asks for a container's layers at its first workload exec, while that process surely
    /// lives: later lookups for short-lived processes (`rm`, `chmod`) then hit the cache.
    fn warm_up_layers(&mut self, cgroup_id: u64, pid: u32) {
        let state = &mut self.state;
        let CgroupLookup::Container(entry) = state.containers.lookup(cgroup_id) else {
            return;
        };
        // Answered already (the common case on every exec): no key to build.
        if state.origins.has_container(&entry.info.id) {
            return;
        }
        if state.origins.ask(&entry.info.id, b"") {
            self.requests.push(Request::PathOrigins {
                container_id: entry.info.id.clone(),
                pid,
                paths: Vec::new(),
                follow_last: true,
            });
        }
    }

    /// The exec line (after its session's line when it opened one), once per violation.
    pub(super) fn emit_exec(
        &mut self,
        exec: ExecRecord,
        parent_exe: Option<Arc<[u8]>>,
        script: Option<Vec<u8>>,
        login: Option<Box<SessionStart>>,
        session_id: Option<String>,
        sink: &mut dyn LineSink,
    ) {
        let mut texts = TextFields::default();
        let exe_layer =
            ExeLayer::of(&exec).looked_up(self.state.origin(exec.task.cgroup_id, &exec.exe));
        let process =
            render::process_json(&exec, parent_exe.as_deref(), exe_layer.as_str(), &mut texts);
        let cgroup_id = self
            .state
            .container_cgroup(&exec)
            .unwrap_or(exec.task.cgroup_id);
        let container = self.container_json(cgroup_id);
        let mut verdicts = if self.is_runtime_setup(&exec) {
            Vec::new()
        } else {
            let script = script.as_ref().map(|path| {
                let origin = self.state.origin(exec.task.cgroup_id, path);
                (String::from_utf8_lossy(path).into_owned(), origin)
            });
            self.detector.on_exec(&ExecFacts {
                uid: exec.task.uid,
                actor: Actor {
                    exe: &exec.exe,
                    args: &exec.args,
                    container: self.state.container(cgroup_id).map(ContainerFacts::of),
                },
                exe_layer,
                script: script.as_ref().map(|(p, o)| (p.as_str(), *o)),
            })
        };
        let escaped = texts.into_escaped();
        if let Some(start) = login {
            // The session line comes first: the exec line that opened it refers to it.
            self.emit_session(&start.session, None, process.clone(), escaped.clone(), sink);
            verdicts.insert(0, start.verdict);
        }
        let line = crate::output::EventLine {
            process: Some(process),
            container,
            session: session_id.map(|id| SessionJson {
                id,
                ..SessionJson::default()
            }),
            escaped,
            ..self.line(exec.task.ktime_ns, "exec")
        };
        self.emit_line(line, verdicts, true, 0, sink);
    }
}
