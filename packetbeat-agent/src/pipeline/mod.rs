//! Threads and queues: capture → decode → shard → workers → output.
//!
//! With one worker (the replay default) everything runs inline on the capture thread: no queue, no
//! copy. With N workers the capture thread decodes each frame once, picks the worker by a symmetric
//! flow hash (both directions of a connection go to the same worker), and copies the segment into
//! that worker's batch; full batches travel over bounded channels and come back empty through a
//! free list, so the steady state allocates nothing. The output runs on its own thread behind a
//! bounded queue: replay blocks on it (nothing is lost), live capture drops and counts instead of
//! stalling the kernel ring. Replay with several workers has its own hand-off (`replay.rs`).

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender};

use crate::capture::{PacketSource, Poll, RawPacket};
use crate::config::Limits;
use crate::metrics::Metrics;
use crate::output::{Chunk, Output};
use crate::packet::{decode, flow_hash, DecodeError, TcpFlags, TcpSegment};
use crate::protocols::registry::Registry;
use crate::time::Timestamp;
use crate::worker::{PublishSettings, Publisher, Worker};

mod replay;

pub use replay::run_replay;

/// Segments per batch sent to a worker.
const BATCH_SEGMENTS: usize = 256;
/// How long a live poll waits before an idle tick.
const POLL_TIMEOUT: Duration = Duration::from_millis(100);

/// Replay (file, as fast as possible, block on a full output) or live capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Read a capture file to its end.
    Replay,
    /// Capture until stopped.
    Live,
}

/// Everything the pipeline needs.
pub struct PipelineConfig {
    /// Replay or live.
    pub mode: Mode,
    /// Worker threads (≥ 1).
    pub workers: usize,
    /// Protocols and ports.
    pub registry: Arc<Registry>,
    /// Memory bounds.
    pub limits: Limits,
    /// Publisher settings (the blocking flag is set from `mode`).
    pub publish: PublishSettings,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Set to stop a live capture.
    pub stop: Arc<AtomicBool>,
    /// Interval of the counter log line, if any.
    pub metrics_period: Option<Duration>,
    /// Flow reporting (`packetbeat.flows`), when enabled.
    pub flows: Option<crate::flows::FlowSettings>,
}

/// Frames that did not become segments.
#[derive(Clone, Debug, Default)]
struct DecodeStats {
    frames: u64,
    truncated: u64,
    not_tcp: u64,
    fragments: u64,
    malformed: u64,
}

impl DecodeStats {
    fn count(&mut self, e: DecodeError) {
        match e {
            DecodeError::Truncated => self.truncated += 1,
            DecodeError::NotTcp => self.not_tcp += 1,
            DecodeError::Fragment => self.fragments += 1,
            DecodeError::Malformed => self.malformed += 1,
        }
    }

    /// The counters by name.
    fn named(&self) -> Vec<(String, u64)> {
        [
            ("decode.frames", self.frames),
            ("decode.truncated", self.truncated),
            ("decode.not_tcp", self.not_tcp),
            ("decode.ip_fragments", self.fragments),
            ("decode.malformed", self.malformed),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// Stores these counters and the source's in `slot`.
    fn store(&self, metrics: &Metrics, source: &dyn PacketSource, slot: &str) {
        let mut c = self.named();
        c.extend(source_counters(source));
        metrics.store(slot, c);
    }
}

/// A source's counters by name.
fn source_counters(source: &dyn PacketSource) -> Vec<(String, u64)> {
    source.counters().into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// A worker as every pipeline builds one: the configured protocols, limits and flow reporting.
fn new_worker(id: usize, cfg: &PipelineConfig, publisher: Publisher) -> Worker {
    let registry = Arc::new(cfg.registry.for_worker());
    let mut worker = Worker::new(id, registry, &cfg.limits, publisher, Arc::clone(&cfg.metrics));
    worker.enable_flows(cfg.flows);
    worker
}

/// Decodes one frame for `worker`, or counts why it is not a TCP segment. Inlined into each loop
/// that calls it, as the code it replaced was (once per frame).
#[inline(always)]
fn handle_frame(worker: &mut Worker, dstats: &mut DecodeStats, pkt: RawPacket<'_>) {
    dstats.frames += 1;
    match decode(pkt.link, pkt.data, pkt.ts) {
        Ok(mut seg) => {
            seg.frame_len = pkt.wire_len;
            worker.on_segment(&seg);
        }
        Err(e) => dstats.count(e),
    }
}

/// A segment copied out of the capture buffer, for another thread.
#[derive(Clone, Copy, Debug)]
struct SegMeta {
    ts: Timestamp,
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    vlan: Option<u16>,
    src_ip: IpAddr,
    dst_ip: IpAddr,
    src_port: u16,
    dst_port: u16,
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    wire_payload_len: u32,
    frame_len: u32,
    start: usize,
    len: usize,
}

#[derive(Debug, Default)]
struct Batch {
    data: Vec<u8>,
    segs: Vec<SegMeta>,
}

impl Batch {
    fn push(&mut self, s: &TcpSegment<'_>) {
        let start = self.data.len();
        self.data.extend_from_slice(s.payload);
        self.segs.push(SegMeta {
            ts: s.ts,
            src_mac: s.src_mac,
            dst_mac: s.dst_mac,
            vlan: s.vlan,
            src_ip: s.src_ip,
            dst_ip: s.dst_ip,
            src_port: s.src_port,
            dst_port: s.dst_port,
            seq: s.seq,
            ack: s.ack,
            flags: s.flags,
            wire_payload_len: s.wire_payload_len,
            frame_len: s.frame_len,
            start,
            len: s.payload.len(),
        });
    }

    fn for_each(&self, mut f: impl FnMut(&TcpSegment<'_>)) {
        for m in &self.segs {
            let payload = self.data.get(m.start..m.start + m.len).unwrap_or_default();
            f(&TcpSegment {
                ts: m.ts,
                src_mac: m.src_mac,
                dst_mac: m.dst_mac,
                vlan: m.vlan,
                src_ip: m.src_ip,
                dst_ip: m.dst_ip,
                src_port: m.src_port,
                dst_port: m.dst_port,
                seq: m.seq,
                ack: m.ack,
                flags: m.flags,
                payload,
                wire_payload_len: m.wire_payload_len,
                frame_len: m.frame_len,
            });
        }
    }

    fn clear(&mut self) {
        self.data.clear();
        self.segs.clear();
    }
}

enum WorkerMsg {
    Batch(Batch),
    Tick(Timestamp),
}

/// The worker of a segment: a symmetric flow hash, so both directions of a connection go to the
/// same worker.
#[must_use]
pub fn shard_of(s: &TcpSegment<'_>, n: usize) -> usize {
    shard_index(flow_hash((s.src_ip, s.src_port), (s.dst_ip, s.dst_port)), n)
}

/// The worker of `n` that owns flow hash `h`.
fn shard_index(h: u64, n: usize) -> usize {
    let n = n.max(1) as u64;
    // The same worker as `h % n`; for the usual power-of-two counts without a division, which
    // the replay reader does for every frame. 2 workers, median of 15 interleaved rounds, with the
    // division and without: small HTTP capture 182.6 and 179.0 ms, one request per connection
    // 153.9 and 151.5 ms.
    let i = if n.is_power_of_two() { h & (n - 1) } else { h % n };
    usize::try_from(i).unwrap_or(0)
}

/// What a run did.
#[derive(Debug, Default)]
pub struct Summary {
    /// Events the output wrote.
    pub events_written: u64,
}

/// Runs the pipeline until the source ends (replay) or `stop` is set (live).
///
/// # Errors
/// A capture error, or the output failed.
pub fn run(source: &mut dyn PacketSource, cfg: PipelineConfig, output: Box<dyn Output>) -> anyhow::Result<Summary> {
    let (out_tx, free, output_thread) = spawn_output(&cfg, output)?;
    let publish = publish_settings(&cfg);
    let capture_result = if cfg.workers <= 1 {
        run_inline(source, &cfg, publisher(&publish, &out_tx, &free, 0), 0)
    } else {
        run_sharded(source, &cfg, &publish, &out_tx, &free)
    };
    // The output thread ends once every sender is gone.
    drop(out_tx);
    join_output(output_thread, capture_result)
}

/// Runs one worker per source, each on its own thread and reading only its own source (the kernel
/// already divided the traffic: AF_PACKET's `PACKET_FANOUT_HASH`, a symmetric flow hash), so no
/// thread hands packets to another. With one source this is [`run`].
///
/// # Errors
/// A capture error of any source, or the output failed.
pub fn run_fanout(
    mut sources: Vec<Box<dyn PacketSource>>,
    mut cfg: PipelineConfig,
    output: Box<dyn Output>,
) -> anyhow::Result<Summary> {
    if sources.len() <= 1 {
        let Some(source) = sources.first_mut() else { anyhow::bail!("no capture source") };
        return run(source.as_mut(), cfg, output);
    }
    cfg.workers = sources.len();
    let (out_tx, free, output_thread) = spawn_output(&cfg, output)?;
    let publish = publish_settings(&cfg);
    let cfg = &cfg;
    let capture_result = thread::scope(|scope| {
        let handles: Vec<_> = sources
            .iter_mut()
            .enumerate()
            .map(|(id, source)| {
                let publisher = publisher(&publish, &out_tx, &free, id);
                thread::Builder::new()
                    .name(format!("worker-{id}"))
                    .spawn_scoped(scope, move || run_inline(source.as_mut(), cfg, publisher, id))
            })
            .collect();
        join_all(handles)
    });
    drop(out_tx);
    join_output(output_thread, capture_result)
}

/// Waits for worker threads; the first error (or panic) is the result.
fn join_all(handles: Vec<std::io::Result<thread::ScopedJoinHandle<'_, anyhow::Result<()>>>>) -> anyhow::Result<()> {
    let mut result = Ok(());
    for h in handles {
        let r = match h {
            Ok(h) => h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a worker thread panicked"))),
            Err(e) => Err(e.into()),
        };
        if result.is_ok() {
            result = r;
        }
    }
    result
}

fn publish_settings(cfg: &PipelineConfig) -> PublishSettings {
    let mut publish = cfg.publish.clone();
    publish.block_when_full = cfg.mode == Mode::Replay;
    publish
}

type OutputThread = thread::JoinHandle<std::io::Result<u64>>;

/// Emptied chunk buffers on their way back to one worker.
type FreeChunks = Receiver<Vec<u8>>;

/// Starts the output thread: it writes the chunks workers queue on the returned sender and gives
/// each emptied buffer back to the worker that wrote it, on that worker's receiver (one per worker).
///
/// Why a free list per worker rather than one for all: a buffer taken from a shared list was last
/// written by the other worker half the time, so its next writer first had to take its cache lines
/// from the other core. The gain is small, 0.1-7% of the wall time, but the wall time was lower in
/// all 9 comparisons (2 workers, medians of 15-21 interleaved process-level rounds, shared list
/// against one per worker): MySQL 228.6 and 223.9 ms, 227.3 and 212.1, 204.5 and 201.6; the mix
/// 328.3 and 322.9, 351.3 and 350.4; HTTP keep-alive 211.6 and 204.6, 187.8 and 185.9, and at a
/// quiet moment 164.1 and 162.7 (there with 2% more CPU time, 310.6 against 304.3 ms); one request
/// per connection 169.0 and 168.8.
fn spawn_output(
    cfg: &PipelineConfig,
    mut output: Box<dyn Output>,
) -> anyhow::Result<(Sender<Chunk>, Vec<FreeChunks>, OutputThread)> {
    let chunk = crate::worker::chunk_bytes(cfg.mode == Mode::Replay);
    let queue_chunks = (cfg.limits.output_queue_events * crate::worker::EVENT_BYTES_ESTIMATE / chunk).clamp(4, 4096);
    let (out_tx, out_rx) = bounded::<Chunk>(queue_chunks);
    // A worker has at most its queued chunks and the one it writes out at once.
    let (free_tx, free_rx): (Vec<_>, Vec<_>) =
        (0..cfg.workers.max(1)).map(|_| bounded::<Vec<u8>>(queue_chunks + 2)).unzip();
    let metrics = Arc::clone(&cfg.metrics);
    let output_thread = thread::Builder::new().name("output".into()).spawn(move || -> std::io::Result<u64> {
        let mut written = 0;
        // After a failed write the queue is still drained (so capture never blocks on a dead output),
        // and what it held is counted as dropped; the error ends the run.
        let mut dropped = 0;
        let mut result = Ok(());
        let mut last_report = Instant::now();
        let report = |written: u64, dropped: u64| {
            vec![("output.events_written".into(), written), ("output.dropped_after_error".into(), dropped)]
        };
        for mut chunk in &out_rx {
            if result.is_ok() {
                result = output.write_chunk(&chunk);
                if out_rx.is_empty() && result.is_ok() {
                    result = output.flush();
                }
                match &result {
                    Ok(()) => written += chunk.events,
                    Err(e) => {
                        tracing::error!("output failed, dropping events until shutdown: {e}");
                        dropped += chunk.events;
                    }
                }
            } else {
                dropped += chunk.events;
            }
            chunk.bytes.clear();
            if let Some(home) = free_tx.get(chunk.home) {
                let _ = home.try_send(chunk.bytes);
            }
            if last_report.elapsed() >= Duration::from_millis(500) {
                last_report = Instant::now();
                metrics.store("output", report(written, dropped));
            }
        }
        metrics.store("output", report(written, dropped));
        result?;
        output.close()?;
        Ok(written)
    })?;
    Ok((out_tx, free_rx, output_thread))
}

/// The publisher of worker `id`, taking its buffers back from `free[id]` (from [`spawn_output`]).
fn publisher(publish: &PublishSettings, out: &Sender<Chunk>, free: &[FreeChunks], id: usize) -> Publisher {
    // `spawn_output` makes one list per worker; were one missing, the publisher would allocate
    // every buffer (its list never yields one) rather than share another worker's.
    let free = free.get(id).cloned().unwrap_or_else(|| bounded(0).1);
    Publisher::new(publish.clone(), out.clone(), free, id)
}

/// Waits for the output thread (every sender must be gone) and reports the run.
fn join_output(output_thread: OutputThread, capture_result: anyhow::Result<()>) -> anyhow::Result<Summary> {
    let written = output_thread.join().map_err(|_| anyhow::anyhow!("the output thread panicked"))?;
    capture_result?;
    let events_written = written.map_err(|e| anyhow::anyhow!("output failed: {e}"))?;
    Ok(Summary { events_written })
}

/// Longest a stopping capture keeps reading what the kernel had already queued.
const STOP_DRAIN: Duration = Duration::from_secs(2);

/// A live capture asked to stop first reads what the kernel has already queued (those frames are
/// counted as matched; dropping them unread would lose them without a counter), then ends at the
/// first empty poll or after [`STOP_DRAIN`].
#[derive(Default)]
struct Stopping {
    since: Option<Instant>,
}

impl Stopping {
    /// How long the next poll may wait: not at all once stopping.
    fn timeout(&self) -> Duration {
        if self.since.is_some() {
            Duration::ZERO
        } else {
            POLL_TIMEOUT
        }
    }

    fn started(&self) -> bool {
        self.since.is_some()
    }

    /// Notes a stop request; true when the drain has run out of time.
    fn check(&mut self, flag: &AtomicBool) -> bool {
        match self.since {
            None if flag.load(Ordering::Relaxed) => {
                self.since = Some(Instant::now());
                false
            }
            Some(t) => t.elapsed() >= STOP_DRAIN,
            None => false,
        }
    }
}

/// Logs the counters every `period` of wall time.
struct MetricsLog {
    period: Option<Duration>,
    last: Instant,
}

impl MetricsLog {
    fn maybe_log(&mut self, metrics: &Metrics) {
        if let Some(p) = self.period {
            if self.last.elapsed() >= p {
                self.last = Instant::now();
                tracing::info!(target: "metrics", "counters: {}", metrics.summary());
            }
        }
    }
}

/// One worker reading `source` itself; `id` names its counters.
fn run_inline(
    source: &mut dyn PacketSource,
    cfg: &PipelineConfig,
    publisher: Publisher,
    id: usize,
) -> anyhow::Result<()> {
    let mut worker = new_worker(id, cfg, publisher);
    let slot = if id == 0 { "capture".to_owned() } else { format!("capture.{id}") };
    let mut dstats = DecodeStats::default();
    let mut log = MetricsLog { period: cfg.metrics_period, last: Instant::now() };
    let mut stop = Stopping::default();
    loop {
        let r = source.poll(stop.timeout(), &mut |pkt| handle_frame(&mut worker, &mut dstats, pkt));
        match r {
            Ok(Poll::End) => break,
            Ok(Poll::Idle) if stop.started() => break,
            Ok(Poll::Idle) => worker.tick(Timestamp::now()),
            Ok(Poll::Packets(_)) => worker.end_batch(),
            Err(e) => {
                worker.finish();
                dstats.store(&cfg.metrics, source, &slot);
                return Err(e.into());
            }
        }
        if cfg.mode == Mode::Live {
            dstats.store(&cfg.metrics, source, &slot);
            log.maybe_log(&cfg.metrics);
        }
        if stop.check(&cfg.stop) {
            break;
        }
    }
    worker.finish();
    dstats.store(&cfg.metrics, source, &slot);
    Ok(())
}

fn run_sharded(
    source: &mut dyn PacketSource,
    cfg: &PipelineConfig,
    publish: &PublishSettings,
    out_tx: &Sender<Chunk>,
    free_chunks: &[FreeChunks],
) -> anyhow::Result<()> {
    let n = cfg.workers;
    let (free_tx, free_rx) = bounded::<Batch>(n * 8);
    let mut senders = Vec::with_capacity(n);
    let mut handles = Vec::with_capacity(n);
    for id in 0..n {
        let (tx, rx) = bounded::<WorkerMsg>(4);
        senders.push(tx);
        let mut worker = new_worker(id, cfg, publisher(publish, out_tx, free_chunks, id));
        let free_tx = free_tx.clone();
        handles.push(
            thread::Builder::new()
                .name(format!("worker-{id}"))
                .spawn(move || worker_loop(&mut worker, &rx, &free_tx))?,
        );
    }
    drop(free_tx);
    let mut batches: Vec<Batch> = (0..n).map(|_| Batch::default()).collect();
    let mut dstats = DecodeStats::default();
    let mut log = MetricsLog { period: cfg.metrics_period, last: Instant::now() };
    let send = |w: usize, batches: &mut Vec<Batch>, free_rx: &Receiver<Batch>| {
        let fresh = free_rx.try_recv().unwrap_or_default();
        let full = std::mem::replace(&mut batches[w], fresh);
        // A worker only goes away when its channel is dropped below, so this cannot fail.
        let _ = senders[w].send(WorkerMsg::Batch(full));
    };
    let mut stop = Stopping::default();
    let result = loop {
        let r = source.poll(stop.timeout(), &mut |pkt: RawPacket<'_>| {
            dstats.frames += 1;
            match decode(pkt.link, pkt.data, pkt.ts) {
                Ok(mut seg) => {
                    seg.frame_len = pkt.wire_len;
                    let w = shard_of(&seg, n);
                    batches[w].push(&seg);
                    if batches[w].segs.len() >= BATCH_SEGMENTS {
                        send(w, &mut batches, &free_rx);
                    }
                }
                Err(e) => dstats.count(e),
            }
        });
        for w in 0..n {
            if !batches[w].segs.is_empty() {
                send(w, &mut batches, &free_rx);
            }
        }
        match r {
            Ok(Poll::End) => break Ok(()),
            Ok(Poll::Idle) if stop.started() => break Ok(()),
            Ok(Poll::Idle) => {
                let now = Timestamp::now();
                for s in &senders {
                    let _ = s.send(WorkerMsg::Tick(now));
                }
            }
            Ok(Poll::Packets(_)) => {}
            Err(e) => break Err(e),
        }
        if cfg.mode == Mode::Live {
            dstats.store(&cfg.metrics, source, "capture");
            log.maybe_log(&cfg.metrics);
        }
        if stop.check(&cfg.stop) {
            break Ok(());
        }
    };
    drop(senders);
    for h in handles {
        h.join().map_err(|_| anyhow::anyhow!("a worker thread panicked"))?;
    }
    dstats.store(&cfg.metrics, source, "capture");
    result.map_err(Into::into)
}

fn worker_loop(worker: &mut Worker, rx: &Receiver<WorkerMsg>, free: &Sender<Batch>) {
    for msg in rx {
        match msg {
            WorkerMsg::Batch(mut b) => {
                b.for_each(|seg| worker.on_segment(seg));
                worker.end_batch();
                b.clear();
                let _ = free.try_send(b);
            }
            WorkerMsg::Tick(now) => worker.tick(now),
        }
    }
    worker.finish();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::envelope::AgentInfo;

    /// An output that counts the events it writes.
    struct Count(Arc<std::sync::atomic::AtomicU64>);

    impl Output for Count {
        fn write_chunk(&mut self, chunk: &Chunk) -> std::io::Result<()> {
            self.0.fetch_add(chunk.events, Ordering::Relaxed);
            Ok(())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn config(workers: usize) -> PipelineConfig {
        PipelineConfig {
            mode: Mode::Replay,
            workers,
            registry: Arc::new(Registry::from_config(None).expect("registry").0),
            limits: Limits::default(),
            publish: PublishSettings {
                agent: Arc::new(AgentInfo::for_tests()),
                processors: Arc::new(vec![]),
                ignore_outgoing: false,
                block_when_full: true,
            },
            metrics: Arc::new(Metrics::default()),
            stop: Arc::new(AtomicBool::new(false)),
            metrics_period: None,
            flows: None,
        }
    }

    #[test]
    fn each_emptied_chunk_goes_back_to_the_worker_that_wrote_it() {
        let written = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (out, free, thread) = spawn_output(&config(3), Box::new(Count(Arc::clone(&written)))).expect("output");
        assert_eq!(free.len(), 3);
        // Each buffer is told apart by its capacity: 1000 × worker + n. Worker 2 sends 6, what its
        // list holds with the default queue of 4 chunks.
        for n in 0..3 {
            for home in [2, 0, 1, 2] {
                let bytes = Vec::with_capacity(1000 * home + n);
                out.send(Chunk { bytes, events: 1, home }).expect("queued");
            }
        }
        drop(out);
        thread.join().expect("output thread").expect("written");
        assert_eq!(written.load(Ordering::Relaxed), 12);
        for (home, list) in free.iter().enumerate() {
            let back: Vec<usize> = list.try_iter().map(|b| b.capacity() / 1000).collect();
            assert_eq!(back, vec![home; if home == 2 { 6 } else { 3 }], "worker {home}");
        }
    }

    #[test]
    fn the_shard_is_the_remainder_for_any_worker_count() {
        for n in 1..=9usize {
            for h in [0, 1, 2, 3, 7, 8, 0x9E37_79B9_7F4A_7C15, u64::MAX - 1, u64::MAX] {
                assert_eq!(shard_index(h, n) as u64, h % n as u64, "h {h:#x}, n {n}");
            }
        }
        assert_eq!(shard_index(u64::MAX, 0), 0);
    }
}
