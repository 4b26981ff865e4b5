//! Lode's wire types. `logproto` is Loki's push protobuf (`proto/push.proto`, wire-compatible with
//! `grafana/loki` `pkg/push/push.proto`): what Promtail, Alloy and Vector send snappy-compressed
//! to `/loki/api/v1/push`, and the `Pusher` gRPC service. `ingester` is the ingester role's gRPC
//! service (`proto/ingester.proto`, package `lode.ingester.v1`) that distributors and queriers
//! call in a cluster. Code is generated at build time from the workspace's `proto/` directory;
//! each proto package is one module here. `convert` and `convert_ingester` hold the edge
//! conversions to and from `lode_model` types, so nothing past the HTTP/gRPC edge sees generated
//! types; `status` maps `ErrorCode` to gRPC codes and back, in one place.

pub mod convert;
pub mod convert_ingester;
pub mod encode;
pub mod status;

/// Generated from `proto/push.proto` (package `logproto`): messages plus `pusher_client` and
/// `pusher_server`.
#[allow(clippy::all, clippy::pedantic, missing_docs, unreachable_pub)]
pub mod logproto {
    include!(concat!(env!("OUT_DIR"), "/logproto.rs"));
}

/// Generated packages nested by their proto package name (`lode.ingester.v1`), so generated
/// references to `logproto` resolve; use the [`ingester`] alias.
pub mod lode {
    pub mod ingester {
        /// Generated from `proto/ingester.proto`: messages plus `ingester_client` and
        /// `ingester_server`.
        #[allow(clippy::all, clippy::pedantic, missing_docs, unreachable_pub)]
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/lode.ingester.v1.rs"));
        }
    }
}

pub use lode::ingester::v1 as ingester;

pub use convert::ProtoError;
