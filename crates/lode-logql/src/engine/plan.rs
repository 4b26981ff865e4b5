//! Maps the metric AST onto the metric engine's plan, with one sample source per range
//! aggregation (its LogQL text is what ingesters and the store are asked for).

use lode_model::Labels;

use super::invalid;
use super::sample::pushdown_grouping;
use crate::ast::{self, Expr};
use crate::error::Result;
use crate::matcher::MatchOp;
use crate::metric::{self, MetricPlan};

/// One sample source of a metric query: the range aggregation's text (sent to ingesters and
/// the store) and the window it needs.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceSpec {
    pub query: String,
    pub range_ns: i64,
    pub offset_ns: i64,
    /// The aggregation needs only the sum of the values in each window (count, rate, bytes,
    /// sum, absent), so a querier may add up samples that fall in the same stretch between
    /// window edges before evaluating, and hold one sample per stretch instead of one per line.
    pub additive: bool,
}

/// A metric query mapped onto the engine.
pub struct MetricQuery {
    pub plan: MetricPlan,
    pub sources: Vec<SourceSpec>,
}

impl MetricQuery {
    pub fn new(expr: &Expr) -> Result<MetricQuery> {
        let mut sources = Vec::new();
        let plan = to_plan(expr, &mut sources)?;
        Ok(MetricQuery { plan, sources })
    }
}

fn nanos(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

fn grouping(g: &Option<ast::Grouping>) -> Option<metric::Grouping> {
    g.as_ref().map(|g| metric::Grouping {
        without: g.without,
        labels: g.labels.clone(),
    })
}

fn to_plan(expr: &Expr, sources: &mut Vec<SourceSpec>) -> Result<MetricPlan> {
    Ok(match expr {
        Expr::Log(_) => return Err(invalid("a log query is not a metric query")),
        Expr::Literal(v) => MetricPlan::Literal(*v),
        Expr::Vector(v) => MetricPlan::Vector(*v),
        Expr::RangeAggregation(agg) => {
            let unwrapped = agg.range.unwrap.is_some();
            let op = match agg.op {
                ast::RangeOp::CountOverTime => metric::RangeOp::CountOverTime,
                ast::RangeOp::Rate if unwrapped => metric::RangeOp::UnwrappedRate,
                ast::RangeOp::Rate => metric::RangeOp::Rate,
                ast::RangeOp::BytesOverTime => metric::RangeOp::BytesOverTime,
                ast::RangeOp::BytesRate => metric::RangeOp::BytesRate,
                ast::RangeOp::AbsentOverTime => {
                    let eq: Vec<(String, String)> = agg
                        .range
                        .log
                        .selector
                        .matchers()
                        .iter()
                        .filter(|m| m.op() == MatchOp::Eq)
                        .map(|m| (m.name().to_string(), m.value().to_string()))
                        .collect();
                    metric::RangeOp::AbsentOverTime {
                        labels: Labels::from_pairs(eq).unwrap_or_default(),
                    }
                }
                ast::RangeOp::RateCounter => metric::RangeOp::RateCounter,
                ast::RangeOp::SumOverTime => metric::RangeOp::SumOverTime,
                ast::RangeOp::AvgOverTime => metric::RangeOp::AvgOverTime,
                ast::RangeOp::MinOverTime => metric::RangeOp::MinOverTime,
                ast::RangeOp::MaxOverTime => metric::RangeOp::MaxOverTime,
                ast::RangeOp::StddevOverTime => metric::RangeOp::StddevOverTime,
                ast::RangeOp::StdvarOverTime => metric::RangeOp::StdvarOverTime,
                ast::RangeOp::QuantileOverTime => metric::RangeOp::QuantileOverTime,
                ast::RangeOp::FirstOverTime => metric::RangeOp::FirstOverTime,
                ast::RangeOp::LastOverTime => metric::RangeOp::LastOverTime,
            };
            let range_ns = nanos(agg.range.range);
            let offset_ns = agg.range.offset.map(nanos).unwrap_or(0);
            let additive = matches!(
                op,
                metric::RangeOp::CountOverTime
                    | metric::RangeOp::Rate
                    | metric::RangeOp::UnwrappedRate
                    | metric::RangeOp::BytesOverTime
                    | metric::RangeOp::BytesRate
                    | metric::RangeOp::SumOverTime
                    | metric::RangeOp::AbsentOverTime { .. }
            );
            sources.push(SourceSpec {
                query: Expr::RangeAggregation(agg.clone()).to_string(),
                range_ns,
                offset_ns,
                additive,
            });
            MetricPlan::RangeAgg {
                op,
                range_ns,
                offset_ns,
                grouping: grouping(&agg.grouping),
                param: agg.param,
                source: sources.len() - 1,
            }
        }
        Expr::VectorAggregation(v) if pushdown_grouping(v).is_some() => {
            let inner = to_plan(&v.inner, sources)?;
            // The source extracts with the sum's grouping: send it the sum's text.
            if let Some(last) = sources.last_mut() {
                last.query = Expr::VectorAggregation(v.clone()).to_string();
            }
            MetricPlan::VectorAgg {
                op: metric::VectorOp::Sum,
                grouping: grouping(&v.grouping),
                param: None,
                inner: Box::new(inner),
            }
        }
        Expr::VectorAggregation(v) => MetricPlan::VectorAgg {
            op: match v.op {
                ast::VectorOp::Sum => metric::VectorOp::Sum,
                ast::VectorOp::Avg => metric::VectorOp::Avg,
                ast::VectorOp::Min => metric::VectorOp::Min,
                ast::VectorOp::Max => metric::VectorOp::Max,
                ast::VectorOp::Count => metric::VectorOp::Count,
                ast::VectorOp::Stddev => metric::VectorOp::Stddev,
                ast::VectorOp::Stdvar => metric::VectorOp::Stdvar,
                ast::VectorOp::Topk => metric::VectorOp::Topk,
                ast::VectorOp::Bottomk => metric::VectorOp::Bottomk,
                ast::VectorOp::Sort => metric::VectorOp::Sort,
                ast::VectorOp::SortDesc => metric::VectorOp::SortDesc,
            },
            grouping: grouping(&v.grouping),
            param: v.param.map(|k| k as f64),
            inner: Box::new(to_plan(&v.inner, sources)?),
        },
        Expr::BinOp(b) => MetricPlan::Binary {
            op: match b.op {
                ast::BinOp::Add => metric::BinOp::Add,
                ast::BinOp::Sub => metric::BinOp::Sub,
                ast::BinOp::Mul => metric::BinOp::Mul,
                ast::BinOp::Div => metric::BinOp::Div,
                ast::BinOp::Mod => metric::BinOp::Mod,
                ast::BinOp::Pow => metric::BinOp::Pow,
                ast::BinOp::Eq => metric::BinOp::Eq,
                ast::BinOp::Neq => metric::BinOp::Ne,
                ast::BinOp::Gt => metric::BinOp::Gt,
                ast::BinOp::Gte => metric::BinOp::Ge,
                ast::BinOp::Lt => metric::BinOp::Lt,
                ast::BinOp::Lte => metric::BinOp::Le,
                ast::BinOp::And => metric::BinOp::And,
                ast::BinOp::Or => metric::BinOp::Or,
                ast::BinOp::Unless => metric::BinOp::Unless,
            },
            lhs: Box::new(to_plan(&b.lhs, sources)?),
            rhs: Box::new(to_plan(&b.rhs, sources)?),
            return_bool: b.modifier.return_bool,
            matching: b.modifier.matching.as_ref().map(|m| metric::VectorMatching {
                on: m.on,
                labels: m.labels.clone(),
                group: m.group.as_ref().map(|g| match g {
                    ast::GroupSide::Left(l) => metric::GroupSide::Left(l.clone()),
                    ast::GroupSide::Right(l) => metric::GroupSide::Right(l.clone()),
                }),
            }),
        },
        Expr::LabelReplace(l) => MetricPlan::LabelReplace {
            inner: Box::new(to_plan(&l.inner, sources)?),
            dst: l.dst.clone(),
            replacement: l.replacement.clone(),
            src: l.src.clone(),
            regex: l.regex.clone(),
        },
    })
}
