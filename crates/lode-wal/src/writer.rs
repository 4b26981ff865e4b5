//! Writing the WAL: appends go to an in-memory buffer under a short lock (so pushers holding a
//! stream do not wait for the disk); `commit` writes the buffer to the current segment under a
//! second lock, so concurrent pushes share one write and, with `sync: always`, one fsync.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

use crate::reader::{checkpoint_name, scan_dir, segment_name};
use crate::{Batch, CHECKPOINT_MAGIC, Result, SEGMENT_MAGIC, WalError};

/// When written records are forced to disk (see docs/wal-format.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SyncMode {
    /// fsync before a commit returns.
    Always,
    /// fsync from a background task every `sync_period`.
    #[default]
    Interval,
    /// Never fsync; the kernel writes back when it likes.
    Never,
}

struct Segment {
    no: u64,
    path: PathBuf,
    file: File,
    size: u64,
    /// Written since the last fsync.
    dirty: bool,
    /// A write failed part-way: the file may end in a torn frame, so the next commit starts a
    /// new segment instead of appending after it.
    broken: bool,
}

/// The write side of one ingester's WAL.
pub struct Wal {
    dir: PathBuf,
    sync: SyncMode,
    segment_size: u64,
    pending: Mutex<Vec<u8>>,
    segment: Mutex<Segment>,
    failed: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn create_file(path: &Path, magic: &[u8]) -> Result<File> {
    let mut f = std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(path)
        .map_err(WalError::io("create", path))?;
    f.write_all(magic).map_err(WalError::io("write", path))?;
    Ok(f)
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(WalError::io("fsync", dir))
}

impl Wal {
    /// Opens `dir` for writing in a new segment numbered after every file already there (which
    /// a replay reads first).
    pub fn open(dir: &Path, sync: SyncMode, segment_size: u64) -> Result<Wal> {
        std::fs::create_dir_all(dir).map_err(WalError::io("create", dir))?;
        let (segments, checkpoints) = scan_dir(dir)?;
        let next = segments
            .last()
            .copied()
            .max(checkpoints.last().copied())
            .map_or(1, |n| n + 1);
        let segment = Self::new_segment(dir, next)?;
        sync_dir(dir)?;
        Ok(Wal {
            dir: dir.to_path_buf(),
            sync,
            segment_size: segment_size.max(1 << 20),
            pending: Mutex::new(Vec::new()),
            segment: Mutex::new(segment),
            failed: AtomicBool::new(false),
        })
    }

    fn new_segment(dir: &Path, no: u64) -> Result<Segment> {
        let path = dir.join(segment_name(no));
        let file = create_file(&path, SEGMENT_MAGIC)?;
        Ok(Segment {
            no,
            path,
            file,
            size: SEGMENT_MAGIC.len() as u64,
            dirty: true,
            broken: false,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn sync_mode(&self) -> SyncMode {
        self.sync
    }

    /// Queues a batch; callers append while holding the stream the batch is about, so one
    /// stream's records reach the file in the order its entries were accepted.
    pub fn append(&self, batch: &Batch) {
        if !batch.is_empty() {
            lock(&self.pending).extend_from_slice(batch.bytes());
        }
    }

    /// Whether the last commit failed (the disk is full or failing).
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }

    /// Writes everything appended so far (by any caller) to the current segment, and fsyncs
    /// with `sync: always`. On failure the bytes stay queued, in order, for the next commit,
    /// and the next commit starts a new segment.
    pub fn commit(&self) -> Result<()> {
        let mut seg = lock(&self.segment);
        let data = std::mem::take(&mut *lock(&self.pending));
        if data.is_empty() {
            return Ok(());
        }
        match self.write_locked(&mut seg, &data) {
            Ok(()) => {
                self.failed.store(false, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                let mut pending = lock(&self.pending);
                let newer = std::mem::replace(&mut *pending, data);
                pending.extend_from_slice(&newer);
                self.failed.store(true, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    fn write_locked(&self, seg: &mut Segment, data: &[u8]) -> Result<()> {
        if seg.broken || seg.size >= self.segment_size {
            let next = Self::new_segment(&self.dir, seg.no + 1)?;
            // The old segment's data must be on disk before the new one is relied on.
            if !seg.broken {
                seg.file.sync_all().map_err(WalError::io("fsync", &seg.path))?;
            }
            *seg = next;
        }
        if let Err(e) = seg.file.write_all(data) {
            seg.broken = true;
            return Err(WalError::io("write", &seg.path)(e));
        }
        seg.size += data.len() as u64;
        seg.dirty = true;
        if self.sync == SyncMode::Always {
            seg.file.sync_data().map_err(WalError::io("fsync", &seg.path))?;
            seg.dirty = false;
        }
        Ok(())
    }

    /// fsyncs the current segment if it was written since the last fsync (`sync: interval`).
    pub fn sync(&self) -> Result<()> {
        let mut seg = lock(&self.segment);
        if seg.dirty && !seg.broken {
            seg.file.sync_data().map_err(WalError::io("fsync", &seg.path))?;
            seg.dirty = false;
        }
        Ok(())
    }

    /// Commits, fsyncs and starts a new segment; returns its number. Everything appended
    /// after this call lands in the new segment or later.
    pub fn rotate(&self) -> Result<u64> {
        self.commit()?;
        let mut seg = lock(&self.segment);
        if !seg.broken {
            seg.file.sync_all().map_err(WalError::io("fsync", &seg.path))?;
        }
        let next = Self::new_segment(&self.dir, seg.no + 1)?;
        *seg = next;
        sync_dir(&self.dir)?;
        Ok(seg.no)
    }

    /// Starts checkpoint `no` (the number [`Wal::rotate`] returned).
    pub fn begin_checkpoint(&self, no: u64) -> Result<CheckpointWriter> {
        let final_path = self.dir.join(checkpoint_name(no));
        let tmp = self.dir.join(format!("{}.tmp", checkpoint_name(no)));
        // A crash mid-checkpoint may have left one.
        let _ = std::fs::remove_file(&tmp);
        let file = create_file(&tmp, CHECKPOINT_MAGIC)?;
        Ok(CheckpointWriter {
            no,
            tmp,
            final_path,
            dir: self.dir.clone(),
            out: BufWriter::with_capacity(1 << 20, file),
            bytes: CHECKPOINT_MAGIC.len() as u64,
        })
    }

    /// Deletes the segments and checkpoints that checkpoint `no` makes redundant.
    pub fn remove_before(&self, no: u64) -> Result<usize> {
        let (segments, checkpoints) = scan_dir(&self.dir)?;
        let mut removed = 0;
        for path in segments
            .into_iter()
            .filter(|n| *n < no)
            .map(|n| self.dir.join(segment_name(n)))
            .chain(
                checkpoints
                    .into_iter()
                    .filter(|n| *n < no)
                    .map(|n| self.dir.join(checkpoint_name(n))),
            )
        {
            std::fs::remove_file(&path).map_err(WalError::io("remove", &path))?;
            removed += 1;
        }
        Ok(removed)
    }

    /// The number of the segment being written.
    pub fn segment(&self) -> u64 {
        lock(&self.segment).no
    }
}

/// Writes one checkpoint file; [`CheckpointWriter::finish`] makes it the one replays use.
pub struct CheckpointWriter {
    no: u64,
    tmp: PathBuf,
    final_path: PathBuf,
    dir: PathBuf,
    out: BufWriter<File>,
    bytes: u64,
}

impl CheckpointWriter {
    pub fn write(&mut self, batch: &Batch) -> Result<()> {
        self.out
            .write_all(batch.bytes())
            .map_err(WalError::io("write", &self.tmp))?;
        self.bytes += batch.len() as u64;
        Ok(())
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// fsyncs and renames the file into place; returns its number and size.
    pub fn finish(self) -> Result<(u64, u64)> {
        let file = self
            .out
            .into_inner()
            .map_err(|e| WalError::io("write", &self.tmp)(e.into_error()))?;
        file.sync_all().map_err(WalError::io("fsync", &self.tmp))?;
        std::fs::rename(&self.tmp, &self.final_path).map_err(WalError::io("rename", &self.tmp))?;
        sync_dir(&self.dir)?;
        Ok((self.no, self.bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Record, decode, list, read_file};

    fn batch(id: u64, lines: &[&str]) -> Batch {
        let mut b = Batch::new();
        b.series("t", id, &format!("{{s=\"{id}\"}}"));
        b.begin_entries(id);
        for (i, l) in lines.iter().enumerate() {
            b.entry(i as i64, l, [].into_iter());
        }
        b.end_entries();
        b
    }

    fn all_lines(dir: &Path) -> Vec<String> {
        let files = list(dir).unwrap();
        let mut out = Vec::new();
        for path in files
            .checkpoint
            .iter()
            .map(|c| &c.1)
            .chain(files.segments.iter().map(|s| &s.1))
        {
            let f = read_file(path).unwrap();
            assert!(f.damage.is_empty(), "{:?}", f.damage);
            for p in f.payloads() {
                if let Record::Entries { entries, .. } = decode(p).unwrap() {
                    out.extend(entries.iter().map(|e| e.line.to_string()));
                }
            }
        }
        out
    }

    #[test]
    fn commits_land_in_order_across_segments_and_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path(), SyncMode::Always, 1).unwrap();
        assert_eq!(wal.segment(), 1);
        wal.append(&batch(1, &["a", "b"]));
        wal.commit().unwrap();
        let n = wal.rotate().unwrap();
        assert_eq!(n, 2);
        wal.append(&batch(1, &["c"]));
        wal.commit().unwrap();
        assert_eq!(all_lines(dir.path()), ["a", "b", "c"]);

        // A checkpoint at 2 holds what was in memory; segment 1 goes.
        let mut cp = wal.begin_checkpoint(n).unwrap();
        cp.write(&batch(1, &["a", "b"])).unwrap();
        cp.finish().unwrap();
        assert_eq!(wal.remove_before(n).unwrap(), 1);
        let files = list(dir.path()).unwrap();
        assert_eq!(files.checkpoint.as_ref().map(|c| c.0), Some(2));
        assert_eq!(files.segments.iter().map(|s| s.0).collect::<Vec<_>>(), [2]);
        assert_eq!(all_lines(dir.path()), ["a", "b", "c"]);

        // Reopening continues after every existing file.
        drop(wal);
        let wal = Wal::open(dir.path(), SyncMode::Never, 1 << 20).unwrap();
        assert_eq!(wal.segment(), 3);
    }

    #[test]
    fn large_segments_roll_over() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path(), SyncMode::Never, 1 << 20).unwrap();
        let line = "x".repeat(300_000);
        for i in 0..8 {
            wal.append(&batch(i, &[&line]));
            wal.commit().unwrap();
        }
        let files = list(dir.path()).unwrap();
        assert!(files.segments.len() >= 2, "{files:?}");
        assert_eq!(all_lines(dir.path()).len(), 8);
    }

    #[test]
    fn a_failed_write_keeps_the_bytes_for_the_next_commit() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path(), SyncMode::Never, 1 << 20).unwrap();
        // Replace the segment's file with a read-only handle: writes fail like a full disk.
        {
            let mut seg = lock(&wal.segment);
            seg.file = File::open(&seg.path).unwrap();
        }
        wal.append(&batch(1, &["kept"]));
        assert!(wal.commit().is_err());
        assert!(wal.failed());
        wal.append(&batch(2, &["later"]));
        // The next commit opens a fresh segment and writes both, in order.
        wal.commit().unwrap();
        assert!(!wal.failed());
        assert_eq!(all_lines(dir.path()), ["kept", "later"]);
        assert_eq!(wal.segment(), 2);
    }
}
