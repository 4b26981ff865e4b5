//! The canonical printed form of the AST (Loki's `String()` style): `{a="x", b!~"y"} |= "z" or "w"`,
//! `sum by (app) (rate({a="x"} | json [5m]))`. Strings are printed double-quoted with Go escapes,
//! numbers in their shortest exact form, durations as Go durations (`1h30m`, `250ms`), byte sizes
//! with the largest exact unit (`1KiB`, `5MB`), and parentheses only where precedence needs them,
//! so parsing the output yields the same AST.

use std::fmt::{self, Display, Formatter};
use std::time::Duration;

use lode_model::labels::write_quoted;

use crate::ast::{
    BinOpExpr, CmpOp, Expr, ExtractParam, FilterOp, FilterOperand, GroupSide, Grouping, LabelFilterExpr, LabelFmt,
    LabelFmtSource, LabelReplace, LabelSelection, LineFilterExpr, LogExpr, LogRange, ParserStage, RangeAggregation,
    Stage, Unwrap, UnwrapConversion, VectorAggregation, VectorMatching,
};
use crate::matcher::{MatchOp, Matcher, Selector};

impl Display for MatchOp {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Display for Matcher {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.name(), self.op())?;
        write_quoted(f, self.value())
    }
}

impl Display for Selector {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, m) in self.matchers().iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{m}")?;
        }
        f.write_str("}")
    }
}

impl Display for FilterOp {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Display for LineFilterExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{} ", self.op)?;
        for (i, operand) in self.operands.iter().enumerate() {
            if i > 0 {
                f.write_str(" or ")?;
            }
            write!(f, "{operand}")?;
        }
        Ok(())
    }
}

impl Display for FilterOperand {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            FilterOperand::Text(s) => write_quoted(f, s),
            FilterOperand::Ip(s) => write_ip(f, s),
        }
    }
}

fn write_ip(f: &mut Formatter<'_>, pattern: &str) -> fmt::Result {
    f.write_str("ip(")?;
    write_quoted(f, pattern)?;
    f.write_str(")")
}

/// Writes items separated by `, `.
fn write_list<T>(
    f: &mut Formatter<'_>,
    items: &[T],
    mut each: impl FnMut(&mut Formatter<'_>, &T) -> fmt::Result,
) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        each(f, item)?;
    }
    Ok(())
}

/// `(a, b)`.
fn write_labels(f: &mut Formatter<'_>, labels: &[String]) -> fmt::Result {
    f.write_str("(")?;
    write_list(f, labels, |f, l| f.write_str(l))?;
    f.write_str(")")
}

impl Display for ExtractParam {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label)?;
        if let Some(path) = &self.path {
            f.write_str("=")?;
            write_quoted(f, path)?;
        }
        Ok(())
    }
}

impl Display for ParserStage {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            ParserStage::Json(params) => {
                f.write_str("json")?;
                if !params.is_empty() {
                    f.write_str(" ")?;
                    write_list(f, params, |f, p| p.fmt(f))?;
                }
                Ok(())
            }
            ParserStage::Logfmt {
                strict,
                keep_empty,
                params,
            } => {
                f.write_str("logfmt")?;
                if *strict {
                    f.write_str(" --strict")?;
                }
                if *keep_empty {
                    f.write_str(" --keep-empty")?;
                }
                if !params.is_empty() {
                    f.write_str(" ")?;
                    write_list(f, params, |f, p| p.fmt(f))?;
                }
                Ok(())
            }
            ParserStage::Regexp(re) => {
                f.write_str("regexp ")?;
                write_quoted(f, re)
            }
            ParserStage::Pattern(p) => {
                f.write_str("pattern ")?;
                write_quoted(f, p)
            }
            ParserStage::Unpack => f.write_str("unpack"),
        }
    }
}

impl Display for CmpOp {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl LabelFilterExpr {
    fn precedence(&self) -> u8 {
        match self {
            LabelFilterExpr::Or(..) => 1,
            LabelFilterExpr::And(..) => 2,
            _ => 3,
        }
    }

    /// Prints with parentheses when this node binds looser than `min` requires.
    fn write_at(&self, f: &mut Formatter<'_>, min: u8) -> fmt::Result {
        let paren = self.precedence() < min;
        if paren {
            f.write_str("(")?;
        }
        match self {
            LabelFilterExpr::And(l, r) => {
                l.write_at(f, 2)?;
                f.write_str(" and ")?;
                r.write_at(f, 3)?;
            }
            LabelFilterExpr::Or(l, r) => {
                l.write_at(f, 1)?;
                f.write_str(" or ")?;
                r.write_at(f, 2)?;
            }
            LabelFilterExpr::Matcher(m) => m.fmt(f)?,
            LabelFilterExpr::Number { label, op, value } => write!(f, "{label}{op}{}", Num(*value))?,
            LabelFilterExpr::Duration { label, op, value } => write!(f, "{label}{op}{}", Dur(*value))?,
            LabelFilterExpr::Bytes { label, op, value } => write!(f, "{label}{op}{}", Bytes(*value))?,
            LabelFilterExpr::Ip {
                label,
                negated,
                pattern,
            } => {
                write!(f, "{label}{}", if *negated { "!=" } else { "=" })?;
                write_ip(f, pattern)?;
            }
        }
        if paren {
            f.write_str(")")?;
        }
        Ok(())
    }
}

impl Display for LabelFilterExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        self.write_at(f, 0)
    }
}

impl Display for LabelFmt {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}=", self.dst)?;
        match &self.src {
            LabelFmtSource::Rename(src) => f.write_str(src),
            LabelFmtSource::Template(t) => write_quoted(f, t),
        }
    }
}

impl Display for LabelSelection {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            LabelSelection::Name(n) => f.write_str(n),
            LabelSelection::Matcher(m) => m.fmt(f),
        }
    }
}

impl Display for Stage {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Stage::LineFilter(l) => l.fmt(f),
            Stage::Parser(p) => write!(f, "| {p}"),
            Stage::LabelFilter(l) => write!(f, "| {l}"),
            Stage::LineFormat(t) => {
                f.write_str("| line_format ")?;
                write_quoted(f, t)
            }
            Stage::LabelFormat(fmts) => {
                f.write_str("| label_format ")?;
                write_list(f, fmts, |f, l| l.fmt(f))
            }
            Stage::Drop(sel) => {
                f.write_str("| drop ")?;
                write_list(f, sel, |f, s| s.fmt(f))
            }
            Stage::Keep(sel) => {
                f.write_str("| keep ")?;
                write_list(f, sel, |f, s| s.fmt(f))
            }
            Stage::Decolorize => f.write_str("| decolorize"),
        }
    }
}

impl Display for LogExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        self.selector.fmt(f)?;
        for s in &self.stages {
            write!(f, " {s}")?;
        }
        Ok(())
    }
}

impl Display for Unwrap {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str("| unwrap ")?;
        match self.conversion {
            UnwrapConversion::None => f.write_str(&self.label)?,
            UnwrapConversion::Duration => write!(f, "duration({})", self.label)?,
            UnwrapConversion::DurationSeconds => write!(f, "duration_seconds({})", self.label)?,
            UnwrapConversion::Bytes => write!(f, "bytes({})", self.label)?,
        }
        for p in &self.post_filters {
            write!(f, " | {p}")?;
        }
        Ok(())
    }
}

impl Display for LogRange {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        self.log.fmt(f)?;
        if let Some(u) = &self.unwrap {
            write!(f, " {u}")?;
        }
        if !self.log.stages.is_empty() || self.unwrap.is_some() {
            f.write_str(" ")?;
        }
        write!(f, "[{}]", Dur(self.range))?;
        if let Some(o) = self.offset {
            write!(f, " offset {}", Dur(o))?;
        }
        Ok(())
    }
}

impl Display for Grouping {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(if self.without { "without " } else { "by " })?;
        write_labels(f, &self.labels)
    }
}

impl Display for RangeAggregation {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.op.as_str())?;
        if let Some(p) = self.param {
            write!(f, "{}, ", Num(p))?;
        }
        write!(f, "{})", self.range)?;
        if let Some(g) = &self.grouping {
            write!(f, " {g}")?;
        }
        Ok(())
    }
}

impl Display for VectorAggregation {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.op.as_str())?;
        if let Some(g) = &self.grouping {
            write!(f, " {g} ")?;
        }
        f.write_str("(")?;
        if let Some(k) = self.param {
            write!(f, "{k}, ")?;
        }
        write!(f, "{})", self.inner)
    }
}

impl Display for VectorMatching {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(if self.on { "on " } else { "ignoring " })?;
        write_labels(f, &self.labels)?;
        match &self.group {
            None => Ok(()),
            Some(GroupSide::Left(l)) => {
                f.write_str(" group_left ")?;
                write_labels(f, l)
            }
            Some(GroupSide::Right(l)) => {
                f.write_str(" group_right ")?;
                write_labels(f, l)
            }
        }
    }
}

/// Binding strength of a node when it is an operand: binary operations have their operator's,
/// everything else binds tightest.
fn expr_precedence(e: &Expr) -> u8 {
    match e {
        Expr::BinOp(b) => b.op.precedence(),
        _ => u8::MAX,
    }
}

/// Writes `e`, in parentheses when it binds looser than `min`.
fn write_operand(f: &mut Formatter<'_>, e: &Expr, min: u8) -> fmt::Result {
    if expr_precedence(e) < min {
        write!(f, "({e})")
    } else {
        e.fmt(f)
    }
}

impl Display for BinOpExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let p = self.op.precedence();
        let (lmin, rmin) = if self.op.is_right_assoc() {
            (p + 1, p)
        } else {
            (p, p + 1)
        };
        write_operand(f, &self.lhs, lmin)?;
        write!(f, " {}", self.op.as_str())?;
        if self.modifier.return_bool {
            f.write_str(" bool")?;
        }
        if let Some(m) = &self.modifier.matching {
            write!(f, " {m}")?;
        }
        f.write_str(" ")?;
        write_operand(f, &self.rhs, rmin)
    }
}

impl Display for LabelReplace {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "label_replace({}", self.inner)?;
        for s in [&self.dst, &self.replacement, &self.src, &self.regex] {
            f.write_str(", ")?;
            write_quoted(f, s)?;
        }
        f.write_str(")")
    }
}

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Log(l) => l.fmt(f),
            Expr::RangeAggregation(r) => r.fmt(f),
            Expr::VectorAggregation(v) => v.fmt(f),
            Expr::BinOp(b) => b.fmt(f),
            Expr::Literal(n) => Num(*n).fmt(f),
            Expr::Vector(n) => write!(f, "vector({})", Num(*n)),
            Expr::LabelReplace(l) => l.fmt(f),
        }
    }
}

/// A finite number in its shortest exact form: `1`, `-2.5`, `1e300`, `1.5e-7`.
pub(crate) struct Num(pub f64);

impl Display for Num {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let v = self.0;
        if v.fract() == 0.0 && v.abs() < 1e15 {
            write!(f, "{}", v as i64)
        } else {
            write!(f, "{v:?}")
        }
    }
}

/// A duration as Go prints and parses it, without zero parts: `1h30m`, `1m48s400ms`, `0s`.
pub(crate) struct Dur(pub Duration);

impl Display for Dur {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let mut ns = self.0.as_nanos();
        if ns == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in [
            ("h", 3_600_000_000_000u128),
            ("m", 60_000_000_000),
            ("s", 1_000_000_000),
            ("ms", 1_000_000),
            ("us", 1_000),
            ("ns", 1),
        ] {
            if ns >= size {
                write!(f, "{}{unit}", ns / size)?;
                ns %= size;
            }
        }
        Ok(())
    }
}

/// A byte count with the largest unit that divides it exactly: `1KiB`, `5MB`, `1500B`.
pub(crate) struct Bytes(pub u64);

impl Display for Bytes {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let v = self.0;
        if v != 0 {
            for k in (1..=6u32).rev() {
                for (base, suffix) in [(1024u64, "iB"), (1000u64, "B")] {
                    let size = base.pow(k);
                    if v.is_multiple_of(size) {
                        let prefix = ['K', 'M', 'G', 'T', 'P', 'E'][k as usize - 1];
                        return write!(f, "{}{prefix}{suffix}", v / size);
                    }
                }
            }
        }
        write!(f, "{v}B")
    }
}
