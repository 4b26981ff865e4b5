//! Table-driven tests for the full language: the printed AST of each input (printing is a fixed
//! point), and Loki-form errors for every invalid form of the feature matrix.

use crate::ast::{BinOp, Expr, LabelFilterExpr, RangeOp, Stage, UnwrapConversion, VectorOp};
use crate::parse_expr;

fn printed(q: &str) -> String {
    match parse_expr(q) {
        Ok(e) => e.to_string(),
        Err(e) => panic!("{q:?} failed: {e}"),
    }
}

fn check(cases: &[(&str, &str)]) {
    for (input, want) in cases {
        let got = printed(input);
        assert_eq!(&got, want, "input {input:?}");
        assert_eq!(printed(&got), got, "printing is a fixed point for {input:?}");
        assert_eq!(parse_expr(&got), parse_expr(input), "same tree for {input:?}");
    }
}

#[test]
fn parsers() {
    check(&[
        (r#"{a="b"} | json"#, r#"{a="b"} | json"#),
        (
            r#"{a="b"} | json first="x.y", b="arr[0]", c=`["k-1"]`, d"#,
            r#"{a="b"} | json first="x.y", b="arr[0]", c="[\"k-1\"]", d"#,
        ),
        (r#"{a="b"}|logfmt"#, r#"{a="b"} | logfmt"#),
        (
            r#"{a="b"} | logfmt --keep-empty --strict a, b="k""#,
            r#"{a="b"} | logfmt --strict --keep-empty a, b="k""#,
        ),
        (r#"{a="b"} | logfmt --strict"#, r#"{a="b"} | logfmt --strict"#),
        (
            r#"{a="b"} | regexp "(?P<method>\\w+) (?P<path>\\S+)""#,
            r#"{a="b"} | regexp "(?P<method>\\w+) (?P<path>\\S+)""#,
        ),
        (
            r#"{a="b"} | pattern `<ip> - <_> "<method> <path>"`"#,
            r#"{a="b"} | pattern "<ip> - <_> \"<method> <path>\"""#,
        ),
        (r#"{a="b"} | unpack"#, r#"{a="b"} | unpack"#),
        (
            r#"{a="b"} |= "x" | json | decolorize |~ "y""#,
            r#"{a="b"} |= "x" | json | decolorize |~ "y""#,
        ),
    ]);
}

#[test]
fn label_filters() {
    check(&[
        (r#"{a="b"} | level="error""#, r#"{a="b"} | level="error""#),
        (
            r#"{a="b"} | x!="1" | y=~"a.*" | z!~`b\d`"#,
            r#"{a="b"} | x!="1" | y=~"a.*" | z!~"b\\d""#,
        ),
        (r#"{a="b"} | status >= 500"#, r#"{a="b"} | status>=500"#),
        (r#"{a="b"} | status == 200"#, r#"{a="b"} | status==200"#),
        (r#"{a="b"} | status = 200"#, r#"{a="b"} | status==200"#),
        (r#"{a="b"} | status != 200"#, r#"{a="b"} | status!=200"#),
        (
            r#"{a="b"} | v > 1.5 | v < -2.5e3 | v <= .5"#,
            r#"{a="b"} | v>1.5 | v<-2500 | v<=0.5"#,
        ),
        (r#"{a="b"} | latency > 250ms"#, r#"{a="b"} | latency>250ms"#),
        (r#"{a="b"} | d >= 1m48.4s"#, r#"{a="b"} | d>=1m48s400ms"#),
        (r#"{a="b"} | d < 1h30m"#, r#"{a="b"} | d<1h30m"#),
        (r#"{a="b"} | size > 1KB"#, r#"{a="b"} | size>1KB"#),
        (r#"{a="b"} | size >= 1MiB"#, r#"{a="b"} | size>=1MiB"#),
        (r#"{a="b"} | size < 1.5KiB"#, r#"{a="b"} | size<1536B"#),
        (
            r#"{a="b"} | addr = ip("10.0.0.0/8")"#,
            r#"{a="b"} | addr=ip("10.0.0.0/8")"#,
        ),
        (r#"{a="b"} | addr != ip("::1")"#, r#"{a="b"} | addr!=ip("::1")"#),
        (
            r#"{a="b"} | x="1" and y="2", z="3" w="4""#,
            r#"{a="b"} | x="1" and y="2" and z="3" and w="4""#,
        ),
        (
            r#"{a="b"} | x="1" or y="2" and z="3""#,
            r#"{a="b"} | x="1" or y="2" and z="3""#,
        ),
        (
            r#"{a="b"} | (x="1" or y="2") and z="3""#,
            r#"{a="b"} | (x="1" or y="2") and z="3""#,
        ),
        (
            r#"{a="b"} | x="1" and (y="2" and z="3")"#,
            r#"{a="b"} | x="1" and (y="2" and z="3")"#,
        ),
        (r#"{a="b"} | ((x="1"))"#, r#"{a="b"} | x="1""#),
        (r#"{a="b"} | __error__="""#, r#"{a="b"} | __error__="""#),
        (r#"{a="b"} | json | count > 5"#, r#"{a="b"} | json | count>5"#),
    ]);
    let Ok(Expr::Log(log)) = parse_expr(r#"{a="b"} | x="1" or y="2" and z="3""#) else {
        panic!("log query")
    };
    let Stage::LabelFilter(LabelFilterExpr::Or(_, rhs)) = &log.stages[0] else {
        panic!("or at the top: {:?}", log.stages[0])
    };
    assert!(matches!(**rhs, LabelFilterExpr::And(..)), "and binds tighter");
}

#[test]
fn formatting_stages() {
    check(&[
        (r#"{a="b"} | line_format "{{.a}}""#, r#"{a="b"} | line_format "{{.a}}""#),
        (
            r#"{a="b"} | line_format `{{ .level | upper }} {{ if eq .s "5" }}E{{ else }}-{{ end }} {{ __line__ }}`"#,
            r#"{a="b"} | line_format "{{ .level | upper }} {{ if eq .s \"5\" }}E{{ else }}-{{ end }} {{ __line__ }}""#,
        ),
        (
            r#"{a="b"} | label_format dst=src, t="{{.a}}-{{.b}}""#,
            r#"{a="b"} | label_format dst=src, t="{{.a}}-{{.b}}""#,
        ),
        (
            r#"{a="b"} | drop a, b="v", c=~"re.*""#,
            r#"{a="b"} | drop a, b="v", c=~"re.*""#,
        ),
        (r#"{a="b"} | keep a, b="v""#, r#"{a="b"} | keep a, b="v""#),
        (r#"{a="b"} | drop __error__"#, r#"{a="b"} | drop __error__"#),
        (r#"{a="b"} | decolorize"#, r#"{a="b"} | decolorize"#),
    ]);
}

#[test]
fn range_aggregations() {
    check(&[
        (r#"count_over_time({a="b"}[5m])"#, r#"count_over_time({a="b"}[5m])"#),
        (r#"rate({a="b"} |= "x" [1h30m])"#, r#"rate({a="b"} |= "x" [1h30m])"#),
        (r#"rate({a="b"}[500ms] |= "x")"#, r#"rate({a="b"} |= "x" [500ms])"#),
        (
            r#"bytes_over_time({a="b"}[1m] offset 1h)"#,
            r#"bytes_over_time({a="b"}[1m] offset 1h)"#,
        ),
        (
            r#"bytes_rate({a="b"}[1m] offset 1h | json)"#,
            r#"bytes_rate({a="b"} | json [1m] offset 1h)"#,
        ),
        (
            r#"absent_over_time({a="b"} | json [5m] offset 30s)"#,
            r#"absent_over_time({a="b"} | json [5m] offset 30s)"#,
        ),
        (
            r#"sum_over_time({a="b"} | logfmt | unwrap latency [5m])"#,
            r#"sum_over_time({a="b"} | logfmt | unwrap latency [5m])"#,
        ),
        (
            r#"avg_over_time({a="b"}[5m] | json | unwrap duration(d) | __error__="") by (app)"#,
            r#"avg_over_time({a="b"} | json | unwrap duration(d) | __error__="" [5m]) by (app)"#,
        ),
        (
            r#"max_over_time({a="b"} | unwrap bytes(size) [1d]) without (pod, x)"#,
            r#"max_over_time({a="b"} | unwrap bytes(size) [24h]) without (pod, x)"#,
        ),
        (
            r#"min_over_time({a="b"} | unwrap duration_seconds(d) [1m]) by ()"#,
            r#"min_over_time({a="b"} | unwrap duration_seconds(d) [1m]) by ()"#,
        ),
        (
            r#"quantile_over_time(0.99, {a="b"} | unwrap v [5m]) by (a)"#,
            r#"quantile_over_time(0.99, {a="b"} | unwrap v [5m]) by (a)"#,
        ),
        (
            r#"stddev_over_time({a="b"} | unwrap v | v > 1 [5m])"#,
            r#"stddev_over_time({a="b"} | unwrap v | v>1 [5m])"#,
        ),
        (
            r#"stdvar_over_time({a="b"} | unwrap v [5m])"#,
            r#"stdvar_over_time({a="b"} | unwrap v [5m])"#,
        ),
        (
            r#"first_over_time({a="b"} | unwrap v [5m])"#,
            r#"first_over_time({a="b"} | unwrap v [5m])"#,
        ),
        (
            r#"last_over_time({a="b"} | unwrap v [5m])"#,
            r#"last_over_time({a="b"} | unwrap v [5m])"#,
        ),
        (r#"rate({a="b"} | unwrap v [5m])"#, r#"rate({a="b"} | unwrap v [5m])"#),
        (
            r#"rate_counter({a="b"} | unwrap v [5m])"#,
            r#"rate_counter({a="b"} | unwrap v [5m])"#,
        ),
        (r#"count_over_time(({a="b"})[5m])"#, r#"count_over_time({a="b"}[5m])"#),
        (
            r#"count_over_time(({a="b"} |= "x")[5m])"#,
            r#"count_over_time({a="b"} |= "x" [5m])"#,
        ),
        (
            r#"count_over_time(({a="b"}[5m] | json))"#,
            r#"count_over_time({a="b"} | json [5m])"#,
        ),
        (r#"count_over_time({a="b"}[ 5m ])"#, r#"count_over_time({a="b"}[5m])"#),
    ]);
    let Ok(Expr::RangeAggregation(r)) = parse_expr(r#"avg_over_time({a="b"} | unwrap duration(d) [5m])"#) else {
        panic!("range aggregation")
    };
    assert_eq!(r.op, RangeOp::AvgOverTime);
    assert_eq!(r.range.range, std::time::Duration::from_secs(300));
    let unwrap = r.range.unwrap.as_ref().map(|u| (u.conversion, u.label.as_str()));
    assert_eq!(unwrap, Some((UnwrapConversion::Duration, "d")));
}

#[test]
fn vector_aggregations_and_functions() {
    check(&[
        (
            r#"sum(count_over_time({a="b"}[5m]))"#,
            r#"sum(count_over_time({a="b"}[5m]))"#,
        ),
        (
            r#"sum by (app, pod) (rate({a="b"}[5m]))"#,
            r#"sum by (app, pod) (rate({a="b"}[5m]))"#,
        ),
        (
            r#"sum(rate({a="b"}[5m])) by (app)"#,
            r#"sum by (app) (rate({a="b"}[5m]))"#,
        ),
        (
            r#"avg without (x) (rate({a="b"}[5m]))"#,
            r#"avg without (x) (rate({a="b"}[5m]))"#,
        ),
        (
            r#"count by () (rate({a="b"}[5m]))"#,
            r#"count by () (rate({a="b"}[5m]))"#,
        ),
        (r#"topk(5, rate({a="b"}[5m]))"#, r#"topk(5, rate({a="b"}[5m]))"#),
        (
            r#"bottomk by (x) (2, rate({a="b"}[5m]))"#,
            r#"bottomk by (x) (2, rate({a="b"}[5m]))"#,
        ),
        (
            r#"topk(3, sum(rate({a="b"}[5m]))) by (x)"#,
            r#"topk by (x) (3, sum(rate({a="b"}[5m])))"#,
        ),
        (r#"sort(rate({a="b"}[5m]))"#, r#"sort(rate({a="b"}[5m]))"#),
        (r#"sort_desc(rate({a="b"}[5m]))"#, r#"sort_desc(rate({a="b"}[5m]))"#),
        (
            r#"min(max(stddev(stdvar(rate({a="b"}[5m])))))"#,
            r#"min(max(stddev(stdvar(rate({a="b"}[5m])))))"#,
        ),
        (r#"vector(1)"#, r#"vector(1)"#),
        (r#"vector(-2.5)"#, r#"vector(-2.5)"#),
        (
            r#"label_replace(rate({a="b"}[5m]), "dst", "$1", "src", "(.*)-x")"#,
            r#"label_replace(rate({a="b"}[5m]), "dst", "$1", "src", "(.*)-x")"#,
        ),
        (r#"sum(1)"#, r#"sum(1)"#),
    ]);
    let Ok(Expr::VectorAggregation(v)) = parse_expr(r#"topk(5, rate({a="b"}[5m]))"#) else {
        panic!("vector aggregation")
    };
    assert_eq!((v.op, v.param), (VectorOp::Topk, Some(5)));
}

#[test]
fn binary_operations() {
    let r = r#"rate({a="b"}[5m])"#;
    check(&[
        ("1 + 2 * 3", "1 + 2 * 3"),
        ("(1 + 2) * 3", "(1 + 2) * 3"),
        ("1 - 2 - 3", "1 - 2 - 3"),
        ("1 - (2 - 3)", "1 - (2 - 3)"),
        ("2 ^ 3 ^ 2", "2 ^ 3 ^ 2"),
        ("(2 ^ 3) ^ 2", "(2 ^ 3) ^ 2"),
        ("-2^2", "-2 ^ 2"),
        ("1 - -1", "1 - -1"),
        ("1-1", "1 - 1"),
        ("+3 % 2 / 1", "3 % 2 / 1"),
        ("1e3 + 1.5e-7 + 0.25", "1000 + 1.5e-7 + 0.25"),
        ("((((1))))", "1"),
        ("1 > bool 2", "1 > bool 2"),
        ("1 == 1 != 0 >= 0 <= 1 < 2", "1 == 1 != 0 >= 0 <= 1 < 2"),
    ]);
    check(&[
        (&format!("{r} / {r}"), &format!("{r} / {r}")),
        (&format!("{r} > 10"), &format!("{r} > 10")),
        (&format!("{r} > bool 10"), &format!("{r} > bool 10")),
        (&format!("{r} and {r} or {r}"), &format!("{r} and {r} or {r}")),
        (&format!("{r} or {r} and {r}"), &format!("{r} or {r} and {r}")),
        (&format!("({r} or {r}) and {r}"), &format!("({r} or {r}) and {r}")),
        (&format!("{r} unless {r}"), &format!("{r} unless {r}")),
        (&format!("sum({r}) or vector(0)"), &format!("sum({r}) or vector(0)")),
        (&format!("{r} + on (a, b) {r}"), &format!("{r} + on (a, b) {r}")),
        (&format!("{r} + ignoring(a) {r}"), &format!("{r} + ignoring (a) {r}")),
        (
            &format!("{r} * on () group_left {r}"),
            &format!("{r} * on () group_left () {r}"),
        ),
        (
            &format!("{r} * on(x) group_left(y, z) {r}"),
            &format!("{r} * on (x) group_left (y, z) {r}"),
        ),
        (
            &format!("{r} / ignoring(x) group_right() {r}"),
            &format!("{r} / ignoring (x) group_right () {r}"),
        ),
        (&format!("{r} > bool on (x) {r}"), &format!("{r} > bool on (x) {r}")),
        (&format!("{r} and on (x) {r}"), &format!("{r} and on (x) {r}")),
        (
            &format!("sum({r}) / (sum({r}) + 1)"),
            &format!("sum({r}) / (sum({r}) + 1)"),
        ),
    ]);
    let Ok(Expr::BinOp(b)) = parse_expr("1 + 2 * 3 ^ 2") else {
        panic!("binop")
    };
    assert_eq!(b.op, BinOp::Add);
    let Ok(Expr::BinOp(b)) = parse_expr("-2 ^ 2") else {
        panic!("binop")
    };
    assert_eq!(
        (b.op, &*b.lhs),
        (BinOp::Pow, &Expr::Literal(-2.0)),
        "the sign belongs to the literal"
    );
    let Ok(Expr::BinOp(b)) = parse_expr("2 ^ 3 ^ 2") else {
        panic!("binop")
    };
    assert_eq!(*b.lhs, Expr::Literal(2.0), "^ is right-associative");
}

#[test]
fn comments_and_whitespace_in_metric_queries() {
    check(&[(
        "sum by (app) ( # per app\n  rate(\n    {a=\"b\"} # the selector\n    | json [5m]\n  )\n)",
        r#"sum by (app) (rate({a="b"} | json [5m]))"#,
    )]);
}

fn err(q: &str) -> String {
    match parse_expr(q) {
        Ok(e) => panic!("{q:?} should fail, parsed as {e}"),
        Err(e) => {
            assert!(e.is_client_error());
            e.to_string()
        }
    }
}

#[test]
fn invalid_forms_are_400_with_lokis_wording() {
    let r = r#"rate({a="b"}[5m])"#;
    let cases: Vec<(String, &str)> = vec![
        (
            r#"{a="b"} | json a="x..y""#.into(),
            r#"parse error at line 1, col 18: invalid json path: "x..y""#,
        ),
        (
            r#"{a="b"} | json a="[x]""#.into(),
            r#"parse error at line 1, col 18: invalid json path: "[x]""#,
        ),
        (
            r#"{a="b"} | logfmt --nope"#.into(),
            "parse error at line 1, col 18: invalid logfmt flag: --nope",
        ),
        (
            r#"{a="b"} | regexp "(\\w+)""#.into(),
            "parse error : invalid regexp parser: at least one named capture must be supplied",
        ),
        (
            r#"{a="b"} | pattern "<_> x""#.into(),
            "parse error : invalid pattern parser: at least one capture is required",
        ),
        (
            r#"{a="b"} | pattern "<a><b>""#.into(),
            "parse error : invalid pattern parser: found consecutive capture '<a><b>': invalid expression",
        ),
        (
            r#"{a="b"} | status >= "500""#.into(),
            "parse error at line 1, col 21: syntax error: unexpected STRING, expecting NUMBER or DURATION or BYTES",
        ),
        (
            r#"{a="b"} | x =~ 5"#.into(),
            "parse error at line 1, col 16: syntax error: unexpected NUMBER, expecting STRING",
        ),
        (
            r#"{a="b"} | x > ip("1.2.3.4")"#.into(),
            "parse error at line 1, col 13: ip: invalid operation",
        ),
        (
            r#"{a="b"} | line_format "{{ .a | nosuch }}""#.into(),
            r#"parse error at line 1, col 23: invalid line template: template: line:1: function "nosuch" not defined"#,
        ),
        (
            r#"{a="b"} | label_format a=b, a="{{.x}}""#.into(),
            "parse error at line 1, col 29: multiple label name 'a' not allowed in a single format operation",
        ),
        (
            r#"{a="b"} | drop"#.into(),
            "parse error at line 1, col 15: syntax error: unexpected $end, expecting IDENTIFIER",
        ),
        (
            r#"{a="b"} | unwrap x"#.into(),
            "parse error at line 1, col 11: syntax error: unexpected unwrap: unwrap is only allowed in a range aggregation",
        ),
        (
            r#"sum_over_time({a="b"} | unwrap x | json [5m])"#.into(),
            "parse error at line 1, col 36: syntax error: unexpected json, expecting IDENTIFIER or (",
        ),
        (
            r#"sum_over_time({a="b"} | unwrap x |= "y" [5m])"#.into(),
            "parse error at line 1, col 34: syntax error: only label filters may follow unwrap",
        ),
        (
            r#"count_over_time({a="b"}[5m] | json offset 1h)"#.into(),
            "parse error at line 1, col 36: syntax error: unexpected offset, expecting )",
        ),
        (
            r#"count_over_time({a="b"} offset 1h [5m])"#.into(),
            "parse error at line 1, col 25: syntax error: unexpected offset, expecting [",
        ),
        (
            r#"count_over_time({a="b"}[5m]) by (x)"#.into(),
            "parse error : grouping not allowed for count_over_time aggregation",
        ),
        (
            r#"rate({a="b"}[5m]) without (x)"#.into(),
            "parse error : grouping not allowed for rate aggregation",
        ),
        (
            r#"sum_over_time({a="b"} | unwrap x [5m]) by (x)"#.into(),
            "parse error : grouping not allowed for sum_over_time aggregation",
        ),
        (
            r#"sum_over_time({a="b"}[5m])"#.into(),
            "parse error : invalid aggregation sum_over_time without unwrap",
        ),
        (
            r#"count_over_time({a="b"} | unwrap x [5m])"#.into(),
            "parse error : invalid aggregation count_over_time with unwrap",
        ),
        (
            r#"bytes_rate({a="b"} | unwrap x [5m])"#.into(),
            "parse error : invalid aggregation bytes_rate with unwrap",
        ),
        (
            r#"quantile_over_time({a="b"} | unwrap x [5m])"#.into(),
            "parse error : parameter required for operation quantile_over_time",
        ),
        (
            r#"count_over_time({a="b"}[5])"#.into(),
            "parse error at line 1, col 25: syntax error: expecting a duration",
        ),
        (
            format!("topk({r})"),
            "parse error : parameter required for operation topk",
        ),
        (
            format!("topk(0, {r})"),
            "parse error : invalid parameter (must be greater than 0) topk(0",
        ),
        (
            format!("bottomk(1.5, {r})"),
            "parse error : invalid parameter bottomk(1.5,",
        ),
        (
            format!("sum(5, {r})"),
            "parse error : unsupported parameter for operation sum(5,",
        ),
        (format!("topk(5.0, {r})"), "parse error : invalid parameter topk(5.0,"),
        (
            format!("topk(-1, {r})"),
            "parse error : invalid parameter (must be greater than 0) topk(-1",
        ),
        (
            r#"sum({a="b"})"#.into(),
            "parse error at line 1, col 5: syntax error: unexpected log query, expecting a metric expression",
        ),
        (
            format!("{r} and 1"),
            "parse error : unexpected literal for right leg of logical/set binary operation (and): 1.000000",
        ),
        (
            format!("1 or {r}"),
            "parse error : unexpected literal for left leg of logical/set binary operation (or): 1.000000",
        ),
        (
            format!("{r} + bool {r}"),
            "parse error at line 1, col 19: bool modifier can only be used on comparison operators",
        ),
        (
            format!("{r} and on (x) group_left {r}"),
            "parse error at line 1, col 19: no grouping allowed for \"and\" operation",
        ),
        (
            format!("{{a=\"b\"}} + {r}"),
            "parse error at line 1, col 1: syntax error: unexpected log query in binary operation",
        ),
        (
            r#"vector("1")"#.into(),
            "parse error at line 1, col 8: syntax error: unexpected STRING, expecting NUMBER",
        ),
        (
            format!("label_replace({r}, \"1x\", \"\", \"a\", \"(.*)\")"),
            "parse error : invalid destination label name in label_replace(): 1x",
        ),
        (
            format!("sum({r}"),
            "parse error at line 1, col 22: syntax error: unexpected $end, expecting )",
        ),
        (
            format!("({r}"),
            "parse error at line 1, col 19: syntax error: unexpected $end, expecting )",
        ),
        (
            format!("{r} +"),
            "parse error at line 1, col 20: syntax error: unexpected $end, expecting {",
        ),
        (
            "-sum(x)".into(),
            "parse error at line 1, col 2: syntax error: unexpected sum, expecting NUMBER",
        ),
        (
            "foo(1)".into(),
            "parse error at line 1, col 1: syntax error: unexpected IDENTIFIER",
        ),
        (
            "1m".into(),
            "parse error at line 1, col 1: syntax error: unexpected duration or byte size, expecting NUMBER",
        ),
        (
            format!("sum by (a) ({r}) by (b)"),
            "parse error at line 1, col 32: syntax error: unexpected by",
        ),
    ];
    for (input, want) in &cases {
        assert_eq!(&err(input), want, "input {input:?}");
    }
    assert_eq!(
        err(r#"{a="b"} | regexp "(?P<x>a""#),
        "parse error : invalid regexp parser: error parsing regexp: missing closing ): `(?P<x>a`"
    );
    assert_eq!(
        err(r#"{a="b"} | regexp "(?P<x>a)(?P<x>b)""#),
        "parse error : invalid regexp parser: duplicate extracted label name 'x'"
    );
    assert_eq!(
        err(r#"{a="b"} | pattern "<x> <x>""#),
        "parse error : invalid pattern parser: duplicate capture name (x): invalid expression"
    );
    assert_eq!(
        err(r#"{a="b"} | line_format "{{ if .a }}x""#),
        "parse error at line 1, col 23: invalid line template: template: line:1: unexpected EOF"
    );
    assert!(
        err(r#"{a="b"} | line_format "{{ .a ""#).starts_with("parse error at line 1, col 23: invalid line template: ")
    );
    assert!(
        err(r#"{a="b"} | label_format x="{{ if .a }}""#)
            .starts_with("parse error at line 1, col 26: invalid template for label 'x': ")
    );
    assert!(
        err(&format!("label_replace({r}, \"a\", \"\", \"a\", \"(\")"))
            .starts_with("parse error : invalid regex in label_replace: error parsing regexp: ")
    );
}

#[test]
fn selectors_inside_metric_queries_are_validated() {
    let want = format!("parse error : {}", crate::matcher::EMPTY_COMPATIBLE_SELECTOR);
    for q in [
        r#"rate({a=""}[5m])"#,
        r#"sum(rate({a=~".*"}[5m]))"#,
        r#"1 + count_over_time({}[1m])"#,
        r#"label_replace(rate({x!="y"}[1m]), "a", "", "b", "")"#,
    ] {
        assert_eq!(err(q), want, "{q}");
    }
}

#[test]
fn nesting_is_bounded() {
    let mut q = r#"rate({a="b"}[1m])"#.to_string();
    for _ in 0..60 {
        q = format!("sum({q})");
    }
    assert!(parse_expr(&q).is_ok());
    let deep = format!("{}rate({{a=\"b\"}}[1m]){}", "sum(".repeat(10_000), ")".repeat(10_000));
    assert!(err(&deep).contains("nested too deeply"));
    let chain = vec!["1"; 20_000].join(" + ");
    assert!(err(&chain).contains("nested too deeply"));
    let parens = format!("{}1{}", "(".repeat(50_000), ")".repeat(50_000));
    assert_eq!(printed(&parens), "1");
    let filters = format!(r#"{{a="b"}} | {}"#, vec![r#"x="1""#; 2_000].join(" and "));
    assert!(err(&filters).contains("too"), "long label filter chains are bounded");
    let nested = format!(r#"{{a="b"}} | {}x="1"{}"#, "(".repeat(5_000), ")".repeat(5_000));
    assert!(err(&nested).contains("nested too deeply"));
}
