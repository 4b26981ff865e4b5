//! `ingester:` section of the config file, under Loki's key names.

use serde::{Deserialize, Serialize};

use lode_model::time::{ByteSize, ConfigDuration};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngesterConfig {
    /// Uncompressed size at which the head block of a chunk is cut and compressed.
    pub chunk_block_size: ByteSize,
    /// Compressed size at which a chunk is cut and queued for flushing.
    pub chunk_target_size: ByteSize,
    /// A chunk older than this (first entry to now) is cut and flushed.
    pub max_chunk_age: ConfigDuration,
    /// A chunk that received nothing for this long is cut and flushed.
    pub chunk_idle_period: ConfigDuration,
    /// How often the flush loop looks for chunks to cut and flush.
    pub flush_check_period: ConfigDuration,
    /// How many chunk uploads run at once.
    pub concurrent_flushes: usize,
    /// zstd level for chunk blocks.
    pub chunk_zstd_level: i32,
}

impl Default for IngesterConfig {
    fn default() -> Self {
        IngesterConfig {
            chunk_block_size: ByteSize(lode_chunk::DEFAULT_BLOCK_SIZE as u64),
            chunk_target_size: ByteSize(1536 * 1024),
            max_chunk_age: ConfigDuration::secs(2 * 3600),
            chunk_idle_period: ConfigDuration::secs(30 * 60),
            flush_check_period: ConfigDuration::secs(30),
            concurrent_flushes: 4,
            chunk_zstd_level: lode_chunk::DEFAULT_ZSTD_LEVEL,
        }
    }
}

impl IngesterConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.chunk_block_size.0 < 1024 {
            return Err(format!(
                "ingester.chunk_block_size must be at least 1KB, got {}",
                self.chunk_block_size
            ));
        }
        if self.chunk_target_size.0 < self.chunk_block_size.0 / 64 {
            return Err(format!(
                "ingester.chunk_target_size {} is too small",
                self.chunk_target_size
            ));
        }
        if self.flush_check_period.0.is_zero() {
            return Err("ingester.flush_check_period must be positive".to_string());
        }
        if self.concurrent_flushes == 0 {
            return Err("ingester.concurrent_flushes must be at least 1".to_string());
        }
        if !(1..=22).contains(&self.chunk_zstd_level) {
            return Err(format!(
                "ingester.chunk_zstd_level must be 1..=22, got {}",
                self.chunk_zstd_level
            ));
        }
        Ok(())
    }
}
