//! A real tonic server in front of a real `lode_ingester::Ingester`, on loopback port 0, reached
//! through `IngesterClient`: answers over gRPC equal the in-process ones, errors keep their code
//! and message, large answers arrive whole, tails stream, and a server that goes away and comes
//! back is handled.

// clippy.toml lets tests unwrap; the helpers below are test code too.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lode_grpc::{ClientPool, GrpcServerConfig, IngesterClient, IngesterClientConfig, IngesterService};
use lode_ingester::{Ingester, IngesterConfig};
use lode_model::api::{
    LabelRequest, LogQuerier, LogSelect, Pusher, SampleResult, SampleSelect, SelectResult, SharedBatch, StreamBatch,
    StreamSummary, StreamsRequest, TailBatch, TailReceiver, TailSource,
};
use lode_model::limits::LimitsConfig;
use lode_model::metrics::Discards;
use lode_model::time::{ByteSize, ConfigDuration};
use lode_model::{ApiError, Direction, Entry, ErrorCode, Labels, Stream};
use lode_storage::ObjectStorage;
use prometheus::Registry;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const TENANT: &str = "tenant-1";

fn ingester(limits: LimitsConfig) -> Arc<Ingester> {
    let reg = Registry::new();
    Ingester::new(
        "ingester-1",
        IngesterConfig::default(),
        limits,
        ObjectStorage::in_memory(),
        &reg,
        Discards::new(&reg),
    )
}

/// A running server; stopped gracefully by [`Server::stop`].
struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Server {
    async fn start(ing: Arc<Ingester>, cfg: GrpcServerConfig) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Server::start_on(listener, ing, cfg)
    }

    fn start_on(listener: TcpListener, ing: Arc<Ingester>, cfg: GrpcServerConfig) -> Server {
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            lode_grpc::serve(listener, IngesterService::from_role(ing), &cfg, shutdown)
                .await
                .unwrap();
        });
        Server {
            addr,
            stop: Some(stop),
            task,
        }
    }

    async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("server stops")
            .unwrap();
    }
}

fn client_config(remote_timeout: Duration) -> IngesterClientConfig {
    let mut cfg = IngesterClientConfig {
        remote_timeout: ConfigDuration(remote_timeout),
        ..Default::default()
    };
    cfg.grpc_client_config.connect_timeout = ConfigDuration(Duration::from_secs(1));
    cfg
}

fn client(addr: SocketAddr) -> IngesterClient {
    IngesterClient::new(&addr.to_string(), &client_config(Duration::from_secs(10))).unwrap()
}

fn entry(ts: i64, line: impl Into<String>, meta: &[(&str, &str)]) -> Entry {
    Entry {
        ts,
        line: line.into(),
        metadata: meta.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
        parsed: Vec::new(),
    }
}

fn batch(labels: &str, entries: Vec<Entry>) -> StreamBatch {
    StreamBatch {
        labels: Labels::parse(labels).unwrap(),
        entries,
    }
}

fn select(query: &str, direction: Direction, limit: usize) -> LogSelect {
    LogSelect {
        query: query.into(),
        start: 0,
        end: i64::MAX,
        direction,
        limit,
    }
}

#[tokio::test]
async fn pushed_through_the_client_queries_equal_in_process_answers() {
    let ing = ingester(LimitsConfig::default());
    let server = Server::start(ing.clone(), GrpcServerConfig::default()).await;
    let c = client(server.addr);

    let streams = [
        "{app=\"api\", env=\"prod\"}",
        "{app=\"web\", env=\"prod\"}",
        "{app=\"web\", env=\"dev\"}",
    ];
    for round in 0..3i64 {
        let push = streams
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let entries = (0..20)
                    .map(|j| {
                        let ts = 1_000_000 * (round * 100 + j) + i as i64;
                        let level = if j % 3 == 0 { "error" } else { "info" };
                        entry(
                            ts,
                            format!("level={level} n={j} msg=\"round {round}\""),
                            &[("trace_id", "t1")],
                        )
                    })
                    .collect();
                batch(l, entries)
            })
            .collect();
        c.push(TENANT, push).await.unwrap();
    }

    for (query, direction, limit) in [
        (r#"{env="prod"}"#, Direction::Forward, 1000),
        (r#"{env="prod"}"#, Direction::Backward, 7),
        (r#"{app="web"} |= "level=error" | logfmt"#, Direction::Backward, 100),
        (r#"{app="none"}"#, Direction::Forward, 10),
    ] {
        let req = select(query, direction, limit);
        let remote = c.select_logs(TENANT, &req).await.unwrap();
        assert_eq!(remote, ing.select_logs(TENANT, &req).await.unwrap(), "{query}");
        if query.contains("logfmt") {
            assert!(!remote.streams[0].entries[0].parsed.is_empty(), "parsed labels travel");
            assert_eq!(
                remote.streams[0].entries[0].metadata,
                [("trace_id".to_string(), "t1".to_string())]
            );
        }
    }
    let total = c
        .select_logs(TENANT, &select(r#"{env=~".+"}"#, Direction::Forward, 1000))
        .await
        .unwrap();
    assert_eq!(total.streams.iter().map(|s| s.entries.len()).sum::<usize>(), 180);
    assert!(total.stats.lines_processed > 0, "stats travel: {:?}", total.stats);

    for query in [
        r#"count_over_time({env="prod"}[1m])"#,
        r#"sum by (level) (count_over_time({app="web"} | logfmt [10s]))"#,
        r#"rate({app="api"} |= "error" [5m])"#,
    ] {
        let req = SampleSelect {
            query: query.into(),
            start: 0,
            end: i64::MAX,
        };
        let remote = c.select_samples(TENANT, &req).await.unwrap();
        assert_eq!(remote, ing.select_samples(TENANT, &req).await.unwrap(), "{query}");
        assert!(!remote.series.is_empty(), "{query}");
    }

    for query in [None, Some(r#"{app="web"}"#.to_string())] {
        let req = LabelRequest {
            start: 0,
            end: i64::MAX,
            query,
        };
        let names = c.label_names(TENANT, &req).await.unwrap();
        assert_eq!(names, ing.label_names(TENANT, &req).await.unwrap());
        assert_eq!(names, ["app", "env"]);
        let values = c.label_values(TENANT, "env", &req).await.unwrap();
        assert_eq!(values, ing.label_values(TENANT, "env", &req).await.unwrap());
    }
    assert!(
        c.label_names(
            "other",
            &LabelRequest {
                start: 0,
                end: i64::MAX,
                query: None
            }
        )
        .await
        .unwrap()
        .is_empty(),
        "tenants stay apart"
    );

    for selector in [None, Some(r#"{env="prod"}"#.to_string())] {
        let req = StreamsRequest {
            start: 0,
            end: i64::MAX,
            selector,
        };
        let remote = c.stream_summaries(TENANT, &req).await.unwrap();
        assert_eq!(remote, ing.stream_summaries(TENANT, &req).await.unwrap());
        assert!(!remote.is_empty());
    }
    server.stop().await;
}

#[tokio::test]
async fn shared_streams_are_encoded_once_and_stored_by_every_replica() {
    let (a, b) = (ingester(LimitsConfig::default()), ingester(LimitsConfig::default()));
    let (sa, sb) = (
        Server::start(a.clone(), GrpcServerConfig::default()).await,
        Server::start(b.clone(), GrpcServerConfig::default()).await,
    );
    let (ca, cb) = (client(sa.addr), client(sb.addr));
    let shared: Vec<Arc<SharedBatch>> = ["{app=\"api\"}", "{app=\"web\"}"]
        .iter()
        .map(|l| {
            SharedBatch::new(batch(
                l,
                (0..50)
                    .map(|j| entry(1_000 + j, format!("line {j}"), &[("trace_id", "t")]))
                    .collect(),
            ))
        })
        .collect();
    ca.push_shared(TENANT, shared.clone()).await.unwrap();
    assert!(
        shared.iter().all(|s| s.wire.get().is_some()),
        "encoded by the first push"
    );
    let cached: Vec<*const u8> = shared.iter().map(|s| s.wire.get().unwrap().as_ptr()).collect();
    cb.push_shared(TENANT, shared.clone()).await.unwrap();
    let again: Vec<*const u8> = shared.iter().map(|s| s.wire.get().unwrap().as_ptr()).collect();
    assert_eq!(cached, again, "the second replica sends the same bytes");

    let req = select(r#"{app=~"api|web"}"#, Direction::Forward, 1000);
    let (from_a, from_b) = (
        a.select_logs(TENANT, &req).await.unwrap(),
        b.select_logs(TENANT, &req).await.unwrap(),
    );
    let expected: Vec<Stream> = shared
        .iter()
        .map(|s| Stream {
            labels: s.batch.labels.to_string(),
            entries: s.batch.entries.clone(),
        })
        .collect();
    assert_eq!(from_a.streams, expected);
    assert_eq!(from_b.streams, expected);

    // A refusal keeps its code on this path too.
    let late = vec![SharedBatch::new(batch("{app=\"api\"}", vec![entry(10, "late", &[])]))];
    let err = ca.push_shared(TENANT, late).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::BadRequest, "{err}");
    assert!(err.message.contains("entry out of order"), "{err}");
    sa.stop().await;
    sb.stop().await;
}

#[tokio::test]
async fn client_errors_come_back_with_their_code_and_message() {
    let limits = LimitsConfig {
        max_global_streams_per_user: 1,
        ..Default::default()
    };
    let ing = ingester(limits);
    let server = Server::start(ing.clone(), GrpcServerConfig::default()).await;
    let c = client(server.addr);

    c.push(TENANT, vec![batch(r#"{app="a"}"#, vec![entry(100, "one", &[])])])
        .await
        .unwrap();
    // Out of order: 400, the ingester's own message.
    let err = c
        .push(TENANT, vec![batch(r#"{app="a"}"#, vec![entry(50, "late", &[])])])
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::BadRequest);
    let in_process = ing
        .push(TENANT, vec![batch(r#"{app="a"}"#, vec![entry(50, "late", &[])])])
        .await
        .unwrap_err();
    assert_eq!(err, in_process);
    assert!(err.message.contains("entry out of order"), "{err}");

    // Stream limit: 429 with the limit's message.
    let err = c
        .push(TENANT, vec![batch(r#"{app="b"}"#, vec![entry(100, "x", &[])])])
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::TooManyRequests, "{err}");
    let in_process = ing
        .push(TENANT, vec![batch(r#"{app="b"}"#, vec![entry(100, "x", &[])])])
        .await
        .unwrap_err();
    assert_eq!(err, in_process);

    // A query the ingester cannot parse: 400 with the parser's message.
    let req = select("{app=", Direction::Forward, 10);
    let err = c.select_logs(TENANT, &req).await.unwrap_err();
    assert_eq!(err, ing.select_logs(TENANT, &req).await.unwrap_err());
    assert_eq!(err.code, ErrorCode::BadRequest);
    let err = c.subscribe(TENANT, "{app=").await.unwrap_err();
    assert_eq!(err.code, ErrorCode::BadRequest);
    server.stop().await;
}

#[tokio::test]
async fn answers_larger_than_a_message_arrive_complete() {
    let limits = LimitsConfig {
        per_stream_rate_limit: ByteSize(0),
        ..Default::default()
    };
    let ing = ingester(limits);
    let server_cfg = GrpcServerConfig {
        grpc_server_max_send_msg_size: ByteSize(64 << 10),
        ..Default::default()
    };
    let server = Server::start(ing.clone(), server_cfg).await;
    // The client's pushes are split to fit its own send limit.
    let mut cfg = client_config(Duration::from_secs(30));
    cfg.grpc_client_config.max_send_msg_size = ByteSize(256 << 10);
    let c = IngesterClient::new(&server.addr.to_string(), &cfg).unwrap();

    let line = "x".repeat(1000);
    let push: Vec<StreamBatch> = (0..3)
        .map(|s| {
            let entries = (0..1000)
                .map(|i| entry(i * 1000 + s, format!("{i} {line}"), &[("k", "v")]))
                .collect();
            batch(&format!("{{app=\"big\", shard=\"{s}\"}}"), entries)
        })
        .collect();
    c.push(TENANT, push).await.unwrap();

    let req = select(r#"{app="big"}"#, Direction::Backward, 5000);
    let remote = c.select_logs(TENANT, &req).await.unwrap();
    let local = ing.select_logs(TENANT, &req).await.unwrap();
    let bytes: usize = remote
        .streams
        .iter()
        .flat_map(|s| &s.entries)
        .map(|e| e.line.len())
        .sum();
    assert!(bytes > 40 * (64 << 10), "the answer spans many messages: {bytes} bytes");
    assert_eq!(remote.streams.iter().map(|s| s.entries.len()).sum::<usize>(), 3000);
    assert_eq!(remote, local);

    let req = SampleSelect {
        query: r#"count_over_time({app="big"}[1s])"#.into(),
        start: 0,
        end: i64::MAX,
    };
    let remote = c.select_samples(TENANT, &req).await.unwrap();
    assert_eq!(remote.series.iter().map(|s| s.samples.len()).sum::<usize>(), 3000);
    assert_eq!(remote, ing.select_samples(TENANT, &req).await.unwrap());
    server.stop().await;
}

/// Reads batches until none arrives for `quiet`.
async fn drain(rx: &mut TailReceiver, quiet: Duration) -> Vec<TailBatch> {
    let mut out = Vec::new();
    while let Ok(Some(b)) = tokio::time::timeout(quiet, rx.recv()).await {
        out.push(b);
    }
    out
}

#[tokio::test]
async fn tail_delivers_live_and_dropped_entries() {
    let limits = LimitsConfig {
        per_stream_rate_limit: ByteSize(0),
        ..Default::default()
    };
    let ing = ingester(limits);
    let server = Server::start(ing.clone(), GrpcServerConfig::default()).await;
    let c = client(server.addr);

    let mut rx = c.subscribe(TENANT, r#"{app="a"} |= "keep""#).await.unwrap();
    c.push(
        TENANT,
        vec![
            batch(
                r#"{app="a"}"#,
                vec![entry(1, "keep 1", &[("k", "v")]), entry(2, "drop 2", &[])],
            ),
            batch(r#"{app="b"}"#, vec![entry(1, "keep b", &[])]),
        ],
    )
    .await
    .unwrap();
    c.push(TENANT, vec![batch(r#"{app="a"}"#, vec![entry(3, "keep 3", &[])])])
        .await
        .unwrap();
    let mut lines = Vec::new();
    while lines.len() < 2 {
        let b = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("live entries arrive")
            .expect("tail open");
        assert!(b.dropped.is_empty());
        for s in b.streams {
            assert_eq!(s.labels, r#"{app="a"}"#);
            lines.extend(s.entries.into_iter().map(|e| (e.line, e.metadata)));
        }
    }
    assert_eq!(
        lines,
        [
            ("keep 1".to_string(), vec![("k".to_string(), "v".to_string())]),
            ("keep 3".to_string(), vec![])
        ]
    );

    // A reader that does not keep up: the ingester drops what does not fit and names it in the
    // next batch that goes through.
    let big = "keep ".to_string() + &"y".repeat(64 << 10);
    let flood = 400;
    for i in 0..flood {
        ing.push(
            TENANT,
            vec![batch(r#"{app="a"}"#, vec![entry(10 + i, big.clone(), &[])])],
        )
        .await
        .unwrap();
    }
    let mut received = drain(&mut rx, Duration::from_millis(500)).await;
    ing.push(
        TENANT,
        vec![batch(r#"{app="a"}"#, vec![entry(10 + flood, "keep last", &[])])],
    )
    .await
    .unwrap();
    received.extend(drain(&mut rx, Duration::from_millis(500)).await);
    let delivered: Vec<i64> = received
        .iter()
        .flat_map(|b| &b.streams)
        .flat_map(|s| &s.entries)
        .map(|e| e.ts)
        .collect();
    let dropped: Vec<i64> = received.iter().flat_map(|b| &b.dropped).map(|d| d.ts).collect();
    assert!(
        !dropped.is_empty(),
        "some entries were dropped ({} delivered)",
        delivered.len()
    );
    assert!(
        received
            .iter()
            .flat_map(|b| &b.dropped)
            .all(|d| d.labels == r#"{app="a"}"#)
    );
    let mut all: Vec<i64> = delivered.iter().chain(&dropped).copied().collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (10..=10 + flood).collect::<Vec<_>>(),
        "every entry delivered or reported"
    );
    assert_eq!(delivered.last(), Some(&(10 + flood)));

    // Dropping the receiver ends the call; the server stops without waiting for the tail.
    drop(rx);
    server.stop().await;
}

#[tokio::test]
async fn a_down_server_is_unavailable_quickly_and_a_restarted_one_is_reached_again() {
    let ing = ingester(LimitsConfig::default());
    let server = Server::start(ing.clone(), GrpcServerConfig::default()).await;
    let addr = server.addr;
    let pool = ClientPool::new(client_config(Duration::from_secs(3)));
    let c = pool.get(&addr.to_string()).unwrap();
    let labels = LabelRequest {
        start: 0,
        end: i64::MAX,
        query: None,
    };
    c.push(TENANT, vec![batch(r#"{app="a"}"#, vec![entry(1, "one", &[])])])
        .await
        .unwrap();
    assert_eq!(c.label_names(TENANT, &labels).await.unwrap(), ["app"]);

    server.stop().await;
    let t = Instant::now();
    let err = c.label_names(TENANT, &labels).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Unavailable, "{err}");
    assert!(err.message.starts_with(&format!("ingester {addr}: ")), "{err}");
    let err = c
        .push(TENANT, vec![batch(r#"{app="a"}"#, vec![entry(2, "two", &[])])])
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Unavailable, "{err}");
    assert!(c.subscribe(TENANT, r#"{app="a"}"#).await.is_err());
    assert!(t.elapsed() < Duration::from_secs(2), "failed fast: {:?}", t.elapsed());

    // The same client, through the pool, reaches the server restarted on the same address.
    let listener = TcpListener::bind(addr).await.unwrap();
    let server = Server::start_on(listener, ing, GrpcServerConfig::default());
    let c = pool.get(&addr.to_string()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match c.label_names(TENANT, &labels).await {
            Ok(names) => {
                assert_eq!(names, ["app"]);
                break;
            }
            Err(e) if Instant::now() < deadline => {
                assert_eq!(e.code, ErrorCode::Unavailable, "{e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("not reconnected: {e}"),
        }
    }
    c.push(TENANT, vec![batch(r#"{app="a"}"#, vec![entry(2, "two", &[])])])
        .await
        .unwrap();
    server.stop().await;
}

/// An ingester whose queries take `delay` before answering (a large query on a loaded node).
struct Slow {
    ing: Arc<Ingester>,
    delay: Duration,
}

#[async_trait::async_trait]
impl LogQuerier for Slow {
    async fn select_logs(&self, tenant: &str, req: &LogSelect) -> Result<SelectResult, ApiError> {
        tokio::time::sleep(self.delay).await;
        self.ing.select_logs(tenant, req).await
    }
    async fn select_samples(&self, tenant: &str, req: &SampleSelect) -> Result<SampleResult, ApiError> {
        tokio::time::sleep(self.delay).await;
        self.ing.select_samples(tenant, req).await
    }
    async fn label_names(&self, tenant: &str, req: &LabelRequest) -> Result<Vec<String>, ApiError> {
        self.ing.label_names(tenant, req).await
    }
    async fn label_values(&self, tenant: &str, name: &str, req: &LabelRequest) -> Result<Vec<String>, ApiError> {
        self.ing.label_values(tenant, name, req).await
    }
    async fn stream_summaries(&self, tenant: &str, req: &StreamsRequest) -> Result<Vec<StreamSummary>, ApiError> {
        tokio::time::sleep(self.delay).await;
        self.ing.stream_summaries(tenant, req).await
    }
}

#[tokio::test]
async fn a_query_longer_than_the_remote_timeout_still_answers_and_errors_keep_their_code() {
    let ing = ingester(LimitsConfig::default());
    ing.push(TENANT, vec![batch(r#"{app="a"}"#, vec![entry(1, "one", &[])])])
        .await
        .unwrap();
    let slow = Arc::new(Slow {
        ing: ing.clone(),
        delay: Duration::from_millis(800),
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = IngesterService::new(ing.clone(), slow, ing.clone());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        lode_grpc::serve(listener, service, &GrpcServerConfig::default(), async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    // The call must be answered within 300 ms; the answer itself may take longer.
    let c = IngesterClient::new(&addr.to_string(), &client_config(Duration::from_millis(300))).unwrap();
    let req = select(r#"{app="a"}"#, Direction::Forward, 10);
    let got = c.select_logs(TENANT, &req).await.unwrap();
    assert_eq!(got.streams, ing.select_logs(TENANT, &req).await.unwrap().streams);
    let samples = SampleSelect {
        query: r#"count_over_time({app="a"}[1m])"#.into(),
        start: 0,
        end: 10,
    };
    let got = c.select_samples(TENANT, &samples).await.unwrap();
    assert_eq!(got.series, ing.select_samples(TENANT, &samples).await.unwrap().series);
    // An error found while answering arrives with its code, after the call was answered.
    let err = c
        .select_logs(TENANT, &select("{app=", Direction::Forward, 10))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::BadRequest, "{err}");
    let _ = stop.send(());
    task.await.unwrap();
}

#[tokio::test]
async fn a_server_that_never_answers_hits_the_deadline() {
    // Accepts TCP connections (the kernel does) but never speaks HTTP/2.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let c = IngesterClient::new(&addr.to_string(), &client_config(Duration::from_millis(300))).unwrap();
    let t = Instant::now();
    let err = c
        .select_logs(TENANT, &select(r#"{app="a"}"#, Direction::Forward, 10))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Timeout, "{err:?}");
    assert!(err.message.starts_with(&format!("ingester {addr}: ")), "{err}");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    drop(listener);
}
