//! WAL behaviour of a whole ingester: what it acknowledged comes back after a crash (an
//! ingester dropped without flushing), exactly once, across checkpoints and damage.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use lode_model::api::{LogQuerier, LogSelect, Pusher, StreamBatch};
use lode_model::limits::LimitsConfig;
use lode_model::metrics::Discards;
use lode_model::time::ByteSize;
use lode_model::{Direction, Entry, ErrorCode, Labels};
use lode_storage::ObjectStorage;
use prometheus::Registry;

use crate::{Ingester, IngesterConfig, SyncMode};

fn cfg(dir: &Path) -> IngesterConfig {
    let mut c = IngesterConfig::default();
    c.wal.dir = dir.to_string_lossy().into_owned();
    c.wal.sync = SyncMode::Never;
    c
}

async fn start(c: IngesterConfig) -> (Arc<Ingester>, crate::ReplayReport) {
    let reg = Registry::new();
    let ing = Ingester::new(
        "ing-1",
        c,
        LimitsConfig::default(),
        ObjectStorage::in_memory(),
        &reg,
        Discards::new(&reg),
    );
    ing.open_wal().unwrap();
    let report = ing.replay_wal().await.unwrap().unwrap();
    (ing, report)
}

fn batch(labels: &str, from: i64, n: i64, tag: &str) -> StreamBatch {
    StreamBatch {
        labels: Labels::parse(labels).unwrap(),
        entries: (from..from + n)
            .map(|i| {
                let mut e = Entry::new(i, format!("{tag} line {i}"));
                if i % 3 == 0 {
                    e.metadata = vec![("trace_id".into(), format!("t{i}"))];
                }
                e
            })
            .collect(),
    }
}

/// Every line of `tenant`, per stream, oldest first.
async fn lines(ing: &Ingester, tenant: &str) -> Vec<(String, Vec<String>)> {
    let r = ing
        .select_logs(
            tenant,
            &LogSelect {
                query: r#"{app=~".+"}"#.into(),
                start: 0,
                end: i64::MAX,
                direction: Direction::Forward,
                limit: usize::MAX,
            },
        )
        .await
        .unwrap();
    let mut out: Vec<(String, Vec<String>)> = r
        .streams
        .into_iter()
        .map(|s| (s.labels, s.entries.into_iter().map(|e| e.line).collect()))
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_lines_survive_a_crash_exactly_once_across_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let (ing, first) = start(cfg(dir.path())).await;
    assert_eq!(first.records, 0);
    ing.push(
        "t",
        vec![batch(r#"{app="a"}"#, 0, 50, "a"), batch(r#"{app="b"}"#, 0, 10, "b")],
    )
    .await
    .unwrap();
    ing.push("other", vec![batch(r#"{app="a"}"#, 0, 5, "secret")])
        .await
        .unwrap();
    // A checkpoint, then more lines: the replay must take the checkpoint plus only what
    // followed it, not the lines before it twice.
    ing.checkpoint(ing.wal.get().unwrap()).unwrap();
    ing.push(
        "t",
        vec![batch(r#"{app="a"}"#, 50, 30, "a"), batch(r#"{app="c"}"#, 0, 7, "c")],
    )
    .await
    .unwrap();
    let before_t = lines(&ing, "t").await;
    let before_other = lines(&ing, "other").await;
    // A small target size cut chunks on the way, so the checkpoint held cut chunks as well.
    drop(ing);

    let (ing, report) = start(cfg(dir.path())).await;
    assert_eq!(report.damaged, 0);
    assert_eq!(report.dropped_records, 0);
    assert_eq!(lines(&ing, "t").await, before_t);
    assert_eq!(lines(&ing, "other").await, before_other, "tenants stay apart");
    // Order is still enforced after a replay (a line it does not hold, at an old time), and new
    // lines are logged under new ids.
    let e = ing
        .push("t", vec![batch(r#"{app="a"}"#, 10, 1, "late")])
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::BadRequest);
    ing.push("t", vec![batch(r#"{app="b"}"#, 10, 5, "b")]).await.unwrap();
    let after = lines(&ing, "t").await;
    drop(ing);

    // A second crash replays the post-replay checkpoint and what came after it.
    let (ing, _) = start(cfg(dir.path())).await;
    assert_eq!(lines(&ing, "t").await, after);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_hold_cut_chunks_and_remove_old_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(dir.path());
    c.chunk_block_size = ByteSize(1024);
    c.chunk_target_size = ByteSize(1024);
    let (ing, _) = start(c.clone()).await;
    for k in 0..20 {
        ing.push("t", vec![batch(r#"{app="a"}"#, k * 100, 100, "cut")])
            .await
            .unwrap();
    }
    let before = lines(&ing, "t").await;
    assert_eq!(before[0].1.len(), 2000);
    ing.checkpoint(ing.wal.get().unwrap()).unwrap();
    let files = lode_wal::list(dir.path()).unwrap();
    let cp = files.checkpoint.as_ref().unwrap().0;
    assert!(files.segments.iter().all(|(n, _)| *n >= cp), "{files:?}");
    drop(ing);
    let (ing, report) = start(c).await;
    assert_eq!(lines(&ing, "t").await, before);
    // All but the open head block came back as the checkpoint's compressed chunks.
    assert!(report.entries < 100, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damage_costs_only_what_it_touches_and_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(dir.path());
    let (ing, _) = start(c.clone()).await;
    // Four pushes, each its own WAL commit (its own frames).
    for app in ["a", "b", "c", "d"] {
        ing.push("t", vec![batch(&format!(r#"{{app="{app}"}}"#), 0, 10, app)])
            .await
            .unwrap();
    }
    drop(ing);
    let files = lode_wal::list(dir.path()).unwrap();
    let (_, seg) = files.segments.last().unwrap().clone();
    let mut bytes = std::fs::read(&seg).unwrap();
    let frames = lode_wal::read_file(&seg).unwrap();
    assert_eq!(frames.damage, []);
    // Frames: series a, entries a, series b, entries b, ... Flip a byte inside entries b
    // and tear the file in the middle of entries d.
    let offsets: Vec<usize> = {
        let mut offs = Vec::new();
        let mut pos = 8usize;
        while pos + 8 <= bytes.len() {
            offs.push(pos);
            let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
            pos += 8 + len;
        }
        offs
    };
    assert_eq!(offsets.len(), 8);
    bytes[offsets[3] + 12] ^= 0xff;
    let torn = offsets[7] + 20;
    bytes.truncate(torn);
    std::fs::write(&seg, &bytes).unwrap();

    let (ing, report) = start(c).await;
    assert_eq!(report.damaged, 2, "{report:?}");
    let got = lines(&ing, "t").await;
    let apps: Vec<&str> = got.iter().map(|(l, _)| l.as_str()).collect();
    // b's entries and d's entries are gone; a and c are whole; b and d exist as (empty)
    // streams only in memory, so queries show a and c.
    assert_eq!(apps, [r#"{app="a"}"#, r#"{app="c"}"#]);
    assert!(got.iter().all(|(_, l)| l.len() == 10));
    // The torn tail was cut off the file, so it is not reported again... but the file is
    // replaced by the post-replay checkpoint anyway.
    assert!(!seg.exists() || std::fs::metadata(&seg).unwrap().len() as usize <= torn);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_wal_write_is_a_503_and_nothing_is_lost_once_it_works() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(dir.path());
    c.wal.segment_size = ByteSize(1 << 20);
    let (ing, _) = start(c.clone()).await;
    let big = |from: i64, n: i64, tag: &str| StreamBatch {
        labels: Labels::parse(r#"{app="a"}"#).unwrap(),
        entries: (from..from + n)
            .map(|i| Entry::new(i, format!("{tag} {i} {}", "x".repeat(600))))
            .collect(),
    };
    // Fill the segment past its size, so the next commit must open a new one...
    ing.push("t", vec![big(0, 2000, "first")]).await.unwrap();
    // ...which cannot be created: something already sits at its path.
    let next = ing.wal.get().unwrap().segment() + 1;
    let blocker = dir.path().join(format!("{next:020}"));
    std::fs::create_dir(&blocker).unwrap();
    let e = ing.push("t", vec![big(2000, 10, "queued")]).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::Unavailable);
    assert!(
        e.message.starts_with("failed to write to the write-ahead log"),
        "{}",
        e.message
    );
    // While the WAL cannot be written, new lines are refused before they reach memory.
    let e = ing.push("t", vec![big(3000, 10, "refused")]).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::Unavailable);
    let held = lines(&ing, "t").await;
    assert_eq!(held[0].1.len(), 2010, "the refused push left nothing in memory");
    // Once the disk takes writes again, the queued lines are written and pushes work.
    std::fs::remove_dir(&blocker).unwrap();
    ing.push("t", vec![big(4000, 10, "after")]).await.unwrap();
    let all = lines(&ing, "t").await;
    assert_eq!(all[0].1.len(), 2020);
    drop(ing);
    let (ing, report) = start(c).await;
    assert_eq!(report.damaged, 0, "{report:?}");
    assert_eq!(lines(&ing, "t").await, all);
}

/// The frames of a WAL file's bytes: (offset of the frame header, payload length).
fn frame_spans(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut pos = lode_wal::SEGMENT_MAGIC.len();
    while pos + lode_wal::FRAME_HEADER <= bytes.len() {
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        spans.push((pos, len));
        pos += lode_wal::FRAME_HEADER + len;
    }
    spans
}

/// The lines an `entries` frame holds (none for other records).
fn frame_lines(bytes: &[u8], (off, len): (usize, usize)) -> Vec<String> {
    let body = off + lode_wal::FRAME_HEADER;
    match lode_wal::decode(&bytes[body..body + len]).unwrap() {
        lode_wal::Record::Entries { entries, .. } => entries.iter().map(|e| e.line.to_string()).collect(),
        _ => Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_bytes_in_an_earlier_segment_and_a_torn_last_segment_cost_only_their_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(dir.path());
    // The smallest segment the WAL takes; each push below is ~300 KB, so a segment holds four.
    c.wal.segment_size = ByteSize(1 << 20);
    let (ing, _) = start(c.clone()).await;
    let mut pushed: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for k in 0..12i64 {
        let app = ["a", "b", "c"][k as usize % 3];
        let labels = format!(r#"{{app="{app}"}}"#);
        let b = StreamBatch {
            labels: Labels::parse(&labels).unwrap(),
            entries: (k * 100..k * 100 + 100)
                .map(|i| Entry::new(i, format!("{app} {i} {}", "x".repeat(3000))))
                .collect(),
        };
        pushed
            .entry(labels)
            .or_default()
            .extend(b.entries.iter().map(|e| e.line.clone()));
        ing.push("t", vec![b]).await.unwrap();
    }
    assert_eq!(lines(&ing, "t").await, pushed.clone().into_iter().collect::<Vec<_>>());
    drop(ing);

    let segments = lode_wal::list(dir.path()).unwrap().segments;
    assert!(segments.len() >= 3, "{segments:?}");
    // Flip bytes in the middle of an entries frame in the middle of an earlier segment.
    let (_, flipped_path) = segments[segments.len() - 2].clone();
    let mut flipped = std::fs::read(&flipped_path).unwrap();
    assert_eq!(lode_wal::read_file(&flipped_path).unwrap().damage, []);
    let spans = frame_spans(&flipped);
    let entries_frames: Vec<(usize, usize)> = spans
        .iter()
        .copied()
        .filter(|s| !frame_lines(&flipped, *s).is_empty())
        .collect();
    assert!(entries_frames.len() >= 3, "{spans:?}");
    let hit = entries_frames[entries_frames.len() / 2];
    assert_ne!(Some(&hit), spans.last(), "not the segment's last frame");
    let lost_to_flip = frame_lines(&flipped, hit);
    let middle = hit.0 + lode_wal::FRAME_HEADER + hit.1 / 2;
    for b in &mut flipped[middle..middle + 16] {
        *b ^= 0x5a;
    }
    std::fs::write(&flipped_path, &flipped).unwrap();
    // Tear the last segment in the middle of its last record, as a crash mid-write would.
    let (_, torn_path) = segments.last().unwrap().clone();
    let mut torn = std::fs::read(&torn_path).unwrap();
    let last = *frame_spans(&torn).last().unwrap();
    let lost_to_tear = frame_lines(&torn, last);
    let cut = last.0 + lode_wal::FRAME_HEADER + last.1 / 2;
    torn.truncate(cut);
    std::fs::write(&torn_path, &torn).unwrap();
    assert_eq!((lost_to_flip.len(), lost_to_tear.len()), (100, 100));

    let (ing, report) = start(c.clone()).await;
    // Everything else comes back: every line of every other frame, before and after the
    // flipped frame and in every segment, exactly once and in order.
    let lost: Vec<&String> = lost_to_flip.iter().chain(&lost_to_tear).collect();
    let expected: Vec<(String, Vec<String>)> = pushed
        .iter()
        .map(|(l, lines)| (l.clone(), lines.iter().filter(|x| !lost.contains(x)).cloned().collect()))
        .collect();
    let got = lines(&ing, "t").await;
    assert_eq!(got, expected);
    assert_eq!(got.iter().map(|(_, l)| l.len()).sum::<usize>(), 1200 - 200);
    // The report says what was dropped: where, how much, why, and what was cut off.
    let flip_bytes = (lode_wal::FRAME_HEADER + hit.1) as u64;
    let tear_bytes = (cut - last.0) as u64;
    assert_eq!(report.damaged, 2, "{report:?}");
    assert_eq!(report.damaged_bytes, flip_bytes + tear_bytes);
    assert_eq!(report.dropped_records, 0, "{report:?}");
    assert_eq!(report.entries, 1000, "{report:?}");
    let found: Vec<(&Path, u64, u64, bool, bool)> = report
        .damage
        .iter()
        .map(|d| {
            (
                d.file.as_path(),
                d.damage.offset,
                d.damage.bytes,
                d.damage.tail,
                d.truncated,
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            (flipped_path.as_path(), hit.0 as u64, flip_bytes, false, false),
            (torn_path.as_path(), last.0 as u64, tear_bytes, true, true),
        ]
    );
    assert_eq!(report.damage[0].damage.reason, "checksum mismatch");
    assert_eq!(
        report.damage[1].damage.reason,
        format!("torn frame: {} bytes declared, {} present", last.1, last.1 / 2)
    );
    drop(ing);

    // The post-replay checkpoint replaced the damaged files: a second restart finds no
    // damage and the same lines.
    let (ing, report) = start(c).await;
    assert_eq!((report.damaged, report.damage.len()), (0, 0), "{report:?}");
    assert_eq!(lines(&ing, "t").await, expected);
}
