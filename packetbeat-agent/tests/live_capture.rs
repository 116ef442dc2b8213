//! Live capture on loopback with the real kernel program, for both delivery modes.
//!
//! Each test opens a source on `lo` selecting one port, talks TCP over that port and over a decoy
//! port, and checks that the selected port's payloads arrive exactly once per direction (loopback
//! shows every frame twice to a packet socket; the filter must drop the outgoing copy) and that the
//! decoy never shows up. Then it moves the selection to the decoy port without re-attaching and
//! checks the switch. Needs root (CAP_BPF + CAP_NET_RAW); skipped with a printed reason otherwise.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use etherparse::{SlicedPacket, TransportSlice};
use packetbeat_agent::capture::af_packet::AfPacketSource;
use packetbeat_agent::capture::ebpf::EbpfSource;
use packetbeat_agent::capture::{LiveOptions, PacketSource, RawPacket};
use packetbeat_agent::packet::LinkType;

/// A TCP payload seen by the source: (source port, destination port, payload).
type Seen = (u16, u16, Vec<u8>);

/// A source that can change its ports, as a trait object.
trait SelectableSource {
    fn as_source(&mut self) -> &mut dyn PacketSource;
    fn select(&mut self, ports: &[u16]);
}

impl SelectableSource for EbpfSource {
    fn as_source(&mut self) -> &mut dyn PacketSource {
        self
    }
    fn select(&mut self, ports: &[u16]) {
        self.set_ports(ports).expect("set_ports");
    }
}

impl SelectableSource for AfPacketSource {
    fn as_source(&mut self) -> &mut dyn PacketSource {
        self
    }
    fn select(&mut self, ports: &[u16]) {
        self.set_ports(ports).expect("set_ports");
    }
}

fn skip_reason() -> Option<&'static str> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("live capture tests need root (CAP_BPF and CAP_NET_RAW)");
    }
    if !packetbeat_agent::capture::live::kernel_program_embedded() {
        return Some("built with PACKETBEAT_SKIP_EBPF=1, so there is no kernel program to test");
    }
    None
}

fn options(port: u16) -> LiveOptions {
    LiveOptions { device: "lo".to_owned(), ports: vec![port], snaplen: 65_535, ring_bytes: 4 << 20 }
}

/// One request/response exchange over `listener`; returns (request, response) payloads.
fn exchange(listener: &TcpListener, tag: &str) -> (Vec<u8>, Vec<u8>) {
    let port = listener.local_addr().unwrap().port();
    let request = format!("REQUEST {tag} to {port}").into_bytes();
    let response = format!("RESPONSE {tag} from {port}").into_bytes();
    let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (mut server, _) = listener.accept().unwrap();
    client.write_all(&request).unwrap();
    let mut buf = vec![0; request.len()];
    server.read_exact(&mut buf).unwrap();
    server.write_all(&response).unwrap();
    let mut buf = vec![0; response.len()];
    client.read_exact(&mut buf).unwrap();
    (request, response)
}

/// Polls until every `wanted` payload was seen, then a little longer to catch duplicates.
fn collect(source: &mut dyn PacketSource, wanted: &[&[u8]]) -> Vec<Seen> {
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut done_at: Option<Instant> = None;
    while Instant::now() < deadline && done_at.is_none_or(|t| t.elapsed() < Duration::from_millis(300)) {
        source
            .poll(Duration::from_millis(50), &mut |p: RawPacket<'_>| {
                assert_eq!(p.link, LinkType::Ethernet);
                assert!(p.data.len() <= p.wire_len as usize);
                assert!(p.ts.nanos() > 1_600_000_000_000_000_000, "timestamp {:?} is not wall-clock", p.ts);
                if let Some(s) = decode(p.data) {
                    seen.push(s);
                }
            })
            .expect("poll");
        if done_at.is_none() && wanted.iter().all(|w| seen.iter().any(|s| s.2 == *w)) {
            done_at = Some(Instant::now());
        }
    }
    seen
}

fn decode(frame: &[u8]) -> Option<Seen> {
    let packet = SlicedPacket::from_ethernet(frame).ok()?;
    match packet.transport? {
        TransportSlice::Tcp(tcp) => Some((tcp.source_port(), tcp.destination_port(), tcp.payload().to_vec())),
        _ => None,
    }
}

fn count(seen: &[Seen], src: u16, dst: u16, payload: &[u8]) -> usize {
    seen.iter().filter(|s| s.0 == src && s.1 == dst && s.2 == payload).count()
}

fn touches(seen: &[Seen], port: u16) -> usize {
    seen.iter().filter(|s| s.0 == port || s.1 == port).count()
}

/// Checks that `selected` is captured exactly once per direction and `other` not at all.
fn check_selection(source: &mut dyn PacketSource, selected: &TcpListener, other: &TcpListener, tag: &str) {
    let sel = selected.local_addr().unwrap().port();
    let oth = other.local_addr().unwrap().port();
    let (other_req, other_resp) = exchange(other, tag);
    let (request, response) = exchange(selected, tag);
    let seen = collect(source, &[&request, &response]);
    let from_client = seen.iter().find(|s| s.2 == request).map(|s| s.0).expect("request not captured");
    assert_eq!(count(&seen, from_client, sel, &request), 1, "request on {sel}: {seen:?}");
    assert_eq!(count(&seen, sel, from_client, &response), 1, "response on {sel}: {seen:?}");
    assert_eq!(touches(&seen, oth), 0, "decoy port {oth} captured: {seen:?}");
    assert!(!seen.iter().any(|s| s.2 == other_req || s.2 == other_resp));
}

fn run(open: impl FnOnce(&LiveOptions) -> Box<dyn SelectableSource>) {
    if let Some(reason) = skip_reason() {
        eprintln!("skipped: {reason}");
        return;
    }
    let port_a = TcpListener::bind("127.0.0.1:0").unwrap();
    let port_b = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = port_a.local_addr().unwrap().port();
    let b = port_b.local_addr().unwrap().port();
    let mut source = open(&options(a));
    check_selection(source.as_source(), &port_a, &port_b, "first");
    source.select(&[b]);
    check_selection(source.as_source(), &port_b, &port_a, "switched");
    let counters = source.as_source().counters();
    eprintln!("counters: {counters:?}");
    let get = |name: &str| counters.iter().find(|c| c.0 == name).map(|c| c.1);
    assert!(get("kernel.matched").unwrap() >= 4, "{counters:?}");
    assert!(get("kernel.not_matched").unwrap() >= 4, "{counters:?}");
    assert!(get("kernel.seen").unwrap() >= get("kernel.matched").unwrap());
}

#[test]
fn ebpf_ring_captures_selected_port_once_per_direction() {
    run(|opts| Box::new(EbpfSource::open(opts).expect("open eBPF source")));
}

#[test]
fn af_packet_ring_captures_selected_port_once_per_direction() {
    run(|opts| Box::new(AfPacketSource::open(opts, None).expect("open AF_PACKET source")));
}

#[test]
fn af_packet_fanout_group_accepts_several_sockets() {
    if let Some(reason) = skip_reason() {
        eprintln!("skipped: {reason}");
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let group = port; // unique enough for this host during the test
    let mut first = AfPacketSource::open(&options(port), Some(group)).expect("first fanout member");
    let mut second = AfPacketSource::open(&options(port), Some(group)).expect("second fanout member");
    let (request, response) = exchange(&listener, "fanout");
    let seen_first = collect(&mut first, &[]);
    let seen_second = collect(&mut second, &[]);
    let member = |payload: &[u8]| {
        (seen_first.iter().filter(|s| s.2 == payload).count(), seen_second.iter().filter(|s| s.2 == payload).count())
    };
    // Each direction reaches exactly one member of the group, once.
    let (req, resp) = (member(&request), member(&response));
    assert_eq!(req.0 + req.1, 1, "request: {seen_first:?} / {seen_second:?}");
    assert_eq!(resp.0 + resp.1, 1, "response: {seen_first:?} / {seen_second:?}");
    eprintln!("fanout members (first, second): request {req:?}, response {resp:?}");
}

/// Frames injected on `lo` through a raw packet socket, to reach the parser paths that loopback TCP
/// never produces: VLAN tags, IPv4 options and fragments, IPv6 extension headers, truncation.
mod injected {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    use super::*;

    const SNAPLEN: u32 = 200;
    /// Not a local address and not our MAC: the IP layer drops these frames at once (PACKET_OTHERHOST).
    const DST_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];

    fn tcp(dst_port: u16, payload: &[u8]) -> Vec<u8> {
        let mut t = Vec::new();
        t.extend_from_slice(&40_000u16.to_be_bytes());
        t.extend_from_slice(&dst_port.to_be_bytes());
        t.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
        t.extend_from_slice(payload);
        t
    }

    fn ipv4(options: &[u8], frag: u16, l4: &[u8]) -> Vec<u8> {
        let ihl = 5 + u8::try_from(options.len() / 4).unwrap();
        let total = u16::try_from(usize::from(ihl) * 4 + l4.len()).unwrap();
        let mut p = vec![0x40 | ihl, 0];
        p.extend_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&[0, 1]);
        p.extend_from_slice(&frag.to_be_bytes());
        p.extend_from_slice(&[64, 6, 0, 0, 10, 0, 0, 1, 10, 255, 255, 1]);
        p.extend_from_slice(options);
        p.extend_from_slice(l4);
        p
    }

    /// IPv6 with `ext` = (next header, bytes) extension headers in order, then TCP.
    fn ipv6(ext: &[(u8, Vec<u8>)], l4: &[u8]) -> Vec<u8> {
        let len: usize = ext.iter().map(|e| e.1.len()).sum::<usize>() + l4.len();
        let first = ext.first().map_or(6, |e| e.0);
        let mut p = vec![0x60, 0, 0, 0];
        p.extend_from_slice(&u16::try_from(len).unwrap().to_be_bytes());
        p.extend_from_slice(&[first, 64]);
        p.extend_from_slice(&[0xfd; 16]);
        p.extend_from_slice(&[0xfe; 16]);
        for (i, (_, bytes)) in ext.iter().enumerate() {
            let mut h = bytes.clone();
            h[0] = ext.get(i + 1).map_or(6, |e| e.0);
            p.extend_from_slice(&h);
        }
        p.extend_from_slice(l4);
        p
    }

    fn eth(tags: &[u16], ethertype: u16, l3: &[u8]) -> Vec<u8> {
        let mut f = DST_MAC.to_vec();
        f.extend_from_slice(&[2, 0, 0, 0, 0, 2]);
        for &tpid in tags {
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&10u16.to_be_bytes());
        }
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(l3);
        f
    }

    fn send_on_lo(frames: &[Vec<u8>]) {
        // SAFETY: plain syscalls on a socket this function owns.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
        assert!(fd >= 0, "packet socket: {}", std::io::Error::last_os_error());
        // SAFETY: fd was just created.
        let sock = unsafe { OwnedFd::from_raw_fd(fd) };
        let name = std::ffi::CString::new("lo").unwrap();
        // SAFETY: valid C string; sockaddr_ll is plain data.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_ifindex = i32::try_from(unsafe { libc::if_nametoindex(name.as_ptr()) }).unwrap();
        addr.sll_halen = 6;
        for frame in frames {
            // SAFETY: frame and addr are valid for the lengths given.
            let n = unsafe {
                libc::sendto(
                    sock.as_raw_fd(),
                    frame.as_ptr().cast(),
                    frame.len(),
                    0,
                    std::ptr::from_ref(&addr).cast(),
                    u32::try_from(size_of::<libc::sockaddr_ll>()).unwrap(),
                )
            };
            assert_eq!(usize::try_from(n).ok(), Some(frame.len()), "{}", std::io::Error::last_os_error());
        }
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    fn check(source: &mut dyn PacketSource, port: u16) {
        let hbh = (0u8, vec![0, 0, 1, 4, 0, 0, 0, 0]);
        let dst_opts = (60u8, vec![0, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let routing = (43u8, vec![0, 0, 0, 0, 0, 0, 0, 0]);
        let frag_first = (44u8, vec![0, 0, 0, 1, 0, 0, 0, 7]);
        let frag_later = (44u8, vec![0, 0, 0x05, 0x00, 0, 0, 0, 7]);
        let mut big = b"big-payload".to_vec();
        big.resize(1000, b'x');
        let wanted: Vec<(&str, Vec<u8>)> = vec![
            ("qinq", eth(&[0x88a8, 0x8100], 0x0800, &ipv4(&[], 0, &tcp(port, b"qinq-v4")))),
            ("dot1q", eth(&[0x8100], 0x0800, &ipv4(&[], 0, &tcp(port, b"dot1q-v4")))),
            ("v4opts", eth(&[], 0x0800, &ipv4(&[1, 1, 1, 0], 0x4000, &tcp(port, b"v4-options")))),
            ("v4frag0", eth(&[], 0x0800, &ipv4(&[], 0x2000, &tcp(port, b"v4-first-frag")))),
            ("v6ext", eth(&[], 0x86dd, &ipv6(&[hbh, routing, dst_opts], &tcp(port, b"v6-ext-chain")))),
            ("v6frag0", eth(&[], 0x86dd, &ipv6(&[frag_first], &tcp(port, b"v6-first-frag")))),
            ("big", eth(&[], 0x0800, &ipv4(&[], 0, &tcp(port, &big)))),
        ];
        let unwanted = vec![
            eth(&[], 0x0800, &ipv4(&[], 0x0010, &tcp(port, b"v4-later-frag"))),
            eth(&[], 0x86dd, &ipv6(&[frag_later], &tcp(port, b"v6-later-frag"))),
            eth(&[], 0x0800, &ipv4(&[], 0, &tcp(port.wrapping_add(1), b"other-port"))),
            eth(&[], 0x0806, &[0; 28]),
            eth(&[], 0x0800, &[0x45, 0, 0]),
        ];
        let mut frames: Vec<Vec<u8>> = wanted.iter().map(|w| w.1.clone()).collect();
        frames.extend(unwanted);
        send_on_lo(&frames);

        let markers: [&[u8]; 9] = [
            b"qinq-v4",
            b"dot1q-v4",
            b"v4-options",
            b"v4-first-frag",
            b"v6-ext-chain",
            b"v6-first-frag",
            b"big-payload",
            b"v4-later-frag",
            b"v6-later-frag",
        ];
        let mut hits = [0usize; 9];
        let mut other = 0;
        let mut big_lens = None;
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline && hits[..7].contains(&0) {
            source
                .poll(Duration::from_millis(50), &mut |p| {
                    for (hit, marker) in hits.iter_mut().zip(markers) {
                        if contains(p.data, marker) {
                            *hit += 1;
                            if marker == b"big-payload" {
                                big_lens = Some((p.data.len(), p.wire_len));
                            }
                        }
                    }
                    other += usize::from(contains(p.data, b"other-port"));
                })
                .expect("poll");
        }
        // Catch late duplicates.
        let _ = source.poll(Duration::from_millis(200), &mut |p| {
            for (hit, marker) in hits.iter_mut().zip(markers) {
                *hit += usize::from(contains(p.data, marker));
            }
        });
        assert_eq!(hits, [1, 1, 1, 1, 1, 1, 1, 0, 0], "per marker: {:?}", markers.map(String::from_utf8_lossy));
        assert_eq!(other, 0);
        let big_frame_len = u32::try_from(wanted[6].1.len()).unwrap();
        assert_eq!(big_lens, Some((SNAPLEN as usize, big_frame_len)), "snaplen truncation");
        let counters = source.counters();
        let get = |name: &str| counters.iter().find(|c| c.0 == name).map_or(0, |c| c.1);
        assert!(get("kernel.fragment") >= 2, "{counters:?}");
        assert!(get("kernel.too_short") >= 1, "{counters:?}");
        assert!(get("kernel.not_ip") >= 1, "{counters:?}");
    }

    /// A one-page ring overflows when nobody reads it; every frame is either delivered or counted.
    #[test]
    fn ebpf_ring_full_is_counted() {
        if let Some(reason) = skip_reason() {
            eprintln!("skipped: {reason}");
            return;
        }
        const FRAMES: usize = 64;
        let port = port();
        let opts = LiveOptions { ring_bytes: 4096, snaplen: 2000, ..super::options(port) };
        let mut source = EbpfSource::open(&opts).expect("open eBPF source");
        let frame = eth(&[], 0x0800, &ipv4(&[], 0, &tcp(port, &[b'r'; 1000])));
        send_on_lo(&vec![frame; FRAMES]);
        let mut delivered = 0;
        let deadline = Instant::now() + Duration::from_millis(500);
        while Instant::now() < deadline {
            let _ = source.poll(Duration::from_millis(50), &mut |_| delivered += 1);
        }
        let counters = source.counters();
        let get = |name: &str| counters.iter().find(|c| c.0 == name).map_or(0, |c| c.1);
        let ring_full = usize::try_from(get("kernel.ring_full")).unwrap();
        assert!(ring_full > 0, "{counters:?}");
        assert_eq!(delivered + ring_full, FRAMES, "{counters:?}");
        assert_eq!(usize::try_from(get("kernel.matched")).unwrap(), delivered);
    }

    fn options(port: u16) -> LiveOptions {
        LiveOptions { snaplen: SNAPLEN, ..super::options(port) }
    }

    /// A port nobody listens on, unlikely to clash with the other tests.
    fn port() -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }

    #[test]
    fn ebpf_ring_parses_tags_options_extensions_and_truncates() {
        if let Some(reason) = skip_reason() {
            eprintln!("skipped: {reason}");
            return;
        }
        let port = port();
        check(&mut EbpfSource::open(&options(port)).expect("open eBPF source"), port);
    }

    #[test]
    fn af_packet_ring_parses_tags_options_extensions_and_truncates() {
        if let Some(reason) = skip_reason() {
            eprintln!("skipped: {reason}");
            return;
        }
        let port = port();
        check(&mut AfPacketSource::open(&options(port), None).expect("open AF_PACKET source"), port);
    }
}
