//! Latency percentiles (nearest-rank, as `histogram_quantile`-free tools such as wrk report
//! them) over exact samples: a bounded run keeps every request's latency.

/// The nearest-rank `p`-th percentile (`0 <= p <= 100`) of an ascending slice: the smallest
/// sample such that at least `p`% of the samples are less than or equal to it.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    debug_assert!(sorted.windows(2).all(|w| w[0] <= w[1]), "percentile needs sorted input");
    let n = sorted.len();
    // The epsilon keeps 99.9% of 1000 at rank 999 despite binary floating point.
    let rank = (p / 100.0 * n as f64 - 1e-9).ceil().max(1.0) as usize;
    Some(sorted[rank.min(n) - 1])
}

/// p50, p99 and p99.9 of latencies in microseconds, as milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Summary {
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Summary {
    pub fn of_micros(mut samples: Vec<u64>) -> Summary {
        samples.sort_unstable();
        let ms = |p: f64| percentile(&samples, p).map_or(0.0, |us| us as f64 / 1000.0);
        let mean = if samples.is_empty() {
            0.0
        } else {
            samples.iter().sum::<u64>() as f64 / samples.len() as f64 / 1000.0
        };
        Summary {
            count: samples.len(),
            p50_ms: ms(50.0),
            p99_ms: ms(99.0),
            p999_ms: ms(99.9),
            max_ms: ms(100.0),
            mean_ms: mean,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let v: Vec<u64> = (1..=1000).collect();
        assert_eq!(percentile(&v, 50.0), Some(500));
        assert_eq!(percentile(&v, 99.0), Some(990));
        assert_eq!(percentile(&v, 99.9), Some(999));
        assert_eq!(percentile(&v, 100.0), Some(1000));
        assert_eq!(percentile(&v, 0.0), Some(1));
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 99.9), Some(100));
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&[7], 99.9), Some(7));
        assert_eq!(percentile(&[1, 2], 50.0), Some(1));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn summary_in_milliseconds() {
        let s = Summary::of_micros(vec![3000, 1000, 2000, 4000]);
        assert_eq!(s.count, 4);
        assert_eq!(s.p50_ms, 2.0);
        assert_eq!(s.p99_ms, 4.0);
        assert_eq!(s.max_ms, 4.0);
        assert_eq!(s.mean_ms, 2.5);
        assert_eq!(Summary::of_micros(vec![]), Summary::default());
    }
}
