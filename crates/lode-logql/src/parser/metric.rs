//! The expression grammar: binary operators over metric expressions, and the metric atoms.
//!
//! ```text
//! expr        := operand (bin_op modifiers operand)*      (precedence climbing, see BinOp)
//! operand     := "("* atom ")"*                            (parentheses counted, not recursed)
//! atom        := log_expr | literal | range_agg | vector_agg | vector | label_replace
//! literal     := ["-"|"+"] NUMBER
//! modifiers   := ["bool"] [("on"|"ignoring") labels [("group_left"|"group_right") [labels]]]
//! range_agg   := RANGE_OP "(" [NUMBER ","] log_range ")" [grouping]
//! log_range   := "("* selector stage* [unwrap] ")"* range [offset] [stage* [unwrap]] ")"*
//! range       := "[" DURATION "]"          offset := "offset" DURATION
//! vector_agg  := VECTOR_OP [grouping] "(" [NUMBER ","] expr ")" [grouping]
//! grouping    := ("by" | "without") labels           labels := "(" [IDENT ("," IDENT)*] ")"
//! vector      := "vector" "(" literal ")"
//! label_replace := "label_replace" "(" expr "," STRING "," STRING "," STRING "," STRING ")"
//! ```
//! Parentheses and operator chains are handled with explicit stacks, and function nesting and
//! tree height are bounded, so no input can exhaust the stack (here or when the tree is printed
//! or dropped).

use lode_model::labels::is_valid_label_name;
use nom::Err;
use nom::Parser;
use nom::combinator::cut;
use nom::error::ParseError;
use nom::multi::many0;

use super::lexer::{PErr, PErrKind, PResult, describe_token, identifier, keyword, string_lit, sym, ws};
use super::rules::{log_expr, selector, stage};
use super::stages::unwrap;
use super::tokens::{NumTok, duration_token, num_token};
use crate::ast::{
    BinOp, BinOpExpr, BinOpModifier, Expr, GroupSide, Grouping, LabelReplace, LogExpr, LogRange, RangeAggregation,
    RangeOp, VectorAggregation, VectorMatching, VectorOp,
};
use crate::regex_compat;

/// Deepest tree (nested functions and binary operations) a query may build.
const MAX_HEIGHT: usize = 150;

/// Deepest nesting of function arguments (checked before recursing).
const MAX_NESTING: usize = 64;

/// `expr`: the whole query, or a function argument.
pub(crate) fn expr(i: &str) -> PResult<'_, Expr> {
    let (rest, (e, _)) = expr_with_height(i, 0)?;
    Ok((rest, e))
}

/// What waits on the operator stack.
enum Pending<'a> {
    Open,
    Op {
        op: BinOp,
        modifier: BinOpModifier,
        at: &'a str,
    },
}

/// An operand: the expression, where it starts, and its height.
type Operand<'a> = (Expr, &'a str, usize);

fn expr_with_height(i: &str, depth: usize) -> PResult<'_, (Expr, usize)> {
    let mut ops: Vec<Pending<'_>> = Vec::new();
    let mut operands: Vec<Operand<'_>> = Vec::new();
    let mut open = 0usize;
    let mut i = i;
    loop {
        loop {
            let (t, ()) = ws(i)?;
            let Some(rest) = t.strip_prefix('(') else { break };
            ops.push(Pending::Open);
            open += 1;
            i = rest;
        }
        let (t, ()) = ws(i)?;
        let (rest, e) = if ops.is_empty() && operands.is_empty() {
            atom(t, depth)?
        } else {
            cut(|i| atom(i, depth)).parse(t)?
        };
        let h = height(&e);
        operands.push((e, t, h));
        i = rest;
        while open > 0 {
            let Ok((rest, _)) = sym(")")(i) else { break };
            while let Some(Pending::Op { .. }) = ops.last() {
                reduce(&mut ops, &mut operands)?;
            }
            ops.pop(); // the Open
            open -= 1;
            i = rest;
        }
        let (rest, op, at) = match bin_op(i) {
            Ok((rest, (op, at))) => (rest, op, at),
            Err(Err::Error(e)) if open > 0 => {
                return Err(Err::Failure(e.or(PErr::expected(ws(i)?.0, ")"))));
            }
            Err(Err::Error(_)) => break,
            Err(e) => return Err(e),
        };
        let (rest, modifier) = cut(modifiers).parse(rest)?;
        while let Some(Pending::Op { op: top, .. }) = ops.last() {
            let (tp, p) = (top.precedence(), op.precedence());
            if tp > p || (tp == p && !op.is_right_assoc()) {
                reduce(&mut ops, &mut operands)?;
            } else {
                break;
            }
        }
        ops.push(Pending::Op { op, modifier, at });
        i = rest;
    }
    while !ops.is_empty() {
        reduce(&mut ops, &mut operands)?;
    }
    match operands.pop() {
        Some((e, _, h)) => Ok((i, (e, h))),
        None => Err(Err::Failure(PErr::expected(i, "{"))),
    }
}

/// Pops one operator and its two operands and pushes the checked binary operation.
fn reduce<'a>(ops: &mut Vec<Pending<'a>>, operands: &mut Vec<Operand<'a>>) -> Result<(), Err<PErr<'a>>> {
    let (Some(Pending::Op { op, modifier, at }), Some((rhs, rhs_at, rh)), Some((lhs, lhs_at, lh))) =
        (ops.pop(), operands.pop(), operands.pop())
    else {
        return Err(Err::Failure(PErr::message("", "syntax error: unbalanced expression")));
    };
    let fail = |at: &'a str, msg: String| Err(Err::Failure(PErr::message(at, msg)));
    for (side, at) in [(&lhs, lhs_at), (&rhs, rhs_at)] {
        if !side.is_metric() {
            return fail(at, "syntax error: unexpected log query in binary operation".into());
        }
    }
    if modifier.return_bool && !op.is_comparison() {
        return fail(at, "bool modifier can only be used on comparison operators".into());
    }
    if op.is_set() {
        // Loki's binary-operation constructor: no position, the value printed with Go's `%f`.
        let literal = |e: &Expr| match e {
            Expr::Literal(v) => Some(*v),
            _ => None,
        };
        for (side, leg, at) in [(&lhs, "left", lhs_at), (&rhs, "right", rhs_at)] {
            if let Some(v) = literal(side) {
                return Err(Err::Failure(PErr::unpositioned(
                    at,
                    format!(
                        "unexpected literal for {leg} leg of logical/set binary operation ({}): {v:.6}",
                        op.as_str()
                    ),
                )));
            }
        }
        if modifier.matching.as_ref().is_some_and(|m| m.group.is_some()) {
            return fail(at, format!("no grouping allowed for \"{}\" operation", op.as_str()));
        }
    }
    let h = 1 + lh.max(rh);
    if h > MAX_HEIGHT {
        return fail(
            at,
            format!("expression nested too deeply (more than {MAX_HEIGHT} levels)"),
        );
    }
    let e = Expr::BinOp(BinOpExpr {
        op,
        modifier,
        lhs: Box::new(lhs),
        rhs: Box::new(rhs),
    });
    operands.push((e, lhs_at, h));
    Ok(())
}

/// Height of a tree built by this parser (bounded by [`MAX_HEIGHT`], so recursion is safe).
fn height(e: &Expr) -> usize {
    match e {
        Expr::BinOp(b) => 1 + height(&b.lhs).max(height(&b.rhs)),
        Expr::VectorAggregation(v) => 1 + height(&v.inner),
        Expr::LabelReplace(l) => 1 + height(&l.inner),
        Expr::Log(_) | Expr::RangeAggregation(_) | Expr::Literal(_) | Expr::Vector(_) => 1,
    }
}

/// `bin_op`: an operator and where it is.
fn bin_op(i: &str) -> PResult<'_, (BinOp, &str)> {
    let (i, ()) = ws(i)?;
    for (text, op) in [
        ("==", BinOp::Eq),
        ("!=", BinOp::Neq),
        (">=", BinOp::Gte),
        ("<=", BinOp::Lte),
        (">", BinOp::Gt),
        ("<", BinOp::Lt),
        ("+", BinOp::Add),
        ("-", BinOp::Sub),
        ("*", BinOp::Mul),
        ("/", BinOp::Div),
        ("%", BinOp::Mod),
        ("^", BinOp::Pow),
    ] {
        if let Some(rest) = i.strip_prefix(text) {
            return Ok((rest, (op, i)));
        }
    }
    for (word, op) in [("and", BinOp::And), ("or", BinOp::Or), ("unless", BinOp::Unless)] {
        if let Ok((rest, _)) = keyword(word)(i) {
            return Ok((rest, (op, i)));
        }
    }
    Err(Err::Error(PErr {
        at: i,
        kind: PErrKind::Nom,
    }))
}

/// `modifiers`: `bool`, then `on`/`ignoring` with an optional `group_left`/`group_right`.
fn modifiers(i: &str) -> PResult<'_, BinOpModifier> {
    let (i, return_bool) = match keyword("bool")(i) {
        Ok((rest, _)) => (rest, true),
        Err(_) => (i, false),
    };
    let on = match (keyword("on")(i), keyword("ignoring")(i)) {
        (Ok((rest, _)), _) => Some((rest, true)),
        (_, Ok((rest, _))) => Some((rest, false)),
        _ => None,
    };
    let Some((i, on)) = on else {
        return Ok((
            i,
            BinOpModifier {
                return_bool,
                matching: None,
            },
        ));
    };
    let (i, labels) = cut(label_list).parse(i)?;
    let side = match (keyword("group_left")(i), keyword("group_right")(i)) {
        (Ok((rest, _)), _) => Some((rest, true)),
        (_, Ok((rest, _))) => Some((rest, false)),
        _ => None,
    };
    let (i, group) = match side {
        None => (i, None),
        Some((rest, left)) => {
            let (rest, extra) = match sym("(")(rest) {
                Ok(_) => label_list(rest)?,
                Err(_) => (rest, Vec::new()),
            };
            (
                rest,
                Some(if left {
                    GroupSide::Left(extra)
                } else {
                    GroupSide::Right(extra)
                }),
            )
        }
    };
    let matching = Some(VectorMatching { on, labels, group });
    Ok((i, BinOpModifier { return_bool, matching }))
}

/// `labels`: `(a, b)` or `()`.
fn label_list(i: &str) -> PResult<'_, Vec<String>> {
    let (i, _) = sym("(")(i)?;
    if let Ok((i, _)) = sym(")")(i) {
        return Ok((i, Vec::new()));
    }
    let mut labels = Vec::new();
    let mut i = i;
    loop {
        let (rest, l) = cut(identifier).parse(i)?;
        labels.push(l.to_string());
        let (rest, ()) = ws(rest)?;
        if let Some(rest) = rest.strip_prefix(',') {
            i = rest;
        } else if let Some(rest) = rest.strip_prefix(')') {
            return Ok((rest, labels));
        } else {
            return Err(Err::Failure(PErr {
                at: rest,
                kind: PErrKind::Expected(vec![",", ")"]),
            }));
        }
    }
}

/// `grouping`: `by (..)` or `without (..)`.
fn grouping(i: &str) -> PResult<'_, Grouping> {
    let (i, without) = match (keyword("by")(i), keyword("without")(i)) {
        (Ok((rest, _)), _) => (rest, false),
        (_, Ok((rest, _))) => (rest, true),
        _ => return Err(Err::Error(PErr::expected(ws(i)?.0, "by"))),
    };
    let (i, labels) = cut(label_list).parse(i)?;
    Ok((i, Grouping { without, labels }))
}

/// `atom`: one operand of an expression.
fn atom(i: &str, depth: usize) -> PResult<'_, Expr> {
    let (i, ()) = ws(i)?;
    if i.starts_with('{') {
        return log_expr.map(Expr::Log).parse(i);
    }
    if i.starts_with(['+', '-', '.']) || i.starts_with(|c: char| c.is_ascii_digit()) {
        return cut(signed_number).map(Expr::Literal).parse(i);
    }
    let Ok((rest, name)) = identifier(i) else {
        return Err(Err::Error(PErr::expected(i, "{")));
    };
    if let Some(op) = RangeOp::from_name(name) {
        return range_aggregation(rest, op, i);
    }
    if let Some(op) = VectorOp::from_name(name) {
        return vector_aggregation(rest, op, i, depth);
    }
    match name {
        "vector" => vector(rest),
        "label_replace" => label_replace(rest, i, depth),
        _ => Err(Err::Failure(PErr::message(
            i,
            format!("syntax error: unexpected {}", describe_token(i)),
        ))),
    }
}

/// `literal`: an optionally signed number (the sign binds tighter than `^`: `-2^2` is 4).
fn signed_number(i: &str) -> PResult<'_, f64> {
    let (i, ()) = ws(i)?;
    let (rest, sign) = match i.chars().next() {
        Some('-') => (&i[1..], -1.0),
        Some('+') => (&i[1..], 1.0),
        _ => (i, 1.0),
    };
    let (rest, ()) = ws(rest)?;
    match num_token(rest)? {
        (rest, NumTok::Number(v)) => Ok((rest, sign * v)),
        _ => Err(Err::Failure(PErr::message(
            rest,
            "syntax error: unexpected duration or byte size, expecting NUMBER",
        ))),
    }
}

/// `NUMBER ","` at the start of a function's arguments, if there: what follows, the value,
/// and where the number starts (its text is `at[..len]`).
fn leading_param(i: &str) -> Option<(&str, f64, &str, usize)> {
    let (t, ()) = ws(i).ok()?;
    let (after, v) = signed_number(t).ok()?;
    let (rest, _) = sym(",")(after).ok()?;
    Some((rest, v, t, t.len() - after.len()))
}

/// `range_agg`, after the operation name at `at`.
fn range_aggregation<'a>(i: &'a str, op: RangeOp, at: &'a str) -> PResult<'a, Expr> {
    let (i, _) = cut(sym("(")).parse(i)?;
    let (i, param, param_text) = match leading_param(i) {
        Some((rest, v, p_at, len)) => (rest, Some(v), &p_at[..len]),
        None => (i, None, ""),
    };
    let (i, range) = cut(log_range).parse(i)?;
    let (i, _) = cut(sym(")")).parse(i)?;
    let (i, grouping) = match grouping(i) {
        Ok((rest, g)) => (rest, Some(g)),
        Err(Err::Error(_)) => (i, None),
        Err(e) => return Err(e),
    };
    let name = op.as_str();
    // Loki's range aggregation constructor checks these: no position in its message.
    let fail = |at: &'a str, msg: String| Err(Err::Failure(PErr::unpositioned(at, msg)));
    match (op == RangeOp::QuantileOverTime, param) {
        (true, None) => return fail(at, format!("parameter required for operation {name}")),
        (false, Some(_)) => {
            return fail(at, format!("parameter {param_text} not supported for operation {name}"));
        }
        _ => {}
    }
    if grouping.is_some() && !op.allows_grouping() {
        return fail(at, format!("grouping not allowed for {name} aggregation"));
    }
    match (&range.unwrap, op.allows_unwrap(), op.requires_unwrap()) {
        (Some(_), false, _) => return fail(at, format!("invalid aggregation {name} with unwrap")),
        (None, _, true) => return fail(at, format!("invalid aggregation {name} without unwrap")),
        _ => {}
    }
    Ok((
        i,
        Expr::RangeAggregation(RangeAggregation {
            op,
            param,
            range,
            grouping,
        }),
    ))
}

/// `log_range`: a log query with a range; the range follows the selector or the pipeline.
fn log_range(i: &str) -> PResult<'_, LogRange> {
    let (mut i, mut n) = (i, 0usize);
    while let Ok((rest, _)) = sym("(")(i) {
        (i, n) = (rest, n + 1);
    }
    let (i, sel) = cut(selector).parse(i)?;
    let (i, mut stages) = many0(stage).parse(i)?;
    let (mut i, mut unwrapped) = opt_unwrap(i)?;
    let mut closed = 0;
    while closed < n {
        let Ok((rest, _)) = sym(")")(i) else { break };
        (i, closed) = (rest, closed + 1);
    }
    let (i, _) = cut(sym("[")).parse(i)?;
    let (i, range) = cut(duration_token).parse(i)?;
    let (i, _) = cut(sym("]")).parse(i)?;
    let (mut i, offset) = match keyword("offset")(i) {
        Ok((rest, _)) => {
            let (rest, d) = cut(duration_token).parse(rest)?;
            (rest, Some(d))
        }
        Err(_) => (i, None),
    };
    if closed == 0 && stages.is_empty() && unwrapped.is_none() {
        let (rest, after) = many0(stage).parse(i)?;
        stages = after;
        (i, unwrapped) = opt_unwrap(rest)?;
    }
    for _ in closed..n {
        i = cut(sym(")")).parse(i)?.0;
    }
    Ok((
        i,
        LogRange {
            log: LogExpr { selector: sel, stages },
            unwrap: unwrapped,
            range,
            offset,
        },
    ))
}

fn opt_unwrap(i: &str) -> PResult<'_, Option<crate::ast::Unwrap>> {
    match unwrap(i) {
        Ok((rest, u)) => Ok((rest, Some(u))),
        Err(Err::Error(_)) => Ok((i, None)),
        Err(e) => Err(e),
    }
}

/// An argument that must be a metric expression (not a log query), with its height.
fn metric_arg(i: &str, depth: usize) -> PResult<'_, (Expr, usize)> {
    let (i, ()) = ws(i)?;
    let at = i;
    if depth >= MAX_NESTING {
        return Err(Err::Failure(PErr::message(
            at,
            format!("expression nested too deeply (more than {MAX_NESTING} levels)"),
        )));
    }
    let (i, (e, h)) = cut(|i| expr_with_height(i, depth + 1)).parse(i)?;
    if !e.is_metric() {
        return Err(Err::Failure(PErr::message(
            at,
            "syntax error: unexpected log query, expecting a metric expression",
        )));
    }
    if h >= MAX_HEIGHT {
        return Err(Err::Failure(PErr::message(
            at,
            format!("expression nested too deeply (more than {MAX_HEIGHT} levels)"),
        )));
    }
    Ok((i, (e, h)))
}

/// `vector_agg`, after the operation name at `at`.
fn vector_aggregation<'a>(i: &'a str, op: VectorOp, at: &'a str, depth: usize) -> PResult<'a, Expr> {
    let (i, before) = match grouping(i) {
        Ok((rest, g)) => (rest, Some(g)),
        Err(Err::Error(_)) => (i, None),
        Err(e) => return Err(e),
    };
    let (i, _) = cut(sym("(")).parse(i)?;
    let (i, param) = match leading_param(i) {
        Some((rest, _, p_at, len)) => (rest, Some((p_at, &p_at[..len]))),
        None => (i, None),
    };
    let (i, (inner, _)) = metric_arg(i, depth)?;
    let (i, _) = cut(sym(")")).parse(i)?;
    let (i, grouping) = match before {
        Some(g) => (i, Some(g)),
        None => match grouping(i) {
            Ok((rest, g)) => (rest, Some(g)),
            Err(Err::Error(_)) => (i, None),
            Err(e) => return Err(e),
        },
    };
    let name = op.as_str();
    // Loki's vector aggregation constructor checks these: no position, and its exact (unbalanced)
    // wording.
    let fail = |at: &'a str, msg: String| Err(Err::Failure(PErr::unpositioned(at, msg)));
    // Like Loki, `k` must be written as an integer (`topk(5.0, ..)` is refused).
    let param = match (op.takes_param(), param) {
        (true, None) => return fail(at, format!("parameter required for operation {name}")),
        (false, Some((p_at, text))) => {
            return fail(p_at, format!("unsupported parameter for operation {name}({text},"));
        }
        (true, Some((p_at, text))) => match text.parse::<i64>() {
            Ok(k) if k > 0 => Some(k.unsigned_abs()),
            Ok(_) => {
                return fail(
                    p_at,
                    format!("invalid parameter (must be greater than 0) {name}({text}"),
                );
            }
            Err(_) => return fail(p_at, format!("invalid parameter {name}({text},")),
        },
        (false, None) => None,
    };
    Ok((
        i,
        Expr::VectorAggregation(VectorAggregation {
            op,
            param,
            grouping,
            inner: Box::new(inner),
        }),
    ))
}

/// `vector(n)`.
fn vector(i: &str) -> PResult<'_, Expr> {
    let (i, _) = cut(sym("(")).parse(i)?;
    let (i, v) = cut(signed_number).parse(i)?;
    let (i, _) = cut(sym(")")).parse(i)?;
    Ok((i, Expr::Vector(v)))
}

/// `label_replace(..)`, after the name at `at`.
fn label_replace<'a>(i: &'a str, at: &'a str, depth: usize) -> PResult<'a, Expr> {
    let (i, _) = cut(sym("(")).parse(i)?;
    let (mut i, (inner, _)) = metric_arg(i, depth)?;
    let mut args: Vec<(String, &str)> = Vec::with_capacity(4);
    for _ in 0..4 {
        let (rest, _) = cut(sym(",")).parse(i)?;
        let (rest, ()) = ws(rest)?;
        let (after, s) = cut(string_lit).parse(rest)?;
        args.push((s, rest));
        i = after;
    }
    let (i, _) = cut(sym(")")).parse(i)?;
    let mut it = args.into_iter();
    let (Some((dst, dst_at)), Some((replacement, _)), Some((src, _)), Some((regex, _))) =
        (it.next(), it.next(), it.next(), it.next())
    else {
        return Err(Err::Failure(PErr::message(at, "label_replace: expecting 5 arguments")));
    };
    // Loki's label_replace constructor checks these: no position in its messages.
    if !is_valid_label_name(&dst) {
        return Err(Err::Failure(PErr::unpositioned(
            dst_at,
            format!("invalid destination label name in label_replace(): {dst}"),
        )));
    }
    if let Err(msg) = regex_compat::compile(&format!("^(?:{regex})$")) {
        return Err(Err::Failure(PErr::unpositioned(
            at,
            format!("invalid regex in label_replace: {msg}"),
        )));
    }
    Ok((
        i,
        Expr::LabelReplace(LabelReplace {
            inner: Box::new(inner),
            dst,
            replacement,
            src,
            regex,
        }),
    ))
}
