//! Where a path inside a container comes from: the image (a lower overlay layer), the
//! container's own writable layer, a volume, or nowhere. Answered live by the resolver from the
//! container's overlay mount, and recorded as a pipeline input so replay needs no filesystem.
use std::{
    os::unix::{ffi::OsStrExt, fs::FileTypeExt},
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PathOrigin {
    /// Present in a lower layer (and not whited out above it): part of the image.
    Image,
    /// Only in the upper layer: created in the container.
    Upper,
    /// Under another mount inside the container (volume, bind mount, tmpfs, /proc ...).
    Volume,
    /// In no layer.
    Absent,
    /// The container's layers could not be read.
    Unknown,
}

/// The overlay layers of a container's root filesystem and its other mount points.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RootfsLayers {
    /// Topmost first, as overlayfs lists them.
    pub lower: Vec<PathBuf>,
    pub upper: Option<PathBuf>,
    /// Mount points inside the container other than `/`.
    pub mounts: Vec<Vec<u8>>,
}

/// Reads the layers from a container process's `/proc/<pid>/mountinfo` text.
pub fn parse_rootfs(mountinfo: &str) -> Option<RootfsLayers> {
    let mut layers = None;
    let mut mounts = Vec::new();
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(separator) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        let (Some(mount_point), Some(fs_type), Some(options)) = (
            fields.get(4),
            fields.get(separator + 1),
            fields.get(separator + 3),
        ) else {
            continue;
        };
        let mount_point = unescape_octal(mount_point);
        if mount_point == b"/" {
            if *fs_type == "overlay" {
                layers = Some(overlay_options(options));
            }
        } else {
            mounts.push(mount_point);
        }
    }
    layers.map(|mut layers: RootfsLayers| {
        layers.mounts = mounts;
        layers
    })
}

fn overlay_options(options: &str) -> RootfsLayers {
    let mut layers = RootfsLayers::default();
    for option in options.split(',') {
        if let Some(lower) = option.strip_prefix("lowerdir=") {
            // Colons separate layers; a literal colon is escaped as `\:`.
            layers.lower = lower
                .replace("\\:", "\u{0}")
                .split(':')
                .map(|dir| {
                    PathBuf::from(
                        String::from_utf8_lossy(&unescape_octal(&dir.replace('\u{0}', ":")))
                            .into_owned(),
                    )
                })
                .collect();
        } else if let Some(upper) = option.strip_prefix("upperdir=") {
            layers.upper = Some(PathBuf::from(
                String::from_utf8_lossy(&unescape_octal(upper)).into_owned(),
            ));
        }
    }
    layers
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_octal(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() {
            if let Ok(value) = u8::from_str_radix(&text[i + 1..i + 4], 8) {
                out.push(value);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

impl RootfsLayers {
    /// Where `path` comes from: a canonical path inside the container (see
    /// [`super::in_root`]: no symlink in it, no `..`), so the layers are asked about exactly the
    /// file the container named, and nothing in a layer is followed.
    pub fn origin(&self, path: &[u8]) -> PathOrigin {
        if self.mounts.iter().any(|mount| under(path, mount)) {
            return PathOrigin::Volume;
        }
        let relative = path.strip_prefix(b"/").unwrap_or(path);
        for lower in &self.lower {
            match entry_in_layer(lower, relative) {
                // A whiteout (0/0 character device) in a higher layer hides the file below.
                Ok(Some(meta)) if meta.file_type().is_char_device() && meta_rdev_zero(&meta) => {
                    return PathOrigin::Absent;
                }
                Ok(Some(_)) => return PathOrigin::Image,
                Ok(None) => continue,
                Err(_) => return PathOrigin::Unknown,
            }
        }
        match self
            .upper
            .as_deref()
            .map(|upper| entry_in_layer(upper, relative))
        {
            Some(Ok(Some(_))) => PathOrigin::Upper,
            Some(Err(_)) => PathOrigin::Unknown,
            Some(Ok(None)) | None => PathOrigin::Absent,
        }
    }
}

/// The entry `relative` in one layer directory, looked up without following any symlink: every
/// directory on the way must be a real directory in that layer (a layer's own symlink, say an
/// image's `/a -> /etc`, would otherwise lead the lookup into the host's tree). `Ok(None)`: not
/// in this layer; an error: the layer could not be read there (permissions, I/O), which says
/// nothing about whether the file is in it.
fn entry_in_layer(layer: &Path, relative: &[u8]) -> std::io::Result<Option<std::fs::Metadata>> {
    let mut at = layer.to_path_buf();
    let parts: Vec<&[u8]> = relative
        .split(|b| *b == b'/')
        .filter(|p| !p.is_empty())
        .collect();
    for (i, part) in parts.iter().enumerate() {
        at.push(std::ffi::OsStr::from_bytes(part));
        let meta = match std::fs::symlink_metadata(&at) {
            Ok(meta) => meta,
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                return Ok(None)
            }
            Err(err) => return Err(err),
        };
        if i + 1 == parts.len() {
            return Ok(Some(meta));
        }
        if !meta.is_dir() {
            return Ok(None);
        }
    }
    std::fs::symlink_metadata(&at).map(Some)
}

fn meta_rdev_zero(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    meta.rdev() == 0
}

fn under(path: &[u8], mount: &[u8]) -> bool {
    path.strip_prefix(mount)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(b"/"))
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "79 51 0:40 / / rw,relatime - overlay overlay rw,lowerdir=/L/top:/L/base,upperdir=/U/diff,workdir=/U/work,uuid=on\n\
80 79 0:41 / /proc rw - proc proc rw\n\
81 79 254:0 /srv/data /data\\040dir rw - ext4 /dev/vda rw\n";

    #[test]
    fn parses_layers_and_mounts() {
        let layers = parse_rootfs(MOUNTINFO).unwrap();
        assert_eq!(
            layers.lower,
            vec![PathBuf::from("/L/top"), PathBuf::from("/L/base")]
        );
        assert_eq!(layers.upper, Some(PathBuf::from("/U/diff")));
        assert_eq!(
            layers.mounts,
            vec![b"/proc".to_vec(), b"/data dir".to_vec()]
        );
        assert_eq!(layers.origin(b"/data dir/x"), PathOrigin::Volume);
        assert_eq!(layers.origin(b"/proc"), PathOrigin::Volume);
    }

    #[test]
    fn not_overlay_means_no_layers() {
        assert!(parse_rootfs("1 0 0:1 / / rw - ext4 /dev/vda rw\n").is_none());
    }

    #[test]
    fn origin_checks_layers_in_order() {
        let root = tempfile::tempdir().unwrap();
        let (top, base, upper) = (
            root.path().join("top"),
            root.path().join("base"),
            root.path().join("up"),
        );
        for dir in [&top, &base, &upper] {
            std::fs::create_dir_all(dir.join("etc")).unwrap();
        }
        std::fs::write(base.join("etc/passwd"), "root").unwrap();
        std::fs::write(upper.join("etc/new"), "x").unwrap();
        let layers = RootfsLayers {
            lower: vec![top, base.clone()],
            upper: Some(upper),
            mounts: vec![],
        };
        assert_eq!(layers.origin(b"/etc/passwd"), PathOrigin::Image);
        assert_eq!(layers.origin(b"/etc/new"), PathOrigin::Upper);
        assert_eq!(layers.origin(b"/etc/none"), PathOrigin::Absent);
        // A layer's own symlink is not followed (into the host's tree, or anywhere).
        std::os::unix::fs::symlink("/etc", base.join("linked")).unwrap();
        assert_eq!(layers.origin(b"/linked/hostname"), PathOrigin::Absent);
    }
}
