//! The file sink: JSON lines appended to one file, rotated by size and by age the way log
//! tailers expect (Fluent Bit, Vector, the OTel filelog receiver follow a file by inode across a
//! rename): `PATH` is renamed `PATH.1`, `PATH.1` becomes `PATH.2`, ... and only `keep` rotated
//! files are kept. Lines are whole in one file: a rotation happens between lines, never in one.
use std::{
    fs::{File, OpenOptions},
    io::Write as _,
    os::unix::fs::OpenOptionsExt as _,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use super::{
    queue::Line,
    worker::{Delivery, Destination},
};

#[derive(Debug, Clone)]
pub struct FileOptions {
    pub path: PathBuf,
    /// A file is rotated before it would grow past this many bytes.
    pub max_bytes: u64,
    /// A file that holds lines is rotated once it is this old.
    pub max_age: Duration,
    /// Rotated files kept (`PATH.1` .. `PATH.keep`); older ones are deleted.
    pub keep: usize,
}

pub struct FileSink {
    options: FileOptions,
    /// The open file, its size, and when it was opened; `None` after a failure (reopened on the
    /// next try).
    file: Option<(File, u64, Instant)>,
    buffer: Vec<u8>,
    /// Lines of the batch being retried that are already in a file (the worker retries the same
    /// batch): they are not written twice.
    written: usize,
}

impl FileSink {
    /// Opens (appends to) the file now, so a path the daemon cannot write is a start-up error.
    pub fn open(options: FileOptions) -> std::io::Result<Self> {
        let mut sink = FileSink {
            options,
            file: None,
            buffer: Vec::with_capacity(1 << 20),
            written: 0,
        };
        sink.reopen()?;
        Ok(sink)
    }

    fn reopen(&mut self) -> std::io::Result<()> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            // Lines can name secrets' paths and commands: readable by root only.
            .mode(0o600)
            .open(&self.options.path)?;
        let size = file.metadata()?.len();
        self.file = Some((file, size, Instant::now()));
        Ok(())
    }

    /// `PATH` → `PATH.1` → ... → `PATH.keep`; the oldest is deleted. The new `PATH` is opened
    /// last, so a tailer following `PATH.1` by inode reads it to its end first.
    fn rotate(&mut self) -> std::io::Result<()> {
        self.file = None;
        let path = &self.options.path;
        let keep = self.options.keep;
        if keep == 0 {
            remove_if_there(path)?;
        } else {
            remove_if_there(&numbered(path, keep))?;
            for n in (1..keep).rev() {
                rename_if_there(&numbered(path, n), &numbered(path, n + 1))?;
            }
            rename_if_there(path, &numbered(path, 1))?;
        }
        self.reopen()
    }

    /// Writes the buffered lines. A write cut short (disk full) is cut back off the file, so a
    /// reader never sees part of a line.
    fn write_buffer(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        if self.file.is_none() {
            self.reopen()?;
        }
        let Some((file, size, _)) = &mut self.file else {
            return Err(std::io::Error::other("file sink not open"));
        };
        if let Err(err) = file.write_all(&self.buffer) {
            let _ = file.set_len(*size);
            self.buffer.clear();
            return Err(err);
        }
        *size += self.buffer.len() as u64;
        self.buffer.clear();
        Ok(())
    }

    fn too_old(&self) -> bool {
        self.file
            .as_ref()
            .is_some_and(|(_, size, opened)| *size > 0 && opened.elapsed() >= self.options.max_age)
    }

    /// Writes `lines` after the first `self.written`, and counts those written as it goes.
    fn write_lines(&mut self, lines: &[Line]) -> std::io::Result<()> {
        if self.too_old() {
            self.rotate()?;
        }
        let mut buffered = 0;
        for line in &lines[self.written.min(lines.len())..] {
            let size = self.file.as_ref().map_or(0, |(_, size, _)| *size);
            let after = size + (self.buffer.len() + line.len() + 1) as u64;
            if after > self.options.max_bytes && size + self.buffer.len() as u64 > 0 {
                self.write_buffer()?;
                self.written += std::mem::take(&mut buffered);
                self.rotate()?;
            }
            self.buffer.extend_from_slice(line.as_bytes());
            self.buffer.push(b'\n');
            buffered += 1;
        }
        self.write_buffer()
    }
}

impl Destination for FileSink {
    fn kind(&self) -> super::SinkKind {
        super::SinkKind::File
    }

    fn deliver(&mut self, lines: &[Line]) -> Delivery {
        match self.write_lines(lines) {
            Ok(()) => {
                self.written = 0;
                Delivery::Delivered
            }
            Err(err) => {
                // Reopened on the next try (the file may have been removed or its disk remounted).
                self.file = None;
                self.buffer.clear();
                Delivery::Retry {
                    reason: format!("writing {}: {err}", self.options.path.display()),
                    after: None,
                }
            }
        }
    }

    fn idle(&mut self) {
        if self.too_old() {
            if let Err(err) = self.rotate() {
                tracing::warn!(path = %self.options.path.display(), %err, "file sink: rotating by age failed; retried on the next line");
            }
        }
    }
}

fn numbered(path: &Path, n: usize) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

fn rename_if_there(from: &Path, to: &Path) -> std::io::Result<()> {
    match std::fs::rename(from, to) {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

fn remove_if_there(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    fn lines(range: std::ops::Range<usize>) -> Vec<Line> {
        range
            .map(|n| Line::from(format!("{{\"n\":{n:04}}}")))
            .collect()
    }

    fn read(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn rotation_by_size_keeps_whole_lines_and_the_newest_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        // Each line is 11 bytes with its newline: 3 lines fit in 40 bytes.
        let mut sink = FileSink::open(FileOptions {
            path: path.clone(),
            max_bytes: 40,
            max_age: Duration::from_secs(3600),
            keep: 2,
        })
        .unwrap();
        for batch in lines(0..10).chunks(4) {
            assert!(matches!(sink.deliver(batch), Delivery::Delivered));
        }
        // 10 lines, 3 per file: files hold 0-2, 3-5, 6-8, 9; the oldest one is gone.
        assert_eq!(
            read(&numbered(&path, 2)),
            ["{\"n\":0003}", "{\"n\":0004}", "{\"n\":0005}"]
        );
        assert_eq!(read(&numbered(&path, 1)).len(), 3);
        assert_eq!(read(&path), ["{\"n\":0009}"]);
        assert!(!numbered(&path, 3).exists());
    }

    #[test]
    fn rotation_by_age_skips_empty_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let mut sink = FileSink::open(FileOptions {
            path: path.clone(),
            max_bytes: 1 << 20,
            max_age: Duration::ZERO,
            keep: 3,
        })
        .unwrap();
        sink.idle();
        assert!(!numbered(&path, 1).exists(), "an empty file is not rotated");
        assert!(matches!(sink.deliver(&lines(0..2)), Delivery::Delivered));
        sink.idle();
        assert_eq!(read(&numbered(&path, 1)).len(), 2);
        assert_eq!(read(&path).len(), 0);
    }
}
