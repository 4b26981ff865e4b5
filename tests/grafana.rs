//! The requests Grafana's Loki data source sends, replayed as they appear on the wire
//! (../shared/loki-api.md §2.5, §4, §5), against the real binary with Loki's default ingest
//! discovery; each answer is checked for the shape Grafana's parser needs. Live tail, the
//! Drilldown endpoints and the label browser's `series` calls have their own files
//! (`tail.rs`, `read_api.rs`).
#![allow(clippy::unwrap_used)]

use lode_testkit::{DataDir, LodeProcess, now_ns};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_lode");
const CATEGORIZE: (&str, &str) = ("x-loki-response-encoding-flags", "categorize-labels");

async fn get(p: &LodeProcess, path: &str, params: &[(&str, &str)], headers: &[(&str, &str)]) -> Value {
    let (s, body) = p.get(path, params, headers).await.unwrap();
    assert_eq!(s, 200, "{path} {params:?}: {body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "success", "{v}");
    v
}

#[tokio::test]
async fn grafana_data_source_requests_get_the_shapes_grafana_parses() {
    let data = DataDir::new().unwrap();
    let p = LodeProcess::start(BIN, &data, &["-validation.discover-log-levels=true"])
        .await
        .unwrap();
    let t0 = now_ns() - 30 * 60_000_000_000;
    let values: Vec<Value> = (0..120)
        .map(|i| {
            let level = ["info", "info", "warn", "error"][i % 4];
            json!([
                (t0 + i as i64 * 10_000_000_000).to_string(),
                format!("level={level} path=/api/{i} status=200")
            ])
        })
        .collect();
    let body = json!({"streams": [{"stream": {"app": "web", "env": "prod"}, "values": values}]});
    let (s, text) = p
        .post(
            "/loki/api/v1/push",
            &[("content-type", "application/json")],
            serde_json::to_vec(&body).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(s, 204, "{text}");
    let (start, end) = ((t0 - 60_000_000_000).to_string(), now_ns().to_string());

    // Save & test: exactly one sample of value 2 at the requested time.
    let v = get(
        &p,
        "/loki/api/v1/query",
        &[
            ("direction", "backward"),
            ("query", "vector(1)+vector(1)"),
            ("time", "4000000000"),
        ],
        &[CATEGORIZE],
    )
    .await;
    assert_eq!(v["data"]["resultType"], "vector");
    assert_eq!(
        v["data"]["result"],
        json!([{"metric": {}, "value": [4000000000u64, "2"]}])
    );

    // Explore, logs: maxLines 1000, a millisecond step, categorize-labels.
    let v = get(
        &p,
        "/loki/api/v1/query_range",
        &[
            ("direction", "backward"),
            ("limit", "1000"),
            ("query", r#"{app="web"} | logfmt | level="error""#),
            ("start", &start),
            ("end", &end),
            ("step", "7200ms"),
        ],
        &[CATEGORIZE, ("x-query-tags", "Source=grafana")],
    )
    .await;
    assert_eq!(v["data"]["resultType"], "streams");
    assert_eq!(v["data"]["encodingFlags"], json!(["categorize-labels"]));
    let result = v["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 1);
    assert_eq!(
        result[0]["stream"],
        json!({"app": "web", "env": "prod", "service_name": "web"})
    );
    let entries = result[0]["values"].as_array().unwrap();
    assert_eq!(entries.len(), 30);
    let first = entries[0].as_array().unwrap();
    assert!(
        first[0].as_str().unwrap().parse::<i64>().is_ok(),
        "ts is a string of ns"
    );
    assert_eq!(first[2]["structuredMetadata"], json!({"detected_level": "error"}));
    assert_eq!(first[2]["parsed"]["level"], "error");
    let summary = &v["data"]["stats"]["summary"];
    assert!(summary["totalLinesProcessed"].as_u64().unwrap() >= 120, "{summary}");

    // Explore, metrics: a matrix of [seconds, "value"] points.
    let v = get(
        &p,
        "/loki/api/v1/query_range",
        &[
            ("direction", "backward"),
            (
                "query",
                r#"sum by (level) (count_over_time({app="web"} | logfmt [5m]))"#,
            ),
            ("start", &start),
            ("end", &end),
            ("step", "60000ms"),
        ],
        &[CATEGORIZE],
    )
    .await;
    assert_eq!(v["data"]["resultType"], "matrix");
    let series = v["data"]["result"].as_array().unwrap();
    assert_eq!(series.len(), 3);
    let point = series[0]["values"][0].as_array().unwrap();
    assert!(point[0].is_number() && point[1].is_string(), "{point:?}");

    // The log-volume histogram, grouped by level and detected_level.
    let v = get(
        &p,
        "/loki/api/v1/query_range",
        &[
            (
                "query",
                r#"sum by (level, detected_level) (count_over_time({app="web"} | drop __error__[60s]))"#,
            ),
            ("start", &start),
            ("end", &end),
            ("step", "60000ms"),
        ],
        &[CATEGORIZE, ("x-query-tags", "Source=logvolhist")],
    )
    .await;
    let mut levels: Vec<String> = v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["metric"]["detected_level"].as_str().unwrap().to_string())
        .collect();
    levels.sort();
    assert_eq!(levels, ["error", "info", "warn"]);

    // The autocomplete data sample: the selector, limit 10.
    let v = get(
        &p,
        "/loki/api/v1/query_range",
        &[
            ("query", r#"{app="web"}"#),
            ("limit", "10"),
            ("start", &start),
            ("end", &end),
        ],
        &[CATEGORIZE, ("x-query-tags", "Source=datasample")],
    )
    .await;
    assert_eq!(v["data"]["result"][0]["values"].as_array().unwrap().len(), 10);

    // Label browser and variables.
    let v = get(&p, "/loki/api/v1/labels", &[("start", &start), ("end", &end)], &[]).await;
    assert_eq!(v["data"], json!(["app", "env", "service_name"]));
    let v = get(
        &p,
        "/loki/api/v1/labels",
        &[("query", r#"{app="nope"}"#), ("start", &start), ("end", &end)],
        &[],
    )
    .await;
    assert_eq!(v["data"], json!([]), "an empty answer is a success with []");
    let v = get(
        &p,
        "/loki/api/v1/label/env/values",
        &[("start", &start), ("end", &end), ("query", r#"{app="web"}"#)],
        &[],
    )
    .await;
    assert_eq!(v["data"], json!(["prod"]));
    let v = get(
        &p,
        "/loki/api/v1/series",
        &[("match[]", r#"{app="web"}"#), ("start", &start), ("end", &end)],
        &[],
    )
    .await;
    assert_eq!(v["data"], json!([{"app": "web", "env": "prod", "service_name": "web"}]));

    // Query builder suggestions and the "will process" hint.
    // (Loki answers detected_fields without a "status" member.)
    let (s, body) = p
        .get(
            "/loki/api/v1/detected_fields",
            &[
                ("query", r#"{app="web"}"#),
                ("limit", "1000"),
                ("start", &start),
                ("end", &end),
            ],
            &[],
        )
        .await
        .unwrap();
    assert_eq!(s, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(
        v["fields"].as_array().unwrap().iter().any(|f| f["label"] == "path"),
        "{v}"
    );
    let (s, body) = p
        .get(
            "/loki/api/v1/index/stats",
            &[("query", r#"{app="web"}"#), ("start", &start), ("end", &end)],
            &[],
        )
        .await
        .unwrap();
    assert_eq!(s, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["streams"], 1);
    assert_eq!(v["entries"], 120);

    // Live mode: Grafana's data-source proxy opens the tail with `query` only and reads
    // `streams[].stream` and `values[][0..1]`.
    let url = format!(
        "{}/loki/api/v1/tail?query={}",
        p.base().replacen("http", "ws", 1),
        form_urlencoded::byte_serialize(br#"{app="web"} |= "live""#).collect::<String>()
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let live = json!({"streams": [{"stream": {"app": "web", "env": "prod"},
        "values": [[now_ns().to_string(), "level=info path=/live status=200"]]}]});
    let (s, text) = p
        .post(
            "/loki/api/v1/push",
            &[("content-type", "application/json")],
            serde_json::to_vec(&live).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(s, 204, "{text}");
    let frame = loop {
        let msg = tokio::time::timeout(std::time::Duration::from_secs(10), futures::StreamExt::next(&mut ws))
            .await
            .expect("a tail frame in time")
            .unwrap()
            .unwrap();
        if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            // The backfill frame has no "live" line yet; wait for the one that does.
            if v["streams"].as_array().unwrap().iter().any(|s| {
                s["values"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|e| e[1].as_str().unwrap().contains("/live"))
            }) {
                break v;
            }
        }
    };
    assert_eq!(frame["streams"][0]["stream"]["service_name"], "web");
    assert!(
        frame["streams"][0]["values"][0][0]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .is_ok()
    );

    // What it does not know is a 404 in plain text, never a 5xx.
    let (s, body) = p.get("/loki/api/v1/no_such_thing", &[], &[]).await.unwrap();
    assert_eq!((s, body.as_str()), (404, "404 page not found\n"));
    p.stop().unwrap();
}
