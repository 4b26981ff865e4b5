//! The whole configuration file. Keys mirror Loki's, sections are the roles' own config structs,
//! unknown keys are refused with the key named, and everything has a default so Lode runs with
//! no file at all.

use serde::{Deserialize, Serialize};

use lode_ingester::IngesterConfig;
use lode_model::limits::LimitsConfig;
use lode_model::time::ConfigDuration;
use lode_querier::QuerierConfig;
use lode_server::ServerConfig;
use lode_storage::StorageConfig;

use crate::AppError;

/// The flag naming the config file.
pub const FILE_FLAG: &str = "config.file";
/// Loki's flag: expand `${VAR}` references in the config file before parsing it.
pub const EXPAND_ENV_FLAG: &str = "config.expand-env";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Roles this node runs: `all` (the single binary, every role in one process), or a comma
    /// list of `distributor`, `ingester`, `querier` for a cluster member.
    pub target: String,
    /// Require `X-Scope-OrgID` and keep tenants apart; off means every request is tenant `fake`.
    pub auth_enabled: bool,
    pub server: ServerConfig,
    pub common: CommonConfig,
    pub ingester: IngesterConfig,
    pub querier: QuerierConfig,
    pub limits_config: LimitsConfig,
    pub storage_config: StorageConfig,
    pub runtime_config: RuntimeConfig,
    /// Cluster membership (gossip seeds, or a static member list).
    pub memberlist: lode_membership::MemberlistConfig,
    /// How distributors and queriers call ingesters over gRPC.
    pub ingester_client: lode_grpc::IngesterClientConfig,
}

/// The roles one node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Roles {
    pub distributor: bool,
    pub ingester: bool,
    pub querier: bool,
    /// `target: all`: every role in one process, wired in-process.
    pub single: bool,
}

impl Roles {
    pub fn names(&self) -> Vec<String> {
        let mut v = Vec::new();
        for (on, name) in [
            (self.distributor, "distributor"),
            (self.ingester, "ingester"),
            (self.querier, "querier"),
        ] {
            if on {
                v.push(name.to_string());
            }
        }
        v
    }
}

/// `runtime_config:`: the per-tenant overrides file (Loki's format and key names), re-read
/// every `period` so limits change without a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// Path of the YAML file with `overrides: {<tenant>: {<limit>: <value>}}`; empty: none.
    pub file: String,
    pub period: ConfigDuration,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            file: String::new(),
            period: ConfigDuration::secs(10),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            target: "all".to_string(),
            auth_enabled: false,
            server: ServerConfig::default(),
            common: CommonConfig::default(),
            ingester: IngesterConfig::default(),
            querier: QuerierConfig::default(),
            limits_config: LimitsConfig::default(),
            runtime_config: RuntimeConfig::default(),
            memberlist: lode_membership::MemberlistConfig::default(),
            ingester_client: lode_grpc::IngesterClientConfig::default(),
            storage_config: StorageConfig::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CommonConfig {
    /// Directory for everything stored on local disk (the object store under `store/` by default).
    pub path_prefix: String,
    /// This node's name on the ring and in index object keys.
    pub instance_id: String,
    /// Copies of each stream; 0 (the default) means 1 in the single binary and 3 in a cluster.
    pub replication_factor: usize,
    /// Virtual nodes each ingester owns on the ring.
    pub ring_tokens: u32,
}

impl Default for CommonConfig {
    fn default() -> Self {
        CommonConfig {
            path_prefix: "lode-data".to_string(),
            instance_id: default_instance_id(),
            replication_factor: 0,
            ring_tokens: 128,
        }
    }
}

fn default_instance_id() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'))
        .unwrap_or_else(|| "lode".to_string())
}

impl Config {
    /// Parses a YAML config file's text.
    pub fn from_yaml(text: &str) -> Result<Config, AppError> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        serde_yaml::from_str(text).map_err(|e| AppError::Config(e.to_string()))
    }

    /// Reads the file `-config.file` names (defaults without one), with its environment
    /// references expanded first when `-config.expand-env` is true ([`crate::expand_env`]). Both
    /// flags are looked up wherever they are in `flags` (the last one wins, as with Go's flags),
    /// so their order does not matter; every other flag is left to [`Config::apply_flag`].
    pub fn from_file_flags(
        flags: &[(String, String)],
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, AppError> {
        let last = |name: &str| flags.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let expand = match last(EXPAND_ENV_FLAG) {
            None | Some("false" | "0") => false,
            Some("" | "true" | "1") => true,
            Some(v) => {
                return Err(AppError::Config(format!(
                    "invalid value {v:?} for -{EXPAND_ENV_FLAG}: expected true or false"
                )));
            }
        };
        let Some(path) = last(FILE_FLAG) else {
            return Ok(Config::default());
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| AppError::Config(format!("cannot read config file {path:?}: {e}")))?;
        let in_file = |e: AppError| match e {
            AppError::Config(m) => AppError::Config(format!("config file {path:?}: {m}")),
            other => other,
        };
        let text = if expand {
            crate::expand::expand_env(&text, env).map_err(in_file)?
        } else {
            text
        };
        Config::from_yaml(&text).map_err(in_file)
    }

    /// The config as YAML for `/config`, with secrets (keys, passwords) shown as `<secret>`,
    /// as Loki shows them.
    pub fn to_masked_yaml(&self) -> String {
        fn mask(v: &mut serde_yaml::Value) {
            if let serde_yaml::Value::Mapping(m) = v {
                for (k, v) in m.iter_mut() {
                    let secret = k
                        .as_str()
                        .is_some_and(|k| k.contains("secret") || k.contains("password") || k.ends_with("_key"));
                    if secret && v.as_str().is_some_and(|s| !s.is_empty()) {
                        *v = serde_yaml::Value::String("<secret>".into());
                    } else {
                        mask(v);
                    }
                }
            }
        }
        let mut v = serde_yaml::to_value(self).unwrap_or(serde_yaml::Value::Null);
        mask(&mut v);
        serde_yaml::to_string(&v).unwrap_or_default()
    }

    /// Fills values derived from others (the filesystem store under `path_prefix`).
    pub fn resolve(&mut self) {
        if self.storage_config.backend == "filesystem" && self.storage_config.filesystem.directory.is_empty() {
            let dir = std::path::Path::new(&self.common.path_prefix).join("store");
            self.storage_config.filesystem.directory = dir.to_string_lossy().into_owned();
        }
        if self.ingester.wal.dir.is_empty() {
            let dir = std::path::Path::new(&self.common.path_prefix).join("wal");
            self.ingester.wal.dir = dir.to_string_lossy().into_owned();
        }
    }

    /// The roles `target` names.
    pub fn roles(&self) -> Result<Roles, AppError> {
        let mut r = Roles::default();
        for t in self.target.split(',').map(str::trim) {
            match t {
                "all" => {
                    r = Roles {
                        distributor: true,
                        ingester: true,
                        querier: true,
                        single: true,
                    }
                }
                "distributor" => r.distributor = true,
                "ingester" => r.ingester = true,
                "querier" => r.querier = true,
                other => {
                    return Err(AppError::Config(format!(
                        "target: unknown role {other:?}, expected all, distributor, ingester or querier"
                    )));
                }
            }
        }
        if r.single && self.target.trim() != "all" {
            return Err(AppError::Config(
                "target: all cannot be combined with other roles".into(),
            ));
        }
        Ok(r)
    }

    /// The replication factor in effect.
    pub fn replication_factor(&self) -> usize {
        match self.common.replication_factor {
            0 if self.target.trim() == "all" => 1,
            0 => 3,
            n => n,
        }
    }

    pub fn validate(&self) -> Result<(), AppError> {
        let e = AppError::Config;
        let roles = self.roles()?;
        if self.common.path_prefix.is_empty() {
            return Err(e("common.path_prefix must not be empty".into()));
        }
        if self.common.instance_id.is_empty() || self.common.instance_id.contains('/') {
            return Err(e(format!(
                "common.instance_id {:?} must be non-empty and contain no '/'",
                self.common.instance_id
            )));
        }
        if roles.single && self.replication_factor() != 1 {
            return Err(e(format!(
                "common.replication_factor must be 1 for the single binary, got {}",
                self.common.replication_factor
            )));
        }
        self.memberlist.validate().map_err(e)?;
        self.ingester_client.validate().map_err(e)?;
        if self.common.ring_tokens == 0 {
            return Err(e("common.ring_tokens must be at least 1".into()));
        }
        self.server.validate().map_err(e)?;
        self.ingester.validate().map_err(e)?;
        self.querier.validate().map_err(e)?;
        self.limits_config.validate().map_err(e)?;
        if !self.runtime_config.file.is_empty() && self.runtime_config.period.0.is_zero() {
            return Err(e("runtime_config.period must be positive".into()));
        }
        self.storage_config.validate().map_err(|err| e(err.to_string()))?;
        Ok(())
    }

    /// Applies a `-flag=value` command-line override. Returns false for an unknown flag.
    pub fn apply_flag(&mut self, name: &str, value: &str) -> Result<bool, AppError> {
        let bad = |what: &str| AppError::Config(format!("invalid value {value:?} for -{name}: {what}"));
        let bool_value = || match value {
            "" | "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err(bad("expected true or false")),
        };
        match name {
            "target" => self.target = value.to_string(),
            "auth.enabled" => self.auth_enabled = bool_value()?,
            "server.http-listen-address" => self.server.http_listen_address = value.to_string(),
            "server.http-listen-port" => {
                self.server.http_listen_port = value.parse().map_err(|_| bad("expected a port number"))?
            }
            "server.grpc-listen-port" => {
                self.server.grpc_listen_port = value.parse().map_err(|_| bad("expected a port number"))?
            }
            "log.level" => self.server.log_level = value.to_string(),
            "log.format" => self.server.log_format = value.to_string(),
            "common.path-prefix" => self.common.path_prefix = value.to_string(),
            "common.instance-id" => self.common.instance_id = value.to_string(),
            "ingester.flush-check-period" => {
                self.ingester.flush_check_period = lode_model::time::parse_duration(value)
                    .map(lode_model::time::ConfigDuration)
                    .map_err(|e| bad(&e))?
            }
            // Loki's flags for ingest-time discovery (an empty list turns service_name off).
            "validation.discover-service-name" => {
                self.limits_config.discover_service_name = value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
            }
            "validation.discover-log-levels" => self.limits_config.discover_log_levels = bool_value()?,
            "server.grpc-listen-address" => self.server.grpc_listen_address = value.to_string(),
            "common.replication-factor" => {
                self.common.replication_factor = value.parse().map_err(|_| bad("expected a number"))?
            }
            "memberlist.bind-port" => self.memberlist.bind_port = value.parse().map_err(|_| bad("expected a port"))?,
            "memberlist.bind-addr" => self.memberlist.bind_addr = value.to_string(),
            "memberlist.join" => {
                self.memberlist.join_members = value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_file_means_defaults() {
        let mut c = Config::from_yaml("").unwrap();
        c.resolve();
        c.validate().unwrap();
        assert_eq!(c.server.http_listen_port, 3100);
        assert_eq!(c.storage_config.filesystem.directory, "lode-data/store");
        assert!(!c.limits_config.unordered_writes);
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = Config::from_yaml("server:\n  http_listen_prot: 3100\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `http_listen_prot`"), "{err}");
        let err = Config::from_yaml("limits_config:\n  max_line_sise: 1KB\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_line_sise"), "{err}");
        let err = Config::from_yaml("nonsense: 1\n").unwrap_err().to_string();
        assert!(err.contains("nonsense"), "{err}");
    }

    #[test]
    fn loki_keys_and_units_parse() {
        let c = Config::from_yaml(
            "auth_enabled: true\nserver:\n  http_listen_port: 3200\ningester:\n  chunk_target_size: 1572864\n  max_chunk_age: 1h\n  chunk_idle_period: 30m\nlimits_config:\n  max_line_size: 128KB\n  reject_old_samples_max_age: 168h\n",
        )
        .unwrap();
        assert!(c.auth_enabled);
        assert_eq!(c.ingester.max_chunk_age.0.as_secs(), 3600);
        assert_eq!(c.limits_config.max_line_size.0, 128 * 1024);
    }

    #[test]
    fn validation_names_the_problem() {
        let mut c = Config {
            target: "distributer".into(),
            ..Config::default()
        };
        c.resolve();
        assert!(c.validate().unwrap_err().to_string().contains("\"distributer\""));
        c.target = "all,querier".into();
        assert!(c.validate().unwrap_err().to_string().contains("cannot be combined"));
        c.target = "distributor, querier".into();
        let roles = c.roles().unwrap();
        assert!(roles.distributor && roles.querier && !roles.ingester && !roles.single);
        assert_eq!(c.replication_factor(), 3, "a cluster replicates three times by default");
        assert!(c.validate().is_ok());
        c.target = "all".into();
        assert_eq!(c.replication_factor(), 1);
        c.common.replication_factor = 3;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("must be 1 for the single binary")
        );
        c.common.replication_factor = 0;
        c.limits_config.unordered_writes = true;
        assert!(c.validate().unwrap_err().to_string().contains("unordered_writes"));
    }

    #[test]
    fn flags_override() {
        let mut c = Config::default();
        assert!(c.apply_flag("server.http-listen-port", "0").unwrap());
        assert_eq!(c.server.http_listen_port, 0);
        assert!(!c.apply_flag("no.such", "x").unwrap());
        assert!(c.apply_flag("server.http-listen-port", "http").is_err());
    }

    #[test]
    fn expand_env_flag_works_before_or_after_the_file_flag() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lode.yaml");
        std::fs::write(
            &path,
            "server:\n  http_listen_port: ${PORT:-3300}\n  log_level: ${LEVEL}\n",
        )
        .unwrap();
        let file = (FILE_FLAG.to_string(), path.to_string_lossy().into_owned());
        let flag = |v: &str| (EXPAND_ENV_FLAG.to_string(), v.to_string());
        let env = |k: &str| (k == "LEVEL").then(|| "debug".to_string());
        for flags in [
            vec![file.clone(), flag("true")],
            vec![flag("true"), file.clone()],
            vec![flag(""), file.clone()],
            vec![flag("false"), file.clone(), flag("1")],
        ] {
            let c = Config::from_file_flags(&flags, env).unwrap();
            assert_eq!(
                (c.server.http_listen_port, c.server.log_level.as_str()),
                (3300, "debug"),
                "{flags:?}"
            );
        }
        // Without the flag the text is parsed as it is (and here is not a valid port).
        let err = Config::from_file_flags(std::slice::from_ref(&file), env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("http_listen_port"), "{err}");
        let err = Config::from_file_flags(&[file.clone(), flag("yes")], env)
            .unwrap_err()
            .to_string();
        assert!(err.contains(r#"invalid value "yes" for -config.expand-env"#), "{err}");
        // A bad reference names the file and the line.
        std::fs::write(&path, "server:\n  log_level: ${LEVEL:0:2}\n").unwrap();
        let err = Config::from_file_flags(&[flag("true"), file], env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("lode.yaml") && err.contains("on line 2"), "{err}");
        // No file: defaults, with or without the flag.
        assert_eq!(
            Config::from_file_flags(&[flag("true")], env).unwrap(),
            Config::default()
        );
    }

    #[test]
    fn config_yaml_masks_secrets_and_parses_back() {
        let mut c = Config::default();
        c.storage_config.s3.secret_access_key = "hunter2".into();
        c.storage_config.s3.access_key_id = "AKIA".into();
        let y = c.to_masked_yaml();
        assert!(!y.contains("hunter2"), "{y}");
        assert!(y.contains("secret_access_key: <secret>"), "{y}");
        assert!(y.contains("AKIA"), "the key id is not a secret: {y}");
        let back = Config::from_yaml(&Config::default().to_masked_yaml()).unwrap();
        assert_eq!(back.server, Config::default().server);
    }

    #[test]
    fn example_config_in_docs_parses_and_validates() {
        let text = include_str!("../../../docs/lode.example.yaml");
        let mut c = Config::from_yaml(text).unwrap();
        c.resolve();
        c.validate().unwrap();
    }
}
