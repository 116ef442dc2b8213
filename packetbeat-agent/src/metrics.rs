//! Counters for every place data can be dropped or transformed, summed over workers.
//!
//! Each worker owns plain `u64` counters on its hot path and, at its timer ticks, stores a snapshot in
//! its own slot here (a mutex taken about once a second, never per packet). Readers sum the slots.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::flow::FlowStats;
use crate::protocols::registry::ProtocolId;
use crate::protocols::ProtoStats;

/// A list of named counter values.
pub type Counters = Vec<(String, u64)>;

/// The counters of every worker and of the output.
#[derive(Debug, Default)]
pub struct Metrics {
    slots: Mutex<BTreeMap<String, Counters>>,
}

impl Metrics {
    /// Replaces the snapshot of `slot` (e.g. `"worker.0"`, `"output"`, `"capture"`).
    pub fn store(&self, slot: &str, counters: Counters) {
        if let Ok(mut s) = self.slots.lock() {
            s.insert(slot.to_owned(), counters);
        }
    }

    /// Sums every slot's counters by name.
    #[must_use]
    pub fn totals(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        if let Ok(s) = self.slots.lock() {
            for counters in s.values() {
                for (k, v) in counters {
                    *out.entry(k.clone()).or_insert(0) += v;
                }
            }
        }
        out
    }

    /// The non-zero totals as one log line (`name=value ...`).
    #[must_use]
    pub fn summary(&self) -> String {
        self.totals()
            .into_iter()
            .filter(|(_, v)| *v != 0)
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Named values of the flow counters.
#[must_use]
pub fn flow_counters(s: &FlowStats) -> Counters {
    [
        ("flow.segments", s.segments),
        ("flow.unconfigured_port", s.unconfigured_port),
        ("flow.connections", s.connections),
        ("flow.no_connection", s.no_connection),
        ("flow.table_full", s.table_full),
        ("flow.midstream", s.midstream),
        ("flow.gaps", s.gaps),
        ("flow.gap_bytes", s.gap_bytes),
        ("flow.retransmits", s.retransmits),
        ("flow.out_of_order", s.ooo_segments),
        ("flow.out_of_order_overflow", s.ooo_overflow),
        ("flow.stream_cap_hit", s.stream_cap_hit),
        ("flow.closed", s.closed),
        ("flow.idle_expired", s.idle_expired),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Named values of one protocol's counters.
#[must_use]
pub fn proto_counters(id: ProtocolId, s: &ProtoStats) -> Counters {
    let n = id.name();
    [
        ("transactions", s.transactions),
        ("parse_errors", s.parse_errors),
        ("unmatched_requests", s.unmatched_requests),
        ("unmatched_responses", s.unmatched_responses),
        ("gaps", s.gaps),
        ("oversize_messages", s.oversize_messages),
        ("queue_full", s.queue_full),
    ]
    .into_iter()
    .map(|(k, v)| (format!("{n}.{k}"), v))
    .collect()
}
