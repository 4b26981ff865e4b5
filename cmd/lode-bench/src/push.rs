//! The push phase: `clients` concurrent senders, each owning disjoint streams, post bodies to
//! `/loki/api/v1/push` one at a time (so each holds one connection), optionally paced to a line
//! rate, until their share of the volume is sent or the duration is over.
//!
//! Bodies are generated before the clock starts as far as the volume is known and fits in
//! `pregen_mb`; the rest (a duration-only run, or a very large one) comes from one generator
//! thread per client through a small bounded channel, so memory stays bounded either way.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::mpsc;

use crate::Config;
use crate::encode::{Body, Encoding, encode};
use crate::generate::ClientGen;

/// Bodies a streaming generator may run ahead of its sender.
const CHANNEL_BODIES: usize = 16;
/// Bodies prefilled per client when the run is bounded by time only.
const PREFILL_BODIES: usize = 8;

/// What the push phase measured.
#[derive(Debug, Clone, Default)]
pub struct PushOutcome {
    /// From the first request to the last response.
    pub wall: Duration,
    /// Time spent generating bodies before the clock started.
    pub pregen: Duration,
    pub pregenerated_bodies: u64,
    pub requests: u64,
    /// Lines and raw line bytes of requests answered 2xx.
    pub ok_lines: u64,
    pub ok_raw_bytes: u64,
    /// Lines in all requests sent, whatever the answer.
    pub sent_lines: u64,
    /// Encoded body bytes sent.
    pub body_bytes: u64,
    pub latencies_us: Vec<u64>,
    /// Non-2xx answers by status.
    pub status_errors: BTreeMap<u16, u64>,
    /// Requests that got no HTTP answer (connect, reset, timeout).
    pub transport_errors: u64,
    pub first_error: Option<String>,
    /// Time range of the lines sent (ns), for the query phase.
    pub min_ts: i64,
    pub max_ts: i64,
}

impl PushOutcome {
    fn merge(&mut self, o: PushOutcome) {
        self.requests += o.requests;
        self.ok_lines += o.ok_lines;
        self.ok_raw_bytes += o.ok_raw_bytes;
        self.sent_lines += o.sent_lines;
        self.body_bytes += o.body_bytes;
        self.latencies_us.extend(o.latencies_us);
        for (k, v) in o.status_errors {
            *self.status_errors.entry(k).or_default() += v;
        }
        self.transport_errors += o.transport_errors;
        if self.first_error.is_none() {
            self.first_error = o.first_error;
        }
        if o.requests > 0 {
            self.min_ts = if self.min_ts == 0 {
                o.min_ts
            } else {
                self.min_ts.min(o.min_ts)
            };
            self.max_ts = self.max_ts.max(o.max_ts);
        }
    }
}

/// Splits `total` over `clients`, the remainder to the first ones.
fn share(total: u64, client: usize, clients: usize) -> u64 {
    let c = clients as u64;
    total / c + u64::from((client as u64) < total % c)
}

/// Where one sender takes its bodies from.
struct Source {
    ready: VecDeque<Body>,
    more: Option<mpsc::Receiver<Body>>,
}

impl Source {
    async fn next(&mut self, deadline: Option<tokio::time::Instant>) -> Option<Body> {
        if let Some(b) = self.ready.pop_front() {
            return Some(b);
        }
        let rx = self.more.as_mut()?;
        match deadline {
            Some(d) => tokio::time::timeout_at(d, rx.recv()).await.ok().flatten(),
            None => rx.recv().await,
        }
    }
}

/// Generates each client's bodies up front (in parallel, one thread per client) and starts a
/// generator thread for any remainder.
fn prepare(cfg: &Config) -> (Vec<Source>, Vec<std::thread::JoinHandle<()>>, Duration) {
    let clients = cfg.clients;
    let rate_lines = match (cfg.rate > 0.0, cfg.duration) {
        (true, Some(d)) => Some((cfg.rate * d.as_secs_f64()).ceil() as u64),
        _ => None,
    };
    let lines_total = match (cfg.lines, rate_lines) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let bytes_total = cfg.mb.map(|mb| (mb * 1e6) as u64);
    let bounded = lines_total.is_some() || bytes_total.is_some();
    let pregen_cap = (cfg.pregen_mb * 1e6 / clients as f64) as u64;
    let started = Instant::now();
    let prepared: Vec<(ClientGen, VecDeque<Body>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                let lines = lines_total.map_or(u64::MAX, |t| share(t, c, clients));
                let bytes = bytes_total.map_or(u64::MAX, |t| share(t, c, clients));
                let mut g = ClientGen::new(&cfg.workload, c, clients, lines, bytes);
                let encoding = cfg.encoding;
                scope.spawn(move || {
                    let mut ready = VecDeque::new();
                    let mut size = 0u64;
                    while size < pregen_cap && (bounded || ready.len() < PREFILL_BODIES) {
                        let Some(batch) = g.next_batch() else { break };
                        let body = encode(&batch, encoding);
                        size += body.data.len() as u64;
                        ready.push_back(body);
                    }
                    (g, ready)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let pregen = started.elapsed();
    let mut threads = Vec::new();
    let sources = prepared
        .into_iter()
        .map(|(mut g, ready)| {
            let more = (!g.exhausted()).then(|| {
                let (tx, rx) = mpsc::channel::<Body>(CHANNEL_BODIES);
                let encoding: Encoding = cfg.encoding;
                // Ends when the budget is used up or the sender hangs up (deadline reached).
                threads.push(std::thread::spawn(move || {
                    while let Some(batch) = g.next_batch() {
                        if tx.blocking_send(encode(&batch, encoding)).is_err() {
                            break;
                        }
                    }
                }));
                rx
            });
            Source { ready, more }
        })
        .collect();
    (sources, threads, pregen)
}

/// Runs the push phase; `on_start`/`on_stop` bracket the timed part (the CPU readings).
pub async fn run(cfg: &Config, http: &reqwest::Client, mut on_clock: impl FnMut()) -> anyhow::Result<PushOutcome> {
    let (sources, threads, pregen) = prepare(cfg);
    let pregenerated: u64 = sources.iter().map(|s| s.ready.len() as u64).sum();
    let urls: Vec<String> = cfg
        .push_urls()
        .iter()
        .map(|u| format!("{u}/loki/api/v1/push"))
        .collect();
    let rate_per_client = cfg.rate / cfg.clients as f64;
    on_clock();
    let start = tokio::time::Instant::now();
    let deadline = cfg.duration.map(|d| start + d);
    let mut tasks = Vec::new();
    for (i, mut source) in sources.into_iter().enumerate() {
        let http = http.clone();
        let url = urls[i % urls.len()].clone();
        let tenant = cfg.tenant.clone();
        let content_type = cfg.encoding.content_type();
        tasks.push(tokio::spawn(async move {
            let mut out = PushOutcome::default();
            loop {
                if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                    break;
                }
                let Some(body) = source.next(deadline).await else { break };
                if rate_per_client > 0.0 {
                    let due = start + Duration::from_secs_f64(out.sent_lines as f64 / rate_per_client);
                    if deadline.is_some_and(|d| due >= d) {
                        break;
                    }
                    tokio::time::sleep_until(due).await;
                }
                let mut req = http
                    .post(&url)
                    .header("Content-Type", content_type)
                    .body(body.data.clone());
                if let Some(t) = &tenant {
                    req = req.header("X-Scope-OrgID", t);
                }
                let sent = Instant::now();
                let result = match req.send().await {
                    Ok(resp) => {
                        let status = resp.status();
                        let text = resp.text().await.unwrap_or_default();
                        Ok((status, text))
                    }
                    Err(e) => Err(e),
                };
                out.latencies_us.push(sent.elapsed().as_micros() as u64);
                out.requests += 1;
                out.sent_lines += body.lines;
                out.body_bytes += body.data.len() as u64;
                out.min_ts = if out.min_ts == 0 {
                    body.min_ts
                } else {
                    out.min_ts.min(body.min_ts)
                };
                out.max_ts = out.max_ts.max(body.max_ts);
                match result {
                    Ok((status, _)) if status.is_success() => {
                        out.ok_lines += body.lines;
                        out.ok_raw_bytes += body.raw_bytes;
                    }
                    Ok((status, text)) => {
                        *out.status_errors.entry(status.as_u16()).or_default() += 1;
                        out.first_error
                            .get_or_insert_with(|| format!("{status}: {}", text.chars().take(300).collect::<String>()));
                    }
                    Err(e) => {
                        out.transport_errors += 1;
                        out.first_error.get_or_insert_with(|| format!("transport: {e}"));
                    }
                }
            }
            out
        }));
    }
    let mut total = PushOutcome::default();
    for t in tasks {
        total.merge(t.await.context("push task panicked")?);
    }
    total.wall = start.elapsed();
    on_clock();
    // The receivers are gone, so the generator threads stop at their next send.
    for t in threads {
        let _ = t.join();
    }
    total.pregen = pregen;
    total.pregenerated_bodies = pregenerated;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up() {
        for (total, clients) in [(10, 3), (2, 4), (1000, 1), (0, 2)] {
            let sum: u64 = (0..clients).map(|c| share(total, c, clients)).sum();
            assert_eq!(sum, total);
        }
        assert_eq!(share(10, 0, 3), 4);
        assert_eq!(share(10, 2, 3), 3);
    }
}
