//! The LogQL syntax tree: every construct of Loki's grammar has a typed node, so evaluation can
//! match on it without re-reading text.
//!
//! - [`Expr`] is a whole query: a log query ([`LogExpr`]) or a metric expression
//!   ([`RangeAggregation`] over a [`LogRange`], [`VectorAggregation`], [`BinOpExpr`], number
//!   literals, `vector(n)`, [`LabelReplace`]).
//! - [`Stage`] is one step of a log pipeline: line filters, parsers ([`ParserStage`]), label
//!   filters ([`LabelFilterExpr`]), `line_format`, `label_format` ([`LabelFmt`]), `drop`/`keep`
//!   ([`LabelSelection`]) and `decolorize`. `| unwrap` is not a stage: it only exists inside a
//!   range aggregation's log range ([`Unwrap`]), followed by label filters only.
//!
//! The parser validates while it builds (regexes compile, templates parse with known functions,
//! patterns have captures, aggregations take the grouping/unwrap/parameter Loki allows), so a
//! tree that came out of [`crate::parse_expr`] is runnable. The canonical printer
//! ([`std::fmt::Display`]) prints a tree so that parsing the text gives the same tree back.

use std::time::Duration;

use crate::matcher::{Matcher, Selector};

/// A parsed LogQL expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A log query: `{app="api"} |= "error"`.
    Log(LogExpr),
    /// `count_over_time({..} [5m])`, `quantile_over_time(0.9, {..} | unwrap x [1m]) by (a)`.
    RangeAggregation(RangeAggregation),
    /// `sum by (a) (..)`, `topk(5, ..)`.
    VectorAggregation(VectorAggregation),
    /// `a + on (x) group_left b`, `a > bool 1`, `a or vector(0)`.
    BinOp(BinOpExpr),
    /// A number literal: `1`, `-2.5`, `1e3`.
    Literal(f64),
    /// `vector(1)`.
    Vector(f64),
    /// `label_replace(expr, "dst", "replacement", "src", "regex")`.
    LabelReplace(LabelReplace),
}

impl Expr {
    /// True for the metric side of the language (everything but a log query).
    pub fn is_metric(&self) -> bool {
        !matches!(self, Expr::Log(_))
    }

    /// True for a number literal.
    pub fn is_literal(&self) -> bool {
        matches!(self, Expr::Literal(_))
    }
}

/// A stream selector followed by pipeline stages.
#[derive(Debug, Clone, PartialEq)]
pub struct LogExpr {
    pub selector: Selector,
    pub stages: Vec<Stage>,
}

/// One step of a log pipeline, applied in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Stage {
    /// `|= "a"`, `!~ "b" or "c"`...
    LineFilter(LineFilterExpr),
    /// `| json`, `| logfmt`, `| regexp ".."`, `| pattern ".."`, `| unpack`.
    Parser(ParserStage),
    /// `| status >= 500 and level="error"`.
    LabelFilter(LabelFilterExpr),
    /// `| line_format "{{.a}}"`: the template text (checked to parse).
    LineFormat(String),
    /// `| label_format dst=src, dst2="{{..}}"`: at least one, destinations distinct.
    LabelFormat(Vec<LabelFmt>),
    /// `| drop a, b="v"`: at least one.
    Drop(Vec<LabelSelection>),
    /// `| keep a, b="v"`: at least one.
    Keep(Vec<LabelSelection>),
    /// `| decolorize`.
    Decolorize,
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
        self.stages.iter().filter_map(|s| match s {
            Stage::LineFilter(f) => Some(f),
            _ => None,
        })
    }

    /// True when every stage is a line filter (what [`crate::Pipeline`] can run today).
    pub fn only_line_filters(&self) -> bool {
        self.stages.iter().all(|s| matches!(s, Stage::LineFilter(_)))
    }
}

// ---------------------------------------------------------------------------------------------
// Parsers and label stages

/// A parser stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParserStage {
    /// `| json` (no params: every field) or `| json a="x.y", b` (only these paths).
    Json(Vec<ExtractParam>),
    /// `| logfmt [--strict] [--keep-empty] [a, b="k"]`.
    Logfmt {
        strict: bool,
        keep_empty: bool,
        params: Vec<ExtractParam>,
    },
    /// `| regexp "(?P<name>..)"`: the regex source (≥1 named group, names distinct).
    Regexp(String),
    /// `| pattern "<a> <_>"`: the pattern (≥1 named capture, no adjacent captures).
    Pattern(String),
    /// `| unpack`.
    Unpack,
}

/// One requested field of `json`/`logfmt`: `label` alone (the field of that name) or
/// `label="path"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExtractParam {
    pub label: String,
    /// The JSON path (`a.b[0]`, `["k-1"]`) or logfmt key; `None` for the bare form.
    pub path: Option<String>,
}

/// A label filter expression: leaves joined by `and` (also written `,` or a space) and `or`;
/// `and` binds tighter. Parentheses only shape the tree.
#[derive(Debug, Clone, PartialEq)]
pub enum LabelFilterExpr {
    And(Box<LabelFilterExpr>, Box<LabelFilterExpr>),
    Or(Box<LabelFilterExpr>, Box<LabelFilterExpr>),
    /// `name = "x"`, `!=`, `=~`, `!~` (Prometheus matcher semantics).
    Matcher(Matcher),
    /// `name > 1.5` (float comparison).
    Number {
        label: String,
        op: CmpOp,
        value: f64,
    },
    /// `name > 250ms` (the value is parsed as a Go duration).
    Duration {
        label: String,
        op: CmpOp,
        value: Duration,
    },
    /// `name > 1KB` (the value is parsed with units); bytes.
    Bytes {
        label: String,
        op: CmpOp,
        value: u64,
    },
    /// `name = ip("10.0.0.0/8")`, `name != ip(..)`.
    Ip {
        label: String,
        negated: bool,
        pattern: String,
    },
}

/// Comparison of a numeric label filter (`=` and `==` are the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
}

impl CmpOp {
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Neq => "!=",
            CmpOp::Gt => ">",
            CmpOp::Gte => ">=",
            CmpOp::Lt => "<",
            CmpOp::Lte => "<=",
        }
    }
}

/// One `label_format` assignment.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LabelFmt {
    pub dst: String,
    pub src: LabelFmtSource,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LabelFmtSource {
    /// `dst=src`: rename (the source label is dropped).
    Rename(String),
    /// `dst="{{..}}"`: a template over the labels (sources kept).
    Template(String),
}

/// One operand of `drop`/`keep`: a label name, or a matcher that must hold for the label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelSelection {
    Name(String),
    Matcher(Matcher),
}

// ---------------------------------------------------------------------------------------------
// Metric expressions

/// A range aggregation: `op([param,] log_range) [grouping]`.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeAggregation {
    pub op: RangeOp,
    /// The quantile of `quantile_over_time` (required there, refused elsewhere).
    pub param: Option<f64>,
    pub range: LogRange,
    /// `by`/`without` after the parentheses; only for the ops in [`RangeOp::allows_grouping`].
    pub grouping: Option<Grouping>,
}

/// `{sel} | pipeline [| unwrap ..] [5m] [offset 1h]`.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRange {
    pub log: LogExpr,
    pub unwrap: Option<Unwrap>,
    pub range: Duration,
    pub offset: Option<Duration>,
}

/// `| unwrap [conv(]label[)]` and the label filters that may follow it.
#[derive(Debug, Clone, PartialEq)]
pub struct Unwrap {
    pub conversion: UnwrapConversion,
    pub label: String,
    pub post_filters: Vec<LabelFilterExpr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnwrapConversion {
    /// The value as a float.
    None,
    /// `duration(x)`: a Go duration, in seconds.
    Duration,
    /// `duration_seconds(x)`: the same as `duration`.
    DurationSeconds,
    /// `bytes(x)`: a size with units, in bytes.
    Bytes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RangeOp {
    CountOverTime,
    Rate,
    BytesOverTime,
    BytesRate,
    AbsentOverTime,
    RateCounter,
    SumOverTime,
    AvgOverTime,
    MinOverTime,
    MaxOverTime,
    StddevOverTime,
    StdvarOverTime,
    QuantileOverTime,
    FirstOverTime,
    LastOverTime,
}

impl RangeOp {
    pub const ALL: [RangeOp; 15] = [
        RangeOp::CountOverTime,
        RangeOp::Rate,
        RangeOp::BytesOverTime,
        RangeOp::BytesRate,
        RangeOp::AbsentOverTime,
        RangeOp::RateCounter,
        RangeOp::SumOverTime,
        RangeOp::AvgOverTime,
        RangeOp::MinOverTime,
        RangeOp::MaxOverTime,
        RangeOp::StddevOverTime,
        RangeOp::StdvarOverTime,
        RangeOp::QuantileOverTime,
        RangeOp::FirstOverTime,
        RangeOp::LastOverTime,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RangeOp::CountOverTime => "count_over_time",
            RangeOp::Rate => "rate",
            RangeOp::BytesOverTime => "bytes_over_time",
            RangeOp::BytesRate => "bytes_rate",
            RangeOp::AbsentOverTime => "absent_over_time",
            RangeOp::RateCounter => "rate_counter",
            RangeOp::SumOverTime => "sum_over_time",
            RangeOp::AvgOverTime => "avg_over_time",
            RangeOp::MinOverTime => "min_over_time",
            RangeOp::MaxOverTime => "max_over_time",
            RangeOp::StddevOverTime => "stddev_over_time",
            RangeOp::StdvarOverTime => "stdvar_over_time",
            RangeOp::QuantileOverTime => "quantile_over_time",
            RangeOp::FirstOverTime => "first_over_time",
            RangeOp::LastOverTime => "last_over_time",
        }
    }

    pub fn from_name(name: &str) -> Option<RangeOp> {
        RangeOp::ALL.into_iter().find(|op| op.as_str() == name)
    }

    /// Whether `by`/`without` may follow (Loki refuses it for the counting ops and sum).
    pub fn allows_grouping(self) -> bool {
        matches!(
            self,
            RangeOp::AvgOverTime
                | RangeOp::MinOverTime
                | RangeOp::MaxOverTime
                | RangeOp::StddevOverTime
                | RangeOp::StdvarOverTime
                | RangeOp::QuantileOverTime
                | RangeOp::FirstOverTime
                | RangeOp::LastOverTime
        )
    }

    /// Whether the op may read an unwrapped value.
    pub fn allows_unwrap(self) -> bool {
        !matches!(
            self,
            RangeOp::CountOverTime | RangeOp::BytesOverTime | RangeOp::BytesRate
        )
    }

    /// Whether the op needs an unwrapped value.
    pub fn requires_unwrap(self) -> bool {
        !matches!(
            self,
            RangeOp::CountOverTime
                | RangeOp::Rate
                | RangeOp::BytesOverTime
                | RangeOp::BytesRate
                | RangeOp::AbsentOverTime
        )
    }
}

/// `by (a, b)` or `without (a)`; `by ()` is one group.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Grouping {
    pub without: bool,
    pub labels: Vec<String>,
}

/// `op [grouping] ([param,] inner)` (the grouping may also follow the parentheses).
#[derive(Debug, Clone, PartialEq)]
pub struct VectorAggregation {
    pub op: VectorOp,
    /// `k` of `topk`/`bottomk` (required there, > 0; refused elsewhere).
    pub param: Option<u64>,
    pub grouping: Option<Grouping>,
    pub inner: Box<Expr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VectorOp {
    Sum,
    Avg,
    Min,
    Max,
    Count,
    Stddev,
    Stdvar,
    Topk,
    Bottomk,
    Sort,
    SortDesc,
}

impl VectorOp {
    pub const ALL: [VectorOp; 11] = [
        VectorOp::Sum,
        VectorOp::Avg,
        VectorOp::Min,
        VectorOp::Max,
        VectorOp::Count,
        VectorOp::Stddev,
        VectorOp::Stdvar,
        VectorOp::Topk,
        VectorOp::Bottomk,
        VectorOp::Sort,
        VectorOp::SortDesc,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            VectorOp::Sum => "sum",
            VectorOp::Avg => "avg",
            VectorOp::Min => "min",
            VectorOp::Max => "max",
            VectorOp::Count => "count",
            VectorOp::Stddev => "stddev",
            VectorOp::Stdvar => "stdvar",
            VectorOp::Topk => "topk",
            VectorOp::Bottomk => "bottomk",
            VectorOp::Sort => "sort",
            VectorOp::SortDesc => "sort_desc",
        }
    }

    pub fn from_name(name: &str) -> Option<VectorOp> {
        VectorOp::ALL.into_iter().find(|op| op.as_str() == name)
    }

    /// `topk` and `bottomk` take `k`.
    pub fn takes_param(self) -> bool {
        matches!(self, VectorOp::Topk | VectorOp::Bottomk)
    }
}

/// `lhs op [bool] [on|ignoring (..) [group_left|group_right (..)]] rhs`.
#[derive(Debug, Clone, PartialEq)]
pub struct BinOpExpr {
    pub op: BinOp,
    pub modifier: BinOpModifier,
    pub lhs: Box<Expr>,
    pub rhs: Box<Expr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
    And,
    Or,
    Unless,
}

impl BinOp {
    pub fn as_str(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Mod => "%",
            BinOp::Pow => "^",
            BinOp::Eq => "==",
            BinOp::Neq => "!=",
            BinOp::Gt => ">",
            BinOp::Gte => ">=",
            BinOp::Lt => "<",
            BinOp::Lte => "<=",
            BinOp::And => "and",
            BinOp::Or => "or",
            BinOp::Unless => "unless",
        }
    }

    /// Binding strength, as in Loki (and PromQL): `or` < `and unless` < comparisons < `+ -` <
    /// `* / %` < `^`.
    pub fn precedence(self) -> u8 {
        match self {
            BinOp::Or => 1,
            BinOp::And | BinOp::Unless => 2,
            BinOp::Eq | BinOp::Neq | BinOp::Gt | BinOp::Gte | BinOp::Lt | BinOp::Lte => 3,
            BinOp::Add | BinOp::Sub => 4,
            BinOp::Mul | BinOp::Div | BinOp::Mod => 5,
            BinOp::Pow => 6,
        }
    }

    /// Only `^` groups to the right.
    pub fn is_right_assoc(self) -> bool {
        self == BinOp::Pow
    }

    pub fn is_comparison(self) -> bool {
        self.precedence() == 3
    }

    /// `and`, `or`, `unless`.
    pub fn is_set(self) -> bool {
        matches!(self, BinOp::And | BinOp::Or | BinOp::Unless)
    }
}

/// The modifiers of a binary operation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct BinOpModifier {
    /// `bool`: comparisons return 0/1 instead of filtering.
    pub return_bool: bool,
    pub matching: Option<VectorMatching>,
}

/// `on (..)` / `ignoring (..)`, optionally with `group_left (..)` / `group_right (..)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VectorMatching {
    /// `on` when true, `ignoring` when false.
    pub on: bool,
    pub labels: Vec<String>,
    pub group: Option<GroupSide>,
}

/// Many-to-one matching and the extra labels to copy from the "one" side.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GroupSide {
    Left(Vec<String>),
    Right(Vec<String>),
}

/// `label_replace(inner, "dst", "replacement", "src", "regex")` (regex anchored).
#[derive(Debug, Clone, PartialEq)]
pub struct LabelReplace {
    pub inner: Box<Expr>,
    pub dst: String,
    pub replacement: String,
    pub src: String,
    pub regex: String,
}
