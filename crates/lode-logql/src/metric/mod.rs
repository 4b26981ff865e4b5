//! The LogQL metric engine: evaluates a [`MetricPlan`] (range aggregations, vector aggregations,
//! binary operators, `label_replace`, `vector(n)` and literals) over samples the caller has already
//! extracted from log lines. It knows nothing of the AST or of storage: the querier maps the parsed
//! query onto a plan, runs one sample extraction per [`MetricPlan::RangeAgg`] source, and hands the
//! per-series samples to [`eval_range`] or [`eval_instant`].
//!
//! Semantics follow Grafana Loki 3.x (see `logql-features.md` §6): a step at `t` sees the samples
//! in `(t - offset - range, t - offset]`; an empty window yields no point; `x/0` and `x%0` are NaN;
//! comparisons filter unless `bool`; vector matching follows Prometheus with Loki's error wording.
//! Evaluation is columnar: every node produces whole series over the step grid, and range
//! aggregations slide a window over each series once, so the cost is linear in samples + points
//! rather than steps × samples.

mod binary;
mod label;
mod range;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_binary;
mod vector;

use lode_model::{ErrorCode, Labels};

/// Index into the `sources` slice given to [`eval_range`] / [`eval_instant`].
pub type SourceId = usize;

/// One sample source: the extracted samples of each series, `(timestamp ns, value)` sorted by
/// timestamp. Values are 1 per line for `count_over_time`/`rate`, line bytes for `bytes_*`, and the
/// unwrapped value otherwise. Must cover `[start - range - offset, end - offset]`.
pub type SeriesSet = Vec<(Labels, Vec<(i64, f64)>)>;

/// A range query's result: series sorted by labels, points oldest first, timestamps in ns.
pub type Matrix = Vec<Series>;

#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: Labels,
    pub points: Vec<(i64, f64)>,
}

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Labels,
    pub value: f64,
}

/// An instant query's result. Vectors are sorted by labels, except under a top-level
/// `sort`/`sort_desc`, whose value order is kept (as Loki does).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Vector(Vec<Sample>),
    Scalar(f64),
}

/// Loki's default `max_query_series`.
pub const DEFAULT_MAX_SERIES: usize = 500;

/// Per-query limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvalOptions {
    /// Loki's `max_query_series`: cap on distinct series in the result, and in any vector
    /// materialised as the input of a non-shardable aggregation (topk, bottomk, stddev, stdvar,
    /// sort), which Loki 3.7 refuses even when the final answer is small.
    pub max_series: usize,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            max_series: DEFAULT_MAX_SERIES,
        }
    }
}

/// `by (..)` or `without (..)`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Grouping {
    pub without: bool,
    pub labels: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RangeOp {
    CountOverTime,
    /// Lines per second: count / range seconds.
    Rate,
    BytesOverTime,
    BytesRate,
    /// `rate(... | unwrap x ...)`: sum of values / range seconds.
    UnwrappedRate,
    /// Prometheus-style extrapolated counter rate with reset handling, as Loki computes it.
    RateCounter,
    SumOverTime,
    AvgOverTime,
    MinOverTime,
    MaxOverTime,
    StddevOverTime,
    StdvarOverTime,
    /// Needs `param` = φ.
    QuantileOverTime,
    FirstOverTime,
    LastOverTime,
    /// 1 at steps where no series has a sample; `labels` are the selector's equality matchers.
    AbsentOverTime {
        labels: Labels,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VectorOp {
    Sum,
    Avg,
    Min,
    Max,
    Count,
    Stddev,
    Stdvar,
    /// Needs `param` = k (integer >= 1).
    Topk,
    Bottomk,
    Sort,
    SortDesc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    And,
    Or,
    Unless,
}

impl BinOp {
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Eq | BinOp::Ne | BinOp::Gt | BinOp::Ge | BinOp::Lt | BinOp::Le
        )
    }
    pub fn is_set(self) -> bool {
        matches!(self, BinOp::And | BinOp::Or | BinOp::Unless)
    }
}

/// `on(..)`/`ignoring(..)` plus an optional `group_left(..)`/`group_right(..)`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VectorMatching {
    /// `on` when true, `ignoring` when false (`ignoring()` is the default: match on all labels).
    pub on: bool,
    pub labels: Vec<String>,
    pub group: Option<GroupSide>,
}

/// Which side is the "many" side, and the labels to copy from the "one" side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupSide {
    Left(Vec<String>),
    Right(Vec<String>),
}

/// A metric query as a tree the querier builds from the AST. For example
/// `sum by (level) (count_over_time({app="x"} | logfmt [1m] offset 5m)) / 60` is
/// `Binary { Div, VectorAgg { Sum, by [level], RangeAgg { CountOverTime, 60s, 5m, source 0 } },
/// Literal(60) }`, with source 0 holding one sample (value 1) per line of the selector and
/// pipeline. `rate({..}[r])` maps to [`RangeOp::Rate`]; with `| unwrap` to
/// [`RangeOp::UnwrappedRate`].
#[derive(Debug, Clone, PartialEq)]
pub enum MetricPlan {
    RangeAgg {
        op: RangeOp,
        range_ns: i64,
        offset_ns: i64,
        /// `by`/`without` on an unwrapped range aggregation: series are merged by the grouped
        /// labels before the window function runs (Loki groups in the sample extractor).
        grouping: Option<Grouping>,
        param: Option<f64>,
        source: SourceId,
    },
    VectorAgg {
        op: VectorOp,
        /// `None` is `by ()` for the aggregating ops and "the whole vector" for topk/bottomk/sort.
        grouping: Option<Grouping>,
        param: Option<f64>,
        inner: Box<MetricPlan>,
    },
    Binary {
        op: BinOp,
        lhs: Box<MetricPlan>,
        rhs: Box<MetricPlan>,
        return_bool: bool,
        matching: Option<VectorMatching>,
    },
    /// A number literal: a scalar.
    Literal(f64),
    /// `vector(n)`: one series without labels.
    Vector(f64),
    LabelReplace {
        inner: Box<MetricPlan>,
        dst: String,
        replacement: String,
        src: String,
        regex: String,
    },
}

/// Errors carry Loki's wording, since Grafana shows them verbatim.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetricError {
    #[error(
        "maximum number of series ({0}) reached for a single query; consider reducing query cardinality by adding more specific stream selectors, reducing the time range, or aggregating results with functions like sum(), count() or topk()"
    )]
    SeriesLimit(usize),
    #[error("multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)")]
    ManyToOneNotExplicit,
    #[error("multiple matches for labels: grouping labels must ensure unique matches")]
    GroupingNotUnique,
    #[error(
        "found duplicate series on the {0} hand-side;many-to-many matching not allowed: matching labels must be unique on one side"
    )]
    DuplicateOneSide(&'static str),
    #[error("vector cannot contain metrics with the same labelset")]
    DuplicateLabelset,
    /// A plan or parameter the parser should have refused (bad step, unknown source, bad regex).
    #[error("{0}")]
    Invalid(String),
}

impl MetricError {
    /// Loki answers limit and validation errors with 400, vector matching errors with 500.
    pub fn code(&self) -> ErrorCode {
        match self {
            MetricError::SeriesLimit(_) | MetricError::Invalid(_) => ErrorCode::BadRequest,
            _ => ErrorCode::Internal,
        }
    }
}

/// Loki's query-frontend step alignment: rounds `start` down and `end` up to multiples of `step`,
/// so `start=T0+7s, step=60s` evaluates at T0, T0+60s, ... The querier decides whether to apply
/// it (Loki does when query splitting is on, its default). `step <= 0` returns the input.
pub fn align(start: i64, end: i64, step: i64) -> (i64, i64) {
    if step <= 0 {
        return (start, end);
    }
    let s = start - start.rem_euclid(step);
    let r = end.rem_euclid(step);
    let e = if r == 0 { end } else { end + (step - r) };
    (s, e)
}

/// The evaluation timestamps `start, start+step, ... <= end`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Grid {
    pub start: i64,
    pub step: i64,
    pub n: usize,
}

impl Grid {
    pub fn t(&self, i: usize) -> i64 {
        self.start + i as i64 * self.step
    }
}

/// A node's output: a constant scalar (LogQL scalars are literals, constant over steps) or series
/// whose points are `(step index, value)` in step order.
pub(crate) enum Eval {
    Scalar(f64),
    Vector(Vec<StepSeries>),
}

#[derive(Debug, Clone)]
pub(crate) struct StepSeries {
    pub labels: Labels,
    pub points: Vec<(u32, f64)>,
}

struct Ctx<'a> {
    sources: &'a [SeriesSet],
    grid: Grid,
    max_series: usize,
}

/// Evaluates `plan` at each step of `[start, end]` (both inclusive, Prometheus-style). A scalar
/// plan becomes one unlabelled series with a point per step, as Loki returns for literals.
pub fn eval_range(
    plan: &MetricPlan,
    sources: &[SeriesSet],
    start: i64,
    end: i64,
    step: i64,
    opts: &EvalOptions,
) -> Result<Matrix, MetricError> {
    if step <= 0 {
        return Err(MetricError::Invalid(format!("invalid step {step}: must be positive")));
    }
    if end < start {
        return Err(MetricError::Invalid(
            "end timestamp must not be before start time".to_string(),
        ));
    }
    let n = (end - start) / step + 1;
    let n = u32::try_from(n).map_err(|_| MetricError::Invalid(format!("too many steps: {n}")))? as usize;
    let ctx = Ctx {
        sources,
        grid: Grid { start, step, n },
        max_series: opts.max_series,
    };
    let mut series = match eval(plan, &ctx)? {
        Eval::Scalar(v) => vec![StepSeries {
            labels: Labels::default(),
            points: (0..n as u32).map(|i| (i, v)).collect(),
        }],
        Eval::Vector(v) => v,
    };
    check_limit(&series, ctx.max_series)?;
    series.sort_by(|a, b| a.labels.cmp(&b.labels));
    Ok(series
        .into_iter()
        .map(|s| Series {
            points: s.points.iter().map(|&(i, v)| (ctx.grid.t(i as usize), v)).collect(),
            labels: s.labels,
        })
        .collect())
}

/// Evaluates `plan` at the single instant `t`.
pub fn eval_instant(
    plan: &MetricPlan,
    sources: &[SeriesSet],
    t: i64,
    opts: &EvalOptions,
) -> Result<Value, MetricError> {
    let ctx = Ctx {
        sources,
        grid: Grid {
            start: t,
            step: 1,
            n: 1,
        },
        max_series: opts.max_series,
    };
    match eval(plan, &ctx)? {
        Eval::Scalar(v) => Ok(Value::Scalar(v)),
        Eval::Vector(series) => {
            check_limit(&series, ctx.max_series)?;
            let mut out: Vec<Sample> = series
                .into_iter()
                .filter_map(|s| {
                    s.points.first().map(|&(_, value)| Sample {
                        labels: s.labels,
                        value,
                    })
                })
                .collect();
            match plan {
                MetricPlan::VectorAgg { op: VectorOp::Sort, .. } => vector::sort_samples(&mut out, false),
                MetricPlan::VectorAgg {
                    op: VectorOp::SortDesc, ..
                } => vector::sort_samples(&mut out, true),
                _ => out.sort_by(|a, b| a.labels.cmp(&b.labels)),
            }
            Ok(Value::Vector(out))
        }
    }
}

fn check_limit(series: &[StepSeries], max: usize) -> Result<(), MetricError> {
    // Series here are distinct label sets with at least one point (every node merges by labels
    // and drops empty series), so the length is the count Loki compares.
    if series.len() > max {
        return Err(MetricError::SeriesLimit(max));
    }
    Ok(())
}

fn eval(plan: &MetricPlan, ctx: &Ctx<'_>) -> Result<Eval, MetricError> {
    match plan {
        MetricPlan::Literal(v) => Ok(Eval::Scalar(*v)),
        MetricPlan::Vector(v) => Ok(Eval::Vector(vec![StepSeries {
            labels: Labels::default(),
            points: (0..ctx.grid.n as u32).map(|i| (i, *v)).collect(),
        }])),
        MetricPlan::RangeAgg {
            op,
            range_ns,
            offset_ns,
            grouping,
            param,
            source,
        } => {
            let set = ctx
                .sources
                .get(*source)
                .ok_or_else(|| MetricError::Invalid(format!("unknown sample source {source}")))?;
            let w = range::Window {
                range_ns: *range_ns,
                offset_ns: *offset_ns,
            };
            Ok(Eval::Vector(range::eval(
                op,
                w,
                grouping.as_ref(),
                *param,
                set,
                &ctx.grid,
            )?))
        }
        MetricPlan::VectorAgg {
            op,
            grouping,
            param,
            inner,
        } => {
            let input = expect_vector(eval(inner, ctx)?, "vector aggregation")?;
            // Loki shards sum/avg/min/max/count so their wide input never materialises; the
            // others build it whole and trip max_query_series on it.
            if !matches!(
                op,
                VectorOp::Sum | VectorOp::Avg | VectorOp::Min | VectorOp::Max | VectorOp::Count
            ) {
                check_limit(&input, ctx.max_series)?;
            }
            Ok(Eval::Vector(vector::aggregate(*op, grouping.as_ref(), *param, input)?))
        }
        MetricPlan::Binary {
            op,
            lhs,
            rhs,
            return_bool,
            matching,
        } => {
            let l = eval(lhs, ctx)?;
            let r = eval(rhs, ctx)?;
            binary::eval(*op, l, r, *return_bool, matching.as_ref(), ctx.grid.n)
        }
        MetricPlan::LabelReplace {
            inner,
            dst,
            replacement,
            src,
            regex,
        } => {
            let input = expect_vector(eval(inner, ctx)?, "label_replace")?;
            Ok(Eval::Vector(label::label_replace(input, dst, replacement, src, regex)?))
        }
    }
}

fn expect_vector(e: Eval, what: &str) -> Result<Vec<StepSeries>, MetricError> {
    match e {
        Eval::Vector(v) => Ok(v),
        Eval::Scalar(_) => Err(MetricError::Invalid(format!("{what} expects a vector, got a scalar"))),
    }
}
