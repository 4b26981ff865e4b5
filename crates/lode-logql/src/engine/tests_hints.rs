//! Hinted parsers and lazy two-phase parsing against the plain pipeline: the same output on
//! tricky and random lines (errors, clashes, duplicate keys, escapes, nesting, arrays, numbers).

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::hints::{Needs, needs_after};
use super::*;
use crate::stages::{ExtractHint, LogfmtParser, Stage as _};

const STREAM: &str = r#"{app="web", level="stream", pod="p1"}"#;

/// Structured metadata on every line: `trace_id` clashes with a parsed key.
const METADATA: [(&str, &str); 2] = [("trace_id", "md"), ("tenant", "t1")];

const LOG_QUERIES: &[&str] = &[
    r#"{app="web"} | logfmt | level="error""#,
    r#"{app="web"} | logfmt | level_extracted="error""#,
    r#"{app="web"} | logfmt --strict | level_extracted=~"e.*" | __error__="""#,
    r#"{app="web"} | logfmt --keep-empty | user_id!="" | status >= 500"#,
    r#"{app="web"} | logfmt | app_extracted="web" | line_format "{{.level_extracted}}""#,
    r#"{app="web"} | logfmt | _9x="1" or a_b=~".+""#,
    r#"{app="web"} | json | status >= 500"#,
    r#"{app="web"} | json | user_id="u1" or level_extracted="error""#,
    r#"{app="web"} | json | __error__!="""#,
    r#"{app="web"} | json | duration > 1s"#,
    r#"{app="web"} | json | trace_id="x" | status < 300"#,
    r#"{app="web"} | json | user_id!="" | drop user_id"#,
];

const SAMPLE_QUERIES: &[&str] = &[
    r#"sum by (level_extracted) (count_over_time({app="web"} | logfmt [1m]))"#,
    r#"sum by (level) (count_over_time({app="web"} | logfmt [1m]))"#,
    r#"sum by (level_extracted, user_id) (count_over_time({app="web"} | json [1m]))"#,
    r#"sum by (__error__) (count_over_time({app="web"} | logfmt --strict [1m]))"#,
    r#"sum by (__error__, __error_details__) (count_over_time({app="web"} | json [1m]))"#,
    r#"sum (count_over_time({app="web"} | json [1m]))"#,
    r#"sum by (level_extracted) (sum_over_time({app="web"} | logfmt | unwrap status [1m]))"#,
    r#"sum by (status) (bytes_over_time({app="web"} | json | status >= 500 [1m]))"#,
    r#"sum by (lvl) (count_over_time({app="web"} | logfmt | label_format lvl=level_extracted [1m]))"#,
    r#"sum by (a_b) (rate({app="web"} | json | drop user_id [1m]))"#,
    r#"sum by (trace_id, id) (count_over_time({app="web"} | json | logfmt [1m]))"#,
    r#"sum without (level) (count_over_time({app="web"} | logfmt [1m]))"#,
    r#"sum by (status) (count_over_time({app="web"} | logfmt --keep-empty | keep status, level_extracted [1m]))"#,
    r#"count_over_time({app="web"} | json | status >= 500 [1m])"#,
];

/// Lines that have tripped parsers before, or could trip a hint.
const TRICKY: &[&str] = &[
    "level=error level=info",
    "level=info x=1 level=error",
    "level=error x=1 level=",
    r#"level=error msg="say \"level=info\"" status=503"#,
    r#"level=error b=x"y status=503"#,
    r#"a-b=1 9x=1 _=2 level.extracted=3 level_extracted=4"#,
    "user_id= status=abc level=error",
    "level=\u{FFFD} status=500",
    r#"{"level":"error","status":503,"user":{"id":"u1"},"user_id":"u2"}"#,
    r#"{"level":"error","status":503,"level":"info"}"#,
    r#"{"lev\u0065l":"error","status":200}"#,
    r#"{"level":"error","status":503,"x":{"a" 1}}"#,
    r#"{"x":{"a" 1},"level":"error","status":503}"#,
    r#"{"level":"error","arr":[1,{"status":1}],"status":"503"}"#,
    r#"{"level":"error","status":503,"__error__":"mine"}"#,
    r#"{"a":{"b":"c"},"a_b":"d","a-b":"e","trace_id":"x","duration":"2s"}"#,
    r#"{"level":"error","status":503"#,
    r#"{"level":"err\"or","status":5e2,"n":null,"t":true}"#,
    r#"["level","error"]"#,
    "",
    "plain text level error",
];

fn plain_log(query: &str) -> LogPlan {
    match crate::parse_expr(query).unwrap() {
        Expr::Log(e) => LogPlan::with_needs(&e, None).unwrap(),
        _ => panic!("not a log query: {query}"),
    }
}

fn run_logs(plan: &LogPlan, lines: &[String]) -> Vec<Stream> {
    let mut c = StreamCollector::new(plan, usize::MAX);
    {
        let mut scan = c.stream(&Labels::parse(STREAM).unwrap());
        for (i, l) in lines.iter().enumerate() {
            let _ = scan.push(i as i64, l, &mut METADATA.iter().copied());
        }
    }
    c.finish().0
}

fn run_samples(plan: &SamplePlan, lines: &[String]) -> Vec<lode_model::api::SampleSeries> {
    let mut c = SampleCollector::new(plan);
    {
        let mut scan = c.stream(&Labels::parse(STREAM).unwrap());
        for (i, l) in lines.iter().enumerate() {
            scan.push(i as i64, l, &mut METADATA.iter().copied());
        }
    }
    c.finish().0
}

fn check_all(lines: &[String]) -> std::result::Result<(), TestCaseError> {
    for q in LOG_QUERIES {
        let hinted = run_logs(&LogPlan::parse(q).unwrap(), lines);
        let plain = run_logs(&plain_log(q), lines);
        prop_assert_eq!(hinted, plain, "{} over {:?}", q, lines);
    }
    for q in SAMPLE_QUERIES {
        let hinted = run_samples(&SamplePlan::parse_with(q, true).unwrap(), lines);
        let plain = run_samples(&SamplePlan::parse_with(q, false).unwrap(), lines);
        prop_assert_eq!(hinted, plain, "{} over {:?}", q, lines);
    }
    Ok(())
}

#[test]
fn tricky_lines_match_the_plain_pipeline() {
    // Each line alone (an early stop must not leak into the next line) and all together.
    for l in TRICKY {
        check_all(&[l.to_string()]).unwrap();
    }
    check_all(&TRICKY.iter().map(|l| l.to_string()).collect::<Vec<_>>()).unwrap();
}

#[test]
fn needs_follow_the_stages() {
    let needs = |q: &str| {
        let Expr::Log(e) = crate::parse_expr(q).unwrap() else {
            panic!("not a log query")
        };
        let stages: Vec<&ast::Stage> = e.stages.iter().skip(1).collect();
        needs_after(&stages, &Needs::none())
    };
    let some = |names: &[&str], errors: bool| Needs::Some {
        names: names.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>(),
        errors,
    };
    assert_eq!(needs(r#"{a="b"} | logfmt | level="error""#), some(&["level"], false));
    assert_eq!(needs(r#"{a="b"} | json | status >= 500"#), some(&["status"], true));
    assert_eq!(needs(r#"{a="b"} | json | __error__="""#), some(&["__error__"], true));
    assert_eq!(
        needs(r#"{a="b"} | json | label_format x=y | drop z"#),
        some(&["x", "y", "z"], false)
    );
    assert_eq!(needs(r#"{a="b"} | json | line_format "{{.x}}""#), Needs::All);
    assert_eq!(needs(r#"{a="b"} | json | label_format x="{{.y}}""#), Needs::All);
}

#[test]
fn hinted_logfmt_sets_only_wanted_labels_and_stops_early() {
    let hint = ExtractHint::new(["level".to_string(), "app_extracted".to_string()], false).unwrap();
    let mut p = LogfmtParser::new(true, false, vec![]).with_hint(hint);
    let mut lbs = LabelsBuilder::new(vec![("app".into(), "s".into())]);
    let mut line = r#"app=web level=error x=1 bad"pair"#.to_string();
    assert!(p.process(0, &mut line, &mut lbs));
    // The bad pair after both labels is never reached: errors are not observed downstream.
    assert_eq!(
        lbs.labels(),
        vec![("app", "s"), ("app_extracted", "web"), ("level", "error")]
    );
    // A later duplicate is not skipped.
    lbs.reset();
    let mut line = "level=info app=web level=error".to_string();
    assert!(p.process(0, &mut line, &mut lbs));
    assert_eq!(lbs.get("level"), Some("error"));
}

/// One JSON value, nested up to a few levels, from a pool of awkward keys and values.
fn json_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_string()),
        Just("true".to_string()),
        "-?[0-9]{1,3}(\\.[0-9])?(e[0-9])?",
        prop::sample::select(vec![
            r#""error""#,
            r#""info""#,
            r#""503""#,
            r#""1.5s""#,
            r#""u1""#,
            r#""""#,
            r#""x\"y""#,
            r#""\u00e9\ud83d\ude00""#,
            r#""bad\q""#,
            r#""web""#,
            "\"\u{FFFD}\"",
        ])
        .prop_map(str::to_string),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec((json_key(), inner.clone()), 0..4).prop_map(|kvs| {
                let body: Vec<String> = kvs.into_iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                format!("{{{}}}", body.join(","))
            }),
            prop::collection::vec(inner, 0..3).prop_map(|vs| format!("[{}]", vs.join(","))),
        ]
    })
}

fn json_key() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "level",
        "status",
        "app",
        "user",
        "id",
        "user_id",
        "a",
        "a-b",
        "b",
        "__error__",
        "level_extracted",
        "9x",
        "lev\\u0065l",
        "trace_id",
        "_",
        "",
        "st us",
        "é",
        "duration",
    ])
}

fn logfmt_pair() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "level",
        "status",
        "app",
        "user_id",
        "a-b",
        "9x",
        "_",
        "level_extracted",
        "level.extracted",
        "trace_id",
        "id",
        "é",
        "duration",
    ]);
    let value = prop::sample::select(vec![
        "=error",
        "=info",
        "=503",
        "=200",
        "=abc",
        "=",
        "",
        "=\"quoted level=x\"",
        "=\"es\\\"c\"",
        "=\"bad\\q\"",
        "=a\"b",
        "=1.5s",
        "=\"\"",
        "=\"unterminated",
        "=\u{FFFD}",
    ]);
    prop_oneof![
        (key, value).prop_map(|(k, v)| format!("{k}{v}")),
        Just("=x".to_string()),
        Just("plain".to_string()),
    ]
}

fn line() -> impl Strategy<Value = String> {
    let json = prop::collection::vec((json_key(), json_value()), 0..6).prop_map(|kvs| {
        let body: Vec<String> = kvs.into_iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        format!("{{{}}}", body.join(","))
    });
    let logfmt = prop::collection::vec(logfmt_pair(), 0..8).prop_map(|ps| ps.join(" "));
    // Damage: cut the line short or drop in a structural byte.
    (
        prop_oneof![json, logfmt],
        0usize..4,
        any::<prop::sample::Index>(),
        prop::sample::select(vec!["{", "}", "[", "]", ":", ",", "\"", "\\", " ", "="]),
    )
        .prop_map(|(l, damage, at, byte)| {
            let mut cut = at.index(l.len() + 1);
            while !l.is_char_boundary(cut) {
                cut -= 1;
            }
            match damage {
                0 => l[..cut].to_string(),
                1 => format!("{}{byte}{}", &l[..cut], &l[cut..]),
                _ => l,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn hinted_and_lazy_match_the_plain_pipeline(lines in prop::collection::vec(line(), 1..12)) {
        check_all(&lines)?;
    }
}

#[test]
fn keep_empty_labels_survive_into_series() {
    let series = |q: &str, line: &str| -> Vec<String> {
        let plan = SamplePlan::parse(q).unwrap();
        let mut c = SampleCollector::new(&plan);
        c.stream(&Labels::parse(r#"{app="a"}"#).unwrap())
            .push(1, line, &mut std::iter::empty());
        c.finish().0.into_iter().map(|s| s.labels).collect()
    };
    let line = "WARN a= b=1";
    assert_eq!(
        series(r#"count_over_time({app="a"} | logfmt --keep-empty [1m])"#, line),
        vec![r#"{WARN="", a="", app="a", b="1"}"#]
    );
    assert_eq!(
        series(
            r#"sum by (WARN, b) (count_over_time({app="a"} | logfmt --keep-empty [1m]))"#,
            line
        ),
        vec![r#"{WARN="", b="1"}"#]
    );
    // The querier reads the key back with `parse_series`, which keeps them.
    assert_eq!(Labels::parse_series(r#"{WARN="", b="1"}"#).unwrap().len(), 2);
    // Without the flag, and for other parsers, empty values stay dropped.
    assert_eq!(
        series(r#"count_over_time({app="a"} | logfmt [1m])"#, line),
        vec![r#"{app="a", b="1"}"#]
    );
    assert_eq!(
        series(r#"count_over_time({app="a"} | json [1m])"#, r#"{"a":"","b":"1"}"#),
        vec![r#"{app="a", b="1"}"#]
    );
}
