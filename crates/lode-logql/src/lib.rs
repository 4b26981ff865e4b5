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
//! Parsing covers the whole language of Loki's feature matrix: [`parse_expr`] reads and validates
//! log queries with every pipeline stage (line filters, `json`/`logfmt`/`regexp`/`pattern`/
//! `unpack` parsers, label filters, `line_format`, `label_format`, `drop`, `keep`, `decolorize`)
//! and metric queries (range aggregations with `unwrap` and `offset`, vector aggregations,
//! binary operators with `bool`/`on`/`ignoring`/`group_left`/`group_right`, literals, `vector`,
//! `label_replace`) into the typed tree of [`ast`], printed back canonically by `Display`.
//! Evaluation today covers log queries made only of line filters ([`parse_log_query`]); other
//! stages and metric queries parse, but are refused there with [`LogqlError::Unsupported`]
//! until their evaluation (`stages`, `metric`) is wired in, never guessed.

pub mod ast;
pub mod engine;
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

pub use ast::{
    BinOp, BinOpExpr, BinOpModifier, CmpOp, Expr, ExtractParam, FilterOp, FilterOperand, GroupSide, Grouping,
    LabelFilterExpr, LabelFmt, LabelFmtSource, LabelReplace, LabelSelection, LineFilterExpr, LogExpr, LogRange,
    ParserStage, RangeAggregation, RangeOp, Stage, Unwrap, UnwrapConversion, VectorAggregation, VectorMatching,
    VectorOp,
};
pub use error::{LogqlError, Result};
pub use filter::{LineFilter, Pipeline};
pub use matcher::{MatchOp, Matcher, Selector};
pub use parser::{LogQuery, parse_expr, parse_log_query, parse_unvalidated};
