//! Reading an index object. Decoding is eager and validates everything up front (checksum,
//! bounds, sort order, postings against series), so that a decoded [`IndexObject`] can be cached
//! and queried without further error handling.

use lode_model::Labels;

use crate::builder::{FOOTER_LEN, MAGIC, VERSION};
use crate::codec::Reader;
use crate::{ChunkRef, IndexError, Result, period_start};

/// A decoded, immutable index object: the series one ingester flushed for one (tenant, period).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexObject {
    tenant: String,
    period: u64,
    series: Vec<Series>,
    postings: Postings,
    encoded_len: usize,
}

/// Label name -> value -> series ids. Sorted by name, each name's values sorted, each list of
/// ids strictly increasing; sorted vectors rather than maps because they are built once, in
/// order, and then only searched.
type Postings = Vec<(String, Vec<(String, Vec<u32>)>)>;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Series {
    labels: Labels,
    chunks: Vec<ChunkRef>,
}

// Smallest encodings, used to refuse counts the remaining bytes could not hold.
const MIN_SERIES: usize = 1 + 8 + 1; // label count, fingerprint, chunk count
const MIN_LABEL: usize = 2; // name and value symbol ids
const MIN_CHUNK: usize = 1 + 1 + 4 + 1 + 1; // from, through, checksum, size, entries
const MIN_POSTINGS_ENTRY: usize = 2; // symbol id and a count

impl IndexObject {
    /// Decodes and validates an index object. Never panics, and allocates at most a small
    /// multiple of `data.len()`, whatever the bytes say.
    pub fn decode(data: &[u8]) -> Result<IndexObject> {
        Self::decode_bounded(data, label_bytes_budget(data.len()))
    }

    /// `decode` with an explicit bound on materialized label text.
    fn decode_bounded(data: &[u8], label_budget: usize) -> Result<IndexObject> {
        let too_short = IndexError::TooShort { len: data.len() };
        let magic = data.get(..MAGIC.len()).ok_or(too_short.clone())?;
        if magic != MAGIC {
            return Err(IndexError::BadMagic { found: magic.to_vec() });
        }
        let version = *data.get(MAGIC.len()).ok_or(too_short.clone())?;
        if version != VERSION {
            return Err(IndexError::UnsupportedVersion(version));
        }
        let header_off = MAGIC.len() + 1;
        let footer_off = data
            .len()
            .checked_sub(FOOTER_LEN)
            .filter(|&f| f >= header_off)
            .ok_or(too_short)?;
        let crc_off = data.len() - 4;
        let (sealed, crc) = data.split_at(crc_off);
        let mut footer = Reader::new(crc, crc_off);
        let stored = footer.u32_le("checksum")?;
        let computed = crc32fast::hash(sealed);
        if stored != computed {
            return Err(IndexError::ChecksumMismatch { stored, computed });
        }

        let mut footer = Reader::new(data.get(footer_off..crc_off).unwrap_or_default(), footer_off);
        let mut bounds = [header_off, 0, 0, 0, footer_off];
        for (i, what) in ["symbols offset", "series offset", "postings offset"]
            .into_iter()
            .enumerate()
        {
            let off = footer.u64_le(what)?;
            bounds[i + 1] = usize::try_from(off).unwrap_or(usize::MAX);
        }
        if bounds.windows(2).any(|w| w[0] > w[1]) {
            return Err(IndexError::Corrupt {
                offset: footer_off,
                reason: format!("section offsets {:?} out of order", &bounds[1..4]),
            });
        }
        // In order and within the data, so these slices exist.
        let section = |i: usize| Reader::new(data.get(bounds[i]..bounds[i + 1]).unwrap_or_default(), bounds[i]);

        let mut r = section(0);
        let tenant = r.str("tenant")?.to_string();
        let period = r.uvarint("period")?;
        r.expect_end("header")?;

        let mut r = section(1);
        let symbols = decode_symbols(&mut r)?;
        let mut r = section(2);
        let series = decode_series(&mut r, &symbols, period, label_budget)?;
        let mut r = section(3);
        let postings = decode_postings(&mut r, &symbols, &series)?;

        Ok(IndexObject {
            tenant,
            period,
            series,
            postings,
            encoded_len: data.len(),
        })
    }

    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    pub fn period(&self) -> u64 {
        self.period
    }

    /// Size of the encoded object, e.g. to weigh it in a cache.
    pub fn encoded_len(&self) -> usize {
        self.encoded_len
    }

    pub fn num_series(&self) -> usize {
        self.series.len()
    }

    pub fn num_chunks(&self) -> usize {
        self.series.iter().map(|s| s.chunks.len()).sum()
    }

    /// Every series: its id (what postings refer to), label set, and chunks sorted by `from`.
    pub fn series(&self) -> impl Iterator<Item = (u32, &Labels, &[ChunkRef])> {
        self.series
            .iter()
            .enumerate()
            .map(|(id, s)| (id as u32, &s.labels, s.chunks.as_slice()))
    }

    /// One series by id.
    pub fn series_by_id(&self, id: u32) -> Option<(&Labels, &[ChunkRef])> {
        let s = self.series.get(id as usize)?;
        Some((&s.labels, &s.chunks))
    }

    /// Label names present in any series, sorted.
    pub fn label_names(&self) -> impl Iterator<Item = &str> {
        self.postings.iter().map(|(n, _)| n.as_str())
    }

    /// Values of label `name` across all series, sorted; empty for an unknown name.
    pub fn label_values(&self, name: &str) -> impl Iterator<Item = &str> {
        self.values_of(name).iter().map(|(v, _)| v.as_str())
    }

    /// Ids of the series whose label `name` equals `value`, ascending.
    pub fn postings(&self, name: &str, value: &str) -> &[u32] {
        let values = self.values_of(name);
        match values.binary_search_by(|(v, _)| v.as_str().cmp(value)) {
            Ok(i) => values.get(i).map(|(_, ids)| ids.as_slice()).unwrap_or_default(),
            Err(_) => &[],
        }
    }

    /// The values of `name` with their postings lists.
    pub(crate) fn values_of(&self, name: &str) -> &[(String, Vec<u32>)] {
        match self.postings.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
            Ok(i) => self.postings.get(i).map(|(_, v)| v.as_slice()).unwrap_or_default(),
            Err(_) => &[],
        }
    }
}

fn decode_symbols<'a>(r: &mut Reader<'a>) -> Result<Vec<&'a str>> {
    let n = r.count("symbol count", 1)?;
    let mut symbols: Vec<&str> = Vec::with_capacity(n);
    for _ in 0..n {
        let s = r.str("symbol")?;
        // Sorted and unique, so the format is canonical and ids order like strings.
        if symbols.last().is_some_and(|&prev| prev >= s) {
            return Err(r.corrupt(format!("symbol {s:?} out of order")));
        }
        symbols.push(s);
    }
    r.expect_end("symbols")?;
    Ok(symbols)
}

fn symbol<'a>(r: &mut Reader<'_>, symbols: &[&'a str], what: &str) -> Result<&'a str> {
    let id = r.uvarint(what)?;
    usize::try_from(id)
        .ok()
        .and_then(|i| symbols.get(i).copied())
        .ok_or_else(|| r.corrupt(format!("{what} {id} out of range ({} symbols)", symbols.len())))
}

/// Label text that decoding may materialize for an object of `len` bytes. Each series copies
/// its label strings out of the shared symbol table, so a small object whose series all point
/// at one huge symbol could otherwise expand quadratically. A label reference costs at least
/// one byte on the wire and a value at most 2 KiB under default limits, so real objects stay
/// within about 1 KiB of text per encoded byte.
fn label_bytes_budget(len: usize) -> usize {
    len.saturating_mul(1024).saturating_add(64 << 20)
}

fn decode_series(r: &mut Reader<'_>, symbols: &[&str], period: u64, budget: usize) -> Result<Vec<Series>> {
    let mut materialized = 0usize;
    let n = r.count("series count", MIN_SERIES)?;
    if u32::try_from(n).is_err() {
        return Err(r.corrupt(format!("series count {n} exceeds u32 ids")));
    }
    let base = period_start(period);
    let mut series = Vec::with_capacity(n);
    for _ in 0..n {
        let nlabels = r.count("label count", MIN_LABEL)?;
        let mut pairs: Vec<(String, String)> = Vec::with_capacity(nlabels);
        for _ in 0..nlabels {
            let name = symbol(r, symbols, "label name symbol")?;
            let value = symbol(r, symbols, "label value symbol")?;
            // `Labels::get` binary-searches, so names must be sorted and unique.
            if pairs.last().is_some_and(|(prev, _)| prev.as_str() >= name) {
                return Err(r.corrupt(format!("label name {name:?} out of order")));
            }
            materialized = materialized.saturating_add(name.len() + value.len());
            if materialized > budget {
                return Err(r.corrupt(format!("label text exceeds {budget} bytes for an object of this size")));
            }
            pairs.push((name.to_string(), value.to_string()));
        }
        let fingerprint = r.u64_le("fingerprint")?;
        let nchunks = r.count("chunk count", MIN_CHUNK)?;
        let mut chunks = Vec::with_capacity(nchunks);
        let mut prev = base;
        for _ in 0..nchunks {
            // Wrapping, as the builder: any i64 pair round-trips.
            let from = prev.wrapping_add(r.varint("chunk from")?);
            let through = from.wrapping_add(r.uvarint("chunk through")? as i64);
            let checksum = r.u32_le("chunk checksum")?;
            let size = r.u32_varint("chunk size")?;
            let entries = r.u32_varint("chunk entries")?;
            chunks.push(ChunkRef {
                fingerprint,
                from,
                through,
                checksum,
                size,
                entries,
            });
            prev = through;
        }
        series.push(Series {
            labels: Labels::from_sorted_unchecked(pairs),
            chunks,
        });
    }
    r.expect_end("series")?;
    Ok(series)
}

fn decode_postings(r: &mut Reader<'_>, symbols: &[&str], series: &[Series]) -> Result<Postings> {
    let nnames = r.count("postings name count", MIN_POSTINGS_ENTRY)?;
    let mut postings: Postings = Vec::with_capacity(nnames);
    let mut total = 0usize;
    for _ in 0..nnames {
        let name = symbol(r, symbols, "postings name symbol")?;
        if postings.last().is_some_and(|(prev, _)| prev.as_str() >= name) {
            return Err(r.corrupt(format!("postings name {name:?} out of order")));
        }
        let nvalues = r.count("postings value count", MIN_POSTINGS_ENTRY)?;
        let mut values: Vec<(String, Vec<u32>)> = Vec::with_capacity(nvalues);
        for _ in 0..nvalues {
            let value = symbol(r, symbols, "postings value symbol")?;
            if values.last().is_some_and(|(prev, _)| prev.as_str() >= value) {
                return Err(r.corrupt(format!("postings value {value:?} of {name:?} out of order")));
            }
            let nids = r.count("postings list length", 1)?;
            let mut ids = Vec::with_capacity(nids);
            let mut prev: Option<u32> = None;
            for _ in 0..nids {
                let v = r.u32_varint("series id")?;
                let id = match prev {
                    None => Some(v),
                    Some(p) if v > 0 => p.checked_add(v),
                    Some(_) => None,
                };
                // Each posting must name a distinct series that really has this label value:
                // together with the count check below, postings are exactly the series' labels.
                let ok = id.filter(|&id| {
                    series
                        .get(id as usize)
                        .is_some_and(|s| s.labels.get(name) == Some(value))
                });
                let Some(id) = ok else {
                    return Err(r.corrupt(format!("bad postings entry for {name}={value:?} (delta {v})")));
                };
                ids.push(id);
                prev = Some(id);
            }
            total += nids;
            values.push((value.to_string(), ids));
        }
        postings.push((name.to_string(), values));
    }
    r.expect_end("postings")?;
    let pairs: usize = series.iter().map(|s| s.labels.len()).sum();
    if total != pairs {
        return Err(r.corrupt(format!("postings hold {total} entries but series have {pairs} labels")));
    }
    Ok(postings)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use proptest::prelude::*;

    use super::*;
    use crate::IndexBuilder;

    fn labels(s: &str) -> Labels {
        Labels::parse(s).unwrap()
    }

    fn chunk(l: &Labels, from: i64, through: i64) -> ChunkRef {
        ChunkRef {
            fingerprint: l.fingerprint(),
            from,
            through,
            checksum: from as u32 ^ 0x5a5a_5a5a,
            size: 1000,
            entries: 10,
        }
    }

    /// A small but complete object: three series, shared and distinct values.
    pub(crate) fn sample() -> Vec<u8> {
        let mut b = IndexBuilder::new("tenant-a", 19_675);
        let t = crate::period_start(19_675);
        for (i, text) in [
            r#"{job="app", env="prod"}"#,
            r#"{job="app", env="dev"}"#,
            r#"{job="db"}"#,
        ]
        .iter()
        .enumerate()
        {
            let l = labels(text);
            b.add_chunk(&l, chunk(&l, t + i as i64, t + 100));
            b.add_chunk(&l, chunk(&l, t - 50, t - 1));
        }
        b.finish()
    }

    /// Recomputes the trailing CRC after a test edits the bytes, to reach the structural checks.
    fn reseal(data: &mut [u8]) {
        let n = data.len() - 4;
        let crc = crc32fast::hash(&data[..n]);
        data[n..].copy_from_slice(&crc.to_le_bytes());
    }

    #[test]
    fn sample_roundtrips() {
        let data = sample();
        let idx = IndexObject::decode(&data).unwrap();
        assert_eq!(idx.tenant(), "tenant-a");
        assert_eq!(idx.period(), 19_675);
        assert_eq!(idx.num_series(), 3);
        assert_eq!(idx.num_chunks(), 6);
        assert_eq!(idx.encoded_len(), data.len());
        assert_eq!(idx.label_names().collect::<Vec<_>>(), ["env", "job"]);
        assert_eq!(idx.label_values("job").collect::<Vec<_>>(), ["app", "db"]);
        assert_eq!(idx.label_values("nope").count(), 0);
        assert_eq!(idx.postings("job", "app"), [0, 1]);
        assert_eq!(idx.postings("job", "zzz"), [] as [u32; 0]);
        let (l, chunks) = idx.series_by_id(2).unwrap();
        assert_eq!(l, &labels(r#"{job="db"}"#));
        assert_eq!(chunks.len(), 2);
        assert!(chunks[0].from < chunks[1].from);
        assert!(idx.series_by_id(3).is_none());
    }

    #[test]
    fn empty_index_roundtrips() {
        let data = IndexBuilder::new("t", 0).finish();
        let idx = IndexObject::decode(&data).unwrap();
        assert_eq!((idx.tenant(), idx.num_series(), idx.label_names().count()), ("t", 0, 0));
    }

    #[test]
    fn duplicate_chunks_are_stored_once() {
        let l = labels(r#"{a="1"}"#);
        let mut b = IndexBuilder::new("t", 0);
        b.add_chunk(&l, chunk(&l, 5, 6));
        b.add_chunk(&l, chunk(&l, 5, 6));
        assert_eq!(b.num_series(), 1);
        assert_eq!(IndexObject::decode(&b.finish()).unwrap().num_chunks(), 1);
    }

    #[test]
    fn truncation_at_every_offset_is_an_error() {
        let data = sample();
        for i in 0..data.len() {
            assert!(IndexObject::decode(&data[..i]).is_err(), "truncated at {i}");
        }
    }

    #[test]
    fn label_text_is_bounded_by_object_size() {
        // Many series sharing one large value: a few bytes each on the wire, the whole value
        // each in memory. Decoding stops at the budget instead of allocating it all.
        let value = "v".repeat(1024);
        let mut b = IndexBuilder::new("t", 1);
        for i in 0..200u64 {
            let labels =
                Labels::from_sorted_unchecked(vec![("big".into(), value.clone()), ("i".into(), i.to_string())]);
            b.add_chunk(
                &labels,
                ChunkRef {
                    fingerprint: i,
                    from: 0,
                    through: 1,
                    checksum: 0,
                    size: 1,
                    entries: 1,
                },
            );
        }
        let bytes = b.finish();
        assert!(bytes.len() < 20_000, "shared symbol stored once: {}", bytes.len());
        let err = IndexObject::decode_bounded(&bytes, 100_000)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("label text exceeds 100000 bytes"), "{err}");
        assert!(
            IndexObject::decode(&bytes).is_ok(),
            "the real budget admits honest objects"
        );
        assert!(label_bytes_budget(bytes.len()) >= 200 * 1030);
    }

    #[test]
    fn every_flipped_byte_is_an_error() {
        let data = sample();
        for i in 0..data.len() {
            for mask in [0x01, 0x80, 0xff] {
                let mut d = data.clone();
                d[i] ^= mask;
                assert!(IndexObject::decode(&d).is_err(), "byte {i} ^ {mask:#x}");
            }
        }
    }

    #[test]
    fn magic_version_and_checksum_errors_name_the_value() {
        let mut d = sample();
        d[0] = b'X';
        assert_eq!(
            IndexObject::decode(&d).unwrap_err().to_string(),
            "bad index magic: [58, 4f, 44, 45, 49, 44, 58, 31]"
        );
        let mut d = sample();
        d[8] = 9;
        assert_eq!(IndexObject::decode(&d), Err(IndexError::UnsupportedVersion(9)));
        let mut d = sample();
        let n = d.len();
        d[n - 1] ^= 0xff;
        assert!(
            IndexObject::decode(&d)
                .unwrap_err()
                .to_string()
                .starts_with("index checksum mismatch: stored 0x")
        );
        assert_eq!(IndexObject::decode(b"LODE"), Err(IndexError::TooShort { len: 4 }));
        assert_eq!(
            IndexObject::decode(b"LODEIDX1\x01"),
            Err(IndexError::TooShort { len: 9 })
        );
    }

    #[test]
    fn huge_lengths_with_a_valid_checksum_are_refused() {
        let data = sample();
        let idx_off = |slot: usize| {
            let at = data.len() - FOOTER_LEN + 8 * slot;
            u64::from_le_bytes(data[at..at + 8].try_into().unwrap()) as usize
        };
        // Each section starts with a count: replace it with u64::MAX (a 10-byte varint). The
        // bytes shift, so whichever check fires first, the answer must be an error.
        for slot in 0..3 {
            let off = idx_off(slot);
            let mut d = data[..off].to_vec();
            d.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
            d.extend_from_slice(&data[off + 1..]);
            reseal(&mut d);
            assert!(
                matches!(IndexObject::decode(&d), Err(IndexError::Corrupt { .. })),
                "slot {slot}"
            );
        }
        // A section offset beyond the end.
        let mut d = data.clone();
        let at = d.len() - FOOTER_LEN;
        d[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        reseal(&mut d);
        assert!(matches!(IndexObject::decode(&d), Err(IndexError::Corrupt { .. })));
    }

    #[test]
    fn postings_that_disagree_with_series_are_refused() {
        // Series 0 is {env="dev", job="app"}: point the first postings id of "env"="dev" at
        // series 1 instead by editing the first id byte of the postings section.
        let data = sample();
        let at = data.len() - FOOTER_LEN + 16;
        let off = u64::from_le_bytes(data[at..at + 8].try_into().unwrap()) as usize;
        // Layout: names count, name sym, values count, value sym, ids count, first id.
        let mut d = data.clone();
        assert_eq!(d[off + 5], 0);
        d[off + 5] = 1;
        reseal(&mut d);
        let err = IndexObject::decode(&d).unwrap_err().to_string();
        assert!(err.contains("bad postings entry for env=\"dev\""), "{err}");
    }

    type Model = BTreeMap<(Labels, u64), BTreeSet<ChunkRef>>;

    fn arb_input() -> impl Strategy<Value = Vec<(Labels, bool, i64, u64)>> {
        let pairs = prop::collection::btree_map("[a-e]", "[a-c\u{e9}]{0,2}", 0..4);
        let labels = pairs.prop_map(|m| Labels::from_pairs(m.into_iter().collect()).unwrap());
        // (labels, remapped fingerprint?, from, duration)
        prop::collection::vec((labels, any::<bool>(), any::<i64>(), 0u64..1 << 40), 0..40)
    }

    fn build(input: &[(Labels, bool, i64, u64)]) -> (Vec<u8>, Model) {
        let mut b = IndexBuilder::new("t", 19_000);
        let mut model = Model::new();
        for (i, (l, remap, from, dur)) in input.iter().enumerate() {
            let fingerprint = if *remap { l.fingerprint() ^ 1 } else { l.fingerprint() };
            let c = ChunkRef {
                fingerprint,
                from: *from,
                through: from.saturating_add(*dur as i64),
                checksum: i as u32,
                size: *dur as u32,
                entries: (*dur >> 20) as u32,
            };
            b.add_chunk(l, c);
            model.entry((l.clone(), fingerprint)).or_default().insert(c);
        }
        (b.finish(), model)
    }

    proptest! {
        #[test]
        fn roundtrip(input in arb_input()) {
            let (data, model) = build(&input);
            let idx = IndexObject::decode(&data).unwrap();
            let mut got = Model::new();
            for (_, l, chunks) in idx.series() {
                prop_assert!(chunks.windows(2).all(|w| w[0] < w[1]));
                let fp = chunks[0].fingerprint;
                prop_assert!(chunks.iter().all(|c| c.fingerprint == fp));
                prop_assert!(got.insert((l.clone(), fp), chunks.iter().copied().collect()).is_none());
            }
            prop_assert_eq!(got, model);
        }

        #[test]
        fn postings_match_brute_force(input in arb_input()) {
            let (data, _) = build(&input);
            let idx = IndexObject::decode(&data).unwrap();
            let mut brute: BTreeMap<(String, String), Vec<u32>> = BTreeMap::new();
            for (id, l, _) in idx.series() {
                for (n, v) in l.iter() {
                    brute.entry((n.to_string(), v.to_string())).or_default().push(id);
                }
            }
            let mut seen = BTreeMap::new();
            for n in idx.label_names() {
                for v in idx.label_values(n) {
                    seen.insert((n.to_string(), v.to_string()), idx.postings(n, v).to_vec());
                }
            }
            prop_assert_eq!(seen, brute);
        }

        #[test]
        fn resealed_garbage_never_panics(input in arb_input(), edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
            let (mut data, _) = build(&input);
            let body = data.len() - 4;
            for (at, byte) in edits {
                data[9 + at.index(body - 9)] = byte;
            }
            reseal(&mut data);
            let _ = IndexObject::decode(&data);
        }

        #[test]
        fn arbitrary_bytes_never_panic(mut data in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = IndexObject::decode(&data);
            if data.len() >= 9 + FOOTER_LEN {
                data[..8].copy_from_slice(MAGIC);
                data[8] = VERSION;
                reseal(&mut data);
                let _ = IndexObject::decode(&data);
            }
        }
    }
}
