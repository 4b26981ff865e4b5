//! No lost line: the single binary is killed with SIGKILL while pushers are busy; after a
//! restart on the same data directory every acknowledged line is returned, and none twice.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use lode_testkit::{DataDir, LodeProcess, now_ns};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_lode");

/// Pushes batches of `lines` lines for `streams` streams until `stop` (bounded by `max`
/// requests), recording the lines of every acknowledged request.
async fn pusher(
    base: String,
    worker: usize,
    t0: i64,
    max: usize,
    acked: Arc<Mutex<Vec<String>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    let http = reqwest::Client::new();
    for req in 0..max {
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let mut all = Vec::new();
        let streams: Vec<Value> = (0..3)
            .map(|s| {
                let values: Vec<Value> = (0..50)
                    .map(|i| {
                        let line = format!("w{worker} s{s} r{req} i{i} {}", "payload ".repeat(8));
                        all.push(line.clone());
                        let ts = t0 + ((req * 50 + i) as i64) * 1_000_000;
                        json!([ts.to_string(), line])
                    })
                    .collect();
                json!({"stream": {"app": "crash", "worker": format!("w{worker}"), "s": format!("s{s}")}, "values": values})
            })
            .collect();
        let body = serde_json::to_vec(&json!({ "streams": streams })).unwrap();
        let r = http
            .post(format!("{base}/loki/api/v1/push"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await;
        match r {
            Ok(r) if r.status().as_u16() == 204 => acked.lock().unwrap().extend(all),
            // The process died mid-request: not acknowledged, so no promise.
            _ => return,
        }
    }
}

async fn count_lines(p: &LodeProcess, t0: i64) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    // Forward pages by time: each page starts after the last timestamp seen (lines of one
    // worker and stream have distinct timestamps, so nothing straddles a page boundary
    // within a stream; across streams the boundary is handled by starting at the max seen).
    let end = (t0 + 3_600_000_000_000).to_string();
    let mut start = t0 - 1;
    for _ in 0..1000 {
        let v = p
            .query_range(&[
                ("query", r#"{app="crash"}"#),
                ("start", &start.to_string()),
                ("end", &end),
                ("limit", "5000"),
                ("direction", "forward"),
            ])
            .await
            .unwrap();
        let mut max_ts = None;
        let mut n = 0;
        for s in v["data"]["result"].as_array().unwrap() {
            for e in s["values"].as_array().unwrap() {
                let ts: i64 = e[0].as_str().unwrap().parse().unwrap();
                max_ts = max_ts.max(Some(ts));
                *counts.entry(e[1].as_str().unwrap().to_string()).or_insert(0) += 1;
                n += 1;
            }
        }
        if n < 5000 {
            return counts;
        }
        // The last page's newest timestamp may hold more lines than we saw: drop them and
        // ask again from that timestamp.
        let last = max_ts.unwrap();
        for s in v["data"]["result"].as_array().unwrap() {
            for e in s["values"].as_array().unwrap() {
                if e[0].as_str().unwrap().parse::<i64>().unwrap() == last {
                    let c = counts.get_mut(e[1].as_str().unwrap()).unwrap();
                    *c -= 1;
                }
            }
        }
        start = last;
    }
    panic!("too many pages");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_under_load_loses_no_acknowledged_line_and_doubles_none() {
    let data = DataDir::new().unwrap();
    let p = LodeProcess::start(BIN, &data, &[]).await.unwrap();
    let t0 = now_ns() - 600_000_000_000;
    let acked = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let base = p.base().to_string();
    let workers: Vec<_> = (0..4)
        .map(|w| tokio::spawn(pusher(base.clone(), w, t0, 400, acked.clone(), stop.clone())))
        .collect();
    // Let the load run, with a flush in the middle so some lines are in the store too.
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let (s, _) = p.post("/flush", &[], vec![]).await.unwrap();
    assert_eq!(s, 204);
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    p.kill9().unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > 1000, "the load ran: {} lines acknowledged", acked.len());

    let p = LodeProcess::start(BIN, &data, &[]).await.unwrap();
    let counts = count_lines(&p, t0).await;
    let missing: Vec<&String> = acked.iter().filter(|l| !counts.contains_key(*l)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged lines lost, e.g. {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(3)]
    );
    let doubled: Vec<(&String, &usize)> = counts.iter().filter(|(_, c)| **c > 1).collect();
    assert!(
        doubled.is_empty(),
        "lines returned twice: {:?}",
        &doubled[..doubled.len().min(3)]
    );
    assert!(p.log().contains("wal: replay finished"), "{}", p.log());

    // And again after a graceful stop: the final checkpoint leaves nothing to replay twice.
    p.stop().unwrap();
    let p = LodeProcess::start(BIN, &data, &[]).await.unwrap();
    let again = count_lines(&p, t0).await;
    assert_eq!(again, counts);
    p.stop().unwrap();
}
