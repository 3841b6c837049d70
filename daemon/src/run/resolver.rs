//! Answers the pipeline's lookups (container metadata, unknown cgroup paths) with blocking file
//! I/O on tokio's blocking pool, and feeds the answers back as pipeline inputs.
use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::mpsc;

use crate::{
    container::{
        find_cgroup_by_id,
        image_path::{parse_rootfs, PathOrigin, RootfsLayers},
        in_root::{InRootError, Last, ProcessView},
        layer_access::LayerAccess,
        MetadataError, MetadataResolver,
    },
    input::{Input, Request},
    state::origins::{Canonical, Origins},
};

/// Pause between attempts while a runtime has not written a container's state yet.
const RETRY: Duration = Duration::from_millis(20);

/// Overlay layers per container, read once from a container process's mount table.
/// With the pid they were read from: a process of the container whose root the paths are
/// resolved in when the one that named them is gone.
type LayerCache = Arc<Mutex<HashMap<String, Option<(RootfsLayers, u32)>>>>;

pub struct Resolver {
    layers: LayerCache,
    access: Arc<LayerAccess>,
    metadata: Arc<MetadataResolver>,
    cgroup_root: Arc<PathBuf>,
    /// Give up on metadata after this long (the pipeline stops holding events then too).
    patience: Duration,
    tx: mpsc::Sender<Vec<Input>>,
}

impl Resolver {
    pub fn new(
        metadata: MetadataResolver,
        access: LayerAccess,
        cgroup_root: PathBuf,
        patience: Duration,
        tx: mpsc::Sender<Vec<Input>>,
    ) -> Self {
        Resolver {
            layers: Arc::default(),
            access: Arc::new(access),
            metadata: Arc::new(metadata),
            cgroup_root: Arc::new(cgroup_root),
            patience,
            tx,
        }
    }

    pub fn dispatch(&self, requests: Vec<Request>) {
        for request in requests {
            let tx = self.tx.clone();
            match request {
                Request::Metadata(container) => {
                    let metadata = self.metadata.clone();
                    let patience = self.patience;
                    tokio::task::spawn_blocking(move || {
                        let started = std::time::Instant::now();
                        let meta = loop {
                            match metadata.resolve(&container) {
                                Ok(meta) => break Some(meta),
                                Err(MetadataError::NotFound { .. })
                                    if started.elapsed() < patience =>
                                {
                                    std::thread::sleep(RETRY);
                                }
                                Err(err) => {
                                    tracing::warn!(
                                        container = %container.id,
                                        runtime = container.runtime.as_str(),
                                        %err,
                                        "container metadata unavailable"
                                    );
                                    break None;
                                }
                            }
                        };
                        let _ = tx.blocking_send(vec![Input::Metadata {
                            container_id: container.id.clone(),
                            meta,
                        }]);
                    });
                }
                Request::PathOrigins {
                    container_id,
                    pid,
                    paths,
                    follow_last,
                } => {
                    let layers = self.layers.clone();
                    let access = self.access.clone();
                    tokio::task::spawn_blocking(move || {
                        let last = if follow_last {
                            Last::Follow
                        } else {
                            Last::NoFollow
                        };
                        let (origins, canonical) =
                            path_origins(&layers, &access, &container_id, pid, &paths, last);
                        tracing::debug!(container = %container_id, pid, ?origins, "path origins");
                        let _ = tx.blocking_send(vec![Input::PathOrigins {
                            container_id,
                            origins,
                            canonical,
                        }]);
                    });
                }
                // Carried out by the enforcer on the main thread (see `run::dispatch`).
                Request::Enforce(_) | Request::ContainerCgroup { .. } => {}
                Request::CgroupPath(id) => {
                    let root = self.cgroup_root.clone();
                    tokio::task::spawn_blocking(move || {
                        let path = find_cgroup_by_id(&root, id);
                        let _ = tx.blocking_send(vec![Input::CgroupPath { id, path }]);
                    });
                }
            }
        }
    }
}

/// Where each path of a container comes from. Each path is first resolved inside the
/// container's root, as the kernel resolved it for the process (`container::in_root`); the
/// layers never change, so they are read once per container (from `/proc/<pid>/mountinfo` of
/// one of its processes).
fn path_origins(
    cache: &LayerCache,
    access: &LayerAccess,
    container_id: &str,
    pid: u32,
    paths: &[Vec<u8>],
    last: Last,
) -> (Origins, Canonical) {
    let layers = container_layers(cache, access, container_id, pid);
    let mut origins = Vec::with_capacity(paths.len());
    let mut canonical = Vec::new();
    for path in paths {
        let Some((layers, known_pid)) = &layers else {
            origins.push((path.clone(), PathOrigin::Unknown));
            continue;
        };
        let file = resolve_in_container(container_id, pid, *known_pid, path, last);
        let origin = match &file {
            Some(file) => layers.origin(file),
            None => {
                tracing::debug!(
                    container = container_id,
                    pid,
                    path = %String::from_utf8_lossy(path),
                    "path not resolvable inside the container (its processes are gone)"
                );
                PathOrigin::Unknown
            }
        };
        if let Some(file) = file.filter(|file| file != path) {
            canonical.push((path.clone(), file));
        }
        origins.push((path.clone(), origin));
    }
    (origins, canonical)
}

/// The file `path` names inside the container: resolved in the root of the process that named
/// it, or, when that one is gone, of another process of the container (the one its layers were
/// read from, else any) — unless the text names something of that process alone
/// (`/proc/self/cwd`, `/proc/self/fd/N`), which another process cannot answer.
fn resolve_in_container(
    container_id: &str,
    pid: u32,
    known_pid: u32,
    path: &[u8],
    last: Last,
) -> Option<Vec<u8>> {
    match (ProcessView { pid }).canonical(path, last) {
        Ok(file) => return Some(file),
        Err(InRootError::Root(_)) if !names_process_state(path) => {}
        Err(_) => return None,
    }
    std::iter::once(known_pid)
        .chain(container_pids(container_id))
        .filter(|other| *other != pid)
        .find_map(|other| ProcessView { pid: other }.canonical(path, last).ok())
}

/// `/proc/<self|pid>/{cwd,fd}/...`: a path that only its own process can resolve.
fn names_process_state(path: &[u8]) -> bool {
    let Some(rest) = path.strip_prefix(b"/proc/") else {
        return false;
    };
    let mut parts = rest.split(|b| *b == b'/').filter(|p| !p.is_empty());
    parts.next();
    matches!(parts.next(), Some(b"cwd" | b"fd"))
}

/// The container's layers, where this process can read them, and the pid they were read from;
/// cached per container. `None` when no process of the container is left to name them, or when
/// they cannot be read here (said once per container, then remembered).
fn container_layers(
    cache: &LayerCache,
    access: &LayerAccess,
    container_id: &str,
    pid: u32,
) -> Option<(RootfsLayers, u32)> {
    let cached = cache
        .lock()
        .ok()
        .and_then(|cache| cache.get(container_id).cloned());
    if let Some(cached) = cached {
        return cached;
    }
    // The process may be gone already; any process of the container will do.
    let read = std::iter::once(pid)
        .chain(container_pids(container_id))
        .find_map(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
                .ok()
                .and_then(|text| parse_rootfs(&text))
                .map(|layers| (layers, pid))
        });
    let Some((layers, pid)) = read else {
        tracing::debug!(container = container_id, pid, "overlay layers not readable");
        return None;
    };
    let placed = match access.place(layers) {
        Ok(layers) => Some((layers, pid)),
        Err(err) => {
            tracing::warn!(
                container = container_id,
                %err,
                "this container's path-based changes (rm, mv, chmod by path) and scripts cannot \
                 be checked against its image: mount the runtime's snapshot directory under \
                 --host-root, or run with hostPID and CAP_SYS_PTRACE (README, \"Kubernetes\"); \
                 each one is counted in sealwatch_path_lookups_unanswered_total"
            );
            None
        }
    };
    if let Ok(mut cache) = cache.lock() {
        // Bounded by live containers in practice; a crude cap keeps a leak impossible.
        if cache.len() > 4096 {
            cache.clear();
        }
        cache.insert(container_id.to_owned(), placed.clone());
    }
    placed
}

/// Live processes whose cgroup path names the container (a fallback: scans /proc).
fn container_pids(container_id: &str) -> impl Iterator<Item = u32> + '_ {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(move |pid| {
            std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
                .is_ok_and(|cgroups| cgroups.contains(container_id))
        })
}
