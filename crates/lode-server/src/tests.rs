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
    let (h, rec) = handlers(auth);
    (router(h), rec)
}

fn handlers(auth: bool) -> (Handlers, Arc<Recorder>) {
    let rec = Arc::new(Recorder::default());
    let h = Handlers {
        push: Some(rec.clone()),
        query: None,
        tail: None,
        ingester: None,
        registry: Registry::new(),
        auth_enabled: auth,
        decode_limits: DecodeLimits {
            max_recv_bytes: 1024,
            max_decompressed_bytes: 4096,
        },
        stopping: Arc::new(AtomicBool::new(false)),
        metadata: None,
        limits: Arc::new(lode_model::limits::Limits::new(Default::default())),
        config: ConfigView {
            current: "auth_enabled: false\nserver:\n  http_listen_port: 0\n".into(),
            defaults: "auth_enabled: false\nserver:\n  http_listen_port: 3100\n".into(),
        },
        ring: None,
    };
    (h, rec)
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
    // Without a membership there is no ring page.
    let (s, _) = send(&app, Request::get("/ring").body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn config_services_and_format_query() {
    let (app, _) = app(false);
    let get = |uri: &str| Request::get(uri).body(Body::empty()).unwrap();
    let (s, body) = send(&app, get("/config")).await;
    assert_eq!(
        (s, body.as_str()),
        (StatusCode::OK, "auth_enabled: false\nserver:\n  http_listen_port: 0\n")
    );
    let (_, body) = send(&app, get("/config?mode=diffs")).await;
    assert_eq!(body, "server:\n  http_listen_port: 0\n");
    let (_, body) = send(&app, get("/config?mode=defaults")).await;
    assert!(body.contains("3100"), "{body}");
    assert_eq!(send(&app, get("/config?mode=nope")).await.0, StatusCode::BAD_REQUEST);
    let (s, body) = send(&app, get("/services")).await;
    assert_eq!(
        (s, body.as_str()),
        (
            StatusCode::OK,
            "distributor => Running\nring => Running\nserver => Running\n"
        )
    );

    let (s, body) = send(
        &app,
        get("/loki/api/v1/format_query?query=%7Ba%3D%22b%22%7D%20%7C%3D%20%22x%22"),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "success");
    assert!(v["data"].as_str().unwrap().starts_with("{a=\"b\"}"), "{body}");
    let (s, body) = send(&app, get("/loki/api/v1/format_query?query=%7Ba")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "invalid-query");
    assert!(v["error"].as_str().unwrap().starts_with("parse error"), "{body}");

    // Without a querier the metadata endpoints are 404, never 5xx.
    let (s, _) = send(&app, get("/loki/api/v1/series?match[]=%7Ba%3D%22b%22%7D")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, body) = send(&app, get("/loki/api/v1/drilldown-limits")).await;
    assert_eq!(s, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["limits"]["max_entries_limit_per_query"], 5000, "{body}");
    assert_eq!(v["pattern_ingester_enabled"], false);
}

#[tokio::test]
async fn drilldown_limits_need_a_tenant_with_auth() {
    let (app, _) = app(true);
    let (s, body) = send(
        &app,
        Request::get("/loki/api/v1/drilldown-limits")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!((s, body.as_str()), (StatusCode::UNAUTHORIZED, "no org id\n"));
}

#[tokio::test]
async fn otlp_pushes_reach_the_push_handler_and_errors_are_rpc_statuses() {
    let (app, rec) = app(false);
    let body = r#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"api"}}]},
        "scopeLogs":[{"logRecords":[{"timeUnixNano":"1700000000000000000","body":{"stringValue":"hi"}}]}]}]}"#;
    let req = Request::post("/otlp/v1/logs")
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    let (s, _) = send(&app, req).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(rec.0.lock().unwrap()[0].1.streams[0].labels, r#"{service_name="api"}"#);

    // A bad JSON body: 400 with {"code": 3 (InvalidArgument), "message": ...}.
    let req = Request::post("/otlp/v1/logs")
        .header("content-type", "application/json")
        .body(Body::from("{nope"))
        .unwrap();
    let (s, text) = send(&app, req).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["code"], 3, "{text}");
    assert!(
        v["message"].as_str().unwrap().contains("key must be a string"),
        "{text}"
    );

    // A bad protobuf body: a protobuf google.rpc.Status.
    let req = Request::post("/otlp/v1/logs")
        .header("content-type", "application/x-protobuf")
        .body(Body::from(vec![0xff, 0xff, 0xff]))
        .unwrap();
    let r = app.clone().oneshot(req).await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.headers()["content-type"], "application/x-protobuf");
    let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
    // Field 1 (code) = 3, then field 2 (message).
    assert_eq!(&bytes[..2], &[0x08, 0x03]);
    assert_eq!(bytes[2], 0x12);
}

/// A membership of two ingesters, one of them dead, and a querier whose id needs escaping.
struct FakeRing(std::sync::Mutex<Vec<lode_model::api::RingMember>>);

impl FakeRing {
    fn new() -> Self {
        let member = |id: &str, state: &str, roles: &[&str], tokens: u32, ownership: f64, age: u64| {
            lode_model::api::RingMember {
                id: id.into(),
                state: state.into(),
                address: format!("{id}:9095"),
                http_address: format!("{id}:3100"),
                roles: roles.iter().map(|r| r.to_string()).collect(),
                tokens,
                ownership,
                heartbeat_age: std::time::Duration::from_secs(age),
            }
        };
        FakeRing(std::sync::Mutex::new(vec![
            member("ing-a", "ACTIVE", &["ingester"], 128, 48.5, 1),
            member("ing-b", "UNHEALTHY", &["ingester"], 128, 51.5, 90),
            member("<q&\"1\">", "ACTIVE", &["querier"], 0, 0.0, 0),
        ]))
    }
}

#[async_trait]
impl lode_model::api::RingStatus for FakeRing {
    async fn ring(&self) -> lode_model::api::RingView {
        lode_model::api::RingView {
            members: self.0.lock().unwrap().clone(),
        }
    }

    async fn forget(&self, id: &str) -> Result<(), ApiError> {
        let mut members = self.0.lock().unwrap();
        let Some(i) = members.iter().position(|m| m.id == id) else {
            return Err(ApiError::new(
                lode_model::ErrorCode::NotFound,
                format!("no member {id:?}"),
            ));
        };
        if members[i].state != "UNHEALTHY" {
            return Err(ApiError::bad_request(format!("member {id:?} is not unhealthy")));
        }
        members.remove(i);
        Ok(())
    }
}

fn ring_app() -> Router {
    let (mut h, _) = handlers(false);
    h.ring = Some(Arc::new(FakeRing::new()));
    router(h)
}

fn forget_req(id: &str, json: bool) -> Request<Body> {
    let body: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("forget", id)
        .finish();
    let mut b = Request::post("/ring").header("content-type", "application/x-www-form-urlencoded");
    if json {
        b = b.header("accept", "application/json");
    }
    b.body(Body::from(body)).unwrap()
}

#[tokio::test]
async fn ring_page_as_json_is_dskits_shape() {
    let app = ring_app();
    let req = Request::get("/ring")
        .header("accept", "application/json")
        .body(Body::empty())
        .unwrap();
    let r = app.clone().oneshot(req).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/json");
    let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let shards = v["shards"].as_array().unwrap();
    assert_eq!(shards.len(), 3);
    let a = &shards[0];
    assert_eq!(a["id"], "ing-a");
    assert_eq!(a["state"], "ACTIVE");
    assert_eq!(a["address"], "ing-a:9095");
    assert_eq!(a["zone"], "");
    assert_eq!(a["tokens"], serde_json::json!([]));
    assert_eq!(a["num_tokens"], 128);
    assert_eq!(a["ownership"], 48.5);
    assert_eq!(a["heartbeat_age_seconds"], 1.0);
    assert_eq!(a["roles"], serde_json::json!(["ingester"]));
    for key in ["timestamp", "registered_timestamp"] {
        let ts = a[key].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(ts).is_ok(), "{key}: {ts}");
    }
    let now = chrono::DateTime::parse_from_rfc3339(v["now"].as_str().unwrap()).unwrap();
    let hb = chrono::DateTime::parse_from_rfc3339(shards[1]["timestamp"].as_str().unwrap()).unwrap();
    assert_eq!((now - hb).num_seconds(), 90, "the heartbeat is 90 s before now");
}

#[tokio::test]
async fn ring_page_as_html_escapes_ids_and_has_a_forget_button_per_member() {
    let app = ring_app();
    let (s, html) = send(&app, Request::get("/ring").body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("<td>ing-b</td>"), "{html}");
    assert!(html.contains("<td>UNHEALTHY</td>"), "{html}");
    assert!(html.contains("<td>48.500%</td>"), "{html}");
    assert!(html.contains("&lt;q&amp;&quot;1&quot;&gt;"), "{html}");
    assert!(!html.contains("<q&"), "an id is never markup: {html}");
    assert_eq!(html.matches(r#"name="forget""#).count(), 3);
    assert!(html.contains(r#"name="forget" value="ing-b""#), "{html}");
}

#[tokio::test]
async fn forget_redirects_browsers_answers_json_clients_and_refuses_healthy_or_unknown_members() {
    let app = ring_app();
    // A healthy member: 400 with the membership's reason.
    let (s, body) = send(&app, forget_req("ing-a", false)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        "error forgetting instance \"ing-a\": member \"ing-a\" is not unhealthy\n"
    );
    // An unknown one: 404.
    let (s, body) = send(&app, forget_req("nope", false)).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{body}");
    // No id at all: 400.
    let req = Request::post("/ring")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from("other=1"))
        .unwrap();
    assert_eq!(send(&app, req).await.0, StatusCode::BAD_REQUEST);

    // A browser's form post: 303 back to the page.
    let r = app.clone().oneshot(forget_req("ing-b", false)).await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "ring");
    let (_, html) = send(&app, Request::get("/ring").body(Body::empty()).unwrap()).await;
    assert!(!html.contains("ing-b"), "{html}");

    // A JSON client gets the ring after the forget.
    let app = ring_app();
    let (s, body) = send(&app, forget_req("ing-b", true)).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let ids: Vec<&str> = v["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["ing-a", "<q&\"1\">"]);
}
