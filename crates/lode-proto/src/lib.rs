//! Lode's wire types. `logproto` is Loki's push protobuf (`proto/push.proto`, wire-compatible with
//! `grafana/loki` `pkg/push/push.proto`): what Promtail, Alloy and Vector send snappy-compressed
//! to `/loki/api/v1/push`, and the `Pusher` gRPC service. Code is generated at build time from
//! the workspace's `proto/` directory; each proto package is one module here, and `convert`
//! holds the edge conversions to and from `lode_model` types, so nothing past the HTTP/gRPC edge
//! sees generated types. Later services (ingester push, querier) add a `.proto` and a module.

pub mod convert;

/// Generated from `proto/push.proto` (package `logproto`): messages plus `pusher_client` and
/// `pusher_server`.
#[allow(clippy::all, clippy::pedantic, missing_docs, unreachable_pub)]
pub mod logproto {
    include!(concat!(env!("OUT_DIR"), "/logproto.rs"));
}

pub use convert::ProtoError;
