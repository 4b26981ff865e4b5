//! Ingest-time discovery, as Loki 3 does by default: a `service_name` stream label taken from
//! the first of a list of labels (`discover_service_name`), a `detected_level` structured
//! metadata value per entry (`discover_log_levels`), and structured-metadata names normalised
//! the way OTLP attribute names become labels (`k8s.pod.name` -> `k8s_pod_name`). Grafana's
//! log-volume histogram and Logs Drilldown group by `service_name` and `detected_level`.

use lode_model::limits::LimitsConfig;
use lode_model::{Entry, Labels};

pub const SERVICE_NAME: &str = "service_name";
pub const DETECTED_LEVEL: &str = "detected_level";
const UNKNOWN_SERVICE: &str = "unknown_service";

/// Adds `service_name` when discovery is on and the stream has none.
pub fn service_name(labels: Labels, limits: &LimitsConfig) -> Labels {
    if limits.discover_service_name.is_empty() || labels.get(SERVICE_NAME).is_some() {
        return labels;
    }
    let value = limits
        .discover_service_name
        .iter()
        .find_map(|l| labels.get(l).filter(|v| !v.is_empty()))
        .unwrap_or(UNKNOWN_SERVICE)
        .to_string();
    let mut pairs = labels.clone().into_pairs();
    pairs.push((SERVICE_NAME.to_string(), value));
    Labels::from_pairs(pairs).unwrap_or(labels)
}

/// An OTLP attribute name as a label name: characters outside `[A-Za-z0-9_]` become `_`, a
/// leading digit gets `key_` in front, a single leading `_` gets `key`.
pub fn normalize_metadata_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "key_");
    } else if out.starts_with('_') && !out.starts_with("__") {
        out.insert_str(0, "key");
    }
    out
}

/// Normalises an entry's structured-metadata names in place.
pub fn normalize_metadata(entry: &mut Entry) {
    for (n, _) in &mut entry.metadata {
        // What `normalize_metadata_name` would leave unchanged, checked without allocating.
        let valid = n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !n.starts_with(|c: char| c.is_ascii_digit())
            && (n.starts_with("__") || !n.starts_with('_'));
        if !valid {
            *n = normalize_metadata_name(n);
        }
    }
}

/// A level value in Loki's vocabulary, or `None` when it is not a known level.
fn known_level(v: &str) -> Option<&'static str> {
    let is = |w: &str| v.eq_ignore_ascii_case(w);
    Some(if is("trace") || is("trc") {
        "trace"
    } else if is("debug") || is("dbg") {
        "debug"
    } else if is("info") || is("inf") || is("information") {
        "info"
    } else if is("warn") || is("wrn") || is("warning") {
        "warn"
    } else if is("error") || is("err") {
        "error"
    } else if is("critical") {
        "critical"
    } else if is("fatal") {
        "fatal"
    } else {
        return None;
    })
}

/// A level given explicitly (label, metadata): known levels normalised, others kept as given.
fn normalize_level(v: &str) -> String {
    known_level(v).map_or_else(|| v.to_string(), str::to_string)
}

/// Loki's last resort: level words anywhere in the line.
fn level_from_words(line: &str) -> &'static str {
    let any = |ws: &[&str]| ws.iter().any(|w| line.contains(w));
    if any(&["info:", "INFO:", "[info]", "[INFO]", "info", "INFO"]) {
        "info"
    } else if any(&["err:", "ERR:", "[err]", "[ERR]", "[error]", "[ERROR]"]) {
        "error"
    } else if any(&[
        "warn:",
        "WARN:",
        "[warn]",
        "[WARN]",
        "[warning]",
        "[WARNING]",
        "warning",
        "WARNING",
    ]) {
        "warn"
    } else if any(&["critical:", "CRITICAL:", "[critical]", "[CRITICAL]"]) {
        "critical"
    } else if any(&["debug:", "DEBUG:", "[debug]", "[DEBUG]", "debug", "DEBUG"]) {
        "debug"
    } else {
        "unknown"
    }
}

/// The OTLP severity number's level (Loki keeps it as `severity_number` metadata).
fn level_from_severity_number(v: &str) -> &'static str {
    match v.parse::<i64>() {
        Err(_) => "info",
        Ok(0) => "unknown",
        Ok(n) if n <= 4 => "trace",
        Ok(n) if n <= 8 => "debug",
        Ok(n) if n <= 12 => "info",
        Ok(n) if n <= 16 => "warn",
        Ok(n) if n <= 20 => "error",
        Ok(n) if n <= 24 => "fatal",
        Ok(_) => "unknown",
    }
}

fn looks_like_json(line: &str) -> bool {
    let t = line.trim();
    t.starts_with('{') && t.ends_with('}')
}

/// The first string value (keys in sorted order, objects before their nested objects are
/// finished) at any object depth whose key is one of
/// `fields` (arrays are not entered), as Loki's JSON level lookup does.
fn json_level(line: &str, fields: &[String]) -> Option<String> {
    fn find(v: &serde_json::Value, fields: &[String]) -> Option<String> {
        let obj = v.as_object()?;
        for (k, v) in obj {
            match v {
                serde_json::Value::String(s) if fields.iter().any(|f| f == k) => return Some(s.clone()),
                serde_json::Value::Object(_) => {
                    if let Some(s) = find(v, fields) {
                        return Some(s);
                    }
                }
                _ => {}
            }
        }
        None
    }
    // Only lines that mention a level key are looked at: most lines pay a substring search.
    if !fields.iter().any(|f| line.contains(f.as_str())) {
        return None;
    }
    if let Some(v) = json_level_fast(line, fields) {
        return Some(v.to_string());
    }
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    find(&v, fields)
}

/// The common case without parsing: the first `"<field>": "<plain string>"` in the text, when
/// nothing before it could change its meaning (no array, no escape). `None` means "ask the
/// parser", not "no level".
fn json_level_fast<'a>(line: &'a str, fields: &[String]) -> Option<&'a str> {
    let mut best: Option<(usize, usize)> = None; // (key start, value start)
    for f in fields {
        let mut from = 0;
        while let Some(i) = line.get(from..).and_then(|s| s.find(f.as_str())).map(|i| i + from) {
            from = i + 1;
            // A key: the name in quotes, then a colon.
            let quoted =
                i > 0 && line.as_bytes().get(i - 1) == Some(&b'"') && line.as_bytes().get(i + f.len()) == Some(&b'"');
            if !quoted {
                continue;
            }
            let Some(after) = line.get(i + f.len() + 1..).map(str::trim_start) else {
                break;
            };
            if let Some(rest) = after.strip_prefix(':') {
                let rest = rest.trim_start();
                if rest.starts_with('"') && best.is_none_or(|(k, _)| i - 1 < k) {
                    best = Some((i - 1, line.len() - rest.len() + 1));
                }
                break;
            }
        }
    }
    let (key, start) = best?;
    let before = line.get(..key)?;
    if before.contains('[') || before.contains('\\') {
        return None;
    }
    let value = line.get(start..)?;
    let end = value.find('"')?;
    let v = value.get(..end)?;
    (!v.contains('\\')).then_some(v)
}

/// The value of the best-ranked `fields` key (case-insensitive) among the line's logfmt pairs.
fn logfmt_level<'a>(line: &'a str, fields: &[String]) -> Option<&'a str> {
    let mut best: Option<(usize, &'a str)> = None;
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        let ks = i;
        while i < b.len() && b[i] != b'=' && b[i] != b' ' {
            i += 1;
        }
        let key = &line[ks..i];
        if i >= b.len() || b[i] != b'=' {
            continue;
        }
        i += 1;
        let value = if i < b.len() && b[i] == b'"' {
            i += 1;
            let vs = i;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            let v = line.get(vs..i.min(b.len())).unwrap_or("");
            i += 1;
            v
        } else {
            let vs = i;
            while i < b.len() && b[i] != b' ' {
                i += 1;
            }
            &line[vs..i]
        };
        if let Some(rank) = fields.iter().position(|f| f.eq_ignore_ascii_case(key))
            && best.as_ref().is_none_or(|(r, _)| rank < *r)
        {
            best = Some((rank, value));
            if rank == 0 {
                break;
            }
        }
    }
    best.map(|(_, v)| v)
}

/// The level a stream's labels give all its entries (computed once per stream and push).
pub fn stream_level(labels: &Labels, limits: &LimitsConfig) -> Option<String> {
    if !limits.discover_log_levels {
        return None;
    }
    limits
        .log_level_fields
        .iter()
        .find_map(|f| labels.get(f))
        .map(normalize_level)
}

/// Adds (or normalises) the entry's `detected_level` metadata when discovery is on: from a
/// level label of the stream (`stream_level`), else level metadata, else the OTLP severity
/// number, else the line's JSON or logfmt level field, else level words in the line.
pub fn detected_level(entry: &mut Entry, stream_level: Option<&str>, limits: &LimitsConfig) {
    if !limits.discover_log_levels {
        return;
    }
    if let Some((_, v)) = entry.metadata.iter_mut().find(|(n, _)| n == DETECTED_LEVEL) {
        *v = normalize_level(v);
        return;
    }
    let fields = &limits.log_level_fields;
    let from_metadata = || {
        if entry.metadata.is_empty() {
            return None;
        }
        fields.iter().find_map(|f| {
            entry
                .metadata
                .iter()
                .find(|(n, _)| n == f)
                .map(|(_, v)| normalize_level(v))
        })
    };
    let level = if let Some(v) = stream_level {
        v.to_string()
    } else if let Some(v) = from_metadata() {
        v
    } else if let Some((_, v)) = entry.metadata.iter().find(|(n, _)| n == "severity_number") {
        level_from_severity_number(v).to_string()
    } else {
        let line = entry.line.as_str();
        let found: Option<std::borrow::Cow<'_, str>> = if looks_like_json(line) {
            json_level(line, fields).map(std::borrow::Cow::Owned)
        } else if line.contains('=') {
            logfmt_level(line, fields).map(std::borrow::Cow::Borrowed)
        } else {
            None
        };
        found
            .as_deref()
            .and_then(known_level)
            .unwrap_or_else(|| level_from_words(line))
            .to_string()
    };
    entry.metadata.push((DETECTED_LEVEL.to_string(), level));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> LimitsConfig {
        LimitsConfig::default()
    }

    fn level_of(line: &str, labels: &str, md: &[(&str, &str)]) -> String {
        let mut e = Entry::new(1, line);
        e.metadata = md.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        let l = limits();
        detected_level(&mut e, stream_level(&Labels::parse(labels).unwrap(), &l).as_deref(), &l);
        e.metadata
            .iter()
            .find(|(n, _)| n == DETECTED_LEVEL)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    #[test]
    fn service_name_comes_from_the_first_listed_label() {
        let l = |s: &str| service_name(Labels::parse(s).unwrap(), &limits()).to_string();
        assert_eq!(l(r#"{job="j", app="a"}"#), r#"{app="a", job="j", service_name="a"}"#);
        assert_eq!(l(r#"{env="prod"}"#), r#"{env="prod", service_name="unknown_service"}"#);
        assert_eq!(l(r#"{service_name="x", app="a"}"#), r#"{app="a", service_name="x"}"#);
        let off = LimitsConfig {
            discover_service_name: vec![],
            ..limits()
        };
        assert_eq!(
            service_name(Labels::parse(r#"{app="a"}"#).unwrap(), &off).to_string(),
            r#"{app="a"}"#
        );
    }

    #[test]
    fn levels_come_from_labels_metadata_fields_then_words() {
        assert_eq!(level_of("boom", r#"{level="WARNING"}"#, &[]), "warn");
        assert_eq!(level_of("boom", r#"{a="b"}"#, &[("severity", "ERR")]), "error");
        assert_eq!(level_of("boom", r#"{a="b"}"#, &[("severity_number", "17")]), "error");
        assert_eq!(
            level_of(r#"{"msg":"x","log":{"level":"dbg"}}"#, r#"{a="b"}"#, &[]),
            "debug"
        );
        assert_eq!(
            level_of(r#"{"level":5}"#, r#"{a="b"}"#, &[]),
            "unknown",
            "numbers are not levels"
        );
        assert_eq!(
            level_of(r#"{"msg":"x", "severity" : "Warning"}"#, r#"{a="b"}"#, &[]),
            "warn"
        );
        assert_eq!(level_of(r#"{"level":5,"severity":"warn"}"#, r#"{a="b"}"#, &[]), "warn");
        assert_eq!(
            level_of(r#"{"items":[{"level":"debug"}],"lvl":"error"}"#, r#"{a="b"}"#, &[]),
            "error",
            "arrays are not entered"
        );
        assert_eq!(
            level_of(r#"{"msg":"say \"level\": \"x\"","level":"info"}"#, r#"{a="b"}"#, &[]),
            "info"
        );
        assert_eq!(
            json_level_fast(r#"{"a":1,"level": "error"}"#, &LimitsConfig::default().log_level_fields),
            Some("error")
        );
        assert_eq!(
            level_of("ts=1 lvl=info level=error msg=x", r#"{a="b"}"#, &[]),
            "error",
            "`level` ranks first"
        );
        assert_eq!(level_of(r#"level="Fatal" msg=x"#, r#"{a="b"}"#, &[]), "fatal");
        assert_eq!(level_of("GET /x 500 [ERROR] upstream", r#"{a="b"}"#, &[]), "error");
        assert_eq!(level_of("2024 WARNING disk", r#"{a="b"}"#, &[]), "warn");
        assert_eq!(level_of("nothing here", r#"{a="b"}"#, &[]), "unknown");
        // An explicit detected_level is only normalised; an odd level label is kept as given.
        assert_eq!(level_of("x", r#"{a="b"}"#, &[("detected_level", "INFO")]), "info");
        assert_eq!(level_of("x", r#"{level="notice"}"#, &[]), "notice");
    }

    #[test]
    fn metadata_names_are_normalised_as_otlp_attributes() {
        assert_eq!(normalize_metadata_name("k8s.pod.name"), "k8s_pod_name");
        assert_eq!(normalize_metadata_name("9lives"), "key_9lives");
        assert_eq!(normalize_metadata_name("_x"), "key_x");
        assert_eq!(normalize_metadata_name("__x"), "__x");
        let mut e = Entry::new(1, "x");
        e.metadata = vec![
            ("trace_id".into(), "1".into()),
            ("http.status-code".into(), "200".into()),
        ];
        normalize_metadata(&mut e);
        assert_eq!(e.metadata[1].0, "http_status_code");
        assert_eq!(e.metadata[0].0, "trace_id");
    }
}
