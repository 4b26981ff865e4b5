//! Push request bodies: Loki's v1 JSON (`application/json`) and `logproto.PushRequest` encoded
//! with prost and compressed with snappy's block format (`application/x-protobuf`), what
//! Promtail, Alloy and Vector send.

use bytes::Bytes;
use lode_proto::logproto;

use crate::generate::Batch;

/// How a push body is encoded on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Json,
    Protobuf,
}

impl Encoding {
    pub fn parse(s: &str) -> Option<Encoding> {
        match s {
            "json" => Some(Encoding::Json),
            "protobuf" | "proto" => Some(Encoding::Protobuf),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Json => "json",
            Encoding::Protobuf => "protobuf",
        }
    }
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Json => "application/json",
            Encoding::Protobuf => "application/x-protobuf",
        }
    }
}

/// An encoded push request and what it carries.
#[derive(Debug, Clone)]
pub struct Body {
    pub data: Bytes,
    pub lines: u64,
    pub raw_bytes: u64,
    pub min_ts: i64,
    pub max_ts: i64,
}

pub fn encode(batch: &Batch, encoding: Encoding) -> Body {
    let data = match encoding {
        Encoding::Json => json_body(batch),
        Encoding::Protobuf => protobuf_body(batch),
    };
    Body {
        data: Bytes::from(data),
        lines: batch.lines,
        raw_bytes: batch.raw_bytes,
        min_ts: batch.min_ts,
        max_ts: batch.max_ts,
    }
}

/// A JSON string literal (RFC 8259 escaping).
fn json_str(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if esc.is_empty() {
            out.extend_from_slice(format!("\\u{b:04x}").as_bytes());
        } else {
            out.extend_from_slice(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// `{"streams":[{"stream":{..},"values":[["<ns>","<line>",{<metadata>}],..]},..]}`
pub fn json_body(batch: &Batch) -> Vec<u8> {
    let mut out = Vec::with_capacity(batch.raw_bytes as usize + batch.lines as usize * 40 + 256);
    out.extend_from_slice(b"{\"streams\":[");
    for (si, s) in batch.streams.iter().enumerate() {
        if si > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"stream\":{");
        for (li, (k, v)) in s.labels.iter().enumerate() {
            if li > 0 {
                out.push(b',');
            }
            json_str(k, &mut out);
            out.push(b':');
            json_str(v, &mut out);
        }
        out.extend_from_slice(b"},\"values\":[");
        for (ei, e) in s.entries.iter().enumerate() {
            if ei > 0 {
                out.push(b',');
            }
            out.extend_from_slice(format!("[\"{}\",", e.ts).as_bytes());
            json_str(&e.line, &mut out);
            if !e.metadata.is_empty() {
                out.extend_from_slice(b",{");
                for (mi, (k, v)) in e.metadata.iter().enumerate() {
                    if mi > 0 {
                        out.push(b',');
                    }
                    json_str(k, &mut out);
                    out.push(b':');
                    json_str(v, &mut out);
                }
                out.push(b'}');
            }
            out.push(b']');
        }
        out.extend_from_slice(b"]}");
    }
    out.extend_from_slice(b"]}");
    out
}

/// Prometheus selector text `{k="v", ...}` as Loki's push protobuf carries it.
pub fn labels_text(labels: &[(String, String)]) -> String {
    let mut s = String::from("{");
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(k);
        s.push_str("=\"");
        for c in v.chars() {
            match c {
                '"' => s.push_str("\\\""),
                '\\' => s.push_str("\\\\"),
                '\n' => s.push_str("\\n"),
                c => s.push(c),
            }
        }
        s.push('"');
    }
    s.push('}');
    s
}

/// The `logproto.PushRequest` of a batch.
pub fn push_request(batch: &Batch) -> logproto::PushRequest {
    logproto::PushRequest {
        streams: batch
            .streams
            .iter()
            .map(|s| logproto::StreamAdapter {
                labels: labels_text(&s.labels),
                entries: s
                    .entries
                    .iter()
                    .map(|e| logproto::EntryAdapter {
                        timestamp: Some(prost_types::Timestamp {
                            seconds: e.ts.div_euclid(1_000_000_000),
                            nanos: e.ts.rem_euclid(1_000_000_000) as i32,
                        }),
                        line: e.line.clone(),
                        structured_metadata: e
                            .metadata
                            .iter()
                            .map(|(k, v)| logproto::LabelPairAdapter {
                                name: (*k).to_string(),
                                value: v.clone(),
                            })
                            .collect(),
                        parsed: Vec::new(),
                    })
                    .collect(),
                hash: 0,
            })
            .collect(),
        format: String::new(),
    }
}

/// The serialized `PushRequest`, snappy block-compressed.
pub fn protobuf_body(batch: &Batch) -> Vec<u8> {
    let raw = prost::Message::encode_to_vec(&push_request(batch));
    snap::raw::Encoder::new()
        .compress_vec(&raw)
        .expect("snappy compression into a Vec cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::{ClientGen, LineFormat, Workload};

    fn batch(format: LineFormat, sm: bool) -> Batch {
        let w = Workload {
            job: "enc".into(),
            streams: 3,
            label_cardinality: 2,
            format,
            batch_lines: 20,
            structured_metadata: sm,
        };
        let mut b = ClientGen::new(&w, 0, 1, u64::MAX, u64::MAX)
            .next_batch()
            .expect("a batch");
        // An awkward line, to check escaping.
        b.streams[0].entries[0].line = "quote \" back \\ nl \n tab \t ctl \u{1} é".to_string();
        b
    }

    #[test]
    fn json_body_decodes_back() {
        for format in [LineFormat::Logfmt, LineFormat::Json, LineFormat::Access] {
            for sm in [false, true] {
                let b = batch(format, sm);
                let v: serde_json::Value = serde_json::from_slice(&json_body(&b)).expect("valid JSON");
                let streams = v["streams"].as_array().expect("streams");
                assert_eq!(streams.len(), b.streams.len());
                for (js, s) in streams.iter().zip(&b.streams) {
                    for (k, val) in s.labels.iter() {
                        assert_eq!(js["stream"][k], val.as_str());
                    }
                    let values = js["values"].as_array().expect("values");
                    assert_eq!(values.len(), s.entries.len());
                    for (jv, e) in values.iter().zip(&s.entries) {
                        assert_eq!(jv[0], e.ts.to_string());
                        assert_eq!(jv[1], e.line.as_str());
                        for (k, val) in &e.metadata {
                            assert_eq!(jv[2][k], val.as_str());
                        }
                        assert_eq!(jv.as_array().map(Vec::len), Some(if sm { 3 } else { 2 }));
                    }
                }
            }
        }
    }

    #[test]
    fn protobuf_body_decodes_with_prost_and_snappy() {
        let b = batch(LineFormat::Json, true);
        // Through the workspace's size-capped helper, as the server decodes it.
        let raw = lode_model::decompress::snappy(&protobuf_body(&b), 64 << 20).expect("snappy block format");
        let req = <logproto::PushRequest as prost::Message>::decode(raw.as_slice()).expect("PushRequest");
        assert_eq!(req, push_request(&b));
        assert_eq!(req.streams.len(), b.streams.len());
        let s0 = &req.streams[0];
        assert_eq!(s0.labels, r#"{app="app-0", env="bench", job="enc", pod="app-0-0"}"#);
        let e0 = &s0.entries[0];
        let ts = e0.timestamp.expect("timestamp");
        assert_eq!(
            ts.seconds * 1_000_000_000 + i64::from(ts.nanos),
            b.streams[0].entries[0].ts
        );
        assert_eq!(e0.line, b.streams[0].entries[0].line);
        assert_eq!(e0.structured_metadata[0].name, "trace_id");
        let lines: usize = req.streams.iter().map(|s| s.entries.len()).sum();
        assert_eq!(lines as u64, b.lines);
        // The label text parses as Lode parses it.
        for s in &req.streams {
            lode_model::Labels::parse(&s.labels).expect("labels parse");
        }
    }
}
