//! Loki's push validation: label sets first, then each entry. Every refusal is a
//! `(reason, message)` pair with Loki's exact wording; the caller counts and groups them.

use lode_model::labels::LabelError;
use lode_model::limits::LimitsConfig;
use lode_model::time::rfc3339_secs;
use lode_model::{Entry, Labels};

/// Loki's discard reasons (the `reason` label of `loki_discarded_samples_total`).
pub mod reason {
    pub const INVALID_LABELS: &str = "invalid_labels";
    pub const MISSING_LABELS: &str = "missing_labels";
    pub const MAX_LABEL_NAMES: &str = "max_label_names_per_series";
    pub const LABEL_NAME_TOO_LONG: &str = "label_name_too_long";
    pub const LABEL_VALUE_TOO_LONG: &str = "label_value_too_long";
    pub const DUPLICATE_LABEL_NAMES: &str = "duplicate_label_names";
    pub const TOO_OLD: &str = "greater_than_max_sample_age";
    pub const TOO_NEW: &str = "too_far_in_future";
    pub const LINE_TOO_LONG: &str = "line_too_long";
    pub const METADATA_TOO_LARGE: &str = "structured_metadata_too_large";
    pub const METADATA_TOO_MANY: &str = "structured_metadata_too_many";
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: &'static str,
    pub message: String,
}

fn refuse(reason: &'static str, message: String) -> Refusal {
    Refusal { reason, message }
}

/// Parses and validates a stream's label text; returns the normalised label set.
pub fn validate_labels(text: &str, limits: &LimitsConfig) -> Result<Labels, Refusal> {
    let labels = match Labels::parse(text) {
        Ok(l) => l,
        Err(LabelError::Duplicate(name)) => {
            return Err(refuse(
                reason::DUPLICATE_LABEL_NAMES,
                format!("stream '{text}' has duplicate label name: '{name}'"),
            ));
        }
        Err(e) => {
            let detail = match e {
                LabelError::InvalidName(n) => format!("1:2: parse error: invalid label name {n:?}"),
                other => other.to_string(),
            };
            return Err(refuse(
                reason::INVALID_LABELS,
                format!("error parsing labels '{text}' with error: {detail}"),
            ));
        }
    };
    if labels.is_empty() {
        return Err(refuse(
            reason::MISSING_LABELS,
            "error at least one label pair is required per stream".into(),
        ));
    }
    // Loki does not count the synthetic service_name label against the limit.
    let counted = labels.iter().filter(|(n, _)| *n != "service_name").count();
    if counted > limits.max_label_names_per_series {
        return Err(refuse(
            reason::MAX_LABEL_NAMES,
            format!(
                "entry for stream '{labels}' has {counted} label names; limit {}",
                limits.max_label_names_per_series
            ),
        ));
    }
    for (name, value) in labels.iter() {
        if name.len() > limits.max_label_name_length {
            return Err(refuse(
                reason::LABEL_NAME_TOO_LONG,
                format!("stream '{labels}' has label name too long: '{name}'"),
            ));
        }
        if value.len() > limits.max_label_value_length {
            return Err(refuse(
                reason::LABEL_VALUE_TOO_LONG,
                format!("stream '{labels}' has label value too long: '{value}'"),
            ));
        }
    }
    Ok(labels)
}

/// Validates one entry of a stream at time `now` (ns). May truncate the line in place when
/// `max_line_size_truncate` is on.
/// `stream` is only printed when the entry is refused, so the common path formats nothing.
pub fn validate_entry(entry: &mut Entry, stream: &Labels, limits: &LimitsConfig, now: i64) -> Result<(), Refusal> {
    if limits.reject_old_samples {
        let oldest = now.saturating_sub(limits.reject_old_samples_max_age.as_nanos_i64());
        if entry.ts < oldest {
            return Err(refuse(
                reason::TOO_OLD,
                format!(
                    "entry for stream '{stream}' has timestamp too old: {}, oldest acceptable timestamp is: {}",
                    rfc3339_secs(entry.ts),
                    rfc3339_secs(oldest)
                ),
            ));
        }
    }
    if entry.ts > now.saturating_add(limits.creation_grace_period.as_nanos_i64()) {
        return Err(refuse(
            reason::TOO_NEW,
            format!(
                "entry for stream '{stream}' has timestamp too new: {}",
                rfc3339_secs(entry.ts)
            ),
        ));
    }
    let sm_max = limits.max_structured_metadata_size.0 as usize;
    let sm_size: usize = entry.metadata.iter().map(|(n, v)| n.len() + v.len()).sum();
    if sm_max > 0 && sm_size > sm_max {
        return Err(refuse(
            reason::METADATA_TOO_LARGE,
            format!(
                "stream '{stream}' has structured metadata too large: '{sm_size}' bytes, limit: '{sm_max}' bytes. Please see `limits_config.max_structured_metadata_size` or contact your Loki administrator to increase it"
            ),
        ));
    }
    let sm_count_max = limits.max_structured_metadata_entries_count;
    if sm_count_max > 0 && entry.metadata.len() > sm_count_max {
        return Err(refuse(
            reason::METADATA_TOO_MANY,
            format!(
                "stream '{stream}' has too many structured metadata labels: '{}', limit: '{sm_count_max}'. Please see `limits_config.max_structured_metadata_entries_count` or contact your Loki administrator to increase it",
                entry.metadata.len()
            ),
        ));
    }
    let max = limits.max_line_size.0 as usize;
    if max > 0 && entry.line.len() > max {
        if limits.max_line_size_truncate {
            let mut cut = max;
            while !entry.line.is_char_boundary(cut) {
                cut -= 1;
            }
            entry.line.truncate(cut);
        } else {
            return Err(refuse(
                reason::LINE_TOO_LONG,
                format!(
                    "max entry size '{max}' bytes exceeded for stream '{stream}' while adding an entry with length '{}' bytes",
                    entry.line.len()
                ),
            ));
        }
    }
    Ok(())
}

/// Loki's grouping of validation messages: one distinct message alone is returned as is;
/// otherwise each distinct message is prefixed with how many times it occurred.
pub fn group_messages(messages: &[String]) -> String {
    let mut distinct: Vec<(&str, usize)> = Vec::new();
    for m in messages {
        match distinct.iter_mut().find(|(d, _)| *d == m) {
            Some((_, n)) => *n += 1,
            None => distinct.push((m, 1)),
        }
    }
    if distinct.len() == 1 && distinct[0].1 == 1 {
        return distinct[0].0.to_string();
    }
    distinct
        .iter()
        .map(|(m, n)| format!("{n} errors like: {m}"))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use lode_model::time::NANOS_PER_SEC;

    #[test]
    fn label_refusals_use_lokis_words() {
        let l = LimitsConfig::default();
        assert_eq!(
            validate_labels(r#"{b="2", a="1"}"#, &l).unwrap().to_string(),
            r#"{a="1", b="2"}"#
        );
        let e = validate_labels(r#"{a="1", a="2"}"#, &l).unwrap_err();
        assert_eq!(e.message, r#"stream '{a="1", a="2"}' has duplicate label name: 'a'"#);
        let e = validate_labels(r#"{}"#, &l).unwrap_err();
        assert_eq!(
            (e.reason, e.message.as_str()),
            (
                reason::MISSING_LABELS,
                "error at least one label pair is required per stream"
            )
        );
        let e = validate_labels(r#"{k8s.pod="x"}"#, &l).unwrap_err();
        assert_eq!(e.reason, reason::INVALID_LABELS);
        assert!(
            e.message
                .starts_with(r#"error parsing labels '{k8s.pod="x"}' with error: "#),
            "{}",
            e.message
        );
        let many = format!(
            "{{{}}}",
            (0..16).map(|i| format!("l{i}=\"v\"")).collect::<Vec<_>>().join(",")
        );
        assert!(
            validate_labels(&many, &l)
                .unwrap_err()
                .message
                .ends_with("has 16 label names; limit 15")
        );
        let long = format!("{{a=\"{}\"}}", "v".repeat(2049));
        assert_eq!(
            validate_labels(&long, &l).unwrap_err().reason,
            reason::LABEL_VALUE_TOO_LONG
        );
    }

    #[test]
    fn entry_refusals() {
        let l = LimitsConfig::default();
        let now = 1_700_000_000 * NANOS_PER_SEC;
        let s = Labels::parse(r#"{s="s"}"#).unwrap();
        let mut e = Entry::new(now - 8 * 24 * 3600 * NANOS_PER_SEC, "x");
        let r = validate_entry(&mut e, &Labels::parse("{a=\"b\"}").unwrap(), &l, now).unwrap_err();
        assert_eq!(
            r.message,
            "entry for stream '{a=\"b\"}' has timestamp too old: 2023-11-06T22:13:20Z, oldest acceptable timestamp is: 2023-11-07T22:13:20Z"
        );
        let mut e = Entry::new(now + 11 * 60 * NANOS_PER_SEC, "x");
        assert_eq!(validate_entry(&mut e, &s, &l, now).unwrap_err().reason, reason::TOO_NEW);
        let mut e = Entry::new(now, "x".repeat(256 * 1024 + 1));
        assert_eq!(
            validate_entry(&mut e, &s, &l, now).unwrap_err().message,
            "max entry size '262144' bytes exceeded for stream '{s=\"s\"}' while adding an entry with length '262145' bytes"
        );
        let t = LimitsConfig {
            max_line_size_truncate: true,
            ..l
        };
        validate_entry(&mut e, &s, &t, now).unwrap();
        assert_eq!(e.line.len(), 256 * 1024);
    }

    #[test]
    fn structured_metadata_limits() {
        let l = LimitsConfig::default();
        let s = Labels::parse(r#"{a="b"}"#).unwrap();
        let mut e = Entry {
            ts: 0,
            line: "x".into(),
            metadata: vec![("k".into(), "v".repeat(70_000))],
            parsed: Vec::new(),
        };
        let r = validate_entry(
            &mut e,
            &s,
            &LimitsConfig {
                reject_old_samples: false,
                ..l.clone()
            },
            0,
        )
        .unwrap_err();
        assert_eq!(r.reason, reason::METADATA_TOO_LARGE);
        assert!(
            r.message.starts_with(
                "stream '{a=\"b\"}' has structured metadata too large: '70001' bytes, limit: '65536' bytes."
            ),
            "{}",
            r.message
        );
        let mut e = Entry {
            ts: 0,
            line: "x".into(),
            metadata: (0..129).map(|i| (format!("k{i}"), "v".into())).collect(),
            parsed: Vec::new(),
        };
        let r = validate_entry(
            &mut e,
            &s,
            &LimitsConfig {
                reject_old_samples: false,
                ..l
            },
            0,
        )
        .unwrap_err();
        assert_eq!(r.reason, reason::METADATA_TOO_MANY);
        assert!(
            r.message
                .contains("has too many structured metadata labels: '129', limit: '128'"),
            "{}",
            r.message
        );
    }

    #[test]
    fn grouping() {
        assert_eq!(group_messages(&["a".into()]), "a");
        assert_eq!(group_messages(&["a".into(), "a".into()]), "2 errors like: a");
        assert_eq!(
            group_messages(&["a".into(), "b".into(), "a".into()]),
            "2 errors like: a; 1 errors like: b"
        );
    }
}
