//! `/ring` on a real cluster: two ingesters and a distributor as separate processes,
//! gossiping. The distributor's page shows both ingesters ACTIVE sharing the ring; after one is
//! killed with SIGKILL it turns UNHEALTHY and the "Forget" form removes it, while a healthy
//! member cannot be forgotten.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use lode_testkit::cluster::{Member, free_udp_port, fs_store};
use lode_testkit::{DataDir, LodeProcess};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_lode");

/// Starts a member that calls a peer UNHEALTHY 2 s after its last heartbeat.
async fn start(target: &str, id: &str, store: &std::path::Path, gossip: u16, seed: u16) -> Member {
    let sections = fs_store(store);
    Member::start(
        BIN,
        DataDir::new().unwrap(),
        target,
        id,
        &sections,
        "2s",
        (gossip, seed),
    )
    .await
    .unwrap()
}

async fn ring_json(p: &LodeProcess) -> Value {
    let (status, body) = p.get("/ring", &[], &[("accept", "application/json")]).await.unwrap();
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn shard<'a>(ring: &'a Value, id: &str) -> Option<&'a Value> {
    ring["shards"].as_array().unwrap().iter().find(|s| s["id"] == id)
}

/// Polls the distributor's ring (bounded) until `done` holds; returns that ring.
async fn wait_ring(p: &LodeProcess, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ring = ring_json(p).await;
        if done(&ring) {
            return ring;
        }
        assert!(Instant::now() < deadline, "never {what}: {ring}\n{}", p.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Posts the page's "Forget" form, as a browser would (redirects not followed).
async fn forget(p: &LodeProcess, id: &str) -> (u16, Option<String>, String) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let body: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("forget", id)
        .finish();
    let r = http
        .post(format!("{}/ring", p.base()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let location = r.headers().get("location").map(|l| l.to_str().unwrap().to_string());
    (status, location, r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_ring_page_shows_the_ingesters_and_forgets_a_dead_one() {
    let store = DataDir::new().unwrap();
    let ports: Vec<u16> = (0..3).map(|_| free_udp_port().unwrap()).collect();
    let seed = ports[0];
    let ing0 = start("ingester", "ingester-0", store.path(), ports[0], seed).await;
    let ing1 = start("ingester", "ingester-1", store.path(), ports[1], seed).await;
    let dist = start("distributor", "distributor-0", store.path(), ports[2], seed).await;

    // JSON: both ingesters ACTIVE, sharing the whole ring; the distributor holds no tokens.
    let both_active = |ring: &Value| {
        ["ingester-0", "ingester-1"]
            .iter()
            .all(|id| shard(ring, id).is_some_and(|s| s["state"] == "ACTIVE"))
    };
    let ring = wait_ring(&dist.p, "both ingesters ACTIVE", both_active).await;
    let mut total = 0.0;
    for id in ["ingester-0", "ingester-1"] {
        let s = shard(&ring, id).unwrap();
        let own = s["ownership"].as_f64().unwrap();
        assert!(own > 10.0 && own < 90.0, "{id} owns {own}%: {ring}");
        total += own;
        assert!(s["num_tokens"].as_u64().unwrap() > 0, "{ring}");
        assert!(s["address"].as_str().unwrap().starts_with("127.0.0.1:"), "{ring}");
        assert!(s["timestamp"].is_string() && s["tokens"].is_array(), "{ring}");
    }
    assert!((total - 100.0).abs() < 0.01, "ownership sums to {total}: {ring}");
    let d = shard(&ring, "distributor-0").unwrap();
    assert_eq!(
        (d["state"].as_str(), d["ownership"].as_f64()),
        (Some("ACTIVE"), Some(0.0))
    );
    assert!(ring["now"].is_string(), "{ring}");

    // HTML: a row and a Forget button per member.
    let (status, html) = dist.p.get("/ring", &[], &[]).await.unwrap();
    assert_eq!(status, 200);
    for id in ["ingester-0", "ingester-1", "distributor-0"] {
        assert!(html.contains(&format!("<td>{id}</td>")), "{html}");
        assert!(html.contains(&format!(r#"name="forget" value="{id}""#)), "{html}");
    }

    // A healthy member cannot be forgotten; an unknown one is not found.
    let (status, _, body) = forget(&dist.p, "ingester-0").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("not unhealthy"), "{body}");
    let (status, _, body) = forget(&dist.p, "ingester-9").await;
    assert_eq!(status, 404, "{body}");

    // SIGKILL: 2 s after its last heartbeat the ingester is UNHEALTHY, still owning its tokens.
    ing1.p.kill9().unwrap();
    let ring = wait_ring(&dist.p, "ingester-1 UNHEALTHY", |r| {
        shard(r, "ingester-1").is_some_and(|s| s["state"] == "UNHEALTHY")
    })
    .await;
    assert!(shard(&ring, "ingester-1").unwrap()["ownership"].as_f64().unwrap() > 0.0);

    // Forget it: the browser is sent back to the page, where it is gone for good.
    let (status, location, body) = forget(&dist.p, "ingester-1").await;
    assert_eq!((status, location.as_deref()), (303, Some("ring")), "{body}");
    let ring = ring_json(&dist.p).await;
    assert!(shard(&ring, "ingester-1").is_none(), "{ring}");
    let own = shard(&ring, "ingester-0").unwrap()["ownership"].as_f64().unwrap();
    assert!((own - 100.0).abs() < 0.01, "the survivor owns the ring: {ring}");
    let (status, _, _) = forget(&dist.p, "ingester-1").await;
    assert_eq!(status, 404, "already forgotten");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        shard(&ring_json(&dist.p).await, "ingester-1").is_none(),
        "it stays forgotten"
    );

    dist.p.stop().unwrap();
    ing0.p.stop().unwrap();
}

/// The single binary has no membership: its ring is its own ingester, owning everything.
#[tokio::test]
async fn the_single_binary_shows_itself() {
    let data = DataDir::new().unwrap();
    let p = LodeProcess::start(BIN, &data, &["-common.instance-id=solo"])
        .await
        .unwrap();
    let ring = ring_json(&p).await;
    let shards = ring["shards"].as_array().unwrap();
    assert_eq!(shards.len(), 1, "{ring}");
    let s = &shards[0];
    assert_eq!(
        (s["id"].as_str(), s["state"].as_str()),
        (Some("solo"), Some("ACTIVE")),
        "{ring}"
    );
    assert_eq!(s["ownership"].as_f64(), Some(100.0));
    let (status, _, body) = forget(&p, "solo").await;
    assert_eq!(status, 400, "{body}");
    p.stop().unwrap();
}
