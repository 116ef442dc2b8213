//! Deterministic synthetic captures for benchmarks and allocation tests: HTTP/1.1 keep-alive
//! connections with a full handshake, requests, responses split into body segments, ACKs and FINs.
//! Built byte by byte (Ethernet/IPv4/TCP, classic pcap), no network involved.

#![allow(dead_code, reason = "each user needs a different part")]

/// Shape of the capture.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    /// Connections (sequential, distinct client ports).
    pub conns: u32,
    /// Requests per connection.
    pub requests: u32,
    /// Body segments per response.
    pub body_segments: u32,
    /// Bytes per body segment.
    pub segment_size: usize,
}

/// A classic-pcap writer of Ethernet/IPv4/TCP frames, `tick_us` apart.
pub struct Writer {
    /// The file so far (with a sink: what has not been spilled to it yet).
    pub out: Vec<u8>,
    ts_us: u64,
    tick_us: u64,
    /// Frames written.
    pub packets: u64,
    /// Sum of the frames' lengths (what a NIC would have seen, without pcap headers).
    pub frame_bytes: u64,
    /// Where `out` is spilled once it holds [`SPILL_BYTES`], so multi-GB captures stay out of memory.
    sink: Option<std::io::BufWriter<std::fs::File>>,
    /// Bytes already spilled to the sink.
    spilled: u64,
}

/// Buffered bytes after which a file-backed writer spills `out`.
const SPILL_BYTES: usize = 4 << 20;

impl Writer {
    /// A pcap file with its global header; frames 7 µs apart.
    pub fn pcap() -> Self {
        Self::pcap_ticking(7)
    }

    /// A pcap file with its global header; frames `tick_us` apart.
    pub fn pcap_ticking(tick_us: u64) -> Self {
        let mut w = Self { out: Vec::new(), ts_us: 0, tick_us, packets: 0, frame_bytes: 0, sink: None, spilled: 0 };
        w.out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        w.out.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        w.out.extend_from_slice(&65_535u32.to_le_bytes());
        w.out.extend_from_slice(&1u32.to_le_bytes());
        w
    }

    /// A pcap writer that streams to `path` (created or truncated) instead of growing `out`.
    pub fn to_file(path: &std::path::Path, tick_us: u64) -> std::io::Result<Self> {
        let mut w = Self::pcap_ticking(tick_us);
        w.out.reserve(SPILL_BYTES + 70_000);
        w.sink = Some(std::io::BufWriter::new(std::fs::File::create(path)?));
        Ok(w)
    }

    /// Flushes a file-backed writer; returns the file's size in bytes.
    pub fn finish(mut self) -> std::io::Result<u64> {
        use std::io::Write;
        self.spill()?;
        if let Some(mut sink) = self.sink.take() {
            sink.flush()?;
        }
        Ok(self.spilled + self.out.len() as u64)
    }

    fn spill(&mut self) -> std::io::Result<()> {
        use std::io::Write;
        if let Some(sink) = self.sink.as_mut() {
            sink.write_all(&self.out)?;
            self.spilled += self.out.len() as u64;
            self.out.clear();
        }
        Ok(())
    }

    /// One frame from `src` to `dst`.
    pub fn frame(&mut self, src: ([u8; 4], u16), dst: ([u8; 4], u16), seq: u32, ack: u32, flags: u8, payload: &[u8]) {
        if self.out.len() >= SPILL_BYTES && self.sink.is_some() {
            self.spill().expect("write capture file");
        }
        let len = 54 + payload.len();
        self.ts_us += self.tick_us;
        self.packets += 1;
        self.frame_bytes += len as u64;
        let secs = 1_700_000_000 + self.ts_us / 1_000_000;
        self.out.extend_from_slice(&u32::try_from(secs).unwrap_or(0).to_le_bytes());
        self.out.extend_from_slice(&u32::try_from(self.ts_us % 1_000_000).unwrap_or(0).to_le_bytes());
        let l = u32::try_from(len).unwrap_or(u32::MAX);
        self.out.extend_from_slice(&l.to_le_bytes());
        self.out.extend_from_slice(&l.to_le_bytes());
        self.out.extend_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00]);
        let total = u16::try_from(40 + payload.len()).unwrap_or(u16::MAX);
        self.out.extend_from_slice(&[0x45, 0]);
        self.out.extend_from_slice(&total.to_be_bytes());
        self.out.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0]);
        self.out.extend_from_slice(&src.0);
        self.out.extend_from_slice(&dst.0);
        self.out.extend_from_slice(&src.1.to_be_bytes());
        self.out.extend_from_slice(&dst.1.to_be_bytes());
        self.out.extend_from_slice(&seq.to_be_bytes());
        self.out.extend_from_slice(&ack.to_be_bytes());
        self.out.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        self.out.extend_from_slice(payload);
    }
}

/// TCP flags.
pub const SYN: u8 = 0x02;
/// TCP flags.
pub const ACK: u8 = 0x10;
/// TCP flags.
pub const PSH_ACK: u8 = 0x18;
/// TCP flags.
pub const FIN_ACK: u8 = 0x11;

/// The capture and how many packets and transactions it holds.
pub fn http_keepalive(spec: Spec) -> (Vec<u8>, u64, u64) {
    let mut w = Writer::pcap();
    let transactions = http_keepalive_into(&mut w, spec);
    let packets = w.packets;
    (w.out, packets, transactions)
}

/// Writes the connections of [`http_keepalive`] into `w`; returns the transactions written.
pub fn http_keepalive_into(w: &mut Writer, spec: Spec) -> u64 {
    let body_len = spec.segment_size * spec.body_segments as usize;
    let body = vec![b'x'; spec.segment_size];
    let server = ([10, 0, 0, 2], 80u16);
    for c in 0..spec.conns {
        let client =
            ([10, 0, 1, u8::try_from(c % 200).unwrap_or(0) + 1], 10_000 + u16::try_from(c % 50_000).unwrap_or(0));
        let (mut cs, mut ss) = (1000u32, 5000u32);
        w.frame(client, server, cs, 0, SYN, b"");
        w.frame(server, client, ss, cs + 1, SYN | ACK, b"");
        cs += 1;
        ss += 1;
        w.frame(client, server, cs, ss, ACK, b"");
        for r in 0..spec.requests {
            let req = format!(
                "GET /item/{r}?id={c} HTTP/1.1\r\nHost: bench.local\r\nUser-Agent: synth/1.0\r\nAccept: */*\r\n\r\n"
            );
            w.frame(client, server, cs, ss, PSH_ACK, req.as_bytes());
            cs += u32::try_from(req.len()).unwrap_or(0);
            let head = format!(
                "HTTP/1.1 200 OK\r\nServer: synth\r\nContent-Type: text/plain\r\nContent-Length: {body_len}\r\n\r\n"
            );
            w.frame(server, client, ss, cs, PSH_ACK, head.as_bytes());
            ss += u32::try_from(head.len()).unwrap_or(0);
            for _ in 0..spec.body_segments {
                w.frame(server, client, ss, cs, PSH_ACK, &body);
                ss += u32::try_from(body.len()).unwrap_or(0);
            }
            w.frame(client, server, cs, ss, ACK, b"");
        }
        w.frame(client, server, cs, ss, FIN_ACK, b"");
        w.frame(server, client, ss, cs + 1, FIN_ACK, b"");
        w.frame(client, server, cs + 1, ss + 1, ACK, b"");
    }
    u64::from(spec.conns) * u64::from(spec.requests)
}
