//! `server:` section of the config file, under Loki's key names.

use serde::{Deserialize, Serialize};

use lode_model::time::ByteSize;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub http_listen_address: String,
    pub http_listen_port: u16,
    pub grpc_listen_address: String,
    pub grpc_listen_port: u16,
    /// `debug`, `info`, `warn` or `error`.
    pub log_level: String,
    /// `logfmt` (human-readable) or `json`.
    pub log_format: String,
    /// Largest push body accepted as received (Loki: `distributor.max-recv-msg-size`).
    pub max_recv_msg_size: ByteSize,
    /// Largest push body after decompression.
    pub max_decompressed_size: ByteSize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            http_listen_address: "0.0.0.0".to_string(),
            http_listen_port: 3100,
            grpc_listen_address: "0.0.0.0".to_string(),
            grpc_listen_port: 9095,
            log_level: "info".to_string(),
            log_format: "logfmt".to_string(),
            max_recv_msg_size: ByteSize(100 << 20),
            max_decompressed_size: ByteSize(5000 << 20),
        }
    }
}

impl ServerConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !["debug", "info", "warn", "error"].contains(&self.log_level.as_str()) {
            return Err(format!(
                "server.log_level: unknown level {:?}, expected debug, info, warn or error",
                self.log_level
            ));
        }
        if !["logfmt", "json"].contains(&self.log_format.as_str()) {
            return Err(format!(
                "server.log_format: unknown format {:?}, expected logfmt or json",
                self.log_format
            ));
        }
        if self.max_recv_msg_size.0 == 0 || self.max_decompressed_size.0 < self.max_recv_msg_size.0 {
            return Err(
                "server.max_decompressed_size must be at least server.max_recv_msg_size, which must be positive".into(),
            );
        }
        Ok(())
    }

    pub fn decode_limits(&self) -> crate::DecodeLimits {
        crate::DecodeLimits {
            max_recv_bytes: usize::try_from(self.max_recv_msg_size.0).unwrap_or(usize::MAX),
            max_decompressed_bytes: usize::try_from(self.max_decompressed_size.0).unwrap_or(usize::MAX),
        }
    }
}
