use super::*;
use crate::stages::Unpack;
use proptest::prelude::*;

fn run(stage: &mut dyn Stage, stream: &[(&str, &str)], line: &str) -> (String, Vec<(String, String)>) {
    let mut lbs = LabelsBuilder::new(stream.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect());
    let mut l = line.to_string();
    assert!(stage.process(0, &mut l, &mut lbs));
    let labels = lbs
        .labels()
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    (l, labels)
}

fn s(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

fn all(stream: &[(&str, &str)], line: &str) -> Vec<(String, String)> {
    run(&mut JsonParser::new(vec![]).unwrap(), stream, line).1
}

#[test]
fn flattens_nested_and_skips_arrays_and_null() {
    assert_eq!(all(&[], r#"{"a":{"b":1}}"#), s(&[("a_b", "1")]));
    assert_eq!(
        all(
            &[],
            r#"{"n":14.0,"ok":true,"no":false,"arr":[1,{"x":2}],"z":null,"m":"hi"}"#
        ),
        s(&[("m", "hi"), ("n", "14.0"), ("no", "false"), ("ok", "true")])
    );
    assert_eq!(
        all(&[], r#"{"app":"foo","pod":{"uuid":"u","deployment":{"ref":"r"}}}"#),
        s(&[("app", "foo"), ("pod_deployment_ref", "r"), ("pod_uuid", "u")])
    );
}

#[test]
fn sanitizes_keys_and_unescapes() {
    assert_eq!(
        all(&[], r#"{"user-agent":"curl","9x":"a","esc":"a\"b\\c\u00e9","\"q":"1"}"#),
        s(&[("_9x", "a"), ("_q", "1"), ("esc", "a\"b\\cé"), ("user_agent", "curl")])
    );
}

#[test]
fn clash_with_stream_label() {
    assert_eq!(
        all(&[("app", "s")], r#"{"app":"web","x":{"app":"n"}}"#),
        s(&[("app", "s"), ("app_extracted", "web"), ("x_app", "n")])
    );
}

#[test]
fn invalid_json_keeps_earlier_fields() {
    let got = all(&[], r#"{"a":"1","b":2,"c":"#);
    assert_eq!(got[0], ("__error__".to_string(), JSON_PARSER_ERR.to_string()));
    assert_eq!(got[1].0, "__error_details__");
    assert_eq!(&got[2..], &s(&[("a", "1"), ("b", "2")])[..]);
    let got = all(&[], "plain text line");
    assert_eq!(got[0].1, JSON_PARSER_ERR);
    let got = all(&[], r#"{"a":[1,2"#);
    assert_eq!(got[0].1, JSON_PARSER_ERR);
}

#[test]
fn params_select_paths() {
    let mut p = JsonParser::new(vec![
        ("x".into(), "a.b".into()),
        ("first".into(), "arr[0]".into()),
        ("k".into(), r#"["k-1"]"#.into()),
        ("obj".into(), "a".into()),
        ("arr".into(), "arr".into()),
        ("missing".into(), "nope.no".into()),
        ("nul".into(), "z".into()),
    ])
    .unwrap();
    let (_, got) = run(
        &mut p,
        &[],
        r#"{"a":{"b":"v","c":[1, 2]},"arr":[{"y":1},2],"k-1":3,"z":null}"#,
    );
    assert_eq!(
        got,
        s(&[
            ("arr", r#"[{"y":1},2]"#),
            ("first", r#"{"y":1}"#),
            ("k", "3"),
            ("missing", ""),
            ("nul", ""),
            ("obj", r#"{"b":"v","c":[1, 2]}"#),
            ("x", "v"),
        ])
    );
}

#[test]
fn params_clash_and_errors() {
    let mut p = JsonParser::new(vec![("app".into(), "app".into())]).unwrap();
    assert_eq!(
        run(&mut p, &[("app", "s")], r#"{"app":"w"}"#).1,
        s(&[("app", "s"), ("app_extracted", "w")])
    );
    assert_eq!(run(&mut p, &[], "text").1[0].1, JSON_PARSER_ERR);
    assert!(JsonParser::new(vec![("a".into(), "a..b".into())]).is_err());
    assert!(JsonParser::new(vec![("a".into(), "a[x]".into())]).is_err());
    assert!(JsonParser::new(vec![("a".into(), "".into())]).is_err());
    assert_eq!(parse_path(r#"a.b[1]["c d"]"#).unwrap().len(), 4);
}

#[test]
fn unpack_replaces_line() {
    let mut u = Unpack::new();
    let (line, got) = run(
        &mut u,
        &[("app", "s")],
        r#"{"_entry":"original \"line\"","app":"w","n":1,"pod":"p"}"#,
    );
    assert_eq!(line, "original \"line\"");
    assert_eq!(got, s(&[("app", "s"), ("app_extracted", "w"), ("pod", "p")]));
    // Without _entry nothing changes (as in Loki).
    let (line, got) = run(&mut u, &[], r#"{"a":"b"}"#);
    assert_eq!((line.as_str(), got), (r#"{"a":"b"}"#, s(&[])));
    assert_eq!(run(&mut u, &[], "nope").1[0].1, JSON_PARSER_ERR);
}

proptest! {
    #[test]
    fn never_panics(line in "[{}\\[\\]\":,a-z0-9 \\\\u.-]{0,60}") {
        let mut lbs = LabelsBuilder::new(vec![]);
        let mut l = line.clone();
        JsonParser::new(vec![]).unwrap().process(0, &mut l, &mut lbs);
        lbs.reset();
        JsonParser::new(vec![("x".into(), "a[0].b".into())]).unwrap().process(0, &mut l, &mut lbs);
        lbs.reset();
        Unpack::new().process(0, &mut l, &mut lbs);
    }

    #[test]
    fn never_panics_unicode(line in "\\PC{0,40}") {
        let mut lbs = LabelsBuilder::new(vec![]);
        let mut l = format!("{{\"k\":\"{line}\",\"{line}\":1}}");
        JsonParser::new(vec![]).unwrap().process(0, &mut l, &mut lbs);
    }
}
