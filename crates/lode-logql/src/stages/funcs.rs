//! Template functions Loki registers for `line_format` / `label_format` (Go `strings` names and
//! the sprig subset), with sprig's argument order: the piped value comes last
//! (`{{ .msg | trunc 10 }}` is `trunc 10 .msg`).

use std::sync::{Arc, Mutex};

use gotmpl::{FuncMap, TemplateError, Value};

use crate::regex_compat;

/// The line and timestamp `__line__` / `__timestamp__` read; set per line by the stage.
#[derive(Debug, Default)]
pub(crate) struct LineCtx {
    pub line: String,
    pub ts: i64,
}

type R = Result<Value, TemplateError>;

fn err(msg: impl Into<String>) -> TemplateError {
    TemplateError::Exec(msg.into())
}

/// Go's `fmt` default rendering of a value, `""` for nil.
pub(crate) fn to_str(v: &Value) -> String {
    match v {
        Value::Nil => String::new(),
        Value::String(s) => s.to_string(),
        Value::Float(f) => fmt_float(*f),
        other => other.to_string(),
    }
}

/// `%v` of a float64 (Go's `strconv.FormatFloat(f, 'g', -1, 64)` for common magnitudes).
fn fmt_float(f: f64) -> String {
    if f.is_finite() && f == f.trunc() && f.abs() < 1e21 {
        format!("{f:.0}")
    } else if f.is_infinite() {
        if f > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else {
        format!("{f}")
    }
}

/// spf13/cast `ToInt64`: numbers truncate, strings parse as integers (else 0).
fn to_i64(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        Value::Uint(u) => i64::try_from(*u).unwrap_or(i64::MAX),
        Value::Float(f) => *f as i64,
        Value::Bool(b) => i64::from(*b),
        Value::String(s) => s.trim().parse().unwrap_or(0),
        _ => 0,
    }
}

/// spf13/cast `ToFloat64`.
fn to_f64(v: &Value) -> f64 {
    match v {
        Value::Int(i) => *i as f64,
        Value::Uint(u) => *u as f64,
        Value::Float(f) => *f,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::String(s) => s.trim().parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

fn arg(args: &[Value], i: usize, name: &str) -> Result<Value, TemplateError> {
    args.get(i)
        .cloned()
        .ok_or_else(|| err(format!("wrong number of args for {name}: want at least {}", i + 1)))
}

fn s(v: impl Into<Arc<str>>) -> R {
    Ok(Value::String(v.into()))
}

/// Largest char boundary `<= i`.
fn floor_char(st: &str, i: usize) -> usize {
    let mut i = i.min(st.len());
    while !st.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn title(st: &str) -> String {
    let mut out = String::with_capacity(st.len());
    let mut prev_letter = false;
    for c in st.chars() {
        if !prev_letter && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_letter = c.is_alphanumeric() || c == '_' || c == '\'';
    }
    out
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn b64enc(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn b64dec(st: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(st.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0);
    for c in st.trim_end_matches('=').bytes() {
        let v = B64.iter().position(|&x| x == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            bytes.push((acc >> bits) as u8);
        }
    }
    String::from_utf8(bytes).ok()
}

fn url_decode(st: &str) -> Option<String> {
    let b = st.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let h = st.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(h, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Compiled regexes of a template's `regexReplaceAll*` calls (their patterns are nearly always
/// literals, so a handful per template).
type RegexCache = Mutex<Vec<(String, regex::bytes::Regex)>>;

const REGEX_CACHE_MAX: usize = 16;

/// Go `regexp.Expand`-style replacement: `$1`, `${1}`, `$name`, `${name}`.
fn regex_replace(args: &[Value], literal: bool, cache: &RegexCache) -> R {
    let pattern = to_str(&arg(args, 0, "regexReplaceAll")?);
    let src = to_str(&arg(args, 1, "regexReplaceAll")?);
    let repl = to_str(&arg(args, 2, "regexReplaceAll")?);
    let cached = cache
        .lock()
        .ok()
        .and_then(|c| c.iter().find(|(p, _)| *p == pattern).map(|(_, r)| r.clone()));
    let re = match cached {
        Some(re) => re,
        None => {
            let re = regex_compat::compile(&pattern).map_err(err)?;
            if let Ok(mut c) = cache.lock()
                && c.len() < REGEX_CACHE_MAX
            {
                c.push((pattern, re.clone()));
            }
            re
        }
    };
    let out = if literal {
        re.replace_all(src.as_bytes(), regex::bytes::NoExpand(repl.as_bytes()))
    } else {
        re.replace_all(src.as_bytes(), repl.as_bytes())
    };
    s(String::from_utf8_lossy(&out).into_owned())
}

fn round(args: &[Value]) -> R {
    let a = to_f64(&arg(args, 0, "round")?);
    let p = args.get(1).map_or(0, to_i64) as i32;
    let r_opt = args.get(2).map_or(0.5, to_f64);
    let pow = 10f64.powi(p);
    let digit = pow * a;
    let (int, frac) = (digit.trunc(), digit.fract());
    let rounder = if frac.abs() >= r_opt { int + frac.signum() } else { int };
    Ok(Value::Float(rounder / pow))
}

/// Nanoseconds of a time argument: an integer is taken as nanoseconds; anything else (the
/// string `__timestamp__` renders, Go's `time.Time.String()`) means the current line's time.
fn ts_nanos(v: &Value, ctx: &Mutex<LineCtx>) -> i64 {
    match v {
        Value::Int(i) => *i,
        _ => ctx.lock().map(|c| c.ts).unwrap_or(0),
    }
}

/// Days since 1970-01-01 → (year, month, day); Howard Hinnant's civil_from_days.
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Go's `time.Time.String()` in UTC: `2006-01-02 15:04:05.999999999 +0000 UTC`.
pub(crate) fn go_time_string(ts: i64) -> String {
    let (secs, nanos) = (ts.div_euclid(1_000_000_000), ts.rem_euclid(1_000_000_000));
    let (y, mo, d) = civil(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let mut out = format!(
        "{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02}",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    );
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push_str(" +0000 UTC");
    out
}

macro_rules! f {
    ($m:ident, $name:expr, $body:expr) => {
        $m.insert($name.to_string(), Arc::new($body));
    };
}

/// Loki's template functions; `ctx` feeds `__line__` and `__timestamp__`.
pub(crate) fn loki_funcs(ctx: &Arc<Mutex<LineCtx>>) -> FuncMap {
    let mut m = FuncMap::new();
    let s1 = |args: &[Value], i: usize| args.get(i).map(to_str).unwrap_or_default();
    // Go strings package names, value first.
    f!(m, "ToUpper", move |a: &[Value]| s(s1(a, 0).to_uppercase()));
    f!(m, "ToLower", move |a: &[Value]| s(s1(a, 0).to_lowercase()));
    f!(m, "Title", move |a: &[Value]| s(title(&s1(a, 0))));
    f!(m, "TrimSpace", move |a: &[Value]| s(s1(a, 0).trim()));
    f!(m, "TrimPrefix", move |a: &[Value]| {
        let v = s1(a, 0);
        s(v.strip_prefix(s1(a, 1).as_str()).unwrap_or(&v))
    });
    f!(m, "TrimSuffix", move |a: &[Value]| {
        let v = s1(a, 0);
        s(v.strip_suffix(s1(a, 1).as_str()).unwrap_or(&v))
    });
    f!(m, "Replace", move |a: &[Value]| {
        let n = a.get(3).map_or(-1, to_i64);
        let (v, old, new) = (s1(a, 0), s1(a, 1), s1(a, 2));
        s(if n < 0 {
            v.replace(&old, &new)
        } else {
            v.replacen(&old, &new, n as usize)
        })
    });
    // sprig names, value last.
    f!(m, "upper", move |a: &[Value]| s(s1(a, 0).to_uppercase()));
    f!(m, "lower", move |a: &[Value]| s(s1(a, 0).to_lowercase()));
    f!(m, "title", move |a: &[Value]| s(title(&s1(a, 0))));
    f!(m, "trim", move |a: &[Value]| s(s1(a, 0).trim()));
    f!(m, "trimAll", move |a: &[Value]| {
        let cut = s1(a, 0);
        s(s1(a, 1).trim_matches(|c| cut.contains(c)))
    });
    f!(m, "trimPrefix", move |a: &[Value]| {
        let v = s1(a, 1);
        s(v.strip_prefix(s1(a, 0).as_str()).unwrap_or(&v))
    });
    f!(m, "trimSuffix", move |a: &[Value]| {
        let v = s1(a, 1);
        s(v.strip_suffix(s1(a, 0).as_str()).unwrap_or(&v))
    });
    f!(m, "replace", move |a: &[Value]| s(
        s1(a, 2).replace(&s1(a, 0), &s1(a, 1))
    ));
    f!(m, "repeat", move |a: &[Value]| s(
        s1(a, 1).repeat(a.first().map_or(0, to_i64).clamp(0, 10_000) as usize)
    ));
    f!(m, "contains", move |a: &[Value]| Ok(Value::Bool(
        s1(a, 1).contains(&s1(a, 0))
    )));
    f!(m, "hasPrefix", move |a: &[Value]| Ok(Value::Bool(
        s1(a, 1).starts_with(&s1(a, 0))
    )));
    f!(m, "hasSuffix", move |a: &[Value]| Ok(Value::Bool(
        s1(a, 1).ends_with(&s1(a, 0))
    )));
    f!(m, "trunc", move |a: &[Value]| {
        let (c, v) = (a.first().map_or(0, to_i64), s1(a, 1));
        let len = v.len() as i64;
        s(if c < 0 && len + c > 0 {
            v[floor_char(&v, (len + c) as usize)..].to_string()
        } else if c >= 0 && len > c {
            v[..floor_char(&v, c as usize)].to_string()
        } else {
            v
        })
    });
    f!(m, "substr", move |a: &[Value]| {
        let (start, end, v) = (a.first().map_or(0, to_i64), a.get(1).map_or(0, to_i64), s1(a, 2));
        let len = v.len() as i64;
        let (st, en) = if start < 0 {
            (0, end.clamp(0, len))
        } else if end < 0 || end > len {
            (start.min(len), len)
        } else {
            (start.min(end), end)
        };
        s(v[floor_char(&v, st as usize)..floor_char(&v, en as usize)].to_string())
    });
    f!(m, "indent", move |a: &[Value]| {
        let pad = " ".repeat(a.first().map_or(0, to_i64).clamp(0, 1000) as usize);
        s(format!("{pad}{}", s1(a, 1).replace('\n', &format!("\n{pad}"))))
    });
    f!(m, "nindent", move |a: &[Value]| {
        let pad = " ".repeat(a.first().map_or(0, to_i64).clamp(0, 1000) as usize);
        s(format!("\n{pad}{}", s1(a, 1).replace('\n', &format!("\n{pad}"))))
    });
    f!(m, "default", move |a: &[Value]| {
        let d = arg(a, 0, "default")?;
        Ok(match a.get(1) {
            Some(v) if v.is_truthy() => v.clone(),
            _ => d,
        })
    });
    let cache: Arc<RegexCache> = Arc::default();
    let c = Arc::clone(&cache);
    f!(m, "regexReplaceAll", move |a: &[Value]| regex_replace(a, false, &c));
    f!(m, "regexReplaceAllLiteral", move |a: &[Value]| regex_replace(
        a, true, &cache
    ));
    f!(m, "b64enc", move |a: &[Value]| s(b64enc(s1(a, 0).as_bytes())));
    f!(m, "b64dec", move |a: &[Value]| s(b64dec(&s1(a, 0)).unwrap_or_default()));
    f!(m, "urlencode", move |a: &[Value]| s(gotmpl::url_encode(&s1(a, 0))));
    f!(m, "urldecode", move |a: &[Value]| s(
        url_decode(&s1(a, 0)).ok_or_else(|| err("invalid URL escape"))?
    ));
    f!(m, "alignLeft", move |a: &[Value]| {
        let (n, v) = (a.first().map_or(0, to_i64).max(0) as usize, s1(a, 1));
        let len = v.chars().count();
        s(if len >= n {
            v.chars().take(n).collect()
        } else {
            format!("{v}{}", " ".repeat(n - len))
        })
    });
    f!(m, "alignRight", move |a: &[Value]| {
        let (n, v) = (a.first().map_or(0, to_i64).max(0) as usize, s1(a, 1));
        let len = v.chars().count();
        s(if len >= n {
            v.chars().skip(len - n).collect()
        } else {
            format!("{}{v}", " ".repeat(n - len))
        })
    });
    // Math (sprig: integer ops go through int64, `*f` variants through float64).
    f!(m, "add", |a: &[Value]| Ok(Value::Int(
        a.iter().map(to_i64).fold(0i64, i64::wrapping_add)
    )));
    f!(m, "mul", |a: &[Value]| Ok(Value::Int(
        a.iter().map(to_i64).fold(1i64, i64::wrapping_mul)
    )));
    f!(m, "sub", |a: &[Value]| Ok(Value::Int(
        to_i64(&arg(a, 0, "sub")?).wrapping_sub(to_i64(&arg(a, 1, "sub")?))
    )));
    f!(m, "div", |a: &[Value]| {
        let d = to_i64(&arg(a, 1, "div")?);
        to_i64(&arg(a, 0, "div")?)
            .checked_div(d)
            .map(Value::Int)
            .ok_or_else(|| err("integer divide by zero"))
    });
    f!(m, "mod", |a: &[Value]| {
        let d = to_i64(&arg(a, 1, "mod")?);
        to_i64(&arg(a, 0, "mod")?)
            .checked_rem(d)
            .map(Value::Int)
            .ok_or_else(|| err("integer divide by zero"))
    });
    f!(m, "addf", |a: &[Value]| Ok(Value::Float(a.iter().map(to_f64).sum())));
    f!(m, "mulf", |a: &[Value]| Ok(Value::Float(
        a.iter().map(to_f64).product()
    )));
    f!(m, "subf", |a: &[Value]| Ok(Value::Float(
        a.iter().map(to_f64).reduce(|x, y| x - y).unwrap_or(0.0)
    )));
    f!(m, "divf", |a: &[Value]| Ok(Value::Float(
        a.iter().map(to_f64).reduce(|x, y| x / y).unwrap_or(0.0)
    )));
    f!(m, "max", |a: &[Value]| Ok(Value::Int(
        a.iter().map(to_i64).max().unwrap_or(0)
    )));
    f!(m, "min", |a: &[Value]| Ok(Value::Int(
        a.iter().map(to_i64).min().unwrap_or(0)
    )));
    f!(m, "maxf", |a: &[Value]| Ok(Value::Float(
        a.iter().map(to_f64).fold(f64::NEG_INFINITY, f64::max)
    )));
    f!(m, "minf", |a: &[Value]| Ok(Value::Float(
        a.iter().map(to_f64).fold(f64::INFINITY, f64::min)
    )));
    f!(m, "float64", |a: &[Value]| Ok(Value::Float(to_f64(&arg(
        a, 0, "float64"
    )?))));
    f!(m, "int", |a: &[Value]| Ok(Value::Int(to_i64(&arg(a, 0, "int")?))));
    f!(m, "floor", |a: &[Value]| Ok(Value::Float(
        to_f64(&arg(a, 0, "floor")?).floor()
    )));
    f!(m, "ceil", |a: &[Value]| Ok(Value::Float(
        to_f64(&arg(a, 0, "ceil")?).ceil()
    )));
    f!(m, "round", round);
    // Line context.
    let c = Arc::clone(ctx);
    f!(m, "__line__", move |_: &[Value]| s(c
        .lock()
        .map(|c| c.line.clone())
        .unwrap_or_default()));
    let c = Arc::clone(ctx);
    f!(m, "__timestamp__", move |_: &[Value]| s(go_time_string(
        c.lock().map(|c| c.ts).unwrap_or(0)
    )));
    let c = Arc::clone(ctx);
    f!(m, "unixEpoch", move |a: &[Value]| Ok(Value::Int(
        ts_nanos(&arg(a, 0, "unixEpoch")?, &c).div_euclid(1_000_000_000)
    )));
    let c = Arc::clone(ctx);
    f!(m, "unixEpochMillis", move |a: &[Value]| Ok(Value::Int(
        ts_nanos(&arg(a, 0, "unixEpochMillis")?, &c).div_euclid(1_000_000)
    )));
    let c = Arc::clone(ctx);
    f!(m, "unixEpochNanos", move |a: &[Value]| Ok(Value::Int(ts_nanos(
        &arg(a, 0, "unixEpochNanos")?,
        &c
    ))));
    f!(m, "toDateString", |a: &[Value]| s(go_time_string(to_i64(&arg(
        a,
        0,
        "toDateString"
    )?))));
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(b64enc(b"hello"), "aGVsbG8=");
        assert_eq!(b64dec("aGVsbG8=").as_deref(), Some("hello"));
        assert_eq!(url_decode("a+b%2F").as_deref(), Some("a b/"));
        assert_eq!(title("hello wORLD-x"), "Hello WORLD-X");
        assert_eq!(
            go_time_string(1_700_000_000_500_000_000),
            "2023-11-14 22:13:20.5 +0000 UTC"
        );
        assert_eq!(fmt_float(14.0), "14");
        assert_eq!(fmt_float(1.5), "1.5");
    }
}
