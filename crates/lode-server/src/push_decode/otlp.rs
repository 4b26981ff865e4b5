//! OTLP/HTTP logs (`POST /otlp/v1/logs`, protobuf or JSON) turned into a push request with
//! Loki's default mapping: the resource attributes in [`INDEX_LABELS`] become stream labels
//! (dots to underscores; `service.name` -> `service_name`, `unknown_service` when absent), all
//! other resource, scope and log attributes become structured metadata, the body becomes the
//! line, and trace/span ids and severity become metadata too.

use std::collections::BTreeMap;

use lode_model::Entry;
use lode_model::api::{PushRequest, PushStream};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use prost::Message;

use super::DecodeError;

/// Loki's default `otlp_config` resource attributes stored as index labels.
pub const INDEX_LABELS: &[&str] = &[
    "service.name",
    "service.namespace",
    "service.instance.id",
    "deployment.environment",
    "deployment.environment.name",
    "cloud.region",
    "cloud.availability_zone",
    "k8s.cluster.name",
    "k8s.namespace.name",
    "k8s.pod.name",
    "k8s.container.name",
    "container.name",
    "k8s.replicaset.name",
    "k8s.deployment.name",
    "k8s.statefulset.name",
    "k8s.daemonset.name",
    "k8s.cronjob.name",
    "k8s.job.name",
];

/// An attribute name as a label name (OTLP's label namer).
fn label_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "key_");
    }
    out
}

/// An attribute value as text: strings as they are, other scalars printed, arrays and maps as
/// JSON.
fn value_text(v: &AnyValue) -> String {
    match &v.value {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::BytesValue(b)) => b.iter().map(|x| format!("{x:02x}")).collect(),
        Some(other) => json_of(other).to_string(),
        None => String::new(),
    }
}

fn json_of(v: &any_value::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        any_value::Value::StringValue(s) => J::String(s.clone()),
        any_value::Value::BoolValue(b) => J::Bool(*b),
        any_value::Value::IntValue(i) => J::from(*i),
        any_value::Value::DoubleValue(d) => serde_json::Number::from_f64(*d).map_or(J::Null, J::Number),
        any_value::Value::BytesValue(b) => J::String(b.iter().map(|x| format!("{x:02x}")).collect()),
        any_value::Value::ArrayValue(a) => J::Array(
            a.values
                .iter()
                .map(|x| x.value.as_ref().map_or(J::Null, json_of))
                .collect(),
        ),
        any_value::Value::KvlistValue(kv) => J::Object(
            kv.values
                .iter()
                .map(|x| {
                    (
                        x.key.clone(),
                        x.value.as_ref().and_then(|v| v.value.as_ref()).map_or(J::Null, json_of),
                    )
                })
                .collect(),
        ),
        // An index into a string table that only profiles carry: nothing to show for logs.
        any_value::Value::StringValueStrindex(_) => J::Null,
    }
}

fn attrs(kvs: &[KeyValue], out: &mut Vec<(String, String)>) {
    for kv in kvs {
        let v = kv.value.as_ref().map(value_text).unwrap_or_default();
        if !v.is_empty() {
            out.push((label_name(&kv.key), v));
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Converts a decoded export request.
pub(crate) fn to_push(req: ExportLogsServiceRequest) -> PushRequest {
    let mut streams: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
    for rl in req.resource_logs {
        let resource_attrs = rl.resource.map(|r| r.attributes).unwrap_or_default();
        let mut labels: BTreeMap<String, String> = BTreeMap::new();
        let mut resource_md = Vec::new();
        for kv in &resource_attrs {
            let v = kv.value.as_ref().map(value_text).unwrap_or_default();
            if INDEX_LABELS.contains(&kv.key.as_str()) {
                if !v.is_empty() {
                    labels.insert(label_name(&kv.key), v);
                }
            } else if !v.is_empty() {
                resource_md.push((label_name(&kv.key), v));
            }
        }
        labels
            .entry("service_name".into())
            .or_insert_with(|| "unknown_service".into());
        let text = {
            let pairs: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}={}", serde_json::Value::String(v.clone())))
                .collect();
            format!("{{{}}}", pairs.join(", "))
        };
        let entries = streams.entry(text).or_default();
        for sl in rl.scope_logs {
            let mut scope_md = resource_md.clone();
            if let Some(scope) = &sl.scope {
                attrs(&scope.attributes, &mut scope_md);
                if !scope.name.is_empty() {
                    scope_md.push(("scope_name".into(), scope.name.clone()));
                }
                if !scope.version.is_empty() {
                    scope_md.push(("scope_version".into(), scope.version.clone()));
                }
            }
            for r in sl.log_records {
                let ts = if r.time_unix_nano != 0 {
                    r.time_unix_nano
                } else {
                    r.observed_time_unix_nano
                };
                let line = r.body.as_ref().map(value_text).unwrap_or_default();
                let mut md = scope_md.clone();
                attrs(&r.attributes, &mut md);
                if !r.trace_id.is_empty() {
                    md.push(("trace_id".into(), hex(&r.trace_id)));
                }
                if !r.span_id.is_empty() {
                    md.push(("span_id".into(), hex(&r.span_id)));
                }
                if !r.severity_text.is_empty() {
                    md.push(("severity_text".into(), r.severity_text.clone()));
                }
                if r.severity_number != 0 {
                    md.push(("severity_number".into(), r.severity_number.to_string()));
                }
                let mut e = Entry::new(i64::try_from(ts).unwrap_or(i64::MAX), line);
                e.metadata = md;
                entries.push(e);
            }
        }
    }
    PushRequest {
        streams: streams
            .into_iter()
            .filter(|(_, e)| !e.is_empty())
            .map(|(labels, mut entries)| {
                // OTLP batches are not ordered; a stream's entries must be.
                entries.sort_by_key(|e| e.ts);
                PushStream { labels, entries }
            })
            .collect(),
    }
}

/// Decodes an OTLP logs body (already decompressed): protobuf, or JSON when `json`.
pub(crate) fn decode(body: &[u8], json: bool) -> Result<PushRequest, DecodeError> {
    let req = if json {
        serde_json::from_slice::<ExportLogsServiceRequest>(body).map_err(|e| DecodeError::Json(e.to_string()))?
    } else {
        ExportLogsServiceRequest::decode(body).map_err(|e| DecodeError::Protobuf(e.to_string()))?
    };
    Ok(to_push(req))
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::resource::v1::Resource;

    fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(v.into())),
            }),
            ..Default::default()
        }
    }

    fn request() -> ExportLogsServiceRequest {
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![
                        kv("service.name", "checkout"),
                        kv("k8s.pod.name", "co-1"),
                        kv("host.arch", "amd64"),
                    ],
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    scope: Some(InstrumentationScope {
                        name: "app.logger".into(),
                        ..Default::default()
                    }),
                    log_records: vec![
                        LogRecord {
                            time_unix_nano: 2_000,
                            severity_number: 17,
                            severity_text: "ERROR".into(),
                            body: Some(AnyValue {
                                value: Some(any_value::Value::StringValue("payment failed".into())),
                            }),
                            attributes: vec![kv("http.method", "POST")],
                            trace_id: vec![0xab; 16],
                            ..Default::default()
                        },
                        LogRecord {
                            observed_time_unix_nano: 1_000,
                            body: Some(AnyValue {
                                value: Some(any_value::Value::IntValue(42)),
                            }),
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    #[test]
    fn loki_default_mapping() {
        let p = to_push(request());
        assert_eq!(p.streams.len(), 1);
        let s = &p.streams[0];
        assert_eq!(s.labels, r#"{k8s_pod_name="co-1", service_name="checkout"}"#);
        assert_eq!(s.entries[0].ts, 1_000, "ordered, observed time when time is unset");
        assert_eq!(s.entries[0].line, "42");
        let e = &s.entries[1];
        assert_eq!(e.line, "payment failed");
        let md: BTreeMap<&str, &str> = e.metadata.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        assert_eq!(md["host_arch"], "amd64");
        assert_eq!(md["scope_name"], "app.logger");
        assert_eq!(md["http_method"], "POST");
        assert_eq!(md["trace_id"], "abababababababababababababababab");
        assert_eq!(md["severity_text"], "ERROR");
        assert_eq!(md["severity_number"], "17");
    }

    #[test]
    fn protobuf_and_json_bodies_decode_alike() {
        let pb = request().encode_to_vec();
        let from_pb = decode(&pb, false).unwrap();
        let json = serde_json::to_vec(&request()).unwrap();
        let from_json = decode(&json, true).unwrap();
        assert_eq!(from_pb, from_json);
        // OTLP JSON as collectors send it: camelCase, string nanos, hex ids.
        let body =
            br#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"api"}}]},
          "scopeLogs":[{"logRecords":[{"timeUnixNano":"1700000000000000000","body":{"stringValue":"hi"},
          "traceId":"5b8efff798038103d269b633813fc60c","severityNumber":9}]}]}]}"#;
        let p = decode(body, true).unwrap();
        assert_eq!(p.streams[0].labels, r#"{service_name="api"}"#);
        assert_eq!(p.streams[0].entries[0].ts, 1_700_000_000_000_000_000);
        assert!(
            p.streams[0].entries[0]
                .metadata
                .contains(&("trace_id".into(), "5b8efff798038103d269b633813fc60c".into()))
        );
        assert!(decode(b"{not json", true).is_err());
        assert!(decode(&[0xff, 0xff, 0xff], false).is_err());
    }

    #[test]
    fn no_service_name_is_unknown_service() {
        let mut r = request();
        r.resource_logs[0].resource = None;
        assert_eq!(to_push(r).streams[0].labels, r#"{service_name="unknown_service"}"#);
    }
}
