//! Edge conversions between `logproto` messages and `lode_model` types. Timestamps become i64
//! Unix nanoseconds with checked arithmetic; the query-side `parsed` field and Loki's internal
//! `format`/`hash` fields are dropped on the way in and left empty on the way out.

use lode_model::api::{PushRequest, PushStream};
use lode_model::time::NANOS_PER_SEC;
use lode_model::{Entry, ErrorCode};

use crate::logproto;

/// A protobuf message that decoded but does not fit Lode's model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    /// `nanos` outside `[0, 1e9)`, or a time not representable as i64 nanoseconds
    /// (before 1677-09-21 or after 2262-04-11).
    #[error("invalid timestamp (seconds: {seconds}, nanos: {nanos}): {reason}")]
    InvalidTimestamp {
        seconds: i64,
        nanos: i32,
        reason: &'static str,
    },
    /// A stream's label text that does not parse as a label set.
    #[error("invalid labels {labels}: {reason}")]
    InvalidLabels { labels: String, reason: String },
    /// An enum value this version does not know.
    #[error("invalid {field}: {value}")]
    InvalidEnum { field: &'static str, value: i32 },
}

impl ProtoError {
    /// Every conversion error is the client's mistake.
    pub fn code(&self) -> ErrorCode {
        ErrorCode::BadRequest
    }
}

/// `google.protobuf.Timestamp` to Unix nanoseconds. A missing timestamp is the Unix epoch, as
/// proto3 default values are (the distributor then rejects it as too old).
pub fn timestamp_to_nanos(ts: Option<&prost_types::Timestamp>) -> Result<i64, ProtoError> {
    let Some(ts) = ts else { return Ok(0) };
    let err = |reason| ProtoError::InvalidTimestamp {
        seconds: ts.seconds,
        nanos: ts.nanos,
        reason,
    };
    if !(0..NANOS_PER_SEC).contains(&i64::from(ts.nanos)) {
        return Err(err("nanos not in range [0, 1e9)"));
    }
    ts.seconds
        .checked_mul(NANOS_PER_SEC)
        .and_then(|s| s.checked_add(i64::from(ts.nanos)))
        .ok_or_else(|| err("out of range for nanosecond precision"))
}

/// Unix nanoseconds to `google.protobuf.Timestamp` (nanos always in `[0, 1e9)`).
pub fn nanos_to_timestamp(ns: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ns.div_euclid(NANOS_PER_SEC),
        // rem_euclid of a positive modulus is in [0, 1e9), which fits i32.
        nanos: ns.rem_euclid(NANOS_PER_SEC) as i32,
    }
}

impl TryFrom<logproto::PushRequest> for PushRequest {
    type Error = ProtoError;

    /// Moves strings out of the message; nothing is copied.
    fn try_from(req: logproto::PushRequest) -> Result<Self, ProtoError> {
        let streams = req
            .streams
            .into_iter()
            .map(|s| {
                let entries = s
                    .entries
                    .into_iter()
                    .map(|e| {
                        Ok(Entry {
                            ts: timestamp_to_nanos(e.timestamp.as_ref())?,
                            line: e.line,
                            metadata: e.structured_metadata.into_iter().map(|p| (p.name, p.value)).collect(),
                            parsed: Vec::new(),
                        })
                    })
                    .collect::<Result<Vec<_>, ProtoError>>()?;
                Ok(PushStream {
                    labels: s.labels,
                    entries,
                })
            })
            .collect::<Result<Vec<_>, ProtoError>>()?;
        Ok(PushRequest { streams })
    }
}

impl From<&PushRequest> for logproto::PushRequest {
    fn from(req: &PushRequest) -> Self {
        logproto::PushRequest {
            streams: req
                .streams
                .iter()
                .map(|s| logproto::StreamAdapter {
                    labels: s.labels.clone(),
                    entries: s.entries.iter().map(entry_to_proto).collect(),
                    hash: 0,
                })
                .collect(),
            format: String::new(),
        }
    }
}

impl From<PushRequest> for logproto::PushRequest {
    fn from(req: PushRequest) -> Self {
        logproto::PushRequest {
            streams: req
                .streams
                .into_iter()
                .map(|s| logproto::StreamAdapter {
                    labels: s.labels,
                    entries: s
                        .entries
                        .into_iter()
                        .map(|e| logproto::EntryAdapter {
                            timestamp: Some(nanos_to_timestamp(e.ts)),
                            line: e.line,
                            structured_metadata: e
                                .metadata
                                .into_iter()
                                .map(|(name, value)| logproto::LabelPairAdapter { name, value })
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
}

pub(crate) fn entry_to_proto(e: &Entry) -> logproto::EntryAdapter {
    logproto::EntryAdapter {
        timestamp: Some(nanos_to_timestamp(e.ts)),
        line: e.line.clone(),
        structured_metadata: e
            .metadata
            .iter()
            .map(|(name, value)| logproto::LabelPairAdapter {
                name: name.clone(),
                value: value.clone(),
            })
            .collect(),
        parsed: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use prost::Message;

    fn ts(seconds: i64, nanos: i32) -> prost_types::Timestamp {
        prost_types::Timestamp { seconds, nanos }
    }

    #[test]
    fn timestamps_convert_with_checks() {
        assert_eq!(timestamp_to_nanos(None), Ok(0));
        assert_eq!(
            timestamp_to_nanos(Some(&ts(1_570_818_238, 5))),
            Ok(1_570_818_238_000_000_005)
        );
        assert_eq!(timestamp_to_nanos(Some(&ts(-1, 5))), Ok(-999_999_995));
        assert!(matches!(
            timestamp_to_nanos(Some(&ts(1, -1))),
            Err(ProtoError::InvalidTimestamp { .. })
        ));
        assert!(timestamp_to_nanos(Some(&ts(1, 1_000_000_000))).is_err());
        assert!(timestamp_to_nanos(Some(&ts(i64::MAX / 1_000_000_000 + 1, 0))).is_err());
        assert!(timestamp_to_nanos(Some(&ts(i64::MAX / 1_000_000_000, 999_999_999))).is_err());
        assert_eq!(
            timestamp_to_nanos(Some(&ts(1, -1))).unwrap_err().to_string(),
            "invalid timestamp (seconds: 1, nanos: -1): nanos not in range [0, 1e9)"
        );
        assert_eq!(nanos_to_timestamp(-1), ts(-1, 999_999_999));
        assert_eq!(nanos_to_timestamp(i64::MIN), ts(-9_223_372_037, 145_224_192));
    }

    /// Wire bytes assembled by hand, independent of prost's encoder: one stream `{a="b"}` with one
    /// entry at 1s+2ns, line "hi", structured metadata k=v.
    #[test]
    fn decodes_hand_written_wire_bytes() {
        #[rustfmt::skip]
        let bytes: &[u8] = &[
            0x0a, 0x1d,                                     // streams (field 1, LEN 29)
              0x0a, 0x07, b'{', b'a', b'=', b'"', b'b', b'"', b'}', // labels
              0x12, 0x12,                                   // entries (field 2, LEN 18)
                0x0a, 0x04, 0x08, 0x01, 0x10, 0x02,         // timestamp {seconds 1, nanos 2}
                0x12, 0x02, b'h', b'i',                     // line
                0x1a, 0x06, 0x0a, 0x01, b'k', 0x12, 0x01, b'v', // structuredMetadata
        ];
        let msg = logproto::PushRequest::decode(bytes).unwrap();
        let req = PushRequest::try_from(msg.clone()).unwrap();
        assert_eq!(
            req,
            PushRequest {
                streams: vec![PushStream {
                    labels: r#"{a="b"}"#.into(),
                    entries: vec![Entry {
                        ts: 1_000_000_002,
                        line: "hi".into(),
                        metadata: vec![("k".into(), "v".into())],
                        parsed: Vec::new(),
                    }],
                }],
            }
        );
        assert_eq!(logproto::PushRequest::from(&req).encode_to_vec(), bytes);
        assert_eq!(logproto::PushRequest::from(req), msg);
    }

    #[test]
    fn invalid_utf8_line_is_a_decode_error() {
        let bytes: &[u8] = &[0x0a, 0x06, 0x12, 0x04, 0x12, 0x02, 0xff, 0xfe];
        assert!(logproto::PushRequest::decode(bytes).is_err());
    }

    proptest! {
        #[test]
        fn model_proto_roundtrip(
            streams in proptest::collection::vec(
                ("\\PC{0,12}", proptest::collection::vec(
                    (any::<i64>(), "\\PC{0,20}", proptest::collection::vec(("\\PC{0,4}", "\\PC{0,4}"), 0..3)), 0..4)),
                0..4)
        ) {
            let req = PushRequest {
                streams: streams
                    .into_iter()
                    .map(|(labels, entries)| PushStream {
                        labels,
                        entries: entries.into_iter().map(|(ts, line, metadata)| Entry { ts, line, metadata, parsed: Vec::new() }).collect(),
                    })
                    .collect(),
            };
            let wire = logproto::PushRequest::from(&req).encode_to_vec();
            let back = PushRequest::try_from(logproto::PushRequest::decode(wire.as_slice()).unwrap()).unwrap();
            prop_assert_eq!(back, req);
        }
    }
}
