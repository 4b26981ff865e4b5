//! Ingest-time discovery with Loki's defaults: `service_name` from the first listed label and
//! `detected_level` structured metadata, which Grafana's log-volume histogram groups by.
#![allow(clippy::unwrap_used)]

use lode_testkit::{DataDir, LodeProcess, now_ns};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_lode");

#[tokio::test]
async fn service_name_and_detected_level_are_discovered_at_ingest() {
    let data = DataDir::new().unwrap();
    // Any `-validation.discover...` flag keeps the test kit from turning discovery off.
    let p = LodeProcess::start(BIN, &data, &["-validation.discover-log-levels=true"])
        .await
        .unwrap();
    let t0 = now_ns() - 60_000_000_000;
    let body = json!({"streams": [
        {"stream": {"app": "web", "env": "prod"}, "values": [
            [t0.to_string(), "level=error msg=\"upstream failed\""],
            [(t0 + 1).to_string(), "{\"level\":\"warn\",\"msg\":\"slow\"}"],
            [(t0 + 2).to_string(), "GET /index.html INFO served"],
            [(t0 + 3).to_string(), "no level words at all", {"k8s.pod.name": "web-1"}]
        ]},
        {"stream": {"env": "dev"}, "values": [[(t0 + 4).to_string(), "[DEBUG] starting"]]}
    ]});
    let (s, text) = p
        .post(
            "/loki/api/v1/push",
            &[("content-type", "application/json")],
            serde_json::to_vec(&body).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(s, 204, "{text}");

    // The log-volume query Grafana sends for the histogram.
    let v = p
        .query_range(&[
            (
                "query",
                r#"sum by (level, detected_level) (count_over_time({service_name=~".+"} | drop __error__[1m]))"#,
            ),
            ("start", &(t0 - 60_000_000_000).to_string()),
            ("end", &(t0 + 60_000_000_000).to_string()),
            ("step", "60"),
        ])
        .await
        .unwrap();
    let mut levels: Vec<String> = v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["metric"]["detected_level"].as_str().unwrap().to_string())
        .collect();
    levels.sort();
    assert_eq!(levels, ["debug", "error", "info", "unknown", "warn"]);

    let (_, names) = p.get("/loki/api/v1/label/service_name/values", &[], &[]).await.unwrap();
    let names: Value = serde_json::from_str(&names).unwrap();
    assert_eq!(names["data"], json!(["unknown_service", "web"]));

    // Structured metadata names are normalised, and detected_level sits beside them.
    let (_, body) = p
        .get(
            "/loki/api/v1/query_range",
            &[
                ("query", r#"{service_name="web"} |= "no level""#),
                ("start", &(t0 - 1).to_string()),
                ("end", &(t0 + 10).to_string()),
            ],
            &[("x-loki-response-encoding-flags", "categorize-labels")],
        )
        .await
        .unwrap();
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["data"]["result"][0]["values"][0][2]["structuredMetadata"],
        json!({"k8s_pod_name": "web-1", "detected_level": "unknown"})
    );
    assert_eq!(
        v["data"]["result"][0]["stream"],
        json!({"app": "web", "env": "prod", "service_name": "web"})
    );
    p.stop().unwrap();
}
