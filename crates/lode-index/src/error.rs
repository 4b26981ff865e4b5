//! The one error type of this crate: why an index object could not be read.

use lode_model::ErrorCode;

pub type Result<T, E = IndexError> = std::result::Result<T, E>;

/// Why an index object could not be decoded. Every variant means the object is unusable; the
/// variants exist so that logs say what was wrong, not for callers to recover differently.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    #[error("index object too short: {len} bytes")]
    TooShort { len: usize },
    #[error("bad index magic: {found:02x?}")]
    BadMagic { found: Vec<u8> },
    #[error("unsupported index version: {0}")]
    UnsupportedVersion(u8),
    #[error("index checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    ChecksumMismatch { stored: u32, computed: u32 },
    #[error("corrupt index at byte {offset}: {reason}")]
    Corrupt { offset: usize, reason: String },
}

impl IndexError {
    /// A stored index object we cannot read is our fault, never the client's.
    pub fn code(&self) -> ErrorCode {
        ErrorCode::Internal
    }
}
