//! `lode-bench`: parses flags, runs the workload against `--url`, prints the report (human
//! readable, or JSON with `--json`). Exits 1 when any push failed.

use std::time::Duration;

use anyhow::{Context, bail};
use lode_bench::{Config, Encoding, LineFormat};

const USAGE: &str = "usage: lode-bench --url=http://127.0.0.1:3100[,http://...] [bounds] [workload] [options]
bounds (at least one; the run stops at the first reached):
  --duration=30s        push for this long
  --mb=200              MB (10^6 bytes) of raw line text
  --lines=1000000       lines
workload:
  --streams=100                 base streams (distinct app label values)
  --label-cardinality=1         pod label values per base stream (streams x this = series)
  --format=logfmt|json|access   line format
  --batch-lines=1000            lines per push request
  --encoding=protobuf|json      snappy protobuf (logproto.PushRequest) or Loki v1 JSON
  --structured-metadata         add trace_id and span_id structured metadata
  --job=lode-bench              value of the job label (queries select on it)
options:
  --tenant=ID                   X-Scope-OrgID header
  --rate=0                      lines/s over all clients, 0 = as fast as the server answers
  --clients=2                   concurrent senders, one connection each
  --pid=PID[,PID...]            server processes: report their summed CPU time and memory from /proc
  --query-url=URL               where reads go (a cluster's querier); default: the first --url
  --queries=0                   run each query class this many times after the push
  --verify                      count the pushed lines back with count_over_time
  --timeout=60s                 per-request timeout
  --pregen-mb=1024              most body MB generated before the clock starts
  --json                        print the report as JSON";

fn parse_args(args: &[String]) -> anyhow::Result<(Config, bool)> {
    let mut cfg = Config::default();
    let mut json = false;
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        let Some(body) = a.strip_prefix("--").or_else(|| a.strip_prefix('-')) else {
            bail!("unexpected argument {a:?}\n{USAGE}");
        };
        let (key, inline) = match body.split_once('=') {
            Some((k, v)) => (k, Some(v.to_string())),
            None => (body, None),
        };
        match key {
            "help" | "h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            "json" | "verify" | "structured-metadata" => {
                let on = match inline.as_deref() {
                    None | Some("true") => true,
                    Some("false") => false,
                    Some(v) => bail!("--{key} takes true or false, got {v:?}"),
                };
                match key {
                    "json" => json = on,
                    "verify" => cfg.verify = on,
                    _ => cfg.workload.structured_metadata = on,
                }
                i += 1;
                continue;
            }
            _ => {}
        }
        let value = match inline {
            Some(v) => v,
            None => {
                i += 1;
                args.get(i)
                    .cloned()
                    .with_context(|| format!("flag --{key} needs a value\n{USAGE}"))?
            }
        };
        let v = value.as_str();
        let num = |what: &str| -> anyhow::Result<f64> {
            v.parse::<f64>()
                .with_context(|| format!("--{what} needs a number, got {v:?}"))
        };
        let int = |what: &str| -> anyhow::Result<u64> {
            v.parse::<u64>()
                .with_context(|| format!("--{what} needs a whole number, got {v:?}"))
        };
        let dur = || -> anyhow::Result<Duration> { lode_model::time::parse_duration(v).map_err(anyhow::Error::msg) };
        match key {
            "url" => cfg.url = v.trim_end_matches('/').to_string(),
            "query-url" => cfg.query_url = Some(v.trim_end_matches('/').to_string()),
            "tenant" => cfg.tenant = Some(v.to_string()),
            "job" => cfg.workload.job = v.to_string(),
            "streams" => cfg.workload.streams = int(key)? as usize,
            "label-cardinality" => cfg.workload.label_cardinality = int(key)? as usize,
            "batch-lines" => cfg.workload.batch_lines = int(key)? as usize,
            "format" => {
                cfg.workload.format =
                    LineFormat::parse(v).with_context(|| format!("--format is logfmt, json or access, got {v:?}"))?
            }
            "encoding" => {
                cfg.encoding =
                    Encoding::parse(v).with_context(|| format!("--encoding is json or protobuf, got {v:?}"))?
            }
            "rate" => cfg.rate = num(key)?,
            "duration" => cfg.duration = Some(dur()?),
            "mb" => cfg.mb = Some(num(key)?),
            "lines" => cfg.lines = Some(int(key)?),
            "clients" => cfg.clients = int(key)? as usize,
            "pid" => {
                cfg.pids = v
                    .split(',')
                    .map(|p| {
                        p.trim()
                            .parse::<u32>()
                            .with_context(|| format!("--pid needs process ids, got {v:?}"))
                    })
                    .collect::<anyhow::Result<_>>()?
            }
            "queries" => cfg.queries = int(key)? as usize,
            "timeout" => cfg.timeout = dur()?,
            "pregen-mb" => cfg.pregen_mb = num(key)?,
            _ => bail!("unknown flag --{key}\n{USAGE}"),
        }
        i += 1;
    }
    cfg.validate()?;
    Ok((cfg, json))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cfg, json) = parse_args(&args)?;
    let report = lode_bench::run(&cfg).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report.to_json())?);
    } else {
        print!("{}", report.human());
    }
    if report.errors() > 0 {
        std::process::exit(1);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn flags_in_both_forms() {
        let (cfg, json) = parse_args(&args(
            "--url=http://h:1/ --mb 5 --duration=2s --encoding json --format=access --json --streams=4 --label-cardinality 3 --clients=6",
        ))
        .expect("parses");
        assert!(json);
        assert_eq!(cfg.url, "http://h:1");
        assert_eq!(cfg.mb, Some(5.0));
        assert_eq!(cfg.duration, Some(Duration::from_secs(2)));
        assert_eq!(cfg.encoding, Encoding::Json);
        assert_eq!(cfg.workload.format, LineFormat::Access);
        assert_eq!(cfg.workload.series(), 12);
    }

    #[test]
    fn refuses_unbounded_and_bad_values() {
        assert!(parse_args(&args("--url=http://h:1")).is_err(), "no bound");
        assert!(parse_args(&args("--lines=10 --format=xml")).is_err());
        assert!(parse_args(&args("--lines=10 --streams=1 --clients=2")).is_err());
        assert!(parse_args(&args("--lines=10 --bogus=1")).is_err());
        assert!(parse_args(&args("--lines")).is_err());
        assert!(parse_args(&args("--lines=10 --pid=12,x")).is_err());
        assert!(parse_args(&args("--lines=10 --url=http://a:1,ftp://b:2")).is_err());
    }

    #[test]
    fn a_cluster_spreads_pushes_and_reads_from_its_querier() {
        let (cfg, _) = parse_args(&args(
            "--lines=10 --url=http://d1:1,http://d2:2/ --query-url=http://q:3/ --pid=10,11,12",
        ))
        .expect("parses");
        assert_eq!(cfg.push_urls(), ["http://d1:1", "http://d2:2"]);
        assert_eq!(cfg.read_url(), "http://q:3");
        assert_eq!(cfg.pids, [10, 11, 12]);
        let (cfg, _) = parse_args(&args("--lines=10 --url=http://one:1")).expect("parses");
        assert_eq!(cfg.read_url(), "http://one:1");
    }
}
