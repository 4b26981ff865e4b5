//! Binary operators: arithmetic, comparisons with and without `bool`, set operators, and
//! vector matching (`on`, `ignoring`, `group_left`, `group_right`) with Loki's errors.

use super::tests::{S, by, inst, ra, run, src, va};
use super::*;

fn bin(op: BinOp, lhs: MetricPlan, rhs: MetricPlan) -> MetricPlan {
    MetricPlan::Binary {
        op,
        lhs: Box::new(lhs),
        rhs: Box::new(rhs),
        return_bool: false,
        matching: None,
    }
}

fn with(plan: MetricPlan, return_bool: bool, matching: Option<VectorMatching>) -> MetricPlan {
    match plan {
        MetricPlan::Binary { op, lhs, rhs, .. } => MetricPlan::Binary {
            op,
            lhs,
            rhs,
            return_bool,
            matching,
        },
        other => other,
    }
}

fn on(labels: &[&str], group: Option<GroupSide>) -> Option<VectorMatching> {
    Some(VectorMatching {
        on: true,
        labels: labels.iter().map(|s| s.to_string()).collect(),
        group,
    })
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Sum of the samples in (t-10, t] per series.
fn sum() -> MetricPlan {
    ra(RangeOp::SumOverTime, 10)
}

fn lit(v: f64) -> MetricPlan {
    MetricPlan::Literal(v)
}

fn scalar(plan: &MetricPlan) -> f64 {
    match eval_instant(plan, &[], 0, &EvalOptions::default()).unwrap() {
        Value::Scalar(v) => v,
        other => panic!("expected a scalar, got {other:?}"),
    }
}

fn values(v: Vec<(String, f64)>) -> Vec<f64> {
    v.into_iter().map(|x| x.1).collect()
}

fn two() -> SeriesSet {
    src(&[(r#"{a="1"}"#, &[(1, 6.0)]), (r#"{a="2"}"#, &[(1, 0.0)])])
}

#[test]
fn scalar_arithmetic_and_comparisons() {
    assert_eq!(scalar(&bin(BinOp::Add, lit(1.0), lit(2.0))), 3.0);
    assert_eq!(scalar(&bin(BinOp::Pow, lit(2.0), lit(10.0))), 1024.0);
    assert_eq!(scalar(&bin(BinOp::Mod, lit(-7.0), lit(3.0))), -1.0);
    assert!(scalar(&bin(BinOp::Div, lit(1.0), lit(0.0))).is_nan());
    assert!(scalar(&bin(BinOp::Mod, lit(1.0), lit(0.0))).is_nan());
    assert_eq!(scalar(&bin(BinOp::Gt, lit(2.0), lit(1.0))), 1.0);
    assert_eq!(scalar(&with(bin(BinOp::Lt, lit(2.0), lit(1.0)), true, None)), 0.0);
}

#[test]
fn vector_scalar_arithmetic_keeps_labels() {
    let s = two();
    assert_eq!(
        inst(&bin(BinOp::Mul, sum(), lit(2.0)), &s, 5),
        vec![(r#"{a="1"}"#.into(), 12.0), (r#"{a="2"}"#.into(), 0.0)]
    );
    assert_eq!(values(inst(&bin(BinOp::Sub, lit(10.0), sum()), &s, 5)), vec![4.0, 10.0]);
    // x/0 is NaN (Loki), and so is 0/0.
    let div = values(inst(&bin(BinOp::Div, sum(), lit(0.0)), &s, 5));
    assert!(div.iter().all(|v| v.is_nan()));
    // Scalar on the left: 12 / 6 = 2, 12 / 0 = NaN.
    let div = values(inst(&bin(BinOp::Div, lit(12.0), sum()), &s, 5));
    assert_eq!(div[0], 2.0);
    assert!(div[1].is_nan());
}

#[test]
fn comparisons_filter_or_return_bool() {
    let s = two();
    assert_eq!(
        inst(&bin(BinOp::Gt, sum(), lit(1.0)), &s, 5),
        vec![(r#"{a="1"}"#.into(), 6.0)]
    );
    // Scalar on the left still keeps the vector's value.
    assert_eq!(
        inst(&bin(BinOp::Lt, lit(1.0), sum()), &s, 5),
        vec![(r#"{a="1"}"#.into(), 6.0)]
    );
    assert_eq!(
        values(inst(&with(bin(BinOp::Gt, sum(), lit(1.0)), true, None), &s, 5)),
        vec![1.0, 0.0]
    );
    assert_eq!(values(inst(&bin(BinOp::Eq, sum(), lit(0.0)), &s, 5)), vec![0.0]);
    assert_eq!(values(inst(&bin(BinOp::Ne, sum(), lit(0.0)), &s, 5)), vec![6.0]);
    assert_eq!(values(inst(&bin(BinOp::Ge, sum(), lit(6.0)), &s, 5)), vec![6.0]);
    assert_eq!(values(inst(&bin(BinOp::Le, sum(), lit(6.0)), &s, 5)), vec![6.0, 0.0]);
    // Filtering removes points step by step: a series survives where it passes.
    let s = src(&[(r#"{a="1"}"#, &[(1, 1.0), (11, 5.0)])]);
    assert_eq!(
        run(&bin(BinOp::Gt, sum(), lit(2.0)), &s, 5, 15, 10),
        vec![(r#"{a="1"}"#.into(), vec![(15, 5.0)])]
    );
}

#[test]
fn vector_vector_one_to_one_on_all_labels() {
    let s = src(&[(r#"{a="1"}"#, &[(1, 6.0)]), (r#"{a="2"}"#, &[(1, 3.0)])]);
    assert_eq!(values(inst(&bin(BinOp::Div, sum(), sum()), &s, 5)), vec![1.0, 1.0]);
    // vector - vector(0): no labels in common with {a=..}: nothing matches.
    assert!(inst(&bin(BinOp::Sub, sum(), MetricPlan::Vector(0.0)), &s, 5).is_empty());
    let cmp = with(bin(BinOp::Gt, sum(), sum()), true, None);
    assert_eq!(values(inst(&cmp, &s, 5)), vec![0.0, 0.0]);
}

fn apps() -> SeriesSet {
    src(&[
        (r#"{app="a", pod="1"}"#, &[(1, 2.0)]),
        (r#"{app="a", pod="2"}"#, &[(1, 4.0)]),
        (r#"{app="b", pod="3"}"#, &[(1, 8.0)]),
    ])
}

/// `sum by (app)` of the same data: the "one" side.
fn per_app() -> MetricPlan {
    va(VectorOp::Sum, by(&["app"]), None, sum())
}

#[test]
fn on_and_ignoring_select_match_labels() {
    let s = apps();
    // on(app) one-to-one: labels reduce to the `on` labels.
    let got = inst(
        &with(bin(BinOp::Add, per_app(), per_app()), false, on(&["app"], None)),
        &s,
        5,
    );
    assert_eq!(got, vec![(r#"{app="a"}"#.into(), 12.0), (r#"{app="b"}"#.into(), 16.0)]);
    // ignoring(pod): pod-level series against themselves; pod is dropped from the result.
    let ign = Some(VectorMatching {
        on: false,
        labels: names(&["pod"]),
        group: None,
    });
    let lhs = va(VectorOp::Sum, by(&["app", "pod"]), None, sum());
    let rhs = va(VectorOp::Sum, by(&["app"]), None, sum());
    // Two pods of app a share the key {app="a"}: many-to-one without group_left.
    let err = eval_instant(
        &with(bin(BinOp::Div, lhs, rhs), false, ign),
        &[s],
        5 * S,
        &EvalOptions::default(),
    );
    assert_eq!(err, Err(MetricError::ManyToOneNotExplicit));
    assert_eq!(
        MetricError::ManyToOneNotExplicit.to_string(),
        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
    );
}

#[test]
fn group_left_and_group_right() {
    let s = apps();
    // Share of each pod in its app.
    let left = with(
        bin(BinOp::Div, sum(), per_app()),
        false,
        on(&["app"], Some(GroupSide::Left(Vec::new()))),
    );
    let got = inst(&left, &s, 5);
    assert_eq!(
        got,
        vec![
            (r#"{app="a", pod="1"}"#.into(), 2.0 / 6.0),
            (r#"{app="a", pod="2"}"#.into(), 4.0 / 6.0),
            (r#"{app="b", pod="3"}"#.into(), 1.0),
        ]
    );
    // group_right: the many side is on the right, the value is still lhs / rhs.
    let right = with(
        bin(BinOp::Div, per_app(), sum()),
        false,
        on(&["app"], Some(GroupSide::Right(Vec::new()))),
    );
    assert_eq!(values(inst(&right, &s, 5)), vec![3.0, 1.5, 1.0]);
    // group_left(team) copies `team` from the one side.
    let info = MetricPlan::RangeAgg {
        op: RangeOp::SumOverTime,
        range_ns: 10 * S,
        offset_ns: 0,
        grouping: None,
        param: None,
        source: 1,
    };
    let plan = with(
        bin(BinOp::Mul, sum(), info),
        false,
        on(&["app"], Some(GroupSide::Left(names(&["team"])))),
    );
    let src2 = src(&[(r#"{app="a", team="x"}"#, &[(1, 1.0)])]);
    let got = eval_instant(&plan, &[apps(), src2], 5 * S, &EvalOptions::default()).unwrap();
    let Value::Vector(v) = got else {
        panic!("vector expected")
    };
    let labels: Vec<String> = v.iter().map(|s| s.labels.to_string()).collect();
    assert_eq!(
        labels,
        vec![r#"{app="a", pod="1", team="x"}"#, r#"{app="a", pod="2", team="x"}"#]
    );
}

#[test]
fn duplicate_series_on_the_one_side_is_an_error() {
    let s = apps();
    let plan = with(bin(BinOp::Div, per_app(), sum()), false, on(&["app"], None));
    let err = eval_instant(&plan, &[s], 5 * S, &EvalOptions::default()).unwrap_err();
    assert_eq!(err, MetricError::DuplicateOneSide("right"));
    assert!(
        err.to_string()
            .starts_with("found duplicate series on the right hand-side")
    );
}

#[test]
fn set_operators() {
    let s = apps();
    let big = bin(BinOp::Gt, sum(), lit(3.0)); // pods 2 and 3
    let a_only = bin(BinOp::Lt, sum(), lit(5.0)); // pods 1 and 2
    let labels = |plan: &MetricPlan| inst(plan, &s, 5).into_iter().map(|x| x.0).collect::<Vec<_>>();
    assert_eq!(
        labels(&bin(BinOp::And, big.clone(), a_only.clone())),
        vec![r#"{app="a", pod="2"}"#]
    );
    assert_eq!(
        labels(&bin(BinOp::Unless, big.clone(), a_only.clone())),
        vec![r#"{app="b", pod="3"}"#]
    );
    assert_eq!(labels(&bin(BinOp::Or, big.clone(), a_only.clone())).len(), 3);
    // on(app): pod 3's app b has no partner among pods 1 and 2 (both app a).
    let and_on = with(bin(BinOp::And, big.clone(), a_only.clone()), false, on(&["app"], None));
    assert_eq!(labels(&and_on), vec![r#"{app="a", pod="2"}"#]);
    // `or vector(0)` fills steps without samples: lhs keeps its labels, vector(0) fills the rest.
    let none = bin(BinOp::Gt, sum(), lit(100.0));
    let filled = with(bin(BinOp::Or, none, MetricPlan::Vector(0.0)), false, None);
    assert_eq!(
        run(&filled, &s, 0, 10, 10),
        vec![("{}".into(), vec![(0, 0.0), (10, 0.0)])]
    );
    // Values come from the side that contributed the sample.
    let or = bin(BinOp::Or, bin(BinOp::Gt, sum(), lit(7.0)), MetricPlan::Vector(-1.0));
    let got = inst(&or, &s, 5);
    assert_eq!(got, vec![("{}".into(), -1.0), (r#"{app="b", pod="3"}"#.into(), 8.0)]);
    let err = eval_instant(&bin(BinOp::And, sum(), lit(1.0)), &[s], 5 * S, &EvalOptions::default());
    assert!(matches!(err, Err(MetricError::Invalid(_))));
}
