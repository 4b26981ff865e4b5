//! Label-set helpers shared by the metric nodes: grouping (`by`/`without`), vector-matching
//! keys (`on`/`ignoring`), the result labels of a binary operation, and `label_replace`.

use std::collections::HashMap;

use lode_model::Labels;
use lode_model::labels::is_valid_label_name;

use super::{GroupSide, Grouping, MetricError, StepSeries, VectorMatching};
use crate::regex_compat;

/// Keeps only the listed labels (`by`) or drops them (`without`).
pub(crate) fn apply_grouping(labels: &Labels, g: &Grouping) -> Labels {
    select(labels, &g.labels, !g.without)
}

/// `keep = true`: the labels named in `names` that are present; `false`: all others.
fn select(labels: &Labels, names: &[String], keep: bool) -> Labels {
    let pairs = labels
        .pairs()
        .iter()
        .filter(|(n, _)| names.iter().any(|x| x == n) == keep)
        .cloned()
        .collect();
    // A subset of a valid, sorted set stays valid and sorted.
    Labels::from_sorted_unchecked(pairs)
}

/// The key two samples must share to match: all labels by default, `on` keeps, `ignoring` drops.
pub(crate) fn match_key(labels: &Labels, m: Option<&VectorMatching>) -> Labels {
    match m {
        None => labels.clone(),
        Some(m) => select(labels, &m.labels, m.on),
    }
}

/// Prometheus' `resultMetric` as Loki ports it: one-to-one results keep only the `on` labels (or
/// lose the `ignoring` ones); `group_x(..)` labels are copied from the "one" side (or removed when
/// it lacks them).
pub(crate) fn result_labels(many: &Labels, one: &Labels, m: Option<&VectorMatching>) -> Labels {
    let Some(m) = m else { return many.clone() };
    let include = match &m.group {
        None => return select(many, &m.labels, m.on),
        Some(GroupSide::Left(l) | GroupSide::Right(l)) => l,
    };
    let mut pairs: Vec<(String, String)> = many
        .pairs()
        .iter()
        .filter(|(n, _)| !include.contains(n))
        .cloned()
        .collect();
    for name in include {
        if let Some(v) = one.get(name) {
            pairs.push((name.clone(), v.to_string()));
        }
    }
    Labels::from_sorted_unchecked(pairs)
}

/// Merges series that ended up with the same labels. Two points at one step are an error, as in
/// Prometheus (`vector cannot contain metrics with the same labelset`).
pub(crate) fn merge_same_labels(series: Vec<StepSeries>) -> Result<Vec<StepSeries>, MetricError> {
    let mut index: HashMap<Labels, usize> = HashMap::with_capacity(series.len());
    let mut out: Vec<StepSeries> = Vec::with_capacity(series.len());
    let mut merged = false;
    for s in series {
        if s.points.is_empty() {
            continue;
        }
        match index.get(&s.labels) {
            Some(&i) => {
                out[i].points.extend(s.points);
                merged = true;
            }
            None => {
                index.insert(s.labels.clone(), out.len());
                out.push(s);
            }
        }
    }
    if merged {
        for s in &mut out {
            s.points.sort_by_key(|p| p.0);
            if s.points.windows(2).any(|w| w[0].0 == w[1].0) {
                return Err(MetricError::DuplicateLabelset);
            }
        }
    }
    Ok(out)
}

/// Prometheus' `label_replace`: when the fully anchored `regex` matches the value of `src` (empty
/// when absent), `dst` is set to `replacement` with `$1`/`${name}` expanded; an empty result
/// deletes `dst`. Series that do not match pass through unchanged.
pub(crate) fn label_replace(
    input: Vec<StepSeries>,
    dst: &str,
    replacement: &str,
    src: &str,
    regex: &str,
) -> Result<Vec<StepSeries>, MetricError> {
    // Prometheus anchors the user's pattern; the group keeps alternations inside the anchors.
    let re = regex_compat::compile(&format!("^(?:{regex})$"))
        .map_err(|e| MetricError::Invalid(format!("invalid regular expression in label_replace(): {regex}: {e}")))?;
    if !is_valid_label_name(dst) {
        return Err(MetricError::Invalid(format!(
            "invalid destination label name in label_replace(): {dst}"
        )));
    }
    let mut out = Vec::with_capacity(input.len());
    for mut s in input {
        let value = s.labels.get(src).unwrap_or("");
        if let Some(caps) = re.captures(value.as_bytes()) {
            let mut res = Vec::new();
            caps.expand(replacement.as_bytes(), &mut res);
            let res = String::from_utf8_lossy(&res).into_owned();
            let mut pairs: Vec<(String, String)> = s.labels.pairs().iter().filter(|(n, _)| n != dst).cloned().collect();
            if !res.is_empty() {
                pairs.push((dst.to_string(), res));
            }
            s.labels = Labels::from_sorted_unchecked(pairs);
        }
        out.push(s);
    }
    merge_same_labels(out)
}
