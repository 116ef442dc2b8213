//! Builds small pcap files byte by byte, for bad-input tests (no captured traffic needed).

/// A classic pcap (microseconds, little endian) with `linktype` and these frames.
#[must_use]
pub fn pcap(linktype: u32, frames: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&65_535u32.to_le_bytes());
    out.extend_from_slice(&linktype.to_le_bytes());
    for (i, f) in frames.iter().enumerate() {
        let len = u32::try_from(f.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&(1_700_000_000u32 + u32::try_from(i).unwrap_or(0)).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(f);
    }
    out
}

/// An Ethernet/IPv4/TCP frame (checksums left zero: the agent does not verify them).
#[must_use]
pub fn tcp_frame(src: ([u8; 4], u16), dst: ([u8; 4], u16), seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(54 + payload.len());
    f.extend_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00]);
    let total = u16::try_from(40 + payload.len()).unwrap_or(u16::MAX);
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&total.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0]);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.1.to_be_bytes());
    f.extend_from_slice(&dst.1.to_be_bytes());
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend_from_slice(&ack.to_be_bytes());
    f.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    f.extend_from_slice(payload);
    f
}

/// A deterministic pseudo-random byte string (xorshift).
#[must_use]
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect()
}

/// A classic pcap of Ethernet frames, each with its own time in microseconds since the epoch.
#[must_use]
pub fn pcap_timed(frames: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut out = pcap(1, &[]);
    for (us, f) in frames {
        let len = u32::try_from(f.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&u32::try_from(us / 1_000_000).unwrap_or(u32::MAX).to_le_bytes());
        out.extend_from_slice(&u32::try_from(us % 1_000_000).unwrap_or(0).to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(f);
    }
    out
}

/// One HTTP/1.1 exchange to put on the wire: request path, response status, response body length,
/// and the server's delay in microseconds.
#[derive(Clone, Debug)]
pub struct HttpExchange {
    /// Request path.
    pub path: String,
    /// Response status code.
    pub status: u16,
    /// Response body size.
    pub body: usize,
    /// Time from request to response, µs.
    pub delay_us: u64,
}

/// A capture of `exchanges`, one TCP connection each (handshake, request, response, FIN),
/// client 10.0.0.1 → server 10.0.0.2:80, starting at `start_us`.
#[must_use]
pub fn http_capture(exchanges: &[HttpExchange], start_us: u64) -> Vec<u8> {
    const SYN: u8 = 0x02;
    const ACK: u8 = 0x10;
    const PSH_ACK: u8 = 0x18;
    const FIN_ACK: u8 = 0x11;
    let mut frames = Vec::with_capacity(exchanges.len() * 7);
    let mut t = start_us;
    for (i, x) in exchanges.iter().enumerate() {
        let c = ([10, 0, 0, 1], 10_000 + u16::try_from(i % 50_000).unwrap_or(0));
        let s = ([10, 0, 0, 2], 80);
        let req = format!("GET {} HTTP/1.1\r\nHost: example.com\r\nUser-Agent: pb-test\r\n\r\n", x.path).into_bytes();
        let mut resp =
            format!("HTTP/1.1 {} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n", x.status, x.body)
                .into_bytes();
        resp.extend(std::iter::repeat_n(b'x', x.body));
        let (cs, ss) = (1000u32, 5000u32);
        let rl = u32::try_from(req.len()).unwrap_or(0);
        let pl = u32::try_from(resp.len()).unwrap_or(0);
        frames.push((t, tcp_frame(c, s, cs, 0, SYN, &[])));
        frames.push((t + 10, tcp_frame(s, c, ss, cs + 1, SYN | ACK, &[])));
        frames.push((t + 20, tcp_frame(c, s, cs + 1, ss + 1, ACK, &[])));
        frames.push((t + 30, tcp_frame(c, s, cs + 1, ss + 1, PSH_ACK, &req)));
        frames.push((t + 30 + x.delay_us, tcp_frame(s, c, ss + 1, cs + 1 + rl, PSH_ACK, &resp)));
        frames.push((t + 40 + x.delay_us, tcp_frame(c, s, cs + 1 + rl, ss + 1 + pl, FIN_ACK, &[])));
        frames.push((t + 50 + x.delay_us, tcp_frame(s, c, ss + 1 + pl, cs + 2 + rl, FIN_ACK, &[])));
        t += 1000;
    }
    frames.sort_by_key(|f| f.0);
    pcap_timed(&frames)
}
