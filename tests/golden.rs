//! Golden LogQL tests: every `tests/golden/cases/*.logql` is run against the real binary loaded
//! with `tests/golden/dataset.json`, once while the data is in ingester memory and once after
//! `/flush` (from chunks in the store), and compared with the checked-in `*.expected` answer
//! (status line, then the response's `data` without `stats`, or the error text).
//!
//! Regenerate the expected files with `LODE_GOLDEN_UPDATE=1 cargo test -p lode --test golden`
//! and review the diff: expected answers are Loki's documented semantics, not whatever we print.
//!
//! A case file starts with `# key: value` lines: `endpoint` (`query_range`, the default,
//! `query`, `labels` or `label/<name>/values`), and any request parameter (`start`, `end`,
//! `step`, `limit`, `direction`, `time`, `interval`); times may be written as `+N` seconds after
//! the dataset's base time. The rest of the file is the query, sent as `query=` unless empty (the
//! label endpoints take it as an optional selector).
//!
//! `docs/logql-coverage.md` maps every row of the LogQL feature matrix to its cases.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use lode_testkit::{DataDir, LodeProcess};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_lode");
const BASE_S: i64 = 1_700_000_000;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden")
}

/// The dataset as a Loki v1 push body with absolute nanosecond times.
fn dataset_body() -> Vec<u8> {
    let raw: Value =
        serde_json::from_str(&std::fs::read_to_string(golden_dir().join("dataset.json")).unwrap()).unwrap();
    let streams: Vec<Value> = raw["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let values: Vec<Value> = s["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| {
                    let ns = (BASE_S + v[0].as_i64().unwrap()) * 1_000_000_000;
                    let mut e = vec![Value::String(ns.to_string()), v[1].clone()];
                    if let Some(sm) = v.get(2) {
                        e.push(sm.clone());
                    }
                    Value::Array(e)
                })
                .collect();
            serde_json::json!({"stream": s["stream"], "values": values})
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({ "streams": streams })).unwrap()
}

struct Case {
    name: String,
    endpoint: String,
    params: Vec<(String, String)>,
    query: String,
}

fn parse_case(name: &str, text: &str) -> Case {
    let mut endpoint = "query_range".to_string();
    let mut params = Vec::new();
    let mut query = String::new();
    for line in text.lines() {
        if let Some((k, v)) = line.strip_prefix("# ").and_then(|kv| kv.split_once(':')) {
            let (k, v) = (k.trim(), v.trim());
            let v = match v.strip_prefix('+') {
                Some(off) => (BASE_S + off.parse::<i64>().unwrap()).to_string(),
                None => v.to_string(),
            };
            if k == "endpoint" {
                endpoint = v;
            } else {
                params.push((k.to_string(), v));
            }
            continue;
        }
        query.push_str(line);
        query.push('\n');
    }
    Case {
        name: name.to_string(),
        endpoint,
        params,
        query: query.trim().to_string(),
    }
}

async fn answer(p: &LodeProcess, c: &Case) -> String {
    let mut params: Vec<(&str, &str)> = c.params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    if !c.query.is_empty() {
        params.push(("query", &c.query));
    }
    let (status, body) = p
        .get(&format!("/loki/api/v1/{}", c.endpoint), &params, &[])
        .await
        .unwrap();
    if status != 200 {
        return format!("status: {status}\n{}\n", body.trim_end());
    }
    let mut v: Value = serde_json::from_str(&body).unwrap();
    if let Some(d) = v.get_mut("data").and_then(Value::as_object_mut) {
        d.remove("stats");
    }
    format!("status: 200\n{}\n", serde_json::to_string_pretty(&v["data"]).unwrap())
}

#[tokio::test]
async fn golden_queries() {
    let data = DataDir::new().unwrap();
    let cfg = data.path().join("lode.yaml");
    std::fs::write(&cfg, "limits_config:\n  reject_old_samples: false\n").unwrap();
    let p = LodeProcess::start(BIN, &data, &[&format!("-config.file={}", cfg.display())])
        .await
        .unwrap();
    let (s, body) = p
        .post(
            "/loki/api/v1/push",
            &[("content-type", "application/json")],
            dataset_body(),
        )
        .await
        .unwrap();
    assert_eq!(s, 204, "{body}");

    let mut cases: Vec<Case> = std::fs::read_dir(golden_dir().join("cases"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "logql"))
        .map(|path| {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            parse_case(&name, &std::fs::read_to_string(&path).unwrap())
        })
        .collect();
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(!cases.is_empty());
    let update = std::env::var_os("LODE_GOLDEN_UPDATE").is_some();
    let mut failures = Vec::new();
    for round in ["memory", "store"] {
        if round == "store" {
            assert_eq!(p.post("/flush", &[], vec![]).await.unwrap().0, 204);
        }
        for c in &cases {
            let got = answer(&p, c).await;
            let path = golden_dir().join("cases").join(format!("{}.expected", c.name));
            if update && round == "memory" {
                std::fs::write(&path, &got).unwrap();
                continue;
            }
            let want = std::fs::read_to_string(&path).unwrap_or_default();
            if got != want {
                failures.push(format!("{} ({round}):\n--- want\n{want}--- got\n{got}", c.name));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} golden case(s) differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
