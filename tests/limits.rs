//! Per-tenant limits through the real binary: the tenant rate limit and the stream limit answer
//! 429 with Loki's messages, per tenant, and the runtime config file changes a tenant's limits
//! without a restart.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use lode_testkit::{DataDir, LodeProcess, now_ns};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_lode");

fn body(stream: &str, n: usize, size: usize) -> Vec<u8> {
    let t0 = now_ns() - 1_000_000_000;
    let values: Vec<_> = (0..n)
        .map(|i| json!([(t0 + i as i64).to_string(), "x".repeat(size)]))
        .collect();
    serde_json::to_vec(&json!({"streams": [{"stream": {"app": stream}, "values": values}]})).unwrap()
}

async fn push(p: &LodeProcess, tenant: &str, b: Vec<u8>) -> (u16, String) {
    p.post(
        "/loki/api/v1/push",
        &[("content-type", "application/json"), ("x-scope-orgid", tenant)],
        b,
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn tenant_limits_answer_429_and_reload_without_a_restart() {
    let data = DataDir::new().unwrap();
    let overrides = data.path().join("overrides.yaml");
    // "slow": 10 KiB/s, 20 KiB burst; "few": two streams at most.
    std::fs::write(
        &overrides,
        "overrides:\n  slow:\n    ingestion_rate_mb: 0.009765625\n    ingestion_burst_size_mb: 0.01953125\n  few:\n    max_global_streams_per_user: 2\n",
    )
    .unwrap();
    let cfg = data.path().join("lode.yaml");
    std::fs::write(
        &cfg,
        format!(
            "auth_enabled: true\nruntime_config:\n  file: {}\n  period: 200ms\n",
            overrides.display()
        ),
    )
    .unwrap();
    let p = LodeProcess::start(BIN, &data, &[&format!("-config.file={}", cfg.display())])
        .await
        .unwrap();

    // 15 KiB fits the 20 KiB burst; the next 15 KiB does not.
    assert_eq!(push(&p, "slow", body("a", 15, 1024)).await.0, 204);
    let (s, text) = push(&p, "slow", body("a", 15, 1024)).await;
    assert_eq!(s, 429, "{text}");
    assert_eq!(
        text.trim_end(),
        "ingestion rate limit exceeded for user slow (limit: 10240 bytes/sec) while attempting to ingest '15' lines totaling '15360' bytes, reduce log volume or contact your Loki administrator to see if the limit can be increased"
    );
    // Another tenant has the defaults.
    assert_eq!(push(&p, "other", body("a", 15, 1024)).await.0, 204);

    assert_eq!(push(&p, "few", body("a", 1, 10)).await.0, 204);
    assert_eq!(push(&p, "few", body("b", 1, 10)).await.0, 204);
    let (s, text) = push(&p, "few", body("c", 1, 10)).await;
    assert_eq!(s, 429, "{text}");
    assert!(
        text.starts_with("maximum active stream limit exceeded when trying to create stream {app=\"c\"}"),
        "{text}"
    );

    // Raise "few" to 10 streams; the node picks it up within a few periods.
    std::fs::write(&overrides, "overrides:\n  few:\n    max_global_streams_per_user: 10\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (s, _) = push(&p, "few", body("c", 1, 10)).await;
        if s == 204 {
            break;
        }
        assert!(Instant::now() < deadline, "the new limit was not applied");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A broken file is refused and the limits in force stay.
    std::fs::write(&overrides, "overrides:\n  few:\n    no_such_limit: 1\n").unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(push(&p, "few", body("d", 1, 10)).await.0, 204);
    assert!(p.log().contains("runtime config rejected"), "{}", p.log());

    let metrics = p.get("/metrics", &[], &[]).await.unwrap().1;
    assert!(
        metrics.contains(r#"loki_discarded_samples_total{reason="rate_limited",tenant="slow"} 15"#),
        "{metrics}"
    );
    assert!(
        // At least the one refusal above, plus any while waiting for the reload.
        metrics.contains(r#"loki_discarded_samples_total{reason="stream_limit",tenant="few"} "#),
        "{metrics}"
    );
    p.stop().unwrap();
}
