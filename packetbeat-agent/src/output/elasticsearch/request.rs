//! One batch of bulk items on its way: the original records (kept for retries and splits), the
//! body built from them, and the loop that applies [`classify`]'s verdict until every item is
//! acknowledged, counted as duplicate, or dropped with its reason. Each batch is acknowledged to
//! the spool exactly once, by the caller, after this returns `Ok`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::Method;
use serde_json::Value;

use super::config::BackoffConfig;
use super::retry::{classify, Backoff, ItemOutcome, RetryAction};
use super::service::EsService;
use crate::time::Timestamp;

/// `filter_path` keeps the response to what [`classify`] reads.
pub const BULK_PATH: &str = "/_bulk?filter_path=errors,items.*.error,items.*.status";

/// Output counters, shared by the sender tasks.
#[derive(Debug, Default)]
pub struct BulkStats {
    /// Events indexed.
    pub acked: AtomicU64,
    /// Events answered 409 (already indexed).
    pub duplicates: AtomicU64,
    /// Events rejected for good (a 4xx per item, or the whole request).
    pub dropped: AtomicU64,
    /// Rejected events written to the dead-letter index instead.
    pub dead_lettered: AtomicU64,
    /// Events too large to send even alone (413).
    pub too_large: AtomicU64,
    /// Events sent again (429/5xx per item or whole request, connection errors).
    pub retried: AtomicU64,
    /// Bulk requests sent.
    pub requests: AtomicU64,
    /// Requests that got no response.
    pub connection_errors: AtomicU64,
    /// Requests answered 429.
    pub throttled: AtomicU64,
    /// Events taken from the in-memory queue and given up at shutdown.
    pub dropped_at_shutdown: AtomicU64,
    /// Lines that were not JSON objects.
    pub encode_errors: AtomicU64,
}

/// The batch was abandoned because the output is closing; its records stay in the spool.
#[derive(Debug)]
pub struct Abandoned;

/// What every batch's send loop shares.
pub struct SendContext {
    /// HTTP.
    pub service: Arc<EsService>,
    /// Counters.
    pub stats: Arc<BulkStats>,
    /// `backoff.*`.
    pub backoff: BackoffConfig,
    /// Set when closing gives up waiting.
    pub stop: Arc<AtomicBool>,
    /// `non_indexable_policy.dead_letter_index.index`.
    pub dead_letter: Option<String>,
}

impl SendContext {
    /// The action line that starts a dead-letter record.
    fn dead_letter_action(&self) -> Option<String> {
        self.dead_letter.as_ref().map(|i| format!("{{\"create\":{{\"_index\":{}}}}}\n", Value::String(i.clone())))
    }
}

/// libbeat's dead-letter document: the rejected event as a string in `message`, with why.
fn dead_letter_record(action: &str, record: &[u8], status: u16, reason: &str) -> Vec<u8> {
    let doc = record.split(|b| *b == b'\n').nth(1).unwrap_or_default();
    let body = serde_json::json!({
        "@timestamp": Timestamp::now().to_string(),
        "message": String::from_utf8_lossy(doc),
        "error": {"type": status.to_string(), "message": reason},
    });
    let mut out = action.as_bytes().to_vec();
    let _ = serde_json::to_writer(&mut out, &body);
    out.push(b'\n');
    out
}

fn add(c: &AtomicU64, n: usize) {
    c.fetch_add(n as u64, Ordering::Relaxed);
}

/// Waits, unless `stop` is set (checked every 100 ms).
async fn pause(d: Duration, stop: &AtomicBool) -> Result<(), Abandoned> {
    let mut left = d;
    while !left.is_zero() {
        if stop.load(Ordering::Relaxed) {
            return Err(Abandoned);
        }
        let step = left.min(Duration::from_millis(100));
        tokio::time::sleep(step).await;
        left -= step;
    }
    if stop.load(Ordering::Relaxed) {
        return Err(Abandoned);
    }
    Ok(())
}

/// Sends `records` until done. Returns `Err` only when `stop` is set while retrying.
///
/// # Errors
/// [`Abandoned`] at shutdown.
pub async fn send_batch(ctx: Arc<SendContext>, records: Vec<Vec<u8>>) -> Result<(), Abandoned> {
    let (service, stats, stop) = (&ctx.service, &ctx.stats, &ctx.stop);
    let mut backoff = Backoff::new(&ctx.backoff);
    let dead_letter = ctx.dead_letter_action();
    let hosts = service.hosts().len();
    let mut failures_in_a_row = 0usize;
    let mut work: Vec<Vec<Vec<u8>>> = vec![records];
    let mut body = Vec::new();
    while let Some(batch) = work.pop() {
        if batch.is_empty() {
            continue;
        }
        body.clear();
        for r in &batch {
            body.extend_from_slice(r);
        }
        add(&stats.requests, 1);
        let resp = match service.request(Method::POST, BULK_PATH, Some(&body), "application/x-ndjson").await {
            Ok(r) => r,
            Err(e) => {
                add(&stats.connection_errors, 1);
                add(&stats.retried, batch.len());
                failures_in_a_row += 1;
                // Fail over: the next request goes to the next host; wait only once every host failed.
                if !failures_in_a_row.is_multiple_of(hosts.max(1)) {
                    tracing::warn!("bulk request failed, trying the next host: {e}");
                } else {
                    let wait = backoff.next_wait();
                    tracing::warn!("bulk request failed, retrying {} events in {wait:.1?}: {e}", batch.len());
                    pause(wait, stop).await?;
                }
                work.push(batch);
                continue;
            }
        };
        failures_in_a_row = 0;
        if resp.status == 429 {
            add(&stats.throttled, 1);
        }
        match classify(resp.status, &resp.body, batch.len()) {
            RetryAction::Success => {
                add(&stats.acked, batch.len());
                backoff.reset();
            }
            RetryAction::Partial(outcomes) => {
                let mut again = Vec::new();
                let mut dead = Vec::new();
                let mut logged = 0;
                for (record, outcome) in batch.into_iter().zip(outcomes) {
                    match outcome {
                        ItemOutcome::Acked => add(&stats.acked, 1),
                        ItemOutcome::Duplicate => add(&stats.duplicates, 1),
                        ItemOutcome::Retry => again.push(record),
                        ItemOutcome::Dropped { status, reason } => {
                            let to_dead_letter = dead_letter.as_deref().filter(|a| !record.starts_with(a.as_bytes()));
                            if logged < 5 {
                                logged += 1;
                                let fate =
                                    if to_dead_letter.is_some() { "sent to the dead-letter index" } else { "dropped" };
                                tracing::warn!("event rejected by the engine ({status} {reason}): {fate}");
                            }
                            match to_dead_letter {
                                Some(action) => {
                                    add(&stats.dead_lettered, 1);
                                    dead.push(dead_letter_record(action, &record, status, &reason));
                                }
                                None => add(&stats.dropped, 1),
                            }
                        }
                    }
                }
                if !dead.is_empty() {
                    work.push(dead);
                }
                if again.is_empty() {
                    backoff.reset();
                } else {
                    add(&stats.retried, again.len());
                    let wait = backoff.next_wait();
                    tracing::info!("{} events rejected for now (429/5xx), retrying in {wait:.1?}", again.len());
                    pause(wait, stop).await?;
                    work.push(again);
                }
            }
            RetryAction::Retry(why) => {
                add(&stats.retried, batch.len());
                let wait = backoff.next_wait();
                tracing::warn!("bulk request of {} events not accepted, retrying in {wait:.1?}: {why}", batch.len());
                pause(wait, stop).await?;
                work.push(batch);
            }
            RetryAction::Split => {
                if batch.len() == 1 {
                    add(&stats.too_large, 1);
                    tracing::warn!("an event of {} bytes is too large for the engine (413): dropped", body.len());
                } else {
                    let mut first = batch;
                    let second = first.split_off(first.len() / 2);
                    work.push(second);
                    work.push(first);
                }
            }
            RetryAction::DontRetry(why) => {
                add(&stats.dropped, batch.len());
                tracing::error!("bulk request of {} events refused, dropped: {why}", batch.len());
            }
        }
    }
    Ok(())
}
