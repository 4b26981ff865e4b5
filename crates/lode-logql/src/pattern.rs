//! Pattern line filters (`|> "<_> GET <_>"`, `!> ...`): literals separated by `<_>` wildcards,
//! matched with exactly the semantics of Loki's `pattern.Matcher.Test`: each literal is found at
//! its first occurrence after the previous one, a wildcard must not be empty, a pattern ending in
//! a literal must end the line, and one ending in a wildcard must leave something for it. (Like
//! Loki, the first literal is searched for, not anchored at the line start.)

use memchr::memmem::Finder;

/// A compiled pattern line filter.
#[derive(Clone, Debug)]
pub struct PatternFilter {
    /// Literal runs and, as `None`, `<_>` wildcards; never two wildcards in a row.
    nodes: Vec<Option<Finder<'static>>>,
}

/// `<name>` at the start of `s`: the name and the bytes consumed. Shared by the `|>` filter,
/// the `| pattern` parser and the query parser's validation of both.
pub(crate) fn capture(s: &str) -> Option<(&str, usize)> {
    let rest = s.strip_prefix('<')?;
    let end = rest.find('>')?;
    let name = &rest[..end];
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    (first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')).then_some((name, end + 2))
}

impl PatternFilter {
    /// Parses a line-filter pattern; named captures and adjacent wildcards are refused, with
    /// Loki's messages.
    pub fn new(pattern: &str) -> Result<PatternFilter, String> {
        // Tokenise first, then validate in Loki's order (consecutive captures, then names).
        let mut tokens: Vec<Result<&str, String>> = Vec::new(); // Ok(capture name) | Err(literal)
        let mut i = 0;
        while i < pattern.len() {
            let rest = &pattern[i..];
            if let Some((name, used)) = capture(rest) {
                tokens.push(Ok(name));
                i += used;
            } else {
                let c = rest.chars().next().unwrap_or_default();
                match tokens.last_mut() {
                    Some(Err(lit)) => lit.push(c),
                    _ => tokens.push(Err(c.to_string())),
                }
                i += c.len_utf8();
            }
        }
        if let Some(w) = tokens.windows(2).find(|w| w[0].is_ok() && w[1].is_ok()) {
            let (a, b) = (w[0].as_ref().unwrap_or(&""), w[1].as_ref().unwrap_or(&""));
            return Err(format!("found consecutive capture '<{a}><{b}>': invalid expression"));
        }
        if let Some(Ok(name)) = tokens.iter().find(|t| matches!(t, Ok(n) if *n != "_")) {
            return Err(format!("named captures are not allowed: found '<{name}>'"));
        }
        let nodes = tokens
            .into_iter()
            .map(|t| match t {
                Ok(_) => None,
                Err(lit) => Some(Finder::new(lit.as_bytes()).into_owned()),
            })
            .collect();
        Ok(PatternFilter { nodes })
    }

    /// Whether the line matches the pattern (Loki's `Test`).
    pub fn matches(&self, line: &[u8]) -> bool {
        if line.is_empty() || self.nodes.is_empty() {
            return line.is_empty() && self.nodes.is_empty();
        }
        let mut off = 0;
        for (i, node) in self.nodes.iter().enumerate() {
            let Some(lit) = node else { continue };
            let Some(j) = lit.find(&line[off..]) else {
                return false;
            };
            if i != 0 && j == 0 {
                return false; // an empty wildcard before this literal
            }
            off += j + lit.needle().len();
        }
        let ends_in_wildcard = matches!(self.nodes.last(), Some(None));
        ends_in_wildcard == (off != line.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, line: &str) -> bool {
        PatternFilter::new(p).unwrap().matches(line.as_bytes())
    }

    #[test]
    fn follows_lokis_test() {
        assert!(!m("<_> bar", "foo bar baz"));
        assert!(m("<_> baz", "foo bar baz"));
        assert!(m("foo <_>", "foo bar baz"));
        assert!(!m("<_> bar <_>", " bar "));
        assert!(m("<_>bar<_>", " bar "));
        assert!(m("<_> GET <_> 200", "1.2.3.4 GET /x 200"));
        assert!(!m("<_> GET <_> 200", "1.2.3.4 GET /x 500"));
        assert!(m("", ""));
        assert!(!m("", "x"));
        assert!(!m("<_>", ""));
        assert!(m("<_>", "x"));
        assert!(m("a<b", "a<b"), "a `<` that opens no capture is a literal");
        assert!(m("<_> <1x>", "q <1x>"));
    }

    #[test]
    fn refuses_what_loki_refuses() {
        assert_eq!(
            PatternFilter::new("<ip> x").unwrap_err(),
            "named captures are not allowed: found '<ip>'"
        );
        assert_eq!(
            PatternFilter::new("x <_><a>").unwrap_err(),
            "found consecutive capture '<_><a>': invalid expression"
        );
    }
}
