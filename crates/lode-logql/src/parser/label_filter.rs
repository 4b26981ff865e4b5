//! Label filters, the pipeline stage after `|` that tests labels:
//!
//! ```text
//! label_filter := and_filter ("or" and_filter)*
//! and_filter   := primary (("and" | "," | <nothing>) primary)*     (a space also means and)
//! primary      := "(" label_filter ")" | IDENTIFIER op value
//! value        := STRING                  (= != =~ !~: a Prometheus matcher)
//!               | "ip" "(" STRING ")"     (= != only)
//!               | ["-"|"+"] NUMBER | DURATION | BYTES   (== = != > >= < <=)
//! ```

use std::cell::Cell;

use nom::Err;
use nom::Parser;
use nom::branch::alt;
use nom::combinator::cut;

use super::lexer::{PErr, PResult, describe_token, identifier, keyword, string_lit, sym, ws};
use super::tokens::{NumTok, num_token};
use crate::ast::{CmpOp, LabelFilterExpr};
use crate::ip::IpFilter;
use crate::matcher::{MatchOp, Matcher};

/// How deep parentheses may nest inside one label filter.
const MAX_DEPTH: usize = 100;

/// How many comparisons one label filter stage may hold (the tree is that deep at worst).
const MAX_LEAVES: usize = 500;

/// `label_filter`: `or`-joined `and_filter`s (`and` binds tighter).
pub(crate) fn label_filter(i: &str) -> PResult<'_, LabelFilterExpr> {
    label_filter_at(i, 0, &Cell::new(0))
}

fn label_filter_at<'a>(i: &'a str, depth: usize, leaves: &Cell<usize>) -> PResult<'a, LabelFilterExpr> {
    let (mut i, mut acc) = and_filter(i, depth, leaves)?;
    while let Ok((rest, _)) = keyword("or")(i) {
        let (rest, rhs) = cut(|i| and_filter(i, depth, leaves)).parse(rest)?;
        acc = LabelFilterExpr::Or(Box::new(acc), Box::new(rhs));
        i = rest;
    }
    Ok((i, acc))
}

/// `and_filter`: primaries joined by `and`, `,` or juxtaposition.
fn and_filter<'a>(i: &'a str, depth: usize, leaves: &Cell<usize>) -> PResult<'a, LabelFilterExpr> {
    let (mut i, mut acc) = primary(i, depth, leaves)?;
    loop {
        let rest = match alt((keyword("and"), sym(","))).parse(i) {
            Ok((rest, _)) => rest,
            Err(_) if starts_juxtaposed(i) => i,
            Err(_) => return Ok((i, acc)),
        };
        let (rest, rhs) = cut(|i| primary(i, depth, leaves)).parse(rest)?;
        acc = LabelFilterExpr::And(Box::new(acc), Box::new(rhs));
        i = rest;
    }
}

/// Whether another filter follows without a connective (`| a="x" b="y"`).
fn starts_juxtaposed(i: &str) -> bool {
    let Ok((t, ())) = ws(i) else { return false };
    if t.starts_with('(') {
        return true;
    }
    match identifier(t) {
        Ok((_, word)) => !matches!(word, "or" | "and" | "unless" | "offset" | "by" | "without" | "bool"),
        Err(_) => false,
    }
}

/// `primary`: a parenthesised filter or one comparison.
fn primary<'a>(i: &'a str, depth: usize, leaves: &Cell<usize>) -> PResult<'a, LabelFilterExpr> {
    if let Ok((rest, _)) = sym("(")(i) {
        if depth >= MAX_DEPTH {
            return Err(Err::Failure(PErr::message(i, "label filter nested too deeply")));
        }
        let (rest, inner) = cut(|i| label_filter_at(i, depth + 1, leaves)).parse(rest)?;
        let (rest, _) = cut(sym(")")).parse(rest)?;
        return Ok((rest, inner));
    }
    let (i, name) = identifier(i)?;
    leaves.set(leaves.get() + 1);
    if leaves.get() > MAX_LEAVES {
        return Err(Err::Failure(PErr::message(
            i,
            format!("label filter too long (more than {MAX_LEAVES} comparisons)"),
        )));
    }
    let (i, ()) = ws(i)?;
    let op_at = i;
    let (i, op) = cut(filter_op).parse(i)?;
    let (i, ()) = ws(i)?;
    let value_at = i;
    if i.starts_with(['"', '`']) {
        let (i, value) = string_lit(i)?;
        let mop = match op {
            Op::Match(m) => m,
            Op::Cmp(CmpOp::Neq) => MatchOp::Neq,
            Op::Cmp(_) => {
                return Err(Err::Failure(PErr::message(
                    value_at,
                    "syntax error: unexpected STRING, expecting NUMBER or DURATION or BYTES",
                )));
            }
        };
        return match Matcher::new(name, mop, value) {
            Ok(m) => Ok((i, LabelFilterExpr::Matcher(m))),
            Err(msg) => Err(Err::Failure(PErr::message(value_at, msg))),
        };
    }
    if let Ok((rest, _)) = keyword("ip")(i) {
        let negated = match op {
            Op::Match(MatchOp::Eq) => false,
            Op::Match(MatchOp::Neq) | Op::Cmp(CmpOp::Neq) => true,
            _ => return Err(Err::Failure(PErr::message(op_at, "ip: invalid operation"))),
        };
        let (rest, _) = cut(sym("(")).parse(rest)?;
        let (rest, ()) = ws(rest)?;
        let pattern_at = rest;
        let (rest, pattern) = cut(string_lit).parse(rest)?;
        let (rest, _) = cut(sym(")")).parse(rest)?;
        return match IpFilter::new(&pattern) {
            Ok(_) => Ok((
                rest,
                LabelFilterExpr::Ip {
                    label: name.to_string(),
                    negated,
                    pattern,
                },
            )),
            Err(msg) => Err(Err::Failure(PErr::message(pattern_at, msg))),
        };
    }
    let cmp = match op {
        Op::Cmp(c) => c,
        Op::Match(MatchOp::Eq) => CmpOp::Eq,
        Op::Match(MatchOp::Neq) => CmpOp::Neq,
        Op::Match(_) => {
            return Err(Err::Failure(PErr::expected(value_at, "STRING")));
        }
    };
    let (i, value) = cut(signed_value).parse(i)?;
    let label = name.to_string();
    let filter = match value {
        NumTok::Number(value) => LabelFilterExpr::Number { label, op: cmp, value },
        NumTok::Duration(value) => LabelFilterExpr::Duration { label, op: cmp, value },
        NumTok::Bytes(value) => LabelFilterExpr::Bytes { label, op: cmp, value },
    };
    Ok((i, filter))
}

/// `["-"|"+"] NUMBER`, or a duration or byte size (unsigned).
fn signed_value(i: &str) -> PResult<'_, NumTok> {
    let (i, ()) = ws(i)?;
    let (rest, sign) = match i.chars().next() {
        Some('-') => (&i[1..], -1.0),
        Some('+') => (&i[1..], 1.0),
        _ => {
            return num_token(i).map_err(|e| match e {
                Err::Error(_) => Err::Error(PErr {
                    at: i,
                    kind: super::lexer::PErrKind::Expected(vec!["STRING", "NUMBER", "DURATION", "BYTES", "ip"]),
                }),
                other => other,
            });
        }
    };
    match num_token(rest) {
        Ok((rest, NumTok::Number(v))) => Ok((rest, NumTok::Number(sign * v))),
        _ => Err(Err::Failure(PErr::message(
            i,
            format!("syntax error: unexpected {}", describe_token(i)),
        ))),
    }
}

/// The operator of a label filter.
#[derive(Clone, Copy)]
enum Op {
    Match(MatchOp),
    Cmp(CmpOp),
}

/// `=~ !~ != == >= <= > < =` (longest first).
fn filter_op(i: &str) -> PResult<'_, Op> {
    let (i, ()) = ws(i)?;
    for (text, op) in [
        ("=~", Op::Match(MatchOp::Re)),
        ("!~", Op::Match(MatchOp::Nre)),
        ("!=", Op::Match(MatchOp::Neq)),
        ("==", Op::Cmp(CmpOp::Eq)),
        (">=", Op::Cmp(CmpOp::Gte)),
        ("<=", Op::Cmp(CmpOp::Lte)),
        (">", Op::Cmp(CmpOp::Gt)),
        ("<", Op::Cmp(CmpOp::Lt)),
        ("=", Op::Match(MatchOp::Eq)),
    ] {
        if let Some(rest) = i.strip_prefix(text) {
            return Ok((rest, op));
        }
    }
    Err(Err::Error(PErr {
        at: i,
        kind: super::lexer::PErrKind::Expected(vec!["=", "!=", "=~", "!~", "==", ">", ">=", "<", "<="]),
    }))
}
