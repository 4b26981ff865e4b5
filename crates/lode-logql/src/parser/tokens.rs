//! Number-like tokens: plain numbers (`1`, `-2.5`, `1e3`), durations (`250ms`, `1m48.4s`, `1h30m`,
//! `1d`) and byte sizes (`1KB`, `1.5MiB`). Like Loki's lexer, a number glued to a unit is one
//! token, and what the unit is decides its kind.

use std::time::Duration;

use nom::Err;

use super::lexer::{PErr, PResult, ws};

/// A number-like token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum NumTok {
    Number(f64),
    Duration(Duration),
    Bytes(u64),
}

fn is_unit_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '.' || c == 'µ' || c == 'μ'
}

/// Length of the number at the start of `s`: digits, an optional fraction, an optional exponent.
fn number_len(s: &str) -> usize {
    let b = s.as_bytes();
    let digits = |mut i: usize| {
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        i
    };
    let mut i = digits(0);
    let int_digits = i;
    if i < b.len() && b[i] == b'.' {
        let j = digits(i + 1);
        if int_digits == 0 && j == i + 1 {
            return 0; // a lone `.`
        }
        i = j;
    }
    if i == 0 {
        return 0;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        if j < b.len() && b[j].is_ascii_digit() {
            i = digits(j);
        }
    }
    i
}

/// A number, duration or byte size after optional whitespace (no sign).
pub(crate) fn num_token(i: &str) -> PResult<'_, NumTok> {
    let (i, ()) = ws(i)?;
    let n = number_len(i);
    if n == 0 {
        return Err(Err::Error(PErr::expected(i, "NUMBER")));
    }
    let unit_len = i[n..].find(|c| !is_unit_char(c)).unwrap_or(i.len() - n);
    let text = &i[..n + unit_len];
    let rest = &i[n + unit_len..];
    if unit_len == 0 {
        return match text.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok((rest, NumTok::Number(v))),
            _ => Err(Err::Failure(PErr::message(i, format!("number out of range: {text}")))),
        };
    }
    if let Some(d) = parse_duration(text) {
        return Ok((rest, NumTok::Duration(d)));
    }
    if let Some(b) = parse_bytes(text) {
        return Ok((rest, NumTok::Bytes(b)));
    }
    Err(Err::Failure(PErr::message(
        i,
        format!("syntax error: invalid number, duration or byte size {text:?}"),
    )))
}

/// A duration token after optional whitespace (`5m`, `1h30m`).
pub(crate) fn duration_token(i: &str) -> PResult<'_, Duration> {
    let (i, ()) = ws(i)?;
    match num_token(i) {
        Ok((rest, NumTok::Duration(d))) => Ok((rest, d)),
        Ok(_) => Err(Err::Failure(PErr::message(i, "syntax error: expecting a duration"))),
        Err(Err::Error(_)) => Err(Err::Error(PErr::expected(i, "DURATION"))),
        Err(e) => Err(e),
    }
}

/// `12.5` times `unit`, exactly (fraction digits past the 18th are ignored).
fn scaled(number: &str, unit: u128) -> Option<u128> {
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let int: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let frac = &frac[..frac.len().min(18)];
    let frac_value: u128 = if frac.is_empty() { 0 } else { frac.parse().ok()? };
    let frac_part = frac_value.checked_mul(unit)? / 10u128.pow(frac.len() as u32);
    int.checked_mul(unit)?.checked_add(frac_part)
}

/// A Go duration (`1h30m`, `1m48.4s`, `850us`) or a Prometheus one (`1d`, `2w`, `1y`).
pub(crate) fn parse_duration(s: &str) -> Option<Duration> {
    const UNITS: &[(&str, u128)] = &[
        ("ns", 1),
        ("us", 1_000),
        ("µs", 1_000),
        ("μs", 1_000),
        ("ms", 1_000_000),
        ("s", 1_000_000_000),
        ("m", 60_000_000_000),
        ("h", 3_600_000_000_000),
        ("d", 86_400_000_000_000),
        ("w", 604_800_000_000_000),
        ("y", 31_536_000_000_000_000),
    ];
    let mut rest = s;
    let mut total: u128 = 0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(n);
        if number.is_empty() || number.matches('.').count() > 1 {
            return None;
        }
        let u = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(u);
        let &(_, unit_ns) = UNITS.iter().find(|(name, _)| *name == unit)?;
        total = total.checked_add(scaled(number, unit_ns)?)?;
        rest = next;
    }
    let secs = u64::try_from(total / 1_000_000_000).ok()?;
    Some(Duration::new(secs, (total % 1_000_000_000) as u32))
}

/// A byte size as go-humanize's `ParseBytes` reads it (units case-insensitive; `KB` = 1000,
/// `KiB` = 1024).
pub(crate) fn parse_bytes(s: &str) -> Option<u64> {
    let n = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (number, unit) = s.split_at(n);
    if number.is_empty() || number.matches('.').count() > 1 {
        return None;
    }
    let unit = unit.to_ascii_lowercase();
    let size: u128 = match unit.as_str() {
        "b" | "" => 1,
        "k" | "kb" => 1000,
        "ki" | "kib" => 1 << 10,
        "m" | "mb" => 1000u128.pow(2),
        "mi" | "mib" => 1 << 20,
        "g" | "gb" => 1000u128.pow(3),
        "gi" | "gib" => 1 << 30,
        "t" | "tb" => 1000u128.pow(4),
        "ti" | "tib" => 1 << 40,
        "p" | "pb" => 1000u128.pow(5),
        "pi" | "pib" => 1 << 50,
        "e" | "eb" => 1000u128.pow(6),
        "ei" | "eib" => 1 << 60,
        _ => return None,
    };
    u64::try_from(scaled(number, size)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_number_like_tokens() {
        let tok = |s| num_token(s).map(|(_, t)| t);
        assert_eq!(tok("12"), Ok(NumTok::Number(12.0)));
        assert_eq!(tok(" 1.5e3 "), Ok(NumTok::Number(1500.0)));
        assert_eq!(tok(".5"), Ok(NumTok::Number(0.5)));
        assert_eq!(tok("250ms"), Ok(NumTok::Duration(Duration::from_millis(250))));
        assert_eq!(tok("1m48.4s"), Ok(NumTok::Duration(Duration::from_millis(108_400))));
        assert_eq!(tok("1h30m"), Ok(NumTok::Duration(Duration::from_secs(5400))));
        assert_eq!(tok("850us"), Ok(NumTok::Duration(Duration::from_micros(850))));
        assert_eq!(tok("2µs"), Ok(NumTok::Duration(Duration::from_micros(2))));
        assert_eq!(tok("1d"), Ok(NumTok::Duration(Duration::from_secs(86_400))));
        assert_eq!(tok("1KB"), Ok(NumTok::Bytes(1000)));
        assert_eq!(tok("1kb"), Ok(NumTok::Bytes(1000)));
        assert_eq!(tok("1MiB"), Ok(NumTok::Bytes(1 << 20)));
        assert_eq!(tok("1.5KiB"), Ok(NumTok::Bytes(1536)));
        assert_eq!(tok("10B"), Ok(NumTok::Bytes(10)));
        assert!(matches!(tok("5xyz"), Err(Err::Failure(_))));
        assert!(matches!(tok("1e999"), Err(Err::Failure(_))));
        assert!(matches!(tok("x"), Err(Err::Error(_))));
        assert!(matches!(tok("."), Err(Err::Error(_))));
    }
}
