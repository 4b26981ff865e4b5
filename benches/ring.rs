//! Replica-set lookups on the ingester ring: what the distributor does for every stream of
//! every push (`get_healthy` with replication factor 3), with 3 and 30 ingesters of 128 tokens.
//!
//! `cargo bench -p lode-benches --bench ring -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lode_ring::Ring;

fn lookups(c: &mut Criterion) {
    let mut g = c.benchmark_group("ring");
    const TOKENS: u32 = 1000;
    g.throughput(Throughput::Elements(u64::from(TOKENS)));
    for ingesters in [3, 30] {
        let mut ring = Ring::new(128);
        for i in 0..ingesters {
            ring.add(&format!("ingester-{i}"));
        }
        let dead = "ingester-1".to_string();
        g.bench_function(format!("get_healthy_rf3_{ingesters}_ingesters"), |b| {
            b.iter(|| {
                let mut n = 0;
                for t in 0..TOKENS {
                    let set = ring
                        .get_healthy(t.wrapping_mul(2_654_435_761), 3, |id| id != dead)
                        .expect("a ring");
                    n += set.len();
                }
                black_box(n)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, lookups);
criterion_main!(benches);
