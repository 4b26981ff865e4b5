//! Operations endpoints: readiness, flush, metrics, build info, and the 404 for the rest.

use std::sync::atomic::Ordering;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus::{Encoder, TextEncoder};

use lode_model::{ApiError, ErrorCode};

use crate::State;
use crate::http::{HttpError, HttpResult};

pub(crate) async fn ready(axum::extract::State(h): State) -> Response {
    if h.stopping.load(Ordering::Relaxed) {
        return (StatusCode::SERVICE_UNAVAILABLE, "Application is stopping\n").into_response();
    }
    if let Some(reason) = h.ingester.as_ref().and_then(|i| i.not_ready_reason()) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("Ingester not ready: {reason}\n"),
        )
            .into_response();
    }
    (StatusCode::OK, "ready\n").into_response()
}

/// Cuts and flushes every in-memory chunk, then answers 204 (Loki's `/flush`).
pub(crate) async fn flush(axum::extract::State(h): State) -> HttpResult<StatusCode> {
    let Some(ing) = &h.ingester else {
        return Err(HttpError(ApiError::new(
            ErrorCode::NotFound,
            "this node does not run the ingester",
        )));
    };
    ing.flush_all().await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn metrics(axum::extract::State(h): State) -> Response {
    let mut buf = Vec::new();
    let enc = TextEncoder::new();
    if let Err(e) = enc.encode(&h.registry.gather(), &mut buf) {
        return HttpError(ApiError::internal(format!("cannot encode metrics: {e}"))).into_response();
    }
    ([(header::CONTENT_TYPE, enc.format_type().to_string())], buf).into_response()
}

pub(crate) async fn buildinfo() -> Response {
    let body = serde_json::json!({
        "version": concat!("3.5.0-lode-", env!("CARGO_PKG_VERSION")),
        "revision": "",
        "branch": "",
        "buildUser": "",
        "buildDate": "",
        "goVersion": "",
    });
    axum::Json(body).into_response()
}

pub(crate) async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "404 page not found\n",
    )
        .into_response()
}
