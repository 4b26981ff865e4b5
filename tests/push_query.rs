//! End-to-end tests of the single binary: the real `lode` process on loopback with a temp data
//! directory. Every push format in, `query_range` out, before and after `/flush` and a restart;
//! ordered-write refusals; a corrupted chunk; labels; operations. Bad input, tenants and config
//! errors are in `bad_input.rs`.
// Test helpers outside `#[test]` functions may unwrap too: a failure is a test failure.
#![allow(clippy::unwrap_used, clippy::type_complexity)]

use lode_testkit::bodies::{deflate_raw, gzip, rfc3339_nanos, snappy, v1, wire};
use lode_testkit::{DataDir, LodeProcess, entries, now_ns, streams};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_lode");

async fn start(data: &DataDir) -> LodeProcess {
    LodeProcess::start(BIN, data, &[]).await.unwrap()
}

const JSON: (&str, &str) = ("content-type", "application/json");

/// Pushes one stream in each format and checks what every query returns.
async fn push_all_formats(p: &LodeProcess, t0: i64) {
    let ts = |d: i64| (t0 + d).to_string();
    let ok = |r: (u16, String)| assert_eq!(r.0, 204, "{}", r.1);
    ok(p.post(
        "/loki/api/v1/push",
        &[JSON],
        v1(
            json!({"job": "json", "env": "prod"}),
            json!([[ts(0), "j0"], [ts(1), "j1", {"trace_id": "abc"}]]),
        ),
    )
    .await
    .unwrap());
    ok(p.post(
        "/loki/api/v1/push",
        &[JSON, ("content-encoding", "gzip")],
        gzip(&v1(json!({"job": "gzip"}), json!([[ts(0), "g0"], [ts(5), "g5"]]))),
    )
    .await
    .unwrap());
    ok(p.post(
        "/loki/api/v1/push",
        &[
            ("content-type", "application/json; charset=utf-8"),
            ("content-encoding", "deflate"),
        ],
        deflate_raw(&v1(json!({"job": "deflate"}), json!([[ts(2), "d2"]]))),
    )
    .await
    .unwrap());
    let pb = wire::push_request(&[(
        r#"{job="proto", level="info"}"#,
        vec![(t0, "p0", vec![]), (t0 + 7, "p7", vec![("user", "u1")])],
    )]);
    ok(p.post(
        "/loki/api/v1/push",
        &[("content-type", "application/x-protobuf")],
        snappy(&pb),
    )
    .await
    .unwrap());
    // Vector sends `Content-Encoding: snappy` with snappy protobuf: a no-op.
    let pb2 = wire::push_request(&[(r#"{job="proto", level="info"}"#, vec![(t0 + 9, "p9", vec![])])]);
    ok(p.post(
        "/loki/api/v1/push",
        &[
            ("content-type", "application/x-protobuf"),
            ("content-encoding", "snappy"),
        ],
        snappy(&pb2),
    )
    .await
    .unwrap());
    let rfc = rfc3339_nanos(t0 + 3);
    let legacy = json!({"streams": [{"labels": "{job=\"legacy\"}", "entries": [{"ts": rfc, "line": "l3"}]}]});
    ok(p.post("/api/prom/push", &[JSON], serde_json::to_vec(&legacy).unwrap())
        .await
        .unwrap());
}

async fn check_all_formats(p: &LodeProcess, t0: i64) {
    // Structured metadata joins the stream labels without the categorize flag, as in Loki.
    let mut want = vec![
        (json!({"job": "json", "env": "prod"}), entries(t0, &[(0, "j0")])),
        (
            json!({"job": "json", "env": "prod", "trace_id": "abc"}),
            entries(t0, &[(1, "j1")]),
        ),
    ];
    want.sort_by_key(|(s, _)| s.to_string());
    assert_eq!(p.streams_around(r#"{job="json"}"#, "forward", t0).await, want);
    assert_eq!(
        p.streams_around(r#"{job="gzip"}"#, "backward", t0).await,
        vec![(json!({"job": "gzip"}), entries(t0, &[(5, "g5"), (0, "g0")]))]
    );
    assert_eq!(
        p.streams_around(r#"{job="deflate"}"#, "forward", t0).await,
        vec![(json!({"job": "deflate"}), entries(t0, &[(2, "d2")]))]
    );
    assert_eq!(
        p.streams_around(r#"{job="proto"} != "p7""#, "backward", t0).await,
        vec![(
            json!({"job": "proto", "level": "info"}),
            entries(t0, &[(9, "p9"), (0, "p0")])
        )]
    );
    assert_eq!(
        p.streams_around(r#"{level="info"} |= "p7""#, "forward", t0).await,
        vec![(
            json!({"job": "proto", "level": "info", "user": "u1"}),
            entries(t0, &[(7, "p7")])
        )]
    );
    assert_eq!(
        p.streams_around(r#"{job="legacy"}"#, "forward", t0).await,
        vec![(json!({"job": "legacy"}), entries(t0, &[(3, "l3")]))]
    );
    // Regex selectors are anchored; a limit applies across streams, newest first.
    let all = p.streams_around(r#"{job=~"json|gzip|proto"}"#, "backward", t0).await;
    assert_eq!(all.iter().map(|(_, e)| e.len()).sum::<usize>(), 7);
    let v = p
        .query_range(&[
            ("query", r#"{job=~".+"}"#),
            ("limit", "2"),
            ("start", &(t0 - 1).to_string()),
            ("end", &(t0 + 100).to_string()),
        ])
        .await
        .unwrap();
    let got: Vec<String> = streams(&v)
        .into_iter()
        .flat_map(|(_, e)| e.into_iter().map(|(t, _)| t))
        .collect();
    let mut got = got;
    got.sort();
    assert_eq!(got, [(t0 + 7).to_string(), (t0 + 9).to_string()]);
}

#[tokio::test]
async fn every_push_format_reads_back_exactly_before_and_after_flush_and_restart() {
    let data = DataDir::new().unwrap();
    let t0 = now_ns() - 5_000_000_000;
    let p = start(&data).await;
    push_all_formats(&p, t0).await;
    check_all_formats(&p, t0).await;
    // Flushed: now read from chunks through the index.
    assert_eq!(p.post("/flush", &[], vec![]).await.unwrap().0, 204);
    assert!(
        std::fs::read_dir(p.store_dir().join("chunks/fake")).unwrap().count() >= 5,
        "one directory per stream"
    );
    check_all_formats(&p, t0).await;
    p.stop().unwrap();
    let p = start(&data).await;
    check_all_formats(&p, t0).await;
    p.stop().unwrap();
}

#[tokio::test]
async fn graceful_stop_flushes_unflushed_lines() {
    let data = DataDir::new().unwrap();
    let t0 = now_ns() - 5_000_000_000;
    let p = start(&data).await;
    push_all_formats(&p, t0).await;
    p.stop().unwrap();
    let p = start(&data).await;
    check_all_formats(&p, t0).await;
}

#[tokio::test]
async fn fixed_protobuf_bytes_decode() {
    // logproto.PushRequest{streams: [{labels: `{job="fixed"}`, entries: [{timestamp:
    // 1700000000s + 1ns, line: "hi", structuredMetadata: [trace_id=t1]}]}]}, snappy block
    // format with one literal, all written out byte by byte.
    const BODY: [u8; 51] = [
        0x31, 0xc0, 0x0a, 0x2f, 0x0a, 0x0d, 0x7b, 0x6a, 0x6f, 0x62, 0x3d, 0x22, 0x66, 0x69, 0x78, 0x65, 0x64, 0x22,
        0x7d, 0x12, 0x1e, 0x0a, 0x08, 0x08, 0x80, 0xe2, 0xcf, 0xaa, 0x06, 0x10, 0x01, 0x12, 0x02, 0x68, 0x69, 0x1a,
        0x0e, 0x0a, 0x08, 0x74, 0x72, 0x61, 0x63, 0x65, 0x5f, 0x69, 0x64, 0x12, 0x02, 0x74, 0x31,
    ];
    let data = DataDir::new().unwrap();
    let cfg = data.path().join("lode.yaml");
    std::fs::write(&cfg, "limits_config:\n  reject_old_samples: false\n").unwrap();
    let p = LodeProcess::start(BIN, &data, &[&format!("-config.file={}", cfg.display())])
        .await
        .unwrap();
    let r = p
        .post(
            "/loki/api/v1/push",
            &[("content-type", "application/x-protobuf")],
            BODY.to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(r.0, 204, "{}", r.1);
    let v = p
        .query_range(&[
            ("query", r#"{job="fixed"}"#),
            ("start", "1699999999"),
            ("end", "1700000001"),
        ])
        .await
        .unwrap();
    assert_eq!(
        v["data"]["result"],
        json!([{"stream": {"job": "fixed", "trace_id": "t1"}, "values": [["1700000000000000001", "hi"]]}])
    );
    let (_, body) = p
        .get(
            "/loki/api/v1/query_range",
            &[
                ("query", r#"{job="fixed"}"#),
                ("start", "1699999999"),
                ("end", "1700000001"),
            ],
            &[("X-Loki-Response-Encoding-Flags", "categorize-labels")],
        )
        .await
        .unwrap();
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["data"]["result"],
        json!([{"stream": {"job": "fixed"}, "values": [["1700000000000000001", "hi", {"structuredMetadata": {"trace_id": "t1"}}]]}])
    );
}

#[tokio::test]
async fn out_of_order_lines_are_refused_and_the_rest_kept() {
    let data = DataDir::new().unwrap();
    let p = start(&data).await;
    let t0 = now_ns() - 10_000_000_000;
    let ts = |d: i64| (t0 + d).to_string();
    let r = p
        .post(
            "/loki/api/v1/push",
            &[JSON],
            v1(json!({"app": "a"}), json!([[ts(10), "ten"], [ts(20), "twenty"]])),
        )
        .await
        .unwrap();
    assert_eq!(r.0, 204);
    let body = v1(
        json!({"app": "a"}),
        json!([
            [ts(15), "late"],
            [ts(20), "twenty"],
            [ts(20), "twenty again"],
            [ts(30), "thirty"]
        ]),
    );
    let (status, msg) = p.post("/loki/api/v1/push", &[JSON], body).await.unwrap();
    assert_eq!(status, 400);
    assert!(msg.starts_with("entry with timestamp "), "{msg}");
    assert!(
        msg.contains(
            "ignored, reason: 'entry out of order',\nuser 'fake', total ignored: 1 out of 4 for stream: {app=\"a\"}"
        ),
        "{msg}"
    );
    assert_eq!(
        p.streams_around(r#"{app="a"}"#, "forward", t0).await,
        vec![(
            json!({"app": "a"}),
            entries(t0, &[(10, "ten"), (20, "twenty"), (20, "twenty again"), (30, "thirty")])
        )]
    );
}

#[tokio::test]
async fn a_corrupted_chunk_is_detected_and_reported() {
    let data = DataDir::new().unwrap();
    let t0 = now_ns() - 10_000_000_000;
    let p = start(&data).await;
    let lines: Vec<Value> = (0..100)
        .map(|i| json!([(t0 + i).to_string(), format!("line {i}")]))
        .collect();
    assert_eq!(
        p.post("/loki/api/v1/push", &[JSON], v1(json!({"app": "c"}), json!(lines)))
            .await
            .unwrap()
            .0,
        204
    );
    assert_eq!(p.post("/flush", &[], vec![]).await.unwrap().0, 204);
    let dir = p.store_dir().join("chunks/fake");
    let stream_dir = std::fs::read_dir(&dir).unwrap().next().unwrap().unwrap().path();
    let chunk = std::fs::read_dir(&stream_dir).unwrap().next().unwrap().unwrap().path();
    let mut bytes = std::fs::read(&chunk).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&chunk, bytes).unwrap();
    let (s, text) = p
        .get(
            "/loki/api/v1/query_range",
            &[
                ("query", r#"{app="c"}"#),
                ("start", &(t0 - 1).to_string()),
                ("end", &(t0 + 200).to_string()),
            ],
            &[],
        )
        .await
        .unwrap();
    let name = chunk.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(s, 500, "{text}");
    assert!(
        text.contains("is corrupt: checksum mismatch") && text.contains(&name),
        "{text}"
    );
}

#[tokio::test]
async fn labels_values_and_operations() {
    let data = DataDir::new().unwrap();
    let p = start(&data).await;
    let t0 = now_ns() - 10_000_000_000;
    for (app, env) in [("a", "prod"), ("b", "dev")] {
        let r = p
            .post(
                "/loki/api/v1/push",
                &[JSON],
                v1(json!({"app": app, "env": env}), json!([[t0.to_string(), "x"]])),
            )
            .await
            .unwrap();
        assert_eq!(r.0, 204);
    }
    let range = [("start", (t0 - 1_000).to_string()), ("end", (t0 + 1_000).to_string())];
    let range: Vec<(&str, &str)> = range.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let get_json = |path: &'static str, extra: Vec<(&'static str, &'static str)>| {
        let mut params = range.clone();
        params.extend(extra);
        let p = &p;
        async move {
            let (s, body) = p.get(path, &params, &[]).await.unwrap();
            assert_eq!(s, 200, "{body}");
            serde_json::from_str::<Value>(&body).unwrap()
        }
    };
    assert_eq!(
        get_json("/loki/api/v1/labels", vec![]).await,
        json!({"status": "success", "data": ["app", "env"]})
    );
    assert_eq!(
        get_json("/loki/api/v1/label/app/values", vec![]).await,
        json!({"status": "success", "data": ["a", "b"]})
    );
    assert_eq!(
        get_json("/loki/api/v1/label/app/values", vec![("query", "{env=\"dev\"}")]).await["data"],
        json!(["b"])
    );
    assert_eq!(p.post("/flush", &[], vec![]).await.unwrap().0, 204);
    assert_eq!(
        get_json("/loki/api/v1/label/env/values", vec![]).await["data"],
        json!(["dev", "prod"])
    );
    assert_eq!(
        get_json("/loki/api/v1/label/nope/values", vec![]).await["data"],
        json!([])
    );
    // Outside the data's time range: nothing from memory, nothing from the index (it selects
    // only chunks overlapping the range), and still `"data":[]`.
    let (s, body) = p
        .get("/loki/api/v1/labels", &[("start", "1000"), ("end", "2000")], &[])
        .await
        .unwrap();
    assert_eq!((s, body.as_str()), (200, r#"{"data":[],"status":"success"}"#));

    let (s, body) = p.get("/ready", &[], &[]).await.unwrap();
    assert_eq!((s, body.trim()), (200, "ready"));
    let (s, metrics) = p.get("/metrics", &[], &[]).await.unwrap();
    assert_eq!(s, 200);
    for name in [
        "loki_distributor_lines_received_total",
        "loki_distributor_bytes_received_total",
        "loki_ingester_chunks_flushed_total",
        "loki_ingester_memory_streams",
        "loki_ingester_flush_duration_seconds",
        "lode_object_store_requests_total",
    ] {
        assert!(metrics.contains(name), "missing {name}");
    }
    let (s, _) = p.get("/no/such/path", &[], &[]).await.unwrap();
    assert_eq!(s, 404);
    let (s, body) = p.get("/loki/api/v1/status/buildinfo", &[], &[]).await.unwrap();
    assert_eq!(s, 200);
    assert!(
        serde_json::from_str::<Value>(&body).unwrap()["version"]
            .as_str()
            .unwrap()
            .starts_with("3.")
    );
}
