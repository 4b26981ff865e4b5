//! The ingester's side of the write-ahead log (format in docs/wal-format.md): replay on start
//! (newest checkpoint, then the segments after it, records routed to worker threads by stream
//! id so each stream replays in order while streams replay in parallel), periodic checkpoints
//! that let old segments go, and the fsync timer of `sync: interval`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::{Duration, Instant};

use lode_model::{Entry, Labels};
use lode_wal::{Batch, Record, SyncMode, Wal, WalError};
use tokio::sync::watch;

use crate::Ingester;
use crate::instance::StreamRef;

/// What a replay found, for the log line and the metrics.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReplayReport {
    pub files: usize,
    pub bytes: u64,
    pub records: u64,
    pub entries: u64,
    /// Damaged stretches of files (skipped frames and torn tails).
    pub damaged: u64,
    pub damaged_bytes: u64,
    /// Records that could not be applied (undecodable, or for a stream with no `series`).
    pub dropped_records: u64,
    pub streams: u64,
    pub duration: Duration,
    /// Every damaged stretch, per file, in replay order (`damaged` counts them).
    pub damage: Vec<FileDamage>,
}

/// A stretch of one WAL file the replay could not use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDamage {
    pub file: PathBuf,
    /// Byte offset and length in the file, why, and whether it ran to the end of the file.
    pub damage: lode_wal::Damage,
    /// Whether the replay cut the file at `damage.offset` (a torn tail of the last segment,
    /// where the crash interrupted a write).
    pub truncated: bool,
}

/// A worker's view of the streams it replays.
#[derive(Default)]
struct Worker {
    streams: HashMap<u64, StreamRef>,
    /// Streams the checkpoint held, whose segment records are skipped until their marker.
    in_checkpoint: HashSet<u64>,
    records: u64,
    entries: u64,
    dropped: u64,
    max_id: u64,
}

/// A unit of replay work: payloads of one file for one worker.
struct Job {
    from_checkpoint: bool,
    checkpoint: u64,
    payloads: Vec<Vec<u8>>,
}

impl Ingester {
    fn apply(&self, w: &mut Worker, job: &Job, payload: &[u8]) {
        w.records += 1;
        let Ok(record) = lode_wal::decode(payload) else {
            w.dropped += 1;
            return;
        };
        let id = record.stream_id();
        w.max_id = w.max_id.max(id);
        match record {
            Record::Series { tenant, labels, .. } => {
                let Ok(labels) = Labels::parse(labels) else {
                    w.dropped += 1;
                    return;
                };
                let (stream, _) = self.instance(tenant).get_or_create(&labels, &self.settings);
                w.streams.insert(id, stream);
                if job.from_checkpoint {
                    w.in_checkpoint.insert(id);
                }
            }
            Record::Marker { checkpoint, .. } => {
                if checkpoint == job.checkpoint {
                    w.in_checkpoint.remove(&id);
                }
            }
            Record::Chunk { bytes, .. } => {
                if !job.from_checkpoint && w.in_checkpoint.contains(&id) {
                    return;
                }
                let Some(stream) = w.streams.get(&id) else {
                    w.dropped += 1;
                    return;
                };
                let mut st = stream.lock().unwrap_or_else(|p| p.into_inner());
                if let Err(e) = st.restore_chunk(bytes) {
                    tracing::warn!(stream = %st.printed, error = %e, "wal: dropping a corrupt checkpointed chunk");
                    w.dropped += 1;
                }
            }
            Record::Entries { entries, .. } => {
                if !job.from_checkpoint && w.in_checkpoint.contains(&id) {
                    return;
                }
                let Some(stream) = w.streams.get(&id) else {
                    w.dropped += 1;
                    return;
                };
                w.entries += entries.len() as u64;
                let entries: Vec<Entry> = entries
                    .into_iter()
                    .map(|e| Entry {
                        ts: e.ts,
                        line: e.line.to_string(),
                        metadata: e.metadata.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
                        parsed: Vec::new(),
                    })
                    .collect();
                let mut st = stream.lock().unwrap_or_else(|p| p.into_inner());
                // Replayed lines were accepted once; an overlap with the checkpoint is refused
                // here as a duplicate or as out of order, which is what keeps it single.
                let _ = st.push("", entries, self.settings.target_size, None, None, None);
            }
        }
    }

    /// Replays the WAL files in `dir` numbered below `below` into memory. Blocking: runs on a
    /// thread of its own.
    pub(crate) fn replay(&self, dir: &Path, below: u64) -> Result<ReplayReport, WalError> {
        let started = Instant::now();
        let files = lode_wal::list(dir)?;
        let mut report = ReplayReport::default();
        let n = std::thread::available_parallelism().map_or(1, usize::from).clamp(1, 8);
        let checkpoint_no = files.checkpoint.as_ref().map_or(0, |c| c.0);
        let all: Vec<(bool, u64, PathBuf)> = files
            .checkpoint
            .iter()
            .map(|(no, p)| (true, *no, p.clone()))
            .chain(
                files
                    .segments
                    .iter()
                    .filter(|(no, _)| *no < below)
                    .map(|(no, p)| (false, *no, p.clone())),
            )
            .collect();
        let last_segment = all.iter().rev().find(|f| !f.0).map(|f| f.1);
        let total: u64 = all.iter().map(|f| std::fs::metadata(&f.2).map_or(0, |m| m.len())).sum();
        let mut workers: Vec<Worker> = (0..n).map(|_| Worker::default()).collect();
        std::thread::scope(|scope| -> Result<(), WalError> {
            let mut senders: Vec<SyncSender<Job>> = Vec::with_capacity(n);
            for w in workers.iter_mut() {
                let (tx, rx): (SyncSender<Job>, Receiver<Job>) = sync_channel(4);
                senders.push(tx);
                scope.spawn(move || {
                    for job in rx {
                        for p in &job.payloads {
                            self.apply(w, &job, p);
                        }
                    }
                });
            }
            for (from_checkpoint, no, path) in &all {
                let file_started = Instant::now();
                let frames = lode_wal::read_file(path)?;
                report.files += 1;
                report.bytes += frames.size();
                let torn_last = !from_checkpoint && Some(*no) == last_segment;
                for d in &frames.damage {
                    let truncated = torn_last && d.tail;
                    report.damaged += 1;
                    report.damaged_bytes += d.bytes;
                    tracing::warn!(
                        file = %path.display(), offset = d.offset, end = d.offset + d.bytes, bytes = d.bytes,
                        reason = %d.reason, truncated,
                        "wal: dropping a damaged stretch; the frames around it are recovered"
                    );
                    report.damage.push(FileDamage {
                        file: path.clone(),
                        damage: d.clone(),
                        truncated,
                    });
                }
                if torn_last && let Some(at) = frames.torn_at() {
                    lode_wal::truncate_file(path, at)?;
                }
                let mut jobs: Vec<Job> = (0..n)
                    .map(|_| Job {
                        from_checkpoint: *from_checkpoint,
                        checkpoint: checkpoint_no,
                        payloads: Vec::new(),
                    })
                    .collect();
                let mut queued = 0usize;
                for p in frames.payloads() {
                    // Undecodable ids go to worker 0, which counts them as dropped.
                    let id = lode_wal::peek_stream_id(p).unwrap_or(0);
                    let w = (id % n as u64) as usize;
                    if let Some(j) = jobs.get_mut(w) {
                        j.payloads.push(p.to_vec());
                        queued += p.len();
                    }
                    if queued >= 4 << 20 {
                        send_all(&senders, &mut jobs, *from_checkpoint, checkpoint_no);
                        queued = 0;
                    }
                }
                send_all(&senders, &mut jobs, *from_checkpoint, checkpoint_no);
                tracing::info!(
                    file = %path.display(), records = frames.len(), bytes = frames.size(),
                    done_bytes = report.bytes, total_bytes = total,
                    elapsed_ms = file_started.elapsed().as_millis() as u64, "wal: replayed file"
                );
                *self.replay_progress.lock().unwrap_or_else(|p| p.into_inner()) =
                    format!("replaying write-ahead log: {} of {} bytes", report.bytes, total);
            }
            Ok(())
        })?;
        for w in &workers {
            report.records += w.records;
            report.entries += w.entries;
            report.dropped_records += w.dropped;
        }
        let max_id = workers.iter().map(|w| w.max_id).max().unwrap_or(0);
        // Fresh ids start past every id the files used, so none is reused before the
        // post-replay checkpoint replaces those files.
        self.settings.next_stream_id.fetch_max(max_id + 1, Ordering::Relaxed);
        report.streams = self.all_instances().iter().map(|i| i.num_streams() as u64).sum();
        report.duration = started.elapsed();
        Ok(report)
    }

    /// Writes a checkpoint of everything in memory and deletes the files it replaces.
    /// Blocking.
    pub(crate) fn checkpoint(&self, wal: &Wal) -> Result<(u64, u64), WalError> {
        let started = Instant::now();
        let no = wal.rotate()?;
        let mut cp = wal.begin_checkpoint(no)?;
        let mut batch = Batch::new();
        let mut marker = Batch::new();
        for inst in self.all_instances() {
            for sref in inst.streams() {
                let mut st = sref.lock().unwrap_or_else(|p| p.into_inner());
                if st.removed {
                    continue;
                }
                st.snapshot(&inst.tenant, &mut batch);
                marker.marker(st.wal_id, no);
                wal.append(&marker);
                drop(st);
                marker.clear();
                cp.write(&batch)?;
                batch.clear();
            }
        }
        // The markers must be in the log before the checkpoint is the one replays use.
        wal.commit()?;
        let (no, bytes) = cp.finish()?;
        let removed = wal.remove_before(no)?;
        self.metrics.wal_checkpoint_seconds.set(started.elapsed().as_secs_f64());
        self.metrics.wal_checkpoint_bytes.set(bytes as i64);
        tracing::debug!(
            checkpoint = no,
            bytes,
            removed,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "wal: checkpoint written"
        );
        Ok((no, bytes))
    }

    /// Opens the WAL (when enabled) in a new segment; until [`Ingester::replay_wal`] has run,
    /// pushes answer 503 and `/ready` says the WAL is being replayed.
    pub fn open_wal(&self) -> Result<(), WalError> {
        if !self.cfg.wal.enabled || self.wal.get().is_some() {
            return Ok(());
        }
        let wal = Wal::open(
            Path::new(&self.cfg.wal.dir),
            self.cfg.wal.sync,
            self.cfg.wal.segment_size.0,
        )?;
        self.replaying.store(true, Ordering::Relaxed);
        let _ = self.wal.set(wal);
        Ok(())
    }

    /// Replays what the WAL held before [`Ingester::open_wal`], then checkpoints so the
    /// replayed files can go, and starts taking pushes. On failure the ingester stays not
    /// ready (and refuses pushes) rather than run without the lines it could not read.
    pub async fn replay_wal(self: &Arc<Self>) -> Result<Option<ReplayReport>, WalError> {
        let Some(below) = self.wal.get().map(Wal::segment) else {
            return Ok(None);
        };
        let me = self.clone();
        let result = tokio::task::spawn_blocking(move || {
            let report = me.replay(Path::new(&me.cfg.wal.dir), below)?;
            if let Some(wal) = me.wal.get() {
                me.checkpoint(wal)?;
            }
            Ok::<_, WalError>(report)
        })
        .await
        .unwrap_or_else(|e| {
            Err(WalError::Io {
                op: "replay",
                path: self.cfg.wal.dir.clone().into(),
                source: std::io::Error::other(e.to_string()),
            })
        });
        let report = match result {
            Ok(r) => r,
            Err(e) => {
                *self.replay_progress.lock().unwrap_or_else(|p| p.into_inner()) =
                    format!("write-ahead log replay failed: {e}");
                return Err(e);
            }
        };
        self.recount_memory();
        self.replaying.store(false, Ordering::Relaxed);
        self.metrics.wal_replay_seconds.set(report.duration.as_secs_f64());
        self.metrics.wal_replayed_records.inc_by(report.records);
        self.metrics
            .wal_corrupt_records
            .inc_by(report.damaged + report.dropped_records);
        let mb = report.bytes as f64 / 1e6;
        tracing::info!(
            files = report.files,
            mb,
            records = report.records,
            entries = report.entries,
            streams = report.streams,
            damaged = report.damaged,
            damaged_bytes = report.damaged_bytes,
            dropped_records = report.dropped_records,
            seconds = report.duration.as_secs_f64(),
            "wal: replay finished"
        );
        Ok(Some(report))
    }

    /// fsyncs on `sync_period` (with `sync: interval`) and checkpoints on
    /// `checkpoint_duration`, until `shutdown`.
    pub async fn run_wal_loop(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let Some(wal) = self.wal.get() else { return };
        let tick = match wal.sync_mode() {
            SyncMode::Interval => self.cfg.wal.sync_period.0,
            _ => self.cfg.wal.checkpoint_duration.0,
        };
        let mut interval = tokio::time::interval(tick.min(self.cfg.wal.checkpoint_duration.0));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_checkpoint = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
            let me = self.clone();
            let due = last_checkpoint.elapsed() >= self.cfg.wal.checkpoint_duration.0;
            let r = tokio::task::spawn_blocking(move || {
                let Some(wal) = me.wal.get() else { return Ok(()) };
                wal.sync()?;
                if due {
                    me.checkpoint(wal)?;
                }
                Ok::<_, WalError>(())
            })
            .await;
            if due {
                last_checkpoint = tokio::time::Instant::now();
            }
            match r {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "wal: sync or checkpoint failed"),
                Err(e) => tracing::error!(error = %e, "wal: sync or checkpoint task failed"),
            }
        }
    }
}

fn send_all(senders: &[SyncSender<Job>], jobs: &mut [Job], from_checkpoint: bool, checkpoint: u64) {
    for (tx, job) in senders.iter().zip(jobs.iter_mut()) {
        if job.payloads.is_empty() {
            continue;
        }
        let full = std::mem::replace(
            job,
            Job {
                from_checkpoint,
                checkpoint,
                payloads: Vec::new(),
            },
        );
        // A worker only stops when its sender is dropped, so this cannot fail.
        let _ = tx.send(full);
    }
}
