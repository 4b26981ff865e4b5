//! Object storage for chunks and index objects. One small abstraction over `object_store`: the
//! backend (local filesystem by default, in-memory for tests, S3/GCS/Azure in production) is
//! chosen from config, and every request is counted. Ingesters write through it when they flush;
//! queriers read through it. Keys are plain `/`-separated strings (`chunks/<tenant>/...`).

mod config;

use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

pub use config::{AzureConfig, FilesystemConfig, GcsConfig, S3Config, StorageConfig};
use lode_model::{ApiError, ErrorCode};

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("object not found: {0}")]
    NotFound(String),
    #[error("object storage {op} of {key} failed: {source}")]
    Backend {
        op: &'static str,
        key: String,
        #[source]
        source: object_store::Error,
    },
    #[error("invalid storage config: {0}")]
    Config(String),
}

impl StorageError {
    pub fn code(&self) -> ErrorCode {
        match self {
            StorageError::NotFound(_) => ErrorCode::NotFound,
            StorageError::Backend { .. } => ErrorCode::Internal,
            StorageError::Config(_) => ErrorCode::BadRequest,
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        ApiError::new(e.code(), e.to_string())
    }
}

/// Our keys as object-store paths, verbatim. `Path::from` would percent-encode characters that
/// tenant IDs may contain (`*`), and the keys a listing returns would then no longer round-trip
/// through `get`.
fn path(key: &str) -> Path {
    Path::parse(key).unwrap_or_else(|_| Path::from(key))
}

#[derive(Clone)]
struct Metrics {
    requests: IntCounterVec,
    bytes: IntCounterVec,
    duration: HistogramVec,
}

impl Metrics {
    fn new(registry: &Registry) -> Self {
        let requests = IntCounterVec::new(
            Opts::new(
                "lode_object_store_requests_total",
                "Object storage requests by operation and outcome.",
            ),
            &["operation", "status"],
        )
        .expect("static metric definition");
        let bytes = IntCounterVec::new(
            Opts::new(
                "lode_object_store_bytes_total",
                "Bytes moved to or from object storage.",
            ),
            &["operation"],
        )
        .expect("static metric definition");
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "lode_object_store_request_duration_seconds",
                "Object storage request latency.",
            ),
            &["operation"],
        )
        .expect("static metric definition");
        // A second registration (two stores on one registry) is harmless: keep the first.
        let _ = registry.register(Box::new(requests.clone()));
        let _ = registry.register(Box::new(bytes.clone()));
        let _ = registry.register(Box::new(duration.clone()));
        Metrics {
            requests,
            bytes,
            duration,
        }
    }
}

/// A handle to the configured object store; cheap to clone.
#[derive(Clone)]
pub struct ObjectStorage {
    inner: Arc<dyn ObjectStore>,
    metrics: Metrics,
    description: String,
}

impl ObjectStorage {
    /// Builds the backend named by `config`.
    pub fn from_config(config: &StorageConfig, registry: &Registry) -> Result<Self> {
        let (inner, description) = config::build(config)?;
        Ok(ObjectStorage {
            inner,
            metrics: Metrics::new(registry),
            description,
        })
    }

    /// An in-memory store, for tests.
    pub fn in_memory() -> Self {
        ObjectStorage {
            inner: Arc::new(object_store::memory::InMemory::new()),
            metrics: Metrics::new(&Registry::new()),
            description: "memory".to_string(),
        }
    }

    /// Where the data lives, for logs (`filesystem:/var/lode/chunks`, `s3:bucket`).
    pub fn description(&self) -> &str {
        &self.description
    }

    pub async fn put(&self, key: &str, data: Vec<u8>) -> Result<()> {
        let len = data.len() as u64;
        let r = self
            .timed("put", self.inner.put(&path(key), PutPayload::from(data)))
            .await;
        self.outcome("put", key, r.map(|_| ()))?;
        self.metrics.bytes.with_label_values(&["put"]).inc_by(len);
        Ok(())
    }

    pub async fn get(&self, key: &str) -> Result<Bytes> {
        let path = path(key);
        let r = self
            .timed("get", async {
                let res = self.inner.get(&path).await?;
                res.bytes().await
            })
            .await;
        let bytes = self.outcome("get", key, r)?;
        self.metrics
            .bytes
            .with_label_values(&["get"])
            .inc_by(bytes.len() as u64);
        Ok(bytes)
    }

    /// Every key under `prefix` (recursively), sorted.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let path = path(prefix);
        let r = self
            .timed("list", async {
                let metas: Vec<_> = self.inner.list(Some(&path)).try_collect().await?;
                Ok::<_, object_store::Error>(metas)
            })
            .await;
        let metas = match r {
            Err(object_store::Error::NotFound { .. }) => {
                self.metrics.requests.with_label_values(&["list", "ok"]).inc();
                return Ok(Vec::new());
            }
            other => self.outcome("list", prefix, other)?,
        };
        let mut keys: Vec<String> = metas.into_iter().map(|m| m.location.to_string()).collect();
        keys.sort();
        Ok(keys)
    }

    pub async fn delete(&self, key: &str) -> Result<()> {
        let r = self.timed("delete", self.inner.delete(&path(key))).await;
        self.outcome("delete", key, r)
    }

    async fn timed<T>(&self, op: &'static str, f: impl Future<Output = T>) -> T {
        let timer = self.metrics.duration.with_label_values(&[op]).start_timer();
        let out = f.await;
        timer.observe_duration();
        out
    }

    fn outcome<T>(&self, op: &'static str, key: &str, r: object_store::Result<T>) -> Result<T> {
        match r {
            Ok(v) => {
                self.metrics.requests.with_label_values(&[op, "ok"]).inc();
                Ok(v)
            }
            Err(object_store::Error::NotFound { .. }) => {
                self.metrics.requests.with_label_values(&[op, "not_found"]).inc();
                Err(StorageError::NotFound(key.to_string()))
            }
            Err(source) => {
                self.metrics.requests.with_label_values(&[op, "error"]).inc();
                Err(StorageError::Backend {
                    op,
                    key: key.to_string(),
                    source,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn exercise(s: &ObjectStorage) {
        // Tenant IDs may hold `*'()!`: keys must round-trip through a listing.
        s.put("index/a*b'(c)!/1", b"star".to_vec()).await.unwrap();
        let listed = s.list("index/a*b'(c)!").await.unwrap();
        assert_eq!(listed, vec!["index/a*b'(c)!/1"]);
        assert_eq!(&s.get(&listed[0]).await.unwrap()[..], b"star");
        s.delete(&listed[0]).await.unwrap();
        s.put("chunks/t/a/1", b"one".to_vec()).await.unwrap();
        s.put("chunks/t/b/2", b"two".to_vec()).await.unwrap();
        s.put("index/t/1/x.idx", b"idx".to_vec()).await.unwrap();
        assert_eq!(&s.get("chunks/t/a/1").await.unwrap()[..], b"one");
        assert_eq!(s.list("chunks/t").await.unwrap(), vec!["chunks/t/a/1", "chunks/t/b/2"]);
        assert!(s.list("nothing/here").await.unwrap().is_empty());
        assert!(matches!(s.get("chunks/t/zzz").await, Err(StorageError::NotFound(_))));
        s.delete("chunks/t/a/1").await.unwrap();
        assert_eq!(s.list("chunks/").await.unwrap(), vec!["chunks/t/b/2"]);
    }

    #[tokio::test]
    async fn memory_backend() {
        exercise(&ObjectStorage::in_memory()).await;
    }

    #[tokio::test]
    async fn filesystem_backend_persists() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = StorageConfig {
            filesystem: FilesystemConfig {
                directory: dir.path().join("chunks").to_string_lossy().into_owned(),
            },
            ..StorageConfig::default()
        };
        let reg = Registry::new();
        let s = ObjectStorage::from_config(&cfg, &reg).unwrap();
        exercise(&s).await;
        let again = ObjectStorage::from_config(&cfg, &reg).unwrap();
        assert_eq!(&again.get("chunks/t/b/2").await.unwrap()[..], b"two");
    }
}
