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
