//! `Content-Type` parsing with the results and error texts of Go's `mime.ParseMediaType`, which
//! is what Loki runs on push requests (its errors are the 400 bodies clients see).

/// Returns the lowercased media type (`application/json`), or Go's error text. Parameters are
/// checked for syntax (as Go does) but otherwise ignored.
pub(super) fn parse_media_type(v: &str) -> Result<String, &'static str> {
    let (base, mut rest) = match v.find(';') {
        Some(i) => (&v[..i], &v[i..]),
        None => (v, ""),
    };
    let media_type = base.trim().to_lowercase();
    check_media_type(&media_type)?;

    let mut seen: Vec<String> = Vec::new();
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        match consume_param(rest) {
            Some((key, after)) => {
                if seen.contains(&key) {
                    return Err("mime: duplicate parameter name");
                }
                seen.push(key);
                rest = after;
            }
            // A trailing ';' is not an error.
            None if rest.trim() == ";" => break,
            None => return Err("mime: invalid media parameter"),
        }
    }
    Ok(media_type)
}

fn check_media_type(s: &str) -> Result<(), &'static str> {
    let (typ, rest) = consume_token(s);
    if typ.is_empty() {
        return Err("mime: no media type");
    }
    if rest.is_empty() {
        return Ok(());
    }
    let Some(rest) = rest.strip_prefix('/') else {
        return Err("mime: expected slash after first token");
    };
    let (subtype, rest) = consume_token(rest);
    if subtype.is_empty() {
        return Err("mime: expected token after slash");
    }
    if !rest.is_empty() {
        return Err("mime: unexpected content after media subtype");
    }
    Ok(())
}

fn is_tspecial(c: char) -> bool {
    "()<>@,;:\\\"/[]?=".contains(c)
}

fn is_token_char(c: char) -> bool {
    c.is_ascii() && c > ' ' && c != '\x7f' && !is_tspecial(c)
}

fn consume_token(v: &str) -> (&str, &str) {
    let end = v.find(|c: char| !is_token_char(c)).unwrap_or(v.len());
    (&v[..end], &v[end..])
}

/// `; key=value` (value a token or a quoted string). Returns the lowercased key and the rest.
fn consume_param(v: &str) -> Option<(String, &str)> {
    let rest = v.trim_start().strip_prefix(';')?.trim_start();
    let (key, rest) = consume_token(rest);
    if key.is_empty() {
        return None;
    }
    let rest = rest.trim_start().strip_prefix('=')?.trim_start();
    let after = if let Some(quoted) = rest.strip_prefix('"') {
        consume_quoted(quoted)?
    } else {
        let (value, after) = consume_token(rest);
        if value.is_empty() {
            return None;
        }
        after
    };
    Some((key.to_lowercase(), after))
}

/// The rest after a quoted string's closing quote (`s` starts after the opening one).
fn consume_quoted(s: &str) -> Option<&str> {
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some(&s[i + 1..]),
            '\\' if chars.peek().is_some_and(|&(_, n)| is_tspecial(n)) => {
                chars.next();
            }
            '\r' | '\n' => return None,
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::parse_media_type as p;

    #[test]
    fn media_types_as_go_parses_them() {
        assert_eq!(p("application/json"), Ok("application/json".into()));
        assert_eq!(p(" Application/JSON ; charset=utf-8"), Ok("application/json".into()));
        assert_eq!(p("application/json; charset=\"utf-8\";"), Ok("application/json".into()));
        assert_eq!(p("application/x-protobuf"), Ok("application/x-protobuf".into()));
        assert_eq!(p("text"), Ok("text".into()));
        assert_eq!(p(""), Err("mime: no media type"));
        assert_eq!(p("  ; charset=utf-8"), Err("mime: no media type"));
        assert_eq!(p("application json"), Err("mime: expected slash after first token"));
        assert_eq!(p("application/"), Err("mime: expected token after slash"));
        assert_eq!(
            p("application/json/x"),
            Err("mime: unexpected content after media subtype")
        );
        assert_eq!(p("application/json; charset"), Err("mime: invalid media parameter"));
        assert_eq!(
            p("application/json; charset=\"utf-8"),
            Err("mime: invalid media parameter")
        );
        assert_eq!(p("application/json; a=1; A=2"), Err("mime: duplicate parameter name"));
    }
}
