//! Stage chaining and the small label stages (`drop`, `keep`, `decolorize`).

use super::*;
use crate::matcher::MatchOp;

fn builder() -> LabelsBuilder {
    LabelsBuilder::new(vec![("app".into(), "api".into()), ("env".into(), "prod".into())])
}

fn labels(lbs: &LabelsBuilder) -> Vec<(String, String)> {
    lbs.labels()
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn s(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

#[test]
fn json_then_numeric_filter() {
    let mut p = StagePipeline::new(vec![
        Box::new(JsonParser::new(vec![]).unwrap()),
        Box::new(LabelFilter::numeric("status", CmpOp::Ge, 500.0)),
    ]);
    let mut lbs = builder();
    let mut line = r#"{"status":503,"msg":"x"}"#.to_string();
    assert!(p.process(0, &mut line, &mut lbs));
    lbs.reset();
    let mut line = r#"{"status":200}"#.to_string();
    assert!(!p.process(0, &mut line, &mut lbs));
    lbs.reset();
    let mut line = r#"{"msg":"no status"}"#.to_string();
    assert!(!p.process(0, &mut line, &mut lbs), "missing label drops");
}

#[test]
fn error_filter_drops_failed_lines() {
    let mut p = StagePipeline::new(vec![
        Box::new(JsonParser::new(vec![]).unwrap()),
        Box::new(LabelFilter::matcher(
            Matcher::new("__error__", MatchOp::Eq, "").unwrap(),
        )),
    ]);
    let mut lbs = builder();
    let mut bad = "not json".to_string();
    assert!(!p.process(0, &mut bad, &mut lbs));
    lbs.reset();
    let mut good = r#"{"a":1}"#.to_string();
    assert!(p.clone().process(0, &mut good, &mut lbs));
}

#[test]
fn logfmt_line_format_chain() {
    let mut p = StagePipeline::new(vec![
        Box::new(LogfmtParser::new(false, false, vec![])),
        Box::new(LabelFilter::matcher(
            Matcher::new("level", MatchOp::Eq, "error").unwrap(),
        )),
        Box::new(LineFormat::new("{{.level}}: {{.msg}}").unwrap()),
    ]);
    let mut lbs = builder();
    let mut line = r#"level=error msg="disk full""#.to_string();
    assert!(p.process(0, &mut line, &mut lbs));
    assert_eq!(line, "error: disk full");
}

#[test]
fn drop_labels() {
    let mut lbs = builder();
    lbs.set_parsed("level", "info");
    lbs.set_parsed("x", "1");
    lbs.set_err("JSONParserErr");
    let mut d = Drop::new(vec![
        ("x".into(), None),
        ("__error__".into(), None),
        (
            "level".into(),
            Some(Matcher::new("level", MatchOp::Eq, "debug").unwrap()),
        ),
        ("env".into(), Some(Matcher::new("env", MatchOp::Re, "pr.*").unwrap())),
    ]);
    assert!(d.process(0, &mut String::new(), &mut lbs));
    assert_eq!(labels(&lbs), s(&[("app", "api"), ("level", "info")]));
}

#[test]
fn keep_labels() {
    let mut lbs = builder();
    lbs.set_parsed("level", "info");
    lbs.set_parsed("x", "1");
    lbs.set_err("E");
    let mut k = Keep::new(vec![
        ("level".into(), None),
        ("env".into(), Some(Matcher::new("env", MatchOp::Eq, "dev").unwrap())),
    ]);
    assert!(k.process(0, &mut String::new(), &mut lbs));
    assert_eq!(labels(&lbs), s(&[("__error__", "E"), ("level", "info")]));
}

#[test]
fn decolorize() {
    let mut d = Decolorize::new();
    let mut lbs = builder();
    let mut line = "\u{1b}[31mERROR\u{1b}[0m msg \u{1b}]0;title\u{7}done \u{1b}[1;32m".to_string();
    assert!(d.process(0, &mut line, &mut lbs));
    assert_eq!(line, "ERROR msg done ");
    let mut plain = "no colours".to_string();
    assert!(d.process(0, &mut plain, &mut lbs));
    assert_eq!(plain, "no colours");
}

#[test]
fn sanitize() {
    let mut out = String::new();
    push_sanitized(&mut out, "user-agent");
    assert_eq!(out, "user_agent");
    out.clear();
    push_sanitized(&mut out, " 9é x ");
    assert_eq!(out, "_9__x");
}
