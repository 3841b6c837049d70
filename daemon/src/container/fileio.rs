//! Reading runtime state files: bounded, and with "missing" kept apart from "broken".

use std::io::Read;
use std::path::Path;

use serde::de::DeserializeOwned;

use super::MetadataError;

/// Larger than any real state file (a `containers.json` for thousands of containers is a few MiB);
/// the cap only stops a corrupt or hostile file from exhausting memory.
pub(super) const MAX_STATE_FILE: u64 = 16 * 1024 * 1024;

/// Parses a JSON file into `T`; `Ok(None)` when it does not exist (yet), which callers turn into
/// `MetadataError::NotFound` or a fallback.
pub(super) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, MetadataError> {
    let Some(bytes) = read_capped(path, MAX_STATE_FILE)? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| MetadataError::Parse {
            path: path.to_owned(),
            reason: e.to_string(),
        })
}

fn read_capped(path: &Path, cap: u64) -> Result<Option<Vec<u8>>, MetadataError> {
    let io_err = |source| MetadataError::Io {
        path: path.to_owned(),
        source,
    };
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        // NotADirectory: a path component is a file, e.g. a half-removed bundle.
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(io_err(e)),
    };
    let mut bytes = Vec::new();
    file.take(cap + 1).read_to_end(&mut bytes).map_err(io_err)?;
    if bytes.len() as u64 > cap {
        return Err(MetadataError::Parse {
            path: path.to_owned(),
            reason: format!("larger than the {cap}-byte limit for runtime state files"),
        });
    }
    Ok(Some(bytes))
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    #[test]
    fn missing_broken_and_oversized_files() {
        let dir = tempfile::tempdir().unwrap();
        let missing: Option<serde_json::Value> = read_json(&dir.path().join("nope.json")).unwrap();
        assert!(missing.is_none());
        let under_file = dir.path().join("file");
        std::fs::write(&under_file, "{}").unwrap();
        assert!(read_json::<serde_json::Value>(&under_file.join("x.json"))
            .unwrap()
            .is_none());

        let broken = dir.path().join("broken.json");
        std::fs::write(&broken, "{\"a\":").unwrap();
        assert!(matches!(
            read_json::<serde_json::Value>(&broken),
            Err(MetadataError::Parse { .. })
        ));

        let big = dir.path().join("big.json");
        std::fs::write(&big, vec![b' '; 65]).unwrap();
        let err = read_capped(&big, 64).unwrap_err();
        assert!(err.to_string().contains("limit"), "{err}");
        assert_eq!(read_capped(&big, 65).unwrap().unwrap().len(), 65);
    }
}
