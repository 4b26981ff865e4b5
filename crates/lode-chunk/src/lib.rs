//! The chunk format: how Lode stores one stream's log entries. The ingester appends a stream's
//! entries to a [`MemChunk`] (an uncompressed head block; full blocks are cut and
//! zstd-compressed), serves recent queries from it, and flushes [`MemChunk::encode`]'s bytes to
//! object storage. The querier fetches those bytes, [`Chunk::decode`]s the envelope, and scans
//! only the blocks whose time range overlaps the query, verifying each block's crc32 and
//! decompressing it under a size cap before handing out zero-copy [`EntryRef`]s.
//!
//! Blocks are columnar (timestamps, lengths, metadata and line bytes in separate runs) so zstd
//! sees like next to like, and `for_each_containing` runs one `memmem` over a block's lines
//! for a query's `|=` needle instead of testing each line.
//! The byte layout is in `docs/chunk-format.md`.

mod block;
mod chunk;
mod error;
mod format;
mod memchunk;

#[cfg(test)]
mod tests;

pub use block::{Block, EntryRef, MetadataRef};
pub use chunk::{Chunk, Skipped};
pub use error::{ChunkError, Result};
pub use format::{BlockDecoder, BlockMeta, Codec, FORMAT_VERSION, MAGIC, MAX_BLOCK_BYTES};
pub use memchunk::MemChunk;

/// Uncompressed size at which the head block is cut, as Loki's default `chunk_block_size`.
pub const DEFAULT_BLOCK_SIZE: usize = 256 << 10;

/// The zstd level the ingester uses; chosen with `benches/chunk.rs` (see docs/chunk-format.md).
pub const DEFAULT_ZSTD_LEVEL: i32 = 1;

/// Largest entry (line plus structured metadata) a chunk accepts. Far above any sane
/// `max_line_size`; it exists so a block can never outgrow [`MAX_BLOCK_BYTES`].
pub const MAX_ENTRY_BYTES: usize = 16 << 20;
