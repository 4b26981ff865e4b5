//! The consistent-hash ring that places streams on ingesters. Each ingester owns
//! `tokens_per_instance` virtual nodes on a `hashring`; a stream's token (FNV-32a of tenant and
//! labels, `lode_model::labels::ring_token`) picks the first node clockwise, and replication
//! walks on to the next distinct ingesters. The distributor asks the ring where each stream goes;
//! in the single binary the ring holds the one local ingester.

use std::collections::{BTreeSet, HashMap};
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
    /// `instances` in order, so an ingester is a small index below.
    names: Vec<String>,
    /// Every virtual node's ingester (index into `names`), clockwise from an arbitrary start.
    clockwise: Vec<usize>,
    /// Where each virtual node (ingester index, token index) sits in `clockwise`.
    position: HashMap<(usize, u32), usize>,
}

impl Ring {
    pub fn new(tokens_per_instance: u32) -> Self {
        Ring {
            nodes: HashRing::new(),
            instances: BTreeSet::new(),
            tokens_per_instance: tokens_per_instance.max(1),
            names: Vec::new(),
            clockwise: Vec::new(),
            position: HashMap::new(),
        }
    }

    pub fn add(&mut self, instance: &str) {
        if self.instances.insert(instance.to_string()) {
            let vnodes = (0..self.tokens_per_instance).map(|index| VNode {
                instance: instance.to_string(),
                index,
            });
            self.nodes.batch_add(vnodes.collect());
            self.rebuild();
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
            self.rebuild();
        }
    }

    /// Lays the ring out once per membership change: `hashring`'s own replica walk clones every
    /// virtual node, which cost tens of microseconds per stream of every push; a lookup now finds
    /// its primary with `hashring` and walks this table from there.
    fn rebuild(&mut self) {
        self.names = self.instances.iter().cloned().collect();
        let all = self
            .nodes
            .get_with_replicas(&0u32, self.nodes.len())
            .unwrap_or_default();
        let all = &all[..all.len().min(self.nodes.len())];
        self.clockwise = Vec::with_capacity(all.len());
        self.position = HashMap::with_capacity(all.len());
        for (p, v) in all.iter().enumerate() {
            let i = self.names.binary_search(&v.instance).unwrap_or_default();
            self.clockwise.push(i);
            self.position.insert((i, v.index), p);
        }
    }

    pub fn instances(&self) -> impl Iterator<Item = &str> {
        self.instances.iter().map(String::as_str)
    }

    /// Every ingester's index in `names` for each virtual node clockwise from `token`'s owner,
    /// once around the ring.
    fn walk(&self, token: u32) -> impl Iterator<Item = usize> + '_ {
        let start = self
            .nodes
            .get(&token)
            .and_then(|v| {
                let i = self.names.binary_search(&v.instance).ok()?;
                self.position.get(&(i, v.index)).copied()
            })
            .unwrap_or(0);
        let n = self.clockwise.len();
        (0..n).map(move |k| self.clockwise[(start + k) % n])
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
        self.get_healthy(token, rf.max(1), |_| true)
    }

    /// The replica set for `token` when some ingesters are unhealthy: the first `rf` distinct
    /// healthy ingesters clockwise. An unhealthy owner is skipped and the set extended to the
    /// next healthy one, as Loki's ring does for writes, so a dead replica costs no quorum.
    /// Fewer than `rf` come back only when fewer are healthy.
    pub fn get_healthy(&self, token: u32, rf: usize, healthy: impl Fn(&str) -> bool) -> Result<Vec<&str>, RingError> {
        if self.instances.is_empty() {
            return Err(RingError::Empty);
        }
        // Consecutive virtual nodes may belong to the same ingester: keep the first of each.
        let mut seen: Vec<usize> = Vec::with_capacity(rf + 2);
        let mut out: Vec<&str> = Vec::with_capacity(rf);
        for i in self.walk(token) {
            if seen.contains(&i) {
                continue;
            }
            seen.push(i);
            let id = self.names[i].as_str();
            if healthy(id) {
                out.push(id);
                if out.len() == rf {
                    break;
                }
            }
            if seen.len() == self.names.len() {
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
    fn lookups_match_hashrings_own_walk() {
        // The reference: hashring's replica walk, which clones the ring per lookup.
        fn reference(r: &Ring, token: u32, rf: usize, healthy: impl Fn(&str) -> bool) -> Vec<String> {
            let mut out: Vec<String> = Vec::new();
            let mut seen: Vec<String> = Vec::new();
            for v in r.nodes.get_with_replicas(&token, r.nodes.len()).unwrap() {
                if !seen.contains(&v.instance) {
                    seen.push(v.instance.clone());
                    if healthy(&v.instance) && out.len() < rf {
                        out.push(v.instance);
                    }
                }
            }
            out
        }
        let mut r = Ring::new(32);
        for i in 0..7 {
            r.add(&format!("ing-{i}"));
        }
        r.remove("ing-3");
        r.add("ing-9");
        for t in 0..2_000u32 {
            let token = t.wrapping_mul(2_654_435_761);
            let got: Vec<String> = r.get(token, 3).unwrap().iter().map(|s| s.to_string()).collect();
            assert_eq!(got, reference(&r, token, 3, |_| true), "token {token}");
            let healthy = |id: &str| id != "ing-0" && id != "ing-5";
            let got: Vec<String> = r
                .get_healthy(token, 3, healthy)
                .unwrap()
                .iter()
                .map(|s| s.to_string())
                .collect();
            assert_eq!(got, reference(&r, token, 3, healthy), "token {token}");
        }
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
