//! The frame codec: `len u32 | type u8 | flags u8 | reserved u16 | crc32 u32 | payload`, all
//! little-endian. The CRC covers type, flags, reserved and the (stored, maybe compressed) payload,
//! so a frame is checked before anything decodes it. Each frame stands alone (compressed on its
//! own), so a torn tail costs only the frame it tears.
//!
//! Hand-written because it is twelve bytes of framing; the heavy parts (zstd, CRC32) are crates.
use std::io::{self, Read, Write};

use super::CaptureError;

/// Bytes before the payload.
pub const FRAME_HEADER_LEN: usize = 12;
/// A larger length is corruption, not data: frames are flushed every second or 256 KiB of
/// inputs, and the largest snapshot (a process table) stays far below this.
pub const MAX_PAYLOAD: u32 = 256 << 20;
/// `flags` bit: the payload is zstd-compressed.
pub const FLAG_ZSTD: u8 = 1;
/// zstd level: fast enough for a recorder thread, and JSON compresses well already at 3.
const ZSTD_LEVEL: i32 = 3;

/// A decoded frame: its type and its payload, decompressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub kind: u8,
    pub payload: Vec<u8>,
}

/// Why reading stopped before the end of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Damage {
    /// The file ends inside its last frame, or its last frame fails its check: the writer was
    /// killed or the machine lost power while writing. Everything before replays.
    TornTail { offset: u64, detail: String },
    /// A frame in the middle of the file is damaged; what follows it is not read.
    Corrupt { offset: u64, detail: String },
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Damage::TornTail { offset, detail } => {
                write!(f, "torn tail at byte {offset}: {detail}")
            }
            Damage::Corrupt { offset, detail } => {
                write!(f, "corrupt frame at byte {offset}: {detail}")
            }
        }
    }
}

/// Encodes one frame, compressing the payload when `compress` is set.
pub fn encode(kind: u8, payload: &[u8], compress: bool) -> Result<Vec<u8>, CaptureError> {
    let (flags, stored) = if compress {
        let packed = zstd::bulk::compress(payload, ZSTD_LEVEL).map_err(CaptureError::Compress)?;
        (FLAG_ZSTD, packed)
    } else {
        (0, payload.to_vec())
    };
    let len = u32::try_from(stored.len())
        .ok()
        .filter(|len| *len <= MAX_PAYLOAD)
        .ok_or(CaptureError::FrameTooLarge(stored.len()))?;
    let meta = [kind, flags, 0, 0];
    let mut crc = crc32fast::Hasher::new();
    crc.update(&meta);
    crc.update(&stored);
    let mut out = Vec::with_capacity(FRAME_HEADER_LEN + stored.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&meta);
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(&stored);
    Ok(out)
}

/// Writes one encoded frame with a single `write_all`.
pub fn write_frame(
    out: &mut impl Write,
    kind: u8,
    payload: &[u8],
    compress: bool,
) -> Result<u64, CaptureError> {
    let bytes = encode(kind, payload, compress)?;
    out.write_all(&bytes).map_err(CaptureError::Write)?;
    Ok(bytes.len() as u64)
}

/// Reads frames from a file of known length (the length tells a torn last frame from a damaged
/// middle one).
pub struct FrameReader<R> {
    inner: R,
    offset: u64,
    len: u64,
}

/// One step of [`FrameReader::next_frame`].
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    Frame(Frame),
    /// Clean end of file on a frame boundary.
    End,
    Damaged(Damage),
}

impl<R: Read> FrameReader<R> {
    /// `offset` is where `inner` stands in the file, `len` the file's length.
    pub fn new(inner: R, offset: u64, len: u64) -> Self {
        FrameReader { inner, offset, len }
    }

    pub fn offset(&self) -> u64 {
        self.offset
    }

    pub fn next_frame(&mut self) -> Result<Step, CaptureError> {
        let start = self.offset;
        let torn = |detail: String| {
            Step::Damaged(Damage::TornTail {
                offset: start,
                detail,
            })
        };
        if start == self.len {
            return Ok(Step::End);
        }
        let mut head = [0u8; FRAME_HEADER_LEN];
        if !read_full(&mut self.inner, &mut head)? {
            return Ok(torn("the file ends inside a frame header".into()));
        }
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let meta = [head[4], head[5], head[6], head[7]];
        let want = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
        let end = start + FRAME_HEADER_LEN as u64 + u64::from(len);
        let is_last = end >= self.len;
        if len > MAX_PAYLOAD {
            let detail = format!("frame length {len} exceeds the limit of {MAX_PAYLOAD}");
            return Ok(if is_last {
                torn(detail)
            } else {
                corrupt(start, detail)
            });
        }
        if end > self.len {
            return Ok(torn(format!(
                "the file ends {} bytes into a frame of {len} bytes",
                self.len - start - FRAME_HEADER_LEN as u64
            )));
        }
        let mut stored = vec![0u8; len as usize];
        if !read_full(&mut self.inner, &mut stored)? {
            return Ok(torn("the file ends inside a frame".into()));
        }
        self.offset = end;
        let mut crc = crc32fast::Hasher::new();
        crc.update(&meta);
        crc.update(&stored);
        if crc.finalize() != want {
            let detail = "checksum mismatch".to_owned();
            return Ok(if is_last {
                torn(detail)
            } else {
                corrupt(start, detail)
            });
        }
        let payload = if meta[1] & FLAG_ZSTD != 0 {
            match zstd::stream::decode_all(stored.as_slice()) {
                Ok(payload) => payload,
                Err(err) => return Ok(corrupt(start, format!("zstd: {err}"))),
            }
        } else {
            stored
        };
        Ok(Step::Frame(Frame {
            kind: meta[0],
            payload,
        }))
    }
}

fn corrupt(offset: u64, detail: String) -> Step {
    Step::Damaged(Damage::Corrupt { offset, detail })
}

/// Fills `buf`; false when the input ends first.
fn read_full(inner: &mut impl Read, buf: &mut [u8]) -> Result<bool, CaptureError> {
    match inner.read_exact(buf) {
        Ok(()) => Ok(true),
        Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(err) => Err(CaptureError::Read(err)),
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    fn two_frames() -> Vec<u8> {
        let mut file = Vec::new();
        write_frame(&mut file, 3, b"{\"a\":1}\n{\"b\":2}\n", true).unwrap();
        write_frame(&mut file, 4, b"plain", false).unwrap();
        file
    }

    fn read_all(bytes: &[u8]) -> (Vec<Frame>, Step) {
        let mut reader = FrameReader::new(bytes, 0, bytes.len() as u64);
        let mut frames = Vec::new();
        loop {
            match reader.next_frame().unwrap() {
                Step::Frame(frame) => frames.push(frame),
                other => return (frames, other),
            }
        }
    }

    #[test]
    fn round_trip_compressed_and_plain() {
        let (frames, end) = read_all(&two_frames());
        assert_eq!(end, Step::End);
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].kind, 3);
        assert_eq!(frames[0].payload, b"{\"a\":1}\n{\"b\":2}\n");
        assert_eq!(
            frames[1],
            Frame {
                kind: 4,
                payload: b"plain".to_vec()
            }
        );
    }

    #[test]
    fn every_cut_inside_the_last_frame_is_a_torn_tail_after_the_first() {
        let file = two_frames();
        let first_len = encode(3, b"{\"a\":1}\n{\"b\":2}\n", true).unwrap().len();
        for cut in first_len + 1..file.len() {
            let (frames, end) = read_all(&file[..cut]);
            assert_eq!(frames.len(), 1, "cut at {cut}");
            assert!(
                matches!(end, Step::Damaged(Damage::TornTail { offset, .. }) if offset == first_len as u64),
                "cut at {cut}: {end:?}"
            );
        }
    }

    #[test]
    fn bad_crc_in_the_last_frame_is_torn_in_the_middle_is_corrupt() {
        let mut file = two_frames();
        let last = file.len() - 1;
        file[last] ^= 0xff;
        assert!(matches!(
            read_all(&file).1,
            Step::Damaged(Damage::TornTail { .. })
        ));

        let mut file = two_frames();
        file[FRAME_HEADER_LEN + 2] ^= 0xff;
        let (frames, end) = read_all(&file);
        assert!(frames.is_empty());
        assert!(
            matches!(end, Step::Damaged(Damage::Corrupt { offset: 0, .. })),
            "{end:?}"
        );
    }

    #[test]
    fn absurd_length_is_reported_not_allocated() {
        let mut file = two_frames();
        file[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(read_all(&file).1, Step::Damaged(_)));
    }
}
