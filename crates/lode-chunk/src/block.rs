//! One block of entries in columnar form. The same type is the ingester's head block (entries
//! are pushed onto it) and a block decoded from a chunk (one decompression, then zero-copy
//! `EntryRef`s into its buffers).
//!
//! Uncompressed payload, see docs/chunk-format.md:
//! `[line bytes][metadata string bytes][columns][u32 LE text_len]`. Text comes first so decoding
//! can hand the decompressed buffer itself to a `String` (one UTF-8 pass, no copy) after reading
//! the columns behind it.

use std::ops::{ControlFlow, Range};

use lode_model::{Direction, Entry};
use memchr::memmem::Finder;

use lode_model::varint::{self, Reader};

pub(crate) const TRAILER_LEN: usize = 4;

/// Entries of one block. Lines are concatenated in `lines`; `line_ends[i]` is where line `i`
/// ends. Metadata strings (name, value, name, value...) are concatenated in `meta_text`.
#[derive(Debug, Clone, Default)]
pub struct Block {
    lines: String,
    line_ends: Vec<u32>,
    ts: Vec<i64>,
    meta_text: String,
    /// Empty when no entry has metadata (the common case costs nothing); otherwise `len + 1`
    /// prefix sums of per-entry pair counts.
    meta_idx: Vec<u32>,
    /// End offset in `meta_text` of each metadata string, two per pair.
    str_ends: Vec<u32>,
    min_ts: i64,
    max_ts: i64,
    /// Timestamps non-decreasing: lets range lookups binary search. Writers guarantee it, but a
    /// block that violates it must still answer correctly.
    sorted: bool,
    /// Encoded size of the per-entry columns, kept up to date by `push` so the head block's
    /// size is known without encoding it.
    column_bytes: usize,
}

/// One entry borrowed from a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRef<'a> {
    pub ts: i64,
    pub line: &'a str,
    pub metadata: MetadataRef<'a>,
}

impl EntryRef<'_> {
    pub fn to_entry(&self) -> Entry {
        Entry {
            ts: self.ts,
            line: self.line.to_string(),
            metadata: self
                .metadata
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            parsed: Vec::new(),
        }
    }
}

/// An entry's structured metadata: name/value pairs in the order they were written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetadataRef<'a> {
    text: &'a str,
    /// String end offsets in `text` for this entry's pairs (even length).
    ends: &'a [u32],
    start: u32,
}

impl<'a> MetadataRef<'a> {
    const EMPTY: MetadataRef<'static> = MetadataRef {
        text: "",
        ends: &[],
        start: 0,
    };

    pub fn len(&self) -> usize {
        self.ends.len() / 2
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let (text, mut start) = (self.text, self.start as usize);
        // Boundaries were checked when the block was decoded, so `get` never misses here.
        let mut next = move |end: u32| {
            let s = text.get(start..end as usize).unwrap_or("");
            start = end as usize;
            s
        };
        self.ends.chunks_exact(2).map(move |p| (next(p[0]), next(p[1])))
    }

    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// Bytes of names and values, as Loki counts structured metadata.
    pub fn size(&self) -> usize {
        let end = self.ends.last().map_or(self.start, |e| *e);
        end.saturating_sub(self.start) as usize
    }
}

impl Block {
    pub fn len(&self) -> usize {
        self.ts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    pub fn min_ts(&self) -> Option<i64> {
        (!self.is_empty()).then_some(self.min_ts)
    }

    pub fn max_ts(&self) -> Option<i64> {
        (!self.is_empty()).then_some(self.max_ts)
    }

    /// All lines, concatenated. With [`Block::line_ends`] this lets a caller run its own
    /// substring or regex search over the whole block at once.
    pub fn lines_text(&self) -> &str {
        &self.lines
    }

    pub fn line_ends(&self) -> &[u32] {
        &self.line_ends
    }

    /// Line and metadata bytes (what the entries weigh, not the encoding).
    pub fn raw_bytes(&self) -> usize {
        self.lines.len() + self.meta_text.len()
    }

    pub fn entry(&self, i: usize) -> Option<EntryRef<'_>> {
        let ts = *self.ts.get(i)?;
        let end = *self.line_ends.get(i)? as usize;
        let start = i
            .checked_sub(1)
            .and_then(|p| self.line_ends.get(p))
            .map_or(0, |s| *s as usize);
        let line = self.lines.get(start..end).unwrap_or("");
        Some(EntryRef {
            ts,
            line,
            metadata: self.metadata(i),
        })
    }

    fn metadata(&self, i: usize) -> MetadataRef<'_> {
        let (Some(a), Some(b)) = (self.meta_idx.get(i), self.meta_idx.get(i + 1)) else {
            return MetadataRef::EMPTY;
        };
        let (a, b) = (*a as usize * 2, *b as usize * 2);
        let Some(ends) = self.str_ends.get(a..b) else {
            return MetadataRef::EMPTY;
        };
        let start = a.checked_sub(1).and_then(|p| self.str_ends.get(p)).map_or(0, |s| *s);
        MetadataRef {
            text: &self.meta_text,
            ends,
            start,
        }
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = EntryRef<'_>> {
        (0..self.len()).filter_map(|i| self.entry(i))
    }

    /// Indices that may hold entries in `[start, end)`: exact when sorted, else every index
    /// (callers then check each timestamp).
    fn candidates(&self, start: i64, end: i64) -> Range<usize> {
        if self.sorted {
            let lo = self.ts.partition_point(|t| *t < start);
            let hi = self.ts.partition_point(|t| *t < end);
            lo..hi.max(lo)
        } else {
            0..self.len()
        }
    }

    /// Calls `f` for each entry with `start <= ts < end`, in `dir` order.
    pub fn for_each_entry<F>(&self, start: i64, end: i64, dir: Direction, mut f: F) -> ControlFlow<()>
    where
        F: FnMut(EntryRef<'_>) -> ControlFlow<()>,
    {
        let mut visit = |i: usize| match self.entry(i) {
            Some(e) if e.ts >= start && e.ts < end => f(e),
            _ => ControlFlow::Continue(()),
        };
        let r = self.candidates(start, end);
        match dir {
            Direction::Forward => r.into_iter().try_for_each(&mut visit),
            Direction::Backward => r.rev().try_for_each(&mut visit),
        }
    }

    /// Appends to `out` (ascending) the indices of entries in `[start, end)` whose line contains
    /// the finder's needle. Runs one `memmem` over the contiguous line bytes rather than one
    /// call per line, so a rare needle costs little more than a memory scan.
    pub fn find_matches(&self, finder: &Finder<'_>, start: i64, end: i64, out: &mut Vec<u32>) {
        let r = self.candidates(start, end);
        let in_range = |i: usize| self.ts.get(i).is_some_and(|t| *t >= start && *t < end);
        let nlen = finder.needle().len();
        if nlen == 0 {
            out.extend(r.filter(|i| in_range(*i)).map(|i| i as u32));
            return;
        }
        let Some(last) = r.end.checked_sub(1) else { return };
        let line_start = |i: usize| {
            i.checked_sub(1)
                .and_then(|p| self.line_ends.get(p))
                .map_or(0, |s| *s as usize)
        };
        let mut pos = line_start(r.start);
        let region_end = self.line_ends.get(last).map_or(0, |e| *e as usize);
        let hay = self.lines.as_bytes();
        while pos < region_end {
            let Some(hit) = hay.get(pos..region_end).and_then(|h| finder.find(h)) else {
                break;
            };
            let p = pos + hit;
            // The line holding byte `p`: the first whose end is past it.
            let i = self.line_ends.partition_point(|e| (*e as usize) <= p);
            let Some(line_end) = self.line_ends.get(i).map(|e| *e as usize) else {
                break;
            };
            // A hit that straddles two lines matches neither; any later hit in this line would
            // straddle too, so go on from the next line.
            if p + nlen <= line_end && in_range(i) {
                out.push(i as u32);
            }
            pos = line_end;
        }
    }

    /// Lines in `[start, end)` and their bytes.
    pub fn count_in_range(&self, start: i64, end: i64) -> (u64, u64) {
        // Offset where line `i` starts (= where line `i - 1` ends).
        let offset = |i: usize| {
            i.checked_sub(1)
                .and_then(|p| self.line_ends.get(p))
                .map_or(0, |e| *e as u64)
        };
        let line_len = |i: usize| offset(i + 1).saturating_sub(offset(i));
        let r = self.candidates(start, end);
        if self.sorted {
            return (r.len() as u64, offset(r.end).saturating_sub(offset(r.start)));
        }
        r.filter(|i| self.ts.get(*i).is_some_and(|t| *t >= start && *t < end))
            .fold((0, 0), |(n, b), i| (n + 1, b + line_len(i)))
    }

    pub(crate) fn push(&mut self, ts: i64, line: &str, metadata: &[(String, String)]) {
        let n = self.len();
        if n == 0 {
            self.min_ts = ts;
            self.max_ts = ts;
            self.sorted = true;
            self.column_bytes += varint::len(varint::zigzag(ts));
        } else {
            self.sorted &= ts >= self.max_ts;
            self.min_ts = self.min_ts.min(ts);
            self.max_ts = self.max_ts.max(ts);
            let prev = self.ts.last().map_or(0, |t| *t);
            self.column_bytes += varint::len(varint::zigzag(ts.wrapping_sub(prev)));
        }
        self.ts.push(ts);
        self.lines.push_str(line);
        self.line_ends.push(self.lines.len() as u32);
        self.column_bytes += varint::len(line.len() as u64);
        if !metadata.is_empty() && self.meta_idx.is_empty() {
            // First metadata in this block: earlier entries had none.
            self.meta_idx.resize(n + 1, 0);
            self.column_bytes += n;
        }
        if !self.meta_idx.is_empty() {
            for (name, value) in metadata {
                for s in [name, value] {
                    self.meta_text.push_str(s);
                    self.str_ends.push(self.meta_text.len() as u32);
                    self.column_bytes += varint::len(s.len() as u64);
                }
            }
            self.meta_idx.push((self.str_ends.len() / 2) as u32);
            self.column_bytes += varint::len(metadata.len() as u64);
        }
    }

    /// Upper bound of the encoded payload's size: header varints and timestamp deltas are
    /// counted at their largest (the encoder may shrink deltas by their common divisor).
    pub(crate) fn encoded_len(&self) -> usize {
        self.lines.len() + self.meta_text.len() + self.column_bytes + 30 + TRAILER_LEN
    }

    pub(crate) fn clear(&mut self) {
        self.lines.clear();
        self.line_ends.clear();
        self.ts.clear();
        self.meta_text.clear();
        self.meta_idx.clear();
        self.str_ends.clear();
        self.column_bytes = 0;
        self.sorted = true;
    }

    /// Appends the uncompressed payload to `out`.
    #[cfg(test)]
    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.lines.as_bytes());
        out.extend_from_slice(self.meta_text.as_bytes());
        self.encode_columns(out);
    }

    /// The payload's text region: line bytes, then metadata string bytes.
    pub(crate) fn text_parts(&self) -> [&[u8]; 2] {
        [self.lines.as_bytes(), self.meta_text.as_bytes()]
    }

    /// Appends the payload after the text region: columns and trailer.
    pub(crate) fn encode_columns(&self, out: &mut Vec<u8>) {
        let text_len = self.lines.len() + self.meta_text.len();
        let pairs = self.str_ends.len() / 2;
        varint::put(out, self.len() as u64);
        varint::put(out, pairs as u64);
        // Sorted blocks (the normal case) store unsigned deltas divided by their common
        // divisor: timestamps of ms precision cost a byte or two instead of four.
        let deltas = self.ts.windows(2).map(|w| (w[1] as u64).wrapping_sub(w[0] as u64));
        let scale = if self.sorted {
            deltas.clone().fold(0, gcd).max(1)
        } else {
            1
        };
        varint::put(out, u64::from(self.sorted));
        varint::put(out, scale);
        if let Some(first) = self.ts.first() {
            varint::put(out, varint::zigzag(*first));
        }
        for d in deltas {
            varint::put(
                out,
                if self.sorted {
                    d / scale
                } else {
                    varint::zigzag(d as i64)
                },
            );
        }
        let mut start = 0u32;
        for e in &self.line_ends {
            varint::put(out, u64::from(e - start));
            start = *e;
        }
        if pairs > 0 {
            for w in self.meta_idx.windows(2) {
                varint::put(out, u64::from(w[1] - w[0]));
            }
            let mut start = 0u32;
            for e in &self.str_ends {
                varint::put(out, u64::from(e - start));
                start = *e;
            }
        }
        out.extend_from_slice(&(text_len as u32).to_le_bytes());
    }

    /// Replaces this block's contents with the payload in `buf`, taking the buffer over as the
    /// line storage. Every length and offset is checked against the buffer before use.
    pub(crate) fn decode_from(&mut self, mut buf: Vec<u8>) -> Result<(), String> {
        self.clear();
        let body_end = buf
            .len()
            .checked_sub(TRAILER_LEN)
            .ok_or_else(|| format!("payload of {} bytes is shorter than its trailer", buf.len()))?;
        let trailer: [u8; 4] = buf
            .get(body_end..)
            .and_then(|t| t.try_into().ok())
            .ok_or("missing trailer")?;
        let text_len = u32::from_le_bytes(trailer) as usize;
        let cols = buf
            .get(text_len..body_end)
            .ok_or_else(|| format!("text length {text_len} exceeds payload of {body_end} bytes"))?;
        let mut r = Reader::new(cols);
        let bad = |what: &str| format!("bad {what} column");
        let n = r.u32().ok_or_else(|| bad("entry count"))? as usize;
        let pairs = r.u32().ok_or_else(|| bad("pair count"))? as usize;
        // Every entry takes at least 2 column bytes and every pair 2 more: bounds what the
        // counts may ask us to allocate by the size of the buffer itself.
        let min_bytes = 2 * n as u64 + if pairs > 0 { n as u64 + 2 * pairs as u64 } else { 0 };
        if min_bytes > r.remaining() as u64 {
            return Err(format!(
                "{n} entries and {pairs} metadata pairs do not fit in {} column bytes",
                cols.len()
            ));
        }
        let sorted = match r.u64() {
            Some(0) => false,
            Some(1) => true,
            _ => return Err(bad("timestamp flags")),
        };
        let scale = r.u64().filter(|s| *s > 0).ok_or_else(|| bad("timestamp scale"))?;
        self.ts.reserve(n);
        self.line_ends.reserve(n);
        let mut prev = 0i64;
        for i in 0..n {
            let v = r.u64().ok_or_else(|| bad("timestamp"))?;
            let t = if i == 0 {
                varint::unzigzag(v)
            } else if sorted {
                let d = v.checked_mul(scale).ok_or_else(|| bad("timestamp"))?;
                // A sorted block's deltas never wrap: if one does, the flag or data lies.
                let t = (prev as u64).wrapping_add(d) as i64;
                if t < prev {
                    return Err(format!("timestamp {t} after {prev} in a block marked sorted"));
                }
                t
            } else {
                prev.wrapping_add(varint::unzigzag(v))
            };
            if i == 0 {
                (self.min_ts, self.max_ts) = (t, t);
            } else {
                self.sorted &= t >= prev;
                self.min_ts = self.min_ts.min(t);
                self.max_ts = self.max_ts.max(t);
            }
            self.ts.push(t);
            prev = t;
        }
        let mut end = 0u64;
        for _ in 0..n {
            end += u64::from(r.u32().ok_or_else(|| bad("line length"))?);
            if end > text_len as u64 {
                return Err(format!("line lengths exceed the text length {text_len}"));
            }
            self.line_ends.push(end as u32);
        }
        let lines_len = end as usize;
        let meta_len = text_len - lines_len;
        if pairs > 0 {
            self.meta_idx.reserve(n + 1);
            self.meta_idx.push(0);
            let mut acc = 0u64;
            for _ in 0..n {
                acc += u64::from(r.u32().ok_or_else(|| bad("metadata count"))?);
                if acc > pairs as u64 {
                    return Err(format!("metadata counts exceed the pair count {pairs}"));
                }
                self.meta_idx.push(acc as u32);
            }
            if acc != pairs as u64 {
                return Err(format!("metadata counts sum to {acc}, expected {pairs}"));
            }
            self.str_ends.reserve(2 * pairs);
            let mut e = 0u64;
            for _ in 0..2 * pairs {
                e += u64::from(r.u32().ok_or_else(|| bad("metadata length"))?);
                if e > meta_len as u64 {
                    return Err(format!("metadata lengths exceed the {meta_len} metadata bytes"));
                }
                self.str_ends.push(e as u32);
            }
            if e != meta_len as u64 {
                return Err(format!("metadata lengths sum to {e}, expected {meta_len}"));
            }
        } else if meta_len != 0 {
            return Err(format!("{meta_len} text bytes beyond the lines but no metadata"));
        }
        if r.remaining() != 0 {
            return Err(format!("{} trailing column bytes", r.remaining()));
        }
        let meta = buf.get(lines_len..text_len).ok_or("metadata region out of bounds")?;
        self.meta_text
            .push_str(std::str::from_utf8(meta).map_err(|e| format!("metadata is not utf-8: {e}"))?);
        if !self
            .str_ends
            .iter()
            .all(|e| self.meta_text.is_char_boundary(*e as usize))
        {
            return Err("metadata string splits a utf-8 character".into());
        }
        buf.truncate(lines_len);
        self.lines = String::from_utf8(buf).map_err(|e| format!("lines are not utf-8: {}", e.utf8_error()))?;
        if !self.line_ends.iter().all(|e| self.lines.is_char_boundary(*e as usize)) {
            return Err("line boundary splits a utf-8 character".into());
        }
        Ok(())
    }

    /// Gives the line buffer back for reuse as the next decompression target.
    pub(crate) fn take_buffer(&mut self) -> Vec<u8> {
        let mut b = std::mem::take(&mut self.lines).into_bytes();
        b.clear();
        self.clear();
        b
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}
