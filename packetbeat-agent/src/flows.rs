//! Network flows (`packetbeat.flows`): per-connection packet and byte counters in both directions,
//! reported every `period` while a flow lives (`flow.final: false`) and once more when it has been
//! idle for `timeout` or the capture ends (`flow.final: true`), as Packetbeat's flow events.
//!
//! Flows count every decoded segment a worker sees, configured port or not (in live capture the
//! kernel filter only passes the configured ports). Bytes are frame bytes on the wire, as Packetbeat
//! counts them. The source is the side that sent the first packet seen. The table is bounded; flows
//! that do not fit are counted, not tracked.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use rustc_hash::FxHashMap;
use serde_json::{json, Map, Value};

use crate::event::community_id::community_id_v1;
use crate::event::envelope::{add_agent, AgentInfo};
use crate::packet::TcpSegment;
use crate::time::Timestamp;

/// Flows tracked per worker.
const FLOWS_MAX: usize = 200_000;
/// How often (packet time) expiry is checked.
const CHECK: Duration = Duration::from_secs(1);

/// `packetbeat.flows` settings that matter here.
#[derive(Clone, Copy, Debug)]
pub struct FlowSettings {
    /// A flow idle this long ends.
    pub timeout: Duration,
    /// Report interval of live flows; `None` (a negative period) reports only ended flows.
    pub period: Option<Duration>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct FlowKey {
    vlan: Option<u16>,
    lo: (IpAddr, u16),
    hi: (IpAddr, u16),
}

#[derive(Debug)]
struct Flow {
    id: String,
    src: (IpAddr, u16),
    dst: (IpAddr, u16),
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    vlan: Option<u16>,
    start: Timestamp,
    last: Timestamp,
    /// Index 0: from the source, 1: from the destination.
    packets: [u64; 2],
    bytes: [u64; 2],
}

/// One worker's flow table.
pub struct FlowTracker {
    settings: FlowSettings,
    agent: Arc<AgentInfo>,
    flows: FxHashMap<FlowKey, Flow>,
    next_check: Timestamp,
    next_report: Option<Timestamp>,
    seq: u64,
    /// Flows not tracked because the table was full.
    pub dropped: u64,
    /// Flow events produced.
    pub reported: u64,
}

fn mac(m: [u8; 6]) -> String {
    m.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join("-")
}

impl FlowTracker {
    /// An empty table.
    #[must_use]
    pub fn new(settings: FlowSettings, agent: Arc<AgentInfo>) -> Self {
        Self {
            settings,
            agent,
            flows: FxHashMap::default(),
            next_check: Timestamp::default(),
            next_report: None,
            seq: 0,
            dropped: 0,
            reported: 0,
        }
    }

    /// Counts one segment (its frame's wire bytes).
    pub fn on_segment(&mut self, seg: &TcpSegment<'_>) {
        let a = (seg.src_ip, seg.src_port);
        let b = (seg.dst_ip, seg.dst_port);
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let key = FlowKey { vlan: seg.vlan, lo, hi };
        let full = self.flows.len() >= FLOWS_MAX;
        let flow = match self.flows.entry(key) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                if full {
                    self.dropped += 1;
                    return;
                }
                self.seq += 1;
                let id = format!("{:016x}{:08x}", seg.ts.nanos() ^ self.seq.rotate_left(32), self.seq);
                v.insert(Flow {
                    id,
                    src: a,
                    dst: b,
                    src_mac: seg.src_mac,
                    dst_mac: seg.dst_mac,
                    vlan: seg.vlan,
                    start: seg.ts,
                    last: seg.ts,
                    packets: [0; 2],
                    bytes: [0; 2],
                })
            }
        };
        let dir = usize::from(flow.src != a);
        flow.packets[dir] += 1;
        flow.bytes[dir] += u64::from(seg.frame_len);
        if seg.ts > flow.last {
            flow.last = seg.ts;
        }
    }

    /// Time passes: ends idle flows and makes the periodic reports. Events go to `emit`.
    pub fn tick(&mut self, now: Timestamp, emit: &mut dyn FnMut(Map<String, Value>)) {
        if now < self.next_check {
            return;
        }
        self.next_check = now.plus(CHECK);
        let timeout = u64::try_from(self.settings.timeout.as_nanos()).unwrap_or(u64::MAX);
        let mut ended: Vec<FlowKey> = self
            .flows
            .iter()
            .filter(|(_, f)| now.since(f.last).is_some_and(|idle| idle >= timeout))
            .map(|(k, _)| *k)
            .collect();
        ended.sort_by_key(|k| self.flows.get(k).map(|f| (f.start, f.id.clone())));
        for k in ended {
            if let Some(f) = self.flows.remove(&k) {
                self.reported += 1;
                emit(self.event(&f, now, true));
            }
        }
        if let Some(period) = self.settings.period {
            let due = *self.next_report.get_or_insert(now.plus(period));
            if now >= due {
                self.next_report = Some(now.plus(period));
                let mut live: Vec<&Flow> = self.flows.values().collect();
                live.sort_by(|a, b| (a.start, &a.id).cmp(&(b.start, &b.id)));
                let events: Vec<Map<String, Value>> = live.into_iter().map(|f| self.event(f, now, false)).collect();
                self.reported += events.len() as u64;
                for e in events {
                    emit(e);
                }
            }
        }
    }

    /// End of capture: every flow ends.
    pub fn finish(&mut self, now: Timestamp, emit: &mut dyn FnMut(Map<String, Value>)) {
        let mut all: Vec<Flow> = self.flows.drain().map(|(_, f)| f).collect();
        all.sort_by(|a, b| (a.start, &a.id).cmp(&(b.start, &b.id)));
        for f in &all {
            let at = if now > f.last { now } else { f.last };
            self.reported += 1;
            emit(self.event(f, at, true));
        }
    }

    fn event(&self, f: &Flow, now: Timestamp, fin: bool) -> Map<String, Value> {
        let side = |ip: IpAddr, port: u16, m: [u8; 6], i: usize| {
            let mut s = Map::new();
            s.insert("ip".into(), json!(ip.to_string()));
            s.insert("port".into(), json!(port));
            s.insert("packets".into(), json!(f.packets[i]));
            s.insert("bytes".into(), json!(f.bytes[i]));
            if m != [0; 6] {
                s.insert("mac".into(), json!(mac(m)));
            }
            Value::Object(s)
        };
        let mut doc = Map::new();
        doc.insert("@timestamp".into(), json!(now.rfc3339()));
        doc.insert("type".into(), json!("flow"));
        let mut event = Map::new();
        event.insert("kind".into(), json!("event"));
        event.insert("category".into(), json!(["network"]));
        event.insert("action".into(), json!("network_flow"));
        event.insert("dataset".into(), json!("flow"));
        event.insert("type".into(), if fin { json!(["connection", "end"]) } else { json!(["connection"]) });
        event.insert("start".into(), json!(f.start.rfc3339()));
        event.insert("end".into(), json!(f.last.rfc3339()));
        event.insert("duration".into(), json!(f.last.since(f.start).unwrap_or(0)));
        doc.insert("event".into(), Value::Object(event));
        let mut flow = Map::new();
        flow.insert("id".into(), json!(f.id));
        flow.insert("final".into(), json!(fin));
        if let Some(v) = f.vlan {
            flow.insert("vlan".into(), json!(v));
        }
        doc.insert("flow".into(), Value::Object(flow));
        doc.insert("source".into(), side(f.src.0, f.src.1, f.src_mac, 0));
        doc.insert("destination".into(), side(f.dst.0, f.dst.1, f.dst_mac, 1));
        doc.insert(
            "network".into(),
            json!({
                "type": if f.src.0.is_ipv4() { "ipv4" } else { "ipv6" },
                "transport": "tcp",
                "community_id": community_id_v1(f.src.0, f.src.1, f.dst.0, f.dst.1, 6, 0),
                "bytes": f.bytes[0] + f.bytes[1],
                "packets": f.packets[0] + f.packets[1],
            }),
        );
        add_agent(&mut doc, &self.agent);
        doc
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::TcpFlags;

    fn seg(ts: u64, from_client: bool, frame_len: u32) -> TcpSegment<'static> {
        let (c, s) = (("10.0.0.1".parse().unwrap(), 40000), ("10.0.0.2".parse().unwrap(), 3306));
        let ((si, sp), (di, dp)) = if from_client { (c, s) } else { (s, c) };
        TcpSegment {
            ts: Timestamp(ts * 1_000_000_000),
            src_mac: if from_client { [0x0a, 0, 0x27, 0, 0, 0] } else { [8, 0, 0x27, 0x76, 0xd7, 0x41] },
            dst_mac: if from_client { [8, 0, 0x27, 0x76, 0xd7, 0x41] } else { [0x0a, 0, 0x27, 0, 0, 0] },
            vlan: None,
            src_ip: si,
            dst_ip: di,
            src_port: sp,
            dst_port: dp,
            seq: 0,
            ack: 0,
            flags: TcpFlags(TcpFlags::ACK),
            payload: &[],
            wire_payload_len: 0,
            frame_len,
        }
    }

    fn agent() -> Arc<AgentInfo> {
        Arc::new(AgentInfo::for_tests())
    }

    #[test]
    fn counts_both_directions_and_ends_on_timeout() {
        let mut t = FlowTracker::new(FlowSettings { timeout: Duration::from_secs(2), period: None }, agent());
        let mut out = Vec::new();
        t.on_segment(&seg(10, true, 66));
        t.on_segment(&seg(10, false, 1514));
        t.on_segment(&seg(11, true, 70));
        t.tick(Timestamp(12 * 1_000_000_000), &mut |e| out.push(e));
        assert!(out.is_empty(), "still alive");
        t.tick(Timestamp(14 * 1_000_000_000), &mut |e| out.push(e));
        assert_eq!(out.len(), 1);
        let e = Value::Object(out.remove(0));
        assert_eq!(e["source"]["packets"], 2);
        assert_eq!(e["source"]["bytes"], 136);
        assert_eq!(e["destination"]["bytes"], 1514);
        assert_eq!(e["source"]["mac"], "0A-00-27-00-00-00");
        assert_eq!(e["destination"]["port"], 3306);
        assert_eq!(e["flow"]["final"], true);
        assert_eq!(e["event"]["type"], json!(["connection", "end"]));
        assert_eq!(e["event"]["duration"], 1_000_000_000u64);
        assert_eq!(e["network"]["packets"], 3);
        t.finish(Timestamp(20 * 1_000_000_000), &mut |e| out.push(e));
        assert!(out.is_empty());
    }

    #[test]
    fn periodic_reports_then_final_at_end() {
        let mut t = FlowTracker::new(
            FlowSettings { timeout: Duration::from_secs(30), period: Some(Duration::from_secs(10)) },
            agent(),
        );
        let mut out = Vec::new();
        for s in 0..25 {
            t.on_segment(&seg(s, s % 2 == 0, 100));
            t.tick(Timestamp(s * 1_000_000_000), &mut |e| out.push(e));
        }
        t.finish(Timestamp(25 * 1_000_000_000), &mut |e| out.push(e));
        let finals: Vec<bool> = out.iter().map(|e| e["flow"]["final"].as_bool().unwrap()).collect();
        assert_eq!(finals, vec![false, false, true]);
        let ids: Vec<&Value> = out.iter().map(|e| &e["flow"]["id"]).collect();
        assert!(ids.windows(2).all(|w| w[0] == w[1]), "one flow, one id");
    }
}
