//! Writing an index object. The ingester feeds every chunk it flushed for one (tenant, period)
//! and gets back the bytes to upload; the layout is in `docs/index-format.md`.

use std::collections::{BTreeMap, BTreeSet};

use lode_model::Labels;

use crate::codec::{put_bytes, put_uvarint, put_varint};
use crate::{ChunkRef, period_start};

pub(crate) const MAGIC: &[u8; 8] = b"LODEIDX1";
pub(crate) const VERSION: u8 = 1;
/// Three u64 section offsets and a u32 CRC.
pub(crate) const FOOTER_LEN: usize = 3 * 8 + 4;

/// Collects chunk references for one (tenant, period) and encodes them as one index object.
#[derive(Debug, Clone)]
pub struct IndexBuilder {
    tenant: String,
    period: u64,
    // Keyed by fingerprint as well as labels: the writer's fingerprint is what names the chunk
    // objects, and an ingester that remaps colliding fingerprints may give one label set another.
    series: BTreeMap<Labels, BTreeMap<u64, Vec<ChunkRef>>>,
}

impl IndexBuilder {
    pub fn new(tenant: impl Into<String>, period: u64) -> Self {
        IndexBuilder {
            tenant: tenant.into(),
            period,
            series: BTreeMap::new(),
        }
    }

    /// Adds one flushed chunk of the stream `labels`. Chunks of the same stream are grouped into
    /// one series; adding the same chunk twice (a retried flush) stores it once.
    pub fn add_chunk(&mut self, labels: &Labels, chunk: ChunkRef) {
        debug_assert!(chunk.from <= chunk.through, "chunk from > through: {chunk:?}");
        // Look up before inserting so the label set is cloned once per series, not per chunk.
        if !self.series.contains_key(labels) {
            self.series.insert(labels.clone(), BTreeMap::new());
        }
        if let Some(by_fp) = self.series.get_mut(labels) {
            by_fp.entry(chunk.fingerprint).or_default().push(chunk);
        }
    }

    /// Number of distinct series added so far.
    pub fn num_series(&self) -> usize {
        self.series.values().map(BTreeMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Encodes the index object.
    pub fn finish(mut self) -> Vec<u8> {
        for chunks in self.series.values_mut().flat_map(BTreeMap::values_mut) {
            chunks.sort_unstable();
            chunks.dedup();
        }
        // Symbols sorted by string, so sorting by symbol id is sorting by string.
        let symbols: Vec<&str> = self
            .series
            .keys()
            .flat_map(|labels| labels.iter().flat_map(|(n, v)| [n, v]))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        // Every string looked up was collected above, so the search always hits.
        let sym = |s: &str| {
            let found = symbols.binary_search(&s);
            debug_assert!(found.is_ok(), "symbol {s:?} missing");
            found.unwrap_or_default() as u64
        };

        let mut out = Vec::with_capacity(64 + self.series.len() * 64);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        put_bytes(&mut out, self.tenant.as_bytes());
        put_uvarint(&mut out, self.period);

        let symbols_off = out.len();
        put_uvarint(&mut out, symbols.len() as u64);
        for s in &symbols {
            put_bytes(&mut out, s.as_bytes());
        }

        let series_off = out.len();
        let base = period_start(self.period);
        let mut postings: BTreeMap<&str, BTreeMap<&str, Vec<u32>>> = BTreeMap::new();
        let series = self
            .series
            .iter()
            .flat_map(|(labels, by_fp)| by_fp.iter().map(move |(fp, chunks)| (labels, *fp, chunks)));
        put_uvarint(&mut out, self.num_series() as u64);
        for (id, (labels, fingerprint, chunks)) in series.enumerate() {
            debug_assert!(u32::try_from(id).is_ok(), "more than u32::MAX series");
            put_uvarint(&mut out, labels.len() as u64);
            for (n, v) in labels.iter() {
                put_uvarint(&mut out, sym(n));
                put_uvarint(&mut out, sym(v));
                postings.entry(n).or_default().entry(v).or_default().push(id as u32);
            }
            out.extend_from_slice(&fingerprint.to_le_bytes());
            put_uvarint(&mut out, chunks.len() as u64);
            // A stream's chunks follow each other, so each `from` is stored relative to the
            // previous chunk's `through` (the first relative to the period start): a few bytes
            // instead of nine. Wrapping arithmetic makes any i64s round-trip.
            let mut prev = base;
            for c in chunks {
                put_varint(&mut out, c.from.wrapping_sub(prev));
                put_uvarint(&mut out, c.through.wrapping_sub(c.from) as u64);
                out.extend_from_slice(&c.checksum.to_le_bytes());
                put_uvarint(&mut out, u64::from(c.size));
                put_uvarint(&mut out, u64::from(c.entries));
                prev = c.through;
            }
        }

        let postings_off = out.len();
        put_uvarint(&mut out, postings.len() as u64);
        for (name, values) in &postings {
            put_uvarint(&mut out, sym(name));
            put_uvarint(&mut out, values.len() as u64);
            for (value, ids) in values {
                put_uvarint(&mut out, sym(value));
                put_uvarint(&mut out, ids.len() as u64);
                // Ids are strictly increasing: store the first, then gaps.
                let mut prev = 0;
                for (i, &id) in ids.iter().enumerate() {
                    put_uvarint(&mut out, u64::from(if i == 0 { id } else { id - prev }));
                    prev = id;
                }
            }
        }

        for off in [symbols_off, series_off, postings_off] {
            out.extend_from_slice(&(off as u64).to_le_bytes());
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::IndexObject;

    /// Size of a typical flush: 1000 streams with 5 labels (one unique pod name each), 3 chunks
    /// per stream. Keeps an eye on the format staying small; the figure is in the format doc.
    #[test]
    fn typical_flush_is_small() {
        let period = 20_000;
        let base = crate::period_start(period);
        let mut b = IndexBuilder::new("tenant-1", period);
        for i in 0..1000u32 {
            let l = Labels::from_pairs(vec![
                ("cluster".into(), "eu-west-1".into()),
                ("namespace".into(), format!("ns-{}", i % 10)),
                ("job".into(), format!("ns-{}/app-{}", i % 10, i % 20)),
                ("pod".into(), format!("app-{}-7d9f8b6c5-{i:05x}", i % 20)),
                ("container".into(), format!("c{}", i % 5)),
            ])
            .unwrap();
            for c in 0..3i64 {
                let from = base + (c * 3600 + i64::from(i)) * 1_000_000_000 + 123_456_789;
                b.add_chunk(
                    &l,
                    ChunkRef {
                        fingerprint: l.fingerprint(),
                        from,
                        through: from + 3599 * 1_000_000_000 + 987_654_321,
                        checksum: i.wrapping_mul(2_654_435_761) ^ c as u32,
                        size: 400_000 + i * 37,
                        entries: 20_000 + i,
                    },
                );
            }
        }
        let data = b.finish();
        let t = std::time::Instant::now();
        let idx = IndexObject::decode(&data).unwrap();
        println!("decoded in {:?}", t.elapsed());
        assert_eq!((idx.num_series(), idx.num_chunks()), (1000, 3000));
        assert!(
            idx.series()
                .all(|(_, _, cs)| cs.iter().all(|c| crate::period_of(c.from) == period))
        );
        let off = |slot: usize| {
            let at = data.len() - FOOTER_LEN + 8 * slot;
            u64::from_le_bytes(data[at..at + 8].try_into().unwrap()) as usize
        };
        let footer = data.len() - FOOTER_LEN;
        println!(
            "1000 series x 3 chunks x 5 labels: {} bytes (symbols {}, series {}, postings {})",
            data.len(),
            off(1) - off(0),
            off(2) - off(1),
            footer - off(2)
        );
        // Chunk references dominate: three ns timestamps' worth of varints plus a CRC per chunk.
        assert!(data.len() < 160 * 1024, "{} bytes", data.len());
    }
}
