//! Wires the roles into a running node. From one `Config` it builds the object store, the
//! ingester, the distributor (with the ingester on its ring), the querier (reading that ingester
//! and the store) and the HTTP edge, starts the background flush loop, and on shutdown stops
//! taking requests, then flushes every in-memory chunk before returning. `cmd/lode` parses flags
//! and calls `Node::start`; tests start nodes in-process the same way.

mod config;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use prometheus::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{CommonConfig, Config};
use lode_distributor::Distributor;
use lode_ingester::Ingester;
use lode_model::api::LogQuerier;
use lode_model::limits::Limits;
use lode_model::metrics::Discards;
use lode_querier::Querier;
use lode_server::Handlers;
use lode_storage::ObjectStorage;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("invalid config: {0}")]
    Config(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Storage(#[from] lode_storage::StorageError),
    #[error("server error: {0}")]
    Serve(#[from] std::io::Error),
    #[error("final flush failed: {0}")]
    Flush(#[from] lode_ingester::IngesterError),
    #[error(transparent)]
    Wal(#[from] lode_wal::WalError),
}

/// Re-reads the runtime config file every `period` and applies it when it changed; a file that
/// does not parse is logged and the limits in force stay.
async fn reload_overrides(
    limits: Arc<Limits>,
    path: String,
    period: std::time::Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut last = std::fs::read_to_string(&path).ok();
    let mut tick = tokio::time::interval(period);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let text = match tokio::fs::read_to_string(&path).await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(file = %path, error = %e, "cannot read the runtime config; keeping the limits in force");
                continue;
            }
        };
        if last.as_deref() == Some(text.as_str()) {
            continue;
        }
        match limits.load_overrides(&text) {
            Ok(n) => tracing::info!(file = %path, tenants = n, "runtime config reloaded"),
            Err(e) => tracing::error!(file = %path, error = %e, "runtime config rejected; keeping the limits in force"),
        }
        last = Some(text);
    }
}

/// A running node.
pub struct Node {
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<Result<(), std::io::Error>>,
    flush_loop: JoinHandle<()>,
    wal_loop: JoinHandle<()>,
    ingester: Arc<Ingester>,
    stopping: Arc<AtomicBool>,
}

impl Node {
    /// Validates `cfg`, builds every role and starts serving HTTP.
    pub async fn start(mut cfg: Config) -> Result<Node, AppError> {
        cfg.resolve();
        cfg.validate()?;
        let registry = Registry::new();
        let discards = Discards::new(&registry);
        let store = ObjectStorage::from_config(&cfg.storage_config, &registry)?;
        let limits = Arc::new(Limits::new(cfg.limits_config.clone()));
        // A bad overrides file at start is a config error; later, a bad edit keeps the old one.
        if !cfg.runtime_config.file.is_empty() {
            let text = std::fs::read_to_string(&cfg.runtime_config.file)
                .map_err(|e| AppError::Config(format!("runtime_config.file {}: {e}", cfg.runtime_config.file)))?;
            limits.load_overrides(&text).map_err(AppError::Config)?;
        }
        let ingester = Ingester::new(
            &cfg.common.instance_id,
            cfg.ingester.clone(),
            limits.clone(),
            store.clone(),
            &registry,
            discards.clone(),
        );
        let distributor = Arc::new(Distributor::new(
            limits.clone(),
            cfg.common.replication_factor,
            cfg.common.ring_tokens,
            &registry,
            discards,
        ));
        distributor.add_ingester(&cfg.common.instance_id, ingester.clone());
        let ingesters: Vec<Arc<dyn LogQuerier>> = vec![ingester.clone()];
        let tail_sources: Vec<Arc<dyn lode_model::api::TailSource>> = vec![ingester.clone()];
        let querier = Arc::new(
            Querier::new(cfg.querier.clone(), limits.clone(), store.clone(), ingesters).with_tail_sources(tail_sources),
        );
        let stopping = Arc::new(AtomicBool::new(false));
        let handlers = Handlers {
            push: Some(distributor),
            query: Some(querier.clone()),
            metadata: Some(querier.clone()),
            tail: Some(querier),
            ingester: Some(ingester.clone()),
            registry,
            auth_enabled: cfg.auth_enabled,
            decode_limits: cfg.server.decode_limits(),
            stopping: stopping.clone(),
            limits: limits.clone(),
            config: lode_server::ConfigView {
                current: cfg.to_masked_yaml(),
                defaults: Config::default().to_masked_yaml(),
            },
        };
        let addr = format!("{}:{}", cfg.server.http_listen_address, cfg.server.http_listen_port);
        let listener = TcpListener::bind(&addr).await.map_err(|source| AppError::Listen {
            addr: addr.clone(),
            source,
        })?;
        let local = listener.local_addr()?;
        let (tx, rx) = watch::channel(false);
        let flush_loop = tokio::spawn(ingester.clone().run_flush_loop(rx.clone()));
        if !cfg.runtime_config.file.is_empty() {
            tokio::spawn(reload_overrides(
                limits.clone(),
                cfg.runtime_config.file.clone(),
                cfg.runtime_config.period.0,
                rx.clone(),
            ));
        }
        // The WAL is opened before serving (an unusable WAL directory stops the start) and
        // replayed while serving, so `/ready` can say how far the replay is.
        ingester.open_wal()?;
        let wal_loop = {
            let (ingester, rx) = (ingester.clone(), rx.clone());
            tokio::spawn(async move {
                match ingester.replay_wal().await {
                    Ok(_) => ingester.run_wal_loop(rx).await,
                    Err(e) => tracing::error!(error = %e, "wal: replay failed; the ingester stays not ready"),
                }
            })
        };
        let mut stop = rx;
        let server = tokio::spawn(async move {
            lode_server::serve(listener, handlers, async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await
        });
        tracing::info!(addr = %local, store = %store.description(), instance = %cfg.common.instance_id, "lode is ready");
        Ok(Node {
            addr: local,
            shutdown: tx,
            server,
            flush_loop,
            wal_loop,
            ingester,
            stopping,
        })
    }

    /// The HTTP address actually bound (useful with port 0).
    pub fn http_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Graceful stop: `/ready` turns 503, the server finishes in-flight requests and stops
    /// accepting, then every in-memory chunk is flushed to the store.
    pub async fn shutdown(self) -> Result<(), AppError> {
        self.stopping.store(true, Ordering::Relaxed);
        let _ = self.shutdown.send(true);
        // Flush whatever happened to the server task: accepted lines must reach the store.
        let served = self.server.await;
        let _ = self.flush_loop.await;
        // A replay still running has nothing to lose by stopping: its files stay for next time.
        self.wal_loop.abort();
        let _ = self.wal_loop.await;
        self.ingester.shutdown().await?;
        served.map_err(|e| AppError::Serve(std::io::Error::other(e)))??;
        Ok(())
    }
}
