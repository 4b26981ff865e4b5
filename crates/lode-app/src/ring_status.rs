//! What `/ring` shows: the membership's members, with each ingester's share of the ring
//! computed as the distributor places streams (same tokens per ingester, every ingester member
//! on the ring whatever its state). The single binary has no membership; its ring is the one
//! local ingester, which owns everything.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use lode_ingester::Ingester;
use lode_membership::{Member, Membership};
use lode_model::api::{IngesterAdmin, RingMember, RingStatus, RingView};
use lode_model::{ApiError, ErrorCode};
use lode_ring::Ring;

/// Evenly spaced tokens sampled to measure ownership (see `Ring::ownership`).
const OWNERSHIP_SAMPLES: u32 = 1 << 16;

pub(crate) enum RingPage {
    Cluster {
        membership: Arc<Membership>,
        /// Tokens per ingester on the ring (`common.ring_tokens`, as the distributor's ring).
        tokens: u32,
    },
    /// The single binary: its own ingester, ACTIVE once its WAL is replayed.
    Single {
        id: String,
        roles: Vec<String>,
        http_addr: String,
        tokens: u32,
        ingester: Arc<Ingester>,
    },
}

/// The `/ring` of a node: its membership's in a cluster, its own ingester in the single binary,
/// none otherwise.
pub(crate) fn for_node(
    membership: Option<Arc<Membership>>,
    ingester: Option<Arc<Ingester>>,
    id: &str,
    roles: Vec<String>,
    http_addr: String,
    tokens: u32,
) -> Option<Arc<dyn RingStatus>> {
    let page = match (membership, ingester) {
        (Some(membership), _) => RingPage::Cluster { membership, tokens },
        (None, Some(ingester)) => RingPage::Single {
            id: id.to_string(),
            roles,
            http_addr,
            tokens,
            ingester,
        },
        (None, None) => return None,
    };
    Some(Arc::new(page))
}

/// The ring view of `members`; ownership in percent, over the ingesters only.
fn view(members: Vec<Member>, tokens: u32) -> RingView {
    let mut ring = Ring::new(tokens);
    for m in members.iter().filter(|m| m.is_ingester()) {
        ring.add(&m.id);
    }
    let owned: std::collections::HashMap<String, f64> = ring.ownership(OWNERSHIP_SAMPLES).into_iter().collect();
    let members = members
        .into_iter()
        .map(|m| {
            let ingester = m.is_ingester();
            RingMember {
                ownership: owned.get(&m.id).map_or(0.0, |o| o * 100.0),
                tokens: if ingester { tokens } else { 0 },
                state: m.state.as_str().to_string(),
                address: if ingester { m.grpc_addr } else { m.http_addr.clone() },
                http_address: m.http_addr,
                heartbeat_age: m.heartbeat_age,
                roles: m.roles,
                id: m.id,
            }
        })
        .collect();
    RingView { members }
}

#[async_trait]
impl RingStatus for RingPage {
    async fn ring(&self) -> RingView {
        match self {
            RingPage::Cluster { membership, tokens } => view(membership.members().await, *tokens),
            RingPage::Single {
                id,
                roles,
                http_addr,
                tokens,
                ingester,
            } => RingView {
                members: vec![RingMember {
                    id: id.clone(),
                    state: if ingester.not_ready_reason().is_some() {
                        "JOINING"
                    } else {
                        "ACTIVE"
                    }
                    .to_string(),
                    address: http_addr.clone(),
                    http_address: http_addr.clone(),
                    roles: roles.clone(),
                    tokens: *tokens,
                    ownership: 100.0,
                    heartbeat_age: Duration::ZERO,
                }],
            },
        }
    }

    async fn forget(&self, id: &str) -> Result<(), ApiError> {
        let unknown = || ApiError::new(ErrorCode::NotFound, format!("no member {id:?}"));
        match self {
            RingPage::Cluster { membership, .. } => {
                if !membership.members().await.iter().any(|m| m.id == id) {
                    return Err(unknown());
                }
                membership.forget(id).await.map_err(ApiError::bad_request)
            }
            RingPage::Single { id: own, .. } if own == id => Err(ApiError::bad_request(format!(
                "member {id:?} is this node itself; only unhealthy members can be forgotten"
            ))),
            RingPage::Single { .. } => Err(unknown()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lode_membership::MemberState;

    fn member(id: &str, roles: &[&str], grpc: &str, state: MemberState) -> Member {
        Member {
            id: id.into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            grpc_addr: grpc.into(),
            http_addr: format!("{id}:3100"),
            tokens: 128,
            state,
            heartbeat_age: Duration::from_secs(3),
        }
    }

    #[test]
    fn ingesters_share_the_ring_and_other_members_own_nothing() {
        let v = view(
            vec![
                member("dist", &["distributor"], "", MemberState::Active),
                member("ing-0", &["ingester"], "ing-0:9095", MemberState::Active),
                member("ing-1", &["ingester"], "ing-1:9095", MemberState::Unhealthy),
            ],
            128,
        );
        let total: f64 = v.members.iter().map(|m| m.ownership).sum();
        assert!((total - 100.0).abs() < 1e-6, "{v:?}");
        let dist = &v.members[0];
        assert_eq!(
            (dist.tokens, dist.ownership, dist.address.as_str()),
            (0, 0.0, "dist:3100")
        );
        let dead = &v.members[2];
        assert_eq!(
            (dead.state.as_str(), dead.address.as_str()),
            ("UNHEALTHY", "ing-1:9095")
        );
        assert!(dead.ownership > 25.0 && dead.ownership < 75.0, "{dead:?}");
    }
}
