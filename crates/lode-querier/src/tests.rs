use lode_chunk::MemChunk;
use lode_index::{ChunkRef, IndexBuilder, index_key, period_of};
use lode_model::api::{QueryHandler, RangeQuery};
use lode_model::{Direction, Entry, ErrorCode, Labels, Stream};
use lode_storage::ObjectStorage;

use super::*;
use lode_model::limits::LimitsConfig;

const T0: i64 = 1_700_000_000_000_000_000;

/// Writes one chunk of `lines` (one per second from `from`) and its index object, as an
/// ingester's flush would.
async fn put_chunk(store: &ObjectStorage, tenant: &str, labels: &str, from: i64, lines: &[&str]) -> ChunkRef {
    // One writer name per stream, so index objects of streams flushed at once do not collide.
    let writer = format!("ing{:x}", Labels::parse(labels).unwrap().fingerprint());
    put_chunk_by(store, tenant, &writer, labels, from, lines).await
}

/// [`put_chunk`] as ingester `writer` flushes it (replicas flush the same stream).
async fn put_chunk_by(
    store: &ObjectStorage,
    tenant: &str,
    writer: &str,
    labels: &str,
    from: i64,
    lines: &[&str],
) -> ChunkRef {
    let labels = Labels::parse(labels).unwrap();
    let mut c = MemChunk::new(lode_chunk::DEFAULT_BLOCK_SIZE, lode_chunk::DEFAULT_ZSTD_LEVEL);
    for (i, l) in lines.iter().enumerate() {
        c.append(from + i as i64 * 1_000_000_000, l, &[]).unwrap();
    }
    let (min, max) = (c.min_ts().unwrap(), c.max_ts().unwrap());
    let bytes = c.into_bytes().unwrap();
    let cref = ChunkRef {
        fingerprint: labels.fingerprint(),
        from: min,
        through: max,
        checksum: crc32fast::hash(&bytes),
        size: bytes.len() as u32,
        entries: lines.len() as u32,
    };
    store.put(&cref.key(tenant), bytes).await.unwrap();
    let mut b = IndexBuilder::new(tenant, period_of(min));
    b.add_chunk(&labels, cref);
    store
        .put(&index_key(tenant, period_of(min), writer, from), b.finish())
        .await
        .unwrap();
    cref
}

fn querier(store: &ObjectStorage) -> Querier {
    Querier::new(QuerierConfig::default(), LimitsConfig::default(), store.clone(), vec![])
}

fn range(q: &str, dir: Direction, limit: usize) -> RangeQuery {
    RangeQuery {
        query: q.into(),
        start: T0,
        end: T0 + 3600 * 1_000_000_000,
        limit,
        direction: dir,
        step: 0,
        interval: 0,
    }
}

fn lines(r: &QueryResponse) -> Vec<(String, Vec<String>)> {
    let QueryData::Streams(s) = &r.data else {
        panic!("not a streams result: {:?}", r.data)
    };
    s.iter()
        .map(|s| (s.labels.clone(), s.entries.iter().map(|e| e.line.clone()).collect()))
        .collect()
}

#[tokio::test]
async fn reads_only_matching_chunks_and_applies_limit_across_streams() {
    let store = ObjectStorage::in_memory();
    put_chunk(&store, "t", r#"{app="a"}"#, T0, &["a0", "a1 err", "a2"]).await;
    put_chunk(&store, "t", r#"{app="a"}"#, T0 + 10_000_000_000, &["a10 err", "a11"]).await;
    put_chunk(&store, "t", r#"{app="b"}"#, T0 + 500_000_000, &["b0 err", "b1"]).await;
    put_chunk(&store, "other", r#"{app="a"}"#, T0, &["secret"]).await;
    let q = querier(&store);

    let r = q
        .query_range("t", range(r#"{app="a"}"#, Direction::Forward, 100))
        .await
        .unwrap();
    assert_eq!(
        lines(&r),
        [(
            r#"{app="a"}"#.to_string(),
            vec!["a0", "a1 err", "a2", "a10 err", "a11"]
                .into_iter()
                .map(String::from)
                .collect()
        )]
    );
    assert_eq!(r.stats.chunks_fetched, 2, "the other stream's chunk is not fetched");

    let r = q
        .query_range("t", range(r#"{app=~"a|b"} |= "err""#, Direction::Backward, 2))
        .await
        .unwrap();
    assert_eq!(
        lines(&r),
        [(
            r#"{app="a"}"#.to_string(),
            vec!["a10 err".to_string(), "a1 err".to_string()]
        )],
        "limit applies across streams, newest first"
    );
    let r = q
        .query_range("other", range(r#"{app="a"}"#, Direction::Forward, 10))
        .await
        .unwrap();
    assert_eq!(lines(&r)[0].1, ["secret"]);
}

#[tokio::test]
async fn replicas_overlapping_chunks_are_merged_before_the_limit() {
    // Replica A cut the stream in two chunks, replica B (which restarted) in one: their chunks
    // overlap. A limit must count distinct entries, in order, not copies.
    let store = ObjectStorage::in_memory();
    let s = r#"{app="r"}"#;
    put_chunk_by(&store, "t", "a", s, T0, &["l0", "l1"]).await;
    put_chunk_by(&store, "t", "a", s, T0 + 2_000_000_000, &["l2", "l3", "l4", "l5"]).await;
    put_chunk_by(&store, "t", "b", s, T0, &["l0", "l1", "l2", "l3", "l4", "l5"]).await;
    let q = querier(&store);
    let run = |dir, limit| {
        let q = &q;
        async move {
            lines(&q.query_range("t", range(s, dir, limit)).await.unwrap())[0]
                .1
                .clone()
        }
    };
    assert_eq!(run(Direction::Forward, 4).await, ["l0", "l1", "l2", "l3"]);
    assert_eq!(run(Direction::Backward, 4).await, ["l5", "l4", "l3", "l2"]);
    assert_eq!(run(Direction::Forward, 100).await, ["l0", "l1", "l2", "l3", "l4", "l5"]);
    assert_eq!(
        run(Direction::Backward, 100).await,
        ["l5", "l4", "l3", "l2", "l1", "l0"]
    );
}

#[tokio::test]
async fn corrupted_chunk_is_reported_by_key() {
    let store = ObjectStorage::in_memory();
    let cref = put_chunk(&store, "t", r#"{app="a"}"#, T0, &["hello", "world"]).await;
    let mut bytes = store.get(&cref.key("t")).await.unwrap().to_vec();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x5a;
    store.put(&cref.key("t"), bytes).await.unwrap();
    let err = querier(&store)
        .query_range("t", range(r#"{app="a"}"#, Direction::Forward, 10))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Internal);
    assert!(
        err.message.contains(&cref.key("t")) && err.message.contains("checksum mismatch"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn limits_and_bad_queries_are_400() {
    let q = querier(&ObjectStorage::in_memory());
    let e = q
        .query_range("t", range(r#"{app="a"}"#, Direction::Forward, 5001))
        .await
        .unwrap_err();
    assert_eq!(
        e.message,
        "max entries limit per query exceeded, limit > max_entries_limit_per_query (5001 > 5000)"
    );
    let mut long = range(r#"{app="a"}"#, Direction::Forward, 10);
    long.end = long.start + 800 * 3600 * 1_000_000_000;
    let e = q.query_range("t", long).await.unwrap_err();
    assert_eq!(
        e.message,
        "the query time range exceeds the limit (query length: 800h0m0s, limit: 721h0m0s)"
    );
    let e = q
        .query_range("t", range(r#"{app="a""#, Direction::Forward, 10))
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::BadRequest);
    assert!(e.message.starts_with("parse error at line 1, col"), "{}", e.message);
}

#[test]
fn merge_dedups_replicas_and_thins_by_interval() {
    let s = |l: &str, e: &[(i64, &str)]| Stream {
        labels: l.into(),
        entries: e.iter().map(|(t, x)| Entry::new(*t, *x)).collect(),
    };
    let merged = merge_streams(
        vec![
            s("{a=\"1\"}", &[(1, "x"), (2, "y")]),
            s("{a=\"1\"}", &[(2, "y"), (3, "z")]),
            s("{a=\"2\"}", &[(2, "q")]),
        ],
        Direction::Forward,
        100,
        0,
    );
    assert_eq!(merged[0].entries.iter().map(|e| e.ts).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(merged[1].entries.len(), 1);
    let thinned = merge_streams(
        vec![s("{a=\"1\"}", &[(0, "a"), (1, "b"), (5, "c"), (10, "d")])],
        Direction::Forward,
        100,
        5,
    );
    assert_eq!(thinned[0].entries.iter().map(|e| e.ts).collect::<Vec<_>>(), [0, 5, 10]);
}

/// An ingester that answers after a delay, to run a query past its timeout.
struct SlowIngester;

#[async_trait::async_trait]
impl LogQuerier for SlowIngester {
    async fn select_logs(
        &self,
        _: &str,
        _: &lode_model::api::LogSelect,
    ) -> Result<lode_model::api::SelectResult, ApiError> {
        tokio::time::sleep(std::time::Duration::from_secs(120)).await;
        Ok(Default::default())
    }
    async fn select_samples(
        &self,
        _: &str,
        _: &lode_model::api::SampleSelect,
    ) -> Result<lode_model::api::SampleResult, ApiError> {
        tokio::time::sleep(std::time::Duration::from_secs(120)).await;
        Ok(Default::default())
    }
    async fn label_names(&self, _: &str, _: &lode_model::api::LabelRequest) -> Result<Vec<String>, ApiError> {
        Ok(vec![])
    }
    async fn label_values(&self, _: &str, _: &str, _: &lode_model::api::LabelRequest) -> Result<Vec<String>, ApiError> {
        Ok(vec![])
    }
    async fn stream_summaries(
        &self,
        _: &str,
        _: &lode_model::api::StreamsRequest,
    ) -> Result<Vec<lode_model::api::StreamSummary>, ApiError> {
        Ok(vec![])
    }
}

#[tokio::test(start_paused = true)]
async fn queries_past_query_timeout_are_504() {
    let limits = LimitsConfig {
        query_timeout: lode_model::time::ConfigDuration::secs(30),
        ..LimitsConfig::default()
    };
    let q = Querier::new(
        QuerierConfig::default(),
        limits,
        ObjectStorage::in_memory(),
        vec![Arc::new(SlowIngester)],
    );
    let e = q
        .query_range("t", range(r#"{app="a"}"#, Direction::Forward, 10))
        .await
        .unwrap_err();
    assert_eq!((e.code, e.message.as_str()), (ErrorCode::Timeout, TIMEOUT_MSG));
    let e = q
        .query_instant(
            "t",
            lode_model::api::InstantQuery {
                query: r#"count_over_time({app="a"}[1m])"#.into(),
                time: T0,
                limit: 10,
                direction: Direction::Backward,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::Timeout);
}

fn split_querier(store: &ObjectStorage, parallelism: usize, split_minutes: u64) -> Querier {
    let cfg = QuerierConfig {
        max_query_parallelism: parallelism,
        split_queries_by_interval: lode_model::time::ConfigDuration::secs(split_minutes * 60),
        ..QuerierConfig::default()
    };
    Querier::new(cfg, LimitsConfig::default(), store.clone(), vec![])
}

/// Three streams with a chunk every 30 minutes over 3 hours, 120 lines each, every fifth
/// line an "err".
async fn three_hours(store: &ObjectStorage) -> u64 {
    let mut total = 0;
    for app in ["a", "b", "c"] {
        for k in 0..6i64 {
            let lines: Vec<String> = (0..120)
                .map(|i| format!("{app} k={k} i={i}{}", if i % 5 == 0 { " err" } else { "" }))
                .collect();
            let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
            put_chunk(
                store,
                "t",
                &format!(r#"{{app="{app}"}}"#),
                T0 + k * 1_800_000_000_000,
                &refs,
            )
            .await;
            total += 120;
        }
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_queries_answer_as_one_piece_does() {
    let store = ObjectStorage::in_memory();
    let total = three_hours(&store).await;
    let whole = split_querier(&store, 1, 100 * 60);
    let split = split_querier(&store, 2, 10);
    let hour = 3_600_000_000_000;
    for (query, dir, limit, interval) in [
        (r#"{app=~"a|b|c"}"#, Direction::Forward, 5000, 0),
        (r#"{app=~"a|b|c"}"#, Direction::Backward, 5000, 0),
        (r#"{app=~"a|b|c"} |= "err""#, Direction::Backward, 37, 0),
        (r#"{app=~"a|b|c"} |= "err""#, Direction::Forward, 37, 0),
        (r#"{app="a"}"#, Direction::Backward, 5000, 7_000_000_000),
        (r#"{app="a"}"#, Direction::Forward, 5000, 7_000_000_000),
    ] {
        let req = RangeQuery {
            query: query.into(),
            start: T0 + 1_000_000_000,
            end: T0 + 3 * hour - 7,
            limit,
            direction: dir,
            step: 0,
            interval,
        };
        let a = whole.query_range("t", req.clone()).await.unwrap();
        let b = split.query_range("t", req).await.unwrap();
        assert_eq!(
            lines(&a),
            lines(&b),
            "{query} {dir:?} limit {limit} interval {interval}"
        );
        assert!(!lines(&a).is_empty(), "{query} {dir:?}: {:?}", a.stats);
    }

    for query in [
        r#"count_over_time({app=~"a|b|c"}[5m])"#,
        r#"sum by (app) (rate({app=~"a|b|c"} |= "err" [1m]))"#,
        r#"sum(bytes_over_time({app=~"a|b|c"}[10m]))"#,
    ] {
        let req = RangeQuery {
            query: query.into(),
            start: T0,
            end: T0 + 3 * hour,
            limit: 100,
            direction: Direction::Backward,
            step: 60_000_000_000,
            interval: 0,
        };
        let a = whole.query_range("t", req.clone()).await.unwrap();
        let b = split.query_range("t", req).await.unwrap();
        assert_eq!(a.data, b.data, "{query}");
        assert!(matches!(&a.data, QueryData::Matrix(m) if !m.is_empty()));
        // Every line is looked at once, whether the needle's memmem skipped it or not.
        assert_eq!(a.stats.lines_processed, total, "{query}");
        assert_eq!(b.stats.lines_processed, total, "{query}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_query_stops_once_its_limit_is_met() {
    let store = ObjectStorage::in_memory();
    let total = three_hours(&store).await;
    let q = split_querier(&store, 2, 10);
    let req = RangeQuery {
        query: r#"{app=~"a|b|c"}"#.into(),
        start: T0,
        end: T0 + 3 * 3_600_000_000_000,
        limit: 10,
        direction: Direction::Backward,
        step: 0,
        interval: 0,
    };
    let r = q.query_range("t", req).await.unwrap();
    let got: usize = lines(&r).iter().map(|(_, l)| l.len()).sum();
    assert_eq!(got, 10);
    assert!(lines(&r).iter().all(|(_, l)| l.iter().all(|x| x.contains("k=5"))));
    assert!(
        r.stats.chunks_fetched <= 6,
        "only the newest pieces' chunks are read, not all 18: {:?}",
        r.stats
    );
    assert!(r.stats.lines_processed < total);
}

#[tokio::test]
async fn metadata_endpoints_read_the_store_per_tenant() {
    use lode_model::api::{DetectedFieldsRequest, MetadataHandler, SeriesRequest, StreamsRequest};
    let store = ObjectStorage::in_memory();
    let a = put_chunk(
        &store,
        "t",
        r#"{app="a", env="prod"}"#,
        T0,
        &["level=info n=1", "level=warn n=2"],
    )
    .await;
    put_chunk(&store, "t", r#"{app="b", env="dev"}"#, T0, &[r#"{"status":200}"#]).await;
    put_chunk(&store, "other", r#"{app="secret"}"#, T0, &["x"]).await;
    let q = querier(&store);
    let (start, end) = (T0, T0 + 3600 * 1_000_000_000);

    let series = |groups: &[&str]| SeriesRequest {
        start,
        end,
        groups: groups.iter().map(|g| g.to_string()).collect(),
    };
    let all = q.series("t", series(&[])).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(q.series("t", series(&["{}"])).await.unwrap(), all);
    let one = q.series("t", series(&[r#"{app="a"}"#])).await.unwrap();
    assert_eq!(one, vec![Labels::parse(r#"{app="a", env="prod"}"#).unwrap()]);
    assert_eq!(
        q.series("t", series(&[r#"{app="a"}"#, r#"{env="dev"}"#]))
            .await
            .unwrap(),
        all
    );
    assert!(q.series("nobody", series(&[])).await.unwrap().is_empty());
    let e = q.series("t", series(&["{app"])).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::BadRequest, "{e:?}");
    let e = q.series("t", series(&["{}", r#"{app="a"}"#])).await.unwrap_err();
    assert_eq!(e.message, "0 matchers in group: {}");

    let stats = q
        .index_stats(
            "t",
            StreamsRequest {
                start,
                end,
                selector: Some(r#"{app="a"}"#.into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (stats.streams, stats.chunks, stats.entries, stats.bytes),
        (1, 1, 2, u64::from(a.size))
    );

    let labels = q
        .detected_labels(
            "other",
            StreamsRequest {
                start,
                end,
                selector: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(labels.len(), 1, "only the tenant's own streams: {labels:?}");

    let fields = q
        .detected_fields(
            "t",
            DetectedFieldsRequest {
                query: r#"{app=~"a|b"}"#.into(),
                start,
                end,
                line_limit: 100,
                limit: 100,
            },
        )
        .await
        .unwrap();
    let names: Vec<&str> = fields.iter().map(|f| f.label.as_str()).collect();
    assert_eq!(names, ["level", "n", "status"]);
    let e = q
        .detected_fields(
            "t",
            DetectedFieldsRequest {
                query: r#"sum(rate({app="a"}[1m]))"#.into(),
                start,
                end,
                line_limit: 100,
                limit: 100,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::BadRequest);
}

/// An ingester that answers empty, or fails every call with its code.
struct Replica(Option<ErrorCode>);

impl Replica {
    fn answer<T: Default>(&self) -> Result<T, ApiError> {
        match self.0 {
            Some(c) => Err(ApiError::new(c, "replica failed")),
            None => Ok(T::default()),
        }
    }
}

#[async_trait::async_trait]
impl LogQuerier for Replica {
    async fn select_logs(
        &self,
        _: &str,
        _: &lode_model::api::LogSelect,
    ) -> Result<lode_model::api::SelectResult, ApiError> {
        self.answer()
    }
    async fn select_samples(
        &self,
        _: &str,
        _: &lode_model::api::SampleSelect,
    ) -> Result<lode_model::api::SampleResult, ApiError> {
        self.answer()
    }
    async fn label_names(&self, _: &str, _: &lode_model::api::LabelRequest) -> Result<Vec<String>, ApiError> {
        self.answer::<Vec<String>>().map(|_| vec!["app".into()])
    }
    async fn label_values(&self, _: &str, _: &str, _: &lode_model::api::LabelRequest) -> Result<Vec<String>, ApiError> {
        self.answer()
    }
    async fn stream_summaries(
        &self,
        _: &str,
        _: &lode_model::api::StreamsRequest,
    ) -> Result<Vec<lode_model::api::StreamSummary>, ApiError> {
        self.answer()
    }
}

#[tokio::test]
async fn reads_tolerate_a_minority_of_failed_replicas_but_not_client_errors() {
    let store = ObjectStorage::in_memory();
    put_chunk(&store, "t", r#"{app="a"}"#, T0, &["stored"]).await;
    let q = |fails: &[Option<ErrorCode>]| {
        Querier::new(
            QuerierConfig::default(),
            LimitsConfig::default(),
            store.clone(),
            fails
                .iter()
                .map(|f| Arc::new(Replica(*f)) as Arc<dyn LogQuerier>)
                .collect(),
        )
        .with_replication_factor(3)
    };
    let down = Some(ErrorCode::Unavailable);
    let one_down = q(&[None, down, None]);
    let r = one_down
        .query_range("t", range(r#"{app="a"}"#, Direction::Forward, 10))
        .await
        .unwrap();
    assert_eq!(lines(&r)[0].1, ["stored"]);
    let metric = RangeQuery {
        step: 60_000_000_000,
        ..range(r#"count_over_time({app="a"}[5m])"#, Direction::Forward, 10)
    };
    one_down.query_range("t", metric.clone()).await.unwrap();
    let names = one_down
        .label_names(
            "t",
            lode_model::api::LabelRequest {
                start: T0,
                end: T0 + 1_000_000_000,
                query: None,
            },
        )
        .await
        .unwrap();
    assert!(names.contains(&"app".to_string()), "{names:?}");

    let two_down = q(&[None, down, down]);
    let e = two_down
        .query_range("t", range(r#"{app="a"}"#, Direction::Forward, 10))
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::Unavailable);
    let e = q(&[None, Some(ErrorCode::BadRequest), None])
        .query_range("t", metric)
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::BadRequest, "a 4xx is the query's own fault");
    // The single binary (replication factor 1) tolerates nothing.
    let single = Querier::new(
        QuerierConfig::default(),
        LimitsConfig::default(),
        store.clone(),
        vec![Arc::new(Replica(down))],
    );
    assert!(
        single
            .query_range("t", range(r#"{app="a"}"#, Direction::Forward, 10))
            .await
            .is_err()
    );
}
