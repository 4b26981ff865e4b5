//! The grammar, one function per rule of Loki's `syntax.y` that Lode implements:
//!
//! ```text
//! log_expr      := selector stage*                   (the rest: metric.rs)
//! selector      := "{" [ matcher ("," matcher)* ] "}"
//! matcher       := IDENTIFIER match_op STRING
//! match_op      := "=" | "!=" | "=~" | "!~"
//! stage         := line_filter | pipe_stage          (pipe_stage: stages.rs)
//! line_filter   := filter_op filter_operand ("or" filter_operand)*
//! filter_op     := "|=" | "!=" | "|~" | "!~" | "|>" | "!>"
//! filter_operand:= STRING | ip_operand
//! ip_operand    := "ip" "(" STRING ")"
//! ```
//! Once a rule has seen its first token it commits (`cut`), so errors point at the token that
//! broke it rather than at the start of the query.

use nom::Err;
use nom::Parser;
use nom::branch::alt;
use nom::combinator::cut;
use nom::multi::many0;
use nom::sequence::preceded;

use super::lexer::{PErr, PResult, describe_token, identifier, keyword, string_lit, sym, ws};
use super::stages::pipe_stage;
use crate::ast::{FilterOp, FilterOperand, LineFilterExpr, LogExpr, Stage};
use crate::ip::IpFilter;
use crate::matcher::{MatchOp, Matcher, Selector};
use crate::pattern::PatternFilter;
use crate::regex_compat;

/// `log_expr`: a selector and its pipeline (surrounding parentheses belong to the expression
/// grammar). `| unwrap` only exists inside a range aggregation.
pub(crate) fn log_expr(i: &str) -> PResult<'_, LogExpr> {
    let (i, selector) = selector(i)?;
    let (i, stages) = many0(stage).parse(i)?;
    let (t, ()) = ws(i)?;
    if let Some(rest) = t.strip_prefix('|') {
        let (rest, ()) = ws(rest)?;
        if keyword("unwrap")(rest).is_ok() {
            return Err(Err::Failure(PErr::message(
                rest,
                "syntax error: unexpected unwrap: unwrap is only allowed in a range aggregation",
            )));
        }
    }
    Ok((i, LogExpr { selector, stages }))
}

/// `selector`: `{` matchers `}`. Validation (the empty-compatible rule) happens after parsing.
pub(crate) fn selector(i: &str) -> PResult<'_, Selector> {
    let (i, _) = sym("{")(i)?;
    if let Ok((i, _)) = sym("}")(i) {
        return Ok((i, Selector::new(Vec::new())));
    }
    let (mut i, first) = cut(matcher).parse(i)?;
    let mut matchers = vec![first];
    loop {
        let (rest, sep) = cut(alt((sym(","), sym("}")))).parse(i)?;
        if sep == "}" {
            return Ok((rest, Selector::new(matchers)));
        }
        let (rest, m) = cut(matcher).parse(rest)?;
        matchers.push(m);
        i = rest;
    }
}

/// `matcher`: `name op "value"`, compiled. Loki compiles matchers while building the AST, so a
/// bad regex has no position (`parse error : error parsing regexp: ...`).
pub(crate) fn matcher(i: &str) -> PResult<'_, Matcher> {
    let (i, name) = identifier(i)?;
    let (i, op) = cut(match_op).parse(i)?;
    let (i, ()) = ws(i)?;
    let at = i;
    let (i, value) = cut(string_lit).parse(i)?;
    match Matcher::new(name, op, value) {
        Ok(m) => Ok((i, m)),
        Err(msg) => Err(Err::Failure(PErr::unpositioned(at, msg))),
    }
}

/// `match_op`: `=`, `!=`, `=~` or `!~` (longest first, so `=~` is not read as `=`).
pub(crate) fn match_op(i: &str) -> PResult<'_, MatchOp> {
    let (i, ()) = ws(i)?;
    for (text, op) in [
        ("=~", MatchOp::Re),
        ("!~", MatchOp::Nre),
        ("!=", MatchOp::Neq),
        ("=", MatchOp::Eq),
    ] {
        if let Some(rest) = i.strip_prefix(text) {
            return Ok((rest, op));
        }
    }
    Err(Err::Error(PErr {
        at: i,
        kind: super::lexer::PErrKind::Expected(vec!["=", "=~", "!~", "!="]),
    }))
}

/// `stage`: one pipeline stage: a line filter, or a `|` stage (see [`super::stages`]).
pub(crate) fn stage(i: &str) -> PResult<'_, Stage> {
    let (i, ()) = ws(i)?;
    if ["|=", "!=", "|~", "!~", "|>", "!>"].iter().any(|op| i.starts_with(op)) {
        return line_filter.map(Stage::LineFilter).parse(i);
    }
    pipe_stage(i)
}

/// `line_filter`: an operator and its `or`-joined operands.
pub(crate) fn line_filter(i: &str) -> PResult<'_, LineFilterExpr> {
    let (i, op) = filter_op(i)?;
    let (i, first) = cut(|i| filter_operand(op, i)).parse(i)?;
    let (i, more) = many0(preceded(keyword("or"), cut(|i| filter_operand(op, i)))).parse(i)?;
    let mut operands = vec![first];
    operands.extend(more);
    Ok((i, LineFilterExpr { op, operands }))
}

/// `filter_op`: `|=`, `!=`, `|~` or `!~`.
pub(crate) fn filter_op(i: &str) -> PResult<'_, FilterOp> {
    let (i, ()) = ws(i)?;
    for (text, op) in [
        ("|=", FilterOp::Contains),
        ("!=", FilterOp::NotContains),
        ("|~", FilterOp::Regex),
        ("!~", FilterOp::NotRegex),
        ("|>", FilterOp::Pattern),
        ("!>", FilterOp::NotPattern),
    ] {
        if let Some(rest) = i.strip_prefix(text) {
            return Ok((rest, op));
        }
    }
    Err(Err::Error(PErr::expected(i, "|=")))
}

/// `filter_operand`: a string or `ip("...")`, checked now so that a bad regex, pattern or
/// address is reported at its string.
pub(crate) fn filter_operand(op: FilterOp, i: &str) -> PResult<'_, FilterOperand> {
    let (i, ()) = ws(i)?;
    if let Ok((rest, _)) = keyword("ip")(i) {
        return ip_operand(op, i, rest);
    }
    let at = i;
    let (i, s) = string_lit(i)?;
    let checked = match op {
        _ if op.is_regex() => regex_compat::compile(&s).map(drop),
        _ if op.is_pattern() => PatternFilter::new(&s).map(drop),
        _ => Ok(()),
    };
    match checked {
        Ok(()) => Ok((i, FilterOperand::Text(s))),
        Err(msg) => Err(Err::Failure(PErr::message(at, msg))),
    }
}

/// `ip_operand`: `ip` `(` STRING `)`, after the `ip` keyword; only `|=` and `!=` take it.
fn ip_operand<'a>(op: FilterOp, at: &'a str, i: &'a str) -> PResult<'a, FilterOperand> {
    if !matches!(op, FilterOp::Contains | FilterOp::NotContains) {
        return Err(Err::Failure(PErr::message(at, "ip: invalid operation")));
    }
    let (i, _) = cut(sym("(")).parse(i)?;
    let (i, ()) = ws(i)?;
    let pattern_at = i;
    let (i, pattern) = cut(string_lit).parse(i)?;
    let (i, _) = cut(sym(")")).parse(i)?;
    match IpFilter::new(&pattern) {
        Ok(_) => Ok((i, FilterOperand::Ip(pattern))),
        Err(msg) => Err(Err::Failure(PErr::message(pattern_at, msg))),
    }
}

/// After a complete expression only whitespace and comments may remain.
pub(crate) fn end(i: &str) -> PResult<'_, ()> {
    let (i, ()) = ws(i)?;
    if i.is_empty() {
        return Ok((i, ()));
    }
    Err(Err::Error(PErr::message(
        i,
        format!("syntax error: unexpected {}", describe_token(i)),
    )))
}
