//! Label sets: parsing Loki's `{name="value", ...}` stream selector text, validation with Loki's
//! rules, the canonical printed form, and the 64-bit fingerprint that names a stream.

use std::fmt;

/// A stream's label set, sorted by name, names unique, no empty values (a series read with
/// [`Labels::parse_series`] may have some).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Labels(Vec<(String, String)>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    #[error("{0}")]
    Syntax(String),
    #[error("invalid label name: '{0}'")]
    InvalidName(String),
    #[error("duplicate label name: '{0}'")]
    Duplicate(String),
}

impl Labels {
    /// Builds a label set from pairs: drops empty values (as Loki does), sorts by name and
    /// rejects invalid or duplicate names.
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Result<Labels, LabelError> {
        Labels::checked(pairs.into_iter().filter(|(_, v)| !v.is_empty()).collect())
    }

    /// Sorts, then rejects invalid or duplicate names.
    fn checked(mut pairs: Vec<(String, String)>) -> Result<Labels, LabelError> {
        for (n, _) in &pairs {
            if !is_valid_label_name(n) {
                return Err(LabelError::InvalidName(n.clone()));
            }
        }
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        for w in pairs.windows(2) {
            if w[0].0 == w[1].0 {
                return Err(LabelError::Duplicate(w[0].0.clone()));
            }
        }
        Ok(Labels(pairs))
    }

    /// Builds a label set from pairs already known valid (e.g. read back from our own index).
    /// Sorts, but does not validate.
    pub fn from_sorted_unchecked(mut pairs: Vec<(String, String)>) -> Labels {
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        Labels(pairs)
    }

    /// Parses Loki's stream label text, e.g. `{job="app", env="prod"}`.
    pub fn parse(text: &str) -> Result<Labels, LabelError> {
        Labels::from_pairs(parse_pairs(text)?)
    }

    /// Parses a metric series' labels as the LogQL engine prints them: like
    /// [`parse`](Self::parse), but an empty value is kept, since `logfmt --keep-empty` labels
    /// must survive into series (the engine drops every other empty value itself).
    pub fn parse_series(text: &str) -> Result<Labels, LabelError> {
        Labels::checked(parse_pairs(text)?)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }
    pub fn into_pairs(self) -> Vec<(String, String)> {
        self.0
    }
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].1.as_str())
    }

    /// A stable 64-bit identity of the label set (FNV-1a over names and values with separators).
    /// Stable across processes and Rust versions: it names chunks in object storage.
    pub fn fingerprint(&self) -> u64 {
        let mut h = Fnv64::new();
        for (n, v) in &self.0 {
            h.write(n.as_bytes());
            h.write(&[0xff]);
            h.write(v.as_bytes());
            h.write(&[0xff]);
        }
        h.finish()
    }
}

impl fmt::Display for Labels {
    /// Loki's printed form: `{a="x", b="y"}` with Go string escapes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (n, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{n}=")?;
            write_quoted(f, v)?;
        }
        f.write_str("}")
    }
}

/// Writes `s` as a Go-style double-quoted string.
pub fn write_quoted(out: &mut impl fmt::Write, s: &str) -> fmt::Result {
    out.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => out.write_str("\\\"")?,
            '\\' => out.write_str("\\\\")?,
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            c if (c as u32) < 0x20 || c as u32 == 0x7f => write!(out, "\\x{:02x}", c as u32)?,
            c => out.write_char(c)?,
        }
    }
    out.write_char('"')
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, Prometheus' label name rule that Loki applies.
pub fn is_valid_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Parses `{name="value", ...}` into raw pairs (no sorting or validation of duplicates).
fn parse_pairs(text: &str) -> Result<Vec<(String, String)>, LabelError> {
    let s = text.trim();
    let inner = s.strip_prefix('{').and_then(|r| r.strip_suffix('}')).ok_or_else(|| {
        LabelError::Syntax(format!(
            "1:1: parse error: unexpected input, expected a label set in braces: {s:?}"
        ))
    })?;
    let b = inner.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    let err = |pos: usize, msg: &str| LabelError::Syntax(format!("1:{}: parse error: {msg}", pos + 2));
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let start = i;
        while i < b.len()
            && (b[i].is_ascii_alphanumeric()
                || b[i] == b'_'
                || b[i] >= 0x80
                || b[i] == b'.'
                || b[i] == b'-'
                || b[i] == b'/')
        {
            i += 1;
        }
        if start == i {
            return Err(err(
                i,
                &format!(
                    "unexpected character inside braces: {:?}",
                    inner[i..].chars().next().unwrap_or(' ')
                ),
            ));
        }
        let name = &inner[start..i];
        if !is_valid_label_name(name) {
            return Err(LabelError::InvalidName(name.to_string()));
        }
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() || b[i] != b'=' {
            return Err(err(i, &format!("expected '=' after label name {name:?}")));
        }
        i += 1;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let (value, used) = unquote_prefix(&inner[i..]).map_err(|m| err(i, &m))?;
        i += used;
        out.push((name.to_string(), value));
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        if b[i] != b',' {
            return Err(err(
                i,
                &format!(
                    "unexpected {:?} after label value, expected ',' or '}}'",
                    inner[i..].chars().next().unwrap_or(' ')
                ),
            ));
        }
        i += 1;
    }
    Ok(out)
}

/// Reads one Go double-quoted string (or a backquoted raw string) from the start of `s`.
/// Returns the unescaped value and the number of bytes consumed.
pub fn unquote_prefix(s: &str) -> Result<(String, usize), String> {
    let mut chars = s.char_indices();
    let quote = match chars.next() {
        Some((_, q @ ('"' | '`'))) => q,
        _ => return Err("expected a quoted string".to_string()),
    };
    let mut out = String::new();
    if quote == '`' {
        for (i, c) in chars {
            if c == '`' {
                return Ok((out, i + 1));
            }
            out.push(c);
        }
        return Err("unterminated raw string".to_string());
    }
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, i + 1)),
            '\n' => return Err("newline in string".to_string()),
            '\\' => {
                let (_, e) = chars.next().ok_or("unterminated string")?;
                match e {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    'a' => out.push('\x07'),
                    'b' => out.push('\x08'),
                    'f' => out.push('\x0c'),
                    'v' => out.push('\x0b'),
                    '\\' => out.push('\\'),
                    '"' => out.push('"'),
                    '\'' => out.push('\''),
                    'x' | 'u' | 'U' => {
                        let n = match e {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let mut v = 0u32;
                        for _ in 0..n {
                            let (_, h) = chars.next().ok_or("unterminated escape")?;
                            v = v * 16
                                + h.to_digit(16)
                                    .ok_or_else(|| format!("invalid hex digit {h:?} in escape"))?;
                        }
                        out.push(char::from_u32(v).ok_or_else(|| format!("invalid unicode escape {v:#x}"))?);
                    }
                    '0'..='7' => {
                        let mut v = e.to_digit(8).unwrap_or(0);
                        for _ in 0..2 {
                            let (_, o) = chars.next().ok_or("unterminated escape")?;
                            v = v * 8
                                + o.to_digit(8)
                                    .ok_or_else(|| format!("invalid octal digit {o:?} in escape"))?;
                        }
                        out.push(char::from_u32(v).ok_or("invalid octal escape")?);
                    }
                    other => return Err(format!("unknown escape sequence \\{other}")),
                }
            }
            c => out.push(c),
        }
    }
    Err("unterminated quoted string".to_string())
}

/// FNV-1a, 64 bit: a fixed, documented hash so fingerprints never change between builds.
pub struct Fnv64(u64);

impl Fnv64 {
    pub fn new() -> Self {
        Fnv64(0xcbf2_9ce4_8422_2325)
    }
    pub fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    pub fn finish(&self) -> u64 {
        self.0
    }
}

impl Default for Fnv64 {
    fn default() -> Self {
        Self::new()
    }
}

/// FNV-1a, 32 bit, over tenant and label text: the token a stream has on the ingester ring
/// (Loki uses the same hash for the same purpose).
pub fn ring_token(tenant: &str, labels: &Labels) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= u32::from(*b);
            h = h.wrapping_mul(0x0100_0193);
        }
    };
    feed(tenant.as_bytes());
    for (n, v) in labels.iter() {
        feed(n.as_bytes());
        feed(b"\xff");
        feed(v.as_bytes());
        feed(b"\xff");
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_canonically() {
        let l = Labels::parse(r#"{job="app",  env="prod\"x\"", a=`raw\`}"#).unwrap();
        assert_eq!(l.to_string(), r#"{a="raw\\", env="prod\"x\"", job="app"}"#);
        assert_eq!(l.get("job"), Some("app"));
        assert_eq!(Labels::parse(&l.to_string()).unwrap(), l);
    }

    #[test]
    fn drops_empty_values_and_rejects_bad_names() {
        assert!(Labels::parse(r#"{a=""}"#).unwrap().is_empty());
        let series = Labels::parse_series(r#"{b="x", a=""}"#).unwrap();
        assert_eq!(series.to_string(), r#"{a="", b="x"}"#);
        assert_eq!(Labels::parse_series(&series.to_string()).unwrap(), series);
        assert_eq!(
            Labels::parse(r#"{a="1", a="2"}"#),
            Err(LabelError::Duplicate("a".into()))
        );
        assert_eq!(
            Labels::parse(r#"{k8s.pod="x"}"#),
            Err(LabelError::InvalidName("k8s.pod".into()))
        );
        assert_eq!(Labels::parse(r#"{9a="x"}"#), Err(LabelError::InvalidName("9a".into())));
        assert!(matches!(Labels::parse(r#"{a="x""#), Err(LabelError::Syntax(_))));
        assert!(matches!(Labels::parse(r#"{a="x" b="y"}"#), Err(LabelError::Syntax(_))));
        assert!(matches!(Labels::parse("job"), Err(LabelError::Syntax(_))));
    }

    const PINNED_JOB_APP: u64 = 18_323_075_278_644_247_093;

    #[test]
    fn fingerprint_is_stable() {
        let l = Labels::parse(r#"{job="app"}"#).unwrap();
        // Pinned: chunk keys in object storage depend on this value never changing.
        assert_eq!(l.fingerprint(), PINNED_JOB_APP);
        assert_eq!(
            l.fingerprint(),
            Labels::parse(r#"{ job = "app" }"#).unwrap().fingerprint()
        );
        assert_ne!(l.fingerprint(), Labels::parse(r#"{job="ap"}"#).unwrap().fingerprint());
    }

    proptest::proptest! {
        #[test]
        fn print_parse_roundtrip(pairs in proptest::collection::vec(("[a-z_][a-z0-9_]{0,6}", "\\PC{1,8}"), 0..6)) {
            if let Ok(l) = Labels::from_pairs(pairs) {
                proptest::prop_assert_eq!(Labels::parse(&l.to_string()).unwrap(), l);
            }
        }
    }
}
