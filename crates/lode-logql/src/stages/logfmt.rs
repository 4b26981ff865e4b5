//! `| logfmt [--strict] [--keep-empty] [a, b="k"]`: a zero-copy scanner with go-logfmt's
//! decoding rules as Loki's fork applies them. Non-strict mode skips a bad pair (up to the next
//! space) and goes on, so plain prefixes like `2024-01-01 WARN depth=3` still yield `depth`;
//! strict mode stops at the first bad pair and sets `__error__=LogfmtParserErr`.

use std::borrow::Cow;

use super::hint::{ExtractHint, is_clean_key};
use super::labels::{DUPLICATE_SUFFIX, LabelsBuilder};
use super::{LOGFMT_PARSER_ERR, Stage, push_sanitized};

/// Bytes that end an unquoted key or value: spaces and controls, `=` and `"`.
const STOP: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = i <= b' ' as usize || i == b'=' as usize || i == b'"' as usize;
        i += 1;
    }
    t
};

/// One decoded pair: the key and its value (`None` for a bare key or `k=`).
pub type Pair<'a> = (&'a str, Option<Cow<'a, str>>);

/// Iterates the pairs of a logfmt line, borrowing from it (values are only copied when they
/// hold escapes).
#[derive(Debug, Clone)]
pub struct LogfmtScanner<'a> {
    s: &'a str,
    pos: usize,
    err: Option<String>,
}

impl<'a> LogfmtScanner<'a> {
    pub fn new(s: &'a str) -> Self {
        LogfmtScanner { s, pos: 0, err: None }
    }

    /// The error of the last failed [`scan`](Self::scan), go-logfmt's wording.
    pub fn err(&self) -> Option<&str> {
        self.err.as_deref()
    }

    fn fail(&mut self, at: usize, msg: String) -> Option<Result<Pair<'a>, ()>> {
        self.err = Some(format!("logfmt syntax error at pos {} : {msg}", at + 1));
        // Resume after the offending byte's run of non-space bytes.
        let b = self.s.as_bytes();
        let mut p = at + 1;
        while p < b.len() && b[p] > b' ' {
            p += 1;
        }
        self.pos = p.min(b.len());
        Some(Err(()))
    }

    /// The next pair: `None` at the end, `Some(Err(()))` for a bad pair (see [`err`](Self::err)).
    pub fn scan(&mut self) -> Option<Result<Pair<'a>, ()>> {
        let s = self.s;
        let b = s.as_bytes();
        while self.pos < b.len() && b[self.pos] <= b' ' {
            self.pos += 1;
        }
        if self.pos >= b.len() {
            return None;
        }
        // key: up to `=`, a space or a quote (one table lookup per byte)
        let start = self.pos;
        let mut p = start;
        while p < b.len() && !STOP[usize::from(b[p])] {
            p += 1;
        }
        if p >= b.len() {
            self.pos = b.len();
            return Some(Ok((&s[start..], None)));
        }
        match b[p] {
            b'=' => {}
            b'"' => return self.fail(p, "unexpected '\"'".to_string()),
            _ => {
                self.pos = p;
                return Some(Ok((&s[start..p], None)));
            }
        }
        if p == start {
            return self.fail(p, "unexpected '='".to_string());
        }
        let key = &s[start..p];
        // equal sign at p
        p += 1;
        if p >= b.len() || b[p] <= b' ' {
            self.pos = p;
            return Some(Ok((key, None)));
        }
        if b[p] == b'"' {
            return self.quoted(key, p);
        }
        let vstart = p;
        while p < b.len() && !STOP[usize::from(b[p])] {
            p += 1;
        }
        if let Some(&c @ (b'=' | b'"')) = b.get(p) {
            return self.fail(p, format!("unexpected '{}'", c as char));
        }
        self.pos = p;
        Some(Ok((key, Some(Cow::Borrowed(&s[vstart..p])))))
    }

    fn quoted(&mut self, key: &'a str, open: usize) -> Option<Result<Pair<'a>, ()>> {
        let s = self.s;
        let b = s.as_bytes();
        let mut p = open + 1;
        let mut escaped = false;
        loop {
            match memchr::memchr2(b'"', b'\\', &b[p.min(b.len())..]) {
                None => {
                    self.pos = b.len();
                    self.err = Some(format!(
                        "logfmt syntax error at pos {} : unterminated quoted value",
                        b.len() + 1
                    ));
                    return Some(Err(()));
                }
                Some(off) if b[p + off] == b'\\' => {
                    escaped = true;
                    p += off + 2;
                }
                Some(off) => {
                    let close = p + off;
                    self.pos = close + 1;
                    let raw = &s[open + 1..close];
                    if !escaped {
                        return Some(Ok((key, (!raw.is_empty()).then_some(Cow::Borrowed(raw)))));
                    }
                    return match unquote(raw) {
                        Some(v) => Some(Ok((key, (!v.is_empty()).then_some(Cow::Owned(v))))),
                        None => self.fail(close, "invalid quoted value".to_string()),
                    };
                }
            }
        }
    }
}

/// Go `strconv`-style unquoting of a logfmt quoted value's content (JSON escapes).
fn unquote(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            '"' => out.push('"'),
            '\\' => out.push('\\'),
            '/' => out.push('/'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'u' => {
                let hex: String = chars.by_ref().take(4).collect();
                let cp = u32::from_str_radix(&hex, 16).ok()?;
                out.push(char::from_u32(cp).unwrap_or('\u{FFFD}'));
            }
            _ => return None,
        }
    }
    Some(out)
}

/// The logfmt parser stage.
#[derive(Debug, Clone)]
pub struct LogfmtParser {
    strict: bool,
    keep_empty: bool,
    /// `(label, key)`; empty = every pair.
    params: Vec<(String, String)>,
    /// Only these labels are read downstream (every-pair form only).
    hint: Option<ExtractHint>,
    name: String,
}

impl LogfmtParser {
    /// `params` are `(label, logfmt key)` pairs (`| logfmt a, b="k"` → `[("a","a"), ("b","k")]`).
    pub fn new(strict: bool, keep_empty: bool, params: Vec<(String, String)>) -> LogfmtParser {
        LogfmtParser {
            strict,
            keep_empty,
            params,
            hint: None,
            name: String::new(),
        }
    }

    /// Extracts only the hinted labels (ignored with parameters, which name their labels).
    pub fn with_hint(mut self, hint: ExtractHint) -> LogfmtParser {
        if self.params.is_empty() {
            self.hint = Some(hint);
        }
        self
    }

    /// The value as a label takes it: Loki empties a value holding U+FFFD (invalid UTF-8
    /// upstream); `None` when an empty value is dropped.
    #[inline]
    fn label_value<'v>(&self, value: &'v Option<Cow<'_, str>>) -> Option<&'v str> {
        let unescaped = matches!(value, Some(Cow::Owned(_)));
        let v = value.as_deref().unwrap_or("");
        let v = if (unescaped || !v.is_ascii()) && v.contains('\u{FFFD}') {
            ""
        } else {
            v
        };
        (!v.is_empty() || self.keep_empty || !self.params.is_empty()).then_some(v)
    }

    fn fail(&self, sc: &LogfmtScanner<'_>, lbs: &mut LabelsBuilder) {
        lbs.set_err(LOGFMT_PARSER_ERR);
        lbs.set_err_details(sc.err().unwrap_or_default());
    }

    /// Every pair, or only the hinted ones (stopping once they are all set and the rest of the
    /// line cannot hold a duplicate).
    fn all_pairs(&mut self, line: &str, lbs: &mut LabelsBuilder) {
        let hint = self.hint.take();
        let mut found = 0u64;
        let mut sc = LogfmtScanner::new(line);
        if hint.as_ref().is_none_or(|h| !h.may_stop(found, line.as_bytes())) {
            while let Some(item) = sc.scan() {
                let Ok((key, value)) = item else {
                    if self.strict {
                        self.fail(&sc, lbs);
                        break;
                    }
                    continue;
                };
                // A clean key is its own label name: no copy, no sanitizing.
                let clean = is_clean_key(key);
                if !clean {
                    self.name.clear();
                    push_sanitized(&mut self.name, key);
                    if self.name.is_empty() {
                        continue;
                    }
                }
                let name = if clean { key } else { self.name.as_str() };
                let (slot, renamed) = match &hint {
                    Some(h) => match h.lookup(name, |n| lbs.base_has(n)) {
                        Some((i, renamed)) => (Some(i), renamed),
                        None => continue,
                    },
                    None => (None, lbs.base_has(name)),
                };
                let Some(value) = self.label_value(&value) else {
                    continue;
                };
                if renamed {
                    if clean {
                        key.clone_into(&mut self.name);
                    }
                    self.name.push_str(DUPLICATE_SUFFIX);
                }
                let name = if renamed || !clean { self.name.as_str() } else { key };
                if value.is_empty() {
                    // Only with --keep-empty: such labels survive into metric series.
                    lbs.set_parsed_kept_empty(name);
                } else {
                    lbs.set_parsed(name, value);
                }
                if let (Some(h), Some(i)) = (&hint, slot) {
                    found |= 1 << i;
                    if h.may_stop(found, &line.as_bytes()[sc.pos..]) {
                        break;
                    }
                }
            }
        }
        self.hint = hint;
    }

    /// `| logfmt a, b="k"`: only the named keys, under their labels.
    fn params(&mut self, line: &str, lbs: &mut LabelsBuilder) {
        // With parameters (Loki's LogfmtExpressionParser) every requested label exists, `""`
        // until found, and an empty value is set rather than skipped.
        for (label, _) in &self.params {
            if !lbs.base_has(label) {
                lbs.set_parsed(label, "");
            }
        }
        let mut sc = LogfmtScanner::new(line);
        while let Some(item) = sc.scan() {
            let Ok((key, value)) = item else {
                if self.strict {
                    self.fail(&sc, lbs);
                    break;
                }
                continue;
            };
            self.name.clear();
            push_sanitized(&mut self.name, key);
            if self.name.is_empty() {
                continue;
            }
            let Some(value) = self.label_value(&value) else {
                continue;
            };
            match self.params.iter().find(|(_, k)| *k == self.name) {
                Some((label, _)) => label.clone_into(&mut self.name),
                None => continue,
            }
            if lbs.base_has(&self.name) {
                self.name.push_str(DUPLICATE_SUFFIX);
            }
            lbs.set_parsed(&self.name, value);
        }
    }
}

impl Stage for LogfmtParser {
    fn process(&mut self, _ts: i64, line: &mut String, lbs: &mut LabelsBuilder) -> bool {
        if self.params.is_empty() {
            self.all_pairs(line, lbs);
        } else {
            self.params(line, lbs);
        }
        true
    }
    fn box_clone(&self) -> Box<dyn Stage> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pairs(line: &str) -> Vec<(String, Option<String>)> {
        let mut sc = LogfmtScanner::new(line);
        let mut out = Vec::new();
        while let Some(r) = sc.scan() {
            if let Ok((k, v)) = r {
                out.push((k.to_string(), v.map(|v| v.into_owned())));
            }
        }
        out
    }

    fn run(p: &mut LogfmtParser, stream: &[(&str, &str)], line: &str) -> Vec<(String, String)> {
        let mut lbs = LabelsBuilder::new(stream.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect());
        let mut l = line.to_string();
        assert!(p.process(0, &mut l, &mut lbs));
        lbs.labels()
            .into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn s(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn scanner_basics() {
        assert_eq!(
            pairs(r#"a=1 b="x \"y\"" c= d e="""#),
            vec![
                ("a".into(), Some("1".into())),
                ("b".into(), Some("x \"y\"".into())),
                ("c".into(), None),
                ("d".into(), None),
                ("e".into(), None),
            ]
        );
    }

    #[test]
    fn all_pairs_sanitized_and_bare_keys_dropped() {
        let mut p = LogfmtParser::new(false, false, vec![]);
        let got = run(
            &mut p,
            &[],
            r#"2024-01-01 WARN depth=3 user-agent="curl/8" 9x=1 msg="hello world""#,
        );
        assert_eq!(
            got,
            s(&[
                ("_9x", "1"),
                ("depth", "3"),
                ("msg", "hello world"),
                ("user_agent", "curl/8")
            ])
        );
    }

    #[test]
    fn keep_empty() {
        let mut p = LogfmtParser::new(false, true, vec![]);
        assert_eq!(
            run(&mut p, &[], "WARN a= b=1"),
            s(&[("WARN", ""), ("a", ""), ("b", "1")])
        );
    }

    #[test]
    fn non_strict_skips_bad_pairs() {
        let mut p = LogfmtParser::new(false, false, vec![]);
        assert_eq!(
            run(&mut p, &[], r#"a=1 b=x"y c=3 =4 d=5"#),
            s(&[("a", "1"), ("c", "3"), ("d", "5")])
        );
    }

    #[test]
    fn strict_stops_with_error() {
        let mut p = LogfmtParser::new(true, false, vec![]);
        let got = run(&mut p, &[], r#"a=1 b=x"y c=3"#);
        assert_eq!(got[0], ("__error__".to_string(), LOGFMT_PARSER_ERR.to_string()));
        assert!(got[1].0 == "__error_details__" && got[1].1.contains("unexpected"));
        assert_eq!(got[2], ("a".to_string(), "1".to_string()));
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn params_and_clash() {
        let mut p = LogfmtParser::new(
            false,
            false,
            vec![("lvl".into(), "level".into()), ("app".into(), "app".into())],
        );
        assert_eq!(
            run(&mut p, &[("app", "s")], "level=error app=web other=1"),
            s(&[("app", "s"), ("app_extracted", "web"), ("lvl", "error")])
        );
        // Requested keys exist even when absent or bare (as `""`), like Loki's expression parser.
        let mut p = LogfmtParser::new(false, false, vec![("a".into(), "a".into()), ("b".into(), "b".into())]);
        assert_eq!(run(&mut p, &[], "a x=1"), s(&[("a", ""), ("b", "")]));
        let mut p = LogfmtParser::new(false, false, vec![]);
        assert_eq!(
            run(&mut p, &[("app", "s")], "app=web"),
            s(&[("app", "s"), ("app_extracted", "web")])
        );
    }

    #[test]
    fn replacement_char_value_dropped() {
        let mut p = LogfmtParser::new(false, false, vec![]);
        assert_eq!(run(&mut p, &[], "a=x\u{FFFD}y b=2"), s(&[("b", "2")]));
        let mut p = LogfmtParser::new(false, true, vec![]);
        assert_eq!(run(&mut p, &[], "a=x\u{FFFD}y"), s(&[("a", "")]));
    }

    #[test]
    fn unterminated_quote() {
        let mut sc = LogfmtScanner::new(r#"a="abc"#);
        assert_eq!(sc.scan(), Some(Err(())));
        assert!(sc.err().is_some_and(|e| e.contains("unterminated")));
        assert_eq!(sc.scan(), None);
    }

    proptest! {
        #[test]
        fn never_panics(line in "\\PC{0,80}") {
            let mut sc = LogfmtScanner::new(&line);
            let mut n = 0;
            while sc.scan().is_some() {
                n += 1;
                prop_assert!(n <= line.len() + 1);
            }
        }

        #[test]
        fn round_trip(kvs in proptest::collection::vec(("[a-z_][a-z0-9_]{0,8}", "[a-zA-Z0-9 \"=\\\\.:/-]{1,12}"), 0..8)) {
            let line: Vec<String> = kvs.iter().map(|(k, v)| {
                if v.bytes().any(|c| c <= b' ' || c == b'"' || c == b'=' || c == b'\\') {
                    format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
                } else {
                    format!("{k}={v}")
                }
            }).collect();
            let got = pairs(&line.join(" "));
            let want: Vec<(String, Option<String>)> = kvs.into_iter().map(|(k, v)| (k, Some(v))).collect();
            prop_assert_eq!(got, want);
        }
    }
}
