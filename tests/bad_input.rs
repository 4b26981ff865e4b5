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

/// What a row expects of the message body.
enum Msg {
    Exact(String),
    /// Every part must appear, in order.
    Parts(Vec<String>),
}

/// One bad-input class in one format. `keeps_good`: the request also carries a valid stream
/// `{job="good"}` that must be stored; false where Loki refuses the whole request (undecodable
/// body, 401, 413, 422), so there is no valid remainder to check.
struct Row {
    class: &'static str,
    format: &'static str,
    path: &'static str,
    headers: Vec<(&'static str, &'static str)>,
    /// `None`: no `X-Scope-OrgID` at all; otherwise the tenant (the row's own by default).
    tenant: Option<String>,
    /// Pushed (and acknowledged) first, for classes that need earlier state.
    setup: Option<Vec<u8>>,
    body: Vec<u8>,
    status: u16,
    msg: Msg,
    keeps_good: bool,
    /// `loki_discarded_samples_total{reason}` expected for the row's tenant.
    discarded: Option<&'static str>,
    /// Another stream that must hold exactly this line afterwards.
    stored: Option<(&'static str, String)>,
}

const PB: (&str, &str) = ("content-type", "application/x-protobuf");

/// Every bad-input class of issue 5, for JSON and protobuf where it applies: status, message
/// (Loki's wording), the valid streams of the same request stored, and the discard counted.
/// Each row pushes as its own tenant so its stored lines and counters are its own.
#[tokio::test]
async fn every_bad_input_class_table() {
    let data = DataDir::new().unwrap();
    let cfg = data.path().join("limits.yaml");
    std::fs::write(
        &cfg,
        "server:\n  max_recv_msg_size: 1MB\n  max_decompressed_size: 1MB\n",
    )
    .unwrap();
    let cfg_flag = format!("-config.file={}", cfg.display());
    let p = LodeProcess::start(BIN, &data, &["-auth.enabled=true", &cfg_flag])
        .await
        .unwrap();
    let t0 = now_ns() - 10_000_000_000;
    let ts = |d: i64| (t0 + d).to_string();
    let good_line = |i: usize| format!("good {i}");
    // A JSON v1 body: the good stream of row `i`, then `bad`.
    let json_req = |i: usize, bad: Value| {
        serde_json::to_vec(&json!({"streams": [
            {"stream": {"job": "good"}, "values": [[ts(i as i64), good_line(i)]]}, bad]}))
        .unwrap()
    };
    // A snappy protobuf body: the good stream of row `i`, then `labels` with one line at `at`.
    let pb_req = |i: usize, labels: &str, at: i64, line: &str| {
        let good = good_line(i);
        snappy(&wire::push_request(&[
            (r#"{job="good"}"#, vec![(t0 + i as i64, good.as_str(), vec![])]),
            (labels, vec![(at, line, vec![])]),
        ]))
    };
    let sixteen: Vec<String> = (0..16).map(|k| format!("l{k:02}")).collect();
    let many_json: serde_json::Map<String, Value> = sixteen.iter().map(|n| (n.clone(), json!("v"))).collect();
    let many_text = format!(
        "{{{}}}",
        sixteen
            .iter()
            .map(|n| format!("{n}=\"v\""))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let long_name = "n".repeat(1025);
    let long_value = "v".repeat(2049);
    let old = t0 - 8 * 24 * 3_600_000_000_000;
    let future = t0 + 3_600_000_000_000;
    let big_line = "x".repeat(300_000);
    let row = |class, format, headers, body, status, msg, keeps_good, discarded| Row {
        class,
        format,
        path: "/loki/api/v1/push",
        headers,
        tenant: Some(String::new()),
        setup: None,
        body,
        status,
        msg,
        keeps_good,
        discarded,
        stored: None,
    };
    let exact = |s: &str| Msg::Exact(s.to_string());
    let parts = |p: &[&str]| Msg::Parts(p.iter().map(|s| s.to_string()).collect());
    let big_line_msg = "max entry size '262144' bytes exceeded for stream '{job=\"big\"}' while adding an entry with length '300000' bytes";
    let many_msg = format!("entry for stream '{many_text}' has 16 label names; limit 15");
    let name_msg = format!("stream '{{{long_name}=\"v\"}}' has label name too long: '{long_name}'");
    let value_msg = format!("stream '{{job=\"{long_value}\"}}' has label value too long: '{long_value}'");
    let i = |k: usize| k; // row numbers are positions in the table below
    let mut rows: Vec<Row> = vec![
        // Undecodable bodies: Loki refuses the whole request with the decoder's error text.
        row(
            "malformed JSON",
            "json",
            vec![JSON],
            b"{\"streams\": [".to_vec(),
            400,
            parts(&["EOF while parsing a list"]),
            false,
            None,
        ),
        row(
            "malformed protobuf",
            "protobuf",
            vec![PB],
            snappy(b"\x0a\xff\xff\xff"),
            400,
            parts(&["failed to decode Protobuf message"]),
            false,
            None,
        ),
        row(
            "bad snappy",
            "protobuf",
            vec![PB],
            b"\x05garbage".to_vec(),
            400,
            parts(&["snappy: corrupt input"]),
            false,
            None,
        ),
        row(
            "bad gzip",
            "json",
            vec![JSON, ("content-encoding", "gzip")],
            b"this body is not gzip at all".to_vec(),
            400,
            exact("gzip: invalid header"),
            false,
            None,
        ),
        // Any type but JSON is snappy protobuf in Loki, so JSON sent as text/plain is bad snappy.
        row(
            "wrong content type",
            "json",
            vec![("content-type", "text/plain")],
            json_req(i(4), json!(null)),
            400,
            parts(&["snappy: corrupt input"]),
            false,
            None,
        ),
        row(
            "wrong content type (none)",
            "json",
            vec![],
            json_req(i(5), json!(null)),
            400,
            exact("mime: no media type"),
            false,
            None,
        ),
        row(
            "wrong content encoding",
            "json",
            vec![JSON, ("content-encoding", "br")],
            json_req(i(6), json!(null)),
            400,
            exact("Content-Encoding \"br\" not supported"),
            false,
            None,
        ),
        row(
            "empty request",
            "json",
            vec![JSON],
            br#"{"streams":[]}"#.to_vec(),
            422,
            exact("error at least one valid stream is required for ingestion"),
            false,
            None,
        ),
        row(
            "empty request",
            "protobuf",
            vec![PB],
            snappy(b""),
            422,
            exact("error at least one valid stream is required for ingestion"),
            false,
            None,
        ),
        // Stream labels: the bad stream is refused, the good one stored (see the report for how
        // Loki differs on unparsable label text).
        row(
            "invalid label name",
            "json",
            vec![JSON],
            json_req(i(9), json!({"stream": {"k8s.pod": "x"}, "values": [[ts(0), "x"]]})),
            400,
            exact(
                "error parsing labels '{k8s.pod=\"x\"}' with error: 1:2: parse error: invalid label name \"k8s.pod\"",
            ),
            true,
            Some("invalid_labels"),
        ),
        row(
            "invalid label name",
            "protobuf",
            vec![PB],
            pb_req(i(10), r#"{k8s.pod="x"}"#, t0, "x"),
            400,
            parts(&["error parsing labels '{k8s.pod=\"x\"}' with error: "]),
            true,
            Some("invalid_labels"),
        ),
        row(
            "duplicate label names",
            "protobuf",
            vec![PB],
            pb_req(i(11), r#"{a="1", a="2"}"#, t0, "x"),
            400,
            exact(r#"stream '{a="1", a="2"}' has duplicate label name: 'a'"#),
            true,
            Some("duplicate_label_names"),
        ),
        row(
            "empty label set",
            "json",
            vec![JSON],
            json_req(i(12), json!({"stream": {}, "values": [[ts(0), "x"]]})),
            400,
            exact("error at least one label pair is required per stream"),
            true,
            Some("missing_labels"),
        ),
        row(
            "empty label set",
            "protobuf",
            vec![PB],
            pb_req(i(13), "{}", t0, "x"),
            400,
            exact("error at least one label pair is required per stream"),
            true,
            Some("missing_labels"),
        ),
        row(
            "unparsable selector string",
            "protobuf",
            vec![PB],
            pb_req(i(14), r#"{job="x""#, t0, "x"),
            400,
            parts(&["error parsing labels '{job=\"x\"' with error: "]),
            true,
            Some("invalid_labels"),
        ),
        row(
            "too many labels",
            "json",
            vec![JSON],
            json_req(i(15), json!({"stream": many_json, "values": [[ts(0), "x"]]})),
            400,
            exact(&many_msg),
            true,
            Some("max_label_names_per_series"),
        ),
        row(
            "too many labels",
            "protobuf",
            vec![PB],
            pb_req(i(16), &many_text, t0, "x"),
            400,
            exact(&many_msg),
            true,
            Some("max_label_names_per_series"),
        ),
        row(
            "label name too long",
            "json",
            vec![JSON],
            json_req(
                i(17),
                json!({"stream": {long_name.clone(): "v"}, "values": [[ts(0), "x"]]}),
            ),
            400,
            exact(&name_msg),
            true,
            Some("label_name_too_long"),
        ),
        row(
            "label name too long",
            "protobuf",
            vec![PB],
            pb_req(i(18), &format!("{{{long_name}=\"v\"}}"), t0, "x"),
            400,
            exact(&name_msg),
            true,
            Some("label_name_too_long"),
        ),
        row(
            "label value too long",
            "json",
            vec![JSON],
            json_req(
                i(19),
                json!({"stream": {"job": long_value.clone()}, "values": [[ts(0), "x"]]}),
            ),
            400,
            exact(&value_msg),
            true,
            Some("label_value_too_long"),
        ),
        row(
            "label value too long",
            "protobuf",
            vec![PB],
            pb_req(i(20), &format!("{{job=\"{long_value}\"}}"), t0, "x"),
            400,
            exact(&value_msg),
            true,
            Some("label_value_too_long"),
        ),
        // Entries.
        row(
            "line too long",
            "json",
            vec![JSON],
            json_req(
                i(21),
                json!({"stream": {"job": "big"}, "values": [[ts(0), big_line.clone()]]}),
            ),
            400,
            exact(big_line_msg),
            true,
            Some("line_too_long"),
        ),
        row(
            "line too long",
            "protobuf",
            vec![PB],
            pb_req(i(22), r#"{job="big"}"#, t0, &big_line),
            400,
            exact(big_line_msg),
            true,
            Some("line_too_long"),
        ),
        row(
            "timestamp too old",
            "json",
            vec![JSON],
            json_req(
                i(23),
                json!({"stream": {"job": "old"}, "values": [[old.to_string(), "x"]]}),
            ),
            400,
            parts(&[
                "entry for stream '{job=\"old\"}' has timestamp too old: ",
                ", oldest acceptable timestamp is: ",
            ]),
            true,
            Some("greater_than_max_sample_age"),
        ),
        row(
            "timestamp too old",
            "protobuf",
            vec![PB],
            pb_req(i(24), r#"{job="old"}"#, old, "x"),
            400,
            parts(&[
                "entry for stream '{job=\"old\"}' has timestamp too old: ",
                ", oldest acceptable timestamp is: ",
            ]),
            true,
            Some("greater_than_max_sample_age"),
        ),
        row(
            "timestamp too new",
            "json",
            vec![JSON],
            json_req(
                i(25),
                json!({"stream": {"job": "future"}, "values": [[future.to_string(), "x"]]}),
            ),
            400,
            parts(&["entry for stream '{job=\"future\"}' has timestamp too new: "]),
            true,
            Some("too_far_in_future"),
        ),
        row(
            "timestamp too new",
            "protobuf",
            vec![PB],
            pb_req(i(26), r#"{job="future"}"#, future, "x"),
            400,
            parts(&["entry for stream '{job=\"future\"}' has timestamp too new: "]),
            true,
            Some("too_far_in_future"),
        ),
        row(
            "out of order",
            "json",
            vec![JSON],
            json_req(i(27), json!({"stream": {"job": "ooo"}, "values": [[ts(50), "late"]]})),
            400,
            parts(&[
                "ignored, reason: 'entry out of order',\nuser 'row-27', total ignored: 1 out of 1 for stream: {job=\"ooo\"}",
            ]),
            true,
            Some("out_of_order"),
        ),
        row(
            "out of order",
            "protobuf",
            vec![PB],
            pb_req(i(28), r#"{job="ooo"}"#, t0 + 50, "late"),
            400,
            parts(&[
                "ignored, reason: 'entry out of order',\nuser 'row-28', total ignored: 1 out of 1 for stream: {job=\"ooo\"}",
            ]),
            true,
            Some("out_of_order"),
        ),
        // Invalid UTF-8: Loki stores the bytes (its JSON output shows U+FFFD), so Lode keeps the
        // line with U+FFFD and answers 204 rather than make the agent drop the batch.
        row(
            "invalid UTF-8",
            "json",
            vec![JSON],
            {
                let mut b = json_req(i(29), json!({"stream": {"job": "latin1"}, "values": [[ts(0), "caf@"]]}));
                let at = b.windows(4).position(|w| w == b"caf@").unwrap() + 3;
                b[at] = 0xe9;
                b
            },
            204,
            exact(""),
            true,
            None,
        ),
        row(
            "invalid UTF-8",
            "protobuf",
            vec![PB],
            {
                let good = good_line(30);
                let mut raw = wire::push_request(&[
                    (r#"{job="good"}"#, vec![(t0 + 30, good.as_str(), vec![])]),
                    (r#"{job="latin1"}"#, vec![(t0, "caf@", vec![])]),
                ]);
                let at = raw.windows(4).position(|w| w == b"caf@").unwrap() + 3;
                raw[at] = 0xe9;
                snappy(&raw)
            },
            204,
            exact(""),
            true,
            None,
        ),
        // Whole-request refusals at the edge.
        row(
            "body too large",
            "json",
            vec![JSON],
            json_req(
                i(31),
                json!({"stream": {"job": "big"}, "values": [[ts(0), "y".repeat(1 << 20)]]}),
            ),
            413,
            parts(&[
                "request body too large: message size too large than max (",
                " vs 1048576)",
            ]),
            false,
            None,
        ),
        row(
            "body too large (decompressed)",
            "json",
            vec![JSON, ("content-encoding", "gzip")],
            lode_testkit::bodies::gzip(&json_req(
                i(32),
                json!({"stream": {"job": "big"}, "values": [[ts(0), "y".repeat(1 << 20)]]}),
            )),
            413,
            parts(&[
                "request body too large: decompressed message size too large than max (",
                " vs 1048576)",
            ]),
            false,
            None,
        ),
        row(
            "bad tenant ID (character)",
            "json",
            vec![JSON],
            json_req(i(33), json!(null)),
            400,
            exact("tenant ID 'a/b' contains unsupported character '/'"),
            false,
            None,
        ),
        row(
            "bad tenant ID (too long)",
            "json",
            vec![JSON],
            json_req(i(34), json!(null)),
            400,
            exact("tenant ID is too long: max 150 characters"),
            false,
            None,
        ),
        row(
            "bad tenant ID (dots)",
            "json",
            vec![JSON],
            json_req(i(35), json!(null)),
            400,
            exact("tenant ID is '.' or '..'"),
            false,
            None,
        ),
        row(
            "bad tenant ID (several)",
            "json",
            vec![JSON],
            json_req(i(36), json!(null)),
            400,
            exact("multiple org IDs present"),
            false,
            None,
        ),
        row(
            "missing org id",
            "json",
            vec![JSON],
            json_req(i(37), json!(null)),
            401,
            exact("no org id"),
            false,
            None,
        ),
        // Rate limiting (429, `rate_limited`) and stream limits (429, `stream_limit`,
        // `per_stream_rate_limit`) rows go here once the limits land.
    ];
    rows[27].setup = Some(v1(json!({"job": "ooo"}), json!([[ts(100), "first"]])));
    rows[28].setup = Some(v1(json!({"job": "ooo"}), json!([[ts(100), "first"]])));
    rows[29].stored = Some((r#"{job="latin1"}"#, "caf\u{fffd}".to_string()));
    rows[30].stored = Some((r#"{job="latin1"}"#, "caf\u{fffd}".to_string()));
    rows[33].tenant = Some("a/b".into());
    rows[34].tenant = Some("t".repeat(151));
    rows[35].tenant = Some("..".into());
    rows[36].tenant = Some("a|b".into());
    rows[37].tenant = None;
    // A legacy (v0) JSON body carries label text, so the label-text classes apply to it too.
    let v0 = |i: usize, labels: &str| {
        serde_json::to_vec(&json!({"streams": [
            {"labels": "{job=\"good\"}", "entries": [{"ts": lode_testkit::bodies::rfc3339_nanos(t0 + i as i64), "line": good_line(i)}]},
            {"labels": labels, "entries": [{"ts": lode_testkit::bodies::rfc3339_nanos(t0), "line": "x"}]}]}))
        .unwrap()
    };
    for (class, labels, msg, reason) in [
        (
            "duplicate label names",
            r#"{a="1", a="2"}"#,
            exact(r#"stream '{a="1", a="2"}' has duplicate label name: 'a'"#),
            "duplicate_label_names",
        ),
        (
            "unparsable selector string",
            r#"{job="x""#,
            parts(&["error parsing labels '{job=\"x\"' with error: "]),
            "invalid_labels",
        ),
    ] {
        let k = rows.len();
        let mut r = row(
            class,
            "json v0",
            vec![JSON],
            v0(k, labels),
            400,
            msg,
            true,
            Some(reason),
        );
        r.path = "/api/prom/push";
        rows.push(r);
    }

    let mut failures = Vec::new();
    for (k, r) in rows.iter().enumerate() {
        let own = format!("row-{k}");
        let tenant = r
            .tenant
            .as_ref()
            .map(|t| if t.is_empty() { own.clone() } else { t.clone() });
        let mut headers: Vec<(&str, &str)> = r.headers.clone();
        if let Some(t) = &tenant {
            headers.push(("X-Scope-OrgID", t.as_str()));
        }
        if let Some(setup) = &r.setup {
            let (s, text) = p
                .post("/loki/api/v1/push", &[JSON, ("X-Scope-OrgID", &own)], setup.clone())
                .await
                .unwrap();
            assert_eq!(s, 204, "row {k} setup: {text}");
        }
        let (s, text) = p.post(r.path, &headers, r.body.clone()).await.unwrap();
        let body = text.trim_end();
        let msg_ok = match &r.msg {
            Msg::Exact(m) => body == m,
            Msg::Parts(ps) => {
                let mut rest = body;
                ps.iter().all(|part| match rest.find(part.as_str()) {
                    Some(at) => {
                        rest = &rest[at + part.len()..];
                        true
                    }
                    None => false,
                })
            }
        };
        if s != r.status || !msg_ok {
            let shown: String = body.chars().take(300).collect();
            failures.push(format!("row {k} {} ({}): got {s} {shown:?}", r.class, r.format));
            continue;
        }
        let q = |sel: &'static str| {
            let (p, own) = (&p, own.clone());
            let (start, end) = ((t0 - 1_000_000_000).to_string(), (t0 + 60_000_000_000).to_string());
            async move {
                let params = [
                    ("query", sel),
                    ("start", start.as_str()),
                    ("end", end.as_str()),
                    ("limit", "100"),
                ];
                let (s, body) = p
                    .get("/loki/api/v1/query_range", &params, &[("X-Scope-OrgID", own.as_str())])
                    .await
                    .unwrap();
                assert_eq!(s, 200, "{body}");
                streams(&serde_json::from_str(&body).unwrap())
            }
        };
        if r.keeps_good {
            let want = vec![(json!({"job": "good"}), vec![(ts(k as i64), good_line(k))])];
            let got = q(r#"{job="good"}"#).await;
            if got != want {
                failures.push(format!(
                    "row {k} {} ({}): valid stream not stored: {got:?}",
                    r.class, r.format
                ));
            }
        }
        if let Some((sel, line)) = &r.stored {
            let got = q(sel).await;
            let lines: Vec<&str> = got
                .iter()
                .flat_map(|(_, v)| v.iter().map(|(_, l)| l.as_str()))
                .collect();
            if lines != [line.as_str()] {
                failures.push(format!("row {k} {} ({}): {sel} holds {lines:?}", r.class, r.format));
            }
        }
    }
    // Discards by reason, per row tenant; rows Loki does not count must not count either.
    let (_, metrics) = p.get("/metrics", &[], &[]).await.unwrap();
    for (k, r) in rows.iter().enumerate() {
        let tenant = format!("tenant=\"row-{k}\"");
        let counted: Vec<&str> = metrics
            .lines()
            .filter(|l| l.starts_with("loki_discarded_samples_total{") && l.contains(&tenant))
            .collect();
        let want: Vec<String> = r
            .discarded
            .map(|reason| format!("loki_discarded_samples_total{{reason=\"{reason}\",{tenant}}} 1"))
            .into_iter()
            .collect();
        if counted != want {
            failures.push(format!(
                "row {k} {} ({}): discards {counted:?}, want {want:?}",
                r.class, r.format
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}
