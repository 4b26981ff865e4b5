//! LogQL over realistic chunks, end to end inside one process: decompression, the compiled
//! pipeline (line filters, parsers, label filters) through the same collectors the ingester and
//! the store use, and the metric engine. Throughput is MB of raw line bytes scanned.
//!
//! `cargo bench -p lode-benches --bench logql_pipeline -- --warm-up-time 1 --measurement-time 3`

// A bench's setup may unwrap: a failure there is a broken bench, not a runtime condition.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::ops::ControlFlow;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lode_benches::Rng;
use lode_chunk::{Chunk, MemChunk};
use lode_logql::engine::{LogPlan, MetricQuery, SampleCollector, SamplePlan, StreamCollector};
use lode_logql::metric;
use lode_model::{Direction, Labels};

const NS: i64 = 1_000_000_000;
const T0: i64 = 1_700_000_000 * NS;
const SPAN: i64 = 2 * 3600 * NS;
const LINES_PER_STREAM: i64 = 4_000;
const STREAMS: usize = 10;

const LEVELS: [&str; 8] = ["info", "info", "info", "info", "info", "debug", "warn", "error"];
const PATHS: [&str; 5] = ["/api/users", "/api/orders", "/healthz", "/api/cart", "/static/app.js"];

fn logfmt(r: &mut Rng, i: i64) -> String {
    format!(
        "level={} caller=handler.go:{} msg=\"request served\" method=GET path={} status={} duration={}ms bytes={} user=u{} trace_id={:016x} seq={i}",
        r.pick(&LEVELS),
        r.next() % 400,
        r.pick(&PATHS),
        if r.next().is_multiple_of(10) { 503 } else { 200 },
        r.next() % 900,
        r.next() % 90_000,
        r.next() % 5_000,
        r.next()
    )
}

fn json(r: &mut Rng, i: i64) -> String {
    format!(
        r#"{{"level":"{}","msg":"request served","method":"GET","path":"{}","status":{},"duration_ms":{},"bytes":{},"user":{{"id":"u{}","tier":"{}"}},"trace_id":"{:016x}","seq":{i}}}"#,
        r.pick(&LEVELS),
        r.pick(&PATHS),
        if r.next().is_multiple_of(10) { 503 } else { 200 },
        r.next() % 900,
        r.next() % 90_000,
        r.next() % 5_000,
        r.pick(&["free", "gold"]),
        r.next()
    )
}

/// `STREAMS` streams of 2h of lines each, one chunk per stream; returns chunks and raw bytes.
fn chunks(kind: &str, make_line: fn(&mut Rng, i64) -> String) -> (Vec<(Labels, Chunk)>, u64) {
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    let mut raw = 0u64;
    let out = (0..STREAMS)
        .map(|s| {
            let labels = Labels::parse(&format!(r#"{{app="bench", kind="{kind}", pod="pod-{s}"}}"#)).unwrap();
            let mut c = MemChunk::default();
            for i in 0..LINES_PER_STREAM {
                let l = make_line(&mut r, i);
                raw += l.len() as u64;
                c.append(T0 + i * (SPAN / LINES_PER_STREAM), &l, &[]).unwrap();
            }
            (labels, Chunk::from_bytes(c.into_bytes().unwrap()).unwrap())
        })
        .collect();
    (out, raw)
}

fn run_logs(plan: &LogPlan, data: &[(Labels, Chunk)]) -> usize {
    // No early stop: every line goes through the pipeline.
    let mut c = StreamCollector::new(plan, usize::MAX);
    for (labels, chunk) in data {
        let mut scan = c.stream(labels);
        let _ = chunk.for_each_entry(T0, T0 + SPAN, Direction::Backward, |e| {
            scan.push(e.ts, e.line, &mut e.metadata.iter())
        });
    }
    c.finish().0.len()
}

fn run_metric(q: &MetricQuery, data: &[(Labels, Chunk)]) -> usize {
    let plan = SamplePlan::parse(&q.sources[0].query).unwrap();
    let mut c = SampleCollector::new(&plan);
    for (labels, chunk) in data {
        let mut scan = c.stream(labels);
        let _ = chunk.for_each_entry(T0, T0 + SPAN, Direction::Forward, |e| {
            scan.push(e.ts, e.line, &mut e.metadata.iter());
            ControlFlow::Continue(())
        });
    }
    let set: metric::SeriesSet = c
        .finish()
        .0
        .into_iter()
        .map(|s| {
            (
                Labels::parse_series(&s.labels).unwrap(),
                s.samples.iter().map(|x| (x.ts, x.value)).collect(),
            )
        })
        .collect();
    metric::eval_range(&q.plan, &[set], T0, T0 + SPAN, 60 * NS, &Default::default())
        .unwrap()
        .len()
}

fn bench(c: &mut Criterion) {
    let (logfmt_chunks, logfmt_raw) = chunks("logfmt", logfmt);
    let (json_chunks, json_raw) = chunks("json", json);
    let mut g = c.benchmark_group("logql");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(logfmt_raw));
    let needle = LogPlan::parse(r#"{app="bench"} |= "trace_id=ffffffff""#).unwrap();
    g.bench_function("line_filter_needle", |b| {
        b.iter(|| black_box(run_logs(&needle, &logfmt_chunks)))
    });
    let lf = LogPlan::parse(r#"{app="bench"} | logfmt | level="error""#).unwrap();
    g.bench_function("logfmt_level_error", |b| {
        b.iter(|| black_box(run_logs(&lf, &logfmt_chunks)))
    });
    let q = MetricQuery::new(
        &lode_logql::parse_expr(r#"sum by (level) (count_over_time({app="bench"} | logfmt [1m]))"#).unwrap(),
    )
    .unwrap();
    g.bench_function("sum_by_level_count_over_time_2h", |b| {
        b.iter(|| black_box(run_metric(&q, &logfmt_chunks)))
    });
    g.throughput(Throughput::Bytes(json_raw));
    let js = LogPlan::parse(r#"{app="bench"} | json | status >= 500"#).unwrap();
    g.bench_function("json_status_ge_500", |b| {
        b.iter(|| black_box(run_logs(&js, &json_chunks)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
