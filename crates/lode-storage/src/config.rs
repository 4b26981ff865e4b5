//! Storage configuration (`storage_config` in the YAML file) and backend construction.

use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;
use serde::{Deserialize, Serialize};

use crate::{Result, StorageError};

/// Which object store holds chunks and index objects, and how to reach it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// `filesystem` (default), `memory`, `s3`, `gcs` or `azure`.
    pub backend: String,
    pub filesystem: FilesystemConfig,
    pub s3: S3Config,
    pub gcs: GcsConfig,
    pub azure: AzureConfig,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            backend: "filesystem".to_string(),
            filesystem: FilesystemConfig::default(),
            s3: S3Config::default(),
            gcs: GcsConfig::default(),
            azure: AzureConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilesystemConfig {
    /// Directory for objects; empty means `<common.path_prefix>/store`.
    pub directory: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Config {
    /// Endpoint URL for S3-compatible servers (`http://127.0.0.1:9000`); empty means AWS.
    pub endpoint: String,
    pub bucket_name: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Allow plain HTTP endpoints.
    pub insecure: bool,
    /// Path-style requests (`endpoint/bucket/key`), needed by most S3-compatible servers.
    pub s3_force_path_style: bool,
    /// Retries of a failed request before the error surfaces.
    pub max_retries: usize,
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            endpoint: String::new(),
            bucket_name: String::new(),
            region: "us-east-1".to_string(),
            access_key_id: String::new(),
            secret_access_key: String::new(),
            insecure: false,
            s3_force_path_style: true,
            max_retries: 5,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GcsConfig {
    pub bucket_name: String,
    /// Path to a service-account JSON key; empty uses the environment's credentials.
    pub service_account_path: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AzureConfig {
    pub account_name: String,
    pub account_key: String,
    pub container_name: String,
}

impl StorageConfig {
    pub fn validate(&self) -> Result<()> {
        let need = |ok: bool, what: &str| {
            if ok {
                Ok(())
            } else {
                Err(StorageError::Config(format!(
                    "{what} is required for backend {:?}",
                    self.backend
                )))
            }
        };
        match self.backend.as_str() {
            "filesystem" => need(
                !self.filesystem.directory.is_empty(),
                "storage_config.filesystem.directory",
            ),
            "memory" => Ok(()),
            "s3" => need(!self.s3.bucket_name.is_empty(), "storage_config.s3.bucket_name"),
            "gcs" => need(!self.gcs.bucket_name.is_empty(), "storage_config.gcs.bucket_name"),
            "azure" => need(
                !self.azure.account_name.is_empty() && !self.azure.container_name.is_empty(),
                "storage_config.azure.account_name and container_name",
            ),
            other => Err(StorageError::Config(format!(
                "unknown storage backend {other:?}, expected filesystem, memory, s3, gcs or azure"
            ))),
        }
    }
}

pub(crate) fn build(cfg: &StorageConfig) -> Result<(Arc<dyn ObjectStore>, String)> {
    cfg.validate()?;
    let cfg_err = |e: object_store::Error| StorageError::Config(e.to_string());
    let retry = |max_retries: usize| object_store::RetryConfig {
        max_retries,
        retry_timeout: Duration::from_secs(30),
        ..Default::default()
    };
    Ok(match cfg.backend.as_str() {
        "memory" => (Arc::new(object_store::memory::InMemory::new()), "memory".to_string()),
        "filesystem" => {
            let dir = &cfg.filesystem.directory;
            std::fs::create_dir_all(dir)
                .map_err(|e| StorageError::Config(format!("cannot create storage directory {dir:?}: {e}")))?;
            let fs = object_store::local::LocalFileSystem::new_with_prefix(dir).map_err(cfg_err)?;
            (Arc::new(fs), format!("filesystem:{dir}"))
        }
        "s3" => {
            let s3 = &cfg.s3;
            let mut b = object_store::aws::AmazonS3Builder::new()
                .with_bucket_name(&s3.bucket_name)
                .with_region(&s3.region)
                .with_allow_http(s3.insecure)
                .with_virtual_hosted_style_request(!s3.s3_force_path_style)
                .with_retry(retry(s3.max_retries));
            if !s3.endpoint.is_empty() {
                b = b.with_endpoint(&s3.endpoint);
            }
            if !s3.access_key_id.is_empty() {
                b = b
                    .with_access_key_id(&s3.access_key_id)
                    .with_secret_access_key(&s3.secret_access_key);
            }
            (Arc::new(b.build().map_err(cfg_err)?), format!("s3:{}", s3.bucket_name))
        }
        "gcs" => {
            let mut b = object_store::gcp::GoogleCloudStorageBuilder::new().with_bucket_name(&cfg.gcs.bucket_name);
            if !cfg.gcs.service_account_path.is_empty() {
                b = b.with_service_account_path(&cfg.gcs.service_account_path);
            }
            (
                Arc::new(b.build().map_err(cfg_err)?),
                format!("gcs:{}", cfg.gcs.bucket_name),
            )
        }
        "azure" => {
            let a = &cfg.azure;
            let b = object_store::azure::MicrosoftAzureBuilder::new()
                .with_account(&a.account_name)
                .with_access_key(&a.account_key)
                .with_container_name(&a.container_name);
            (
                Arc::new(b.build().map_err(cfg_err)?),
                format!("azure:{}", a.container_name),
            )
        }
        other => return Err(StorageError::Config(format!("unknown storage backend {other:?}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_names_the_missing_key() {
        let mut c = StorageConfig {
            backend: "s3".into(),
            ..Default::default()
        };
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("storage_config.s3.bucket_name")
        );
        c.backend = "floppy".into();
        assert!(c.validate().unwrap_err().to_string().contains("\"floppy\""));
    }

    #[test]
    fn s3_backend_builds_from_config() {
        let c = StorageConfig {
            backend: "s3".into(),
            s3: S3Config {
                endpoint: "http://127.0.0.1:9000".into(),
                bucket_name: "loki".into(),
                access_key_id: "k".into(),
                secret_access_key: "s".into(),
                insecure: true,
                ..Default::default()
            },
            ..Default::default()
        };
        let (_, d) = build(&c).unwrap();
        assert_eq!(d, "s3:loki");
    }
}
