//! The read endpoints besides queries and labels: `series` (and the legacy
//! `/api/prom/series`), `index/stats`, `index/volume`, `index/volume_range`, the Logs Drilldown
//! set (`detected_labels`, `detected_fields`, `detected_field/{name}/values`, `patterns`,
//! `drilldown-limits`) and `format_query`, with Loki's parameters, shapes and 400s.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use lode_model::api::{
    DetectedFieldsRequest, MetadataHandler, PatternsRequest, SeriesRequest, StreamsRequest, VolumeAggregation,
    VolumeRequest,
};
use lode_model::time::NANOS_PER_SEC;
use lode_model::{ApiError, ErrorCode};

use crate::http::{HttpError, HttpResult, Params, bad_request, tenant};
use crate::query::{bounds, parse_step};
use crate::{Handlers, State, render};

const DEFAULT_VOLUME_LIMIT: usize = 100;
const DEFAULT_LINE_LIMIT: usize = 100;
const DEFAULT_FIELD_LIMIT: usize = 1000;
const MAX_POINTS: i64 = 11_000;

fn handler(h: &Handlers) -> HttpResult<&dyn MetadataHandler> {
    h.metadata
        .as_deref()
        .ok_or_else(|| HttpError(ApiError::new(ErrorCode::NotFound, "this node does not run the querier")))
}

fn json_body(status: StatusCode, v: &Value) -> Response {
    let mut r = (status, serde_json::to_vec(v).unwrap_or_default()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    r
}

fn ok(v: &Value) -> Response {
    json_body(StatusCode::OK, v)
}

/// A non-negative integer parameter; `default` when absent.
fn uint_param(p: &Params, name: &str, default: usize) -> HttpResult<usize> {
    match p.get(name) {
        None => Ok(default),
        Some(s) => s
            .parse::<i64>()
            .map_err(|_| bad_request(format!("cannot parse {name} {s:?}: not an integer")))
            .and_then(|n| usize::try_from(n).map_err(|_| bad_request(format!("{name} must be a positive value")))),
    }
}

/// `step` with Loki's default (`range / 250`, at least 1 s) and its limits.
fn step_param(p: &Params, start: i64, end: i64) -> HttpResult<i64> {
    let step = match p.get("step") {
        Some(s) => parse_step(s).map_err(bad_request)?,
        None => (end.saturating_sub(start) / 250 / NANOS_PER_SEC).max(1) * NANOS_PER_SEC,
    };
    if step <= 0 {
        return Err(bad_request(
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    if end.saturating_sub(start) / step > MAX_POINTS {
        return Err(bad_request(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    Ok(step)
}

fn required_query(p: &Params) -> HttpResult<String> {
    p.get("query")
        .map(str::to_string)
        .ok_or_else(|| bad_request("query parameter is required"))
}

/// `match[]` and its alias `match`, de-duplicated and sorted; a lone `{}` means every stream.
fn series_groups(p: &Params) -> Vec<String> {
    let mut groups: Vec<String> = p
        .get_all("match[]")
        .chain(p.get_all("match"))
        .map(str::to_string)
        .collect();
    groups.sort();
    groups.dedup();
    if groups.len() == 1 && groups[0].chars().filter(|c| !c.is_whitespace()).eq("{}".chars()) {
        groups.clear();
    }
    groups
}

pub(crate) async fn series(
    axum::extract::State(h): State,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResult<Response> {
    let tenant = tenant(&h, &headers)?;
    let m = handler(&h)?;
    let p = Params::parse(q.as_deref(), &headers, &body);
    let (start, end) = bounds(&p)?;
    let groups = series_groups(&p);
    let series = m.series(&tenant, SeriesRequest { start, end, groups }).await?;
    let data: Vec<Value> = series
        .into_iter()
        .map(|l| Value::Object(l.into_pairs().into_iter().map(|(k, v)| (k, Value::String(v))).collect()))
        .collect();
    Ok(ok(&json!({"status": "success", "data": data})))
}

fn streams_request(p: &Params) -> HttpResult<StreamsRequest> {
    let (start, end) = bounds(p)?;
    Ok(StreamsRequest {
        start,
        end,
        selector: p.get("query").map(str::to_string),
    })
}

pub(crate) async fn index_stats(
    axum::extract::State(h): State,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResult<Response> {
    let tenant = tenant(&h, &headers)?;
    let m = handler(&h)?;
    let req = streams_request(&Params::parse(q.as_deref(), &headers, &body))?;
    let s = m.index_stats(&tenant, req).await?;
    Ok(ok(&json!({
        "streams": s.streams,
        "chunks": s.chunks,
        "bytes": s.bytes,
        "entries": s.entries,
    })))
}

fn volume_request(p: &Params, range: bool) -> HttpResult<VolumeRequest> {
    let selector = required_query(p)?;
    let (start, end) = bounds(p)?;
    let limit = match uint_param(p, "limit", DEFAULT_VOLUME_LIMIT)? {
        0 => DEFAULT_VOLUME_LIMIT,
        n => n,
    };
    let target_labels = p
        .get("targetLabels")
        .map(|t| {
            t.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let aggregate_by = match p.get("aggregateBy") {
        None | Some("series") => VolumeAggregation::Series,
        Some("labels") => VolumeAggregation::Labels,
        Some(_) => return Err(bad_request("invalid aggregation option")),
    };
    let step = if range { Some(step_param(p, start, end)?) } else { None };
    Ok(VolumeRequest {
        selector,
        start,
        end,
        limit,
        target_labels,
        aggregate_by,
        step,
    })
}

async fn volume_common(
    h: &Handlers,
    q: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
    range: bool,
) -> HttpResult<Response> {
    let tenant = tenant(h, headers)?;
    let m = handler(h)?;
    let req = volume_request(&Params::parse(q, headers, body), range)?;
    let resp = m.volume(&tenant, req).await?;
    Ok(render::query_response(&resp, Vec::new()))
}

pub(crate) async fn volume(
    axum::extract::State(h): State,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResult<Response> {
    volume_common(&h, q.as_deref(), &headers, &body, false).await
}

pub(crate) async fn volume_range(
    axum::extract::State(h): State,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResult<Response> {
    volume_common(&h, q.as_deref(), &headers, &body, true).await
}

pub(crate) async fn detected_labels(
    axum::extract::State(h): State,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResult<Response> {
    let tenant = tenant(&h, &headers)?;
    let m = handler(&h)?;
    let req = streams_request(&Params::parse(q.as_deref(), &headers, &body))?;
    let labels = m.detected_labels(&tenant, req).await?;
    let data: Vec<Value> = labels
        .into_iter()
        .map(|l| json!({"label": l.label, "cardinality": l.cardinality}))
        .collect();
    Ok(ok(&json!({"detectedLabels": data})))
}

fn fields_request(p: &Params) -> HttpResult<DetectedFieldsRequest> {
    let query = required_query(p)?;
    let (start, end) = bounds(p)?;
    let line_limit = uint_param(p, "line_limit", DEFAULT_LINE_LIMIT)?;
    if line_limit == 0 {
        return Err(bad_request("line_limit must be a positive value"));
    }
    let limit = match p.get("limit") {
        Some(_) => uint_param(p, "limit", DEFAULT_FIELD_LIMIT)?,
        None => uint_param(p, "field_limit", DEFAULT_FIELD_LIMIT)?,
    };
    if limit == 0 {
        return Err(bad_request("limit must be a positive value"));
    }
    // Validated for Loki's errors; the sample is not bucketed by step.
    step_param(p, start, end)?;
    Ok(DetectedFieldsRequest {
        query,
        start,
        end,
        line_limit,
        limit,
    })
}

pub(crate) async fn detected_fields(
    axum::extract::State(h): State,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResult<Response> {
    let tenant = tenant(&h, &headers)?;
    let m = handler(&h)?;
    let req = fields_request(&Params::parse(q.as_deref(), &headers, &body))?;
    let limit = req.limit;
    let fields = m.detected_fields(&tenant, req).await?;
    let data: Vec<Value> = fields
        .into_iter()
        .map(|f| {
            let mut o = json!({
                "label": f.label,
                "type": f.field_type,
                "cardinality": f.cardinality,
                "parsers": f.parsers,
            });
            if !f.json_path.is_empty() {
                o["jsonPath"] = json!(f.json_path);
            }
            o
        })
        .collect();
    Ok(ok(&json!({"fields": data, "limit": limit})))
}

pub(crate) async fn detected_field_values(
    axum::extract::State(h): State,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResult<Response> {
    let tenant = tenant(&h, &headers)?;
    let m = handler(&h)?;
    let req = fields_request(&Params::parse(q.as_deref(), &headers, &body))?;
    let limit = req.limit;
    let values = m.detected_field_values(&tenant, &name, req).await?;
    Ok(ok(&json!({"values": values, "limit": limit})))
}

pub(crate) async fn patterns(
    axum::extract::State(h): State,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResult<Response> {
    let tenant = tenant(&h, &headers)?;
    let m = handler(&h)?;
    let p = Params::parse(q.as_deref(), &headers, &body);
    let query = required_query(&p)?;
    let (start, end) = bounds(&p)?;
    let step = step_param(&p, start, end)?;
    let found = m
        .patterns(
            &tenant,
            PatternsRequest {
                query,
                start,
                end,
                step,
            },
        )
        .await?;
    let data: Vec<Value> = found
        .into_iter()
        .map(|pt| {
            let samples: Vec<Value> = pt
                .samples
                .iter()
                .map(|(ts, n)| json!([ts.div_euclid(NANOS_PER_SEC), n]))
                .collect();
            let mut o = json!({"pattern": pt.pattern, "samples": samples});
            if let Some(l) = pt.level {
                o["level"] = json!(l);
            }
            o
        })
        .collect();
    Ok(ok(&json!({"status": "success", "data": data})))
}

/// The tenant's allow-listed limits, as Logs Drilldown reads them to gate features.
pub(crate) async fn drilldown_limits(axum::extract::State(h): State, headers: HeaderMap) -> HttpResult<Response> {
    let tenant = tenant(&h, &headers)?;
    let l = h.limits.tenant(&tenant);
    let limits = json!({
        "discover_log_levels": l.discover_log_levels,
        "discover_service_name": l.discover_service_name,
        "log_level_fields": l.log_level_fields,
        "max_entries_limit_per_query": l.max_entries_limit_per_query,
        "max_line_size_truncate": l.max_line_size_truncate,
        "max_query_bytes_read": "0B",
        "max_query_length": l.max_query_length.to_string(),
        "max_query_lookback": "0s",
        "max_query_range": "0s",
        "max_query_series": l.max_query_series,
        "metric_aggregation_enabled": false,
        "otlp_config": {},
        "pattern_persistence_enabled": false,
        "query_timeout": l.query_timeout.to_string(),
        "retention_period": "0s",
        "retention_stream": [],
        "volume_enabled": true,
        "volume_max_series": 1000,
    });
    Ok(ok(&json!({
        "limits": limits,
        "pattern_ingester_enabled": h.metadata.is_some(),
        "version": crate::ops::VERSION,
    })))
}

/// `format_query`: the query printed canonically; a query that does not parse is a 400 in
/// Loki's JSON form (not plain text, unlike other errors).
pub(crate) async fn format_query(RawQuery(q): RawQuery, headers: HeaderMap, body: Bytes) -> Response {
    let p = Params::parse(q.as_deref(), &headers, &body);
    match lode_logql::parse_unvalidated(p.get("query").unwrap_or_default()) {
        Ok(expr) => ok(&json!({"status": "success", "data": expr.to_string()})),
        Err(e) => json_body(
            StatusCode::BAD_REQUEST,
            &json!({"status": "invalid-query", "error": e.to_string()}),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(q: &str) -> Params {
        Params::parse(Some(q), &HeaderMap::new(), b"")
    }

    #[test]
    fn series_groups_merge_match_and_alias() {
        assert_eq!(
            series_groups(&params(
                "match[]=%7Bb%3D%221%22%7D&match=%7Ba%3D%221%22%7D&match[]=%7Bb%3D%221%22%7D"
            )),
            vec![r#"{a="1"}"#.to_string(), r#"{b="1"}"#.to_string()]
        );
        assert!(series_groups(&params("match[]=%7B%20%7D")).is_empty());
        assert!(series_groups(&params("")).is_empty());
    }

    #[test]
    fn volume_params_follow_loki() {
        let r = volume_request(
            &params("query=%7Ba%3D%22b%22%7D&start=1700000000&end=1700003600&limit=0&targetLabels=a,%20b,&aggregateBy=labels&step=60"),
            true,
        )
        .unwrap();
        assert_eq!(r.limit, DEFAULT_VOLUME_LIMIT);
        assert_eq!(r.target_labels, ["a", "b"]);
        assert_eq!(r.aggregate_by, VolumeAggregation::Labels);
        assert_eq!(r.step, Some(60 * NANOS_PER_SEC));
        assert_eq!(volume_request(&params("query=x"), false).unwrap().step, None);
        let err = |q: &str| {
            volume_request(&params(q), true)
                .err()
                .map(|e| e.0.message)
                .unwrap_or_default()
        };
        assert_eq!(err("query=x&aggregateBy=pods"), "invalid aggregation option");
        assert_eq!(err("limit=5"), "query parameter is required");
        assert_eq!(err("query=x&limit=-1"), "limit must be a positive value");
        assert_eq!(err("query=x&limit=ten"), "cannot parse limit \"ten\": not an integer");
        assert_eq!(
            err("query=x&step=0"),
            "zero or negative query resolution step widths are not accepted. Try a positive integer"
        );
    }

    #[test]
    fn field_params_follow_loki() {
        let r = fields_request(&params("query=x&field_limit=5&line_limit=7")).unwrap();
        assert_eq!((r.limit, r.line_limit), (5, 7));
        let r = fields_request(&params("query=x&limit=3&field_limit=5")).unwrap();
        assert_eq!((r.limit, r.line_limit), (3, DEFAULT_LINE_LIMIT));
        let err = |q: &str| {
            fields_request(&params(q))
                .err()
                .map(|e| e.0.message)
                .unwrap_or_default()
        };
        assert_eq!(err("query=x&line_limit=0"), "line_limit must be a positive value");
        assert_eq!(err("query=x&limit=0"), "limit must be a positive value");
        assert_eq!(err(""), "query parameter is required");
        assert!(err("query=x&start=soon").contains("soon"));
    }
}
