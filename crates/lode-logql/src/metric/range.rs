//! Range aggregations (`count_over_time`, `rate`, `*_over_time`, `rate_counter`, ...). Each series
//! is walked once with two cursors delimiting the window `(t - offset - range, t - offset]`;
//! count is the cursor distance, sums slide (adding entering and subtracting leaving samples),
//! min/max keep a monotonic deque, and only the inherently whole-window functions (stddev,
//! quantile, rate_counter) revisit the window's samples.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};

use lode_model::Labels;

use super::label::apply_grouping;
use super::{Grid, Grouping, MetricError, RangeOp, SeriesSet, StepSeries};

#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    pub range_ns: i64,
    pub offset_ns: i64,
}

pub(crate) fn eval(
    op: &RangeOp,
    w: Window,
    grouping: Option<&Grouping>,
    param: Option<f64>,
    set: &SeriesSet,
    grid: &Grid,
) -> Result<Vec<StepSeries>, MetricError> {
    if w.range_ns <= 0 {
        return Err(MetricError::Invalid(format!(
            "invalid range {}ns: must be positive",
            w.range_ns
        )));
    }
    if let RangeOp::AbsentOverTime { labels } = op {
        return Ok(absent(labels, w, set, grid));
    }
    let q = match op {
        RangeOp::QuantileOverTime => {
            Some(param.ok_or_else(|| MetricError::Invalid("quantile_over_time needs a quantile".to_string()))?)
        }
        _ => None,
    };
    let mut out = Vec::with_capacity(set.len());
    for (labels, samples) in group_series(set, grouping) {
        debug_assert!(
            samples.windows(2).all(|p| p[0].0 <= p[1].0),
            "samples must be sorted by time"
        );
        let points = walk(op, q, w, &samples, grid);
        if !points.is_empty() {
            out.push(StepSeries { labels, points });
        }
    }
    Ok(out)
}

/// A series after grouping: its labels and samples, borrowed unless series had to be merged.
type Grouped<'a> = (Labels, Cow<'a, [(i64, f64)]>);

/// Series keyed by their (grouped) labels; series that share labels are merged in time order.
/// Without grouping and with distinct labels (the common case) nothing is copied.
fn group_series<'a>(set: &'a SeriesSet, grouping: Option<&Grouping>) -> Vec<Grouped<'a>> {
    let mut index: HashMap<Labels, usize> = HashMap::with_capacity(set.len());
    let mut groups: Vec<(Labels, Vec<usize>)> = Vec::with_capacity(set.len());
    for (i, (labels, _)) in set.iter().enumerate() {
        let key = match grouping {
            Some(g) => apply_grouping(labels, g),
            None => labels.clone(),
        };
        match index.get(&key) {
            Some(&g) => groups[g].1.push(i),
            None => {
                index.insert(key.clone(), groups.len());
                groups.push((key, vec![i]));
            }
        }
    }
    groups
        .into_iter()
        .map(|(labels, members)| {
            if let [only] = members[..] {
                return (labels, Cow::Borrowed(&set[only].1[..]));
            }
            let mut all: Vec<(i64, f64)> = members.iter().flat_map(|&i| set[i].1.iter().copied()).collect();
            // Stable: equal timestamps keep series order, so first/last are deterministic.
            all.sort_by_key(|p| p.0);
            (labels, Cow::Owned(all))
        })
        .collect()
}

/// Yields, for each step with a non-empty window, `(step index, lo, hi)`: the window is
/// `samples[lo..hi]`. Both cursors only move forward.
fn windows(samples: &[(i64, f64)], w: Window, grid: &Grid) -> impl Iterator<Item = (u32, usize, usize)> {
    let (mut lo, mut hi) = (0usize, 0usize);
    (0..grid.n).filter_map(move |i| {
        // Saturating: absurd offsets or ranges from user input must not overflow.
        let end = grid.t(i).saturating_sub(w.offset_ns);
        let start = end.saturating_sub(w.range_ns);
        while hi < samples.len() && samples[hi].0 <= end {
            hi += 1;
        }
        while lo < hi && samples[lo].0 <= start {
            lo += 1;
        }
        (lo < hi).then_some((i as u32, lo, hi))
    })
}

fn walk(op: &RangeOp, q: Option<f64>, w: Window, samples: &[(i64, f64)], grid: &Grid) -> Vec<(u32, f64)> {
    let range_s = w.range_ns as f64 / 1e9;
    let it = windows(samples, w, grid);
    match op {
        // A count is the sum of the samples' values (1 per line), not the number of samples:
        // a querier may have pre-summed the lines of a stretch into one sample.
        RangeOp::CountOverTime | RangeOp::SumOverTime | RangeOp::BytesOverTime => sliding_sum(samples, it, |s, _| s),
        RangeOp::Rate | RangeOp::BytesRate | RangeOp::UnwrappedRate => sliding_sum(samples, it, |s, _| s / range_s),
        RangeOp::AvgOverTime => sliding_sum(samples, it, |s, n| s / n as f64),
        RangeOp::MinOverTime => extreme(samples, it, |new, old| new <= old),
        RangeOp::MaxOverTime => extreme(samples, it, |new, old| new >= old),
        RangeOp::FirstOverTime => it.map(|(i, lo, _)| (i, samples[lo].1)).collect(),
        RangeOp::LastOverTime => it.map(|(i, _, hi)| (i, samples[hi - 1].1)).collect(),
        RangeOp::StdvarOverTime => it.map(|(i, lo, hi)| (i, stdvar(&samples[lo..hi]))).collect(),
        RangeOp::StddevOverTime => it.map(|(i, lo, hi)| (i, stdvar(&samples[lo..hi]).sqrt())).collect(),
        RangeOp::QuantileOverTime => {
            let q = q.unwrap_or(f64::NAN);
            let mut buf = Vec::new();
            it.map(|(i, lo, hi)| {
                buf.clear();
                buf.extend(samples[lo..hi].iter().map(|p| p.1));
                (i, quantile(q, &mut buf))
            })
            .collect()
        }
        RangeOp::RateCounter => it
            .map(|(i, lo, hi)| (i, extrapolated_rate(&samples[lo..hi], w.range_ns)))
            .collect(),
        // Handled before grouping: it looks at all series together.
        RangeOp::AbsentOverTime { .. } => Vec::new(),
    }
}

/// Neumaier-compensated running sum; compensation keeps add/subtract drift near one ulp.
#[derive(Clone, Copy, Default)]
pub(crate) struct KahanSum {
    sum: f64,
    c: f64,
}

impl KahanSum {
    pub fn add(&mut self, x: f64) {
        let t = self.sum + x;
        // Compensation is meaningless once infinite (it would turn Inf into NaN).
        if t.is_finite() {
            self.c += if self.sum.abs() >= x.abs() {
                (self.sum - t) + x
            } else {
                (x - t) + self.sum
            };
        }
        self.sum = t;
    }
    pub fn value(&self) -> f64 {
        if self.sum.is_finite() {
            self.sum + self.c
        } else {
            self.sum
        }
    }
}

/// Sum over each window, sliding: samples entering are added, samples leaving subtracted. The sum
/// is recomputed from scratch when windows stop overlapping, when as many samples have left as
/// the window holds (so rounding cannot accumulate beyond a window's worth of operations, at
/// amortised O(1) per sample), and whenever an infinity or NaN is in play (Inf - Inf is NaN).
fn sliding_sum(
    samples: &[(i64, f64)],
    it: impl Iterator<Item = (u32, usize, usize)>,
    finish: impl Fn(f64, usize) -> f64,
) -> Vec<(u32, f64)> {
    let all_finite = samples.iter().all(|p| p.1.is_finite());
    let (mut slo, mut shi) = (0usize, 0usize);
    let mut acc = KahanSum::default();
    let mut removed = 0usize;
    let mut out = Vec::new();
    for (i, lo, hi) in it {
        if !all_finite || lo >= shi || removed >= hi - lo {
            acc = KahanSum::default();
            samples[lo..hi].iter().for_each(|p| acc.add(p.1));
            removed = 0;
        } else {
            samples[shi..hi].iter().for_each(|p| acc.add(p.1));
            samples[slo..lo].iter().for_each(|p| acc.add(-p.1));
            removed += lo - slo;
        }
        (slo, shi) = (lo, hi);
        out.push((i, finish(acc.value(), hi - lo)));
    }
    out
}

/// Min or max per window with a monotonic deque of sample indices. `evicts(new, old)` says a new
/// sample makes an older one irrelevant. NaNs never enter the deque: like Loki, min/max ignore
/// NaN unless the window holds nothing else, and then the answer is NaN.
fn extreme(
    samples: &[(i64, f64)],
    it: impl Iterator<Item = (u32, usize, usize)>,
    evicts: impl Fn(f64, f64) -> bool,
) -> Vec<(u32, f64)> {
    let mut dq: VecDeque<usize> = VecDeque::new();
    let mut next = 0usize;
    let mut out = Vec::new();
    for (i, lo, hi) in it {
        while next < hi {
            let v = samples[next].1;
            if !v.is_nan() {
                while dq.back().is_some_and(|&b| evicts(v, samples[b].1)) {
                    dq.pop_back();
                }
                dq.push_back(next);
            }
            next += 1;
        }
        while dq.front().is_some_and(|&f| f < lo) {
            dq.pop_front();
        }
        out.push((i, dq.front().map_or(f64::NAN, |&f| samples[f].1)));
    }
    out
}

/// Population variance (Welford), as Loki's `stdvar_over_time`.
fn stdvar(samples: &[(i64, f64)]) -> f64 {
    let (mut count, mut mean, mut aux) = (0.0, 0.0, 0.0);
    for &(_, v) in samples {
        count += 1.0;
        let delta = v - mean;
        mean += delta / count;
        aux += delta * (v - mean);
    }
    aux / count
}

/// Prometheus' quantile: linear interpolation between closest ranks; q < 0 → -Inf, q > 1 → +Inf.
/// Sorts `values` (NaN first, as Go's `HeapByMaxValue` ordering does).
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.total_cmp(b),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

/// Loki's `rate_counter`: Prometheus' extrapolatedRate as Loki ported it, with millisecond
/// timestamps. Loki's window function does not see the step time, so it takes the range start as
/// `first sample - range` and the range end as the last sample; fewer than two samples give 0.
fn extrapolated_rate(samples: &[(i64, f64)], range_ns: i64) -> f64 {
    if samples.len() < 2 {
        return 0.0;
    }
    let ms = |t: i64| t.div_euclid(1_000_000);
    let range_ms = range_ns / 1_000_000;
    let (first, last) = (samples[0], samples[samples.len() - 1]);
    let range_start = ms(first.0) - range_ms;
    let range_end = ms(last.0);
    let mut result = last.1 - first.1;
    let mut last_value = 0.0;
    for &(_, v) in samples {
        if v < last_value {
            result += last_value;
        }
        last_value = v;
    }
    let mut to_start = (ms(first.0) - range_start) as f64 / 1000.0;
    let to_end = (range_end - ms(last.0)) as f64 / 1000.0;
    let sampled = (ms(last.0) - ms(first.0)) as f64 / 1000.0;
    let avg_between = sampled / (samples.len() - 1) as f64;
    if result > 0.0 && first.1 >= 0.0 {
        // A counter cannot go below zero: extrapolate no further back than its zero point.
        let to_zero = sampled * (first.1 / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    let threshold = avg_between * 1.1;
    let mut interval = sampled;
    interval += if to_start < threshold {
        to_start
    } else {
        avg_between / 2.0
    };
    interval += if to_end < threshold { to_end } else { avg_between / 2.0 };
    result * (interval / sampled) / (range_ns as f64 / 1e9)
}

/// `absent_over_time`: 1 with the selector's labels at steps where no series has a sample.
fn absent(labels: &Labels, w: Window, set: &SeriesSet, grid: &Grid) -> Vec<StepSeries> {
    let mut ts: Vec<i64> = set.iter().flat_map(|(_, s)| s.iter().map(|p| p.0)).collect();
    ts.sort_unstable();
    let samples: Vec<(i64, f64)> = ts.into_iter().map(|t| (t, 0.0)).collect();
    let mut present = vec![false; grid.n];
    for (i, _, _) in windows(&samples, w, grid) {
        present[i as usize] = true;
    }
    let points: Vec<(u32, f64)> = (0..grid.n).filter(|&i| !present[i]).map(|i| (i as u32, 1.0)).collect();
    if points.is_empty() {
        return Vec::new();
    }
    vec![StepSeries {
        labels: labels.clone(),
        points,
    }]
}
