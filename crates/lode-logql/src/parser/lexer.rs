//! Tokens of LogQL as nom parsers: whitespace and `#` comments, symbols, identifiers, keywords
//! and Go string literals, plus the error type every grammar rule returns. Errors carry the input
//! remaining where they happened (the offset into the query) and what was expected there, so
//! the final message can name the offending token like Loki's yacc parser does.

use lode_model::labels::unquote_prefix;
use nom::error::{ErrorKind, ParseError};
use nom::{Err, IResult};

pub(crate) type PResult<'a, O> = IResult<&'a str, O, PErr<'a>>;

/// A parse failure: where (the remaining input) and why.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PErr<'a> {
    pub at: &'a str,
    pub kind: PErrKind,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PErrKind {
    /// `syntax error: unexpected <token>, expecting <a> or <b>`.
    Expected(Vec<&'static str>),
    /// A complete message (bad escape, bad regex...).
    Message(String),
    /// A complete message Loki reports without a position (`parse error : <msg>`): what its
    /// AST constructors and post-parse validation refuse, as opposed to its lexer and grammar.
    Unpositioned(String),
    /// A nom combinator failed without saying what it wanted.
    Nom,
}

impl<'a> PErr<'a> {
    pub fn expected(at: &'a str, what: &'static str) -> Self {
        PErr {
            at,
            kind: PErrKind::Expected(vec![what]),
        }
    }

    pub fn message(at: &'a str, msg: impl Into<String>) -> Self {
        PErr {
            at,
            kind: PErrKind::Message(msg.into()),
        }
    }

    /// An error Loki words as `parse error : <msg>`; `at` only orders it against other errors.
    pub fn unpositioned(at: &'a str, msg: impl Into<String>) -> Self {
        PErr {
            at,
            kind: PErrKind::Unpositioned(msg.into()),
        }
    }
}

impl<'a> ParseError<&'a str> for PErr<'a> {
    fn from_error_kind(input: &'a str, _kind: ErrorKind) -> Self {
        PErr {
            at: input,
            kind: PErrKind::Nom,
        }
    }

    fn append(_input: &'a str, _kind: ErrorKind, other: Self) -> Self {
        other
    }

    /// Keeps the error that got further; at the same place, merges what was expected.
    fn or(self, other: Self) -> Self {
        use std::cmp::Ordering::*;
        match self.at.len().cmp(&other.at.len()) {
            Less => self,
            Greater => other,
            Equal => match (self.kind, other.kind) {
                (PErrKind::Expected(mut a), PErrKind::Expected(b)) => {
                    for w in b {
                        if !a.contains(&w) {
                            a.push(w);
                        }
                    }
                    PErr {
                        at: other.at,
                        kind: PErrKind::Expected(a),
                    }
                }
                (PErrKind::Nom, kind) | (kind, _) => PErr { at: other.at, kind },
            },
        }
    }
}

/// Skips whitespace and `#` comments (to the end of the line). Never fails.
pub(crate) fn ws(mut i: &str) -> PResult<'_, ()> {
    loop {
        let t = i.trim_start();
        match t.strip_prefix('#') {
            Some(c) => i = c.find('\n').map_or("", |n| &c[n..]),
            None => return Ok((t, ())),
        }
    }
}

/// The symbol `s` after optional whitespace.
pub(crate) fn sym(s: &'static str) -> impl Fn(&str) -> PResult<'_, &str> {
    move |i| {
        let (i, ()) = ws(i)?;
        match i.strip_prefix(s) {
            Some(rest) => Ok((rest, &i[..s.len()])),
            None => Err(Err::Error(PErr::expected(i, s))),
        }
    }
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// `[a-zA-Z_][a-zA-Z0-9_]*` after optional whitespace.
pub(crate) fn identifier(i: &str) -> PResult<'_, &str> {
    let (i, ()) = ws(i)?;
    if !i.starts_with(is_ident_start) {
        return Err(Err::Error(PErr::expected(i, "IDENTIFIER")));
    }
    let end = i.find(|c| !is_ident_char(c)).unwrap_or(i.len());
    Ok((&i[end..], &i[..end]))
}

/// The keyword `k` as a whole word after optional whitespace.
pub(crate) fn keyword(k: &'static str) -> impl Fn(&str) -> PResult<'_, &str> {
    move |i| {
        let (i, ()) = ws(i)?;
        match identifier(i) {
            Ok((rest, word)) if word == k => Ok((rest, word)),
            _ => Err(Err::Error(PErr::expected(i, k))),
        }
    }
}

/// A `"..."` string with Go escapes or a `` `...` `` raw string, after optional whitespace.
/// A malformed string is a failure (no other rule could read it).
pub(crate) fn string_lit(i: &str) -> PResult<'_, String> {
    let (i, ()) = ws(i)?;
    if !i.starts_with(['"', '`']) {
        return Err(Err::Error(PErr::expected(i, "STRING")));
    }
    match unquote_prefix(i) {
        Ok((s, used)) => Ok((&i[used..], s)),
        Err(msg) => Err(Err::Failure(PErr::message(i, msg))),
    }
}

/// Loki's keywords: yacc names these tokens by their text rather than `IDENTIFIER`.
const KEYWORDS: &[&str] = &[
    "or",
    "and",
    "unless",
    "by",
    "without",
    "bool",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "json",
    "logfmt",
    "regexp",
    "pattern",
    "unpack",
    "line_format",
    "label_format",
    "unwrap",
    "ip",
    "drop",
    "keep",
    "decolorize",
    "duration",
    "duration_seconds",
    "bytes",
    "rate",
    "rate_counter",
    "count_over_time",
    "bytes_rate",
    "bytes_over_time",
    "avg_over_time",
    "sum_over_time",
    "min_over_time",
    "max_over_time",
    "stddev_over_time",
    "stdvar_over_time",
    "quantile_over_time",
    "first_over_time",
    "last_over_time",
    "absent_over_time",
    "sum",
    "avg",
    "count",
    "max",
    "min",
    "stddev",
    "stdvar",
    "bottomk",
    "topk",
    "sort",
    "sort_desc",
    "vector",
    "label_replace",
];

/// Names the token at the start of `i` the way Loki's error messages do.
pub(crate) fn describe_token(i: &str) -> String {
    let i = ws(i).map_or(i, |(rest, ())| rest);
    let Some(c) = i.chars().next() else {
        return "$end".to_string();
    };
    if is_ident_start(c) {
        let end = i.find(|c| !is_ident_char(c)).unwrap_or(i.len());
        let word = &i[..end];
        return if KEYWORDS.contains(&word) {
            word.to_string()
        } else {
            "IDENTIFIER".to_string()
        };
    }
    if c == '"' || c == '`' {
        return "STRING".to_string();
    }
    if c.is_ascii_digit() {
        return "NUMBER".to_string();
    }
    for op in ["|=", "!=", "|~", "!~", "|>", "!>", "=~", "==", ">=", "<="] {
        if i.starts_with(op) {
            return op.to_string();
        }
    }
    c.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_and_comments() {
        assert_eq!(ws("  # c\n # d\n\t x"), Ok(("x", ())));
        assert_eq!(ws("# only"), Ok(("", ())));
        assert_eq!(sym("{")(" \n{a"), Ok(("a", "{")));
        assert_eq!(identifier(" _a1-"), Ok(("-", "_a1")));
        assert!(keyword("or")(" order").is_err());
        assert_eq!(keyword("or")(" or \"x\""), Ok((" \"x\"", "or")));
    }

    #[test]
    fn strings() {
        assert_eq!(string_lit(r#" "a\"b\n" x"#), Ok((" x", "a\"b\n".to_string())));
        assert_eq!(string_lit(r" `a\d` x"), Ok((" x", r"a\d".to_string())));
        assert!(matches!(string_lit(r#""a\q""#), Err(Err::Failure(_))));
        assert!(matches!(string_lit("x"), Err(Err::Error(_))));
    }

    #[test]
    fn tokens_are_named_like_loki() {
        for (input, want) in [
            ("", "$end"),
            ("  # c", "$end"),
            ("foo", "IDENTIFIER"),
            ("json", "json"),
            ("\"x\"", "STRING"),
            ("}", "}"),
            ("|= x", "|="),
            ("12", "NUMBER"),
        ] {
            assert_eq!(describe_token(input), want, "{input:?}");
        }
    }
}
