//! The single binary with S3 as its store: a real S3-compatible server (moto) on loopback,
//! reached through object_store's S3 backend. Lines pushed, flushed, and read back by a fresh
//! process with an empty local directory, so they can only have come from the bucket.
#![allow(clippy::unwrap_used)]

use lode_testkit::{DataDir, LodeProcess, S3Server, streams};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_lode");

async fn start(s3: &S3Server, data: &DataDir) -> LodeProcess {
    let cfg = data.path().join("lode.yaml");
    std::fs::write(&cfg, s3.storage_yaml()).unwrap();
    LodeProcess::start(BIN, data, &[&format!("-config.file={}", cfg.display())])
        .await
        .unwrap()
}

#[tokio::test]
async fn chunks_and_index_live_in_s3() {
    let s3 = S3Server::start("loki").await.unwrap();
    let t0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
        - 5_000_000_000;
    let first = DataDir::new().unwrap();
    let p = start(&s3, &first).await;
    let body = json!({"streams": [{"stream": {"app": "s3"}, "values": [[t0.to_string(), "in the bucket"], [(t0 + 1).to_string(), "second"]]}]});
    let (s, text) = p
        .post(
            "/loki/api/v1/push",
            &[("content-type", "application/json")],
            serde_json::to_vec(&body).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(s, 204, "{text}");
    assert_eq!(p.post("/flush", &[], vec![]).await.unwrap().0, 204);
    let keys = s3.keys().await.unwrap();
    assert!(keys.iter().any(|k| k.starts_with("chunks/fake/")), "{keys:?}");
    assert!(keys.iter().any(|k| k.starts_with("index/fake/")), "{keys:?}");
    p.stop().unwrap();

    let second = DataDir::new().unwrap();
    let p = start(&s3, &second).await;
    let v = p
        .query_range(&[
            ("query", r#"{app="s3"}"#),
            ("direction", "forward"),
            ("start", &(t0 - 1).to_string()),
            ("end", &(t0 + 10).to_string()),
        ])
        .await
        .unwrap();
    assert_eq!(
        streams(&v),
        vec![(
            json!({"app": "s3"}),
            vec![
                (t0.to_string(), "in the bucket".to_string()),
                ((t0 + 1).to_string(), "second".to_string())
            ]
        )]
    );
}
