//! Per-tenant limits under Loki's `limits_config` names. Every role reads the parts it needs;
//! per-tenant overrides come with the limits issue, so today every tenant has the defaults.

use serde::{Deserialize, Serialize};

use crate::time::{ByteSize, ConfigDuration};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Refuse entries older than `reject_old_samples_max_age`.
    pub reject_old_samples: bool,
    pub reject_old_samples_max_age: ConfigDuration,
    /// How far in the future an entry's timestamp may be.
    pub creation_grace_period: ConfigDuration,
    /// Longest accepted line; 0 disables the check.
    pub max_line_size: ByteSize,
    /// Truncate over-long lines instead of refusing them.
    pub max_line_size_truncate: bool,
    /// Most label names a stream may have.
    pub max_label_names_per_series: usize,
    pub max_label_name_length: usize,
    pub max_label_value_length: usize,
    /// Accept entries out of order within a stream. Lode implements ordered writes only for
    /// now; `true` is refused by `validate`.
    pub unordered_writes: bool,
    /// Largest structured metadata of one entry (names and values); 0 disables the check.
    pub max_structured_metadata_size: ByteSize,
    /// Most structured-metadata pairs on one entry; 0 disables the check.
    pub max_structured_metadata_entries_count: usize,
    /// Most entries a log query may ask for.
    pub max_entries_limit_per_query: usize,
    /// Most series a metric query may return.
    pub max_query_series: usize,
    /// Longest a query may run before it is abandoned with a 504.
    pub query_timeout: ConfigDuration,
    /// Longest time range a query may span.
    pub max_query_length: ConfigDuration,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            reject_old_samples: true,
            reject_old_samples_max_age: ConfigDuration::secs(7 * 24 * 3600),
            creation_grace_period: ConfigDuration::secs(600),
            max_line_size: ByteSize(256 * 1024),
            max_line_size_truncate: false,
            max_label_names_per_series: 15,
            max_label_name_length: 1024,
            max_label_value_length: 2048,
            unordered_writes: false,
            max_structured_metadata_size: ByteSize(64 * 1024),
            max_structured_metadata_entries_count: 128,
            max_entries_limit_per_query: 5000,
            max_query_series: 500,
            query_timeout: ConfigDuration::secs(60),
            max_query_length: ConfigDuration::secs(721 * 3600),
        }
    }
}

impl LimitsConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.unordered_writes {
            return Err(
                "limits_config.unordered_writes: true is not supported yet; Lode accepts ordered writes per stream"
                    .into(),
            );
        }
        if self.max_label_names_per_series == 0 {
            return Err("limits_config.max_label_names_per_series must be at least 1".into());
        }
        if self.max_entries_limit_per_query == 0 {
            return Err("limits_config.max_entries_limit_per_query must be at least 1".into());
        }
        Ok(())
    }
}
