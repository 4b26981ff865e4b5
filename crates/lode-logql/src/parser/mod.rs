//! Entry points: text in, AST (and compiled pipeline) out, with Loki-worded errors.

mod lexer;
mod rules;
#[cfg(test)]
mod tests;

use nom::Err;

use crate::ast::{Expr, LogExpr};
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

/// Parses and validates any LogQL expression (today: log queries only; the rest of the
/// language is refused with [`LogqlError::Unsupported`]).
pub fn parse_expr(query: &str) -> Result<Expr> {
    let expr = parse_unvalidated(query)?;
    match &expr {
        Expr::Log(log) => log.selector.validate()?,
    }
    Ok(expr)
}

/// Parses a log query (`{selector} | filters`) and compiles its pipeline.
pub fn parse_log_query(query: &str) -> Result<LogQuery> {
    let Expr::Log(expr) = parse_expr(query)?;
    let pipeline = Pipeline::new(&expr)?;
    Ok(LogQuery { expr, pipeline })
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
    let parsed = rules::expr(query).and_then(|(rest, e)| rules::end(rest).map(|_| e));
    match parsed {
        Ok(e) => Ok(e),
        Err(Err::Error(e) | Err::Failure(e)) => Err(to_error(query, e)),
        Err(Err::Incomplete(_)) => Err(LogqlError::at(query, query.len(), "syntax error: unexpected $end")),
    }
}

fn to_error(query: &str, e: PErr<'_>) -> LogqlError {
    let offset = query.len() - e.at.len();
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
        PErrKind::Unsupported(what) => LogqlError::unsupported_at(query, offset, what),
        PErrKind::Nom => LogqlError::at(
            query,
            offset,
            format!("syntax error: unexpected {}", describe_token(e.at)),
        ),
    }
}
