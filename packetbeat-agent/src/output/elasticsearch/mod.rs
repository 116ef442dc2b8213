//! `output.elasticsearch`: events into a data stream through the bulk API, at least once.
//!
//! ```text
//! output thread: write_chunk ─► encoder (create action, @metadata out, _id) ─► spool (disk | memory)
//! sender thread (own tokio runtime): spool.take ─► request::send_batch ×worker ─► retry::classify
//!                                     └─ all settled ─► spool.ack (exactly once per batch)
//! ```
//! The [`Output`] trait stays synchronous: the pipeline is threads. With the disk spool,
//! `write_chunk` only appends to a file, so capture is never held by a slow engine; in memory mode
//! it blocks while the queue is full (backpressure; live capture drops and counts upstream).
//! `close` waits up to `spool.shutdown_timeout` for the spool to drain; what is left stays on disk
//! and is sent at the next start.

pub mod config;
pub mod encoder;
pub mod health;
pub mod request;
pub mod retry;
pub mod service;
pub mod spool;
pub mod template;
pub mod tls;

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use self::config::ElasticsearchConfig;
use self::encoder::BulkEncoder;
use self::health::{EngineInfo, HealthError};
use self::request::{send_batch, BulkStats, SendContext};
use self::retry::Backoff;
use self::service::{EsService, ServiceError};
use self::spool::{Spool, SpoolError};
use self::template::SetupError;
use super::{Chunk, Output};
use crate::metrics::Metrics;

/// Bytes of one bulk request at most (vector's default batch size).
const MAX_REQUEST_BYTES: usize = 10 * 1024 * 1024;

/// Why the output could not start.
#[derive(Debug, thiserror::Error)]
pub enum EsOutputError {
    /// Client construction (TLS files, headers).
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// The engine refused us (credentials, TLS, version).
    #[error(transparent)]
    Health(#[from] HealthError),
    /// Template or policy refused.
    #[error("index setup failed")]
    Setup(#[from] SetupError),
    /// The engine's certificate was refused.
    #[error("the engine's TLS certificate is not trusted (set output.elasticsearch.ssl.certificate_authorities to its CA, or ssl.verification_mode)")]
    Untrusted(#[source] HealthError),
    /// The spool directory.
    #[error(transparent)]
    Spool(#[from] SpoolError),
    /// The tokio runtime or a thread could not start.
    #[error("cannot start the output runtime")]
    Runtime(#[from] io::Error),
}

/// `setup.template.*` / `setup.ilm.*` as the output uses them.
#[derive(Clone, Copy, Debug)]
pub struct SetupOptions {
    /// `setup.template.enabled`.
    pub template: bool,
    /// `setup.template.overwrite`.
    pub overwrite: bool,
    /// `setup.ilm.enabled`.
    pub ilm: bool,
}

/// A TLS or credentials problem will not fix itself: fail at start. Unreachable is different:
/// events wait in the spool.
fn is_fatal(e: &HealthError) -> bool {
    match e {
        HealthError::Service(s) => is_fatal_service(s),
        _ => true,
    }
}

fn is_fatal_service(e: &ServiceError) -> bool {
    match e {
        ServiceError::Connect { message, .. } => {
            let m = message.to_ascii_lowercase();
            m.contains("certificate")
                || m.contains("corrupt message")
                || m.contains("tls")
                || m.contains("handshake")
                || m.contains("alert")
        }
        ServiceError::Timeout { .. } => false,
        _ => true,
    }
}

/// The error and its causes in one line, for the log.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

fn is_certificate_error(e: &HealthError) -> bool {
    matches!(e, HealthError::Service(ServiceError::Connect { message, .. }) if message.contains("invalid peer certificate"))
}

/// Whether opening may go on with the engine unreachable (events wait in the spool).
fn is_transient(e: &EsOutputError) -> bool {
    match e {
        EsOutputError::Health(h) => !is_fatal(h),
        EsOutputError::Setup(SetupError::Service(s)) => !is_fatal_service(s),
        _ => false,
    }
}

/// Finds a host that answers and checks it.
///
/// # Errors
/// The first host's error when none answers.
pub async fn probe(service: &EsService) -> Result<EngineInfo, HealthError> {
    let mut first = None;
    for i in 0..service.hosts().len() {
        match health::check(service, i).await {
            Ok(info) => return Ok(info),
            Err(e) => {
                if is_fatal(&e) {
                    return Err(e);
                }
                first.get_or_insert(e);
            }
        }
    }
    Err(first.unwrap_or(HealthError::NotAnEngine { url: String::new(), message: "no host configured".into() }))
}

/// Health check then template/policy, as `setup --index-management` does.
///
/// # Errors
/// The engine is unusable or refused the setup.
pub async fn run_setup(
    service: &EsService,
    index: &str,
    setup: SetupOptions,
) -> Result<(EngineInfo, Vec<String>), EsOutputError> {
    let info = probe(service).await?;
    let mut done = Vec::new();
    if setup.template {
        done = template::setup(service, &info, index, setup.ilm, setup.overwrite).await?.done;
    }
    Ok((info, done))
}

/// The output.
pub struct ElasticsearchOutput {
    encoder: BulkEncoder,
    spool: Arc<Spool>,
    buf: Vec<u8>,
    sender: Option<JoinHandle<()>>,
    closing: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    stats: Arc<BulkStats>,
    metrics: Arc<Metrics>,
    shutdown_timeout: Duration,
}

struct Sender {
    service: Arc<EsService>,
    spool: Arc<Spool>,
    stats: Arc<BulkStats>,
    metrics: Arc<Metrics>,
    closing: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    cfg: ElasticsearchConfig,
    index: String,
    setup: Option<SetupOptions>,
}

impl ElasticsearchOutput {
    /// Connects (a bad certificate or bad credentials fail here; an unreachable engine only warns,
    /// events wait in the spool), sets up the index, reopens the spool and starts the sender.
    ///
    /// # Errors
    /// TLS files, credentials, version, refused setup, or the spool directory.
    pub fn open(
        cfg: &ElasticsearchConfig,
        setup: SetupOptions,
        metrics: Arc<Metrics>,
        version: &str,
    ) -> Result<Self, EsOutputError> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let service = EsService::new(cfg)?;
        let index = cfg.index_name(version);
        let mut pending_setup = None;
        match runtime.block_on(run_setup(&service, &index, setup)) {
            Ok((info, done)) => {
                tracing::info!("connected to {:?} {} (cluster {})", info.distribution, info.version, info.cluster_name);
                for d in done {
                    tracing::info!("{d}");
                }
            }
            Err(e) if is_transient(&e) => {
                tracing::warn!("{}; events are spooled until it answers", chain(&e));
                pending_setup = Some(setup);
            }
            Err(EsOutputError::Health(h)) if is_certificate_error(&h) => return Err(EsOutputError::Untrusted(h)),
            Err(e) => return Err(e),
        }
        let spool = Arc::new(Spool::open(&cfg.spool)?);
        let resumed = spool.stats().pending;
        if resumed > 0 {
            tracing::info!("resuming {resumed} spooled events from {}", cfg.spool.path);
        }
        let stats = Arc::new(BulkStats::default());
        let closing = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let sender = Sender {
            service,
            spool: Arc::clone(&spool),
            stats: Arc::clone(&stats),
            metrics: Arc::clone(&metrics),
            closing: Arc::clone(&closing),
            stop: Arc::clone(&stop),
            cfg: cfg.clone(),
            index: index.clone(),
            setup: pending_setup,
        };
        let handle = std::thread::Builder::new().name("es-sender".into()).spawn(move || sender.run(&runtime))?;
        Ok(Self {
            encoder: BulkEncoder::new(index, cfg.pipeline.clone(), cfg.idempotent),
            spool,
            buf: Vec::with_capacity(1 << 17),
            sender: Some(handle),
            closing,
            stop,
            stats,
            metrics,
            shutdown_timeout: cfg.spool.shutdown_timeout,
        })
    }

    fn store_metrics(&self) {
        store_metrics(&self.metrics, &self.stats, &self.spool);
    }
}

fn store_metrics(metrics: &Metrics, stats: &BulkStats, spool: &Spool) {
    let s = spool.stats();
    let l = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let c = [
        ("output.elasticsearch.acked", l(&stats.acked)),
        ("output.elasticsearch.duplicates", l(&stats.duplicates)),
        ("output.elasticsearch.dropped_rejected", l(&stats.dropped)),
        ("output.elasticsearch.dead_lettered", l(&stats.dead_lettered)),
        ("output.elasticsearch.dropped_too_large", l(&stats.too_large)),
        ("output.elasticsearch.dropped_encode", l(&stats.encode_errors)),
        ("output.elasticsearch.dropped_at_shutdown", l(&stats.dropped_at_shutdown)),
        ("output.elasticsearch.retried", l(&stats.retried)),
        ("output.elasticsearch.requests", l(&stats.requests)),
        ("output.elasticsearch.connection_errors", l(&stats.connection_errors)),
        ("output.elasticsearch.throttled", l(&stats.throttled)),
        ("output.spool.pending", s.pending),
        ("output.spool.bytes", s.bytes),
        ("output.spool.dropped_oldest", s.dropped_oldest),
        ("output.spool.dropped_newest", s.dropped_newest),
        ("output.spool.corrupt_records", s.corrupt),
    ];
    metrics.store("output.elasticsearch", c.into_iter().map(|(k, v)| (k.to_owned(), v)).collect());
}

impl Sender {
    fn run(mut self, runtime: &tokio::runtime::Runtime) {
        let mut backoff = Backoff::new(&self.cfg.backoff);
        let per_round = self.cfg.bulk_max_size * self.cfg.worker * self.service.hosts().len().max(1);
        let ctx = Arc::new(SendContext {
            service: Arc::clone(&self.service),
            stats: Arc::clone(&self.stats),
            backoff: self.cfg.backoff.clone(),
            stop: Arc::clone(&self.stop),
            dead_letter: self.cfg.non_indexable_policy.dead_letter_index.as_ref().map(|d| d.index.clone()),
        });
        let mut last_store = Instant::now();
        while !self.stop.load(Ordering::Relaxed) {
            if let Some(setup) = self.setup {
                match runtime.block_on(run_setup(&self.service, &self.index, setup)) {
                    Ok(_) => {
                        tracing::info!("the engine answers: sending spooled events");
                        self.setup = None;
                        backoff.reset();
                    }
                    Err(e) => {
                        let wait = backoff.next_wait();
                        tracing::warn!("still waiting for the engine ({}); next try in {wait:.1?}", chain(&e));
                        let until = Instant::now() + wait;
                        while Instant::now() < until && !self.stop.load(Ordering::Relaxed) {
                            std::thread::sleep(Duration::from_millis(100));
                        }
                        continue;
                    }
                }
            }
            let taken =
                match self.spool.take(per_round, MAX_REQUEST_BYTES * self.cfg.worker, Duration::from_millis(200)) {
                    Ok(t) => t,
                    Err(e) => {
                        tracing::error!("{e}");
                        std::thread::sleep(Duration::from_secs(1));
                        continue;
                    }
                };
            if taken.records.is_empty() {
                store_metrics(&self.metrics, &self.stats, &self.spool);
                if self.closing.load(Ordering::Relaxed) && self.spool.stats().pending == 0 {
                    break;
                }
                continue;
            }
            let n = taken.records.len();
            let abandoned = runtime.block_on(async {
                let mut set = tokio::task::JoinSet::new();
                let mut records = taken.records;
                while !records.is_empty() {
                    let rest = records.split_off(records.len().min(self.cfg.bulk_max_size));
                    let batch = std::mem::replace(&mut records, rest);
                    set.spawn(send_batch(Arc::clone(&ctx), batch));
                }
                let mut abandoned = false;
                while let Some(r) = set.join_next().await {
                    abandoned |= !matches!(r, Ok(Ok(())));
                }
                abandoned
            });
            if abandoned {
                if self.spool.is_durable() {
                    tracing::warn!("closing with {n} events unacknowledged: they stay in the spool for the next start");
                } else {
                    self.stats.dropped_at_shutdown.fetch_add(n as u64, Ordering::Relaxed);
                    tracing::warn!("closing with {n} events unacknowledged: lost (spool.enabled is false)");
                }
                break;
            }
            if let Err(e) = self.spool.ack(taken.pos) {
                tracing::error!("{e}");
            }
            if last_store.elapsed() >= Duration::from_millis(500) {
                last_store = Instant::now();
                store_metrics(&self.metrics, &self.stats, &self.spool);
            }
        }
        store_metrics(&self.metrics, &self.stats, &self.spool);
    }
}

impl Output for ElasticsearchOutput {
    fn write_chunk(&mut self, chunk: &Chunk) -> io::Result<()> {
        self.buf.clear();
        let mut n = 0;
        for line in chunk.bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            match self.encoder.encode(line, &mut self.buf) {
                Ok(()) => n += 1,
                Err(e) => {
                    self.stats.encode_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!("{e}");
                }
            }
        }
        self.spool.push(&self.buf, n).map_err(io::Error::other)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.store_metrics();
        Ok(())
    }

    fn close(&mut self) -> io::Result<()> {
        self.closing.store(true, Ordering::Relaxed);
        let deadline = Instant::now() + self.shutdown_timeout;
        while self.sender.as_ref().is_some_and(|h| !h.is_finished()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.sender.take() {
            let _ = h.join();
        }
        let left = self.spool.stats().pending;
        if left > 0 && self.spool.is_durable() {
            tracing::warn!("{left} events are still in the spool: they are sent at the next start");
        } else if left > 0 {
            self.stats.dropped_at_shutdown.fetch_add(left, Ordering::Relaxed);
            tracing::warn!("{left} queued events are lost at shutdown (spool.enabled is false)");
        }
        self.store_metrics();
        Ok(())
    }
}

impl Drop for ElasticsearchOutput {
    fn drop(&mut self) {
        if self.sender.is_some() {
            let _ = self.close();
        }
    }
}
