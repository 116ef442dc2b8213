//! Replay with several workers: the file is read once, and each frame's bytes go to the one worker
//! that owns its connection without being copied.
//!
//! The calling thread reads the capture, places every frame by its symmetric flow hash (read at
//! fixed offsets by [`peek_flow_hash`], or from the decoded segment for unusual framings) and sends
//! each worker batches of frame positions in the reader's buffer, with a reference to that buffer.
//! The reader never writes a buffer a batch still holds (it moves on to a spare one), so a frame is
//! copied once, by the kernel into the reader's buffer, and parsed once, by its worker.
//!
//! Why not one reader per worker, each skipping the other workers' frames: every worker then paid
//! the page-cache copy and the record walk of the whole file, which on the HTTP keep-alive
//! benchmark capture was a quarter of a 1-worker replay, paid again by every worker. Why not the
//! live dispatcher ([`super::run`] with N workers): it copies each segment's payload to its worker.
//!
//! Frames reach a worker in file order, and each connection has one worker, so the events are the
//! ones a 1-worker replay publishes (in another interleaving between connections).

use std::sync::Arc;
use std::thread;

use crossbeam_channel::{bounded, Receiver, Sender};

use super::{
    handle_frame, join_all, join_output, new_worker, publish_settings, shard_index, shard_of, source_counters,
    spawn_output, DecodeStats, PipelineConfig, Summary,
};
use crate::capture::pcap::PcapFileSource;
use crate::capture::{Poll, RawPacket};
use crate::output::Output;
use crate::packet::{decode, peek_flow_hash, LinkType};
use crate::time::Timestamp;
use crate::worker::Publisher;

/// Frames per batch; a batch also ends where the reader moves to another buffer.
const BATCH_FRAMES: usize = 1024;
/// Batches queued per worker before the reader waits for it: enough that a worker does not run dry
/// while the reader waits for a CPU (three threads share two cores here); 8 gave 1.40× with 2
/// workers on the HTTP keep-alive capture, 32 gave 1.55×. A batch holds one reader buffer.
const QUEUED_BATCHES: usize = 32;

/// How many frames ahead of the one being handled a worker asks for the next frame's headers.
/// The reader wrote them on another core, and a worker's first read of each frame was a cache miss
/// on the critical path: `decode` took 12-13% of a 2-worker replay's samples against 1% in a
/// 1-worker one. Fetching one frame ahead only moved the stall to the code after `decode`; 4 to 16
/// frames ahead all did better, by about as much (2-worker replays of the HTTP keep-alive and small
/// captures, 20-30 interleaved runs: median wall time 9% lower, CPU time 8-14% lower).
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
    let (out_tx, free_rx, output_thread) = spawn_output(&cfg, output)?;
    let publish = publish_settings(&cfg);
    let cfg = &cfg;
    let result = thread::scope(|scope| {
        // Emptied frame lists come back for the next batches.
        let (back_tx, back_rx) = bounded::<Vec<Frame>>(n * (QUEUED_BATCHES + 2));
        let mut senders = Vec::with_capacity(n);
        let mut handles = Vec::with_capacity(n);
        for id in 0..n {
            let (tx, rx) = bounded::<Batch>(QUEUED_BATCHES);
            senders.push(tx);
            let publisher = Publisher::new(publish.clone(), out_tx.clone(), free_rx.clone());
            let back = back_tx.clone();
            handles.push(
                thread::Builder::new()
                    .name(format!("worker-{id}"))
                    .spawn_scoped(scope, move || run_worker(id, cfg, publisher, &rx, &back)),
            );
        }
        drop(back_tx);
        let mut hand = Hand { senders, back: back_rx, pending: (0..n).map(|_| Vec::new()).collect(), buf: None };
        let read = loop {
            let polled = source.poll_shared(&mut |buf, at, pkt| {
                if !hand.buf.as_ref().is_some_and(|b| Arc::ptr_eq(b, buf)) {
                    hand.send_all();
                    hand.buf = Some(Arc::clone(buf));
                }
                let w = place(&pkt, n);
                let frame = Frame { at, len: pkt.data.len(), ts: pkt.ts, link: pkt.link, wire_len: pkt.wire_len };
                if let Some(list) = hand.pending.get_mut(w) {
                    list.push(frame);
                    if list.len() >= BATCH_FRAMES {
                        hand.send(w);
                    }
                }
            });
            match polled {
                Ok(Poll::End) => break Ok(()),
                Ok(_) => {}
                Err(e) => break Err(e),
            }
        };
        hand.send_all();
        // The workers end when their queues are closed and drained.
        drop(hand);
        let workers = join_all(handles);
        cfg.metrics.store("capture", source_counters(&source));
        read.map_err(anyhow::Error::from).and(workers)
    });
    drop(out_tx);
    join_output(output_thread, result)
}

/// The reader's side of the hand-off: each worker's frames of the current buffer.
struct Hand {
    senders: Vec<Sender<Batch>>,
    back: Receiver<Vec<Frame>>,
    pending: Vec<Vec<Frame>>,
    buf: Option<Arc<[u8]>>,
}

impl Hand {
    /// Sends worker `w` its frames of the current buffer (waiting while its queue is full).
    fn send(&mut self, w: usize) {
        let (Some(list), Some(buf)) = (self.pending.get_mut(w), &self.buf) else { return };
        if list.is_empty() {
            return;
        }
        let fresh = self.back.try_recv().unwrap_or_else(|_| Vec::with_capacity(BATCH_FRAMES));
        let frames = std::mem::replace(list, fresh);
        if let Some(tx) = self.senders.get(w) {
            // A worker only stops when its queue closes; if it died, its error ends the run.
            let _ = tx.send(Batch { buf: Arc::clone(buf), frames });
        }
    }

    fn send_all(&mut self) {
        for w in 0..self.pending.len() {
            self.send(w);
        }
    }
}

/// One worker: decodes and handles the frames it is sent, in order, then publishes what is left.
fn run_worker(
    id: usize,
    cfg: &PipelineConfig,
    publisher: Publisher,
    rx: &Receiver<Batch>,
    back: &Sender<Vec<Frame>>,
) -> anyhow::Result<()> {
    let mut worker = new_worker(id, cfg, publisher);
    let mut dstats = DecodeStats::default();
    for Batch { buf, mut frames } in rx {
        for (k, f) in frames.iter().enumerate() {
            if let Some(ahead) = frames.get(k + PREFETCH_AHEAD) {
                prefetch_head(&buf, ahead.at);
            }
            let data = buf.get(f.at..f.at + f.len).unwrap_or_default();
            handle_frame(&mut worker, &mut dstats, RawPacket { ts: f.ts, link: f.link, data, wire_len: f.wire_len });
        }
        worker.end_batch();
        // Let go of the buffer first: the reader reuses it once no batch holds it.
        drop(buf);
        frames.clear();
        let _ = back.try_send(frames);
    }
    worker.finish();
    cfg.metrics.store(&format!("capture.{id}"), dstats.named());
    Ok(())
}
