//! Sample extraction for range aggregations: which value an entry yields (1, its bytes, or an
//! unwrapped label), with which labels, and the `sum` grouping pushed down into it.

use std::collections::BTreeMap;

use lode_model::Labels;
use lode_model::api::{QueryStats, Sample, SampleSeries};

use super::hints::Needs;
use super::{LogPlan, StreamPipeline, invalid, label_filter};
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
        SamplePlan::with_group(agg, None, true)
    }

    /// With the pushed-down grouping, which also tells the parsers which labels to extract
    /// (unless `hints` is false: the reference for tests).
    pub(super) fn with_group(agg: &RangeAggregation, group: Option<ast::Grouping>, hints: bool) -> Result<SamplePlan> {
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
        let needs = downstream_needs(&extractor, &agg.range.unwrap, group.as_ref());
        Ok(SamplePlan {
            log: LogPlan::with_needs(&agg.range.log, hints.then_some(&needs))?,
            extractor,
            post_filters,
            group: group.map(sorted_grouping),
        })
    }

    /// Parses the text of one source as the querier sends it: a range aggregation, or one
    /// wrapped in the `sum` whose grouping was pushed down (see [`pushdown_grouping`]).
    pub fn parse(query: &str) -> Result<SamplePlan> {
        SamplePlan::parse_with(query, true)
    }

    /// [`parse`](Self::parse), with parser hints or without (the tests' reference).
    pub(super) fn parse_with(query: &str, hints: bool) -> Result<SamplePlan> {
        match crate::parse_expr(query)? {
            Expr::RangeAggregation(agg) => SamplePlan::with_group(&agg, None, hints),
            Expr::VectorAggregation(v) => match (&*v.inner, pushdown_grouping(&v)) {
                (Expr::RangeAggregation(agg), Some(group)) => SamplePlan::with_group(agg, Some(group), hints),
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

/// What reads a line's labels after the pipeline: with a pushed-down `by`, only the kept
/// labels (and the unwrapped label and post-unwrap filters); otherwise every label, as each
/// becomes part of a series.
fn downstream_needs(extractor: &Extractor, unwrap: &Option<ast::Unwrap>, group: Option<&ast::Grouping>) -> Needs {
    let Some(g) = group.filter(|g| !g.without) else {
        return Needs::All;
    };
    let mut needs = Needs::none();
    for l in &g.labels {
        needs.add(l);
    }
    if let Extractor::Unwrap { label, .. } = extractor {
        needs.add(label);
        // A failed conversion is recorded only on a line without an error yet.
        needs.add_errors();
        for f in unwrap.iter().flat_map(|u| &u.post_filters) {
            needs.add_label_filter(f);
        }
    }
    needs
}

/// A `by` grouping's labels sorted and unique, as the series key is built in that order.
fn sorted_grouping(mut g: ast::Grouping) -> ast::Grouping {
    if !g.without {
        g.labels.sort();
        g.labels.dedup();
    }
    g
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
        let printed = labels.to_string();
        SampleScan {
            grouped: grouped(printed.clone(), self.plan.group.as_ref()),
            key: String::new(),
            printed,
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
    /// `printed` as the pushed-down grouping keeps it: the key of lines no stage touched.
    grouped: String,
    /// The current line's series key, reused across lines.
    key: String,
    collector: &'c mut SampleCollector<'p>,
    pipe: StreamPipeline,
}

/// Identity of an entry for de-duplication across sources: its line and metadata. Ingesters and
/// the store both compute it here (so all nodes of a cluster must run the same version of it).
/// wyhash-style mixing ([`hash_bytes`]): FNV-1a byte by byte cost a seventh of a count query.
fn entry_hash(line: &str, metadata: &[(String, String)]) -> u64 {
    let mut h = hash_bytes(0x243f_6a88_85a3_08d3, line.as_bytes());
    for (n, v) in metadata {
        h = hash_bytes(h, n.as_bytes());
        h = hash_bytes(h, v.as_bytes());
    }
    h
}

const K0: u64 = 0xa076_1d64_78bd_642f;
const K1: u64 = 0xe703_7ed1_a0b4_28db;

/// 128-bit multiply folded to 64 bits.
#[inline]
fn mum(a: u64, b: u64) -> u64 {
    let r = u128::from(a) * u128::from(b);
    (r as u64) ^ (r >> 64) as u64
}

/// Little-endian `u64` / `u32` at the start of `b` (which holds at least that many bytes).
#[inline]
fn le64(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[..8]);
    u64::from_le_bytes(w)
}

#[inline]
fn le32(b: &[u8]) -> u64 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[..4]);
    u64::from(u32::from_le_bytes(w))
}

/// Mixes `b` (and its length, so concatenations differ) into `h`: two independent lanes over
/// 32-byte blocks (the multiplies do not wait on each other), then wyhash's overlapping reads
/// for the last 1 to 32 bytes.
fn hash_bytes(h: u64, b: &[u8]) -> u64 {
    let mut h1 = h ^ mum(b.len() as u64 ^ K0, h ^ K1);
    let mut h2 = h1 ^ K0;
    let mut rest = b;
    while rest.len() > 32 {
        h1 = mum(le64(rest) ^ K0, le64(&rest[8..]) ^ h1);
        h2 = mum(le64(&rest[16..]) ^ K1, le64(&rest[24..]) ^ h2);
        rest = &rest[32..];
    }
    if rest.len() > 16 {
        h2 = mum(le64(rest) ^ K1, le64(&rest[8..]) ^ h2);
        rest = &rest[16..];
    }
    let n = rest.len();
    let (a, z) = match n {
        8..=16 => (le64(rest), le64(&rest[n - 8..])),
        4..=7 => (le32(rest), le32(&rest[n - 4..])),
        1..=3 => (
            u64::from(rest[0]) << 16 | u64::from(rest[n >> 1]) << 8 | u64::from(rest[n - 1]),
            0,
        ),
        _ => (0, 0),
    };
    mum(a ^ K0 ^ h2, z ^ h1)
}

impl SampleScan<'_, '_> {
    pub fn push<'a>(&mut self, ts: i64, line: &'a str, metadata: &mut dyn Iterator<Item = (&'a str, &'a str)>) {
        let c = &mut *self.collector;
        c.stats.lines_processed += 1;
        c.stats.bytes_processed += line.len() as u64;
        // The metadata is needed for the entry's identity; collect it once.
        let md: Vec<(String, String)> = metadata.map(|(n, v)| (n.to_string(), v.to_string())).collect();
        let mut md_iter = md.iter().map(|(n, v)| (n.as_str(), v.as_str()));
        let (line_len, staged) = match self.pipe.run(&c.plan.log.filters, ts, line, &mut md_iter) {
            Some(p) => (p.line.len(), p.labels.is_some()),
            None => return,
        };
        c.stats.post_filter_lines += 1;
        let group = c.plan.group.as_ref();
        let key = &mut self.key;
        let value = match (&c.plan.extractor, self.pipe.lbs.as_mut().filter(|_| staged)) {
            (Extractor::Count | Extractor::Bytes, None) => {
                key.clear();
                if md.is_empty() {
                    key.push_str(&self.grouped);
                } else {
                    key.push_str(&grouped(labels_with_metadata(&self.printed, &md), group));
                }
                if c.plan.extractor == Extractor::Count {
                    1.0
                } else {
                    line_len as f64
                }
            }
            (Extractor::Count, Some(lbs)) => {
                write_key(key, lbs, None, group);
                1.0
            }
            (Extractor::Bytes, Some(lbs)) => {
                write_key(key, lbs, None, group);
                line_len as f64
            }
            (Extractor::Unwrap { label, conversion }, Some(lbs)) => {
                let Some(raw) = lbs.get(label) else {
                    return; // lines without the unwrapped label are skipped, as in Loki
                };
                let value = match convert(raw, *conversion) {
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
                write_key(key, lbs, Some(label), group);
                value
            }
            (Extractor::Unwrap { .. }, None) => return,
        };
        let sample = Sample {
            ts,
            hash: entry_hash(line, &md),
            value,
        };
        // Most lines land in an existing series: look up by the reused key, copy it only once.
        match c.out.get_mut(key.as_str()) {
            Some(v) => v.push(sample),
            None => {
                c.out.insert(key.clone(), vec![sample]);
            }
        }
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

/// Writes the series key of a processed entry into `key`: every label, categories merged
/// (parsed wins), without `skip` and what `group` drops; printed as [`Labels`] prints.
fn write_key(key: &mut String, lbs: &LabelsBuilder, skip: Option<&str>, group: Option<&ast::Grouping>) {
    key.clear();
    key.push('{');
    let mut first = true;
    let mut put = |n: &str, v: &str| {
        if !first {
            key.push_str(", ");
        }
        first = false;
        key.push_str(n);
        key.push('=');
        push_quoted(key, v);
    };
    // `by (...)` (sorted and unique at plan time): look up only the kept labels.
    if let Some(g) = group.filter(|g| !g.without) {
        for n in g.labels.iter().filter(|n| Some(n.as_str()) != skip) {
            if let Some(v) = lbs.get(n).filter(|v| !v.is_empty() || lbs.kept_empty(n)) {
                put(n, v);
            }
        }
    } else {
        for (n, v) in lbs.labels() {
            if (!v.is_empty() || lbs.kept_empty(n)) && Some(n) != skip && keeps(group, n) {
                put(n, v);
            }
        }
    }
    key.push('}');
}

/// `v` quoted as [`lode_model::labels::write_quoted`] does, without its per-char path when
/// nothing needs escaping.
fn push_quoted(out: &mut String, v: &str) {
    if v.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20 || b == 0x7f) {
        // Writing into a String cannot fail.
        let _ = lode_model::labels::write_quoted(out, v);
    } else {
        out.push('"');
        out.push_str(v);
        out.push('"');
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_hash_tells_entries_apart() {
        let mut seen = std::collections::HashSet::new();
        // Every length through the block and tail paths, and one-byte differences anywhere.
        for len in 0..80 {
            let base: String = (0..len).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
            assert!(seen.insert(entry_hash(&base, &[])), "len {len}");
            for at in 0..len {
                let mut b = base.clone().into_bytes();
                b[at] = b'#';
                assert!(seen.insert(entry_hash(std::str::from_utf8(&b).unwrap(), &[])));
            }
        }
        // Where the line ends and metadata begins is part of the identity.
        let md = |n: &str, v: &str| vec![(n.to_string(), v.to_string())];
        assert_ne!(entry_hash("ab", &[]), entry_hash("a", &md("b", "")));
        assert_ne!(entry_hash("a", &md("b", "c")), entry_hash("a", &md("bc", "")));
        assert_eq!(entry_hash("a", &md("b", "c")), entry_hash("a", &md("b", "c")));
    }
}
