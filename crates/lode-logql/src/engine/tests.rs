use super::*;
use crate::metric;
use lode_model::api::SampleSeries;

/// `(ts, line, structured metadata)` test entries.
type TestEntry<'a> = (i64, &'a str, &'a [(&'a str, &'a str)]);

fn labels(s: &str) -> Labels {
    Labels::parse(s).unwrap()
}

/// Runs `query` over one stream's `(ts, line, metadata)` entries, forward.
fn logs(query: &str, stream: &str, entries: &[TestEntry<'_>], limit: usize) -> Vec<Stream> {
    let plan = LogPlan::parse(query).unwrap();
    let mut c = StreamCollector::new(&plan, limit);
    {
        let mut scan = c.stream(&labels(stream));
        for (ts, line, md) in entries {
            if scan.push(*ts, line, &mut md.iter().copied()).is_break() {
                break;
            }
        }
    }
    c.finish().0
}

#[test]
fn line_filters_only_keep_stream_labels_and_metadata() {
    let out = logs(
        r#"{app="a"} |= "x""#,
        r#"{app="a"}"#,
        &[(1, "x1", &[("t", "1")]), (2, "y", &[]), (3, "x3", &[])],
        10,
    );
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].labels, r#"{app="a"}"#);
    assert_eq!(out[0].entries.len(), 2);
    assert_eq!(out[0].entries[0].metadata, vec![("t".to_string(), "1".to_string())]);
}

#[test]
fn parsers_and_label_filters_split_streams_by_category() {
    let out = logs(
        r#"{app="a"} | logfmt | status >= 500 | line_format "{{.method}} {{.status}}""#,
        r#"{app="a"}"#,
        &[
            (1, "method=GET status=200", &[]),
            (2, "method=POST status=502", &[("trace", "t1")]),
            (3, "garbage", &[]),
        ],
        10,
    );
    assert_eq!(out.len(), 1, "{out:?}");
    let e = &out[0].entries[0];
    assert_eq!((e.ts, e.line.as_str()), (2, "POST 502"));
    assert_eq!(out[0].labels, r#"{app="a"}"#, "stream labels stay indexed only");
    assert_eq!(e.metadata, vec![("trace".to_string(), "t1".to_string())]);
    assert!(
        e.parsed.contains(&("method".to_string(), "POST".to_string())),
        "{:?}",
        e.parsed
    );
}

#[test]
fn filters_are_hoisted_before_parsers_but_not_past_line_format() {
    // `|= "GET"` after line_format sees the new line ("GET" is gone from it).
    let out = logs(
        r#"{app="a"} | logfmt | line_format "{{.status}}" |= "GET""#,
        r#"{app="a"}"#,
        &[(1, "method=GET status=200", &[])],
        10,
    );
    assert!(out.is_empty());
    let plan = LogPlan::parse(r#"{app="a"} | json |= "x" | level="error""#).unwrap();
    assert_eq!(plan.line_filters().filters().len(), 1, "the |= runs on the raw line");
}

#[test]
fn limit_per_stream_breaks_the_scan() {
    let entries: Vec<TestEntry<'_>> = (0..10).map(|i| (i, "l", &[] as &[(&str, &str)])).collect();
    let out = logs(r#"{app="a"}"#, r#"{app="a"}"#, &entries, 3);
    assert_eq!(out[0].entries.len(), 3);
}

fn samples(query: &str, stream: &str, entries: &[TestEntry<'_>]) -> Vec<SampleSeries> {
    let plan = SamplePlan::parse(query).unwrap();
    let mut c = SampleCollector::new(&plan);
    {
        let mut scan = c.stream(&labels(stream));
        for (ts, line, md) in entries {
            scan.push(*ts, line, &mut md.iter().copied());
        }
    }
    c.finish().0
}

#[test]
fn count_bytes_and_unwrap_extraction() {
    let e: &[TestEntry<'_>] = &[
        (1, "level=info duration=1.5s bytes=10", &[]),
        (2, "level=error duration=250ms bytes=x", &[]),
        (3, "level=info no_duration", &[]),
    ];
    let c = samples(r#"count_over_time({app="a"}[1m])"#, r#"{app="a"}"#, e);
    assert_eq!(c.len(), 1);
    assert_eq!(
        c[0].samples.iter().map(|s| s.value).collect::<Vec<_>>(),
        [1.0, 1.0, 1.0]
    );
    let b = samples(r#"bytes_over_time({app="a"}[1m])"#, r#"{app="a"}"#, e);
    assert_eq!(b[0].samples[0].value, 33.0);
    let u = samples(
        r#"sum_over_time({app="a"} | logfmt | unwrap duration(duration) [1m])"#,
        r#"{app="a"}"#,
        e,
    );
    // Series carry the parsed labels minus the unwrapped one; the line without it is skipped.
    assert_eq!(u.len(), 2, "{u:?}");
    let info = u.iter().find(|s| s.labels.contains(r#"level="info""#)).unwrap();
    assert_eq!(info.samples[0].value, 1.5);
    assert!(!info.labels.contains("duration"), "{}", info.labels);
    let bad = samples(
        r#"sum_over_time({app="a"} | logfmt | unwrap bytes [1m])"#,
        r#"{app="a"}"#,
        e,
    );
    assert!(
        bad.iter()
            .any(|s| s.labels.contains(r#"__error__="SampleExtractionErr""#)),
        "{bad:?}"
    );
    let filtered = samples(
        r#"sum_over_time({app="a"} | logfmt | unwrap bytes | __error__="" [1m])"#,
        r#"{app="a"}"#,
        e,
    );
    assert!(filtered.iter().all(|s| !s.labels.contains("__error__")), "{filtered:?}");
}

#[test]
fn metric_queries_map_onto_the_engine() {
    let q = MetricQuery::new(
        &crate::parse_expr(r#"sum by (level) (count_over_time({app="a"} | logfmt [5m] offset 1m)) / 2"#).unwrap(),
    )
    .unwrap();
    assert_eq!(q.sources.len(), 1);
    assert_eq!(q.sources[0].range_ns, 300_000_000_000);
    assert_eq!(q.sources[0].offset_ns, 60_000_000_000);
    assert!(SamplePlan::parse(&q.sources[0].query).is_ok(), "{}", q.sources[0].query);
    let health = MetricQuery::new(&crate::parse_expr("vector(1)+vector(1)").unwrap()).unwrap();
    let v = metric::eval_instant(&health.plan, &[], 4_000_000_000_000_000_000, &Default::default()).unwrap();
    assert_eq!(
        v,
        metric::Value::Vector(vec![metric::Sample {
            labels: Labels::default(),
            value: 2.0
        }])
    );
}

#[test]
fn a_sum_pushes_its_grouping_into_extraction() {
    let q =
        MetricQuery::new(&crate::parse_expr(r#"sum by (level) (count_over_time({app="a"} | logfmt [1m]))"#).unwrap())
            .unwrap();
    assert!(
        q.sources[0].query.starts_with("sum by (level)"),
        "{}",
        q.sources[0].query
    );
    let e: &[TestEntry<'_>] = &[
        (1, "level=info id=1", &[]),
        (2, "level=info id=2", &[]),
        (3, "{bad", &[]),
    ];
    let s = samples(&q.sources[0].query, r#"{app="a"}"#, e);
    // One series per level, not one per line; the line logfmt could not parse is counted too.
    let labels: Vec<&str> = s.iter().map(|s| s.labels.as_str()).collect();
    assert_eq!(labels, [r#"{level="info"}"#, r#"{}"#]);
    // Without a sum, every label is kept.
    let plain = samples(r#"count_over_time({app="a"} | logfmt [1m])"#, r#"{app="a"}"#, e);
    assert_eq!(plain.len(), 3);
}
