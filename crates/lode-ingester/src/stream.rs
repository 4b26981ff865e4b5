//! One stream in an ingester's memory: an open head chunk (`MemChunk`) plus chunks already cut
//! and waiting to be flushed. `push` enforces ordered writes per stream as Loki does.

use std::ops::ControlFlow;
use std::sync::Arc;

use bytes::Bytes;
use lode_chunk::{Chunk, EntryRef, MemChunk, Skipped};
use lode_index::ChunkRef;
use lode_model::limits::TokenBucket;
use lode_model::time::{ByteSize, go_time_string};
use lode_model::{Direction, Entry, Labels};
use lode_wal::Batch;
use tokio::time::Instant;

use crate::IngesterError;

/// Loki's reason text for a line older than its stream's newest line.
pub const OUT_OF_ORDER: &str = "entry out of order";
/// Loki caps the per-entry lines of an ingester error at this many.
const MAX_RETURNED_ERRORS: usize = 10;

/// A cut chunk: encoded bytes and the reference it will have in the index.
#[derive(Debug)]
pub(crate) struct CutChunk {
    pub bytes: Bytes,
    pub cref: ChunkRef,
}

pub(crate) struct Stream {
    pub labels: Labels,
    pub printed: String,
    fingerprint: u64,
    head: MemChunk,
    head_opened: Option<Instant>,
    pub last_append: Instant,
    /// The newest accepted entry: ordering and duplicate checks compare against it.
    last: Option<Entry>,
    /// Cut chunks not yet confirmed flushed, oldest first.
    pub pending: Vec<Arc<CutChunk>>,
    /// Set when the stream is dropped from its tenant's map; pushes must not write to it.
    pub removed: bool,
    /// This stream's id in WAL records (unique in this process).
    pub wal_id: u64,
    /// Whether the WAL has this stream's `series` record (since the last checkpoint).
    wal_logged: bool,
    /// `per_stream_rate_limit`, created on the first push that has a limit.
    rate: Option<TokenBucket>,
    block_size: usize,
    zstd_level: i32,
}

/// What `push` did with a batch.
pub(crate) struct PushOutcome {
    pub appended: usize,
    pub appended_bytes: usize,
    /// Loki-worded error block when some entries were refused.
    pub refused: Option<String>,
    pub refused_lines: usize,
    pub refused_bytes: usize,
    /// Of the refused, those over the stream's rate limit.
    pub rate_limited: usize,
    pub rate_limited_bytes: usize,
}

/// A stream's rate limit for one push: bytes per second and burst.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StreamRate {
    pub rate: f64,
    pub burst: f64,
}

impl Stream {
    pub fn new(labels: Labels, block_size: usize, zstd_level: i32, wal_id: u64) -> Self {
        Stream {
            printed: labels.to_string(),
            fingerprint: labels.fingerprint(),
            labels,
            head: MemChunk::new(block_size, zstd_level),
            head_opened: None,
            last_append: Instant::now(),
            last: None,
            pending: Vec::new(),
            removed: false,
            wal_id,
            wal_logged: false,
            rate: None,
            block_size,
            zstd_level,
        }
    }

    /// Every entry this stream holds (cut chunks not yet flushed and the head chunk) with a
    /// time in `[from, through]`.
    fn held_between(&self, from: i64, through: i64) -> std::collections::HashSet<Entry> {
        let mut out = std::collections::HashSet::new();
        let end = through.saturating_add(1);
        let mut add = |e: EntryRef<'_>| {
            out.insert(e.to_entry());
            ControlFlow::Continue(())
        };
        for c in &self.pending {
            if c.cref.through >= from
                && c.cref.from <= through
                && let Ok(chunk) = Chunk::from_bytes(c.bytes.clone())
            {
                // A chunk this ingester encoded itself; if it cannot be read here, the copy
                // check is what fails, and the lines are refused as out of order.
                let _ = chunk.for_each_entry(from, end, Direction::Forward, &mut add);
            }
        }
        let _ = self.head.for_each_entry(from, end, Direction::Forward, &mut add);
        out
    }

    /// Appends entries in order. A line older than the newest accepted one is refused, unless
    /// the stream already holds an exact copy of it (same time, line and metadata): copies are
    /// dropped silently, so a retried push (which a replica may have taken although its
    /// distributor failed) is not an error. Equal times with different lines are kept.
    /// Accepted entries are also encoded into `wal`.
    pub fn push(
        &mut self,
        tenant: &str,
        entries: Vec<Entry>,
        target_size: u64,
        rate: Option<StreamRate>,
        mut wal: Option<&mut Batch>,
        mut accepted: Option<&mut Vec<Entry>>,
    ) -> PushOutcome {
        let now = std::time::Instant::now();
        let (mut rate_limited, mut rate_limited_bytes) = (0, 0);
        if let Some(b) = wal.as_deref_mut() {
            if !self.wal_logged {
                b.series(tenant, self.wal_id, &self.printed);
                self.wal_logged = true;
            }
            b.begin_entries(self.wal_id);
        }
        let total = entries.len();
        // The entries held from the oldest one this push sends again, to tell copies from
        // lines that really are out of order (rare: only retried or reordered pushes).
        let held = self.last.as_ref().and_then(|last| {
            let from = entries.iter().map(|e| e.ts).filter(|ts| *ts <= last.ts).min()?;
            Some(self.held_between(from, last.ts))
        });
        // (timestamp, reason) of each refused entry.
        let mut refused: Vec<(i64, String)> = Vec::new();
        let mut refused_bytes = 0;
        let mut appended = 0;
        let mut appended_bytes = 0;
        for e in entries {
            if let Some(last) = &self.last {
                if e.ts <= last.ts && held.as_ref().is_some_and(|h| h.contains(&e)) {
                    continue;
                }
                if e.ts < last.ts {
                    refused_bytes += e.size();
                    refused.push((e.ts, OUT_OF_ORDER.to_string()));
                    continue;
                }
                if e == *last {
                    continue;
                }
            }
            if let Some(r) = rate {
                let bucket = self.rate.get_or_insert_with(|| TokenBucket::new(r.burst));
                if !bucket.allow(e.size() as f64, r.rate, r.burst, now) {
                    rate_limited += 1;
                    rate_limited_bytes += e.size();
                    refused_bytes += e.size();
                    refused.push((
                        e.ts,
                        format!(
                            "Per stream rate limit exceeded (limit: {}/sec) while attempting to ingest for stream '{}' totaling {}, consider splitting a stream via additional labels or contact your Loki administrator to see if the limit can be increased",
                            ByteSize(r.rate as u64),
                            self.printed,
                            ByteSize(e.size() as u64)
                        ),
                    ));
                    continue;
                }
            }
            // A refused entry (too large for a block) costs only itself, never its neighbours.
            if let Err(err) = self.head.append(e.ts, &e.line, &e.metadata) {
                refused_bytes += e.size();
                refused.push((e.ts, err.to_string()));
                continue;
            }
            if self.head_opened.is_none() {
                self.head_opened = Some(Instant::now());
            }
            appended += 1;
            appended_bytes += e.size();
            if let Some(b) = wal.as_deref_mut() {
                b.entry(e.ts, &e.line, e.metadata.iter().map(|(n, v)| (n.as_str(), v.as_str())));
                if b.open_record_is_large() {
                    b.begin_entries(self.wal_id);
                }
            }
            if let Some(a) = accepted.as_deref_mut() {
                a.push(e.clone());
            }
            self.last = Some(e);
            if self.head.compressed_bytes() >= target_size
                && let Err(err) = self.cut()
            {
                // The entries stay in the head; the next push or flush cuts again.
                tracing::warn!(stream = %self.printed, error = %err, "cannot cut chunk");
            }
        }
        if let Some(b) = wal {
            b.end_entries();
        }
        if appended > 0 {
            self.last_append = Instant::now();
        }
        let refused_lines = refused.len();
        let refused = (refused_lines > 0).then(|| {
            let mut msg = String::new();
            for (ts, reason) in refused.iter().take(MAX_RETURNED_ERRORS) {
                msg.push_str(&format!(
                    "entry with timestamp {} ignored, reason: '{reason}',\n",
                    go_time_string(*ts)
                ));
            }
            msg.push_str(&format!(
                "user '{tenant}', total ignored: {refused_lines} out of {total} for stream: {}",
                self.printed
            ));
            msg
        });
        PushOutcome {
            appended,
            appended_bytes,
            refused,
            refused_lines,
            refused_bytes,
            rate_limited,
            rate_limited_bytes,
        }
    }

    /// Closes the head chunk and queues it for flushing.
    pub fn cut(&mut self) -> Result<(), IngesterError> {
        if self.head.is_empty() {
            return Ok(());
        }
        let (Some(from), Some(through)) = (self.head.min_ts(), self.head.max_ts()) else {
            return Ok(());
        };
        let entries = self.head.num_entries();
        // Encode before replacing the head: if compression fails, the entries stay where they
        // were instead of vanishing.
        let bytes = self.head.encode()?;
        self.head = MemChunk::new(self.block_size, self.zstd_level);
        self.head_opened = None;
        let cref = ChunkRef {
            fingerprint: self.fingerprint,
            from,
            through,
            checksum: crc32fast::hash(&bytes),
            size: u32::try_from(bytes.len()).unwrap_or(u32::MAX),
            entries: u32::try_from(entries).unwrap_or(u32::MAX),
        };
        self.pending.push(Arc::new(CutChunk {
            bytes: Bytes::from(bytes),
            cref,
        }));
        Ok(())
    }

    /// Writes this stream's unflushed state to a checkpoint batch: its `series` record, each
    /// cut chunk, the head's cut blocks as one chunk, and the head block's entries.
    pub fn snapshot(&mut self, tenant: &str, b: &mut Batch) {
        b.series(tenant, self.wal_id, &self.printed);
        self.wal_logged = true;
        for c in &self.pending {
            b.chunk(self.wal_id, &c.bytes);
        }
        if let Some(cut) = self.head.encode_cut_blocks() {
            b.chunk(self.wal_id, &cut);
        }
        b.begin_entries(self.wal_id);
        for e in self.head.head().iter() {
            let md: Vec<(&str, &str)> = e.metadata.iter().collect();
            b.entry(e.ts, e.line, md.into_iter());
            if b.open_record_is_large() {
                b.begin_entries(self.wal_id);
            }
        }
        b.end_entries();
    }

    /// Puts back a chunk a WAL checkpoint held as cut and unflushed; it is flushed as usual.
    pub fn restore_chunk(&mut self, bytes: &[u8]) -> Result<(), IngesterError> {
        let chunk = Chunk::from_bytes(Bytes::copy_from_slice(bytes))?;
        let (Some(from), Some(through)) = (chunk.min_ts(), chunk.max_ts()) else {
            return Ok(());
        };
        let mut newest = None;
        let _ = chunk.for_each_entry(i64::MIN, i64::MAX, Direction::Backward, |e| {
            newest = Some(e.to_entry());
            ControlFlow::Break(())
        })?;
        if let Some(e) = newest
            && self.last.as_ref().is_none_or(|l| e.ts >= l.ts)
        {
            self.last = Some(e);
        }
        let bytes = Bytes::copy_from_slice(chunk.as_bytes());
        self.pending.push(Arc::new(CutChunk {
            cref: ChunkRef {
                fingerprint: self.fingerprint,
                from,
                through,
                checksum: crc32fast::hash(&bytes),
                size: u32::try_from(bytes.len()).unwrap_or(u32::MAX),
                entries: u32::try_from(chunk.num_entries()).unwrap_or(u32::MAX),
            },
            bytes,
        }));
        self.last_append = Instant::now();
        Ok(())
    }

    /// Whether the head should be cut now: too old in wall-clock time or in data span, or idle.
    pub fn head_due(
        &self,
        now: Instant,
        max_age: std::time::Duration,
        idle: std::time::Duration,
    ) -> Option<&'static str> {
        let opened = self.head_opened?;
        if now.duration_since(opened) >= max_age {
            return Some("max_age");
        }
        if let (Some(a), Some(b)) = (self.head.min_ts(), self.head.max_ts())
            && b.saturating_sub(a) >= i64::try_from(max_age.as_nanos()).unwrap_or(i64::MAX)
        {
            return Some("max_age");
        }
        if now.duration_since(self.last_append) >= idle {
            return Some("idle");
        }
        None
    }

    pub fn is_empty(&self) -> bool {
        self.head.is_empty() && self.pending.is_empty()
    }

    /// Whether any entry held here may fall in `[start, end)`.
    pub fn overlaps(&self, start: i64, end: i64) -> bool {
        let head = match (self.head.min_ts(), self.head.max_ts()) {
            (Some(a), Some(b)) => a < end && b >= start,
            _ => false,
        };
        head || self
            .pending
            .iter()
            .any(|c| c.cref.from < end && c.cref.through >= start)
    }

    /// Summaries of the chunks held here that overlap `[start, end)`: cut chunks as they will
    /// be indexed, the head with its uncompressed size.
    pub fn chunk_summaries(&self, start: i64, end: i64) -> Vec<lode_model::api::ChunkSummary> {
        let mut out: Vec<lode_model::api::ChunkSummary> = self
            .pending
            .iter()
            .filter(|c| c.cref.from < end && c.cref.through >= start)
            .map(|c| lode_model::api::ChunkSummary {
                from: c.cref.from,
                through: c.cref.through,
                bytes: u64::from(c.cref.size),
                entries: u64::from(c.cref.entries),
                checksum: Some(c.cref.checksum),
            })
            .collect();
        if let (Some(from), Some(through)) = (self.head.min_ts(), self.head.max_ts())
            && from < end
            && through >= start
        {
            out.push(lode_model::api::ChunkSummary {
                from,
                through,
                bytes: self.head.uncompressed_bytes(),
                entries: self.head.num_entries(),
                checksum: None,
            });
        }
        out
    }

    /// Heap bytes held: the head chunk plus the cut chunks waiting for their flush.
    pub fn memory_bytes(&self) -> u64 {
        self.head.memory_bytes() + self.pending.iter().map(|c| c.bytes.len() as u64).sum::<u64>()
    }

    /// Heap bytes of the head chunk alone (what cutting it early would move out).
    pub fn head_memory_bytes(&self) -> u64 {
        self.head.memory_bytes()
    }

    pub fn head_bytes(&self) -> u64 {
        self.head.uncompressed_bytes()
    }

    /// Drops pending chunks whose flush has been confirmed.
    pub fn forget_flushed(&mut self, flushed: &[Arc<CutChunk>]) {
        self.pending.retain(|c| !flushed.iter().any(|f| Arc::ptr_eq(f, c)));
    }

    /// Visits entries in `[start, end)` in `dir` order: pending chunks (older) then the head;
    /// with `needle`, only entries whose line contains it (found per block by `memmem`).
    pub fn for_each_entry(
        &self,
        start: i64,
        end: i64,
        dir: Direction,
        needle: Option<&[u8]>,
        skipped: &mut Skipped,
        f: &mut dyn FnMut(EntryRef<'_>) -> ControlFlow<()>,
    ) -> Result<ControlFlow<()>, IngesterError> {
        let visit_pending =
            |c: &Arc<CutChunk>, skipped: &mut Skipped, f: &mut dyn FnMut(EntryRef<'_>) -> ControlFlow<()>| {
                if !c.cref.overlaps(start, end.saturating_sub(1)) {
                    return Ok(ControlFlow::Continue(()));
                }
                let chunk = Chunk::from_bytes(c.bytes.clone())?;
                Ok::<_, IngesterError>(chunk.for_each_containing(start, end, dir, needle, skipped, &mut *f)?)
            };
        match dir {
            Direction::Forward => {
                for c in &self.pending {
                    if visit_pending(c, skipped, f)?.is_break() {
                        return Ok(ControlFlow::Break(()));
                    }
                }
                Ok(self
                    .head
                    .for_each_containing(start, end, dir, needle, skipped, &mut *f)?)
            }
            Direction::Backward => {
                if self
                    .head
                    .for_each_containing(start, end, dir, needle, skipped, &mut *f)?
                    .is_break()
                {
                    return Ok(ControlFlow::Break(()));
                }
                for c in self.pending.iter().rev() {
                    if visit_pending(c, skipped, f)?.is_break() {
                        return Ok(ControlFlow::Break(()));
                    }
                }
                Ok(ControlFlow::Continue(()))
            }
        }
    }
}
