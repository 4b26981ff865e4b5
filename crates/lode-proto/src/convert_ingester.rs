//! Edge conversions between the `lode.ingester.v1` messages and the `lode_model::api` types the
//! role traits speak. Owned values are moved (strings are not copied); requests, which the traits
//! take by reference, are converted from references. Query-side entries keep their `parsed`
//! labels, which the push conversion in `convert` drops.

use lode_model::api::{
    ChunkSummary, DroppedEntry, LabelRequest, LogSelect, QueryStats, Sample, SampleSelect, SampleSeries, StreamBatch,
    StreamSummary, StreamsRequest, TailBatch,
};
use lode_model::{Direction, Entry, Labels, Stream};

use crate::convert::{nanos_to_timestamp, timestamp_to_nanos};
use crate::{ProtoError, ingester as pb, logproto};

fn pairs_into_proto(pairs: Vec<(String, String)>) -> Vec<logproto::LabelPairAdapter> {
    pairs
        .into_iter()
        .map(|(name, value)| logproto::LabelPairAdapter { name, value })
        .collect()
}

fn pairs_from_proto(pairs: Vec<logproto::LabelPairAdapter>) -> Vec<(String, String)> {
    pairs.into_iter().map(|p| (p.name, p.value)).collect()
}

/// A query result's entry, `parsed` labels included.
pub fn entry_into_proto(e: Entry) -> logproto::EntryAdapter {
    logproto::EntryAdapter {
        timestamp: Some(nanos_to_timestamp(e.ts)),
        line: e.line,
        structured_metadata: pairs_into_proto(e.metadata),
        parsed: pairs_into_proto(e.parsed),
    }
}

pub fn entry_from_proto(e: logproto::EntryAdapter) -> Result<Entry, ProtoError> {
    Ok(Entry {
        ts: timestamp_to_nanos(e.timestamp.as_ref())?,
        line: e.line,
        metadata: pairs_from_proto(e.structured_metadata),
        parsed: pairs_from_proto(e.parsed),
    })
}

pub fn stream_into_proto(s: Stream) -> logproto::StreamAdapter {
    logproto::StreamAdapter {
        labels: s.labels,
        entries: s.entries.into_iter().map(entry_into_proto).collect(),
        hash: 0,
    }
}

pub fn stream_from_proto(s: logproto::StreamAdapter) -> Result<Stream, ProtoError> {
    Ok(Stream {
        labels: s.labels,
        entries: s.entries.into_iter().map(entry_from_proto).collect::<Result<_, _>>()?,
    })
}

/// The distributor's validated streams as a push request; labels travel printed.
pub fn push_into_proto(streams: Vec<StreamBatch>) -> logproto::PushRequest {
    logproto::PushRequest {
        streams: streams
            .into_iter()
            .map(|s| logproto::StreamAdapter {
                labels: s.labels.to_string(),
                entries: s.entries.into_iter().map(entry_into_proto).collect(),
                hash: 0,
            })
            .collect(),
        format: String::new(),
    }
}

/// A push request back to validated streams: labels are parsed (a distributor printed them from
/// a valid set); entries' `parsed` labels, which pushes never carry, are dropped.
pub fn push_from_proto(req: logproto::PushRequest) -> Result<Vec<StreamBatch>, ProtoError> {
    req.streams
        .into_iter()
        .map(|s| {
            let labels = Labels::parse(&s.labels).map_err(|e| ProtoError::InvalidLabels {
                labels: s.labels.clone(),
                reason: e.to_string(),
            })?;
            let entries = s
                .entries
                .into_iter()
                .map(|e| {
                    let mut e = entry_from_proto(e)?;
                    e.parsed.clear();
                    Ok(e)
                })
                .collect::<Result<_, ProtoError>>()?;
            Ok(StreamBatch { labels, entries })
        })
        .collect()
}

impl From<&LogSelect> for pb::QueryRequest {
    fn from(r: &LogSelect) -> Self {
        pb::QueryRequest {
            selector: r.query.clone(),
            start: r.start,
            end: r.end,
            limit: r.limit as u64,
            direction: match r.direction {
                Direction::Forward => pb::Direction::Forward,
                Direction::Backward => pb::Direction::Backward,
            } as i32,
        }
    }
}

impl TryFrom<pb::QueryRequest> for LogSelect {
    type Error = ProtoError;

    fn try_from(r: pb::QueryRequest) -> Result<Self, ProtoError> {
        let direction = match pb::Direction::try_from(r.direction) {
            Ok(pb::Direction::Forward) => Direction::Forward,
            Ok(pb::Direction::Backward) => Direction::Backward,
            Err(_) => {
                return Err(ProtoError::InvalidEnum {
                    field: "direction",
                    value: r.direction,
                });
            }
        };
        Ok(LogSelect {
            query: r.selector,
            start: r.start,
            end: r.end,
            direction,
            limit: usize::try_from(r.limit).unwrap_or(usize::MAX),
        })
    }
}

impl From<QueryStats> for pb::QueryStats {
    fn from(s: QueryStats) -> Self {
        pb::QueryStats {
            bytes_processed: s.bytes_processed,
            lines_processed: s.lines_processed,
            post_filter_lines: s.post_filter_lines,
            structured_metadata_bytes: s.structured_metadata_bytes,
            chunks_fetched: s.chunks_fetched,
            chunk_bytes_fetched: s.chunk_bytes_fetched,
            head_chunk_bytes: s.head_chunk_bytes,
        }
    }
}

impl From<pb::QueryStats> for QueryStats {
    fn from(s: pb::QueryStats) -> Self {
        QueryStats {
            bytes_processed: s.bytes_processed,
            lines_processed: s.lines_processed,
            post_filter_lines: s.post_filter_lines,
            structured_metadata_bytes: s.structured_metadata_bytes,
            chunks_fetched: s.chunks_fetched,
            chunk_bytes_fetched: s.chunk_bytes_fetched,
            head_chunk_bytes: s.head_chunk_bytes,
        }
    }
}

impl From<&SampleSelect> for pb::SampleQueryRequest {
    fn from(r: &SampleSelect) -> Self {
        pb::SampleQueryRequest {
            selector: r.query.clone(),
            start: r.start,
            end: r.end,
        }
    }
}

impl From<pb::SampleQueryRequest> for SampleSelect {
    fn from(r: pb::SampleQueryRequest) -> Self {
        SampleSelect {
            query: r.selector,
            start: r.start,
            end: r.end,
        }
    }
}

impl From<SampleSeries> for pb::SampleSeries {
    fn from(s: SampleSeries) -> Self {
        pb::SampleSeries {
            labels: s.labels,
            samples: s
                .samples
                .into_iter()
                .map(|x| pb::Sample {
                    timestamp: x.ts,
                    hash: x.hash,
                    value: x.value,
                })
                .collect(),
        }
    }
}

impl From<pb::SampleSeries> for SampleSeries {
    fn from(s: pb::SampleSeries) -> Self {
        SampleSeries {
            labels: s.labels,
            samples: s
                .samples
                .into_iter()
                .map(|x| Sample {
                    ts: x.timestamp,
                    hash: x.hash,
                    value: x.value,
                })
                .collect(),
        }
    }
}

/// A label request: `name` set asks for that label's values, `None` for the names.
pub fn label_request_into_proto(name: Option<&str>, r: &LabelRequest) -> pb::LabelRequest {
    pb::LabelRequest {
        name: name.unwrap_or_default().to_string(),
        values: name.is_some(),
        start: r.start,
        end: r.end,
        query: r.query.clone(),
    }
}

/// The inverse of [`label_request_into_proto`].
pub fn label_request_from_proto(r: pb::LabelRequest) -> (Option<String>, LabelRequest) {
    let name = r.values.then_some(r.name);
    (
        name,
        LabelRequest {
            start: r.start,
            end: r.end,
            query: r.query,
        },
    )
}

impl From<&StreamsRequest> for pb::SeriesRequest {
    fn from(r: &StreamsRequest) -> Self {
        pb::SeriesRequest {
            start: r.start,
            end: r.end,
            selector: r.selector.clone(),
        }
    }
}

impl From<pb::SeriesRequest> for StreamsRequest {
    fn from(r: pb::SeriesRequest) -> Self {
        StreamsRequest {
            start: r.start,
            end: r.end,
            selector: r.selector,
        }
    }
}

impl From<StreamSummary> for pb::StreamSummary {
    fn from(s: StreamSummary) -> Self {
        pb::StreamSummary {
            labels: pairs_into_proto(s.labels.into_pairs()),
            chunks: s
                .chunks
                .into_iter()
                .map(|c| pb::ChunkSummary {
                    from: c.from,
                    through: c.through,
                    bytes: c.bytes,
                    entries: c.entries,
                    checksum: c.checksum,
                })
                .collect(),
        }
    }
}

impl From<pb::StreamSummary> for StreamSummary {
    /// Labels come from the ingester's own (valid) label sets and are not checked again.
    fn from(s: pb::StreamSummary) -> Self {
        StreamSummary {
            labels: Labels::from_sorted_unchecked(pairs_from_proto(s.labels)),
            chunks: s
                .chunks
                .into_iter()
                .map(|c| ChunkSummary {
                    from: c.from,
                    through: c.through,
                    bytes: c.bytes,
                    entries: c.entries,
                    checksum: c.checksum,
                })
                .collect(),
        }
    }
}

impl From<TailBatch> for pb::TailResponse {
    fn from(b: TailBatch) -> Self {
        pb::TailResponse {
            streams: b.streams.into_iter().map(stream_into_proto).collect(),
            dropped_entries: b
                .dropped
                .into_iter()
                .map(|d| pb::DroppedEntry {
                    labels: d.labels,
                    timestamp: d.ts,
                })
                .collect(),
        }
    }
}

impl TryFrom<pb::TailResponse> for TailBatch {
    type Error = ProtoError;

    fn try_from(r: pb::TailResponse) -> Result<Self, ProtoError> {
        Ok(TailBatch {
            streams: r.streams.into_iter().map(stream_from_proto).collect::<Result<_, _>>()?,
            dropped: r
                .dropped_entries
                .into_iter()
                .map(|d| DroppedEntry {
                    labels: d.labels,
                    ts: d.timestamp,
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    fn entry(ts: i64, line: &str) -> Entry {
        Entry {
            ts,
            line: line.into(),
            metadata: vec![("trace_id".into(), "abc".into())],
            parsed: vec![("level".into(), "info".into())],
        }
    }

    /// Encodes and decodes, as the wire does.
    fn wire<M: Message + Default>(m: &M) -> M {
        M::decode(m.encode_to_vec().as_slice()).unwrap()
    }

    #[test]
    fn push_round_trips_and_drops_parsed() {
        let labels = Labels::parse(r#"{app="a", env="prod"}"#).unwrap();
        let batch = vec![StreamBatch {
            labels: labels.clone(),
            entries: vec![entry(-5, "before the epoch"), entry(1_700_000_000_000_000_001, "x")],
        }];
        let back = push_from_proto(wire(&push_into_proto(batch.clone()))).unwrap();
        let mut expected = batch;
        for e in &mut expected[0].entries {
            e.parsed.clear();
        }
        assert_eq!(back, expected);

        let bad = logproto::PushRequest {
            streams: vec![logproto::StreamAdapter {
                labels: "{0a=\"b\"}".into(),
                ..Default::default()
            }],
            format: String::new(),
        };
        let err = push_from_proto(bad).unwrap_err();
        assert!(err.to_string().starts_with("invalid labels {0a=\"b\"}:"), "{err}");
    }

    #[test]
    fn requests_round_trip() {
        for direction in [Direction::Forward, Direction::Backward] {
            let r = LogSelect {
                query: r#"{a="b"} |= "x""#.into(),
                start: -1,
                end: i64::MAX,
                direction,
                limit: 100,
            };
            assert_eq!(LogSelect::try_from(wire(&pb::QueryRequest::from(&r))).unwrap(), r);
        }
        let bad = pb::QueryRequest {
            direction: 7,
            ..Default::default()
        };
        assert_eq!(
            LogSelect::try_from(bad).unwrap_err().to_string(),
            "invalid direction: 7"
        );

        let s = SampleSelect {
            query: "count_over_time({a=\"b\"}[1m])".into(),
            start: 1,
            end: 2,
        };
        assert_eq!(SampleSelect::from(wire(&pb::SampleQueryRequest::from(&s))), s);

        for (name, query) in [
            (None, None),
            (Some("app"), Some("{a=\"b\"}".to_string())),
            (Some(""), None),
        ] {
            let r = LabelRequest {
                start: 3,
                end: 4,
                query,
            };
            let (n, back) = label_request_from_proto(wire(&label_request_into_proto(name, &r)));
            assert_eq!((n.as_deref(), back), (name, r));
        }

        for selector in [None, Some(String::new()), Some("{a=\"b\"}".to_string())] {
            let r = StreamsRequest {
                start: 5,
                end: 6,
                selector,
            };
            assert_eq!(StreamsRequest::from(wire(&pb::SeriesRequest::from(&r))), r);
        }
    }

    #[test]
    fn answers_round_trip() {
        let stats = QueryStats {
            bytes_processed: 1,
            lines_processed: 2,
            post_filter_lines: 3,
            structured_metadata_bytes: 4,
            chunks_fetched: 5,
            chunk_bytes_fetched: 6,
            head_chunk_bytes: 7,
        };
        assert_eq!(QueryStats::from(wire(&pb::QueryStats::from(stats))), stats);

        let stream = Stream {
            labels: r#"{a="b", level="info"}"#.into(),
            entries: vec![entry(1, "one"), entry(2, "two")],
        };
        assert_eq!(
            stream_from_proto(wire(&stream_into_proto(stream.clone()))).unwrap(),
            stream
        );

        let series = SampleSeries {
            labels: r#"{a="b"}"#.into(),
            samples: vec![Sample {
                ts: 10,
                hash: u64::MAX,
                value: 0.5,
            }],
        };
        assert_eq!(
            SampleSeries::from(wire(&pb::SampleSeries::from(series.clone()))),
            series
        );

        let summary = StreamSummary {
            labels: Labels::parse(r#"{a="b", c="d"}"#).unwrap(),
            chunks: vec![
                ChunkSummary {
                    from: 1,
                    through: 2,
                    bytes: 3,
                    entries: 4,
                    checksum: Some(0),
                },
                ChunkSummary {
                    from: 5,
                    through: 6,
                    bytes: 7,
                    entries: 8,
                    checksum: None,
                },
            ],
        };
        assert_eq!(
            StreamSummary::from(wire(&pb::StreamSummary::from(summary.clone()))),
            summary
        );

        let tail = TailBatch {
            streams: vec![stream],
            dropped: vec![DroppedEntry {
                labels: r#"{a="b"}"#.into(),
                ts: 9,
            }],
        };
        assert_eq!(
            TailBatch::try_from(wire(&pb::TailResponse::from(tail.clone()))).unwrap(),
            tail
        );
    }
}
