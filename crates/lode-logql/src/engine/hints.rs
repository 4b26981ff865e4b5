//! Which labels the stages after a parser read, so the parser can be given an
//! [`ExtractHint`]. The analysis only ever over-approximates: a stage it cannot see through
//! (templates) means "every label", and then no hint is given.

use std::collections::BTreeSet;

use crate::ast::{LabelFilterExpr, LabelFmtSource, LabelSelection, ParserStage, Stage};
use crate::stages::{ERROR_DETAILS_LABEL, ERROR_LABEL, ExtractHint};

/// What is read downstream of a point in a pipeline.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Needs {
    /// Every label (a log query's output, a metric series without a pushed-down `by`, templates).
    All,
    /// Only these names; `errors` when `__error__` is observable (filters on it, typed filters
    /// that let erroring lines through, unwrap).
    Some { names: BTreeSet<String>, errors: bool },
}

impl Needs {
    pub(super) fn none() -> Needs {
        Needs::Some {
            names: BTreeSet::new(),
            errors: false,
        }
    }

    pub(super) fn add(&mut self, name: &str) {
        if let Needs::Some { names, errors } = self {
            if name == ERROR_LABEL || name == ERROR_DETAILS_LABEL {
                *errors = true;
            }
            names.insert(name.to_string());
        }
    }

    pub(super) fn add_errors(&mut self) {
        if let Needs::Some { errors, .. } = self {
            *errors = true;
        }
    }

    pub(super) fn add_label_filter(&mut self, f: &LabelFilterExpr) {
        match f {
            LabelFilterExpr::And(a, b) | LabelFilterExpr::Or(a, b) => {
                self.add_label_filter(a);
                self.add_label_filter(b);
            }
            LabelFilterExpr::Matcher(m) => self.add(m.name()),
            // Typed filters let a line that already carries an error through.
            LabelFilterExpr::Number { label, .. }
            | LabelFilterExpr::Duration { label, .. }
            | LabelFilterExpr::Bytes { label, .. }
            | LabelFilterExpr::Ip { label, .. } => {
                self.add(label);
                self.add_errors();
            }
        }
    }

    /// The hint a parser followed by these needs may use.
    pub(super) fn hint(&self) -> Option<ExtractHint> {
        match self {
            Needs::All => None,
            Needs::Some { names, errors } => ExtractHint::new(names.iter().cloned(), *errors),
        }
    }
}

/// `downstream` plus whatever `stages` read.
pub(super) fn needs_after(stages: &[&Stage], downstream: &Needs) -> Needs {
    let mut needs = downstream.clone();
    for s in stages {
        match s {
            Stage::LineFilter(_) | Stage::Parser(_) | Stage::Decolorize => {}
            Stage::LabelFilter(f) => needs.add_label_filter(f),
            Stage::LineFormat(_) => needs = Needs::All,
            Stage::LabelFormat(ops) => {
                for op in ops {
                    match &op.src {
                        LabelFmtSource::Rename(src) => {
                            needs.add(src);
                            needs.add(&op.dst);
                        }
                        LabelFmtSource::Template(_) => needs = Needs::All,
                    }
                }
            }
            Stage::Drop(sel) | Stage::Keep(sel) => {
                for s in sel {
                    match s {
                        LabelSelection::Name(n) => needs.add(n),
                        LabelSelection::Matcher(m) => needs.add(m.name()),
                    }
                }
            }
        }
    }
    needs
}

/// Whether `stage` is a parser that takes hints: `| json` and `| logfmt` without parameters.
pub(super) fn hintable(stage: &Stage) -> bool {
    matches!(
        stage,
        Stage::Parser(ParserStage::Json(ps)) if ps.is_empty()
    ) || matches!(stage, Stage::Parser(ParserStage::Logfmt { params, .. }) if params.is_empty())
}
