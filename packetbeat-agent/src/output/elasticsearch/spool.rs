//! The queue between the output thread and the bulk sender: on disk (the default) or in memory.
//!
//! A record is one bulk item: the action line and the document line. On disk, records are appended
//! to segment files `<id>.seg` (a new one past `segment_bytes`); the sender takes records in order
//! and, once the engine acknowledged them, the position is written to `ack` (atomically, by rename)
//! and fully acknowledged segments are deleted. At start the spool resumes from `ack`, so what was
//! taken but never acknowledged is sent again (at-least-once; the `_id`s make the repeat a 409).
//! Past `max_bytes` the `drop` policy deletes the oldest segment or refuses new records, counted.
//! In memory, `push` blocks while the queue is full: that is the pipeline's backpressure.
//! Appends are not fsynced (one write per chunk): an agent crash loses nothing, a power loss may
//! lose what the page cache held; a record cut by a crash is skipped and counted at the next start.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use super::config::{DropPolicy, SpoolConfig};

/// Why the spool failed.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// Another agent uses the same directory.
    #[error(
        "spool {path} is in use by another packetbeat-agent: give each agent its own output.elasticsearch.spool.path"
    )]
    Locked {
        /// The directory.
        path: String,
    },
    /// A file operation failed.
    #[error("spool {path}: {source}")]
    Io {
        /// File or directory.
        path: String,
        /// Why.
        #[source]
        source: io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io { path: path.display().to_string(), source }
}

/// Where the sender is (disk: segment id and byte offset).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Position {
    seg: u64,
    offset: u64,
}

/// Records taken for one send.
#[derive(Debug, Default)]
pub struct Taken {
    /// Each record: action line + document line.
    pub records: Vec<Vec<u8>>,
    /// Acknowledge this once the records are delivered (or given up for good).
    pub pos: Position,
}

/// Spool counters.
#[derive(Clone, Copy, Debug, Default)]
pub struct SpoolStats {
    /// Events waiting (not yet taken).
    pub pending: u64,
    /// Bytes on disk.
    pub bytes: u64,
    /// Events deleted with the oldest segment.
    pub dropped_oldest: u64,
    /// Events refused because the spool was full.
    pub dropped_newest: u64,
    /// Incomplete records skipped (a crash during a write).
    pub corrupt: u64,
}

#[derive(Debug)]
struct Segment {
    id: u64,
    bytes: u64,
    records: u64,
}

#[derive(Debug)]
struct Disk {
    /// Held (flock) for the life of the spool so two agents never share a directory.
    _lock: File,
    dir: PathBuf,
    segments: VecDeque<Segment>,
    writer: File,
    read: Position,
    read_records: u64,
    max_bytes: u64,
    segment_bytes: u64,
    policy: DropPolicy,
}

#[derive(Debug)]
enum Store {
    Memory { queue: VecDeque<Vec<u8>>, cap: usize },
    Disk(Box<Disk>),
}

/// The queue, shared by the output thread (push) and the sender (take, ack).
#[derive(Debug)]
pub struct Spool {
    state: Mutex<(Store, SpoolStats)>,
    changed: Condvar,
}

fn seg_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.seg"))
}

fn count_lines(data: &[u8]) -> u64 {
    data.iter().filter(|b| **b == b'\n').count() as u64
}

impl Disk {
    fn open(cfg: &SpoolConfig, stats: &mut SpoolStats) -> Result<Self, SpoolError> {
        let dir = PathBuf::from(&cfg.path);
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let lock_path = dir.join("lock");
        let lock =
            OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).map_err(io_err(&lock_path))?;
        // SAFETY: flock on a descriptor we own; released when `lock` is closed.
        if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err(SpoolError::Locked { path: dir.display().to_string() });
        }
        let mut ids: Vec<u64> = fs::read_dir(&dir)
            .map_err(io_err(&dir))?
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str()?.strip_suffix(".seg")?.parse().ok())
            .collect();
        ids.sort_unstable();
        let ack = fs::read_to_string(dir.join("ack")).ok().and_then(|t| {
            let (s, o) = t.trim().split_once(' ')?;
            Some(Position { seg: s.parse().ok()?, offset: o.parse().ok()? })
        });
        let mut segments = VecDeque::new();
        let mut read = ack.unwrap_or_default();
        let mut read_records = 0;
        for id in ids {
            let path = seg_path(&dir, id);
            if ack.is_some_and(|a| id < a.seg) {
                fs::remove_file(&path).map_err(io_err(&path))?;
                continue;
            }
            let data = fs::read(&path).map_err(io_err(&path))?;
            let records = count_lines(&data) / 2;
            if ack.is_some_and(|a| a.seg == id) {
                let upto = usize::try_from(read.offset).unwrap_or(usize::MAX).min(data.len());
                read_records = count_lines(data.get(..upto).unwrap_or_default()) / 2;
            }
            stats.pending += records;
            stats.bytes += data.len() as u64;
            segments.push_back(Segment { id, bytes: data.len() as u64, records });
        }
        stats.pending = stats.pending.saturating_sub(read_records);
        if let Some(first) = segments.front() {
            if read.seg < first.id {
                read = Position { seg: first.id, offset: 0 };
                read_records = 0;
            }
        }
        // Always write a fresh segment: the last one may end in a record cut by a crash.
        let id = segments.back().map_or(read.seg.max(1), |s| s.id + 1);
        let path = seg_path(&dir, id);
        let writer = OpenOptions::new().create(true).append(true).open(&path).map_err(io_err(&path))?;
        segments.push_back(Segment { id, bytes: 0, records: 0 });
        if segments.len() == 1 {
            read = Position { seg: id, offset: 0 };
        }
        Ok(Self {
            _lock: lock,
            dir,
            segments,
            writer,
            read,
            read_records,
            max_bytes: cfg.max_bytes,
            segment_bytes: cfg.segment_bytes,
            policy: cfg.drop,
        })
    }

    fn rotate(&mut self) -> Result<(), SpoolError> {
        let id = self.segments.back().map_or(1, |s| s.id + 1);
        let path = seg_path(&self.dir, id);
        self.writer = OpenOptions::new().create(true).append(true).open(&path).map_err(io_err(&path))?;
        self.segments.push_back(Segment { id, bytes: 0, records: 0 });
        Ok(())
    }

    /// Deletes the oldest segment; returns the events lost (those not yet taken).
    fn drop_oldest(&mut self) -> Result<u64, SpoolError> {
        let Some(seg) = self.segments.pop_front() else { return Ok(0) };
        let path = seg_path(&self.dir, seg.id);
        fs::remove_file(&path).map_err(io_err(&path))?;
        let lost = match seg.id.cmp(&self.read.seg) {
            std::cmp::Ordering::Less => 0,
            std::cmp::Ordering::Equal => seg.records - self.read_records.min(seg.records),
            std::cmp::Ordering::Greater => seg.records,
        };
        if self.read.seg <= seg.id {
            let next = self.segments.front().map_or(seg.id + 1, |s| s.id);
            self.read = Position { seg: next, offset: 0 };
            self.read_records = 0;
        }
        Ok(lost)
    }

    fn push(&mut self, data: &[u8], records: u64, stats: &mut SpoolStats) -> Result<(), SpoolError> {
        let len = data.len() as u64;
        if self.segments.back().is_some_and(|s| s.bytes > 0 && s.bytes + len > self.segment_bytes) {
            self.rotate()?;
        }
        while stats.bytes + len > self.max_bytes {
            if self.policy == DropPolicy::Newest || self.segments.len() <= 1 {
                stats.dropped_newest += records;
                return Ok(());
            }
            let removed = self.segments.front().map_or(0, |s| s.bytes);
            let lost = self.drop_oldest()?;
            stats.bytes -= removed.min(stats.bytes);
            stats.pending -= lost.min(stats.pending);
            stats.dropped_oldest += lost;
        }
        let path = self.dir.clone();
        self.writer.write_all(data).map_err(io_err(&path))?;
        if let Some(s) = self.segments.back_mut() {
            s.bytes += len;
            s.records += records;
        }
        stats.bytes += len;
        stats.pending += records;
        Ok(())
    }

    fn take(&mut self, max: usize, max_bytes: usize, stats: &mut SpoolStats) -> Result<Taken, SpoolError> {
        let mut taken = Taken::default();
        let mut bytes = 0usize;
        while taken.records.len() < max && bytes < max_bytes {
            let Some(seg) = self.segments.iter().find(|s| s.id == self.read.seg) else { break };
            let (seg_id, seg_bytes) = (seg.id, seg.bytes);
            let is_last = self.segments.back().is_some_and(|s| s.id == seg_id);
            if self.read.offset >= seg_bytes {
                if is_last {
                    break;
                }
                let next = self.segments.iter().find(|s| s.id > seg_id).map_or(seg_id + 1, |s| s.id);
                self.read = Position { seg: next, offset: 0 };
                self.read_records = 0;
                continue;
            }
            let path = seg_path(&self.dir, seg_id);
            let mut f = File::open(&path).map_err(io_err(&path))?;
            f.seek(SeekFrom::Start(self.read.offset)).map_err(io_err(&path))?;
            let want = usize::try_from(seg_bytes - self.read.offset)
                .unwrap_or(usize::MAX)
                .min((max_bytes - bytes).max(1 << 20));
            let mut buf = Vec::with_capacity(want);
            f.take(want as u64).read_to_end(&mut buf).map_err(io_err(&path))?;
            let mut at = 0usize;
            let mut progressed = false;
            while taken.records.len() < max {
                let rest = buf.get(at..).unwrap_or_default();
                let Some(a) = rest.iter().position(|b| *b == b'\n') else { break };
                let Some(d) = rest.get(a + 1..).and_then(|r| r.iter().position(|b| *b == b'\n')) else { break };
                let end = a + 1 + d + 1;
                let record = rest.get(..end).unwrap_or_default().to_vec();
                bytes += record.len();
                taken.records.push(record);
                at += end;
                self.read_records += 1;
                progressed = true;
                if bytes >= max_bytes {
                    break;
                }
            }
            self.read.offset += at as u64;
            if !progressed {
                // A cut record at the end of a closed segment: skip the rest of it.
                if is_last {
                    break;
                }
                stats.corrupt += 1;
                self.read.offset = seg_bytes;
            }
        }
        stats.pending -= (taken.records.len() as u64).min(stats.pending);
        taken.pos = self.read;
        Ok(taken)
    }

    fn ack(&mut self, pos: Position, stats: &mut SpoolStats) -> Result<(), SpoolError> {
        let tmp = self.dir.join("ack.tmp");
        fs::write(&tmp, format!("{} {}\n", pos.seg, pos.offset)).map_err(io_err(&tmp))?;
        let ack = self.dir.join("ack");
        fs::rename(&tmp, &ack).map_err(io_err(&ack))?;
        while self.segments.len() > 1 && self.segments.front().is_some_and(|s| s.id < pos.seg) {
            if let Some(seg) = self.segments.pop_front() {
                let path = seg_path(&self.dir, seg.id);
                fs::remove_file(&path).map_err(io_err(&path))?;
                stats.bytes -= seg.bytes.min(stats.bytes);
            }
        }
        Ok(())
    }
}

impl Spool {
    /// Opens the disk spool (resuming what a previous run left) or an in-memory queue.
    ///
    /// # Errors
    /// The spool directory or its files cannot be used.
    pub fn open(cfg: &SpoolConfig) -> Result<Self, SpoolError> {
        let mut stats = SpoolStats::default();
        let store = if cfg.enabled {
            Store::Disk(Box::new(Disk::open(cfg, &mut stats)?))
        } else {
            Store::Memory { queue: VecDeque::new(), cap: cfg.memory_events }
        };
        Ok(Self { state: Mutex::new((store, stats)), changed: Condvar::new() })
    }

    fn lock(&self) -> MutexGuard<'_, (Store, SpoolStats)> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Appends `records` records (`data`: whole records back to back). Blocks only in memory mode
    /// while the queue is full.
    ///
    /// # Errors
    /// A disk write failed.
    pub fn push(&self, data: &[u8], records: u64) -> Result<(), SpoolError> {
        let mut g = self.lock();
        loop {
            let (store, stats) = &mut *g;
            match store {
                Store::Disk(d) => {
                    d.push(data, records, stats)?;
                    break;
                }
                Store::Memory { queue, cap } => {
                    if queue.len() < *cap || queue.is_empty() {
                        let mut rest = data;
                        while let Some(a) = rest.iter().position(|b| *b == b'\n') {
                            let end = rest
                                .get(a + 1..)
                                .and_then(|r| r.iter().position(|b| *b == b'\n'))
                                .map_or(rest.len(), |d| a + d + 2);
                            queue.push_back(rest.get(..end).unwrap_or_default().to_vec());
                            rest = rest.get(end..).unwrap_or_default();
                        }
                        stats.pending = queue.len() as u64;
                        break;
                    }
                }
            }
            g = self.changed.wait(g).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        drop(g);
        self.changed.notify_all();
        Ok(())
    }

    /// Takes up to `max` records (and about `max_bytes`), waiting up to `wait` when empty.
    ///
    /// # Errors
    /// A disk read failed.
    pub fn take(&self, max: usize, max_bytes: usize, wait: Duration) -> Result<Taken, SpoolError> {
        let mut g = self.lock();
        if g.1.pending == 0 {
            g = self.changed.wait_timeout(g, wait).unwrap_or_else(std::sync::PoisonError::into_inner).0;
        }
        let (store, stats) = &mut *g;
        let taken = match store {
            Store::Disk(d) => d.take(max, max_bytes, stats)?,
            Store::Memory { queue, .. } => {
                let n = queue.len().min(max);
                let records: Vec<Vec<u8>> = queue.drain(..n).collect();
                stats.pending = queue.len() as u64;
                Taken { records, pos: Position::default() }
            }
        };
        drop(g);
        self.changed.notify_all();
        Ok(taken)
    }

    /// The records of a [`Taken`] are delivered (or given up for good).
    ///
    /// # Errors
    /// The ack file could not be written.
    pub fn ack(&self, pos: Position) -> Result<(), SpoolError> {
        let mut g = self.lock();
        let (store, stats) = &mut *g;
        if let Store::Disk(d) = store {
            d.ack(pos, stats)?;
        }
        Ok(())
    }

    /// Whether records survive the process (disk) or not (memory).
    #[must_use]
    pub fn is_durable(&self) -> bool {
        matches!(self.lock().0, Store::Disk(_))
    }

    /// Counters (and the pending gauge).
    #[must_use]
    pub fn stats(&self) -> SpoolStats {
        self.lock().1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(i: u32) -> Vec<u8> {
        format!("{{\"create\":{{}}}}\n{{\"n\":{i}}}\n").into_bytes()
    }

    fn cfg(dir: &Path, max: u64, policy: DropPolicy) -> SpoolConfig {
        SpoolConfig {
            path: dir.display().to_string(),
            max_bytes: max,
            segment_bytes: 4096,
            drop: policy,
            ..Default::default()
        }
    }

    fn numbers(t: &Taken) -> Vec<u32> {
        t.records
            .iter()
            .map(|r| {
                let doc = r.split(|b| *b == b'\n').nth(1).unwrap();
                serde_json::from_slice::<serde_json::Value>(doc).unwrap()["n"].as_u64().unwrap() as u32
            })
            .collect()
    }

    #[test]
    fn in_order_acked_and_resumed_after_restart() {
        let dir = std::env::temp_dir().join(format!("pb-spool-{}-a", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let s = Spool::open(&cfg(&dir, 1 << 20, DropPolicy::Oldest)).unwrap();
        for i in 0..300 {
            s.push(&rec(i), 1).unwrap();
        }
        let t = s.take(100, 1 << 20, Duration::ZERO).unwrap();
        assert_eq!(numbers(&t), (0..100).collect::<Vec<_>>());
        s.ack(t.pos).unwrap();
        let t = s.take(50, 1 << 20, Duration::ZERO).unwrap();
        assert_eq!(numbers(&t)[0], 100);
        drop(s); // taken but never acked: sent again after the restart
        let s = Spool::open(&cfg(&dir, 1 << 20, DropPolicy::Oldest)).unwrap();
        assert_eq!(s.stats().pending, 200);
        let t = s.take(1000, 1 << 20, Duration::ZERO).unwrap();
        assert_eq!(numbers(&t), (100..300).collect::<Vec<_>>());
        s.ack(t.pos).unwrap();
        assert!(s.stats().bytes < 4096, "acked segments are deleted: {:?}", s.stats());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn full_spool_drops_by_policy_and_counts() {
        for policy in [DropPolicy::Oldest, DropPolicy::Newest] {
            let dir = std::env::temp_dir().join(format!("pb-spool-{}-{policy:?}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            let s = Spool::open(&cfg(&dir, 3 * 4096, policy)).unwrap();
            let n = 1000;
            for i in 0..n {
                s.push(&rec(i), 1).unwrap();
            }
            let st = s.stats();
            let t = s.take(10_000, 1 << 24, Duration::ZERO).unwrap();
            let got = numbers(&t);
            assert_eq!(got.len() as u64 + st.dropped_oldest + st.dropped_newest, u64::from(n), "{st:?}");
            assert!(st.bytes <= 3 * 4096);
            match policy {
                DropPolicy::Oldest => assert_eq!(*got.last().unwrap(), n - 1),
                DropPolicy::Newest => assert_eq!(got[0], 0),
            }
            fs::remove_dir_all(&dir).unwrap();
        }
    }

    #[test]
    fn a_record_cut_by_a_crash_is_skipped_and_counted() {
        let dir = std::env::temp_dir().join(format!("pb-spool-{}-cut", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let s = Spool::open(&cfg(&dir, 1 << 20, DropPolicy::Oldest)).unwrap();
        s.push(&rec(1), 1).unwrap();
        s.push(b"{\"create\":{}}\n{\"n\":", 1).unwrap();
        drop(s);
        let s = Spool::open(&cfg(&dir, 1 << 20, DropPolicy::Oldest)).unwrap();
        s.push(&rec(2), 1).unwrap();
        let t = s.take(10, 1 << 20, Duration::ZERO).unwrap();
        assert_eq!(numbers(&t), vec![1, 2]);
        assert_eq!(s.stats().corrupt, 1);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn one_agent_per_directory() {
        let dir = std::env::temp_dir().join(format!("pb-spool-{}-lock", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let a = Spool::open(&cfg(&dir, 1 << 20, DropPolicy::Oldest)).unwrap();
        let err = Spool::open(&cfg(&dir, 1 << 20, DropPolicy::Oldest)).unwrap_err();
        assert!(err.to_string().contains("in use by another"), "{err}");
        drop(a);
        Spool::open(&cfg(&dir, 1 << 20, DropPolicy::Oldest)).unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn memory_queue_splits_records() {
        let s = Spool::open(&SpoolConfig { enabled: false, ..Default::default() }).unwrap();
        let mut data = rec(1);
        data.extend(rec(2));
        s.push(&data, 2).unwrap();
        let t = s.take(10, 1 << 20, Duration::ZERO).unwrap();
        assert_eq!(numbers(&t), vec![1, 2]);
    }
}
