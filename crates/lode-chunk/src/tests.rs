//! Round trips, range filtering, block skipping and every corruption class, across `MemChunk`,
//! `Chunk` and the block codec.

use std::ops::ControlFlow;

use lode_model::{Direction, Entry};
use proptest::prelude::*;

use crate::block::Block;
use crate::format::{FOOTER_LEN, HEADER_LEN, TABLE_ENTRY_LEN};
use crate::{Chunk, ChunkError, MemChunk, Skipped};

fn build(entries: &[Entry], block_size: usize, zstd: bool) -> MemChunk {
    let mut c = if zstd {
        MemChunk::new(block_size, 3)
    } else {
        MemChunk::new_uncompressed(block_size)
    };
    for e in entries {
        c.append(e.ts, &e.line, &e.metadata).unwrap();
    }
    c
}

fn sample(n: usize) -> Vec<Entry> {
    (0..n)
        .map(|i| {
            let mut e = Entry::new(
                1_000 + i as i64 * 10,
                format!("level=info msg=\"line {i}\" status={}", 200 + i % 3),
            );
            if i % 4 == 0 {
                e.metadata = vec![("trace_id".into(), format!("t{i}")), ("pod".into(), "p-1".into())];
            }
            e
        })
        .collect()
}

fn matching(entries: &[Entry], start: i64, end: i64, needle: &str) -> Vec<Entry> {
    entries
        .iter()
        .filter(|e| e.ts >= start && e.ts < end && e.line.contains(needle))
        .cloned()
        .collect()
}

fn containing(c: &Chunk, start: i64, end: i64, dir: Direction, needle: &str) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut skipped = Skipped::default();
    let flow = c.for_each_containing(start, end, dir, Some(needle.as_bytes()), &mut skipped, |e| {
        out.push(e.to_entry());
        ControlFlow::Continue(())
    });
    assert_eq!(flow, Ok(ControlFlow::Continue(())));
    // Hits plus what the needle passed over are every line in range.
    let all = c.entries(start, end, dir).unwrap();
    let bytes = |es: &[Entry]| es.iter().map(|e| e.line.len() as u64).sum::<u64>();
    assert_eq!(out.len() as u64 + skipped.lines, all.len() as u64);
    assert_eq!(bytes(&out) + skipped.bytes, bytes(&all));
    out
}

/// Recomputes the metadata checksum after a test edits the header or table on purpose.
fn reseal(bytes: &mut [u8]) {
    let f = bytes.len() - FOOTER_LEN;
    let table_offset = u64::from_le_bytes(bytes[f..f + 8].try_into().unwrap()) as usize;
    let mut h = crc32fast::Hasher::new();
    h.update(&bytes[..HEADER_LEN]);
    h.update(&bytes[table_offset..f]);
    bytes[f + 12..].copy_from_slice(&h.finalize().to_le_bytes());
}

fn table_row(bytes: &[u8], block: usize) -> usize {
    let f = bytes.len() - FOOTER_LEN;
    let table_offset = u64::from_le_bytes(bytes[f..f + 8].try_into().unwrap()) as usize;
    table_offset + 4 + block * TABLE_ENTRY_LEN
}

fn scan_all(c: &Chunk) -> Result<usize, ChunkError> {
    let mut n = 0;
    let _ = c.for_each_entry(i64::MIN, i64::MAX, Direction::Forward, |_| {
        n += 1;
        ControlFlow::Continue(())
    })?;
    Ok(n)
}

fn arb_entries() -> impl Strategy<Value = Vec<Entry>> {
    let meta = prop::collection::vec(("[a-z_]{0,6}", "\\PC{0,8}"), 0..3);
    let entry = (
        0i64..2_000_000_000,
        "\\PC{0,40}|[ab ]{0,12}",
        prop::option::weighted(0.3, meta),
    );
    (-(1i64 << 60)..(1i64 << 60), prop::collection::vec(entry, 0..300)).prop_map(|(base, es)| {
        let mut ts = base;
        es.into_iter()
            .map(|(d, line, meta)| {
                ts += d;
                Entry {
                    ts,
                    line,
                    metadata: meta.unwrap_or_default(),
                    parsed: Vec::new(),
                }
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn roundtrip(entries in arb_entries(), bs in prop::sample::select(vec![1usize, 100, 2_000, 1 << 18]), zstd: bool) {
        let mut mem = build(&entries, bs, zstd);
        prop_assert_eq!(mem.num_entries(), entries.len() as u64);
        prop_assert_eq!(mem.min_ts(), entries.first().map(|e| e.ts));
        prop_assert_eq!(mem.max_ts(), entries.last().map(|e| e.ts));
        prop_assert_eq!(&mem.entries(i64::MIN, i64::MAX, Direction::Forward).unwrap(), &entries);
        let bytes = mem.encode().unwrap();
        let chunk = Chunk::decode(&bytes).unwrap();
        prop_assert_eq!(chunk.num_entries(), entries.len() as u64);
        prop_assert_eq!(chunk.blocks().len(), mem.num_blocks());
        prop_assert_eq!(&chunk.entries(i64::MIN, i64::MAX, Direction::Forward).unwrap(), &entries);
        let mut rev = entries.clone();
        rev.reverse();
        prop_assert_eq!(&chunk.entries(i64::MIN, i64::MAX, Direction::Backward).unwrap(), &rev);
        // `encode` leaves the MemChunk usable and equal to what it flushed.
        prop_assert_eq!(&mem.entries(i64::MIN, i64::MAX, Direction::Forward).unwrap(), &entries);
        let smaller = Chunk::decode(&mem.encode_at_level(9).unwrap()).unwrap();
        prop_assert_eq!(&smaller.entries(i64::MIN, i64::MAX, Direction::Forward).unwrap(), &entries);
        prop_assert_eq!(mem.into_bytes().unwrap(), bytes);
    }

    #[test]
    fn ranges_and_needles(entries in arb_entries(), a in 0usize..300, b in 0usize..300, needle in "[ab ]{0,3}") {
        let at = |i: usize| entries.get(i).map_or(i64::MAX, |e| e.ts);
        let (start, end) = (at(a.min(b)), at(a.max(b)));
        let mut mem = build(&entries, 500, true);
        let want = matching(&entries, start, end, "");
        prop_assert_eq!(&mem.entries(start, end, Direction::Forward).unwrap(), &want);
        let chunk = Chunk::decode(&mem.encode().unwrap()).unwrap();
        prop_assert_eq!(&chunk.entries(start, end, Direction::Forward).unwrap(), &want);
        let want = matching(&entries, start, end, &needle);
        prop_assert_eq!(&containing(&chunk, start, end, Direction::Forward, &needle), &want);
        let mut rev = want.clone();
        rev.reverse();
        prop_assert_eq!(&containing(&chunk, start, end, Direction::Backward, &needle), &rev);
    }

    /// Any single corrupted byte yields an error or (for bytes that do not matter) the data:
    /// never a panic, never a wrong answer that passed every check.
    #[test]
    fn flipped_bytes_never_panic(at in any::<prop::sample::Index>(), x in 1u8..=255, zstd: bool) {
        let entries = sample(200);
        let mut bytes = build(&entries, 1_000, zstd).encode().unwrap();
        let i = at.index(bytes.len());
        bytes[i] ^= x;
        if let Ok(c) = Chunk::decode(&bytes)
            && let Ok(got) = c.entries(i64::MIN, i64::MAX, Direction::Forward)
        {
            prop_assert_eq!(got, entries);
        }
    }

    #[test]
    fn block_decoder_survives_garbage(buf in prop::collection::vec(any::<u8>(), 0..200)) {
        let mut b = Block::default();
        if b.decode_from(buf).is_ok() {
            for e in b.iter() {
                let _ = e.to_entry();
            }
        }
    }
}

#[test]
fn cuts_blocks_at_block_size_and_skips_blocks_out_of_range() {
    let entries = sample(2_000);
    let mut mem = build(&entries, 4_096, true);
    assert!(mem.num_blocks() > 5, "{} blocks", mem.num_blocks());
    for w in mem.blocks().windows(2) {
        assert!(w[0].max_ts <= w[1].min_ts);
    }
    assert!(mem.compressed_bytes() < mem.uncompressed_bytes());
    let mut bytes = mem.encode().unwrap();
    let blocks = Chunk::decode(&bytes).unwrap().blocks().to_vec();
    // Corrupt the first block: queries after it must still succeed, which shows they never
    // read it; a query covering it must fail naming it.
    bytes[blocks[0].offset as usize + 3] ^= 0xff;
    let c = Chunk::decode(&bytes).unwrap();
    let start = blocks[2].min_ts;
    assert_eq!(
        c.entries(start, i64::MAX, Direction::Forward).unwrap(),
        matching(&entries, start, i64::MAX, "")
    );
    let err = c.entries(0, i64::MAX, Direction::Forward).unwrap_err();
    assert!(matches!(err, ChunkError::BlockChecksum { block: 0, .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with("chunk checksum mismatch in block 0: stored 0x"),
        "{err}"
    );
}

#[test]
fn breaking_stops_the_scan() {
    let mut mem = build(&sample(1_000), 2_000, true);
    let c = Chunk::decode(&mem.encode().unwrap()).unwrap();
    let mut seen = Vec::new();
    let flow = c.for_each_entry(0, i64::MAX, Direction::Backward, |e| {
        seen.push(e.ts);
        if seen.len() == 3 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    assert_eq!(flow, Ok(ControlFlow::Break(())));
    assert_eq!(seen, vec![10_990, 10_980, 10_970]);
}

#[test]
fn metadata_is_zero_copy_and_searchable() {
    let mut mem = build(&sample(8), 1 << 20, true);
    let c = Chunk::decode(&mem.encode().unwrap()).unwrap();
    let b = c.block(0).unwrap();
    let e = b.entry(4).unwrap();
    assert_eq!(e.metadata.get("trace_id"), Some("t4"));
    assert_eq!(e.metadata.len(), 2);
    assert_eq!(e.metadata.size(), "trace_idt4podp-1".len());
    assert!(b.entry(5).unwrap().metadata.is_empty());
    assert!(b.entry(8).is_none());
}

#[test]
fn truncated_chunks_are_refused() {
    let bytes = build(&sample(300), 2_000, true).encode().unwrap();
    for n in 0..bytes.len() {
        assert!(Chunk::decode(&bytes[..n]).is_err(), "prefix of {n} bytes decoded");
    }
    assert!(matches!(Chunk::decode(&[]), Err(ChunkError::TooShort { len: 0, .. })));
}

#[test]
fn header_errors_name_the_value() {
    let good = build(&sample(10), 2_000, true).encode().unwrap();
    let mut b = good.clone();
    b[0] = b'X';
    let err = Chunk::decode(&b).unwrap_err();
    assert_eq!(err.to_string(), "bad chunk magic 0x584f444543484e4b");
    let mut b = good.clone();
    b[8] = 9;
    reseal(&mut b);
    assert_eq!(
        Chunk::decode(&b).unwrap_err().to_string(),
        "unsupported chunk version 9"
    );
    let mut b = good.clone();
    b[9] = 7;
    reseal(&mut b);
    assert_eq!(Chunk::decode(&b).unwrap_err(), ChunkError::UnsupportedCodec(7));
    // Unsealed, a header edit is caught by the metadata checksum.
    let mut b = good;
    b[9] = 0;
    assert!(matches!(Chunk::decode(&b), Err(ChunkError::TableChecksum { .. })));
}

#[test]
fn flipped_byte_in_each_block_names_the_block() {
    let bytes = build(&sample(1_000), 2_000, true).encode().unwrap();
    let blocks = Chunk::decode(&bytes).unwrap().blocks().to_vec();
    for (i, m) in blocks.iter().enumerate() {
        let mut b = bytes.clone();
        b[m.offset as usize + m.compressed_len as usize / 2] ^= 1;
        let c = Chunk::decode(&b).unwrap();
        assert!(matches!(c.block(i), Err(ChunkError::BlockChecksum { block, .. }) if block == i));
        assert!(matches!(scan_all(&c), Err(ChunkError::BlockChecksum { block, .. }) if block == i));
    }
}

#[test]
fn flipped_byte_in_table_or_footer_is_refused() {
    let bytes = build(&sample(500), 2_000, true).encode().unwrap();
    let table = table_row(&bytes, 0) - 4;
    for i in table..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0x10;
        assert!(Chunk::decode(&b).is_err(), "flip at {i} accepted");
    }
    let mut b = bytes;
    b[table + 10] ^= 0x10;
    assert!(matches!(Chunk::decode(&b), Err(ChunkError::TableChecksum { .. })));
}

#[test]
fn huge_declared_lengths_are_refused_without_allocating() {
    let bytes = build(&sample(500), 2_000, true).encode().unwrap();
    let row = table_row(&bytes, 1);
    // Uncompressed length of block 1 set to 4 GiB - 1.
    let mut b = bytes.clone();
    b[row + 28..row + 32].copy_from_slice(&u32::MAX.to_le_bytes());
    reseal(&mut b);
    assert!(matches!(
        Chunk::decode(&b),
        Err(ChunkError::BlockTooLarge { block: 1, .. })
    ));
    // Compressed length past the end of the chunk.
    let mut b = bytes.clone();
    b[row + 24..row + 28].copy_from_slice(&u32::MAX.to_le_bytes());
    reseal(&mut b);
    assert!(matches!(Chunk::decode(&b), Err(ChunkError::Corrupt(_))));
    // Block count far beyond the table.
    let mut b = bytes.clone();
    b[row - 4 - TABLE_ENTRY_LEN..row - TABLE_ENTRY_LEN].copy_from_slice(&u32::MAX.to_le_bytes());
    reseal(&mut b);
    assert!(matches!(Chunk::decode(&b), Err(ChunkError::Corrupt(_))));
    // Declared uncompressed length smaller than the real one: zstd stops at the capacity.
    let mut b = bytes;
    b[row + 28..row + 32].copy_from_slice(&100u32.to_le_bytes());
    reseal(&mut b);
    let c = Chunk::decode(&b).unwrap();
    assert!(matches!(c.block(1), Err(ChunkError::CorruptBlock { block: 1, .. })));
}

#[test]
fn payload_that_passes_its_checksum_but_lies_is_refused() {
    // An uncompressed chunk lets the test write payload bytes directly.
    let bytes = build(&sample(50), 1 << 20, false).encode().unwrap();
    let row = table_row(&bytes, 0);
    let m = Chunk::decode(&bytes).unwrap().blocks()[0];
    let (lo, hi) = (m.offset as usize, (m.offset + u64::from(m.compressed_len)) as usize);
    let text_len = u32::from_le_bytes(bytes[hi - 4..hi].try_into().unwrap()) as usize;
    let forge = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut b = bytes.clone();
        let mut payload = b[lo..hi].to_vec();
        edit(&mut payload);
        b[lo..hi].copy_from_slice(&payload);
        b[row + 36..row + 40].copy_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        reseal(&mut b);
        Chunk::decode(&b).unwrap().block(0)
    };
    // Entry count varint claiming billions of entries.
    let err = forge(&|p| p[text_len..][..5].copy_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]));
    assert!(matches!(err, Err(ChunkError::CorruptBlock { block: 0, .. })), "{err:?}");
    // Text length beyond the payload.
    let n = hi - lo;
    let err = forge(&|p| p[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes()));
    assert!(matches!(err, Err(ChunkError::CorruptBlock { block: 0, .. })), "{err:?}");
    // Invalid UTF-8 in a line.
    let err = forge(&|p| p[0] = 0xff);
    assert!(matches!(err, Err(ChunkError::CorruptBlock { block: 0, .. })), "{err:?}");
}

#[test]
fn oversized_entries_are_refused() {
    let mut c = MemChunk::default();
    let line = "x".repeat(crate::MAX_ENTRY_BYTES + 1);
    assert!(matches!(c.append(1, &line, &[]), Err(ChunkError::EntryTooLarge { .. })));
    assert!(c.is_empty());
}

#[test]
fn empty_chunk_roundtrips() {
    let mut mem = MemChunk::default();
    let c = Chunk::decode(&mem.encode().unwrap()).unwrap();
    assert_eq!(c.num_entries(), 0);
    assert_eq!(c.min_ts(), None);
    assert!(c.entries(i64::MIN, i64::MAX, Direction::Forward).unwrap().is_empty());
}

proptest! {
    /// Writers append in order, but a block holding any timestamps at all, including extremes
    /// whose deltas overflow, still round trips and filters correctly.
    #[test]
    fn any_timestamps_roundtrip_in_a_block(ts in prop::collection::vec(any::<i64>(), 0..50), sorted: bool, a: i64, b: i64) {
        let mut ts = ts;
        if sorted {
            ts.sort_unstable();
        }
        let mut blk = Block::default();
        for t in &ts {
            blk.push(*t, "x", &[]);
        }
        let mut buf = Vec::new();
        blk.encode_into(&mut buf);
        prop_assert!(buf.len() <= blk.encoded_len());
        let mut back = Block::default();
        back.decode_from(buf).unwrap();
        prop_assert_eq!(back.iter().map(|e| e.ts).collect::<Vec<_>>(), ts.clone());
        let (start, end) = (a.min(b), a.max(b));
        let mut got = Vec::new();
        let _ = back.for_each_entry(start, end, Direction::Forward, |e| {
            got.push(e.ts);
            ControlFlow::Continue(())
        });
        prop_assert_eq!(got, ts.iter().copied().filter(|t| *t >= start && *t < end).collect::<Vec<_>>());
    }
}

#[test]
fn millisecond_timestamps_cost_less_than_nanosecond_ones() {
    let size = |jitter: i64| {
        let mut b = Block::default();
        let mut ts = 1_700_000_000_000_000_000;
        for i in 0..1_000i64 {
            // Irregular gaps, as real traffic has; only the precision differs.
            ts += (i * i % 997 + 1) * 1_000_000 + i * 7_919 % jitter;
            b.push(ts, "", &[]);
        }
        let mut buf = Vec::new();
        b.encode_into(&mut buf);
        buf.len()
    };
    let (ms, ns) = (size(1), size(1_000));
    assert!(ms * 3 < ns * 2, "ms {ms} bytes, ns {ns} bytes");
}

#[test]
fn types_cross_threads() {
    // The ingester keeps MemChunks behind a lock shared across tasks; the querier shares Chunks.
    fn sync<T: Send + Sync>() {}
    sync::<MemChunk>();
    sync::<Chunk>();
    sync::<Block>();
}
