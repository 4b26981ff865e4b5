//! The ingester: middle of the push path and the recent half of the query path. Per tenant
//! (`Instance`) and per stream it keeps an open head chunk in memory, refuses out-of-order lines,
//! cuts chunks at a target compressed size, age or idle time, and flushes them in the background
//! to object storage with one small index object per tenant and period per flush cycle. Queriers
//! read recent lines from it through `LogQuerier`; `/flush` and shutdown flush everything.

mod config;
mod flush;
mod instance;
mod metrics;
mod stream;
mod tail;
mod wal;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use async_trait::async_trait;
use prometheus::Registry;

pub use config::{IngesterConfig, SyncMode, WalConfig};
use instance::Instance;
use lode_logql::engine::{LogPlan, SamplePlan};
use lode_model::api::{
    IngesterAdmin, LabelRequest, LogQuerier, LogSelect, Pusher, SampleResult, SampleSelect, SelectResult, StreamBatch,
    StreamSummary, StreamsRequest,
};
use lode_model::limits::Limits;
use lode_model::metrics::Discards;
use lode_model::{ApiError, ErrorCode};
use lode_storage::ObjectStorage;
use metrics::Metrics;
pub use stream::OUT_OF_ORDER;
pub use wal::{FileDamage, ReplayReport};

#[derive(Debug, thiserror::Error)]
pub enum IngesterError {
    #[error(transparent)]
    Chunk(#[from] lode_chunk::ChunkError),
    #[error(transparent)]
    Storage(#[from] lode_storage::StorageError),
    #[error(transparent)]
    Query(#[from] lode_logql::LogqlError),
    #[error(transparent)]
    Wal(#[from] lode_wal::WalError),
}

impl From<IngesterError> for ApiError {
    fn from(e: IngesterError) -> Self {
        let code = match &e {
            IngesterError::Chunk(c) => c.code(),
            IngesterError::Storage(s) => s.code(),
            IngesterError::Query(_) => ErrorCode::BadRequest,
            IngesterError::Wal(_) => ErrorCode::Unavailable,
        };
        ApiError::new(code, e.to_string())
    }
}

/// Settings every stream needs, derived once from the config.
pub(crate) struct Settings {
    pub block_size: usize,
    pub target_size: u64,
    pub zstd_level: i32,
    /// The next stream's WAL id.
    pub next_stream_id: AtomicU64,
}

/// The ingester role.
pub struct Ingester {
    id: String,
    cfg: IngesterConfig,
    limits: Arc<Limits>,
    settings: Settings,
    store: ObjectStorage,
    instances: RwLock<HashMap<String, Arc<Instance>>>,
    metrics: Metrics,
    discards: Discards,
    /// One flush at a time: the loop, `/flush` and shutdown take turns.
    flush_lock: tokio::sync::Mutex<()>,
    /// Set once by [`Ingester::start_wal`] when the WAL is enabled.
    wal: OnceLock<lode_wal::Wal>,
    /// True while the WAL is replayed: pushes are refused, `/ready` says why.
    replaying: AtomicBool,
    replay_progress: Mutex<String>,
    /// Heap bytes the streams hold: exact after each flush cycle, adjusted by every push.
    memory: std::sync::atomic::AtomicI64,
    /// Wakes the flush loop early when memory passes 80% of the budget.
    pressure: tokio::sync::Notify,
    /// Live-tail subscribers.
    tailers: tail::Tailers,
}

impl Ingester {
    pub fn new(
        id: &str,
        cfg: IngesterConfig,
        limits: impl Into<Arc<Limits>>,
        store: ObjectStorage,
        registry: &Registry,
        discards: Discards,
    ) -> Arc<Self> {
        let settings = Settings {
            block_size: cfg.chunk_block_size.0 as usize,
            target_size: cfg.chunk_target_size.0,
            zstd_level: cfg.chunk_zstd_level,
            next_stream_id: AtomicU64::new(1),
        };
        Arc::new(Ingester {
            id: id.to_string(),
            cfg,
            limits: limits.into(),
            settings,
            store,
            instances: RwLock::new(HashMap::new()),
            metrics: Metrics::new(registry),
            discards,
            flush_lock: tokio::sync::Mutex::new(()),
            wal: OnceLock::new(),
            replaying: AtomicBool::new(false),
            replay_progress: Mutex::new(String::new()),
            memory: std::sync::atomic::AtomicI64::new(0),
            pressure: tokio::sync::Notify::new(),
            tailers: tail::Tailers::default(),
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    fn instance(&self, tenant: &str) -> Arc<Instance> {
        if let Some(i) = self.instances.read().unwrap_or_else(|p| p.into_inner()).get(tenant) {
            return i.clone();
        }
        let mut map = self.instances.write().unwrap_or_else(|p| p.into_inner());
        map.entry(tenant.to_string())
            .or_insert_with(|| Arc::new(Instance::new(tenant)))
            .clone()
    }

    fn existing_instance(&self, tenant: &str) -> Option<Arc<Instance>> {
        self.instances
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(tenant)
            .cloned()
    }

    fn all_instances(&self) -> Vec<Arc<Instance>> {
        self.instances
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Memory past the budget refuses the push (429, so agents retry) and wakes the flusher.
    fn check_memory(&self) -> Result<(), ApiError> {
        let budget = self.cfg.memory_budget.0;
        if budget == 0 {
            return Ok(());
        }
        let used = self.memory.load(Ordering::Relaxed).max(0) as u64;
        if used < budget {
            return Ok(());
        }
        self.pressure.notify_one();
        Err(ApiError::new(
            ErrorCode::TooManyRequests,
            format!(
                "ingester memory budget exceeded: {} in use, budget {}; flushing to the store, retry later",
                lode_model::time::ByteSize(used),
                self.cfg.memory_budget
            ),
        ))
    }

    fn add_memory(&self, delta: i64) {
        let now = self.memory.fetch_add(delta, Ordering::Relaxed) + delta;
        self.metrics.memory_bytes.set(now);
        let budget = self.cfg.memory_budget.0;
        if budget > 0 && now.max(0) as u64 >= budget / 10 * 8 {
            self.pressure.notify_one();
        }
    }

    fn wal_failure(&self, e: lode_wal::WalError) -> ApiError {
        self.metrics.wal_write_failures.inc();
        tracing::error!(error = %e, "wal: write failed; answering pushes with 503 until it works again");
        ApiError::new(
            ErrorCode::Unavailable,
            format!("failed to write to the write-ahead log, try again later: {e}"),
        )
    }

    fn labels(&self, tenant: &str, name: Option<&str>, req: &LabelRequest) -> Result<Vec<String>, ApiError> {
        let plan = req
            .query
            .as_deref()
            .filter(|q| !q.trim().is_empty())
            .map(LogPlan::parse)
            .transpose()?;
        let out: BTreeSet<String> = match self.existing_instance(tenant) {
            Some(i) => i.label_values(name, plan.as_ref().map(LogPlan::selector), req.start, req.end),
            None => BTreeSet::new(),
        };
        Ok(out.into_iter().collect())
    }
}

#[async_trait]
impl Pusher for Ingester {
    async fn push(&self, tenant: &str, streams: Vec<StreamBatch>) -> Result<(), ApiError> {
        if self.replaying.load(Ordering::Relaxed) {
            return Err(ApiError::new(
                ErrorCode::Unavailable,
                "ingester is replaying its write-ahead log, try again later",
            ));
        }
        let wal = self.wal.get();
        // After a failed write, retry the queued bytes first and refuse new lines (before they
        // reach memory) while the disk still cannot take them.
        if let Some(w) = wal
            && w.failed()
        {
            flush::blocking(|| w.commit()).map_err(|e| self.wal_failure(e))?;
        }
        self.check_memory()?;
        let inst = self.instance(tenant);
        let limits = self.limits.tenant(tenant);
        let tailing = self.tailers.any(tenant);
        let r = inst.push(streams, &self.settings, wal, &limits, tailing);
        self.add_memory(r.memory_delta);
        if let Some(w) = wal {
            // Before the acknowledgement: an acknowledged line survives a crash.
            flush::blocking(|| w.commit()).map_err(|e| self.wal_failure(e))?;
        }
        if tailing {
            self.tailers.deliver(tenant, &r.accepted);
        }
        self.metrics
            .streams_created
            .with_label_values(&[tenant])
            .inc_by(r.created as u64);
        self.metrics
            .memory_streams
            .with_label_values(&[tenant])
            .set(inst.num_streams() as i64);
        self.metrics
            .lines_appended
            .with_label_values(&[tenant])
            .inc_by(r.appended as u64);
        self.metrics
            .bytes_appended
            .with_label_values(&[tenant])
            .inc_by(r.appended_bytes as u64);
        if r.refused.is_empty() {
            return Ok(());
        }
        let other = (r.refused_lines - r.rate_limited, r.refused_bytes - r.rate_limited_bytes);
        self.discards.count("out_of_order", tenant, other.0, other.1);
        self.discards
            .count("per_stream_rate_limit", tenant, r.rate_limited, r.rate_limited_bytes);
        self.discards
            .count("stream_limit", tenant, r.stream_limited, r.stream_limited_bytes);
        // Limits are worth retrying later (429); an order violation never is (400).
        let code = if r.rate_limited > 0 || r.stream_limited > 0 {
            ErrorCode::TooManyRequests
        } else {
            ErrorCode::BadRequest
        };
        Err(ApiError::new(code, r.refused.join("\n")))
    }
}

#[async_trait]
impl LogQuerier for Ingester {
    async fn select_logs(&self, tenant: &str, req: &LogSelect) -> Result<SelectResult, ApiError> {
        let plan = LogPlan::parse(&req.query)?;
        let Some(inst) = self.existing_instance(tenant) else {
            return Ok(SelectResult::default());
        };
        // A scan of memory is CPU work for as long as the data is large: off the async workers,
        // so the node keeps taking pushes and answering calls meanwhile.
        let (streams, stats) = flush::blocking(|| inst.select(&plan, req.start, req.end, req.direction, req.limit))?;
        Ok(SelectResult { streams, stats })
    }

    async fn select_samples(&self, tenant: &str, req: &SampleSelect) -> Result<SampleResult, ApiError> {
        let plan = SamplePlan::parse(&req.query)?;
        let Some(inst) = self.existing_instance(tenant) else {
            return Ok(SampleResult::default());
        };
        let (series, stats) = flush::blocking(|| inst.select_samples(&plan, req.start, req.end))?;
        Ok(SampleResult { series, stats })
    }

    async fn label_names(&self, tenant: &str, req: &LabelRequest) -> Result<Vec<String>, ApiError> {
        self.labels(tenant, None, req)
    }

    async fn label_values(&self, tenant: &str, name: &str, req: &LabelRequest) -> Result<Vec<String>, ApiError> {
        self.labels(tenant, Some(name), req)
    }

    async fn stream_summaries(&self, tenant: &str, req: &StreamsRequest) -> Result<Vec<StreamSummary>, ApiError> {
        let plan = req
            .selector
            .as_deref()
            .filter(|q| !q.trim().is_empty())
            .map(LogPlan::parse)
            .transpose()?;
        Ok(match self.existing_instance(tenant) {
            Some(i) => flush::blocking(|| i.stream_summaries(plan.as_ref().map(LogPlan::selector), req.start, req.end)),
            None => Vec::new(),
        })
    }
}

#[async_trait]
impl IngesterAdmin for Ingester {
    async fn flush_all(&self) -> Result<(), ApiError> {
        self.flush(true).await.map_err(ApiError::from)
    }

    fn not_ready_reason(&self) -> Option<String> {
        if !self.replaying.load(Ordering::Relaxed) {
            return None;
        }
        let progress = self.replay_progress.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Some(if progress.is_empty() {
            "replaying write-ahead log".to_string()
        } else {
            progress
        })
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_wal;
