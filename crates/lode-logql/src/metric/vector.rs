//! Vector aggregations (`sum avg min max count stddev stdvar topk bottomk sort sort_desc`), per
//! step and per group. Group membership is computed once per series, not per step; each group is
//! then folded over its members' points with a dense per-step scratch row.

use std::cmp::Ordering;
use std::collections::HashMap;

use lode_model::Labels;

use super::label::apply_grouping;
use super::range::KahanSum;
use super::{Grouping, MetricError, Sample, StepSeries, VectorOp};

pub(crate) fn aggregate(
    op: VectorOp,
    grouping: Option<&Grouping>,
    param: Option<f64>,
    input: Vec<StepSeries>,
) -> Result<Vec<StepSeries>, MetricError> {
    match op {
        // A range result keeps every series: the order only shows in instant results.
        VectorOp::Sort | VectorOp::SortDesc => Ok(input),
        VectorOp::Topk | VectorOp::Bottomk => {
            let k = param.unwrap_or(f64::NAN);
            if !(k >= 1.0 && k.fract() == 0.0) {
                return Err(MetricError::Invalid(format!(
                    "invalid parameter for topk/bottomk: k must be an integer >= 1, got {k}"
                )));
            }
            // Saturating: a k beyond the number of series keeps them all.
            Ok(select_k(op == VectorOp::Topk, k as usize, grouping, input))
        }
        _ => Ok(fold(op, grouping, &input)),
    }
}

/// Running state of one group at one step.
#[derive(Clone, Copy, Default)]
struct Acc {
    n: u32,
    /// min/max: the extreme; stddev/stdvar: the running mean.
    a: f64,
    /// stddev/stdvar: the sum of squared deviations.
    b: f64,
    sum: KahanSum,
}

impl Acc {
    fn push(&mut self, op: VectorOp, v: f64) {
        self.n += 1;
        let n = f64::from(self.n);
        match op {
            VectorOp::Sum | VectorOp::Avg => self.sum.add(v),
            // Prometheus keeps the first non-NaN extreme; NaN only when every value is NaN.
            VectorOp::Min if self.n == 1 || v < self.a || self.a.is_nan() => self.a = v,
            VectorOp::Max if self.n == 1 || v > self.a || self.a.is_nan() => self.a = v,
            // Welford: a = mean, b = sum of squared deviations.
            VectorOp::Stddev | VectorOp::Stdvar => {
                let delta = v - self.a;
                self.a += delta / n;
                self.b += delta * (v - self.a);
            }
            _ => {}
        }
    }

    fn value(&self, op: VectorOp) -> f64 {
        let n = f64::from(self.n);
        match op {
            VectorOp::Sum => self.sum.value(),
            VectorOp::Avg => self.sum.value() / n,
            VectorOp::Count => n,
            VectorOp::Stdvar => self.b / n,
            VectorOp::Stddev => (self.b / n).sqrt(),
            _ => self.a,
        }
    }
}

/// Groups series by their `by`/`without` labels (none: one group with no labels).
fn groups(grouping: Option<&Grouping>, input: &[StepSeries]) -> (Vec<Labels>, Vec<Vec<usize>>) {
    let mut index: HashMap<Labels, usize> = HashMap::new();
    let mut keys = Vec::new();
    let mut members: Vec<Vec<usize>> = Vec::new();
    for (i, s) in input.iter().enumerate() {
        let key = grouping.map_or_else(Labels::default, |g| apply_grouping(&s.labels, g));
        let g = *index.entry(key.clone()).or_insert_with(|| {
            keys.push(key);
            members.push(Vec::new());
            members.len() - 1
        });
        members[g].push(i);
    }
    (keys, members)
}

fn fold(op: VectorOp, grouping: Option<&Grouping>, input: &[StepSeries]) -> Vec<StepSeries> {
    let (keys, members) = groups(grouping, input);
    let n_steps = input
        .iter()
        .filter_map(|s| s.points.last())
        .map(|p| p.0 as usize + 1)
        .max()
        .unwrap_or(0);
    // One dense scratch row reused by every group; only touched steps are read back and reset,
    // so a group costs its members' points, not the whole grid.
    let mut row = vec![Acc::default(); n_steps];
    let mut touched: Vec<u32> = Vec::new();
    let mut out = Vec::with_capacity(keys.len());
    for (labels, members) in keys.into_iter().zip(members) {
        for &m in &members {
            for &(i, v) in &input[m].points {
                let acc = &mut row[i as usize];
                if acc.n == 0 {
                    touched.push(i);
                }
                acc.push(op, v);
            }
        }
        touched.sort_unstable();
        let points = touched
            .drain(..)
            .map(|i| {
                let acc = std::mem::take(&mut row[i as usize]);
                (i, acc.value(op))
            })
            .collect();
        out.push(StepSeries { labels, points });
    }
    out
}

/// Orders for topk (`desc`) or bottomk: NaN always last (Prometheus treats it as the worst
/// candidate either way), ties broken by labels so results are deterministic.
fn rank(desc: bool, a: (f64, &Labels), b: (f64, &Labels)) -> Ordering {
    let by_value = match (a.0.is_nan(), b.0.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ if desc => b.0.total_cmp(&a.0),
        _ => a.0.total_cmp(&b.0),
    };
    by_value.then_with(|| a.1.cmp(b.1))
}

/// topk/bottomk: per step and group, keeps the k best series with their own labels.
fn select_k(top: bool, k: usize, grouping: Option<&Grouping>, input: Vec<StepSeries>) -> Vec<StepSeries> {
    let (_, members) = groups(grouping, &input);
    let mut kept: Vec<Vec<(u32, f64)>> = vec![Vec::new(); input.len()];
    let mut cands: Vec<(u32, f64, usize)> = Vec::new();
    for members in members {
        cands.clear();
        for &m in &members {
            cands.extend(input[m].points.iter().map(|&(i, v)| (i, v, m)));
        }
        cands.sort_by_key(|c| c.0);
        for run in cands.chunk_by_mut(|a, b| a.0 == b.0) {
            run.sort_by(|a, b| rank(top, (a.1, &input[a.2].labels), (b.1, &input[b.2].labels)));
            for &(i, v, m) in run.iter().take(k) {
                kept[m].push((i, v));
            }
        }
    }
    input
        .into_iter()
        .zip(kept)
        .filter(|(_, pts)| !pts.is_empty())
        .map(|(s, mut points)| {
            points.sort_unstable_by_key(|p| p.0);
            StepSeries {
                labels: s.labels,
                points,
            }
        })
        .collect()
}

/// `sort` / `sort_desc` on an instant vector: by value, NaN last (as Prometheus), ties by labels.
pub(crate) fn sort_samples(v: &mut [Sample], desc: bool) {
    v.sort_by(|a, b| rank(desc, (a.value, &a.labels), (b.value, &b.labels)));
}
