//! End-to-end tests of the single binary: the real `lode` process on loopback with a temp data
//! directory. Every push format in, `query_range` out, before and after `/flush` and a restart;
//! ordered-write refusals; every bad input class; a corrupted chunk; labels; operations.
// Test helpers outside `#[test]` functions may unwrap too: a failure is a test failure.
#![allow(clippy::unwrap_used, clippy::type_complexity)]

use std::io::Write;

use lode_testkit::{DataDir, LodeProcess, streams};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_lode");

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

async fn start(data: &DataDir) -> LodeProcess {
    LodeProcess::start(BIN, data, &[]).await.unwrap()
}

const JSON: (&str, &str) = ("content-type", "application/json");

/// A protobuf `logproto.PushRequest`, encoded here by hand on the wire format so the test does
/// not depend on our own encoder.
mod wire {
    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }
    fn bytes(field: u64, data: &[u8], out: &mut Vec<u8>) {
        varint((field << 3) | 2, out);
        varint(data.len() as u64, out);
        out.extend_from_slice(data);
    }
    fn uint(field: u64, v: u64, out: &mut Vec<u8>) {
        varint(field << 3, out);
        varint(v, out);
    }
    /// Streams of `(labels, [(ts_ns, line, [(sm name, sm value)])])`.
    pub fn push_request(streams: &[(&str, Vec<(i64, &str, Vec<(&str, &str)>)>)]) -> Vec<u8> {
        let mut req = Vec::new();
        for (labels, entries) in streams {
            let mut s = Vec::new();
            bytes(1, labels.as_bytes(), &mut s);
            for (ts, line, sm) in entries {
                let mut e = Vec::new();
                let mut t = Vec::new();
                uint(1, (*ts / 1_000_000_000) as u64, &mut t);
                uint(2, (*ts % 1_000_000_000) as u64, &mut t);
                bytes(1, &t, &mut e);
                bytes(2, line.as_bytes(), &mut e);
                for (n, v) in sm {
                    let mut p = Vec::new();
                    bytes(1, n.as_bytes(), &mut p);
                    bytes(2, v.as_bytes(), &mut p);
                    bytes(3, &p, &mut e);
                }
                bytes(2, &e, &mut s);
            }
            bytes(1, &s, &mut req);
        }
        req
    }
}

fn snappy(data: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new().compress_vec(data).unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn deflate_raw(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn v1(labels: Value, values: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({"streams": [{"stream": labels, "values": values}]})).unwrap()
}

async fn query(p: &LodeProcess, q: &str, dir: &str, t0: i64) -> Vec<(Value, Vec<(String, String)>)> {
    let start = (t0 - 1_000_000_000).to_string();
    let end = (t0 + 60_000_000_000).to_string();
    let v = p
        .query_range(&[
            ("query", q),
            ("direction", dir),
            ("start", &start),
            ("end", &end),
            ("limit", "1000"),
        ])
        .await
        .unwrap();
    assert_eq!(v["status"], "success");
    assert_eq!(v["data"]["resultType"], "streams");
    assert!(v["data"]["stats"]["summary"]["totalBytesProcessed"].as_u64().is_some());
    streams(&v)
}

fn entries(t0: i64, lines: &[(i64, &str)]) -> Vec<(String, String)> {
    lines
        .iter()
        .map(|(dt, l)| ((t0 + dt).to_string(), l.to_string()))
        .collect()
}

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
    let rfc = chrono_like_rfc3339(t0 + 3);
    let legacy = json!({"streams": [{"labels": "{job=\"legacy\"}", "entries": [{"ts": rfc, "line": "l3"}]}]});
    ok(p.post("/api/prom/push", &[JSON], serde_json::to_vec(&legacy).unwrap())
        .await
        .unwrap());
}

/// RFC3339Nano for a Unix-ns time, without a date library: days from the civil calendar.
fn chrono_like_rfc3339(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let nanos = ns.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
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
    assert_eq!(query(p, r#"{job="json"}"#, "forward", t0).await, want);
    assert_eq!(
        query(p, r#"{job="gzip"}"#, "backward", t0).await,
        vec![(json!({"job": "gzip"}), entries(t0, &[(5, "g5"), (0, "g0")]))]
    );
    assert_eq!(
        query(p, r#"{job="deflate"}"#, "forward", t0).await,
        vec![(json!({"job": "deflate"}), entries(t0, &[(2, "d2")]))]
    );
    assert_eq!(
        query(p, r#"{job="proto"} != "p7""#, "backward", t0).await,
        vec![(
            json!({"job": "proto", "level": "info"}),
            entries(t0, &[(9, "p9"), (0, "p0")])
        )]
    );
    assert_eq!(
        query(p, r#"{level="info"} |= "p7""#, "forward", t0).await,
        vec![(
            json!({"job": "proto", "level": "info", "user": "u1"}),
            entries(t0, &[(7, "p7")])
        )]
    );
    assert_eq!(
        query(p, r#"{job="legacy"}"#, "forward", t0).await,
        vec![(json!({"job": "legacy"}), entries(t0, &[(3, "l3")]))]
    );
    // Regex selectors are anchored; a limit applies across streams, newest first.
    let all = query(p, r#"{job=~"json|gzip|proto"}"#, "backward", t0).await;
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
        query(&p, r#"{app="a"}"#, "forward", t0).await,
        vec![(
            json!({"app": "a"}),
            entries(t0, &[(10, "ten"), (20, "twenty"), (20, "twenty again"), (30, "thirty")])
        )]
    );
}

/// Every bad input gets a 4xx naming the problem, and valid streams in the same request are kept.
#[tokio::test]
async fn bad_input_is_a_clear_4xx_and_valid_streams_survive() {
    let data = DataDir::new().unwrap();
    let p = start(&data).await;
    let t0 = now_ns() - 10_000_000_000;
    let ts = |d: i64| (t0 + d).to_string();
    let good = |n: i64| json!({"stream": {"job": "good"}, "values": [[ts(n), format!("good {n}")]]});
    let req = |bad: Value, n: i64| serde_json::to_vec(&json!({"streams": [good(n), bad]})).unwrap();
    let future = (now_ns() + 3_600_000_000_000).to_string();
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "invalid label name",
            req(json!({"stream": {"k8s.pod": "x"}, "values": [[ts(0), "x"]]}), 1),
            400,
            "error parsing labels '{k8s.pod=\"x\"}' with error:",
        ),
        (
            "empty label set",
            req(json!({"stream": {}, "values": [[ts(0), "x"]]}), 2),
            400,
            "error at least one label pair is required per stream",
        ),
        (
            "line too long",
            req(
                json!({"stream": {"job": "big"}, "values": [[ts(0), "x".repeat(300_000)]]}),
                3,
            ),
            400,
            "max entry size '262144' bytes exceeded for stream '{job=\"big\"}' while adding an entry with length '300000' bytes",
        ),
        (
            "too far in the future",
            req(
                json!({"stream": {"job": "future"}, "values": [[future.clone(), "x"]]}),
                4,
            ),
            400,
            "entry for stream '{job=\"future\"}' has timestamp too new: ",
        ),
    ];
    let mut expected_good = Vec::new();
    for (i, (name, body, status, msg)) in cases.into_iter().enumerate() {
        let (s, text) = p.post("/loki/api/v1/push", &[JSON], body).await.unwrap();
        assert_eq!(s, status, "{name}: {text}");
        assert!(text.contains(msg), "{name}: {text}");
        expected_good.push((i as i64 + 1, format!("good {}", i + 1)));
    }
    // Duplicate label names can only be sent as label text: protobuf.
    let pb = wire::push_request(&[
        (r#"{job="good"}"#, vec![(t0 + 5, "good 5", vec![])]),
        (r#"{a="1", a="2"}"#, vec![(t0, "dup", vec![])]),
    ]);
    let (s, text) = p
        .post(
            "/loki/api/v1/push",
            &[("content-type", "application/x-protobuf")],
            snappy(&pb),
        )
        .await
        .unwrap();
    assert_eq!(
        (s, text.trim()),
        (400, r#"stream '{a="1", a="2"}' has duplicate label name: 'a'"#)
    );
    expected_good.push((5, "good 5".to_string()));
    let got = query(&p, r#"{job="good"}"#, "forward", t0).await;
    let want: Vec<(String, String)> = expected_good
        .iter()
        .map(|(d, l)| ((t0 + d).to_string(), l.clone()))
        .collect();
    assert_eq!(
        got,
        vec![(json!({"job": "good"}), want)],
        "valid streams of every bad request were stored"
    );

    // Bodies that cannot be decoded at all.
    let body_cases: Vec<(&str, Vec<(&str, &str)>, Vec<u8>, u16, &str)> = vec![
        ("malformed json", vec![JSON], b"{\"streams\": [".to_vec(), 400, "EOF"),
        (
            "timestamp as a number",
            vec![JSON],
            br#"{"streams":[{"stream":{"a":"b"},"values":[[1,"x"]]}]}"#.to_vec(),
            400,
            "",
        ),
        (
            "bad snappy",
            vec![("content-type", "application/x-protobuf")],
            b"\xff\xff\xff\xff\x0fgarbage".to_vec(),
            400,
            "",
        ),
        (
            "malformed protobuf",
            vec![("content-type", "application/x-protobuf")],
            snappy(b"\x0a\xff\xff\xff"),
            400,
            "",
        ),
        (
            "bad gzip",
            vec![JSON, ("content-encoding", "gzip")],
            b"not gzip".to_vec(),
            400,
            "",
        ),
        (
            "unknown encoding",
            vec![JSON, ("content-encoding", "br")],
            b"{}".to_vec(),
            400,
            "Content-Encoding \"br\" not supported",
        ),
        ("no content type", vec![], b"{}".to_vec(), 400, "mime: no media type"),
        (
            "snappy length bomb",
            vec![("content-type", "application/x-protobuf")],
            vec![170, 201, 224, 206, 10],
            400,
            "declared length 2849514666 is impossible",
        ),
        (
            "zero streams",
            vec![JSON],
            br#"{"streams":[]}"#.to_vec(),
            422,
            "error at least one valid stream is required for ingestion",
        ),
    ];
    for (name, headers, body, status, msg) in body_cases {
        let (s, text) = p.post("/loki/api/v1/push", &headers, body).await.unwrap();
        assert_eq!(s, status, "{name}: {text}");
        assert!(text.contains(msg), "{name}: {text}");
        assert!(!text.trim().is_empty(), "{name}: the message says what was wrong");
    }
    // Query-side bad input.
    for (params, msg) in [
        (
            vec![("query", "{job=\"good\""), ("limit", "10")],
            "parse error at line 1, col",
        ),
        (vec![("query", "{job=\"good\"}"), ("start", "yesterday")], "yesterday"),
        (
            vec![("query", "{job=\"good\"}"), ("start", "20"), ("end", "10")],
            "end timestamp must not be before or equal to start time",
        ),
        (
            vec![("query", "{job=\"good\"}"), ("limit", "6000")],
            "max entries limit per query exceeded",
        ),
        (
            vec![("query", "{job=~\".*\"}")],
            "queries require at least one regexp or equality matcher that does not have an empty-compatible value",
        ),
    ] {
        let (s, text) = p.get("/loki/api/v1/query_range", &params, &[]).await.unwrap();
        assert_eq!(s, 400, "{params:?}: {text}");
        assert!(text.contains(msg), "{params:?}: {text}");
    }
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

#[tokio::test]
async fn tenants_are_separate_and_refusals_are_counted() {
    let data = DataDir::new().unwrap();
    let p = LodeProcess::start(BIN, &data, &["-auth.enabled=true"]).await.unwrap();
    let t0 = now_ns() - 10_000_000_000;
    let push = |tenant: &'static str, line: &'static str| {
        let body = v1(json!({"app": "shared"}), json!([[t0.to_string(), line]]));
        let p = &p;
        async move {
            p.post("/loki/api/v1/push", &[JSON, ("X-Scope-OrgID", tenant)], body)
                .await
                .unwrap()
        }
    };
    assert_eq!(push("team-a", "a's secret").await.0, 204);
    assert_eq!(push("team-b", "b's line").await.0, 204);
    let (s, body) = p
        .post(
            "/loki/api/v1/push",
            &[JSON],
            v1(json!({"app": "x"}), json!([[t0.to_string(), "x"]])),
        )
        .await
        .unwrap();
    assert_eq!((s, body.trim()), (401, "no org id"));
    let q = |tenant: &'static str| {
        let p = &p;
        let (start, end) = ((t0 - 1).to_string(), (t0 + 1).to_string());
        async move {
            let params = [
                ("query", r#"{app="shared"}"#),
                ("start", start.as_str()),
                ("end", end.as_str()),
            ];
            let (s, body) = p
                .get("/loki/api/v1/query_range", &params, &[("X-Scope-OrgID", tenant)])
                .await
                .unwrap();
            assert_eq!(s, 200, "{body}");
            streams(&serde_json::from_str(&body).unwrap())
        }
    };
    for round in ["memory", "store"] {
        assert_eq!(
            q("team-a").await,
            vec![(
                json!({"app": "shared"}),
                vec![(t0.to_string(), "a's secret".to_string())]
            )],
            "{round}"
        );
        assert_eq!(
            q("team-b").await,
            vec![(json!({"app": "shared"}), vec![(t0.to_string(), "b's line".to_string())])],
            "{round}"
        );
        assert!(q("team-c").await.is_empty(), "{round}");
        let (_, labels) = p
            .get("/loki/api/v1/labels", &[], &[("X-Scope-OrgID", "team-c")])
            .await
            .unwrap();
        assert_eq!(labels, r#"{"data":[],"status":"success"}"#, "{round}");
        assert_eq!(p.post("/flush", &[], vec![]).await.unwrap().0, 204);
    }
    // A refused line is counted by reason and tenant.
    let body = v1(json!({"app": "big"}), json!([[t0.to_string(), "x".repeat(300_000)]]));
    assert_eq!(
        p.post("/loki/api/v1/push", &[JSON, ("X-Scope-OrgID", "team-a")], body)
            .await
            .unwrap()
            .0,
        400
    );
    let (_, metrics) = p.get("/metrics", &[], &[]).await.unwrap();
    assert!(
        metrics.contains(r#"loki_discarded_samples_total{reason="line_too_long",tenant="team-a"} 1"#),
        "{metrics}"
    );
}

#[test]
fn a_bad_config_file_is_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.yaml");
    std::fs::write(&cfg, "ingester:\n  chunk_idle_perod: 30m\n").unwrap();
    let out = std::process::Command::new(BIN)
        .arg(format!("-config.file={}", cfg.display()))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown field `chunk_idle_perod`"), "{err}");
    let out = std::process::Command::new(BIN).arg("-no.such.flag=1").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown flag -no.such.flag"));
}
