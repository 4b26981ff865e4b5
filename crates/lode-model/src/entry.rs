//! Log entries and streams as they travel between roles.

/// One log line: nanosecond Unix timestamp, the line, and its structured metadata.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Entry {
    pub ts: i64,
    pub line: String,
    pub metadata: Vec<(String, String)>,
    /// Labels a query's parsers extracted from the line (query results only; Loki's `parsed`).
    pub parsed: Vec<(String, String)>,
}

impl Entry {
    pub fn new(ts: i64, line: impl Into<String>) -> Self {
        Entry {
            ts,
            line: line.into(),
            metadata: Vec::new(),
            parsed: Vec::new(),
        }
    }
    /// Bytes this entry counts for in rates and limits: line plus structured metadata, as Loki.
    pub fn size(&self) -> usize {
        self.line.len() + self.metadata.iter().map(|(n, v)| n.len() + v.len()).sum::<usize>()
    }
}

/// A stream of entries under one label set, as returned by queries. `labels` is the printed
/// label set (`{a="b"}`), which may include structured metadata or parsed labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stream {
    pub labels: String,
    pub entries: Vec<Entry>,
}

/// Order of entries in a log query result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    Forward,
    #[default]
    Backward,
}

impl Direction {
    /// Loki accepts `forward`/`backward` in any case.
    pub fn parse(s: &str) -> Option<Direction> {
        if s.eq_ignore_ascii_case("forward") {
            Some(Direction::Forward)
        } else if s.eq_ignore_ascii_case("backward") {
            Some(Direction::Backward)
        } else {
            None
        }
    }
}
