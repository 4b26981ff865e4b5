//! Tenants stay apart in a cluster: through the distributor, the gRPC hops to the ingesters and
//! back through the querier, from memory and from the store.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use futures::StreamExt;
use lode_testkit::cluster::{Member, free_udp_port, fs_store, push_once_ring_formed};
use lode_testkit::{DataDir, lines, now_ns};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

const BIN: &str = env!("CARGO_BIN_EXE_lode");

async fn start(target: &str, id: &str, sections: &str, gossip: u16, seed: u16) -> Member {
    Member::start(
        BIN,
        DataDir::new().unwrap(),
        target,
        id,
        sections,
        "10s",
        (gossip, seed),
    )
    .await
    .unwrap()
}

/// Tenants stay apart across the gRPC hops: two tenants push the same stream through the
/// distributor, and the querier gives each only its own lines through query_range, query,
/// labels, label values, series and live tail, from the ingesters and from the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tenants_stay_apart_through_every_read_in_a_cluster() {
    let store = DataDir::new().unwrap();
    let sections = format!("auth_enabled: true\n{}", fs_store(store.path()));
    let ports: Vec<u16> = (0..5).map(|_| free_udp_port().unwrap()).collect();
    let seed = ports[0];
    let mut members = Vec::new();
    for (i, port) in ports.iter().take(3).enumerate() {
        let id = format!("ingester-{i}");
        members.push(start("ingester", &id, &sections, *port, seed).await);
    }
    let dist = start("distributor", "d", &sections, ports[3], seed).await;
    let querier = start("querier", "q", &sections, ports[4], seed).await;

    let t0 = now_ns() - 60_000_000_000;
    let body = |tenant: &str, line: String, ts: i64| {
        serde_json::to_vec(&json!({"streams": [{
            "stream": {"app": "same", "owner": tenant},
            "values": [[ts.to_string(), line]]
        }]}))
        .unwrap()
    };
    let headers = |tenant: &'static str| [("content-type", "application/json"), ("x-scope-orgid", tenant)];
    let push = |tenant: &'static str, line: String, ts: i64| {
        let (d, body) = (&dist.p, body(tenant, line, ts));
        async move { d.post("/loki/api/v1/push", &headers(tenant), body).await.unwrap() }
    };
    // Until the ring has formed, pushes answer 503.
    push_once_ring_formed(&dist.p, &headers("team-a"), body("team-a", "a 0".into(), t0))
        .await
        .unwrap();
    for i in 1..5 {
        assert_eq!(push("team-a", format!("a {i}"), t0 + i).await.0, 204);
    }
    for i in 0..3 {
        assert_eq!(push("team-b", format!("b {i}"), t0 + i).await.0, 204);
    }

    let start = (t0 - 1_000_000_000).to_string();
    let read = |path: &'static str, params: Vec<(&'static str, String)>, tenant: &'static str| {
        let q = &querier.p;
        async move {
            let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let (s, body) = q.get(path, &params, &[("X-Scope-OrgID", tenant)]).await.unwrap();
            assert_eq!(s, 200, "{path}: {body}");
            serde_json::from_str::<Value>(&body).unwrap()
        }
    };
    // `live`: the lines pushed during the tail (one per tenant) count in query_range too.
    let check = |when: &'static str, live: usize| {
        let start = start.clone();
        async move {
            for (tenant, n, prefix) in [("team-a", 5, "a "), ("team-b", 3, "b ")] {
                // The querier learns the ingesters from gossip too: wait (bounded) for all lines.
                let deadline = Instant::now() + Duration::from_secs(30);
                let params = vec![("query", r#"{app="same"}"#.to_string()), ("start", start.clone())];
                let mut got = lines(&read("/loki/api/v1/query_range", params.clone(), tenant).await);
                while got.len() < n + live && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    got = lines(&read("/loki/api/v1/query_range", params.clone(), tenant).await);
                }
                assert_eq!(got.len(), n + live, "{when}, {tenant}: {got:?}");
                assert!(got.iter().all(|l| l.starts_with(prefix)), "{when}, {tenant}: {got:?}");
                let at = (t0 / 1_000_000_000 + 2).to_string();
                let v = read(
                    "/loki/api/v1/query",
                    vec![
                        ("query", r#"sum(count_over_time({app="same"}[5m]))"#.into()),
                        ("time", at),
                    ],
                    tenant,
                )
                .await;
                assert_eq!(
                    v["data"]["result"][0]["value"][1],
                    n.to_string(),
                    "{when}, {tenant}: {v}"
                );
                let v = read(
                    "/loki/api/v1/label/owner/values",
                    vec![("start", start.clone())],
                    tenant,
                )
                .await;
                assert_eq!(v["data"], json!([tenant]), "{when}");
                let v = read("/loki/api/v1/labels", vec![("start", start.clone())], tenant).await;
                assert_eq!(v["data"], json!(["app", "owner"]), "{when}");
                let v = read(
                    "/loki/api/v1/series",
                    vec![("match[]", "{app=\"same\"}".into()), ("start", start.clone())],
                    tenant,
                )
                .await;
                assert_eq!(v["data"], json!([{"app": "same", "owner": tenant}]), "{when}");
            }
        }
    };
    check("from the ingesters", 0).await;

    // Live tail through the querier (over gRPC from the ingesters): team-a sees only its lines.
    let url = format!(
        "{}/loki/api/v1/tail?query=%7Bapp%3D%22same%22%7D",
        querier.p.base().replacen("http", "ws", 1)
    );
    let mut req = url.into_client_request().unwrap();
    req.headers_mut().insert("x-scope-orgid", "team-a".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    // Give the subscriptions a moment to reach every ingester, then push for both tenants.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(push("team-b", "b live".into(), now_ns()).await.0, 204);
    assert_eq!(push("team-a", "a live".into(), now_ns()).await.0, 204);
    let mut tailed = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !tailed.contains(&"a live".to_string()) {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("the tailed line in time");
        if let Message::Text(t) = msg.unwrap().unwrap() {
            let v: Value = serde_json::from_str(&t).unwrap();
            for s in v["streams"].as_array().unwrap() {
                for e in s["values"].as_array().unwrap() {
                    tailed.push(e[1].as_str().unwrap().to_string());
                }
            }
        }
    }
    assert!(tailed.iter().all(|l| l.starts_with("a ")), "{tailed:?}");
    drop(ws);

    // From the store, after every ingester flushed its replicas.
    for m in &members {
        assert_eq!(m.p.post("/flush", &[], vec![]).await.unwrap().0, 204);
    }
    check("from the store", 1).await;
    for m in [querier, dist].into_iter().chain(members) {
        m.p.stop().unwrap();
    }
}
