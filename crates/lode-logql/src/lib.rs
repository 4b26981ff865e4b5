//! LogQL for Lode: the nom parser, the AST with its canonical printer, and evaluation. Queriers
//! parse the query text with [`parse_expr`]; [`engine`] compiles a log query into a
//! [`engine::LogPlan`] (selector, line filters hoisted onto the raw line, then the [`stages`]) and
//! a metric query into a [`engine::MetricQuery`] (a [`metric`] plan plus one sample source per
//! range aggregation). Ingesters and the store feed each stream's entries to the engine's
//! collectors; the index narrows streams with [`Selector::matchers`] first.
//!
//! Semantics follow Grafana Loki 3.x: regex matchers are fully anchored, line regexes are not,
//! Go's RE2 dialect is translated for Rust's engine (ASCII `\d \w \s \b`, `\Q..\E`), and errors
//! use Loki's `parse error at line L, col C: ...` wording so clients show familiar messages.
//!
//! Parsing covers the whole language of Loki's feature matrix: log queries with every pipeline
//! stage (line filters, `json`/`logfmt`/`regexp`/`pattern`/`unpack` parsers, label filters,
//! `line_format`, `label_format`, `drop`, `keep`, `decolorize`) and metric queries (range
//! aggregations with `unwrap` and `offset`, vector aggregations, binary operators with
//! `bool`/`on`/`ignoring`/`group_left`/`group_right`, literals, `vector`, `label_replace`), into
//! the typed tree of [`ast`], printed back canonically by `Display`. [`parse_log_query`] remains
//! for callers that only handle line-filter queries (it refuses other stages).

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
