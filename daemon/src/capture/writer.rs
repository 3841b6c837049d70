//! One capture file being written: created with its magic and header, frames appended with one
//! `write_all` and a `sync_data` each (a crash or power loss costs at most the frame in flight),
//! closed with an end record.
use std::{
    fs::{File, OpenOptions},
    io::Write,
    os::unix::fs::OpenOptionsExt,
    path::Path,
};

use super::{
    format::{frame_type, unix_now_ns, EndRecord, Header, MAGIC},
    frame::write_frame,
    naming,
    retention::StoredFile,
    CaptureError,
};

pub struct CaptureFile {
    file: File,
    pub info: StoredFile,
    /// Inputs recorded (snapshot excluded), for the end record.
    pub inputs: u64,
    pub opened: std::time::Instant,
}

impl CaptureFile {
    /// Creates `dir/capture-<seq>-<now>.swc` (mode 0600: it holds every command line of the
    /// node) and writes the magic and `header`.
    pub fn create(dir: &Path, header: &Header) -> Result<CaptureFile, CaptureError> {
        let path = dir.join(naming::format(header.seq, header.started_unix_ns));
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|source| CaptureError::Open {
                path: path.clone(),
                source,
            })?;
        file.write_all(&MAGIC).map_err(CaptureError::Write)?;
        let json = serde_json::to_vec(header)?;
        let written = write_frame(&mut file, frame_type::HEADER, &json, false)?;
        file.sync_data().map_err(CaptureError::Write)?;
        Ok(CaptureFile {
            file,
            info: StoredFile {
                path,
                seq: header.seq,
                start_unix_ns: header.started_unix_ns,
                end_unix_ns: header.started_unix_ns,
                bytes: MAGIC.len() as u64 + written,
                violations: Vec::new(),
            },
            inputs: 0,
            opened: std::time::Instant::now(),
        })
    }

    pub fn append(&mut self, kind: u8, payload: &[u8], compress: bool) -> Result<(), CaptureError> {
        let written = write_frame(&mut self.file, kind, payload, compress)?;
        self.file.sync_data().map_err(CaptureError::Write)?;
        self.info.bytes += written;
        self.info.end_unix_ns = unix_now_ns();
        Ok(())
    }

    /// Writes the end record; returns what retention needs to know about the closed file.
    pub fn close(mut self, reason: &str) -> Result<StoredFile, CaptureError> {
        let end = EndRecord {
            reason: reason.to_owned(),
            unix_ns: unix_now_ns(),
            inputs: self.inputs,
        };
        let json = serde_json::to_vec(&end)?;
        self.append(frame_type::END, &json, false)?;
        Ok(self.info)
    }
}
