//! The bounded fuzz run of CI: every target for `LODE_FUZZ_SECONDS` (default 5) with a fixed
//! seed (`LODE_FUZZ_SEED` to vary it), under the counting allocator. A failure names the hex file
//! under `target/fuzz-failures/` that replays it.

use lode_fuzz::alloc::CountingAlloc;
use lode_fuzz::{Config, run, target};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn fuzz(name: &str) {
    let t = target(name).unwrap_or_else(|| panic!("no target {name}"));
    let report = run(t, &Config::from_env());
    println!("{report}");
    assert!(report.failures.is_empty(), "{report}");
    assert!(report.iterations > 0, "{report}");
}

#[test]
fn fuzz_push_json() {
    fuzz("push_json");
}

#[test]
fn fuzz_push_protobuf() {
    fuzz("push_protobuf");
}

#[test]
fn fuzz_push_snappy() {
    fuzz("push_snappy");
}

#[test]
fn fuzz_chunk() {
    fuzz("chunk");
}

#[test]
fn fuzz_wal() {
    fuzz("wal");
}

#[test]
fn fuzz_index() {
    fuzz("index");
}

#[test]
fn fuzz_logql() {
    fuzz("logql");
}

/// The caps are live: an oversized allocation is caught, and so is a panic, with the input saved.
#[test]
fn the_harness_catches_panics_and_big_allocations() {
    use lode_fuzz::{Target, execute, parse_hex};
    fn boom(d: &[u8]) -> bool {
        if d.first() == Some(&b'!') {
            panic!("boom on {d:?}");
        }
        if d.first() == Some(&b'A') {
            let v: Vec<u8> = Vec::with_capacity(300 << 20);
            std::hint::black_box(&v);
        }
        true
    }
    fn seeds() -> Vec<Vec<u8>> {
        vec![b"!x".to_vec()]
    }
    static T: Target = Target {
        name: "selftest",
        run: boom,
        seeds,
        fix: None,
        dict: &[],
        max_len: 16,
    };
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config {
        failures_dir: dir.path().to_path_buf(),
        max_iterations: 1,
        ..Config::from_env()
    };
    let err = execute(&T, b"AAAA", &cfg).unwrap_err();
    assert!(err.contains("allocation of 314572800 bytes"), "{err}");
    let report = run(&T, &cfg);
    assert_eq!(report.failures.len(), 1, "{report}");
    assert!(report.failures[0].what.contains("boom on"), "{report}");
    let file = report.failures[0].file.as_ref().unwrap();
    let text = std::fs::read_to_string(file).unwrap();
    assert_eq!(parse_hex(&text).unwrap(), b"!x");
    assert_eq!(execute(&T, b"ok", &cfg), Ok(true));
}
