//! A worker: one [`FlowTable`] and the [`Publisher`] that turns its transactions into NDJSON chunks
//! for the output thread. A worker owns its connections outright (flows are sharded to workers by a
//! symmetric hash), so nothing on its per-packet path is shared or locked.

use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use serde_json::{json, Value};

use crate::config::Limits;
use crate::event::conn_cache::ConnCache;
use crate::event::envelope::{self, AgentInfo};
use crate::event::fields::SortCache;
use crate::event::shape::ShapeCache;
use crate::event::Transaction;
use crate::flow::{FlowTable, Publish};
use crate::flows::{FlowSettings, FlowTracker};
use crate::metrics::{self, Metrics};
use crate::output::Chunk;
use crate::packet::TcpSegment;
use crate::processors::{self, Processor};
use crate::protocols::registry::{ProtocolId, Registry};
use crate::protocols::ConnInfo;
use crate::time::Timestamp;

/// Chunks are handed to the output once they reach this size. Live capture hands over what it has
/// at the end of every batch anyway; replay fills whole chunks, and a larger one wakes the output
/// thread less often. Each hand-over to a sleeping output thread is a futex wake, which costs the
/// worker far more than a syscall on this machine: in 1-worker replays of the HTTP keep-alive
/// benchmark capture, 0.8-3.7% of `perf` samples were in those wakes with 512 KiB chunks (about
/// 300 of them), 0.4% with 2 MiB ones. The output queue holds `output_queue_events` ×
/// [`EVENT_BYTES_ESTIMATE`] bytes of chunks (at least 4 chunks): 8 MiB at the default 8192 events,
/// with either size.
#[must_use]
pub const fn chunk_bytes(block_when_full: bool) -> usize {
    if block_when_full {
        2 * 1024 * 1024
    } else {
        64 * 1024
    }
}

/// An empty chunk buffer: a chunk is handed over once it reaches `chunk_bytes`, so it holds that
/// much plus the end of the event that crossed the mark (room for a typical one, so the buffer
/// does not grow).
fn chunk_buffer(chunk_bytes: usize) -> Vec<u8> {
    Vec::with_capacity(chunk_bytes + 4096)
}

/// What an event is assumed to take in a chunk, to turn the output queue's bound in events into
/// one in chunks.
pub const EVENT_BYTES_ESTIMATE: usize = 1024;

/// What the publisher needs, shared by all workers.
#[derive(Clone, Debug)]
pub struct PublishSettings {
    /// `agent.*`, `host.*` and local addresses.
    pub agent: Arc<AgentInfo>,
    /// Configured processors.
    pub processors: Arc<Vec<Processor>>,
    /// `packetbeat.ignore_outgoing`.
    pub ignore_outgoing: bool,
    /// Block when the output queue is full (replay) instead of dropping and counting (live).
    pub block_when_full: bool,
}

/// Serializes transactions into chunks and queues them for the output.
pub struct Publisher {
    settings: PublishSettings,
    chunk: Chunk,
    out: Sender<Chunk>,
    /// Emptied chunk buffers coming back from the output thread, so the steady state reuses them.
    free: Receiver<Vec<u8>>,
    /// Rendered envelope strings of recent connections.
    conns: ConnCache,
    /// The JSON structure of recently seen protocol field lists.
    shapes: ShapeCache,
    /// The sorted order of recently seen protocol field lists, as set.
    orders: SortCache,
    /// What follows every transaction's own fields (`agent.*`, `host.*`, …, `@metadata`).
    tail: Vec<u8>,
    /// Documents must go through a tree (configured processors, root `fields`).
    via_tree: bool,
    /// Size at which the chunk is handed to the output ([`chunk_bytes`]).
    chunk_bytes: usize,
    /// Events serialized.
    pub published: u64,
    /// Events dropped because the output queue was full (live capture only).
    pub dropped_queue_full: u64,
    /// Events dropped by `ignore_outgoing`.
    pub dropped_outgoing: u64,
}

impl Publisher {
    /// The publisher of worker `home`, sending to `out` and taking buffers back from `free` (that
    /// worker's own free list).
    #[must_use]
    pub fn new(settings: PublishSettings, out: Sender<Chunk>, free: Receiver<Vec<u8>>, home: usize) -> Self {
        let tail = envelope::tail(&settings.agent);
        let via_tree = !settings.processors.is_empty() || matches!(settings.agent.fields, Some((_, true)));
        let chunk_bytes = chunk_bytes(settings.block_when_full);
        Self {
            settings,
            // Full size from the start, as the spares are: grown by doubling, the first chunk was
            // copied a dozen times on its way to 2 MiB.
            chunk: Chunk { bytes: chunk_buffer(chunk_bytes), events: 0, home },
            out,
            free,
            conns: ConnCache::default(),
            shapes: ShapeCache::default(),
            orders: SortCache::default(),
            tail,
            via_tree,
            chunk_bytes,
            published: 0,
            dropped_queue_full: 0,
            dropped_outgoing: 0,
        }
    }

    /// Sends the current chunk, if any.
    pub fn flush(&mut self) {
        if self.chunk.events == 0 {
            return;
        }
        let bytes = self.free.try_recv().unwrap_or_else(|_| chunk_buffer(self.chunk_bytes));
        let home = self.chunk.home;
        let chunk = std::mem::replace(&mut self.chunk, Chunk { bytes, events: 0, home });
        if self.settings.block_when_full {
            // The output thread only stops after every sender is gone, so this cannot fail while
            // it runs; if it died, its error is reported by the pipeline.
            let _ = self.out.send(chunk);
        } else {
            match self.out.try_send(chunk) {
                Ok(()) => {}
                Err(TrySendError::Full(c) | TrySendError::Disconnected(c)) => self.dropped_queue_full += c.events,
            }
        }
    }
}

impl Publisher {
    /// Publishes a finished document (a transaction's or a flow's): `ignore_outgoing`, processors,
    /// `@metadata`, serialization.
    pub fn publish_doc(&mut self, mut doc: serde_json::Map<String, Value>) {
        if self.settings.ignore_outgoing
            && doc.get("network").and_then(|n| n.get("direction")) == Some(&json!("egress"))
        {
            self.dropped_outgoing += 1;
            return;
        }
        doc.insert(
            "@metadata".into(),
            json!({"beat": "packetbeat", "type": "_doc", "version": self.settings.agent.version}),
        );
        self.write_tree(doc);
    }

    /// Applies the processors to `doc` and appends it.
    fn write_tree(&mut self, mut doc: serde_json::Map<String, Value>) {
        processors::apply(&self.settings.processors, &mut doc);
        if serde_json::to_writer(&mut self.chunk.bytes, &Value::Object(doc)).is_ok() {
            self.end_event();
        }
    }

    /// Ends the event just written: newline, counters, and a flush when the chunk is full.
    fn end_event(&mut self) {
        self.chunk.bytes.push(b'\n');
        self.chunk.events += 1;
        self.published += 1;
        if self.chunk.bytes.len() >= self.chunk_bytes {
            self.flush();
        }
    }
}

impl Publish for Publisher {
    /// Writes the transaction's document straight into the chunk. Only when processors or root
    /// `fields` are configured is it parsed back into a tree for them to work on.
    fn publish(&mut self, mut tx: Transaction, conn: &ConnInfo) {
        let strings = self.conns.get(conn, &self.settings.agent, tx.kind);
        if self.settings.ignore_outgoing && strings.direction == "egress" {
            self.dropped_outgoing += 1;
            return;
        }
        tx.fields.sort_cached(&mut self.orders);
        let start = self.chunk.bytes.len();
        envelope::write_transaction(&mut self.chunk.bytes, &tx, strings, &self.tail, &mut self.shapes);
        tx.recycle();
        if !self.via_tree {
            self.end_event();
            return;
        }
        let parsed = serde_json::from_slice(self.chunk.bytes.get(start..).unwrap_or_default());
        self.chunk.bytes.truncate(start);
        if let Ok(mut doc) = parsed {
            envelope::add_root_fields(&mut doc, &self.settings.agent);
            self.write_tree(doc);
        }
    }
}

/// One shard of the connection space.
pub struct Worker {
    id: usize,
    table: FlowTable,
    flows: Option<FlowTracker>,
    publisher: Publisher,
    metrics: Arc<Metrics>,
    last_report: Timestamp,
    now: Timestamp,
}

impl Worker {
    /// Worker number `id`.
    #[must_use]
    pub fn new(
        id: usize,
        registry: Arc<Registry>,
        limits: &Limits,
        publisher: Publisher,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            id,
            table: FlowTable::new(registry, limits),
            flows: None,
            publisher,
            metrics,
            last_report: Timestamp::default(),
            now: Timestamp::default(),
        }
    }

    /// Turns flow reporting on (`packetbeat.flows`).
    pub fn enable_flows(&mut self, settings: Option<FlowSettings>) {
        self.flows = settings.map(|s| FlowTracker::new(s, Arc::clone(&self.publisher.settings.agent)));
    }

    /// Handles one segment.
    #[inline]
    pub fn on_segment(&mut self, seg: &TcpSegment<'_>) {
        if seg.ts > self.now {
            self.now = seg.ts;
        }
        if let Some(flows) = &mut self.flows {
            flows.on_segment(seg);
            let publisher = &mut self.publisher;
            flows.tick(seg.ts, &mut |doc| publisher.publish_doc(doc));
        }
        self.table.on_segment(seg, &mut self.publisher);
        self.maybe_report(seg.ts);
    }

    /// Advances time without a packet (live idle ticks).
    pub fn tick(&mut self, now: Timestamp) {
        if now > self.now {
            self.now = now;
        }
        self.table.advance(now, &mut self.publisher);
        if let Some(flows) = &mut self.flows {
            let publisher = &mut self.publisher;
            flows.tick(now, &mut |doc| publisher.publish_doc(doc));
        }
        self.publisher.flush();
        self.maybe_report(now);
    }

    /// End of a batch: live capture hands what is serialized to the output at once (latency); replay
    /// waits for full chunks (throughput: fewer, fuller chunks and no buffer churn).
    pub fn end_batch(&mut self) {
        if !self.publisher.settings.block_when_full {
            self.publisher.flush();
        }
    }

    /// End of capture: every connection closes, everything is published, counters are stored.
    pub fn finish(&mut self) {
        self.table.finish(&mut self.publisher);
        if let Some(flows) = &mut self.flows {
            let publisher = &mut self.publisher;
            flows.finish(self.now, &mut |doc| publisher.publish_doc(doc));
        }
        self.publisher.flush();
        self.report();
    }

    fn maybe_report(&mut self, now: Timestamp) {
        if now.since(self.last_report).is_none_or(|d| d >= 1_000_000_000) {
            self.last_report = now;
            self.report();
        }
    }

    fn report(&self) {
        let mut c = metrics::flow_counters(&self.table.stats);
        for id in ProtocolId::ALL {
            c.extend(metrics::proto_counters(id, &self.table.proto_stats[id.index()]));
        }
        c.push(("publish.events".into(), self.publisher.published));
        c.push(("publish.dropped_queue_full".into(), self.publisher.dropped_queue_full));
        c.push(("publish.dropped_outgoing".into(), self.publisher.dropped_outgoing));
        if let Some(f) = &self.flows {
            c.push(("flows.reported".into(), f.reported));
            c.push(("flows.table_full".into(), f.dropped));
        }
        self.metrics.store(&format!("worker.{}", self.id), c);
    }
}
