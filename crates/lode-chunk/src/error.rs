//! The crate's one error type. Decoding errors name the block and the values involved so an
//! operator can tell a truncated upload from bit rot from a bug in the writer.

use lode_model::ErrorCode;

pub type Result<T> = std::result::Result<T, ChunkError>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("chunk too short: {len} bytes, need at least {min}")]
    TooShort { len: usize, min: usize },
    #[error("bad chunk magic 0x{0:016x}")]
    BadMagic(u64),
    #[error("unsupported chunk version {0}")]
    UnsupportedVersion(u8),
    #[error("unsupported chunk codec {0}")]
    UnsupportedCodec(u8),
    #[error("chunk table checksum mismatch: stored 0x{stored:08x}, computed 0x{computed:08x}")]
    TableChecksum { stored: u32, computed: u32 },
    #[error("chunk checksum mismatch in block {block}: stored 0x{stored:08x}, computed 0x{computed:08x}")]
    BlockChecksum { block: usize, stored: u32, computed: u32 },
    /// The header, footer or block table is inconsistent (offsets, lengths, counts).
    #[error("corrupt chunk: {0}")]
    Corrupt(String),
    /// A block's payload passed its checksum but does not decode.
    #[error("corrupt chunk block {block}: {reason}")]
    CorruptBlock { block: usize, reason: String },
    #[error("chunk block {block} declares {size} uncompressed bytes, over the cap of {max}")]
    BlockTooLarge { block: usize, size: u64, max: u64 },
    #[error("entry too large for a chunk: {size} bytes, max {max}")]
    EntryTooLarge { size: usize, max: usize },
    #[error("zstd compression failed: {0}")]
    Compress(String),
}

impl ChunkError {
    /// A chunk we cannot read is our fault, not the client's; an oversized entry is the client's.
    pub fn code(&self) -> ErrorCode {
        match self {
            ChunkError::EntryTooLarge { .. } => ErrorCode::BadRequest,
            _ => ErrorCode::Internal,
        }
    }
}
