//! Line-filter throughput of compiled LogQL pipelines over ~8 MB of realistic logfmt lines,
//! generated deterministically: a rare `|= "needle"`, a common `|~ "err(or)?"`, a chain, and the
//! chunk scanner's fast path (memmem of the required substring over contiguous block bytes).
//!
//! `cargo bench -p lode-benches --bench logql_filter -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lode_benches::Rng;
use lode_logql::parse_log_query;

const TOTAL_BYTES: usize = 8 << 20;
/// One line in this many carries the rare needle.
const NEEDLE_EVERY: u64 = 10_000;

fn logfmt_lines() -> Vec<String> {
    const LEVELS: &[&str] = &["info", "debug", "warn", "error"];
    const PATHS: &[&str] = &[
        "/api/v1/users",
        "/api/v1/orders",
        "/healthz",
        "/api/v1/cart",
        "/login",
        "/metrics",
    ];
    const STATUS: &[&str] = &["200", "200", "201", "304", "404", "500", "503"];
    const MSGS: &[&str] = &[
        "request served",
        "cache miss",
        "upstream slow",
        "retrying request",
        "connection reset by peer",
        "failed to decode body",
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut lines = Vec::new();
    let mut total = 0;
    let mut n = 0u64;
    while total < TOTAL_BYTES {
        let level = rng.skewed(LEVELS);
        let err = if level == "error" {
            " err=\"context deadline exceeded\""
        } else {
            ""
        };
        let needle = if n % NEEDLE_EVERY == 7 { " tag=needle" } else { "" };
        let line = format!(
            "ts=2026-11-24T07:{:02}:{:02}.{:03}Z level={level} caller=server.go:{} msg=\"{}\" method=GET path={}/{} \
             status={} duration={}.{}ms trace_id={:016x}{err}{needle}",
            rng.below(60),
            rng.below(60),
            rng.below(1000),
            rng.below(900) + 100,
            rng.skewed(MSGS),
            rng.skewed(PATHS),
            rng.below(100_000),
            rng.skewed(STATUS),
            rng.below(500),
            rng.below(10),
            rng.next(),
        );
        total += line.len();
        lines.push(line);
        n += 1;
    }
    lines
}

fn bench_filters(c: &mut Criterion) {
    let lines = logfmt_lines();
    let bytes: usize = lines.iter().map(String::len).sum();
    let mut group = c.benchmark_group("logql_filter");
    group.throughput(Throughput::Bytes(bytes as u64));

    for (name, query) in [
        ("contains_needle", r#"{app="api"} |= "needle""#),
        ("regex_err_or", r#"{app="api"} |~ "err(or)?""#),
        ("regex_status_5xx", r#"{app="api"} |~ `status=5\d\d`"#),
        ("chain", r#"{app="api"} |= "GET" != "healthz" |~ "level=(warn|error)""#),
    ] {
        let q = parse_log_query(query).expect("bench query parses");
        group.bench_function(name, |b| {
            b.iter(|| lines.iter().filter(|l| q.pipeline.matches(black_box(l))).count())
        });
    }

    // The scanner's fast path: one memmem over a block's contiguous bytes for the required
    // substring; only a hit makes it look at lines.
    let block: Vec<u8> = lines.iter().flat_map(|l| l.bytes().chain([b'\n'])).collect();
    let q = parse_log_query(r#"{app="api"} |= "needle""#).expect("bench query parses");
    let finders = q.pipeline.required_substrings().expect("pure |= chain");
    group.bench_function("block_memmem_needle", |b| {
        b.iter(|| finders[0].find_iter(black_box(&block)).count())
    });
    group.finish();
}

criterion_group!(benches, bench_filters);
criterion_main!(benches);
