//! The store side of the query path: find chunks through the label index (index objects listed
//! per tenant and period, decoded once and cached, since they are immutable), fetch only the
//! chunks that overlap the query's range and matchers, verify their checksums, and scan them.

use std::collections::{BTreeSet, HashMap};
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use lode_chunk::Chunk;
use lode_index::{ChunkRef, IndexObject, LabelMatch, period_prefix, periods_overlapping};
use lode_logql::LogQuery;
use lode_model::api::{QueryStats, RangeQuery};
use lode_model::{Direction, Entry, Labels, Stream};
use lode_storage::ObjectStorage;

use crate::QuerierError;

/// Reads flushed data for queries.
pub struct StoreReader {
    store: ObjectStorage,
    index_cache: Mutex<HashMap<String, Arc<IndexObject>>>,
    concurrency: usize,
}

/// The chunks of one stream that a query needs.
pub(crate) struct StreamChunks {
    pub labels: Labels,
    pub chunks: Vec<ChunkRef>,
}

impl StoreReader {
    pub fn new(store: ObjectStorage, concurrency: usize) -> Self {
        StoreReader {
            store,
            index_cache: Mutex::new(HashMap::new()),
            concurrency: concurrency.max(1),
        }
    }

    /// Index objects of `tenant` for every period overlapping `[start, end)`.
    async fn indexes(&self, tenant: &str, start: i64, end: i64) -> Result<Vec<Arc<IndexObject>>, QuerierError> {
        let mut out = Vec::new();
        for period in periods_overlapping(start, end.saturating_sub(1).max(start)) {
            for key in self.store.list(&period_prefix(tenant, period)).await? {
                let cached = self
                    .index_cache
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&key)
                    .cloned();
                let obj = match cached {
                    Some(o) => o,
                    None => {
                        let bytes = self.store.get(&key).await?;
                        let obj = Arc::new(IndexObject::decode(&bytes).map_err(|e| QuerierError::CorruptIndex {
                            key: key.clone(),
                            source: e,
                        })?);
                        self.index_cache
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert(key, obj.clone());
                        obj
                    }
                };
                // An index object names its tenant; never trust a key alone to separate tenants.
                if obj.tenant() == tenant {
                    out.push(obj);
                }
            }
        }
        Ok(out)
    }

    /// Streams matching the selector with the chunks overlapping `[start, end)`, each chunk once.
    pub(crate) async fn plan(
        &self,
        tenant: &str,
        q: &LogQuery,
        start: i64,
        end: i64,
    ) -> Result<Vec<StreamChunks>, QuerierError> {
        let indexes = self.indexes(tenant, start, end).await?;
        let matchers = q.selector().matchers();
        let fns: Vec<LabelMatch<'_>> = matchers
            .iter()
            .map(|m| LabelMatch::new(m.name(), |v| m.matches(v)))
            .collect();
        let mut by_stream: HashMap<Labels, BTreeSet<ChunkRef>> = HashMap::new();
        for idx in indexes {
            for (labels, chunks) in idx.select(&fns, start, end.saturating_sub(1)) {
                by_stream.entry(labels.clone()).or_default().extend(chunks);
            }
        }
        Ok(by_stream
            .into_iter()
            .map(|(labels, c)| StreamChunks {
                labels,
                chunks: c.into_iter().collect(),
            })
            .collect())
    }

    async fn fetch(&self, tenant: &str, cref: ChunkRef) -> Result<Chunk, QuerierError> {
        let key = cref.key(tenant);
        let bytes = self.store.get(&key).await?;
        let computed = crc32fast::hash(&bytes);
        if computed != cref.checksum || bytes.len() != cref.size as usize {
            return Err(QuerierError::CorruptChunk {
                key,
                reason: format!(
                    "checksum mismatch: index says crc32 {:#010x} and {} bytes, object has {computed:#010x} and {} bytes",
                    cref.checksum,
                    cref.size,
                    bytes.len()
                ),
            });
        }
        Chunk::from_bytes(bytes).map_err(|e| QuerierError::CorruptChunk {
            key,
            reason: e.to_string(),
        })
    }

    /// Entries of the planned streams in `[start, end)` that pass the pipeline, at most `limit`
    /// per stream (the newest for backward, the oldest for forward).
    pub(crate) async fn select(
        &self,
        tenant: &str,
        q: &LogQuery,
        plan: Vec<StreamChunks>,
        req: &RangeQuery,
    ) -> Result<(Vec<Stream>, QueryStats), QuerierError> {
        let (start, end, dir, limit) = (req.start, req.end, req.direction, req.limit);
        let mut stats = QueryStats::default();
        let mut out = Vec::new();
        for mut sc in plan {
            // Visit chunks in direction order so we can stop once the limit is met and no
            // remaining chunk can hold a better entry.
            match dir {
                Direction::Forward => sc.chunks.sort_by_key(|c| (c.from, c.through)),
                Direction::Backward => sc.chunks.sort_by_key(|c| std::cmp::Reverse((c.through, c.from))),
            }
            let mut entries: Vec<Entry> = Vec::new();
            let mut fetched = futures::stream::iter(sc.chunks.iter().copied())
                .map(|c| async move { (c, self.fetch(tenant, c).await) })
                .buffered(self.concurrency);
            while let Some((cref, chunk)) = fetched.next().await {
                if entries.len() >= limit && !could_improve(&entries, &cref, dir) {
                    break;
                }
                let chunk = chunk?;
                stats.chunks_fetched += 1;
                stats.chunk_bytes_fetched += u64::from(cref.size);
                let mut taken = 0usize;
                // Break only means this chunk gave `limit` entries.
                let _ = chunk
                    .for_each_entry(start, end, dir, |e| {
                        stats.lines_processed += 1;
                        stats.bytes_processed += e.line.len() as u64;
                        if q.pipeline.matches(e.line) {
                            stats.post_filter_lines += 1;
                            entries.push(e.to_entry());
                            taken += 1;
                            if taken >= limit {
                                return ControlFlow::Break(());
                            }
                        }
                        ControlFlow::Continue(())
                    })
                    .map_err(|e| QuerierError::CorruptChunk {
                        key: cref.key(tenant),
                        reason: e.to_string(),
                    })?;
                // Keep only the best `limit` so memory stays bounded by the result.
                sort_dedup(&mut entries, dir);
                entries.truncate(limit);
            }
            if !entries.is_empty() {
                out.push(Stream {
                    labels: sc.labels.to_string(),
                    entries,
                });
            }
        }
        Ok((out, stats))
    }

    /// Label names, or the values of `name`, of streams in the index for `[start, end)`.
    pub(crate) async fn label_values(
        &self,
        tenant: &str,
        name: Option<&str>,
        q: Option<&LogQuery>,
        start: i64,
        end: i64,
    ) -> Result<BTreeSet<String>, QuerierError> {
        let indexes = self.indexes(tenant, start, end).await?;
        let mut out = BTreeSet::new();
        let matchers = q.map(|q| q.selector().matchers()).unwrap_or_default();
        let fns: Vec<LabelMatch<'_>> = matchers
            .iter()
            .map(|m| LabelMatch::new(m.name(), |v| m.matches(v)))
            .collect();
        for idx in indexes {
            for (labels, _) in idx.select(&fns, start, end.saturating_sub(1)) {
                match name {
                    None => out.extend(labels.iter().map(|(n, _)| n.to_string())),
                    Some(n) => out.extend(labels.get(n).map(str::to_string)),
                }
            }
        }
        Ok(out)
    }
}

/// Whether a chunk could still contribute an entry that beats the worst one kept.
fn could_improve(entries: &[Entry], c: &ChunkRef, dir: Direction) -> bool {
    match (dir, entries.last()) {
        (_, None) => true,
        (Direction::Forward, Some(worst)) => c.from <= worst.ts,
        (Direction::Backward, Some(worst)) => c.through >= worst.ts,
    }
}

/// Sorts entries in direction order and drops exact duplicates (the same line flushed by
/// several replicas, or listed in two index objects).
pub(crate) fn sort_dedup(entries: &mut Vec<Entry>, dir: Direction) {
    match dir {
        Direction::Forward => entries.sort(),
        Direction::Backward => entries.sort_by(|a, b| b.ts.cmp(&a.ts).then_with(|| a.cmp(b))),
    }
    entries.dedup();
}
