use super::*;

fn run(stage: &mut dyn Stage, parsed: &[(&str, &str)], line: &str) -> (String, Vec<(String, String)>) {
    let mut lbs = LabelsBuilder::new(vec![("app".into(), "api".into())]);
    for (n, v) in parsed {
        lbs.set_parsed(n, v);
    }
    let mut l = line.to_string();
    assert!(stage.process(1_700_000_000_000_000_000, &mut l, &mut lbs));
    let labels = lbs
        .labels()
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    (l, labels)
}

fn line(tmpl: &str, parsed: &[(&str, &str)]) -> String {
    run(&mut LineFormat::new(tmpl).unwrap(), parsed, "orig line").0
}

#[test]
fn line_format_basics() {
    assert_eq!(line("{{.app}} {{.level}}", &[("level", "info")]), "api info");
    assert_eq!(line("[{{.missing}}]", &[]), "[]");
    assert_eq!(
        line(r#"{{if eq .level "error"}}E{{else}}-{{end}}"#, &[("level", "error")]),
        "E"
    );
    assert_eq!(line(r#"{{.level | printf "%-5s"}}|"#, &[("level", "info")]), "info |");
    assert_eq!(line("{{__line__}}!", &[]), "orig line!");
    assert_eq!(line("{{ __timestamp__ | unixEpoch }}", &[]), "1700000000");
    assert_eq!(line("{{ __timestamp__ }}", &[]), "2023-11-14 22:13:20 +0000 UTC");
}

#[test]
fn line_format_dot_and_range() {
    assert_eq!(
        line("{{ range $k, $v := . }}{{$k}}={{$v}};{{ end }}", &[("b", "2")]),
        "app=api;b=2;"
    );
    assert_eq!(line("{{ with .b }}[{{ . }}]{{ end }}", &[("b", "2")]), "[2]");
    assert_eq!(line("{{ $.app }}", &[]), "api");
}

#[test]
fn line_format_functions() {
    let p = &[("msg", "Hello World"), ("n", "7"), ("f", "2.5")];
    assert_eq!(
        line("{{.msg | upper}} {{.msg | lower}} {{ title \"a b\" }}", p),
        "HELLO WORLD hello world A B"
    );
    assert_eq!(
        line(
            "{{.msg | trunc 5}}|{{ substr 0 4 .msg }}|{{ .msg | replace \"o\" \"0\" }}",
            p
        ),
        "Hello|Hell|Hell0 W0rld"
    );
    assert_eq!(
        line("{{ .msg | trimPrefix \"Hello \" }} {{ default \"d\" .missing }}", p),
        "World d"
    );
    assert_eq!(
        line(
            "{{ contains \"World\" .msg }} {{ hasPrefix \"He\" .msg }} {{ len .msg }}",
            p
        ),
        "true true 11"
    );
    assert_eq!(
        line(r#"{{ regexReplaceAll "(\\w+) (\\w+)" .msg "${2}-${1}" }}"#, p),
        "World-Hello"
    );
    assert_eq!(
        line(
            "{{ add .n 3 }} {{ sub .n 2 }} {{ mul .n 2 }} {{ div .n 2 }} {{ mod .n 4 }}",
            p
        ),
        "10 5 14 3 3"
    );
    assert_eq!(
        line("{{ float64 .f }} {{ floor .f }} {{ ceil .f }} {{ round .f 0 }}", p),
        "2.5 2 3 3"
    );
    assert_eq!(
        line("{{ .msg | b64enc }} {{ urlencode \"a b/c\" }}", p),
        "SGVsbG8gV29ybGQ= a+b%2Fc"
    );
}

#[test]
fn line_format_errors() {
    assert!(LineFormat::new("{{ nosuchfunc .a }}").is_err());
    assert!(LineFormat::new("{{ .a ").is_err());
    let (l, labels) = run(&mut LineFormat::new("{{ div 1 0 }}").unwrap(), &[], "keep");
    assert_eq!(l, "keep");
    assert_eq!(labels[0], ("__error__".to_string(), TEMPLATE_FORMAT_ERR.to_string()));
}

#[test]
fn label_format_rename_and_template() {
    let mut f = LabelFormat::new(vec![
        ("both".into(), LabelFormatOp::Template("{{.app}}-{{.level}}".into())),
        ("lvl".into(), LabelFormatOp::Rename("level".into())),
        ("service".into(), LabelFormatOp::Rename("app".into())),
    ])
    .unwrap();
    let (_, labels) = run(&mut f, &[("level", "warn")], "x");
    let want: Vec<(String, String)> = [("both", "api-warn"), ("lvl", "warn"), ("service", "api")]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(labels, want, "rename drops the source");
}

#[test]
fn label_format_overwrites_stream_label_and_refuses_duplicates() {
    let mut f = LabelFormat::new(vec![("app".into(), LabelFormatOp::Template("{{.app | upper}}".into()))]).unwrap();
    let (_, labels) = run(&mut f, &[], "x");
    assert_eq!(labels, vec![("app".to_string(), "API".to_string())]);
    assert!(
        LabelFormat::new(vec![
            ("a".into(), LabelFormatOp::Rename("b".into())),
            ("a".into(), LabelFormatOp::Rename("c".into())),
        ])
        .is_err()
    );
}

#[test]
fn clones_are_independent() {
    let f = LineFormat::new("{{__line__}}").unwrap();
    let mut c = f.box_clone();
    let mut lbs = LabelsBuilder::new(vec![]);
    let mut l = "abc".to_string();
    assert!(c.process(0, &mut l, &mut lbs));
    assert_eq!(l, "abc");
}
