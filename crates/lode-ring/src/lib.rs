//! The consistent-hash ring that places streams on ingesters. Each ingester owns
//! `tokens_per_instance` virtual nodes on a `hashring`; a stream's token (FNV-32a of tenant and
//! labels, `lode_model::labels::ring_token`) picks the first node clockwise, and replication
//! walks on to the next distinct ingesters. The distributor asks the ring where each stream goes;
//! in the single binary the ring holds the one local ingester.

use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};

use hashring::HashRing;

/// One virtual node: an ingester id and the index of the token it stands for. `hashring`
/// places it by hashing this value with SipHash under fixed keys, so every process that knows
/// the same members derives the same ring.
#[derive(Debug, Clone, PartialEq, Eq)]
struct VNode {
    instance: String,
    index: u32,
}

impl Hash for VNode {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.instance.hash(state);
        self.index.hash(state);
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RingError {
    #[error("empty ring: no ingester is registered")]
    Empty,
    #[error("at least {needed} ingesters are needed for replication factor {rf}, the ring has {have}")]
    TooFewInstances { needed: usize, rf: usize, have: usize },
}

/// The ingester ring.
pub struct Ring {
    nodes: HashRing<VNode>,
    instances: BTreeSet<String>,
    tokens_per_instance: u32,
}

impl Ring {
    pub fn new(tokens_per_instance: u32) -> Self {
        Ring {
            nodes: HashRing::new(),
            instances: BTreeSet::new(),
            tokens_per_instance: tokens_per_instance.max(1),
        }
    }

    pub fn add(&mut self, instance: &str) {
        if self.instances.insert(instance.to_string()) {
            let vnodes = (0..self.tokens_per_instance).map(|index| VNode {
                instance: instance.to_string(),
                index,
            });
            self.nodes.batch_add(vnodes.collect());
        }
    }

    pub fn remove(&mut self, instance: &str) {
        if self.instances.remove(instance) {
            for index in 0..self.tokens_per_instance {
                self.nodes.remove(&VNode {
                    instance: instance.to_string(),
                    index,
                });
            }
        }
    }

    pub fn instances(&self) -> impl Iterator<Item = &str> {
        self.instances.iter().map(String::as_str)
    }

    /// The `rf` distinct ingesters that own `token`, primary first.
    pub fn get(&self, token: u32, rf: usize) -> Result<Vec<&str>, RingError> {
        if self.instances.is_empty() {
            return Err(RingError::Empty);
        }
        if rf > self.instances.len() {
            return Err(RingError::TooFewInstances {
                needed: rf,
                rf,
                have: self.instances.len(),
            });
        }
        if rf <= 1 {
            let node = self.nodes.get(&token).ok_or(RingError::Empty)?;
            return Ok(vec![self.canonical(&node.instance)]);
        }
        // hashring returns consecutive virtual nodes, which may belong to the same ingester;
        // walk the whole ring once and keep the first `rf` distinct ones.
        let walk = self
            .nodes
            .get_with_replicas(&token, self.nodes.len())
            .ok_or(RingError::Empty)?;
        let mut out: Vec<&str> = Vec::with_capacity(rf);
        for node in &walk {
            let id = self.canonical(&node.instance);
            if !out.contains(&id) {
                out.push(id);
                if out.len() == rf {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// The replica set for `token` when some ingesters are unhealthy: the first `rf` distinct
    /// healthy ingesters clockwise. An unhealthy owner is skipped and the set extended to the
    /// next healthy one, as Loki's ring does for writes, so a dead replica costs no quorum.
    /// Fewer than `rf` come back only when fewer are healthy.
    pub fn get_healthy(&self, token: u32, rf: usize, healthy: impl Fn(&str) -> bool) -> Result<Vec<&str>, RingError> {
        if self.instances.is_empty() {
            return Err(RingError::Empty);
        }
        let walk = self
            .nodes
            .get_with_replicas(&token, self.nodes.len())
            .ok_or(RingError::Empty)?;
        let mut seen: Vec<&str> = Vec::new();
        let mut out: Vec<&str> = Vec::with_capacity(rf);
        for node in &walk {
            let id = self.canonical(&node.instance);
            if seen.contains(&id) {
                continue;
            }
            seen.push(id);
            if healthy(id) {
                out.push(id);
                if out.len() == rf {
                    break;
                }
            }
            if seen.len() == self.instances.len() {
                break;
            }
        }
        Ok(out)
    }

    /// Each ingester's share of the token space (for the `/ring` page), measured by placing
    /// `samples` evenly spaced tokens.
    pub fn ownership(&self, samples: u32) -> Vec<(String, f64)> {
        let mut counts: std::collections::BTreeMap<&str, u64> =
            self.instances.iter().map(|i| (i.as_str(), 0)).collect();
        let samples = samples.max(1);
        let step = u32::MAX / samples;
        for k in 0..samples {
            if let Some(node) = self.nodes.get(&(k.wrapping_mul(step))) {
                *counts.entry(self.canonical(&node.instance)).or_default() += 1;
            }
        }
        counts
            .into_iter()
            .map(|(id, c)| (id.to_string(), c as f64 / f64::from(samples)))
            .collect()
    }

    fn canonical(&self, id: &str) -> &str {
        self.instances.get(id).map(String::as_str).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_instance_owns_everything() {
        let mut r = Ring::new(128);
        assert_eq!(r.get(1, 1), Err(RingError::Empty));
        r.add("ingester-1");
        for t in [0u32, 1, 12345, u32::MAX] {
            assert_eq!(r.get(t, 1).unwrap(), vec!["ingester-1"]);
        }
    }

    #[test]
    fn replicas_are_distinct_and_stable() {
        let mut r = Ring::new(64);
        for i in 0..4 {
            r.add(&format!("ing-{i}"));
        }
        let a = r.get(42, 3).unwrap();
        assert_eq!(a.len(), 3);
        let set: BTreeSet<_> = a.iter().collect();
        assert_eq!(set.len(), 3);
        // Another process with the same members in another order derives the same placement.
        let mut r2 = Ring::new(64);
        for i in (0..4).rev() {
            r2.add(&format!("ing-{i}"));
        }
        assert_eq!(r2.get(42, 3).unwrap(), a);
        assert!(matches!(r.get(42, 5), Err(RingError::TooFewInstances { .. })));
    }

    #[test]
    fn unhealthy_owners_are_skipped_and_the_set_extended() {
        let mut r = Ring::new(64);
        for i in 0..4 {
            r.add(&format!("ing-{i}"));
        }
        let all = r.get(7, 3).unwrap();
        let dead = all[1].to_string();
        let set = r.get_healthy(7, 3, |id| id != dead).unwrap();
        assert_eq!(set.len(), 3);
        assert!(!set.contains(&dead.as_str()));
        assert_eq!(
            (set[0], set[1]),
            (all[0], all[2]),
            "the healthy owners keep their order"
        );
        // With two of four dead, only two can be had.
        let dead2 = all[0].to_string();
        assert_eq!(r.get_healthy(7, 3, |id| id != dead && id != dead2).unwrap().len(), 2);
        let own = r.ownership(10_000);
        assert_eq!(own.len(), 4);
        let total: f64 = own.iter().map(|o| o.1).sum();
        assert!((total - 1.0).abs() < 1e-9);
        assert!(own.iter().all(|o| o.1 > 0.1 && o.1 < 0.4), "{own:?}");
    }

    #[test]
    fn load_is_spread() {
        let mut r = Ring::new(128);
        for i in 0..3 {
            r.add(&format!("ing-{i}"));
        }
        let mut counts = std::collections::HashMap::new();
        for t in 0..30_000u32 {
            *counts
                .entry(r.get(t.wrapping_mul(2_654_435_761), 1).unwrap()[0].to_string())
                .or_insert(0) += 1;
        }
        for (_, c) in counts {
            assert!((6_000..14_000).contains(&c), "unbalanced: {c}");
        }
        r.remove("ing-1");
        assert!(r.instances().all(|i| i != "ing-1"));
    }
}
