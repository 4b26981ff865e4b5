//! The HTTP edge of every role: Loki's push endpoints (decoding JSON, gzip/deflate JSON and
//! snappy protobuf bodies), the query endpoints rendering Loki's JSON, and the operations
//! endpoints (`/ready`, `/flush`, `/metrics`, build info). Handlers call the role traits from
//! `lode_model::api`; this crate never depends on a role crate, so the same router serves a
//! distributor, a querier, an ingester or all of them.

mod config;
mod http;
mod ops;
mod push;
pub mod push_decode;
mod query;
mod render;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use prometheus::Registry;

pub use config::ServerConfig;
use lode_model::api::{IngesterAdmin, PushHandler, QueryHandler};
pub use push_decode::DecodeLimits;

/// What the HTTP edge serves: each role's handler is present only when the node runs that role.
#[derive(Clone)]
pub struct Handlers {
    pub push: Option<Arc<dyn PushHandler>>,
    pub query: Option<Arc<dyn QueryHandler>>,
    pub ingester: Option<Arc<dyn IngesterAdmin>>,
    pub registry: Registry,
    /// With `auth_enabled`, the tenant comes from `X-Scope-OrgID` (required); else it is `fake`.
    pub auth_enabled: bool,
    pub decode_limits: DecodeLimits,
    /// Set while the node is shutting down: `/ready` answers 503.
    pub stopping: Arc<std::sync::atomic::AtomicBool>,
}

/// Builds the router for the given handlers.
pub fn router(h: Handlers) -> Router {
    let body_limit = h.decode_limits.max_recv_bytes.saturating_add(1);
    let state = Arc::new(h);
    Router::new()
        .route("/loki/api/v1/push", post(push::push_v1))
        .route("/api/prom/push", post(push::push_legacy))
        .route(
            "/loki/api/v1/query_range",
            get(query::query_range).post(query::query_range),
        )
        .route("/loki/api/v1/query", get(query::query).post(query::query))
        .route("/loki/api/v1/labels", get(query::labels).post(query::labels))
        .route("/loki/api/v1/label", get(query::labels).post(query::labels))
        .route(
            "/loki/api/v1/label/{name}/values",
            get(query::label_values).post(query::label_values),
        )
        .route("/ready", get(ops::ready))
        .route("/flush", get(ops::flush).post(ops::flush))
        .route("/metrics", get(ops::metrics))
        .route("/loki/api/v1/status/buildinfo", get(ops::buildinfo))
        .fallback(ops::not_found)
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

/// Serves the router on `listener` until `shutdown` completes, then finishes in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    h: Handlers,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(h)).with_graceful_shutdown(shutdown).await
}

type State = axum::extract::State<Arc<Handlers>>;

#[cfg(test)]
mod tests;
