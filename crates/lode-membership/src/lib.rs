//! Cluster membership: which nodes exist, which roles they run, where to reach them, and their
//! ring state (JOINING, ACTIVE, LEAVING, or UNHEALTHY when their heartbeat is too old). Each
//! node publishes its own entry; the entries travel over chitchat, the scuttlebutt gossip
//! library Quickwit runs in production (Loki uses memberlist for the same job), seeded by
//! `memberlist.join_members`. A static member list replaces gossip where a fixed topology is
//! simpler. Distributors and queriers build their ingester ring from [`Membership::members`];
//! the `/ring` page shows the same list.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chitchat::transport::UdpTransport;
use chitchat::{ChitchatConfig, ChitchatHandle, ChitchatId, FailureDetectorConfig, spawn_chitchat};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use lode_model::time::ConfigDuration;

const KEY_ROLES: &str = "roles";
const KEY_GRPC: &str = "grpc";
const KEY_HTTP: &str = "http";
const KEY_STATE: &str = "state";
const KEY_TOKENS: &str = "tokens";
const KEY_HEARTBEAT: &str = "heartbeat_ms";
/// `forget/<node id>` = generation: a member removed by an operator (`/ring` "forget").
const FORGET_PREFIX: &str = "forget/";

#[derive(Debug, thiserror::Error)]
pub enum MembershipError {
    #[error("memberlist: cannot start gossip on {addr}: {reason}")]
    Start { addr: String, reason: String },
    #[error("memberlist: invalid address {0:?}: expected host:port")]
    Address(String),
}

/// `memberlist:` section of the config file (Loki's key names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemberlistConfig {
    /// Seed addresses (`host:port`) of other members; DNS names are re-resolved.
    pub join_members: Vec<String>,
    pub bind_addr: String,
    pub bind_port: u16,
    /// Address other members reach this one at; empty means `bind_addr`.
    pub advertise_addr: String,
    /// Members of different clusters ignore each other.
    pub cluster_label: String,
    pub gossip_interval: ConfigDuration,
    /// How often a member refreshes its heartbeat.
    pub heartbeat_period: ConfigDuration,
    /// A member whose heartbeat is older than this is UNHEALTHY.
    pub heartbeat_timeout: ConfigDuration,
    /// A fixed member list instead of gossip (when `join_members` is empty and this is not).
    pub static_members: Vec<StaticMember>,
}

impl Default for MemberlistConfig {
    fn default() -> Self {
        MemberlistConfig {
            join_members: Vec::new(),
            bind_addr: "0.0.0.0".into(),
            bind_port: 7946,
            advertise_addr: String::new(),
            cluster_label: "lode".into(),
            gossip_interval: ConfigDuration(Duration::from_millis(200)),
            heartbeat_period: ConfigDuration::secs(1),
            heartbeat_timeout: ConfigDuration::secs(60),
            static_members: Vec::new(),
        }
    }
}

impl MemberlistConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.gossip_interval.0.is_zero() || self.heartbeat_period.0.is_zero() {
            return Err("memberlist.gossip_interval and heartbeat_period must be positive".into());
        }
        if self.heartbeat_timeout.0 <= self.heartbeat_period.0 {
            return Err("memberlist.heartbeat_timeout must be longer than heartbeat_period".into());
        }
        Ok(())
    }
}

/// A member of a static list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticMember {
    pub id: String,
    pub roles: Vec<String>,
    #[serde(default)]
    pub grpc_addr: String,
    #[serde(default)]
    pub http_addr: String,
    #[serde(default = "default_tokens")]
    pub tokens: u32,
}

fn default_tokens() -> u32 {
    128
}

/// A member's ring state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MemberState {
    Joining,
    Active,
    Leaving,
    Unhealthy,
}

impl MemberState {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberState::Joining => "JOINING",
            MemberState::Active => "ACTIVE",
            MemberState::Leaving => "LEAVING",
            MemberState::Unhealthy => "UNHEALTHY",
        }
    }

    fn parse(s: &str) -> Option<MemberState> {
        Some(match s {
            "JOINING" => MemberState::Joining,
            "ACTIVE" => MemberState::Active,
            "LEAVING" => MemberState::Leaving,
            _ => return None,
        })
    }
}

/// What a node says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMember {
    pub id: String,
    pub roles: Vec<String>,
    pub grpc_addr: String,
    pub http_addr: String,
    pub tokens: u32,
    pub state: MemberState,
}

/// A member as seen from this node.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Member {
    pub id: String,
    pub roles: Vec<String>,
    pub grpc_addr: String,
    pub http_addr: String,
    pub tokens: u32,
    pub state: MemberState,
    /// Age of the newest heartbeat seen (zero for static members).
    pub heartbeat_age: Duration,
}

impl Member {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role || r == "all")
    }

    /// An ingester that can be reached: it has the role and published its gRPC address.
    pub fn is_ingester(&self) -> bool {
        self.has_role("ingester") && !self.grpc_addr.is_empty()
    }

    pub fn healthy(&self) -> bool {
        self.state != MemberState::Unhealthy
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

enum Backend {
    Gossip {
        handle: ChitchatHandle,
        heartbeat: tokio::task::JoinHandle<()>,
    },
    Static(Vec<StaticMember>),
}

/// This node's membership.
pub struct Membership {
    backend: Backend,
    timeout: Duration,
    local: Mutex<LocalMember>,
}

fn resolve(addr: &str) -> Result<SocketAddr, MembershipError> {
    use std::net::ToSocketAddrs;
    addr.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| MembershipError::Address(addr.to_string()))
}

impl Membership {
    /// Starts gossiping (or serves the static list) with `local` as this node's entry.
    pub async fn start(cfg: &MemberlistConfig, local: LocalMember) -> Result<Arc<Membership>, MembershipError> {
        if cfg.join_members.is_empty() && !cfg.static_members.is_empty() {
            return Ok(Arc::new(Membership {
                backend: Backend::Static(cfg.static_members.clone()),
                timeout: cfg.heartbeat_timeout.0,
                local: Mutex::new(local),
            }));
        }
        let listen = resolve(&format!("{}:{}", cfg.bind_addr, cfg.bind_port))?;
        let advertise = if cfg.advertise_addr.is_empty() {
            listen
        } else {
            resolve(&format!("{}:{}", cfg.advertise_addr, cfg.bind_port))?
        };
        let config = ChitchatConfig {
            // The generation tells a restarted member from its previous life.
            chitchat_id: ChitchatId::new(local.id.clone(), now_ms(), advertise),
            cluster_id: cfg.cluster_label.clone(),
            gossip_interval: cfg.gossip_interval.0,
            listen_addr: listen,
            seed_nodes: cfg.join_members.clone(),
            failure_detector_config: FailureDetectorConfig {
                dead_node_grace_period: cfg.heartbeat_timeout.0.saturating_mul(10),
                ..FailureDetectorConfig::default()
            },
            marked_for_deletion_grace_period: Duration::from_secs(3600),
            catchup_callback: None,
            extra_liveness_predicate: None,
            // Every member runs the same Lode, so the compressed digest format is safe.
            protocol_version: chitchat::ProtocolVersion::V1,
        };
        let initial = vec![
            (KEY_ROLES.to_string(), local.roles.join(",")),
            (KEY_GRPC.to_string(), local.grpc_addr.clone()),
            (KEY_HTTP.to_string(), local.http_addr.clone()),
            (KEY_TOKENS.to_string(), local.tokens.to_string()),
            (KEY_STATE.to_string(), local.state.as_str().to_string()),
            (KEY_HEARTBEAT.to_string(), now_ms().to_string()),
        ];
        let handle = spawn_chitchat(config, initial, &UdpTransport)
            .await
            .map_err(|e| MembershipError::Start {
                addr: listen.to_string(),
                reason: e.to_string(),
            })?;
        let chitchat = handle.chitchat();
        let period = cfg.heartbeat_period.0;
        let heartbeat = tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tick.tick().await;
                chitchat
                    .lock()
                    .await
                    .self_node_state()
                    .set(KEY_HEARTBEAT, now_ms().to_string());
            }
        });
        Ok(Arc::new(Membership {
            backend: Backend::Gossip { handle, heartbeat },
            timeout: cfg.heartbeat_timeout.0,
            local: Mutex::new(local),
        }))
    }

    /// The gossip address actually in use (the configured one, or the port chosen for 0).
    pub fn gossip_addr(&self) -> Option<SocketAddr> {
        match &self.backend {
            Backend::Gossip { handle, .. } => Some(handle.chitchat_id().gossip_advertise_addr),
            Backend::Static(_) => None,
        }
    }

    /// Publishes a new ring state for this node (JOINING -> ACTIVE -> LEAVING).
    pub async fn set_state(&self, state: MemberState) {
        self.local.lock().await.state = state;
        if let Backend::Gossip { handle, .. } = &self.backend {
            handle
                .chitchat()
                .lock()
                .await
                .self_node_state()
                .set(KEY_STATE, state.as_str());
        }
    }

    /// Every member known, this one included, sorted by id; members forgotten by an operator
    /// are left out until they come back with a newer generation.
    pub async fn members(&self) -> Vec<Member> {
        let handle = match &self.backend {
            Backend::Static(list) => {
                return list
                    .iter()
                    .map(|m| Member {
                        id: m.id.clone(),
                        roles: m.roles.clone(),
                        grpc_addr: m.grpc_addr.clone(),
                        http_addr: m.http_addr.clone(),
                        tokens: m.tokens,
                        state: MemberState::Active,
                        heartbeat_age: Duration::ZERO,
                    })
                    .collect();
            }
            Backend::Gossip { handle, .. } => handle,
        };
        let chitchat = handle.chitchat();
        let cc = chitchat.lock().await;
        let live: std::collections::HashSet<&ChitchatId> = cc.live_nodes().collect();
        let now = now_ms();
        // Forget markers from every member: id -> newest forgotten generation.
        let mut forgotten: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
        for state in cc.node_states().values() {
            for (k, v) in state.key_values() {
                if let (Some(id), Ok(generation)) = (k.strip_prefix(FORGET_PREFIX), v.parse::<u64>()) {
                    let slot = forgotten.entry(id.to_string()).or_default();
                    *slot = (*slot).max(generation);
                }
            }
        }
        // The newest generation of each node id.
        let mut newest: std::collections::BTreeMap<String, (&ChitchatId, Member)> = std::collections::BTreeMap::new();
        for (cid, state) in cc.node_states() {
            let id = cid.node_id.to_string();
            if forgotten.get(&id).is_some_and(|g| *g >= cid.generation_id) {
                continue;
            }
            let hb = state
                .get(KEY_HEARTBEAT)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
            let age = Duration::from_millis(now.saturating_sub(hb));
            let declared = state
                .get(KEY_STATE)
                .and_then(MemberState::parse)
                .unwrap_or(MemberState::Joining);
            let is_self = cid == cc.self_chitchat_id();
            let state_now = if !is_self && (!live.contains(cid) || age > self.timeout) {
                MemberState::Unhealthy
            } else {
                declared
            };
            let member = Member {
                id: id.clone(),
                roles: state
                    .get(KEY_ROLES)
                    .map(|r| r.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect())
                    .unwrap_or_default(),
                grpc_addr: state.get(KEY_GRPC).unwrap_or_default().to_string(),
                http_addr: state.get(KEY_HTTP).unwrap_or_default().to_string(),
                tokens: state.get(KEY_TOKENS).and_then(|t| t.parse().ok()).unwrap_or(0),
                state: state_now,
                heartbeat_age: if is_self { Duration::ZERO } else { age },
            };
            match newest.get(&id) {
                Some((old, _)) if old.generation_id >= cid.generation_id => {}
                _ => {
                    newest.insert(id, (cid, member));
                }
            }
        }
        newest.into_values().map(|(_, m)| m).collect()
    }

    /// Removes an UNHEALTHY member from every node's view (its entry is ignored until it
    /// returns with a newer generation). Refuses healthy members.
    pub async fn forget(&self, id: &str) -> Result<(), String> {
        let Backend::Gossip { handle, .. } = &self.backend else {
            return Err("static members cannot be forgotten; edit memberlist.static_members".into());
        };
        let chitchat = handle.chitchat();
        let mut cc = chitchat.lock().await;
        let newest = cc
            .node_states()
            .keys()
            .filter(|c| &*c.node_id == id)
            .map(|c| c.generation_id)
            .max()
            .ok_or_else(|| format!("no member {id:?}"))?;
        drop(cc);
        let unhealthy = self
            .members()
            .await
            .iter()
            .any(|m| m.id == id && m.state == MemberState::Unhealthy);
        if !unhealthy {
            return Err(format!(
                "member {id:?} is not unhealthy; only unhealthy members can be forgotten"
            ));
        }
        cc = chitchat.lock().await;
        cc.self_node_state()
            .set(format!("{FORGET_PREFIX}{id}"), newest.to_string());
        Ok(())
    }

    /// This node's own entry.
    pub async fn local(&self) -> LocalMember {
        self.local.lock().await.clone()
    }

    /// Stops gossiping (others see this member go UNHEALTHY after the timeout, or LEAVING
    /// first when [`Membership::set_state`] said so).
    pub async fn shutdown(&self) {
        if let Backend::Gossip { handle, heartbeat } = &self.backend {
            heartbeat.abort();
            let _ = handle.initiate_shutdown();
        }
    }
}

#[cfg(test)]
mod tests;
