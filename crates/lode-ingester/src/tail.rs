//! Live tailing (Loki's ingester `Tail`): a subscriber registers a query; every push that
//! accepts entries into a tenant's streams hands them, after the query's pipeline, to that
//! tenant's subscribers. A subscriber that cannot keep up loses entries, which are named in the
//! next batch it does receive (`dropped_entries`), never blocking the push path.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use lode_logql::engine::{LogPlan, StreamCollector};
use lode_model::api::{DroppedEntry, TailBatch, TailReceiver, TailSource};
use lode_model::{ApiError, Entry, Labels};
use tokio::sync::mpsc::error::TrySendError;

use crate::Ingester;

/// Batches a subscriber may have queued before further entries are dropped.
const TAIL_QUEUE: usize = 64;
/// Dropped entries remembered per subscriber until they can be reported.
const MAX_DROPPED: usize = 1000;

pub(crate) struct Tailer {
    plan: LogPlan,
    tx: tokio::sync::mpsc::Sender<TailBatch>,
    dropped: Mutex<Vec<DroppedEntry>>,
}

/// Subscribers per tenant.
#[derive(Default)]
pub(crate) struct Tailers {
    by_tenant: std::sync::RwLock<HashMap<String, Vec<Arc<Tailer>>>>,
    /// How many subscribers exist, so a push checks a counter, not a lock, when there are none.
    count: std::sync::atomic::AtomicUsize,
}

impl Tailers {
    pub(crate) fn any(&self, tenant: &str) -> bool {
        self.count.load(Ordering::Relaxed) > 0
            && self
                .by_tenant
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .get(tenant)
                .is_some_and(|v| !v.is_empty())
    }

    fn add(&self, tenant: &str, t: Arc<Tailer>) {
        self.by_tenant
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(tenant.to_string())
            .or_default()
            .push(t);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Hands accepted entries to the tenant's subscribers; forgets those that went away.
    pub(crate) fn deliver(&self, tenant: &str, accepted: &[(Labels, Vec<Entry>)]) {
        let tailers: Vec<Arc<Tailer>> = match self.by_tenant.read().unwrap_or_else(|p| p.into_inner()).get(tenant) {
            Some(v) => v.clone(),
            None => return,
        };
        let mut gone = Vec::new();
        for t in &tailers {
            if t.tx.is_closed() {
                gone.push(Arc::as_ptr(t));
                continue;
            }
            let mut collector = StreamCollector::new(&t.plan, usize::MAX);
            for (labels, entries) in accepted {
                if !t.plan.selector().matches(labels) {
                    continue;
                }
                let mut scan = collector.stream(labels);
                for e in entries {
                    let _ = scan.push(
                        e.ts,
                        &e.line,
                        &mut e.metadata.iter().map(|(n, v)| (n.as_str(), v.as_str())),
                    );
                }
            }
            let (streams, _) = collector.finish();
            let mut dropped = t.dropped.lock().unwrap_or_else(|p| p.into_inner());
            if streams.is_empty() && dropped.is_empty() {
                continue;
            }
            let batch = TailBatch {
                streams,
                dropped: std::mem::take(&mut *dropped),
            };
            match t.tx.try_send(batch) {
                Ok(()) => {}
                Err(TrySendError::Full(b)) => {
                    // Keep what was already pending, then this batch's entries, up to the cap.
                    dropped.extend(b.dropped);
                    for s in &b.streams {
                        for e in &s.entries {
                            dropped.push(DroppedEntry {
                                labels: s.labels.clone(),
                                ts: e.ts,
                            });
                        }
                    }
                    let excess = dropped.len().saturating_sub(MAX_DROPPED);
                    dropped.drain(..excess);
                }
                Err(TrySendError::Closed(_)) => gone.push(Arc::as_ptr(t)),
            }
        }
        if !gone.is_empty() {
            let mut map = self.by_tenant.write().unwrap_or_else(|p| p.into_inner());
            if let Some(v) = map.get_mut(tenant) {
                let before = v.len();
                v.retain(|t| !gone.contains(&Arc::as_ptr(t)));
                self.count.fetch_sub(before - v.len(), Ordering::Relaxed);
            }
        }
    }
}

#[async_trait]
impl TailSource for Ingester {
    async fn subscribe(&self, tenant: &str, query: &str) -> Result<TailReceiver, ApiError> {
        let plan = LogPlan::parse(query)?;
        let (tx, rx) = tokio::sync::mpsc::channel(TAIL_QUEUE);
        self.tailers.add(
            tenant,
            Arc::new(Tailer {
                plan,
                tx,
                dropped: Mutex::new(Vec::new()),
            }),
        );
        Ok(rx)
    }
}
