//! Operations endpoints: readiness, flush, metrics, build info, `/config`, `/services`, and the
//! 404 for the rest.

use std::sync::atomic::Ordering;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus::{Encoder, TextEncoder};

use lode_model::{ApiError, ErrorCode};

use crate::State;
use crate::http::{HttpError, HttpResult};

pub(crate) async fn ready(axum::extract::State(h): State) -> Response {
    if h.stopping.load(Ordering::Relaxed) {
        return (StatusCode::SERVICE_UNAVAILABLE, "Application is stopping\n").into_response();
    }
    if let Some(reason) = h.ingester.as_ref().and_then(|i| i.not_ready_reason()) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("Ingester not ready: {reason}\n"),
        )
            .into_response();
    }
    (StatusCode::OK, "ready\n").into_response()
}

/// Cuts and flushes every in-memory chunk, then answers 204 (Loki's `/flush`).
pub(crate) async fn flush(axum::extract::State(h): State) -> HttpResult<StatusCode> {
    let Some(ing) = &h.ingester else {
        return Err(HttpError(ApiError::new(
            ErrorCode::NotFound,
            "this node does not run the ingester",
        )));
    };
    ing.flush_all().await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn metrics(axum::extract::State(h): State) -> Response {
    let mut buf = Vec::new();
    let enc = TextEncoder::new();
    if let Err(e) = enc.encode(&h.registry.gather(), &mut buf) {
        return HttpError(ApiError::internal(format!("cannot encode metrics: {e}"))).into_response();
    }
    ([(header::CONTENT_TYPE, enc.format_type().to_string())], buf).into_response()
}

/// The Loki-like version Lode reports (buildinfo, drilldown-limits).
pub(crate) const VERSION: &str = concat!("3.5.0-lode-", env!("CARGO_PKG_VERSION"));

pub(crate) async fn buildinfo() -> Response {
    let body = serde_json::json!({
        "version": VERSION,
        "revision": "",
        "branch": "",
        "buildUser": "",
        "buildDate": "",
        "goVersion": "",
    });
    axum::Json(body).into_response()
}

pub(crate) async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "404 page not found\n",
    )
        .into_response()
}

fn text(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

/// Keys of `current` whose values differ from `defaults`, recursively (`/config?mode=diffs`).
fn yaml_diff(current: &serde_yaml::Value, defaults: &serde_yaml::Value) -> Option<serde_yaml::Value> {
    match (current, defaults) {
        (serde_yaml::Value::Mapping(c), serde_yaml::Value::Mapping(d)) => {
            let mut out = serde_yaml::Mapping::new();
            for (k, v) in c {
                let diff = match d.get(k) {
                    Some(dv) => yaml_diff(v, dv),
                    None => Some(v.clone()),
                };
                if let Some(diff) = diff {
                    out.insert(k.clone(), diff);
                }
            }
            (!out.is_empty()).then_some(serde_yaml::Value::Mapping(out))
        }
        (c, d) if c == d => None,
        (c, _) => Some(c.clone()),
    }
}

/// `/config`: the effective config as YAML; `?mode=defaults` the defaults, `?mode=diffs` only
/// what differs from them.
pub(crate) async fn config(
    axum::extract::State(h): State,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
) -> Response {
    let mode = form_urlencoded::parse(q.as_deref().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "mode")
        .map(|(_, v)| v.into_owned());
    match mode.as_deref() {
        None | Some("") => text(StatusCode::OK, h.config.current.clone()),
        Some("defaults") => text(StatusCode::OK, h.config.defaults.clone()),
        Some("diffs") => {
            let parse = |s: &str| serde_yaml::from_str::<serde_yaml::Value>(s).unwrap_or(serde_yaml::Value::Null);
            let diff = yaml_diff(&parse(&h.config.current), &parse(&h.config.defaults))
                .unwrap_or(serde_yaml::Value::Mapping(Default::default()));
            text(StatusCode::OK, serde_yaml::to_string(&diff).unwrap_or_default())
        }
        Some(m) => text(
            StatusCode::BAD_REQUEST,
            format!("unknown value for mode query parameter: {m:?}\n"),
        ),
    }
}

/// `/services`: each running role and its state, one `<module> => <State>` line each.
pub(crate) async fn services(axum::extract::State(h): State) -> Response {
    let stopping = h.stopping.load(Ordering::Relaxed);
    let state = |starting: bool| match (stopping, starting) {
        (true, _) => "Stopping",
        (false, true) => "Starting",
        (false, false) => "Running",
    };
    let mut lines: Vec<(&str, &str)> = vec![("server", state(false))];
    if h.push.is_some() {
        lines.push(("distributor", state(false)));
        lines.push(("ring", state(false)));
    }
    if let Some(i) = &h.ingester {
        lines.push(("ingester", state(i.not_ready_reason().is_some())));
        lines.push(("store", state(false)));
    }
    if h.query.is_some() {
        lines.push(("querier", state(false)));
    }
    lines.sort();
    let body: String = lines.iter().map(|(m, s)| format!("{m} => {s}\n")).collect();
    text(StatusCode::OK, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_diffs_keep_only_changed_keys() {
        let cur: serde_yaml::Value = serde_yaml::from_str("a: 1\nb:\n  c: 2\n  d: 3\ne: [1]\n").unwrap();
        let def: serde_yaml::Value = serde_yaml::from_str("a: 1\nb:\n  c: 2\n  d: 4\ne: [1]\n").unwrap();
        let d = yaml_diff(&cur, &def).unwrap();
        assert_eq!(serde_yaml::to_string(&d).unwrap(), "b:\n  d: 3\n");
        assert!(yaml_diff(&def, &def).is_none());
    }
}
