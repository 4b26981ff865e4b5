//! `lode-bench` against the real binary on loopback: bounded runs in both encodings push with
//! no errors, every accepted line is queryable back, and the query classes answer.

use std::time::Duration;

use lode_bench::{Config, Encoding, LineFormat};
use lode_testkit::{DataDir, LodeProcess};

const BIN: &str = env!("CARGO_BIN_EXE_lode");

async fn start() -> (DataDir, LodeProcess) {
    let data = DataDir::new().expect("temp dir");
    let cfg = data.path().join("lode.yaml");
    std::fs::write(
        &cfg,
        "limits_config:\n  ingestion_rate_mb: 10000\n  ingestion_burst_size_mb: 10000\n  per_stream_rate_limit: 0\n",
    )
    .expect("write config");
    let p = LodeProcess::start(BIN, &data, &[&format!("-config.file={}", cfg.display())])
        .await
        .expect("lode starts");
    (data, p)
}

fn config(p: &LodeProcess, job: &str, encoding: Encoding, format: LineFormat) -> Config {
    let mut cfg = Config {
        url: p.base().to_string(),
        encoding,
        duration: Some(Duration::from_secs(2)),
        mb: Some(5.0),
        clients: 2,
        queries: 2,
        verify: true,
        ..Config::default()
    };
    cfg.workload.job = job.to_string();
    cfg.workload.streams = 10;
    cfg.workload.label_cardinality = 2;
    cfg.workload.format = format;
    cfg.workload.batch_lines = 500;
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bounded_runs_in_both_encodings_are_error_free_and_queryable() {
    let (_data, p) = start().await;
    for (job, encoding, format, sm) in [
        ("bench-json", Encoding::Json, LineFormat::Json, false),
        ("bench-proto", Encoding::Protobuf, LineFormat::Logfmt, true),
        ("bench-access", Encoding::Protobuf, LineFormat::Access, false),
    ] {
        let mut cfg = config(&p, job, encoding, format);
        cfg.workload.structured_metadata = sm;
        let r = lode_bench::run(&cfg).await.expect("run");
        assert_eq!(r.errors(), 0, "{job}: {:?}\n{}", r.first_error, p.log());
        assert!(r.ok_lines > 1000, "{job}: {}", r.human());
        assert_eq!(r.ok_lines, r.sent_lines);
        assert!(
            r.raw_mb <= 5.0 + 0.01 && r.latency.count as u64 == r.requests,
            "{}",
            r.human()
        );
        assert_eq!(r.queryable_lines, Some(r.ok_lines), "{job}: {}", r.human());
        assert_eq!(r.queries.len(), 4);
        for q in &r.queries {
            assert_eq!(q.errors, 0, "{job} {}: {:?}", q.class.logql, q.first_error);
            assert!(q.bytes_processed > 0, "{job} {} processed nothing", q.class.logql);
        }
        let j = r.to_json();
        assert_eq!(j["lines_ok"].as_u64(), Some(r.ok_lines));
        assert_eq!(j["queries"].as_array().map(Vec::len), Some(4));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_duration_run_reports_server_cost() {
    let (_data, p) = start().await;
    // The server pid is what /proc is read for: the testkit's child.
    let pid = p.pid();
    let mut cfg = config(&p, "bench-rate", Encoding::Protobuf, LineFormat::Logfmt);
    cfg.mb = None;
    cfg.rate = 5000.0;
    cfg.duration = Some(Duration::from_secs(1));
    cfg.queries = 0;
    cfg.pids = vec![pid];
    let r = lode_bench::run(&cfg).await.expect("run");
    assert_eq!(r.errors(), 0, "{:?}", r.first_error);
    // 5000 lines/s for 1 s, in 500-line requests: the last request that fits starts at 0.9 s.
    assert!((4000..=5000).contains(&r.ok_lines), "{}", r.human());
    assert!(r.wall_s < 1.5, "{}", r.human());
    assert_eq!(r.queryable_lines, Some(r.ok_lines));
    assert!(r.server_cpu_s.is_some_and(|c| c >= 0.0));
    assert!(r.server_rss.is_some_and(|(rss, _)| rss > 1_000_000));
}
