//! The gRPC edge of the ingester role and the clients that reach it. In a cluster, distributors
//! push to ingesters and queriers read from them over `lode.ingester.v1.Ingester`
//! (`proto/ingester.proto`, docs/cluster.md):
//!
//! ```text
//! distributor ── dyn Pusher = IngesterClient ──Push──▶ IngesterService ──▶ dyn Pusher (Ingester)
//! querier ── dyn LogQuerier / TailSource = IngesterClient ──Query, QuerySample, Label, Series,
//!            Tail──▶ IngesterService ──▶ dyn LogQuerier / TailSource (Ingester)
//! ```
//!
//! [`IngesterService`] calls the role traits and never the ingester crate; [`IngesterClient`]
//! implements the same traits, so a role holds it where the single binary holds the in-process
//! ingester. Large answers are streamed in batches so they are not bound by the
//! message size limits; errors keep their `ErrorCode` across the hop (`lode_proto::status`).

mod batch;
mod client;
mod config;
mod server;

pub use client::{ClientPool, IngesterClient};
pub use config::{GrpcClientConfig, GrpcServerConfig, IngesterClientConfig};
pub use server::{IngesterService, serve};

/// Request metadata carrying the tenant, as in Loki.
pub const TENANT_HEADER: &str = "x-scope-orgid";

#[derive(Debug, thiserror::Error)]
pub enum GrpcError {
    #[error("invalid ingester address {addr}: {reason}")]
    InvalidAddress { addr: String, reason: String },
    #[error("grpc server failed: {0}")]
    Serve(#[source] tonic::transport::Error),
}

pub type Result<T, E = GrpcError> = std::result::Result<T, E>;
