//! A fuzzer for every decoder of untrusted bytes in Lode, on the stable toolchain (no libFuzzer):
//! push bodies (JSON, protobuf, snappy), chunks, WAL files, index objects and LogQL text.
//!
//! Each [`Target`] is a function over `&[u8]`, a seed corpus built in code from valid inputs
//! ([`seeds`]), and optionally a checksum fixup. [`run`] mutates corpus inputs ([`mutate`]) in a
//! loop bounded by iterations and wall time and fails on any panic, on a single allocation over
//! [`Config::alloc_cap`] or a peak of live memory over [`Config::live_cap`] (measured by
//! [`alloc::CountingAlloc`], which the test and the binary install), and on an input slower
//! than [`Config::slow`]. Each failing input is written in hex under `target/fuzz-failures/`
//! and can be replayed with `cargo run -p lode-fuzz -- replay <target> <file>`.
//!
//! `cargo test -p lode-fuzz` runs every target for `LODE_FUZZ_SECONDS` (default 5) with a fixed
//! seed; `cargo run -p lode-fuzz --release -- <target|all> <seconds> [seed]` runs longer.

pub mod alloc;
pub mod mutate;
pub mod seeds;
pub mod targets;

use std::cell::RefCell;
use std::fmt::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::{Duration, Instant};

use mutate::Mutator;

/// One decoder under test.
pub struct Target {
    pub name: &'static str,
    /// Decodes the input; true when it was accepted (accepted inputs join the corpus).
    pub run: fn(&[u8]) -> bool,
    pub seeds: fn() -> Vec<Vec<u8>>,
    /// Recomputes checksums after mutation, so mutations get past them.
    pub fix: Option<fn(&mut [u8])>,
    /// Tokens of the input's syntax.
    pub dict: &'static [&'static [u8]],
    /// Mutated inputs are cut to this length.
    pub max_len: usize,
}

const JSON_DICT: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"\"",
    b"\\",
    b"\\u0000",
    b"\\ud800",
    b"\\u00e9",
    b"null",
    b"true",
    b"1e999",
    b"-0",
    b"\"streams\"",
    b"\"stream\"",
    b"\"values\"",
    b"\"labels\"",
    b"\"entries\"",
    b"\"ts\"",
    b"\"line\"",
    b"\"structuredMetadata\"",
    b"\"1700000000000000000\"",
    b"\"-1\"",
    b"\"99999999999999999999\"",
    b"\"2023-11-14T22:13:20Z\"",
    b"\xff",
    b"\xc3",
];

const LOGQL_DICT: &[&[u8]] = &[
    b"{",
    b"}",
    b"(",
    b")",
    b"[",
    b"]",
    b"\"",
    b"`",
    b"|",
    b"|=",
    b"!=",
    b"|~",
    b"!~",
    b"|>",
    b"!>",
    b"=~",
    b"=",
    b",",
    b" ",
    b"or",
    b"and",
    b"unless",
    b"by",
    b"without",
    b"on",
    b"ignoring",
    b"group_left",
    b"group_right",
    b"bool",
    b"offset",
    b"json",
    b"logfmt",
    b"regexp",
    b"pattern",
    b"unpack",
    b"line_format",
    b"label_format",
    b"drop",
    b"keep",
    b"decolorize",
    b"unwrap",
    b"duration",
    b"bytes",
    b"ip(",
    b"rate",
    b"count_over_time",
    b"sum",
    b"topk",
    b"quantile_over_time",
    b"label_replace",
    b"vector(",
    b"[5m]",
    b"1h",
    b"1.5",
    b"1e308",
    b"NaN",
    b"Inf",
    b"-",
    b"+",
    b"*",
    b"/",
    b"%",
    b"^",
    b"==",
    b">=",
    b"<",
    b"{{",
    b"}}",
    b".",
    b"\\",
    b"#",
    b"\n",
    b"--strict",
    b"--keep-empty",
    b"<_>",
    b"<x>",
    b"(?P<a>.)",
    b"$1",
    b"\xc3\xa9",
];

const PROTO_DICT: &[&[u8]] = &[
    b"\x0a",
    b"\x12",
    b"\x1a",
    b"\x08",
    b"\x10",
    b"\x22",
    b"{a=\"b\"}",
    b"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01",
];

/// Every target, by name.
pub const TARGETS: &[Target] = &[
    Target {
        name: "push_json",
        run: targets::push_json,
        seeds: seeds::push_json,
        fix: None,
        dict: JSON_DICT,
        max_len: 8 << 10,
    },
    Target {
        name: "push_protobuf",
        run: targets::push_protobuf,
        seeds: seeds::push_protobuf,
        fix: None,
        dict: PROTO_DICT,
        max_len: 8 << 10,
    },
    Target {
        name: "push_snappy",
        run: targets::push_snappy,
        seeds: seeds::push_snappy,
        fix: None,
        dict: &[],
        max_len: 8 << 10,
    },
    Target {
        name: "chunk",
        run: targets::chunk,
        seeds: seeds::chunk,
        fix: Some(targets::fix_chunk),
        dict: &[],
        max_len: 64 << 10,
    },
    Target {
        name: "wal",
        run: targets::wal,
        seeds: seeds::wal,
        fix: Some(targets::fix_wal),
        dict: &[],
        max_len: 16 << 10,
    },
    Target {
        name: "index",
        run: targets::index,
        seeds: seeds::index,
        fix: Some(targets::fix_index),
        dict: &[],
        max_len: 16 << 10,
    },
    Target {
        name: "logql",
        run: targets::logql,
        seeds: seeds::logql,
        fix: None,
        dict: LOGQL_DICT,
        max_len: 2 << 10,
    },
];

pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// Bounds and caps of a run.
#[derive(Debug, Clone)]
pub struct Config {
    pub duration: Duration,
    pub max_iterations: u64,
    pub seed: u64,
    /// Largest single allocation an input may cause.
    pub alloc_cap: usize,
    /// Largest peak of live bytes an input may cause.
    pub live_cap: usize,
    /// An input taking longer than this is a failure (quadratic behaviour, runaway loops).
    pub slow: Duration,
    pub failures_dir: PathBuf,
    /// Distinct failures after which the run stops.
    pub max_failures: usize,
}

impl Config {
    /// The CI defaults, overridden by `LODE_FUZZ_SECONDS`, `LODE_FUZZ_ITERATIONS`,
    /// `LODE_FUZZ_SEED` and `LODE_FUZZ_FAILURES_DIR`.
    pub fn from_env() -> Config {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let secs: f64 = env("LODE_FUZZ_SECONDS").and_then(|v| v.parse().ok()).unwrap_or(5.0);
        Config {
            duration: Duration::from_secs_f64(secs.max(0.0)),
            max_iterations: env("LODE_FUZZ_ITERATIONS")
                .and_then(|v| v.parse().ok())
                .unwrap_or(u64::MAX),
            seed: env("LODE_FUZZ_SEED").and_then(|v| v.parse().ok()).unwrap_or(0),
            alloc_cap: 256 << 20,
            live_cap: 512 << 20,
            slow: Duration::from_secs(2),
            failures_dir: env("LODE_FUZZ_FAILURES_DIR").map_or_else(default_failures_dir, PathBuf::from),
            max_failures: 5,
        }
    }
}

/// `target/fuzz-failures` of the workspace (or of `CARGO_TARGET_DIR`).
pub fn default_failures_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("fuzz-failures")
}

/// One failing input.
#[derive(Debug, Clone)]
pub struct Failure {
    pub what: String,
    /// The hex file holding the input, when it could be written.
    pub file: Option<PathBuf>,
    pub input: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub target: &'static str,
    pub seed: u64,
    pub iterations: u64,
    pub accepted: u64,
    pub corpus: usize,
    pub elapsed: Duration,
    pub largest_alloc: usize,
    pub failures: Vec<Failure>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} inputs ({} accepted) in {:.1}s, seed {}, corpus {}, largest allocation {} KiB, {} failures",
            self.target,
            self.iterations,
            self.accepted,
            self.elapsed.as_secs_f64(),
            self.seed,
            self.corpus,
            self.largest_alloc >> 10,
            self.failures.len()
        )?;
        for x in &self.failures {
            let file = x
                .file
                .as_ref()
                .map_or("(not written)".into(), |p| p.display().to_string());
            write!(f, "\n  {file}: {}", x.what)?;
        }
        Ok(())
    }
}

thread_local! {
    /// Set while this thread runs a target: its panics are recorded, not printed.
    static CAPTURE: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let captured = CAPTURE.with(|c| {
                let mut c = c.borrow_mut();
                c.as_mut().map(|slot| *slot = info.to_string()).is_some()
            });
            if !captured {
                default(info);
            }
        }));
    });
}

/// Runs one input under the caps; `Err` says what went wrong.
pub fn execute(target: &Target, input: &[u8], cfg: &Config) -> Result<bool, String> {
    install_panic_hook();
    CAPTURE.with(|c| *c.borrow_mut() = Some(String::new()));
    alloc::reset();
    let start = Instant::now();
    let result = catch_unwind(AssertUnwindSafe(|| (target.run)(input)));
    let took = start.elapsed();
    let stats = alloc::stats();
    let message = CAPTURE.with(|c| c.borrow_mut().take()).unwrap_or_default();
    match result {
        Err(_) => Err(format!("panic: {message}")),
        Ok(_) if stats.largest > cfg.alloc_cap => {
            Err(format!("allocation of {} bytes (cap {})", stats.largest, cfg.alloc_cap))
        }
        Ok(_) if stats.peak_live > cfg.live_cap => {
            Err(format!("{} bytes live at once (cap {})", stats.peak_live, cfg.live_cap))
        }
        Ok(_) if took > cfg.slow => Err(format!("slow input: {:.1}s", took.as_secs_f64())),
        Ok(accepted) => Ok(accepted),
    }
}

fn hex(data: &[u8]) -> String {
    let mut s = String::with_capacity(data.len() * 2 + data.len() / 32);
    for (i, b) in data.iter().enumerate() {
        if i > 0 && i % 32 == 0 {
            s.push('\n');
        }
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Reads a failure file: `#` comment lines, then hex (whitespace ignored).
pub fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(|l| l.bytes().filter(|b| !b.is_ascii_whitespace()))
        .collect();
    if !digits.len().is_multiple_of(2) {
        return Err("odd number of hex digits".into());
    }
    digits
        .chunks_exact(2)
        .map(|p| {
            std::str::from_utf8(p)
                .ok()
                .and_then(|s| u8::from_str_radix(s, 16).ok())
                .ok_or_else(|| format!("bad hex digits {:?}", String::from_utf8_lossy(p)))
        })
        .collect()
}

fn save(target: &Target, input: &[u8], what: &str, dir: &Path) -> Option<PathBuf> {
    std::fs::create_dir_all(dir).ok()?;
    let path = dir.join(format!("{}-{:08x}.hex", target.name, crc32fast::hash(input)));
    let comment: String = what.lines().map(|l| format!("# {l}\n")).collect();
    let text = format!(
        "{comment}# replay: cargo run -p lode-fuzz -- replay {} {}\n{}\n",
        target.name,
        path.display(),
        hex(input)
    );
    std::fs::write(&path, text).ok()?;
    Some(path)
}

/// Fuzzes `target` until the time or iteration bound, or `max_failures` distinct failures.
pub fn run(target: &'static Target, cfg: &Config) -> Report {
    let start = Instant::now();
    let mut corpus = (target.seeds)();
    let seeds = corpus.len();
    let mut m = Mutator::new(
        cfg.seed ^ crc32fast::hash(target.name.as_bytes()) as u64,
        target.dict,
        target.max_len,
    );
    let mut report = Report {
        target: target.name,
        seed: cfg.seed,
        iterations: 0,
        accepted: 0,
        corpus: 0,
        elapsed: Duration::ZERO,
        largest_alloc: 0,
        failures: Vec::new(),
    };
    let mut seen = std::collections::HashSet::new();
    let mut i = 0usize;
    while report.iterations < cfg.max_iterations && start.elapsed() < cfg.duration {
        // Seeds first, unmutated; then mutations of corpus inputs.
        let input = match corpus.get(i).filter(|_| i < seeds) {
            Some(s) => s.clone(),
            None => {
                let mut d = m.rng.pick(&corpus).cloned().unwrap_or_default();
                m.mutate(&mut d, &corpus);
                if let Some(fix) = target.fix
                    && !m.rng.one_in(4)
                {
                    fix(&mut d);
                }
                d
            }
        };
        i += 1;
        report.iterations += 1;
        let outcome = execute(target, &input, cfg);
        report.largest_alloc = report.largest_alloc.max(alloc::stats().largest);
        match outcome {
            Ok(true) => {
                report.accepted += 1;
                // Accepted variants are new valid shapes to mutate from; keep a bounded set.
                if i > seeds {
                    if corpus.len() < 4096 {
                        corpus.push(input);
                    } else {
                        let at = seeds + m.rng.below(corpus.len() - seeds);
                        corpus[at] = input;
                    }
                }
            }
            Ok(false) => {}
            Err(what) => {
                // One input per distinct message (the panic location says which bug).
                let key: String = what.lines().next().unwrap_or_default().chars().take(200).collect();
                if seen.insert(key) {
                    let file = save(target, &input, &what, &cfg.failures_dir);
                    report.failures.push(Failure { what, file, input });
                    if report.failures.len() >= cfg.max_failures {
                        break;
                    }
                }
            }
        }
    }
    report.corpus = corpus.len();
    report.elapsed = start.elapsed();
    report
}
