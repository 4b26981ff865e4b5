//! Every bad input gets a clear 4xx and costs no valid line; tenants stay apart; a bad config
//! is refused naming the key. The real `lode` binary on loopback.
// Test helpers outside `#[test]` functions may unwrap too: a failure is a test failure.
#![allow(clippy::unwrap_used, clippy::type_complexity)]

use lode_testkit::bodies::{snappy, v1, wire};
use lode_testkit::{DataDir, LodeProcess, now_ns, streams};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_lode");
const JSON: (&str, &str) = ("content-type", "application/json");

/// Every bad input gets a 4xx naming the problem, and valid streams in the same request are kept.
#[tokio::test]
async fn bad_input_is_a_clear_4xx_and_valid_streams_survive() {
    let data = DataDir::new().unwrap();
    let p = LodeProcess::start(BIN, &data, &[]).await.unwrap();
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
    let got = p.streams_around(r#"{job="good"}"#, "forward", t0).await;
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
