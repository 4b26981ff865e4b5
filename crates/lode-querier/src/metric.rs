//! Metric queries: one sample source per range aggregation, fetched from the ingesters and the
//! store over the window the aggregation needs, merged per series with each entry counted once,
//! then evaluated by the LogQL metric engine at each step (or at one instant).

use std::collections::BTreeMap;

use futures::StreamExt;

use lode_logql::engine::{MetricQuery, SamplePlan, SourceSpec};
use lode_logql::metric::{self, EvalOptions, SeriesSet};
use lode_logql::{Expr, stages::ERROR_LABEL};
use lode_model::api::{MatrixSeries, QueryData, QueryStats, RangeQuery, Sample, VectorSample};
use lode_model::{ApiError, Labels};

use crate::{Querier, split};

/// Longest piece of a metric query's source range: bounds the raw samples held at once.
const METRIC_PIECE_NS: i64 = 15 * 60 * 1_000_000_000;

/// The stretches between window edges of an additive range aggregation. Every window
/// `(t - offset - range, t - offset]` of the query starts and ends on an edge `from + k * g`
/// with `g = gcd(step, range)`, so the sum over a window is the sum of whole stretches, and a
/// stretch's samples can be replaced by one sample carrying their sum, stamped at its end.
struct Buckets {
    from: i64,
    width: i64,
}

impl Buckets {
    fn new(from: i64, range: i64, step: i64) -> Self {
        let width = if step > 0 { gcd(step, range) } else { range };
        Buckets {
            from,
            width: width.max(1),
        }
    }

    /// Adds time-ordered samples into `out`, one per stretch (appending; stretches that
    /// straddle two pieces get one sample from each, which sums the same).
    fn add(&self, out: &mut Vec<(i64, f64)>, samples: &[Sample]) {
        let mut current: Option<(i64, f64)> = None;
        for s in samples {
            // The stretch `(from + k*w, from + (k+1)*w]` holding `ts`, named by its end.
            let k = (s.ts.saturating_sub(self.from).saturating_sub(1)).div_euclid(self.width);
            let end = self.from.saturating_add((k + 1).saturating_mul(self.width));
            match &mut current {
                Some((t, v)) if *t == end => *v += s.value,
                _ => {
                    out.extend(current.take());
                    current = Some((end, s.value));
                }
            }
        }
        out.extend(current);
    }
}

fn gcd(a: i64, b: i64) -> i64 {
    let (mut a, mut b) = (a.unsigned_abs(), b.unsigned_abs());
    while b != 0 {
        (a, b) = (b, a % b);
    }
    i64::try_from(a).unwrap_or(i64::MAX)
}

fn metric_error(e: metric::MetricError) -> ApiError {
    ApiError::new(e.code(), e.to_string())
}

/// Loki's refusal of a series that carries a pipeline error.
fn pipeline_error(err: &str, series: &str) -> ApiError {
    ApiError::bad_request(format!(
        "pipeline error: '{err}' for series: '{series}'.\nUse a label filter to intentionally skip this error. (e.g | __error__!=\"{err}\").\nTo skip all potential errors you can match empty errors.(e.g __error__=\"\")\nThe label filter can also be specified after unwrap. (e.g | unwrap latency | __error__=\"\" )"
    ))
}

impl Querier {
    /// The samples of one source for evaluation at `start, start + step, ..., end` (`step` 0:
    /// the instant `start`). The source's range runs in pieces of at most [`METRIC_PIECE_NS`],
    /// `parallelism` at a time; each piece is de-duplicated as soon as it arrives (every copy of
    /// an entry is in the same piece, which covers all sources for its stretch of time) and,
    /// for additive aggregations, summed into one sample per stretch between window edges. So
    /// memory holds the raw samples of the running pieces plus the compacted rest, not one
    /// sample per line of the whole query.
    async fn fetch_source(
        &self,
        tenant: &str,
        spec: &SourceSpec,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<(SeriesSet, QueryStats), ApiError> {
        let from = start.saturating_sub(spec.range_ns).saturating_sub(spec.offset_ns);
        let to = end.saturating_sub(spec.offset_ns).saturating_add(1);
        // Compiled here so a bad pipeline is a 400 before any piece starts.
        SamplePlan::parse(&spec.query)?;
        let sources = self.read_sources();
        let parallelism = self.cfg.parallelism();
        let len = to.saturating_sub(from);
        let n = usize::try_from(len / METRIC_PIECE_NS + 1)
            .unwrap_or(usize::MAX)
            .max(parallelism);
        let buckets = spec.additive.then(|| Buckets::new(from, spec.range_ns, step));
        let mut pieces = futures::stream::iter(split::split_even(from, to, n))
            .map(|(s, e)| split::Piece::spawn(sources.clone().samples(tenant.to_string(), spec.query.clone(), s, e)))
            .buffer_unordered(parallelism);
        let mut stats = QueryStats::default();
        let mut by_series: BTreeMap<String, Vec<(i64, f64)>> = BTreeMap::new();
        while let Some(piece) = pieces.next().await {
            let (series, s) = piece?;
            stats.merge(&s);
            let mut merged: BTreeMap<String, Vec<Sample>> = BTreeMap::new();
            for s in series {
                merged.entry(s.labels).or_default().extend(s.samples);
            }
            for (printed, mut samples) in merged {
                // The same entry seen in memory and in the store counts once.
                samples.sort_by(|a, b| a.ts.cmp(&b.ts).then(a.hash.cmp(&b.hash)));
                samples.dedup_by(|a, b| a.ts == b.ts && a.hash == b.hash);
                let out = by_series.entry(printed).or_default();
                match &buckets {
                    Some(b) => b.add(out, &samples),
                    None => out.extend(samples.iter().map(|s| (s.ts, s.value))),
                }
            }
        }
        let mut out: SeriesSet = Vec::with_capacity(by_series.len());
        for (printed, mut samples) in by_series {
            let labels = Labels::parse_series(&printed)
                .map_err(|e| ApiError::internal(format!("bad series labels {printed}: {e}")))?;
            if let Some(err) = labels.get(ERROR_LABEL) {
                return Err(pipeline_error(err, &printed));
            }
            // Pieces arrive in any order; stable, so equal times keep their order.
            samples.sort_by_key(|p| p.0);
            out.push((labels, samples));
        }
        Ok((out, stats))
    }

    async fn sources(
        &self,
        tenant: &str,
        q: &MetricQuery,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<(Vec<SeriesSet>, QueryStats), ApiError> {
        let mut stats = QueryStats::default();
        let mut sets = Vec::with_capacity(q.sources.len());
        for spec in &q.sources {
            let (set, s) = self.fetch_source(tenant, spec, start, end, step).await?;
            stats.merge(&s);
            sets.push(set);
        }
        Ok((sets, stats))
    }

    fn eval_options(&self, tenant: &str) -> EvalOptions {
        EvalOptions {
            max_series: self.limits.tenant(tenant).max_query_series,
        }
    }

    /// A metric `query_range`: steps aligned to multiples of `step` as Loki's frontend does.
    pub(crate) async fn metric_range(
        &self,
        tenant: &str,
        expr: &Expr,
        req: &RangeQuery,
    ) -> Result<(QueryData, QueryStats), ApiError> {
        let q = MetricQuery::new(expr)?;
        let (start, end) = metric::align(req.start, req.end, req.step);
        let (sets, stats) = self.sources(tenant, &q, start, end, req.step).await?;
        let matrix = metric::eval_range(&q.plan, &sets, start, end, req.step, &self.eval_options(tenant))
            .map_err(metric_error)?;
        let series = matrix
            .into_iter()
            .map(|s| MatrixSeries {
                labels: s.labels.into_pairs(),
                points: s.points,
            })
            .collect();
        Ok((QueryData::Matrix(series), stats))
    }

    /// A metric instant `query` at `t`.
    pub(crate) async fn metric_instant(
        &self,
        tenant: &str,
        expr: &Expr,
        t: i64,
    ) -> Result<(QueryData, QueryStats), ApiError> {
        let q = MetricQuery::new(expr)?;
        let (sets, stats) = self.sources(tenant, &q, t, t, 0).await?;
        let data = match metric::eval_instant(&q.plan, &sets, t, &self.eval_options(tenant)).map_err(metric_error)? {
            // Loki stamps a scalar result (an instant query of a bare literal such as `2` or
            // `-2^2`) with the zero time, whatever `time` was asked: `"result":[0,"2"]`.
            metric::Value::Scalar(v) => QueryData::Scalar(0, v),
            metric::Value::Vector(samples) => QueryData::Vector(
                samples
                    .into_iter()
                    .map(|s| VectorSample {
                        labels: s.labels.into_pairs(),
                        ts: t,
                        value: s.value,
                    })
                    .collect(),
            ),
        };
        Ok((data, stats))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lode_logql::engine::MetricQuery;

    /// Evaluates `query` over one series of `samples`, raw and compacted into stretches.
    fn both(query: &str, samples: &[Sample], start: i64, end: i64, step: i64) -> (String, String) {
        let q = MetricQuery::new(&lode_logql::parse_expr(query).unwrap()).unwrap();
        let spec = &q.sources[0];
        assert!(spec.additive, "{query}");
        let labels = Labels::parse(r#"{app="a"}"#).unwrap();
        let raw: SeriesSet = vec![(labels.clone(), samples.iter().map(|s| (s.ts, s.value)).collect())];
        let from = start - spec.range_ns - spec.offset_ns;
        let b = Buckets::new(from, spec.range_ns, step);
        let mut compact = Vec::new();
        // Two halves, as two pieces would deliver them.
        let (a, c) = samples.split_at(samples.len() / 2);
        b.add(&mut compact, a);
        b.add(&mut compact, c);
        compact.sort_by_key(|p| p.0);
        assert!(compact.len() <= samples.len());
        let opts = EvalOptions { max_series: 100 };
        let eval = |set: SeriesSet| {
            format!(
                "{:?}",
                metric::eval_range(&q.plan, &[set], start, end, step, &opts).unwrap()
            )
        };
        (eval(raw), eval(vec![(labels, compact)]))
    }

    #[test]
    fn compacted_stretches_give_the_same_answers() {
        let s = 1_000_000_000i64;
        let mut x: u64 = 42;
        let mut samples = Vec::new();
        let mut ts = 1_000 * s;
        for _ in 0..3000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ts += (x >> 33) as i64 % (3 * s);
            samples.push(Sample {
                ts,
                hash: x,
                value: ((x >> 40) % 8) as f64 / 4.0,
            });
        }
        let (start, end) = (1_300 * s, 5_000 * s);
        for (query, step) in [
            (r#"count_over_time({app="a"}[1m])"#, 60 * s),
            (r#"count_over_time({app="a"}[5m])"#, 60 * s),
            (r#"rate({app="a"}[90s])"#, 17 * s),
            (r#"bytes_over_time({app="a"}[1m] offset 7s)"#, 25 * s),
            (r#"sum_over_time({app="a"} | unwrap x [2m])"#, 45 * s),
            (r#"absent_over_time({app="a"}[10s])"#, 60 * s),
        ] {
            let mut samples = samples.clone();
            if query.starts_with("count") || query.starts_with("rate") {
                samples.iter_mut().for_each(|s| s.value = 1.0);
            }
            let (raw, compact) = both(query, &samples, start, end, step);
            assert_eq!(raw, compact, "{query}");
        }
    }
}
