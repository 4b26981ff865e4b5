//! Real clients from PyPI push to the real binary: python-logging-loki and loki-logger-handler
//! (Loki's push API, plain and gzip JSON) and the
//! OpenTelemetry Python SDK's OTLP/HTTP log exporter (`/otlp/v1/logs`). Installed once into
//! `target/clients-venv`.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

use lode_testkit::{DataDir, LodeProcess, now_ns, python};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_lode");
const PACKAGES: &[&str] = &[
    "python-logging-loki==0.3.1",
    "loki-logger-handler==1.1.2",
    "opentelemetry-sdk==1.45.2",
    "opentelemetry-exporter-otlp-proto-http==1.45.2",
];

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/clients")
        .join(name)
}

fn run(venv: &std::path::Path, name: &str, base: &str) {
    let out = Command::new(venv.join("bin/python"))
        .arg(script(name))
        .arg(base)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{name} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn one_stream(p: &LodeProcess, query: &str) -> Value {
    let start = (now_ns() - 600_000_000_000).to_string();
    let v = p.query_range(&[("query", query), ("start", &start)]).await.unwrap();
    let result = v["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 1, "{v}");
    result[0].clone()
}

#[tokio::test]
async fn python_logging_loki_and_the_opentelemetry_sdk_push_unchanged() {
    let venv = python::venv("clients-venv", PACKAGES).unwrap();
    let data = DataDir::new().unwrap();
    // Loki's defaults: discovery on, as these clients would meet it.
    let p = LodeProcess::start(BIN, &data, &["-validation.discover-log-levels=true"])
        .await
        .unwrap();

    run(&venv, "loki_logging.py", p.base());
    let s = one_stream(&p, r#"{application="pyapp"}"#).await;
    assert_eq!(s["stream"]["service"], "checkout");
    assert_eq!(s["stream"]["severity"], "error");
    assert_eq!(s["stream"]["logger"], "lode-test");
    assert_eq!(s["stream"]["service_name"], "checkout");
    assert_eq!(s["values"][0][1], "hello from python-logging-loki");

    // A second Loki client: gzip JSON with structured metadata.
    run(&venv, "loki_logger_handler_push.py", p.base());
    let s = one_stream(&p, r#"{application="pyhandler"} |= "loki-logger-handler""#).await;
    assert!(
        s["values"][0][1]
            .as_str()
            .unwrap()
            .contains("hello from loki-logger-handler"),
        "{s}"
    );
    assert_eq!(
        s["stream"]["team"], "core",
        "metadata shows as labels without categorize: {s}"
    );

    run(&venv, "otel_logs.py", p.base());
    let s = one_stream(&p, r#"{service_name="otel-py"} | detected_level="warn""#).await;
    assert_eq!(s["stream"]["deployment_environment"], "test");
    assert_eq!(s["values"][0][1], "hello from opentelemetry");
    let v = p
        .get(
            "/loki/api/v1/query_range",
            &[
                ("query", r#"{service_name="otel-py"}"#),
                ("start", &(now_ns() - 600_000_000_000).to_string()),
            ],
            &[("x-loki-response-encoding-flags", "categorize-labels")],
        )
        .await
        .unwrap()
        .1;
    let v: Value = serde_json::from_str(&v).unwrap();
    let md = &v["data"]["result"][0]["values"][0][2]["structuredMetadata"];
    assert_eq!(md["user_id"], "u-42", "{md}");
    assert_eq!(md["severity_text"], "WARN", "{md}");
    assert_eq!(md["detected_level"], "warn", "{md}");
    assert_eq!(md["scope_name"], "otel-test", "{md}");
    p.stop().unwrap();
}
