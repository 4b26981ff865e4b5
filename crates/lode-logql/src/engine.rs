//! Turns a parsed query into what runs it. A log query becomes a [`LogPlan`]: the line filters
//! that can run on the raw line (hoisted in front of parsers, as Loki does) plus a
//! [`StagePipeline`] for the rest. A range aggregation becomes a [`SamplePlan`]: a log plan plus
//! the sample extractor (`1` per line, line bytes, or an unwrapped label). Ingesters and the store
//! feed each stream's entries to a [`StreamCollector`] or [`SampleCollector`], so both sides of
//! the query path share one implementation. [`MetricQuery`] maps the metric AST onto the
//! engine's [`MetricPlan`], with one sample source per range aggregation.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::ControlFlow;

use lode_model::api::{QueryStats, Sample, SampleSeries};
use lode_model::labels::Fnv64;
use lode_model::{Direction, Entry, Labels, Stream};

use crate::ast::{self, Expr, LabelFilterExpr, LogExpr, ParserStage, RangeAggregation, Stage, UnwrapConversion};
use crate::error::{LogqlError, Result};
use crate::filter::{LineFilter, Pipeline};
use crate::matcher::{MatchOp, Selector};
use crate::metric::{self, MetricPlan};
use crate::stages::{self, LabelsBuilder, StagePipeline};

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
            Some(StagePipeline::new(
                rest.into_iter().map(compile_stage).collect::<Result<Vec<_>>>()?,
            ))
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
    it.filter(|(_, v)| !v.is_empty())
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
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
                    self.printed.clone(),
                    Entry {
                        ts,
                        line: p.line.into_owned(),
                        metadata: md,
                        parsed: Vec::new(),
                    },
                )
            }
            Some(lbs) => {
                let stream = Labels::from_sorted_unchecked(non_empty(lbs.stream()));
                let entry = Entry {
                    ts,
                    line: p.line.into_owned(),
                    metadata: non_empty(lbs.metadata()),
                    parsed: non_empty(lbs.parsed()),
                };
                (stream.to_string(), entry)
            }
        };
        c.out.entry(labels).or_default().push(entry);
        self.taken += 1;
        if self.taken >= c.limit {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
}

/// What a range aggregation takes from each entry.
#[derive(Debug, Clone, PartialEq)]
enum Extractor {
    Count,
    Bytes,
    Unwrap {
        label: String,
        conversion: UnwrapConversion,
    },
}

/// A compiled range aggregation's sample extraction: log plan, extractor, post-unwrap filters.
pub struct SamplePlan {
    log: LogPlan,
    extractor: Extractor,
    post_filters: Vec<stages::LabelFilter>,
    /// An outer `sum by/without (...)` pushed into extraction: series keep only what the sum
    /// keeps, so a parser's per-line labels never become one series per line.
    group: Option<ast::Grouping>,
}

/// `__error__` value for a failed unwrap conversion, as Loki names it.
pub const SAMPLE_EXTRACTION_ERR: &str = "SampleExtractionErr";

impl SamplePlan {
    pub fn new(agg: &RangeAggregation) -> Result<SamplePlan> {
        let log = LogPlan::new(&agg.range.log)?;
        let (extractor, post_filters) = match &agg.range.unwrap {
            Some(u) => (
                Extractor::Unwrap {
                    label: u.label.clone(),
                    conversion: u.conversion,
                },
                u.post_filters.iter().map(label_filter).collect::<Result<Vec<_>>>()?,
            ),
            None => {
                let e = match agg.op {
                    ast::RangeOp::BytesOverTime | ast::RangeOp::BytesRate => Extractor::Bytes,
                    _ => Extractor::Count,
                };
                (e, Vec::new())
            }
        };
        Ok(SamplePlan {
            log,
            extractor,
            post_filters,
            group: None,
        })
    }

    /// Parses the text of one source as the querier sends it: a range aggregation, or one
    /// wrapped in the `sum` whose grouping was pushed down (see [`pushdown_grouping`]).
    pub fn parse(query: &str) -> Result<SamplePlan> {
        match crate::parse_expr(query)? {
            Expr::RangeAggregation(agg) => SamplePlan::new(&agg),
            Expr::VectorAggregation(v) => match (&*v.inner, pushdown_grouping(&v)) {
                (Expr::RangeAggregation(agg), Some(group)) => {
                    let mut plan = SamplePlan::new(agg)?;
                    plan.group = Some(group);
                    Ok(plan)
                }
                _ => Err(invalid("expected a range aggregation")),
            },
            _ => Err(invalid("expected a range aggregation")),
        }
    }

    pub fn selector(&self) -> &Selector {
        self.log.selector()
    }

    pub fn line_filters(&self) -> &Pipeline {
        self.log.line_filters()
    }
}

/// Collects samples of one range aggregation from one source, per series.
pub struct SampleCollector<'p> {
    plan: &'p SamplePlan,
    out: BTreeMap<String, Vec<Sample>>,
    pub stats: QueryStats,
}

impl<'p> SampleCollector<'p> {
    pub fn new(plan: &'p SamplePlan) -> Self {
        SampleCollector {
            plan,
            out: BTreeMap::new(),
            stats: QueryStats::default(),
        }
    }

    pub fn stream<'c>(&'c mut self, labels: &Labels) -> SampleScan<'c, 'p> {
        // Unwrap always needs the label set, so it always runs the stage machinery.
        let mut pipe = self.plan.log.stream(labels);
        if pipe.stages.is_none() && matches!(self.plan.extractor, Extractor::Unwrap { .. }) {
            pipe = StreamPipeline {
                stages: Some(StagePipeline::default()),
                lbs: Some(LabelsBuilder::new(labels.pairs().to_vec())),
                buf: String::new(),
            };
        }
        SampleScan {
            printed: labels.to_string(),
            collector: self,
            pipe,
        }
    }

    pub fn finish(self) -> (Vec<SampleSeries>, QueryStats) {
        let series = self
            .out
            .into_iter()
            .map(|(labels, samples)| SampleSeries { labels, samples })
            .collect();
        (series, self.stats)
    }
}

pub struct SampleScan<'c, 'p> {
    printed: String,
    collector: &'c mut SampleCollector<'p>,
    pipe: StreamPipeline,
}

/// Identity of an entry for de-duplication across sources: its line and metadata.
fn entry_hash(line: &str, metadata: &[(String, String)]) -> u64 {
    let mut h = Fnv64::new();
    h.write(line.as_bytes());
    for (n, v) in metadata {
        h.write(&[0xff]);
        h.write(n.as_bytes());
        h.write(&[0xfe]);
        h.write(v.as_bytes());
    }
    h.finish()
}

impl SampleScan<'_, '_> {
    pub fn push<'a>(&mut self, ts: i64, line: &'a str, metadata: &mut dyn Iterator<Item = (&'a str, &'a str)>) {
        let c = &mut *self.collector;
        c.stats.lines_processed += 1;
        c.stats.bytes_processed += line.len() as u64;
        // The metadata is needed for the entry's identity; collect it once.
        let md: Vec<(String, String)> = metadata.map(|(n, v)| (n.to_string(), v.to_string())).collect();
        let hash = entry_hash(line, &md);
        let mut md_iter = md.iter().map(|(n, v)| (n.as_str(), v.as_str()));
        let (line_len, staged) = match self.pipe.run(&c.plan.log.filters, ts, line, &mut md_iter) {
            Some(p) => (p.line.len(), p.labels.is_some()),
            None => return,
        };
        c.stats.post_filter_lines += 1;
        let group = c.plan.group.as_ref();
        let (labels, value) = match (&c.plan.extractor, self.pipe.lbs.as_mut().filter(|_| staged)) {
            (Extractor::Count, None) => (grouped(labels_with_metadata(&self.printed, &md), group), 1.0),
            (Extractor::Bytes, None) => (
                grouped(labels_with_metadata(&self.printed, &md), group),
                line_len as f64,
            ),
            (Extractor::Count, Some(lbs)) => (all_labels(lbs, None, group), 1.0),
            (Extractor::Bytes, Some(lbs)) => (all_labels(lbs, None, group), line_len as f64),
            (Extractor::Unwrap { label, conversion }, Some(lbs)) => {
                let Some(raw) = lbs.get(label).map(str::to_string) else {
                    return; // lines without the unwrapped label are skipped, as in Loki
                };
                let value = match convert(&raw, *conversion) {
                    Some(v) => v,
                    None => {
                        if !lbs.has_err() {
                            lbs.set_err(SAMPLE_EXTRACTION_ERR);
                        }
                        0.0
                    }
                };
                for f in &c.plan.post_filters {
                    if !f.test(lbs) {
                        return;
                    }
                }
                (all_labels(lbs, Some(label), group), value)
            }
            (Extractor::Unwrap { .. }, None) => return,
        };
        c.out.entry(labels).or_default().push(Sample { ts, hash, value });
    }
}

fn convert(raw: &str, conversion: UnwrapConversion) -> Option<f64> {
    match conversion {
        UnwrapConversion::None => raw.trim().parse::<f64>().ok(),
        UnwrapConversion::Duration | UnwrapConversion::DurationSeconds => {
            stages::parse_go_duration(raw.trim()).map(|ns| ns as f64 / 1e9)
        }
        UnwrapConversion::Bytes => stages::parse_bytes(raw.trim()).map(|b| b as f64),
    }
}

/// A series' printed labels: stream labels plus the entry's structured metadata.
fn labels_with_metadata(printed: &str, md: &[(String, String)]) -> String {
    if md.is_empty() {
        return printed.to_string();
    }
    let mut pairs = Labels::parse(printed).map(Labels::into_pairs).unwrap_or_default();
    for (n, v) in md.iter().filter(|(_, v)| !v.is_empty()) {
        match pairs.iter_mut().find(|(k, _)| k == n) {
            Some(slot) => slot.1 = v.clone(),
            None => pairs.push((n.clone(), v.clone())),
        }
    }
    Labels::from_sorted_unchecked(pairs).to_string()
}

/// Every label of a processed entry, categories merged (parsed wins), without `skip`.
fn all_labels(lbs: &LabelsBuilder, skip: Option<&str>, group: Option<&ast::Grouping>) -> String {
    // `by (...)`: look up only the kept labels instead of copying every label of the line.
    if let Some(g) = group.filter(|g| !g.without) {
        let pairs: Vec<(String, String)> = g
            .labels
            .iter()
            .filter(|n| Some(n.as_str()) != skip)
            .filter_map(|n| lbs.get(n).filter(|v| !v.is_empty()).map(|v| (n.clone(), v.to_string())))
            .collect();
        return Labels::from_sorted_unchecked(pairs).to_string();
    }
    let pairs: Vec<(String, String)> = non_empty(lbs.labels().into_iter())
        .into_iter()
        .filter(|(n, _)| Some(n.as_str()) != skip && keeps(group, n))
        .collect();
    Labels::from_sorted_unchecked(pairs).to_string()
}

fn keeps(group: Option<&ast::Grouping>, name: &str) -> bool {
    match group {
        None => true,
        Some(g) => g.labels.iter().any(|l| l == name) != g.without,
    }
}

fn grouped(printed: String, group: Option<&ast::Grouping>) -> String {
    match group {
        None => printed,
        Some(_) => {
            let pairs = Labels::parse(&printed).map(Labels::into_pairs).unwrap_or_default();
            Labels::from_sorted_unchecked(pairs.into_iter().filter(|(n, _)| keeps(group, n)).collect()).to_string()
        }
    }
}

/// Loki's push-down: a `sum` over a range aggregation whose result is itself a sum of per-line
/// values (count, bytes, rate, sum) may drop, at extraction, every label the `sum` drops. Loki
/// does the same, which is also why such queries count lines whose parser failed instead of
/// refusing them. Returns the grouping to apply (`sum(...)` keeps no label).
pub fn pushdown_grouping(v: &ast::VectorAggregation) -> Option<ast::Grouping> {
    let Expr::RangeAggregation(agg) = &*v.inner else {
        return None;
    };
    let summable = matches!(
        agg.op,
        ast::RangeOp::CountOverTime
            | ast::RangeOp::Rate
            | ast::RangeOp::BytesOverTime
            | ast::RangeOp::BytesRate
            | ast::RangeOp::SumOverTime
    );
    if v.op != ast::VectorOp::Sum || !summable || agg.grouping.is_some() {
        return None;
    }
    Some(v.grouping.clone().unwrap_or(ast::Grouping {
        without: false,
        labels: Vec::new(),
    }))
}

/// One sample source of a metric query: the range aggregation's text (sent to ingesters and
/// the store) and the window it needs.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceSpec {
    pub query: String,
    pub range_ns: i64,
    pub offset_ns: i64,
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
            sources.push(SourceSpec {
                query: Expr::RangeAggregation(agg.clone()).to_string(),
                range_ns,
                offset_ns,
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

/// Sorts a stream's entries in direction order and drops exact duplicates (the same entry from
/// two sources).
pub fn sort_dedup(entries: &mut Vec<Entry>, dir: Direction) {
    match dir {
        Direction::Forward => entries.sort(),
        Direction::Backward => entries.sort_by(|a, b| b.ts.cmp(&a.ts).then_with(|| a.cmp(b))),
    }
    entries.dedup();
}

#[cfg(test)]
mod tests;
