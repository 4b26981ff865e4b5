//! Query endpoints: `query_range` (log queries), `labels` and `label/{name}/values`, with
//! Loki's parameter rules and error messages.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery};
use axum::http::HeaderMap;
use axum::response::Response;

use lode_model::api::{InstantQuery, LabelRequest, RangeQuery};
use lode_model::time::{NANOS_PER_SEC, now_nanos, parse_duration, parse_timestamp};
use lode_model::{ApiError, Direction, ErrorCode};

use crate::http::{HttpError, HttpResult, Params, bad_request, tenant};
use crate::render;
use crate::{Handlers, State};

const DEFAULT_SINCE: i64 = 3600 * NANOS_PER_SEC;
const DEFAULT_LIMIT: usize = 100;
const MAX_POINTS: i64 = 11_000;

fn querier(h: &Handlers) -> HttpResult<&dyn lode_model::api::QueryHandler> {
    h.query
        .as_deref()
        .ok_or_else(|| HttpError(ApiError::new(ErrorCode::NotFound, "this node does not run the querier")))
}

/// `start`, `end` and `since` as Loki reads them: `end` defaults to now, `start` to
/// `min(end, now) - since`, `since` to 1h.
pub(crate) fn bounds(p: &Params) -> HttpResult<(i64, i64)> {
    let now = now_nanos();
    let end = match p.get("end") {
        Some(s) => parse_timestamp(s).map_err(bad_request)?,
        None => now,
    };
    let since = match p.get("since") {
        Some(s) => i64::try_from(parse_duration(s).map_err(bad_request)?.as_nanos()).unwrap_or(i64::MAX),
        None => DEFAULT_SINCE,
    };
    let start = match p.get("start") {
        Some(s) => parse_timestamp(s).map_err(bad_request)?,
        None => end.min(now).saturating_sub(since),
    };
    if end < start {
        return Err(bad_request("end timestamp must not be before or equal to start time"));
    }
    Ok((start, end))
}

/// `step`/`interval`: float seconds or a duration; returned in ns.
pub(crate) fn parse_step(s: &str) -> Result<i64, String> {
    if let Ok(f) = s.parse::<f64>() {
        if !f.is_finite() || f.abs() > 1e11 {
            return Err(format!("cannot parse {s:?} to a valid duration"));
        }
        return Ok((f * 1e9).round() as i64);
    }
    parse_duration(s)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .map_err(|_| format!("cannot parse {s:?} to a valid duration"))
}

fn parse_limit(p: &Params) -> HttpResult<usize> {
    match p.get("limit") {
        Some(s) => {
            let n: i64 = s
                .parse()
                .map_err(|_| bad_request(format!("cannot parse limit {s:?}: not an integer")))?;
            if n <= 0 {
                return Err(bad_request("limit must be a positive value"));
            }
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        }
        None => Ok(DEFAULT_LIMIT),
    }
}

fn parse_direction(p: &Params) -> HttpResult<Direction> {
    match p.get("direction") {
        Some(d) => Direction::parse(d).ok_or_else(|| bad_request(format!("invalid direction '{d}'"))),
        None => Ok(Direction::Backward),
    }
}

fn range_query(p: &Params) -> HttpResult<RangeQuery> {
    let query = p
        .get("query")
        .ok_or_else(|| bad_request("query parameter is required"))?
        .to_string();
    let limit = parse_limit(p)?;
    let direction = parse_direction(p)?;
    let (start, end) = bounds(p)?;
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
    let interval = match p.get("interval") {
        Some(s) => parse_step(s).map_err(bad_request)?,
        None => 0,
    };
    if interval < 0 {
        return Err(bad_request("interval must be >= 0"));
    }
    Ok(RangeQuery {
        query,
        start,
        end,
        limit,
        direction,
        step,
        interval,
    })
}

pub(crate) async fn query_range(
    axum::extract::State(h): State,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResult<Response> {
    let tenant = tenant(&h, &headers)?;
    let querier = querier(&h)?;
    let p = Params::parse(q.as_deref(), &headers, &body);
    let req = range_query(&p)?;
    let resp = querier.query_range(&tenant, req).await?;
    Ok(render::query_response(&resp, render::encoding_flags(&headers)))
}

fn instant_query(p: &Params) -> HttpResult<InstantQuery> {
    let query = p
        .get("query")
        .ok_or_else(|| bad_request("query parameter is required"))?
        .to_string();
    let limit = parse_limit(p)?;
    let direction = parse_direction(p)?;
    let time = match p.get("time") {
        Some(s) => parse_timestamp(s).map_err(bad_request)?,
        None => now_nanos(),
    };
    Ok(InstantQuery {
        query,
        time,
        limit,
        direction,
    })
}

pub(crate) async fn query(
    axum::extract::State(h): State,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResult<Response> {
    let tenant = tenant(&h, &headers)?;
    let querier = querier(&h)?;
    let req = instant_query(&Params::parse(q.as_deref(), &headers, &body))?;
    let resp = querier.query_instant(&tenant, req).await?;
    Ok(render::query_response(&resp, render::encoding_flags(&headers)))
}

fn label_request(p: &Params) -> HttpResult<LabelRequest> {
    let (start, end) = bounds(p)?;
    Ok(LabelRequest {
        start,
        end,
        query: p.get("query").map(str::to_string),
    })
}

pub(crate) async fn labels(
    axum::extract::State(h): State,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResult<Response> {
    let tenant = tenant(&h, &headers)?;
    let querier = querier(&h)?;
    let req = label_request(&Params::parse(q.as_deref(), &headers, &body))?;
    let names = querier.label_names(&tenant, req).await?;
    Ok(render::string_list(&names))
}

pub(crate) async fn label_values(
    axum::extract::State(h): State,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResult<Response> {
    let tenant = tenant(&h, &headers)?;
    let querier = querier(&h)?;
    let req = label_request(&Params::parse(q.as_deref(), &headers, &body))?;
    let values = querier.label_values(&tenant, &name, req).await?;
    Ok(render::string_list(&values))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(q: &str) -> Params {
        Params::parse(Some(q), &HeaderMap::new(), b"")
    }

    #[test]
    fn range_params_follow_loki() {
        let r = range_query(&params(
            "query=%7Ba%3D%22b%22%7D&start=1700000000&end=1700003600&limit=5&direction=FORWARD",
        ))
        .unwrap();
        assert_eq!(
            (r.start, r.end, r.limit, r.direction),
            (
                1_700_000_000 * NANOS_PER_SEC,
                1_700_003_600 * NANOS_PER_SEC,
                5,
                Direction::Forward
            )
        );
        assert_eq!(r.step, 14 * NANOS_PER_SEC, "floor(3600/250) s");
        let err = |q: &str| range_query(&params(q)).err().map(|e| e.0.message).unwrap_or_default();
        assert_eq!(err("query=x&limit=0"), "limit must be a positive value");
        assert_eq!(err("query=x&direction=up"), "invalid direction 'up'");
        assert_eq!(
            err("query=x&start=20&end=10"),
            "end timestamp must not be before or equal to start time"
        );
        assert_eq!(
            err("query=x&step=0"),
            "zero or negative query resolution step widths are not accepted. Try a positive integer"
        );
        assert_eq!(
            err("query=x&start=0&end=100000&step=1"),
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"
        );
        assert_eq!(err("query=x&interval=-1"), "interval must be >= 0");
        assert!(err("query=x&start=yesterday").contains("yesterday"));
        assert_eq!(err("limit=5"), "query parameter is required");
    }

    #[test]
    fn since_sets_start() {
        let r = range_query(&params("query=x&end=1700003600&since=10m")).unwrap();
        assert_eq!(r.start, 1_700_003_000 * NANOS_PER_SEC);
        assert_eq!(parse_step("1.5").unwrap(), 1_500_000_000);
        assert_eq!(parse_step("1m").unwrap(), 60 * NANOS_PER_SEC);
    }
}
