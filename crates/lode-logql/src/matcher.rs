//! Label matchers and stream selectors: `{app="api", env!="dev", pod=~"api-.*"}`.
//!
//! Semantics are Prometheus' as Loki applies them: a missing label reads as `""`, regexes are
//! fully anchored and use Go's RE2 dialect (see [`crate::regex_compat`]), and a selector must
//! hold at least one matcher that rejects the empty string, or it would select every stream.

use std::fmt;

use lode_model::Labels;
use lode_model::labels::is_valid_label_name;
use regex::bytes::Regex;

use crate::error::{LogqlError, Result};
use crate::{literal, regex_compat};

/// Loki's message for a selector that would match every stream.
pub const EMPTY_COMPATIBLE_SELECTOR: &str = "queries require at least one regexp or equality matcher that does not \
     have an empty-compatible value. For instance, app=~\".*\" does not meet this requirement, but app=~\".+\" will";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchOp {
    /// `=`
    Eq,
    /// `!=`
    Neq,
    /// `=~`
    Re,
    /// `!~`
    Nre,
}

impl MatchOp {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Eq => "=",
            MatchOp::Neq => "!=",
            MatchOp::Re => "=~",
            MatchOp::Nre => "!~",
        }
    }

    pub fn is_negative(self) -> bool {
        matches!(self, MatchOp::Neq | MatchOp::Nre)
    }

    pub fn is_regex(self) -> bool {
        matches!(self, MatchOp::Re | MatchOp::Nre)
    }
}

/// How a matcher tests a value, decided once when it is built.
#[derive(Clone)]
enum Test {
    Equal(String),
    /// A regex that is an alternation of literals (`api|web`): compared as strings.
    OneOf(Vec<String>),
    /// Anchored regex, `^(?s:re)$` as Prometheus compiles it (`.` also matches a newline).
    Regex(Regex),
}

/// One `name op "value"` matcher, compiled. Equality compares name, op and value text only.
#[derive(Clone)]
pub struct Matcher {
    name: String,
    op: MatchOp,
    value: String,
    test: Test,
    matches_empty: bool,
}

impl Matcher {
    /// Builds a matcher, compiling regexes (Go dialect, anchored, size-bounded). The error is a
    /// message without position; the parser places it.
    pub fn new(name: impl Into<String>, op: MatchOp, value: impl Into<String>) -> Result<Matcher, String> {
        let (name, value) = (name.into(), value.into());
        if !is_valid_label_name(&name) {
            return Err(format!("invalid label name: '{name}'"));
        }
        let test = if !op.is_regex() {
            Test::Equal(value.clone())
        } else if let Some(set) = literal::alternation(&value) {
            Test::OneOf(set)
        } else {
            Test::Regex(regex_compat::compile(&format!("^(?s:{value})$"))?)
        };
        let mut m = Matcher {
            name,
            op,
            value,
            test,
            matches_empty: false,
        };
        m.matches_empty = m.matches("");
        Ok(m)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn op(&self) -> MatchOp {
        self.op
    }

    /// The value as written (the regex source for `=~`/`!~`).
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Whether `value` satisfies the matcher. Pass `""` for a label the stream does not have.
    pub fn matches(&self, value: &str) -> bool {
        let hit = match &self.test {
            Test::Equal(v) => v == value,
            Test::OneOf(set) => set.iter().any(|v| v == value),
            Test::Regex(re) => re.is_match(value.as_bytes()),
        };
        hit != self.op.is_negative()
    }

    /// Whether the matcher accepts `""`, i.e. also selects streams without the label. An index
    /// cannot answer such a matcher from its postings alone.
    pub fn matches_empty(&self) -> bool {
        self.matches_empty
    }

    /// For `=` the one value, for a literal alternation `=~"a|b"` its values: an index can look
    /// these up directly instead of testing every value of the label. (For `!=`/`!~` the values
    /// to exclude.)
    pub fn literal_values(&self) -> Option<Vec<&str>> {
        match &self.test {
            Test::Equal(v) => Some(vec![v.as_str()]),
            Test::OneOf(set) => Some(set.iter().map(String::as_str).collect()),
            Test::Regex(_) => None,
        }
    }
}

impl PartialEq for Matcher {
    fn eq(&self, o: &Self) -> bool {
        self.name == o.name && self.op == o.op && self.value == o.value
    }
}

impl Eq for Matcher {}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Matcher({self})")
    }
}

/// A stream selector: the AND of its matchers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selector {
    matchers: Vec<Matcher>,
}

impl Selector {
    /// A selector over these matchers, in the order written. Not validated: see [`Selector::validate`].
    pub fn new(matchers: Vec<Matcher>) -> Selector {
        Selector { matchers }
    }

    pub fn matchers(&self) -> &[Matcher] {
        &self.matchers
    }

    /// Loki's rule: at least one matcher must reject the empty string, so that a query never
    /// selects every stream of a tenant.
    pub fn validate(&self) -> Result<()> {
        if self.matchers.iter().all(Matcher::matches_empty) {
            return Err(LogqlError::Validation(EMPTY_COMPATIBLE_SELECTOR.to_string()));
        }
        Ok(())
    }

    /// Whether a stream with these labels is selected; a missing label reads as `""`.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.matches_with(|name| labels.get(name))
    }

    /// [`Selector::matches`] over any label lookup (an index entry, a builder...).
    pub fn matches_with<'a>(&self, mut get: impl FnMut(&str) -> Option<&'a str>) -> bool {
        self.matchers.iter().all(|m| m.matches(get(m.name()).unwrap_or("")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, op: MatchOp, v: &str) -> Matcher {
        Matcher::new(name, op, v).unwrap()
    }

    #[test]
    fn regex_matchers_are_fully_anchored() {
        let api = m("app", MatchOp::Re, "api|check");
        assert!(api.matches("api") && api.matches("check"));
        assert!(!api.matches("checkout"));
        assert!(!api.matches("xapi"));
        let re = m("app", MatchOp::Re, "ap.|chec[k]");
        assert!(re.matches("api") && re.matches("check") && !re.matches("checkout") && !re.matches("apis"));
        let not = m("app", MatchOp::Nre, "api|check");
        assert!(not.matches("checkout") && !not.matches("api"));
        // The anchors wrap the whole alternation, not just its ends.
        assert!(!m("a", MatchOp::Re, "x|y.*").matches("zx"));
        // Prometheus compiles `^(?s:re)$`: `.` crosses newlines in label values.
        assert!(m("a", MatchOp::Re, "x.y").matches("x\ny"));
    }

    #[test]
    fn go_perl_classes_are_ascii() {
        let d = m("n", MatchOp::Re, r"\d+");
        assert!(d.matches("123"));
        assert!(!d.matches("١٢٣"));
        assert!(m("n", MatchOp::Re, r"(?i)API").matches("api"));
    }

    #[test]
    fn missing_labels_read_as_empty() {
        let labels = Labels::parse(r#"{app="api"}"#).unwrap();
        let sel = |ms: Vec<Matcher>| Selector::new(ms).matches(&labels);
        assert!(sel(vec![m("app", MatchOp::Eq, "api"), m("x", MatchOp::Eq, "")]));
        assert!(sel(vec![m("app", MatchOp::Eq, "api"), m("x", MatchOp::Nre, "a")]));
        assert!(sel(vec![m("app", MatchOp::Eq, "api"), m("x", MatchOp::Neq, "y")]));
        assert!(!sel(vec![m("app", MatchOp::Eq, "api"), m("x", MatchOp::Re, ".+")]));
        assert!(!sel(vec![m("app", MatchOp::Neq, "api")]));
        let s = Selector::new(vec![m("app", MatchOp::Eq, "api"), m("x", MatchOp::Eq, "")]);
        assert!(s.matches_with(|n| (n == "app").then_some("api")));
    }

    #[test]
    fn empty_compatible_selectors_are_rejected() {
        for ms in [
            vec![],
            vec![m("app", MatchOp::Eq, "")],
            vec![m("app", MatchOp::Re, ".*")],
            vec![m("app", MatchOp::Neq, "y")],
            vec![m("app", MatchOp::Nre, "y"), m("b", MatchOp::Re, "x|")],
        ] {
            let err = Selector::new(ms).validate().unwrap_err();
            assert_eq!(err.to_string(), format!("parse error : {EMPTY_COMPATIBLE_SELECTOR}"));
        }
        assert!(Selector::new(vec![m("app", MatchOp::Re, ".+")]).validate().is_ok());
        assert!(
            Selector::new(vec![m("a", MatchOp::Re, ".*"), m("b", MatchOp::Eq, "x")])
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn exposes_what_an_index_needs() {
        let eq = m("app", MatchOp::Eq, "api");
        assert_eq!(
            (eq.name(), eq.matches_empty(), eq.literal_values()),
            ("app", false, Some(vec!["api"]))
        );
        assert_eq!(m("a", MatchOp::Re, "x|y").literal_values(), Some(vec!["x", "y"]));
        assert_eq!(m("a", MatchOp::Re, "x.*").literal_values(), None);
        assert!(m("a", MatchOp::Nre, "x").matches_empty());
        assert!(Matcher::new("9a", MatchOp::Eq, "x").is_err());
        assert!(
            Matcher::new("a", MatchOp::Re, "(")
                .unwrap_err()
                .starts_with("error parsing regexp")
        );
    }
}
