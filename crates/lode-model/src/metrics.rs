//! Metrics that more than one role increments. Loki counts refused lines in one
//! `loki_discarded_samples_total{reason,tenant}` whether the distributor or the ingester refused
//! them; the node creates `Discards` once and hands it to both.

use prometheus::{IntCounterVec, Opts, Registry};

#[derive(Clone)]
pub struct Discards {
    samples: IntCounterVec,
    bytes: IntCounterVec,
}

impl Discards {
    pub fn new(registry: &Registry) -> Self {
        let vec = |name: &str, help: &str| {
            let c = IntCounterVec::new(Opts::new(name, help), &["reason", "tenant"]).expect("static metric definition");
            // Each node builds one `Discards` per registry. A second registration of the same
            // name fails and that handle is not exported: only roles built apart in unit tests
            // (each with its own throwaway registry) do that.
            let _ = registry.register(Box::new(c.clone()));
            c
        };
        Discards {
            samples: vec("loki_discarded_samples_total", "Log lines refused, by reason."),
            bytes: vec("loki_discarded_bytes_total", "Bytes of log lines refused, by reason."),
        }
    }

    pub fn count(&self, reason: &str, tenant: &str, lines: usize, bytes: usize) {
        if lines == 0 && bytes == 0 {
            return;
        }
        self.samples.with_label_values(&[reason, tenant]).inc_by(lines as u64);
        self.bytes.with_label_values(&[reason, tenant]).inc_by(bytes as u64);
    }
}
