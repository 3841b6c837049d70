//! Reading capture files: the magic, the header, then records until the end or the first damage.
use std::{
    fs::File,
    io::{BufReader, Read},
    path::{Path, PathBuf},
};

use super::{
    format::{
        frame_type, EndRecord, Header, LossRecord, PolicyRecord, ViolationsRecord, FORMAT_NAME,
        FORMAT_VERSION, MAGIC,
    },
    frame::{Damage, Frame, FrameReader, Step},
    naming, CaptureError,
};
use crate::input::Input;

/// One frame, decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Snapshot(Vec<Input>),
    Inputs(Vec<Input>),
    Policy(PolicyRecord),
    Loss(LossRecord),
    Violations(ViolationsRecord),
    End(EndRecord),
    /// A frame type this version does not know (written by a newer minor version): skipped.
    Unknown(u8),
}

pub struct CaptureReader {
    path: PathBuf,
    header: Header,
    frames: FrameReader<BufReader<File>>,
    damage: Option<Damage>,
}

impl CaptureReader {
    /// Opens a capture file and checks its magic and header; anything else is an error.
    pub fn open(path: &Path) -> Result<CaptureReader, CaptureError> {
        let at = |source| CaptureError::Open {
            path: path.to_owned(),
            source,
        };
        let file = File::open(path).map_err(at)?;
        let len = file.metadata().map_err(at)?.len();
        let mut input = BufReader::with_capacity(256 * 1024, file);
        let bad = |reason: String| CaptureError::NotACapture {
            path: path.to_owned(),
            reason,
        };
        let mut magic = [0u8; MAGIC.len()];
        if input.read_exact(&mut magic).is_err() || magic != MAGIC {
            return Err(bad(
                "it does not start with the sealwatch capture magic".into()
            ));
        }
        let mut frames = FrameReader::new(input, MAGIC.len() as u64, len);
        let header = match frames.next_frame()? {
            Step::Frame(Frame {
                kind: frame_type::HEADER,
                payload,
            }) => serde_json::from_slice::<Header>(&payload)
                .map_err(|err| bad(format!("its header does not parse: {err}")))?,
            Step::Frame(frame) => {
                return Err(bad(format!(
                    "its first frame has type {} instead of a header",
                    frame.kind
                )))
            }
            Step::End => return Err(bad("it has no header".into())),
            Step::Damaged(damage) => return Err(bad(format!("its header is damaged: {damage}"))),
        };
        if header.format != FORMAT_NAME {
            return Err(bad(format!("its format is {:?}", header.format)));
        }
        if header.version > FORMAT_VERSION {
            return Err(CaptureError::Version {
                path: path.to_owned(),
                version: header.version,
            });
        }
        Ok(CaptureReader {
            path: path.to_owned(),
            header,
            frames,
            damage: None,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Why reading stopped early, once [`CaptureReader::next_record`] returned None.
    pub fn damage(&self) -> Option<&Damage> {
        self.damage.as_ref()
    }

    /// The next record; None at the end or at the first damage (see [`CaptureReader::damage`]).
    pub fn next_record(&mut self) -> Result<Option<Record>, CaptureError> {
        if self.damage.is_some() {
            return Ok(None);
        }
        let offset = self.frames.offset();
        let frame = match self.frames.next_frame()? {
            Step::Frame(frame) => frame,
            Step::End => return Ok(None),
            Step::Damaged(damage) => {
                self.damage = Some(damage);
                return Ok(None);
            }
        };
        match decode(&frame) {
            Ok(record) => Ok(Some(record)),
            // The frame passed its checksum, so this is a writer bug or a foreign file: stop
            // here like any other damage, with what was replayed so far kept.
            Err(detail) => {
                self.damage = Some(Damage::Corrupt { offset, detail });
                Ok(None)
            }
        }
    }
}

fn decode(frame: &Frame) -> Result<Record, String> {
    let json = |what: &str, err: serde_json::Error| format!("{what} record: {err}");
    Ok(match frame.kind {
        frame_type::SNAPSHOT => Record::Snapshot(inputs(&frame.payload)?),
        frame_type::INPUTS => Record::Inputs(inputs(&frame.payload)?),
        frame_type::POLICY => {
            Record::Policy(serde_json::from_slice(&frame.payload).map_err(|e| json("policy", e))?)
        }
        frame_type::LOSS => {
            Record::Loss(serde_json::from_slice(&frame.payload).map_err(|e| json("loss", e))?)
        }
        frame_type::VIOLATIONS => Record::Violations(
            serde_json::from_slice(&frame.payload).map_err(|e| json("violations", e))?,
        ),
        frame_type::END => {
            Record::End(serde_json::from_slice(&frame.payload).map_err(|e| json("end", e))?)
        }
        frame_type::HEADER => return Err("a second header inside the file".into()),
        other => Record::Unknown(other),
    })
}

fn inputs(payload: &[u8]) -> Result<Vec<Input>, String> {
    payload
        .split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .enumerate()
        .map(|(i, line)| serde_json::from_slice(line).map_err(|e| format!("input {i}: {e}")))
        .collect()
}

/// The capture files at `path`: the file itself, or a directory's `capture-*.swc` files in
/// sequence order.
pub fn capture_files(path: &Path) -> Result<Vec<PathBuf>, CaptureError> {
    let at = |source| CaptureError::Open {
        path: path.to_owned(),
        source,
    };
    if !path.is_dir() {
        std::fs::metadata(path).map_err(at)?;
        return Ok(vec![path.to_owned()]);
    }
    let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(path)
        .map_err(at)?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name();
            let seq = naming::parse(name.to_str()?)?.seq;
            Some((seq, entry.path()))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(CaptureError::Empty(path.to_owned()));
    }
    Ok(files.into_iter().map(|(_, path)| path).collect())
}
