//! WAL records: encoding into a [`Batch`] on the push path (no intermediate structs, one copy
//! of each line), and decoding a frame's payload back into a [`Record`] on replay.

use lode_model::varint::{self, Reader};

use crate::{FRAME_HEADER, MAX_RECORD_BYTES};

const SERIES: u8 = 1;
const ENTRIES: u8 = 2;
const CHUNK: u8 = 3;
const MARKER: u8 = 4;

/// Framed records waiting to be written: what one push (or one checkpoint step) logs.
#[derive(Debug, Default)]
pub struct Batch {
    buf: Vec<u8>,
    /// Start of the open `entries` frame and its last timestamp.
    open: Option<(usize, i64)>,
}

impl Batch {
    pub fn new() -> Self {
        Batch::default()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf
    }

    pub fn clear(&mut self) {
        self.buf.clear();
        self.open = None;
    }

    /// A stream's identity: every later record names it by `id`.
    pub fn series(&mut self, tenant: &str, id: u64, labels: &str) {
        self.end_entries();
        let start = self.begin(SERIES);
        put_str(&mut self.buf, tenant);
        varint::put(&mut self.buf, id);
        put_str(&mut self.buf, labels);
        self.finish(start);
    }

    /// Opens an `entries` record for stream `id`; [`Batch::entry`] appends to it until the
    /// next record or [`Batch::end_entries`].
    pub fn begin_entries(&mut self, id: u64) {
        self.end_entries();
        let start = self.begin(ENTRIES);
        varint::put(&mut self.buf, id);
        self.open = Some((start, 0));
    }

    /// Appends one entry to the open `entries` record (ignored when none is open).
    pub fn entry<'m>(&mut self, ts: i64, line: &str, metadata: impl ExactSizeIterator<Item = (&'m str, &'m str)>) {
        let Some((_, prev)) = &mut self.open else { return };
        varint::put(&mut self.buf, varint::zigzag(ts.wrapping_sub(*prev)));
        *prev = ts;
        put_str(&mut self.buf, line);
        varint::put(&mut self.buf, metadata.len() as u64);
        for (n, v) in metadata {
            put_str(&mut self.buf, n);
            put_str(&mut self.buf, v);
        }
    }

    /// Closes the open `entries` record; one that got no entry is removed.
    pub fn end_entries(&mut self) {
        let Some((start, _)) = self.open.take() else { return };
        let id_len = self
            .buf
            .get(start + FRAME_HEADER + 1..)
            .map_or(0, |b| Reader::new(b).u64().map_or(0, varint::len));
        if self.buf.len() == start + FRAME_HEADER + 1 + id_len {
            self.buf.truncate(start);
        } else {
            self.finish(start);
        }
    }

    /// A cut, unflushed chunk of stream `id` (checkpoints).
    pub fn chunk(&mut self, id: u64, bytes: &[u8]) {
        self.end_entries();
        let start = self.begin(CHUNK);
        varint::put(&mut self.buf, id);
        self.buf.extend_from_slice(bytes);
        self.finish(start);
    }

    /// Says that checkpoint `checkpoint` holds everything of stream `id` logged before this
    /// record: a replay from that checkpoint skips the stream's earlier records in segments.
    pub fn marker(&mut self, id: u64, checkpoint: u64) {
        self.end_entries();
        let start = self.begin(MARKER);
        varint::put(&mut self.buf, id);
        varint::put(&mut self.buf, checkpoint);
        self.finish(start);
    }

    fn begin(&mut self, kind: u8) -> usize {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0; FRAME_HEADER]);
        self.buf.push(kind);
        start
    }

    /// Fills in the frame header of the record that starts at `start`.
    fn finish(&mut self, start: usize) {
        let Some(payload) = self.buf.get(start + FRAME_HEADER..) else {
            return;
        };
        let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
        let crc = crc32fast::hash(payload);
        if let Some(h) = self.buf.get_mut(start..start + FRAME_HEADER) {
            h[..4].copy_from_slice(&len.to_le_bytes());
            h[4..].copy_from_slice(&crc.to_le_bytes());
        }
    }

    /// Whether the open record (or the whole batch) has grown past what a frame may hold; a
    /// writer then closes and reopens the record.
    pub fn open_record_is_large(&self) -> bool {
        self.open
            .is_some_and(|(start, _)| self.buf.len() - start > (MAX_RECORD_BYTES as usize) / 2)
    }
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    varint::put(buf, s.len() as u64);
    buf.extend_from_slice(s.as_bytes());
}

/// One entry of an `entries` record, borrowing the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRecord<'a> {
    pub ts: i64,
    pub line: &'a str,
    pub metadata: Vec<(&'a str, &'a str)>,
}

/// A decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record<'a> {
    Series { tenant: &'a str, id: u64, labels: &'a str },
    Entries { id: u64, entries: Vec<EntryRecord<'a>> },
    Chunk { id: u64, bytes: &'a [u8] },
    Marker { id: u64, checkpoint: u64 },
}

impl Record<'_> {
    /// The stream the record belongs to.
    pub fn stream_id(&self) -> u64 {
        match self {
            Record::Series { id, .. }
            | Record::Entries { id, .. }
            | Record::Chunk { id, .. }
            | Record::Marker { id, .. } => *id,
        }
    }
}

/// Why a payload did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {kind} record: {what}")]
pub struct DecodeError {
    pub kind: &'static str,
    pub what: &'static str,
}

/// Reads a payload's stream id without decoding the rest (replay routes records by it).
pub fn peek_stream_id(payload: &[u8]) -> Option<u64> {
    let (kind, body) = payload.split_first()?;
    let mut r = Reader::new(body);
    match *kind {
        SERIES => {
            skip_str(&mut r)?;
            r.u64()
        }
        ENTRIES | CHUNK | MARKER => r.u64(),
        _ => None,
    }
}

fn skip_str(r: &mut Reader<'_>) -> Option<()> {
    let n = r.u32()? as usize;
    r.bytes(n).map(|_| ())
}

fn read_str<'a>(r: &mut Reader<'a>, kind: &'static str, what: &'static str) -> Result<&'a str, DecodeError> {
    let err = DecodeError { kind, what };
    let n = r.u32().ok_or(err.clone())? as usize;
    let b = r.bytes(n).ok_or(err.clone())?;
    std::str::from_utf8(b).map_err(|_| err)
}

/// Decodes a frame's payload.
pub fn decode(payload: &[u8]) -> Result<Record<'_>, DecodeError> {
    let Some((kind, body)) = payload.split_first() else {
        return Err(DecodeError {
            kind: "empty",
            what: "no record type",
        });
    };
    let mut r = Reader::new(body);
    match *kind {
        SERIES => {
            let tenant = read_str(&mut r, "series", "tenant")?;
            let id = r.u64().ok_or(DecodeError {
                kind: "series",
                what: "stream id",
            })?;
            let labels = read_str(&mut r, "series", "labels")?;
            Ok(Record::Series { tenant, id, labels })
        }
        ENTRIES => {
            let bad = |what| DecodeError { kind: "entries", what };
            let id = r.u64().ok_or(bad("stream id"))?;
            let mut entries = Vec::new();
            let mut ts: i64 = 0;
            while r.remaining() > 0 {
                ts = ts.wrapping_add(varint::unzigzag(r.u64().ok_or(bad("timestamp"))?));
                let line = read_str(&mut r, "entries", "line")?;
                let n = r.u32().ok_or(bad("metadata count"))? as usize;
                // Each pair takes at least two bytes: a count beyond that is a lie.
                if n > r.remaining() / 2 {
                    return Err(bad("metadata count"));
                }
                let mut metadata = Vec::with_capacity(n);
                for _ in 0..n {
                    let name = read_str(&mut r, "entries", "metadata name")?;
                    let value = read_str(&mut r, "entries", "metadata value")?;
                    metadata.push((name, value));
                }
                entries.push(EntryRecord { ts, line, metadata });
            }
            Ok(Record::Entries { id, entries })
        }
        CHUNK => {
            let id = r.u64().ok_or(DecodeError {
                kind: "chunk",
                what: "stream id",
            })?;
            let rest = body.len() - r.remaining();
            Ok(Record::Chunk {
                id,
                bytes: body.get(rest..).unwrap_or_default(),
            })
        }
        MARKER => {
            let bad = |what| DecodeError { kind: "marker", what };
            let id = r.u64().ok_or(bad("stream id"))?;
            let checkpoint = r.u64().ok_or(bad("checkpoint"))?;
            Ok(Record::Marker { id, checkpoint })
        }
        _ => Err(DecodeError {
            kind: "unknown",
            what: "record type",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reader::frames;

    fn payloads(b: &Batch) -> Vec<Vec<u8>> {
        let (frames, damage) = frames(b.bytes());
        assert!(damage.is_empty(), "{damage:?}");
        frames.into_iter().map(|(_, p)| p.to_vec()).collect()
    }

    #[test]
    fn records_roundtrip() {
        let mut b = Batch::new();
        b.series("tenant-1", 7, r#"{app="a"}"#);
        b.begin_entries(7);
        b.entry(1_700_000_000_000_000_000, "first", [].into_iter());
        b.entry(
            1_699_999_999_000_000_000,
            "older ts is kept as written",
            [("k", "v")].into_iter(),
        );
        b.entry(i64::MIN, "", [].into_iter());
        b.begin_entries(8);
        b.end_entries();
        b.chunk(7, b"chunk-bytes");
        b.marker(7, 12);
        let p = payloads(&b);
        assert_eq!(p.len(), 4, "the empty entries record is dropped");
        assert_eq!(
            decode(&p[0]).unwrap(),
            Record::Series {
                tenant: "tenant-1",
                id: 7,
                labels: r#"{app="a"}"#
            }
        );
        let Record::Entries { id, entries } = decode(&p[1]).unwrap() else {
            panic!()
        };
        assert_eq!(id, 7);
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[1].ts, 1_699_999_999_000_000_000);
        assert_eq!(entries[1].metadata, [("k", "v")]);
        assert_eq!(entries[2].ts, i64::MIN);
        assert_eq!(
            decode(&p[2]).unwrap(),
            Record::Chunk {
                id: 7,
                bytes: b"chunk-bytes"
            }
        );
        assert_eq!(decode(&p[3]).unwrap(), Record::Marker { id: 7, checkpoint: 12 });
        for payload in &p {
            assert_eq!(peek_stream_id(payload), Some(decode(payload).unwrap().stream_id()));
        }
    }

    #[test]
    fn malformed_payloads_are_errors_not_panics() {
        assert!(decode(&[]).is_err());
        assert!(decode(&[9, 1, 2]).is_err());
        assert!(decode(&[SERIES, 200]).is_err());
        assert!(decode(&[ENTRIES, 1, 2, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
        // A metadata count far beyond the bytes left.
        assert!(decode(&[ENTRIES, 1, 0, 0, 0xff, 0xff, 0x03]).is_err());
    }

    proptest::proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
            let _ = decode(&bytes);
            let _ = peek_stream_id(&bytes);
        }

        #[test]
        fn entries_roundtrip(entries in proptest::collection::vec(
            (proptest::prelude::any::<i64>(), ".{0,20}", proptest::collection::vec(("[a-z]{1,5}", ".{0,5}"), 0..3)),
            1..20,
        )) {
            let mut b = Batch::new();
            b.begin_entries(3);
            for (ts, line, md) in &entries {
                b.entry(*ts, line, md.iter().map(|(a, b)| (a.as_str(), b.as_str())));
            }
            b.end_entries();
            let p = payloads(&b);
            let Record::Entries { entries: got, .. } = decode(&p[0]).unwrap() else { panic!() };
            proptest::prop_assert_eq!(got.len(), entries.len());
            for (g, (ts, line, md)) in got.iter().zip(&entries) {
                proptest::prop_assert_eq!(g.ts, *ts);
                proptest::prop_assert_eq!(g.line, line.as_str());
                let md: Vec<(&str, &str)> = md.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
                proptest::prop_assert_eq!(&g.metadata, &md);
            }
        }
    }
}
