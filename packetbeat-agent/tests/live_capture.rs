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
    None
}

fn options(port: u16) -> LiveOptions {
    LiveOptions {
        device: "lo".to_owned(),
        ports: vec![port],
        snaplen: 65_535,
        ring_bytes: 4 << 20,
    }
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
    while Instant::now() < deadline
        && done_at.is_none_or(|t| t.elapsed() < Duration::from_millis(300))
    {
        source
            .poll(Duration::from_millis(50), &mut |p: RawPacket<'_>| {
                assert_eq!(p.link, LinkType::Ethernet);
                assert!(p.data.len() <= p.wire_len as usize);
                assert!(
                    p.ts.nanos() > 1_600_000_000_000_000_000,
                    "timestamp {:?} is not wall-clock",
                    p.ts
                );
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
        TransportSlice::Tcp(tcp) => Some((
            tcp.source_port(),
            tcp.destination_port(),
            tcp.payload().to_vec(),
        )),
        _ => None,
    }
}

fn count(seen: &[Seen], src: u16, dst: u16, payload: &[u8]) -> usize {
    seen.iter()
        .filter(|s| s.0 == src && s.1 == dst && s.2 == payload)
        .count()
}

fn touches(seen: &[Seen], port: u16) -> usize {
    seen.iter().filter(|s| s.0 == port || s.1 == port).count()
}

/// Checks that `selected` is captured exactly once per direction and `other` not at all.
fn check_selection(
    source: &mut dyn PacketSource,
    selected: &TcpListener,
    other: &TcpListener,
    tag: &str,
) {
    let sel = selected.local_addr().unwrap().port();
    let oth = other.local_addr().unwrap().port();
    let (other_req, other_resp) = exchange(other, tag);
    let (request, response) = exchange(selected, tag);
    let seen = collect(source, &[&request, &response]);
    let from_client = seen
        .iter()
        .find(|s| s.2 == request)
        .map(|s| s.0)
        .expect("request not captured");
    assert_eq!(
        count(&seen, from_client, sel, &request),
        1,
        "request on {sel}: {seen:?}"
    );
    assert_eq!(
        count(&seen, sel, from_client, &response),
        1,
        "response on {sel}: {seen:?}"
    );
    assert_eq!(
        touches(&seen, oth),
        0,
        "decoy port {oth} captured: {seen:?}"
    );
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
    let mut second =
        AfPacketSource::open(&options(port), Some(group)).expect("second fanout member");
    let (request, response) = exchange(&listener, "fanout");
    let seen_first = collect(&mut first, &[]);
    let seen_second = collect(&mut second, &[]);
    let member = |payload: &[u8]| {
        (
            seen_first.iter().filter(|s| s.2 == payload).count(),
            seen_second.iter().filter(|s| s.2 == payload).count(),
        )
    };
    // Each direction reaches exactly one member of the group, once.
    let (req, resp) = (member(&request), member(&response));
    assert_eq!(
        req.0 + req.1,
        1,
        "request: {seen_first:?} / {seen_second:?}"
    );
    assert_eq!(
        resp.0 + resp.1,
        1,
        "response: {seen_first:?} / {seen_second:?}"
    );
    eprintln!("fanout members (first, second): request {req:?}, response {resp:?}");
}
