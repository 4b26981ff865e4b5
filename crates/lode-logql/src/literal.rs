//! Recognising regexes that are really literals, so they can run as plain string comparisons
//! (label matchers) or memmem searches (line filters), as Loki and Prometheus do.

/// Characters with a meaning in RE2 syntax outside a class.
fn is_meta(c: char) -> bool {
    matches!(
        c,
        '\\' | '.' | '+' | '*' | '?' | '(' | ')' | '|' | '[' | ']' | '{' | '}' | '^' | '$'
    )
}

/// Reads a regex made only of literal characters (and backslash-escaped punctuation).
fn literal(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(e) if e.is_ascii_punctuation() => out.push(e),
                _ => return None,
            }
        } else if is_meta(c) {
            return None;
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// `a|b|c` where every branch is a literal: the branches. `foo` gives `["foo"]`.
pub(crate) fn alternation(pattern: &str) -> Option<Vec<String>> {
    // `|` inside a branch would be escaped (`\|`), so split only on unescaped bars.
    let mut branches = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in pattern.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '|' => {
                branches.push(literal(&pattern[start..i])?);
                start = i + 1;
            }
            _ => {}
        }
    }
    branches.push(literal(&pattern[start..])?);
    Some(branches)
}

/// For an unanchored line regex: the substrings any one of which makes it match. Strips a
/// leading and trailing `.*` (both may match empty, so they do not change an unanchored search).
pub(crate) fn unanchored_alternation(pattern: &str) -> Option<Vec<String>> {
    let p = pattern.strip_prefix(".*").unwrap_or(pattern);
    let p = match p.strip_suffix(".*") {
        // `\.*` is an escaped dot under a star, not `.*`.
        Some(rest) if !rest.ends_with('\\') && !rest.contains('|') => rest,
        _ => p,
    };
    if p.len() != pattern.len() && p.contains('|') {
        return None; // `.*a|b` is `(.*a)|b`: still fine, but keep the rule simple
    }
    alternation(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_literal_alternations() {
        assert_eq!(alternation("api|check"), Some(vec!["api".into(), "check".into()]));
        assert_eq!(alternation(r"a\.b"), Some(vec!["a.b".into()]));
        assert_eq!(alternation(r"a\|b"), Some(vec!["a|b".into()]));
        assert_eq!(alternation("a|"), Some(vec!["a".into(), "".into()]));
        assert_eq!(alternation(""), Some(vec!["".into()]));
        assert_eq!(alternation("a.b"), None);
        assert_eq!(alternation(r"\d"), None);
        assert_eq!(alternation("(?i)a"), None);
        assert_eq!(alternation("a\\"), None);
        assert_eq!(unanchored_alternation(".*foo.*"), Some(vec!["foo".into()]));
        assert_eq!(unanchored_alternation(r"foo\.*"), None);
        assert_eq!(unanchored_alternation(".*a|b"), None);
        assert_eq!(
            unanchored_alternation("err|warn"),
            Some(vec!["err".into(), "warn".into()])
        );
    }
}
