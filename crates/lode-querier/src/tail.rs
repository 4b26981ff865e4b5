//! Live tail (`/loki/api/v1/tail`): subscribe to every ingester first, then answer the backfill
//! (the newest `limit` entries since `start`, oldest first) from the normal query path, then
//! forward live batches, held for `delay_for` and sent in time order. An entry that is both in
//! the backfill and live (pushed between subscribing and the backfill query) is sent once.

use std::collections::HashSet;

use async_trait::async_trait;
use lode_logql::Expr;
use lode_model::api::{QueryHandler, RangeQuery, TailBatch, TailHandler, TailReceiver, TailRequest};
use lode_model::time::now_nanos;
use lode_model::{ApiError, Direction, Stream};
use tokio::sync::mpsc;

use crate::Querier;

/// Batches queued towards one client.
const OUT_QUEUE: usize = 64;

/// Identity of an entry for the backfill/live overlap.
type Key = (String, i64, String);

fn merge_into(into: &mut TailBatch, b: TailBatch) {
    into.dropped.extend(b.dropped);
    for s in b.streams {
        match into.streams.iter_mut().find(|x| x.labels == s.labels) {
            Some(x) => x.entries.extend(s.entries),
            None => into.streams.push(s),
        }
    }
}

/// Sorts each stream's entries by time and drops those already sent in the backfill.
fn finish(mut b: TailBatch, seen: &HashSet<Key>) -> TailBatch {
    for s in &mut b.streams {
        s.entries
            .retain(|e| !seen.contains(&(s.labels.clone(), e.ts, e.line.clone())));
        s.entries.sort_by_key(|e| e.ts);
    }
    b.streams.retain(|s| !s.entries.is_empty());
    b.streams.sort_by(|a, c| a.labels.cmp(&c.labels));
    b
}

#[async_trait]
impl TailHandler for Querier {
    async fn tail(&self, tenant: &str, req: TailRequest) -> Result<TailReceiver, ApiError> {
        if !matches!(lode_logql::parse_expr(&req.query)?, Expr::Log(_)) {
            return Err(ApiError::bad_request("tail requires a log query, not a metric query"));
        }
        // Subscribe before the backfill so no entry falls between the two.
        let sources = self.tail_sources();
        let mut live = Vec::with_capacity(sources.len());
        for s in &sources {
            live.push(s.subscribe(tenant, &req.query).await?);
        }
        let backfill = self
            .query_range(
                tenant,
                RangeQuery {
                    query: req.query.clone(),
                    start: req.start,
                    end: now_nanos().saturating_add(1),
                    limit: req.limit,
                    direction: Direction::Backward,
                    step: 0,
                    interval: 0,
                },
            )
            .await?;
        let mut first = TailBatch::default();
        if let lode_model::api::QueryData::Streams(streams) = backfill.data {
            first.streams = streams
                .into_iter()
                .map(|mut s: Stream| {
                    s.entries.reverse();
                    s
                })
                .collect();
        }
        let seen: HashSet<Key> = first
            .streams
            .iter()
            .flat_map(|s| s.entries.iter().map(|e| (s.labels.clone(), e.ts, e.line.clone())))
            .collect();
        let (tx, rx) = mpsc::channel(OUT_QUEUE);
        let (merged_tx, mut merged) = mpsc::channel::<TailBatch>(OUT_QUEUE);
        for mut sub in live {
            let merged_tx = merged_tx.clone();
            tokio::spawn(async move {
                while let Some(b) = sub.recv().await {
                    if merged_tx.send(b).await.is_err() {
                        return;
                    }
                }
            });
        }
        drop(merged_tx);
        let delay = req.delay_for;
        tokio::spawn(async move {
            if !first.streams.is_empty() && tx.send(first).await.is_err() {
                return;
            }
            while let Some(b) = merged.recv().await {
                let mut batch = b;
                if !delay.is_zero() {
                    // Hold entries for `delay_for`, so late ones can be sent in order.
                    let deadline = tokio::time::Instant::now() + delay;
                    while let Ok(Some(more)) = tokio::time::timeout_at(deadline, merged.recv()).await {
                        merge_into(&mut batch, more);
                    }
                } else {
                    // Take what is already queued, without waiting.
                    while let Ok(more) = merged.try_recv() {
                        merge_into(&mut batch, more);
                    }
                }
                let batch = finish(batch, &seen);
                if (batch.streams.is_empty() && batch.dropped.is_empty()) || tx.send(batch).await.is_ok() {
                    continue;
                }
                return;
            }
        });
        Ok(rx)
    }
}
