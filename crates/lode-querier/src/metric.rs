//! Metric queries: one sample source per range aggregation, fetched from the ingesters and the
//! store over the window the aggregation needs, merged per series with each entry counted once,
//! then evaluated by the LogQL metric engine at each step (or at one instant).

use std::collections::BTreeMap;

use lode_logql::engine::{MetricQuery, SamplePlan, SourceSpec};
use lode_logql::metric::{self, EvalOptions, SeriesSet};
use lode_logql::{Expr, stages::ERROR_LABEL};
use lode_model::api::{MatrixSeries, QueryData, QueryStats, RangeQuery, Sample, VectorSample};
use lode_model::{ApiError, Labels};

use crate::{Querier, split};

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
    /// The samples of one source for evaluation over `[start, end]`.
    async fn fetch_source(
        &self,
        tenant: &str,
        spec: &SourceSpec,
        start: i64,
        end: i64,
    ) -> Result<(SeriesSet, QueryStats), ApiError> {
        let from = start.saturating_sub(spec.range_ns).saturating_sub(spec.offset_ns);
        let to = end.saturating_sub(spec.offset_ns).saturating_add(1);
        // Compiled here so a bad pipeline is a 400 before any piece starts.
        SamplePlan::parse(&spec.query)?;
        let sources = self.read_sources();
        // One piece per core; a failed piece drops (and so cancels) the others.
        let pieces = split::split_even(from, to, self.cfg.parallelism())
            .into_iter()
            .map(|(s, e)| split::Piece::spawn(sources.clone().samples(tenant.to_string(), spec.query.clone(), s, e)));
        let mut stats = QueryStats::default();
        let mut by_series: BTreeMap<String, Vec<Sample>> = BTreeMap::new();
        for (series, s) in futures::future::try_join_all(pieces).await? {
            stats.merge(&s);
            for s in series {
                by_series.entry(s.labels).or_default().extend(s.samples);
            }
        }
        let mut out: SeriesSet = Vec::with_capacity(by_series.len());
        for (printed, mut samples) in by_series {
            let labels =
                Labels::parse(&printed).map_err(|e| ApiError::internal(format!("bad series labels {printed}: {e}")))?;
            if let Some(err) = labels.get(ERROR_LABEL) {
                return Err(pipeline_error(err, &printed));
            }
            // The same entry seen in memory and in the store counts once.
            samples.sort_by(|a, b| a.ts.cmp(&b.ts).then(a.hash.cmp(&b.hash)));
            samples.dedup_by(|a, b| a.ts == b.ts && a.hash == b.hash);
            out.push((labels, samples.into_iter().map(|s| (s.ts, s.value)).collect()));
        }
        Ok((out, stats))
    }

    async fn sources(
        &self,
        tenant: &str,
        q: &MetricQuery,
        start: i64,
        end: i64,
    ) -> Result<(Vec<SeriesSet>, QueryStats), ApiError> {
        let mut stats = QueryStats::default();
        let mut sets = Vec::with_capacity(q.sources.len());
        for spec in &q.sources {
            let (set, s) = self.fetch_source(tenant, spec, start, end).await?;
            stats.merge(&s);
            sets.push(set);
        }
        Ok((sets, stats))
    }

    fn eval_options(&self) -> EvalOptions {
        EvalOptions {
            max_series: self.limits.max_query_series,
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
        let (sets, stats) = self.sources(tenant, &q, start, end).await?;
        let matrix =
            metric::eval_range(&q.plan, &sets, start, end, req.step, &self.eval_options()).map_err(metric_error)?;
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
        let (sets, stats) = self.sources(tenant, &q, t, t).await?;
        let data = match metric::eval_instant(&q.plan, &sets, t, &self.eval_options()).map_err(metric_error)? {
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
