//! The querier: the query path's root. It checks a query against the limits, asks the ingesters
//! for recent lines and the store (through the label index) for flushed ones, merges the answers
//! per stream, drops the duplicates that replicas and re-flushes create, applies the limit across
//! all streams in direction order, and returns Loki's result types with stats. The HTTP edge
//! calls it through `QueryHandler`.

mod metric;
mod store;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use lode_logql::Expr;
use lode_logql::engine::LogPlan;
use lode_model::api::{
    InstantQuery, LabelRequest, LogQuerier, LogSelect, QueryData, QueryHandler, QueryResponse, QueryStats, RangeQuery,
};
use lode_model::limits::LimitsConfig;
use lode_model::time::{ConfigDuration, format_go_duration, now_nanos};
use lode_model::{ApiError, Direction, Entry, ErrorCode, Stream};
use lode_storage::ObjectStorage;
pub use store::StoreReader;

#[derive(Debug, thiserror::Error)]
pub enum QuerierError {
    #[error(transparent)]
    Storage(#[from] lode_storage::StorageError),
    #[error("index object {key} is corrupt: {source}")]
    CorruptIndex {
        key: String,
        #[source]
        source: lode_index::IndexError,
    },
    #[error("chunk {key} is corrupt: {reason}")]
    CorruptChunk { key: String, reason: String },
}

impl From<QuerierError> for ApiError {
    /// Every querier failure is the server's: a chunk or index object the index names must
    /// exist and be intact, so even a missing object is a 500, not a 404.
    fn from(e: QuerierError) -> Self {
        ApiError::new(ErrorCode::Internal, e.to_string())
    }
}

/// `querier:` section of the config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuerierConfig {
    /// Ingesters are asked only for queries whose end is within this long of now; 0 (the
    /// default, unlike Loki's 3h) asks them always: answering from memory is cheap, and lines
    /// with old timestamps that are still in memory would otherwise stay invisible until flushed.
    pub query_ingesters_within: ConfigDuration,
    /// Chunks fetched from the store at once per query.
    pub max_concurrent_chunk_fetches: usize,
}

impl Default for QuerierConfig {
    fn default() -> Self {
        QuerierConfig {
            query_ingesters_within: ConfigDuration::secs(0),
            max_concurrent_chunk_fetches: 8,
        }
    }
}

impl QuerierConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.max_concurrent_chunk_fetches == 0 {
            return Err("querier.max_concurrent_chunk_fetches must be at least 1".into());
        }
        Ok(())
    }
}

/// The querier role.
pub struct Querier {
    cfg: QuerierConfig,
    limits: LimitsConfig,
    ingesters: Vec<Arc<dyn LogQuerier>>,
    store: StoreReader,
}

impl Querier {
    pub fn new(
        cfg: QuerierConfig,
        limits: LimitsConfig,
        store: ObjectStorage,
        ingesters: Vec<Arc<dyn LogQuerier>>,
    ) -> Self {
        let store = StoreReader::new(store, cfg.max_concurrent_chunk_fetches);
        Querier {
            cfg,
            limits,
            ingesters,
            store,
        }
    }

    fn ingesters_in_range(&self, end: i64) -> bool {
        self.cfg.query_ingesters_within.0.is_zero()
            || end > now_nanos().saturating_sub(self.cfg.query_ingesters_within.as_nanos_i64())
    }

    fn check_range(&self, start: i64, end: i64) -> Result<(), ApiError> {
        let max = self.limits.max_query_length;
        if !max.0.is_zero() && end.saturating_sub(start) > max.as_nanos_i64() {
            let len = std::time::Duration::from_nanos(u64::try_from(end.saturating_sub(start)).unwrap_or(u64::MAX));
            return Err(ApiError::bad_request(format!(
                "the query time range exceeds the limit (query length: {}, limit: {})",
                format_go_duration(len),
                max
            )));
        }
        Ok(())
    }

    async fn select_logs(
        &self,
        tenant: &str,
        req: &RangeQuery,
        plan: &LogPlan,
    ) -> Result<(Vec<Stream>, QueryStats), ApiError> {
        let select = LogSelect {
            query: req.query.clone(),
            start: req.start,
            end: req.end,
            direction: req.direction,
            limit: req.limit,
        };
        let mut stats = QueryStats::default();
        let mut parts: Vec<Stream> = Vec::new();
        if self.ingesters_in_range(req.end) {
            let answers =
                futures::future::join_all(self.ingesters.iter().map(|i| i.select_logs(tenant, &select))).await;
            for a in answers {
                let a = a?;
                stats.merge(&a.stats);
                parts.extend(a.streams);
            }
        }
        let chunks = self.store.plan(tenant, plan.selector(), req.start, req.end).await?;
        let (streams, s) = self.store.select(tenant, plan, chunks, req).await?;
        stats.merge(&s);
        parts.extend(streams);
        Ok((merge_streams(parts, req.direction, req.limit, req.interval), stats))
    }

    async fn labels(&self, tenant: &str, name: Option<&str>, req: &LabelRequest) -> Result<Vec<String>, ApiError> {
        if req.end < req.start {
            return Err(ApiError::bad_request(
                "end timestamp must not be before or equal to start time",
            ));
        }
        let plan = req
            .query
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(LogPlan::parse)
            .transpose()?;
        let mut out: BTreeSet<String> = BTreeSet::new();
        if self.ingesters_in_range(req.end) {
            let answers = futures::future::join_all(self.ingesters.iter().map(|i| async move {
                match name {
                    None => i.label_names(tenant, req).await,
                    Some(n) => i.label_values(tenant, n, req).await,
                }
            }))
            .await;
            for a in answers {
                out.extend(a?);
            }
        }
        out.extend(
            self.store
                .label_values(tenant, name, plan.as_ref().map(LogPlan::selector), req.start, req.end)
                .await?,
        );
        Ok(out.into_iter().collect())
    }
}

/// Merges per-source streams: same labels joined, duplicates dropped, then the `limit` best
/// entries across all streams in direction order, and `interval` thinning (at most one entry per
/// interval per stream, as Loki does).
pub fn merge_streams(parts: Vec<Stream>, dir: Direction, limit: usize, interval: i64) -> Vec<Stream> {
    // Ordered by labels, so ties on time are broken the same way on every run.
    let mut by_labels: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
    for s in parts {
        by_labels.entry(s.labels).or_default().extend(s.entries);
    }
    let mut all: Vec<(Entry, usize)> = Vec::new();
    let mut names: Vec<String> = Vec::with_capacity(by_labels.len());
    for (labels, mut entries) in by_labels {
        lode_logql::engine::sort_dedup(&mut entries, dir);
        if interval > 0 {
            entries = thin(entries, dir, interval);
        }
        let id = names.len();
        names.push(labels);
        all.extend(entries.into_iter().map(|e| (e, id)));
    }
    match dir {
        Direction::Forward => all.sort_by(|a, b| a.0.ts.cmp(&b.0.ts).then_with(|| a.1.cmp(&b.1))),
        Direction::Backward => all.sort_by(|a, b| b.0.ts.cmp(&a.0.ts).then_with(|| a.1.cmp(&b.1))),
    }
    all.truncate(limit);
    let mut grouped: Vec<Vec<Entry>> = vec![Vec::new(); names.len()];
    for (e, id) in all {
        grouped[id].push(e);
    }
    let mut out: Vec<Stream> = names
        .into_iter()
        .zip(grouped)
        .filter(|(_, e)| !e.is_empty())
        .map(|(labels, entries)| Stream { labels, entries })
        .collect();
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    out
}

fn thin(entries: Vec<Entry>, dir: Direction, interval: i64) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::new();
    let mut next: Option<i64> = None;
    for e in entries {
        let keep = match (dir, next) {
            (_, None) => true,
            (Direction::Forward, Some(n)) => e.ts >= n,
            (Direction::Backward, Some(n)) => e.ts <= n,
        };
        if keep {
            next = Some(match dir {
                Direction::Forward => e.ts.saturating_add(interval),
                Direction::Backward => e.ts.saturating_sub(interval),
            });
            out.push(e);
        }
    }
    out
}

/// Loki's answer when a query runs past `query_timeout`.
pub const TIMEOUT_MSG: &str = "request timed out, decrease the duration of the request or add more label matchers (prefer exact match over regex match) to reduce the amount of data processed";

impl Querier {
    /// Runs `f` under `limits_config.query_timeout`.
    async fn within_timeout<T>(&self, f: impl Future<Output = Result<T, ApiError>>) -> Result<T, ApiError> {
        let limit = self.limits.query_timeout.0;
        if limit.is_zero() {
            return f.await;
        }
        tokio::time::timeout(limit, f)
            .await
            .unwrap_or_else(|_| Err(ApiError::new(ErrorCode::Timeout, TIMEOUT_MSG)))
    }

    async fn run_range(&self, tenant: &str, req: RangeQuery) -> Result<QueryResponse, ApiError> {
        let started = Instant::now();
        let expr = lode_logql::parse_expr(&req.query)?;
        self.check_range(req.start, req.end)?;
        let (data, stats) = match &expr {
            Expr::Log(log) => {
                if req.limit > self.limits.max_entries_limit_per_query {
                    return Err(ApiError::bad_request(format!(
                        "max entries limit per query exceeded, limit > max_entries_limit_per_query ({} > {})",
                        req.limit, self.limits.max_entries_limit_per_query
                    )));
                }
                let plan = LogPlan::new(log)?;
                let (streams, stats) = self.select_logs(tenant, &req, &plan).await?;
                (QueryData::Streams(streams), stats)
            }
            metric => self.metric_range(tenant, metric, &req).await?,
        };
        Ok(QueryResponse {
            data,
            stats,
            exec_time: started.elapsed().as_secs_f64(),
        })
    }

    async fn run_instant(&self, tenant: &str, req: InstantQuery) -> Result<QueryResponse, ApiError> {
        let started = Instant::now();
        let expr = lode_logql::parse_expr(&req.query)?;
        if matches!(expr, Expr::Log(_)) {
            return Err(ApiError::bad_request(
                "log queries are not supported as an instant query type, please change your query to a range query type",
            ));
        }
        let (data, stats) = self.metric_instant(tenant, &expr, req.time).await?;
        Ok(QueryResponse {
            data,
            stats,
            exec_time: started.elapsed().as_secs_f64(),
        })
    }
}

#[async_trait]
impl QueryHandler for Querier {
    async fn query_range(&self, tenant: &str, req: RangeQuery) -> Result<QueryResponse, ApiError> {
        self.within_timeout(self.run_range(tenant, req)).await
    }

    async fn query_instant(&self, tenant: &str, req: InstantQuery) -> Result<QueryResponse, ApiError> {
        self.within_timeout(self.run_instant(tenant, req)).await
    }

    async fn label_names(&self, tenant: &str, req: LabelRequest) -> Result<Vec<String>, ApiError> {
        self.labels(tenant, None, &req).await
    }

    async fn label_values(&self, tenant: &str, name: &str, req: LabelRequest) -> Result<Vec<String>, ApiError> {
        self.labels(tenant, Some(name), &req).await
    }
}

#[cfg(test)]
mod tests;
