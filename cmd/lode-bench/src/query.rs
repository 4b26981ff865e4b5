//! The query phase: after the push, each query class runs `n` times against
//! `/loki/api/v1/query_range` over the pushed time range, one after another, and reports latency
//! and the bytes the server says it processed (`stats.summary.totalBytesProcessed`). Also the
//! read-back check: how many of the pushed lines a `count_over_time` finds.

use std::time::Instant;

use anyhow::{Context, bail};
use serde_json::Value;

use crate::Config;
use crate::generate::{ACCESS_PATTERN, LineFormat, NEEDLE};
use crate::stats::Summary;

/// One query class: a name and its LogQL for the workload's format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryClass {
    pub name: &'static str,
    pub logql: String,
}

/// The four classes of `benches/query_e2e.py`, written for the line format pushed: a rare
/// needle, a parser plus label filter, a metric by a parsed label, and a rate of a line filter.
pub fn classes(format: LineFormat, job: &str) -> Vec<QueryClass> {
    let sel = format!("{{job=\"{job}\"}}");
    let (parser, filter, by, frequent) = match format {
        LineFormat::Logfmt => ("logfmt".to_string(), r#"level="error""#, "level", r#""status=500""#),
        LineFormat::Json => ("json".to_string(), r#"level="error""#, "level", r#"`"status":500`"#),
        LineFormat::Access => (
            format!("pattern `{ACCESS_PATTERN}`"),
            r#"status="500""#,
            "status",
            r#"`" 500 `"#,
        ),
    };
    vec![
        QueryClass {
            name: "needle",
            logql: format!("{sel} |= \"{NEEDLE}\""),
        },
        QueryClass {
            name: "parse_filter",
            logql: format!("{sel} | {parser} | {filter}"),
        },
        QueryClass {
            name: "count_by",
            logql: format!("sum by ({by}) (count_over_time({sel} | {parser} [1m]))"),
        },
        QueryClass {
            name: "rate",
            logql: format!("sum(rate({sel} |= {frequent} [1m]))"),
        },
    ]
}

/// What one class measured over its runs.
#[derive(Debug, Clone)]
pub struct QueryResult {
    pub class: QueryClass,
    pub runs: usize,
    pub errors: usize,
    pub first_error: Option<String>,
    pub latency: Summary,
    /// `totalBytesProcessed` and `totalLinesProcessed` of the last successful run.
    pub bytes_processed: u64,
    pub lines_processed: u64,
    /// Server CPU over all runs of this class, when `--pid` is given.
    pub server_cpu_s: Option<f64>,
}

fn get(http: &reqwest::Client, cfg: &Config, path: &str, params: &[(&str, String)]) -> reqwest::RequestBuilder {
    let mut req = http.get(format!("{}{path}", cfg.read_url())).query(params);
    if let Some(t) = &cfg.tenant {
        req = req.header("X-Scope-OrgID", t);
    }
    req
}

async fn get_json(req: reqwest::RequestBuilder) -> anyhow::Result<Value> {
    let resp = req.send().await?;
    let status = resp.status();
    let text = resp.text().await?;
    if !status.is_success() {
        bail!("{status}: {}", text.chars().take(300).collect::<String>());
    }
    serde_json::from_str(&text).with_context(|| format!("response is not JSON: {text:.200}"))
}

/// Runs every class `runs` times over `[min_ts - 1s, max_ts + 1s]`.
pub async fn run(
    cfg: &Config,
    http: &reqwest::Client,
    min_ts: i64,
    max_ts: i64,
    runs: usize,
    mut cpu: impl FnMut() -> Option<f64>,
) -> Vec<QueryResult> {
    let start = min_ts - 1_000_000_000;
    let end = max_ts + 1_000_000_000;
    // About 250 points, at least one per second.
    let step = ((end - start) / 250 / 1_000_000_000).max(1);
    let mut results = Vec::new();
    for class in classes(cfg.workload.format, &cfg.workload.job) {
        let params = [
            ("query", class.logql.clone()),
            ("start", start.to_string()),
            ("end", end.to_string()),
            ("step", step.to_string()),
            ("limit", "1000".to_string()),
        ];
        let cpu0 = cpu();
        let mut lat = Vec::new();
        let mut r = QueryResult {
            class: class.clone(),
            runs,
            errors: 0,
            first_error: None,
            latency: Summary::default(),
            bytes_processed: 0,
            lines_processed: 0,
            server_cpu_s: None,
        };
        for _ in 0..runs {
            let t = Instant::now();
            match get_json(get(http, cfg, "/loki/api/v1/query_range", &params)).await {
                Ok(v) => {
                    lat.push(t.elapsed().as_micros() as u64);
                    let summary = &v["data"]["stats"]["summary"];
                    r.bytes_processed = summary["totalBytesProcessed"].as_u64().unwrap_or(0);
                    r.lines_processed = summary["totalLinesProcessed"].as_u64().unwrap_or(0);
                }
                Err(e) => {
                    r.errors += 1;
                    r.first_error.get_or_insert_with(|| e.to_string());
                }
            }
        }
        r.server_cpu_s = match (cpu0, cpu()) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        };
        r.latency = Summary::of_micros(lat);
        results.push(r);
    }
    results
}

/// How many lines of `job` the server returns for `[min_ts, max_ts]`: an instant
/// `sum(count_over_time(...))` whose range ends 1 ms after `max_ts`.
pub async fn count_lines(cfg: &Config, http: &reqwest::Client, min_ts: i64, max_ts: i64) -> anyhow::Result<u64> {
    let time = max_ts + 1_000_000;
    let range_ms = (time - min_ts) / 1_000_000 + 1;
    let q = format!("sum(count_over_time({{job=\"{}\"}}[{range_ms}ms]))", cfg.workload.job);
    let v = get_json(get(
        http,
        cfg,
        "/loki/api/v1/query",
        &[("query", q.clone()), ("time", time.to_string())],
    ))
    .await
    .with_context(|| format!("query {q}"))?;
    let result = v["data"]["result"].as_array().context("no data.result")?;
    let Some(first) = result.first() else {
        return Ok(0);
    };
    let value = first["value"][1].as_str().context("no value")?;
    Ok(value.parse::<f64>().context("value is not a number")? as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_parses_as_logql() {
        for format in [LineFormat::Logfmt, LineFormat::Json, LineFormat::Access] {
            for c in classes(format, "lode-bench") {
                lode_logql::parse_expr(&c.logql).unwrap_or_else(|e| panic!("{}: {e}", c.logql));
            }
        }
    }
}
