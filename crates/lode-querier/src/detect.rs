//! What Logs Drilldown asks of sampled lines: the fields in them (`detected_fields`, as Loki
//! finds them: structured metadata, then the line through the `json` parser or, failing that,
//! `logfmt`), a field's values, and log patterns (a simple tokenizer, not Loki's Drain: tokens
//! holding digits and quoted values become `<_>`, so lines that differ only there share a
//! pattern; the pattern is valid as a `|>` filter for the lines it came from).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use lode_logql::stages::{LogfmtScanner, parse_bytes, parse_go_duration};
use lode_model::api::{DetectedField, LogPattern};
use lode_model::{Labels, Stream};

/// Names Loki never reports as fields.
const ERROR_LABELS: [&str; 3] = ["__error__", "__error_details__", "__preserve_error__"];
/// Patterns returned at most (the most frequent).
const MAX_PATTERNS: usize = 300;

/// A UUID in its canonical `8-4-4-4-12` hex form, or bare 32 hex digits.
pub(crate) fn is_uuid(s: &str) -> bool {
    let s = s.strip_prefix("urn:uuid:").unwrap_or(s);
    let s = s.strip_prefix('{').and_then(|r| r.strip_suffix('}')).unwrap_or(s);
    let hex = |p: &str| p.chars().all(|c| c.is_ascii_hexdigit());
    match s.len() {
        32 => hex(s),
        36 => {
            let parts: Vec<&str> = s.split('-').collect();
            parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12]) && parts.iter().all(|p| hex(p))
        }
        _ => false,
    }
}

/// Loki's `determineType`: the first of int, float, boolean (Go's `ParseBool`), duration (Go's
/// `ParseDuration`), bytes (go-humanize) that parses; else string.
fn value_type(v: &str) -> &'static str {
    if v.parse::<i64>().is_ok() {
        "int"
    } else if v.parse::<f64>().is_ok() {
        "float"
    } else if matches!(
        v,
        "1" | "t" | "T" | "TRUE" | "true" | "True" | "0" | "f" | "F" | "FALSE" | "false" | "False"
    ) {
        "boolean"
    } else if parse_go_duration(v).is_some() {
        "duration"
    } else if !v.trim().is_empty() && parse_bytes(v).is_some() {
        "bytes"
    } else {
        "string"
    }
}

/// The type that fits two observations: equal types stay, ints widen to floats, anything else
/// is a string.
fn widen(a: &'static str, b: &'static str) -> &'static str {
    match (a, b) {
        _ if a == b => a,
        ("int", "float") | ("float", "int") => "float",
        _ => "string",
    }
}

/// A field name as Loki's parsers sanitise keys: characters other than `[A-Za-z0-9_]` become
/// `_`, and a leading digit gets a `_` prefix.
fn sanitize(key: &str) -> String {
    let mut out: String = key
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// One field found in a line, with the parser and the JSON path it came from.
struct Found {
    name: String,
    value: String,
    parser: Option<&'static str>,
    json_path: Vec<String>,
}

fn flatten_json(prefix: &mut Vec<String>, v: &serde_json::Value, out: &mut Vec<Found>) {
    let serde_json::Value::Object(map) = v else { return };
    for (k, v) in map {
        prefix.push(k.clone());
        let scalar = match v {
            serde_json::Value::Object(_) => {
                flatten_json(prefix, v, out);
                None
            }
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            serde_json::Value::Bool(b) => Some(b.to_string()),
            // Loki's json parser extracts neither nulls nor arrays.
            serde_json::Value::Null | serde_json::Value::Array(_) => None,
        };
        if let Some(value) = scalar {
            let name = sanitize(&prefix.join("_"));
            out.push(Found {
                name,
                value,
                parser: Some("json"),
                json_path: prefix.clone(),
            });
        }
        prefix.pop();
    }
}

/// Fields of one line: the `json` parser if the line is a JSON object, else `logfmt` (pairs
/// with a non-empty value; a line with none has no fields).
fn parse_line(line: &str) -> Vec<Found> {
    let mut out = Vec::new();
    if line.trim_start().starts_with('{')
        && let Ok(v) = serde_json::from_str::<serde_json::Value>(line)
    {
        flatten_json(&mut Vec::new(), &v, &mut out);
        return out;
    }
    let mut scan = LogfmtScanner::new(line);
    while let Some(pair) = scan.scan() {
        if let Ok((k, Some(v))) = pair
            && !v.is_empty()
            && !k.is_empty()
        {
            out.push(Found {
                name: sanitize(k),
                value: v.into_owned(),
                parser: Some("logfmt"),
                json_path: Vec::new(),
            });
        }
    }
    out
}

/// Every field of every entry: structured metadata, labels the query's own parsers extracted,
/// and what `parse_line` finds. A parsed name that is also a stream label gets Loki's
/// `_extracted` suffix.
fn for_each_field(streams: &[Stream], mut f: impl FnMut(Found)) {
    for s in streams {
        let labels = Labels::parse(&s.labels).unwrap_or_default();
        for e in &s.entries {
            for (n, v) in &e.metadata {
                f(Found {
                    name: n.clone(),
                    value: v.clone(),
                    parser: None,
                    json_path: Vec::new(),
                });
            }
            let found = parse_line(&e.line);
            let parser = found.first().and_then(|f| f.parser);
            for (n, v) in &e.parsed {
                if found.iter().any(|x| &x.name == n) || e.metadata.iter().any(|(m, _)| m == n) {
                    continue;
                }
                f(Found {
                    name: n.clone(),
                    value: v.clone(),
                    parser,
                    json_path: Vec::new(),
                });
            }
            for mut x in found {
                if labels.get(&x.name).is_some() {
                    x.name.push_str("_extracted");
                }
                f(x);
            }
        }
    }
}

/// `detected_fields`: at most `limit` fields (the first found, newest lines first), sorted by
/// name.
pub(crate) fn detect_fields(streams: &[Stream], limit: usize) -> Vec<DetectedField> {
    struct Acc {
        values: BTreeSet<String>,
        ty: &'static str,
        parsers: Option<BTreeSet<&'static str>>,
        json_path: Vec<String>,
    }
    let mut fields: HashMap<String, Acc> = HashMap::new();
    for_each_field(streams, |x| {
        if ERROR_LABELS.contains(&x.name.as_str()) {
            return;
        }
        if !fields.contains_key(&x.name) {
            if fields.len() >= limit {
                return;
            }
            fields.insert(
                x.name.clone(),
                Acc {
                    values: BTreeSet::new(),
                    ty: value_type(&x.value),
                    parsers: x.parser.map(|_| BTreeSet::new()),
                    json_path: x.json_path.clone(),
                },
            );
        }
        let Some(acc) = fields.get_mut(&x.name) else { return };
        acc.ty = widen(acc.ty, value_type(&x.value));
        if let (Some(ps), Some(p)) = (acc.parsers.as_mut(), x.parser) {
            ps.insert(p);
        }
        if acc.json_path.is_empty() {
            acc.json_path = x.json_path;
        }
        acc.values.insert(x.value);
    });
    let mut out: Vec<DetectedField> = fields
        .into_iter()
        .map(|(label, a)| DetectedField {
            label,
            field_type: a.ty,
            cardinality: a.values.len() as u64,
            parsers: a.parsers.map(|p| p.into_iter().map(str::to_string).collect()),
            json_path: a.json_path,
        })
        .collect();
    out.sort_by(|a, b| a.label.cmp(&b.label));
    out
}

/// `detected_field/{name}/values`: distinct values of one field, sorted, at most `limit`.
pub(crate) fn field_values(streams: &[Stream], name: &str, limit: usize) -> Vec<String> {
    let mut values = BTreeSet::new();
    for_each_field(streams, |x| {
        if x.name == name {
            values.insert(x.value);
        }
    });
    values.into_iter().take(limit).collect()
}

/// Whether a token is variable: it holds a digit, or is long and hex-like.
fn variable(token: &str) -> bool {
    token.chars().any(|c| c.is_ascii_digit()) || (token.len() >= 16 && token.chars().all(|c| c.is_ascii_hexdigit()))
}

/// A line's pattern: whitespace kept as is, each variable token (or the value of a `k=v`
/// token, or a quoted string) replaced by `<_>`.
pub(crate) fn line_pattern(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while !rest.is_empty() {
        let ws = rest.len() - rest.trim_start().len();
        out.push_str(&rest[..ws]);
        rest = &rest[ws..];
        if rest.is_empty() {
            break;
        }
        // A token runs to the next whitespace, except inside double quotes.
        let mut end = rest.len();
        let mut quoted = false;
        let mut escaped = false;
        for (i, c) in rest.char_indices() {
            if escaped {
                escaped = false;
            } else if quoted && c == '\\' {
                escaped = true;
            } else if c == '"' {
                quoted = !quoted;
            } else if !quoted && c.is_whitespace() {
                end = i;
                break;
            }
        }
        let token = &rest[..end];
        rest = &rest[end..];
        let wild = match token.split_once('=') {
            Some((k, v)) if !k.is_empty() && !k.contains('"') => {
                if v.starts_with('"') || variable(v) {
                    format!("{k}=<_>")
                } else {
                    token.to_string()
                }
            }
            _ if token.contains('"') || variable(token) => "<_>".to_string(),
            _ => token.to_string(),
        };
        out.push_str(&wild);
    }
    out
}

/// A line's level for the pattern: `detected_level` or `level` metadata, else a logfmt or JSON
/// `level` field.
fn level_of(e: &lode_model::Entry) -> Option<String> {
    let meta = |n: &str| e.metadata.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    meta("detected_level").or_else(|| meta("level")).or_else(|| {
        parse_line(&e.line)
            .into_iter()
            .find(|f| f.name == "level" || f.name == "lvl")
            .map(|f| f.value.to_ascii_lowercase())
    })
}

/// Patterns of the sampled lines with their counts per step (buckets `start + k*step`), most
/// frequent first; patterns with nothing fixed (only `<_>`) are left out.
pub(crate) fn patterns(streams: &[Stream], start: i64, step: i64) -> Vec<LogPattern> {
    let mut acc: HashMap<(String, Option<String>), BTreeMap<i64, u64>> = HashMap::new();
    for s in streams {
        for e in &s.entries {
            let p = line_pattern(&e.line);
            if p.replace("<_>", "").trim().is_empty() {
                continue;
            }
            let bucket = start + (e.ts - start).div_euclid(step) * step;
            *acc.entry((p, level_of(e))).or_default().entry(bucket).or_default() += 1;
        }
    }
    let mut out: Vec<(u64, LogPattern)> = acc
        .into_iter()
        .map(|((pattern, level), samples)| {
            (
                samples.values().sum(),
                LogPattern {
                    pattern,
                    level,
                    samples: samples.into_iter().collect(),
                },
            )
        })
        .collect();
    out.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.pattern.cmp(&b.1.pattern)));
    out.into_iter().take(MAX_PATTERNS).map(|(_, p)| p).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use lode_model::Entry;

    fn stream(labels: &str, entries: Vec<Entry>) -> Stream {
        Stream {
            labels: labels.into(),
            entries,
        }
    }

    fn entry(ts: i64, line: &str, meta: &[(&str, &str)]) -> Entry {
        Entry {
            ts,
            line: line.into(),
            metadata: meta.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            parsed: vec![],
        }
    }

    #[test]
    fn fields_from_metadata_json_and_logfmt() {
        let s = vec![
            stream(
                r#"{app="api"}"#,
                vec![
                    entry(
                        3,
                        r#"{"status":200,"took":"1.5s","req":{"path":"/a"},"app":"x","ok":true}"#,
                        &[],
                    ),
                    entry(2, r#"{"status":404,"took":"20ms","req":{"path":"/b"},"ok":false}"#, &[]),
                ],
            ),
            stream(
                r#"{app="web"}"#,
                vec![entry(
                    1,
                    "level=info msg=\"hi there\" size=10KB ratio=0.5",
                    &[("trace_id", "abc")],
                )],
            ),
        ];
        let f = detect_fields(&s, 100);
        let get = |n: &str| {
            f.iter()
                .find(|x| x.label == n)
                .unwrap_or_else(|| panic!("{n} in {f:?}"))
        };
        assert_eq!(get("status").field_type, "int");
        assert_eq!(get("status").cardinality, 2);
        assert_eq!(get("status").parsers, Some(vec!["json".to_string()]));
        assert_eq!(get("took").field_type, "duration");
        assert_eq!(get("req_path").json_path, vec!["req".to_string(), "path".to_string()]);
        assert_eq!(get("ok").field_type, "boolean");
        assert_eq!(get("app_extracted").cardinality, 1, "a stream label's name is suffixed");
        assert_eq!(get("level").parsers, Some(vec!["logfmt".to_string()]));
        assert_eq!(get("size").field_type, "bytes");
        assert_eq!(get("ratio").field_type, "float");
        assert_eq!(get("msg").field_type, "string");
        assert_eq!(get("trace_id").parsers, None, "structured metadata has no parser");
        assert_eq!(detect_fields(&s, 2).len(), 2);
        assert_eq!(field_values(&s, "status", 10), vec!["200", "404"]);
        assert_eq!(field_values(&s, "status", 1), vec!["200"]);
        assert!(field_values(&s, "nope", 10).is_empty());
    }

    #[test]
    fn plain_text_has_no_fields() {
        let s = vec![stream(r#"{a="b"}"#, vec![entry(1, "hello world", &[])])];
        assert!(detect_fields(&s, 10).is_empty());
    }

    #[test]
    fn patterns_replace_variable_tokens() {
        assert_eq!(
            line_pattern(r#"level=info  msg="user 42 logged in" took=12ms path=/home"#),
            "level=info  msg=<_> took=<_> path=/home"
        );
        assert_eq!(line_pattern("GET /api/v1/users/123 200 0.5ms"), "GET <_> <_> <_>");
        let lines: Vec<Entry> = (0..6)
            .map(|i| entry(10 + i * 5, &format!("level=warn request {i} failed"), &[]))
            .chain([entry(12, "startup complete", &[])])
            .collect();
        let p = patterns(&[stream(r#"{a="b"}"#, lines)], 10, 10);
        assert_eq!(p[0].pattern, "level=warn request <_> failed");
        assert_eq!(p[0].level.as_deref(), Some("warn"));
        assert_eq!(p[0].samples, vec![(10, 2), (20, 2), (30, 2)]);
        assert_eq!(p[1].pattern, "startup complete");
        assert!(is_uuid("123e4567-e89b-12d3-a456-426614174000"));
        assert!(!is_uuid("checkout"));
    }
}
