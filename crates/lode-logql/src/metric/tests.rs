//! Range aggregations, vector aggregations, label_replace, limits and step alignment on small
//! hand-made series with known answers. Binary operators are in `tests_binary.rs`.

use super::*;

pub(super) const S: i64 = 1_000_000_000;

pub(super) fn l(s: &str) -> Labels {
    Labels::parse(s).unwrap()
}

/// A sample source from `(labels, [(seconds, value)])`.
pub(super) fn src(series: &[(&str, &[(i64, f64)])]) -> SeriesSet {
    series
        .iter()
        .map(|(ls, pts)| (l(ls), pts.iter().map(|&(t, v)| (t * S, v)).collect()))
        .collect()
}

pub(super) fn ra(op: RangeOp, range_s: i64) -> MetricPlan {
    MetricPlan::RangeAgg {
        op,
        range_ns: range_s * S,
        offset_ns: 0,
        grouping: None,
        param: None,
        source: 0,
    }
}

pub(super) fn va(op: VectorOp, grouping: Option<Grouping>, param: Option<f64>, inner: MetricPlan) -> MetricPlan {
    MetricPlan::VectorAgg {
        op,
        grouping,
        param,
        inner: Box::new(inner),
    }
}

pub(super) fn by(names: &[&str]) -> Option<Grouping> {
    Some(Grouping {
        without: false,
        labels: names.iter().map(|s| s.to_string()).collect(),
    })
}

fn without(names: &[&str]) -> Option<Grouping> {
    Some(Grouping {
        without: true,
        labels: names.iter().map(|s| s.to_string()).collect(),
    })
}

/// Range evaluation in seconds; returns `(labels text, [(seconds, value)])` per series.
pub(super) fn run(
    plan: &MetricPlan,
    set: &SeriesSet,
    start: i64,
    end: i64,
    step: i64,
) -> Vec<(String, Vec<(i64, f64)>)> {
    eval_range(
        plan,
        std::slice::from_ref(set),
        start * S,
        end * S,
        step * S,
        &EvalOptions::default(),
    )
    .unwrap()
    .into_iter()
    .map(|s| {
        (
            s.labels.to_string(),
            s.points.into_iter().map(|(t, v)| (t / S, v)).collect(),
        )
    })
    .collect()
}

/// Instant evaluation at `t` seconds; returns `(labels text, value)` in result order.
pub(super) fn inst(plan: &MetricPlan, set: &SeriesSet, t: i64) -> Vec<(String, f64)> {
    match eval_instant(plan, std::slice::from_ref(set), t * S, &EvalOptions::default()).unwrap() {
        Value::Vector(v) => v.into_iter().map(|s| (s.labels.to_string(), s.value)).collect(),
        Value::Scalar(x) => panic!("expected a vector, got scalar {x}"),
    }
}

/// The values of a single-series result at an instant.
fn one(plan: &MetricPlan, set: &SeriesSet, t: i64) -> f64 {
    let v = inst(plan, set, t);
    assert_eq!(v.len(), 1, "{v:?}");
    v[0].1
}

fn app() -> SeriesSet {
    src(&[(r#"{app="a"}"#, &[(10, 1.0), (20, 2.0), (30, 3.0), (40, 4.0)])])
}

/// `app()` as count_over_time and rate see it: every line yields 1, and a count is the sum of
/// those values (a querier may have pre-summed several lines into one sample).
fn app_lines() -> SeriesSet {
    src(&[(r#"{app="a"}"#, &[(10, 1.0), (20, 1.0), (30, 1.0), (40, 1.0)])])
}

#[test]
fn count_over_time_window_is_open_at_start_closed_at_end() {
    let got = run(&ra(RangeOp::CountOverTime, 20), &app_lines(), 0, 60, 10);
    // (t-20, t]: t=0 sees nothing (no point), t=10 {10}, t=20 {10,20}, t=50 {40}, t=60 nothing.
    assert_eq!(
        got,
        vec![(
            r#"{app="a"}"#.to_string(),
            vec![(10, 1.0), (20, 2.0), (30, 2.0), (40, 2.0), (50, 1.0)]
        )]
    );
}

#[test]
fn rate_divides_by_range_seconds() {
    assert_eq!(one(&ra(RangeOp::Rate, 20), &app_lines(), 30), 2.0 / 20.0);
    // Pre-summed lines count as what they sum to.
    let summed = src(&[(r#"{app="a"}"#, &[(20, 3.0), (30, 2.0)])]);
    assert_eq!(one(&ra(RangeOp::CountOverTime, 20), &summed, 30), 5.0);
    // Unwrapped rate and bytes_rate divide the sum: (2 + 3) / 20.
    assert_eq!(one(&ra(RangeOp::UnwrappedRate, 20), &app(), 30), 0.25);
    assert_eq!(one(&ra(RangeOp::BytesRate, 20), &app(), 30), 0.25);
    assert_eq!(one(&ra(RangeOp::BytesOverTime, 20), &app(), 30), 5.0);
}

#[test]
fn offset_shifts_the_window_back() {
    let plan = MetricPlan::RangeAgg {
        op: RangeOp::SumOverTime,
        range_ns: 10 * S,
        offset_ns: 20 * S,
        grouping: None,
        param: None,
        source: 0,
    };
    // At t=50 the window is (20, 30]: only the sample at 30.
    assert_eq!(one(&plan, &app(), 50), 3.0);
    assert!(inst(&plan, &app(), 25).is_empty());
}

#[test]
fn simple_over_time_functions() {
    let s = src(&[("{a=\"1\"}", &[(1, 3.0), (2, -1.0), (3, 7.0), (4, 2.0)])]);
    let at = |op| one(&ra(op, 10), &s, 4);
    assert_eq!(at(RangeOp::SumOverTime), 11.0);
    assert_eq!(at(RangeOp::AvgOverTime), 2.75);
    assert_eq!(at(RangeOp::MinOverTime), -1.0);
    assert_eq!(at(RangeOp::MaxOverTime), 7.0);
    assert_eq!(at(RangeOp::FirstOverTime), 3.0);
    assert_eq!(at(RangeOp::LastOverTime), 2.0);
    let lines = src(&[("{a=\"1\"}", &[(1, 1.0), (2, 1.0), (3, 1.0), (4, 1.0)])]);
    assert_eq!(one(&ra(RangeOp::CountOverTime, 10), &lines, 4), 4.0);
}

#[test]
fn min_max_ignore_nan_and_sums_recover_after_infinity() {
    let s = src(&[(
        "{a=\"1\"}",
        &[(1, f64::NAN), (2, 5.0), (3, f64::INFINITY), (4, 2.0), (5, 3.0)],
    )]);
    let at = |op, range, t| run(&ra(op, range), &s, t, t, 1)[0].1[0].1;
    assert_eq!(at(RangeOp::MaxOverTime, 10, 2), 5.0);
    assert_eq!(at(RangeOp::MinOverTime, 10, 5), 2.0);
    assert!(at(RangeOp::MaxOverTime, 1, 1).is_nan(), "a window of only NaN is NaN");
    // Sliding over +Inf: once it leaves the window the sum is finite again (no Inf - Inf).
    let got = run(&ra(RangeOp::SumOverTime, 2), &s, 3, 5, 1);
    let vals: Vec<f64> = got[0].1.iter().map(|p| p.1).collect();
    assert_eq!(vals, vec![f64::INFINITY, f64::INFINITY, 5.0]);
}

#[test]
fn stddev_and_stdvar_are_population() {
    let pts: Vec<(i64, f64)> = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]
        .iter()
        .enumerate()
        .map(|(i, &v)| (i as i64 + 1, v))
        .collect();
    let s = src(&[("{a=\"1\"}", &pts)]);
    assert_eq!(one(&ra(RangeOp::StdvarOverTime, 100), &s, 10), 4.0);
    assert_eq!(one(&ra(RangeOp::StddevOverTime, 100), &s, 10), 2.0);
}

#[test]
fn quantile_interpolates_linearly() {
    let s = src(&[("{a=\"1\"}", &[(1, 4.0), (2, 1.0), (3, 3.0), (4, 2.0)])]);
    let q = |phi: f64| {
        let plan = MetricPlan::RangeAgg {
            op: RangeOp::QuantileOverTime,
            range_ns: 10 * S,
            offset_ns: 0,
            grouping: None,
            param: Some(phi),
            source: 0,
        };
        one(&plan, &s, 4)
    };
    assert_eq!(q(0.5), 2.5);
    assert!((q(0.9) - 3.7).abs() < 1e-12);
    assert_eq!(q(0.0), 1.0);
    assert_eq!(q(1.0), 4.0);
    assert_eq!(q(1.5), f64::INFINITY);
    assert_eq!(q(-0.5), f64::NEG_INFINITY);
}

#[test]
fn rate_counter_handles_resets_and_extrapolates_like_loki() {
    let s = src(&[("{a=\"1\"}", &[(10, 1.0), (20, 5.0), (30, 2.0), (40, 6.0)])]);
    // Increase 5 plus the reset's 5 = 10 over 30s sampled; extrapolated back 3s to the counter's
    // zero point: 10 * 33/30 = 11, per second of the 60s range.
    let got = one(&ra(RangeOp::RateCounter, 60), &s, 40);
    assert!((got - 11.0 / 60.0).abs() < 1e-12, "{got}");
    // A single sample gives 0, not a missing point (Loki's behaviour).
    assert_eq!(one(&ra(RangeOp::RateCounter, 60), &s, 15), 0.0);
}

#[test]
fn absent_over_time_marks_empty_windows_with_given_labels() {
    let plan = ra(
        RangeOp::AbsentOverTime {
            labels: l(r#"{job="x"}"#),
        },
        10,
    );
    let s = src(&[("{a=\"1\"}", &[(10, 1.0)]), ("{a=\"2\"}", &[(30, 1.0)])]);
    // Windows (t-10, t]: only t=10 and t=30 see a sample, in either series.
    let got = run(&plan, &s, 0, 40, 10);
    assert_eq!(
        got,
        vec![(r#"{job="x"}"#.to_string(), vec![(0, 1.0), (20, 1.0), (40, 1.0)])]
    );
}

#[test]
fn grouping_on_range_aggregation_merges_series_first() {
    let s = src(&[
        (r#"{app="a", pod="1"}"#, &[(1, 1.0), (3, 9.0)]),
        (r#"{app="a", pod="2"}"#, &[(2, 5.0)]),
        (r#"{app="b", pod="3"}"#, &[(2, 4.0)]),
    ]);
    let plan = |op, g| MetricPlan::RangeAgg {
        op,
        range_ns: 10 * S,
        offset_ns: 0,
        grouping: g,
        param: None,
        source: 0,
    };
    assert_eq!(
        inst(&plan(RangeOp::MaxOverTime, by(&["app"])), &s, 5),
        vec![(r#"{app="a"}"#.to_string(), 9.0), (r#"{app="b"}"#.to_string(), 4.0)]
    );
    // avg over the merged samples (1, 5, 9), not an average of per-series averages.
    assert_eq!(inst(&plan(RangeOp::AvgOverTime, without(&["pod"])), &s, 5)[0].1, 5.0);
    // first/last follow time across the merged series.
    assert_eq!(inst(&plan(RangeOp::FirstOverTime, by(&["app"])), &s, 5)[0].1, 1.0);
    assert_eq!(inst(&plan(RangeOp::LastOverTime, by(&["app"])), &s, 5)[0].1, 9.0);
}

type WindowFn = fn(&[f64]) -> f64;

/// Naive reference: apply `f` to each window's values by rescanning.
fn naive(
    pts: &[(i64, f64)],
    range: i64,
    start: i64,
    end: i64,
    step: i64,
    f: impl Fn(&[f64]) -> f64,
) -> Vec<(i64, f64)> {
    (start..=end)
        .step_by(step as usize)
        .filter_map(|t| {
            let w: Vec<f64> = pts
                .iter()
                .filter(|p| p.0 > t - range && p.0 <= t)
                .map(|p| p.1)
                .collect();
            (!w.is_empty()).then(|| (t, f(&w)))
        })
        .collect()
}

proptest::proptest! {
    #[test]
    fn sliding_windows_match_naive_rescans(
        raw in proptest::collection::vec((0i64..200, -100i32..100), 0..60),
        range in 1i64..50,
        step in 1i64..20,
    ) {
        let mut pts: Vec<(i64, f64)> = raw.iter().map(|&(t, v)| (t, f64::from(v) / 8.0)).collect();
        pts.sort_by_key(|p| p.0);
        let s = src(&[("{a=\"1\"}", &pts)]);
        let checks: [(RangeOp, WindowFn); 3] = [
            (RangeOp::SumOverTime, |w| w.iter().sum()),
            (RangeOp::MinOverTime, |w| w.iter().copied().fold(f64::INFINITY, f64::min)),
            (RangeOp::MaxOverTime, |w| w.iter().copied().fold(f64::NEG_INFINITY, f64::max)),
        ];
        for (op, f) in checks {
            let got = run(&ra(op.clone(), range), &s, 0, 210, step);
            let want = naive(&pts, range, 0, 210, step, f);
            let got = got.into_iter().next().map(|g| g.1).unwrap_or_default();
            proptest::prop_assert_eq!(got, want, "{:?}", op);
        }
    }

    #[test]
    fn sum_of_count_over_time_equals_samples_in_window(
        raw in proptest::collection::vec((0usize..5, 0i64..300), 0..200),
        range in 1i64..60,
        step in 1i64..30,
    ) {
        let mut per: Vec<Vec<(i64, f64)>> = vec![Vec::new(); 5];
        for &(s, t) in &raw {
            per[s].push((t * S, 1.0));
        }
        let set: SeriesSet = per
            .into_iter()
            .enumerate()
            .map(|(i, mut p)| {
                p.sort_by_key(|x| x.0);
                (l(&format!("{{s=\"{i}\"}}")), p)
            })
            .collect();
        let plan = va(VectorOp::Sum, by(&[]), None, ra(RangeOp::CountOverTime, range));
        let got = run(&plan, &set, 0, 300, step);
        let got = got.into_iter().next().map(|g| g.1).unwrap_or_default();
        let ts: Vec<(i64, f64)> = raw.iter().map(|&(_, t)| (t, 1.0)).collect();
        let mut ts = ts;
        ts.sort_by_key(|p| p.0);
        proptest::prop_assert_eq!(got, naive(&ts, range, 0, 300, step, |w| w.len() as f64));
    }
}

fn levels() -> SeriesSet {
    src(&[
        (r#"{app="a", level="info"}"#, &[(1, 1.0), (2, 1.0), (3, 1.0)]),
        (r#"{app="b", level="info"}"#, &[(1, 1.0)]),
        (r#"{app="c", level="error"}"#, &[(1, 1.0), (2, 1.0)]),
    ])
}

#[test]
fn vector_aggregations_group_by_and_without() {
    let cot = || ra(RangeOp::CountOverTime, 10);
    let s = levels();
    let info = r#"{level="info"}"#.to_string();
    let error = r#"{level="error"}"#.to_string();
    assert_eq!(
        inst(&va(VectorOp::Sum, by(&["level"]), None, cot()), &s, 5),
        vec![(error.clone(), 2.0), (info.clone(), 4.0)]
    );
    assert_eq!(
        inst(&va(VectorOp::Sum, without(&["app"]), None, cot()), &s, 5),
        vec![(error.clone(), 2.0), (info.clone(), 4.0)]
    );
    assert_eq!(
        inst(&va(VectorOp::Sum, None, None, cot()), &s, 5),
        vec![("{}".to_string(), 6.0)]
    );
    assert_eq!(
        inst(&va(VectorOp::Sum, by(&[]), None, cot()), &s, 5),
        vec![("{}".to_string(), 6.0)]
    );
    assert_eq!(
        inst(&va(VectorOp::Avg, by(&["level"]), None, cot()), &s, 5)[1],
        (info.clone(), 2.0)
    );
    assert_eq!(
        inst(&va(VectorOp::Count, by(&["level"]), None, cot()), &s, 5),
        vec![(error, 1.0), (info.clone(), 2.0)]
    );
    assert_eq!(inst(&va(VectorOp::Min, None, None, cot()), &s, 5)[0].1, 1.0);
    assert_eq!(inst(&va(VectorOp::Max, None, None, cot()), &s, 5)[0].1, 3.0);
    // Values 3, 1, 2: mean 2, population variance 2/3.
    let var = inst(&va(VectorOp::Stdvar, None, None, cot()), &s, 5)[0].1;
    assert!((var - 2.0 / 3.0).abs() < 1e-12);
    let dev = inst(&va(VectorOp::Stddev, None, None, cot()), &s, 5)[0].1;
    assert!((dev - (2.0f64 / 3.0).sqrt()).abs() < 1e-12);
    // `by` a label nobody has: one group without labels.
    assert_eq!(
        inst(&va(VectorOp::Sum, by(&["nope"]), None, cot()), &s, 5),
        vec![("{}".to_string(), 6.0)]
    );
}

#[test]
fn topk_and_bottomk_keep_series_labels_and_break_ties_by_labels() {
    let cot = || ra(RangeOp::CountOverTime, 10);
    let s = levels();
    assert_eq!(
        inst(&va(VectorOp::Topk, None, Some(1.0), cot()), &s, 5),
        vec![(r#"{app="a", level="info"}"#.to_string(), 3.0)]
    );
    // b and... values are a=3, b=1, c=2; bottomk 2 keeps b and c.
    let got = inst(&va(VectorOp::Bottomk, None, Some(2.0), cot()), &s, 5);
    assert_eq!(got.iter().map(|g| g.1).collect::<Vec<_>>(), vec![1.0, 2.0]);
    // Per group: the best of each level.
    let got = inst(&va(VectorOp::Topk, by(&["level"]), Some(1.0), cot()), &s, 5);
    assert_eq!(got.len(), 2);
    // Ties (all 1 at t=1 with range 1): the smallest labels win, deterministically.
    let tie = va(VectorOp::Topk, None, Some(2.0), ra(RangeOp::CountOverTime, 1));
    let got = inst(&tie, &s, 1);
    assert_eq!(
        got.iter().map(|g| g.0.as_str()).collect::<Vec<_>>(),
        vec![r#"{app="a", level="info"}"#, r#"{app="b", level="info"}"#]
    );
    // In a range query topk is evaluated per step.
    let got = run(
        &va(VectorOp::Topk, None, Some(1.0), ra(RangeOp::CountOverTime, 1)),
        &s,
        1,
        3,
        1,
    );
    assert_eq!(
        got,
        vec![(
            r#"{app="a", level="info"}"#.to_string(),
            vec![(1, 1.0), (2, 1.0), (3, 1.0)]
        )]
    );
    let bad = va(VectorOp::Topk, None, Some(0.5), cot());
    assert!(matches!(
        eval_instant(&bad, &[s], 5 * S, &EvalOptions::default()),
        Err(MetricError::Invalid(_))
    ));
}

#[test]
fn sort_orders_instant_vectors_by_value() {
    let cot = || ra(RangeOp::CountOverTime, 10);
    let s = levels();
    let values = |op| {
        inst(&va(op, None, None, cot()), &s, 5)
            .into_iter()
            .map(|g| g.1)
            .collect::<Vec<_>>()
    };
    assert_eq!(values(VectorOp::Sort), vec![1.0, 2.0, 3.0]);
    assert_eq!(values(VectorOp::SortDesc), vec![3.0, 2.0, 1.0]);
    // Without sort, instant vectors come sorted by labels.
    assert_eq!(
        inst(&cot(), &s, 5).into_iter().map(|g| g.1).collect::<Vec<_>>(),
        vec![3.0, 1.0, 2.0]
    );
}

fn lr(dst: &str, repl: &str, src_label: &str, re: &str, inner: MetricPlan) -> MetricPlan {
    MetricPlan::LabelReplace {
        inner: Box::new(inner),
        dst: dst.into(),
        replacement: repl.into(),
        src: src_label.into(),
        regex: re.into(),
    }
}

#[test]
fn label_replace_follows_prometheus() {
    let s = src(&[(r#"{app="api-7", env="prod"}"#, &[(1, 1.0)])]);
    let cot = || ra(RangeOp::CountOverTime, 10);
    assert_eq!(
        inst(&lr("svc", "$1", "app", "(.*)-[0-9]+", cot()), &s, 5)[0].0,
        r#"{app="api-7", env="prod", svc="api"}"#
    );
    assert_eq!(
        inst(&lr("svc", "${1}x", "app", "(.*)-[0-9]+", cot()), &s, 5)[0].0,
        r#"{app="api-7", env="prod", svc="apix"}"#
    );
    // Anchored: "api" alone does not match "api-7", so the series passes through unchanged.
    assert_eq!(
        inst(&lr("svc", "$1", "app", "(api)", cot()), &s, 5)[0].0,
        r#"{app="api-7", env="prod"}"#
    );
    // An empty replacement deletes the destination label.
    assert_eq!(inst(&lr("env", "", "env", ".*", cot()), &s, 5)[0].0, r#"{app="api-7"}"#);
    // A missing source label reads as "".
    assert_eq!(
        inst(&lr("x", "y", "nope", "", cot()), &s, 5)[0].0,
        r#"{app="api-7", env="prod", x="y"}"#
    );
    let bad = lr("1x", "y", "app", ".*", cot());
    assert!(matches!(
        eval_instant(&bad, &[s], 5 * S, &EvalOptions::default()),
        Err(MetricError::Invalid(_))
    ));
}

#[test]
fn label_replace_collisions_are_an_error() {
    let s = src(&[(r#"{a="1"}"#, &[(1, 1.0)]), (r#"{a="2"}"#, &[(1, 1.0)])]);
    let plan = lr("a", "x", "a", ".*", ra(RangeOp::CountOverTime, 10));
    let err = eval_instant(&plan, &[s], 5 * S, &EvalOptions::default()).unwrap_err();
    assert_eq!(err, MetricError::DuplicateLabelset);
}

#[test]
fn vector_and_literals() {
    let none: SeriesSet = Vec::new();
    assert_eq!(
        run(&MetricPlan::Vector(3.0), &none, 0, 20, 10),
        vec![("{}".to_string(), vec![(0, 3.0), (10, 3.0), (20, 3.0)])]
    );
    // A literal in a range query becomes one unlabelled series, as Loki returns it.
    assert_eq!(
        run(&MetricPlan::Literal(2.0), &none, 0, 10, 10),
        vec![("{}".to_string(), vec![(0, 2.0), (10, 2.0)])]
    );
    assert_eq!(
        eval_instant(&MetricPlan::Literal(2.0), &[], 0, &EvalOptions::default()),
        Ok(Value::Scalar(2.0))
    );
}

#[test]
fn health_check_query() {
    let plan = MetricPlan::Binary {
        op: BinOp::Add,
        lhs: Box::new(MetricPlan::Vector(1.0)),
        rhs: Box::new(MetricPlan::Vector(1.0)),
        return_bool: false,
        matching: None,
    };
    let got = eval_instant(&plan, &[], 4_000_000_000 * S, &EvalOptions::default()).unwrap();
    assert_eq!(
        got,
        Value::Vector(vec![Sample {
            labels: Labels::default(),
            value: 2.0
        }])
    );
}

#[test]
fn max_series_limit() {
    let s = levels();
    let opts = EvalOptions { max_series: 2 };
    let want = "maximum number of series (2) reached for a single query; consider reducing query cardinality by adding more specific stream selectors, reducing the time range, or aggregating results with functions like sum(), count() or topk()";
    let err = eval_range(
        &ra(RangeOp::CountOverTime, 10),
        std::slice::from_ref(&s),
        0,
        10 * S,
        S,
        &opts,
    )
    .unwrap_err();
    assert_eq!(err.to_string(), want);
    assert_eq!(err.code(), ErrorCode::BadRequest);
    // Shardable aggregations never materialise the wide input in Loki: allowed.
    let sum = va(VectorOp::Sum, None, None, ra(RangeOp::CountOverTime, 10));
    assert!(eval_instant(&sum, std::slice::from_ref(&s), 5 * S, &opts).is_ok());
    // topk materialises it and is refused even though its answer is one series.
    let top = va(VectorOp::Topk, None, Some(1.0), ra(RangeOp::CountOverTime, 10));
    assert_eq!(eval_instant(&top, &[s], 5 * S, &opts), Err(MetricError::SeriesLimit(2)));
}

#[test]
fn align_rounds_start_down_and_end_up() {
    assert_eq!(align(7, 125, 60), (0, 180));
    assert_eq!(align(60, 120, 60), (60, 120));
    assert_eq!(align(-7, -1, 60), (-60, 0));
    assert_eq!(align(5, 9, 0), (5, 9));
}

#[test]
fn bad_arguments_are_errors() {
    let p = ra(RangeOp::CountOverTime, 10);
    assert!(eval_range(&p, &[], 0, 10, 1, &EvalOptions::default()).is_err()); // no source 0
    assert!(eval_range(&p, &[Vec::new()], 0, 10, 0, &EvalOptions::default()).is_err());
    assert!(eval_range(&p, &[Vec::new()], 10, 0, 1, &EvalOptions::default()).is_err());
}
