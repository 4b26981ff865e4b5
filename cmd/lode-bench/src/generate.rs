//! Workload generation: stream label sets, log lines in three formats (logfmt and JSON
//! application lines, nginx-style access log), optional structured metadata, and per-client
//! batches whose timestamps are near now and strictly increasing per stream.
//!
//! Generation is deterministic (a seeded SplitMix64), so two runs with the same flags push the
//! same lines; only the timestamps differ.

use std::fmt::Write as _;

/// The needle `|=` queries look for; one line in [`NEEDLE_EVERY`] carries it.
pub const NEEDLE: &str = "needle-7f3a";
/// How often (in line sequence numbers) the needle appears.
pub const NEEDLE_EVERY: u64 = 100_000;

/// The `| pattern` expression that parses [`LineFormat::Access`] lines.
pub const ACCESS_PATTERN: &str =
    r#"<ip> - <user> [<time>] "<method> <path> <protocol>" <status> <size> "<referer>" "<agent>" <duration>"#;

const LEVELS: [&str; 11] = [
    "info", "info", "info", "info", "info", "info", "info", "info", "debug", "warn", "error",
];
const METHODS: [&str; 8] = ["GET", "GET", "GET", "GET", "GET", "POST", "PUT", "DELETE"];
const PATHS: [&str; 6] = [
    "/api/v1/users",
    "/api/v1/orders",
    "/healthz",
    "/api/v1/cart",
    "/static/app.js",
    "/api/v1/search",
];
const AGENTS: [&str; 3] = [
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "curl/8.5.0",
    "Go-http-client/1.1",
];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// SplitMix64: small, fast, good enough for synthetic logs, and no dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// A value in `0..n` (`n > 0`); the modulo bias is irrelevant here.
    pub fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        self.next_u64() % n
    }
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
}

/// The shape of the generated lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineFormat {
    /// `level=info caller=handler.go:42 msg="request served" method=GET ...`
    Logfmt,
    /// `{"level":"info","caller":"handler.go:42","msg":"request served",...}`
    Json,
    /// nginx combined log format plus the request time.
    Access,
}

impl LineFormat {
    pub fn parse(s: &str) -> Option<LineFormat> {
        match s {
            "logfmt" => Some(LineFormat::Logfmt),
            "json" => Some(LineFormat::Json),
            "access" => Some(LineFormat::Access),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            LineFormat::Logfmt => "logfmt",
            LineFormat::Json => "json",
            LineFormat::Access => "access",
        }
    }
}

/// Appends one line of `format` for sequence number `seq` at `ts_ns` to `out`.
pub fn write_line(format: LineFormat, rng: &mut Rng, ts_ns: i64, seq: u64, out: &mut String) {
    let level = *rng.pick(&LEVELS);
    let method = *rng.pick(&METHODS);
    let path = *rng.pick(&PATHS);
    let status = if rng.below(10) == 0 { 500 } else { 200 };
    let duration_ms = 1 + rng.below(900);
    let bytes = 100 + rng.below(90_000);
    let user = 1 + rng.below(5000);
    let trace = rng.next_u64();
    let caller = 10 + rng.below(390);
    let needle = seq % NEEDLE_EVERY == 7;
    // Writing to a String cannot fail; the results are ignored for that reason.
    match format {
        LineFormat::Logfmt => {
            let msg = if needle {
                "request served needle-7f3a"
            } else {
                "request served"
            };
            let _ = write!(
                out,
                "level={level} caller=handler.go:{caller} msg=\"{msg}\" method={method} path={path} \
                 status={status} duration={duration_ms}ms bytes={bytes} user_id=u{user} \
                 trace_id={trace:016x} seq={seq}"
            );
        }
        LineFormat::Json => {
            let msg = if needle {
                "request served needle-7f3a"
            } else {
                "request served"
            };
            let _ = write!(
                out,
                "{{\"level\":\"{level}\",\"caller\":\"handler.go:{caller}\",\"msg\":\"{msg}\",\
                 \"method\":\"{method}\",\"path\":\"{path}\",\"status\":{status},\
                 \"duration_ms\":{duration_ms},\"bytes\":{bytes},\"user_id\":\"u{user}\",\
                 \"trace_id\":\"{trace:016x}\",\"seq\":{seq}}}"
            );
        }
        LineFormat::Access => {
            let ip = rng.next_u64();
            let agent = *rng.pick(&AGENTS);
            let query = if needle { "?q=needle-7f3a" } else { "" };
            let _ = write!(out, "10.{}.{}.{} - - [", (ip >> 16) & 0xff, (ip >> 8) & 0xff, ip & 0xff);
            write_clf_time(ts_ns, out);
            let _ = write!(
                out,
                "] \"{method} {path}{query} HTTP/1.1\" {status} {bytes} \"-\" \"{agent}\" {}.{:03}",
                duration_ms / 1000,
                duration_ms % 1000
            );
        }
    }
}

/// Common Log Format time (`24/Nov/2026:10:11:12 +0000`) of a Unix-ns time, without a date
/// library (Howard Hinnant's days-to-civil).
pub fn write_clf_time(ns: i64, out: &mut String) {
    let secs = ns.div_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let _ = write!(
        out,
        "{d:02}/{}/{y:04}:{:02}:{:02}:{:02} +0000",
        MONTHS[(m - 1) as usize],
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    );
}

/// What to generate, shared by all clients.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Value of the `job` label of every stream (queries select on it).
    pub job: String,
    /// Base streams (distinct `app` values).
    pub streams: usize,
    /// Values of the `pod` label per base stream: `streams * label_cardinality` series.
    pub label_cardinality: usize,
    pub format: LineFormat,
    /// Lines per push request.
    pub batch_lines: usize,
    /// Adds `trace_id` and `span_id` structured metadata to every entry.
    pub structured_metadata: bool,
}

impl Workload {
    /// Number of distinct label sets (active streams on the server).
    pub fn series(&self) -> usize {
        self.streams * self.label_cardinality
    }

    /// The sorted label set of series `i`.
    pub fn labels(&self, i: usize) -> Vec<(String, String)> {
        let app = i / self.label_cardinality.max(1);
        let pod = i % self.label_cardinality.max(1);
        vec![
            ("app".to_string(), format!("app-{app}")),
            ("env".to_string(), "bench".to_string()),
            ("job".to_string(), self.job.clone()),
            ("pod".to_string(), format!("app-{app}-{pod}")),
        ]
    }
}

/// One generated entry.
#[derive(Debug, Clone, PartialEq)]
pub struct GenEntry {
    pub ts: i64,
    pub line: String,
    pub metadata: Vec<(&'static str, String)>,
}

/// One stream's entries in a batch.
#[derive(Debug, Clone)]
pub struct StreamBatch {
    pub labels: std::sync::Arc<Vec<(String, String)>>,
    pub entries: Vec<GenEntry>,
}

/// The contents of one push request, before encoding.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub streams: Vec<StreamBatch>,
    pub lines: u64,
    /// Sum of the line lengths (the "raw bytes" throughput is measured in).
    pub raw_bytes: u64,
    pub min_ts: i64,
    pub max_ts: i64,
}

/// Now, in Unix nanoseconds.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// One client's generator. Clients own disjoint series (`i % clients == client`), so each
/// stream's entries reach the server in order however the clients interleave. Stops when its
/// share of the line or byte budget is used up (`u64::MAX` = unbounded).
#[derive(Debug)]
pub struct ClientGen {
    workload: Workload,
    series: Vec<std::sync::Arc<Vec<(String, String)>>>,
    cursor: usize,
    rng: Rng,
    clients: u64,
    next_seq: u64,
    last_ts: i64,
    lines_left: u64,
    bytes_left: u64,
}

impl ClientGen {
    pub fn new(workload: &Workload, client: usize, clients: usize, lines: u64, bytes: u64) -> ClientGen {
        let series = (client..workload.series())
            .step_by(clients.max(1))
            .map(|i| std::sync::Arc::new(workload.labels(i)))
            .collect();
        ClientGen {
            workload: workload.clone(),
            series,
            cursor: 0,
            rng: Rng::new(0x5eed_0000 + client as u64),
            clients: clients as u64,
            next_seq: client as u64,
            last_ts: 0,
            lines_left: lines,
            bytes_left: bytes,
        }
    }

    pub fn exhausted(&self) -> bool {
        self.lines_left == 0 || self.bytes_left == 0 || self.series.is_empty()
    }

    /// The next request's contents: `batch_lines` lines spread round-robin over this client's
    /// series, or fewer at the end of the budget; `None` once the budget is used up.
    pub fn next_batch(&mut self) -> Option<Batch> {
        if self.exhausted() {
            return None;
        }
        let n = self.series.len();
        let slots = n.min(self.workload.batch_lines.max(1));
        let mut streams: Vec<StreamBatch> = (0..slots)
            .map(|s| StreamBatch {
                labels: self.series[(self.cursor + s) % n].clone(),
                entries: Vec::with_capacity(self.workload.batch_lines / slots + 1),
            })
            .collect();
        self.cursor = (self.cursor + slots) % n;
        // Near now, and after every earlier timestamp of this client (hence of each stream).
        let base = now_ns().max(self.last_ts + 1);
        let mut batch = Batch {
            min_ts: base,
            ..Batch::default()
        };
        for i in 0..self.workload.batch_lines.max(1) {
            if self.exhausted() {
                break;
            }
            let ts = base + i as i64;
            let seq = self.next_seq;
            self.next_seq += self.clients;
            let mut line = String::with_capacity(200);
            write_line(self.workload.format, &mut self.rng, ts, seq, &mut line);
            let metadata = if self.workload.structured_metadata {
                vec![
                    (
                        "trace_id",
                        format!("{:032x}", u128::from(self.rng.next_u64()) << 64 | u128::from(seq)),
                    ),
                    ("span_id", format!("{:016x}", self.rng.next_u64())),
                ]
            } else {
                Vec::new()
            };
            let len = line.len() as u64;
            self.lines_left -= 1;
            self.bytes_left = self.bytes_left.saturating_sub(len);
            batch.lines += 1;
            batch.raw_bytes += len;
            batch.max_ts = ts;
            self.last_ts = ts;
            streams[i % slots].entries.push(GenEntry { ts, line, metadata });
        }
        streams.retain(|s| !s.entries.is_empty());
        batch.streams = streams;
        Some(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(format: LineFormat, n: u64) -> Vec<String> {
        let mut rng = Rng::new(1);
        (0..n)
            .map(|seq| {
                let mut s = String::new();
                write_line(format, &mut rng, 1_795_000_000_000_000_000 + seq as i64, seq, &mut s);
                s
            })
            .collect()
    }

    #[test]
    fn json_lines_are_valid_json_objects() {
        for l in lines(LineFormat::Json, 200) {
            let v: serde_json::Value = serde_json::from_str(&l).expect("valid JSON");
            assert!(
                v["level"].is_string() && v["status"].is_u64() && v["trace_id"].is_string(),
                "{l}"
            );
        }
        let needle = &lines(LineFormat::Json, 8)[7];
        assert!(needle.contains(NEEDLE));
    }

    #[test]
    fn logfmt_lines_parse_with_the_logql_logfmt_parser() {
        use lode_logql::stages::{LabelsBuilder, LogfmtParser, Stage};
        let mut p = LogfmtParser::new(true, false, vec![]);
        for mut l in lines(LineFormat::Logfmt, 200) {
            let mut lbs = LabelsBuilder::new(vec![("job".into(), "x".into())]);
            assert!(p.process(0, &mut l, &mut lbs));
            assert!(!lbs.has_err(), "{l}: {:?}", lbs.err());
            assert!(lbs.get("level").is_some_and(|v| LEVELS.contains(&v)), "{l}");
            assert!(lbs.get("msg").is_some_and(|v| v.starts_with("request served")), "{l}");
            assert!(lbs.get("status").is_some());
        }
    }

    #[test]
    fn access_lines_parse_with_the_logql_pattern_parser() {
        use lode_logql::stages::{LabelsBuilder, PatternParser, Stage};
        let mut p = PatternParser::new(ACCESS_PATTERN).expect("pattern compiles");
        let ls = lines(LineFormat::Access, 200);
        for l in &ls {
            let mut line = l.clone();
            let mut lbs = LabelsBuilder::new(vec![("job".into(), "x".into())]);
            assert!(p.process(0, &mut line, &mut lbs));
            assert!(!lbs.has_err(), "{l}");
            assert!(matches!(lbs.get("status"), Some("200" | "500")), "{l}");
            assert!(lbs.get("method").is_some_and(|m| METHODS.contains(&m)), "{l}");
            assert_eq!(lbs.get("protocol"), Some("HTTP/1.1"), "{l}");
            assert!(lbs.get("time").is_some_and(|t| t.ends_with(" +0000")), "{l}");
            assert!(lbs.get("duration").is_some_and(|d| d.parse::<f64>().is_ok()), "{l}");
        }
        assert!(ls[7].contains(NEEDLE));
    }

    #[test]
    fn clf_time_matches_known_dates() {
        let mut s = String::new();
        write_clf_time(0, &mut s);
        assert_eq!(s, "01/Jan/1970:00:00:00 +0000");
        s.clear();
        // 2024-02-29T23:59:59Z
        write_clf_time(1_709_251_199_000_000_000, &mut s);
        assert_eq!(s, "29/Feb/2024:23:59:59 +0000");
    }

    #[test]
    fn batches_respect_budget_ownership_and_order() {
        let w = Workload {
            job: "t".into(),
            streams: 5,
            label_cardinality: 2,
            format: LineFormat::Logfmt,
            batch_lines: 7,
            structured_metadata: true,
        };
        assert_eq!(w.series(), 10);
        let mut g = ClientGen::new(&w, 1, 3, 30, u64::MAX);
        let mut total = 0;
        let mut last: std::collections::HashMap<String, i64> = Default::default();
        while let Some(b) = g.next_batch() {
            assert!(b.lines <= 7);
            total += b.lines;
            for s in &b.streams {
                let pod = s.labels.iter().find(|(k, _)| k == "pod").map(|(_, v)| v.clone());
                let pod = pod.expect("pod label");
                // Client 1 of 3 owns series 1, 4, 7: pods app-0-1, app-2-0, app-3-1.
                assert!(["app-0-1", "app-2-0", "app-3-1"].contains(&pod.as_str()), "{pod}");
                for e in &s.entries {
                    assert!(last.get(&pod).is_none_or(|t| *t < e.ts), "ordered per stream");
                    last.insert(pod.clone(), e.ts);
                    assert_eq!(e.metadata.len(), 2);
                }
            }
            assert!(b.min_ts <= b.max_ts);
        }
        assert_eq!(total, 30);
        let mut g = ClientGen::new(&w, 0, 1, u64::MAX, 1000);
        let mut bytes = 0;
        while let Some(b) = g.next_batch() {
            bytes += b.raw_bytes;
        }
        assert!(
            (1000..1300).contains(&bytes),
            "stops right after the byte budget: {bytes}"
        );
    }
}
