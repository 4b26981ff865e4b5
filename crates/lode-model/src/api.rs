//! The role traits. HTTP and gRPC handlers call these; the distributor, ingester and querier
//! implement them. Keeping them here is what lets `lode-server` serve every role without
//! depending on any, and lets the cluster swap an in-process call for a gRPC client.

use async_trait::async_trait;

use crate::{ApiError, Direction, Entry, Labels, Stream};

/// A decoded push request, before validation. `labels` is the stream's label text as the client
/// sent it (`{job="app"}`); JSON bodies are rendered to the same text so both formats take one
/// validation path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushRequest {
    pub streams: Vec<PushStream>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushStream {
    pub labels: String,
    pub entries: Vec<Entry>,
}

/// The distributor's side of `POST /loki/api/v1/push`.
#[async_trait]
pub trait PushHandler: Send + Sync {
    /// Validates and stores what it can. Valid streams are written even when the call returns a
    /// 400 naming the invalid ones.
    async fn push(&self, tenant: &str, req: PushRequest) -> Result<(), ApiError>;
}

/// Validated entries of one stream, on their way to an ingester.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamBatch {
    pub labels: Labels,
    pub entries: Vec<Entry>,
}

/// The ingester's push: accepts validated streams for one tenant.
#[async_trait]
pub trait Pusher: Send + Sync {
    /// Appends what it can; entries it refuses (out of order...) are named in a 400 error.
    async fn push(&self, tenant: &str, streams: Vec<StreamBatch>) -> Result<(), ApiError>;
}

/// A log query against one source (ingester memory or the store): the LogQL text, the range
/// `[start, end)` in ns, direction, and a limit on entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSelect {
    pub query: String,
    pub start: i64,
    pub end: i64,
    pub direction: Direction,
    pub limit: usize,
}

/// What a source did for a query; summed over sources into Loki's `stats.summary`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueryStats {
    /// Uncompressed line bytes examined (before filtering).
    pub bytes_processed: u64,
    /// Lines examined (before filtering).
    pub lines_processed: u64,
    /// Lines that passed the pipeline.
    pub post_filter_lines: u64,
    /// Structured-metadata bytes examined.
    pub structured_metadata_bytes: u64,
    /// Chunks fetched from the store.
    pub chunks_fetched: u64,
    /// Compressed chunk bytes fetched from the store.
    pub chunk_bytes_fetched: u64,
    /// Bytes of in-memory (head) data examined in ingesters.
    pub head_chunk_bytes: u64,
}

impl QueryStats {
    pub fn merge(&mut self, o: &QueryStats) {
        self.bytes_processed += o.bytes_processed;
        self.lines_processed += o.lines_processed;
        self.post_filter_lines += o.post_filter_lines;
        self.structured_metadata_bytes += o.structured_metadata_bytes;
        self.chunks_fetched += o.chunks_fetched;
        self.chunk_bytes_fetched += o.chunk_bytes_fetched;
        self.head_chunk_bytes += o.head_chunk_bytes;
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SelectResult {
    pub streams: Vec<Stream>,
    pub stats: QueryStats,
}

/// A label names/values request: time range `[start, end)` and an optional stream selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelRequest {
    pub start: i64,
    pub end: i64,
    pub query: Option<String>,
}

/// A sample query against one source: `query` is the LogQL text of one range aggregation
/// (e.g. `count_over_time({app="a"} |= "x" [5m])`); the source runs its log pipeline and sample
/// extractor over entries in `[start, end)` and returns the samples per series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleSelect {
    pub query: String,
    pub start: i64,
    pub end: i64,
}

/// One extracted sample. `hash` identifies the entry it came from (its line and metadata), so
/// the querier can drop the copy of an entry that two sources (ingester memory and the store,
/// or replicas) both returned, without merging legitimately equal samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub ts: i64,
    pub hash: u64,
    pub value: f64,
}

/// Samples of one series, sorted by time. `labels` is the series' printed label set after the
/// pipeline (stream labels, structured metadata and extracted labels).
#[derive(Debug, Clone, PartialEq)]
pub struct SampleSeries {
    pub labels: String,
    pub samples: Vec<Sample>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SampleResult {
    pub series: Vec<SampleSeries>,
    pub stats: QueryStats,
}

/// A source of log data: the ingesters' memory, or flushed chunks in the store.
#[async_trait]
pub trait LogQuerier: Send + Sync {
    async fn select_logs(&self, tenant: &str, req: &LogSelect) -> Result<SelectResult, ApiError>;
    async fn select_samples(&self, tenant: &str, req: &SampleSelect) -> Result<SampleResult, ApiError>;
    async fn label_names(&self, tenant: &str, req: &LabelRequest) -> Result<Vec<String>, ApiError>;
    async fn label_values(&self, tenant: &str, name: &str, req: &LabelRequest) -> Result<Vec<String>, ApiError>;
}

/// `query_range` parameters after HTTP parsing.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeQuery {
    pub query: String,
    pub start: i64,
    pub end: i64,
    pub limit: usize,
    pub direction: Direction,
    /// Step in ns (metric queries).
    pub step: i64,
    /// Log queries: at most one entry per interval (ns); 0 = off.
    pub interval: i64,
}

/// `query` (instant) parameters after HTTP parsing.
#[derive(Debug, Clone, PartialEq)]
pub struct InstantQuery {
    pub query: String,
    pub time: i64,
    pub limit: usize,
    pub direction: Direction,
}

/// A series of a matrix result: printed labels and `(ts ns, value)` points, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct MatrixSeries {
    pub labels: Vec<(String, String)>,
    pub points: Vec<(i64, f64)>,
}

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorSample {
    pub labels: Vec<(String, String)>,
    pub ts: i64,
    pub value: f64,
}

/// A query's answer, in the result types Loki's JSON has.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryData {
    Streams(Vec<Stream>),
    Matrix(Vec<MatrixSeries>),
    /// Elements in result order.
    Vector(Vec<VectorSample>),
    Scalar(i64, f64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueryResponse {
    pub data: QueryData,
    pub stats: QueryStats,
    /// Seconds spent executing.
    pub exec_time: f64,
}

/// The querier, as the HTTP query endpoints see it.
#[async_trait]
pub trait QueryHandler: Send + Sync {
    async fn query_range(&self, tenant: &str, req: RangeQuery) -> Result<QueryResponse, ApiError>;
    async fn query_instant(&self, tenant: &str, req: InstantQuery) -> Result<QueryResponse, ApiError>;
    async fn label_names(&self, tenant: &str, req: LabelRequest) -> Result<Vec<String>, ApiError>;
    async fn label_values(&self, tenant: &str, name: &str, req: LabelRequest) -> Result<Vec<String>, ApiError>;
}

/// Ingester operations exposed over HTTP (`/flush`, `/ready`).
#[async_trait]
pub trait IngesterAdmin: Send + Sync {
    /// Cuts every open chunk and flushes everything in memory to the store; returns when done.
    async fn flush_all(&self) -> Result<(), ApiError>;
    /// Why the ingester is not ready, or `None` when it is.
    fn not_ready_reason(&self) -> Option<String>;
}
