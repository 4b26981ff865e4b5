//! The querier: the query path's root. It checks a query against the limits, asks the ingesters
//! for recent lines and the store (through the label index) for flushed ones, merges the answers
//! per stream, drops the duplicates that replicas and re-flushes create, applies the limit across
//! all streams in direction order, and returns Loki's result types with stats. The HTTP edge
//! calls it through `QueryHandler`. Each query is split by time into pieces that run as
//! separate tasks (`split.rs`), so one query uses every core.

mod detect;
mod metadata;
mod metric;
mod split;
mod store;
mod tail;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use lode_logql::Expr;
use lode_logql::engine::LogPlan;
use lode_logql::engine::SamplePlan;
use lode_model::api::{
    InstantQuery, LabelRequest, LogQuerier, LogSelect, QueryData, QueryHandler, QueryResponse, QueryStats, RangeQuery,
    SampleSelect, SampleSeries,
};
use lode_model::limits::Limits;
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
    /// Chunks fetched from the store at once per query piece.
    pub max_concurrent_chunk_fetches: usize,
    /// Pieces of one query that run at once; 0 (the default) means one per CPU core.
    pub max_query_parallelism: usize,
    /// Log queries are split into pieces of this length, run newest first (backward) or oldest
    /// first (forward) so a query stops once its limit is met; metric queries are split into
    /// one piece per unit of parallelism instead.
    pub split_queries_by_interval: ConfigDuration,
}

impl Default for QuerierConfig {
    fn default() -> Self {
        QuerierConfig {
            query_ingesters_within: ConfigDuration::secs(0),
            max_concurrent_chunk_fetches: 8,
            max_query_parallelism: 0,
            split_queries_by_interval: ConfigDuration::secs(3600),
        }
    }
}

impl QuerierConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.max_concurrent_chunk_fetches == 0 {
            return Err("querier.max_concurrent_chunk_fetches must be at least 1".into());
        }
        if self.split_queries_by_interval.0.is_zero() {
            return Err("querier.split_queries_by_interval must be greater than 0".into());
        }
        Ok(())
    }

    /// Pieces of one query run at once.
    fn parallelism(&self) -> usize {
        match self.max_query_parallelism {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        }
    }
}

/// The querier role.
pub struct Querier {
    cfg: QuerierConfig,
    limits: Arc<Limits>,
    /// The ingesters asked for recent data; a cluster replaces them as membership changes.
    ingesters: std::sync::RwLock<Arc<[Arc<dyn LogQuerier>]>>,
    store: Arc<StoreReader>,
    /// Where live tails subscribe (the ingesters).
    tail_sources: std::sync::RwLock<Vec<Arc<dyn lode_model::api::TailSource>>>,
    /// Failed ingesters a read may ignore: `(rf - 1) / 2`.
    max_ingester_errors: usize,
}

/// What a query piece reads from, cheap to clone into the piece's task.
#[derive(Clone)]
struct Sources {
    store: Arc<StoreReader>,
    ingesters: Arc<[Arc<dyn LogQuerier>]>,
    /// Pieces that end after this also ask the ingesters (`query_ingesters_within`).
    ingesters_after: i64,
    /// Failed ingesters a read may ignore (see [`tolerate`]).
    max_ingester_errors: usize,
}

/// The answers of the ingesters that answered, as long as at most `max_errors` failed with a
/// server error: with replication factor `rf` every stream lives on `rf` ingesters, so a read
/// can lose `(rf - 1) / 2` of them and still see every line (Loki's replication-set rule). A
/// client error (4xx) is the query's own fault and always fails it.
pub(crate) fn tolerate<T>(answers: Vec<Result<T, ApiError>>, max_errors: usize) -> Result<Vec<T>, ApiError> {
    let mut ok = Vec::with_capacity(answers.len());
    let mut failed = 0;
    for a in answers {
        match a {
            Ok(v) => ok.push(v),
            Err(e) if e.code.is_client_error() => return Err(e),
            Err(e) => {
                failed += 1;
                if failed > max_errors {
                    return Err(e);
                }
                tracing::warn!(error = %e, "an ingester did not answer; its replicas cover it");
            }
        }
    }
    Ok(ok)
}

impl Sources {
    fn asks_ingesters(&self, end: i64) -> bool {
        end > self.ingesters_after
    }

    /// Log entries of one piece from memory and store, not yet merged.
    async fn logs(self, tenant: String, req: RangeQuery) -> Result<(Vec<Stream>, QueryStats), ApiError> {
        let plan = LogPlan::parse(&req.query)?;
        let mut stats = QueryStats::default();
        let mut parts: Vec<Stream> = Vec::new();
        if self.asks_ingesters(req.end) {
            let select = LogSelect {
                query: req.query.clone(),
                start: req.start,
                end: req.end,
                direction: req.direction,
                limit: req.limit,
            };
            let answers =
                futures::future::join_all(self.ingesters.iter().map(|i| i.select_logs(&tenant, &select))).await;
            for a in tolerate(answers, self.max_ingester_errors)? {
                stats.merge(&a.stats);
                parts.extend(a.streams);
            }
        }
        let chunks = self.store.plan(&tenant, plan.selector(), req.start, req.end).await?;
        let (streams, s) = self.store.select(&tenant, &plan, chunks, &req).await?;
        stats.merge(&s);
        parts.extend(streams);
        Ok((parts, stats))
    }

    /// Samples of one piece `[start, end)` of a range aggregation's source, not yet merged.
    async fn samples(
        self,
        tenant: String,
        query: String,
        start: i64,
        end: i64,
    ) -> Result<(Vec<SampleSeries>, QueryStats), ApiError> {
        let plan = SamplePlan::parse(&query)?;
        let mut stats = QueryStats::default();
        let mut out: Vec<SampleSeries> = Vec::new();
        if self.asks_ingesters(end) {
            let select = SampleSelect { query, start, end };
            let answers =
                futures::future::join_all(self.ingesters.iter().map(|i| i.select_samples(&tenant, &select))).await;
            for a in tolerate(answers, self.max_ingester_errors)? {
                stats.merge(&a.stats);
                out.extend(a.series);
            }
        }
        let chunks = self.store.plan(&tenant, plan.selector(), start, end).await?;
        let (series, s) = self.store.select_samples(&tenant, &plan, chunks, start, end).await?;
        stats.merge(&s);
        out.extend(series);
        Ok((out, stats))
    }
}

impl Querier {
    pub fn new(
        cfg: QuerierConfig,
        limits: impl Into<Arc<Limits>>,
        store: ObjectStorage,
        ingesters: Vec<Arc<dyn LogQuerier>>,
    ) -> Self {
        let store = Arc::new(StoreReader::new(store, cfg.max_concurrent_chunk_fetches));
        Querier {
            cfg,
            limits: limits.into(),
            ingesters: std::sync::RwLock::new(ingesters.into()),
            store,
            tail_sources: std::sync::RwLock::new(Vec::new()),
            max_ingester_errors: 0,
        }
    }

    /// The ingesters live tails subscribe to.
    pub fn with_tail_sources(self, sources: Vec<Arc<dyn lode_model::api::TailSource>>) -> Self {
        self.set_tail_sources(sources);
        self
    }

    /// Reads tolerate `(rf - 1) / 2` failed ingesters (none in the single binary).
    pub fn with_replication_factor(mut self, rf: usize) -> Self {
        self.max_ingester_errors = rf.saturating_sub(1) / 2;
        self
    }

    /// Replaces the ingesters asked for recent data (a cluster's membership view).
    pub fn set_ingesters(&self, ingesters: Vec<Arc<dyn LogQuerier>>) {
        *self.ingesters.write().unwrap_or_else(|p| p.into_inner()) = ingesters.into();
    }

    /// Replaces the ingesters live tails subscribe to.
    pub fn set_tail_sources(&self, sources: Vec<Arc<dyn lode_model::api::TailSource>>) {
        *self.tail_sources.write().unwrap_or_else(|p| p.into_inner()) = sources;
    }

    pub(crate) fn ingesters(&self) -> Arc<[Arc<dyn LogQuerier>]> {
        self.ingesters.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn tail_sources(&self) -> Vec<Arc<dyn lode_model::api::TailSource>> {
        self.tail_sources.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn read_sources(&self) -> Sources {
        let within = &self.cfg.query_ingesters_within;
        Sources {
            store: self.store.clone(),
            ingesters: self.ingesters(),
            max_ingester_errors: self.max_ingester_errors,
            ingesters_after: if within.0.is_zero() {
                i64::MIN
            } else {
                now_nanos().saturating_sub(within.as_nanos_i64())
            },
        }
    }

    fn ingesters_in_range(&self, end: i64) -> bool {
        self.read_sources().asks_ingesters(end)
    }

    fn check_range(&self, tenant: &str, start: i64, end: i64) -> Result<(), ApiError> {
        let max = self.limits.tenant(tenant).max_query_length;
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

    /// A log query's entries: pieces of `split_queries_by_interval` run in direction order,
    /// `parallelism` at a time, until the pieces done so far hold `limit` entries (a later
    /// piece's entries all come after them in direction order, so they cannot make the cut).
    async fn select_logs(&self, tenant: &str, req: &RangeQuery) -> Result<(Vec<Stream>, QueryStats), ApiError> {
        let parallelism = self.cfg.parallelism();
        let mut pieces = split::split_by_interval(
            req.start,
            req.end,
            self.cfg.split_queries_by_interval.as_nanos_i64(),
            parallelism,
        );
        if req.direction == Direction::Backward {
            pieces.reverse();
        }
        let sources = self.read_sources();
        let mut results = futures::stream::iter(pieces)
            .map(|(start, end)| {
                let piece = RangeQuery {
                    start,
                    end,
                    ..req.clone()
                };
                split::Piece::spawn(sources.clone().logs(tenant.to_string(), piece))
            })
            .buffered(parallelism);
        let mut stats = QueryStats::default();
        let mut merged: Vec<Stream> = Vec::new();
        while let Some(r) = results.next().await {
            let (streams, s) = r?;
            stats.merge(&s);
            merged.extend(streams);
            // Merging again is idempotent for what is already merged: it is deduplicated,
            // thinned and cut to `limit` in direction order, and the new piece only extends it.
            merged = merge_streams(merged, req.direction, req.limit, req.interval);
            if merged.iter().map(|s| s.entries.len()).sum::<usize>() >= req.limit {
                break;
            }
        }
        Ok((merged, stats))
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
            let ingesters = self.ingesters();
            let answers = futures::future::join_all(ingesters.iter().map(|i| async move {
                match name {
                    None => i.label_names(tenant, req).await,
                    Some(n) => i.label_values(tenant, n, req).await,
                }
            }))
            .await;
            for a in tolerate(answers, self.max_ingester_errors)? {
                out.extend(a);
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
    async fn within_timeout<T>(
        &self,
        tenant: &str,
        f: impl Future<Output = Result<T, ApiError>>,
    ) -> Result<T, ApiError> {
        let limit = self.limits.tenant(tenant).query_timeout.0;
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
        self.check_range(tenant, req.start, req.end)?;
        let (data, stats) = match &expr {
            Expr::Log(log) => {
                let max_entries = self.limits.tenant(tenant).max_entries_limit_per_query;
                if req.limit > max_entries {
                    return Err(ApiError::bad_request(format!(
                        "max entries limit per query exceeded, limit > max_entries_limit_per_query ({} > {})",
                        req.limit, max_entries
                    )));
                }
                // Compiled here so a bad pipeline is a 400 before any piece starts.
                LogPlan::new(log)?;
                let (streams, stats) = self.select_logs(tenant, &req).await?;
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
        self.within_timeout(tenant, self.run_range(tenant, req)).await
    }

    async fn query_instant(&self, tenant: &str, req: InstantQuery) -> Result<QueryResponse, ApiError> {
        self.within_timeout(tenant, self.run_instant(tenant, req)).await
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
