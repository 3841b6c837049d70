//! Render: turning records and facts into the JSON line model (`output`), one constructor per
//! object. It knows neither `state` nor `detect`: callers hand it plain views of what they know
//! ([`ImageView`], the container's id and metadata), so the data flows one way. [`RenderCache`]
//! keeps the objects that repeat across lines.
mod cache;
mod network;

pub use cache::RenderCache;
pub use network::network_json;

use crate::{
    container::{CgroupContainer, ContainerMeta},
    event::{ExecRecord, Task},
    output::{ContainerJson, PodJson, ProcessJson, Rendered, Shared, TextFields},
};

/// A process image as the process table knows it.
#[derive(Debug, Clone, Copy)]
pub struct ImageView<'a> {
    pub ppid: u32,
    pub exe: &'a [u8],
    pub args: &'a [Vec<u8>],
    pub cwd: &'a [u8],
}

/// The process of an exec event; its escaped fields are added to `texts`.
pub fn process_json(
    exec: &ExecRecord,
    parent_exe: Option<&[u8]>,
    exe_layer: &'static str,
    texts: &mut TextFields,
) -> Shared<ProcessJson> {
    let fragment = rendered(|own| exec_process(exec, parent_exe, exe_layer, own));
    texts.extend(fragment.escaped());
    fragment
}

/// Builds a process object with its own escaped-field list and renders it.
fn rendered(build: impl FnOnce(&mut TextFields) -> ProcessJson) -> Shared<ProcessJson> {
    let mut own = TextFields::default();
    let process = build(&mut own);
    Rendered::new(process, own.into_escaped())
}

fn exec_process(
    exec: &ExecRecord,
    parent_exe: Option<&[u8]>,
    exe_layer: &'static str,
    texts: &mut TextFields,
) -> ProcessJson {
    ProcessJson {
        pid: exec.task.pid,
        ppid: exec.ppid,
        uid: exec.task.uid,
        gid: exec.task.gid,
        comm: texts.text("/process/comm", &exec.task.comm),
        exe: texts.text("/process/exe", &exec.exe),
        args: texts.texts("/process/args", &exec.args),
        args_truncated: exec.args_truncated,
        cwd: texts.text("/process/cwd", &exec.cwd),
        tty: exec
            .tty
            .as_deref()
            .map(|tty| texts.text("/process/tty", &tty_name(tty))),
        loginuid: exec.loginuid,
        sessionid: exec.sessionid,
        parent_exe: parent_exe
            .filter(|exe| !exe.is_empty())
            .map(|exe| texts.text("/process/parent_exe", exe)),
        exe_layer: Some(exe_layer),
    }
}

/// The process behind a non-exec event, from its image in the process table (None: unknown),
/// rendered afresh; its escaped fields are added to `texts`. [`RenderCache::process`] reuses it.
pub fn process_from_table(
    task: &Task,
    image: Option<&ImageView<'_>>,
    parent_exe: Option<&[u8]>,
    texts: &mut TextFields,
) -> Shared<ProcessJson> {
    let fragment = rendered(|own| table_process(task, image, parent_exe, own));
    texts.extend(fragment.escaped());
    fragment
}

fn table_process(
    task: &Task,
    image: Option<&ImageView<'_>>,
    parent_exe: Option<&[u8]>,
    texts: &mut TextFields,
) -> ProcessJson {
    ProcessJson {
        pid: task.pid,
        ppid: image.map_or(0, |e| e.ppid),
        uid: task.uid,
        gid: task.gid,
        comm: texts.text("/process/comm", &task.comm),
        exe: texts.text("/process/exe", image.map_or(&[][..], |e| e.exe)),
        args: texts.texts("/process/args", image.map_or(&[][..], |e| e.args)),
        args_truncated: false,
        cwd: texts.text("/process/cwd", image.map_or(&[][..], |e| e.cwd)),
        tty: None,
        loginuid: None,
        sessionid: None,
        parent_exe: parent_exe
            .filter(|exe| !exe.is_empty())
            .map(|exe| texts.text("/process/parent_exe", exe)),
        exe_layer: None,
    }
}

/// The container object of a container's lines: its cgroup's facts, its metadata when known
/// (`status`: `complete`, `pending` or `unavailable`).
pub fn container(
    info: &CgroupContainer,
    meta: Option<&ContainerMeta>,
    status: &'static str,
) -> ContainerJson {
    ContainerJson {
        id: info.id.clone(),
        runtime: info.runtime.as_str(),
        name: meta.and_then(|m| m.name.clone()),
        image: meta.and_then(|m| m.image.clone()),
        pod: meta
            .and_then(|m| m.pod.as_ref())
            .map(|pod| PodJson {
                name: pod.name.clone(),
                namespace: pod.namespace.clone(),
                uid: pod.uid.clone(),
            })
            .or_else(|| {
                // The cgroup path alone can tell the pod uid (kubepods) before metadata arrives.
                info.pod_uid.as_ref().map(|uid| PodJson {
                    name: None,
                    namespace: None,
                    uid: Some(uid.clone()),
                })
            }),
        metadata: status,
    }
}

/// The kernel names pseudo-terminals `pts3`; users know them as `pts/3` (as `ps` and `who` do).
pub fn tty_name(kernel: &[u8]) -> Vec<u8> {
    match kernel.strip_prefix(b"pts") {
        Some(index) if !index.is_empty() && index.iter().all(u8::is_ascii_digit) => {
            [&b"pts/"[..], index].concat()
        }
        _ => kernel.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tty_names_follow_ps() {
        assert_eq!(tty_name(b"pts3"), b"pts/3");
        assert_eq!(tty_name(b"tty1"), b"tty1");
        assert_eq!(tty_name(b"ptsx"), b"ptsx");
    }
}
