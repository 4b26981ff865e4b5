//! A tenant's streams in one ingester (Loki's `instance`): the stream map, creation on first
//! push, and the read side that serves recent data to queriers.

use std::collections::{BTreeSet, HashMap};
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex, RwLock};

use lode_chunk::Skipped;
use lode_logql::Selector;
use lode_logql::engine::{LogPlan, SampleCollector, SamplePlan, StreamCollector};
use lode_model::api::{QueryStats, SampleSeries, StreamBatch};
use lode_model::limits::LimitsConfig;
use lode_model::{Entry, Labels, Stream as ResultStream};
use lode_wal::{Batch, Wal};

use crate::stream::{Stream, StreamRate};
use crate::{IngesterError, Settings};

pub(crate) type StreamRef = Arc<Mutex<Stream>>;

pub(crate) struct Instance {
    pub tenant: String,
    streams: RwLock<HashMap<Labels, StreamRef>>,
}

/// What one push did for a tenant.
pub(crate) struct InstancePush {
    pub created: usize,
    pub appended: usize,
    pub appended_bytes: usize,
    pub refused: Vec<String>,
    pub refused_lines: usize,
    pub refused_bytes: usize,
    /// Entries over their stream's rate limit (part of `refused_*`).
    pub rate_limited: usize,
    pub rate_limited_bytes: usize,
    /// Entries of streams refused by the stream count limit (not in `refused_*`).
    pub stream_limited: usize,
    pub stream_limited_bytes: usize,
    /// Change in heap bytes held by the streams pushed to.
    pub memory_delta: i64,
    /// The entries accepted, per stream, when asked for (someone is tailing the tenant).
    pub accepted: Vec<(Labels, Vec<Entry>)>,
}

impl Instance {
    pub fn new(tenant: &str) -> Self {
        Instance {
            tenant: tenant.to_string(),
            streams: RwLock::new(HashMap::new()),
        }
    }

    /// Appends each batch to its stream; with a WAL, the accepted entries are appended to it
    /// while the stream is still held, so the WAL has each stream's entries in order.
    pub fn push(
        &self,
        batches: Vec<StreamBatch>,
        s: &Settings,
        wal: Option<&Wal>,
        limits: &LimitsConfig,
        keep_accepted: bool,
    ) -> InstancePush {
        let mut record = Batch::new();
        let mut out = InstancePush {
            created: 0,
            appended: 0,
            appended_bytes: 0,
            refused: Vec::new(),
            refused_lines: 0,
            refused_bytes: 0,
            rate_limited: 0,
            rate_limited_bytes: 0,
            stream_limited: 0,
            stream_limited_bytes: 0,
            memory_delta: 0,
            accepted: Vec::new(),
        };
        let rate = (limits.per_stream_rate_limit.0 > 0).then(|| StreamRate {
            rate: limits.per_stream_rate_limit.0 as f64,
            burst: limits.per_stream_rate_limit_burst.0.max(limits.per_stream_rate_limit.0) as f64,
        });
        let max_streams = limits.max_global_streams_per_user;
        for batch in batches {
            let mut kept = Vec::new();
            // A stream found in the map may be removed as idle before we lock it; such a stream
            // is marked, and we look again (creating a new one) instead of writing to an orphan.
            let r = loop {
                let Some((stream, created)) = self.get_or_create_within(&batch.labels, s, max_streams) else {
                    out.stream_limited += batch.entries.len();
                    out.stream_limited_bytes += batch.entries.iter().map(Entry::size).sum::<usize>();
                    out.refused.push(format!(
                        "maximum active stream limit exceeded when trying to create stream {}, reduce the number of active streams (reduce labels or reduce label values), or contact your Loki administrator to see if the limit can be increased, user: '{}'",
                        batch.labels, self.tenant
                    ));
                    break None;
                };
                let mut st = stream.lock().unwrap_or_else(|p| p.into_inner());
                if st.removed {
                    continue;
                }
                out.created += usize::from(created);
                let before = st.memory_bytes();
                let r = st.push(
                    &self.tenant,
                    batch.entries,
                    s.target_size,
                    rate,
                    wal.is_some().then_some(&mut record),
                    keep_accepted.then_some(&mut kept),
                );
                if let Some(w) = wal {
                    w.append(&record);
                    record.clear();
                }
                out.memory_delta += st.memory_bytes() as i64 - before as i64;
                break Some(r);
            };
            let Some(r) = r else { continue };
            if !kept.is_empty() {
                out.accepted.push((batch.labels, kept));
            }
            out.rate_limited += r.rate_limited;
            out.rate_limited_bytes += r.rate_limited_bytes;
            out.appended += r.appended;
            out.appended_bytes += r.appended_bytes;
            out.refused.extend(r.refused);
            out.refused_lines += r.refused_lines;
            out.refused_bytes += r.refused_bytes;
        }
        out
    }

    pub(crate) fn get_or_create(&self, labels: &Labels, s: &Settings) -> (StreamRef, bool) {
        // Zero: no limit (a replay restores what was accepted, whatever the limit is now).
        self.get_or_create_within(labels, s, 0)
            .unwrap_or_else(|| unreachable!("no stream limit was given"))
    }

    /// The stream for `labels`, created if there are fewer than `max` streams (0: no limit);
    /// `None` when creating it would pass the limit.
    fn get_or_create_within(&self, labels: &Labels, s: &Settings, max: usize) -> Option<(StreamRef, bool)> {
        if let Some(st) = self.streams.read().unwrap_or_else(|p| p.into_inner()).get(labels) {
            return Some((st.clone(), false));
        }
        let mut map = self.streams.write().unwrap_or_else(|p| p.into_inner());
        if let Some(st) = map.get(labels) {
            return Some((st.clone(), false));
        }
        if max > 0 && map.len() >= max {
            return None;
        }
        let id = s.next_stream_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let st = Arc::new(Mutex::new(Stream::new(labels.clone(), s.block_size, s.zstd_level, id)));
        map.insert(labels.clone(), st.clone());
        Some((st, true))
    }

    pub fn streams(&self) -> Vec<StreamRef> {
        self.streams
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    pub fn num_streams(&self) -> usize {
        self.streams.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Removes streams that hold nothing and have been idle; returns how many went.
    pub fn remove_empty_streams(&self, idle: std::time::Duration) -> usize {
        let now = tokio::time::Instant::now();
        let mut map = self.streams.write().unwrap_or_else(|p| p.into_inner());
        let before = map.len();
        map.retain(|_, st| {
            let mut st = st.lock().unwrap_or_else(|p| p.into_inner());
            let remove = st.is_empty() && now.duration_since(st.last_append) >= idle;
            // A pusher holding this stream's Arc sees the mark and looks it up again.
            st.removed |= remove;
            !remove
        });
        before - map.len()
    }

    fn matching(&self, selector: &Selector) -> Vec<StreamRef> {
        self.streams
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(labels, _)| selector.matches(labels))
            .map(|(_, st)| st.clone())
            .collect()
    }

    /// Entries of matching streams in `[start, end)` through the query's pipeline, at most
    /// `limit` per result stream, in direction order.
    pub fn select(
        &self,
        plan: &LogPlan,
        start: i64,
        end: i64,
        dir: lode_model::Direction,
        limit: usize,
    ) -> Result<(Vec<ResultStream>, QueryStats), IngesterError> {
        let mut collector = StreamCollector::new(plan, limit);
        let mut head_bytes = 0;
        let needle = plan.line_filters().required_needle();
        let mut skipped = Skipped::default();
        for st in self.matching(plan.selector()) {
            let st = st.lock().unwrap_or_else(|p| p.into_inner());
            head_bytes += st.head_bytes();
            let mut scan = collector.stream(&st.labels);
            // Break only means this stream reached its limit.
            let _ = st.for_each_entry(start, end, dir, needle, &mut skipped, &mut |e| {
                scan.push(e.ts, e.line, &mut e.metadata.iter())
            })?;
        }
        let (streams, mut stats) = collector.finish();
        stats.head_chunk_bytes += head_bytes;
        stats.lines_processed += skipped.lines;
        stats.bytes_processed += skipped.bytes;
        Ok((streams, stats))
    }

    /// Samples of one range aggregation over matching streams in `[start, end)`.
    pub fn select_samples(
        &self,
        plan: &SamplePlan,
        start: i64,
        end: i64,
    ) -> Result<(Vec<SampleSeries>, QueryStats), IngesterError> {
        let mut collector = SampleCollector::new(plan);
        let needle = plan.line_filters().required_needle();
        let mut skipped = Skipped::default();
        for st in self.matching(plan.selector()) {
            let st = st.lock().unwrap_or_else(|p| p.into_inner());
            let mut scan = collector.stream(&st.labels);
            let _ = st.for_each_entry(
                start,
                end,
                lode_model::Direction::Forward,
                needle,
                &mut skipped,
                &mut |e| {
                    scan.push(e.ts, e.line, &mut e.metadata.iter());
                    ControlFlow::Continue(())
                },
            )?;
        }
        let (series, mut stats) = collector.finish();
        stats.lines_processed += skipped.lines;
        stats.bytes_processed += skipped.bytes;
        Ok((series, stats))
    }

    /// Label names (or one label's values) of streams that have data overlapping `[start, end)`
    /// and match `query`'s selector when given.
    pub fn label_values(
        &self,
        name: Option<&str>,
        selector: Option<&Selector>,
        start: i64,
        end: i64,
    ) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for (labels, st) in self.streams.read().unwrap_or_else(|p| p.into_inner()).iter() {
            if selector.is_some_and(|s| !s.matches(labels)) {
                continue;
            }
            let st = st.lock().unwrap_or_else(|p| p.into_inner());
            if !st.overlaps(start, end) {
                continue;
            }
            match name {
                None => out.extend(labels.iter().map(|(n, _)| n.to_string())),
                Some(n) => out.extend(labels.get(n).map(str::to_string)),
            }
        }
        out
    }

    /// Streams matching `selector` (all when `None`) with chunks overlapping `[start, end)`.
    pub fn stream_summaries(
        &self,
        selector: Option<&Selector>,
        start: i64,
        end: i64,
    ) -> Vec<lode_model::api::StreamSummary> {
        let mut out = Vec::new();
        for (labels, st) in self.streams.read().unwrap_or_else(|p| p.into_inner()).iter() {
            if selector.is_some_and(|s| !s.matches(labels)) {
                continue;
            }
            let chunks = st.lock().unwrap_or_else(|p| p.into_inner()).chunk_summaries(start, end);
            if !chunks.is_empty() {
                out.push(lode_model::api::StreamSummary {
                    labels: labels.clone(),
                    chunks,
                });
            }
        }
        out
    }
}
