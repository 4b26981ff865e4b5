//! The read endpoints Grafana's Loki data source and Logs Drilldown call besides
//! `query`/`query_range`/`labels`, against the real binary: each request as the client sends it
//! (Grafana: nanosecond integers; Drilldown: RFC3339), each answer checked for the shape the
//! client's parser needs, before and after `/flush` (memory, then the store); every bad parameter
//! a 400 with a message; tenants kept apart with `-auth.enabled`.
#![allow(clippy::unwrap_used, clippy::type_complexity)]

use lode_testkit::bodies::{rfc3339_nanos, v1};
use lode_testkit::{DataDir, LodeProcess, now_ns};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_lode");
const JSON: (&str, &str) = ("content-type", "application/json");
const SEC: i64 = 1_000_000_000;

async fn push(p: &LodeProcess, tenant: Option<&str>, labels: Value, values: Value) {
    let mut headers = vec![JSON];
    if let Some(t) = tenant {
        headers.push(("X-Scope-OrgID", t));
    }
    let (s, body) = p.post("/loki/api/v1/push", &headers, v1(labels, values)).await.unwrap();
    assert_eq!(s, 204, "{body}");
}

/// GET `path`, expecting 200 and JSON.
async fn get_json(p: &LodeProcess, path: &str, params: &[(&str, &str)], headers: &[(&str, &str)]) -> Value {
    let (s, body) = p.get(path, params, headers).await.unwrap();
    assert_eq!(s, 200, "{path} {params:?}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {body}"))
}

/// The test data: two services, logfmt and JSON lines, structured metadata.
async fn seed(p: &LodeProcess, tenant: Option<&str>, t0: i64) {
    let ts = |d: i64| (t0 + d * SEC).to_string();
    push(
        p,
        tenant,
        json!({"app": "api", "env": "prod"}),
        json!([
            [ts(0), "level=info msg=\"request done\" status=200 took=12ms", {"trace_id": "t1"}],
            [ts(1), "level=error msg=\"request failed\" status=500 took=340ms", {"trace_id": "t2"}],
            [ts(2), "level=info msg=\"request done\" status=200 took=9ms"],
        ]),
    )
    .await;
    push(
        p,
        tenant,
        json!({"app": "web", "env": "dev"}),
        json!([
            [ts(0), r#"{"level":"info","user":{"id":"u1"},"bytes":1024}"#],
            [ts(3), r#"{"level":"warn","user":{"id":"u2"},"bytes":2048}"#],
        ]),
    )
    .await;
}

/// `series` as Grafana's label browser sends it, plus the POST form, the alias and `{}`.
async fn check_series(p: &LodeProcess, start: &str, end: &str) {
    let v = get_json(
        p,
        "/loki/api/v1/series",
        &[("match[]", r#"{app="api"}"#), ("start", start), ("end", end)],
        &[],
    )
    .await;
    assert_eq!(v, json!({"status": "success", "data": [{"app": "api", "env": "prod"}]}));
    for params in [
        vec![("match[]", "{}"), ("start", start), ("end", end)],
        vec![("start", start), ("end", end)],
        vec![
            ("match[]", r#"{app="api"}"#),
            ("match", r#"{env="dev"}"#),
            ("start", start),
            ("end", end),
        ],
    ] {
        let v = get_json(p, "/loki/api/v1/series", &params, &[]).await;
        assert_eq!(v["data"].as_array().unwrap().len(), 2, "{params:?}: {v}");
    }
    let v = get_json(
        p,
        "/loki/api/v1/series",
        &[("match[]", r#"{app="nothing"}"#), ("start", start), ("end", end)],
        &[],
    )
    .await;
    assert_eq!(
        v,
        json!({"status": "success", "data": []}),
        "an empty result keeps data"
    );
    let form = format!("match%5B%5D=%7Benv%3D%22dev%22%7D&start={start}&end={end}");
    let (s, body) = p
        .post(
            "/loki/api/v1/series",
            &[("content-type", "application/x-www-form-urlencoded")],
            form.into_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(s, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["data"], json!([{"app": "web", "env": "dev"}]));
    let v = get_json(
        p,
        "/api/prom/series",
        &[("match[]", r#"{app="web"}"#), ("start", start), ("end", end)],
        &[],
    )
    .await;
    assert_eq!(v["data"], json!([{"app": "web", "env": "dev"}]));
}

/// `index/stats` as the query editor's "will process" hint sends it.
async fn check_stats(p: &LodeProcess, start: &str, end: &str) {
    let v = get_json(
        p,
        "/loki/api/v1/index/stats",
        &[("query", r#"{app="api"}"#), ("start", start), ("end", end)],
        &[],
    )
    .await;
    for k in ["streams", "chunks", "bytes", "entries"] {
        assert!(v[k].is_u64(), "{k} in {v}");
    }
    assert_eq!(
        (v["streams"].as_u64(), v["entries"].as_u64()),
        (Some(1), Some(3)),
        "{v}"
    );
    assert!(v["bytes"].as_u64().unwrap() > 0);
    let v = get_json(
        p,
        "/loki/api/v1/index/stats",
        &[("query", r#"{app="nothing"}"#), ("start", start), ("end", end)],
        &[],
    )
    .await;
    assert_eq!(v, json!({"streams": 0, "chunks": 0, "bytes": 0, "entries": 0}));
}

/// The volume endpoints as Drilldown calls them (RFC3339, `limit=5000`).
async fn check_volume(p: &LodeProcess, start: &str, end: &str) {
    let v = get_json(
        p,
        "/loki/api/v1/index/volume",
        &[
            ("query", r#"{app=~".+"}"#),
            ("start", start),
            ("end", end),
            ("limit", "5000"),
            ("targetLabels", "app"),
        ],
        &[("X-Query-Tags", "Source=grafana-lokiexplore-app")],
    )
    .await;
    assert_eq!(v["status"], "success");
    assert_eq!(v["data"]["resultType"], "vector");
    let result = v["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 2, "{v}");
    let mut apps: Vec<&str> = result.iter().map(|r| r["metric"]["app"].as_str().unwrap()).collect();
    apps.sort();
    assert_eq!(apps, ["api", "web"]);
    for r in result {
        assert!(r["value"][0].is_number(), "{r}");
        assert!(r["value"][1].as_str().unwrap().parse::<u64>().unwrap() > 0, "{r}");
    }
    let sizes: Vec<u64> = result
        .iter()
        .map(|r| r["value"][1].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(sizes[0] >= sizes[1], "sorted by volume, largest first: {sizes:?}");

    let v = get_json(
        p,
        "/loki/api/v1/index/volume",
        &[
            ("query", r#"{env=~".+"}"#),
            ("start", start),
            ("end", end),
            ("aggregateBy", "labels"),
        ],
        &[],
    )
    .await;
    let metrics: Vec<Value> = v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["metric"].clone())
        .collect();
    assert_eq!(metrics, vec![json!({"env": ""})], "{v}");

    let v = get_json(
        p,
        "/loki/api/v1/index/volume_range",
        &[
            ("query", r#"{app="api"}"#),
            ("start", start),
            ("end", end),
            ("step", "60"),
        ],
        &[],
    )
    .await;
    assert_eq!(v["data"]["resultType"], "matrix");
    let series = v["data"]["result"].as_array().unwrap();
    assert_eq!(series.len(), 1, "{v}");
    assert_eq!(series[0]["metric"], json!({"app": "api"}));
    let points = series[0]["values"].as_array().unwrap();
    assert!(!points.is_empty());
    for pt in points {
        assert!(pt[0].is_number() && pt[1].is_string(), "{pt}");
    }
    let v = get_json(
        p,
        "/loki/api/v1/index/volume",
        &[("query", r#"{app="nothing"}"#), ("start", start), ("end", end)],
        &[],
    )
    .await;
    assert_eq!(v["data"]["result"], json!([]));
}

/// The Drilldown set: labels, fields, values, patterns, limits.
async fn check_drilldown(p: &LodeProcess, start: &str, end: &str) {
    let v = get_json(
        p,
        "/loki/api/v1/detected_labels",
        &[("query", "{}"), ("start", start), ("end", end)],
        &[],
    )
    .await;
    let labels = v["detectedLabels"].as_array().unwrap();
    let got: Vec<(String, u64)> = labels
        .iter()
        .map(|l| {
            (
                l["label"].as_str().unwrap().to_string(),
                l["cardinality"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, vec![("app".to_string(), 2), ("env".to_string(), 2)], "{v}");

    let v = get_json(
        p,
        "/loki/api/v1/detected_fields",
        &[
            ("query", r#"{app=~"api|web"}"#),
            ("start", start),
            ("end", end),
            ("limit", "1000"),
        ],
        &[],
    )
    .await;
    assert_eq!(v["limit"], 1000);
    let fields = v["fields"].as_array().unwrap();
    let field = |name: &str| {
        fields
            .iter()
            .find(|f| f["label"] == name)
            .unwrap_or_else(|| panic!("no field {name} in {v}"))
            .clone()
    };
    assert_eq!(field("status")["type"], "int");
    assert_eq!(field("status")["parsers"], json!(["logfmt"]));
    assert_eq!(field("took")["type"], "duration");
    assert_eq!(field("level")["cardinality"], 3);
    assert_eq!(field("trace_id")["parsers"], Value::Null, "structured metadata");
    assert_eq!(field("user_id")["jsonPath"], json!(["user", "id"]));
    assert_eq!(field("user_id")["parsers"], json!(["json"]));
    assert!(field("status").get("jsonPath").is_none(), "omitted when empty");

    let v = get_json(
        p,
        "/loki/api/v1/detected_field/level/values",
        &[
            ("query", r#"{app=~"api|web"}"#),
            ("start", start),
            ("end", end),
            ("limit", "1000"),
        ],
        &[],
    )
    .await;
    assert_eq!(v, json!({"values": ["error", "info", "warn"], "limit": 1000}));

    let v = get_json(
        p,
        "/loki/api/v1/patterns",
        &[
            ("query", r#"{app="api"}"#),
            ("start", start),
            ("end", end),
            ("step", "60s"),
        ],
        &[],
    )
    .await;
    assert_eq!(v["status"], "success");
    let pats = v["data"].as_array().unwrap();
    assert!(!pats.is_empty(), "{v}");
    let total: u64 = pats
        .iter()
        .flat_map(|pt| pt["samples"].as_array().unwrap().iter())
        .map(|s| {
            assert!(s[0].is_i64(), "integer seconds: {s}");
            s[1].as_u64().unwrap()
        })
        .sum();
    assert_eq!(total, 3, "every line counted once: {v}");
    assert_eq!(pats[0]["pattern"], "level=info msg=<_> status=<_> took=<_>");
    assert_eq!(pats[0]["level"], "info");
    // Each pattern works as the `|>` filter Drilldown builds from it.
    let q = format!(r#"{{app="api"}} |> `{}`"#, pats[0]["pattern"].as_str().unwrap());
    let r = p
        .query_range(&[("query", q.as_str()), ("start", start), ("end", end)])
        .await
        .unwrap();
    let n: usize = r["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["values"].as_array().unwrap().len())
        .sum();
    assert_eq!(n, 2, "{r}");

    let v = get_json(p, "/loki/api/v1/drilldown-limits", &[], &[]).await;
    assert!(v["limits"].is_object() && v["version"].is_string(), "{v}");
    assert_eq!(v["limits"]["volume_enabled"], true);
    assert_eq!(v["pattern_ingester_enabled"], true);
}

#[tokio::test]
async fn grafana_and_drilldown_requests_from_memory_and_store() {
    let data = DataDir::new().unwrap();
    let p = LodeProcess::start(BIN, &data, &[]).await.unwrap();
    let t0 = now_ns() - 120 * SEC;
    seed(&p, None, t0).await;
    // Grafana: nanosecond integers; Drilldown: RFC3339.
    let (ns_start, ns_end) = ((t0 - 600 * SEC).to_string(), (t0 + 600 * SEC).to_string());
    let (rfc_start, rfc_end) = (rfc3339_nanos(t0 - 600 * SEC), rfc3339_nanos(t0 + 600 * SEC));
    for round in ["memory", "store"] {
        check_series(&p, &ns_start, &ns_end).await;
        check_stats(&p, &ns_start, &ns_end).await;
        check_volume(&p, &rfc_start, &rfc_end).await;
        check_drilldown(&p, &rfc_start, &rfc_end).await;
        if round == "memory" {
            let (s, body) = p.post("/flush", &[], vec![]).await.unwrap();
            assert_eq!(s, 204, "{body}");
        }
    }
    // Defaults (the last hour) cover the data too.
    let v = get_json(&p, "/loki/api/v1/series", &[("match[]", r#"{app="api"}"#)], &[]).await;
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    p.stop().unwrap();
}

#[tokio::test]
async fn operational_endpoints() {
    let data = DataDir::new().unwrap();
    let p = LodeProcess::start(BIN, &data, &[]).await.unwrap();
    let (s, body) = p.get("/config", &[], &[]).await.unwrap();
    assert_eq!(s, 200);
    assert!(
        body.contains("auth_enabled: false") && body.contains("http_listen_port: 0"),
        "{body}"
    );
    let (_, diffs) = p.get("/config", &[("mode", "diffs")], &[]).await.unwrap();
    assert!(
        diffs.contains("http_listen_port: 0") && !diffs.contains("auth_enabled"),
        "{diffs}"
    );
    let (s, body) = p.get("/services", &[], &[]).await.unwrap();
    assert_eq!(s, 200);
    for m in ["distributor", "ingester", "querier", "server"] {
        assert!(body.contains(&format!("{m} => Running\n")), "{body}");
    }
    let v = get_json(&p, "/loki/api/v1/format_query", &[("query", r#"{a="b"}|="x""#)], &[]).await;
    assert_eq!(v, json!({"status": "success", "data": r#"{a="b"} |= "x""#}));
    let (s, body) = p
        .get("/loki/api/v1/format_query", &[("query", "{a=")], &[])
        .await
        .unwrap();
    assert_eq!(s, 400);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["status"], "invalid-query");
}

#[tokio::test]
async fn bad_parameters_are_400_with_a_message() {
    let data = DataDir::new().unwrap();
    let p = LodeProcess::start(BIN, &data, &[]).await.unwrap();
    let sel = r#"{app="a"}"#;
    let cases: Vec<(&str, Vec<(&str, &str)>, &str)> = vec![
        ("/loki/api/v1/series", vec![("match[]", "{app")], "parse error"),
        ("/loki/api/v1/series", vec![("match[]", r#"{app=""}"#)], "parse error"),
        (
            "/loki/api/v1/series",
            vec![("match[]", "{}"), ("match[]", sel)],
            "0 matchers in group",
        ),
        (
            "/loki/api/v1/series",
            vec![("match[]", sel), ("start", "yesterday")],
            "yesterday",
        ),
        (
            "/loki/api/v1/series",
            vec![("match[]", sel), ("start", "20"), ("end", "10")],
            "end timestamp",
        ),
        ("/api/prom/series", vec![("match[]", "nope")], "parse error"),
        ("/loki/api/v1/index/stats", vec![("query", "{app")], "parse error"),
        ("/loki/api/v1/index/stats", vec![("query", sel), ("end", "x")], "x"),
        ("/loki/api/v1/index/volume", vec![], "query parameter is required"),
        (
            "/loki/api/v1/index/volume",
            vec![("query", sel), ("aggregateBy", "pods")],
            "invalid aggregation option",
        ),
        (
            "/loki/api/v1/index/volume",
            vec![("query", sel), ("limit", "many")],
            "limit",
        ),
        (
            "/loki/api/v1/index/volume",
            vec![("query", sel), ("limit", "-3")],
            "limit must be a positive value",
        ),
        ("/loki/api/v1/index/volume", vec![("query", "{app")], "parse error"),
        (
            "/loki/api/v1/index/volume_range",
            vec![("query", sel), ("step", "0")],
            "step",
        ),
        (
            "/loki/api/v1/index/volume_range",
            vec![("query", sel), ("step", "soon")],
            "soon",
        ),
        (
            "/loki/api/v1/index/volume_range",
            vec![("query", sel), ("start", "0"), ("end", "100000"), ("step", "1")],
            "11,000",
        ),
        ("/loki/api/v1/detected_labels", vec![("query", "{app")], "parse error"),
        ("/loki/api/v1/detected_fields", vec![], "query parameter is required"),
        (
            "/loki/api/v1/detected_fields",
            vec![("query", sel), ("line_limit", "0")],
            "line_limit",
        ),
        (
            "/loki/api/v1/detected_fields",
            vec![("query", sel), ("limit", "x")],
            "limit",
        ),
        (
            "/loki/api/v1/detected_fields",
            vec![("query", r#"rate({app="a"}[1m])"#)],
            "expected a log query",
        ),
        (
            "/loki/api/v1/detected_field/level/values",
            vec![("query", "{app")],
            "parse error",
        ),
        ("/loki/api/v1/patterns", vec![], "query parameter is required"),
        ("/loki/api/v1/patterns", vec![("query", sel), ("step", "-1")], "step"),
        ("/loki/api/v1/patterns", vec![("query", "{")], "parse error"),
    ];
    for (path, params, msg) in cases {
        let (s, body) = p.get(path, &params, &[]).await.unwrap();
        assert_eq!(s, 400, "{path} {params:?}: {body}");
        assert!(body.contains(msg), "{path} {params:?}: {body}");
    }
}

#[tokio::test]
async fn tenants_see_only_their_own_streams() {
    let data = DataDir::new().unwrap();
    let p = LodeProcess::start(BIN, &data, &["-auth.enabled=true"]).await.unwrap();
    let t0 = now_ns() - 60 * SEC;
    push(
        &p,
        Some("team-a"),
        json!({"app": "a-only", "team": "a"}),
        json!([[t0.to_string(), "level=info x=1"]]),
    )
    .await;
    push(
        &p,
        Some("team-b"),
        json!({"app": "b-only", "team": "b"}),
        json!([[t0.to_string(), "level=warn secret=1"]]),
    )
    .await;
    let (start, end) = ((t0 - 60 * SEC).to_string(), (t0 + 60 * SEC).to_string());
    let range = [("start", start.as_str()), ("end", end.as_str())];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut v: Vec<(&str, &str)> = range.to_vec();
        v.extend_from_slice(extra);
        v
    };
    let a = [("X-Scope-OrgID", "team-a")];

    let v = get_json(&p, "/loki/api/v1/series", &with(&[("match[]", "{}")]), &a).await;
    assert_eq!(v["data"], json!([{"app": "a-only", "team": "a"}]));
    let v = get_json(
        &p,
        "/loki/api/v1/series",
        &with(&[("match[]", r#"{app="b-only"}"#)]),
        &a,
    )
    .await;
    assert_eq!(v["data"], json!([]));
    let v = get_json(
        &p,
        "/loki/api/v1/index/volume",
        &with(&[("query", r#"{app=~".+"}"#)]),
        &a,
    )
    .await;
    assert_eq!(v["data"]["result"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["data"]["result"][0]["metric"], json!({"app": "a-only"}));
    let v = get_json(
        &p,
        "/loki/api/v1/index/stats",
        &with(&[("query", r#"{app="b-only"}"#)]),
        &a,
    )
    .await;
    assert_eq!(v["streams"], 0);
    let v = get_json(&p, "/loki/api/v1/detected_labels", &with(&[]), &a).await;
    let names: Vec<&str> = v["detectedLabels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["label"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["app", "team"]);
    assert!(
        v["detectedLabels"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["cardinality"] == 1)
    );
    let v = get_json(
        &p,
        "/loki/api/v1/detected_fields",
        &with(&[("query", r#"{team=~".+"}"#)]),
        &a,
    )
    .await;
    let fields: Vec<&str> = v["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["label"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["level", "x"], "b's `secret` field stays b's");
    let v = get_json(
        &p,
        "/loki/api/v1/detected_field/level/values",
        &with(&[("query", r#"{team=~".+"}"#)]),
        &[("X-Scope-OrgID", "team-b")],
    )
    .await;
    assert_eq!(v["values"], json!(["warn"]));
    for path in [
        "/loki/api/v1/series",
        "/loki/api/v1/index/volume",
        "/loki/api/v1/detected_labels",
        "/loki/api/v1/detected_fields",
        "/loki/api/v1/drilldown-limits",
    ] {
        let (s, body) = p.get(path, &with(&[("query", "{}")]), &[]).await.unwrap();
        assert_eq!((s, body.as_str()), (401, "no org id\n"), "{path}");
    }
}
