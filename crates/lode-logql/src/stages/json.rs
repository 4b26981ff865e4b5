//! `| json` and `| json a="x.y"` (and the scanner `| unpack` shares), over a small hand scanner that borrows from the
//! line: no DOM is built, strings without escapes are copied straight into the label slots, and
//! the parameter form walks only the requested paths (skipping everything else unparsed).

use super::hint::{ExtractHint, is_clean_key};
use super::labels::{DUPLICATE_SUFFIX, LabelsBuilder};
use super::{JSON_PARSER_ERR, Stage, push_sanitized};

const MAX_DEPTH: usize = 128;

/// Byte-level JSON reader over one line.
pub(super) struct Scanner<'a> {
    pub(super) s: &'a str,
    pub(super) pos: usize,
}

pub(super) type JResult<T> = Result<T, String>;

/// What a value turned out to be.
pub(super) enum Kind {
    Str {
        start: usize,
        end: usize,
        escaped: bool,
    },
    /// Number, `true` or `false`: kept as raw text.
    Raw(usize, usize),
    Null,
    Object,
    Array,
}

impl<'a> Scanner<'a> {
    pub(super) fn new(s: &'a str) -> Self {
        Scanner { s, pos: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    #[inline]
    fn ws(&mut self) {
        // Compact JSON (the common case) has no whitespace: one test.
        if self.peek().is_some_and(|c| c > b' ') {
            return;
        }
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    // Errors are rare: kept out of line so the scanning functions stay small.
    #[cold]
    #[inline(never)]
    fn err<T>(&self, what: &str) -> JResult<T> {
        Err(format!("{what} at offset {}", self.pos))
    }

    fn expect(&mut self, c: u8) -> JResult<()> {
        self.ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            self.err_expected(c)
        }
    }

    #[cold]
    #[inline(never)]
    fn err_expected<T>(&self, c: u8) -> JResult<T> {
        self.err(&format!("expected '{}'", c as char))
    }

    /// A string starting at `pos` (the opening quote): its content span, and whether it has escapes.
    fn string_span(&mut self) -> JResult<(usize, usize, bool)> {
        let b = self.s.as_bytes();
        let start = self.pos + 1;
        let mut i = start;
        let mut escaped = false;
        loop {
            // Most keys and values are short: eight bytes at a time (SWAR) over the first bytes
            // beats memchr's setup; longer strings go on with memchr.
            let lim = (i + 24).min(b.len());
            while i + 8 <= lim {
                let hit = quote_or_backslash(u64::from_le_bytes(word8(&b[i..i + 8])));
                if hit != 0 {
                    i += (hit.trailing_zeros() / 8) as usize;
                    break;
                }
                i += 8;
            }
            while i < lim && b[i] != b'"' && b[i] != b'\\' {
                i += 1;
            }
            if i == lim {
                match memchr::memchr2(b'"', b'\\', &b[i..]) {
                    Some(off) => i += off,
                    None => {
                        self.pos = b.len();
                        return self.err("unterminated string");
                    }
                }
            }
            if b[i] == b'"' {
                self.pos = i + 1;
                return Ok((start, i, escaped));
            }
            escaped = true;
            i += 2;
            if i > b.len() {
                self.pos = b.len();
                return self.err("unterminated string");
            }
        }
    }

    /// Reads the value at `pos` (after whitespace), skipping objects and arrays entirely unless
    /// `enter` is set, in which case `pos` is left just inside the `{` / `[`.
    pub(super) fn value(&mut self, enter: bool, depth: usize) -> JResult<Kind> {
        self.ws();
        let b = self.s.as_bytes();
        match self.peek() {
            Some(b'"') => {
                let (start, end, escaped) = self.string_span()?;
                Ok(Kind::Str { start, end, escaped })
            }
            Some(c @ (b'{' | b'[')) => {
                if enter {
                    self.pos += 1;
                } else {
                    self.skip_container(depth)?;
                }
                Ok(if c == b'{' { Kind::Object } else { Kind::Array })
            }
            Some(b'n') if b[self.pos..].starts_with(b"null") => {
                self.pos += 4;
                Ok(Kind::Null)
            }
            Some(b't') if b[self.pos..].starts_with(b"true") => {
                self.pos += 4;
                Ok(Kind::Raw(self.pos - 4, self.pos))
            }
            Some(b'f') if b[self.pos..].starts_with(b"false") => {
                self.pos += 5;
                Ok(Kind::Raw(self.pos - 5, self.pos))
            }
            Some(b'-' | b'0'..=b'9') => {
                let start = self.pos;
                while let Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') = self.peek() {
                    self.pos += 1;
                }
                Ok(Kind::Raw(start, self.pos))
            }
            None => self.err("unexpected end of input"),
            Some(_) => self.err("unknown value type"),
        }
    }

    /// Skips the object or array at `pos`, validating only its bracket/string structure.
    fn skip_container(&mut self, depth: usize) -> JResult<()> {
        if depth > MAX_DEPTH {
            return self.err("json too deeply nested");
        }
        let b = self.s.as_bytes();
        let mut stack: Vec<u8> = Vec::new();
        loop {
            match self.peek() {
                Some(c @ (b'{' | b'[')) => {
                    stack.push(if c == b'{' { b'}' } else { b']' });
                    if stack.len() + depth > MAX_DEPTH {
                        return self.err("json too deeply nested");
                    }
                    self.pos += 1;
                }
                Some(c @ (b'}' | b']')) => {
                    if stack.pop() != Some(c) {
                        return self.err("mismatched bracket");
                    }
                    self.pos += 1;
                    if stack.is_empty() {
                        return Ok(());
                    }
                }
                Some(b'"') => {
                    self.string_span()?;
                }
                Some(_) => {
                    let n = b[self.pos..]
                        .iter()
                        .position(|c| matches!(c, b'"' | b'{' | b'[' | b'}' | b']'))
                        .unwrap_or(b.len() - self.pos);
                    self.pos += n;
                }
                None => return self.err("unterminated container"),
            }
        }
    }

    /// After a member or element: `,` (true) or the closing `close` (false).
    pub(super) fn next_or_close(&mut self, close: u8) -> JResult<bool> {
        self.ws();
        match self.peek() {
            Some(b',') => {
                self.pos += 1;
                Ok(true)
            }
            Some(c) if c == close => {
                self.pos += 1;
                Ok(false)
            }
            _ => self.err_expected_sep(close),
        }
    }

    #[cold]
    #[inline(never)]
    fn err_expected_sep<T>(&self, close: u8) -> JResult<T> {
        self.err(&format!("expected ',' or '{}'", close as char))
    }

    /// Inside an object just after `{`: true when there is a first member.
    pub(super) fn open_members(&mut self, close: u8) -> bool {
        self.ws();
        if self.peek() == Some(close) {
            self.pos += 1;
            false
        } else {
            true
        }
    }

    /// Reads a member's key (unescaping into `tmp` when needed) and the `:` after it.
    pub(super) fn key<'t>(&mut self, tmp: &'t mut String) -> JResult<&'t str>
    where
        'a: 't,
    {
        self.ws();
        if self.peek() != Some(b'"') {
            return self.err("expected object key");
        }
        let (start, end, escaped) = self.string_span()?;
        if self.peek() == Some(b':') {
            self.pos += 1;
        } else {
            self.expect(b':')?;
        }
        if !escaped {
            return Ok(&self.s[start..end]);
        }
        tmp.clear();
        unescape(&self.s[start..end], tmp).ok_or_else(|| format!("invalid escape at offset {start}"))?;
        Ok(tmp.as_str())
    }
}

/// Eight bytes as an array (`b` holds exactly eight).
#[inline]
fn word8(b: &[u8]) -> [u8; 8] {
    let mut w = [0u8; 8];
    w.copy_from_slice(b);
    w
}

/// A mask whose lowest set bit is the high bit of the first `"` or `\` byte of `x`
/// (little-endian); zero when there is none. The classic has-zero-byte trick: exact for the
/// first match, which is all that is used.
#[inline]
fn quote_or_backslash(x: u64) -> u64 {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let zero = |v: u64| v.wrapping_sub(LO) & !v & HI;
    zero(x ^ (LO * u64::from(b'"'))) | zero(x ^ (LO * u64::from(b'\\')))
}

/// Appends the JSON-unescaped `s` to `out`; `None` on a bad escape.
pub(super) fn unescape(s: &str, out: &mut String) -> Option<()> {
    let mut rest = s;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let b = rest.as_bytes();
        let c = *b.get(i + 1)?;
        if !c.is_ascii() {
            return None;
        }
        rest = &rest[i + 2..];
        match c {
            b'"' => out.push('"'),
            b'\\' => out.push('\\'),
            b'/' => out.push('/'),
            b'b' => out.push('\u{8}'),
            b'f' => out.push('\u{c}'),
            b'n' => out.push('\n'),
            b'r' => out.push('\r'),
            b't' => out.push('\t'),
            b'u' => {
                let hex = |r: &str| r.get(..4).and_then(|h| u32::from_str_radix(h, 16).ok());
                let mut cp = hex(rest)?;
                rest = &rest[4..];
                if (0xD800..0xDC00).contains(&cp) {
                    match rest.strip_prefix("\\u").and_then(|r| hex(r).map(|lo| (r, lo))) {
                        Some((r, lo)) if (0xDC00..0xE000).contains(&lo) => {
                            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                            rest = &r[4..];
                        }
                        _ => cp = 0xFFFD,
                    }
                }
                out.push(char::from_u32(cp).unwrap_or('\u{FFFD}'));
            }
            _ => return None,
        }
    }
    out.push_str(rest);
    Some(())
}

/// A string value as Loki stores it: unescaped; a bad escape or U+FFFD gives `""`.
pub(super) fn string_value(s: &str, escaped: bool, out: &mut String) {
    string_value_checked(s, escaped, out, true);
}

/// [`string_value`]; `may_have_fffd` false skips the U+FFFD scan (the value is ASCII and the
/// value has no escapes that could produce one).
fn string_value_checked(s: &str, escaped: bool, out: &mut String, may_have_fffd: bool) {
    out.clear();
    if escaped {
        if unescape(s, out).is_none() {
            out.clear();
        }
    } else {
        out.push_str(s);
    }
    if (may_have_fffd || escaped) && out.contains('\u{FFFD}') {
        out.clear();
    }
}

/// One step of a `| json label="a.b[0]"` path.
#[derive(Debug, Clone, PartialEq)]
enum PathElem {
    Key(String),
    Index(usize),
}

/// Parses Loki's json expression syntax: `a.b`, `a[0]`, `["k-1"].x`, `a.b[1]["c"]`.
fn parse_path(expr: &str) -> Result<Vec<PathElem>, String> {
    let bad = || format!("cannot parse expression [{expr}]: syntax error");
    let mut out = Vec::new();
    let b = expr.as_bytes();
    let mut i = 0;
    let mut expect_field = true;
    while i < b.len() {
        match b[i] {
            b'[' => {
                let close = expr[i..].find(']').ok_or_else(bad)? + i;
                let inner = expr[i + 1..close].trim();
                if let Some(q) = inner.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
                    let mut k = String::new();
                    unescape(q, &mut k).ok_or_else(bad)?;
                    out.push(PathElem::Key(k));
                } else {
                    out.push(PathElem::Index(inner.parse().map_err(|_| bad())?));
                }
                i = close + 1;
                expect_field = false;
            }
            b'.' if !expect_field && i + 1 < b.len() => {
                i += 1;
                expect_field = true;
            }
            _ if expect_field => {
                let end = expr[i..].find(['.', '[']).map_or(b.len(), |e| e + i);
                let name = &expr[i..end];
                if name.is_empty()
                    || !name
                        .bytes()
                        .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
                {
                    return Err(bad());
                }
                out.push(PathElem::Key(name.to_string()));
                i = end;
                expect_field = false;
            }
            _ => return Err(bad()),
        }
    }
    if out.is_empty() || expect_field {
        return Err(bad());
    }
    Ok(out)
}

/// `| json` (every field) or `| json l1="path", ...` (only those).
#[derive(Debug, Clone)]
pub struct JsonParser {
    params: Vec<(String, Vec<PathElem>)>,
    /// Only these labels are read downstream (every-field form only).
    hint: Option<ExtractHint>,
    /// Bits of the hinted labels set so far on this line.
    found: u64,
    prefix: String,
    key: String,
    value: String,
}

impl JsonParser {
    /// `params` are `(label, path expression)`; empty means every field. A bad path is an error.
    pub fn new(params: Vec<(String, String)>) -> Result<JsonParser, String> {
        let params = params
            .into_iter()
            .map(|(label, expr)| {
                if !lode_model::labels::is_valid_label_name(&label) {
                    return Err(format!("invalid extracted label name '{label}'"));
                }
                Ok((label, parse_path(&expr)?))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(JsonParser {
            params,
            hint: None,
            found: 0,
            prefix: String::new(),
            key: String::new(),
            value: String::new(),
        })
    }

    /// Extracts only the hinted labels (ignored with parameters, which name their labels).
    pub fn with_hint(mut self, hint: ExtractHint) -> JsonParser {
        if self.params.is_empty() {
            self.hint = Some(hint);
        }
        self
    }

    /// Flattens the object at `sc` (just inside `{`) into labels. `Ok(true)`: a hinted parse
    /// stopped early, everything it needs being set.
    fn walk(&mut self, sc: &mut Scanner<'_>, lbs: &mut LabelsBuilder, depth: usize) -> JResult<bool> {
        if depth > MAX_DEPTH {
            return sc.err("json too deeply nested");
        }
        if !sc.open_members(b'}') {
            return Ok(false);
        }
        loop {
            let key = sc.key(&mut self.key)?;
            let plen = self.prefix.len();
            let kind = sc.value(true, depth)?;
            // Hinted: a scalar whose label name cannot have a wanted length is passed over
            // before its name is built.
            if let (Some(h), Kind::Str { .. } | Kind::Raw(..)) = (&self.hint, &kind)
                && sanitized_len(key, plen).is_some_and(|l| !h.may_want_len(l))
            {
                if !sc.next_or_close(b'}')? {
                    return Ok(false);
                }
                continue;
            }
            // A clean top-level key is its own label name: no copy into `prefix` unless needed.
            let direct = plen == 0 && is_clean_key(key);
            if !direct {
                if plen > 0 {
                    self.prefix.push('_');
                }
                push_sanitized(&mut self.prefix, key);
            }
            let name = if direct { key } else { self.prefix.as_str() };
            let renamed = match kind {
                Kind::Str { .. } | Kind::Raw(..) => wanted(self.hint.as_ref(), &mut self.found, lbs, name, plen),
                _ => None,
            };
            match kind {
                Kind::Object => {
                    if direct {
                        self.prefix.push_str(key);
                    }
                    if self.walk(sc, lbs, depth + 1)? {
                        return Ok(true);
                    }
                }
                Kind::Array => {
                    sc.pos -= 1;
                    sc.skip_container(depth)?;
                }
                Kind::Null => {}
                Kind::Str { start, end, escaped } => {
                    if let Some(renamed) = renamed {
                        let raw = &sc.s[start..end];
                        // A plain ASCII string is its own value: no copy through `self.value`.
                        let value = if !escaped && raw.is_ascii() {
                            raw
                        } else {
                            string_value_checked(raw, escaped, &mut self.value, !raw.is_ascii());
                            self.value.as_str()
                        };
                        set_extracted(lbs, &mut self.prefix, direct.then_some(key), renamed, value);
                        if self.stop_after(sc) {
                            return Ok(true);
                        }
                    }
                }
                Kind::Raw(start, end) => {
                    if let Some(renamed) = renamed {
                        set_extracted(lbs, &mut self.prefix, direct.then_some(key), renamed, &sc.s[start..end]);
                        if self.stop_after(sc) {
                            return Ok(true);
                        }
                    }
                }
            }
            self.prefix.truncate(plen);
            if !sc.next_or_close(b'}')? {
                return Ok(false);
            }
        }
    }

    /// After a hinted hit: whether every hinted label is set and the rest of the line cannot
    /// change any of them.
    #[inline]
    fn stop_after(&self, sc: &Scanner<'_>) -> bool {
        self.hint
            .as_ref()
            .is_some_and(|h| h.may_stop_escaped(self.found, &sc.s.as_bytes()[sc.pos..]))
    }

    fn extract_params(&mut self, line: &str, lbs: &mut LabelsBuilder) {
        let first = line.trim_start().as_bytes().first().copied();
        if !matches!(first, Some(b'{' | b'[' | b'"')) {
            lbs.set_err(JSON_PARSER_ERR);
            return;
        }
        for (label, path) in &self.params {
            let mut sc = Scanner::new(line);
            // The label's name in a reused buffer: no allocation per label per line.
            let name = &mut self.prefix;
            label.clone_into(name);
            if lbs.base_has(label) {
                name.push_str(DUPLICATE_SUFFIX);
            }
            match lookup(&mut sc, path) {
                Ok(Some(kind)) => {
                    match kind {
                        Kind::Str { start, end, escaped } => string_value(&line[start..end], escaped, &mut self.value),
                        Kind::Raw(s, e) => line[s..e].clone_into(&mut self.value),
                        Kind::Null => self.value.clear(),
                        Kind::Object | Kind::Array => {
                            let start = sc.pos - 1;
                            sc.pos = start;
                            match sc.skip_container(0) {
                                Ok(()) => line[start..sc.pos].clone_into(&mut self.value),
                                Err(e) => {
                                    set_json_err(lbs, &e);
                                    continue;
                                }
                            }
                        }
                    }
                    lbs.set_parsed(name, &self.value);
                }
                Ok(None) => {
                    if lbs.get(label).is_none() {
                        lbs.set_parsed(label, "");
                    }
                }
                Err(e) => set_json_err(lbs, &e),
            }
        }
    }
}

pub(super) fn set_json_err(lbs: &mut LabelsBuilder, details: &str) {
    lbs.set_err(JSON_PARSER_ERR);
    lbs.set_err_details(details);
}

/// The length of the label name `key` gets under a prefix of length `plen` (see
/// [`push_sanitized`]), when that is plain to see: an ASCII key not padded with whitespace.
#[inline]
fn sanitized_len(key: &str, plen: usize) -> Option<usize> {
    let b = key.as_bytes();
    let (Some(&first), Some(&last)) = (b.first(), b.last()) else {
        return Some(plen); // an empty key adds nothing (and is never set)
    };
    if first <= b' ' || last <= b' ' || !key.is_ascii() {
        return None;
    }
    Some(if plen > 0 {
        plen + 1 + b.len()
    } else {
        b.len() + usize::from(first.is_ascii_digit())
    })
}

/// Whether the label `name` (its last key starting after `plen`) is set: `Some(renamed)`, with
/// `renamed` when it clashes with a stream label. Records a hinted hit in `found`.
#[inline]
fn wanted(hint: Option<&ExtractHint>, found: &mut u64, lbs: &LabelsBuilder, name: &str, plen: usize) -> Option<bool> {
    if name.len() <= plen || name.ends_with('_') && name.len() == plen + 1 {
        return None; // empty key
    }
    match hint {
        None => Some(lbs.base_has(name)),
        Some(h) => {
            let (i, renamed) = h.lookup(name, |n| lbs.base_has(n))?;
            *found |= 1 << i;
            Some(renamed)
        }
    }
}

/// Sets the label `direct` or else `name` (a sanitized flattened key), renamed to
/// `<name>_extracted` when the stream has it (`name` is scratch space then).
fn set_extracted(lbs: &mut LabelsBuilder, name: &mut String, direct: Option<&str>, renamed: bool, value: &str) {
    if let Some(d) = direct {
        if !renamed {
            lbs.set_parsed(d, value);
            return;
        }
        name.push_str(d);
    }
    if renamed {
        let n = name.len();
        name.push_str(DUPLICATE_SUFFIX);
        lbs.set_parsed(name, value);
        name.truncate(n);
    } else {
        lbs.set_parsed(name, value);
    }
}

/// Walks `path` from the root; `Ok(None)` when absent. For containers, `sc.pos` is just
/// inside the opening bracket.
fn lookup(sc: &mut Scanner<'_>, path: &[PathElem]) -> JResult<Option<Kind>> {
    let mut kind = sc.value(true, 0)?;
    let mut tmp = String::new();
    for (depth, elem) in path.iter().enumerate() {
        match (elem, kind) {
            (PathElem::Key(want), Kind::Object) => {
                if !sc.open_members(b'}') {
                    return Ok(None);
                }
                loop {
                    let hit = sc.key(&mut tmp)? == want;
                    let k = sc.value(hit, depth)?;
                    if hit {
                        kind = k;
                        break;
                    }
                    if !sc.next_or_close(b'}')? {
                        return Ok(None);
                    }
                }
            }
            (PathElem::Index(want), Kind::Array) => {
                if !sc.open_members(b']') {
                    return Ok(None);
                }
                let mut i = 0;
                loop {
                    let hit = i == *want;
                    let k = sc.value(hit, depth)?;
                    if hit {
                        kind = k;
                        break;
                    }
                    i += 1;
                    if !sc.next_or_close(b']')? {
                        return Ok(None);
                    }
                }
            }
            _ => return Ok(None),
        }
    }
    Ok(Some(kind))
}

impl Stage for JsonParser {
    fn process(&mut self, _ts: i64, line: &mut String, lbs: &mut LabelsBuilder) -> bool {
        if !self.params.is_empty() {
            if !line.is_empty() {
                self.extract_params(line, lbs);
            }
            return true;
        }
        self.found = 0;
        if self
            .hint
            .as_ref()
            .is_some_and(|h| h.may_stop_escaped(0, line.as_bytes()))
        {
            return true; // nothing downstream reads what this line could give
        }
        let mut sc = Scanner::new(line);
        self.prefix.clear();
        let res = match sc.value(true, 0) {
            Ok(Kind::Object) => self.walk(&mut sc, lbs, 1).map(|_| ()),
            Ok(_) => Err("expecting json object, but it is not".to_string()),
            Err(e) => Err(e),
        };
        if let Err(e) = res {
            set_json_err(lbs, &e);
        }
        true
    }
    fn box_clone(&self) -> Box<dyn Stage> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
#[path = "json_tests.rs"]
mod tests;
