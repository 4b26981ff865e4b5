//! Reading WAL files back: which files a replay needs, and the frames of one file with every
//! damaged stretch reported rather than trusted.

use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::{CHECKPOINT_MAGIC, FRAME_HEADER, MAX_RECORD_BYTES, Result, SEGMENT_MAGIC, WalError};

/// A stretch of a file that could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// Byte offset in the file.
    pub offset: u64,
    /// Bytes dropped.
    pub bytes: u64,
    pub reason: String,
    /// Whether this damage runs to the end of the file (a torn tail).
    pub tail: bool,
}

/// Splits `buf` into frame payloads (with their offsets in `buf`) and damage.
pub(crate) fn frames(buf: &[u8]) -> (Vec<(usize, &[u8])>, Vec<Damage>) {
    let mut out = Vec::new();
    let mut damage = Vec::new();
    let mut pos = 0usize;
    let tail = |pos: usize, reason: String| Damage {
        offset: pos as u64,
        bytes: (buf.len() - pos) as u64,
        reason,
        tail: true,
    };
    while pos < buf.len() {
        let Some(header) = buf.get(pos..pos + FRAME_HEADER) else {
            damage.push(tail(pos, "torn frame header".into()));
            break;
        };
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if len > MAX_RECORD_BYTES {
            damage.push(tail(pos, format!("frame length {len} exceeds the limit")));
            break;
        }
        let body = pos + FRAME_HEADER;
        let Some(payload) = buf.get(body..body + len as usize) else {
            damage.push(tail(
                pos,
                format!("torn frame: {len} bytes declared, {} present", buf.len() - body),
            ));
            break;
        };
        if crc32fast::hash(payload) != crc {
            // The length is still the best guess at where the next frame starts.
            damage.push(Damage {
                offset: pos as u64,
                bytes: (FRAME_HEADER + payload.len()) as u64,
                reason: "checksum mismatch".into(),
                tail: false,
            });
        } else {
            out.push((body, payload));
        }
        pos = body + len as usize;
    }
    (out, damage)
}

/// One WAL file read into memory, split into frames.
#[derive(Debug)]
pub struct FileFrames {
    data: Vec<u8>,
    frames: Vec<Range<usize>>,
    pub damage: Vec<Damage>,
}

impl FileFrames {
    /// The payloads of the intact frames, in file order.
    pub fn payloads(&self) -> impl Iterator<Item = &[u8]> {
        self.frames.iter().filter_map(|r| self.data.get(r.clone()))
    }

    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// File size in bytes.
    pub fn size(&self) -> u64 {
        self.data.len() as u64
    }

    /// Where the intact part of the file ends, when it ends in a torn tail.
    pub fn torn_at(&self) -> Option<u64> {
        self.damage.iter().find(|d| d.tail).map(|d| d.offset)
    }
}

/// Reads a segment or checkpoint file and splits it into frames. A file too short for its
/// magic (a crash right after creating it) is empty, not an error.
pub fn read_file(path: &Path) -> Result<FileFrames> {
    let data = std::fs::read(path).map_err(WalError::io("read", path))?;
    let magic_ok = data
        .get(..SEGMENT_MAGIC.len())
        .map(|m| m == SEGMENT_MAGIC || m == CHECKPOINT_MAGIC);
    match magic_ok {
        Some(true) => {}
        None if data.len() < SEGMENT_MAGIC.len() => {
            return Ok(FileFrames {
                data,
                frames: Vec::new(),
                damage: Vec::new(),
            });
        }
        _ => return Err(WalError::BadMagic { path: path.into() }),
    }
    let start = SEGMENT_MAGIC.len();
    let (frames, mut damage) = frames(data.get(start..).unwrap_or_default());
    let frames: Vec<Range<usize>> = frames
        .into_iter()
        .map(|(off, p)| start + off..start + off + p.len())
        .collect();
    for d in &mut damage {
        d.offset += start as u64;
    }
    Ok(FileFrames { data, frames, damage })
}

/// Cuts a file at `len` (a torn tail), so later replays do not warn about it again.
pub fn truncate_file(path: &Path, len: u64) -> Result<()> {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(WalError::io("open", path))?;
    f.set_len(len).map_err(WalError::io("truncate", path))?;
    f.sync_all().map_err(WalError::io("fsync", path))
}

/// What a replay reads: the newest checkpoint, then the segments from its number on.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct WalFiles {
    pub checkpoint: Option<(u64, PathBuf)>,
    pub segments: Vec<(u64, PathBuf)>,
}

pub(crate) fn segment_name(n: u64) -> String {
    format!("{n:020}")
}

pub(crate) fn checkpoint_name(n: u64) -> String {
    format!("checkpoint.{n:020}")
}

/// Numbered files in `dir`: (segments, checkpoints). Other names (and `.tmp` files left by a
/// crash mid-checkpoint) are ignored.
pub(crate) fn scan_dir(dir: &Path) -> Result<(Vec<u64>, Vec<u64>)> {
    let mut segments = Vec::new();
    let mut checkpoints = Vec::new();
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((segments, checkpoints)),
        Err(e) => return Err(WalError::io("list", dir)(e)),
    };
    for entry in rd {
        let entry = entry.map_err(WalError::io("list", dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(n) = name.strip_prefix("checkpoint.").and_then(|n| n.parse::<u64>().ok()) {
            checkpoints.push(n);
        } else if name.len() == 20
            && let Ok(n) = name.parse::<u64>()
        {
            segments.push(n);
        }
    }
    segments.sort_unstable();
    checkpoints.sort_unstable();
    Ok((segments, checkpoints))
}

/// The files a replay of `dir` reads, in order.
pub fn list(dir: &Path) -> Result<WalFiles> {
    let (segments, checkpoints) = scan_dir(dir)?;
    let checkpoint = checkpoints.last().map(|n| (*n, dir.join(checkpoint_name(*n))));
    let from = checkpoint.as_ref().map_or(0, |(n, _)| *n);
    Ok(WalFiles {
        checkpoint,
        segments: segments
            .into_iter()
            .filter(|n| *n >= from)
            .map(|n| (n, dir.join(segment_name(n))))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Batch;

    fn three_records() -> Vec<u8> {
        let mut b = Batch::new();
        b.series("t", 1, "{a=\"1\"}");
        b.begin_entries(1);
        b.entry(5, "hello", [].into_iter());
        b.series("t", 2, "{a=\"2\"}");
        b.bytes().to_vec()
    }

    #[test]
    fn intact_frames_come_back() {
        let buf = three_records();
        let (f, d) = frames(&buf);
        assert_eq!(f.len(), 3);
        assert!(d.is_empty());
    }

    #[test]
    fn a_torn_tail_keeps_what_precedes_it() {
        let buf = three_records();
        let (whole, _) = frames(&buf);
        let boundaries: Vec<usize> = whole.iter().map(|(off, _)| off - FRAME_HEADER).collect();
        for cut in (1..buf.len()).filter(|c| !boundaries.contains(c)) {
            let (f, d) = frames(&buf[..cut]);
            assert!(f.len() < 3);
            assert_eq!(d.len(), 1, "cut at {cut}");
            assert!(d[0].tail);
            assert_eq!(d[0].offset + d[0].bytes, cut as u64);
        }
    }

    #[test]
    fn a_flipped_byte_costs_only_its_frame() {
        let buf = three_records();
        let (whole, _) = frames(&buf);
        let second = whole[1].0;
        let mut bad = buf.clone();
        bad[second + 2] ^= 0x40;
        let (f, d) = frames(&bad);
        assert_eq!(f.len(), 2, "first and third frames survive");
        assert_eq!(d.len(), 1);
        assert!(!d[0].tail);
        assert_eq!(d[0].reason, "checksum mismatch");
    }

    #[test]
    fn a_huge_declared_length_is_damage_not_an_allocation() {
        let mut buf = three_records();
        buf.extend_from_slice(&u32::MAX.to_le_bytes());
        buf.extend_from_slice(&[0; 4]);
        let (f, d) = frames(&buf);
        assert_eq!(f.len(), 3);
        assert!(d[0].reason.contains("exceeds the limit"));
    }

    proptest::proptest! {
        #[test]
        fn frames_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let (f, d) = frames(&bytes);
            let covered: usize = f.iter().map(|(_, p)| p.len() + FRAME_HEADER).sum::<usize>()
                + d.iter().map(|d| d.bytes as usize).sum::<usize>();
            proptest::prop_assert_eq!(covered, bytes.len());
        }
    }
}
