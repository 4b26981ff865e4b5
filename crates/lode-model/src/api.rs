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

/// One validated stream on its way to all its replicas: shared by every replica's push, so
/// replication costs no copy, with a slot where a remote transport keeps its encoding of the
/// stream, so it is encoded once for every replica.
#[derive(Debug)]
pub struct SharedBatch {
    pub batch: StreamBatch,
    pub wire: std::sync::OnceLock<Vec<u8>>,
}

impl SharedBatch {
    pub fn new(batch: StreamBatch) -> std::sync::Arc<SharedBatch> {
        std::sync::Arc::new(SharedBatch {
            batch,
            wire: std::sync::OnceLock::new(),
        })
    }

    /// The batch itself when this is its last holder, else a copy.
    pub fn into_batch(self: std::sync::Arc<Self>) -> StreamBatch {
        std::sync::Arc::try_unwrap(self).map_or_else(|s| s.batch.clone(), |s| s.batch)
    }
}

/// The ingester's push: accepts validated streams for one tenant.
#[async_trait]
pub trait Pusher: Send + Sync {
    /// Appends what it can; entries it refuses (out of order...) are named in a 400 error.
    async fn push(&self, tenant: &str, streams: Vec<StreamBatch>) -> Result<(), ApiError>;

    /// [`Pusher::push`] of streams shared with the other replicas' pushes (the distributor's
    /// call). By default each stream is taken whole by its last holder and copied for the
    /// others; a remote pusher sends each stream's cached encoding instead.
    async fn push_shared(&self, tenant: &str, streams: Vec<std::sync::Arc<SharedBatch>>) -> Result<(), ApiError> {
        self.push(tenant, streams.into_iter().map(SharedBatch::into_batch).collect())
            .await
    }
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
    /// The streams matching a selector that hold data in a range, with a summary of each of
    /// their chunks: what `series`, `index/stats`, `index/volume*` and `detected_labels` are
    /// computed from.
    async fn stream_summaries(&self, tenant: &str, req: &StreamsRequest) -> Result<Vec<StreamSummary>, ApiError>;
}

/// Streams matching `selector` (LogQL selector text; `None`: every stream of the tenant) with
/// data in `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamsRequest {
    pub start: i64,
    pub end: i64,
    pub selector: Option<String>,
}

/// One chunk of a stream as the index describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChunkSummary {
    /// First and last entry timestamps, ns, both inclusive.
    pub from: i64,
    pub through: i64,
    /// Bytes of the chunk: its stored (compressed) size once cut, the uncompressed line bytes
    /// of an ingester's open head chunk (which has no stored form yet).
    pub bytes: u64,
    pub entries: u64,
    /// The stored chunk's CRC-32, which with `from`/`through` identifies a chunk that both an
    /// ingester (not yet forgotten after its flush) and the store report; `None` for a head chunk.
    pub checksum: Option<u32>,
}

/// A stream's label set and the chunks of it that overlap the requested range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSummary {
    pub labels: Labels,
    pub chunks: Vec<ChunkSummary>,
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

/// An entry a live tail could not deliver because its client fell behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedEntry {
    /// The stream's labels, printed (`{a="b"}`).
    pub labels: String,
    pub ts: i64,
}

/// One message of a live tail: new entries, per stream after the query's pipeline, and what
/// was dropped since the previous message.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TailBatch {
    pub streams: Vec<Stream>,
    pub dropped: Vec<DroppedEntry>,
}

/// The live side of a tail; it ends when the sender side (the source) goes away, and the
/// subscription ends when the receiver is dropped.
pub type TailReceiver = tokio::sync::mpsc::Receiver<TailBatch>;

/// Where live entries come from: an ingester (in this process, or over gRPC in a cluster).
#[async_trait]
pub trait TailSource: Send + Sync {
    /// Entries accepted from now on by streams that match `query`, through its pipeline.
    async fn subscribe(&self, tenant: &str, query: &str) -> Result<TailReceiver, ApiError>;
}

/// `/loki/api/v1/tail` parameters after HTTP parsing.
#[derive(Debug, Clone, PartialEq)]
pub struct TailRequest {
    pub query: String,
    /// Entries of the initial backfill.
    pub limit: usize,
    /// Start of the backfill (ns).
    pub start: i64,
    /// How long entries are held to be sent in time order (Loki: 0-5 s).
    pub delay_for: std::time::Duration,
}

/// The querier's live tail, as the HTTP edge sees it: the backfill first, then live batches.
#[async_trait]
pub trait TailHandler: Send + Sync {
    async fn tail(&self, tenant: &str, req: TailRequest) -> Result<TailReceiver, ApiError>;
}

/// `series` parameters: `match[]` selectors (a stream matching any of them is returned; none
/// means every stream) and the range `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesRequest {
    pub start: i64,
    pub end: i64,
    pub groups: Vec<String>,
}

/// `index/stats`: what a selector would read over a range.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexStats {
    pub streams: u64,
    pub chunks: u64,
    pub bytes: u64,
    pub entries: u64,
}

/// `aggregateBy` of the volume endpoints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum VolumeAggregation {
    /// One result per distinct label set (restricted to the target labels).
    #[default]
    Series,
    /// One result per label name (`{"<name>": ""}`).
    Labels,
}

/// `index/volume` (`step: None`) and `index/volume_range` parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeRequest {
    pub selector: String,
    pub start: i64,
    pub end: i64,
    pub limit: usize,
    /// Label names to aggregate by; empty: the names the selector's matchers use.
    pub target_labels: Vec<String>,
    pub aggregate_by: VolumeAggregation,
    /// ns; `Some` for `volume_range`.
    pub step: Option<i64>,
}

/// `detected_labels` answer: a stream label and its number of distinct values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectedLabel {
    pub label: String,
    pub cardinality: u64,
}

/// `detected_fields` and `detected_field/{name}/values` parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectedFieldsRequest {
    pub query: String,
    pub start: i64,
    pub end: i64,
    /// Lines sampled (newest first).
    pub line_limit: usize,
    /// Fields (or values) returned at most.
    pub limit: usize,
}

/// A field found in sampled lines: structured metadata (`parsers: None`) or a key the `json`
/// or `logfmt` parser extracts from the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectedField {
    pub label: String,
    /// `string`, `int`, `float`, `boolean`, `duration` or `bytes`.
    pub field_type: &'static str,
    pub cardinality: u64,
    pub parsers: Option<Vec<String>>,
    /// For JSON fields, the path of keys in the document.
    pub json_path: Vec<String>,
}

/// `patterns` parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternsRequest {
    pub query: String,
    pub start: i64,
    pub end: i64,
    /// ns
    pub step: i64,
}

/// A log pattern (`<_>` for the variable parts) with its line counts per step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPattern {
    pub pattern: String,
    pub level: Option<String>,
    /// `(step start in ns, lines)`, oldest first.
    pub samples: Vec<(i64, u64)>,
}

/// The querier's answers to the metadata and Drilldown endpoints, besides `labels`.
#[async_trait]
pub trait MetadataHandler: Send + Sync {
    /// Label sets of the streams matching any group, sorted.
    async fn series(&self, tenant: &str, req: SeriesRequest) -> Result<Vec<Labels>, ApiError>;
    async fn index_stats(&self, tenant: &str, req: StreamsRequest) -> Result<IndexStats, ApiError>;
    /// A `Vector` for `index/volume`, a `Matrix` for `index/volume_range`; values are bytes.
    async fn volume(&self, tenant: &str, req: VolumeRequest) -> Result<QueryResponse, ApiError>;
    async fn detected_labels(&self, tenant: &str, req: StreamsRequest) -> Result<Vec<DetectedLabel>, ApiError>;
    async fn detected_fields(&self, tenant: &str, req: DetectedFieldsRequest) -> Result<Vec<DetectedField>, ApiError>;
    async fn detected_field_values(
        &self,
        tenant: &str,
        name: &str,
        req: DetectedFieldsRequest,
    ) -> Result<Vec<String>, ApiError>;
    async fn patterns(&self, tenant: &str, req: PatternsRequest) -> Result<Vec<LogPattern>, ApiError>;
}

/// One cluster member as the `/ring` page shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct RingMember {
    pub id: String,
    /// `JOINING`, `ACTIVE`, `LEAVING` or `UNHEALTHY`.
    pub state: String,
    /// Where the ring reaches it: the gRPC address of an ingester, else its HTTP address.
    pub address: String,
    pub http_address: String,
    pub roles: Vec<String>,
    /// Tokens it holds on the ingester ring (0 for members that are not ingesters).
    pub tokens: u32,
    /// Its share of the ingester ring's token space, in percent (0-100).
    pub ownership: f64,
    /// Age of the newest heartbeat seen from it (zero for this node itself).
    pub heartbeat_age: std::time::Duration,
}

/// The ring as this node sees it: every member, sorted by id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RingView {
    pub members: Vec<RingMember>,
}

/// The cluster membership behind `/ring`: what it shows and its "Forget" button.
#[async_trait]
pub trait RingStatus: Send + Sync {
    async fn ring(&self) -> RingView;
    /// Removes an UNHEALTHY member from the ring: `NotFound` for an unknown id, `BadRequest`
    /// (with the membership's reason) for a member that may not be forgotten.
    async fn forget(&self, id: &str) -> Result<(), ApiError>;
}
