//! The roles as separate processes on loopback: three ingesters, a distributor and a querier,
//! gossiping over chitchat, talking gRPC, sharing one object store. Every line pushed through
//! the distributor (replication factor 3) comes back through the querier exactly once, from
//! the ingesters' memory and again after they flushed their replicas' chunks; an ingester
//! killed with SIGKILL costs no read or write, and after its restart nothing is lost or doubled.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use lode_testkit::{DataDir, LodeProcess, now_ns};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_lode");

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Member {
    data: DataDir,
    p: LodeProcess,
}

async fn start(target: &str, id: &str, store: &std::path::Path, gossip: u16, seed: u16) -> Member {
    start_in(DataDir::new().unwrap(), target, id, store, gossip, seed).await
}

/// Starts a member whose WAL and config live in `data` (a restart passes the same one).
async fn start_in(data: DataDir, target: &str, id: &str, store: &std::path::Path, gossip: u16, seed: u16) -> Member {
    let cfg = data.path().join("lode.yaml");
    std::fs::write(
        &cfg,
        format!(
            "storage_config:\n  filesystem:\n    directory: {}\nmemberlist:\n  gossip_interval: 100ms\n  heartbeat_timeout: 10s\n",
            store.display()
        ),
    )
    .unwrap();
    let p = LodeProcess::start(
        BIN,
        &data,
        &[
            &format!("-config.file={}", cfg.display()),
            &format!("-target={target}"),
            &format!("-common.instance-id={id}"),
            "-server.grpc-listen-address=127.0.0.1",
            "-server.grpc-listen-port=0",
            "-memberlist.bind-addr=127.0.0.1",
            &format!("-memberlist.bind-port={gossip}"),
            &format!("-memberlist.join=127.0.0.1:{seed}"),
        ],
    )
    .await
    .unwrap();
    Member { data, p }
}

async fn query(p: &LodeProcess, t0: i64) -> Value {
    let start = (t0 - 1).to_string();
    p.query_range(&[("query", r#"{app="cluster"}"#), ("start", &start), ("limit", "5000")])
        .await
        .unwrap()
}

fn lines_of(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v["data"]["result"]
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
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_ingesters_behind_a_distributor_and_a_querier_return_every_line_once() {
    let store = DataDir::new().unwrap();
    let ports: Vec<u16> = (0..5).map(|_| free_udp_port()).collect();
    let seed = ports[0];
    let mut ingesters: Vec<Member> = Vec::new();
    for (i, port) in ports.iter().take(3).enumerate() {
        ingesters.push(start("ingester", &format!("ingester-{i}"), store.path(), *port, seed).await);
    }
    let dist = start("distributor", "distributor-0", store.path(), ports[3], seed).await;
    let querier = start("querier", "querier-0", store.path(), ports[4], seed).await;

    // Until the distributor sees a quorum of ACTIVE ingesters, pushes answer 503.
    let t0 = now_ns() - 60_000_000_000;
    let mut expected = Vec::new();
    let streams: Vec<Value> = (0..3)
        .map(|s| {
            let values: Vec<Value> = (0..100)
                .map(|i| {
                    let line = format!("stream {s} line {i}");
                    expected.push(line.clone());
                    json!([(t0 + i * 1_000_000).to_string(), line])
                })
                .collect();
            json!({"stream": {"app": "cluster", "s": s.to_string()}, "values": values})
        })
        .collect();
    let body = serde_json::to_vec(&json!({ "streams": streams })).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (s, text) = dist
            .p
            .post(
                "/loki/api/v1/push",
                &[("content-type", "application/json")],
                body.clone(),
            )
            .await
            .unwrap();
        if s == 204 {
            break;
        }
        assert_eq!(s, 503, "{text}");
        assert!(
            Instant::now() < deadline,
            "the ring never formed: {text}\n{}",
            dist.p.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    expected.sort();

    // The querier learns the ingesters from gossip too; wait (bounded) until it answers fully.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut got = lines_of(&query(&querier.p, t0).await);
    while got != expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        got = lines_of(&query(&querier.p, t0).await);
    }
    assert_eq!(got.len(), expected.len(), "every line once, from memory");
    assert_eq!(got, expected);

    // Each ingester holds a replica: after all three flush, the store has three copies of
    // every chunk, and the querier still returns each line once.
    for ing in &ingesters {
        assert_eq!(ing.p.post("/flush", &[], vec![]).await.unwrap().0, 204);
    }
    assert_eq!(
        lines_of(&query(&querier.p, t0).await),
        expected,
        "every line once, from the store"
    );
    // An instant query a whole second after the last line (so step alignment cannot cut the
    // window): every line counted once across the three replicas' chunks.
    let at = (t0 / 1_000_000_000 + 2).to_string();
    let (status, body) = querier
        .p
        .get(
            "/loki/api/v1/query",
            &[
                ("query", r#"sum(count_over_time({app="cluster"}[10m]))"#),
                ("time", &at),
            ],
            &[],
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["data"]["result"][0]["value"][1], "300", "{v}");

    // Kill one ingester with SIGKILL: reads and writes go on with the two replicas left.
    let victim = ingesters.remove(1);
    let Member {
        data: victim_data,
        p: victim_p,
    } = victim;
    victim_p.kill9().unwrap();
    let t1 = t0 + 1_000_000_000;
    let more: Vec<Value> = (0..50)
        .map(|i| {
            let line = format!("after the kill {i}");
            expected.push(line.clone());
            json!([(t1 + i * 1_000_000).to_string(), line])
        })
        .collect();
    let body =
        serde_json::to_vec(&json!({"streams": [{"stream": {"app": "cluster", "s": "k"}, "values": more}]})).unwrap();
    let (s, text) = dist
        .p
        .post("/loki/api/v1/push", &[("content-type", "application/json")], body)
        .await
        .unwrap();
    assert_eq!(s, 204, "a quorum of two replicas takes the write: {text}");
    expected.sort();
    assert_eq!(
        lines_of(&query(&querier.p, t0).await),
        expected,
        "a dead replica fails no read"
    );

    // It restarts on its data (WAL replay), rejoins, and nothing is lost or doubled.
    let back = start_in(victim_data, "ingester", "ingester-1", store.path(), ports[1], seed).await;
    ingesters.push(back);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut got = lines_of(&query(&querier.p, t0).await);
    while got != expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        got = lines_of(&query(&querier.p, t0).await);
    }
    assert_eq!(got, expected, "after the restart");

    for m in [querier, dist].into_iter().chain(ingesters) {
        m.p.stop().unwrap();
    }
}
