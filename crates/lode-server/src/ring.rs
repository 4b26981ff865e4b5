//! `/ring`, as dskit's ring status page: an HTML table of the members (or, with
//! `Accept: application/json`, dskit's `{"shards": [...], "now": ...}`), and a "Forget" button
//! per member that posts `forget=<id>` back to the page.

use std::fmt::Write as _;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::RawQuery;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use lode_model::api::{RingStatus, RingView};
use lode_model::{ApiError, ErrorCode};

use crate::http::{HttpError, HttpResult, Params, bad_request};
use crate::{Handlers, State};

fn handler(h: &Handlers) -> HttpResult<&dyn RingStatus> {
    h.ring
        .as_deref()
        .ok_or_else(|| HttpError(ApiError::new(ErrorCode::NotFound, "this node has no ring")))
}

/// dskit answers JSON when the client accepts it, HTML otherwise.
fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("application/json"))
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn heartbeat_at(now: DateTime<Utc>, age: Duration) -> DateTime<Utc> {
    now - chrono::Duration::from_std(age).unwrap_or(chrono::Duration::zero())
}

/// dskit's shape, plus `roles`, `http_address`, `num_tokens`, `ownership` (percent) and
/// `heartbeat_age_seconds`. Token positions are not published by members, so `tokens` stays
/// empty and `num_tokens` gives the count; `registered_timestamp` is dskit's zero time
/// (unknown).
fn to_json(view: &RingView, now: DateTime<Utc>) -> Value {
    let shards: Vec<Value> = view
        .members
        .iter()
        .map(|m| {
            json!({
                "id": m.id,
                "state": m.state,
                "address": m.address,
                "http_address": m.http_address,
                "timestamp": rfc3339(heartbeat_at(now, m.heartbeat_age)),
                "registered_timestamp": "0001-01-01T00:00:00Z",
                "read_only": false,
                "zone": "",
                "tokens": [],
                "num_tokens": m.tokens,
                "ownership": m.ownership,
                "heartbeat_age_seconds": m.heartbeat_age.as_secs_f64(),
                "roles": m.roles,
            })
        })
        .collect();
    json!({ "shards": shards, "now": now.to_rfc3339_opts(SecondsFormat::Nanos, true) })
}

/// Escapes text for HTML element content and double-quoted attribute values.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn to_html(view: &RingView, now: DateTime<Utc>) -> String {
    let mut rows = String::new();
    for m in &view.members {
        let _ = writeln!(
            rows,
            "<tr><td>{id}</td><td>{roles}</td><td>{state}</td><td>{addr}</td><td>{age}s ago ({at})</td>\
             <td>{tokens}</td><td>{own:.3}%</td><td><form action=\"ring\" method=\"POST\">\
             <input type=\"hidden\" name=\"forget\" value=\"{id}\"><button type=\"submit\">Forget</button>\
             </form></td></tr>",
            id = escape(&m.id),
            roles = escape(&m.roles.join(", ")),
            state = escape(&m.state),
            addr = escape(&m.address),
            age = m.heartbeat_age.as_secs(),
            at = rfc3339(heartbeat_at(now, m.heartbeat_age)),
            tokens = m.tokens,
            own = m.ownership,
        );
    }
    format!(
        "<!DOCTYPE html>\n<html>\n<head><meta charset=\"UTF-8\"><title>Ring Status</title></head>\n<body>\n\
         <h1>Ring Status</h1>\n<p>Current time: {now}</p>\n<table border=\"1\">\n<thead><tr><th>Instance ID</th>\
         <th>Roles</th><th>State</th><th>Address</th><th>Last Heartbeat</th><th>Tokens</th><th>Ownership</th>\
         <th>Actions</th></tr></thead>\n<tbody>\n{rows}</tbody>\n</table>\n</body>\n</html>\n",
        now = rfc3339(now),
    )
}

fn render(view: &RingView, headers: &HeaderMap) -> Response {
    let now = Utc::now();
    if wants_json(headers) {
        let mut r = axum::Json(to_json(view, now)).into_response();
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        return r;
    }
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], to_html(view, now)).into_response()
}

/// `GET /ring`.
pub(crate) async fn page(axum::extract::State(h): State, headers: HeaderMap) -> HttpResult<Response> {
    let ring = handler(&h)?;
    Ok(render(&ring.ring().await, &headers))
}

/// `POST /ring` with `forget=<id>`: a browser is sent back to the page (303, Post/Redirect/Get,
/// as dskit does); a JSON client gets the ring as it is after the forget.
pub(crate) async fn forget(
    axum::extract::State(h): State,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResult<Response> {
    let ring = handler(&h)?;
    let params = Params::parse(q.as_deref(), &headers, &body);
    let Some(id) = params.get("forget") else {
        return Err(bad_request(
            "missing the forget form field: the id of the member to forget",
        ));
    };
    ring.forget(id).await.map_err(|e| {
        HttpError(ApiError::new(
            e.code,
            format!("error forgetting instance {id:?}: {}", e.message),
        ))
    })?;
    tracing::info!(member = %id, "ring: member forgotten");
    if wants_json(&headers) {
        return Ok(render(&ring.ring().await, &headers));
    }
    // A relative location: the page's own address, also behind a proxy that adds a prefix.
    Ok((StatusCode::SEE_OTHER, [(header::LOCATION, "ring")]).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escapes_member_text() {
        assert_eq!(escape(r#"<a href="x">&'"#), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }
}
