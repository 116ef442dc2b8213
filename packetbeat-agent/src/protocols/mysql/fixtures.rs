//! Test-only: MySQL wire messages built byte by byte (packets, OK/ERR/EOF, result sets, the
//! handshake, prepared-statement commands) for the stream tests.

pub(super) fn pkt(seq: u8, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap();
    let mut v = len.to_le_bytes()[..3].to_vec();
    v.push(seq);
    v.extend_from_slice(payload);
    v
}

pub(super) fn lenenc(s: &[u8]) -> Vec<u8> {
    let mut v = match s.len() {
        n @ 0..=250 => vec![u8::try_from(n).unwrap()],
        n @ 251..=0xffff => vec![0xfc, n as u8, (n >> 8) as u8],
        n @ 0x1_0000..=0xff_ffff => vec![0xfd, n as u8, (n >> 8) as u8, (n >> 16) as u8],
        n => {
            let mut v = vec![0xfe];
            v.extend_from_slice(&(n as u64).to_le_bytes());
            v
        }
    };
    v.extend_from_slice(s);
    v
}

pub(super) fn query(sql: &str) -> Vec<u8> {
    let mut p = vec![0x03];
    p.extend_from_slice(sql.as_bytes());
    pkt(0, &p)
}

pub(super) fn ok(seq: u8, affected: u8, insert_id: u8, status: u16) -> Vec<u8> {
    let mut p = vec![0x00, affected, insert_id];
    p.extend_from_slice(&status.to_le_bytes());
    p.extend_from_slice(&[0, 0]);
    pkt(seq, &p)
}

pub(super) fn eof(seq: u8, status: u16) -> Vec<u8> {
    let mut p = vec![0xfe, 0, 0];
    p.extend_from_slice(&status.to_le_bytes());
    pkt(seq, &p)
}

pub(super) fn ok_fe(seq: u8, status: u16) -> Vec<u8> {
    let mut p = vec![0xfe, 0, 0];
    p.extend_from_slice(&status.to_le_bytes());
    p.extend_from_slice(&[0, 0]);
    pkt(seq, &p)
}

pub(super) fn err(seq: u8, code: u16, state: &str, msg: &str) -> Vec<u8> {
    let mut p = vec![0xff];
    p.extend_from_slice(&code.to_le_bytes());
    p.push(b'#');
    p.extend_from_slice(state.as_bytes());
    p.extend_from_slice(msg.as_bytes());
    pkt(seq, &p)
}

pub(super) fn column(seq: u8, schema: &str, table: &str, name: &str, field_type: u8) -> Vec<u8> {
    let mut p = lenenc(b"def");
    for s in [schema, table, table, name, name] {
        p.extend(lenenc(s.as_bytes()));
    }
    p.extend_from_slice(&[0x0c, 0x21, 0, 0xff, 0, 0, 0, field_type, 0, 0, 0, 0, 0]);
    pkt(seq, &p)
}

pub(super) fn text_row(seq: u8, cells: &[Option<&str>]) -> Vec<u8> {
    let mut p = Vec::new();
    for c in cells {
        match c {
            Some(s) => p.extend(lenenc(s.as_bytes())),
            None => p.push(0xfb),
        }
    }
    pkt(seq, &p)
}

/// A text result set: count, columns, (EOF), rows, terminator; sequence ids from 1.
pub(super) fn result_set(
    cols: &[(&str, &str, &str)],
    rows: &[Vec<Option<&str>>],
    deprecate_eof: bool,
    status: u16,
) -> Vec<u8> {
    let mut out = pkt(1, &[u8::try_from(cols.len()).unwrap()]);
    let mut seq = 2u8;
    for (schema, table, name) in cols {
        out.extend(column(seq, schema, table, name, 0xfd));
        seq += 1;
    }
    if !deprecate_eof {
        out.extend(eof(seq, 0x0002));
        seq += 1;
    }
    for r in rows {
        out.extend(text_row(seq, r));
        seq += 1;
    }
    out.extend(if deprecate_eof { ok_fe(seq, status) } else { eof(seq, status) });
    out
}

pub(super) fn handshake() -> Vec<u8> {
    let mut p = vec![0x0a];
    p.extend_from_slice(b"10.11.6-MariaDB\0");
    p.extend_from_slice(&[1, 0, 0, 0]);
    p.extend_from_slice(b"abcdefgh\0");
    p.extend_from_slice(&[0xff, 0xf7, 0x21, 0x02, 0x00, 0xff, 0x81, 21]);
    p.extend_from_slice(&[0; 10]);
    p.extend_from_slice(b"ijklmnopqrst\0mysql_native_password\0");
    pkt(0, &p)
}

pub(super) fn handshake_response(caps: u32) -> Vec<u8> {
    let mut p = caps.to_le_bytes().to_vec();
    p.extend_from_slice(&[0, 0, 0, 1, 0x21]);
    p.extend_from_slice(&[0; 23]);
    p.extend_from_slice(b"root\0\x14");
    p.extend_from_slice(&[7; 20]);
    p.extend_from_slice(b"mysql_native_password\0");
    pkt(1, &p)
}

pub(super) fn prepare(sql: &str) -> Vec<u8> {
    let mut p = vec![0x16];
    p.extend_from_slice(sql.as_bytes());
    pkt(0, &p)
}

/// A classic (EOF) prepare response for `params` placeholders and `cols` columns.
pub(super) fn prepare_ok(id: u32, params: u16, cols: u16, deprecate_eof: bool) -> Vec<u8> {
    let mut p = vec![0];
    p.extend_from_slice(&id.to_le_bytes());
    p.extend_from_slice(&cols.to_le_bytes());
    p.extend_from_slice(&params.to_le_bytes());
    p.extend_from_slice(&[0, 0, 0]);
    let mut out = pkt(1, &p);
    let mut seq = 2;
    for (n, table) in [(params, ""), (cols, "t")] {
        for i in 0..n {
            out.extend(column(seq, "db", table, &format!("c{i}"), 0x08));
            seq += 1;
        }
        if n > 0 && !deprecate_eof {
            out.extend(eof(seq, 2));
            seq += 1;
        }
    }
    out
}

pub(super) fn execute(id: u32, types: &[u8], values: &[u8], null_bitmap: u8) -> Vec<u8> {
    let mut p = vec![0x17];
    p.extend_from_slice(&id.to_le_bytes());
    p.extend_from_slice(&[0, 1, 0, 0, 0]);
    if !types.is_empty() {
        p.push(null_bitmap);
        p.push(1);
        for t in types {
            p.extend_from_slice(&[*t, 0]);
        }
        p.extend_from_slice(values);
    }
    pkt(0, &p)
}
