//! Wires the roles into a running node. From one `Config` it builds the object store and the
//! roles `target` names. `all` (the single binary) connects them in-process: the ingester on the
//! distributor's ring and in the querier's sources. In a cluster, an ingester also serves gRPC
//! and every member joins the gossip membership; distributors and queriers rebuild their
//! ingester view from it every second (`sync_ingesters`), through pooled gRPC clients. On
//! shutdown a node stops taking requests; an ingester turns LEAVING, then flushes every
//! in-memory chunk before returning. `cmd/lode` parses flags and calls `Node::start`.

mod config;
mod expand;
mod ring_status;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use prometheus::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{CommonConfig, Config, EXPAND_ENV_FLAG, FILE_FLAG, Roles};
pub use expand::{expand_env, process_env};
use lode_distributor::Distributor;
use lode_grpc::ClientPool;
use lode_ingester::Ingester;
use lode_membership::{LocalMember, MemberState, Membership};
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
    grpc_addr: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<Result<(), std::io::Error>>,
    grpc_server: Option<JoinHandle<()>>,
    flush_loop: Option<JoinHandle<()>>,
    wal_loop: Option<JoinHandle<()>>,
    ingester: Option<Arc<Ingester>>,
    membership: Option<Arc<Membership>>,
    stopping: Arc<AtomicBool>,
}

/// The address other members reach a listener at: its own address, or loopback when it is
/// bound to every interface (a cluster on one machine; set `memberlist.advertise_addr` and
/// bind a real interface otherwise).
fn advertised(addr: SocketAddr, advertise: &str) -> String {
    if !advertise.is_empty() {
        return format!("{advertise}:{}", addr.port());
    }
    if addr.ip().is_unspecified() {
        format!("127.0.0.1:{}", addr.port())
    } else {
        addr.to_string()
    }
}

/// Keeps the distributor's ring and the querier's ingester list equal to the membership's
/// ingesters: every second, and once at start.
async fn sync_ingesters(
    membership: Arc<Membership>,
    pool: ClientPool,
    distributor: Option<Arc<Distributor>>,
    querier: Option<Arc<Querier>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        let members = membership.members().await;
        let mut ring = Vec::new();
        let mut readable: Vec<Arc<dyn LogQuerier>> = Vec::new();
        let mut tails: Vec<Arc<dyn lode_model::api::TailSource>> = Vec::new();
        for m in members.iter().filter(|m| m.is_ingester()) {
            let Ok(client) = pool.get(&m.grpc_addr) else {
                tracing::warn!(member = %m.id, addr = %m.grpc_addr, "ring: unusable ingester address");
                continue;
            };
            ring.push((
                m.id.clone(),
                client.clone() as Arc<dyn lode_model::api::Pusher>,
                m.state == MemberState::Active,
            ));
            if m.healthy() {
                readable.push(client.clone());
                tails.push(client);
            }
        }
        if let Some(d) = &distributor {
            d.set_ingesters(ring);
            // A global ingestion rate is shared among the healthy distributors.
            let distributors = members
                .iter()
                .filter(|m| m.has_role("distributor") && m.healthy())
                .count();
            d.set_distributors(distributors);
        }
        if let Some(q) = &querier {
            q.set_ingesters(readable);
            q.set_tail_sources(tails);
        }
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

impl Node {
    /// Validates `cfg`, builds the roles `target` names and starts serving HTTP (and, for an
    /// ingester in a cluster, gRPC).
    pub async fn start(mut cfg: Config) -> Result<Node, AppError> {
        cfg.resolve();
        cfg.validate()?;
        let roles = cfg.roles()?;
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
        let (tx, rx) = watch::channel(false);
        let ingester = roles.ingester.then(|| {
            Ingester::new(
                &cfg.common.instance_id,
                cfg.ingester.clone(),
                limits.clone(),
                store.clone(),
                &registry,
                discards.clone(),
            )
        });
        let distributor = roles.distributor.then(|| {
            Arc::new(Distributor::new(
                limits.clone(),
                cfg.replication_factor(),
                cfg.common.ring_tokens,
                &registry,
                discards,
            ))
        });
        let querier = roles.querier.then(|| {
            Arc::new(
                Querier::new(cfg.querier.clone(), limits.clone(), store.clone(), vec![])
                    .with_replication_factor(cfg.replication_factor()),
            )
        });
        if roles.single
            && let (Some(ing), Some(d), Some(q)) = (&ingester, &distributor, &querier)
        {
            d.add_ingester(&cfg.common.instance_id, ing.clone());
            q.set_ingesters(vec![ing.clone()]);
            q.set_tail_sources(vec![ing.clone()]);
        }

        let addr = format!("{}:{}", cfg.server.http_listen_address, cfg.server.http_listen_port);
        let listener = TcpListener::bind(&addr).await.map_err(|source| AppError::Listen {
            addr: addr.clone(),
            source,
        })?;
        let local = listener.local_addr()?;

        // A cluster ingester serves gRPC; every cluster member joins the membership.
        let mut grpc_addr = None;
        let mut grpc_server = None;
        if !roles.single
            && let Some(ing) = &ingester
        {
            let gaddr = format!("{}:{}", cfg.server.grpc_listen_address, cfg.server.grpc_listen_port);
            let glistener = TcpListener::bind(&gaddr).await.map_err(|source| AppError::Listen {
                addr: gaddr.clone(),
                source,
            })?;
            grpc_addr = Some(glistener.local_addr()?);
            let service = lode_grpc::IngesterService::from_role(ing.clone());
            let grpc_cfg = lode_grpc::GrpcServerConfig::default();
            let mut stop = rx.clone();
            grpc_server = Some(tokio::spawn(async move {
                let shutdown = async move {
                    let _ = stop.wait_for(|s| *s).await;
                };
                if let Err(e) = lode_grpc::serve(glistener, service, &grpc_cfg, shutdown).await {
                    tracing::error!(error = %e, "gRPC server failed");
                }
            }));
        }
        let membership = if roles.single {
            None
        } else {
            let local_member = LocalMember {
                id: cfg.common.instance_id.clone(),
                roles: roles.names(),
                grpc_addr: grpc_addr
                    .map(|a| advertised(a, &cfg.memberlist.advertise_addr))
                    .unwrap_or_default(),
                http_addr: advertised(local, &cfg.memberlist.advertise_addr),
                tokens: cfg.common.ring_tokens,
                // An ingester takes writes once its WAL is replayed.
                state: if roles.ingester {
                    MemberState::Joining
                } else {
                    MemberState::Active
                },
            };
            let m = Membership::start(&cfg.memberlist, local_member)
                .await
                .map_err(|e| AppError::Config(e.to_string()))?;
            if distributor.is_some() || querier.is_some() {
                tokio::spawn(sync_ingesters(
                    m.clone(),
                    ClientPool::new(cfg.ingester_client.clone()),
                    distributor.clone(),
                    querier.clone(),
                    rx.clone(),
                ));
            }
            Some(m)
        };

        let stopping = Arc::new(AtomicBool::new(false));
        let handlers = Handlers {
            push: distributor.clone().map(|d| d as Arc<dyn lode_model::api::PushHandler>),
            query: querier.clone().map(|q| q as Arc<dyn lode_model::api::QueryHandler>),
            metadata: querier.clone().map(|q| q as Arc<dyn lode_model::api::MetadataHandler>),
            tail: querier.clone().map(|q| q as Arc<dyn lode_model::api::TailHandler>),
            ingester: ingester.clone().map(|i| i as Arc<dyn lode_model::api::IngesterAdmin>),
            registry,
            auth_enabled: cfg.auth_enabled,
            decode_limits: cfg.server.decode_limits(),
            stopping: stopping.clone(),
            limits: limits.clone(),
            config: lode_server::ConfigView {
                current: cfg.to_masked_yaml(),
                defaults: Config::default().to_masked_yaml(),
            },
            ring: ring_status::for_node(
                membership.clone(),
                ingester.clone(),
                &cfg.common.instance_id,
                roles.names(),
                advertised(local, &cfg.memberlist.advertise_addr),
                cfg.common.ring_tokens,
            ),
        };
        if !cfg.runtime_config.file.is_empty() {
            tokio::spawn(reload_overrides(
                limits.clone(),
                cfg.runtime_config.file.clone(),
                cfg.runtime_config.period.0,
                rx.clone(),
            ));
        }
        let mut flush_loop = None;
        let mut wal_loop = None;
        if let Some(ing) = &ingester {
            flush_loop = Some(tokio::spawn(ing.clone().run_flush_loop(rx.clone())));
            // The WAL is opened before serving (an unusable WAL directory stops the start) and
            // replayed while serving, so `/ready` can say how far the replay is.
            ing.open_wal()?;
            let (ing, rx, m) = (ing.clone(), rx.clone(), membership.clone());
            wal_loop = Some(tokio::spawn(async move {
                match ing.replay_wal().await {
                    Ok(_) => {
                        if let Some(m) = &m {
                            m.set_state(MemberState::Active).await;
                        }
                        ing.run_wal_loop(rx).await
                    }
                    Err(e) => tracing::error!(error = %e, "wal: replay failed; the ingester stays not ready"),
                }
            }));
        }
        let mut stop = rx;
        let server = tokio::spawn(async move {
            lode_server::serve(listener, handlers, async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await
        });
        tracing::info!(
            addr = %local,
            grpc = ?grpc_addr,
            target = %cfg.target,
            store = %store.description(),
            instance = %cfg.common.instance_id,
            "lode is ready"
        );
        Ok(Node {
            addr: local,
            grpc_addr,
            shutdown: tx,
            server,
            grpc_server,
            flush_loop,
            wal_loop,
            ingester,
            membership,
            stopping,
        })
    }

    /// The gRPC address of a cluster ingester.
    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.grpc_addr
    }

    /// The HTTP address actually bound (useful with port 0).
    pub fn http_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Graceful stop: `/ready` turns 503, the server finishes in-flight requests and stops
    /// accepting, then every in-memory chunk is flushed to the store.
    pub async fn shutdown(self) -> Result<(), AppError> {
        self.stopping.store(true, Ordering::Relaxed);
        // An ingester leaves the ring first, so distributors stop sending it writes.
        if let (Some(m), Some(_)) = (&self.membership, &self.ingester) {
            m.set_state(MemberState::Leaving).await;
        }
        let _ = self.shutdown.send(true);
        // Flush whatever happened to the server task: accepted lines must reach the store.
        let served = self.server.await;
        if let Some(f) = self.flush_loop {
            let _ = f.await;
        }
        // A replay still running has nothing to lose by stopping: its files stay for next time.
        if let Some(w) = self.wal_loop {
            w.abort();
            let _ = w.await;
        }
        if let Some(ing) = &self.ingester {
            ing.shutdown().await?;
        }
        if let Some(g) = self.grpc_server {
            let _ = g.await;
        }
        if let Some(m) = &self.membership {
            m.shutdown().await;
        }
        served.map_err(|e| AppError::Serve(std::io::Error::other(e)))??;
        Ok(())
    }
}
