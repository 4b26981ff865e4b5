//! The ingester's gRPC server: each handler decodes the request, calls the role trait
//! (`Pusher`, `LogQuerier`, `TailSource`) and encodes the answer, streaming large ones in
//! batches. It knows nothing of the ingester itself.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use lode_model::api::{LogQuerier, LogSelect, Pusher, SampleSelect, StreamsRequest, TailSource};
use lode_model::{ApiError, ErrorCode, Stream as LogStream};
use lode_proto::convert_ingester::{label_request_from_proto, push_from_proto, stream_into_proto};
use lode_proto::ingester::ingester_server::{Ingester, IngesterServer};
use lode_proto::{ProtoError, ingester as pb, logproto, status};
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

use crate::batch::Batcher;
use crate::config::{GrpcServerConfig, as_usize};
use crate::{GrpcError, TENANT_HEADER};

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// A streamed answer whose work starts when the client reads it: the call returns (and the
/// response headers go out) at once, and the answer, or its error, follows as messages. So a
/// client's deadline on the call measures whether the ingester is there, not how long a large
/// query takes (which the querier's `query_timeout` bounds).
fn deferred<T: Send + 'static>(
    work: impl Future<Output = Result<BoxStream<T>, Status>> + Send + 'static,
) -> BoxStream<T> {
    use futures::StreamExt;
    Box::pin(
        futures::stream::once(async move {
            match work.await {
                Ok(stream) => stream,
                Err(status) => Box::pin(futures::stream::iter([Err(status)])) as BoxStream<T>,
            }
        })
        .flatten(),
    )
}

/// Bytes a query answer's entry counts for when cutting batches.
fn entry_size(e: &lode_model::Entry) -> usize {
    let pairs = |p: &[(String, String)]| p.iter().map(|(n, v)| n.len() + v.len() + 8).sum::<usize>();
    e.line.len() + pairs(&e.metadata) + pairs(&e.parsed) + 24
}

/// The `Ingester` gRPC service over the role traits.
#[derive(Clone)]
pub struct IngesterService {
    pusher: Arc<dyn Pusher>,
    querier: Arc<dyn LogQuerier>,
    tail: Arc<dyn TailSource>,
    batch_bytes: usize,
}

impl IngesterService {
    pub fn new(pusher: Arc<dyn Pusher>, querier: Arc<dyn LogQuerier>, tail: Arc<dyn TailSource>) -> Self {
        IngesterService {
            pusher,
            querier,
            tail,
            batch_bytes: GrpcServerConfig::default().batch_bytes(),
        }
    }

    /// The usual case: one value (the ingester) implements all three traits.
    pub fn from_role<T: Pusher + LogQuerier + TailSource + 'static>(role: Arc<T>) -> Self {
        Self::new(role.clone(), role.clone(), role)
    }

    /// The tonic service with the config's message limits; answers are batched to fit them.
    pub fn into_server(mut self, cfg: &GrpcServerConfig) -> IngesterServer<IngesterService> {
        self.batch_bytes = cfg.batch_bytes();
        IngesterServer::new(self)
            .max_decoding_message_size(as_usize(cfg.grpc_server_max_recv_msg_size))
            .max_encoding_message_size(as_usize(cfg.grpc_server_max_send_msg_size))
    }
}

/// Serves `service` on `listener` until `shutdown` completes, then drains open calls (live
/// tails end when their source does, or when the client goes away).
pub async fn serve(
    listener: TcpListener,
    service: IngesterService,
    cfg: &GrpcServerConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), GrpcError> {
    tonic::transport::Server::builder()
        .max_concurrent_streams(cfg.grpc_server_max_concurrent_streams)
        .add_service(service.into_server(cfg))
        .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), shutdown)
        .await
        .map_err(GrpcError::Serve)
}

fn tenant<T>(req: &Request<T>) -> Result<String, Status> {
    match req.metadata().get(TENANT_HEADER).map(|v| v.to_str()) {
        Some(Ok(t)) if !t.is_empty() => Ok(t.to_string()),
        _ => Err(status::to_status(&ApiError::new(ErrorCode::Unauthorized, "no org id"))),
    }
}

fn bad_request(e: ProtoError) -> Status {
    status::to_status(&ApiError::new(e.code(), e.to_string()))
}

fn api_status(e: ApiError) -> Status {
    status::to_status(&e)
}

#[tonic::async_trait]
impl Ingester for IngesterService {
    async fn push(&self, req: Request<logproto::PushRequest>) -> Result<Response<logproto::PushResponse>, Status> {
        let tenant = tenant(&req)?;
        let streams = push_from_proto(req.into_inner()).map_err(bad_request)?;
        self.pusher.push(&tenant, streams).await.map_err(api_status)?;
        Ok(Response::new(logproto::PushResponse {}))
    }

    type QueryStream = BoxStream<pb::QueryResponse>;

    async fn query(&self, req: Request<pb::QueryRequest>) -> Result<Response<Self::QueryStream>, Status> {
        let tenant = tenant(&req)?;
        let sel = LogSelect::try_from(req.into_inner()).map_err(bad_request)?;
        let (querier, batch_bytes) = (self.querier.clone(), self.batch_bytes);
        Ok(Response::new(deferred(async move {
            let res = querier.select_logs(&tenant, &sel).await.map_err(api_status)?;
            let groups = res.streams.into_iter().map(|s| (s.labels, s.entries)).collect();
            let mut stats = Some(pb::QueryStats::from(res.stats));
            let batches = Batcher::new(groups, batch_bytes, entry_size).map(move |b| {
                Ok(pb::QueryResponse {
                    streams: b
                        .groups
                        .into_iter()
                        .map(|(labels, entries)| stream_into_proto(LogStream { labels, entries }))
                        .collect(),
                    first_continues: b.first_continues,
                    stats: stats.take(),
                })
            });
            Ok(Box::pin(futures::stream::iter(batches)) as BoxStream<_>)
        })))
    }

    type QuerySampleStream = BoxStream<pb::SampleQueryResponse>;

    async fn query_sample(
        &self,
        req: Request<pb::SampleQueryRequest>,
    ) -> Result<Response<Self::QuerySampleStream>, Status> {
        let tenant = tenant(&req)?;
        let sel = SampleSelect::from(req.into_inner());
        let (querier, batch_bytes) = (self.querier.clone(), self.batch_bytes);
        Ok(Response::new(deferred(async move {
            let res = querier.select_samples(&tenant, &sel).await.map_err(api_status)?;
            let groups = res.series.into_iter().map(|s| (s.labels, s.samples)).collect();
            let mut stats = Some(pb::QueryStats::from(res.stats));
            let batches = Batcher::new(groups, batch_bytes, |_| 24).map(move |b| {
                Ok(pb::SampleQueryResponse {
                    series: b
                        .groups
                        .into_iter()
                        .map(|(labels, samples)| {
                            pb::SampleSeries::from(lode_model::api::SampleSeries { labels, samples })
                        })
                        .collect(),
                    first_continues: b.first_continues,
                    stats: stats.take(),
                })
            });
            Ok(Box::pin(futures::stream::iter(batches)) as BoxStream<_>)
        })))
    }

    async fn label(&self, req: Request<pb::LabelRequest>) -> Result<Response<pb::LabelResponse>, Status> {
        let tenant = tenant(&req)?;
        let (name, r) = label_request_from_proto(req.into_inner());
        let values = match name {
            Some(name) => self.querier.label_values(&tenant, &name, &r).await,
            None => self.querier.label_names(&tenant, &r).await,
        }
        .map_err(api_status)?;
        Ok(Response::new(pb::LabelResponse { values }))
    }

    type SeriesStream = BoxStream<pb::SeriesResponse>;

    async fn series(&self, req: Request<pb::SeriesRequest>) -> Result<Response<Self::SeriesStream>, Status> {
        let tenant = tenant(&req)?;
        let r = StreamsRequest::from(req.into_inner());
        let (querier, budget) = (self.querier.clone(), self.batch_bytes);
        Ok(Response::new(deferred(async move {
            let summaries = querier.stream_summaries(&tenant, &r).await.map_err(api_status)?;
            // A summary is small: batches are cut between summaries only.
            let mut out = Vec::new();
            let mut cur = pb::SeriesResponse::default();
            let mut used = 0;
            for s in summaries {
                let size = s.labels.iter().map(|(n, v)| n.len() + v.len() + 8).sum::<usize>() + s.chunks.len() * 40;
                if used + size > budget && !cur.streams.is_empty() {
                    out.push(Ok(std::mem::take(&mut cur)));
                    used = 0;
                }
                used += size;
                cur.streams.push(pb::StreamSummary::from(s));
            }
            if out.is_empty() || !cur.streams.is_empty() {
                out.push(Ok(cur));
            }
            Ok(Box::pin(futures::stream::iter(out)) as BoxStream<_>)
        })))
    }

    type TailStream = BoxStream<pb::TailResponse>;

    /// Forwards the subscription's batches as they come; a client that reads slowly holds the
    /// stream back, and the source drops (and reports) what does not fit its queue.
    async fn tail(&self, req: Request<pb::TailRequest>) -> Result<Response<Self::TailStream>, Status> {
        let tenant = tenant(&req)?;
        let rx = self
            .tail
            .subscribe(&tenant, &req.into_inner().query)
            .await
            .map_err(api_status)?;
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            let batch = rx.recv().await?;
            Some((Ok(pb::TailResponse::from(batch)), rx))
        });
        Ok(Response::new(Box::pin(stream)))
    }
}
