//! Request bodies for tests, built independently of Lode's own encoders: a hand-written
//! protobuf wire encoder for `logproto.PushRequest`, the compressions agents use, Loki v1 JSON,
//! and RFC3339 times without a date library.

use std::io::Write;

use serde_json::{Value, json};

/// Streams of `(labels, [(ts_ns, line, [(sm name, sm value)])])`.
pub type WireStreams<'a> = [(&'a str, Vec<(i64, &'a str, Vec<(&'a str, &'a str)>)>)];

/// A protobuf `logproto.PushRequest`, encoded by hand on the wire format so tests do not depend
/// on our own encoder.
pub mod wire {
    use super::WireStreams;

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
    pub fn push_request(streams: &WireStreams<'_>) -> Vec<u8> {
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

pub fn snappy(data: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(data)
        .expect("in-memory encoding cannot fail")
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("in-memory encoding cannot fail");
    e.finish().expect("in-memory encoding cannot fail")
}

pub fn deflate_raw(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("in-memory encoding cannot fail");
    e.finish().expect("in-memory encoding cannot fail")
}

pub fn v1(labels: Value, values: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({"streams": [{"stream": labels, "values": values}]}))
        .expect("in-memory encoding cannot fail")
}

/// RFC3339Nano for a Unix-ns time, without a date library: days from the civil calendar.
pub fn rfc3339_nanos(ns: i64) -> String {
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
