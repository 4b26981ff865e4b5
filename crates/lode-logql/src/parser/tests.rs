//! Table-driven parser tests: each input's printed AST, each error's position and message, and
//! the property that printing then parsing gives the same AST back.

use lode_model::Labels;
use proptest::prelude::*;

use crate::ast::{Expr, FilterOp, FilterOperand, LineFilterExpr, LogExpr, Stage};
use crate::error::LogqlError;
use crate::matcher::{EMPTY_COMPATIBLE_SELECTOR, MatchOp, Matcher, Selector};
use crate::{parse_expr, parse_log_query, parse_unvalidated};

fn printed(q: &str) -> String {
    match parse_expr(q) {
        Ok(e) => e.to_string(),
        Err(e) => panic!("{q:?} failed: {e}"),
    }
}

#[test]
fn parses_and_prints_canonically() {
    let cases: &[(&str, &str)] = &[
        (r#"{app="api"}"#, r#"{app="api"}"#),
        (r#"{app="api",env!="dev"}"#, r#"{app="api", env!="dev"}"#),
        (
            r#"{ app =~ "api|web" , pod !~ "x.*" }"#,
            r#"{app=~"api|web", pod!~"x.*"}"#,
        ),
        ("{app=`raw\\d`}", r#"{app="raw\\d"}"#),
        (r#"{app="a\"b\\c\n\t\x41\u00e9"}"#, r#"{app="a\"b\\c\n\tAé"}"#),
        (r#"{app="\101"}"#, r#"{app="A"}"#),
        ("{app=\"é日本\"}", "{app=\"é日本\"}"),
        (
            "\n\t{\n  app = \"api\", # the service\n  env=\"prod\" # and env\n}\n",
            r#"{app="api", env="prod"}"#,
        ),
        ("# leading comment\n{app=\"api\"} # trailing", r#"{app="api"}"#),
        (r#"{app="api"} |= "err""#, r#"{app="api"} |= "err""#),
        (
            r#"{app="api"}|="a"!="b"|~"c+"!~`d\d`"#,
            r#"{app="api"} |= "a" != "b" |~ "c+" !~ "d\\d""#,
        ),
        (
            r#"{app="api"} |= "a" or "b" or `c`"#,
            r#"{app="api"} |= "a" or "b" or "c""#,
        ),
        (
            r#"{app="api"} != "a" or "b" |= "c""#,
            r#"{app="api"} != "a" or "b" |= "c""#,
        ),
        (r#"{app="api"} |~ "a" or "b""#, r#"{app="api"} |~ "a" or "b""#),
        (r#"{app="api"} |= """#, r#"{app="api"} |= """#),
        (
            r##"{app="api"} |= "#not a comment""##,
            r##"{app="api"} |= "#not a comment""##,
        ),
        (
            "{app=\"api\"}\n|= \"a\" # why\n|= \"b\"",
            r#"{app="api"} |= "a" |= "b""#,
        ),
        (r#"({app="api"})"#, r#"{app="api"}"#),
        (r#"(({app="api"} |= "x"))"#, r#"{app="api"} |= "x""#),
        (r#"{app="api", app!="web"}"#, r#"{app="api", app!="web"}"#),
        (r#"{__name__="x"}"#, r#"{__name__="x"}"#),
        (r#"{app=~".+", x=""}"#, r#"{app=~".+", x=""}"#),
        (r#"{app="api"} |= "or""#, r#"{app="api"} |= "or""#),
        (
            r#"{app="api"} |= ip( "10.0.0.0/8" ) or "x" or ip(`::1`) != ip("1.2.3.4-1.2.3.9")"#,
            r#"{app="api"} |= ip("10.0.0.0/8") or "x" or ip("::1") != ip("1.2.3.4-1.2.3.9")"#,
        ),
        (
            r#"{app="api"} |> "<_> GET <_>" or `<_> POST <_>` !> "<_>/health""#,
            r#"{app="api"} |> "<_> GET <_>" or "<_> POST <_>" !> "<_>/health""#,
        ),
    ];
    for (input, want) in cases {
        let got = printed(input);
        assert_eq!(&got, want, "input {input:?}");
        assert_eq!(printed(&got), got, "printing is a fixed point for {input:?}");
    }
}

#[test]
fn errors_carry_line_and_column() {
    let cases: &[(&str, &str)] = &[
        (
            "{app}",
            "parse error at line 1, col 5: syntax error: unexpected }, expecting = or =~ or !~ or !=",
        ),
        (
            "{app=}",
            "parse error at line 1, col 6: syntax error: unexpected }, expecting STRING",
        ),
        (
            r#"{app="a" env="b"}"#,
            "parse error at line 1, col 10: syntax error: unexpected IDENTIFIER, expecting , or }",
        ),
        (
            r#"{app="a",}"#,
            "parse error at line 1, col 10: syntax error: unexpected }, expecting IDENTIFIER",
        ),
        (
            r#"{app="a""#,
            "parse error at line 1, col 9: syntax error: unexpected $end, expecting , or }",
        ),
        (
            r#"{"a"="b"}"#,
            "parse error at line 1, col 2: syntax error: unexpected STRING, expecting IDENTIFIER",
        ),
        (
            "{app=\"api\",\n  env==\"x\"}",
            "parse error at line 2, col 7: syntax error: unexpected =, expecting STRING",
        ),
        (
            r#"{app="a"} foo"#,
            "parse error at line 1, col 11: syntax error: unexpected IDENTIFIER",
        ),
        (
            r#"{app="a"} |= foo"#,
            "parse error at line 1, col 14: syntax error: unexpected IDENTIFIER, expecting STRING",
        ),
        (
            r#"{app="a"} |= "x" or"#,
            "parse error at line 1, col 20: syntax error: unexpected $end, expecting STRING",
        ),
        (
            r#"{app="a"} |= "x" "y""#,
            "parse error at line 1, col 18: syntax error: unexpected STRING",
        ),
        (
            r#"{app="a\q"}"#,
            r"parse error at line 1, col 6: unknown escape sequence \q",
        ),
        (
            r#"{app="a}"#,
            "parse error at line 1, col 6: unterminated quoted string",
        ),
        ("{app=`a}", "parse error at line 1, col 6: unterminated raw string"),
        (
            "",
            "parse error at line 1, col 1: syntax error: unexpected $end, expecting {",
        ),
        (
            "  # nothing",
            "parse error at line 1, col 12: syntax error: unexpected $end, expecting {",
        ),
        (
            "}",
            "parse error at line 1, col 1: syntax error: unexpected }, expecting {",
        ),
        (
            r#"({app="a"}"#,
            "parse error at line 1, col 11: syntax error: unexpected $end, expecting )",
        ),
        (
            r#"{app="a"} | "x""#,
            "parse error at line 1, col 13: syntax error: unexpected STRING, expecting IDENTIFIER",
        ),
        (
            "{é=\"a\"}",
            "parse error at line 1, col 2: syntax error: unexpected é, expecting IDENTIFIER",
        ),
    ];
    for (input, want) in cases {
        let err = parse_expr(input).unwrap_err();
        assert_eq!(&err.to_string(), want, "input {input:?}");
        assert!(err.is_client_error());
    }
}

#[test]
fn bad_regexes_are_reported_at_their_string() {
    // Loki compiles selector matchers while building the AST: no position.
    let err = parse_expr(r#"{app=~"("}"#).unwrap_err().to_string();
    assert!(err.starts_with("parse error : error parsing regexp: "), "{err}");
    let err = parse_expr(r#"{app="a"} |~ "x" or "[""#).unwrap_err().to_string();
    assert!(
        err.starts_with("parse error at line 1, col 21: error parsing regexp: "),
        "{err}"
    );
    let err = parse_expr(r#"{app="a"} !~ "\\j""#).unwrap_err().to_string();
    assert!(
        err.starts_with("parse error at line 1, col 14: error parsing regexp: "),
        "{err}"
    );
    let err = parse_expr(r#"{app="a"} |> "<_> <ip>""#).unwrap_err().to_string();
    assert_eq!(
        err,
        "parse error at line 1, col 14: named captures are not allowed: found '<ip>'"
    );
    let err = parse_expr(r#"{app="a"} |= ip("10.0.0.0/33")"#).unwrap_err().to_string();
    assert_eq!(
        err,
        r#"parse error at line 1, col 17: ip: invalid pattern: "10.0.0.0/33""#
    );
    let err = parse_expr(r#"{app="a"} |~ ip("10.0.0.0/8")"#).unwrap_err().to_string();
    assert_eq!(err, "parse error at line 1, col 14: ip: invalid operation");
    let err = parse_expr(r#"{app="a"} |= ip "x""#).unwrap_err().to_string();
    assert_eq!(
        err,
        "parse error at line 1, col 17: syntax error: unexpected STRING, expecting ("
    );
    // `|=` takes any string, regex metacharacters included.
    assert!(parse_expr(r#"{app="a"} |= "(""#).is_ok());
}

#[test]
fn log_queries_refuse_what_they_cannot_run_yet() {
    for (input, what) in [
        (
            r#"{app="a"} | json"#,
            "parse error at line 1, col 11: pipeline stage `| json` not supported yet",
        ),
        (
            r#"{app="a"} |= "x" | level="x""#,
            "parse error at line 1, col 18: pipeline stage `| level` not supported yet",
        ),
        (
            r#"count_over_time({app="a"}[5m])"#,
            "parse error at line 1, col 1: metric queries not supported yet",
        ),
        (
            r#"(sum(rate({app="a"}[1m])))"#,
            "parse error at line 1, col 2: metric queries not supported yet",
        ),
        (
            "1 + 1",
            "parse error at line 1, col 1: metric queries not supported yet",
        ),
        (
            "# c\n ( {app=\"a\"} |= \"x\"\n | logfmt)",
            "parse error at line 3, col 2: pipeline stage `| logfmt` not supported yet",
        ),
    ] {
        assert!(parse_expr(input).is_ok(), "{input:?} is valid LogQL");
        let err = parse_log_query(input).unwrap_err();
        assert!(matches!(err, LogqlError::Unsupported { .. }), "{input:?}: {err:?}");
        assert_eq!(err.to_string(), what, "{input:?}");
    }
}

#[test]
fn empty_compatible_selectors_are_refused_after_parsing() {
    let want = format!("parse error : {EMPTY_COMPATIBLE_SELECTOR}");
    for q in [
        "{}",
        r#"{app=""}"#,
        r#"{app=~".*"}"#,
        r#"{x!="y"}"#,
        r#"{x!~"y", z=~"a|"} |= "x""#,
    ] {
        assert_eq!(parse_expr(q).unwrap_err().to_string(), want, "{q}");
        assert!(parse_unvalidated(q).is_ok(), "{q}");
    }
    for q in [r#"{app=~".+"}"#, r#"{x!="y", app="a"}"#, r#"{app=~"a|b"}"#] {
        assert!(parse_expr(q).is_ok(), "{q}");
    }
    let deep = format!("{}{{app=\"a\"}}{}", "(".repeat(60_000), ")".repeat(60_000));
    assert_eq!(printed(&deep), r#"{app="a"}"#, "no recursion on parentheses");
    let long = format!(r#"{{app="{}"}}"#, "x".repeat(200_000));
    assert!(
        parse_expr(&long)
            .unwrap_err()
            .to_string()
            .starts_with("parse error : input size too long")
    );
}

#[test]
fn log_queries_select_streams_and_filter_lines() {
    let q =
        parse_log_query(r#"{app=~"api|check", env!="dev"} |= "GET" != "health" or "ready" |~ `status=5\d\d`"#).unwrap();
    let labels = |s: &str| Labels::parse(s).unwrap();
    assert!(q.selector().matches(&labels(r#"{app="api", env="prod"}"#)));
    assert!(q.selector().matches(&labels(r#"{app="check"}"#)));
    assert!(!q.selector().matches(&labels(r#"{app="checkout"}"#)));
    assert!(!q.selector().matches(&labels(r#"{app="api", env="dev"}"#)));
    assert!(q.pipeline.matches("GET /x status=503"));
    assert!(!q.pipeline.matches("GET /health status=503"));
    assert!(!q.pipeline.matches("GET /ready status=503"));
    assert!(!q.pipeline.matches("GET /x status=200"));
    assert!(!q.pipeline.matches("GET /x status=5١٢"), "Go's \\d is ASCII");
    assert!(q.pipeline.required_substrings().is_none());

    let q = parse_log_query(r#"{app="api"} |= "a" |~ "b""#).unwrap();
    let needles: Vec<&[u8]> = q
        .pipeline
        .required_substrings()
        .unwrap()
        .iter()
        .map(|f| f.needle())
        .collect();
    assert_eq!(needles, vec![&b"a"[..], &b"b"[..]]);

    let q = parse_log_query(r#"{app="api"} |~ "a.c""#).unwrap();
    assert!(q.pipeline.matches("xabcx") && !q.pipeline.matches("a\nc"));
    let q = parse_log_query(r#"{app="api"} |= "a" or "b""#).unwrap();
    assert!(q.pipeline.matches("xbx") && !q.pipeline.matches("c"));
}

// ---------------------------------------------------------------------------------------------
// parse(print(ast)) == ast

pub(super) fn any_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9 ]{0,6}",
        "\\PC{0,6}",
        any::<String>().prop_map(|s| s.chars().take(8).collect()),
        Just("a\"b\\c\n`".to_string()),
    ]
}

/// Regex sources that compile: escaped arbitrary text, or a few real patterns.
pub(super) fn any_regex() -> impl Strategy<Value = String> {
    prop_oneof![
        any_string().prop_map(|s| regex::escape(&s)),
        Just(r"\d+".to_string()),
        Just("(?i)err(or)?|warn".to_string()),
        Just(r"[\w.-]+@\S+".to_string()),
        Just(".*".to_string()),
    ]
}

/// Valid line-filter patterns: text with `<_>` wildcards, never two in a row.
pub(super) fn any_pattern() -> impl Strategy<Value = String> {
    proptest::collection::vec("[a-z /\"<>]{1,4}", 0..4)
        .prop_map(|parts| parts.join("<_>"))
        .prop_filter("valid pattern", |p| crate::pattern::PatternFilter::new(p).is_ok())
}

pub(super) fn any_ip_pattern() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<std::net::IpAddr>().prop_map(|ip| ip.to_string()),
        (any::<std::net::Ipv4Addr>(), 0u8..=32).prop_map(|(ip, bits)| format!("{ip}/{bits}")),
        (any::<std::net::Ipv6Addr>(), 0u8..=128).prop_map(|(ip, bits)| format!("{ip}/{bits}")),
        (any::<u32>(), any::<u32>()).prop_map(|(a, b)| {
            let (a, b) = (a.min(b), a.max(b));
            format!("{}-{}", std::net::Ipv4Addr::from(a), std::net::Ipv4Addr::from(b))
        }),
    ]
}

pub(super) fn any_matcher() -> impl Strategy<Value = Matcher> {
    let name = "[a-zA-Z_][a-zA-Z0-9_]{0,6}";
    prop_oneof![
        (name, prop_oneof![Just(MatchOp::Eq), Just(MatchOp::Neq)], any_string()),
        (name, prop_oneof![Just(MatchOp::Re), Just(MatchOp::Nre)], any_regex()),
    ]
    .prop_filter_map("valid matcher", |(n, op, v)| Matcher::new(n, op, v).ok())
}

pub(super) fn any_line_filter() -> impl Strategy<Value = LineFilterExpr> {
    prop_oneof![
        (
            prop_oneof![Just(FilterOp::Contains), Just(FilterOp::NotContains)],
            proptest::collection::vec(
                prop_oneof![
                    3 => any_string().prop_map(FilterOperand::Text),
                    1 => any_ip_pattern().prop_map(FilterOperand::Ip),
                ],
                1..4
            )
        ),
        (
            prop_oneof![Just(FilterOp::Regex), Just(FilterOp::NotRegex)],
            proptest::collection::vec(any_regex().prop_map(FilterOperand::Text), 1..4)
        ),
        (
            prop_oneof![Just(FilterOp::Pattern), Just(FilterOp::NotPattern)],
            proptest::collection::vec(any_pattern().prop_map(FilterOperand::Text), 1..3)
        ),
    ]
    .prop_map(|(op, operands)| LineFilterExpr { op, operands })
}

fn any_log_expr() -> impl Strategy<Value = LogExpr> {
    (
        "[a-z_]{1,6}",
        "[a-zA-Z0-9]{1,6}",
        proptest::collection::vec(any_matcher(), 0..4),
        proptest::collection::vec(any_line_filter(), 0..4),
    )
        .prop_map(|(name, value, rest, filters)| {
            // One matcher that rejects "", so the expression also passes validation.
            let mut matchers = vec![Matcher::new(name, MatchOp::Eq, value).unwrap()];
            matchers.extend(rest);
            LogExpr {
                selector: Selector::new(matchers),
                stages: filters.into_iter().map(Stage::LineFilter).collect(),
            }
        })
}

proptest! {
    #[test]
    fn print_then_parse_is_identity(log in any_log_expr()) {
        let expr = Expr::Log(log);
        let text = expr.to_string();
        let back = parse_expr(&text);
        prop_assert_eq!(back.as_ref(), Ok(&expr), "printed: {}", text);
        prop_assert!(parse_log_query(&text).is_ok());
    }

    #[test]
    fn parser_never_panics(input in "\\PC{0,40}") {
        let _ = parse_expr(&input);
    }

    #[test]
    fn parser_never_panics_on_near_misses(
        input in proptest::string::string_regex(r#"[{}()|=!~"` a-z,#\n\\]{0,30}"#).unwrap()
    ) {
        let _ = parse_expr(&input);
    }
}
