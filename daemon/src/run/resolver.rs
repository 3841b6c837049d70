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
        in_root::{Last, ProcessView},
        MetadataError, MetadataResolver,
    },
    input::{Input, Request},
};

/// Pause between attempts while a runtime has not written a container's state yet.
const RETRY: Duration = Duration::from_millis(20);

/// Overlay layers per container, read once from a container process's mount table.
/// With the pid they were read from: a process of the container whose root the paths are
/// resolved in when the one that named them is gone.
type LayerCache = Arc<Mutex<HashMap<String, Option<(RootfsLayers, u32)>>>>;

pub struct Resolver {
    layers: LayerCache,
    metadata: Arc<MetadataResolver>,
    cgroup_root: Arc<PathBuf>,
    /// Give up on metadata after this long (the pipeline stops holding events then too).
    patience: Duration,
    tx: mpsc::Sender<Vec<Input>>,
}

impl Resolver {
    pub fn new(
        metadata: MetadataResolver,
        cgroup_root: PathBuf,
        patience: Duration,
        tx: mpsc::Sender<Vec<Input>>,
    ) -> Self {
        Resolver {
            layers: Arc::default(),
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
                } => {
                    let layers = self.layers.clone();
                    tokio::task::spawn_blocking(move || {
                        let paths: Vec<(Vec<u8>, Last)> =
                            paths.into_iter().map(|p| (p, Last::NoFollow)).collect();
                        let origins = path_origins(&layers, &container_id, pid, &paths);
                        tracing::debug!(container = %container_id, pid, ?origins, "path origins");
                        let _ = tx.blocking_send(vec![Input::PathOrigins {
                            container_id,
                            origins,
                        }]);
                    });
                }
                // Carried out by the enforcer on the main thread (see `run::dispatch`).
                Request::Enforce(_) => {}
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
    container_id: &str,
    pid: u32,
    paths: &[(Vec<u8>, Last)],
) -> Vec<(Vec<u8>, PathOrigin)> {
    let layers = container_layers(cache, container_id, pid);
    paths
        .iter()
        .map(|(path, last)| {
            let origin = match &layers {
                None => PathOrigin::Unknown,
                Some((layers, known_pid)) => {
                    // The process that named the path, or (gone) the one the layers came from.
                    let canonical = [pid, *known_pid]
                        .into_iter()
                        .find_map(|pid| ProcessView { pid }.canonical(path, *last).ok());
                    match canonical {
                        Some(canonical) => layers.origin(&canonical),
                        None => {
                            tracing::debug!(
                                container = container_id,
                                pid,
                                path = %String::from_utf8_lossy(path),
                                "path not resolvable inside the container (its processes are gone)"
                            );
                            PathOrigin::Unknown
                        }
                    }
                }
            };
            (path.clone(), origin)
        })
        .collect()
}

/// The container's layers and the pid they were read from, cached per container.
fn container_layers(
    cache: &LayerCache,
    container_id: &str,
    pid: u32,
) -> Option<(RootfsLayers, u32)> {
    let cached = cache
        .lock()
        .ok()
        .and_then(|cache| cache.get(container_id).cloned());
    if let Some(Some(layers)) = cached {
        return Some(layers);
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
    if read.is_none() {
        tracing::debug!(container = container_id, pid, "overlay layers not readable");
    }
    if let (Some(layers), Ok(mut cache)) = (&read, cache.lock()) {
        // Bounded by live containers in practice; a crude cap keeps a leak impossible.
        if cache.len() > 4096 {
            cache.clear();
        }
        cache.insert(container_id.to_owned(), Some(layers.clone()));
    }
    read
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
