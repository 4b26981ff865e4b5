//! A second, lenient reading of a protobuf push body whose strings are not all UTF-8. prost
//! refuses the whole message for one invalid byte; Loki's gogo-generated decoder does not
//! validate UTF-8, stores the bytes, and its JSON output shows them as U+FFFD. This mirror of
//! `logproto.PushRequest` reads the string fields as bytes and converts them lossily, so a stray
//! Latin-1 byte in one line costs neither that line nor the rest of the request.

use lode_proto::logproto;

#[derive(Clone, PartialEq, prost::Message)]
struct RawPushRequest {
    #[prost(message, repeated, tag = "1")]
    streams: Vec<RawStream>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct RawStream {
    #[prost(bytes = "vec", tag = "1")]
    labels: Vec<u8>,
    #[prost(message, repeated, tag = "2")]
    entries: Vec<RawEntry>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct RawEntry {
    #[prost(message, optional, tag = "1")]
    timestamp: Option<RawTimestamp>,
    #[prost(bytes = "vec", tag = "2")]
    line: Vec<u8>,
    #[prost(message, repeated, tag = "3")]
    structured_metadata: Vec<RawPair>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct RawPair {
    #[prost(bytes = "vec", tag = "1")]
    name: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct RawTimestamp {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

fn text(b: Vec<u8>) -> String {
    String::from_utf8(b).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Decodes `raw` with invalid UTF-8 replaced by U+FFFD; `None` when it is malformed otherwise.
pub(super) fn decode(raw: &[u8]) -> Option<logproto::PushRequest> {
    use prost::Message;
    let req = RawPushRequest::decode(raw).ok()?;
    let streams = req
        .streams
        .into_iter()
        .map(|s| logproto::StreamAdapter {
            labels: text(s.labels),
            entries: s
                .entries
                .into_iter()
                .map(|e| {
                    let mut out = logproto::EntryAdapter {
                        line: text(e.line),
                        structured_metadata: e
                            .structured_metadata
                            .into_iter()
                            .map(|p| logproto::LabelPairAdapter {
                                name: text(p.name),
                                value: text(p.value),
                            })
                            .collect(),
                        ..Default::default()
                    };
                    if let Some(t) = e.timestamp {
                        let ts = out.timestamp.get_or_insert_with(Default::default);
                        ts.seconds = t.seconds;
                        ts.nanos = t.nanos;
                    }
                    out
                })
                .collect(),
            ..Default::default()
        })
        .collect();
    Some(logproto::PushRequest {
        streams,
        ..Default::default()
    })
}
