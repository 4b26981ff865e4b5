//! The HTTP edge of every role: Loki's push endpoints (decoding JSON, gzip/deflate JSON and
//! snappy protobuf bodies), the query endpoints rendering Loki's JSON, the metadata and Logs
//! Drilldown endpoints (`series`, `index/*`, `detected_*`, `patterns`), and the operations
//! endpoints (`/ready`, `/flush`, `/metrics`, build info, `/config`, `/services`, `/ring`).
//! Handlers call the role traits from `lode_model::api`; this crate never depends on a role
//! crate, so the same router serves a distributor, a querier, an ingester or all of them.

mod config;
mod http;
mod metadata;
mod ops;
mod push;
pub mod push_decode;
mod query;
mod render;
mod ring;
mod tail;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use prometheus::Registry;

pub use config::ServerConfig;
use lode_model::api::{IngesterAdmin, MetadataHandler, PushHandler, QueryHandler, RingStatus};
use lode_model::limits::Limits;
pub use push_decode::DecodeLimits;

/// What the HTTP edge serves: each role's handler is present only when the node runs that role.
#[derive(Clone)]
pub struct Handlers {
    pub push: Option<Arc<dyn PushHandler>>,
    pub query: Option<Arc<dyn QueryHandler>>,
    /// Live tail (the querier); absent when the node does not run one.
    pub tail: Option<Arc<dyn lode_model::api::TailHandler>>,
    pub ingester: Option<Arc<dyn IngesterAdmin>>,
    pub registry: Registry,
    /// With `auth_enabled`, the tenant comes from `X-Scope-OrgID` (required); else it is `fake`.
    pub auth_enabled: bool,
    pub decode_limits: DecodeLimits,
    /// Set while the node is shutting down: `/ready` answers 503.
    pub stopping: Arc<std::sync::atomic::AtomicBool>,
    /// `series`, `index/*` and the Drilldown endpoints (the querier).
    pub metadata: Option<Arc<dyn MetadataHandler>>,
    /// Per-tenant limits, as `drilldown-limits` reports them.
    pub limits: Arc<Limits>,
    /// What `/config` shows.
    pub config: ConfigView,
    /// The cluster membership behind `/ring`; absent: `/ring` is 404.
    pub ring: Option<Arc<dyn RingStatus>>,
}

/// The node's config for `/config`: the effective config and the defaults, as YAML (secrets
/// already masked by whoever renders them).
#[derive(Debug, Clone, Default)]
pub struct ConfigView {
    pub current: String,
    pub defaults: String,
}

/// Builds the router for the given handlers.
pub fn router(h: Handlers) -> Router {
    let body_limit = h.decode_limits.max_recv_bytes.saturating_add(1);
    let state = Arc::new(h);
    Router::new()
        .route("/loki/api/v1/push", post(push::push_v1))
        .route("/api/prom/push", post(push::push_legacy))
        .route("/otlp/v1/logs", post(push::push_otlp))
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
        .route("/loki/api/v1/tail", get(tail::tail).post(tail::tail))
        .route("/loki/api/v1/series", get(metadata::series).post(metadata::series))
        .route("/api/prom/series", get(metadata::series).post(metadata::series))
        .route(
            "/loki/api/v1/index/stats",
            get(metadata::index_stats).post(metadata::index_stats),
        )
        .route(
            "/loki/api/v1/index/volume",
            get(metadata::volume).post(metadata::volume),
        )
        .route(
            "/loki/api/v1/index/volume_range",
            get(metadata::volume_range).post(metadata::volume_range),
        )
        .route(
            "/loki/api/v1/detected_labels",
            get(metadata::detected_labels).post(metadata::detected_labels),
        )
        .route(
            "/loki/api/v1/detected_fields",
            get(metadata::detected_fields).post(metadata::detected_fields),
        )
        .route(
            "/loki/api/v1/detected_field/{name}/values",
            get(metadata::detected_field_values).post(metadata::detected_field_values),
        )
        .route(
            "/loki/api/v1/patterns",
            get(metadata::patterns).post(metadata::patterns),
        )
        .route("/loki/api/v1/drilldown-limits", get(metadata::drilldown_limits))
        .route(
            "/loki/api/v1/format_query",
            get(metadata::format_query).post(metadata::format_query),
        )
        .route("/config", get(ops::config))
        .route("/services", get(ops::services))
        .route("/ring", get(ring::page).post(ring::forget))
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
