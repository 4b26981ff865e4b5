//! Binary operators: arithmetic, comparisons (filtering, or 0/1 with `bool`), and the set
//! operators, between scalars and vectors. Vector-vector matching follows Prometheus as Loki ports
//! it (`on`/`ignoring`, `group_left`/`group_right`, Loki's error wording). Match keys and result
//! labels are computed once per series (or series pair), the matching itself per step.

use std::collections::HashMap;

use lode_model::Labels;

use super::label::{match_key, result_labels};
use super::{BinOp, Eval, GroupSide, MetricError, StepSeries, VectorMatching};

pub(crate) fn eval(
    op: BinOp,
    lhs: Eval,
    rhs: Eval,
    return_bool: bool,
    matching: Option<&VectorMatching>,
    n_steps: usize,
) -> Result<Eval, MetricError> {
    match (lhs, rhs) {
        (Eval::Scalar(a), Eval::Scalar(b)) => {
            if op.is_set() {
                return Err(set_with_scalar(op));
            }
            // Loki folds literal comparisons to 0/1 whether or not `bool` is written.
            let (v, keep) = apply(op, a, b);
            Ok(Eval::Scalar(if op.is_comparison() {
                f64::from(u8::from(keep))
            } else {
                v
            }))
        }
        (Eval::Vector(v), Eval::Scalar(s)) => with_scalar(op, v, s, false, return_bool),
        (Eval::Scalar(s), Eval::Vector(v)) => with_scalar(op, v, s, true, return_bool),
        (Eval::Vector(l), Eval::Vector(r)) if op.is_set() => Ok(Eval::Vector(set_op(op, l, r, matching, n_steps))),
        (Eval::Vector(l), Eval::Vector(r)) => Ok(Eval::Vector(vector_op(op, l, r, return_bool, matching, n_steps)?)),
    }
}

fn set_with_scalar(op: BinOp) -> MetricError {
    MetricError::Invalid(format!("set operator {op:?} not allowed in binary scalar expression"))
}

/// The value of `l op r` and whether a comparison holds (always true for arithmetic).
/// Division and modulo by zero are NaN, as in Loki (Prometheus would give ±Inf).
pub(crate) fn apply(op: BinOp, l: f64, r: f64) -> (f64, bool) {
    match op {
        BinOp::Add => (l + r, true),
        BinOp::Sub => (l - r, true),
        BinOp::Mul => (l * r, true),
        BinOp::Div => (if r == 0.0 { f64::NAN } else { l / r }, true),
        // Rust's `%` on floats is C's fmod, the same as Go's math.Mod (sign of the dividend).
        BinOp::Mod => (if r == 0.0 { f64::NAN } else { l % r }, true),
        BinOp::Pow => (l.powf(r), true),
        BinOp::Eq => (l, l == r),
        BinOp::Ne => (l, l != r),
        BinOp::Gt => (l, l > r),
        BinOp::Ge => (l, l >= r),
        BinOp::Lt => (l, l < r),
        BinOp::Le => (l, l <= r),
        BinOp::And | BinOp::Or | BinOp::Unless => (l, true),
    }
}

/// Applies a comparison result: `Some(value)` to emit, `None` to drop the sample.
fn emit(op: BinOp, value: f64, keep: bool, return_bool: bool) -> Option<f64> {
    if !op.is_comparison() {
        Some(value)
    } else if return_bool {
        Some(f64::from(u8::from(keep)))
    } else {
        keep.then_some(value)
    }
}

fn with_scalar(
    op: BinOp,
    v: Vec<StepSeries>,
    s: f64,
    scalar_left: bool,
    return_bool: bool,
) -> Result<Eval, MetricError> {
    if op.is_set() {
        return Err(set_with_scalar(op));
    }
    let out = v
        .into_iter()
        .filter_map(|mut series| {
            series.points.retain_mut(|(_, x)| {
                let (l, r) = if scalar_left { (s, *x) } else { (*x, s) };
                let (value, keep) = apply(op, l, r);
                // A filtering comparison keeps the vector's value even when the scalar is on the
                // left, as Prometheus does.
                let value = if op.is_comparison() { *x } else { value };
                match emit(op, value, keep, return_bool) {
                    Some(v) => {
                        *x = v;
                        true
                    }
                    None => false,
                }
            });
            (!series.points.is_empty()).then_some(series)
        })
        .collect();
    Ok(Eval::Vector(out))
}

/// Series regrouped by step: `steps[i]` lists `(series index, value)` present at step `i`.
fn by_step(series: &[StepSeries], n_steps: usize) -> Vec<Vec<(u32, f64)>> {
    let mut steps = vec![Vec::new(); n_steps];
    for (s, series) in series.iter().enumerate() {
        for &(i, v) in &series.points {
            steps[i as usize].push((s as u32, v));
        }
    }
    steps
}

/// Interns each series' match key as a small integer so per-step lookups index a vector.
fn signatures(sides: [&[StepSeries]; 2], m: Option<&VectorMatching>) -> ([Vec<u32>; 2], usize) {
    let mut ids: HashMap<Labels, u32> = HashMap::new();
    let sigs = sides.map(|side| {
        side.iter()
            .map(|s| {
                let n = ids.len() as u32;
                *ids.entry(match_key(&s.labels, m)).or_insert(n)
            })
            .collect()
    });
    (sigs, ids.len())
}

/// Collects output points under their labels; series stay in step order because callers emit
/// step by step.
#[derive(Default)]
struct Output {
    index: HashMap<Labels, usize>,
    series: Vec<StepSeries>,
}

impl Output {
    fn slot(&mut self, labels: Labels) -> usize {
        let series = &mut self.series;
        *self.index.entry(labels).or_insert_with_key(|l| {
            series.push(StepSeries {
                labels: l.clone(),
                points: Vec::new(),
            });
            series.len() - 1
        })
    }
    fn finish(self) -> Vec<StepSeries> {
        self.series.into_iter().filter(|s| !s.points.is_empty()).collect()
    }
}

fn vector_op(
    op: BinOp,
    lhs: Vec<StepSeries>,
    rhs: Vec<StepSeries>,
    return_bool: bool,
    m: Option<&VectorMatching>,
    n_steps: usize,
) -> Result<Vec<StepSeries>, MetricError> {
    // Work as many-to-one: for group_right swap the sides, and swap the operands back when
    // computing each value.
    let swapped = matches!(m.and_then(|m| m.group.as_ref()), Some(GroupSide::Right(_)));
    let one_to_one = m.is_none_or(|m| m.group.is_none());
    let (many, one) = if swapped { (rhs, lhs) } else { (lhs, rhs) };
    let ([many_sig, one_sig], n_sigs) = signatures([&many, &one], m);
    let (many_steps, one_steps) = (by_step(&many, n_steps), by_step(&one, n_steps));
    // Per signature: the step (+1) it was last seen on the "one" side / matched on the "many"
    // side, so nothing needs clearing between steps.
    let mut one_at: Vec<(u32, u32, f64)> = vec![(0, 0, 0.0); n_sigs];
    let mut matched: Vec<u32> = vec![0; n_sigs];
    let mut pair_slot: HashMap<(u32, u32), usize> = HashMap::new();
    let mut out = Output::default();
    for (i, (many_now, one_now)) in many_steps.iter().zip(&one_steps).enumerate() {
        let stamp = i as u32 + 1;
        for &(s, v) in one_now {
            let sig = one_sig[s as usize] as usize;
            if one_at[sig].0 == stamp {
                return Err(MetricError::DuplicateOneSide(if swapped { "left" } else { "right" }));
            }
            one_at[sig] = (stamp, s, v);
        }
        for &(s, v) in many_now {
            let sig = many_sig[s as usize] as usize;
            let (seen, os, ov) = one_at[sig];
            if seen != stamp {
                continue;
            }
            if one_to_one {
                if matched[sig] == stamp {
                    return Err(MetricError::ManyToOneNotExplicit);
                }
                matched[sig] = stamp;
            }
            let slot = *pair_slot
                .entry((s, os))
                .or_insert_with(|| out.slot(result_labels(&many[s as usize].labels, &one[os as usize].labels, m)));
            let points = &mut out.series[slot].points;
            if !one_to_one && points.last().is_some_and(|p| p.0 == i as u32) {
                return Err(MetricError::GroupingNotUnique);
            }
            let (l, r) = if swapped { (ov, v) } else { (v, ov) };
            let (value, keep) = apply(op, l, r);
            if let Some(v) = emit(op, value, keep, return_bool) {
                points.push((i as u32, v));
            }
        }
    }
    Ok(out.finish())
}

/// `and`, `or`, `unless`: many-to-many on the match key, labels kept from the side a sample
/// comes from.
fn set_op(
    op: BinOp,
    lhs: Vec<StepSeries>,
    rhs: Vec<StepSeries>,
    m: Option<&VectorMatching>,
    n_steps: usize,
) -> Vec<StepSeries> {
    let ([lsig, rsig], n_sigs) = signatures([&lhs, &rhs], m);
    let (lsteps, rsteps) = (by_step(&lhs, n_steps), by_step(&rhs, n_steps));
    let mut out = Output::default();
    let lslot: Vec<usize> = lhs.iter().map(|s| out.slot(s.labels.clone())).collect();
    let rslot: Vec<usize> = if op == BinOp::Or {
        rhs.iter().map(|s| out.slot(s.labels.clone())).collect()
    } else {
        Vec::new()
    };
    let mut present: Vec<u32> = vec![0; n_sigs];
    for (i, (lnow, rnow)) in lsteps.iter().zip(&rsteps).enumerate() {
        let stamp = i as u32 + 1;
        match op {
            BinOp::And | BinOp::Unless => {
                for &(s, _) in rnow {
                    present[rsig[s as usize] as usize] = stamp;
                }
                let want = op == BinOp::And;
                for &(s, v) in lnow {
                    if (present[lsig[s as usize] as usize] == stamp) == want {
                        out.series[lslot[s as usize]].points.push((i as u32, v));
                    }
                }
            }
            _ => {
                for &(s, v) in lnow {
                    present[lsig[s as usize] as usize] = stamp;
                    out.series[lslot[s as usize]].points.push((i as u32, v));
                }
                for &(s, v) in rnow {
                    let points = &mut out.series[rslot[s as usize]].points;
                    // Identical labels imply identical keys, so an rhs point never lands on a
                    // step its lhs twin already filled; the check guards the invariant anyway.
                    if present[rsig[s as usize] as usize] != stamp && points.last().is_none_or(|p| p.0 != i as u32) {
                        points.push((i as u32, v));
                    }
                }
            }
        }
    }
    out.finish()
}
