//! Entry points: text in, AST (and compiled pipeline) out, with Loki-worded errors.
//!
//! [`parse_expr`] reads and validates the whole language into an [`Expr`]. [`parse_log_query`]
//! is what queriers and ingesters run today: a log query whose stages are all line filters,
//! compiled into a [`Pipeline`]; other stages and metric queries are refused there with
//! [`LogqlError::Unsupported`] until their evaluation is wired in.

mod label_filter;
mod lexer;
mod metric;
mod rules;
mod stages;
mod template;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_full;
#[cfg(test)]
mod tests_gen;
mod tokens;

use nom::Err;

use crate::ast::{Expr, LogExpr, Stage};
use crate::error::{LogqlError, MAX_QUERY_BYTES, Result};
use crate::filter::Pipeline;
use crate::matcher::Selector;
use lexer::{PErr, PErrKind, describe_token};

/// A parsed, validated log query with its compiled pipeline: what a querier or ingester needs to
/// select streams and filter their lines.
#[derive(Debug, Clone)]
pub struct LogQuery {
    pub expr: LogExpr,
    pub pipeline: Pipeline,
}

impl LogQuery {
    pub fn selector(&self) -> &Selector {
        &self.expr.selector
    }
}

/// Parses and validates any LogQL expression: log queries with every pipeline stage, and metric
/// queries (range and vector aggregations, binary operations, literals, `vector`,
/// `label_replace`). Every selector in it must pass [`Selector::validate`].
pub fn parse_expr(query: &str) -> Result<Expr> {
    let expr = parse_unvalidated(query)?;
    validate_selectors(&expr)?;
    Ok(expr)
}

/// Checks every selector of the tree (whose height the parser bounds).
fn validate_selectors(e: &Expr) -> Result<()> {
    match e {
        Expr::Log(log) => log.selector.validate(),
        Expr::RangeAggregation(r) => r.range.log.selector.validate(),
        Expr::VectorAggregation(v) => validate_selectors(&v.inner),
        Expr::BinOp(b) => validate_selectors(&b.lhs).and_then(|()| validate_selectors(&b.rhs)),
        Expr::LabelReplace(l) => validate_selectors(&l.inner),
        Expr::Literal(_) | Expr::Vector(_) => Ok(()),
    }
}

/// Parses a log query (`{selector} | filters`) and compiles its pipeline. Only line filters
/// run today: other stages and metric queries are [`LogqlError::Unsupported`].
pub fn parse_log_query(query: &str) -> Result<LogQuery> {
    let expr = match parse_expr(query)? {
        Expr::Log(expr) => expr,
        _ => {
            let start = query.len() - skip_open_parens(query).len();
            return Err(LogqlError::unsupported_at(query, start, "metric queries"));
        }
    };
    if let Some(index) = expr.stages.iter().position(|s| !matches!(s, Stage::LineFilter(_))) {
        let offset = stage_offset(query, index).unwrap_or(0);
        let name = query[offset..]
            .trim_start_matches(|c: char| c == '|' || c.is_whitespace())
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .next()
            .unwrap_or_default();
        return Err(LogqlError::unsupported_at(
            query,
            offset,
            format!("pipeline stage `| {name}`"),
        ));
    }
    let pipeline = Pipeline::new(&expr)?;
    Ok(LogQuery { expr, pipeline })
}

/// `query` after leading whitespace, comments and `(`.
fn skip_open_parens(query: &str) -> &str {
    let mut i = query;
    loop {
        i = lexer::ws(i).map_or(i, |(rest, ())| rest);
        match i.strip_prefix('(') {
            Some(rest) => i = rest,
            None => return i,
        }
    }
}

/// Byte offset of stage `index` of a log query that parsed, found by reading it again.
fn stage_offset(query: &str, index: usize) -> Option<usize> {
    let (mut i, _) = rules::selector(skip_open_parens(query)).ok()?;
    for _ in 0..index {
        i = rules::stage(i).ok()?.0;
    }
    let (i, ()) = lexer::ws(i).ok()?;
    Some(query.len() - i.len())
}

/// Parses without the selector rule (Loki's `ParseExprWithoutValidation`), e.g. for
/// `format_query`, which pretty-prints queries it would refuse to run.
pub fn parse_unvalidated(query: &str) -> Result<Expr> {
    if query.len() >= MAX_QUERY_BYTES {
        return Err(LogqlError::Validation(format!(
            "input size too long ({} > {MAX_QUERY_BYTES})",
            query.len()
        )));
    }
    let parsed = metric::expr(query).and_then(|(rest, e)| rules::end(rest).map(|_| e));
    match parsed {
        Ok(e) => Ok(e),
        Err(Err::Error(e) | Err::Failure(e)) => Err(to_error(query, e)),
        Err(Err::Incomplete(_)) => Err(LogqlError::at(query, query.len(), "syntax error: unexpected $end")),
    }
}

fn to_error(query: &str, e: PErr<'_>) -> LogqlError {
    // An error built without a place (`at` = "") is reported at the end of the query.
    let offset = query.len().saturating_sub(e.at.len());
    match e.kind {
        PErrKind::Expected(what) => LogqlError::at(
            query,
            offset,
            format!(
                "syntax error: unexpected {}, expecting {}",
                describe_token(e.at),
                what.join(" or ")
            ),
        ),
        PErrKind::Message(msg) => LogqlError::at(query, offset, msg),
        PErrKind::Unpositioned(msg) => LogqlError::Validation(msg),
        PErrKind::Nom => LogqlError::at(
            query,
            offset,
            format!("syntax error: unexpected {}", describe_token(e.at)),
        ),
    }
}
