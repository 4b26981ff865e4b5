//! Label filters: `| status >= 500 and level=~"err.*" or duration > 1m48s`.
//!
//! Loki's rules: string matchers read a missing label as `""`; numeric, duration and bytes
//! filters drop a line without the label (even for `!=`) and keep a line whose value does not
//! parse, marking it `__error__=LabelFilterErr`; once a line carries an error only string
//! matchers filter it (the others let it through).

use super::labels::LabelsBuilder;
use super::{LABEL_FILTER_ERR, Stage};
use crate::ip::IpFilter;
use crate::matcher::Matcher;

/// Comparison of a numeric, duration or bytes filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `==` or `=`
    Eq,
    /// `!=`
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CmpOp {
    fn test<T: PartialOrd>(self, a: T, b: T) -> bool {
        match self {
            CmpOp::Eq => a == b,
            CmpOp::Ne => a != b,
            CmpOp::Gt => a > b,
            CmpOp::Ge => a >= b,
            CmpOp::Lt => a < b,
            CmpOp::Le => a <= b,
        }
    }
}

/// A label filter expression (a tree of `and`/`or` over leaves).
#[derive(Clone)]
pub enum LabelFilter {
    And(Box<LabelFilter>, Box<LabelFilter>),
    Or(Box<LabelFilter>, Box<LabelFilter>),
    /// `name = "v"`, `!=`, `=~` (anchored), `!~`.
    Matcher(Matcher),
    Numeric {
        name: String,
        op: CmpOp,
        value: f64,
    },
    /// Compared in nanoseconds.
    Duration {
        name: String,
        op: CmpOp,
        nanos: i128,
    },
    Bytes {
        name: String,
        op: CmpOp,
        bytes: u64,
    },
    /// `name = ip("..")` (`eq`) or `name != ip("..")`.
    Ip {
        name: String,
        eq: bool,
        filter: IpFilter,
    },
}

impl LabelFilter {
    pub fn matcher(m: Matcher) -> LabelFilter {
        LabelFilter::Matcher(m)
    }
    pub fn numeric(name: impl Into<String>, op: CmpOp, value: f64) -> LabelFilter {
        LabelFilter::Numeric {
            name: name.into(),
            op,
            value,
        }
    }
    /// `value` is a Go duration literal (`250ms`, `1m48.4s`).
    pub fn duration(name: impl Into<String>, op: CmpOp, value: &str) -> Result<LabelFilter, String> {
        let nanos = parse_go_duration(value).ok_or_else(|| format!("time: invalid duration {value:?}"))?;
        Ok(LabelFilter::Duration {
            name: name.into(),
            op,
            nanos,
        })
    }
    /// `value` is a humanized size (`1KB`, `10MiB`).
    pub fn bytes(name: impl Into<String>, op: CmpOp, value: &str) -> Result<LabelFilter, String> {
        let bytes = parse_bytes(value).ok_or_else(|| format!("invalid bytes value {value:?}"))?;
        Ok(LabelFilter::Bytes {
            name: name.into(),
            op,
            bytes,
        })
    }
    pub fn ip(name: impl Into<String>, eq: bool, pattern: &str) -> Result<LabelFilter, String> {
        Ok(LabelFilter::Ip {
            name: name.into(),
            eq,
            filter: IpFilter::new(pattern)?,
        })
    }
    pub fn and(a: LabelFilter, b: LabelFilter) -> LabelFilter {
        LabelFilter::And(Box::new(a), Box::new(b))
    }
    pub fn or(a: LabelFilter, b: LabelFilter) -> LabelFilter {
        LabelFilter::Or(Box::new(a), Box::new(b))
    }

    /// Whether the line passes; may set `__error__` on an unparsable value.
    pub fn test(&self, lbs: &mut LabelsBuilder) -> bool {
        match self {
            LabelFilter::And(a, b) => a.test(lbs) && b.test(lbs),
            LabelFilter::Or(a, b) => a.test(lbs) || b.test(lbs),
            LabelFilter::Matcher(m) => m.matches(lbs.get(m.name()).unwrap_or("")),
            LabelFilter::Numeric { name, op, value } => typed(lbs, name, |v| {
                v.trim()
                    .parse::<f64>()
                    .map(|x| op.test(x, *value))
                    .map_err(|_| format!("strconv.ParseFloat: parsing {v:?}: invalid syntax"))
            }),
            LabelFilter::Duration { name, op, nanos } => typed(lbs, name, |v| {
                parse_go_duration(v)
                    .map(|d| op.test(d, *nanos))
                    .ok_or_else(|| format!("time: invalid duration {v:?}"))
            }),
            LabelFilter::Bytes { name, op, bytes } => typed(lbs, name, |v| {
                parse_bytes(v)
                    .map(|b| op.test(b, *bytes))
                    .ok_or_else(|| format!("strconv.ParseFloat: parsing {v:?}: invalid syntax"))
            }),
            LabelFilter::Ip { name, eq, filter } => {
                if lbs.has_err() {
                    return true;
                }
                match lbs.get(name) {
                    None => false,
                    Some(v) => filter.matches(v.as_bytes()) == *eq,
                }
            }
        }
    }
}

/// A typed comparison: errors let the line through; a missing label drops it; an unparsable
/// value keeps it with `__error__=LabelFilterErr`.
fn typed(lbs: &mut LabelsBuilder, name: &str, cmp: impl FnOnce(&str) -> Result<bool, String>) -> bool {
    if lbs.has_err() {
        return true;
    }
    let Some(v) = lbs.get(name) else {
        return false;
    };
    match cmp(v) {
        Ok(keep) => keep,
        Err(details) => {
            lbs.set_err(LABEL_FILTER_ERR);
            lbs.set_err_details(&details);
            true
        }
    }
}

impl Stage for LabelFilter {
    fn process(&mut self, _ts: i64, _line: &mut String, lbs: &mut LabelsBuilder) -> bool {
        self.test(lbs)
    }
    fn box_clone(&self) -> Box<dyn Stage> {
        Box::new(self.clone())
    }
}

/// Go's `time.ParseDuration`, in nanoseconds: `[-+]?(\d*(\.\d*)?unit)+`, or `0`.
pub fn parse_go_duration(s: &str) -> Option<i128> {
    let (neg, mut rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_end];
        if num.is_empty() || num == "." {
            return None;
        }
        let n: f64 = num.parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += n * mult;
    }
    if total > i64::MAX as f64 {
        return None;
    }
    let t = total.round() as i128;
    Some(if neg { -t } else { t })
}

/// go-humanize's `ParseBytes`: a number (commas allowed) and an optional unit, SI (`kB`, `MB`)
/// or IEC (`KiB`, `MiB`), case-insensitive; a bare number is bytes.
pub fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let num_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ','))
        .unwrap_or(s.len());
    let num: String = s[..num_end].chars().filter(|&c| c != ',').collect();
    let n: f64 = num.parse().ok()?;
    let unit = s[num_end..].trim().to_ascii_lowercase();
    let mult: f64 = match unit.as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "ki" | "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mi" | "mib" => 1024f64.powi(2),
        "g" | "gb" => 1e9,
        "gi" | "gib" => 1024f64.powi(3),
        "t" | "tb" => 1e12,
        "ti" | "tib" => 1024f64.powi(4),
        "p" | "pb" => 1e15,
        "pi" | "pib" => 1024f64.powi(5),
        "e" | "eb" => 1e18,
        "ei" | "eib" => 1024f64.powi(6),
        _ => return None,
    };
    let v = n * mult;
    (v < u64::MAX as f64).then_some(v as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matcher::MatchOp;

    fn lbs(parsed: &[(&str, &str)]) -> LabelsBuilder {
        let mut b = LabelsBuilder::new(vec![("app".into(), "api".into())]);
        for (n, v) in parsed {
            b.set_parsed(n, v);
        }
        b
    }

    #[test]
    fn numeric() {
        let f = LabelFilter::numeric("status", CmpOp::Ge, 500.0);
        assert!(f.test(&mut lbs(&[("status", "503")])));
        assert!(!f.test(&mut lbs(&[("status", "200")])));
        assert!(!f.test(&mut lbs(&[])), "missing label drops");
        let ne = LabelFilter::numeric("status", CmpOp::Ne, 500.0);
        assert!(!ne.test(&mut lbs(&[])), "missing label drops even for !=");
        let mut b = lbs(&[("status", "abc")]);
        assert!(f.test(&mut b), "unparsable value keeps the line");
        assert_eq!(b.get("__error__"), Some(LABEL_FILTER_ERR));
        assert!(b.get("__error_details__").is_some_and(|d| d.contains("ParseFloat")));
        // With an error set, typed filters let the line through.
        assert!(LabelFilter::numeric("status", CmpOp::Eq, 1.0).test(&mut b));
        assert!(LabelFilter::numeric("status", CmpOp::Eq, 14.0).test(&mut lbs(&[("status", "14.0")])));
    }

    #[test]
    fn string_matchers() {
        let f = LabelFilter::matcher(Matcher::new("level", MatchOp::Re, "err|warn").unwrap());
        assert!(f.test(&mut lbs(&[("level", "err")])));
        assert!(!f.test(&mut lbs(&[("level", "error")])), "anchored");
        let e = LabelFilter::matcher(Matcher::new("__error__", MatchOp::Eq, "").unwrap());
        let mut b = lbs(&[]);
        assert!(e.test(&mut b));
        b.set_err("JSONParserErr");
        assert!(!e.test(&mut b));
        let ne = LabelFilter::matcher(Matcher::new("x", MatchOp::Neq, "a").unwrap());
        assert!(ne.test(&mut lbs(&[])), "missing label reads as empty");
    }

    #[test]
    fn and_or() {
        let status = LabelFilter::numeric("status", CmpOp::Ge, 500.0);
        let app = LabelFilter::matcher(Matcher::new("app", MatchOp::Eq, "web").unwrap());
        let lvl = LabelFilter::matcher(Matcher::new("level", MatchOp::Eq, "error").unwrap());
        // status >= 500 and app="web" or level="error"
        let f = LabelFilter::or(LabelFilter::and(status, app), lvl);
        assert!(f.test(&mut lbs(&[("level", "error")])));
        assert!(!f.test(&mut lbs(&[("status", "503")])));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_go_duration("1m48.4s"), Some(108_400_000_000));
        assert_eq!(parse_go_duration("850us"), Some(850_000));
        assert_eq!(parse_go_duration("-1h"), Some(-3_600_000_000_000));
        assert_eq!(parse_go_duration("0"), Some(0));
        assert_eq!(parse_go_duration("12"), None);
        assert_eq!(parse_go_duration("1x"), None);
        let f = LabelFilter::duration("d", CmpOp::Gt, "250ms").unwrap();
        assert!(f.test(&mut lbs(&[("d", "1m48.4s")])));
        assert!(!f.test(&mut lbs(&[("d", "850us")])));
        let mut b = lbs(&[("d", "soon")]);
        assert!(f.test(&mut b));
        assert_eq!(b.err(), Some(LABEL_FILTER_ERR));
    }

    #[test]
    fn bytes() {
        assert_eq!(parse_bytes("1KB"), Some(1000));
        assert_eq!(parse_bytes("1kB"), Some(1000));
        assert_eq!(parse_bytes("1KiB"), Some(1024));
        assert_eq!(parse_bytes("1.5 MiB"), Some(1_572_864));
        assert_eq!(parse_bytes("42"), Some(42));
        assert_eq!(parse_bytes("1,000B"), Some(1000));
        assert_eq!(parse_bytes("1XB"), None);
        let f = LabelFilter::bytes("size", CmpOp::Ge, "1MiB").unwrap();
        assert!(f.test(&mut lbs(&[("size", "2MB")])));
        assert!(!f.test(&mut lbs(&[("size", "1000kB")])));
    }

    #[test]
    fn ip() {
        let f = LabelFilter::ip("addr", true, "10.0.0.0/8").unwrap();
        assert!(f.test(&mut lbs(&[("addr", "10.1.2.3")])));
        assert!(!f.test(&mut lbs(&[("addr", "11.1.2.3")])));
        assert!(!f.test(&mut lbs(&[])));
        let ne = LabelFilter::ip("addr", false, "10.0.0.0/8").unwrap();
        assert!(ne.test(&mut lbs(&[("addr", "11.1.2.3")])));
        assert!(LabelFilter::ip("a", true, "nope").is_err());
    }
}
