//! Replay with several workers: the file is read once, in turns by the workers themselves, and
//! each frame's bytes go to the one worker that owns its connection without being copied.
//!
//! Between two batches, a worker that finds every worker's queue short (and no one reading) takes
//! the reader and reads the next buffer of the capture: it places every frame by its symmetric flow
//! hash (read at fixed offsets by [`peek_flow_hash`], or from the decoded segment for unusual
//! framings) and queues each worker a batch of frame positions in that buffer, with a reference to
//! it. The reader never writes a buffer a batch still holds (it moves on to a spare one), so a
//! frame is copied once, by the kernel into the reader's buffer, and parsed once, by its worker.
//!
//! Why no reader thread of its own (as before): the reader's work (the page-cache copy, the record
//! walk and the placing) is about a third of a 1-worker replay of the HTTP keep-alive capture, and
//! with two workers on two cores the three threads shared the cores less well than two do. Same
//! run, 15 interleaved rounds: 1 worker 400 ms; 2 workers with a reader thread 288 ms (516 ms of
//! CPU), reading in turns 263 ms (507 ms); two independent 1-worker replays at once 428 ms.
//! Why not one reader per worker, each skipping the other workers' frames: every worker then paid
//! that third for the whole file. Why not the live dispatcher ([`super::run`] with N workers): it
//! copies each segment's payload to its worker.
//!
//! Buffers are read in file order (one reader at a time, its batches queued before the next read)
//! and each connection has one worker, so every worker sees its frames in file order, and the
//! events are the ones a 1-worker replay publishes (in another interleaving between connections).

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;

use super::{
    handle_frame, join_all, join_output, new_worker, publish_settings, publisher, shard_index, shard_of,
    source_counters, spawn_output, DecodeStats, PipelineConfig, Summary,
};
use crate::capture::pcap::PcapFileSource;
use crate::capture::{CaptureError, Poll, RawPacket};
use crate::output::Output;
use crate::packet::{decode, peek_flow_hash, LinkType};
use crate::time::Timestamp;
use crate::worker::{Publisher, Worker};

/// Frames per batch; a batch also ends where the reader moves to another buffer.
const BATCH_FRAMES: usize = 1024;
/// A worker that finds no one reading and every live worker's queue shorter than this reads the
/// next buffer before it takes its own next batch; when any queue is this long, it handles its own
/// batches (or waits) instead.
///
/// Reading ahead keeps the other workers from finding their queues empty and waiting while it
/// reads: 2 workers on the HTTP keep-alive capture, median wall time of 11 interleaved rounds,
/// reading only when the worker's own queue was empty 316 ms; reading while any queue was shorter
/// than 1, 2, 4 and 8 batches 374, 305, 273 and 267 ms.
///
/// Not further ahead: a read adds about one batch to each queue, so this bounds the buffers in
/// flight to about `QUEUED_BATCHES + 2`, and the fewer they are, the more of them the caches still
/// hold when their frames are handled. The earlier rule (read while any queue was shorter than 8
/// batches and every queue shorter than 32) let one worker's queue grow to 32, with 34 buffers
/// (11 MB) in flight, against 10 (3.2 MB) with this one. 2 workers, keep-alive, median wall time:
/// 203 ms with the earlier rule, 195 ms with this one, 1 worker 314 ms (15 interleaved rounds); in
/// another run of 11, 201 and 186 ms, and with a threshold of 4 and 2 batches 191 and 236 ms. The
/// small-response HTTP, one-request-per-connection and MySQL captures: 191, 167 and 181 ms with
/// the earlier rule, 192, 165 and 179 ms with this one (11 rounds).
const QUEUED_BATCHES: usize = 8;

/// How many frames ahead of the one being handled a worker asks for the next frame's headers.
/// Half of a worker's frames were read by another core, and a worker's first read of each of them
/// was a cache miss on the critical path: `decode` took 12-13% of a 2-worker replay's samples
/// against 1% in a 1-worker one. Fetching one frame ahead only moved the stall to the code after
/// `decode`; 4 to 16 frames ahead all did better, by about as much (2-worker replays of the HTTP
/// keep-alive and small captures, 20-30 interleaved runs: median wall time 9% lower, CPU time
/// 8-14% lower).
const PREFETCH_AHEAD: usize = 8;

/// Asks the CPU to bring the first two cache lines at `buf[at..]` (link, IP and TCP headers, and
/// the start of the payload) into this core's cache; a hint with no effect on what the program does.
#[inline(always)]
fn prefetch_head(buf: &[u8], at: usize) {
    #[cfg(target_arch = "x86_64")]
    for line in [at, at + 64] {
        if let Some(b) = buf.get(line) {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            // SAFETY: a prefetch never faults and reads nothing the program sees; the address is
            // also inside `buf`.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(b).cast()) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (buf, at);
}

/// Where a frame lies in the batch's buffer, and its record.
#[derive(Clone, Copy, Debug)]
struct Frame {
    at: usize,
    len: usize,
    ts: Timestamp,
    link: LinkType,
    wire_len: u32,
}

/// Frames of one buffer for one worker.
struct Batch {
    buf: Arc<[u8]>,
    frames: Vec<Frame>,
}

/// The worker of a frame: by the hash read at fixed offsets, else by decoding it. A frame that does
/// not decode goes to worker 0, which decodes it again and counts why it failed.
fn place(pkt: &RawPacket<'_>, n: usize) -> usize {
    match peek_flow_hash(pkt.link, pkt.data) {
        Some(h) => shard_index(h, n),
        None => decode(pkt.link, pkt.data, pkt.ts).map_or(0, |seg| shard_of(&seg, n)),
    }
}

/// Replays `source` with `cfg.workers` workers (one: [`super::run`]).
///
/// # Errors
/// The file cannot be read or is corrupt, or the output failed.
pub fn run_replay(mut source: PcapFileSource, cfg: PipelineConfig, output: Box<dyn Output>) -> anyhow::Result<Summary> {
    let n = cfg.workers;
    if n <= 1 {
        return super::run(&mut source, cfg, output);
    }
    let (out_tx, free, output_thread) = spawn_output(&cfg, output)?;
    let publish = publish_settings(&cfg);
    let cfg = &cfg;
    let shared = Shared {
        queues: Mutex::new(Queues {
            batches: (0..n).map(|_| VecDeque::with_capacity(QUEUED_BATCHES + 2)).collect(),
            alive: vec![true; n],
            free_lists: Vec::new(),
            reading: None,
            done: false,
            waiting: 0,
        }),
        wake: Condvar::new(),
        reader: Mutex::new(Reader {
            source,
            sort: Sort {
                pending: (0..n).map(|_| Vec::new()).collect(),
                buf: None,
                ready: Vec::with_capacity(2 * n),
                free_lists: Vec::new(),
            },
            error: None,
        }),
    };
    let result = thread::scope(|scope| {
        let shared = &shared;
        let handles: Vec<_> = (0..n)
            .map(|id| {
                let publisher = publisher(&publish, &out_tx, &free, id);
                thread::Builder::new()
                    .name(format!("worker-{id}"))
                    .spawn_scoped(scope, move || run_worker(id, cfg, publisher, shared))
            })
            .collect();
        join_all(handles)
    });
    let reader = shared.reader.into_inner().unwrap_or_else(PoisonError::into_inner);
    cfg.metrics.store("capture", source_counters(&reader.source));
    drop(out_tx);
    let read = reader.error.map_or(Ok(()), |e| Err(anyhow::Error::from(e)));
    join_output(output_thread, read.and(result))
}

/// What the workers share: their queues, and the reader.
struct Shared {
    queues: Mutex<Queues>,
    /// Signalled when a batch is queued, a queue shrinks while someone waits, the reader is let
    /// go, or a worker ends.
    wake: Condvar,
    /// Taken only by the worker named in [`Queues::reading`].
    reader: Mutex<Reader>,
}

impl Shared {
    fn queues(&self) -> MutexGuard<'_, Queues> {
        self.queues.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct Queues {
    /// Each worker's batches, in file order.
    batches: Vec<VecDeque<Batch>>,
    /// A worker that ended (a panic) gets no more batches, and its queue holds no one back.
    alive: Vec<bool>,
    /// Emptied frame lists, for the reader's next batches.
    free_lists: Vec<Vec<Frame>>,
    /// The worker reading the next buffer.
    reading: Option<usize>,
    /// The file ended (or could not be read): no more batches come.
    done: bool,
    /// Workers waiting on [`Shared::wake`].
    waiting: usize,
}

impl Queues {
    /// Whether every live worker's queue is short enough to read ahead for it.
    fn short(&self) -> bool {
        self.batches.iter().zip(&self.alive).all(|(q, &alive)| !alive || q.len() < QUEUED_BATCHES)
    }
}

/// The capture, and the batches being made of it.
struct Reader {
    source: PcapFileSource,
    sort: Sort,
    error: Option<CaptureError>,
}

/// Each worker's frames of the buffer being read, and the batches made of them.
struct Sort {
    pending: Vec<Vec<Frame>>,
    buf: Option<Arc<[u8]>>,
    /// Batches made and not yet queued: (worker, batch).
    ready: Vec<(usize, Batch)>,
    free_lists: Vec<Vec<Frame>>,
}

impl Reader {
    /// Reads until at least one batch is ready, or the file ends; `false` when there is nothing
    /// more to read after what is ready.
    fn read(&mut self) -> bool {
        let Self { source, sort, error } = self;
        while sort.ready.is_empty() {
            match source.poll_shared(&mut |buf, at, pkt| sort.add(buf, at, &pkt)) {
                Ok(Poll::Packets(_) | Poll::Idle) => {}
                Ok(Poll::End) => {
                    sort.flush_all();
                    return false;
                }
                Err(e) => {
                    sort.flush_all();
                    *error = Some(e);
                    return false;
                }
            }
        }
        true
    }
}

impl Sort {
    /// Adds a frame to its worker's pending list; a new buffer first makes batches of the last.
    #[inline(always)]
    fn add(&mut self, buf: &Arc<[u8]>, at: usize, pkt: &RawPacket<'_>) {
        if !self.buf.as_ref().is_some_and(|b| Arc::ptr_eq(b, buf)) {
            self.flush_all();
            self.buf = Some(Arc::clone(buf));
        }
        let w = place(pkt, self.pending.len());
        let frame = Frame { at, len: pkt.data.len(), ts: pkt.ts, link: pkt.link, wire_len: pkt.wire_len };
        if let Some(list) = self.pending.get_mut(w) {
            list.push(frame);
            if list.len() >= BATCH_FRAMES {
                self.flush(w);
            }
        }
    }

    /// Makes worker `w`'s pending frames a ready batch.
    fn flush(&mut self, w: usize) {
        let (Some(list), Some(buf)) = (self.pending.get_mut(w), &self.buf) else { return };
        if list.is_empty() {
            return;
        }
        let fresh = self.free_lists.pop().unwrap_or_else(|| Vec::with_capacity(BATCH_FRAMES));
        self.ready.push((w, Batch { buf: Arc::clone(buf), frames: std::mem::replace(list, fresh) }));
    }

    fn flush_all(&mut self) {
        for w in 0..self.pending.len() {
            self.flush(w);
        }
    }
}

/// Marks a worker ended when its thread leaves [`run_worker`], by return or by panic, so that no
/// one waits for it to empty its queue.
struct Leave<'s> {
    id: usize,
    shared: &'s Shared,
}

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        let mut q = self.shared.queues();
        if let Some(alive) = q.alive.get_mut(self.id) {
            *alive = false;
        }
        if let Some(queue) = q.batches.get_mut(self.id) {
            queue.clear();
        }
        // Ended while reading (a panic): the rest of the file cannot be handed out in order.
        if q.reading == Some(self.id) {
            q.reading = None;
            q.done = true;
        }
        drop(q);
        self.shared.wake.notify_all();
    }
}

/// What a worker does next.
enum Next {
    Handle(Batch),
    Read,
    Finish,
}

/// One worker: handles its batches in order, reading the next buffer in its turn (see [`next`]),
/// then publishes what is left.
fn run_worker(id: usize, cfg: &PipelineConfig, publisher: Publisher, shared: &Shared) -> anyhow::Result<()> {
    let _leave = Leave { id, shared };
    let mut worker = new_worker(id, cfg, publisher);
    let mut dstats = DecodeStats::default();
    let mut emptied: Option<Vec<Frame>> = None;
    loop {
        match next(id, shared, &mut emptied) {
            Next::Handle(Batch { buf, mut frames }) => {
                handle_batch(&mut worker, &mut dstats, &buf, &frames);
                // Let go of the buffer first: the reader reuses it once no batch holds it.
                drop(buf);
                frames.clear();
                emptied = Some(frames);
            }
            Next::Read => read_next(shared),
            Next::Finish => break,
        }
    }
    worker.finish();
    cfg.metrics.store(&format!("capture.{id}"), dstats.named());
    Ok(())
}

/// What worker `id` does next: read, when no one is reading and every queue is short; else handle
/// its next batch; else wait (for a batch, the reader, or a shorter queue). Gives back the frame
/// list of the batch last handled.
fn next(id: usize, shared: &Shared, emptied: &mut Option<Vec<Frame>>) -> Next {
    let mut q = shared.queues();
    if let Some(list) = emptied.take() {
        if q.free_lists.len() < 4 * q.batches.len() {
            q.free_lists.push(list);
        }
    }
    loop {
        if q.reading.is_none() && !q.done && q.short() {
            q.reading = Some(id);
            return Next::Read;
        }
        if let Some(batch) = q.batches.get_mut(id).and_then(VecDeque::pop_front) {
            let wake = q.waiting > 0;
            drop(q);
            if wake {
                shared.wake.notify_all();
            }
            return Next::Handle(batch);
        }
        if q.done {
            return Next::Finish;
        }
        q.waiting += 1;
        q = shared.wake.wait(q).unwrap_or_else(PoisonError::into_inner);
        q.waiting -= 1;
    }
}

/// Reads the next buffer (the caller is named in [`Queues::reading`]) and queues its batches.
fn read_next(shared: &Shared) {
    let mut reader = shared.reader.lock().unwrap_or_else(PoisonError::into_inner);
    let more = reader.read();
    let mut q = shared.queues();
    let sort = &mut reader.sort;
    for (w, batch) in sort.ready.drain(..) {
        if q.alive.get(w).copied().unwrap_or(false) {
            if let Some(queue) = q.batches.get_mut(w) {
                queue.push_back(batch);
            }
        }
    }
    while sort.free_lists.len() < 2 * q.batches.len() {
        let Some(list) = q.free_lists.pop() else { break };
        sort.free_lists.push(list);
    }
    q.reading = None;
    q.done |= !more;
    let wake = q.waiting > 0;
    drop(q);
    drop(reader);
    if wake {
        shared.wake.notify_all();
    }
}

/// Decodes and handles a batch's frames, in order.
#[inline(always)]
fn handle_batch(worker: &mut Worker, dstats: &mut DecodeStats, buf: &[u8], frames: &[Frame]) {
    for (k, f) in frames.iter().enumerate() {
        if let Some(ahead) = frames.get(k + PREFETCH_AHEAD) {
            prefetch_head(buf, ahead.at);
        }
        let data = buf.get(f.at..f.at + f.len).unwrap_or_default();
        handle_frame(worker, dstats, RawPacket { ts: f.ts, link: f.link, data, wire_len: f.wire_len });
    }
    worker.end_batch();
}
