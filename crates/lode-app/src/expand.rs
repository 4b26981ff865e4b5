//! `-config.expand-env=true`: environment references in the config file's text are replaced
//! before the YAML is parsed, with the syntax Loki's flag accepts (Loki runs the file through
//! drone/envsubst):
//!
//! - `${VAR}`: the variable's value; an unset variable is the empty string.
//! - `${VAR:-default}` (also `${VAR:=default}` and `${VAR=default}`, which mean the same there):
//!   `default` when `VAR` is unset or empty. The default may hold `${...}` references itself.
//! - `$$` is a literal `$`, so `$${VAR}` stays `${VAR}`; `\\` is one `\` and `\/` is `/` (Loki
//!   documents that backslashes must be doubled when the flag is on).
//! - A `$` not followed by `{` is kept: `$VAR` is not a reference, as in Loki.
//!
//! The substitution is textual, so a value with YAML-special characters (`: `, ` #`, a leading
//! `*`, `&`, `!` or quote) needs the reference quoted in the file: `key: '${VAR}'`. Bash's other
//! `${...}` operators (substrings, case, pattern replacement, `:?`) are refused with the line
//! named rather than half-supported.

use crate::AppError;

/// Expands the references in `text` with `lookup` (the process environment in the binary, a
/// map in tests).
pub fn expand_env(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, AppError> {
    let mut p = Expander {
        text,
        pos: 0,
        lookup: &lookup,
    };
    let mut out = String::with_capacity(text.len());
    while let Some(c) = p.rest().chars().next() {
        let rest = p.rest();
        if rest.starts_with("$$") {
            out.push('$');
            p.pos += 2;
        } else if rest.starts_with("\\\\") || rest.starts_with("\\/") {
            out.push_str(&rest[1..2]);
            p.pos += 2;
        } else if rest.starts_with("${") {
            let start = p.pos;
            p.pos += 2;
            out.push_str(&p.reference(start)?);
        } else {
            out.push(c);
            p.pos += c.len_utf8();
        }
    }
    Ok(out)
}

/// A variable of the process environment, for [`expand_env`] (one that is not UTF-8 is taken
/// lossily).
pub fn process_env(name: &str) -> Option<String> {
    std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
}

struct Expander<'a, F> {
    text: &'a str,
    pos: usize,
    lookup: &'a F,
}

impl<'a, F: Fn(&str) -> Option<String>> Expander<'a, F> {
    fn rest(&self) -> &'a str {
        self.text.get(self.pos..).unwrap_or_default()
    }

    /// Parses and evaluates one reference; `start` is its `$`, `pos` is just past the `${`.
    fn reference(&mut self, start: usize) -> Result<String, AppError> {
        let rest = self.rest();
        let name_len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let name = &rest[..name_len];
        let after = &rest[name_len..];
        // (bytes of the operator, whether a default follows)
        let (op_len, has_default) = if after.starts_with('}') {
            (1, false)
        } else if after.starts_with(":-") || after.starts_with(":=") {
            (2, true)
        } else if after.starts_with('=') {
            (1, true)
        } else {
            return Err(self.bad(start));
        };
        if name.is_empty() {
            return Err(self.bad(start));
        }
        self.pos += name_len + op_len;
        let value = (self.lookup)(name).filter(|v| !v.is_empty());
        if !has_default {
            return Ok(value.unwrap_or_default());
        }
        // Parsed even when unused, so a broken default is an error whatever the environment.
        let default = self.default(start)?;
        Ok(value.unwrap_or(default))
    }

    /// The default of `${VAR:-...}` up to its closing `}`, its own references expanded.
    fn default(&mut self, start: usize) -> Result<String, AppError> {
        let mut out = String::new();
        loop {
            let rest = self.rest();
            let Some(c) = rest.chars().next() else {
                return Err(self.bad(start));
            };
            if c == '}' {
                self.pos += 1;
                return Ok(out);
            }
            if c == '\n' {
                return Err(self.bad(start));
            }
            if rest.starts_with("${") {
                let inner = self.pos;
                self.pos += 2;
                out.push_str(&self.reference(inner)?);
            } else {
                out.push(c);
                self.pos += c.len_utf8();
            }
        }
    }

    fn bad(&self, start: usize) -> AppError {
        let line = self.text[..start].matches('\n').count() + 1;
        let from = &self.text[start..];
        let end = from
            .find(['}', '\n'])
            .map_or(from.len(), |i| i + usize::from(from[i..].starts_with('}')));
        let expr: String = from[..end].chars().take(80).collect();
        AppError::Config(format!(
            "-config.expand-env: bad substitution {expr:?} on line {line}: expected ${{VAR}} or ${{VAR:-default}} (write $$ for a literal $)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::Config;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    fn x(text: &str, pairs: &[(&str, &str)]) -> String {
        expand_env(text, env(pairs)).unwrap()
    }

    #[test]
    fn references_and_defaults() {
        let e = [("A", "1"), ("EMPTY", ""), ("B", "two")];
        assert_eq!(x("a: ${A}, b: ${B}", &e), "a: 1, b: two");
        assert_eq!(x("${A}${B}${A}", &e), "1two1");
        // Unset is the empty string, as in Loki.
        assert_eq!(x("key: ${MISSING}\n", &e), "key: \n");
        // A default applies when the variable is unset or empty.
        assert_eq!(x("${MISSING:-d}|${EMPTY:-d}|${A:-d}", &e), "d|d|1");
        assert_eq!(x("${MISSING:=d}|${MISSING=d}|${A=d}", &e), "d|d|1");
        // Defaults may be empty, hold ':' '/' and spaces, or references.
        assert_eq!(x("${MISSING:-}", &e), "");
        assert_eq!(x("${MISSING:-http://h:9000/a b}", &e), "http://h:9000/a b");
        assert_eq!(x("${MISSING:-${B}-x}", &e), "two-x");
        assert_eq!(x("${MISSING:-${ALSO_MISSING:-deep}}", &e), "deep");
        // Values are not expanded again.
        assert_eq!(x("${V}", &[("V", "${A}")]), "${A}");
    }

    #[test]
    fn escapes_and_literals() {
        let e = [("A", "1")];
        assert_eq!(x("$${A}", &e), "${A}");
        assert_eq!(x("cost: $$5 and $${A} then ${A}", &e), "cost: $5 and ${A} then 1");
        assert_eq!(x("$$$${A}", &e), "$${A}");
        assert_eq!(x("$$${A}", &e), "$1");
        // `$VAR` and a lone `$` are text, as in Loki.
        assert_eq!(x("$A $ {A} a$", &e), "$A $ {A} a$");
        // Loki's doubled backslashes.
        assert_eq!(x(r"re: '\\d+\/x' \n", &e), r"re: '\d+/x' \n");
        // Non-ASCII text passes through.
        assert_eq!(x("ünï ${A} ☃", &e), "ünï 1 ☃");
    }

    #[test]
    fn bad_substitutions_name_the_line() {
        for (text, expr) in [
            ("a: 1\nb: ${A:0:2}\n", "${A:0:2}"),
            ("a: 1\nb: ${}\n", "${}"),
            ("a: 1\nb: ${A-x}\n", "${A-x}"),
            ("a: 1\nb: ${A:?oops}\n", "${A:?oops}"),
            ("a: 1\nb: ${A\n", "${A"),
            ("a: 1\nb: ${A:-never closed\nc: 2", "${A:-never closed"),
        ] {
            let err = expand_env(text, env(&[("A", "1")])).unwrap_err().to_string();
            assert!(err.contains(&format!("{expr:?} on line 2")), "{text:?}: {err}");
        }
        // A bad default is an error even when the variable is set.
        assert!(expand_env("${A:-${}}", env(&[("A", "1")])).is_err());
    }

    #[test]
    fn yaml_special_values_need_a_quoted_reference() {
        // The expansion is textual, before YAML: a secret with `: `, ` #`, quotes and a
        // leading `*` arrives intact when the reference is single-quoted...
        let secret = r#"*k/+x: #y"z\"#;
        let e = [("S", secret)];
        let quoted = "storage_config:\n  s3:\n    secret_access_key: '${S}'\n";
        let c = Config::from_yaml(&x(quoted, &e)).unwrap();
        assert_eq!(c.storage_config.s3.secret_access_key, secret);
        // ...and unquoted it is YAML syntax, not a value (as with Loki).
        let bare = "storage_config:\n  s3:\n    secret_access_key: ${S}\n";
        if let Ok(c) = Config::from_yaml(&x(bare, &e)) {
            assert_ne!(c.storage_config.s3.secret_access_key, secret);
        }
        // Typical credentials (base64 with '/' and '+') are fine unquoted.
        let key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCY+EXAMPLEKEY";
        let c = Config::from_yaml(&x(bare, &[("S", key)])).unwrap();
        assert_eq!(c.storage_config.s3.secret_access_key, key);
    }
}
