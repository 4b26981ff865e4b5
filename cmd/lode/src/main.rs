//! `lode`: one binary for every role. Parses `-config.file=` (with `-config.expand-env=true`,
//! `${VAR}` references in it come from the environment) and flag overrides, sets up
//! logging, starts the node and shuts it down gracefully (flushing everything) on SIGTERM or
//! SIGINT.

use anyhow::{Context, bail};
use lode_app::{Config, Node};

const USAGE: &str = "usage: lode [-config.file=PATH] [-config.expand-env=false]
            [-target=all|distributor,ingester,querier]
            [-server.http-listen-port=3100] [-server.http-listen-address=0.0.0.0]
            [-server.grpc-listen-port=9095] [-server.grpc-listen-address=0.0.0.0]
            [-common.path-prefix=DIR] [-common.instance-id=ID] [-common.replication-factor=N]
            [-memberlist.join=HOST:PORT,...] [-memberlist.bind-port=7946] [-memberlist.bind-addr=ADDR]
            [-auth.enabled=false] [-log.level=info] [-log.format=logfmt]
            [-ingester.flush-check-period=30s]
            [-validation.discover-service-name=a,b,...] [-validation.discover-log-levels=true]";

fn parse_args() -> anyhow::Result<Config> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut flags: Vec<(String, String)> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        let Some(body) = a.strip_prefix("--").or_else(|| a.strip_prefix('-')) else {
            bail!("unexpected argument {a:?}\n{USAGE}");
        };
        if body == "help" || body == "h" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        match body.split_once('=') {
            Some((k, v)) => flags.push((k.to_string(), v.to_string())),
            // Boolean flags may stand alone, as with Go's flag package.
            None if body == "auth.enabled" || body == lode_app::EXPAND_ENV_FLAG => {
                flags.push((body.to_string(), "true".to_string()))
            }
            None => {
                i += 1;
                let v = args
                    .get(i)
                    .with_context(|| format!("flag -{body} needs a value\n{USAGE}"))?;
                flags.push((body.to_string(), v.clone()));
            }
        }
        i += 1;
    }
    // -config.file and -config.expand-env are read first, wherever they are on the line.
    let mut cfg = Config::from_file_flags(&flags, lode_app::process_env)?;
    for (k, v) in flags
        .iter()
        .filter(|(k, _)| k != lode_app::FILE_FLAG && k != lode_app::EXPAND_ENV_FLAG)
    {
        if !cfg.apply_flag(k, v)? {
            bail!("unknown flag -{k}\n{USAGE}");
        }
    }
    Ok(cfg)
}

fn init_logging(cfg: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cfg.server.log_level));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if cfg.server.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term => {},
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cfg = parse_args()?;
    init_logging(&cfg);
    let node = Node::start(cfg).await?;
    shutdown_signal().await;
    tracing::info!("shutting down: flushing in-memory chunks");
    node.shutdown().await?;
    tracing::info!("stopped");
    Ok(())
}
