//! LogQL for Lode: the nom parser, the AST with its canonical printer, and evaluation of stream
//! selectors and line-filter pipelines. Queriers and ingesters both parse the query text with
//! [`parse_log_query`]: the index narrows streams with [`Selector::matchers`], a stream is kept
//! when [`Selector::matches`] its labels, and the chunk scanner runs each line through the
//! compiled [`Pipeline`] (or memmem-scans whole blocks for [`Pipeline::required_substrings`]).
//!
//! Semantics follow Grafana Loki 3.x: regex matchers are fully anchored, line regexes are not,
//! Go's RE2 dialect is translated for Rust's engine (ASCII `\d \w \s \b`, `\Q..\E`), and errors
//! use Loki's `parse error at line L, col C: ...` wording so clients show familiar messages.
//!
//! Implemented today: log queries (a selector plus `|=`, `!=`, `|~`, `!~`, `|>`, `!>` line filters and `ip(..)` operands, with `or`).
//! The AST leaves room for the rest of the language (see [`ast::Expr`] and [`ast::Stage`]);
//! constructs not implemented yet are refused with [`LogqlError::Unsupported`], never guessed.

pub mod ast;
pub mod error;
pub mod filter;
pub mod ip;
mod literal;
pub mod matcher;
pub mod metric;
pub mod parser;
pub mod pattern;
mod printer;
pub mod regex_compat;
pub mod stages;

pub use ast::{Expr, FilterOp, FilterOperand, LineFilterExpr, LogExpr, Stage};
pub use error::{LogqlError, Result};
pub use filter::{LineFilter, Pipeline};
pub use matcher::{MatchOp, Matcher, Selector};
pub use parser::{LogQuery, parse_expr, parse_log_query, parse_unvalidated};
