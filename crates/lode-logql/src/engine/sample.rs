//! Sample extraction for range aggregations: which value an entry yields (1, its bytes, or an
//! unwrapped label), with which labels, and the `sum` grouping pushed down into it.

use std::collections::BTreeMap;

use lode_model::Labels;
use lode_model::api::{QueryStats, Sample, SampleSeries};
use lode_model::labels::Fnv64;

use super::{LogPlan, StreamPipeline, invalid, label_filter, non_empty};
use crate::ast::{self, Expr, RangeAggregation, UnwrapConversion};
use crate::error::Result;
use crate::filter::Pipeline;
use crate::matcher::Selector;
use crate::stages::{self, LabelsBuilder, StagePipeline};

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
