//! The ingester role: per-stream head blocks in memory, chunk cutting and background flushes to object storage
