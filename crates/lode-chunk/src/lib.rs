//! The chunk format: zstd-compressed blocks of log entries with per-block time ranges and crc32 checksums
