//! The envelope strings of recently seen connections, so a keep-alive connection's addresses and
//! community id are formatted and hashed once, not once per transaction.
//!
//! A small direct-mapped table owned by one worker's publisher: no locks, no eviction bookkeeping, a
//! fixed size whatever the number of connections (a collision only costs a re-render).

use std::hash::{Hash, Hasher};

use rustc_hash::FxHasher;

use super::envelope::{AgentInfo, ConnStrings};
use crate::protocols::ConnInfo;

/// Slots in the table (a power of two).
const SLOTS: usize = 256;

/// Connection → rendered [`ConnStrings`].
#[derive(Debug)]
pub struct ConnCache {
    slots: Vec<Option<(ConnInfo, ConnStrings)>>,
}

impl Default for ConnCache {
    fn default() -> Self {
        Self { slots: vec![None; SLOTS] }
    }
}

impl ConnCache {
    /// The strings of `conn`, rendered now if the slot holds another connection.
    pub fn get(&mut self, conn: &ConnInfo, agent: &AgentInfo, kind: &'static str) -> &ConnStrings {
        let mut h = FxHasher::default();
        conn.client_ip.hash(&mut h);
        conn.server_ip.hash(&mut h);
        (conn.client_port, conn.server_port).hash(&mut h);
        // The high bits of an Fx hash are the well-mixed ones.
        let index = usize::try_from(h.finish() >> 56).unwrap_or(0) % SLOTS;
        let slot = &mut self.slots[index];
        match slot {
            Some((cached, strings)) if cached == conn && strings.kind == kind => {}
            Some((cached, strings)) => {
                *cached = *conn;
                strings.render(conn, agent, kind);
            }
            None => {
                let mut strings = ConnStrings::default();
                strings.render(conn, agent, kind);
                *slot = Some((*conn, strings));
            }
        }
        // Filled just above.
        &slot.get_or_insert_with(|| (*conn, ConnStrings::default())).1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent() -> AgentInfo {
        AgentInfo::for_tests()
    }

    #[test]
    fn renders_each_connection_and_survives_collisions() {
        let mut cache = ConnCache::default();
        let agent = agent();
        // More connections than slots: every answer must still be the connection's own.
        for round in 0..2 {
            for i in 0..600u16 {
                let conn = ConnInfo {
                    client_ip: [10, 0, (i >> 8) as u8, i as u8].into(),
                    client_port: 1000 + i,
                    server_ip: [10, 0, 0, 1].into(),
                    server_port: 80,
                };
                let s = cache.get(&conn, &agent, "http");
                assert_eq!(s.client_ip, conn.client_ip.to_string(), "round {round}");
                assert_eq!(
                    s.community_id,
                    crate::event::community_id::community_id_v1(conn.client_ip, 1000 + i, conn.server_ip, 80, 6, 0)
                );
                assert_eq!((s.kind, s.direction), ("http", "unknown"));
            }
        }
    }
}
