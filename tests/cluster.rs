//! The roles as separate processes on loopback: three ingesters, a distributor and a querier,
//! gossiping over chitchat, talking gRPC, sharing one object store. Every line pushed through
//! the distributor (replication factor 3) comes back through the querier exactly once, from
//! the ingesters' memory and again after they flushed their replicas' chunks; an ingester
//! killed with SIGKILL costs no read or write, and after its restart nothing is lost or doubled.
//! Then the full topology (2 distributors, 3 ingesters, 2 queriers over S3) while the ring
//! changes under load. Tenant separation in a cluster: `cluster_tenants.rs`.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use lode_testkit::cluster::{self, Member, fs_store, push_once_ring_formed};
use lode_testkit::{DataDir, LodeProcess, lines, now_ns};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_lode");

fn free_udp_port() -> u16 {
    cluster::free_udp_port().unwrap()
}

async fn start(target: &str, id: &str, store: &std::path::Path, gossip: u16, seed: u16) -> Member {
    start_in(DataDir::new().unwrap(), target, id, &fs_store(store), gossip, seed).await
}

/// Starts a member whose WAL and config live in `data` (a restart passes the same one), with
/// `sections` (a `storage_config:` section, plus any other top-level sections) in its config.
async fn start_in(data: DataDir, target: &str, id: &str, sections: &str, gossip: u16, seed: u16) -> Member {
    Member::start(BIN, data, target, id, sections, "10s", (gossip, seed))
        .await
        .unwrap()
}

async fn query(p: &LodeProcess, t0: i64) -> Value {
    let start = (t0 - 1).to_string();
    p.query_range(&[("query", r#"{app="cluster"}"#), ("start", &start), ("limit", "5000")])
        .await
        .unwrap()
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
    push_once_ring_formed(&dist.p, &[("content-type", "application/json")], body)
        .await
        .unwrap();
    expected.sort();

    // The querier learns the ingesters from gossip too; wait (bounded) until it answers fully.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut got = lines(&query(&querier.p, t0).await);
    while got != expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        got = lines(&query(&querier.p, t0).await);
    }
    assert_eq!(got.len(), expected.len(), "every line once, from memory");
    assert_eq!(got, expected);

    // Each ingester holds a replica: after all three flush, the store has three copies of
    // every chunk, and the querier still returns each line once.
    for ing in &ingesters {
        assert_eq!(ing.p.post("/flush", &[], vec![]).await.unwrap().0, 204);
    }
    assert_eq!(
        lines(&query(&querier.p, t0).await),
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
        lines(&query(&querier.p, t0).await),
        expected,
        "a dead replica fails no read"
    );

    // It restarts on its data (WAL replay), rejoins, and nothing is lost or doubled.
    let back = start_in(
        victim_data,
        "ingester",
        "ingester-1",
        &fs_store(store.path()),
        ports[1],
        seed,
    )
    .await;
    ingesters.push(back);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut got = lines(&query(&querier.p, t0).await);
    while got != expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        got = lines(&query(&querier.p, t0).await);
    }
    assert_eq!(got, expected, "after the restart");

    for m in [querier, dist].into_iter().chain(ingesters) {
        m.p.stop().unwrap();
    }
}

/// What one pusher of the bounded load did.
#[derive(Default)]
struct Pushed {
    /// Lines of requests answered 204.
    acked: Vec<String>,
    /// Every line sent, acknowledged or not (a refused request may still have reached a replica).
    sent: Vec<String>,
    /// Refusals by status (each retried).
    refused: std::collections::BTreeMap<u16, usize>,
}

/// One pusher: until `stop` (and at most `batches` requests), each request with `per_stream`
/// new lines for each of its three streams, alternating between `distributors`. A refused
/// request is retried with the same body (as agents do: the replicas that took it drop the
/// exact copies) up to ten times.
async fn push_load(
    distributors: Vec<String>,
    pusher: usize,
    batches: usize,
    per_stream: usize,
    t0: i64,
    progress: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Pushed {
    let http = reqwest::Client::new();
    let mut out = Pushed::default();
    for b in 0..batches {
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
        let mut lines = Vec::new();
        let streams: Vec<Value> = (0..3)
            .map(|s| {
                let values: Vec<Value> = (0..per_stream)
                    .map(|i| {
                        let n = b * per_stream + i;
                        let line = format!("pusher {pusher} stream {s} line {n}");
                        lines.push(line.clone());
                        json!([(t0 + n as i64 * 1_000_000).to_string(), line])
                    })
                    .collect();
                json!({"stream": {"app": "load", "pusher": pusher.to_string(), "s": s.to_string()}, "values": values})
            })
            .collect();
        let body = serde_json::to_vec(&json!({ "streams": streams })).unwrap();
        out.sent.extend(lines.iter().cloned());
        for attempt in 0..10 {
            let url = format!(
                "{}/loki/api/v1/push",
                distributors[(b + pusher + attempt) % distributors.len()]
            );
            let r = http
                .post(&url)
                .header("content-type", "application/json")
                .body(body.clone())
                .timeout(Duration::from_secs(10))
                .send()
                .await;
            match r.map(|r| r.status().as_u16()) {
                Ok(204) => {
                    out.acked.append(&mut lines);
                    break;
                }
                Ok(status) => *out.refused.entry(status).or_default() += 1,
                Err(_) => *out.refused.entry(0).or_default() += 1,
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        progress.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    out
}

/// Every `{app="load"}` line a querier returns, stream by stream (each fits one limit).
async fn load_lines(q: &LodeProcess, t0: i64, pushers: usize) -> Vec<String> {
    let start = (t0 - 1).to_string();
    let mut out = Vec::new();
    for p in 0..pushers {
        for s in 0..3 {
            let sel = format!(r#"{{app="load", pusher="{p}", s="{s}"}}"#);
            let v = q
                .query_range(&[("query", &sel), ("start", &start), ("limit", "5000")])
                .await
                .unwrap();
            out.extend(lines(&v));
        }
        // The streams pushed after the join.
        let sel = format!(r#"{{app="load", pusher="{p}", s=~"new.*"}}"#);
        let v = q
            .query_range(&[("query", &sel), ("start", &start), ("limit", "5000")])
            .await
            .unwrap();
        out.extend(lines(&v));
    }
    out.sort();
    out
}

/// Waits (bounded) until `q` returns every acknowledged line; returns what it returns then.
async fn until_complete(
    q: &LodeProcess,
    t0: i64,
    pushers: usize,
    acked: &std::collections::BTreeSet<String>,
) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = load_lines(q, t0, pushers).await;
        let complete = acked.iter().all(|l| got.binary_search(l).is_ok());
        if complete || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn assert_once(
    got: &[String],
    acked: &std::collections::BTreeSet<String>,
    sent: &std::collections::BTreeSet<String>,
    when: &str,
) {
    let mut seen = std::collections::BTreeSet::new();
    let doubled: Vec<&String> = got.iter().filter(|l| !seen.insert(*l)).collect();
    assert!(
        doubled.is_empty(),
        "{when}: {} lines returned twice, e.g. {:?}",
        doubled.len(),
        doubled.first()
    );
    let lost: Vec<&String> = acked.iter().filter(|l| !seen.contains(*l)).collect();
    assert!(
        lost.is_empty(),
        "{when}: {} acknowledged lines missing, e.g. {:?}",
        lost.len(),
        lost.first()
    );
    let invented: Vec<&&String> = seen.iter().filter(|l| !sent.contains(**l)).collect();
    assert!(invented.is_empty(), "{when}: lines never sent: {invented:?}");
}

async fn metric(p: &LodeProcess, name: &str) -> u64 {
    let (_, text) = p.get("/metrics", &[], &[]).await.unwrap();
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// The issue's topology: 2 distributors, 3 ingesters and 2 queriers as separate processes,
/// gossiping, over a real S3-compatible server. Pushes go through both distributors and both
/// queriers return the same, complete answer. Under a bounded load from four pushers one
/// ingester is killed with SIGKILL, restarted on its WAL, a fourth ingester joins and takes
/// streams, and another leaves gracefully (flushing to S3): every acknowledged line comes back
/// exactly once, from memory and from S3.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn seven_processes_over_s3_lose_and_double_nothing_while_the_ring_changes_under_load() {
    let s3 = lode_testkit::S3Server::start("lode-cluster").await.unwrap();
    let storage = s3.storage_yaml();
    let ports: Vec<u16> = (0..8).map(|_| free_udp_port()).collect();
    let seed = ports[0];
    let mut ingesters: Vec<Member> = Vec::new();
    for (i, port) in ports.iter().take(3).enumerate() {
        let data = DataDir::new().unwrap();
        ingesters.push(start_in(data, "ingester", &format!("ingester-{i}"), &storage, *port, seed).await);
    }
    let mut distributors = Vec::new();
    for i in 0..2 {
        let data = DataDir::new().unwrap();
        distributors.push(
            start_in(
                data,
                "distributor",
                &format!("distributor-{i}"),
                &storage,
                ports[3 + i],
                seed,
            )
            .await,
        );
    }
    let mut queriers = Vec::new();
    for i in 0..2 {
        let data = DataDir::new().unwrap();
        queriers.push(start_in(data, "querier", &format!("querier-{i}"), &storage, ports[5 + i], seed).await);
    }

    // Until both distributors see a quorum of ACTIVE ingesters, pushes answer 503.
    for d in &distributors {
        let body = serde_json::to_vec(&json!({"streams": [{
            "stream": {"app": "warmup"},
            "values": [[now_ns().to_string(), "warm-up"]]
        }]}))
        .unwrap();
        push_once_ring_formed(&d.p, &[("content-type", "application/json")], body)
            .await
            .unwrap();
    }

    // Four pushers, each at most 300 requests of 3 x 10 lines (so a stream stays under one
    // query limit); the ring changes while they push, each change after 40 more requests.
    let pushers = 4;
    let (batches, per_stream) = (300, 10);
    let t0 = now_ns() - 600_000_000_000;
    let bases: Vec<String> = distributors.iter().map(|d| d.p.base().to_string()).collect();
    let progress = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tasks: Vec<_> = (0..pushers)
        .map(|p| {
            let (progress, stop) = (progress.clone(), stop.clone());
            tokio::spawn(push_load(bases.clone(), p, batches, per_stream, t0, progress, stop))
        })
        .collect();
    let more = |n: usize| {
        let progress = progress.clone();
        async move {
            let target = progress.load(std::sync::atomic::Ordering::Relaxed) + n;
            let deadline = Instant::now() + Duration::from_secs(120);
            while progress.load(std::sync::atomic::Ordering::Relaxed) < target {
                assert!(Instant::now() < deadline, "the load stalled");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            progress.load(std::sync::atomic::Ordering::Relaxed)
        }
    };

    // Kill one ingester; restart it on its data (WAL replay); a fourth ingester joins.
    let at_kill = more(40).await;
    let Member {
        data: victim_data,
        p: victim,
    } = ingesters.remove(1);
    victim.kill9().unwrap();
    let at_restart = more(40).await;
    ingesters.push(start_in(victim_data, "ingester", "ingester-1", &storage, ports[1], seed).await);
    assert!(
        metric(&ingesters[2].p, "lode_ingester_wal_replayed_records_total").await > 0,
        "the restarted ingester recovered its lines from its WAL"
    );
    let at_join = more(40).await;
    ingesters.push(
        start_in(
            DataDir::new().unwrap(),
            "ingester",
            "ingester-3",
            &storage,
            ports[7],
            seed,
        )
        .await,
    );
    // An ingester leaves gracefully: LEAVING (no more writes), flushes to S3, exits.
    let at_leave = more(40).await;
    let leaving = ingesters.remove(0);
    tokio::task::spawn_blocking(move || leaving.p.stop().unwrap())
        .await
        .unwrap();
    let at_stop = more(40).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    eprintln!(
        "requests done at the kill {at_kill}, restart {at_restart}, join {at_join}, leave {at_leave}, stop {at_stop}"
    );

    let mut acked = std::collections::BTreeSet::new();
    let mut sent = std::collections::BTreeSet::new();
    let mut refused = std::collections::BTreeMap::new();
    for t in tasks {
        let r = t.await.unwrap();
        acked.extend(r.acked);
        sent.extend(r.sent);
        for (k, v) in r.refused {
            *refused.entry(k).or_insert(0) += v;
        }
    }
    eprintln!(
        "load: {} lines sent, {} acknowledged, refusals by status {refused:?}",
        sent.len(),
        acked.len()
    );
    assert!(
        acked.len() * 10 >= sent.len() * 9,
        "most pushes are acknowledged: {} of {}; refusals by status {refused:?}",
        acked.len(),
        sent.len()
    );
    assert!(
        refused.keys().all(|s| *s == 0 || *s >= 500),
        "no client error while the ring changes: {refused:?}"
    );

    // A last request after the join: the new ingester takes a share of these streams.
    let after = ingesters.last().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut extra = 0;
    while metric(&after.p, "loki_ingester_streams_created_total").await == 0 {
        assert!(Instant::now() < deadline, "the fourth ingester never took a stream");
        let line = format!("after the join {extra}");
        let body = serde_json::to_vec(&json!({"streams": [{
            "stream": {"app": "load", "pusher": "0", "s": format!("new{extra}")},
            "values": [[(t0 + 1).to_string(), line.clone()]]
        }]}))
        .unwrap();
        let (s, text) = distributors[extra % 2]
            .p
            .post("/loki/api/v1/push", &[("content-type", "application/json")], body)
            .await
            .unwrap();
        assert_eq!(s, 204, "{text}");
        acked.insert(line.clone());
        sent.insert(line);
        extra += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Both distributors share a tenant's (global) ingestion rate.
    for d in &distributors {
        assert_eq!(metric(&d.p, "lode_distributor_healthy_distributors").await, 2);
    }

    // From memory: both queriers, the same complete answer, every line once.
    let a = until_complete(&queriers[0].p, t0, pushers, &acked).await;
    assert_once(&a, &acked, &sent, "querier 0, from memory");
    let b = until_complete(&queriers[1].p, t0, pushers, &acked).await;
    assert_once(&b, &acked, &sent, "querier 1, from memory");
    assert_eq!(a, b, "both queriers answer alike");

    // From S3 after every ingester flushed its replicas: still once, and counted once.
    for ing in &ingesters {
        assert_eq!(ing.p.post("/flush", &[], vec![]).await.unwrap().0, 204);
    }
    assert!(!s3.keys().await.unwrap().is_empty(), "chunks are in S3");
    let c = load_lines(&queriers[1].p, t0, pushers).await;
    assert_once(&c, &acked, &sent, "from S3");
    assert_eq!(a, c, "memory and store answer alike");
    let at = ((t0 + (batches * per_stream) as i64 * 1_000_000) / 1_000_000_000 + 2).to_string();
    let (status, body) = queriers[0]
        .p
        .get(
            "/loki/api/v1/query",
            &[("query", r#"sum(count_over_time({app="load"}[15m]))"#), ("time", &at)],
            &[],
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["data"]["result"][0]["value"][1], c.len().to_string(), "{v}");

    for m in queriers.into_iter().chain(distributors).chain(ingesters) {
        m.p.stop().unwrap();
    }
}
