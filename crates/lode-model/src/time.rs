//! Time and size values as Loki reads and writes them: query timestamps (seconds, float seconds,
//! nanoseconds, RFC3339), Prometheus/Go durations, byte sizes, and Go's `Time.String` form used
//! in push error messages. Also the serde types config files use for durations and sizes.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub const NANOS_PER_SEC: i64 = 1_000_000_000;

/// Now, in Unix nanoseconds.
pub fn now_nanos() -> i64 {
    Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// Parses a query time parameter as Loki's `parseTimestamp` does: a float with a `.` is seconds
/// (rounded to ms); an integer of 10 digits or fewer is seconds, longer is nanoseconds;
/// otherwise RFC3339 / RFC3339Nano.
pub fn parse_timestamp(s: &str) -> Result<i64, String> {
    if s.contains('.')
        && let Ok(f) = s.parse::<f64>()
    {
        if !f.is_finite() || f.abs() > (i64::MAX / NANOS_PER_SEC) as f64 {
            return Err(format!("cannot parse {s:?} to a valid timestamp"));
        }
        let ms = (f * 1000.0).round() as i64;
        return Ok(ms * 1_000_000);
    }
    if let Ok(i) = s.parse::<i64>() {
        let digits = s.trim_start_matches('-').len();
        if digits <= 10 {
            return i
                .checked_mul(NANOS_PER_SEC)
                .ok_or_else(|| format!("cannot parse {s:?} to a valid timestamp: out of range"));
        }
        return Ok(i);
    }
    DateTime::parse_from_rfc3339(s)
        .ok()
        .and_then(|t| t.with_timezone(&Utc).timestamp_nanos_opt())
        .ok_or_else(|| format!("cannot parse {s:?} to a valid timestamp"))
}

/// Parses a Prometheus (`1h30m`, `1d`, `1w`, `1y`) or Go (`1.5h`, `300us`, `2h0m0s`) duration.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let err = || format!("not a valid duration string: {s:?}");
    let t = s.trim();
    if t.is_empty() {
        return Err(err());
    }
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total: f64 = 0.0;
    let mut rest = t;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(err)?;
        if num_end == 0 {
            return Err(err());
        }
        let n: f64 = rest[..num_end].parse().map_err(|_| err())?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            "w" => 604_800.0,
            "y" => 31_536_000.0,
            _ => return Err(err()),
        };
        total += n * unit;
        rest = &rest[unit_end..];
    }
    if !total.is_finite() || total > 1e11 {
        return Err(err());
    }
    Ok(Duration::from_secs_f64(total))
}

/// Formats a duration the way Go's `time.Duration.String` does (`1h0m0s`, `1.5s`, `250ms`).
pub fn format_go_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".to_string();
    }
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return format!("{}µs", trim_float(ns as f64 / 1e3));
    }
    if ns < 1_000_000_000 {
        return format!("{}ms", trim_float(ns as f64 / 1e6));
    }
    let secs = d.as_secs();
    let (h, m) = (secs / 3600, (secs % 3600) / 60);
    let s = (secs % 60) as f64 + f64::from(d.subsec_nanos()) / 1e9;
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&format!("{}s", trim_float(s)));
    out
}

fn trim_float(f: f64) -> String {
    let s = format!("{f:.9}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// Go's `Time.String()` in UTC: `2024-01-02 03:04:05.000000006 +0000 UTC` (fraction trimmed).
pub fn go_time_string(ns: i64) -> String {
    let t = DateTime::<Utc>::from_timestamp_nanos(ns);
    let frac = t.timestamp_subsec_nanos();
    let base = t.format("%Y-%m-%d %H:%M:%S").to_string();
    if frac == 0 {
        format!("{base} +0000 UTC")
    } else {
        let f = format!("{frac:09}");
        format!("{base}.{} +0000 UTC", f.trim_end_matches('0'))
    }
}

/// RFC3339 with nanoseconds when present, as Go's `time.RFC3339Nano`.
pub fn rfc3339(ns: i64) -> String {
    DateTime::<Utc>::from_timestamp_nanos(ns).to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// RFC3339 at whole seconds, as Go's `time.RFC3339` layout prints (push validation messages).
pub fn rfc3339_secs(ns: i64) -> String {
    DateTime::<Utc>::from_timestamp_nanos(ns).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Parses a byte size as Loki's flags do: `256KB`, `1.5MiB`, `1536` (bytes). KB/MB/GB are
/// binary (1024-based), as in Loki's datasize parser.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let err = || format!("invalid byte size: {s:?}");
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let n: f64 = t[..split].parse().map_err(|_| err())?;
    let mult: u64 = match t[split..].trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        "T" | "TB" | "TIB" => 1 << 40,
        _ => return Err(err()),
    };
    let v = n * mult as f64;
    if !v.is_finite() || v < 0.0 || v > u64::MAX as f64 {
        return Err(err());
    }
    Ok(v as u64)
}

/// A duration in config files: a Go/Prometheus duration string (`2h`, `30m`, `168h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct ConfigDuration(pub Duration);

impl ConfigDuration {
    pub const fn secs(s: u64) -> Self {
        ConfigDuration(Duration::from_secs(s))
    }
    pub fn as_nanos_i64(self) -> i64 {
        i64::try_from(self.0.as_nanos()).unwrap_or(i64::MAX)
    }
}

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            S(String),
            N(u64),
        }
        match Raw::deserialize(d)? {
            Raw::S(s) => parse_duration(&s).map(ConfigDuration).map_err(serde::de::Error::custom),
            Raw::N(n) => Ok(ConfigDuration(Duration::from_secs(n))),
        }
    }
}

impl Serialize for ConfigDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_go_duration(self.0))
    }
}

impl fmt::Display for ConfigDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_go_duration(self.0))
    }
}

/// A byte size in config files: `256KB`, `1.5MB`, or a plain number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct ByteSize(pub u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            S(String),
            N(u64),
        }
        match Raw::deserialize(d)? {
            Raw::S(s) => parse_bytes(&s).map(ByteSize).map_err(serde::de::Error::custom),
            Raw::N(n) => Ok(ByteSize(n)),
        }
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        for (unit, m) in [("GB", 1u64 << 30), ("MB", 1 << 20), ("KB", 1 << 10)] {
            if b >= m && b.is_multiple_of(m) {
                return write!(f, "{}{unit}", b / m);
            }
        }
        write!(f, "{b}B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_in_every_loki_form() {
        assert_eq!(parse_timestamp("4000000000"), Ok(4_000_000_000 * NANOS_PER_SEC));
        assert_eq!(parse_timestamp("1700000000"), Ok(1_700_000_000 * NANOS_PER_SEC));
        assert_eq!(parse_timestamp("1700000000000000001"), Ok(1_700_000_000_000_000_001));
        assert_eq!(parse_timestamp("1700000000.5"), Ok(1_700_000_000_500_000_000));
        assert_eq!(
            parse_timestamp("2023-11-14T22:13:20Z"),
            Ok(1_700_000_000 * NANOS_PER_SEC)
        );
        assert_eq!(
            parse_timestamp("2023-11-14T22:13:20.000000007Z"),
            Ok(1_700_000_000 * NANOS_PER_SEC + 7)
        );
        assert!(parse_timestamp("yesterday").is_err());
        assert!(parse_timestamp("1e400.0").is_err());
        assert!(
            parse_timestamp("9999999999").is_err(),
            "10 digits of seconds overflow i64 ns"
        );
        assert!(parse_timestamp("-9999999999").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86400)));
        assert_eq!(parse_duration("2h0m0s"), Ok(Duration::from_secs(7200)));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("5x").is_err());
        assert_eq!(format_go_duration(Duration::from_secs(7200)), "2h0m0s");
        assert_eq!(format_go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_go_duration(Duration::from_millis(250)), "250ms");
    }

    #[test]
    fn go_time_strings() {
        assert_eq!(
            go_time_string(1_704_164_645_000_000_006),
            "2024-01-02 03:04:05.000000006 +0000 UTC"
        );
        assert_eq!(
            go_time_string(1_704_164_645_000_000_000),
            "2024-01-02 03:04:05 +0000 UTC"
        );
        assert_eq!(rfc3339(1_704_164_645_000_000_000), "2024-01-02T03:04:05Z");
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_bytes("256KB"), Ok(256 * 1024));
        assert_eq!(parse_bytes("1.5MB"), Ok(1536 * 1024));
        assert_eq!(parse_bytes("100"), Ok(100));
        assert!(parse_bytes("12 parsecs").is_err());
        assert_eq!(ByteSize(256 * 1024).to_string(), "256KB");
    }
}
