//! Live tail over a WebSocket against the real binary, as Grafana's Live mode uses it: the
//! backfill first, then new lines through the query's pipeline, per tenant; bad parameters are
//! plain-text 400s before the upgrade.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use futures::StreamExt;
use lode_testkit::{DataDir, LodeProcess, now_ns};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const BIN: &str = env!("CARGO_BIN_EXE_lode");

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn push(p: &LodeProcess, tenant: &str, app: &str, lines: &[(i64, &str)]) {
    let values: Vec<Value> = lines.iter().map(|(t, l)| json!([t.to_string(), l])).collect();
    let body = serde_json::to_vec(&json!({"streams": [{"stream": {"app": app}, "values": values}]})).unwrap();
    let (s, text) = p
        .post(
            "/loki/api/v1/push",
            &[("content-type", "application/json"), ("x-scope-orgid", tenant)],
            body,
        )
        .await
        .unwrap();
    assert_eq!(s, 204, "{text}");
}

async fn connect(p: &LodeProcess, tenant: &str, params: &str, categorize: bool) -> Result<Socket, u16> {
    let url = format!("{}/loki/api/v1/tail?{params}", p.base().replacen("http", "ws", 1));
    let mut req = url.into_client_request().unwrap();
    req.headers_mut().insert("x-scope-orgid", tenant.parse().unwrap());
    if categorize {
        req.headers_mut()
            .insert("x-loki-response-encoding-flags", "categorize-labels".parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((s, _)) => Ok(s),
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => Err(r.status().as_u16()),
        Err(e) => panic!("{e}"),
    }
}

/// The next text frame (pings are skipped), within 10 s.
async fn frame(ws: &mut Socket) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("a frame in time");
        match msg.unwrap().unwrap() {
            Message::Text(t) => return serde_json::from_str(&t).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn lines(v: &Value) -> Vec<String> {
    v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| {
            s["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e[1].as_str().unwrap().to_string())
        })
        .collect()
}

fn q(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn tail_sends_the_backfill_then_live_lines_per_tenant() {
    let data = DataDir::new().unwrap();
    let p = LodeProcess::start(BIN, &data, &["-auth.enabled=true"]).await.unwrap();
    let t0 = now_ns() - 5_000_000_000;
    push(
        &p,
        "a",
        "web",
        &[(t0, "old keep 1"), (t0 + 1, "old skip"), (t0 + 2, "old keep 2")],
    )
    .await;
    push(&p, "b", "web", &[(t0, "b keep secret")]).await;

    let query = q(r#"{app="web"} |= "keep""#);
    let mut ws = connect(&p, "a", &format!("query={query}&limit=10"), false)
        .await
        .unwrap();
    let first = frame(&mut ws).await;
    assert_eq!(lines(&first), ["old keep 1", "old keep 2"], "backfill, oldest first");
    assert_eq!(first["streams"][0]["stream"], json!({"app": "web"}));
    assert!(first.get("dropped_entries").is_none());

    push(&p, "b", "web", &[(t0 + 10, "b keep live")]).await;
    push(&p, "a", "web", &[(t0 + 10, "live keep"), (t0 + 11, "live skip")]).await;
    push(&p, "a", "api", &[(t0 + 10, "other stream keep")]).await;
    let live = frame(&mut ws).await;
    assert_eq!(lines(&live), ["live keep"]);
    assert_eq!(live["streams"][0]["values"][0][0], (t0 + 10).to_string());

    // The categorize flag: encodingFlags and three-element entries with parsed labels.
    let mut cat = connect(
        &p,
        "a",
        &format!("query={}&limit=1", q(r#"{app="web"} | logfmt"#)),
        true,
    )
    .await
    .unwrap();
    let backfill = frame(&mut cat).await;
    assert_eq!(backfill["encodingFlags"], json!(["categorize-labels"]));
    push(&p, "a", "web", &[(t0 + 20, "level=warn msg=hi")]).await;
    let v = frame(&mut cat).await;
    assert_eq!(v["streams"][0]["values"][0][1], "level=warn msg=hi");
    assert_eq!(
        v["streams"][0]["values"][0][2]["parsed"],
        json!({"level": "warn", "msg": "hi"})
    );
    let _ = ws.close(None).await;
    let _ = cat.close(None).await;

    // Bad parameters are refused before the upgrade.
    assert_eq!(connect(&p, "a", "query=%7Bapp%3D", false).await.unwrap_err(), 400);
    assert_eq!(
        connect(&p, "a", &format!("query={query}&delay_for=6"), false)
            .await
            .unwrap_err(),
        400
    );
    assert_eq!(
        connect(
            &p,
            "a",
            &format!("query={}", q(r#"count_over_time({app="web"}[1m])"#)),
            false
        )
        .await
        .unwrap_err(),
        400
    );
    let (s, body) = p
        .get(
            "/loki/api/v1/tail",
            &[("query", r#"{app="web"}"#), ("delay_for", "6")],
            &[("x-scope-orgid", "a")],
        )
        .await
        .unwrap();
    assert_eq!((s, body.as_str()), (400, "delay_for can't be greater than 5\n"));
    p.stop().unwrap();
}

#[tokio::test]
async fn delay_for_holds_lines_to_send_them_together() {
    let data = DataDir::new().unwrap();
    let p = LodeProcess::start(BIN, &data, &[]).await.unwrap();
    let mut ws = connect(
        &p,
        "fake",
        &format!("query={}&delay_for=1", q(r#"{app=~"x|y"}"#)),
        false,
    )
    .await
    .unwrap();
    let t0 = now_ns() - 1_000_000_000;
    push(&p, "fake", "y", &[(t0 + 5, "second")]).await;
    push(&p, "fake", "x", &[(t0 + 1, "first")]).await;
    let v = frame(&mut ws).await;
    let mut got: Vec<(String, String)> = v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| {
            s["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| (e[0].as_str().unwrap().to_string(), e[1].as_str().unwrap().to_string()))
        })
        .collect();
    got.sort();
    assert_eq!(got.len(), 2, "both pushes arrive in one frame: {v}");
    p.stop().unwrap();
}
