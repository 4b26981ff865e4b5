//! `parse(print(ast)) == ast` over generated trees of the whole language: every stage, label
//! filter trees, range and vector aggregations, binary operations with modifiers, literals,
//! `vector` and `label_replace`.

use std::time::Duration;

use proptest::prelude::*;

use super::tests::{any_ip_pattern, any_line_filter, any_matcher, any_regex, any_string};
use crate::ast::{
    BinOp, BinOpExpr, BinOpModifier, CmpOp, Expr, ExtractParam, GroupSide, Grouping, LabelFilterExpr, LabelFmt,
    LabelFmtSource, LabelReplace, LabelSelection, LogExpr, LogRange, ParserStage, RangeAggregation, RangeOp, Stage,
    Unwrap, UnwrapConversion, VectorAggregation, VectorMatching, VectorOp,
};
use crate::matcher::{MatchOp, Matcher, Selector};
use crate::parse_expr;

/// Label names that are never keywords.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "l_[a-z0-9_]{0,4}",
        "[A-Z][a-zA-Z0-9]{0,4}",
        Just("status".to_string()),
        Just("__error__".to_string()),
    ]
}

fn number() -> impl Strategy<Value = f64> {
    prop_oneof![
        (-1000i32..1000).prop_map(f64::from),
        any::<f64>().prop_filter("finite", |v| v.is_finite()),
        Just(0.5),
        Just(1e300),
        Just(-2.5e-7),
    ]
}

fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        (0u64..100_000).prop_map(Duration::from_secs),
        (0u64..1_000_000_000_000_000).prop_map(Duration::from_nanos),
        Just(Duration::from_millis(250)),
    ]
}

fn cmp_op() -> impl Strategy<Value = CmpOp> {
    prop_oneof![
        Just(CmpOp::Eq),
        Just(CmpOp::Neq),
        Just(CmpOp::Gt),
        Just(CmpOp::Gte),
        Just(CmpOp::Lt),
        Just(CmpOp::Lte),
    ]
}

fn label_matcher() -> impl Strategy<Value = Matcher> {
    (name(), any_matcher()).prop_filter_map("valid matcher", |(n, m)| Matcher::new(n, m.op(), m.value()).ok())
}

fn label_filter_leaf() -> impl Strategy<Value = LabelFilterExpr> {
    prop_oneof![
        label_matcher().prop_map(LabelFilterExpr::Matcher),
        (name(), cmp_op(), number()).prop_map(|(label, op, value)| LabelFilterExpr::Number { label, op, value }),
        (name(), cmp_op(), duration()).prop_map(|(label, op, value)| LabelFilterExpr::Duration { label, op, value }),
        (name(), cmp_op(), any::<u64>()).prop_map(|(label, op, value)| LabelFilterExpr::Bytes { label, op, value }),
        (name(), any::<bool>(), any_ip_pattern()).prop_map(|(label, negated, pattern)| LabelFilterExpr::Ip {
            label,
            negated,
            pattern
        }),
    ]
}

fn label_filter() -> impl Strategy<Value = LabelFilterExpr> {
    label_filter_leaf().prop_recursive(3, 12, 2, |inner| {
        (inner.clone(), inner, any::<bool>()).prop_map(|(l, r, and)| {
            if and {
                LabelFilterExpr::And(Box::new(l), Box::new(r))
            } else {
                LabelFilterExpr::Or(Box::new(l), Box::new(r))
            }
        })
    })
}

fn json_path() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        "[a-z_][a-z0-9_]{0,3}".prop_map(|s| format!(".{s}")),
        (0u32..20).prop_map(|n| format!("[{n}]")),
        "[a-z -]{0,4}".prop_map(|s| format!("[\"{s}\"]")),
    ];
    ("[a-z_][a-z0-9_]{0,3}", proptest::collection::vec(segment, 0..3)).prop_map(|(h, t)| h + &t.concat())
}

fn extract_params(path: impl Strategy<Value = String>) -> impl Strategy<Value = Vec<ExtractParam>> {
    proptest::collection::vec(
        (name(), proptest::option::of(path)).prop_map(|(label, path)| ExtractParam { label, path }),
        0..3,
    )
}

fn parser_stage() -> impl Strategy<Value = ParserStage> {
    let names = proptest::collection::btree_set("[a-z][a-z0-9]{0,3}", 1..3);
    prop_oneof![
        extract_params(json_path()).prop_map(ParserStage::Json),
        (any::<bool>(), any::<bool>(), extract_params(any_string())).prop_map(|(strict, keep_empty, params)| {
            ParserStage::Logfmt {
                strict,
                keep_empty,
                params,
            }
        }),
        (names.clone(), any_regex()).prop_map(|(names, re)| {
            let groups: Vec<String> = names.iter().map(|n| format!("(?P<{n}>{re})")).collect();
            ParserStage::Regexp(groups.join(" "))
        }),
        (names, "[a-z =\"]{1,3}").prop_map(|(names, sep)| {
            let caps: Vec<String> = names.iter().map(|n| format!("<{n}>")).collect();
            ParserStage::Pattern(format!("<_>{sep}{}", caps.join(&sep)))
        }),
        Just(ParserStage::Unpack),
    ]
}

fn template() -> impl Strategy<Value = String> {
    prop_oneof![
        any_string().prop_filter("no actions", |s| !s.contains("{{")),
        Just("{{.a}}".to_string()),
        Just("{{ .level | upper }} {{ if eq .x \"1\" }}a{{ else }}b{{ end }}".to_string()),
        Just("{{ __line__ | trunc 10 }}\n{{ printf \"%s\" .y | default \"-\" }}".to_string()),
    ]
}

fn selection() -> impl Strategy<Value = LabelSelection> {
    prop_oneof![
        name().prop_map(LabelSelection::Name),
        label_matcher().prop_map(LabelSelection::Matcher),
    ]
}

fn stage() -> impl Strategy<Value = Stage> {
    let fmts = proptest::collection::btree_map(
        "[a-z][a-z0-9]{0,3}",
        prop_oneof![
            name().prop_map(LabelFmtSource::Rename),
            template().prop_map(LabelFmtSource::Template)
        ],
        1..3,
    )
    .prop_map(|m| m.into_iter().map(|(dst, src)| LabelFmt { dst, src }).collect());
    prop_oneof![
        3 => any_line_filter().prop_map(Stage::LineFilter),
        2 => parser_stage().prop_map(Stage::Parser),
        3 => label_filter().prop_map(Stage::LabelFilter),
        1 => template().prop_map(Stage::LineFormat),
        1 => fmts.prop_map(Stage::LabelFormat),
        1 => proptest::collection::vec(selection(), 1..3).prop_map(Stage::Drop),
        1 => proptest::collection::vec(selection(), 1..3).prop_map(Stage::Keep),
        1 => Just(Stage::Decolorize),
    ]
}

fn log_expr() -> impl Strategy<Value = LogExpr> {
    (
        "[a-z_]{1,6}",
        "[a-zA-Z0-9]{1,6}",
        proptest::collection::vec(any_matcher(), 0..2),
        proptest::collection::vec(stage(), 0..4),
    )
        .prop_map(|(name, value, rest, mut stages)| {
            unambiguous(&mut stages);
            let mut matchers = vec![Matcher::new(name, MatchOp::Eq, value).unwrap()];
            matchers.extend(rest);
            LogExpr {
                selector: Selector::new(matchers),
                stages,
            }
        })
}

/// `| drop a != "x"` reads as a matcher (in Loki too): a `drop`/`keep` that ends in a bare name
/// cannot be followed by a `!=`/`!~` line filter, so give such a name a matcher.
fn unambiguous(stages: &mut [Stage]) {
    for k in 1..stages.len() {
        let negative_filter = matches!(
            &stages[k],
            Stage::LineFilter(f) if matches!(f.op, crate::ast::FilterOp::NotContains | crate::ast::FilterOp::NotRegex)
        );
        if let (true, Stage::Drop(sel) | Stage::Keep(sel)) = (negative_filter, &mut stages[k - 1])
            && let Some(last) = sel.last_mut()
            && let LabelSelection::Name(n) = last
        {
            *last = LabelSelection::Matcher(Matcher::new(n.as_str(), MatchOp::Eq, "x").unwrap());
        }
    }
}

fn unwrap_expr() -> impl Strategy<Value = Unwrap> {
    (
        prop_oneof![
            Just(UnwrapConversion::None),
            Just(UnwrapConversion::Duration),
            Just(UnwrapConversion::DurationSeconds),
            Just(UnwrapConversion::Bytes),
        ],
        name(),
        proptest::collection::vec(label_filter(), 0..2),
    )
        .prop_map(|(conversion, label, post_filters)| Unwrap {
            conversion,
            label,
            post_filters,
        })
}

fn grouping() -> impl Strategy<Value = Grouping> {
    (any::<bool>(), proptest::collection::vec(name(), 0..3)).prop_map(|(without, labels)| Grouping { without, labels })
}

fn range_aggregation() -> impl Strategy<Value = RangeAggregation> {
    (
        proptest::sample::select(RangeOp::ALL.to_vec()),
        log_expr(),
        unwrap_expr(),
        any::<bool>(),
        duration(),
        proptest::option::of(duration()),
        grouping(),
        any::<bool>(),
        number(),
    )
        .prop_map(|(op, log, unwrap, want_unwrap, range, offset, g, want_g, q)| {
            let use_unwrap = op.requires_unwrap() || (op.allows_unwrap() && want_unwrap);
            RangeAggregation {
                op,
                param: (op == RangeOp::QuantileOverTime).then_some(q),
                range: LogRange {
                    log,
                    unwrap: use_unwrap.then_some(unwrap),
                    range,
                    offset,
                },
                grouping: (op.allows_grouping() && want_g).then_some(g),
            }
        })
}

fn bin_op() -> impl Strategy<Value = BinOp> {
    proptest::sample::select(vec![
        BinOp::Add,
        BinOp::Sub,
        BinOp::Mul,
        BinOp::Div,
        BinOp::Mod,
        BinOp::Pow,
        BinOp::Eq,
        BinOp::Neq,
        BinOp::Gt,
        BinOp::Gte,
        BinOp::Lt,
        BinOp::Lte,
        BinOp::And,
        BinOp::Or,
        BinOp::Unless,
    ])
}

fn modifier() -> impl Strategy<Value = (bool, Option<VectorMatching>)> {
    let group = proptest::option::of(
        (any::<bool>(), proptest::collection::vec(name(), 0..2))
            .prop_map(|(left, l)| if left { GroupSide::Left(l) } else { GroupSide::Right(l) }),
    );
    let matching = proptest::option::of(
        (any::<bool>(), proptest::collection::vec(name(), 0..3), group)
            .prop_map(|(on, labels, group)| VectorMatching { on, labels, group }),
    );
    (any::<bool>(), matching)
}

/// Metric expressions that pass validation.
fn metric_expr() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        4 => range_aggregation().prop_map(Expr::RangeAggregation),
        2 => number().prop_map(Expr::Literal),
        1 => number().prop_map(Expr::Vector),
    ];
    leaf.prop_recursive(4, 16, 2, |inner| {
        prop_oneof![
            (
                proptest::sample::select(VectorOp::ALL.to_vec()),
                1u64..1000,
                proptest::option::of(grouping()),
                inner.clone()
            )
                .prop_map(|(op, k, grouping, inner)| Expr::VectorAggregation(VectorAggregation {
                    op,
                    param: op.takes_param().then_some(k),
                    grouping,
                    inner: Box::new(inner),
                })),
            (bin_op(), modifier(), inner.clone(), inner.clone()).prop_map(|(op, (b, m), lhs, rhs)| {
                let (lhs, rhs) = if op.is_set() {
                    (not_literal(lhs), not_literal(rhs))
                } else {
                    (lhs, rhs)
                };
                let matching = m.map(|mut m| {
                    if op.is_set() {
                        m.group = None;
                    }
                    m
                });
                Expr::BinOp(BinOpExpr {
                    op,
                    modifier: BinOpModifier {
                        return_bool: b && op.is_comparison(),
                        matching,
                    },
                    lhs: Box::new(lhs),
                    rhs: Box::new(rhs),
                })
            }),
            (inner, name(), any_string(), name(), any_regex()).prop_map(|(inner, dst, replacement, src, regex)| {
                Expr::LabelReplace(LabelReplace {
                    inner: Box::new(inner),
                    dst,
                    replacement,
                    src,
                    regex,
                })
            }),
        ]
    })
}

/// Set operators refuse literal operands: use `vector(n)` instead.
fn not_literal(e: Expr) -> Expr {
    match e {
        Expr::Literal(v) => Expr::Vector(v),
        other => other,
    }
}

/// Runs a property in a thread with a large stack: the nested strategies of the metric grammar
/// overflow the default 2 MiB test stack in debug builds.
fn run_property<S>(strategy: fn() -> S, cases: u32, test: fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy + 'static,
    S::Value: std::fmt::Debug,
{
    let result = std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || {
            let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(cases));
            runner.run(&strategy(), test).map_err(|e| e.to_string())
        })
        .expect("spawn")
        .join()
        .expect("property thread panicked");
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn log_queries_round_trip() {
    run_property(log_expr, 512, |log| {
        let expr = Expr::Log(log);
        let text = expr.to_string();
        prop_assert_eq!(parse_expr(&text), Ok(expr), "printed: {}", text);
        Ok(())
    });
}

#[test]
fn metric_queries_round_trip() {
    run_property(metric_expr, 512, |expr| {
        let text = expr.to_string();
        prop_assert_eq!(parse_expr(&text), Ok(expr), "printed: {}", text);
        Ok(())
    });
}

proptest! {
    #[test]
    fn parser_never_panics_on_metric_near_misses(
        input in proptest::string::string_regex(
            r#"(sum|rate|topk|by|on|bool|or|unwrap|json|\| |[{}()\[\]|=!~<>+*/^%,"` a-z0-9.-]){0,24}"#
        ).unwrap()
    ) {
        let _ = parse_expr(&input);
    }
}
