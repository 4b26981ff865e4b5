//! Push streams encoded straight from the distributor's borrowed batches, for the replicas:
//! each stream is encoded once (the bytes a `logproto.StreamAdapter` of it would have) and the
//! same bytes go to every ingester that holds a replica.

use lode_model::Entry;
use lode_model::api::StreamBatch;

use crate::convert::nanos_to_timestamp;

/// One validated stream encoded as the `StreamAdapter` that [`push_into_proto`](crate::convert_ingester::push_into_proto) makes of it
/// (the same bytes), written straight from the borrowed batch: the distributor encodes a stream
/// once and sends the bytes to each replica.
pub fn encode_stream(s: &StreamBatch) -> Vec<u8> {
    use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len};
    fn str_len(tag: u32, v: &str) -> usize {
        if v.is_empty() {
            0
        } else {
            key_len(tag) + encoded_len_varint(v.len() as u64) + v.len()
        }
    }
    fn put_str(tag: u32, v: &str, buf: &mut Vec<u8>) {
        if !v.is_empty() {
            encode_key(tag, WireType::LengthDelimited, buf);
            encode_varint(v.len() as u64, buf);
            buf.extend_from_slice(v.as_bytes());
        }
    }
    fn pair_len(n: &str, v: &str) -> usize {
        str_len(1, n) + str_len(2, v)
    }
    fn put_pairs(tag: u32, pairs: &[(String, String)], buf: &mut Vec<u8>) {
        for (n, v) in pairs {
            encode_key(tag, WireType::LengthDelimited, buf);
            encode_varint(pair_len(n, v) as u64, buf);
            put_str(1, n, buf);
            put_str(2, v, buf);
        }
    }
    fn pairs_len(tag: u32, pairs: &[(String, String)]) -> usize {
        pairs
            .iter()
            .map(|(n, v)| {
                let l = pair_len(n, v);
                key_len(tag) + encoded_len_varint(l as u64) + l
            })
            .sum()
    }
    // google.protobuf.Timestamp: int64 seconds = 1, int32 nanos = 2 (zero fields omitted; a
    // negative int64 is its two's complement as a varint).
    fn ts_len(seconds: i64, nanos: i32) -> usize {
        let mut l = 0;
        if seconds != 0 {
            l += key_len(1) + encoded_len_varint(seconds as u64);
        }
        if nanos != 0 {
            l += key_len(2) + encoded_len_varint(nanos as i64 as u64);
        }
        l
    }
    fn entry_len(e: &Entry, t: &prost_types::Timestamp) -> usize {
        let tl = ts_len(t.seconds, t.nanos);
        key_len(1)
            + encoded_len_varint(tl as u64)
            + tl
            + str_len(2, &e.line)
            + pairs_len(3, &e.metadata)
            + pairs_len(4, &e.parsed)
    }
    let labels = s.labels.to_string();
    let stamps: Vec<prost_types::Timestamp> = s.entries.iter().map(|e| nanos_to_timestamp(e.ts)).collect();
    let total = str_len(1, &labels)
        + s.entries
            .iter()
            .zip(&stamps)
            .map(|(e, t)| {
                let l = entry_len(e, t);
                key_len(2) + encoded_len_varint(l as u64) + l
            })
            .sum::<usize>();
    let mut buf = Vec::with_capacity(total);
    put_str(1, &labels, &mut buf);
    for (e, t) in s.entries.iter().zip(&stamps) {
        encode_key(2, WireType::LengthDelimited, &mut buf);
        encode_varint(entry_len(e, t) as u64, &mut buf);
        encode_key(1, WireType::LengthDelimited, &mut buf);
        encode_varint(ts_len(t.seconds, t.nanos) as u64, &mut buf);
        if t.seconds != 0 {
            encode_key(1, WireType::Varint, &mut buf);
            encode_varint(t.seconds as u64, &mut buf);
        }
        if t.nanos != 0 {
            encode_key(2, WireType::Varint, &mut buf);
            encode_varint(t.nanos as i64 as u64, &mut buf);
        }
        put_str(2, &e.line, &mut buf);
        put_pairs(3, &e.metadata, &mut buf);
        put_pairs(4, &e.parsed, &mut buf);
    }
    buf
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert_ingester::push_into_proto;
    use lode_model::Labels;
    use prost::Message;

    fn entry(ts: i64, line: &str) -> Entry {
        Entry {
            ts,
            line: line.into(),
            metadata: vec![("trace_id".into(), "abc".into())],
            parsed: vec![("level".into(), "info".into())],
        }
    }

    #[test]
    fn a_stream_encodes_to_the_bytes_of_its_push_request_adapter() {
        let md = |n: &str, v: &str| (n.to_string(), v.to_string());
        let batch = StreamBatch {
            labels: Labels::parse(r#"{app="a", env="prod"}"#).unwrap(),
            entries: vec![
                entry(-5, "before the epoch"),
                entry(0, ""),
                entry(3_000_000_000, "whole second"),
                entry(1_700_000_000_000_000_001, "x"),
                Entry {
                    ts: 42,
                    line: "with metadata ü".into(),
                    metadata: vec![md("trace_id", "abc"), md("empty", ""), md("", "v")],
                    parsed: vec![md("p", "q")],
                },
            ],
        };
        let expected = push_into_proto(vec![batch.clone()]).streams[0].encode_to_vec();
        assert_eq!(encode_stream(&batch), expected);
        let empty = StreamBatch {
            labels: Labels::parse(r#"{a="b"}"#).unwrap(),
            entries: vec![],
        };
        assert_eq!(
            encode_stream(&empty),
            push_into_proto(vec![empty.clone()]).streams[0].encode_to_vec()
        );
    }
}
