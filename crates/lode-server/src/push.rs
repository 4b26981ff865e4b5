//! `POST /loki/api/v1/push` and the legacy `POST /api/prom/push`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use lode_model::{ApiError, ErrorCode};

use crate::http::{HttpError, HttpResult, tenant};
use crate::push_decode::{decode_otlp, decode_push};
use crate::{Handlers, State};

pub(crate) async fn push_v1(
    axum::extract::State(h): State,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> HttpResult<StatusCode> {
    push(&h, &headers, body, Format::V1).await
}

/// `POST /otlp/v1/logs`: OpenTelemetry logs, mapped to streams as Loki does. Errors follow
/// OTLP/HTTP: a `google.rpc.Status` (protobuf, or JSON for JSON requests) with the gRPC code,
/// and a 500 becomes a 503 so exporters retry.
pub(crate) async fn push_otlp(
    axum::extract::State(h): State,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match push(&h, &headers, body, Format::Otlp).await {
        Ok(s) => s.into_response(),
        Err(HttpError(e)) => otlp_error(&headers, e),
    }
}

/// `google.rpc.Status` without details.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

fn otlp_error(headers: &HeaderMap, mut e: ApiError) -> Response {
    if e.code == ErrorCode::Internal {
        e.code = ErrorCode::Unavailable;
    }
    let status = StatusCode::from_u16(e.code.http_status()).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let rpc = RpcStatus {
        code: lode_proto::status::grpc_code(e.code) as i32,
        message: e.message,
    };
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.trim_start().to_ascii_lowercase().starts_with("application/json"));
    if json {
        let body = serde_json::json!({"code": rpc.code, "message": rpc.message}).to_string();
        (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
    } else {
        (
            status,
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            prost::Message::encode_to_vec(&rpc),
        )
            .into_response()
    }
}

pub(crate) async fn push_legacy(
    axum::extract::State(h): State,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> HttpResult<StatusCode> {
    push(&h, &headers, body, Format::Legacy).await
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    V1,
    Legacy,
    Otlp,
}

async fn push(
    h: &Handlers,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    format: Format,
) -> HttpResult<StatusCode> {
    let Some(handler) = &h.push else {
        return Err(HttpError(ApiError::new(
            ErrorCode::NotFound,
            "this node does not run the distributor",
        )));
    };
    let tenant = tenant(h, headers)?;
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            let size = headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .map_or_else(|| "unknown".to_string(), |n| n.to_string());
            HttpError(ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!(
                    "request body too large: message size too large than max ({size} vs {})",
                    h.decode_limits.max_recv_bytes
                ),
            ))
        } else {
            HttpError(ApiError::bad_request(format!("cannot read request body: {e}")))
        }
    })?;
    let header_str = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let (ct, ce) = (header_str(header::CONTENT_TYPE), header_str(header::CONTENT_ENCODING));
    let req = match format {
        Format::Otlp => decode_otlp(&body, ct, ce, &h.decode_limits),
        _ => decode_push(&body, ct, ce, format == Format::Legacy, &h.decode_limits),
    }
    .map_err(|e| HttpError(e.into()))?;
    handler.push(&tenant, req).await?;
    Ok(StatusCode::NO_CONTENT)
}
