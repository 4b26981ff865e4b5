//! `ingester:` section of the config file, under Loki's key names.

use serde::{Deserialize, Serialize};

use lode_model::time::{ByteSize, ConfigDuration};
pub use lode_wal::SyncMode;

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
    /// The write-ahead log.
    pub wal: WalConfig,
    /// Memory the ingester's streams may hold (heads and chunks waiting to be flushed). Past
    /// 80% of it, heads are cut and flushed early, largest first; at 100%, pushes answer 429
    /// until flushing brings it down. 0 disables the budget.
    pub memory_budget: ByteSize,
}

/// `ingester.wal:` (Loki's key names where Loki has the setting).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WalConfig {
    pub enabled: bool,
    /// Directory of segments and checkpoints; empty means `<common.path_prefix>/wal`.
    pub dir: String,
    /// How often in-memory data is checkpointed and older segments deleted.
    pub checkpoint_duration: ConfigDuration,
    /// When written records are forced to disk: `always`, `interval` or `never`
    /// (docs/wal-format.md has the trade-off).
    pub sync: SyncMode,
    /// fsync period with `sync: interval`.
    pub sync_period: ConfigDuration,
    /// A segment larger than this is closed and a new one started.
    pub segment_size: ByteSize,
}

impl Default for WalConfig {
    fn default() -> Self {
        WalConfig {
            enabled: true,
            dir: String::new(),
            checkpoint_duration: ConfigDuration::secs(5 * 60),
            sync: SyncMode::Interval,
            sync_period: ConfigDuration::secs(1),
            segment_size: ByteSize(128 << 20),
        }
    }
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
            wal: WalConfig::default(),
            memory_budget: ByteSize(1 << 30),
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
        if self.wal.enabled {
            if self.wal.checkpoint_duration.0.is_zero() {
                return Err("ingester.wal.checkpoint_duration must be positive".to_string());
            }
            if self.wal.sync == SyncMode::Interval && self.wal.sync_period.0.is_zero() {
                return Err("ingester.wal.sync_period must be positive with sync: interval".to_string());
            }
            if self.wal.segment_size.0 < (1 << 20) {
                return Err(format!(
                    "ingester.wal.segment_size must be at least 1MB, got {}",
                    self.wal.segment_size
                ));
            }
            if self.wal.dir.is_empty() {
                return Err("ingester.wal.dir must be set (it defaults to <common.path_prefix>/wal)".to_string());
            }
        }
        Ok(())
    }
}
