//! Go RE2 syntax on Rust's `regex` engine. Both are RE2-like, but they differ where LogQL users
//! notice: Go's Perl classes `\d \w \s \b` are ASCII while Rust's are Unicode, Go accepts
//! `\Q...\E` literal quoting, and Go treats `[` inside a class as a literal while Rust opens a
//! nested class. [`translate`] rewrites a Go pattern into a Rust pattern with Go's meaning;
//! [`compile`] builds it with a size limit, since the pattern is user input.

use regex::bytes::{Regex, RegexBuilder};

/// Upper bound on a compiled user regex (and its lazy DFA), so a query cannot make a node
/// allocate without limit. Large enough for Grafana's expanded multi-value variables.
pub const REGEX_SIZE_LIMIT: usize = 8 << 20;

/// Go's ASCII Perl classes, written as Rust classes. Rust allows a class inside a class (a union),
/// so the same text works both outside and inside `[...]`.
fn perl_class(c: char) -> Option<&'static str> {
    Some(match c {
        'd' => "[0-9]",
        'D' => "[^0-9]",
        'w' => "[0-9A-Za-z_]",
        'W' => "[^0-9A-Za-z_]",
        // Go's \s is [\t\n\f\r ]: no vertical tab, unlike Rust's ASCII \s.
        's' => r"[\t\n\f\r ]",
        'S' => r"[^\t\n\f\r ]",
        _ => return None,
    })
}

/// Rewrites a Go (RE2) pattern into an equivalent Rust `regex` pattern. Anything this does not
/// recognise is passed through for the Rust parser to accept or reject.
pub fn translate(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut chars = pattern.chars().peekable();
    // Go has no nested classes, so being inside `[...]` is a flag.
    let mut in_class = false;
    // Just after `[` or `[^`, where a `]` is a literal.
    let mut class_start = false;
    while let Some(c) = chars.next() {
        let at_class_start = std::mem::take(&mut class_start);
        match c {
            '\\' => {
                let Some(e) = chars.next() else {
                    out.push('\\'); // trailing backslash: let the Rust parser report it
                    break;
                };
                if let Some(class) = perl_class(e) {
                    out.push_str(class);
                } else if !in_class && (e == 'b' || e == 'B') {
                    // Go's boundaries are ASCII. Allowed because lines and values are matched
                    // with `regex::bytes`, which accepts assertions that may split a character.
                    out.push_str("(?-u:\\");
                    out.push(e);
                    out.push(')');
                } else if !in_class && e == 'Q' {
                    let mut lit = String::new();
                    while let Some(q) = chars.next() {
                        if q == '\\' && chars.peek() == Some(&'E') {
                            chars.next();
                            break;
                        }
                        lit.push(q);
                    }
                    out.push_str(&regex::escape(&lit));
                } else if e == '<' || e == '>' {
                    // Escaped punctuation is a literal in Go; Rust reads `\<`/`\>` as word
                    // boundaries.
                    out.push(e);
                } else {
                    out.push('\\');
                    out.push(e);
                }
            }
            '[' if !in_class => {
                in_class = true;
                out.push('[');
                if chars.peek() == Some(&'^') {
                    chars.next();
                    out.push('^');
                }
                class_start = true;
            }
            '[' => {
                // `[:alpha:]` is a POSIX class in both dialects; any other `[` is a literal in Go.
                if chars.peek() == Some(&':') {
                    out.push('[');
                    for p in chars.by_ref() {
                        out.push(p);
                        if p == ']' {
                            break;
                        }
                    }
                } else {
                    out.push_str(r"\[");
                }
            }
            // Go reads `{` as a literal unless it opens a valid repeat (`{2}`, `{2,}`, `{2,5}`);
            // Rust rejects it. JSON-ish line filters (`|~ "{\"level"`) depend on this.
            '{' if !in_class && !starts_go_repeat(chars.clone()) => out.push_str(r"\{"),
            ']' if in_class && at_class_start => out.push_str(r"\]"),
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            // Rust class set operators `&&` and `~~` are plain characters in Go.
            '&' | '~' if in_class => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// Whether the text after a `{` is a Go repeat count: `n}`, `n,}` or `n,m}` in decimal.
fn starts_go_repeat(mut rest: impl Iterator<Item = char>) -> bool {
    let mut digits = 0;
    let mut c = rest.next();
    while c.is_some_and(|d| d.is_ascii_digit()) {
        digits += 1;
        c = rest.next();
    }
    if digits == 0 {
        return false;
    }
    if c == Some(',') {
        c = rest.next();
        while c.is_some_and(|d| d.is_ascii_digit()) {
            c = rest.next();
        }
    }
    c == Some('}')
}

/// Compiles a Go pattern for matching bytes (log lines, and label values as `value.as_bytes()`):
/// `regex::bytes` accepts Go's ASCII `\b`/`\B`, which `regex::Regex` refuses in UTF-8 mode.
pub fn compile(go_pattern: &str) -> Result<Regex, String> {
    let t = translate(go_pattern);
    let mut b = RegexBuilder::new(&t);
    b.size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .octal(true);
    b.build().map_err(|e| describe(go_pattern, &e))
}

/// One-line message in Go's shape (`error parsing regexp: <what>: `<pattern>``); Rust's own
/// syntax errors span several lines with a caret diagram.
fn describe(pattern: &str, e: &regex::Error) -> String {
    match e {
        regex::Error::CompiledTooBig(_) => format!("error parsing regexp: expression too large: `{pattern}`"),
        regex::Error::Syntax(s) => {
            let what = s
                .lines()
                .rev()
                .find_map(|l| l.strip_prefix("error: "))
                .unwrap_or("invalid pattern");
            format!("error parsing regexp: {what}: `{pattern}`")
        }
        other => format!("error parsing regexp: {other}: `{pattern}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(re: &str, s: &str) -> bool {
        compile(re).unwrap().is_match(s.as_bytes())
    }

    #[test]
    fn perl_classes_are_ascii_like_go() {
        assert!(!m(r"^\d+$", "١٢٣"));
        assert!(m(r"^\d+$", "123"));
        assert!(m(r"^\D+$", "١٢٣"));
        assert!(!m(r"^\w+$", "héllo"));
        assert!(m(r"^\W$", "é"));
        assert!(!m(r"^\s$", "\u{a0}"));
        assert!(!m(r"^\s$", "\u{b}"), "Go's \\s has no vertical tab");
        assert!(m(r"^\S$", "\u{b}"));
        assert!(m(r"^[\d]+$", "42"));
        assert!(!m(r"^[\d]+$", "١"));
        assert!(m(r"^[^\d]+$", "ab"));
        assert!(m(r"^[a\D]$", "x"));
        assert!(!m(r"^[^\s]$", " "));
    }

    #[test]
    fn word_boundaries_are_ascii() {
        // Go: é is not a word character, so there is a boundary between `a` and `é`.
        assert!(m(r"a\b", "aé"));
        assert!(!m(r"a\B", "aé"));
        assert!(m(r"a\Bb", "ab"));
        assert!(m(r"\bfoo\b", "a foo b"));
        assert!(m(r"^\<a\>$", "<a>"), "escaped punctuation is literal in Go");
    }

    #[test]
    fn quoting_and_go_class_literals() {
        assert!(m(r"^\Qa.b*\E$", "a.b*"));
        assert!(!m(r"^\Qa.b\E$", "axb"));
        assert!(m(r"^\Q(x", "(x"), "unterminated \\Q runs to the end");
        assert!(m(r"^[a[b]+$", "[ab"));
        assert!(m(r"^[]a]+$", "]a"));
        assert!(m(r"^[^]a]$", "b"));
        assert!(m(r"^[[:alpha:]]+$", "abc"));
        assert!(m(r"^[a&&b]+$", "a&b"));
        assert!(m(r"^[a~~b]+$", "~"));
        assert!(m(r"^\101$", "A"), "octal escapes as in Go");
        assert!(
            m(r#"\{"level"#, r#"{"level":"x"}"#),
            "a `{{` that opens no repeat is a literal"
        );
        assert!(m(r"^{foo}$", "{foo}"));
        assert!(m(r"^x{,5}$", "x{,5}"));
        assert!(m(r"^a{1,x}$", "a{1,x}"));
        assert!(m(r"^a{2}$", "aa") && !m(r"^a{2}$", "a{2}"));
        assert!(m(r"^a{2,}$", "aaa") && m(r"^a{1,2}b$", "aab"));
    }

    #[test]
    fn errors_are_one_line_and_size_is_bounded() {
        let e = compile("(").unwrap_err();
        assert!(e.starts_with("error parsing regexp: "), "{e}");
        assert!(!e.contains('\n'), "{e}");
        let e = compile("((a{1000}){1000}){1000}").unwrap_err();
        assert!(e.contains("too large") || e.contains("repetition"), "{e}");
    }
}
