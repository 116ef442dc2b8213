//! What to do with a bulk response, and how long to wait before trying again.
//!
//! [`classify`] is pure (status + body → [`RetryAction`]) so every libbeat rule is a unit test:
//! whole request 2xx → look at each item (2xx acked, 409 duplicate, 429 and ≥ 500 retried, other
//! 4xx dropped with the reason); 413 → split the batch; 429/5xx/unparsable → retry everything, and
//! so do 401/403/408 (credentials, privileges and timeouts can be fixed while events wait, which
//! libbeat also does by retrying every non-200); other 4xx and 501 → nothing will change by
//! retrying, drop the batch with the reason.

use std::time::Duration;

use serde::Deserialize;

use super::config::BackoffConfig;

/// What happened to one item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ItemOutcome {
    /// Indexed.
    Acked,
    /// 409: already indexed (counted, not retried).
    Duplicate,
    /// 429 or ≥ 500: try again.
    Retry,
    /// Any other status: dropped (or dead-lettered), with the engine's reason.
    Dropped {
        /// The item's status.
        status: u16,
        /// `type: reason` from the engine.
        reason: String,
    },
}

/// The verdict on one bulk request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RetryAction {
    /// Every item acked.
    Success,
    /// Per-item results, in request order.
    Partial(Vec<ItemOutcome>),
    /// Retry the whole request (429, 5xx, an unreadable response).
    Retry(String),
    /// 413: split the batch in two and send each half.
    Split,
    /// A permanent failure of the whole request: drop it.
    DontRetry(String),
}

#[derive(Deserialize)]
struct BulkResponse {
    #[serde(default)]
    errors: bool,
    #[serde(default)]
    items: Vec<std::collections::BTreeMap<String, BulkItem>>,
}

#[derive(Deserialize)]
struct BulkItem {
    status: u16,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

fn reason(error: Option<&serde_json::Value>) -> String {
    match error {
        Some(e) => {
            let kind = e.get("type").and_then(|t| t.as_str()).unwrap_or("error");
            let why = e.get("reason").and_then(|t| t.as_str()).unwrap_or("");
            format!("{kind}: {why}")
        }
        None => "no reason given".into(),
    }
}

fn body_excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body.get(..body.len().min(300)).unwrap_or_default()).into_owned();
    text.replace('\n', " ")
}

/// Classifies the response to a bulk request of `items` events.
#[must_use]
pub fn classify(status: u16, body: &[u8], items: usize) -> RetryAction {
    match status {
        200..=299 => {}
        413 => return RetryAction::Split,
        401 | 403 | 408 | 429 | 500 | 502..=599 => {
            return RetryAction::Retry(format!("HTTP {status}: {}", body_excerpt(body)))
        }
        _ => return RetryAction::DontRetry(format!("HTTP {status}: {}", body_excerpt(body))),
    }
    let Ok(resp) = serde_json::from_slice::<BulkResponse>(body) else {
        return RetryAction::Retry(format!("unreadable bulk response: {}", body_excerpt(body)));
    };
    if !resp.errors {
        return RetryAction::Success;
    }
    if resp.items.len() != items {
        return RetryAction::Retry(format!("bulk response has {} items for {items} events", resp.items.len()));
    }
    let outcomes = resp
        .items
        .iter()
        .map(|item| match item.values().next() {
            None => ItemOutcome::Retry,
            Some(i) => match i.status {
                0..=299 => ItemOutcome::Acked,
                409 => ItemOutcome::Duplicate,
                429 | 500..=599 => ItemOutcome::Retry,
                status => ItemOutcome::Dropped { status, reason: reason(i.error.as_ref()) },
            },
        })
        .collect();
    RetryAction::Partial(outcomes)
}

/// Exponential back-off with full jitter between `init` and the current ceiling.
#[derive(Clone, Debug)]
pub struct Backoff {
    init: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    /// Starts at `cfg.init`.
    #[must_use]
    pub fn new(cfg: &BackoffConfig) -> Self {
        Self { init: cfg.init, max: cfg.max, current: cfg.init }
    }

    /// The next wait: uniform in `[ceiling/2, ceiling]`, then the ceiling doubles up to `max`.
    pub fn next_wait(&mut self) -> Duration {
        let ceiling = self.current;
        self.current = (self.current * 2).min(self.max);
        let half = ceiling / 2;
        let jitter_ns = fastrand::u64(0..=u64::try_from(half.as_nanos()).unwrap_or(u64::MAX));
        half + Duration::from_nanos(jitter_ns)
    }

    /// After a success.
    pub fn reset(&mut self) {
        self.current = self.init;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_request_statuses() {
        assert_eq!(classify(200, br#"{"errors":false}"#, 3), RetryAction::Success);
        assert_eq!(classify(413, b"", 3), RetryAction::Split);
        assert!(matches!(classify(429, b"slow down", 3), RetryAction::Retry(r) if r.contains("slow down")));
        assert!(matches!(classify(503, b"", 3), RetryAction::Retry(_)));
        assert!(matches!(classify(400, b"{}", 3), RetryAction::DontRetry(r) if r.contains("400")));
        assert!(matches!(classify(401, b"{}", 3), RetryAction::Retry(_)));
        assert!(matches!(classify(501, b"", 3), RetryAction::DontRetry(_)));
        assert!(matches!(classify(200, b"<html>", 3), RetryAction::Retry(_)));
    }

    #[test]
    fn per_item_statuses() {
        let body = br#"{"errors":true,"items":[
            {"create":{"status":201}},
            {"create":{"status":409,"error":{"type":"version_conflict_engine_exception","reason":"exists"}}},
            {"create":{"status":429,"error":{"type":"es_rejected_execution_exception"}}},
            {"create":{"status":400,"error":{"type":"mapper_parsing_exception","reason":"failed to parse field [x]"}}},
            {"create":{"status":503}}]}"#;
        let RetryAction::Partial(o) = classify(200, body, 5) else { panic!("not partial") };
        assert_eq!(o[0], ItemOutcome::Acked);
        assert_eq!(o[1], ItemOutcome::Duplicate);
        assert_eq!(o[2], ItemOutcome::Retry);
        assert!(
            matches!(&o[3], ItemOutcome::Dropped { status: 400, reason } if reason.contains("mapper_parsing_exception: failed to parse"))
        );
        assert_eq!(o[4], ItemOutcome::Retry);
        assert!(matches!(classify(200, br#"{"errors":true,"items":[]}"#, 2), RetryAction::Retry(_)));
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_max() {
        let cfg = BackoffConfig { init: Duration::from_secs(1), max: Duration::from_secs(5) };
        let mut b = Backoff::new(&cfg);
        let waits: Vec<Duration> = (0..6).map(|_| b.next_wait()).collect();
        for (w, ceiling) in waits.iter().zip([1, 2, 4, 5, 5, 5]) {
            let c = Duration::from_secs(ceiling);
            assert!(*w >= c / 2 && *w <= c, "{w:?} vs {c:?}");
        }
        b.reset();
        assert!(b.next_wait() <= Duration::from_secs(1));
    }
}
