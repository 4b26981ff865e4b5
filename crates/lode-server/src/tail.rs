//! `/loki/api/v1/tail`: Loki's live tail over a WebSocket. Parameters are checked and the tail
//! is started before the upgrade, so a bad query is a plain-text 400 as in Loki; then every
//! batch becomes one text frame, the server pings every second, and a closed client ends the
//! subscription.

use std::time::Duration;

use axum::extract::RawQuery;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::Response;

use lode_model::api::{TailReceiver, TailRequest};
use lode_model::time::{NANOS_PER_SEC, now_nanos, parse_timestamp};
use lode_model::{ApiError, ErrorCode};

use crate::http::{HttpError, HttpResult, Params, bad_request, tenant};
use crate::{State, render};

const DEFAULT_LIMIT: usize = 100;
const MAX_DELAY_FOR: u64 = 5;

fn tail_request(p: &Params) -> HttpResult<TailRequest> {
    let query = p
        .get("query")
        .ok_or_else(|| bad_request("query parameter is required"))?
        .to_string();
    let limit = match p.get("limit") {
        Some(s) => s
            .parse::<usize>()
            .map_err(|_| bad_request(format!("invalid limit {s:?}: must be a positive integer")))?,
        None => DEFAULT_LIMIT,
    };
    if limit == 0 {
        return Err(bad_request("limit must be a positive value"));
    }
    let start = match p.get("start") {
        Some(s) => parse_timestamp(s).map_err(bad_request)?,
        None => now_nanos().saturating_sub(3600 * NANOS_PER_SEC),
    };
    let delay_for = match p.get("delay_for") {
        Some(s) => s
            .parse::<u64>()
            .map_err(|_| bad_request(format!("invalid delay_for {s:?}: must be whole seconds")))?,
        None => 0,
    };
    if delay_for > MAX_DELAY_FOR {
        return Err(bad_request("delay_for can't be greater than 5"));
    }
    Ok(TailRequest {
        query,
        limit,
        start,
        delay_for: Duration::from_secs(delay_for),
    })
}

pub(crate) async fn tail(
    axum::extract::State(h): State,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> HttpResult<Response> {
    let tenant = tenant(&h, &headers)?;
    let tailer = h
        .tail
        .clone()
        .ok_or_else(|| HttpError(ApiError::new(ErrorCode::NotFound, "this node does not run the querier")))?;
    // Parameters first, so a bad one is named even without an upgrade (as Loki does).
    let req = tail_request(&Params::parse(q.as_deref(), &headers, &[]))?;
    let ws = ws.map_err(|e| {
        bad_request(format!(
            "websocket: the client is not using the websocket protocol: {e}"
        ))
    })?;
    let rx = tailer.tail(&tenant, req).await?;
    let flags = render::encoding_flags(&headers);
    Ok(ws.on_upgrade(move |socket| stream_to(socket, rx, flags)))
}

async fn stream_to(mut socket: WebSocket, mut rx: TailReceiver, flags: Vec<String>) {
    let mut ping = tokio::time::interval(Duration::from_secs(1));
    ping.tick().await;
    loop {
        tokio::select! {
            batch = rx.recv() => {
                let Some(b) = batch else {
                    // The sources went away (shutdown): say so, as Loki does on backend errors.
                    let _ = socket
                        .send(Message::Close(Some(CloseFrame { code: 1011, reason: "tail ended".into() })))
                        .await;
                    return;
                };
                if socket.send(Message::Text(render::tail_frame(&b, &flags).into())).await.is_err() {
                    return;
                }
            }
            _ = ping.tick() => {
                if socket.send(Message::Ping(Vec::new().into())).await.is_err() {
                    return;
                }
            }
            msg = socket.recv() => match msg {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}
