//! The canonical printed form of the AST (Loki's `String()` style): `{a="x", b!~"y"} |= "z" or "w"`.
//! Strings are printed double-quoted with Go escapes, so parsing the output yields the same AST.

use std::fmt::{self, Display, Formatter};

use lode_model::labels::write_quoted;

use crate::ast::{Expr, FilterOp, FilterOperand, LineFilterExpr, LogExpr, Stage};
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
            FilterOperand::Ip(s) => {
                f.write_str("ip(")?;
                write_quoted(f, s)?;
                f.write_str(")")
            }
        }
    }
}

impl Display for Stage {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Stage::LineFilter(l) => l.fmt(f),
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

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Log(l) => l.fmt(f),
        }
    }
}
