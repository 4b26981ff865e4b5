//! Loki's JSON response shapes: `streams` results with nanosecond string timestamps and the
//! `stats` block Grafana reads, and the `{"status":"success","data":[...]}` lists.

use std::collections::BTreeMap;

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};

use lode_model::api::{QueryData, QueryResponse, QueryStats};
use lode_model::{Labels, Stream};

const CATEGORIZE_LABELS: &str = "categorize-labels";

/// The flags of `X-Loki-Response-Encoding-Flags`, split on commas as Loki does (no trimming).
pub(crate) fn encoding_flags(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all("x-loki-response-encoding-flags")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter(|f| !f.is_empty())
        .map(str::to_string)
        .collect()
}

fn json_response(body: Vec<u8>) -> Response {
    let mut r = body.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    r
}

pub(crate) fn string_list(items: &[String]) -> Response {
    json_response(serde_json::to_vec(&json!({"status": "success", "data": items})).unwrap_or_default())
}

#[derive(Serialize)]
struct StreamJson<'a> {
    stream: BTreeMap<&'a str, &'a str>,
    values: Vec<Value>,
}

/// Without the categorize flag, Loki puts structured metadata and parsed labels into each entry's
/// stream labels, so one stored stream may become several result streams.
fn plain_streams(streams: &[Stream]) -> Vec<Value> {
    let mut out: BTreeMap<Vec<(String, String)>, Vec<Value>> = BTreeMap::new();
    for s in streams {
        let base = stream_pairs(&s.labels);
        for e in &s.entries {
            let mut key = base.clone();
            for (n, v) in e.metadata.iter().chain(&e.parsed) {
                match key.iter_mut().find(|(k, _)| k == n) {
                    Some(slot) => slot.1 = v.clone(),
                    None => key.push((n.clone(), v.clone())),
                }
            }
            key.sort();
            out.entry(key).or_default().push(json!([e.ts.to_string(), e.line]));
        }
    }
    out.into_iter()
        .map(|(labels, values)| {
            let stream: serde_json::Map<String, Value> =
                labels.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
            json!({"stream": stream, "values": values})
        })
        .collect()
}

/// With `categorize-labels`, streams keep only indexed labels and every entry gets a third
/// element holding its structured metadata.
fn categorized_streams(streams: &[Stream]) -> Vec<Value> {
    streams
        .iter()
        .map(|s| {
            let pairs = stream_pairs(&s.labels);
            let stream: BTreeMap<&str, &str> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let values = s
                .entries
                .iter()
                .map(|e| {
                    let mut meta = serde_json::Map::new();
                    for (key, pairs) in [("structuredMetadata", &e.metadata), ("parsed", &e.parsed)] {
                        if !pairs.is_empty() {
                            let m: serde_json::Map<String, Value> = pairs
                                .iter()
                                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                                .collect();
                            meta.insert(key.into(), Value::Object(m));
                        }
                    }
                    json!([e.ts.to_string(), e.line, meta])
                })
                .collect();
            serde_json::to_value(StreamJson { stream, values }).unwrap_or(Value::Null)
        })
        .collect()
}

fn stream_pairs(printed: &str) -> Vec<(String, String)> {
    // Our own printed label sets always parse; fall back to no labels rather than failing a query.
    Labels::parse(printed).map(Labels::into_pairs).unwrap_or_default()
}

fn metric(labels: &[(String, String)]) -> Value {
    Value::Object(
        labels
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

/// A sample time as Prometheus prints it: seconds as a JSON number, at most millisecond
/// precision, no fraction when whole.
fn prom_time(ns: i64) -> Value {
    let ms = ns.div_euclid(1_000_000);
    if ms % 1000 == 0 {
        json!(ms / 1000)
    } else {
        json!(ms as f64 / 1000.0)
    }
}

/// A sample value as Prometheus prints it (Go's `FormatFloat(v, 'f', -1, 64)`), with
/// `NaN`, `+Inf` and `-Inf`.
fn prom_value(v: f64) -> Value {
    Value::String(if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        format!("{v}")
    })
}

pub(crate) fn stats_json(s: &QueryStats, exec_time: f64, returned: usize) -> Value {
    let per_sec = |n: u64| {
        if exec_time > 0.0 {
            (n as f64 / exec_time) as u64
        } else {
            0
        }
    };
    json!({
        "summary": {
            "bytesProcessedPerSecond": per_sec(s.bytes_processed),
            "linesProcessedPerSecond": per_sec(s.lines_processed),
            "totalBytesProcessed": s.bytes_processed,
            "totalLinesProcessed": s.lines_processed,
            "execTime": exec_time,
            "queueTime": 0,
            "subqueries": 0,
            "totalEntriesReturned": returned,
            "splits": 0,
            "shards": 0,
            "totalPostFilterLines": s.post_filter_lines,
            "totalStructuredMetadataBytesProcessed": s.structured_metadata_bytes,
        },
        "querier": {"store": {
            "totalChunksRef": s.chunks_fetched,
            "totalChunksDownloaded": s.chunks_fetched,
            "chunk": {"compressedBytes": s.chunk_bytes_fetched, "headChunkBytes": 0},
        }},
        "ingester": {"store": {"chunk": {"headChunkBytes": s.head_chunk_bytes}}},
    })
}

pub(crate) fn query_response(r: &QueryResponse, flags: Vec<String>) -> Response {
    let categorize = flags.iter().any(|f| f == CATEGORIZE_LABELS);
    let (result_type, result, returned) = match &r.data {
        QueryData::Streams(streams) => {
            let returned = streams.iter().map(|s| s.entries.len()).sum();
            let result = if categorize {
                categorized_streams(streams)
            } else {
                plain_streams(streams)
            };
            ("streams", Value::Array(result), returned)
        }
        QueryData::Matrix(series) => {
            let result = series
                .iter()
                .map(|s| {
                    let values: Vec<Value> = s
                        .points
                        .iter()
                        .map(|(t, v)| json!([prom_time(*t), prom_value(*v)]))
                        .collect();
                    json!({"metric": metric(&s.labels), "values": values})
                })
                .collect();
            ("matrix", Value::Array(result), series.len())
        }
        QueryData::Vector(samples) => {
            let result = samples
                .iter()
                .map(|s| json!({"metric": metric(&s.labels), "value": [prom_time(s.ts), prom_value(s.value)]}))
                .collect();
            ("vector", Value::Array(result), samples.len())
        }
        QueryData::Scalar(t, v) => ("scalar", json!([prom_time(*t), prom_value(*v)]), 1),
    };
    let mut data = serde_json::Map::new();
    data.insert("resultType".into(), Value::String(result_type.into()));
    if categorize {
        data.insert("encodingFlags".into(), json!(flags));
    }
    data.insert("result".into(), result);
    data.insert("stats".into(), stats_json(&r.stats, r.exec_time, returned));
    json_response(serde_json::to_vec(&json!({"status": "success", "data": data})).unwrap_or_default())
}

/// One live-tail text frame: `{"streams":[...],"dropped_entries":[...]}`, with `encodingFlags`
/// and three-element entries under the categorize flag, `dropped_entries` only when non-empty.
pub(crate) fn tail_frame(b: &lode_model::api::TailBatch, flags: &[String]) -> String {
    let categorize = flags.iter().any(|f| f == "categorize-labels");
    let mut out = serde_json::Map::new();
    if categorize {
        out.insert("encodingFlags".into(), json!(flags));
        out.insert("streams".into(), Value::Array(categorized_streams(&b.streams)));
    } else {
        out.insert("streams".into(), Value::Array(plain_streams(&b.streams)));
    }
    if !b.dropped.is_empty() {
        let dropped: Vec<Value> = b
            .dropped
            .iter()
            .map(|d| {
                let labels: serde_json::Map<String, Value> = stream_pairs(&d.labels)
                    .into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect();
                json!({"labels": labels, "timestamp": d.ts.to_string()})
            })
            .collect();
        out.insert("dropped_entries".into(), Value::Array(dropped));
    }
    Value::Object(out).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_number_forms() {
        assert_eq!(prom_time(4_000_000_000 * 1_000_000_000), json!(4_000_000_000i64));
        assert_eq!(prom_time(1_588_889_221_500_000_000).to_string(), "1588889221.5");
        assert_eq!(prom_time(1_588_889_221_123_456_789).to_string(), "1588889221.123");
        assert_eq!(prom_value(2.0), json!("2"));
        assert_eq!(prom_value(0.1), json!("0.1"));
        assert_eq!(prom_value(f64::NAN), json!("NaN"));
        assert_eq!(prom_value(f64::NEG_INFINITY), json!("-Inf"));
        assert_eq!(prom_value(1e21), json!("1000000000000000000000"));
    }
}
