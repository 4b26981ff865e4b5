//! Flushing: cut chunks that are due, upload them, then write one index object per tenant and
//! period naming what this cycle uploaded. A chunk leaves memory only after the index that points
//! at it is stored, so a query always finds each line in memory, in the store, or both (the
//! querier de-duplicates). Failed uploads stay queued and are retried next cycle.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use lode_index::{IndexBuilder, index_key};
use lode_model::time::now_nanos;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::instance::StreamRef;
use crate::stream::CutChunk;
use crate::{Ingester, IngesterError};

/// Runs CPU-heavy work off the async scheduler where the runtime allows it (the multi-thread
/// runtime of a node; tests on the current-thread runtime run it inline).
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// A chunk to upload, with the stream it came from.
struct Upload {
    tenant: String,
    stream: StreamRef,
    labels: lode_model::Labels,
    chunk: Arc<CutChunk>,
}

impl Ingester {
    /// Runs the periodic flush until `shutdown` turns true, then flushes everything.
    pub async fn run_flush_loop(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let period = self.cfg.flush_check_period.0;
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                // Memory passed 80% of the budget: flush now, not at the next tick.
                _ = self.pressure.notified() => {}
                _ = shutdown.changed() => break,
            }
            if let Err(e) = self.flush(false).await {
                tracing::warn!(error = %e, "flush cycle failed; will retry");
            }
        }
    }

    /// Graceful shutdown: cut and flush everything in memory, retrying a few times if the store
    /// is failing, so that nothing accepted is left behind.
    pub async fn shutdown(&self) -> Result<(), IngesterError> {
        let mut last = Ok(());
        for attempt in 0..5 {
            last = self.flush(true).await;
            if last.is_ok() {
                tracing::info!(ingester = %self.id, "flushed all chunks on shutdown");
                // Everything is in the store: a checkpoint of the (now empty) streams lets
                // every segment go, so the next start replays next to nothing. Not while a
                // replay is unfinished: the files hold lines not yet in memory.
                if let Some(wal) = self.wal.get()
                    && !self.replaying.load(std::sync::atomic::Ordering::Relaxed)
                {
                    blocking(|| self.checkpoint(wal))?;
                }
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
        }
        last
    }

    /// One flush cycle. With `force`, every head chunk is cut first (`/flush`, shutdown).
    pub async fn flush(&self, force: bool) -> Result<(), IngesterError> {
        let _turn = self.flush_lock.lock().await;
        let timer = self.metrics.flush_duration.start_timer();
        // Cutting compresses every due head: CPU work that must not stall the async workers.
        let uploads = blocking(|| self.cut_and_collect(force))?;
        let result = self.upload_and_index(uploads).await;
        timer.observe_duration();
        for inst in self.all_instances() {
            inst.remove_empty_streams(self.cfg.chunk_idle_period.0);
            self.metrics
                .memory_streams
                .with_label_values(&[&inst.tenant])
                .set(inst.num_streams() as i64);
        }
        self.recount_memory();
        result
    }

    /// Replaces the running memory figure, which only pushes keep up to date, by the exact sum.
    pub(crate) fn recount_memory(&self) {
        let memory: u64 = self
            .all_instances()
            .iter()
            .flat_map(|i| i.streams())
            .map(|st| st.lock().unwrap_or_else(|p| p.into_inner()).memory_bytes())
            .sum();
        let memory = i64::try_from(memory).unwrap_or(i64::MAX);
        self.memory.store(memory, std::sync::atomic::Ordering::Relaxed);
        self.metrics.memory_bytes.set(memory);
    }

    /// Heads to cut before they are due because memory is past 80% of the budget: the largest
    /// first, until what they hold brings memory down to half the budget.
    fn pressure_cuts(&self) -> std::collections::HashSet<u64> {
        let budget = self.cfg.memory_budget.0;
        let used = self.memory.load(std::sync::atomic::Ordering::Relaxed).max(0) as u64;
        if budget == 0 || used < budget / 10 * 8 {
            return Default::default();
        }
        // (head bytes, stream id): ids are unique per stream in this process.
        let mut heads: Vec<(u64, u64)> = self
            .all_instances()
            .iter()
            .flat_map(|i| i.streams())
            .map(|s| {
                let st = s.lock().unwrap_or_else(|p| p.into_inner());
                (st.head_memory_bytes(), st.wal_id)
            })
            .collect();
        heads.sort_by_key(|h| std::cmp::Reverse(h.0));
        let mut to_free = used.saturating_sub(budget / 2);
        let mut out = std::collections::HashSet::new();
        for (bytes, id) in heads {
            if to_free == 0 || bytes == 0 {
                break;
            }
            to_free = to_free.saturating_sub(bytes);
            out.insert(id);
        }
        if !out.is_empty() {
            tracing::info!(
                used,
                budget,
                streams = out.len(),
                "memory past 80% of the budget: cutting the largest heads early"
            );
        }
        out
    }

    fn cut_and_collect(&self, force: bool) -> Result<Vec<Upload>, IngesterError> {
        let now = Instant::now();
        let (max_age, idle) = (self.cfg.max_chunk_age.0, self.cfg.chunk_idle_period.0);
        let early = self.pressure_cuts();
        let mut uploads = Vec::new();
        let mut queued = 0;
        for inst in self.all_instances() {
            for sref in inst.streams() {
                let mut st = sref.lock().unwrap_or_else(|p| p.into_inner());
                let reason = if force {
                    Some("forced")
                } else if early.contains(&st.wal_id) {
                    Some("memory")
                } else {
                    st.head_due(now, max_age, idle)
                };
                if let Some(reason) = reason {
                    let before = st.pending.len();
                    st.cut()?;
                    if st.pending.len() > before {
                        self.metrics.chunks_flushed.with_label_values(&[reason]).inc();
                    }
                }
                queued += st.pending.len();
                for c in &st.pending {
                    uploads.push(Upload {
                        tenant: inst.tenant.clone(),
                        stream: sref.clone(),
                        labels: st.labels.clone(),
                        chunk: c.clone(),
                    });
                }
            }
        }
        self.metrics.memory_chunks.set(queued as i64);
        Ok(uploads)
    }

    async fn upload_and_index(&self, uploads: Vec<Upload>) -> Result<(), IngesterError> {
        if uploads.is_empty() {
            return Ok(());
        }
        let store = &self.store;
        let results: Vec<(Upload, Result<(), lode_storage::StorageError>)> = futures::stream::iter(uploads)
            .map(|u| async move {
                let r = store.put(&u.chunk.cref.key(&u.tenant), u.chunk.bytes.to_vec()).await;
                (u, r)
            })
            .buffer_unordered(self.cfg.concurrent_flushes)
            .collect()
            .await;
        let mut first_err = None;
        let mut done: Vec<Upload> = Vec::new();
        for (u, r) in results {
            match r {
                Ok(()) => {
                    self.metrics.chunk_bytes_flushed.inc_by(u.chunk.bytes.len() as u64);
                    done.push(u);
                }
                Err(e) => {
                    self.metrics.flush_failures.inc();
                    tracing::warn!(tenant = %u.tenant, key = %u.chunk.cref.key(&u.tenant), error = %e, "chunk upload failed");
                    first_err.get_or_insert(e);
                }
            }
        }
        // One index object per (tenant, period) for what this cycle stored.
        let mut builders: BTreeMap<(String, u64), IndexBuilder> = BTreeMap::new();
        for u in &done {
            for period in u.chunk.cref.periods() {
                builders
                    .entry((u.tenant.clone(), period))
                    .or_insert_with(|| IndexBuilder::new(u.tenant.clone(), period))
                    .add_chunk(&u.labels, u.chunk.cref);
            }
        }
        let nanos = now_nanos();
        for ((tenant, period), b) in builders {
            let key = index_key(&tenant, period, &self.id, nanos);
            if let Err(e) = store.put(&key, b.finish()).await {
                self.metrics.flush_failures.inc();
                tracing::warn!(%tenant, %key, error = %e, "index upload failed");
                // Without its index these chunks are unreachable: keep them in memory and index
                // them again next cycle (the querier de-duplicates a chunk listed twice).
                first_err.get_or_insert(e);
                done.retain(|u| u.tenant != tenant);
            }
        }
        for u in &done {
            let mut st = u.stream.lock().unwrap_or_else(|p| p.into_inner());
            st.forget_flushed(std::slice::from_ref(&u.chunk));
        }
        tracing::debug!(chunks = done.len(), "flush cycle stored chunks");
        match first_err {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }
}
