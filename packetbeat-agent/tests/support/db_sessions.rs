//! MySQL, PostgreSQL and Redis conversations for the large benchmark captures, one round trip per
//! [`Session::step`] so the scheduler of [`super::tcp_conn`] can interleave them. The wire messages
//! come from the protocol generators (`mysql_synth`, `pgsql_synth`, `redis_synth`):
//!
//! - MySQL: login, one `COM_STMT_PREPARE`, then a cycle of a text `SELECT` (5 rows), a text
//!   `UPDATE` and two `COM_STMT_EXECUTE`s of the prepared `SELECT` (binary result set, 3 rows); at
//!   the end `COM_STMT_CLOSE` + `COM_QUIT` in one segment. One transaction per command but the close.
//! - PostgreSQL, extended protocol only: startup, then alternately one Bind/Describe/Execute/Sync
//!   of a prepared `SELECT` (5 rows) and a pipeline of 4 Bind/Execute of a prepared `UPDATE` with
//!   one Sync (each statement parsed in its first round trip). One transaction per Execute.
//! - Redis: commands pipelined `REDIS_DEPTH` per segment, replies coalesced per batch.

#![allow(dead_code, reason = "each user needs a different part")]

use super::mysql_synth as my;
use super::pgsql_synth as pg;
use super::synth::Writer;
use super::tcp_conn::{Conn, Endpoint, Session};

/// The MySQL server.
pub const MYSQL_SERVER: Endpoint = ([10, 0, 0, 3], 3306);
/// The PostgreSQL server.
pub const PGSQL_SERVER: Endpoint = ([10, 0, 0, 3], 5432);
/// The Redis server.
pub const REDIS_SERVER: Endpoint = ([10, 0, 0, 2], 6379);
/// Redis commands per pipelined segment.
pub const REDIS_DEPTH: u32 = 10;

/// A MySQL connection of `commands` commands after the login and the prepare.
pub struct Mysql {
    step: u32,
    commands: u32,
}

impl Mysql {
    /// A connection with `commands` commands.
    pub fn new(commands: u32) -> Self {
        Self { step: 0, commands }
    }
}

const PREPARED: &str = "SELECT id, name, email FROM users WHERE id = ?";

fn prepare_ok() -> Vec<u8> {
    let mut out = Vec::new();
    let mut p = vec![0];
    p.extend_from_slice(&1u32.to_le_bytes());
    p.extend_from_slice(&3u16.to_le_bytes());
    p.extend_from_slice(&1u16.to_le_bytes());
    p.extend_from_slice(&[0, 0, 0]);
    my::packet(&mut out, 1, &p);
    my::column_typed(&mut out, 2, "?", 0x08);
    my::packet(&mut out, 3, &[0xfe, 0, 0, 2, 0]);
    for (seq, (name, ty)) in [("id", 0x08), ("name", 0xfd), ("email", 0xfd)].into_iter().enumerate() {
        my::column_typed(&mut out, 4 + seq as u8, name, ty);
    }
    my::packet(&mut out, 7, &[0xfe, 0, 0, 2, 0]);
    out
}

fn execute(id: u64) -> Vec<u8> {
    let mut p = vec![0x17];
    p.extend_from_slice(&1u32.to_le_bytes());
    p.extend_from_slice(&[0, 1, 0, 0, 0, 0, 1, 0x08, 0]);
    p.extend_from_slice(&id.to_le_bytes());
    let mut out = Vec::new();
    my::packet(&mut out, 0, &p);
    out
}

fn binary_rows(id: u64) -> Vec<u8> {
    let mut out = Vec::new();
    my::packet(&mut out, 1, &[3]);
    for (seq, (name, ty)) in [("id", 0x08), ("name", 0xfd), ("email", 0xfd)].into_iter().enumerate() {
        my::column_typed(&mut out, 2 + seq as u8, name, ty);
    }
    my::packet(&mut out, 5, &[0xfe, 0, 0, 2, 0]);
    for r in 0..3u8 {
        let mut row = vec![0x00, 0x00];
        row.extend_from_slice(&(id + u64::from(r)).to_le_bytes());
        my::lenenc(&mut row, format!("user number {r}").as_bytes());
        my::lenenc(&mut row, format!("user{r}@example.com").as_bytes());
        my::packet(&mut out, 6 + r, &row);
    }
    my::packet(&mut out, 9, &[0xfe, 0, 0, 2, 0]);
    out
}

impl Session for Mysql {
    fn step(&mut self, conn: &mut Conn, w: &mut Writer) -> Option<u64> {
        let step = self.step;
        self.step += 1;
        let tx = match step {
            0 => {
                let (login, auth_ok, _) = my::login_ok_quit();
                conn.server_sends(w, &my::greeting());
                conn.client_sends(w, &login);
                conn.server_sends(w, &auth_ok);
                0
            }
            1 => {
                let mut q = vec![0x16];
                q.extend_from_slice(PREPARED.as_bytes());
                let mut req = Vec::new();
                my::packet(&mut req, 0, &q);
                conn.client_sends(w, &req);
                conn.server_sends(w, &prepare_ok());
                1
            }
            s if s < self.commands + 2 => {
                let r = s - 2;
                let (sql, resp) = match r % 4 {
                    0 => (format!("SELECT id, name, email FROM users WHERE id > {r}"), my::select_response(5, r)),
                    1 => {
                        let mut ok = Vec::new();
                        my::packet(&mut ok, 1, &[0, 1, 0, 2, 0, 0, 0]);
                        (format!("UPDATE users SET visits = visits + 1 WHERE id = {r}"), ok)
                    }
                    _ => {
                        conn.client_sends(w, &execute(u64::from(r)));
                        conn.server_sends(w, &binary_rows(u64::from(r)));
                        return Some(1);
                    }
                };
                let mut q = vec![0x03];
                q.extend_from_slice(sql.as_bytes());
                let mut req = Vec::new();
                my::packet(&mut req, 0, &q);
                conn.client_sends(w, &req);
                conn.server_sends(w, &resp);
                1
            }
            s if s == self.commands + 2 => {
                let mut bye = Vec::new();
                my::packet(&mut bye, 0, &[0x19, 1, 0, 0, 0]);
                bye.extend(my::login_ok_quit().2);
                conn.client_sends(w, &bye);
                0
            }
            _ => return None,
        };
        Some(tx)
    }
}

/// A PostgreSQL connection of `round_trips` extended-protocol round trips after the startup.
pub struct Pgsql {
    step: u32,
    round_trips: u32,
}

impl Pgsql {
    /// A connection with `round_trips` round trips.
    pub fn new(round_trips: u32) -> Self {
        Self { step: 0, round_trips }
    }
}

/// Bind/Describe/Execute/Sync of the prepared `SELECT` (parsed first when `first`) and its answer.
fn extended_select(r: u32, first: bool) -> (Vec<u8>, Vec<u8>) {
    let (mut q, mut s) = (Vec::new(), Vec::new());
    if first {
        let mut b = pg::cstr("sel");
        b.extend(pg::cstr("SELECT id, name, balance FROM accounts WHERE branch = $1 LIMIT 5"));
        b.extend([0, 1, 0, 0, 0, 23]);
        pg::msg(&mut q, b'P', &b);
        pg::msg(&mut s, b'1', b"");
    }
    let mut b = pg::cstr("");
    b.extend(pg::cstr("sel"));
    b.extend([0, 1, 0, 1, 0, 1, 0, 0, 0, 4]);
    b.extend(r.to_be_bytes());
    b.extend([0, 0]);
    pg::msg(&mut q, b'B', &b);
    pg::msg(&mut q, b'D', b"P\0");
    pg::msg(&mut q, b'E', b"\0\0\0\0\0");
    pg::msg(&mut q, b'S', b"");
    pg::msg(&mut s, b'2', b"");
    pg::row_description(&mut s);
    for i in 0..5 {
        pg::data_row(&mut s, r * 5 + i);
    }
    pg::msg(&mut s, b'C', b"SELECT 5\0");
    pg::msg(&mut s, b'Z', b"I");
    (q, s)
}

impl Session for Pgsql {
    fn step(&mut self, conn: &mut Conn, w: &mut Writer) -> Option<u64> {
        let step = self.step;
        self.step += 1;
        let (q, s, tx) = match step {
            0 => (pg::startup(), pg::greeting(), 0),
            s if s <= self.round_trips => {
                let r = s - 1;
                if r % 2 == 0 {
                    let (q, s) = extended_select(r, r == 0);
                    (q, s, 1)
                } else {
                    let (q, s) = pg::pipeline(r, r == 1);
                    (q, s, 4)
                }
            }
            _ => return None,
        };
        conn.client_sends(w, &q);
        conn.server_sends(w, &s);
        Some(tx)
    }
}

/// A Redis connection `conn_no` of `commands` commands, pipelined [`REDIS_DEPTH`] per segment.
pub struct Redis {
    conn_no: u32,
    next: u32,
    commands: u32,
    reqs: Vec<u8>,
    reps: Vec<u8>,
}

impl Redis {
    /// Connection `conn_no` with `commands` commands.
    pub fn new(conn_no: u32, commands: u32) -> Self {
        Self { conn_no, next: 0, commands, reqs: Vec::new(), reps: Vec::new() }
    }
}

impl Session for Redis {
    fn step(&mut self, conn: &mut Conn, w: &mut Writer) -> Option<u64> {
        if self.next >= self.commands {
            return None;
        }
        self.reqs.clear();
        self.reps.clear();
        let end = (self.next + REDIS_DEPTH).min(self.commands);
        for j in self.next..end {
            let (q, r) = super::redis_synth::exchange(self.conn_no, j);
            self.reqs.extend(q);
            self.reps.extend(r);
        }
        conn.client_sends(w, &self.reqs);
        conn.server_sends(w, &self.reps);
        let tx = u64::from(end - self.next);
        self.next = end;
        Some(tx)
    }
}
