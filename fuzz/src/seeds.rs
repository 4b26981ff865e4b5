//! Seed corpora, built in code from valid inputs so that mutations start inside each format
//! rather than at random bytes: push bodies from `lode_testkit::bodies` (independent of our own
//! encoders), chunks from `MemChunk`, WAL segments and checkpoints from `lode_wal::Wal`, index
//! objects from `IndexBuilder`, and the LogQL queries of the golden tests.

use lode_chunk::MemChunk;
use lode_index::{ChunkRef, IndexBuilder};
use lode_model::Labels;
use lode_testkit::bodies::{self, wire};
use lode_wal::{Batch, SyncMode, Wal};
use serde_json::json;

const T0: i64 = 1_700_000_000_000_000_000;

pub fn push_json() -> Vec<Vec<u8>> {
    let ts = |d: i64| (T0 + d).to_string();
    let mut out = vec![
        bodies::v1(json!({"job": "app"}), json!([[ts(0), "hello"]])),
        bodies::v1(
            json!({"job": "app", "env": "prod", "k8s_pod": "p-1"}),
            json!([[ts(0), "line one"], [ts(1), "two", {"trace_id": "abc", "user": "u1"}]]),
        ),
        bodies::v1(json!({"a": "é\"\\\n"}), json!([[ts(5), "uni \u{1F600} \t esc"]])),
        bodies::v1(json!({}), json!([[ts(0), ""]])),
        br#"{"streams":[{"stream":{"job":"x"},"values":null},null]}"#.to_vec(),
        br#"{"streams":[]}"#.to_vec(),
        br#"{"streams":[{"stream":{"job":"x"},"values":[["1","a",{"k":"v"},"extra"]]}],"unknown":1}"#.to_vec(),
    ];
    // Loki's legacy v0 shape (what `/api/prom/push` reads).
    out.push(
        serde_json::to_vec(&json!({"streams": [{"labels": "{job=\"v0\"}", "entries": [
            {"ts": "2023-11-14T22:13:20.000000001Z", "line": "x",
             "structuredMetadata": [{"name": "trace_id", "value": "abc"}]},
            {"ts": "2023-11-14T22:13:21Z", "line": "y"}]}]}))
        .unwrap_or_default(),
    );
    out
}

/// Raw (uncompressed) `logproto.PushRequest`s.
pub fn push_protobuf() -> Vec<Vec<u8>> {
    vec![
        wire::push_request(&[(r#"{job="app"}"#, vec![(T0, "hello", vec![])])]),
        wire::push_request(&[
            (
                r#"{job="app", env="prod"}"#,
                vec![(T0, "one", vec![("trace_id", "abc")]), (T0 + 1, "two", vec![])],
            ),
            (r#"{a="1", a="2"}"#, vec![(T0 - 5, "dup", vec![])]),
        ]),
        wire::push_request(&[(r#"{job="\"quoted\" \\ é"}"#, vec![(0, "", vec![("", "")])])]),
        wire::push_request(&[("{}", vec![])]),
        Vec::new(),
    ]
}

/// Snappy-compressed protobuf bodies, as agents send them.
pub fn push_snappy() -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = push_protobuf().iter().map(|p| bodies::snappy(p)).collect();
    // A body long enough for snappy's copy ops.
    let lines = (0..40)
        .map(|i| (T0 + i, "repeated line", Vec::new()))
        .collect::<Vec<_>>();
    out.push(bodies::snappy(&wire::push_request(&[(r#"{job="app"}"#, lines)])));
    out
}

fn mem_chunk(zstd: bool, entries: usize, block_size: usize) -> Vec<u8> {
    let mut c = if zstd {
        MemChunk::new(block_size, 1)
    } else {
        MemChunk::new_uncompressed(block_size)
    };
    let md = [("trace_id".to_string(), "abc".to_string())];
    for i in 0..entries as i64 {
        // Increasing with repeats (chunks take entries in order; mutations make the rest).
        let ts = T0 + (i / 2) * 1_000_000;
        let line = format!("level=info msg=\"line {i}\" é");
        let metadata = if i % 3 == 0 { &md[..] } else { &[] };
        let _ = c.append(ts, &line, metadata);
    }
    c.encode().unwrap_or_default()
}

pub fn chunk() -> Vec<Vec<u8>> {
    vec![
        mem_chunk(false, 1, 1 << 10),
        mem_chunk(false, 12, 256),
        mem_chunk(false, 40, 1 << 10),
        mem_chunk(true, 12, 256),
        mem_chunk(true, 40, 1 << 10),
    ]
}

/// Segment and checkpoint files written by the real writer.
pub fn wal() -> Vec<Vec<u8>> {
    let Ok(dir) = tempfile::tempdir() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let Ok(wal) = Wal::open(dir.path(), SyncMode::Never, 1 << 20) else {
        return out;
    };
    let mut b = Batch::new();
    b.series("fake", 1, r#"{job="app"}"#);
    b.begin_entries(1);
    b.entry(T0, "hello", [].into_iter());
    b.entry(T0 + 1, "with metadata", [("trace_id", "abc"), ("k", "v")].into_iter());
    b.series("tenant-2", 2, r#"{job="other", env="prod"}"#);
    b.begin_entries(2);
    b.entry(T0 - 10, "earlier", [].into_iter());
    b.marker(1, 3);
    b.end_entries();
    wal.append(&b);
    let committed = wal.commit();
    if committed.is_ok()
        && let Ok(seg) = std::fs::read(dir.path().join(format!("{:020}", wal.segment())))
    {
        out.push(seg);
    }
    // A checkpoint holding a chunk record.
    if let Ok(no) = wal.rotate()
        && let Ok(mut ckp) = wal.begin_checkpoint(no)
    {
        let mut b = Batch::new();
        b.series("fake", 1, r#"{job="app"}"#);
        b.chunk(1, &mem_chunk(false, 5, 128));
        b.begin_entries(1);
        b.entry(T0 + 100, "after the chunk", [].into_iter());
        b.end_entries();
        if ckp.write(&b).is_ok()
            && ckp.finish().is_ok()
            && let Ok(c) = std::fs::read(dir.path().join(format!("checkpoint.{no:020}")))
        {
            out.push(c);
        }
    }
    out
}

pub fn index() -> Vec<Vec<u8>> {
    let chunk = |fp: u64, from: i64| ChunkRef {
        fingerprint: fp,
        from,
        through: from + 1_000,
        checksum: 0xdead_beef,
        size: 1234,
        entries: 10,
    };
    let labels = |pairs: &[(&str, &str)]| {
        Labels::from_pairs(pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()).unwrap_or_default()
    };
    let mut out = Vec::new();
    let mut b = IndexBuilder::new("fake", 19_675);
    b.add_chunk(&labels(&[("job", "app")]), chunk(1, T0));
    out.push(b.finish());
    let mut b = IndexBuilder::new("tenant-2", 19_675);
    b.add_chunk(&labels(&[("job", "app"), ("env", "prod")]), chunk(2, T0));
    b.add_chunk(&labels(&[("job", "app"), ("env", "prod")]), chunk(2, T0 + 5_000));
    b.add_chunk(
        &labels(&[("job", "db"), ("env", "dev"), ("pod", "p-1")]),
        chunk(3, T0 - 10),
    );
    b.add_chunk(&labels(&[("job", "db")]), chunk(4, T0 + 1));
    out.push(b.finish());
    out.push(IndexBuilder::new("empty", 0).finish());
    out
}

/// The queries of the golden tests (valid and invalid ones), plus a few written here.
pub fn logql() -> Vec<Vec<u8>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/golden/cases");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    let mut out: Vec<Vec<u8>> = files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "logql"))
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|text| {
            let query: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
            query.join("\n").into_bytes()
        })
        .collect();
    for q in [
        r#"{job="app"} |= "a" or "b" != `c` |~ "(?i)x+" | json | logfmt --strict | line_format "{{.msg}}""#,
        r#"sum by (job) (rate({job=~"a|b"} | unwrap bytes(size) [5m] offset 1h)) > bool 2"#,
        r#"label_replace(vector(1), "dst", "$1", "src", "(.*)") + on(a) group_left(b) 3 ^ 2"#,
        r#"{a="b"} | pattern "<ip> - <_>" | label_format x="{{ .y | upper }}" | drop a, b="c" | keep d"#,
        r#"topk(3, count_over_time({a="b"} | ip("10.0.0.0/8") | duration > 1.5s [1m]))"#,
    ] {
        out.push(q.as_bytes().to_vec());
    }
    out
}
