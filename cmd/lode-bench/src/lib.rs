//! `lode-bench`: a load tool for any Loki-compatible push and query API, so the same run
//! measures Lode (single binary or cluster) and Loki.
//!
//! A run is: [`generate`] a bounded workload (streams x label cardinality, logfmt / JSON /
//! access-log lines, optional structured metadata), [`encode`] it as Loki v1 JSON or snappy
//! protobuf, [`push`] it from concurrent clients (at a line rate or as fast as the server
//! answers) while timing every request, then optionally read it back and time query classes
//! ([`query`]). With a server pid, [`procfs`] reads the server's CPU time and memory so the
//! generator's own cost never counts. [`report`] renders the result for people or as JSON.

pub mod encode;
pub mod generate;
pub mod procfs;
pub mod push;
pub mod query;
pub mod report;
pub mod stats;

use std::time::Duration;

use anyhow::bail;

pub use encode::Encoding;
pub use generate::{LineFormat, Workload};
pub use report::Report;

/// Everything a run needs; `main` fills it from flags.
#[derive(Debug, Clone)]
pub struct Config {
    /// Base URL of the server, e.g. `http://127.0.0.1:3100`; a comma list (a cluster's
    /// distributors) spreads the senders over them, sender `i` on URL `i mod n`.
    pub url: String,
    /// Where the read-back and queries go (a cluster's querier); none: the first `url`.
    pub query_url: Option<String>,
    /// `X-Scope-OrgID`; none sends no header.
    pub tenant: Option<String>,
    pub workload: Workload,
    pub encoding: Encoding,
    /// Lines per second over all clients; 0 = as fast as the server answers.
    pub rate: f64,
    /// Bounds: the run stops at the first one reached. At least one is required.
    pub duration: Option<Duration>,
    /// MB (10^6 bytes) of raw line text.
    pub mb: Option<f64>,
    pub lines: Option<u64>,
    /// Concurrent senders (one connection each).
    pub clients: usize,
    /// Server processes (a cluster's every member) to read CPU time and memory of from
    /// `/proc`, summed.
    pub pids: Vec<u32>,
    /// Runs of each query class after the push; 0 = no query phase.
    pub queries: usize,
    /// Count the pushed lines back with a `count_over_time` query.
    pub verify: bool,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Most body bytes (MB) generated before the clock starts; the rest is generated during
    /// the run on separate threads.
    pub pregen_mb: f64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            url: "http://127.0.0.1:3100".to_string(),
            query_url: None,
            tenant: None,
            workload: Workload {
                job: "lode-bench".to_string(),
                streams: 100,
                label_cardinality: 1,
                format: LineFormat::Logfmt,
                batch_lines: 1000,
                structured_metadata: false,
            },
            encoding: Encoding::Protobuf,
            rate: 0.0,
            duration: None,
            mb: None,
            lines: None,
            clients: 2,
            pids: Vec::new(),
            queries: 0,
            verify: false,
            timeout: Duration::from_secs(60),
            pregen_mb: 1024.0,
        }
    }
}

impl Config {
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.duration.is_none() && self.mb.is_none() && self.lines.is_none() {
            bail!("the run needs a bound: --duration, --mb or --lines");
        }
        if self.duration.is_some_and(|d| d.is_zero()) || self.mb.is_some_and(|m| m <= 0.0) || self.lines == Some(0) {
            bail!("--duration, --mb and --lines must be positive");
        }
        if self.workload.streams == 0 || self.workload.label_cardinality == 0 || self.workload.batch_lines == 0 {
            bail!("--streams, --label-cardinality and --batch-lines must be at least 1");
        }
        if self.clients == 0 || self.clients > self.workload.series() {
            bail!(
                "--clients must be between 1 and the number of streams ({}): clients own disjoint streams",
                self.workload.series()
            );
        }
        if !(self.rate >= 0.0 && self.rate.is_finite()) {
            bail!(
                "--rate must be a non-negative number of lines per second, got {}",
                self.rate
            );
        }
        for url in self.push_urls().iter().chain(self.query_url.as_ref()) {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                bail!("--url and --query-url must start with http:// or https://, got {url:?}");
            }
        }
        Ok(())
    }

    /// The push URLs of `url` (a comma list), without trailing slashes.
    pub fn push_urls(&self) -> Vec<String> {
        self.url
            .split(',')
            .map(|u| u.trim().trim_end_matches('/').to_string())
            .collect()
    }

    /// The base URL reads go to.
    pub fn read_url(&self) -> String {
        match &self.query_url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None => self.push_urls().swap_remove(0),
        }
    }
}

/// Runs the push phase, then the read-back and query phases if asked, and gathers the report.
pub async fn run(cfg: &Config) -> anyhow::Result<Report> {
    cfg.validate()?;
    let http = reqwest::Client::builder()
        .timeout(cfg.timeout)
        .pool_max_idle_per_host(cfg.clients)
        .build()?;
    let pids: Vec<String> = cfg.pids.iter().map(u32::to_string).collect();
    // Summed over every server process; unknown if any cannot be read.
    let server_cpu = || {
        (!pids.is_empty())
            .then(|| pids.iter().map(|p| procfs::cpu_seconds(p).ok()).sum::<Option<f64>>())
            .flatten()
    };
    let mut clock_cpu: Vec<(Option<f64>, f64)> = Vec::new();
    let outcome = push::run(cfg, &http, || {
        clock_cpu.push((server_cpu(), procfs::cpu_seconds("self").unwrap_or(0.0)));
    })
    .await?;
    let (server_cpu_s, bench_cpu_s) = match clock_cpu.as_slice() {
        [(s0, b0), (s1, b1)] => (s0.zip(*s1).map(|(a, b)| b - a), b1 - b0),
        _ => (None, 0.0),
    };
    let queryable_lines = if cfg.verify && outcome.requests > 0 {
        Some(query::count_lines(cfg, &http, outcome.min_ts, outcome.max_ts).await?)
    } else {
        None
    };
    let queries = if cfg.queries > 0 && outcome.requests > 0 {
        query::run(cfg, &http, outcome.min_ts, outcome.max_ts, cfg.queries, server_cpu).await
    } else {
        Vec::new()
    };
    let rss = (!pids.is_empty())
        .then(|| {
            pids.iter()
                .map(|p| procfs::rss_bytes(p).ok())
                .try_fold((0, 0), |(r, h), x| x.map(|(a, b)| (r + a, h + b)))
        })
        .flatten();
    Ok(Report::new(
        cfg,
        outcome,
        server_cpu_s,
        bench_cpu_s,
        rss,
        queryable_lines,
        queries,
    ))
}
