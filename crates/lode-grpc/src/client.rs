//! The client side: [`IngesterClient`] implements the role traits (`Pusher`, `LogQuerier`,
//! `TailSource`) over one ingester's gRPC address, so a distributor or querier holds it where the
//! single binary holds the in-process ingester. [`ClientPool`] keeps one client per address.
//!
//! The channel connects lazily and reconnects after the ingester went away; every call has the
//! `remote_timeout` deadline (sent to the server as `grpc-timeout`, and enforced here over the
//! whole streamed answer). Errors keep the ingester's code and message (`lode_proto::status`);
//! transport failures are `Unavailable`, an expired deadline `Timeout`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use lode_model::api::{
    LabelRequest, LogQuerier, LogSelect, Pusher, QueryStats, SampleResult, SampleSelect, SampleSeries, SelectResult,
    SharedBatch, StreamBatch, StreamSummary, StreamsRequest, TailBatch, TailReceiver, TailSource,
};
use lode_model::{ApiError, ErrorCode, Stream};
use lode_proto::convert_ingester::{label_request_into_proto, push_into_proto, stream_from_proto};
use lode_proto::encode::encode_stream;
use lode_proto::ingester::ingester_client::IngesterClient as GrpcClient;
use lode_proto::{ProtoError, ingester as pb, status};
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};

use crate::batch::{Assembler, Batch};
use crate::config::{IngesterClientConfig, as_usize};
use crate::{GrpcError, TENANT_HEADER};

/// Batches a live tail may have queued on this side before the gRPC stream is held back.
const TAIL_QUEUE: usize = 64;

/// One ingester, reached over gRPC. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct IngesterClient {
    addr: String,
    /// `ingester <addr>`, the prefix of transport errors.
    context: String,
    grpc: GrpcClient<Channel>,
    /// The same channel without the generated client's types, for pushes of pre-encoded
    /// streams ([`EncodedPush`]).
    raw: tonic::client::Grpc<Channel>,
    remote_timeout: Duration,
    max_send: usize,
}

impl std::fmt::Debug for IngesterClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngesterClient").field("addr", &self.addr).finish()
    }
}

impl IngesterClient {
    /// A client for `addr` (`host:port`, or a `http://` URI). Nothing is dialled until the
    /// first call; must be called inside a Tokio runtime (the channel's worker task starts).
    pub fn new(addr: &str, cfg: &IngesterClientConfig) -> Result<Self, GrpcError> {
        let uri = if addr.contains("://") {
            addr.to_string()
        } else {
            format!("http://{addr}")
        };
        let invalid = |reason: String| GrpcError::InvalidAddress {
            addr: addr.to_string(),
            reason,
        };
        let endpoint = Endpoint::from_shared(uri)
            .map_err(|e| invalid(e.to_string()))?
            .connect_timeout(cfg.grpc_client_config.connect_timeout.0)
            .tcp_nodelay(true);
        if endpoint.uri().port_u16().is_none() {
            return Err(invalid("no port".to_string()));
        }
        let g = &cfg.grpc_client_config;
        let channel = endpoint.connect_lazy();
        let grpc = GrpcClient::new(channel.clone())
            .max_decoding_message_size(as_usize(g.max_recv_msg_size))
            .max_encoding_message_size(as_usize(g.max_send_msg_size));
        let raw = tonic::client::Grpc::new(channel)
            .max_decoding_message_size(as_usize(g.max_recv_msg_size))
            .max_encoding_message_size(as_usize(g.max_send_msg_size));
        Ok(IngesterClient {
            addr: addr.to_string(),
            context: format!("ingester {addr}"),
            grpc,
            raw,
            remote_timeout: cfg.remote_timeout(),
            max_send: as_usize(g.max_send_msg_size),
        })
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    fn request<T>(&self, tenant: &str, msg: T) -> Result<Request<T>, ApiError> {
        let mut req = self.streamed_request(tenant, msg)?;
        req.set_timeout(self.remote_timeout);
        Ok(req)
    }

    /// A request whose answer is streamed for as long as it takes: the ingester answers the
    /// call at once and computes while the client reads (see the server's `deferred`), so the
    /// call has `remote_timeout` (is the ingester there?) and its messages have none: the
    /// query's own `query_timeout` bounds them.
    fn streamed_request<T>(&self, tenant: &str, msg: T) -> Result<Request<T>, ApiError> {
        let mut req = Request::new(msg);
        let value = MetadataValue::try_from(tenant)
            .map_err(|_| ApiError::bad_request(format!("invalid org id: {tenant:?}")))?;
        req.metadata_mut().insert(TENANT_HEADER, value);
        Ok(req)
    }

    /// Opens a streamed answer: the call under `remote_timeout`, its messages with none.
    async fn open<T>(
        &self,
        call: impl Future<Output = Result<tonic::Response<tonic::Streaming<T>>, Status>>,
    ) -> Result<tonic::Streaming<T>, ApiError> {
        self.deadline(async { call.await.map_err(|s| self.status(&s)) })
            .await
            .map(tonic::Response::into_inner)
    }

    /// The next message of a streamed answer.
    async fn next<T>(&self, stream: &mut tonic::Streaming<T>) -> Result<Option<T>, ApiError> {
        stream.message().await.map_err(|s| self.status(&s))
    }

    fn status(&self, s: &Status) -> ApiError {
        status::from_status(s, &self.context)
    }

    fn bad_answer(&self, e: ProtoError) -> ApiError {
        ApiError::internal(format!("{}: invalid answer: {e}", self.context))
    }

    /// Runs one call under the `remote_timeout` deadline.
    async fn deadline<T>(&self, call: impl Future<Output = Result<T, ApiError>>) -> Result<T, ApiError> {
        match tokio::time::timeout(self.remote_timeout, call).await {
            Ok(r) => r,
            Err(_) => Err(ApiError::new(
                ErrorCode::Timeout,
                format!("{}: no answer within {:?}", self.context, self.remote_timeout),
            )),
        }
    }

    async fn push_one(&self, tenant: &str, streams: Vec<StreamBatch>) -> Result<(), ApiError> {
        let req = self.request(tenant, push_into_proto(streams))?;
        let mut grpc = self.grpc.clone();
        self.deadline(async { grpc.push(req).await.map(|_| ()).map_err(|s| self.status(&s)) })
            .await
    }
}

/// A `logproto.PushRequest` whose streams are already encoded (`StreamAdapter` bytes, field 1):
/// on the wire the same message the ingester's `Push` decodes. Encode only.
#[derive(Debug, Default)]
struct EncodedPush {
    streams: Vec<Arc<SharedBatch>>,
}

impl EncodedPush {
    fn wire(s: &SharedBatch) -> &[u8] {
        // The stream's one encoding, made by the first replica's push that needs it.
        s.wire.get_or_init(|| encode_stream(&s.batch))
    }
}

impl prost::Message for EncodedPush {
    fn encode_raw(&self, buf: &mut impl prost::bytes::BufMut) {
        for s in &self.streams {
            let bytes = Self::wire(s);
            prost::encoding::encode_key(1, prost::encoding::WireType::LengthDelimited, buf);
            prost::encoding::encode_varint(bytes.len() as u64, buf);
            buf.put_slice(bytes);
        }
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: prost::encoding::WireType,
        buf: &mut impl prost::bytes::Buf,
        ctx: prost::encoding::DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        // Never decoded: Lode decodes pushes as `logproto::PushRequest`.
        prost::encoding::skip_field(wire_type, tag, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        self.streams
            .iter()
            .map(|s| {
                let n = Self::wire(s).len();
                prost::encoding::key_len(1) + prost::encoding::encoded_len_varint(n as u64) + n
            })
            .sum()
    }

    fn clear(&mut self) {
        self.streams.clear();
    }
}

/// Bytes an entry of a push counts for when splitting a push to fit `max_send_msg_size`.
fn push_entry_size(e: &lode_model::Entry) -> usize {
    e.size() + e.metadata.len() * 8 + 24
}

/// Splits a push into requests of about `budget` bytes, keeping each stream's entries in order.
fn split_push(streams: Vec<StreamBatch>, budget: usize) -> Vec<Vec<StreamBatch>> {
    let mut parts = vec![Vec::new()];
    let mut used = 0;
    for s in streams {
        let head = s
            .labels
            .pairs()
            .iter()
            .map(|(n, v)| n.len() + v.len() + 8)
            .sum::<usize>()
            + 16;
        let mut cur = StreamBatch {
            labels: s.labels.clone(),
            entries: Vec::new(),
        };
        used += head;
        for e in s.entries {
            let size = push_entry_size(&e);
            if used + size > budget && (!cur.entries.is_empty() || parts.last().is_some_and(|p| !p.is_empty())) {
                if !cur.entries.is_empty() {
                    let next = StreamBatch {
                        labels: s.labels.clone(),
                        entries: Vec::new(),
                    };
                    if let Some(p) = parts.last_mut() {
                        p.push(std::mem::replace(&mut cur, next));
                    }
                }
                parts.push(Vec::new());
                used = head;
            }
            used += size;
            cur.entries.push(e);
        }
        if let Some(p) = parts.last_mut() {
            p.push(cur);
        }
    }
    parts
}

#[async_trait]
impl Pusher for IngesterClient {
    /// A push larger than half of `max_send_msg_size` goes as several requests, one after the
    /// other. As with one request, what can be stored is stored: a client error (400, 429) of
    /// one part does not stop the others and comes back with the parts' messages joined; a
    /// server fault stops the push.
    /// Each stream is encoded once (cached in its [`SharedBatch`]) and the bytes go to every
    /// replica; a push too large for one request takes the splitting path of [`Pusher::push`].
    async fn push_shared(&self, tenant: &str, streams: Vec<Arc<SharedBatch>>) -> Result<(), ApiError> {
        let total: usize = streams.iter().map(|s| EncodedPush::wire(s).len() + 8).sum();
        if total > self.max_send / 2 {
            return self
                .push(tenant, streams.into_iter().map(SharedBatch::into_batch).collect())
                .await;
        }
        let req = self.request(tenant, EncodedPush { streams })?;
        let mut raw = self.raw.clone();
        self.deadline(async {
            raw.ready()
                .await
                .map_err(|e| ApiError::new(ErrorCode::Unavailable, format!("{}: {e}", self.context)))?;
            let path = tonic::codegen::http::uri::PathAndQuery::from_static("/lode.ingester.v1.Ingester/Push");
            raw.unary::<_, lode_proto::logproto::PushResponse, _>(req, path, tonic_prost::ProstCodec::default())
                .await
                .map(|_| ())
                .map_err(|s| self.status(&s))
        })
        .await
    }

    async fn push(&self, tenant: &str, streams: Vec<StreamBatch>) -> Result<(), ApiError> {
        let total: usize = streams
            .iter()
            .map(|s| s.entries.iter().map(push_entry_size).sum::<usize>() + 64)
            .sum();
        if total <= self.max_send / 2 {
            return self.push_one(tenant, streams).await;
        }
        let mut refused: Option<ApiError> = None;
        for part in split_push(streams, self.max_send / 2) {
            match self.push_one(tenant, part).await {
                Ok(()) => {}
                Err(e) if e.code.is_client_error() => match &mut refused {
                    None => refused = Some(e),
                    Some(r) => {
                        if e.code == ErrorCode::TooManyRequests {
                            r.code = e.code;
                        }
                        r.message.push('\n');
                        r.message.push_str(&e.message);
                    }
                },
                Err(e) => return Err(e),
            }
        }
        refused.map_or(Ok(()), Err)
    }
}

#[async_trait]
impl LogQuerier for IngesterClient {
    async fn select_logs(&self, tenant: &str, req: &LogSelect) -> Result<SelectResult, ApiError> {
        let req = self.streamed_request(tenant, pb::QueryRequest::from(req))?;
        let mut grpc = self.grpc.clone();
        let mut stream = self.open(grpc.query(req)).await?;
        let mut asm = Assembler::new();
        let mut stats = QueryStats::default();
        while let Some(msg) = self.next(&mut stream).await? {
            if let Some(s) = msg.stats {
                stats.merge(&s.into());
            }
            let groups = msg
                .streams
                .into_iter()
                .map(|s| stream_from_proto(s).map(|s| (s.labels, s.entries)))
                .collect::<Result<_, _>>()
                .map_err(|e| self.bad_answer(e))?;
            asm.add(Batch {
                groups,
                first_continues: msg.first_continues,
            });
        }
        let streams = asm
            .finish()
            .into_iter()
            .map(|(labels, entries)| Stream { labels, entries })
            .collect();
        Ok(SelectResult { streams, stats })
    }

    async fn select_samples(&self, tenant: &str, req: &SampleSelect) -> Result<SampleResult, ApiError> {
        let req = self.streamed_request(tenant, pb::SampleQueryRequest::from(req))?;
        let mut grpc = self.grpc.clone();
        let mut stream = self.open(grpc.query_sample(req)).await?;
        let mut asm = Assembler::new();
        let mut stats = QueryStats::default();
        while let Some(msg) = self.next(&mut stream).await? {
            if let Some(s) = msg.stats {
                stats.merge(&s.into());
            }
            asm.add(Batch {
                groups: msg
                    .series
                    .into_iter()
                    .map(|s| {
                        let s = SampleSeries::from(s);
                        (s.labels, s.samples)
                    })
                    .collect(),
                first_continues: msg.first_continues,
            });
        }
        let series = asm
            .finish()
            .into_iter()
            .map(|(labels, samples)| SampleSeries { labels, samples })
            .collect();
        Ok(SampleResult { series, stats })
    }

    async fn label_names(&self, tenant: &str, req: &LabelRequest) -> Result<Vec<String>, ApiError> {
        self.labels(tenant, None, req).await
    }

    async fn label_values(&self, tenant: &str, name: &str, req: &LabelRequest) -> Result<Vec<String>, ApiError> {
        self.labels(tenant, Some(name), req).await
    }

    async fn stream_summaries(&self, tenant: &str, req: &StreamsRequest) -> Result<Vec<StreamSummary>, ApiError> {
        let req = self.streamed_request(tenant, pb::SeriesRequest::from(req))?;
        let mut grpc = self.grpc.clone();
        let mut stream = self.open(grpc.series(req)).await?;
        let mut out = Vec::new();
        while let Some(msg) = self.next(&mut stream).await? {
            out.extend(msg.streams.into_iter().map(StreamSummary::from));
        }
        Ok(out)
    }
}

impl IngesterClient {
    async fn labels(&self, tenant: &str, name: Option<&str>, req: &LabelRequest) -> Result<Vec<String>, ApiError> {
        let req = self.request(tenant, label_request_into_proto(name, req))?;
        let mut grpc = self.grpc.clone();
        self.deadline(async {
            let resp = grpc.label(req).await.map_err(|s| self.status(&s))?;
            Ok(resp.into_inner().values)
        })
        .await
    }
}

#[async_trait]
impl TailSource for IngesterClient {
    /// The subscription is made under the deadline; its batches then arrive for as long as the
    /// ingester and the receiver live. The receiver ends when the stream does (the ingester
    /// went away or failed: the reason is logged); dropping it cancels the call.
    async fn subscribe(&self, tenant: &str, query: &str) -> Result<TailReceiver, ApiError> {
        let mut req = self.request(
            tenant,
            pb::TailRequest {
                query: query.to_string(),
            },
        )?;
        // The deadline covers the subscription, not the tail's lifetime.
        req.metadata_mut().remove("grpc-timeout");
        let mut grpc = self.grpc.clone();
        let mut stream = self
            .deadline(async { grpc.tail(req).await.map_err(|s| self.status(&s)) })
            .await?
            .into_inner();
        let (tx, rx) = tokio::sync::mpsc::channel(TAIL_QUEUE);
        let context = self.context.clone();
        tokio::spawn(async move {
            loop {
                let msg = tokio::select! {
                    _ = tx.closed() => break,
                    msg = stream.message() => msg,
                };
                let batch = match msg {
                    Ok(Some(m)) => TailBatch::try_from(m),
                    Ok(None) => break,
                    Err(s) => {
                        let e = status::from_status(&s, &context);
                        tracing::warn!(error = %e, "tail: stream from ingester ended");
                        break;
                    }
                };
                match batch {
                    Ok(b) => {
                        if tx.send(b).await.is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(ingester = %context, error = %e, "tail: invalid batch from ingester");
                        break;
                    }
                }
            }
        });
        Ok(rx)
    }
}

/// One client per ingester address, created on first use and shared by every caller.
pub struct ClientPool {
    cfg: IngesterClientConfig,
    clients: Mutex<HashMap<String, Arc<IngesterClient>>>,
}

impl ClientPool {
    pub fn new(cfg: IngesterClientConfig) -> Self {
        ClientPool {
            cfg,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// The client for `addr`, created (without dialling) if there is none yet. Call it inside a
    /// Tokio runtime: a channel's worker task starts with it.
    pub fn get(&self, addr: &str) -> Result<Arc<IngesterClient>, GrpcError> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = clients.get(addr) {
            return Ok(c.clone());
        }
        let c = Arc::new(IngesterClient::new(addr, &self.cfg)?);
        clients.insert(addr.to_string(), c.clone());
        Ok(c)
    }

    /// Forgets the client of an address that left the ring; calls in flight finish.
    pub fn remove(&self, addr: &str) -> bool {
        self.clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(addr)
            .is_some()
    }

    /// Keeps only the clients whose address `keep` accepts (the ring's current members).
    pub fn retain(&self, mut keep: impl FnMut(&str) -> bool) {
        self.clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|addr, _| keep(addr));
    }

    /// Addresses with a client, sorted.
    pub fn addresses(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lode_model::{Entry, Labels};

    #[test]
    fn pushes_split_in_order_and_complete() {
        let stream = |l: &str, n: usize| StreamBatch {
            labels: Labels::parse(l).unwrap(),
            entries: (0..n).map(|i| Entry::new(i as i64, "x".repeat(100))).collect(),
        };
        let input = vec![
            stream(r#"{a="1"}"#, 30),
            stream(r#"{a="2"}"#, 1),
            stream(r#"{a="3"}"#, 12),
        ];
        let parts = split_push(input.clone(), 1000);
        assert!(parts.len() > 4, "{}", parts.len());
        for p in &parts {
            let size: usize = p.iter().flat_map(|s| &s.entries).map(push_entry_size).sum();
            assert!(size <= 1000, "{size}");
            assert!(p.iter().all(|s| !s.entries.is_empty()));
        }
        // Concatenated, the parts are the input.
        let mut joined: Vec<StreamBatch> = Vec::new();
        for s in parts.into_iter().flatten() {
            match joined.last_mut() {
                Some(l) if l.labels == s.labels => l.entries.extend(s.entries),
                _ => joined.push(s),
            }
        }
        assert_eq!(joined, input);
    }

    /// A channel needs a runtime to exist in, even before it dials.
    #[tokio::test]
    async fn pool_shares_clients_and_checks_addresses() {
        let pool = ClientPool::new(IngesterClientConfig::default());
        let a = pool.get("127.0.0.1:9095").unwrap();
        let b = pool.get("127.0.0.1:9095").unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        pool.get("http://127.0.0.1:9096").unwrap();
        assert_eq!(pool.addresses(), ["127.0.0.1:9095", "http://127.0.0.1:9096"]);
        assert!(pool.remove("127.0.0.1:9095"));
        pool.retain(|_| false);
        assert!(pool.addresses().is_empty());
        let err = pool.get("127.0.0.1").unwrap_err();
        assert_eq!(err.to_string(), "invalid ingester address 127.0.0.1: no port");
        assert!(pool.get("not an address:1").is_err());
    }
}
