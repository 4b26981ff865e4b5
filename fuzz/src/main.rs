//! `lode-fuzz`: long local fuzz runs, and replays of saved failures.
//!
//! ```text
//! cargo run -p lode-fuzz --release -- <target|all> <seconds> [seed]
//! cargo run -p lode-fuzz --release -- replay <target> <file.hex>
//! cargo run -p lode-fuzz --release -- list
//! ```
//! Without a seed, one is taken from the clock and printed, so a run can be repeated.

use std::process::ExitCode;

use lode_fuzz::{Config, TARGETS, alloc::CountingAlloc, execute, parse_hex, run, target};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn usage() -> ExitCode {
    eprintln!("usage: lode-fuzz <target|all> <seconds> [seed] | replay <target> <file.hex> | list");
    eprintln!(
        "targets: {}",
        TARGETS.iter().map(|t| t.name).collect::<Vec<_>>().join(", ")
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cfg = Config::from_env();
    match args.as_slice() {
        ["list"] => {
            for t in TARGETS {
                println!("{}", t.name);
            }
            ExitCode::SUCCESS
        }
        ["replay", name, file] => {
            let Some(t) = target(name) else { return usage() };
            let input = match std::fs::read_to_string(file)
                .map_err(|e| e.to_string())
                .and_then(|s| parse_hex(&s))
            {
                Ok(i) => i,
                Err(e) => {
                    eprintln!("{file}: {e}");
                    return ExitCode::from(2);
                }
            };
            match execute(t, &input, &cfg) {
                Ok(accepted) => {
                    println!("{name}: no failure ({} bytes, accepted: {accepted})", input.len());
                    ExitCode::SUCCESS
                }
                Err(what) => {
                    println!("{name}: {what}");
                    ExitCode::FAILURE
                }
            }
        }
        [name, secs, rest @ ..] if rest.len() <= 1 => {
            let Ok(secs) = secs.parse::<f64>() else { return usage() };
            cfg.duration = std::time::Duration::from_secs_f64(secs.max(0.0));
            cfg.seed = match rest.first() {
                Some(s) => match s.parse() {
                    Ok(s) => s,
                    Err(_) => return usage(),
                },
                None => std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64),
            };
            let chosen: Vec<_> = if *name == "all" {
                TARGETS.iter().collect()
            } else {
                match target(name) {
                    Some(t) => vec![t],
                    None => return usage(),
                }
            };
            println!("seed {}", cfg.seed);
            let mut failed = false;
            for t in chosen {
                let report = run(t, &cfg);
                println!("{report}");
                failed |= !report.failures.is_empty();
            }
            if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
        }
        _ => usage(),
    }
}
