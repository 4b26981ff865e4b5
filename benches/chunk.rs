//! Chunk encode and decode+scan throughput, and compression ratio, on three kinds of realistic
//! log lines (logfmt, JSON, nginx access log), ~8 MB of each, generated deterministically.
//!
//! `cargo bench -p lode-benches --bench chunk -- --warm-up-time 1 --measurement-time 3`
//! Set `LODE_CHUNK_SWEEP=1` to also print ratio and single-shot speeds per zstd level.

use std::hint::black_box;
use std::ops::ControlFlow;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lode_benches::Rng;
use lode_chunk::{Chunk, DEFAULT_BLOCK_SIZE, DEFAULT_ZSTD_LEVEL, MemChunk};
use lode_model::Direction;

const BYTES_PER_KIND: usize = 8 << 20;
/// One line in this many carries the rare needle.
const RARE_EVERY: u64 = 20_000;

const LEVELS: &[&str] = &["info", "info", "info", "debug", "warn", "error"];
const CALLERS: &[&str] = &[
    "server.go:211",
    "handler.go:88",
    "db/pool.go:143",
    "cache/redis.go:57",
    "auth/jwt.go:302",
    "queue/consumer.go:96",
    "http/client.go:415",
    "ratelimit.go:64",
];
const MSGS: &[&str] = &[
    "request served",
    "cache hit",
    "cache miss",
    "query executed",
    "token validated",
    "message consumed",
    "upstream call finished",
    "slow query",
    "retrying request",
    "rate limit applied",
];
const METHODS: &[&str] = &["GET", "GET", "GET", "POST", "PUT", "DELETE"];
const PATHS: &[&str] = &[
    "/api/v1/users",
    "/api/v1/orders",
    "/api/v1/products",
    "/api/v1/cart",
    "/api/v2/search",
    "/healthz",
    "/static/app.js",
    "/api/v1/payments",
];
const STATUSES: &[&str] = &["200", "200", "200", "201", "204", "304", "400", "404", "500", "503"];
const AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "curl/8.5.0",
    "Go-http-client/1.1",
    "kube-probe/1.31",
];
const REFERERS: &[&str] = &[
    "-",
    "https://shop.example.com/",
    "https://shop.example.com/cart",
    "https://www.google.com/",
];

#[derive(Clone, Copy)]
enum Kind {
    Logfmt,
    Json,
    Nginx,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Logfmt => "logfmt",
            Kind::Json => "json",
            Kind::Nginx => "nginx",
        }
    }
    fn needle(self) -> &'static str {
        match self {
            Kind::Logfmt => "connection reset by peer",
            Kind::Json => "\"level\":\"fatal\"",
            Kind::Nginx => "/wp-admin/setup-config.php",
        }
    }
}

/// Civil time of day from ns, enough to print realistic timestamps without a date crate.
fn clock(ns: i64) -> (i64, i64, i64, i64) {
    let s = ns / 1_000_000_000;
    ((s / 3600) % 24, (s / 60) % 60, s % 60, (ns / 1_000) % 1_000_000)
}

/// What a run of consecutive lines shares. Services log several lines per request (received,
/// queried, served) with the same trace and user; a browser session fetches several URLs from
/// one address with one user agent. Drawing every field independently per line would make the
/// data far more random than real logs, so lines are generated in such runs.
struct Context {
    left: u64,
    trace: String,
    user: u64,
    method: &'static str,
    path: &'static str,
    id: u64,
    status: &'static str,
    ip: (u64, u64, u64),
    agent: &'static str,
    referer: &'static str,
}

impl Context {
    fn new(kind: Kind, r: &mut Rng) -> Context {
        Context {
            left: 1 + r.below(match kind {
                Kind::Nginx => 8,
                _ => 4,
            }),
            trace: r.hex(16),
            // Skewed: a few users are far more active than the rest.
            user: 1 + r.heavy(50_000),
            method: r.skewed(METHODS),
            path: r.skewed(PATHS),
            id: r.below(10_000),
            status: r.skewed(STATUSES),
            ip: (r.below(4), r.below(32), r.below(256)),
            agent: r.skewed(AGENTS),
            referer: r.skewed(REFERERS),
        }
    }
}

fn line(kind: Kind, r: &mut Rng, cx: &mut Context, ts: i64, i: u64) -> String {
    if cx.left == 0 {
        *cx = Context::new(kind, r);
    }
    cx.left -= 1;
    let (h, m, s, us) = clock(ts);
    let rare = i % RARE_EVERY == RARE_EVERY / 2;
    let (status, user, trace) = (cx.status, cx.user, &cx.trace);
    // Latencies are heavy-tailed: mostly a few ms, sometimes hundreds.
    let dur = r.heavy(250_000);
    match kind {
        Kind::Logfmt => format!(
            "ts=2026-11-24T{h:02}:{m:02}:{s:02}.{us:06}Z level={} caller={} msg=\"{}\" method={} path={}/{} status={status} duration={}.{:03}ms bytes={} user_id={user} trace_id={trace}",
            r.skewed(LEVELS),
            r.pick(CALLERS),
            if rare {
                "connection reset by peer"
            } else {
                r.skewed(MSGS)
            },
            cx.method,
            cx.path,
            cx.id,
            dur / 1000,
            dur % 1000,
            r.below(40_000),
        ),
        Kind::Json => format!(
            "{{\"level\":\"{}\",\"ts\":\"2026-11-24T{h:02}:{m:02}:{s:02}.{us:06}Z\",\"caller\":\"{}\",\"msg\":\"{}\",\"user_id\":{user},\"request_id\":\"{trace}\",\"method\":\"{}\",\"path\":\"{}\",\"status\":{status},\"latency_ms\":{}.{:03}}}",
            if rare { "fatal" } else { r.skewed(LEVELS) },
            r.pick(CALLERS),
            r.skewed(MSGS),
            cx.method,
            cx.path,
            dur / 1000,
            dur % 1000,
        ),
        Kind::Nginx => format!(
            "10.{}.{}.{} - - [24/Nov/2026:{h:02}:{m:02}:{s:02} +0000] \"{} {}{} HTTP/1.1\" {} {} \"{}\" \"{}\" {}.{:03}",
            cx.ip.0,
            cx.ip.1,
            cx.ip.2,
            r.skewed(METHODS),
            if rare {
                "/wp-admin/setup-config.php"
            } else {
                r.skewed(PATHS)
            },
            if r.below(3) == 0 {
                format!("?page={}&limit=50", r.below(20))
            } else {
                format!("/{}", r.below(100_000))
            },
            r.skewed(STATUSES),
            r.below(60_000),
            cx.referer,
            cx.agent,
            dur / 100_000,
            dur % 1000,
        ),
    }
}

struct Data {
    kind: Kind,
    entries: Vec<(i64, String)>,
    raw: u64,
}

fn generate(kind: Kind) -> Data {
    let mut r = Rng(0x9e37_79b9_7f4a_7c15 ^ kind as u64);
    let mut cx = Context::new(kind, &mut r);
    let mut ts = 1_795_504_521_000_000_000i64;
    let (mut entries, mut raw, mut i) = (Vec::new(), 0u64, 0u64);
    while (raw as usize) < BYTES_PER_KIND {
        ts += r.below(2_000_000) as i64;
        let l = line(kind, &mut r, &mut cx, ts, i);
        raw += l.len() as u64;
        entries.push((ts, l));
        i += 1;
    }
    Data { kind, entries, raw }
}

fn encode(d: &Data, level: i32) -> Vec<u8> {
    encode_with(d, DEFAULT_BLOCK_SIZE, level)
}

fn encode_with(d: &Data, block_size: usize, level: i32) -> Vec<u8> {
    let mut c = MemChunk::new(block_size, level);
    for (ts, l) in &d.entries {
        c.append(*ts, l, &[]).expect("append");
    }
    c.into_bytes().expect("encode")
}

fn scan(bytes: &[u8], needle: &str) -> usize {
    let c = Chunk::decode(bytes).expect("decode");
    let mut hits = 0;
    let _ = c
        .for_each_containing(
            i64::MIN,
            i64::MAX,
            Direction::Forward,
            Some(needle.as_bytes()),
            &mut lode_chunk::Skipped::default(),
            |e| {
                hits += black_box(e.line.len()).min(1);
                ControlFlow::Continue(())
            },
        )
        .expect("scan");
    hits
}

fn sweep(d: &Data) {
    for (bs, level) in [(256, 1), (256, 2), (256, 3), (256, 6), (1024, 1), (1024, 3)] {
        let t = Instant::now();
        let bytes = encode_with(d, bs << 10, level);
        let enc = t.elapsed().as_secs_f64();
        let t = Instant::now();
        scan(&bytes, d.kind.needle());
        let dec = t.elapsed().as_secs_f64();
        let mb = d.raw as f64 / 1e6;
        println!(
            "sweep {:6} block {bs:4} KiB level {level}: ratio {:5.2}x  encode {:6.0} MB/s  decode+scan {:6.0} MB/s",
            d.kind.name(),
            d.raw as f64 / bytes.len() as f64,
            mb / enc,
            mb / dec
        );
    }
}

/// The flush-time option: cut at the default level, recompress when the chunk is flushed.
fn sweep_recompress(d: &Data) {
    let mut c = MemChunk::new(DEFAULT_BLOCK_SIZE, DEFAULT_ZSTD_LEVEL);
    for (ts, l) in &d.entries {
        c.append(*ts, l, &[]).expect("append");
    }
    c.cut().expect("cut");
    for level in [3, 6, 9] {
        let t = Instant::now();
        let bytes = c.encode_at_level(level).expect("recompress");
        let el = t.elapsed().as_secs_f64();
        let t = Instant::now();
        scan(&bytes, d.kind.needle());
        let dec = t.elapsed().as_secs_f64();
        let mb = d.raw as f64 / 1e6;
        println!(
            "sweep {:6} recompress at flush to level {level}: ratio {:5.2}x  recompress {:6.0} MB/s  decode+scan {:6.0} MB/s",
            d.kind.name(),
            d.raw as f64 / bytes.len() as f64,
            mb / el,
            mb / dec
        );
    }
}

/// Same-run baseline: Loki's block layout (per entry: varint ts, uvarint length, line) in
/// 256 KiB blocks, each gzip-compressed at the default level, which is what Loki's gzip chunks
/// hold. Returns the compressed size.
fn loki_gzip_baseline(d: &Data) -> usize {
    fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    let gz = |block: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut e, block).expect("gzip");
        e.finish().expect("gzip").len()
    };
    let (mut total, mut block) = (0, Vec::new());
    for (ts, l) in &d.entries {
        varint(((*ts << 1) ^ (*ts >> 63)) as u64, &mut block);
        varint(l.len() as u64, &mut block);
        block.extend_from_slice(l.as_bytes());
        if block.len() >= DEFAULT_BLOCK_SIZE {
            total += gz(&block);
            block.clear();
        }
    }
    if !block.is_empty() {
        total += gz(&block);
    }
    total
}

fn bench(c: &mut Criterion) {
    for kind in [Kind::Logfmt, Kind::Json, Kind::Nginx] {
        let d = generate(kind);
        let bytes = encode(&d, DEFAULT_ZSTD_LEVEL);
        let hits = scan(&bytes, kind.needle());
        println!(
            "{}: {} lines, {} raw bytes, chunk {} bytes, ratio {:.2}x (zstd level {DEFAULT_ZSTD_LEVEL}), needle hits {hits}",
            kind.name(),
            d.entries.len(),
            d.raw,
            bytes.len(),
            d.raw as f64 / bytes.len() as f64
        );
        let gz = loki_gzip_baseline(&d);
        println!(
            "{}: baseline Loki-layout gzip blocks {gz} bytes, ratio {:.2}x; lode chunk is {:.2}x smaller",
            kind.name(),
            d.raw as f64 / gz as f64,
            gz as f64 / bytes.len() as f64
        );
        if std::env::var_os("LODE_CHUNK_SWEEP").is_some() {
            sweep(&d);
            sweep_recompress(&d);
        }
        let mut g = c.benchmark_group(format!("chunk/{}", kind.name()));
        g.sample_size(10);
        g.throughput(Throughput::Bytes(d.raw));
        g.bench_function("encode", |b| b.iter(|| black_box(encode(&d, DEFAULT_ZSTD_LEVEL))));
        g.bench_function("decode_scan", |b| b.iter(|| black_box(scan(&bytes, kind.needle()))));
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
