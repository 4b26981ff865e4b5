//! The label index. Lode stores log lines in compressed chunks in object storage and indexes only
//! their labels. After each flush cycle an ingester writes one small, immutable index object per
//! (tenant, period) with [`IndexBuilder`], listing every stream it flushed (its label set and
//! fingerprint) with references to the chunks it wrote, plus postings from label name and value to
//! series. Queriers list the index objects under [`period_prefix`] for each period a query
//! touches, decode each once with [`IndexObject::decode`] (objects never change, so they can be
//! cached forever by key), and call [`IndexObject::select`] to find the chunks whose streams match
//! the query's label matchers and whose time span overlaps the query's. The byte format is
//! described in `docs/index-format.md`.

mod builder;
mod codec;
mod error;
mod object;
mod select;

use std::ops::RangeInclusive;

pub use builder::IndexBuilder;
pub use error::{IndexError, Result};
pub use object::IndexObject;
pub use select::LabelMatch;

/// Length of an index period: one day, as Loki's TSDB index. Queries list one prefix per period.
pub const PERIOD_NANOS: i64 = 86_400 * 1_000_000_000;

/// The period (days since the Unix epoch) a timestamp falls in. Timestamps before 1970 fall in
/// period 0: periods are unsigned so keys sort and parse simply, and Lode never stores such data.
pub fn period_of(ts_ns: i64) -> u64 {
    // Non-negative after the clamp, so the cast is lossless.
    ts_ns.max(0).div_euclid(PERIOD_NANOS) as u64
}

/// The first nanosecond of `period` (saturating for periods beyond the range of `i64`).
pub fn period_start(period: u64) -> i64 {
    i64::try_from(period).unwrap_or(i64::MAX).saturating_mul(PERIOD_NANOS)
}

/// The periods a time range `[start, end]` touches, both ends inclusive. Callers with a half-open
/// `[start, end)` may pass `end` as is: at worst they list one extra, harmless period. The range is
/// empty when `end < start`.
pub fn periods_overlapping(start: i64, end: i64) -> RangeInclusive<u64> {
    if end < start {
        #[allow(clippy::reversed_empty_ranges)] // deliberately empty
        return 1..=0;
    }
    period_of(start)..=period_of(end)
}

/// Object key of an index object written by ingester `writer` at `nanos` (Unix ns). The writer id
/// and the timestamp keep keys unique without coordination between ingesters; `writer` must not
/// contain `/`.
pub fn index_key(tenant: &str, period: u64, writer: &str, nanos: i64) -> String {
    debug_assert!(!writer.contains('/'), "writer id {writer:?} contains '/'");
    format!("{}{writer}-{nanos}.idx", period_prefix(tenant, period))
}

/// The prefix under which all index objects of `tenant` for `period` live. It ends with `/` so
/// that listing period 5 never also lists period 50 on stores that match plain string prefixes.
pub fn period_prefix(tenant: &str, period: u64) -> String {
    format!("index/{tenant}/{period}/")
}

/// A reference to one chunk object: which stream it belongs to, the time span it covers, and
/// enough to verify what we fetch (checksum and size). Its object key is derived, not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChunkRef {
    /// The stream's fingerprint, normally `Labels::fingerprint()` of its label set.
    pub fingerprint: u64,
    /// Earliest entry timestamp, Unix ns.
    pub from: i64,
    /// Latest entry timestamp, Unix ns, inclusive.
    pub through: i64,
    /// CRC-32 (IEEE) of the whole chunk object.
    pub checksum: u32,
    /// Size of the chunk object in bytes.
    pub size: u32,
    /// Number of log entries in the chunk.
    pub entries: u32,
}

impl ChunkRef {
    /// The chunk's object key:
    /// `chunks/<tenant>/<fingerprint:016x>/<from:016x>-<through:016x>-<checksum:08x>`, with
    /// `from`/`through` printed as the bit patterns of the `i64`s so keys are fixed-width and sort
    /// by time within a stream.
    pub fn key(&self, tenant: &str) -> String {
        format!(
            "chunks/{tenant}/{:016x}/{:016x}-{:016x}-{:08x}",
            self.fingerprint, self.from as u64, self.through as u64, self.checksum
        )
    }

    /// Whether the chunk's span `[from, through]` shares any instant with `[start, end]` (both
    /// ends inclusive).
    pub fn overlaps(&self, start: i64, end: i64) -> bool {
        self.from <= end && self.through >= start
    }

    /// The periods this chunk's span touches. A chunk that crosses midnight must be listed in the
    /// index object of every one of them, or queries of the later day would miss it.
    pub fn periods(&self) -> RangeInclusive<u64> {
        periods_overlapping(self.from, self.through)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods() {
        assert_eq!(period_of(0), 0);
        assert_eq!(period_of(PERIOD_NANOS - 1), 0);
        assert_eq!(period_of(PERIOD_NANOS), 1);
        assert_eq!(period_of(-5), 0);
        // 2023-11-14T22:13:20Z is day 19675.
        assert_eq!(period_of(1_700_000_000_000_000_000), 19_675);
        assert_eq!(period_start(19_675), 19_675 * PERIOD_NANOS);
        assert_eq!(period_start(u64::MAX), i64::MAX);
        assert_eq!(periods_overlapping(0, 3 * PERIOD_NANOS), 0..=3);
        assert_eq!(periods_overlapping(PERIOD_NANOS, 2 * PERIOD_NANOS - 1), 1..=1);
        assert!(periods_overlapping(10, 9).is_empty());
    }

    #[test]
    fn keys() {
        assert_eq!(
            index_key("t1", 19_675, "ingester-0", 42),
            "index/t1/19675/ingester-0-42.idx"
        );
        assert_eq!(period_prefix("t1", 5), "index/t1/5/");
        let c = ChunkRef {
            fingerprint: 0xabc,
            from: 1,
            through: -1,
            checksum: 0xdead,
            size: 10,
            entries: 2,
        };
        assert_eq!(
            c.key("fake"),
            "chunks/fake/0000000000000abc/0000000000000001-ffffffffffffffff-0000dead"
        );
    }

    #[test]
    fn chunk_overlap_and_periods() {
        let c = ChunkRef {
            fingerprint: 1,
            from: PERIOD_NANOS - 10,
            through: PERIOD_NANOS + 10,
            checksum: 0,
            size: 0,
            entries: 0,
        };
        assert!(c.overlaps(PERIOD_NANOS + 10, i64::MAX));
        assert!(c.overlaps(i64::MIN, PERIOD_NANOS - 10));
        assert!(!c.overlaps(PERIOD_NANOS + 11, i64::MAX));
        assert!(!c.overlaps(0, PERIOD_NANOS - 11));
        assert_eq!(c.periods(), 0..=1);
    }
}
