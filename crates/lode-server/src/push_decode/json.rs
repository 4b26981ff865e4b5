//! JSON push bodies, decoded straight into `lode_model` types with serde visitors (no
//! `serde_json::Value` tree): every line is copied once, from the body into its `String`;
//! label keys and values are borrowed from the body while the label text is rendered.
//!
//! - v1 (`/loki/api/v1/push`): `{"streams":[{"stream":{"k":"v"},"values":[["<ns>","line",{"sm":"v"}]]}]}`
//! - v0 (`/api/prom/push`): `{"streams":[{"labels":"{k=\"v\"}","entries":[{"ts":"<RFC3339>","line":"x"}]}]}`
//!
//! As in Loki, `null` where a list or object is expected means empty, unknown keys are ignored,
//! and tuple elements after the third are ignored. Label names are not validated here: the
//! distributor does that per stream, so one bad stream does not fail the whole request.

use std::borrow::Cow;
use std::fmt;

use lode_model::Entry;
use lode_model::api::{PushRequest, PushStream};
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Decodes a v1 body.
pub(super) fn decode_v1(body: &[u8]) -> Result<PushRequest, serde_json::Error> {
    with_text(body, |text| {
        serde_json::from_str::<Option<V1Body>>(text).map(decoded_v1)
    })
}

fn decoded_v1(body: Option<V1Body>) -> PushRequest {
    let streams = body.and_then(|b| b.streams).unwrap_or_default();
    PushRequest {
        streams: streams
            .into_iter()
            .flatten()
            .map(|s| PushStream {
                labels: s.stream.map_or_else(|| "{}".to_string(), |l| l.0),
                entries: s.values.map(|v| v.0).unwrap_or_default(),
            })
            .collect(),
    }
}

/// Decodes a legacy v0 body.
pub(super) fn decode_v0(body: &[u8]) -> Result<PushRequest, serde_json::Error> {
    with_text(body, |text| {
        serde_json::from_str::<Option<V0Body>>(text).map(decoded_v0)
    })
}

fn decoded_v0(body: Option<V0Body>) -> PushRequest {
    let streams = body.and_then(|b| b.streams).unwrap_or_default();
    PushRequest {
        streams: streams
            .into_iter()
            .flatten()
            .map(|s| PushStream {
                labels: s.labels.unwrap_or_default(),
                entries: s.entries.map(|v| v.0).unwrap_or_default(),
            })
            .collect(),
    }
}

/// Validates UTF-8 once for the whole body (fast for ASCII), so serde_json need not validate
/// each string. A body that is not UTF-8 is decoded from its lossy text: Loki (jsoniter) keeps
/// invalid bytes inside strings and its JSON output shows them as U+FFFD, so a stray Latin-1
/// byte in one line must not cost the request (agents drop a batch answered with a 400).
/// Outside strings an invalid byte is a syntax error either way.
fn with_text<R>(
    body: &[u8],
    decode: impl FnOnce(&str) -> Result<R, serde_json::Error>,
) -> Result<R, serde_json::Error> {
    match std::str::from_utf8(body) {
        Ok(s) => decode(s),
        Err(_) => decode(&String::from_utf8_lossy(body)),
    }
}

/// Go's `strconv.ParseInt(s, 10, 64)` for the common case: up to 19 digits with an optional
/// sign. Longer inputs (leading zeros) take `str::parse`.
fn parse_i64(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let (neg, digits) = match b.first()? {
        b'-' => (true, &b[1..]),
        b'+' => (false, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() || digits.len() > 19 {
        return if digits.len() > 19 { s.parse().ok() } else { None };
    }
    // 19 decimal digits always fit in a u64.
    let mut v: u64 = 0;
    for &d in digits {
        let d = d.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + u64::from(d);
    }
    if neg {
        0i64.checked_sub_unsigned(v)
    } else {
        i64::try_from(v).ok()
    }
}

#[derive(Deserialize)]
struct V1Body {
    #[serde(default)]
    streams: Option<Vec<Option<V1Stream>>>,
}

#[derive(Deserialize)]
struct V1Stream {
    #[serde(default)]
    stream: Option<LabelText>,
    #[serde(default)]
    values: Option<V1Entries>,
}

/// A string that borrows from the body unless it had escapes.
struct CowStr<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for CowStr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CowStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// The v1 `stream` object rendered as Loki label text: `{a="1", b="2"}`, sorted by name, values
/// Go-quoted. A repeated key keeps its last value, as a Go map does.
struct LabelText(String);

impl<'de> Deserialize<'de> for LabelText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LabelText;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of label names to string values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut pairs: Vec<(CowStr<'de>, CowStr<'de>)> = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(pair) = map.next_entry::<CowStr<'de>, CowStr<'de>>()? {
                    pairs.push(pair);
                }
                // Stable sort, then keep the last of each run of equal names.
                pairs.sort_by(|a, b| a.0.0.cmp(&b.0.0));
                let mut out =
                    String::with_capacity(2 + pairs.iter().map(|(k, v)| k.0.len() + v.0.len() + 5).sum::<usize>());
                out.push('{');
                let mut first = true;
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if pairs.get(i + 1).is_some_and(|next| next.0.0 == k.0) {
                        continue;
                    }
                    if !first {
                        out.push_str(", ");
                    }
                    first = false;
                    out.push_str(&k.0);
                    out.push('=');
                    // Writing to a String cannot fail.
                    let _ = lode_model::labels::write_quoted(&mut out, &v.0);
                }
                out.push('}');
                Ok(LabelText(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// v1 `values`: a list of `[ts, line, {metadata}?, ...]` tuples; `null` tuples are skipped.
struct V1Entries(Vec<Entry>);

impl<'de> Deserialize<'de> for V1Entries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = V1Entries;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of [timestamp, line, structured metadata] values")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(16));
                while let Some(e) = seq.next_element::<Option<V1Entry>>()? {
                    if let Some(e) = e {
                        out.push(e.0);
                    }
                }
                Ok(V1Entries(out))
            }
        }
        d.deserialize_seq(V)
    }
}

struct V1Entry(Entry);

impl<'de> Deserialize<'de> for V1Entry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = V1Entry;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a [timestamp, line] or [timestamp, line, structured metadata] array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let ts = seq
                    .next_element::<NanosString>()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?
                    .0;
                let line = seq
                    .next_element::<String>()?
                    .ok_or_else(|| de::Error::invalid_length(1, &self))?;
                let metadata = seq
                    .next_element::<Option<Metadata>>()?
                    .flatten()
                    .map(|m| m.0)
                    .unwrap_or_default();
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(V1Entry(Entry {
                    ts,
                    line,
                    metadata,
                    parsed: Vec::new(),
                }))
            }
        }
        d.deserialize_seq(V)
    }
}

/// A v1 timestamp: a JSON string holding an integer number of nanoseconds.
struct NanosString(i64);

impl<'de> Deserialize<'de> for NanosString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = NanosString;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string holding the timestamp in Unix nanoseconds")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                parse_i64(v).map(NanosString).ok_or_else(|| {
                    E::custom(format_args!(
                        "invalid timestamp {v:?}: expected an integer number of Unix nanoseconds in a string"
                    ))
                })
            }
        }
        d.deserialize_str(V)
    }
}

/// Structured metadata. v1 sends a flat `{"name":"value"}` object; v0 a list of
/// `{"name":..,"value":..}` pairs. Both forms are accepted in both places; order is kept.
struct Metadata(Vec<(String, String)>);

impl<'de> Deserialize<'de> for Metadata {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Metadata;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("structured metadata: an object of string values or a list of {name, value} pairs")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(4));
                while let Some(pair) = map.next_entry::<String, String>()? {
                    out.push(pair);
                }
                Ok(Metadata(out))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(4));
                while let Some(p) = seq.next_element::<Option<NameValue>>()? {
                    if let Some(p) = p {
                        out.push((p.name.unwrap_or_default(), p.value.unwrap_or_default()));
                    }
                }
                Ok(Metadata(out))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
struct NameValue {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    value: Option<String>,
}

#[derive(Deserialize)]
struct V0Body {
    #[serde(default)]
    streams: Option<Vec<Option<V0Stream>>>,
}

#[derive(Deserialize)]
struct V0Stream {
    #[serde(default)]
    labels: Option<String>,
    #[serde(default)]
    entries: Option<V0Entries>,
}

struct V0Entries(Vec<Entry>);

impl<'de> Deserialize<'de> for V0Entries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = V0Entries;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of {ts, line} entries")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(16));
                while let Some(e) = seq.next_element::<Option<V0Entry>>()? {
                    if let Some(e) = e {
                        out.push(Entry {
                            ts: e.ts.map_or(0, |t| t.0),
                            line: e.line.unwrap_or_default(),
                            metadata: e.structured_metadata.map(|m| m.0).unwrap_or_default(),
                            parsed: Vec::new(),
                        });
                    }
                }
                Ok(V0Entries(out))
            }
        }
        d.deserialize_seq(V)
    }
}

#[derive(Deserialize)]
struct V0Entry {
    /// A missing or null `ts` is Go's zero time in Loki; here the Unix epoch. Either way the
    /// distributor rejects the entry as too old.
    #[serde(default)]
    ts: Option<Rfc3339>,
    #[serde(default)]
    line: Option<String>,
    #[serde(default, rename = "structuredMetadata")]
    structured_metadata: Option<Metadata>,
}

/// A v0 timestamp: an RFC3339 string with optional fraction (Go's `time.Time` JSON form).
struct Rfc3339(i64);

impl<'de> Deserialize<'de> for Rfc3339 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Rfc3339;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an RFC3339 timestamp string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                let t = chrono::DateTime::parse_from_rfc3339(v)
                    .map_err(|e| E::custom(format_args!("parsing time {v:?} as RFC3339: {e}")))?;
                t.timestamp_nanos_opt()
                    .map(Rfc3339)
                    .ok_or_else(|| E::custom(format_args!("timestamp {v:?} is out of range")))
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::parse_i64;

    #[test]
    fn parses_integers_as_go_does() {
        for s in [
            "0",
            "1570818238000000000",
            "-1",
            "+7",
            "9223372036854775807",
            "-9223372036854775808",
            "00000000000000000000012",
        ] {
            assert_eq!(parse_i64(s), s.parse::<i64>().ok(), "{s}");
        }
        for s in [
            "",
            "-",
            "+",
            "1.5",
            "1e9",
            " 1",
            "9223372036854775808",
            "-9223372036854775809",
            "9999999999999999999",
            "1_0",
            "٣",
        ] {
            assert_eq!(parse_i64(s), None, "{s}");
        }
    }
}
