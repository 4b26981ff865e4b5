//! Lode's shared vocabulary. Every other crate speaks in these types: label sets and their
//! fingerprints, log entries and streams, Loki-compatible time and size parsing, the one
//! `ErrorCode` that maps to an HTTP status, the size-capped decompression helpers, and the role
//! traits (`PushHandler`, `Pusher`, `LogQuerier`, `QueryHandler`...) through which the HTTP/gRPC
//! edge calls the distributor, ingester and querier without depending on them.

pub mod api;
pub mod decompress;
pub mod entry;
pub mod error;
pub mod labels;
pub mod limits;
pub mod metrics;
pub mod time;
pub mod varint;

pub use entry::{Direction, Entry, Stream};
pub use error::{ApiError, ErrorCode};
pub use labels::{LabelError, Labels};

/// The tenant used when `auth_enabled` is false, as in Loki.
pub const DEFAULT_TENANT: &str = "fake";
