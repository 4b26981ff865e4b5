//! Router-level tests of the HTTP plumbing. The push and query paths end to end, with the real
//! roles behind them, are tested in the top-level `tests/` against the `lode` binary.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;

use lode_model::ApiError;
use lode_model::api::{PushHandler, PushRequest};

use super::*;

/// Records what reaches the distributor's trait, to check tenant and decoding at the edge.
#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<(String, PushRequest)>>);

#[async_trait]
impl PushHandler for Recorder {
    async fn push(&self, tenant: &str, req: PushRequest) -> Result<(), ApiError> {
        self.0.lock().unwrap().push((tenant.to_string(), req));
        Ok(())
    }
}

fn app(auth: bool) -> (Router, Arc<Recorder>) {
    let rec = Arc::new(Recorder::default());
    let h = Handlers {
        push: Some(rec.clone()),
        query: None,
        ingester: None,
        registry: Registry::new(),
        auth_enabled: auth,
        decode_limits: DecodeLimits {
            max_recv_bytes: 1024,
            max_decompressed_bytes: 4096,
        },
        stopping: Arc::new(AtomicBool::new(false)),
    };
    (router(h), rec)
}

async fn send(app: &Router, req: Request<Body>) -> (StatusCode, String) {
    let r = app.clone().oneshot(req).await.unwrap();
    let status = r.status();
    let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn push_req(tenant: Option<&str>, body: &str) -> Request<Body> {
    let mut b = Request::post("/loki/api/v1/push").header("content-type", "application/json");
    if let Some(t) = tenant {
        b = b.header("x-scope-orgid", t);
    }
    b.body(Body::from(body.to_string())).unwrap()
}

const BODY: &str = r#"{"streams":[{"stream":{"a":"b"},"values":[["1","x"]]}]}"#;

#[tokio::test]
async fn tenant_rules() {
    let (open, rec) = app(false);
    assert_eq!(
        send(&open, push_req(Some("ignored"), BODY)).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(rec.0.lock().unwrap()[0].0, "fake");

    let (auth, rec) = app(true);
    assert_eq!(
        send(&auth, push_req(None, BODY)).await,
        (StatusCode::UNAUTHORIZED, "no org id\n".into())
    );
    assert_eq!(
        send(&auth, push_req(Some("a/b"), BODY)).await,
        (
            StatusCode::BAD_REQUEST,
            "tenant ID 'a/b' contains unsupported character '/'\n".into()
        )
    );
    assert_eq!(
        send(&auth, push_req(Some("team-1"), BODY)).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(rec.0.lock().unwrap()[0].0, "team-1");
}

#[tokio::test]
async fn body_over_the_cap_is_413() {
    let (app, _) = app(false);
    let big = format!(
        r#"{{"streams":[{{"stream":{{"a":"b"}},"values":[["1","{}"]]}}]}}"#,
        "x".repeat(2000)
    );
    let (status, body) = send(&app, push_req(None, &big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        body.starts_with("request body too large: message size too large than max ("),
        "{body}"
    );
}

#[tokio::test]
async fn unknown_paths_and_missing_roles_are_404() {
    let (app, _) = app(false);
    assert_eq!(
        send(&app, Request::get("/nope").body(Body::empty()).unwrap()).await.0,
        StatusCode::NOT_FOUND
    );
    let (s, _) = send(
        &app,
        Request::get("/loki/api/v1/query_range?query=x")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, body) = send(&app, Request::get("/ready").body(Body::empty()).unwrap()).await;
    assert_eq!((s, body.as_str()), (StatusCode::OK, "ready\n"));
}
