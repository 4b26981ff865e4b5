//! The metadata and Drilldown read path: `series`, `index/stats`, `index/volume[_range]` and
//! `detected_labels` are computed from stream summaries (label sets and chunk sizes, from the
//! ingesters' memory and the label index, never from chunk contents); `detected_fields`,
//! `detected_field/{name}/values` and `patterns` sample the newest lines through the log query
//! path and analyse them (`detect.rs`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use async_trait::async_trait;

use lode_logql::engine::LogPlan;
use lode_model::api::{
    ChunkSummary, DetectedField, DetectedFieldsRequest, DetectedLabel, IndexStats, LogPattern, MatrixSeries,
    MetadataHandler, PatternsRequest, QueryData, QueryResponse, QueryStats, RangeQuery, SeriesRequest, StreamSummary,
    StreamsRequest, VectorSample, VolumeAggregation, VolumeRequest,
};
use lode_model::{ApiError, Direction, Labels, Stream};

use crate::{Querier, detect};

/// Labels Drilldown always wants offered, whatever their values look like (Loki's list).
const STATIC_LABELS: [&str; 4] = ["cluster", "namespace", "instance", "pod"];
/// Lines `patterns` samples.
const PATTERN_LINES: usize = 5000;

/// `None` for "every stream": an empty selector or `{}`.
fn selector_or_all(text: Option<&str>) -> Option<&str> {
    text.filter(|t| {
        let compact: String = t.chars().filter(|c| !c.is_whitespace()).collect();
        !compact.is_empty() && compact != "{}"
    })
}

fn check_order(start: i64, end: i64) -> Result<(), ApiError> {
    if end < start {
        return Err(ApiError::bad_request(
            "end timestamp must not be before or equal to start time",
        ));
    }
    Ok(())
}

/// The share of a chunk's span `[from, through]` that falls in `[lo, hi)`: index stats and
/// volumes count a chunk that straddles the range's edge in proportion, as Loki does.
fn share(c: &ChunkSummary, lo: i64, hi: i64) -> f64 {
    if c.through <= c.from {
        return if c.from >= lo && c.from < hi { 1.0 } else { 0.0 };
    }
    let a = c.from.max(lo);
    let b = c.through.min(hi);
    if b <= a {
        return 0.0;
    }
    (b - a) as f64 / (c.through - c.from) as f64
}

/// Index statistics of streams over `[start, end)`.
pub(crate) fn index_stats(streams: &[StreamSummary], start: i64, end: i64) -> IndexStats {
    let mut s = IndexStats::default();
    let (mut bytes, mut entries) = (0.0, 0.0);
    for st in streams {
        if st.chunks.is_empty() {
            continue;
        }
        s.streams += 1;
        for c in &st.chunks {
            s.chunks += 1;
            let f = if c.from >= start && c.through < end {
                1.0
            } else {
                share(c, start, end)
            };
            bytes += c.bytes as f64 * f;
            entries += c.entries as f64 * f;
        }
    }
    s.bytes = bytes.round() as u64;
    s.entries = entries.round() as u64;
    s
}

/// A volume result's label set.
type Key = Vec<(String, String)>;

/// The result keys a stream's bytes are counted under.
fn volume_keys(labels: &Labels, targets: &[String], by: VolumeAggregation) -> Vec<Key> {
    let picked: Vec<(String, String)> = if targets.is_empty() {
        labels.pairs().to_vec()
    } else {
        labels
            .iter()
            .filter(|(n, _)| targets.iter().any(|t| t == n))
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    };
    match by {
        VolumeAggregation::Series if picked.is_empty() => vec![],
        VolumeAggregation::Series => vec![picked],
        VolumeAggregation::Labels => picked.into_iter().map(|(n, _)| vec![(n, String::new())]).collect(),
    }
}

/// Volumes (bytes) per key: one total for `index/volume`, per step for `volume_range`; the
/// `limit` largest by total, largest first.
pub(crate) fn volume(streams: &[StreamSummary], req: &VolumeRequest, targets: &[String]) -> QueryData {
    // key -> bucket index -> bytes (bucket 0 only without a step)
    let mut acc: BTreeMap<Key, BTreeMap<i64, f64>> = BTreeMap::new();
    let step = req.step.filter(|s| *s > 0);
    for st in streams {
        let keys = volume_keys(&st.labels, targets, req.aggregate_by);
        if keys.is_empty() {
            continue;
        }
        for c in &st.chunks {
            let mut add = |bucket: i64, lo: i64, hi: i64| {
                let v = c.bytes as f64 * share(c, lo, hi);
                if v > 0.0 {
                    for k in &keys {
                        *acc.entry(k.clone()).or_default().entry(bucket).or_default() += v;
                    }
                }
            };
            match step {
                None => add(0, req.start, req.end),
                Some(step) => {
                    let first = (c.from.max(req.start) - req.start) / step;
                    let last = (c.through.min(req.end - 1).max(req.start) - req.start) / step;
                    for k in first..=last {
                        let lo = req.start + k * step;
                        add(k, lo, (lo + step).min(req.end));
                    }
                }
            }
        }
    }
    let mut totals: Vec<(f64, Key, BTreeMap<i64, f64>)> = acc
        .into_iter()
        .map(|(k, b)| (b.values().sum(), k, b))
        .filter(|(t, _, _)| *t >= 0.5)
        .collect();
    totals.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    totals.truncate(req.limit);
    match step {
        None => QueryData::Vector(
            totals
                .into_iter()
                .map(|(t, labels, _)| VectorSample {
                    labels,
                    ts: req.end,
                    value: t.round(),
                })
                .collect(),
        ),
        Some(step) => QueryData::Matrix(
            totals
                .into_iter()
                .map(|(_, labels, buckets)| MatrixSeries {
                    labels,
                    points: buckets
                        .into_iter()
                        .map(|(k, v)| (req.start + k * step, v.round()))
                        .filter(|(_, v)| *v > 0.0)
                        .collect(),
                })
                .collect(),
        ),
    }
}

/// Loki's rule for `detected_labels`: a label whose values are all IDs (numbers or UUIDs) is
/// not worth a Drilldown tab; up to two values of `0`/`1` are a flag, not IDs.
fn reject_label(values: &BTreeSet<&str>) -> bool {
    if values.is_empty() {
        return true;
    }
    if values.len() <= 2 && values.iter().all(|v| *v == "0" || *v == "1") {
        return false;
    }
    values.iter().all(|v| v.parse::<f64>().is_ok() || detect::is_uuid(v))
}

pub(crate) fn detected_labels(streams: &[StreamSummary]) -> Vec<DetectedLabel> {
    let mut values: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for st in streams {
        for (n, v) in st.labels.iter() {
            values.entry(n).or_default().insert(v);
        }
    }
    values
        .into_iter()
        .filter(|(n, v)| (STATIC_LABELS.contains(n) && !v.is_empty()) || !reject_label(v))
        .map(|(n, v)| DetectedLabel {
            label: n.to_string(),
            cardinality: v.len() as u64,
        })
        .collect()
}

impl Querier {
    /// Stream summaries from the ingesters (when in range) and the store, merged per stream with
    /// each chunk once.
    pub(crate) async fn summaries(
        &self,
        tenant: &str,
        selector: Option<&str>,
        start: i64,
        end: i64,
    ) -> Result<Vec<StreamSummary>, ApiError> {
        check_order(start, end)?;
        let selector = selector_or_all(selector);
        let plan = selector.map(LogPlan::parse).transpose()?;
        let mut merged: HashMap<Labels, BTreeSet<ChunkSummary>> = HashMap::new();
        if self.ingesters_in_range(end) {
            let req = StreamsRequest {
                start,
                end,
                selector: selector.map(str::to_string),
            };
            let answers =
                futures::future::join_all(self.ingesters().iter().map(|i| i.stream_summaries(tenant, &req))).await;
            for a in crate::tolerate(answers, self.max_ingester_errors)? {
                for s in a {
                    merged.entry(s.labels).or_default().extend(s.chunks);
                }
            }
        }
        for s in self
            .store
            .stream_summaries(tenant, plan.as_ref().map(LogPlan::selector), start, end)
            .await?
        {
            merged.entry(s.labels).or_default().extend(s.chunks);
        }
        let mut out: Vec<StreamSummary> = merged
            .into_iter()
            .map(|(labels, chunks)| StreamSummary {
                labels,
                chunks: chunks.into_iter().collect(),
            })
            .collect();
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(out)
    }

    /// The newest `limit` lines of a log query in `[start, end)`.
    async fn sample_lines(
        &self,
        tenant: &str,
        query: &str,
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<Stream>, ApiError> {
        check_order(start, end)?;
        self.check_range(tenant, start, end)?;
        // A metric query or a bad pipeline is the caller's 400 before anything is read.
        LogPlan::parse(query)?;
        let req = RangeQuery {
            query: query.to_string(),
            start,
            end,
            limit: limit.max(1),
            direction: Direction::Backward,
            step: 1,
            interval: 0,
        };
        Ok(self.select_logs(tenant, &req).await?.0)
    }
}

#[async_trait]
impl MetadataHandler for Querier {
    async fn series(&self, tenant: &str, req: SeriesRequest) -> Result<Vec<Labels>, ApiError> {
        let groups: Vec<Option<&str>> = if req.groups.is_empty() {
            vec![None]
        } else {
            req.groups.iter().map(|g| Some(g.as_str())).collect()
        };
        let mut out: BTreeSet<Labels> = BTreeSet::new();
        for g in groups {
            // A `{}` among other groups would select everything: refuse it as Loki does.
            if g.is_some() && selector_or_all(g).is_none() && req.groups.len() > 1 {
                return Err(ApiError::bad_request(format!(
                    "0 matchers in group: {}",
                    g.unwrap_or_default()
                )));
            }
            self.within_timeout(tenant, async {
                for s in self.summaries(tenant, g, req.start, req.end).await? {
                    out.insert(s.labels);
                }
                Ok(())
            })
            .await?;
        }
        Ok(out.into_iter().collect())
    }

    async fn index_stats(&self, tenant: &str, req: StreamsRequest) -> Result<IndexStats, ApiError> {
        self.check_range(tenant, req.start, req.end)?;
        let streams = self
            .within_timeout(
                tenant,
                self.summaries(tenant, req.selector.as_deref(), req.start, req.end),
            )
            .await?;
        Ok(index_stats(&streams, req.start, req.end))
    }

    async fn volume(&self, tenant: &str, req: VolumeRequest) -> Result<QueryResponse, ApiError> {
        let started = Instant::now();
        self.check_range(tenant, req.start, req.end)?;
        let selector = selector_or_all(Some(&req.selector));
        let targets: Vec<String> = if !req.target_labels.is_empty() {
            req.target_labels.clone()
        } else {
            match selector {
                // Loki aggregates by the label names the matchers use.
                Some(s) => {
                    let names: BTreeSet<String> = LogPlan::parse(s)?
                        .selector()
                        .matchers()
                        .iter()
                        .map(|m| m.name().to_string())
                        .collect();
                    names.into_iter().collect()
                }
                None => Vec::new(),
            }
        };
        let streams = self
            .within_timeout(tenant, self.summaries(tenant, selector, req.start, req.end))
            .await?;
        Ok(QueryResponse {
            data: volume(&streams, &req, &targets),
            stats: QueryStats::default(),
            exec_time: started.elapsed().as_secs_f64(),
        })
    }

    async fn detected_labels(&self, tenant: &str, req: StreamsRequest) -> Result<Vec<DetectedLabel>, ApiError> {
        self.check_range(tenant, req.start, req.end)?;
        let streams = self
            .within_timeout(
                tenant,
                self.summaries(tenant, req.selector.as_deref(), req.start, req.end),
            )
            .await?;
        Ok(detected_labels(&streams))
    }

    async fn detected_fields(&self, tenant: &str, req: DetectedFieldsRequest) -> Result<Vec<DetectedField>, ApiError> {
        let streams = self
            .within_timeout(
                tenant,
                self.sample_lines(tenant, &req.query, req.start, req.end, req.line_limit),
            )
            .await?;
        Ok(detect::detect_fields(&streams, req.limit))
    }

    async fn detected_field_values(
        &self,
        tenant: &str,
        name: &str,
        req: DetectedFieldsRequest,
    ) -> Result<Vec<String>, ApiError> {
        let streams = self
            .within_timeout(
                tenant,
                self.sample_lines(tenant, &req.query, req.start, req.end, req.line_limit),
            )
            .await?;
        Ok(detect::field_values(&streams, name, req.limit))
    }

    async fn patterns(&self, tenant: &str, req: PatternsRequest) -> Result<Vec<LogPattern>, ApiError> {
        if req.step <= 0 {
            return Err(ApiError::bad_request(
                "zero or negative query resolution step widths are not accepted. Try a positive integer",
            ));
        }
        let streams = self
            .within_timeout(
                tenant,
                self.sample_lines(tenant, &req.query, req.start, req.end, PATTERN_LINES),
            )
            .await?;
        Ok(detect::patterns(&streams, req.start, req.step))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(from: i64, through: i64, bytes: u64, entries: u64) -> ChunkSummary {
        ChunkSummary {
            from,
            through,
            bytes,
            entries,
            checksum: Some(from as u32),
        }
    }

    fn stream(labels: &str, chunks: Vec<ChunkSummary>) -> StreamSummary {
        StreamSummary {
            labels: Labels::parse(labels).unwrap(),
            chunks,
        }
    }

    #[test]
    fn stats_prorate_chunks_at_the_edges() {
        let s = vec![
            stream(r#"{app="a"}"#, vec![chunk(0, 100, 1000, 10), chunk(100, 200, 500, 5)]),
            stream(r#"{app="b"}"#, vec![chunk(150, 160, 10, 1)]),
        ];
        let st = index_stats(&s, 50, 1000);
        assert_eq!((st.streams, st.chunks), (2, 3));
        assert_eq!(st.bytes, 500 + 500 + 10);
        assert_eq!(st.entries, 5 + 5 + 1);
        assert_eq!(index_stats(&[], 0, 1), IndexStats::default());
    }

    fn vreq(step: Option<i64>, by: VolumeAggregation, limit: usize) -> VolumeRequest {
        VolumeRequest {
            selector: String::new(),
            start: 0,
            end: 100,
            limit,
            target_labels: vec![],
            aggregate_by: by,
            step,
        }
    }

    #[test]
    fn volume_by_series_labels_and_steps() {
        let s = vec![
            stream(r#"{app="a", pod="1"}"#, vec![chunk(0, 9, 100, 1)]),
            stream(r#"{app="a", pod="2"}"#, vec![chunk(50, 59, 50, 1)]),
            stream(r#"{app="b", pod="3"}"#, vec![chunk(10, 19, 400, 1)]),
        ];
        let targets = vec!["app".to_string()];
        let QueryData::Vector(v) = volume(&s, &vreq(None, VolumeAggregation::Series, 100), &targets) else {
            panic!()
        };
        let got: Vec<_> = v.iter().map(|s| (s.labels.clone(), s.value)).collect();
        assert_eq!(
            got,
            vec![
                (vec![("app".into(), "b".into())], 400.0),
                (vec![("app".into(), "a".into())], 150.0)
            ]
        );
        assert_eq!(v[0].ts, 100);
        // limit keeps the largest
        let QueryData::Vector(v) = volume(&s, &vreq(None, VolumeAggregation::Series, 1), &targets) else {
            panic!()
        };
        assert_eq!(v.len(), 1);
        // by label names
        let QueryData::Vector(v) = volume(&s, &vreq(None, VolumeAggregation::Labels, 10), &[]) else {
            panic!()
        };
        let got: Vec<_> = v.iter().map(|s| (s.labels.clone(), s.value)).collect();
        assert_eq!(
            got,
            vec![
                (vec![("app".into(), String::new())], 550.0),
                (vec![("pod".into(), String::new())], 550.0)
            ]
        );
        // steps: buckets [0,25) [25,50) [50,75) [75,100)
        let QueryData::Matrix(m) = volume(&s, &vreq(Some(25), VolumeAggregation::Series, 10), &targets) else {
            panic!()
        };
        assert_eq!(m[0].labels, vec![("app".to_string(), "b".to_string())]);
        assert_eq!(m[0].points, vec![(0, 400.0)]);
        assert_eq!(m[1].points, vec![(0, 100.0), (50, 50.0)]);
    }

    #[test]
    fn detected_labels_drop_id_like_labels() {
        let s = vec![
            stream(r#"{app="a", req="1", flag="0", pod="7"}"#, vec![]),
            stream(r#"{app="b", req="2", flag="1", pod="8"}"#, vec![]),
            stream(
                r#"{app="b", req="3", trace="123e4567-e89b-12d3-a456-426614174000"}"#,
                vec![],
            ),
        ];
        let got: Vec<(String, u64)> = detected_labels(&s)
            .into_iter()
            .map(|d| (d.label, d.cardinality))
            .collect();
        assert_eq!(
            got,
            vec![("app".into(), 2), ("flag".into(), 2), ("pod".into(), 2)],
            "req is all numbers and trace all UUIDs; pod is kept as a static label"
        );
    }

    #[test]
    fn empty_selectors_mean_all() {
        assert_eq!(selector_or_all(Some(" { } ")), None);
        assert_eq!(selector_or_all(Some("")), None);
        assert_eq!(selector_or_all(None), None);
        assert_eq!(selector_or_all(Some(r#"{a="b"}"#)), Some(r#"{a="b"}"#));
    }
}
