//! The distributor: first stop of the push path. It takes decoded push requests from the HTTP
//! edge (`PushHandler`), validates label sets and entries with Loki's rules and wording, merges
//! entries of the same stream, hashes tenant + labels onto the ingester ring and sends each
//! ingester its share (`Pusher`) in parallel. Valid streams are always written; refused ones are
//! counted by reason and named in one grouped 400.

pub mod discover;
pub mod validate;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use prometheus::{IntCounterVec, Opts, Registry};

use lode_model::api::{PushHandler, PushRequest, Pusher, SharedBatch, StreamBatch};
use lode_model::labels::ring_token;
use lode_model::limits::{Limits, RateLimiters};
use lode_model::metrics::Discards;
use lode_model::time::now_nanos;
use lode_model::{ApiError, Entry, ErrorCode};
use lode_ring::Ring;
use validate::{group_messages, validate_entry, validate_labels};

/// Loki's answer to a request that carries no stream at all.
pub const NO_STREAMS_MSG: &str = "error at least one valid stream is required for ingestion";

#[derive(Clone)]
struct Metrics {
    lines_received: IntCounterVec,
    bytes_received: IntCounterVec,
    /// Healthy distributors sharing a global rate (as the ring shows them).
    distributors: prometheus::IntGauge,
    discards: Discards,
}

impl Metrics {
    fn new(registry: &Registry, discards: Discards) -> Self {
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("static metric definition");
            let _ = registry.register(Box::new(c.clone()));
            c
        };
        Metrics {
            lines_received: counter(
                "loki_distributor_lines_received_total",
                "Log lines received.",
                &["tenant"],
            ),
            bytes_received: counter(
                "loki_distributor_bytes_received_total",
                "Bytes of lines and structured metadata received.",
                &["tenant"],
            ),
            distributors: {
                let g = prometheus::IntGauge::new(
                    "lode_distributor_healthy_distributors",
                    "Healthy distributors sharing each tenant's global ingestion rate.",
                )
                .expect("static metric definition");
                g.set(1);
                let _ = registry.register(Box::new(g.clone()));
                g
            },
            discards,
        }
    }

    fn discard(&self, reason: &str, tenant: &str, lines: usize, bytes: usize) {
        self.discards.count(reason, tenant, lines, bytes);
    }
}

/// The distributor role.
pub struct Distributor {
    limits: Arc<Limits>,
    /// One token bucket per tenant (`ingestion_rate_mb`, `ingestion_burst_size_mb`).
    rates: RateLimiters,
    replication_factor: usize,
    ring: RwLock<Ring>,
    clients: RwLock<HashMap<String, Arc<dyn Pusher>>>,
    /// Ingesters that take writes (ACTIVE); the others are skipped and the replica set extended.
    writable: RwLock<std::collections::HashSet<String>>,
    /// Healthy distributors in the cluster, this one included: a global rate is shared by them.
    distributors: std::sync::atomic::AtomicUsize,
    metrics: Metrics,
}

impl Distributor {
    pub fn new(
        limits: impl Into<Arc<Limits>>,
        replication_factor: usize,
        tokens_per_instance: u32,
        registry: &Registry,
        discards: Discards,
    ) -> Self {
        Distributor {
            limits: limits.into(),
            rates: RateLimiters::default(),
            replication_factor: replication_factor.max(1),
            ring: RwLock::new(Ring::new(tokens_per_instance)),
            clients: RwLock::new(HashMap::new()),
            writable: RwLock::new(std::collections::HashSet::new()),
            distributors: std::sync::atomic::AtomicUsize::new(1),
            metrics: Metrics::new(registry, discards),
        }
    }

    /// How many healthy distributors share a tenant's global ingestion rate (at least 1).
    pub fn set_distributors(&self, n: usize) {
        self.distributors.store(n.max(1), std::sync::atomic::Ordering::Relaxed);
        self.metrics
            .distributors
            .set(i64::try_from(n.max(1)).unwrap_or(i64::MAX));
    }

    /// Registers an ingester on the ring with the client that reaches it.
    pub fn add_ingester(&self, id: &str, client: Arc<dyn Pusher>) {
        self.clients
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_string(), client);
        self.ring.write().unwrap_or_else(|p| p.into_inner()).add(id);
        self.writable
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_string());
    }

    /// Replaces the ingesters on the ring (a cluster's membership view): `(id, client, takes
    /// writes)`. Members that left are removed; members that are only unhealthy or not ACTIVE
    /// stay on the ring (so placement does not move) but receive no writes.
    pub fn set_ingesters(&self, members: Vec<(String, Arc<dyn Pusher>, bool)>) {
        let ids: std::collections::HashSet<String> = members.iter().map(|m| m.0.clone()).collect();
        {
            let mut ring = self.ring.write().unwrap_or_else(|p| p.into_inner());
            let gone: Vec<String> = ring
                .instances()
                .filter(|i| !ids.contains(*i))
                .map(str::to_string)
                .collect();
            for id in gone {
                ring.remove(&id);
            }
            for id in &ids {
                ring.add(id);
            }
        }
        *self.writable.write().unwrap_or_else(|p| p.into_inner()) =
            members.iter().filter(|m| m.2).map(|m| m.0.clone()).collect();
        *self.clients.write().unwrap_or_else(|p| p.into_inner()) =
            members.into_iter().map(|(id, c, _)| (id, c)).collect();
    }

    /// Validates every stream; returns the valid ones (same labels merged, in arrival order) and
    /// the refusal messages.
    fn validate(&self, tenant: &str, req: PushRequest) -> (Vec<StreamBatch>, Vec<String>) {
        let now = now_nanos();
        let limits = self.limits.tenant(tenant);
        let mut refusals = Vec::new();
        let mut batches: Vec<StreamBatch> = Vec::new();
        // Streams of this request by fingerprint, to merge repeats of the same label set.
        let mut index: HashMap<u64, Vec<usize>> = HashMap::new();
        let (mut lines, mut bytes) = (0usize, 0usize);
        for stream in req.streams {
            if stream.entries.is_empty() {
                continue;
            }
            let stream_bytes: usize = stream.entries.iter().map(Entry::size).sum();
            lines += stream.entries.len();
            bytes += stream_bytes;
            let labels = match validate_labels(&stream.labels, &limits) {
                Ok(l) => l,
                Err(r) => {
                    self.metrics
                        .discard(r.reason, tenant, stream.entries.len(), stream_bytes);
                    refusals.push(r.message);
                    continue;
                }
            };
            let labels = discover::service_name(labels, &limits);
            let level = discover::stream_level(&labels, &limits);
            let mut entries = stream.entries;
            entries.retain_mut(|entry| {
                discover::normalize_metadata(entry);
                match validate_entry(entry, &labels, &limits, now) {
                    Ok(()) => {
                        discover::detected_level(entry, level.as_deref(), &limits);
                        true
                    }
                    Err(r) => {
                        self.metrics.discard(r.reason, tenant, 1, entry.size());
                        refusals.push(r.message);
                        false
                    }
                }
            });
            if entries.is_empty() {
                continue;
            }
            let same = index.entry(labels.fingerprint()).or_default();
            match same.iter().find(|&&i| batches[i].labels == labels) {
                Some(&i) => batches[i].entries.extend(entries),
                None => {
                    same.push(batches.len());
                    batches.push(StreamBatch { labels, entries });
                }
            }
        }
        self.metrics
            .lines_received
            .with_label_values(&[tenant])
            .inc_by(lines as u64);
        self.metrics
            .bytes_received
            .with_label_values(&[tenant])
            .inc_by(bytes as u64);
        (batches, refusals)
    }

    /// Sends each stream to its replicas and waits for a quorum of each. Returns the client
    /// (4xx) messages the ingesters answered with, and whether one of them was a 429.
    async fn send(&self, tenant: &str, batches: Vec<StreamBatch>) -> Result<(Vec<String>, bool), ApiError> {
        let rf = self.replication_factor;
        let n = batches.len();
        let quorum = rf / 2 + 1;
        let mut per_instance: HashMap<String, (Vec<usize>, Vec<Arc<SharedBatch>>)> = HashMap::new();
        {
            let ring = self.ring.read().unwrap_or_else(|p| p.into_inner());
            let writable = self.writable.read().unwrap_or_else(|p| p.into_inner());
            for (i, batch) in batches.into_iter().enumerate() {
                let owners = ring
                    .get_healthy(ring_token(tenant, &batch.labels), rf, |id| writable.contains(id))
                    .map_err(|e| ApiError::new(ErrorCode::Unavailable, e.to_string()))?;
                if owners.len() < quorum {
                    return Err(ApiError::new(
                        ErrorCode::Unavailable,
                        format!(
                            "at least {quorum} healthy ingesters are needed for replication factor {rf}, found {}",
                            owners.len()
                        ),
                    ));
                }
                // Every replica shares the one batch (and a transport's one encoding of it).
                let batch = SharedBatch::new(batch);
                for owner in &owners {
                    if !per_instance.contains_key(*owner) {
                        per_instance.insert(owner.to_string(), Default::default());
                    }
                    if let Some(slot) = per_instance.get_mut(*owner) {
                        slot.0.push(i);
                        slot.1.push(batch.clone());
                    }
                }
            }
        }
        let clients = self.clients.read().unwrap_or_else(|p| p.into_inner()).clone();
        let calls = per_instance.into_iter().map(|(id, (streams, batch))| {
            let client = clients.get(&id).cloned();
            async move {
                let r = match client {
                    Some(c) => c.push_shared(tenant, batch).await,
                    None => Err(ApiError::new(
                        ErrorCode::Unavailable,
                        format!("no client for ingester {id}"),
                    )),
                };
                (streams, r)
            }
        });
        let results = futures::future::join_all(calls).await;
        let mut acks = vec![0usize; n];
        let mut client_messages: Vec<String> = Vec::new();
        let mut limited = false;
        let mut server_error: Option<ApiError> = None;
        for (streams, r) in results {
            let acked = match r {
                Ok(()) => true,
                // A 4xx means the ingester stored what it could and refused the rest.
                Err(e) if e.code.is_client_error() => {
                    limited |= e.code == ErrorCode::TooManyRequests;
                    if !client_messages.contains(&e.message) {
                        client_messages.push(e.message);
                    }
                    true
                }
                Err(e) => {
                    tracing::warn!(tenant, error = %e, "ingester push failed");
                    server_error.get_or_insert(e);
                    false
                }
            };
            if acked {
                for s in streams {
                    acks[s] += 1;
                }
            }
        }
        if acks.iter().any(|&n| n < quorum) {
            return Err(server_error.unwrap_or_else(|| ApiError::internal("push did not reach a quorum of ingesters")));
        }
        Ok((client_messages, limited))
    }
}

impl Distributor {
    /// The tenant's rate limit, all or nothing over what passed validation, as Loki does.
    fn check_rate(&self, tenant: &str, batches: &[StreamBatch]) -> Result<(), ApiError> {
        let (lines, bytes) = batches.iter().fold((0usize, 0usize), |(l, b), s| {
            (
                l + s.entries.len(),
                b + s.entries.iter().map(Entry::size).sum::<usize>(),
            )
        });
        if lines == 0 {
            return Ok(());
        }
        let limits = self.limits.tenant(tenant);
        let rate = limits.distributor_rate_bytes(self.distributors.load(std::sync::atomic::Ordering::Relaxed));
        if self
            .rates
            .allow(tenant, bytes as f64, rate, limits.ingestion_burst_bytes())
        {
            return Ok(());
        }
        self.metrics.discard("rate_limited", tenant, lines, bytes);
        Err(ApiError::new(
            ErrorCode::TooManyRequests,
            format!(
                "ingestion rate limit exceeded for user {tenant} (limit: {} bytes/sec) while attempting to ingest '{lines}' lines totaling '{bytes}' bytes, reduce log volume or contact your Loki administrator to see if the limit can be increased",
                rate as u64
            ),
        ))
    }
}

#[async_trait]
impl PushHandler for Distributor {
    async fn push(&self, tenant: &str, req: PushRequest) -> Result<(), ApiError> {
        if req.streams.is_empty() {
            return Err(ApiError::new(ErrorCode::Unprocessable, NO_STREAMS_MSG));
        }
        let (batches, refusals) = self.validate(tenant, req);
        self.check_rate(tenant, &batches)?;
        let (ingester_messages, limited) = if batches.is_empty() {
            (Vec::new(), false)
        } else {
            self.send(tenant, batches).await?
        };
        let mut parts = Vec::new();
        if !refusals.is_empty() {
            parts.push(group_messages(&refusals));
        }
        parts.extend(ingester_messages);
        if parts.is_empty() {
            Ok(())
        } else if limited {
            // An ingester limit (stream count, stream rate): worth retrying later.
            Err(ApiError::new(ErrorCode::TooManyRequests, parts.join("\n")))
        } else {
            Err(ApiError::bad_request(parts.join("\n")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lode_model::api::PushStream;
    use lode_model::limits::LimitsConfig;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<StreamBatch>>);

    #[async_trait]
    impl Pusher for Recorder {
        async fn push(&self, _tenant: &str, streams: Vec<StreamBatch>) -> Result<(), ApiError> {
            self.0.lock().unwrap().extend(streams);
            Ok(())
        }
    }

    /// Limits with ingest-time discovery off, so tests see exactly the labels they pushed.
    fn no_discovery() -> LimitsConfig {
        LimitsConfig {
            discover_service_name: vec![],
            discover_log_levels: false,
            ..LimitsConfig::default()
        }
    }

    fn stream(labels: &str, entries: &[(i64, &str)]) -> PushStream {
        PushStream {
            labels: labels.into(),
            entries: entries.iter().map(|(t, l)| Entry::new(*t, *l)).collect(),
        }
    }

    fn distributor() -> (Distributor, Arc<Recorder>) {
        let d = Distributor::new(
            no_discovery(),
            1,
            128,
            &Registry::new(),
            Discards::new(&Registry::new()),
        );
        let r = Arc::new(Recorder::default());
        d.add_ingester("local", r.clone());
        (d, r)
    }

    #[tokio::test]
    async fn valid_streams_are_kept_beside_invalid_ones() {
        let (d, rec) = distributor();
        let now = now_nanos();
        let req = PushRequest {
            streams: vec![
                stream(r#"{job="a"}"#, &[(now, "one")]),
                stream(r#"{k8s.pod="x"}"#, &[(now, "bad")]),
                stream(r#"{job="a"}"#, &[(now + 1, "two")]),
                stream(r#"{job="b"}"#, &[(now, "x".repeat(300_000).as_str()), (now, "ok")]),
            ],
        };
        let err = d.push("t", req).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::BadRequest);
        assert!(
            err.message.starts_with("1 errors like: error parsing labels"),
            "{}",
            err.message
        );
        assert!(
            err.message
                .contains("; 1 errors like: max entry size '262144' bytes exceeded"),
            "{}",
            err.message
        );
        let got = rec.0.lock().unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].labels.to_string(), r#"{job="a"}"#);
        assert_eq!(got[0].entries.len(), 2, "same stream merged");
        assert_eq!(got[1].entries[0].line, "ok");
    }

    #[tokio::test]
    async fn tenant_rate_limit_refuses_whole_requests_per_tenant() {
        let limits = Arc::new(Limits::new(no_discovery()));
        // 1 KiB/s with a 2 KiB burst for "slow"; everyone else has the defaults.
        limits
            .load_overrides(
                "overrides:\n  slow:\n    ingestion_rate_mb: 0.0009765625\n    ingestion_burst_size_mb: 0.001953125\n",
            )
            .unwrap();
        let reg = Registry::new();
        let discards = Discards::new(&reg);
        let d = Distributor::new(limits, 1, 128, &reg, discards);
        let rec = Arc::new(Recorder::default());
        d.add_ingester("local", rec.clone());
        let now = now_nanos();
        let line = "x".repeat(700);
        let req = |i: i64| PushRequest {
            streams: vec![
                stream(r#"{job="a"}"#, &[(now + i, line.as_str())]),
                stream(r#"{k8s.pod="bad"}"#, &[(now, "y")]),
            ],
        };
        // 700 bytes each: two fit in the burst, the third does not.
        assert_eq!(d.push("slow", req(0)).await.unwrap_err().code, ErrorCode::BadRequest);
        assert_eq!(d.push("slow", req(1)).await.unwrap_err().code, ErrorCode::BadRequest);
        let e = d.push("slow", req(2)).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::TooManyRequests);
        assert_eq!(
            e.message,
            "ingestion rate limit exceeded for user slow (limit: 1024 bytes/sec) while attempting to ingest '1' lines totaling '700' bytes, reduce log volume or contact your Loki administrator to see if the limit can be increased"
        );
        assert_eq!(
            rec.0.lock().unwrap().len(),
            2,
            "nothing of the refused request was written"
        );
        // Another tenant is not affected.
        d.push("fast", req(3)).await.unwrap_err();
        assert_eq!(rec.0.lock().unwrap().len(), 3);
        let text = prometheus::TextEncoder::new().encode_to_string(&reg.gather()).unwrap();
        assert!(
            text.contains(r#"loki_discarded_samples_total{reason="rate_limited",tenant="slow"} 1"#),
            "{text}"
        );
        // With four distributors sharing the (global) rate, this one enforces a quarter of it.
        d.set_distributors(4);
        let e = d.push("slow", req(4)).await.unwrap_err();
        assert!(e.message.contains("(limit: 256 bytes/sec)"), "{}", e.message);
    }

    #[tokio::test]
    async fn service_name_and_detected_level_are_discovered_by_default() {
        let d = Distributor::new(
            LimitsConfig::default(),
            1,
            128,
            &Registry::new(),
            Discards::new(&Registry::new()),
        );
        let rec = Arc::new(Recorder::default());
        d.add_ingester("local", rec.clone());
        let now = now_nanos();
        let mut e = Entry::new(now, "level=warn msg=slow");
        e.metadata = vec![("http.method".into(), "GET".into())];
        let req = PushRequest {
            streams: vec![PushStream {
                labels: r#"{container="api", env="prod"}"#.into(),
                entries: vec![e],
            }],
        };
        d.push("t", req).await.unwrap();
        let got = rec.0.lock().unwrap();
        assert_eq!(
            got[0].labels.to_string(),
            r#"{container="api", env="prod", service_name="api"}"#
        );
        assert_eq!(
            got[0].entries[0].metadata,
            [
                ("http_method".to_string(), "GET".to_string()),
                ("detected_level".to_string(), "warn".to_string())
            ]
        );
    }

    #[tokio::test]
    async fn replicas_skip_ingesters_that_take_no_writes_and_need_a_quorum() {
        let d = Distributor::new(no_discovery(), 3, 64, &Registry::new(), Discards::new(&Registry::new()));
        let recs: Vec<Arc<Recorder>> = (0..4).map(|_| Arc::new(Recorder::default())).collect();
        let members = |writable: &[bool]| -> Vec<(String, Arc<dyn Pusher>, bool)> {
            recs.iter()
                .enumerate()
                .map(|(i, r)| (format!("ing-{i}"), r.clone() as Arc<dyn Pusher>, writable[i]))
                .collect()
        };
        d.set_ingesters(members(&[true, false, true, true]));
        let now = now_nanos();
        let req = |n: usize| PushRequest {
            streams: (0..n)
                .map(|i| stream(&format!(r#"{{job="j{i}"}}"#), &[(now, "x")]))
                .collect(),
        };
        d.push("t", req(20)).await.unwrap();
        let counts: Vec<usize> = recs.iter().map(|r| r.0.lock().unwrap().len()).collect();
        assert_eq!(counts[1], 0, "the JOINING/unhealthy ingester gets nothing");
        assert_eq!(
            counts.iter().sum::<usize>(),
            60,
            "every stream on three replicas: {counts:?}"
        );
        // With only one of four writable, a write cannot reach a quorum of two.
        d.set_ingesters(members(&[true, false, false, false]));
        let e = d.push("t", req(1)).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::Unavailable);
        assert!(e.message.contains("at least 2 healthy ingesters"), "{}", e.message);
        // A member that left is off the ring.
        d.set_ingesters(members(&[true, true, true, true]).into_iter().take(3).collect());
        assert_eq!(d.ring.read().unwrap().instances().count(), 3);
    }

    #[tokio::test]
    async fn empty_request_is_422() {
        let (d, _) = distributor();
        let err = d.push("t", PushRequest::default()).await.unwrap_err();
        assert_eq!(
            (err.code, err.message.as_str()),
            (ErrorCode::Unprocessable, NO_STREAMS_MSG)
        );
    }

    #[tokio::test]
    async fn no_ingester_is_unavailable_not_client_error() {
        let d = Distributor::new(
            no_discovery(),
            1,
            128,
            &Registry::new(),
            Discards::new(&Registry::new()),
        );
        let err = d
            .push(
                "t",
                PushRequest {
                    streams: vec![stream(r#"{a="b"}"#, &[(now_nanos(), "x")])],
                },
            )
            .await;
        assert_eq!(err.unwrap_err().code, ErrorCode::Unavailable);
    }
}
