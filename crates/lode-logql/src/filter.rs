//! Compiled line filters. A [`Pipeline`] is built once per query and then tested against every
//! line a querier or ingester scans, so the work is front-loaded: substring needles become
//! `memchr::memmem::Finder`s, and regexes that are only literals (`|~ "error"`,
//! `|~ "warn|error"`, `|~ ".*timeout.*"`) become substring searches as in Loki; other regexes
//! are compiled once (unanchored, Go dialect, size-bounded).

use memchr::memmem::Finder;
use regex::bytes::Regex;

use crate::ast::{FilterOp, FilterOperand, LineFilterExpr, LogExpr, Stage};
use crate::error::{LogqlError, Result};
use crate::ip::IpFilter;
use crate::pattern::PatternFilter;
use crate::{literal, regex_compat};

/// One way a line can match an operand.
#[derive(Clone, Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "a query has a handful of leaves; keeping the finder inline saves a pointer chase per line"
)]
enum Leaf {
    Substring(Finder<'static>),
    Regex(Regex),
    Pattern(PatternFilter),
    Ip(IpFilter),
}

impl Leaf {
    #[inline]
    fn is_match(&self, line: &[u8]) -> bool {
        match self {
            Leaf::Substring(f) => f.find(line).is_some(),
            Leaf::Regex(re) => re.is_match(line),
            Leaf::Pattern(p) => p.matches(line),
            Leaf::Ip(ip) => ip.matches(line),
        }
    }
}

/// One compiled line filter stage: keeps a line when "any operand matches" differs from `negate`.
#[derive(Clone, Debug)]
pub struct LineFilter {
    negate: bool,
    any: Vec<Leaf>,
}

impl LineFilter {
    /// Compiles a filter. Regex errors come back as a message without position.
    pub fn new(expr: &LineFilterExpr) -> Result<LineFilter, String> {
        let mut any = Vec::with_capacity(expr.operands.len());
        for operand in &expr.operands {
            let operand = match operand {
                FilterOperand::Ip(pattern) => {
                    if !matches!(expr.op, FilterOp::Contains | FilterOp::NotContains) {
                        return Err("ip: invalid operation".to_string());
                    }
                    any.push(Leaf::Ip(IpFilter::new(pattern)?));
                    continue;
                }
                FilterOperand::Text(s) => s,
            };
            if expr.op.is_pattern() {
                any.push(Leaf::Pattern(PatternFilter::new(operand)?));
            } else if !expr.op.is_regex() {
                any.push(Leaf::Substring(Finder::new(operand.as_bytes()).into_owned()));
            } else if let Some(needles) = literal::unanchored_alternation(operand) {
                any.extend(
                    needles
                        .iter()
                        .map(|n| Leaf::Substring(Finder::new(n.as_bytes()).into_owned())),
                );
            } else {
                any.push(Leaf::Regex(regex_compat::compile(operand)?));
            }
        }
        Ok(LineFilter {
            negate: expr.op.is_negative(),
            any,
        })
    }

    /// Whether the line passes this filter.
    #[inline]
    pub fn matches(&self, line: &[u8]) -> bool {
        self.any.iter().any(|l| l.is_match(line)) != self.negate
    }

    /// The one substring every passing line contains, when the filter is a positive
    /// single-substring filter (`|= "x"`, or `|~ "x"` reduced to a literal).
    pub fn required_substring(&self) -> Option<&Finder<'static>> {
        match (self.negate, self.any.as_slice()) {
            (false, [Leaf::Substring(f)]) => Some(f),
            _ => None,
        }
    }
}

/// The compiled pipeline of a log query. Today: the AND of its line filters.
// Next issue: parsers and label stages make this a chain over (line, labels) with a
// `process(&mut self, ts, line, labels) -> Option<...>` method; line filters stay a fast
// prefix of it, which `matches` and `required_substrings` keep serving.
#[derive(Clone, Debug, Default)]
pub struct Pipeline {
    filters: Vec<LineFilter>,
}

impl Pipeline {
    /// Compiles the stages of a log query.
    pub fn new(expr: &LogExpr) -> Result<Pipeline> {
        let mut filters = Vec::with_capacity(expr.stages.len());
        for stage in &expr.stages {
            match stage {
                Stage::LineFilter(f) => filters.push(LineFilter::new(f).map_err(LogqlError::Validation)?),
                // Parsers, label filters and formatting run in `crate::stages` once wired in;
                // this pipeline refuses them rather than skipping them.
                other => {
                    return Err(LogqlError::Validation(format!(
                        "pipeline stage `{other}` not supported yet"
                    )));
                }
            }
        }
        Ok(Pipeline { filters })
    }

    /// Whether the line passes every stage.
    #[inline]
    pub fn matches(&self, line: &str) -> bool {
        self.matches_bytes(line.as_bytes())
    }

    /// [`Pipeline::matches`] over raw line bytes.
    #[inline]
    pub fn matches_bytes(&self, line: &[u8]) -> bool {
        self.filters.iter().all(|f| f.matches(line))
    }

    /// True when every line passes (no filters), so a scanner can skip testing.
    pub fn is_noop(&self) -> bool {
        self.filters.is_empty()
    }

    pub fn filters(&self) -> &[LineFilter] {
        &self.filters
    }

    /// When the whole pipeline is positive substring filters (`|= "a" |= "b"`), the needles a
    /// line must all contain (empty needles left out; `Some(vec![])` means every line passes).
    /// A chunk scanner can memmem a block's contiguous line bytes for the rarest one and skip
    /// blocks without it. `None` when any stage is something else.
    pub fn required_substrings(&self) -> Option<Vec<&Finder<'static>>> {
        let mut out = Vec::with_capacity(self.filters.len());
        for f in &self.filters {
            let finder = f.required_substring()?;
            if !finder.needle().is_empty() {
                out.push(finder);
            }
        }
        Some(out)
    }

    /// One substring that every passing line contains, for a scanner's block-level `memmem`:
    /// the longest needle among the positive single-substring filters (longer is usually
    /// rarer). The other filters still run on the lines it finds.
    pub fn required_needle(&self) -> Option<&[u8]> {
        self.filters
            .iter()
            .filter_map(LineFilter::required_substring)
            .map(Finder::needle)
            .filter(|n| !n.is_empty())
            .max_by_key(|n| n.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lf(op: FilterOp, operands: &[&str]) -> LineFilter {
        LineFilter::new(&LineFilterExpr {
            op,
            operands: operands.iter().map(|s| FilterOperand::from(*s)).collect(),
        })
        .unwrap()
    }

    #[test]
    fn substring_filters_and_or() {
        let f = lf(FilterOp::Contains, &["err"]);
        assert!(f.matches(b"an error") && !f.matches(b"ok"));
        assert!(lf(FilterOp::Contains, &[""]).matches(b"anything"));
        let any = lf(FilterOp::Contains, &["a", "b"]);
        assert!(any.matches(b"xa") && any.matches(b"xb") && !any.matches(b"xc"));
        let none = lf(FilterOp::NotContains, &["a", "b"]);
        assert!(!none.matches(b"xa") && !none.matches(b"xb") && none.matches(b"xc"));
        assert!(!lf(FilterOp::Contains, &["Err"]).matches(b"error"), "case-sensitive");
    }

    #[test]
    fn regex_filters_are_unanchored_and_line_sensitive() {
        let f = lf(FilterOp::Regex, &["err(or)?"]);
        assert!(f.matches(b"an error here") && f.matches(b"err") && !f.matches(b"e r r"));
        assert!(lf(FilterOp::Regex, &["^start"]).matches(b"start x"));
        assert!(!lf(FilterOp::Regex, &["^start"]).matches(b"x start"));
        // `.` does not cross newlines in a multi-line entry unless (?s).
        assert!(!lf(FilterOp::Regex, &["a.b"]).matches(b"a\nb"));
        assert!(lf(FilterOp::Regex, &["(?s)a.b"]).matches(b"a\nb"));
        assert!(!lf(FilterOp::NotRegex, &["a", "b+c"]).matches(b"bbc"));
        assert!(lf(FilterOp::NotRegex, &["a", "b+c"]).matches(b"bd"));
        assert!(!lf(FilterOp::Regex, &[r"^\d+$"]).matches("١٢٣".as_bytes()));
        assert!(lf(FilterOp::Regex, &["(?i)ERROR"]).matches(b"an error"));
    }

    #[test]
    fn ip_filters() {
        let ip = |op, pats: &[&str]| {
            LineFilter::new(&LineFilterExpr {
                op,
                operands: pats.iter().map(|p| FilterOperand::Ip(p.to_string())).collect(),
            })
        };
        let f = ip(FilterOp::Contains, &["10.0.0.0/8", "::1"]).unwrap();
        assert!(f.matches(b"from 10.1.2.3") && f.matches(b"from ::1 up") && !f.matches(b"from 11.1.2.3"));
        let f = ip(FilterOp::NotContains, &["10.0.0.0/8"]).unwrap();
        assert!(!f.matches(b"from 10.1.2.3") && f.matches(b"from 11.1.2.3"));
        assert_eq!(
            ip(FilterOp::Regex, &["10.0.0.0/8"]).unwrap_err(),
            "ip: invalid operation"
        );
        assert!(f.required_substring().is_none());
    }

    #[test]
    fn pattern_filters() {
        let f = lf(FilterOp::Pattern, &["<_> GET <_>", "<_> POST <_>"]);
        assert!(f.matches(b"1.2.3.4 GET /x") && f.matches(b"1.2.3.4 POST /x") && !f.matches(b"1.2.3.4 PUT /x"));
        let f = lf(FilterOp::NotPattern, &["<_> GET <_>"]);
        assert!(!f.matches(b"1.2.3.4 GET /x") && f.matches(b"GET"));
        assert!(f.required_substring().is_none());
    }

    #[test]
    fn literal_regexes_become_substring_searches() {
        let f = lf(FilterOp::Regex, &["timeout"]);
        assert_eq!(f.required_substring().map(|f| f.needle()), Some(&b"timeout"[..]));
        let f = lf(FilterOp::Regex, &[".*warn|error"]);
        assert!(f.required_substring().is_none());
        assert!(f.matches(b"an error") && f.matches(b"warning"));
        let f = lf(FilterOp::Regex, &["warn|error"]);
        assert!(matches!(f.any.as_slice(), [Leaf::Substring(_), Leaf::Substring(_)]));
        assert!(f.matches(b"an error") && f.matches(b"warning") && !f.matches(b"info"));
        assert!(lf(FilterOp::Regex, &[r"a\.b"]).matches(b"xa.b") && !lf(FilterOp::Regex, &[r"a\.b"]).matches(b"axb"));
    }

    #[test]
    fn required_substrings_only_for_positive_substring_chains() {
        let p = |filters: Vec<LineFilter>| Pipeline { filters };
        let needles = |p: &Pipeline| {
            p.required_substrings()
                .map(|v| v.iter().map(|f| f.needle().to_vec()).collect::<Vec<_>>())
        };
        let chain = p(vec![
            lf(FilterOp::Contains, &["a"]),
            lf(FilterOp::Contains, &[""]),
            lf(FilterOp::Regex, &["b"]),
        ]);
        assert_eq!(needles(&chain), Some(vec![b"a".to_vec(), b"b".to_vec()]));
        assert_eq!(needles(&p(vec![])), Some(vec![]));
        assert_eq!(needles(&p(vec![lf(FilterOp::Contains, &["a", "b"])])), None);
        assert_eq!(needles(&p(vec![lf(FilterOp::NotContains, &["a"])])), None);
        assert_eq!(needles(&p(vec![lf(FilterOp::Regex, &["a+"])])), None);
    }

    #[test]
    fn required_needle_is_the_longest_positive_substring() {
        let p = |filters: Vec<LineFilter>| Pipeline { filters };
        let mixed = p(vec![
            lf(FilterOp::Contains, &["ab"]),
            lf(FilterOp::NotContains, &["longer-negative"]),
            lf(FilterOp::Regex, &["x+y"]),
            lf(FilterOp::Contains, &["abcd"]),
            lf(FilterOp::Contains, &["p", "q"]),
        ]);
        assert_eq!(mixed.required_needle(), Some(&b"abcd"[..]));
        assert_eq!(p(vec![lf(FilterOp::Contains, &[""])]).required_needle(), None);
        assert_eq!(p(vec![lf(FilterOp::Contains, &["a", "b"])]).required_needle(), None);
        assert_eq!(p(vec![]).required_needle(), None);
    }
}
