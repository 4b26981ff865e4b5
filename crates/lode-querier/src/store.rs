//! The store side of the query path: find chunks through the label index (index objects listed
//! per tenant and period, decoded once and cached, since they are immutable), fetch only the
//! chunks that overlap the query's range and matchers, verify their checksums, and scan them.

use std::collections::{BTreeSet, HashMap};
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use lode_chunk::{Chunk, Skipped};
use lode_index::{ChunkRef, IndexObject, LabelMatch, period_prefix, periods_overlapping};
use lode_logql::Selector;
use lode_logql::engine::{LogPlan, SampleCollector, SamplePlan, StreamCollector};
use lode_model::api::{ChunkSummary, QueryStats, RangeQuery, SampleSeries, StreamSummary};
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

/// `chunks` (of one stream) in runs whose time ranges overlap, runs in ascending time order:
/// a run of one chunk can be scanned alone; a longer run holds replicas' copies to merge.
fn overlap_groups(mut chunks: Vec<ChunkRef>) -> Vec<Vec<ChunkRef>> {
    chunks.sort_by_key(|c| (c.from, c.through));
    let mut groups: Vec<Vec<ChunkRef>> = Vec::new();
    let mut reach = i64::MIN;
    for c in chunks {
        match groups.last_mut() {
            Some(g) if c.from <= reach => g.push(c),
            _ => groups.push(vec![c]),
        }
        reach = reach.max(c.through);
    }
    groups
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

    /// Every stream in the index objects for `[start, end)` that matches `selector` (all when
    /// `None`), with its chunks overlapping the range; a chunk listed by several objects once.
    async fn chunks_by_stream(
        &self,
        tenant: &str,
        selector: Option<&Selector>,
        start: i64,
        end: i64,
    ) -> Result<HashMap<Labels, BTreeSet<ChunkRef>>, QuerierError> {
        let indexes = self.indexes(tenant, start, end).await?;
        let matchers = selector.map(Selector::matchers).unwrap_or_default();
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
        Ok(by_stream)
    }

    /// Streams matching the selector with the chunks overlapping `[start, end)`, each chunk once.
    pub(crate) async fn plan(
        &self,
        tenant: &str,
        selector: &Selector,
        start: i64,
        end: i64,
    ) -> Result<Vec<StreamChunks>, QuerierError> {
        Ok(self
            .chunks_by_stream(tenant, Some(selector), start, end)
            .await?
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

    /// Fetches `chunks` with up to `concurrency` requests in flight, yielding them in the given
    /// order.
    fn fetch_in_order<'a>(
        &'a self,
        tenant: &'a str,
        chunks: &[ChunkRef],
    ) -> impl futures::Stream<Item = (ChunkRef, Result<Chunk, QuerierError>)> + 'a {
        futures::stream::iter(chunks.to_vec())
            .map(move |c| async move { (c, self.fetch(tenant, c).await) })
            .buffered(self.concurrency)
    }

    /// Entries of the planned streams in `[start, end)` through the query's pipeline, at most
    /// `limit` per stored stream (the newest for backward, the oldest for forward).
    pub(crate) async fn select(
        &self,
        tenant: &str,
        plan: &LogPlan,
        streams: Vec<StreamChunks>,
        req: &RangeQuery,
    ) -> Result<(Vec<Stream>, QueryStats), QuerierError> {
        let (start, end, dir) = (req.start, req.end, req.direction);
        let mut collector = StreamCollector::new(plan, req.limit);
        let mut fetch_stats = QueryStats::default();
        let needle = plan.line_filters().required_needle();
        let mut skipped = Skipped::default();
        for sc in streams {
            // A stream's chunks from one ingester do not overlap in time (ordered writes; the
            // same chunk from several replicas is one `ChunkRef`), so each is scanned in
            // direction order and the scan stops at the limit. Replicas that cut differently
            // (one missed lines, or restarted) leave overlapping chunks: those are merged and
            // de-duplicated first, so a limit counts distinct entries, in order.
            let mut groups = overlap_groups(sc.chunks);
            if dir == Direction::Backward {
                groups.reverse();
            }
            let order: Vec<ChunkRef> = groups.iter().flatten().copied().collect();
            let mut scan = collector.stream(&sc.labels);
            let mut fetched = self.fetch_in_order(tenant, &order);
            'stream: for group in &groups {
                let mut merged: Vec<Entry> = Vec::new();
                for _ in group {
                    let Some((cref, chunk)) = fetched.next().await else {
                        break 'stream;
                    };
                    let chunk = chunk?;
                    fetch_stats.chunks_fetched += 1;
                    fetch_stats.chunk_bytes_fetched += u64::from(cref.size);
                    let corrupt = |e: lode_chunk::ChunkError| QuerierError::CorruptChunk {
                        key: cref.key(tenant),
                        reason: e.to_string(),
                    };
                    if group.len() == 1 {
                        let flow = chunk
                            .for_each_containing(start, end, dir, needle, &mut skipped, |e| {
                                scan.push(e.ts, e.line, &mut e.metadata.iter())
                            })
                            .map_err(corrupt)?;
                        if flow.is_break() {
                            break 'stream;
                        }
                    } else {
                        let _ = chunk
                            .for_each_containing(start, end, dir, needle, &mut skipped, |e| {
                                merged.push(e.to_entry());
                                ControlFlow::Continue(())
                            })
                            .map_err(corrupt)?;
                    }
                }
                if !merged.is_empty() {
                    lode_logql::engine::sort_dedup(&mut merged, dir);
                    for e in &merged {
                        let mut md = e.metadata.iter().map(|(n, v)| (n.as_str(), v.as_str()));
                        if scan.push(e.ts, &e.line, &mut md).is_break() {
                            break 'stream;
                        }
                    }
                }
            }
        }
        let (out, mut stats) = collector.finish();
        stats.merge(&fetch_stats);
        stats.lines_processed += skipped.lines;
        stats.bytes_processed += skipped.bytes;
        Ok((out, stats))
    }

    /// Samples of one range aggregation from the planned streams' chunks in `[start, end)`.
    pub(crate) async fn select_samples(
        &self,
        tenant: &str,
        plan: &SamplePlan,
        streams: Vec<StreamChunks>,
        start: i64,
        end: i64,
    ) -> Result<(Vec<SampleSeries>, QueryStats), QuerierError> {
        let mut collector = SampleCollector::new(plan);
        let mut fetch_stats = QueryStats::default();
        let needle = plan.line_filters().required_needle();
        let mut skipped = Skipped::default();
        for mut sc in streams {
            sc.chunks.sort_by_key(|c| (c.from, c.through));
            let mut scan = collector.stream(&sc.labels);
            let mut fetched = self.fetch_in_order(tenant, &sc.chunks);
            while let Some((cref, chunk)) = fetched.next().await {
                let chunk = chunk?;
                fetch_stats.chunks_fetched += 1;
                fetch_stats.chunk_bytes_fetched += u64::from(cref.size);
                // The visitor never breaks.
                let _ = chunk
                    .for_each_containing(start, end, Direction::Forward, needle, &mut skipped, |e| {
                        scan.push(e.ts, e.line, &mut e.metadata.iter());
                        ControlFlow::Continue(())
                    })
                    .map_err(|e| QuerierError::CorruptChunk {
                        key: cref.key(tenant),
                        reason: e.to_string(),
                    })?;
            }
        }
        let (series, mut stats) = collector.finish();
        stats.merge(&fetch_stats);
        stats.lines_processed += skipped.lines;
        stats.bytes_processed += skipped.bytes;
        Ok((series, stats))
    }

    /// Label names, or the values of `name`, of streams in the index for `[start, end)`.
    pub(crate) async fn label_values(
        &self,
        tenant: &str,
        name: Option<&str>,
        selector: Option<&Selector>,
        start: i64,
        end: i64,
    ) -> Result<BTreeSet<String>, QuerierError> {
        let indexes = self.indexes(tenant, start, end).await?;
        let mut out = BTreeSet::new();
        let matchers = selector.map(Selector::matchers).unwrap_or_default();
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

    /// Streams in the index for `[start, end)` matching `selector` (all when `None`), each with
    /// its chunks overlapping the range, each chunk once.
    pub(crate) async fn stream_summaries(
        &self,
        tenant: &str,
        selector: Option<&Selector>,
        start: i64,
        end: i64,
    ) -> Result<Vec<StreamSummary>, QuerierError> {
        Ok(self
            .chunks_by_stream(tenant, selector, start, end)
            .await?
            .into_iter()
            .map(|(labels, chunks)| StreamSummary {
                labels,
                chunks: chunks
                    .into_iter()
                    .map(|c| ChunkSummary {
                        from: c.from,
                        through: c.through,
                        bytes: u64::from(c.size),
                        entries: u64::from(c.entries),
                        checksum: Some(c.checksum),
                    })
                    .collect(),
            })
            .collect())
    }
}
