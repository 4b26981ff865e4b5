//! Push body decoding for `POST /loki/api/v1/push` and the legacy `POST /api/prom/push`: the
//! first step of the write path, before the distributor validates labels and entries. A pure
//! function of the body bytes and two headers, following Loki's `parsePushRequestBody`:
//!
//! 1. `Content-Encoding`: `""` plain, `snappy` no-op (the protobuf path snappy-decodes anyway),
//!    `gzip`, `deflate` (raw or zlib); anything else is a 400.
//! 2. `Content-Type` parsed as a media type: `application/json` is JSON (v1 schema, or the
//!    legacy v0 schema on the legacy path); any other type is snappy-block-compressed protobuf;
//!    none is a 400 (`mime: no media type`).
//!
//! Decompression is size-capped (413 before allocating, for snappy's declared length).

mod json;
mod lenient;
mod media_type;
mod otlp;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use std::borrow::Cow;

use lode_model::api::PushRequest;
use lode_model::decompress::{self, DecompressError};
use lode_model::{ApiError, ErrorCode};
use lode_proto::logproto;
use prost::Message;

/// Size caps applied while decoding a push body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest body accepted as received, before decompression
    /// (`distributor.max-recv-msg-size`).
    pub max_recv_bytes: usize,
    /// Largest body after gzip/deflate or snappy decompression
    /// (`distributor.max-decompressed-size`).
    pub max_decompressed_bytes: usize,
}

impl Default for DecodeLimits {
    /// Loki's defaults: 100 MiB received, 5000 MiB decompressed.
    fn default() -> Self {
        DecodeLimits {
            max_recv_bytes: 100 << 20,
            max_decompressed_bytes: 5000 << 20,
        }
    }
}

/// Why a push body could not be decoded. Messages are Loki's; `http_status` is 400 or 413.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("Content-Encoding {0:?} not supported")]
    UnsupportedEncoding(String),
    /// Go's `mime.ParseMediaType` error text, e.g. `mime: no media type`.
    #[error("{0}")]
    MediaType(&'static str),
    #[error("request body too large: message size too large than max ({size} vs {max})")]
    BodyTooLarge { size: u64, max: u64 },
    #[error("request body too large: decompressed message size too large than max ({size} vs {max})")]
    DecompressedTooLarge { size: u64, max: u64 },
    /// Undecodable gzip, deflate or snappy data.
    #[error("{0}")]
    Compression(String),
    /// Malformed JSON, or JSON of the wrong shape (serde's message).
    #[error("{0}")]
    Json(String),
    /// Malformed protobuf, or a protobuf timestamp out of range.
    #[error("{0}")]
    Protobuf(String),
}

impl DecodeError {
    pub fn code(&self) -> ErrorCode {
        match self {
            DecodeError::BodyTooLarge { .. } | DecodeError::DecompressedTooLarge { .. } => ErrorCode::PayloadTooLarge,
            _ => ErrorCode::BadRequest,
        }
    }

    /// 413 for size caps, 400 for everything else.
    pub fn http_status(&self) -> u16 {
        self.code().http_status()
    }
}

impl From<DecompressError> for DecodeError {
    fn from(e: DecompressError) -> Self {
        match e {
            DecompressError::TooLarge { size, max } => DecodeError::DecompressedTooLarge { size, max },
            // snap's own messages already start with "snappy: ".
            DecompressError::Corrupt(m) => match m.strip_prefix("snappy: ") {
                Some(rest) if rest.starts_with("snappy: ") => DecodeError::Compression(rest.to_string()),
                // Go's `gzip.ErrHeader`, which Loki answers for a body that is not gzip.
                _ if m == "gzip: invalid gzip header" => DecodeError::Compression("gzip: invalid header".into()),
                _ => DecodeError::Compression(m),
            },
        }
    }
}

impl From<DecodeError> for ApiError {
    fn from(e: DecodeError) -> Self {
        ApiError::new(e.code(), e.to_string())
    }
}

/// Decodes a push body. `content_type` and `content_encoding` are the raw header values (`None`
/// when absent); `legacy_path` is true for `/api/prom/push` (Loki: the request URI does not
/// contain `/loki/api/v1`), which selects the v0 JSON schema.
///
/// Stream labels are returned as text, unvalidated: JSON v1 `stream` objects are rendered to
/// `{k="v", ...}` so both formats share the distributor's validation path.
pub fn decode_push(
    body: &[u8],
    content_type: Option<&str>,
    content_encoding: Option<&str>,
    legacy_path: bool,
    limits: &DecodeLimits,
) -> Result<PushRequest, DecodeError> {
    if body.len() > limits.max_recv_bytes {
        return Err(DecodeError::BodyTooLarge {
            size: body.len() as u64,
            max: limits.max_recv_bytes as u64,
        });
    }
    let encoding = match content_encoding.unwrap_or("") {
        "" | "snappy" => Encoding::Identity,
        "gzip" => Encoding::Gzip,
        "deflate" => Encoding::Deflate,
        other => return Err(DecodeError::UnsupportedEncoding(other.to_string())),
    };
    let media_type = media_type::parse_media_type(content_type.unwrap_or("")).map_err(DecodeError::MediaType)?;

    // Capped so the helpers' `max + 1` cannot overflow when a caller passes usize::MAX.
    let max = limits.max_decompressed_bytes.min(isize::MAX as usize);
    let body: Cow<'_, [u8]> = match encoding {
        Encoding::Identity => Cow::Borrowed(body),
        Encoding::Gzip => Cow::Owned(decompress::gzip(body, max)?),
        Encoding::Deflate => Cow::Owned(decompress::deflate(body, max)?),
    };

    if media_type == "application/json" {
        let decoded = if legacy_path {
            json::decode_v0(&body)
        } else {
            json::decode_v1(&body)
        };
        decoded.map_err(|e| DecodeError::Json(e.to_string()))
    } else {
        let raw = decompress::snappy(&body, max)?;
        drop(body);
        decode_protobuf(&raw)
    }
}

/// Decodes an OTLP/HTTP logs body (`POST /otlp/v1/logs`): protobuf, or JSON for
/// `application/json`; `gzip` content encoding as OTLP exporters send it; the same size caps.
pub fn decode_otlp(
    body: &[u8],
    content_type: Option<&str>,
    content_encoding: Option<&str>,
    limits: &DecodeLimits,
) -> Result<PushRequest, DecodeError> {
    if body.len() > limits.max_recv_bytes {
        return Err(DecodeError::BodyTooLarge {
            size: body.len() as u64,
            max: limits.max_recv_bytes as u64,
        });
    }
    let max = limits.max_decompressed_bytes.min(isize::MAX as usize);
    let body: Cow<'_, [u8]> = match content_encoding.unwrap_or("") {
        "" | "identity" => Cow::Borrowed(body),
        "gzip" => Cow::Owned(decompress::gzip(body, max)?),
        "deflate" => Cow::Owned(decompress::deflate(body, max)?),
        other => return Err(DecodeError::UnsupportedEncoding(other.to_string())),
    };
    let media_type = media_type::parse_media_type(content_type.unwrap_or("")).map_err(DecodeError::MediaType)?;
    otlp::decode(&body, media_type == "application/json")
}

/// Decodes an uncompressed `logproto.PushRequest`.
/// Strings that are not UTF-8 are read with U+FFFD in place of the invalid bytes, as Loki's
/// clients see them (see `lenient`).
pub fn decode_protobuf(raw: &[u8]) -> Result<PushRequest, DecodeError> {
    let msg = match logproto::PushRequest::decode(raw) {
        Ok(msg) => msg,
        Err(e) => lenient::decode(raw).ok_or_else(|| DecodeError::Protobuf(e.to_string()))?,
    };
    PushRequest::try_from(msg).map_err(|e| DecodeError::Protobuf(e.to_string()))
}

#[derive(Clone, Copy)]
enum Encoding {
    Identity,
    Gzip,
    Deflate,
}
