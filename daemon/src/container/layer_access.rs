//! Where the daemon can read a container's overlay layers. `mountinfo` names them by their path
//! on the node (`/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/12/fs`);
//! the daemon on the node reads them there, the daemon in a pod cannot (its root is its image).
//! In a pod they are reached under `--host-root` when the DaemonSet mounts the snapshot
//! directory there (the shipped overlays do, read-only), else through `/proc/1/root` (the node's
//! root with `hostPID` and `CAP_SYS_PTRACE`). A layer found in none of these places is said to
//! be unreachable, never taken as empty: every look-up in it would answer "not in the image".
use std::path::{Path, PathBuf};

use super::image_path::RootfsLayers;

/// The node's root as a pod with `hostPID` sees it.
pub const NODE_ROOT_VIA_PID1: &str = "/proc/1/root";

/// The places a layer path of the node is tried at, in order: as it is, then under each prefix.
#[derive(Debug, Clone, Default)]
pub struct LayerAccess {
    prefixes: Vec<PathBuf>,
}

/// No place where one of the container's layer directories can be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("overlay layer {layer} is not readable here (tried {})", tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
pub struct Unreachable {
    pub layer: PathBuf,
    pub tried: Vec<PathBuf>,
}

impl LayerAccess {
    /// `host_root` (`--host-root`) first, then the node's root through pid 1.
    pub fn new(host_root: Option<&Path>) -> LayerAccess {
        let prefixes = host_root
            .into_iter()
            .map(Path::to_path_buf)
            .chain(std::iter::once(PathBuf::from(NODE_ROOT_VIA_PID1)))
            .collect();
        LayerAccess { prefixes }
    }

    /// The same layers, each at the first place where it is a directory this process can read.
    pub fn place(&self, layers: RootfsLayers) -> Result<RootfsLayers, Unreachable> {
        let lower = layers
            .lower
            .iter()
            .map(|layer| self.find(layer))
            .collect::<Result<_, _>>()?;
        let upper = layers.upper.as_deref().map(|u| self.find(u)).transpose()?;
        Ok(RootfsLayers {
            lower,
            upper,
            mounts: layers.mounts,
        })
    }

    fn find(&self, layer: &Path) -> Result<PathBuf, Unreachable> {
        let relative = layer.strip_prefix("/").unwrap_or(layer);
        let candidates: Vec<PathBuf> = std::iter::once(layer.to_path_buf())
            .chain(self.prefixes.iter().map(|prefix| prefix.join(relative)))
            .collect();
        candidates
            .iter()
            .find(|candidate| std::fs::read_dir(candidate).is_ok())
            .cloned()
            .ok_or(Unreachable {
                layer: layer.to_path_buf(),
                tried: candidates,
            })
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    fn layers(lower: &[&Path], upper: &Path) -> RootfsLayers {
        RootfsLayers {
            lower: lower.iter().map(|p| p.to_path_buf()).collect(),
            upper: Some(upper.to_path_buf()),
            mounts: vec![b"/data".to_vec()],
        }
    }

    #[test]
    fn layers_are_read_where_they_are_or_under_the_host_root() {
        let node = tempfile::tempdir().unwrap();
        let host_root = tempfile::tempdir().unwrap();
        // One layer is where mountinfo says; the other only under the host root (a pod).
        let here = node.path().join("snapshots/1/fs");
        std::fs::create_dir_all(&here).unwrap();
        let elsewhere = Path::new("/var/lib/sw-test-absent/snapshots/2/fs");
        let mounted = host_root.path().join(elsewhere.strip_prefix("/").unwrap());
        std::fs::create_dir_all(&mounted).unwrap();
        let access = LayerAccess::new(Some(host_root.path()));
        let placed = access.place(layers(&[&here], elsewhere)).unwrap();
        assert_eq!(placed.lower, vec![here]);
        assert_eq!(placed.upper, Some(mounted));
        assert_eq!(placed.mounts, vec![b"/data".to_vec()], "mounts untouched");
    }

    #[test]
    fn a_layer_found_nowhere_is_unreachable_with_every_place_tried() {
        let host_root = tempfile::tempdir().unwrap();
        let missing = Path::new("/var/lib/sw-test-absent/snapshots/3/fs");
        let access = LayerAccess::new(Some(host_root.path()));
        let err = access.place(layers(&[missing], missing)).unwrap_err();
        assert_eq!(err.layer, missing);
        assert_eq!(
            err.tried,
            vec![
                missing.to_path_buf(),
                host_root
                    .path()
                    .join("var/lib/sw-test-absent/snapshots/3/fs"),
                PathBuf::from("/proc/1/root/var/lib/sw-test-absent/snapshots/3/fs"),
            ]
        );
        assert!(err.to_string().contains("/proc/1/root/var/lib"), "{err}");
    }
}
