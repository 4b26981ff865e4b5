//! Push body decode throughput (`lode_server::push_decode::decode_push`, end to end: decompress,
//! parse, build `PushRequest`) for the three bodies agents send: JSON v1, gzip'd JSON v1, and
//! snappy-compressed protobuf (Promtail/Alloy/Vector). Throughput is in bytes of raw log lines.
//!
//! The body: 100 streams x 100 logfmt-ish lines of ~200 bytes (~2 MB of lines), one entry in four
//! with structured metadata, generated deterministically.
//!
//! `push_decode_stage/*` times the stages alone (snappy, prost decode + conversion, gunzip).
//!
//! `cargo bench -p lode-benches --bench push_decode -- --warm-up-time 1 --measurement-time 3`
//!
//! The gzip body is made with flate2 at the default level, as agents send it.

use std::fmt::Write as _;
use std::hint::black_box;
use std::io::Write as _;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lode_benches::Rng;
use lode_model::Entry;
use lode_model::api::{PushRequest, PushStream};
use lode_proto::logproto;
use lode_server::push_decode::{DecodeLimits, decode_push};
use prost::Message;

const STREAMS: usize = 100;
const LINES_PER_STREAM: usize = 100;

const LEVELS: &[&str] = &["info", "info", "info", "debug", "warn", "error"];
const METHODS: &[&str] = &["GET", "GET", "GET", "POST", "PUT", "DELETE"];
const PATHS: &[&str] = &[
    "/api/v1/users",
    "/api/v1/orders/checkout",
    "/healthz",
    "/api/v2/search?q=shoes&page=2",
    "/static/app.js",
    "/api/v1/cart/items",
];
const MSGS: &[&str] = &[
    "request served",
    "upstream responded slowly",
    "cache miss, fetching from \"primary\" store",
    "retrying after connection reset",
];

fn request() -> (PushRequest, u64) {
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    let mut line_bytes = 0u64;
    let mut ts: i64 = 1_700_000_000_000_000_000;
    let streams =
        (0..STREAMS)
            .map(|s| {
                let labels = format!(
                    r#"{{app="svc-{}", env="prod", namespace="team-{}", pod="svc-{}-{}"}}"#,
                    s % 17,
                    s % 5,
                    s % 17,
                    r.hex(10)
                );
                let entries = (0..LINES_PER_STREAM)
                .map(|_| {
                    ts += 1_000_000 + r.below(1_000_000) as i64;
                    let mut line = String::with_capacity(220);
                    let _ = write!(
                        line,
                        "ts=2023-11-14T22:13:{:02}.{:06}Z level={} caller=handler.go:{} method={} path={} status={} \
                         duration={}.{:03}ms bytes={} trace_id={} msg=\"{}\"",
                        r.below(60),
                        r.below(1_000_000),
                        r.pick(LEVELS),
                        r.below(400),
                        r.pick(METHODS),
                        r.pick(PATHS),
                        [200, 200, 200, 201, 404, 500][r.below(6) as usize],
                        r.below(900),
                        r.below(1000),
                        r.below(100_000),
                        r.hex(16),
                        r.pick(MSGS),
                    );
                    line_bytes += line.len() as u64;
                    let metadata = if r.below(4) == 0 {
                        vec![
                            ("trace_id".to_string(), r.hex(32)),
                            ("user_id".to_string(), format!("u{}", r.below(10_000))),
                        ]
                    } else {
                        Vec::new()
                    };
                    Entry { ts, line, metadata, parsed: Vec::new() }
                })
                .collect();
                PushStream { labels, entries }
            })
            .collect();
    (PushRequest { streams }, line_bytes)
}

/// The v1 JSON body, as Promtail-less clients (Grafana Agent flow, Fluent Bit, scripts) send it.
fn json_v1(req: &PushRequest) -> Vec<u8> {
    let streams: Vec<serde_json::Value> = req
        .streams
        .iter()
        .map(|s| {
            let labels: serde_json::Map<String, serde_json::Value> = lode_model::Labels::parse(&s.labels)
                .expect("generated labels parse")
                .iter()
                .map(|(k, v)| (k.to_string(), serde_json::Value::from(v)))
                .collect();
            let values: Vec<serde_json::Value> = s
                .entries
                .iter()
                .map(|e| {
                    if e.metadata.is_empty() {
                        serde_json::json!([e.ts.to_string(), e.line])
                    } else {
                        let md: serde_json::Map<String, serde_json::Value> = e
                            .metadata
                            .iter()
                            .map(|(k, v)| (k.clone(), serde_json::Value::from(v.as_str())))
                            .collect();
                        serde_json::json!([e.ts.to_string(), e.line, md])
                    }
                })
                .collect();
            serde_json::json!({"stream": labels, "values": values})
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({ "streams": streams })).expect("json encodes")
}

fn gzip(data: &[u8]) -> Option<Vec<u8>> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).ok()?;
    e.finish().ok()
}

fn bench(c: &mut Criterion) {
    let (req, line_bytes) = request();
    let limits = DecodeLimits::default();
    let json = json_v1(&req);
    let proto = snap::raw::Encoder::new()
        .compress_vec(&logproto::PushRequest::from(&req).encode_to_vec())
        .expect("snappy encodes");
    let gz = gzip(&json);

    // Sanity: every body decodes to the request it came from.
    let check = |body: &[u8], ct: &str, ce: Option<&str>| {
        let got = decode_push(body, Some(ct), ce, false, &limits).expect("decodes");
        assert_eq!(got, req, "{ct} {ce:?}");
    };
    check(&json, "application/json", None);
    check(&proto, "application/x-protobuf", None);
    if let Some(gz) = &gz {
        check(gz, "application/json", Some("gzip"));
    }
    eprintln!(
        "push_decode: {} streams x {} lines, {} B of lines; bodies: json {} B, json+gzip {} B, protobuf+snappy {} B",
        STREAMS,
        LINES_PER_STREAM,
        line_bytes,
        json.len(),
        gz.as_ref().map_or(0, Vec::len),
        proto.len()
    );

    let mut g = c.benchmark_group("push_decode");
    g.throughput(Throughput::Bytes(line_bytes));
    g.bench_function("json_v1", |b| {
        b.iter(|| decode_push(black_box(&json), Some("application/json"), None, false, &limits))
    });
    if let Some(gz) = &gz {
        g.bench_function("json_v1_gzip", |b| {
            b.iter(|| decode_push(black_box(gz), Some("application/json"), Some("gzip"), false, &limits))
        });
    } else {
        eprintln!("push_decode: gzip encoding failed, skipping json_v1_gzip");
    }
    g.bench_function("protobuf_snappy", |b| {
        b.iter(|| decode_push(black_box(&proto), Some("application/x-protobuf"), None, false, &limits))
    });
    g.finish();

    // Where the time goes: each stage alone, same throughput unit (line bytes).
    let raw = lode_model::decompress::snappy(&proto, usize::MAX / 2).expect("snappy decodes");
    let mut g = c.benchmark_group("push_decode_stage");
    g.throughput(Throughput::Bytes(line_bytes));
    g.bench_function("snappy", |b| {
        b.iter(|| lode_model::decompress::snappy(black_box(&proto), usize::MAX / 2))
    });
    g.bench_function("prost_and_convert", |b| {
        b.iter(|| lode_server::push_decode::decode_protobuf(black_box(&raw)))
    });
    if let Some(gz) = &gz {
        g.bench_function("gunzip", |b| {
            b.iter(|| lode_model::decompress::gzip(black_box(gz), usize::MAX / 2))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
