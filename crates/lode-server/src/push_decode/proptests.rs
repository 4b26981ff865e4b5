//! Property tests: encode a random request as protobuf+snappy, JSON v1 and JSON v0, decode it
//! through `decode_push`, and get the same request back.

use std::collections::BTreeMap;

use lode_model::Entry;
use lode_model::api::{PushRequest, PushStream};
use lode_proto::logproto;
use proptest::prelude::*;
use prost::Message;

use super::tests::{JSON, LEGACY, PROTO, V1, decode, gzip, snappy};

// ---------------------------------------------------------------------------------------------
// Property tests: encode a random request, decode it, get it back.

fn arb_entries() -> impl Strategy<Value = Vec<Entry>> {
    proptest::collection::vec(
        (
            any::<i64>(),
            "\\PC{0,24}|[\"\\\\\n\t\u{0}-\u{1f}]{0,5}",
            proptest::collection::vec(("\\PC{0,6}", "\\PC{0,6}"), 0..3),
        )
            .prop_map(|(ts, line, metadata)| Entry {
                ts,
                line,
                metadata,
                parsed: Vec::new(),
            }),
        0..5,
    )
}

fn render_labels(m: &BTreeMap<String, String>) -> String {
    let mut s = String::from("{");
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(k);
        s.push('=');
        lode_model::labels::write_quoted(&mut s, v).unwrap();
    }
    s.push('}');
    s
}

/// Written by hand (not through `serde_json::Value`, which would sort metadata keys).
fn v1_json(streams: &[(BTreeMap<String, String>, Vec<Entry>)]) -> Vec<u8> {
    let q = |s: &str| serde_json::to_string(s).unwrap();
    let mut out = String::from(r#"{"streams":["#);
    for (i, (labels, entries)) in streams.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{}:{}", q(k), q(v))).collect();
        out.push_str(&format!(r#"{{"stream":{{{}}},"values":["#, labels.join(",")));
        for (j, e) in entries.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            out.push_str(&format!("[{},{}", q(&e.ts.to_string()), q(&e.line)));
            if !e.metadata.is_empty() {
                let md: Vec<String> = e.metadata.iter().map(|(k, v)| format!("{}:{}", q(k), q(v))).collect();
                out.push_str(&format!(",{{{}}}", md.join(",")));
            }
            out.push(']');
        }
        out.push_str("]}");
    }
    out.push_str("]}");
    out.into_bytes()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn protobuf_snappy_roundtrip(streams in proptest::collection::vec(("\\PC{0,16}", arb_entries()), 0..4)) {
        let req = PushRequest {
            streams: streams.into_iter().map(|(labels, entries)| PushStream { labels, entries }).collect(),
        };
        let body = snappy(&logproto::PushRequest::from(&req).encode_to_vec());
        prop_assert_eq!(decode(&body, PROTO, None, V1).unwrap(), req.clone());
        prop_assert_eq!(decode(&gzip(&body), PROTO, Some("gzip"), V1).unwrap(), req);
    }

    #[test]
    fn json_v1_roundtrip(
        streams in proptest::collection::vec(
            (proptest::collection::btree_map("[a-z_][a-z0-9_.]{0,6}|\\PC{1,4}", "\\PC{0,8}", 0..4), arb_entries()),
            0..4)
    ) {
        let body = v1_json(&streams);
        let expected = PushRequest {
            streams: streams
                .iter()
                .map(|(l, entries)| PushStream { labels: render_labels(l), entries: entries.clone() })
                .collect(),
        };
        prop_assert_eq!(decode(&body, JSON, None, V1).unwrap(), expected.clone());
        prop_assert_eq!(decode(&gzip(&body), JSON, Some("gzip"), V1).unwrap(), expected);
    }

    #[test]
    fn json_legacy_roundtrip(streams in proptest::collection::vec(("\\PC{0,16}", arb_entries()), 0..4)) {
        let json = serde_json::json!({"streams": streams.iter().map(|(labels, entries)| serde_json::json!({
            "labels": labels,
            "entries": entries.iter().map(|e| serde_json::json!({
                "ts": lode_model::time::rfc3339(e.ts),
                "line": e.line,
                "structuredMetadata": e.metadata.iter()
                    .map(|(n, v)| serde_json::json!({"name": n, "value": v}))
                    .collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>()});
        let body = serde_json::to_vec(&json).unwrap();
        let expected = PushRequest {
            streams: streams.into_iter().map(|(labels, entries)| PushStream { labels, entries }).collect(),
        };
        prop_assert_eq!(decode(&body, JSON, None, LEGACY).unwrap(), expected);
    }
}
