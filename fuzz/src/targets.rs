//! The fuzz targets: one function per decoder, each taking the untrusted bytes and returning
//! whether they were accepted (accepted inputs join the corpus). A target must never panic,
//! however bad the input; invariants worth checking on accepted inputs are asserted here, so a
//! broken one shows up as a panic too.
//!
//! Chunks, WAL files and index objects carry crc32s, so random mutations would almost always
//! stop at the checksum. Their `fix_*` functions recompute the checksums after mutating (for
//! most inputs, not all), which lets mutated lengths and offsets reach the code behind them.

use std::cell::RefCell;
use std::ops::ControlFlow;

use lode_chunk::Chunk;
use lode_index::{IndexObject, LabelMatch};
use lode_model::api::PushRequest;
use lode_model::{Direction, Labels};
use lode_server::push_decode::{self, DecodeLimits};

/// Caps far below the defaults so a target cannot spend its time inflating a legitimate 5 GB.
const LIMITS: DecodeLimits = DecodeLimits {
    max_recv_bytes: 4 << 20,
    max_decompressed_bytes: 16 << 20,
};

/// What the distributor does first with every decoded stream: parse its label text.
fn check_request(req: &PushRequest) {
    for s in &req.streams {
        if let Ok(labels) = Labels::parse(&s.labels) {
            // The canonical form of a parsed label set parses back to the same set.
            let again = Labels::parse(&labels.to_string());
            assert_eq!(again.as_ref(), Ok(&labels), "labels {:?} printed as {labels}", s.labels);
        }
        let _ = Labels::parse_series(&s.labels);
    }
}

/// JSON push bodies on the v1 path and the legacy (v0) path, plain and as a gzip claim.
pub fn push_json(data: &[u8]) -> bool {
    let mut accepted = false;
    for legacy in [false, true] {
        if let Ok(req) = push_decode::decode_push(data, Some("application/json"), None, legacy, &LIMITS) {
            check_request(&req);
            accepted = true;
        }
    }
    let _ = push_decode::decode_push(
        data,
        Some("application/json; charset=utf-8"),
        Some("gzip"),
        false,
        &LIMITS,
    );
    accepted
}

/// An uncompressed `logproto.PushRequest`.
pub fn push_protobuf(data: &[u8]) -> bool {
    match push_decode::decode_protobuf(data) {
        Ok(req) => {
            check_request(&req);
            true
        }
        Err(_) => false,
    }
}

/// A snappy-compressed protobuf body, through the whole push decoder.
pub fn push_snappy(data: &[u8]) -> bool {
    let ok = match push_decode::decode_push(data, Some("application/x-protobuf"), Some("snappy"), false, &LIMITS) {
        Ok(req) => {
            check_request(&req);
            true
        }
        Err(_) => false,
    };
    // Content types the decoder treats as protobuf too, and the deflate path.
    let _ = push_decode::decode_push(data, Some("text/plain"), None, true, &LIMITS);
    let _ = push_decode::decode_push(data, Some("application/x-protobuf"), Some("deflate"), false, &LIMITS);
    ok
}

/// Scans every entry of a chunk both ways and with a needle, as the querier does.
fn scan_chunk(c: &Chunk) {
    let mut n = 0u64;
    let mut bytes = 0usize;
    for dir in [Direction::Forward, Direction::Backward] {
        let _ = c.for_each_entry(i64::MIN, i64::MAX, dir, |e| {
            n += 1;
            bytes += e.line.len() + e.metadata.iter().map(|(a, b)| a.len() + b.len()).sum::<usize>();
            let _ = e.metadata.get("trace_id");
            ControlFlow::Continue(())
        });
    }
    let mid = c.min_ts().unwrap_or(0) / 2 + c.max_ts().unwrap_or(0) / 2;
    let mut skipped = lode_chunk::Skipped::default();
    for needle in [&b"line"[..], b"\xc3", b""] {
        let _ = c.for_each_containing(mid, i64::MAX, Direction::Backward, Some(needle), &mut skipped, |e| {
            bytes += e.line.len();
            ControlFlow::Continue(())
        });
    }
    for i in 0..c.blocks().len() {
        if let Ok(b) = c.block(i) {
            let _ = b.count_in_range(mid, i64::MAX);
            for e in b.iter().rev() {
                bytes += e.to_entry().line.len();
            }
        }
    }
    std::hint::black_box((n, bytes, c.num_entries(), c.uncompressed_bytes()));
}

/// `Chunk::from_bytes`, then every entry.
pub fn chunk(data: &[u8]) -> bool {
    match Chunk::from_bytes(data.to_vec()) {
        Ok(c) => {
            scan_chunk(&c);
            true
        }
        Err(_) => false,
    }
}

thread_local! {
    /// One scratch directory per fuzzing thread, reused for every WAL input.
    static WAL_DIR: RefCell<Option<tempfile::TempDir>> = const { RefCell::new(None) };
}

/// A WAL file: `read_file` on a temp file, then `decode` and `peek_stream_id` on every intact
/// payload; chunk records (checkpoints) are decoded and scanned as a replay would.
pub fn wal(data: &[u8]) -> bool {
    let path = WAL_DIR.with(|d| {
        let mut d = d.borrow_mut();
        if d.is_none() {
            *d = tempfile::tempdir().ok();
        }
        d.as_ref().map(|d| d.path().join("00000000000000000001"))
    });
    let Some(path) = path else { return false };
    if std::fs::write(&path, data).is_err() {
        return false;
    }
    let Ok(file) = lode_wal::read_file(&path) else {
        return false;
    };
    let covered = file.damage.iter().map(|d| d.bytes).sum::<u64>();
    assert!(
        covered <= file.size(),
        "damage {covered} beyond the file size {}",
        file.size()
    );
    let mut records = 0;
    for payload in file.payloads() {
        let peeked = lode_wal::peek_stream_id(payload);
        if let Ok(rec) = lode_wal::decode(payload) {
            records += 1;
            assert_eq!(peeked, Some(rec.stream_id()), "peek and decode disagree");
            if let lode_wal::Record::Chunk { bytes, .. } = rec
                && let Ok(c) = Chunk::from_bytes(bytes.to_vec())
            {
                scan_chunk(&c);
            }
        }
    }
    records > 0 && file.damage.is_empty()
}

/// `IndexObject::decode`, then every read the querier makes of a decoded object.
pub fn index(data: &[u8]) -> bool {
    let Ok(obj) = IndexObject::decode(data) else {
        return false;
    };
    let mut n = 0usize;
    for (id, labels, chunks) in obj.series() {
        assert_eq!(obj.series_by_id(id).map(|(l, _)| l), Some(labels));
        n += chunks.len() + labels.len();
    }
    let names: Vec<String> = obj.label_names().map(str::to_string).collect();
    for name in &names {
        let values: Vec<String> = obj.label_values(name).map(str::to_string).collect();
        for v in &values {
            n += obj.postings(name, v).len();
        }
    }
    let selections = [
        vec![],
        vec![LabelMatch::eq("job", "app")],
        vec![
            LabelMatch::ne("env", "prod"),
            LabelMatch::new("job", |v| v.starts_with('a')),
        ],
    ];
    for m in &selections {
        n += obj.select(m, i64::MIN, i64::MAX).len();
        n += obj.select(m, 0, -1).len();
    }
    std::hint::black_box(n);
    true
}

/// The LogQL parser on any text: `parse_expr`, `parse_unvalidated` and `parse_log_query`; a
/// query that parses must print to text that parses back to the same tree.
pub fn logql(data: &[u8]) -> bool {
    let q = String::from_utf8_lossy(data);
    let _ = lode_logql::parse_unvalidated(&q);
    let _ = lode_logql::parse_log_query(&q);
    let Ok(expr) = lode_logql::parse_expr(&q) else {
        return false;
    };
    let printed = expr.to_string();
    match lode_logql::parse_expr(&printed) {
        Ok(again) => assert_eq!(again, expr, "{q:?} printed as {printed:?} parses differently"),
        Err(e) => panic!("{q:?} printed as {printed:?} does not parse: {e}"),
    }
    true
}

fn u32_at(d: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(d.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

fn u64_at(d: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(d.get(at..at.checked_add(8)?)?.try_into().ok()?))
}

fn put_u32(d: &mut [u8], at: usize, v: u32) {
    if let Some(s) = d.get_mut(at..at + 4) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}

/// Recomputes a chunk's block crc32s and its metadata crc (docs/chunk-format.md).
pub fn fix_chunk(d: &mut [u8]) {
    const HEADER: usize = 12;
    const FOOTER: usize = 16;
    const ROW: usize = 40;
    let Some(footer_at) = d.len().checked_sub(FOOTER).filter(|f| *f >= HEADER + 4) else {
        return;
    };
    let Some(table_at) = u64_at(d, footer_at)
        .and_then(|o| usize::try_from(o).ok())
        .filter(|o| (HEADER..=footer_at.saturating_sub(4)).contains(o))
    else {
        return;
    };
    put_u32(d, footer_at + 8, (footer_at - table_at) as u32);
    let rows = (footer_at - table_at - 4) / ROW;
    for i in 0..rows {
        let row = table_at + 4 + i * ROW;
        let (Some(off), Some(len)) = (u64_at(d, row + 16), u32_at(d, row + 24)) else {
            continue;
        };
        let payload = usize::try_from(off)
            .ok()
            .and_then(|o| d.get(o..o.checked_add(len as usize)?));
        if let Some(p) = payload {
            let crc = crc32fast::hash(p);
            put_u32(d, row + 36, crc);
        }
    }
    let mut h = crc32fast::Hasher::new();
    h.update(&d[..HEADER]);
    h.update(&d[table_at..footer_at]);
    let crc = h.finalize();
    put_u32(d, footer_at + 12, crc);
}

/// Recomputes the crc32 of every frame whose declared length fits (docs/wal-format.md).
pub fn fix_wal(d: &mut [u8]) {
    let mut pos = lode_wal::SEGMENT_MAGIC.len();
    while let Some(len) = u32_at(d, pos) {
        let body = pos + lode_wal::FRAME_HEADER;
        let Some(end) = body.checked_add(len as usize).filter(|e| *e <= d.len()) else {
            return;
        };
        let crc = crc32fast::hash(&d[body..end]);
        put_u32(d, pos + 4, crc);
        pos = end;
    }
}

/// Recomputes an index object's trailing crc32 (docs/index-format.md).
pub fn fix_index(d: &mut [u8]) {
    if let Some(at) = d.len().checked_sub(4) {
        let crc = crc32fast::hash(&d[..at]);
        put_u32(d, at, crc);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seeds;

    #[test]
    fn every_valid_seed_is_accepted_and_fixups_keep_it_valid() {
        type Case = (fn() -> Vec<Vec<u8>>, fn(&[u8]) -> bool, Option<fn(&mut [u8])>);
        let cases: [Case; 6] = [
            (seeds::push_json, push_json, None),
            (seeds::push_protobuf, push_protobuf, None),
            (seeds::push_snappy, push_snappy, None),
            (seeds::chunk, chunk, Some(fix_chunk)),
            (seeds::wal, wal, Some(fix_wal)),
            (seeds::index, index, Some(fix_index)),
        ];
        for (seeds, run, fix) in cases {
            let seeds = seeds();
            assert!(seeds.len() >= 2);
            for s in seeds {
                assert!(run(&s), "seed {s:?} rejected");
                if let Some(fix) = fix {
                    let mut f = s.clone();
                    fix(&mut f);
                    assert_eq!(f, s, "fixing a valid input changes nothing");
                }
            }
        }
        let parsed = seeds::logql().iter().filter(|q| logql(q)).count();
        assert!(parsed > 100, "{parsed} golden queries parse");
    }
}
