//! Never log in: recognising processes that entered a container or the node from outside, and
//! printing their sessions.
use super::{
    render,
    sessions::{session_id, Session, SessionType},
    Pipeline,
};
use crate::{
    detect::{ContainerFacts, Verdict},
    event::ExecRecord,
    output::{EventLine, LineSink, SessionJson, TextFields, SCHEMA},
    policy::RuleId,
    state::CgroupLookup,
};

/// A session that an exec opens, with the violation it is.
#[derive(Debug, Clone)]
pub struct SessionStart {
    pub session: Session,
    pub verdict: Verdict,
}

const SHELLS: &[&str] = &["sh", "ash", "bash", "dash", "zsh", "ksh", "fish"];

fn basename(path: &[u8]) -> &[u8] {
    path.rsplit(|b| *b == b'/').next().unwrap_or(path)
}

/// An interactive shell: its exe, or (busybox) its argv[0], names a shell.
fn is_shell(exec: &ExecRecord) -> bool {
    let named = |name: &[u8]| SHELLS.iter().any(|s| s.as_bytes() == name);
    named(basename(&exec.exe))
        || exec
            .args
            .first()
            .is_some_and(|arg0| named(basename(arg0).strip_prefix(b"-").unwrap_or(basename(arg0))))
}

impl Pipeline {
    /// The container cgroup a process belongs to: by its cgroup, or, for processes that joined
    /// a container's namespaces without its cgroup (`nsenter`), by its pid namespace.
    pub(super) fn container_cgroup(&self, exec: &ExecRecord) -> Option<u64> {
        match self.containers.lookup(exec.task.cgroup_id) {
            CgroupLookup::Container(_) => Some(exec.task.cgroup_id),
            _ if exec.pid_level > 0 => self.pidns_container.get(&exec.task.pid_ns).copied(),
            _ => None,
        }
    }

    /// Decides at arrival (so that children forked right after inherit it) whether this exec
    /// opens a login session, and which rule that breaks.
    pub(super) fn classify_login(
        &mut self,
        exec: &ExecRecord,
        parent_exe: Option<&[u8]>,
        runtime_setup: bool,
    ) -> Option<SessionStart> {
        if runtime_setup {
            return None;
        }
        let tty = exec
            .tty
            .as_deref()
            .map(|t| String::from_utf8_lossy(&render::tty_name(t)).into_owned());
        let entered =
            exec.parent_pid_ns != 0 && exec.parent_pid_ns != exec.task.pid_ns && exec.vpid != 1;
        let container_cgroup = self.container_cgroup(exec);
        let parent = parent_exe.map(basename).unwrap_or_default();
        let exe = basename(&exec.exe);
        let (kind, rule, what) = if let (Some(_), true) = (container_cgroup, exec.pid_level > 0) {
            let already = self.sessions.of(exec.task.pid).is_some();
            match (entered, tty.is_some()) {
                (true, true) => (
                    SessionType::ContainerExec,
                    RuleId::InteractiveSessionInContainer,
                    "entered the container with a terminal",
                ),
                (true, false) => (
                    SessionType::ContainerExec,
                    RuleId::ContainerExec,
                    "entered the container from outside",
                ),
                (false, true) if is_shell(exec) && !already => (
                    SessionType::ContainerExec,
                    RuleId::InteractiveSessionInContainer,
                    "a shell attached to a terminal runs in the container",
                ),
                _ => return None,
            }
        } else if exec.pid_level == 0 && container_cgroup.is_none() {
            if exec.parent_pid_ns != 0 && exec.parent_pid_ns != exec.task.pid_ns {
                (
                    SessionType::Nsenter,
                    RuleId::NodeInteractiveLogin,
                    "left a container into the host's namespaces",
                )
            } else if (parent == b"sshd" || parent == b"sshd-session")
                && exe != b"sshd"
                && exe != b"sshd-session"
            {
                (
                    SessionType::Ssh,
                    RuleId::NodeInteractiveLogin,
                    "logged in to the node over SSH",
                )
            } else if parent == b"login" && exe != b"login" {
                (
                    SessionType::Console,
                    RuleId::NodeInteractiveLogin,
                    "logged in on the node's console",
                )
            } else {
                return None;
            }
        } else {
            return None;
        };
        // A process already in a session of this kind (the leader exec'ing its command, `ssh
        // host cmd`, a shell's `exec`) stays in it; entering anew (podman exec from an SSH
        // session) opens a nested session of another kind.
        if self
            .sessions
            .of(exec.task.pid)
            .is_some_and(|session| session.kind == kind)
        {
            return None;
        }
        let exe_text = String::from_utf8_lossy(&exec.exe).into_owned();
        let args: Vec<String> = exec
            .args
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let container = container_cgroup.and_then(|cgroup| self.container_json(cgroup));
        let message = format!(
            "{exe_text} {what} (uid {}{})",
            exec.task.uid,
            tty.as_deref()
                .map(|t| format!(", tty {t}"))
                .unwrap_or_default()
        );
        let verdict = self.detector.on_login(
            rule,
            message,
            &exe_text,
            &args,
            container
                .as_ref()
                .map(|c| ContainerFacts {
                    id: &c.id,
                    name: c.name.as_deref(),
                    image: c.image.as_deref(),
                    pod_namespace: c.pod.as_ref().and_then(|p| p.namespace.as_deref()),
                })
                .as_ref(),
        )?;
        let text = |value: &[u8]| String::from_utf8_lossy(value).into_owned();
        let remote = exec.login_var("SSH_CONNECTION").and_then(|conn| {
            let text = text(conn);
            let mut parts = text.split(' ');
            Some(format!("{}:{}", parts.next()?, parts.next()?))
        });
        let session = Session {
            id: session_id(exec.task.ktime_ns, exec.task.pid),
            kind,
            leader: exec.task.pid,
            started_ns: exec.task.ktime_ns,
            commands: 0,
            user: exec.task.uid.to_string(),
            tty,
            remote,
            k8s_audit_id: exec
                .login_var("KUBERNETES_EXEC_AUDIT_ID")
                .or_else(|| exec.login_var("SPO_EXEC_REQUEST_UID"))
                .map(text),
            cgroup_id: container_cgroup.unwrap_or(exec.task.cgroup_id),
        };
        Some(SessionStart {
            session: self.sessions.start(session),
            verdict,
        })
    }

    /// Prints a session's start or end line.
    pub(super) fn emit_session(
        &mut self,
        session: &Session,
        ended_ns: Option<u64>,
        process: crate::output::Shared<crate::output::ProcessJson>,
        escaped: Vec<String>,
        sink: &mut dyn LineSink,
    ) {
        let kind = match session.kind {
            SessionType::ContainerExec => "container-exec",
            SessionType::Ssh => "ssh",
            SessionType::Console => "console",
            SessionType::Nsenter => "nsenter",
        };
        let line = EventLine {
            schema: SCHEMA,
            time: self
                .config
                .clock
                .wall(ended_ns.unwrap_or(session.started_ns)),
            node: self.config.node.clone(),
            kind: "session",
            process: Some(process),
            container: self.container_json(session.cgroup_id),
            file: None,
            network: None,
            session: Some(SessionJson {
                id: session.id.clone(),
                kind: Some(kind),
                user: Some(session.user.clone()),
                tty: Some(session.tty.clone()),
                remote: Some(session.remote.clone()),
                state: Some(if ended_ns.is_some() { "end" } else { "start" }),
                k8s_audit_id: session.k8s_audit_id.clone(),
                duration_seconds: ended_ns
                    .map(|end| end.saturating_sub(session.started_ns) as f64 / 1e9),
                commands: ended_ns.map(|_| session.commands),
            }),
            violation: None,
            loss: None,
            escaped,
        };
        self.write(&line, sink);
    }

    /// A process exited: if it led a session, the session ends.
    pub(super) fn session_exit(&mut self, pid: u32, ktime_ns: u64, sink: &mut dyn LineSink) {
        let Some(session) = self.sessions.exit(pid) else {
            return;
        };
        let entry = self.procs.get(pid).cloned();
        let mut texts = TextFields::default();
        let task = crate::event::Task {
            ktime_ns,
            pid,
            tid: pid,
            uid: session.user.parse().unwrap_or(0),
            gid: 0,
            cgroup_id: session.cgroup_id,
            mnt_ns: 0,
            pid_ns: 0,
            comm: entry.as_ref().map(|e| e.comm.clone()).unwrap_or_default(),
        };
        let process = render::process_from_table(&task, entry.as_ref(), None, &mut texts);
        self.emit_session(
            &session,
            Some(ktime_ns),
            process,
            texts.into_escaped(),
            sink,
        );
    }
}
