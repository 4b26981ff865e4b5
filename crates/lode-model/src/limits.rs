//! Per-tenant limits under Loki's `limits_config` names. Every role reads the parts it needs
//! through [`Limits::tenant`]: the `limits_config` defaults, overridden per tenant by the
//! runtime config file (`overrides: {<tenant>: {<limit>: <value>}}`, Loki's format), which the
//! node re-reads periodically so limits change without a restart.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::time::{ByteSize, ConfigDuration};

/// `limits_config.ingestion_rate_strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RateStrategy {
    Global,
    Local,
}

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
    /// How `ingestion_rate_mb` applies in a cluster: `global` (Loki's default) shares it among
    /// the healthy distributors, each enforcing `rate / distributors`; `local` gives every
    /// distributor the whole rate. The burst is per distributor either way, as in Loki.
    pub ingestion_rate_strategy: RateStrategy,
    /// Per-tenant push rate in MiB/s of line and structured-metadata bytes (distributor).
    pub ingestion_rate_mb: f64,
    /// The most a tenant may push at once above its rate, in MiB.
    pub ingestion_burst_size_mb: f64,
    /// Per-stream push rate (ingester); 0 disables the check.
    pub per_stream_rate_limit: ByteSize,
    pub per_stream_rate_limit_burst: ByteSize,
    /// Most active streams a tenant may have in an ingester; 0 disables the check.
    pub max_global_streams_per_user: usize,
    /// Labels whose value becomes `service_name` (first present wins; none: `unknown_service`)
    /// when a stream has none. Empty turns discovery off.
    pub discover_service_name: Vec<String>,
    /// Add `detected_level` structured metadata to every entry.
    pub discover_log_levels: bool,
    /// Label, metadata and line fields a level is read from, in order.
    pub log_level_fields: Vec<String>,
}

/// Loki's default `discover_service_name` list.
pub fn default_service_name_labels() -> Vec<String> {
    [
        "service",
        "app",
        "application",
        "app_name",
        "name",
        "app_kubernetes_io_name",
        "container",
        "container_name",
        "k8s_container_name",
        "component",
        "workload",
        "job",
        "k8s_job_name",
    ]
    .map(String::from)
    .to_vec()
}

/// Loki's default `log_level_fields`.
pub fn default_level_fields() -> Vec<String> {
    [
        "level",
        "LEVEL",
        "Level",
        "log.level",
        "severity",
        "SEVERITY",
        "Severity",
        "SeverityText",
        "lvl",
        "LVL",
        "Lvl",
        "severity_text",
        "Severity_Text",
        "SEVERITY_TEXT",
    ]
    .map(String::from)
    .to_vec()
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
            ingestion_rate_strategy: RateStrategy::Global,
            ingestion_rate_mb: 4.0,
            ingestion_burst_size_mb: 6.0,
            per_stream_rate_limit: ByteSize(3 << 20),
            per_stream_rate_limit_burst: ByteSize(15 << 20),
            max_global_streams_per_user: 5000,
            discover_service_name: default_service_name_labels(),
            discover_log_levels: true,
            log_level_fields: default_level_fields(),
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
        for (name, v) in [
            ("ingestion_rate_mb", self.ingestion_rate_mb),
            ("ingestion_burst_size_mb", self.ingestion_burst_size_mb),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(format!("limits_config.{name} must be a number >= 0, got {v}"));
            }
        }
        Ok(())
    }

    /// The tenant push rate in bytes per second (over the whole cluster when the strategy is
    /// global).
    pub fn ingestion_rate_bytes(&self) -> f64 {
        self.ingestion_rate_mb * (1 << 20) as f64
    }

    /// The push rate one of `distributors` healthy distributors enforces, in bytes per second.
    pub fn distributor_rate_bytes(&self, distributors: usize) -> f64 {
        match self.ingestion_rate_strategy {
            RateStrategy::Global => self.ingestion_rate_bytes() / distributors.max(1) as f64,
            RateStrategy::Local => self.ingestion_rate_bytes(),
        }
    }

    pub fn ingestion_burst_bytes(&self) -> f64 {
        self.ingestion_burst_size_mb * (1 << 20) as f64
    }
}

/// The limits of every tenant: defaults plus the overrides of the runtime config file.
#[derive(Debug)]
pub struct Limits {
    defaults: Arc<LimitsConfig>,
    overrides: RwLock<Arc<HashMap<String, Arc<LimitsConfig>>>>,
}

impl From<LimitsConfig> for Limits {
    fn from(defaults: LimitsConfig) -> Self {
        Limits::new(defaults)
    }
}

impl From<LimitsConfig> for Arc<Limits> {
    fn from(defaults: LimitsConfig) -> Self {
        Arc::new(Limits::new(defaults))
    }
}

/// The runtime config file's shape (Loki's): only `overrides` is read.
#[derive(Deserialize, Default)]
struct RuntimeFile {
    #[serde(default)]
    overrides: Option<HashMap<String, serde_yaml::Mapping>>,
}

impl Limits {
    pub fn new(defaults: LimitsConfig) -> Self {
        Limits {
            defaults: Arc::new(defaults),
            overrides: RwLock::new(Arc::new(HashMap::new())),
        }
    }

    pub fn defaults(&self) -> &LimitsConfig {
        &self.defaults
    }

    /// The limits that apply to `tenant`.
    pub fn tenant(&self, tenant: &str) -> Arc<LimitsConfig> {
        self.overrides
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(tenant)
            .cloned()
            .unwrap_or_else(|| self.defaults.clone())
    }

    /// Parses a runtime config file and, if every tenant's limits are valid, makes its
    /// overrides the ones in force (all or nothing). Returns how many tenants it overrides.
    pub fn load_overrides(&self, yaml: &str) -> Result<usize, String> {
        let parsed = parse_overrides(&self.defaults, yaml)?;
        let n = parsed.len();
        let map = parsed.into_iter().map(|(t, l)| (t, Arc::new(l))).collect();
        *self.overrides.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(map);
        Ok(n)
    }
}

/// Each tenant's limits: the defaults with the tenant's keys laid over them, checked by the
/// same rules (unknown keys and bad values are errors naming the tenant).
pub fn parse_overrides(defaults: &LimitsConfig, yaml: &str) -> Result<HashMap<String, LimitsConfig>, String> {
    let file: RuntimeFile = if yaml.trim().is_empty() {
        RuntimeFile::default()
    } else {
        serde_yaml::from_str(yaml).map_err(|e| format!("runtime config: {e}"))?
    };
    let base = match serde_yaml::to_value(defaults) {
        Ok(serde_yaml::Value::Mapping(m)) => m,
        _ => return Err("runtime config: cannot represent the default limits".into()),
    };
    let mut out = HashMap::new();
    for (tenant, keys) in file.overrides.unwrap_or_default() {
        let mut merged = base.clone();
        for (k, v) in keys {
            merged.insert(k, v);
        }
        let limits: LimitsConfig = serde_yaml::from_value(serde_yaml::Value::Mapping(merged))
            .map_err(|e| format!("runtime config: overrides for tenant '{tenant}': {e}"))?;
        limits
            .validate()
            .map_err(|e| format!("runtime config: overrides for tenant '{tenant}': {e}"))?;
        out.insert(tenant, limits);
    }
    Ok(out)
}

/// A token bucket: `rate` units per second, holding at most `burst`.
#[derive(Debug, Clone, Copy)]
pub struct TokenBucket {
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(burst: f64) -> Self {
        TokenBucket {
            tokens: burst,
            last: Instant::now(),
        }
    }

    /// Takes `n` units if the bucket holds them (after refilling for the time elapsed).
    pub fn allow(&mut self, n: f64, rate: f64, burst: f64, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        self.last = now;
        if n <= self.tokens {
            self.tokens -= n;
            true
        } else {
            false
        }
    }
}

/// Token buckets by key (tenant, or tenant and stream), created full on first use.
#[derive(Debug, Default)]
pub struct RateLimiters {
    buckets: Mutex<HashMap<String, TokenBucket>>,
}

impl RateLimiters {
    pub fn allow(&self, key: &str, n: f64, rate: f64, burst: f64) -> bool {
        let now = Instant::now();
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        match map.get_mut(key) {
            Some(b) => b.allow(n, rate, burst, now),
            None => {
                let mut b = TokenBucket::new(burst);
                let ok = b.allow(n, rate, burst, now);
                map.insert(key.to_string(), b);
                ok
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_lay_tenant_keys_over_the_defaults() {
        let limits = Limits::new(LimitsConfig::default());
        let n = limits
            .load_overrides("overrides:\n  big:\n    ingestion_rate_mb: 40\n    max_line_size: 1MB\n  small:\n    max_global_streams_per_user: 2\n")
            .unwrap();
        assert_eq!(n, 2);
        assert_eq!(limits.tenant("big").ingestion_rate_mb, 40.0);
        assert_eq!(limits.tenant("big").max_line_size.0, 1 << 20);
        assert_eq!(
            limits.tenant("big").max_global_streams_per_user,
            5000,
            "untouched keys keep defaults"
        );
        assert_eq!(limits.tenant("small").max_global_streams_per_user, 2);
        assert_eq!(limits.tenant("other").ingestion_rate_mb, 4.0);
        // A bad file changes nothing and names the tenant and key.
        let e = limits
            .load_overrides("overrides:\n  big:\n    ingestion_rate_mbs: 1\n")
            .unwrap_err();
        assert!(e.contains("tenant 'big'") && e.contains("ingestion_rate_mbs"), "{e}");
        let e = limits
            .load_overrides("overrides:\n  big:\n    ingestion_rate_mb: -1\n")
            .unwrap_err();
        assert!(e.contains("must be a number >= 0"), "{e}");
        assert_eq!(limits.tenant("big").ingestion_rate_mb, 40.0);
        // An empty file clears the overrides.
        assert_eq!(limits.load_overrides("").unwrap(), 0);
        assert_eq!(limits.tenant("big").ingestion_rate_mb, 4.0);
    }

    #[test]
    fn token_bucket_allows_the_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket { tokens: 10.0, last: t0 };
        let global = LimitsConfig::default();
        assert_eq!(global.distributor_rate_bytes(0), 4.0 * 1048576.0);
        assert_eq!(global.distributor_rate_bytes(2), 2.0 * 1048576.0);
        let local: LimitsConfig = serde_yaml::from_str("ingestion_rate_strategy: local").unwrap();
        assert_eq!(local.distributor_rate_bytes(2), 4.0 * 1048576.0);
        assert!(serde_yaml::from_str::<LimitsConfig>("ingestion_rate_strategy: both").is_err());
        assert!(b.allow(10.0, 5.0, 10.0, t0));
        assert!(!b.allow(1.0, 5.0, 10.0, t0));
        let later = t0 + std::time::Duration::from_millis(400);
        assert!(b.allow(2.0, 5.0, 10.0, later));
        assert!(!b.allow(0.5, 5.0, 10.0, later));
        assert!(
            !b.allow(11.0, 5.0, 10.0, t0 + std::time::Duration::from_secs(100)),
            "beyond the burst never fits"
        );
    }
}
