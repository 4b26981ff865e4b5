//! The ingester's write-ahead log. On the push path the ingester encodes the lines it accepted
//! into a [`Batch`] of crc32-framed records, appends it to the [`Wal`] while it still holds the
//! stream (so records of one stream are in push order), and commits before acknowledging. A
//! periodic checkpoint writes what is in memory to one file and lets older segments go; on
//! start the ingester reads the newest checkpoint and the segments after it with
//! [`read_file`], which skips damaged frames and reports them instead of failing. The byte
//! layout and the sync policies are in `docs/wal-format.md`.

mod reader;
mod record;
mod writer;

use std::path::PathBuf;

pub use reader::{Damage, FileFrames, WalFiles, list, read_file, truncate_file};
pub use record::{Batch, DecodeError, EntryRecord, Record, decode, peek_stream_id};
pub use writer::{CheckpointWriter, SyncMode, Wal};

/// Magic of a segment file.
pub const SEGMENT_MAGIC: &[u8; 8] = b"LODEWAL1";
/// Magic of a checkpoint file.
pub const CHECKPOINT_MAGIC: &[u8; 8] = b"LODECKP1";
/// Frame header: payload length and crc32, both u32 little-endian.
pub const FRAME_HEADER: usize = 8;
/// Largest payload a frame may declare; a larger length is damage, never an allocation.
pub const MAX_RECORD_BYTES: u32 = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("wal: {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("wal: {path} is not a WAL file (bad magic)")]
    BadMagic { path: PathBuf },
}

impl WalError {
    fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> WalError {
        let path = path.into();
        move |source| WalError::Io { op, path, source }
    }

    /// Whether the failure is the disk being full (or over quota).
    pub fn is_disk_full(&self) -> bool {
        matches!(self, WalError::Io { source, .. } if source.kind() == std::io::ErrorKind::StorageFull
            || source.kind() == std::io::ErrorKind::QuotaExceeded)
    }
}

pub type Result<T, E = WalError> = std::result::Result<T, E>;
