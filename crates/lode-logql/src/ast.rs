//! The LogQL syntax tree. Laid out for the whole language; the variants that exist are the ones
//! Lode can evaluate, and the rest are planned here so they slot in without reshaping the tree.
//!
//! Plan for the full language (next issue), one variant per construct of Loki's grammar:
//! - [`Expr`] gains the metric side: `RangeAggregation { op, range: LogRange, grouping, param }`
//!   (`count_over_time({..} |= "x" [5m] offset 1h)`, with `LogRange { log: LogExpr, range,
//!   offset, unwrap }`), `VectorAggregation { op, grouping, param, inner: Box<Expr> }`,
//!   `BinOp { op, modifier, lhs: Box<Expr>, rhs: Box<Expr> }`, `Literal(f64)`, `Vector(f64)` and
//!   `LabelReplace { .. }`.
//! - [`Stage`] gains `Parser(ParserStage)` (json, logfmt with flags, regexp, pattern, unpack),
//!   `LabelFilter(LabelFilterExpr)` (string, numeric, duration, bytes, `ip()`, and/or trees),
//!   `LineFormat(String)`, `LabelFormat(Vec<LabelFmt>)`, `Drop(..)`, `Keep(..)`, `Decolorize`.
//!
//! Until then the parser answers those constructs with [`crate::LogqlError::Unsupported`].

use crate::matcher::Selector;

/// A parsed LogQL expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// A log query: `{app="api"} |= "error"`.
    Log(LogExpr),
}

/// A stream selector followed by pipeline stages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogExpr {
    pub selector: Selector,
    pub stages: Vec<Stage>,
}

/// One step of a log pipeline, applied in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    /// `|= "a"`, `!~ "b" or "c"`...
    LineFilter(LineFilterExpr),
}

/// A line filter: one operator applied to one or more `or`-joined operands. For a positive
/// operator a line passes when any operand matches; for a negative one it is dropped when any
/// operand matches (each operand inherits the operator, as in Loki).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineFilterExpr {
    pub op: FilterOp,
    /// At least one.
    pub operands: Vec<FilterOperand>,
}

/// One operand of a line filter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FilterOperand {
    /// A string: the substring for `|=`/`!=`, the regex source for `|~`/`!~`, the pattern for
    /// `|>`/`!>`.
    Text(String),
    /// `ip("...")`: an address, CIDR prefix or range (`|=` and `!=` only).
    Ip(String),
}

impl From<&str> for FilterOperand {
    fn from(s: &str) -> Self {
        FilterOperand::Text(s.to_string())
    }
}

impl From<String> for FilterOperand {
    fn from(s: String) -> Self {
        FilterOperand::Text(s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FilterOp {
    /// `|=`: the line contains the substring.
    Contains,
    /// `!=`: the line does not contain the substring.
    NotContains,
    /// `|~`: the (unanchored) regex matches somewhere in the line.
    Regex,
    /// `!~`: the regex matches nowhere in the line.
    NotRegex,
    /// `|>`: the line matches the pattern (literals and `<_>` wildcards).
    Pattern,
    /// `!>`: the line does not match the pattern.
    NotPattern,
}

impl FilterOp {
    pub fn as_str(self) -> &'static str {
        match self {
            FilterOp::Contains => "|=",
            FilterOp::NotContains => "!=",
            FilterOp::Regex => "|~",
            FilterOp::NotRegex => "!~",
            FilterOp::Pattern => "|>",
            FilterOp::NotPattern => "!>",
        }
    }

    pub fn is_negative(self) -> bool {
        matches!(self, FilterOp::NotContains | FilterOp::NotRegex | FilterOp::NotPattern)
    }

    pub fn is_regex(self) -> bool {
        matches!(self, FilterOp::Regex | FilterOp::NotRegex)
    }

    pub fn is_pattern(self) -> bool {
        matches!(self, FilterOp::Pattern | FilterOp::NotPattern)
    }
}

impl LineFilterExpr {
    /// A filter with a single operand.
    pub fn new(op: FilterOp, operand: impl Into<FilterOperand>) -> LineFilterExpr {
        LineFilterExpr {
            op,
            operands: vec![operand.into()],
        }
    }
}

impl LogExpr {
    /// The line filters of the pipeline, in order.
    pub fn line_filters(&self) -> impl Iterator<Item = &LineFilterExpr> {
        self.stages.iter().map(|s| match s {
            Stage::LineFilter(f) => f,
        })
    }
}
