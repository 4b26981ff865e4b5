//! Turns a parsed query into what runs it. A log query becomes a [`LogPlan`]: the line filters
//! that can run on the raw line (hoisted in front of parsers, as Loki does) plus a
//! [`StagePipeline`] for the rest. A range aggregation becomes a [`SamplePlan`]: a log plan plus
//! the sample extractor (`1` per line, line bytes, or an unwrapped label). Ingesters and the store
//! feed each stream's entries to a [`StreamCollector`] or [`SampleCollector`], so both sides of
//! the query path share one implementation. [`MetricQuery`] maps the metric AST onto the
//! engine's [`crate::metric::MetricPlan`], with one sample source per range aggregation
//! (`plan.rs`); sample extraction lives in `sample.rs`. `json`/`logfmt` parsers get extraction
//! hints from the stages and the series key after them (`hints.rs`).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::ControlFlow;

use lode_model::api::QueryStats;
use lode_model::{Direction, Entry, Labels, Stream};

use crate::ast::{self, Expr, LabelFilterExpr, LogExpr, ParserStage, Stage};
use crate::error::{LogqlError, Result};
use crate::filter::{LineFilter, Pipeline};
use crate::matcher::Selector;
use crate::stages::{self, LabelsBuilder, StagePipeline};
use hints::Needs;

fn invalid(e: impl std::fmt::Display) -> LogqlError {
    LogqlError::Validation(e.to_string())
}

/// A compiled log query: selector, hoisted line filters, remaining stages.
pub struct LogPlan {
    selector: Selector,
    filters: Pipeline,
    stages: Option<StagePipeline>,
}

impl LogPlan {
    pub fn new(expr: &LogExpr) -> Result<LogPlan> {
        LogPlan::with_needs(expr, Some(&Needs::All))
    }

    /// Compiles with `downstream` telling what reads the labels after the pipeline (a log
    /// query's output reads all; a range aggregation may read a few), for parser hints; `None`
    /// compiles without hints (the reference the hinted pipelines are tested against).
    fn with_needs(expr: &LogExpr, downstream: Option<&Needs>) -> Result<LogPlan> {
        // Line filters before the first stage that rewrites the line test the raw line.
        let first_rewrite = expr
            .stages
            .iter()
            .position(|s| matches!(s, Stage::LineFormat(_) | Stage::Parser(ParserStage::Unpack)))
            .unwrap_or(expr.stages.len());
        let (head, tail) = expr.stages.split_at(first_rewrite);
        let hoisted: Vec<Stage> = head
            .iter()
            .filter(|s| matches!(s, Stage::LineFilter(_)))
            .cloned()
            .collect();
        let rest: Vec<&Stage> = head
            .iter()
            .filter(|s| !matches!(s, Stage::LineFilter(_)))
            .chain(tail.iter())
            .collect();
        let filters = Pipeline::new(&LogExpr {
            selector: expr.selector.clone(),
            stages: hoisted,
        })?;
        let stages = if rest.is_empty() {
            None
        } else {
            Some(StagePipeline::new(match downstream {
                Some(d) => compile_stages(&rest, d)?,
                None => rest.into_iter().map(compile_stage).collect::<Result<Vec<_>>>()?,
            }))
        };
        Ok(LogPlan {
            selector: expr.selector.clone(),
            filters,
            stages,
        })
    }

    /// Parses and compiles a log query (`{...} | ...`); metric queries are refused.
    pub fn parse(query: &str) -> Result<LogPlan> {
        match crate::parse_expr(query)? {
            Expr::Log(e) => LogPlan::new(&e),
            _ => Err(invalid("expected a log query")),
        }
    }

    pub fn selector(&self) -> &Selector {
        &self.selector
    }

    /// The line filters that run on the raw line (a chunk scanner's fast path may use them).
    pub fn line_filters(&self) -> &Pipeline {
        &self.filters
    }

    fn stream(&self, labels: &Labels) -> StreamPipeline {
        StreamPipeline {
            stages: self.stages.clone(),
            lbs: self
                .stages
                .as_ref()
                .map(|_| LabelsBuilder::new(labels.pairs().to_vec())),
            buf: String::new(),
        }
    }
}

/// Compiles the stages after the hoisted line filters, giving `json`/`logfmt` parsers an
/// extraction hint when what follows them reads only some labels, or, for a parser that starts
/// the pipeline and is followed by label filters, a [`stages::LazyParse`] that filters on a
/// hinted parse first.
fn compile_stages(rest: &[&Stage], downstream: &Needs) -> Result<Vec<Box<dyn stages::Stage>>> {
    let mut out = Vec::with_capacity(rest.len());
    let mut i = 0;
    while i < rest.len() {
        let stage = rest[i];
        i += 1;
        if !hints::hintable(stage) {
            out.push(compile_stage(stage)?);
            continue;
        }
        if let Some(h) = hints::needs_after(&rest[i..], downstream).hint() {
            out.push(hinted_parser(stage, Some(h))?);
            continue;
        }
        let n_filters = rest[i..]
            .iter()
            .take_while(|s| matches!(s, Stage::LabelFilter(_)))
            .count();
        let filters = &rest[i..i + n_filters];
        // Only as the first stage: the labels it restores for the full parse are the line's own.
        let lazy_hint = (i == 1 && n_filters > 0)
            .then(|| hints::needs_after(filters, &Needs::none()).hint())
            .flatten();
        match lazy_hint {
            Some(h) => {
                let fs = filters
                    .iter()
                    .filter_map(|s| match s {
                        Stage::LabelFilter(f) => Some(label_filter(f)),
                        _ => None,
                    })
                    .collect::<Result<Vec<_>>>()?;
                out.push(Box::new(stages::LazyParse::new(
                    hinted_parser(stage, Some(h))?,
                    hinted_parser(stage, None)?,
                    fs,
                )));
                i += n_filters;
            }
            None => out.push(compile_stage(stage)?),
        }
    }
    Ok(out)
}

/// A `json`/`logfmt` parser (see [`hints::hintable`]) with an optional hint.
fn hinted_parser(stage: &Stage, hint: Option<stages::ExtractHint>) -> Result<Box<dyn stages::Stage>> {
    Ok(match (stage, hint) {
        (Stage::Parser(ParserStage::Json(ps)), Some(h)) if ps.is_empty() => {
            Box::new(stages::JsonParser::new(Vec::new()).map_err(invalid)?.with_hint(h))
        }
        (
            Stage::Parser(ParserStage::Logfmt {
                strict,
                keep_empty,
                params,
            }),
            Some(h),
        ) if params.is_empty() => Box::new(stages::LogfmtParser::new(*strict, *keep_empty, Vec::new()).with_hint(h)),
        (stage, _) => compile_stage(stage)?,
    })
}

fn compile_stage(stage: &Stage) -> Result<Box<dyn stages::Stage>> {
    let params = |ps: &[ast::ExtractParam]| -> Vec<(String, String)> {
        ps.iter()
            .map(|p| (p.label.clone(), p.path.clone().unwrap_or_else(|| p.label.clone())))
            .collect()
    };
    Ok(match stage {
        Stage::LineFilter(f) => Box::new(stages::LineFilterStage(LineFilter::new(f).map_err(invalid)?)),
        Stage::Parser(ParserStage::Json(ps)) => Box::new(stages::JsonParser::new(params(ps)).map_err(invalid)?),
        Stage::Parser(ParserStage::Logfmt {
            strict,
            keep_empty,
            params: ps,
        }) => Box::new(stages::LogfmtParser::new(*strict, *keep_empty, params(ps))),
        Stage::Parser(ParserStage::Regexp(re)) => Box::new(stages::RegexpParser::new(re).map_err(invalid)?),
        Stage::Parser(ParserStage::Pattern(p)) => Box::new(stages::PatternParser::new(p).map_err(invalid)?),
        Stage::Parser(ParserStage::Unpack) => Box::new(stages::Unpack::new()),
        Stage::LabelFilter(f) => Box::new(label_filter(f)?),
        Stage::LineFormat(t) => Box::new(stages::LineFormat::new(t).map_err(invalid)?),
        Stage::LabelFormat(ops) => Box::new(
            stages::LabelFormat::new(
                ops.iter()
                    .map(|o| {
                        let op = match &o.src {
                            ast::LabelFmtSource::Rename(s) => stages::LabelFormatOp::Rename(s.clone()),
                            ast::LabelFmtSource::Template(t) => stages::LabelFormatOp::Template(t.clone()),
                        };
                        (o.dst.clone(), op)
                    })
                    .collect(),
            )
            .map_err(invalid)?,
        ),
        Stage::Drop(sel) => Box::new(stages::Drop::new(selections(sel))),
        Stage::Keep(sel) => Box::new(stages::Keep::new(selections(sel))),
        Stage::Decolorize => Box::new(stages::Decolorize::new()),
    })
}

fn selections(sel: &[ast::LabelSelection]) -> Vec<(String, Option<crate::matcher::Matcher>)> {
    sel.iter()
        .map(|s| match s {
            ast::LabelSelection::Name(n) => (n.clone(), None),
            ast::LabelSelection::Matcher(m) => (m.name().to_string(), Some(m.clone())),
        })
        .collect()
}

fn cmp(op: ast::CmpOp) -> stages::CmpOp {
    match op {
        ast::CmpOp::Eq => stages::CmpOp::Eq,
        ast::CmpOp::Neq => stages::CmpOp::Ne,
        ast::CmpOp::Gt => stages::CmpOp::Gt,
        ast::CmpOp::Gte => stages::CmpOp::Ge,
        ast::CmpOp::Lt => stages::CmpOp::Lt,
        ast::CmpOp::Lte => stages::CmpOp::Le,
    }
}

fn label_filter(f: &LabelFilterExpr) -> Result<stages::LabelFilter> {
    Ok(match f {
        LabelFilterExpr::And(a, b) => stages::LabelFilter::and(label_filter(a)?, label_filter(b)?),
        LabelFilterExpr::Or(a, b) => stages::LabelFilter::or(label_filter(a)?, label_filter(b)?),
        LabelFilterExpr::Matcher(m) => stages::LabelFilter::matcher(m.clone()),
        LabelFilterExpr::Number { label, op, value } => stages::LabelFilter::numeric(label, cmp(*op), *value),
        LabelFilterExpr::Duration { label, op, value } => {
            stages::LabelFilter::duration(label, cmp(*op), &format!("{}ns", value.as_nanos())).map_err(invalid)?
        }
        LabelFilterExpr::Bytes { label, op, value } => {
            stages::LabelFilter::bytes(label, cmp(*op), &format!("{value}B")).map_err(invalid)?
        }
        LabelFilterExpr::Ip {
            label,
            negated,
            pattern,
        } => stages::LabelFilter::ip(label, !negated, pattern).map_err(invalid)?,
    })
}

/// One stream's copy of the stages (they keep per-line scratch state).
struct StreamPipeline {
    stages: Option<StagePipeline>,
    lbs: Option<LabelsBuilder>,
    /// The line being rewritten by stages; reused so a line costs a copy, not an allocation.
    buf: String,
}

/// An entry after the pipeline, with its labels by category.
struct Processed<'b> {
    line: Cow<'b, str>,
    /// `None` when no stage ran: the stream's labels and the entry's metadata are unchanged.
    labels: Option<&'b LabelsBuilder>,
}

impl StreamPipeline {
    fn run<'b, 'l: 'b>(
        &'b mut self,
        filters: &Pipeline,
        ts: i64,
        line: &'l str,
        metadata: &mut dyn Iterator<Item = (&'l str, &'l str)>,
    ) -> Option<Processed<'b>> {
        if !filters.matches(line) {
            return None;
        }
        let (Some(stages), Some(lbs)) = (self.stages.as_mut(), self.lbs.as_mut()) else {
            return Some(Processed {
                line: Cow::Borrowed(line),
                labels: None,
            });
        };
        lbs.reset_with_metadata(metadata);
        self.buf.clear();
        self.buf.push_str(line);
        if !stages.process(ts, &mut self.buf, lbs) {
            return None;
        }
        Some(Processed {
            line: Cow::Borrowed(self.buf.as_str()),
            labels: Some(lbs),
        })
    }
}

fn non_empty<'a>(it: impl Iterator<Item = (&'a str, &'a str)>) -> Vec<(String, String)> {
    // Sized up front: `filter` hides the length, and growing the vector showed in profiles.
    let mut out = Vec::with_capacity(it.size_hint().1.unwrap_or(0));
    out.extend(
        it.filter(|(_, v)| !v.is_empty())
            .map(|(n, v)| (n.to_string(), v.to_string())),
    );
    out
}

/// Collects one query's matching entries from one source, stream by stream, grouped by their
/// labels after the pipeline, at most `limit` per result stream, in the order they are pushed.
pub struct StreamCollector<'p> {
    plan: &'p LogPlan,
    limit: usize,
    out: BTreeMap<String, Vec<Entry>>,
    pub stats: QueryStats,
}

impl<'p> StreamCollector<'p> {
    pub fn new(plan: &'p LogPlan, limit: usize) -> Self {
        StreamCollector {
            plan,
            limit,
            out: BTreeMap::new(),
            stats: QueryStats::default(),
        }
    }

    /// A pusher for one stream's entries, visited in direction order.
    pub fn stream<'c>(&'c mut self, labels: &Labels) -> StreamScan<'c, 'p> {
        let pipe = self.plan.stream(labels);
        StreamScan {
            printed: labels.to_string(),
            collector: self,
            pipe,
            taken: 0,
        }
    }

    /// The collected streams.
    pub fn finish(self) -> (Vec<Stream>, QueryStats) {
        let streams = self
            .out
            .into_iter()
            .map(|(labels, entries)| Stream { labels, entries })
            .collect();
        (streams, self.stats)
    }
}

pub struct StreamScan<'c, 'p> {
    printed: String,
    collector: &'c mut StreamCollector<'p>,
    pipe: StreamPipeline,
    taken: usize,
}

impl StreamScan<'_, '_> {
    /// Offers one entry; `Break` once this stream gave `limit` entries (the caller may stop).
    pub fn push<'a>(
        &mut self,
        ts: i64,
        line: &'a str,
        metadata: &mut dyn Iterator<Item = (&'a str, &'a str)>,
    ) -> ControlFlow<()> {
        let c = &mut *self.collector;
        c.stats.lines_processed += 1;
        c.stats.bytes_processed += line.len() as u64;
        let Some(p) = self.pipe.run(&c.plan.filters, ts, line, metadata) else {
            return ControlFlow::Continue(());
        };
        c.stats.post_filter_lines += 1;
        let (labels, entry) = match p.labels {
            None => {
                let md: Vec<(String, String)> = non_empty(&mut *metadata);
                (
                    Cow::Borrowed(self.printed.as_str()),
                    Entry {
                        ts,
                        line: p.line.into_owned(),
                        metadata: md,
                        parsed: Vec::new(),
                    },
                )
            }
            Some(lbs) => {
                // Most stages leave the stream labels alone: reuse their printed form then.
                let stream = if lbs.stream_unchanged() {
                    Cow::Borrowed(self.printed.as_str())
                } else {
                    Cow::Owned(Labels::from_sorted_unchecked(non_empty(lbs.stream())).to_string())
                };
                let entry = Entry {
                    ts,
                    line: p.line.into_owned(),
                    metadata: non_empty(lbs.metadata()),
                    parsed: non_empty(lbs.parsed()),
                };
                (stream, entry)
            }
        };
        // Copy the stream's key only for its first entry.
        match c.out.get_mut(labels.as_ref()) {
            Some(v) => v.push(entry),
            None => {
                c.out.insert(labels.into_owned(), vec![entry]);
            }
        }
        self.taken += 1;
        if self.taken >= c.limit {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
}

/// Sorts a stream's entries in direction order and drops exact duplicates (the same entry from
/// two sources).
pub fn sort_dedup(entries: &mut Vec<Entry>, dir: Direction) {
    match dir {
        Direction::Forward => entries.sort(),
        Direction::Backward => entries.sort_by(|a, b| b.ts.cmp(&a.ts).then_with(|| a.cmp(b))),
    }
    entries.dedup();
}

mod hints;
mod plan;
mod sample;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_hints;

pub use plan::{MetricQuery, SourceSpec};
pub use sample::{SAMPLE_EXTRACTION_ERR, SampleCollector, SamplePlan, SampleScan, pushdown_grouping};
