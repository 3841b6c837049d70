//! Answers the pipeline's lookups (container metadata, unknown cgroup paths) with blocking file
//! I/O on tokio's blocking pool, and feeds the answers back as pipeline inputs.
use std::{path::PathBuf, sync::Arc, time::Duration};

use tokio::sync::mpsc;

use crate::{
    container::{find_cgroup_by_id, MetadataError, MetadataResolver},
    pipeline::{Input, Request},
};

/// Pause between attempts while a runtime has not written a container's state yet.
const RETRY: Duration = Duration::from_millis(20);

pub struct Resolver {
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
