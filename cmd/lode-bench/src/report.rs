//! The run's results: a struct, a human-readable rendering and a JSON one (`--json`).
//! MB are 10^6 bytes of raw line text (what agents ship), not encoded body bytes.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::Config;
use crate::push::PushOutcome;
use crate::query::QueryResult;
use crate::stats::Summary;

#[derive(Debug, Clone)]
pub struct Report {
    pub url: String,
    pub encoding: &'static str,
    pub format: &'static str,
    pub series: usize,
    pub batch_lines: usize,
    pub clients: usize,
    pub rate: f64,
    pub wall_s: f64,
    pub pregen_s: f64,
    pub pregenerated_bodies: u64,
    pub requests: u64,
    pub ok_lines: u64,
    pub sent_lines: u64,
    pub raw_mb: f64,
    pub body_mb: f64,
    pub lines_per_s: f64,
    pub mb_per_s: f64,
    pub latency: Summary,
    pub status_errors: BTreeMap<u16, u64>,
    pub transport_errors: u64,
    pub first_error: Option<String>,
    pub server_cpu_s: Option<f64>,
    pub mb_per_server_cpu_s: Option<f64>,
    pub bench_cpu_s: f64,
    /// Server `(VmRSS, VmHWM)` in bytes after the run.
    pub server_rss: Option<(u64, u64)>,
    pub queryable_lines: Option<u64>,
    pub queries: Vec<QueryResult>,
}

impl Report {
    pub fn new(
        cfg: &Config,
        o: PushOutcome,
        server_cpu_s: Option<f64>,
        bench_cpu_s: f64,
        server_rss: Option<(u64, u64)>,
        queryable_lines: Option<u64>,
        queries: Vec<QueryResult>,
    ) -> Report {
        let wall = o.wall.as_secs_f64().max(1e-9);
        let raw_mb = o.ok_raw_bytes as f64 / 1e6;
        Report {
            url: cfg.url.clone(),
            encoding: cfg.encoding.name(),
            format: cfg.workload.format.name(),
            series: cfg.workload.series(),
            batch_lines: cfg.workload.batch_lines,
            clients: cfg.clients,
            rate: cfg.rate,
            wall_s: o.wall.as_secs_f64(),
            pregen_s: o.pregen.as_secs_f64(),
            pregenerated_bodies: o.pregenerated_bodies,
            requests: o.requests,
            ok_lines: o.ok_lines,
            sent_lines: o.sent_lines,
            raw_mb,
            body_mb: o.body_bytes as f64 / 1e6,
            lines_per_s: o.ok_lines as f64 / wall,
            mb_per_s: raw_mb / wall,
            latency: Summary::of_micros(o.latencies_us),
            status_errors: o.status_errors,
            transport_errors: o.transport_errors,
            first_error: o.first_error,
            server_cpu_s,
            mb_per_server_cpu_s: server_cpu_s.filter(|c| *c > 0.0).map(|c| raw_mb / c),
            bench_cpu_s,
            server_rss,
            queryable_lines,
            queries,
        }
    }

    /// Non-2xx answers plus transport errors.
    pub fn errors(&self) -> u64 {
        self.status_errors.values().sum::<u64>() + self.transport_errors
    }

    pub fn to_json(&self) -> Value {
        let errors: BTreeMap<String, u64> = self.status_errors.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        json!({
            "url": self.url,
            "encoding": self.encoding,
            "format": self.format,
            "streams": self.series,
            "batch_lines": self.batch_lines,
            "clients": self.clients,
            "rate": self.rate,
            "wall_s": self.wall_s,
            "pregen_s": self.pregen_s,
            "pregenerated_bodies": self.pregenerated_bodies,
            "requests": self.requests,
            "lines_ok": self.ok_lines,
            "lines_sent": self.sent_lines,
            "raw_mb": self.raw_mb,
            "body_mb": self.body_mb,
            "lines_per_s": self.lines_per_s,
            "mb_per_s": self.mb_per_s,
            "push_latency_ms": latency_json(&self.latency),
            "errors_by_status": errors,
            "transport_errors": self.transport_errors,
            "first_error": self.first_error,
            "server_cpu_s": self.server_cpu_s,
            "mb_per_server_cpu_s": self.mb_per_server_cpu_s,
            "bench_cpu_s": self.bench_cpu_s,
            "server_rss_bytes": self.server_rss.map(|r| r.0),
            "server_peak_rss_bytes": self.server_rss.map(|r| r.1),
            "queryable_lines": self.queryable_lines,
            "queries": self.queries.iter().map(|q| json!({
                "class": q.class.name,
                "query": q.class.logql,
                "runs": q.runs,
                "errors": q.errors,
                "first_error": q.first_error,
                "latency_ms": latency_json(&q.latency),
                "bytes_processed": q.bytes_processed,
                "lines_processed": q.lines_processed,
                "server_cpu_s": q.server_cpu_s,
            })).collect::<Vec<_>>(),
        })
    }

    pub fn human(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "lode-bench {} | {} lines, {} encoding | {} streams | {} lines/request | {} clients | rate {}",
            self.url,
            self.format,
            self.encoding,
            self.series,
            self.batch_lines,
            self.clients,
            if self.rate > 0.0 {
                format!("{} lines/s", self.rate)
            } else {
                "max".to_string()
            }
        );
        let _ = writeln!(
            s,
            "generated before the clock: {} bodies in {:.2}s",
            self.pregenerated_bodies, self.pregen_s
        );
        let _ = writeln!(
            s,
            "pushed      {} lines ({:.1} MB raw, {:.1} MB on the wire) in {} requests over {:.2}s",
            self.ok_lines, self.raw_mb, self.body_mb, self.requests, self.wall_s
        );
        let _ = writeln!(
            s,
            "throughput  {:.0} lines/s, {:.1} MB/s",
            self.lines_per_s, self.mb_per_s
        );
        let l = &self.latency;
        let _ = writeln!(
            s,
            "latency     p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
            l.p50_ms, l.p99_ms, l.p999_ms, l.max_ms
        );
        let by_status: Vec<String> = self.status_errors.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        let _ = writeln!(
            s,
            "errors      {} ({}; transport: {})",
            self.errors(),
            if by_status.is_empty() {
                "no HTTP errors".to_string()
            } else {
                by_status.join(", ")
            },
            self.transport_errors
        );
        if let Some(e) = &self.first_error {
            let _ = writeln!(s, "first error {e}");
        }
        if let Some(cpu) = self.server_cpu_s {
            let _ = writeln!(
                s,
                "server      {:.2} CPU-s, {} MB per server CPU-second",
                cpu,
                self.mb_per_server_cpu_s.map_or("-".to_string(), |m| format!("{m:.1}"))
            );
        }
        if let Some((rss, hwm)) = self.server_rss {
            let _ = writeln!(
                s,
                "server RSS  {:.1} MB after the run (peak {:.1} MB)",
                rss as f64 / 1e6,
                hwm as f64 / 1e6
            );
        }
        let _ = writeln!(s, "bench CPU   {:.2} s", self.bench_cpu_s);
        if let Some(n) = self.queryable_lines {
            let _ = writeln!(s, "read back   {n} of {} accepted lines queryable", self.ok_lines);
        }
        for q in &self.queries {
            let _ = writeln!(
                s,
                "query {:<12} p50 {:>8.1} ms  p99 {:>8.1} ms  {:>8.1} MB processed{}{}  {}",
                q.class.name,
                q.latency.p50_ms,
                q.latency.p99_ms,
                q.bytes_processed as f64 / 1e6,
                q.server_cpu_s
                    .map_or(String::new(), |c| format!(", {c:.2} server CPU-s")),
                if q.errors > 0 {
                    format!(", {} errors ({})", q.errors, q.first_error.as_deref().unwrap_or(""))
                } else {
                    String::new()
                },
                q.class.logql
            );
        }
        s
    }
}

fn latency_json(l: &Summary) -> Value {
    json!({"count": l.count, "p50": l.p50_ms, "p99": l.p99_ms, "p99_9": l.p999_ms, "max": l.max_ms, "mean": l.mean_ms})
}
