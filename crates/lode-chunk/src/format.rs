//! The chunk envelope: header, block table and footer (byte diagram in docs/chunk-format.md),
//! and the block read path shared by `Chunk` and `MemChunk`: checksum, capped decompression,
//! column decode.

use crate::block::Block;
use crate::error::{ChunkError, Result};

pub const MAGIC: [u8; 8] = *b"LODECHNK";
pub const FORMAT_VERSION: u8 = 1;
pub(crate) const HEADER_LEN: usize = 12;
pub(crate) const FOOTER_LEN: usize = 16;
pub(crate) const TABLE_ENTRY_LEN: usize = 40;

/// Absolute cap on one block's uncompressed size. A table entry declaring more is refused
/// before anything is allocated, whatever the input claims.
pub const MAX_BLOCK_BYTES: usize = 64 << 20;

/// How block payloads are compressed. Stored in the header; one codec per chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    None = 0,
    Zstd = 1,
}

impl Codec {
    fn from_byte(b: u8) -> Result<Codec> {
        match b {
            0 => Ok(Codec::None),
            1 => Ok(Codec::Zstd),
            _ => Err(ChunkError::UnsupportedCodec(b)),
        }
    }
}

/// One row of the block table: where a block is and what it holds, so a reader can skip blocks
/// outside a query's time range without touching them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockMeta {
    pub min_ts: i64,
    pub max_ts: i64,
    /// Absolute offset of the payload in the chunk.
    pub offset: u64,
    pub compressed_len: u32,
    pub uncompressed_len: u32,
    pub num_entries: u32,
    /// crc32 (IEEE) of the compressed payload.
    pub crc32: u32,
}

impl BlockMeta {
    /// Whether the block may hold entries in `[start, end)`.
    pub fn overlaps(&self, start: i64, end: i64) -> bool {
        self.min_ts < end && self.max_ts >= start
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.min_ts.to_le_bytes());
        out.extend_from_slice(&self.max_ts.to_le_bytes());
        out.extend_from_slice(&self.offset.to_le_bytes());
        for v in [self.compressed_len, self.uncompressed_len, self.num_entries, self.crc32] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }

    fn decode(b: &[u8; TABLE_ENTRY_LEN]) -> BlockMeta {
        let u64_at = |i: usize| u64::from_le_bytes(sub::<8>(b, i));
        let u32_at = |i: usize| u32::from_le_bytes(sub::<4>(b, i));
        BlockMeta {
            min_ts: u64_at(0) as i64,
            max_ts: u64_at(8) as i64,
            offset: u64_at(16),
            compressed_len: u32_at(24),
            uncompressed_len: u32_at(28),
            num_entries: u32_at(32),
            crc32: u32_at(36),
        }
    }
}

/// A fixed-size sub-array at `at`; callers pass in-bounds constants, and the fallback of zeros
/// keeps this panic-free regardless.
fn sub<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    b.get(at..at + N).and_then(|s| s.try_into().ok()).unwrap_or([0; N])
}

pub(crate) fn header(codec: Codec) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(&MAGIC);
    h[8] = FORMAT_VERSION;
    h[9] = codec as u8;
    h
}

/// Appends the block table and footer to `out`, which holds the header and payloads.
pub(crate) fn finish(out: &mut Vec<u8>, blocks: &[BlockMeta]) {
    let table_offset = out.len();
    out.extend_from_slice(&(blocks.len() as u32).to_le_bytes());
    for b in blocks {
        b.encode_into(out);
    }
    let table_len = out.len() - table_offset;
    let crc = meta_crc(
        out.get(..HEADER_LEN).unwrap_or_default(),
        out.get(table_offset..).unwrap_or_default(),
    );
    out.extend_from_slice(&(table_offset as u64).to_le_bytes());
    out.extend_from_slice(&(table_len as u32).to_le_bytes());
    out.extend_from_slice(&crc.to_le_bytes());
}

/// The metadata checksum covers the header and the table: everything a reader trusts before it
/// touches a block.
fn meta_crc(header: &[u8], table: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(header);
    h.update(table);
    h.finalize()
}

/// Parses and validates header, footer and table.
pub(crate) fn parse(data: &[u8]) -> Result<(Codec, Vec<BlockMeta>)> {
    let min = HEADER_LEN + 4 + FOOTER_LEN;
    if data.len() < min {
        return Err(ChunkError::TooShort { len: data.len(), min });
    }
    let head: [u8; HEADER_LEN] = sub(data, 0);
    if head[..8] != MAGIC {
        return Err(ChunkError::BadMagic(u64::from_be_bytes(sub(&head, 0))));
    }
    if head[8] != FORMAT_VERSION {
        return Err(ChunkError::UnsupportedVersion(head[8]));
    }
    let codec = Codec::from_byte(head[9])?;
    if head[10..] != [0, 0] {
        return Err(ChunkError::Corrupt(format!(
            "reserved header bytes {:02x}{:02x} are not zero",
            head[10], head[11]
        )));
    }
    let footer_at = data.len() - FOOTER_LEN;
    let footer: [u8; FOOTER_LEN] = sub(data, footer_at);
    let table_offset = u64::from_le_bytes(sub(&footer, 0));
    let table_len = u32::from_le_bytes(sub(&footer, 8)) as u64;
    let stored = u32::from_le_bytes(sub(&footer, 12));
    if table_offset < HEADER_LEN as u64 || table_offset.checked_add(table_len) != Some(footer_at as u64) {
        return Err(ChunkError::Corrupt(format!(
            "block table at {table_offset} with length {table_len} does not end at the footer ({footer_at})"
        )));
    }
    let table = data.get(table_offset as usize..footer_at).unwrap_or_default();
    let computed = meta_crc(&head, table);
    if computed != stored {
        return Err(ChunkError::TableChecksum { stored, computed });
    }
    let count = u32::from_le_bytes(sub(table, 0)) as usize;
    let rows = table.get(4..).unwrap_or_default();
    if rows.len() != count.saturating_mul(TABLE_ENTRY_LEN) {
        return Err(ChunkError::Corrupt(format!(
            "block table of {} bytes cannot hold {count} blocks",
            table.len()
        )));
    }
    let mut blocks = Vec::with_capacity(count);
    let mut expect = HEADER_LEN as u64;
    for (i, row) in rows.chunks_exact(TABLE_ENTRY_LEN).enumerate() {
        let m = BlockMeta::decode(&sub(row, 0));
        // Payloads are back to back from the header to the table: anything else is corruption.
        if m.offset != expect {
            return Err(ChunkError::Corrupt(format!(
                "block {i} at offset {}, expected {expect}",
                m.offset
            )));
        }
        expect = m
            .offset
            .checked_add(u64::from(m.compressed_len))
            .ok_or_else(|| ChunkError::Corrupt(format!("block {i} length overflows")))?;
        if m.uncompressed_len as usize > MAX_BLOCK_BYTES {
            return Err(ChunkError::BlockTooLarge {
                block: i,
                size: u64::from(m.uncompressed_len),
                max: MAX_BLOCK_BYTES as u64,
            });
        }
        if m.min_ts > m.max_ts || m.num_entries == 0 || m.num_entries > m.uncompressed_len {
            return Err(ChunkError::Corrupt(format!(
                "block {i} has time range [{}, {}] and {} entries in {} bytes",
                m.min_ts, m.max_ts, m.num_entries, m.uncompressed_len
            )));
        }
        blocks.push(m);
    }
    if expect != table_offset {
        return Err(ChunkError::Corrupt(format!(
            "blocks end at {expect}, table starts at {table_offset}"
        )));
    }
    Ok((codec, blocks))
}

/// Reads blocks: holds the zstd context and is reused across blocks and chunks so a scan does
/// not pay for context setup per block.
#[derive(Default)]
pub struct BlockDecoder {
    zstd: Option<zstd::bulk::Decompressor<'static>>,
}

impl BlockDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Verifies, decompresses and decodes block `index` of `data` into `out`, reusing `out`'s
    /// buffers. On error `out` is left empty.
    pub(crate) fn read(
        &mut self,
        data: &[u8],
        codec: Codec,
        index: usize,
        m: &BlockMeta,
        out: &mut Block,
    ) -> Result<()> {
        let corrupt = |reason: String| ChunkError::CorruptBlock { block: index, reason };
        let mut buf = out.take_buffer();
        let payload = usize::try_from(m.offset)
            .ok()
            .and_then(|o| data.get(o..o.checked_add(m.compressed_len as usize)?))
            .ok_or_else(|| {
                corrupt(format!(
                    "payload at {} of {} bytes is out of bounds",
                    m.offset, m.compressed_len
                ))
            })?;
        let computed = crc32fast::hash(payload);
        if computed != m.crc32 {
            return Err(ChunkError::BlockChecksum {
                block: index,
                stored: m.crc32,
                computed,
            });
        }
        let want = m.uncompressed_len as usize;
        if want > MAX_BLOCK_BYTES {
            return Err(ChunkError::BlockTooLarge {
                block: index,
                size: want as u64,
                max: MAX_BLOCK_BYTES as u64,
            });
        }
        match codec {
            Codec::None => buf.extend_from_slice(payload),
            Codec::Zstd => {
                // Capacity is the declared size (capped above), and zstd never writes past a
                // Vec's capacity: a bomb fails here instead of growing the buffer.
                buf.reserve_exact(want);
                let dec = match &mut self.zstd {
                    Some(d) => d,
                    None => self
                        .zstd
                        .insert(zstd::bulk::Decompressor::new().map_err(|e| corrupt(format!("zstd context: {e}")))?),
                };
                dec.decompress_to_buffer(payload, &mut buf)
                    .map_err(|e| corrupt(format!("zstd: {e}")))?;
            }
        }
        if buf.len() != want {
            return Err(corrupt(format!("decoded {} bytes, table says {want}", buf.len())));
        }
        out.decode_from(buf).map_err(corrupt)?;
        if out.len() != m.num_entries as usize || out.min_ts() != Some(m.min_ts) || out.max_ts() != Some(m.max_ts) {
            let (n, lo, hi) = (out.len(), out.min_ts(), out.max_ts());
            out.clear();
            return Err(corrupt(format!(
                "holds {n} entries in [{lo:?}, {hi:?}], table says {} in [{}, {}]",
                m.num_entries, m.min_ts, m.max_ts
            )));
        }
        Ok(())
    }
}
