//! The ingester's metrics, under Loki's names where Loki has the same metric.

use prometheus::{
    Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    exponential_buckets,
};

#[derive(Clone)]
pub(crate) struct Metrics {
    pub memory_streams: IntGaugeVec,
    pub streams_created: IntCounterVec,
    pub lines_appended: IntCounterVec,
    pub bytes_appended: IntCounterVec,
    pub chunks_flushed: IntCounterVec,
    pub chunk_bytes_flushed: IntCounter,
    pub flush_failures: IntCounter,
    pub flush_duration: Histogram,
    pub memory_chunks: IntGauge,
    pub wal_replay_seconds: Gauge,
    pub wal_replayed_records: IntCounter,
    pub wal_corrupt_records: IntCounter,
    pub wal_checkpoint_seconds: Gauge,
    pub wal_checkpoint_bytes: IntGauge,
    pub wal_write_failures: IntCounter,
    pub memory_bytes: IntGauge,
}

impl Metrics {
    pub fn new(registry: &Registry) -> Self {
        fn reg<C: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: C) -> C {
            // A second ingester on the same registry (tests) keeps the first registration.
            let _ = r.register(Box::new(c.clone()));
            c
        }
        let cv = |name: &str, help: &str, labels: &[&str]| {
            reg(
                registry,
                IntCounterVec::new(Opts::new(name, help), labels).expect("static metric definition"),
            )
        };
        Metrics {
            memory_streams: reg(
                registry,
                IntGaugeVec::new(
                    Opts::new("loki_ingester_memory_streams", "Streams held in memory."),
                    &["tenant"],
                )
                .expect("static metric definition"),
            ),
            streams_created: cv("loki_ingester_streams_created_total", "Streams created.", &["tenant"]),
            lines_appended: cv(
                "loki_ingester_received_lines_total",
                "Lines appended to streams.",
                &["tenant"],
            ),
            bytes_appended: cv(
                "loki_ingester_received_bytes_total",
                "Bytes appended to streams.",
                &["tenant"],
            ),
            chunks_flushed: cv(
                "loki_ingester_chunks_flushed_total",
                "Chunks flushed, by reason.",
                &["reason"],
            ),
            chunk_bytes_flushed: reg(
                registry,
                IntCounter::new(
                    "loki_ingester_chunk_stored_bytes_total",
                    "Chunk bytes written to the store.",
                )
                .expect("static metric definition"),
            ),
            flush_failures: reg(
                registry,
                IntCounter::new(
                    "loki_ingester_chunks_flush_failures_total",
                    "Chunk or index uploads that failed.",
                )
                .expect("static metric definition"),
            ),
            flush_duration: reg(
                registry,
                Histogram::with_opts(
                    HistogramOpts::new("loki_ingester_flush_duration_seconds", "Duration of a flush cycle.")
                        .buckets(exponential_buckets(0.001, 4.0, 10).expect("static buckets")),
                )
                .expect("static metric definition"),
            ),
            memory_chunks: reg(
                registry,
                IntGauge::new(
                    "loki_ingester_memory_chunks",
                    "Cut chunks waiting in memory to be flushed.",
                )
                .expect("static metric definition"),
            ),
            wal_replay_seconds: reg(
                registry,
                Gauge::new("lode_ingester_wal_replay_seconds", "How long the last WAL replay took.")
                    .expect("static metric definition"),
            ),
            wal_replayed_records: reg(
                registry,
                IntCounter::new("lode_ingester_wal_replayed_records_total", "WAL records replayed.")
                    .expect("static metric definition"),
            ),
            wal_corrupt_records: reg(
                registry,
                IntCounter::new(
                    "lode_ingester_wal_corrupt_records_total",
                    "Damaged WAL stretches and records dropped during replay.",
                )
                .expect("static metric definition"),
            ),
            wal_checkpoint_seconds: reg(
                registry,
                Gauge::new(
                    "lode_ingester_wal_checkpoint_seconds",
                    "How long the last WAL checkpoint took.",
                )
                .expect("static metric definition"),
            ),
            wal_checkpoint_bytes: reg(
                registry,
                IntGauge::new("lode_ingester_wal_checkpoint_bytes", "Size of the last WAL checkpoint.")
                    .expect("static metric definition"),
            ),
            memory_bytes: reg(
                registry,
                IntGauge::new(
                    "lode_ingester_memory_bytes",
                    "Heap bytes held by streams (heads and chunks waiting to be flushed).",
                )
                .expect("static metric definition"),
            ),
            wal_write_failures: reg(
                registry,
                IntCounter::new(
                    "lode_ingester_wal_write_failures_total",
                    "WAL commits that failed (the push was answered 503).",
                )
                .expect("static metric definition"),
            ),
        }
    }
}
