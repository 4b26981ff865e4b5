//! The `|` stages other than line filters, one function per grammar rule:
//!
//! ```text
//! pipe_stage   := "|" ( json | logfmt | regexp | pattern | "unpack" | line_format
//!                     | label_format | drop | keep | "decolorize" | label_filter )
//! json         := "json" [ extract ("," extract)* ]          (paths checked)
//! logfmt       := "logfmt" ("--strict" | "--keep-empty")* [ extract ("," extract)* ]
//! extract      := IDENTIFIER [ "=" STRING ]
//! regexp       := "regexp" STRING                             (≥1 named group)
//! pattern      := "pattern" STRING                            (≥1 named capture)
//! line_format  := "line_format" STRING                        (a Go template)
//! label_format := "label_format" label_fmt ("," label_fmt)*
//! label_fmt    := IDENTIFIER "=" ( IDENTIFIER | STRING )
//! drop | keep  := ("drop" | "keep") selection ("," selection)*
//! selection    := IDENTIFIER [ match_op STRING ]
//! unwrap       := "|" "unwrap" ( IDENTIFIER | conv "(" IDENTIFIER ")" ) ("|" label_filter)*
//! ```

use std::collections::HashSet;

use lode_model::labels::is_valid_label_name;
use nom::Err;
use nom::Parser;
use nom::combinator::cut;

use super::label_filter::label_filter;
use super::lexer::{PErr, PResult, describe_token, identifier, keyword, string_lit, sym, ws};
use super::rules::match_op;
use super::template::check_template;
use crate::ast::{
    ExtractParam, LabelFmt, LabelFmtSource, LabelSelection, ParserStage, Stage, Unwrap, UnwrapConversion,
};
use crate::matcher::Matcher;
use crate::pattern::capture;
use crate::regex_compat;

/// Names that start a stage rather than a label filter after `|`.
const STAGE_KEYWORDS: &[&str] = &[
    "json",
    "logfmt",
    "regexp",
    "pattern",
    "unpack",
    "line_format",
    "label_format",
    "drop",
    "keep",
    "decolorize",
    "unwrap",
];

/// After `|` and whitespace: the stage keyword there, if any.
fn stage_keyword(i: &str) -> Option<&'static str> {
    let (_, word) = identifier(i).ok()?;
    STAGE_KEYWORDS.iter().copied().find(|k| *k == word)
}

/// `pipe_stage`: a `|` stage. `| unwrap` is left to the log-range rule (a recoverable error).
pub(crate) fn pipe_stage(i: &str) -> PResult<'_, Stage> {
    let (i, ()) = ws(i)?;
    let Some(rest) = i.strip_prefix('|') else {
        return Err(Err::Error(PErr::expected(i, "|")));
    };
    let (rest, ()) = ws(rest)?;
    let Some(word) = stage_keyword(rest) else {
        if rest.starts_with('(') || identifier(rest).is_ok() {
            return cut(label_filter).map(Stage::LabelFilter).parse(rest);
        }
        return Err(Err::Failure(PErr::expected(rest, "IDENTIFIER")));
    };
    let (after, _) = identifier(rest)?;
    match word {
        "json" => json(after),
        "logfmt" => logfmt(after),
        "regexp" => regexp(after),
        "pattern" => pattern(after),
        "unpack" => Ok((after, Stage::Parser(ParserStage::Unpack))),
        "decolorize" => Ok((after, Stage::Decolorize)),
        "line_format" => line_format(after),
        "label_format" => label_format(after),
        "drop" => cut(selections).map(Stage::Drop).parse(after),
        "keep" => cut(selections).map(Stage::Keep).parse(after),
        _ => Err(Err::Error(PErr::expected(i, "|"))), // unwrap
    }
}

/// Whether an extraction list follows a parser keyword.
fn starts_params(i: &str) -> bool {
    let Ok((t, ())) = ws(i) else { return false };
    matches!(identifier(t), Ok((_, w)) if !matches!(w, "or" | "and" | "offset" | "unless" | "by" | "without"))
}

/// `extract ("," extract)*`; `check` validates each path.
fn extract_list(i: &str, check: fn(&str) -> Result<(), String>) -> PResult<'_, Vec<ExtractParam>> {
    let mut out = Vec::new();
    let mut i = i;
    loop {
        let (rest, label) = cut(identifier).parse(i)?;
        let (rest, path) = match sym("=")(rest) {
            Ok((rest, _)) => {
                let (rest, ()) = ws(rest)?;
                let at = rest;
                let (rest, path) = cut(string_lit).parse(rest)?;
                check(&path).map_err(|msg| Err::Failure(PErr::message(at, msg)))?;
                (rest, Some(path))
            }
            Err(_) => (rest, None),
        };
        out.push(ExtractParam {
            label: label.to_string(),
            path,
        });
        match sym(",")(rest) {
            Ok((rest, _)) => i = rest,
            Err(_) => return Ok((rest, out)),
        }
    }
}

/// `json`: all fields, or the listed paths.
fn json(i: &str) -> PResult<'_, Stage> {
    let (i, params) = if starts_params(i) {
        extract_list(i, check_json_path)?
    } else {
        (i, Vec::new())
    };
    Ok((i, Stage::Parser(ParserStage::Json(params))))
}

/// A JSON path of Loki's `jsonexpr` grammar: `a.b[0]["k-1"]`.
pub(crate) fn check_json_path(path: &str) -> Result<(), String> {
    let bad = || Err(format!("invalid json path: {path:?}"));
    let field = |s: &str| s.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(s.len());
    let mut s = path;
    let mut first = true;
    while !s.is_empty() || first {
        if let Some(rest) = s.strip_prefix('[') {
            let Some(end) = rest.find(']') else { return bad() };
            let inner = &rest[..end];
            let ok = if inner.starts_with('"') {
                matches!(lode_model::labels::unquote_prefix(inner), Ok((_, used)) if used == inner.len())
            } else {
                !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_digit())
            };
            if !ok {
                return bad();
            }
            s = &rest[end + 1..];
        } else {
            let rest = if first {
                s
            } else {
                s.strip_prefix('.').unwrap_or("\u{0}")
            };
            let n = field(rest);
            if n == 0 {
                return bad();
            }
            s = &rest[n..];
        }
        first = false;
    }
    Ok(())
}

/// `logfmt`: flags, then optional keys.
fn logfmt(i: &str) -> PResult<'_, Stage> {
    let (mut i, mut strict, mut keep_empty) = (i, false, false);
    loop {
        let (t, ()) = ws(i)?;
        if let Some(rest) = t.strip_prefix("--strict") {
            (i, strict) = (rest, true);
        } else if let Some(rest) = t.strip_prefix("--keep-empty") {
            (i, keep_empty) = (rest, true);
        } else if t.starts_with("--") {
            let flag = t.split(|c: char| c.is_whitespace()).next().unwrap_or(t);
            return Err(Err::Failure(PErr::message(t, format!("invalid logfmt flag: {flag}"))));
        } else {
            break;
        }
    }
    let (i, params) = if starts_params(i) {
        extract_list(i, |_| Ok(()))?
    } else {
        (i, Vec::new())
    };
    Ok((
        i,
        Stage::Parser(ParserStage::Logfmt {
            strict,
            keep_empty,
            params,
        }),
    ))
}

/// A STRING argument and its position, for errors about its content.
fn string_arg(i: &str) -> PResult<'_, (&str, String)> {
    let (i, ()) = ws(i)?;
    let at = i;
    let (i, s) = cut(string_lit).parse(i)?;
    Ok((i, (at, s)))
}

/// `regexp "re"`: the regex must compile and name at least one group (valid, distinct label
/// names). Loki checks this while building the AST, so the error has no position:
/// `parse error : invalid regexp parser: <why>`.
fn regexp(i: &str) -> PResult<'_, Stage> {
    let (i, (at, re)) = string_arg(i)?;
    check_regexp(&re).map_err(|msg| Err::Failure(PErr::unpositioned(at, format!("invalid regexp parser: {msg}"))))?;
    Ok((i, Stage::Parser(ParserStage::Regexp(re))))
}

/// Validates a regexp-parser expression with the wording of Loki's `log.NewRegexpParser`.
pub(crate) fn check_regexp(re: &str) -> Result<(), String> {
    let compiled = match regex_compat::compile(re) {
        Ok(c) => c,
        // Go's regexp accepts repeated group names, so Loki reaches its own label check.
        Err(_) if duplicate_group_name(re).is_some() => {
            let n = duplicate_group_name(re).unwrap_or_default();
            return Err(format!("duplicate extracted label name '{n}'"));
        }
        Err(msg) => return Err(go_regex_wording(&msg)),
    };
    let mut names: Vec<&str> = Vec::new();
    for n in compiled.capture_names().flatten() {
        if !is_valid_label_name(n) {
            return Err(format!("invalid extracted label name '{n}'"));
        }
        if names.contains(&n) {
            return Err(format!("duplicate extracted label name '{n}'"));
        }
        names.push(n);
    }
    if names.is_empty() {
        return Err("at least one named capture must be supplied".to_string());
    }
    Ok(())
}

/// The first group name that `re` declares twice (`(?P<n>` or `(?<n>`), if any.
fn duplicate_group_name(re: &str) -> Option<&str> {
    let mut seen: Vec<&str> = Vec::new();
    let mut rest = re;
    while let Some(pos) = rest.find("(?") {
        let after = &rest[pos + 2..];
        let body = after.strip_prefix("P<").or_else(|| after.strip_prefix('<'));
        rest = after;
        let Some(body) = body else { continue };
        let Some(end) = body.find('>') else { continue };
        let name = &body[..end];
        if seen.contains(&name) {
            return Some(name);
        }
        seen.push(name);
    }
    None
}

/// Rewords the syntax errors users hit most with Go's `regexp/syntax` phrases, which is what
/// Loki prints (`error parsing regexp: missing closing ): ...`).
// TODO: belongs in `regex_compat::describe`, which every regex in the language goes through.
fn go_regex_wording(msg: &str) -> String {
    const PHRASES: [(&str, &str); 4] = [
        ("unclosed group", "missing closing )"),
        ("unclosed character class", "missing closing ]"),
        ("unopened group", "unexpected )"),
        (
            "repetition operator missing expression",
            "missing argument to repetition operator",
        ),
    ];
    for (rust, go) in PHRASES {
        if let Some(rest) = msg.strip_prefix(&format!("error parsing regexp: {rust}:")) {
            return format!("error parsing regexp: {go}:{rest}");
        }
    }
    msg.to_string()
}

/// `pattern "<a> <_>"`: at least one named capture, none adjacent, names distinct. Checked while
/// Loki builds the AST: `parse error : invalid pattern parser: <why>`.
fn pattern(i: &str) -> PResult<'_, Stage> {
    let (i, (at, p)) = string_arg(i)?;
    check_pattern(&p).map_err(|msg| Err::Failure(PErr::unpositioned(at, format!("invalid pattern parser: {msg}"))))?;
    Ok((i, Stage::Parser(ParserStage::Pattern(p))))
}

/// Validates a pattern-parser expression with Loki's messages, in Loki's order: a named
/// capture first, then adjacent captures, then repeated names.
pub(crate) fn check_pattern(p: &str) -> Result<(), String> {
    let mut captures: Vec<(&str, bool)> = Vec::new(); // (name, follows another capture)
    let mut prev_capture = false;
    let mut rest = p;
    while !rest.is_empty() {
        if let Some((name, used)) = capture(rest) {
            captures.push((name, prev_capture));
            prev_capture = true;
            rest = &rest[used..];
        } else {
            prev_capture = false;
            let c = rest.chars().next().map_or(1, char::len_utf8);
            rest = &rest[c..];
        }
    }
    if captures.iter().all(|(n, _)| *n == "_") {
        return Err("at least one capture is required".to_string());
    }
    if let Some(k) = captures.iter().position(|(_, adjacent)| *adjacent) {
        let (prev, name) = (captures[k - 1].0, captures[k].0);
        return Err(format!(
            "found consecutive capture '<{prev}><{name}>': invalid expression"
        ));
    }
    let mut names: Vec<&str> = Vec::new();
    for (name, _) in captures.into_iter().filter(|(n, _)| *n != "_") {
        if names.contains(&name) {
            return Err(format!("duplicate capture name ({name}): invalid expression"));
        }
        names.push(name);
    }
    Ok(())
}

/// `line_format "template"`.
fn line_format(i: &str) -> PResult<'_, Stage> {
    let (i, (at, t)) = string_arg(i)?;
    check_template(&t).map_err(|e| Err::Failure(PErr::message(at, format!("invalid line template: {e}"))))?;
    Ok((i, Stage::LineFormat(t)))
}

/// `label_format dst=src, dst="{{..}}"`: each destination once, templates checked.
fn label_format(i: &str) -> PResult<'_, Stage> {
    let mut fmts: Vec<LabelFmt> = Vec::new();
    let mut seen = HashSet::new();
    let mut i = i;
    loop {
        let (rest, ()) = ws(i)?;
        let dst_at = rest;
        let (rest, dst) = cut(identifier).parse(rest)?;
        let (rest, _) = cut(sym("=")).parse(rest)?;
        let (rest, ()) = ws(rest)?;
        let src_at = rest;
        let (rest, src) = if rest.starts_with(['"', '`']) {
            let (rest, t) = string_lit(rest)?;
            check_template(&t).map_err(|e| {
                Err::Failure(PErr::message(
                    src_at,
                    format!("invalid template for label '{dst}': {e}"),
                ))
            })?;
            (rest, LabelFmtSource::Template(t))
        } else {
            let (rest, src) = cut(identifier).parse(rest).map_err(|e| match e {
                Err::Failure(_) => Err::Failure(PErr {
                    at: src_at,
                    kind: super::lexer::PErrKind::Expected(vec!["IDENTIFIER", "STRING"]),
                }),
                other => other,
            })?;
            (rest, LabelFmtSource::Rename(src.to_string()))
        };
        if dst == "__error__" {
            return Err(Err::Failure(PErr::message(dst_at, "__error__ cannot be formatted")));
        }
        if !seen.insert(dst) {
            return Err(Err::Failure(PErr::message(
                dst_at,
                format!("multiple label name '{dst}' not allowed in a single format operation"),
            )));
        }
        fmts.push(LabelFmt {
            dst: dst.to_string(),
            src,
        });
        match sym(",")(rest) {
            Ok((rest, _)) => i = rest,
            Err(_) => return Ok((rest, Stage::LabelFormat(fmts))),
        }
    }
}

/// `selection ("," selection)*` for `drop`/`keep`: at least one.
fn selections(i: &str) -> PResult<'_, Vec<LabelSelection>> {
    let mut out = Vec::new();
    let mut i = i;
    loop {
        let (rest, name) = identifier(i)?;
        let (rest, sel) = match match_op(rest) {
            Ok((rest, op)) => {
                let (rest, ()) = ws(rest)?;
                let at = rest;
                let (rest, value) = cut(string_lit).parse(rest)?;
                let m = Matcher::new(name, op, value).map_err(|msg| Err::Failure(PErr::message(at, msg)))?;
                (rest, LabelSelection::Matcher(m))
            }
            Err(_) => (rest, LabelSelection::Name(name.to_string())),
        };
        out.push(sel);
        match sym(",")(rest) {
            Ok((rest, _)) => i = cut(|i| ws(i)).parse(rest)?.0,
            Err(_) => return Ok((rest, out)),
        }
    }
}

/// `unwrap`: `| unwrap x`, `| unwrap duration(x)`..., then only label filters.
pub(crate) fn unwrap(i: &str) -> PResult<'_, Unwrap> {
    let (i, _) = sym("|")(i)?;
    let (i, _) = keyword("unwrap")(i)?;
    let (i, name) = cut(identifier).parse(i)?;
    let conv = match name {
        "duration" => Some(UnwrapConversion::Duration),
        "duration_seconds" => Some(UnwrapConversion::DurationSeconds),
        "bytes" => Some(UnwrapConversion::Bytes),
        _ => None,
    };
    let (mut i, conversion, label) = match (conv, sym("(")(i)) {
        (Some(conv), Ok((rest, _))) => {
            let (rest, label) = cut(identifier).parse(rest)?;
            let (rest, _) = cut(sym(")")).parse(rest)?;
            (rest, conv, label)
        }
        _ => (i, UnwrapConversion::None, name),
    };
    let mut post_filters = Vec::new();
    loop {
        let (t, ()) = ws(i)?;
        let Some(rest) = t.strip_prefix('|') else { break };
        if ["=", "~", ">"].iter().any(|op| rest.starts_with(op)) {
            return Err(Err::Failure(PErr::message(
                t,
                "syntax error: only label filters may follow unwrap",
            )));
        }
        let (rest, ()) = ws(rest)?;
        if stage_keyword(rest).is_some() {
            return Err(Err::Failure(PErr::message(
                rest,
                // yacc's wording: after `unwrap x |` only a label filter may start.
                format!(
                    "syntax error: unexpected {}, expecting IDENTIFIER or (",
                    describe_token(rest)
                ),
            )));
        }
        let (rest, f) = cut(label_filter).parse(rest)?;
        post_filters.push(f);
        i = rest;
    }
    if t_starts_negative_filter(i) {
        return Err(Err::Failure(PErr::message(
            ws(i)?.0,
            "syntax error: only label filters may follow unwrap",
        )));
    }
    Ok((
        i,
        Unwrap {
            conversion,
            label: label.to_string(),
            post_filters,
        },
    ))
}

/// `!=`, `!~`, `!>` line filters after unwrap.
fn t_starts_negative_filter(i: &str) -> bool {
    ws(i).is_ok_and(|(t, ())| ["!=", "!~", "!>"].iter().any(|op| t.starts_with(op)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_paths() {
        for ok in [
            "a",
            "a.b",
            "a[0]",
            "a.b[12].c",
            r#"["k-1"]"#,
            r#"a["b.c"][0]"#,
            "_x9",
            "0",
        ] {
            assert_eq!(check_json_path(ok), Ok(()), "{ok}");
        }
        for bad in [
            "", "a..b", "a.", ".a", "a[", "a[x]", "a[]", "a b", "k-1", r#"["k"#, "a]",
        ] {
            assert!(check_json_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn patterns() {
        assert_eq!(check_pattern("<a> <_> <b>"), Ok(()));
        assert_eq!(check_pattern("<_> x"), Err("at least one capture is required".into()));
        assert_eq!(check_pattern("plain"), Err("at least one capture is required".into()));
        assert_eq!(
            check_pattern("<a><_>"),
            Err("found consecutive capture '<a><_>': invalid expression".into())
        );
        assert_eq!(
            check_pattern("<a> <a>"),
            Err("duplicate capture name (a): invalid expression".into())
        );
        // Loki's order: no named capture, then adjacency, then repeats.
        assert_eq!(check_pattern("<_><_>"), Err("at least one capture is required".into()));
        assert_eq!(
            check_pattern("<a><a>"),
            Err("found consecutive capture '<a><a>': invalid expression".into())
        );
    }

    #[test]
    fn regexps() {
        assert_eq!(check_regexp("(?P<a>x) (?P<b>y)"), Ok(()));
        let err = |re: &str| check_regexp(re).unwrap_err();
        assert_eq!(err("(x)"), "at least one named capture must be supplied");
        assert_eq!(err("(?P<a>x)(?P<a>y)"), "duplicate extracted label name 'a'");
        assert_eq!(err("(?P<a>x)(?<b>y)(?P<b>z)"), "duplicate extracted label name 'b'");
        assert_eq!(err("(?P<a>x"), "error parsing regexp: missing closing ): `(?P<a>x`");
    }
}
