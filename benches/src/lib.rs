//! criterion benchmarks; see benches/*.rs and docs/benchmarks.md.
