use std::sync::Arc;

use lode_model::api::{IngesterAdmin, LogQuerier, LogSelect, Pusher, StreamBatch};
use lode_model::limits::LimitsConfig;
use lode_model::metrics::Discards;
use lode_model::time::ByteSize;
use lode_model::{Direction, Entry, ErrorCode, Labels};
use lode_storage::ObjectStorage;
use prometheus::Registry;

use crate::{Ingester, IngesterConfig};

fn ingester(cfg: IngesterConfig) -> (Arc<Ingester>, ObjectStorage) {
    let store = ObjectStorage::in_memory();
    let reg = Registry::new();
    (
        Ingester::new(
            "ing-1",
            cfg,
            LimitsConfig::default(),
            store.clone(),
            &reg,
            Discards::new(&reg),
        ),
        store,
    )
}

fn batch(labels: &str, entries: &[(i64, &str)]) -> StreamBatch {
    StreamBatch {
        labels: Labels::parse(labels).unwrap(),
        entries: entries.iter().map(|(t, l)| Entry::new(*t, *l)).collect(),
    }
}

fn select(q: &str, dir: Direction, limit: usize) -> LogSelect {
    LogSelect {
        query: q.into(),
        start: 0,
        end: i64::MAX,
        direction: dir,
        limit,
    }
}

#[tokio::test]
async fn out_of_order_is_refused_and_the_rest_kept() {
    let (ing, _) = ingester(IngesterConfig::default());
    ing.push("t", vec![batch(r#"{app="a"}"#, &[(10, "one"), (20, "two")])])
        .await
        .unwrap();
    let err = ing
        .push(
            "t",
            vec![batch(
                r#"{app="a"}"#,
                &[(15, "late"), (20, "two"), (20, "two bis"), (30, "three")],
            )],
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::BadRequest);
    assert_eq!(
        err.message,
        "entry with timestamp 1970-01-01 00:00:00.000000015 +0000 UTC ignored, reason: 'entry out of order',\n\
         user 't', total ignored: 1 out of 4 for stream: {app=\"a\"}"
    );
    let r = ing
        .select_logs("t", &select(r#"{app="a"}"#, Direction::Forward, 100))
        .await
        .unwrap();
    let lines: Vec<_> = r.streams[0].entries.iter().map(|e| e.line.as_str()).collect();
    // The exact duplicate (20, "two") was dropped silently; same time, other line kept.
    assert_eq!(lines, ["one", "two", "two bis", "three"]);
}

#[tokio::test]
async fn a_retried_push_is_taken_silently_and_only_real_late_lines_refused() {
    // Small chunks, so the retried lines span cut chunks and the head.
    let (ing, _) = ingester(IngesterConfig {
        chunk_target_size: ByteSize(1),
        ..IngesterConfig::default()
    });
    let first: Vec<(i64, String)> = (0..20).map(|i| (100 + i, format!("line {i}"))).collect();
    let refs: Vec<(i64, &str)> = first.iter().map(|(t, l)| (*t, l.as_str())).collect();
    ing.push("t", vec![batch(r#"{app="a"}"#, &refs)]).await.unwrap();
    // The whole push again (a retry), then more: no error, nothing doubled.
    let mut again = refs.clone();
    again.push((200, "new"));
    ing.push("t", vec![batch(r#"{app="a"}"#, &again)]).await.unwrap();
    // A line at an old time that the stream does not hold is still out of order.
    let err = ing
        .push(
            "t",
            vec![batch(
                r#"{app="a"}"#,
                &[(105, "line 5"), (105, "not sent before"), (201, "newer")],
            )],
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::BadRequest);
    assert!(err.message.contains("total ignored: 1 out of 3"), "{}", err.message);
    let r = ing
        .select_logs("t", &select(r#"{app="a"}"#, Direction::Forward, 1000))
        .await
        .unwrap();
    let lines: Vec<&str> = r.streams[0].entries.iter().map(|e| e.line.as_str()).collect();
    let mut expected: Vec<&str> = refs.iter().map(|(_, l)| *l).collect();
    expected.extend(["new", "newer"]);
    assert_eq!(lines, expected);
}

#[tokio::test]
async fn select_applies_direction_limit_filters_and_tenants() {
    let (ing, _) = ingester(IngesterConfig::default());
    let entries: Vec<(i64, String)> = (0..50)
        .map(|i| (i, format!("line {i} {}", if i % 2 == 0 { "even" } else { "odd" })))
        .collect();
    let refs: Vec<(i64, &str)> = entries.iter().map(|(t, l)| (*t, l.as_str())).collect();
    ing.push("t", vec![batch(r#"{app="a", env="prod"}"#, &refs)])
        .await
        .unwrap();
    ing.push("other", vec![batch(r#"{app="a"}"#, &[(1, "secret")])])
        .await
        .unwrap();
    let r = ing
        .select_logs("t", &select(r#"{app="a"} |= "even""#, Direction::Backward, 3))
        .await
        .unwrap();
    assert_eq!(r.streams.len(), 1);
    let ts: Vec<i64> = r.streams[0].entries.iter().map(|e| e.ts).collect();
    assert_eq!(ts, [48, 46, 44]);
    assert_eq!(r.streams[0].labels, r#"{app="a", env="prod"}"#);
    let r = ing
        .select_logs("t", &select(r#"{app="a"} |= "secret""#, Direction::Forward, 10))
        .await
        .unwrap();
    assert!(r.streams.is_empty(), "tenants are separate");
    let names = ing
        .label_names(
            "t",
            &lode_model::api::LabelRequest {
                start: 0,
                end: 100,
                query: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(names, ["app", "env"]);
}

#[tokio::test]
async fn chunks_cut_at_target_size_and_flush_to_store_with_index() {
    let cfg = IngesterConfig {
        chunk_block_size: ByteSize(4096),
        chunk_target_size: ByteSize(2048),
        ..IngesterConfig::default()
    };
    let (ing, store) = ingester(cfg);
    let mut x: u64 = 7;
    let lines: Vec<(i64, String)> = (0..2000)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (i, format!("level=info msg=\"request {x:x}\" n={i}"))
        })
        .collect();
    let refs: Vec<(i64, &str)> = lines.iter().map(|(t, l)| (*t, l.as_str())).collect();
    ing.push("t", vec![batch(r#"{app="a"}"#, &refs)]).await.unwrap();
    let before = ing
        .select_logs("t", &select(r#"{app="a"}"#, Direction::Forward, 5000))
        .await
        .unwrap();
    assert_eq!(before.streams[0].entries.len(), 2000);
    ing.flush_all().await.unwrap();
    let chunks = store.list("chunks/t/").await.unwrap();
    assert!(chunks.len() > 1, "cut at target size: {chunks:?}");
    let index = store.list("index/t/").await.unwrap();
    assert_eq!(index.len(), 1);
    let obj = lode_index::IndexObject::decode(&store.get(&index[0]).await.unwrap()).unwrap();
    assert_eq!(obj.num_chunks(), chunks.len());
    // Flushed data has left memory.
    let after = ing
        .select_logs("t", &select(r#"{app="a"}"#, Direction::Forward, 5000))
        .await
        .unwrap();
    assert!(after.streams.is_empty());
}

#[tokio::test(start_paused = true)]
async fn idle_chunks_flush_in_the_background() {
    let cfg = IngesterConfig {
        chunk_idle_period: lode_model::time::ConfigDuration::secs(60),
        flush_check_period: lode_model::time::ConfigDuration::secs(10),
        ..IngesterConfig::default()
    };
    let (ing, store) = ingester(cfg);
    ing.push("t", vec![batch(r#"{app="a"}"#, &[(1, "x")])]).await.unwrap();
    let (tx, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(ing.clone().run_flush_loop(rx));
    tokio::time::sleep(std::time::Duration::from_secs(30)).await;
    assert!(store.list("chunks/").await.unwrap().is_empty(), "not idle yet");
    tokio::time::sleep(std::time::Duration::from_secs(45)).await;
    assert_eq!(store.list("chunks/").await.unwrap().len(), 1);
    tx.send(true).unwrap();
    task.await.unwrap();
}

#[tokio::test]
async fn an_entry_too_large_for_a_block_costs_only_itself() {
    let (ing, _) = ingester(IngesterConfig::default());
    let huge = "x".repeat(17 << 20);
    let err = ing
        .push(
            "t",
            vec![
                batch(r#"{app="a"}"#, &[(1, "before")]),
                batch(r#"{app="b"}"#, &[(1, huge.as_str()), (2, "small")]),
                batch(r#"{app="c"}"#, &[(1, "after")]),
            ],
        )
        .await
        .unwrap_err();
    assert!(
        err.message.contains("ignored, reason: '") && err.message.contains("total ignored: 1 out of 2"),
        "{}",
        err.message
    );
    let r = ing
        .select_logs("t", &select(r#"{app=~"a|b|c"}"#, Direction::Forward, 100))
        .await
        .unwrap();
    let mut lines: Vec<&str> = r
        .streams
        .iter()
        .flat_map(|s| s.entries.iter().map(|e| e.line.as_str()))
        .collect();
    lines.sort();
    assert_eq!(lines, ["after", "before", "small"]);
}

#[tokio::test(start_paused = true)]
async fn an_idle_stream_removed_from_memory_comes_back_on_the_next_push() {
    let cfg = IngesterConfig {
        chunk_idle_period: lode_model::time::ConfigDuration::secs(60),
        ..IngesterConfig::default()
    };
    let (ing, _) = ingester(cfg);
    ing.push("t", vec![batch(r#"{app="a"}"#, &[(1, "one")])]).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(120)).await;
    ing.flush(false).await.unwrap();
    ing.flush(false).await.unwrap();
    let inst = ing.existing_instance("t").unwrap();
    assert_eq!(inst.num_streams(), 0, "flushed and idle: removed from memory");
    ing.push("t", vec![batch(r#"{app="a"}"#, &[(2, "two")])]).await.unwrap();
    let r = ing
        .select_logs("t", &select(r#"{app="a"}"#, Direction::Forward, 100))
        .await
        .unwrap();
    assert_eq!(r.streams[0].entries[0].line, "two");
}

fn limited(limits: LimitsConfig) -> Arc<Ingester> {
    let reg = Registry::new();
    Ingester::new(
        "ing-1",
        IngesterConfig::default(),
        limits,
        ObjectStorage::in_memory(),
        &reg,
        Discards::new(&reg),
    )
}

#[tokio::test]
async fn the_stream_limit_refuses_new_streams_with_a_429_and_keeps_the_rest() {
    let ing = limited(LimitsConfig {
        max_global_streams_per_user: 2,
        ..LimitsConfig::default()
    });
    ing.push(
        "t",
        vec![batch(r#"{app="a"}"#, &[(1, "a")]), batch(r#"{app="b"}"#, &[(1, "b")])],
    )
    .await
    .unwrap();
    let e = ing
        .push(
            "t",
            vec![batch(r#"{app="c"}"#, &[(2, "c")]), batch(r#"{app="a"}"#, &[(2, "a2")])],
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::TooManyRequests);
    assert_eq!(
        e.message,
        "maximum active stream limit exceeded when trying to create stream {app=\"c\"}, reduce the number of active streams (reduce labels or reduce label values), or contact your Loki administrator to see if the limit can be increased, user: 't'"
    );
    let r = ing
        .select_logs("t", &select(r#"{app=~".+"}"#, Direction::Forward, 100))
        .await
        .unwrap();
    let lines: Vec<&str> = r
        .streams
        .iter()
        .flat_map(|s| s.entries.iter().map(|e| e.line.as_str()))
        .collect();
    assert_eq!(lines, ["a", "a2", "b"], "existing streams still take lines");
    // Other tenants have their own count.
    ing.push("u", vec![batch(r#"{app="c"}"#, &[(2, "c")])]).await.unwrap();
}

#[tokio::test]
async fn the_per_stream_rate_limit_refuses_what_exceeds_the_burst() {
    let ing = limited(LimitsConfig {
        per_stream_rate_limit: ByteSize(1024),
        per_stream_rate_limit_burst: ByteSize(2048),
        ..LimitsConfig::default()
    });
    let line = "x".repeat(900);
    let e = ing
        .push(
            "t",
            vec![
                batch(r#"{app="a"}"#, &[(1, &line), (2, &line), (3, &line)]),
                batch(r#"{app="b"}"#, &[(1, &line)]),
            ],
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::TooManyRequests);
    assert!(
        e.message.starts_with(
            "entry with timestamp 1970-01-01 00:00:00.000000003 +0000 UTC ignored, reason: 'Per stream rate limit exceeded (limit: 1KB/sec) while attempting to ingest for stream '{app=\"a\"}' totaling 900B, consider splitting a stream via additional labels or contact your Loki administrator to see if the limit can be increased',"
        ),
        "{}",
        e.message
    );
    let r = ing
        .select_logs("t", &select(r#"{app=~".+"}"#, Direction::Forward, 100))
        .await
        .unwrap();
    let counts: Vec<usize> = r.streams.iter().map(|s| s.entries.len()).collect();
    assert_eq!(counts, [2, 1], "each stream has its own bucket");
}

#[tokio::test]
async fn past_the_memory_budget_pushes_get_429_until_an_early_flush_frees_memory() {
    let cfg = IngesterConfig {
        memory_budget: ByteSize(256 << 10),
        ..IngesterConfig::default()
    };
    let (ing, store) = ingester(cfg);
    let line = "y".repeat(1000);
    let many: Vec<(i64, &str)> = (0..300).map(|i| (i, line.as_str())).collect();
    // Nothing is held yet, so this 300 KB push is taken and passes the budget.
    ing.push("t", vec![batch(r#"{app="a"}"#, &many)]).await.unwrap();
    let e = ing
        .push("t", vec![batch(r#"{app="b"}"#, &[(1, "small")])])
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::TooManyRequests);
    assert!(
        e.message.starts_with("ingester memory budget exceeded: "),
        "{}",
        e.message
    );
    // Not due by age or size, but the flusher cuts the largest head because of the budget.
    ing.flush(false).await.unwrap();
    assert!(
        !store.list("chunks/").await.unwrap().is_empty(),
        "the head was flushed early"
    );
    ing.push("t", vec![batch(r#"{app="b"}"#, &[(1, "small")])])
        .await
        .unwrap();
    let r = ing
        .select_logs("t", &select(r#"{app=~".+"}"#, Direction::Forward, 1000))
        .await
        .unwrap();
    let n: usize = r.streams.iter().map(|s| s.entries.len()).sum();
    assert_eq!(n, 1, "the flushed lines left memory; only the new one is here");
}

#[tokio::test]
async fn tail_subscribers_get_accepted_entries_and_hear_about_dropped_ones() {
    use lode_model::api::TailSource;
    let (ing, _) = ingester(IngesterConfig::default());
    let mut rx = ing.subscribe("t", r#"{app="a"} |= "keep""#).await.unwrap();
    let mut other = ing.subscribe("u", r#"{app="a"}"#).await.unwrap();
    ing.push("t", vec![batch(r#"{app="a"}"#, &[(1, "keep 1"), (2, "drop 2")])])
        .await
        .unwrap();
    // Out of order: refused, so never tailed.
    let _ = ing.push("t", vec![batch(r#"{app="a"}"#, &[(0, "keep old")])]).await;
    ing.push("t", vec![batch(r#"{app="b"}"#, &[(3, "keep b")])])
        .await
        .unwrap();
    let b = rx.recv().await.unwrap();
    assert_eq!(b.streams.len(), 1);
    assert_eq!(b.streams[0].labels, r#"{app="a"}"#);
    let lines: Vec<&str> = b.streams[0].entries.iter().map(|e| e.line.as_str()).collect();
    assert_eq!(lines, ["keep 1"]);
    assert!(rx.try_recv().is_err(), "nothing else matched");
    assert!(other.try_recv().is_err(), "another tenant's tail sees nothing");

    // A subscriber that does not read: after its queue fills, entries are dropped and named
    // in the next batch it gets.
    for i in 0..70 {
        ing.push("t", vec![batch(r#"{app="a"}"#, &[(10 + i, "keep")])])
            .await
            .unwrap();
    }
    let mut got = 0;
    while let Ok(b) = rx.try_recv() {
        assert!(b.dropped.is_empty());
        got += b.streams.iter().map(|s| s.entries.len()).sum::<usize>();
    }
    assert_eq!(got, 64);
    ing.push("t", vec![batch(r#"{app="a"}"#, &[(100, "keep last")])])
        .await
        .unwrap();
    let b = rx.recv().await.unwrap();
    assert_eq!(b.dropped.len(), 6);
    assert_eq!(b.dropped[0].labels, r#"{app="a"}"#);
    assert_eq!(b.dropped[0].ts, 74);
    assert_eq!(b.streams[0].entries[0].line, "keep last");
    // A closed subscriber is forgotten on the next push.
    drop(rx);
    drop(other);
    ing.push("t", vec![batch(r#"{app="a"}"#, &[(101, "keep")])])
        .await
        .unwrap();
    assert!(!ing.tailers.any("t"));
}

#[tokio::test]
async fn stream_summaries_describe_memory_per_tenant_selector_and_range() {
    use lode_model::api::StreamsRequest;
    let (ing, _) = ingester(IngesterConfig::default());
    ing.push("t", vec![batch(r#"{app="a"}"#, &[(10, "one"), (20, "two")])])
        .await
        .unwrap();
    ing.push("t", vec![batch(r#"{app="b"}"#, &[(100, "three")])])
        .await
        .unwrap();
    ing.push("u", vec![batch(r#"{app="a"}"#, &[(10, "other tenant")])])
        .await
        .unwrap();
    let req = |selector: Option<&str>, start: i64, end: i64| StreamsRequest {
        start,
        end,
        selector: selector.map(str::to_string),
    };
    let mut all = ing.stream_summaries("t", &req(None, 0, 1000)).await.unwrap();
    all.sort_by(|a, b| a.labels.cmp(&b.labels));
    assert_eq!(all.len(), 2);
    let head = all[0].chunks[0];
    assert_eq!(
        (head.from, head.through, head.entries, head.checksum),
        (10, 20, 2, None)
    );
    assert_eq!(head.bytes, 6, "uncompressed line bytes of the open head");
    let a = ing
        .stream_summaries("t", &req(Some(r#"{app="a"}"#), 0, 1000))
        .await
        .unwrap();
    assert_eq!(a.len(), 1);
    assert!(ing.stream_summaries("t", &req(None, 21, 100)).await.unwrap().is_empty());
    assert!(
        ing.stream_summaries("nobody", &req(None, 0, 1000))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        ing.stream_summaries("t", &req(Some("{app"), 0, 1000))
            .await
            .unwrap_err()
            .code,
        ErrorCode::BadRequest
    );
    ing.flush_all().await.unwrap();
    assert!(
        ing.stream_summaries("t", &req(None, 0, 1000)).await.unwrap().is_empty(),
        "flushed chunks are the store's to report"
    );
}
