//! gRPC settings, under Loki's key names: the server side (`grpc_server_*`, which Loki keeps in
//! its `server:` section) and the `ingester_client:` section distributors and queriers use.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use lode_model::time::{ByteSize, ConfigDuration};

/// The ingester's gRPC server limits (Loki's `server.grpc_server_*` keys).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcServerConfig {
    /// Largest request the server decodes. A push is forwarded whole by the distributor, so the
    /// default matches the HTTP edge's `max_recv_msg_size` (Loki's default is 4MB).
    pub grpc_server_max_recv_msg_size: ByteSize,
    /// Largest response message the server encodes. Query answers are streamed in batches of at
    /// most a quarter of this (and at most 1MB), so it bounds one message, not an answer.
    pub grpc_server_max_send_msg_size: ByteSize,
    /// Concurrent streams (calls) per client connection. Every live tail holds one for its
    /// lifetime, hence more than Loki's default of 100.
    pub grpc_server_max_concurrent_streams: u32,
}

impl Default for GrpcServerConfig {
    fn default() -> Self {
        GrpcServerConfig {
            grpc_server_max_recv_msg_size: ByteSize(100 << 20),
            grpc_server_max_send_msg_size: ByteSize(4 << 20),
            grpc_server_max_concurrent_streams: 1000,
        }
    }
}

/// Smallest message limit accepted: below it a single label set may not fit.
const MIN_MSG_SIZE: u64 = 4 << 10;

impl GrpcServerConfig {
    pub fn validate(&self) -> Result<(), String> {
        for (key, v) in [
            ("grpc_server_max_recv_msg_size", self.grpc_server_max_recv_msg_size),
            ("grpc_server_max_send_msg_size", self.grpc_server_max_send_msg_size),
        ] {
            check_msg_size(&format!("server.{key}"), v)?;
        }
        if self.grpc_server_max_concurrent_streams == 0 {
            return Err("server.grpc_server_max_concurrent_streams must be at least 1".to_string());
        }
        Ok(())
    }

    /// Target size of one streamed answer message.
    pub(crate) fn batch_bytes(&self) -> usize {
        usize::try_from((self.grpc_server_max_send_msg_size.0 / 4).min(1 << 20)).unwrap_or(1 << 20)
    }
}

/// `ingester_client:`: how distributors and queriers call ingesters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngesterClientConfig {
    /// Deadline of one call (a push, or a whole streamed query answer); live tails have none
    /// once they started.
    pub remote_timeout: ConfigDuration,
    pub grpc_client_config: GrpcClientConfig,
}

impl Default for IngesterClientConfig {
    fn default() -> Self {
        IngesterClientConfig {
            remote_timeout: ConfigDuration::secs(5),
            grpc_client_config: GrpcClientConfig::default(),
        }
    }
}

/// `ingester_client.grpc_client_config:`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcClientConfig {
    /// Largest response message the client decodes.
    pub max_recv_msg_size: ByteSize,
    /// Largest request the client sends; a larger push is split into several requests.
    pub max_send_msg_size: ByteSize,
    /// Deadline for establishing a connection (TCP and HTTP/2 handshake).
    pub connect_timeout: ConfigDuration,
}

impl Default for GrpcClientConfig {
    fn default() -> Self {
        GrpcClientConfig {
            max_recv_msg_size: ByteSize(100 << 20),
            max_send_msg_size: ByteSize(100 << 20),
            connect_timeout: ConfigDuration::secs(5),
        }
    }
}

impl IngesterClientConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.remote_timeout.0.is_zero() {
            return Err("ingester_client.remote_timeout must be positive".to_string());
        }
        let g = &self.grpc_client_config;
        check_msg_size(
            "ingester_client.grpc_client_config.max_recv_msg_size",
            g.max_recv_msg_size,
        )?;
        check_msg_size(
            "ingester_client.grpc_client_config.max_send_msg_size",
            g.max_send_msg_size,
        )?;
        if g.connect_timeout.0.is_zero() {
            return Err("ingester_client.grpc_client_config.connect_timeout must be positive".to_string());
        }
        Ok(())
    }

    pub(crate) fn remote_timeout(&self) -> Duration {
        self.remote_timeout.0
    }
}

fn check_msg_size(key: &str, v: ByteSize) -> Result<(), String> {
    if v.0 < MIN_MSG_SIZE {
        return Err(format!("{key} must be at least {}, got {v}", ByteSize(MIN_MSG_SIZE)));
    }
    if usize::try_from(v.0).is_err() || v.0 > u64::from(u32::MAX) {
        return Err(format!("{key} must be at most 4GB, got {v}"));
    }
    Ok(())
}

/// A size already validated to fit in `usize`.
pub(crate) fn as_usize(v: ByteSize) -> usize {
    usize::try_from(v.0).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_keys_parse() {
        GrpcServerConfig::default().validate().unwrap();
        IngesterClientConfig::default().validate().unwrap();

        let server: GrpcServerConfig =
            serde_yaml::from_str("grpc_server_max_recv_msg_size: 8MB\ngrpc_server_max_send_msg_size: 65536\n").unwrap();
        assert_eq!(server.grpc_server_max_recv_msg_size, ByteSize(8 << 20));
        assert_eq!(server.grpc_server_max_send_msg_size, ByteSize(64 << 10));
        assert_eq!(server.grpc_server_max_concurrent_streams, 1000);
        assert_eq!(server.batch_bytes(), 16 << 10);

        let client: IngesterClientConfig = serde_yaml::from_str(
            "remote_timeout: 1s\ngrpc_client_config:\n  max_send_msg_size: 1MB\n  connect_timeout: 250ms\n",
        )
        .unwrap();
        assert_eq!(client.remote_timeout, ConfigDuration(Duration::from_secs(1)));
        assert_eq!(client.grpc_client_config.max_send_msg_size, ByteSize(1 << 20));
        assert_eq!(client.grpc_client_config.max_recv_msg_size, ByteSize(100 << 20));
        assert_eq!(client.grpc_client_config.connect_timeout.0, Duration::from_millis(250));
        client.validate().unwrap();
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        assert!(serde_yaml::from_str::<IngesterClientConfig>("remote_timeot: 1s").is_err());
        assert!(serde_yaml::from_str::<GrpcServerConfig>("grpc_listen_port: 1").is_err());

        let c = IngesterClientConfig {
            remote_timeout: ConfigDuration::secs(0),
            ..Default::default()
        };
        assert_eq!(
            c.validate().unwrap_err(),
            "ingester_client.remote_timeout must be positive"
        );

        let s = GrpcServerConfig {
            grpc_server_max_send_msg_size: ByteSize(100),
            ..Default::default()
        };
        assert_eq!(
            s.validate().unwrap_err(),
            "server.grpc_server_max_send_msg_size must be at least 4KB, got 100B"
        );
    }
}
