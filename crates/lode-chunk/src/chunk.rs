//! `Chunk`: a serialized chunk as the querier sees it. Decoding validates only the envelope
//! (header, table, footer); blocks are verified and decompressed one at a time as a scan reaches
//! them, and blocks outside the query's time range are never read.

use std::ops::ControlFlow;

use bytes::Bytes;
use lode_model::{Direction, Entry};
use memchr::memmem::Finder;

use crate::block::{Block, EntryRef};
use crate::error::{ChunkError, Result};
use crate::format::{self, BlockDecoder, BlockMeta, Codec};

/// A decoded chunk: the serialized bytes plus its parsed block table.
#[derive(Debug, Clone)]
pub struct Chunk {
    data: Bytes,
    codec: Codec,
    blocks: Vec<BlockMeta>,
}

impl Chunk {
    /// Parses and validates a chunk, copying the bytes.
    pub fn decode(bytes: &[u8]) -> Result<Chunk> {
        Self::from_bytes(Bytes::copy_from_slice(bytes))
    }

    /// Parses and validates a chunk without copying (e.g. a `Bytes` from object storage).
    pub fn from_bytes(data: impl Into<Bytes>) -> Result<Chunk> {
        let data = data.into();
        let (codec, blocks) = format::parse(&data)?;
        Ok(Chunk { data, codec, blocks })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.data
    }

    /// Serialized size.
    pub fn size(&self) -> usize {
        self.data.len()
    }

    pub fn codec(&self) -> Codec {
        self.codec
    }

    pub fn blocks(&self) -> &[BlockMeta] {
        &self.blocks
    }

    pub fn num_entries(&self) -> u64 {
        self.blocks.iter().map(|b| u64::from(b.num_entries)).sum()
    }

    pub fn min_ts(&self) -> Option<i64> {
        self.blocks.iter().map(|b| b.min_ts).min()
    }

    pub fn max_ts(&self) -> Option<i64> {
        self.blocks.iter().map(|b| b.max_ts).max()
    }

    /// Uncompressed payload bytes of all blocks.
    pub fn uncompressed_bytes(&self) -> u64 {
        self.blocks.iter().map(|b| u64::from(b.uncompressed_len)).sum()
    }

    /// Verifies and decodes block `i` into `out`, reusing `dec`'s context and `out`'s buffers.
    pub fn read_block(&self, i: usize, dec: &mut BlockDecoder, out: &mut Block) -> Result<()> {
        let m = self
            .blocks
            .get(i)
            .ok_or_else(|| ChunkError::Corrupt(format!("no block {i} in a chunk of {}", self.blocks.len())))?;
        dec.read(&self.data, self.codec, i, m, out)
    }

    pub fn block(&self, i: usize) -> Result<Block> {
        let mut out = Block::default();
        self.read_block(i, &mut BlockDecoder::new(), &mut out)?;
        Ok(out)
    }

    /// Calls `f` for every entry with `start <= ts < end` in `dir` order, until it breaks.
    pub fn for_each_entry<F>(&self, start: i64, end: i64, dir: Direction, mut f: F) -> Result<ControlFlow<()>>
    where
        F: FnMut(EntryRef<'_>) -> ControlFlow<()>,
    {
        self.source()
            .scan(start, end, dir, None, &mut Skipped::default(), &mut f)
    }

    /// Like [`Chunk::for_each_entry`], only entries whose line contains `needle` when one is given
    /// (LogQL `|=`): one `memmem` per decoded block instead of one filter call per line.
    pub fn for_each_containing<F>(
        &self,
        start: i64,
        end: i64,
        dir: Direction,
        needle: Option<&[u8]>,
        skipped: &mut Skipped,
        mut f: F,
    ) -> Result<ControlFlow<()>>
    where
        F: FnMut(EntryRef<'_>) -> ControlFlow<()>,
    {
        let finder = needle.map(Finder::new);
        self.source().scan(start, end, dir, finder.as_ref(), skipped, &mut f)
    }

    /// Owned entries in `[start, end)`; for tests and small results.
    pub fn entries(&self, start: i64, end: i64, dir: Direction) -> Result<Vec<Entry>> {
        let mut out = Vec::new();
        // The callback never breaks, so the flow carries nothing.
        let _ = self.for_each_entry(start, end, dir, |e| {
            out.push(e.to_entry());
            ControlFlow::Continue(())
        })?;
        Ok(out)
    }

    fn source(&self) -> Source<'_> {
        Source {
            data: &self.data,
            codec: self.codec,
            blocks: &self.blocks,
            head: None,
        }
    }
}

/// What a needle scan passed over without calling the visitor: the lines in range that do not
/// contain the needle. A query's "lines processed" counts them too.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Skipped {
    pub lines: u64,
    pub bytes: u64,
}

/// Cut blocks plus, for a `MemChunk`, the head block: what a scan walks.
pub(crate) struct Source<'a> {
    pub(crate) data: &'a [u8],
    pub(crate) codec: Codec,
    pub(crate) blocks: &'a [BlockMeta],
    pub(crate) head: Option<&'a Block>,
}

impl Source<'_> {
    pub(crate) fn scan<F>(
        &self,
        start: i64,
        end: i64,
        dir: Direction,
        needle: Option<&Finder<'_>>,
        skipped: &mut Skipped,
        f: &mut F,
    ) -> Result<ControlFlow<()>>
    where
        F: FnMut(EntryRef<'_>) -> ControlFlow<()>,
    {
        if start >= end {
            return Ok(ControlFlow::Continue(()));
        }
        let mut hits = Vec::new();
        let mut visit = |b: &Block| match needle {
            None => b.for_each_entry(start, end, dir, &mut *f),
            Some(finder) => {
                hits.clear();
                b.find_matches(finder, start, end, &mut hits);
                let (lines, bytes) = b.count_in_range(start, end);
                let hit_bytes: u64 = hits
                    .iter()
                    .filter_map(|i| b.entry(*i as usize))
                    .map(|e| e.line.len() as u64)
                    .sum();
                skipped.lines += lines.saturating_sub(hits.len() as u64);
                skipped.bytes += bytes.saturating_sub(hit_bytes);
                let mut each = |i: &u32| b.entry(*i as usize).map_or(ControlFlow::Continue(()), &mut *f);
                match dir {
                    Direction::Forward => hits.iter().try_for_each(&mut each),
                    Direction::Backward => hits.iter().rev().try_for_each(&mut each),
                }
            }
        };
        let head = self
            .head
            .filter(|h| h.min_ts().is_some_and(|lo| lo < end) && h.max_ts() >= Some(start));
        if dir == Direction::Backward
            && let Some(h) = head
            && visit(h).is_break()
        {
            return Ok(ControlFlow::Break(()));
        }
        let wanted = |(_, m): &(usize, &BlockMeta)| m.overlaps(start, end);
        let indices: Vec<usize> = match dir {
            Direction::Forward => self.blocks.iter().enumerate().filter(wanted).map(|(i, _)| i).collect(),
            Direction::Backward => self
                .blocks
                .iter()
                .enumerate()
                .rev()
                .filter(wanted)
                .map(|(i, _)| i)
                .collect(),
        };
        let (mut dec, mut block) = (BlockDecoder::new(), Block::default());
        for i in indices {
            let Some(m) = self.blocks.get(i) else { continue };
            dec.read(self.data, self.codec, i, m, &mut block)?;
            if visit(&block).is_break() {
                return Ok(ControlFlow::Break(()));
            }
        }
        if dir == Direction::Forward
            && let Some(h) = head
            && visit(h).is_break()
        {
            return Ok(ControlFlow::Break(()));
        }
        Ok(ControlFlow::Continue(()))
    }
}
