//! Tests for the capture-file reader: files are built byte by byte here (both byte orders, both
//! timestamp resolutions, several pcapng interfaces), then cut, corrupted and replayed.

use std::io::{self, Cursor};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::packet::decode;

/// A frame as the callback saw it, copied out for the assertions.
#[derive(Debug, PartialEq)]
struct Seen {
    ts: u64,
    link: LinkType,
    data: Vec<u8>,
    wire_len: u32,
}

fn pcap_header(big: bool, nanos: bool, linktype: u32) -> Vec<u8> {
    let magic: u32 = if nanos { 0xA1B2_3C4D } else { 0xA1B2_C3D4 };
    let fields: [u32; 4] = [0, 0, 65_535, linktype];
    let mut v = Vec::new();
    let put32 = |v: &mut Vec<u8>, x: u32| {
        v.extend_from_slice(&if big { x.to_be_bytes() } else { x.to_le_bytes() });
    };
    put32(&mut v, magic);
    for x in [2_u16, 4] {
        v.extend_from_slice(&if big { x.to_be_bytes() } else { x.to_le_bytes() });
    }
    for x in fields {
        put32(&mut v, x);
    }
    v
}

fn pcap_record(big: bool, secs: u32, frac: u32, data: &[u8], wire_len: u32) -> Vec<u8> {
    let mut v = Vec::new();
    let caplen = u32::try_from(data.len()).unwrap();
    for x in [secs, frac, caplen, wire_len] {
        v.extend_from_slice(&if big { x.to_be_bytes() } else { x.to_le_bytes() });
    }
    v.extend_from_slice(data);
    v
}

/// Builds a pcapng file block by block.
struct Ng {
    big: bool,
    out: Vec<u8>,
}

impl Ng {
    fn new(big: bool) -> Self {
        let mut ng = Self { big, out: Vec::new() };
        ng.shb();
        ng
    }

    fn u16(&self, x: u16) -> [u8; 2] {
        if self.big {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        }
    }

    fn u32(&self, x: u32) -> [u8; 4] {
        if self.big {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        }
    }

    fn block(&mut self, block_type: u32, body: &[u8]) -> &mut Self {
        let mut body = body.to_vec();
        body.resize(body.len().next_multiple_of(4), 0);
        let len = u32::try_from(body.len() + 12).unwrap();
        let (t, l) = (self.u32(block_type), self.u32(len));
        self.out.extend_from_slice(&t);
        self.out.extend_from_slice(&l);
        self.out.extend_from_slice(&body);
        self.out.extend_from_slice(&l);
        self
    }

    fn shb(&mut self) -> &mut Self {
        let body = [&self.u32(0x1A2B_3C4D)[..], &self.u16(1), &self.u16(0), &[0xFF; 8]].concat();
        self.block(0x0A0D_0D0A, &body)
    }

    fn idb(&mut self, linktype: u16, snaplen: u32, options: &[(u16, &[u8])]) -> &mut Self {
        let mut body = [&self.u16(linktype)[..], &[0, 0], &self.u32(snaplen)].concat();
        for (code, value) in options {
            body.extend_from_slice(&self.u16(*code));
            body.extend_from_slice(&self.u16(u16::try_from(value.len()).unwrap()));
            body.extend_from_slice(value);
            body.resize(body.len().next_multiple_of(4), 0);
        }
        if !options.is_empty() {
            body.extend_from_slice(&[0; 4]);
        }
        self.block(1, &body)
    }

    fn epb(&mut self, if_id: u32, units: u64, data: &[u8], wire_len: u32) -> &mut Self {
        let caplen = u32::try_from(data.len()).unwrap();
        let body = [
            &self.u32(if_id)[..],
            &self.u32(u32::try_from(units >> 32).unwrap()),
            &self.u32(u32::try_from(units & 0xFFFF_FFFF).unwrap()),
            &self.u32(caplen),
            &self.u32(wire_len),
            data,
        ]
        .concat();
        self.block(6, &body)
    }

    fn opb(&mut self, if_id: u16, units: u64, data: &[u8]) -> &mut Self {
        let caplen = u32::try_from(data.len()).unwrap();
        let body = [
            &self.u16(if_id)[..],
            &self.u16(0),
            &self.u32(u32::try_from(units >> 32).unwrap()),
            &self.u32(u32::try_from(units & 0xFFFF_FFFF).unwrap()),
            &self.u32(caplen),
            &self.u32(caplen),
            data,
        ]
        .concat();
        self.block(2, &body)
    }

    fn spb(&mut self, wire_len: u32, data: &[u8]) -> &mut Self {
        let body = [&self.u32(wire_len)[..], data].concat();
        self.block(3, &body)
    }

    fn bytes(&self) -> Vec<u8> {
        self.out.clone()
    }
}

fn source(bytes: Vec<u8>) -> Result<PcapFileSource, CaptureError> {
    PcapFileSource::from_reader(Cursor::new(bytes), "test.pcap")
}

/// Polls to the end, returning the frames and the batch sizes.
fn drain(src: &mut PcapFileSource) -> Result<(Vec<Seen>, Vec<usize>), CaptureError> {
    let mut seen = Vec::new();
    let mut batches = Vec::new();
    loop {
        let poll = src.poll(Duration::ZERO, &mut |p| {
            seen.push(Seen { ts: p.ts.0, link: p.link, data: p.data.to_vec(), wire_len: p.wire_len });
        })?;
        match poll {
            Poll::Packets(n) => batches.push(n),
            Poll::End => return Ok((seen, batches)),
            Poll::Idle => panic!("a file source is never idle"),
        }
    }
}

fn read_all(bytes: Vec<u8>) -> Vec<Seen> {
    drain(&mut source(bytes).unwrap()).unwrap().0
}

fn counter(src: &PcapFileSource, name: &str) -> u64 {
    src.counters().into_iter().find(|(n, _)| *n == name).unwrap().1
}

fn bad_file_message(result: Result<PcapFileSource, CaptureError>) -> String {
    match result {
        Err(CaptureError::BadFile(msg)) => msg,
        Err(other) => panic!("expected BadFile, got {other:?}"),
        Ok(_) => panic!("expected BadFile, got a source"),
    }
}

/// A reader that returns one byte per call, to exercise refills at every boundary.
struct Trickle(Cursor<Vec<u8>>);

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(1);
        self.0.read(&mut buf[..n])
    }
}

/// A temporary file, removed on drop (std only, to keep dependencies out of the lockfile).
struct TempFile(PathBuf);

impl TempFile {
    fn new(bytes: &[u8]) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("packetbeat-agent-pcap-{}-{n}.pcap", std::process::id()));
        std::fs::write(&path, bytes).unwrap();
        Self(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn pcap_both_byte_orders_and_resolutions() {
    for big in [false, true] {
        for nanos in [false, true] {
            let mut file = pcap_header(big, nanos, 1);
            file.extend(pcap_record(big, 1_700_000_000, 123_456, b"first", 5));
            file.extend(pcap_record(big, 1_700_000_001, 999_999, b"second", 1500));
            let file = TempFile::new(&file);
            let mut src = PcapFileSource::open(&file.0).unwrap();
            let (seen, batches) = drain(&mut src).unwrap();
            let scale = if nanos { 1 } else { 1_000 };
            assert_eq!(
                seen,
                [
                    Seen {
                        ts: 1_700_000_000_000_000_000 + 123_456 * scale,
                        link: LinkType::Ethernet,
                        data: b"first".to_vec(),
                        wire_len: 5
                    },
                    Seen {
                        ts: 1_700_000_001_000_000_000 + 999_999 * scale,
                        link: LinkType::Ethernet,
                        data: b"second".to_vec(),
                        wire_len: 1500
                    },
                ],
                "big {big} nanos {nanos}"
            );
            assert_eq!(batches, [2]);
            assert_eq!(src.counters(), [("pcap.packets", 2), ("pcap.bytes", 11), ("pcap.truncated_records", 0)]);
            // Stays at the end.
            assert_eq!(src.poll(Duration::ZERO, &mut |_| panic!("no more frames")).unwrap(), Poll::End);
        }
    }
}

#[test]
fn modified_pcap_records() {
    let mut file = pcap_header(false, false, 101);
    file[..4].copy_from_slice(&0xA1B2_CD34_u32.to_le_bytes());
    for data in [&b"abc"[..], b"defg"] {
        let mut rec = pcap_record(false, 1, 2, data, 4);
        rec.splice(16..16, [0xEE; 8]);
        file.extend(rec);
    }
    let seen = read_all(file);
    assert_eq!(seen.len(), 2);
    assert_eq!((seen[0].link, &seen[0].data[..]), (LinkType::Raw, &b"abc"[..]));
    assert_eq!(seen[1].data, b"defg");
}

#[test]
fn batches_of_256() {
    let mut file = pcap_header(false, false, 1);
    for i in 0..600_u32 {
        file.extend(pcap_record(false, i, 0, &i.to_le_bytes(), 4));
    }
    let (seen, batches) = drain(&mut source(file).unwrap()).unwrap();
    assert_eq!(batches, [256, 256, 88]);
    assert!(seen.iter().enumerate().all(|(i, s)| s.data == u32::try_from(i).unwrap().to_le_bytes()));
}

#[test]
fn large_records_across_buffer_refills() {
    let mut file = pcap_header(true, false, 1);
    let sizes = [PCAP_MAX_RECORD_LEN, 7, 200_000, PCAP_MAX_RECORD_LEN - 1, 1, 150_000];
    for (i, &n) in sizes.iter().enumerate() {
        let data: Vec<u8> = (0..n).map(|j| u8::try_from((i * 31 + j) % 251).unwrap()).collect();
        file.extend(pcap_record(true, 0, 0, &data, u32::try_from(n).unwrap()));
    }
    let mut src = source(file).unwrap();
    let (seen, _) = drain(&mut src).unwrap();
    assert_eq!(seen.len(), sizes.len());
    for (i, s) in seen.iter().enumerate() {
        assert_eq!(s.data.len(), sizes[i]);
        assert!(s.data.iter().enumerate().all(|(j, &b)| usize::from(b) == (i * 31 + j) % 251));
    }
    assert_eq!(counter(&src, "pcap.bytes"), sizes.iter().sum::<usize>() as u64);
}

/// Frames handed out with their buffer stay readable and unchanged while the reader goes on (it
/// moves to another buffer instead of writing one still held), and buffers come back into use once
/// released: what replay with several workers relies on.
#[test]
fn shared_frames_outlive_the_reads_after_them() {
    let frame =
        |i: usize| -> Vec<u8> { (0..100 + i % 1500).map(|j| u8::try_from((i * 7 + j) % 251).unwrap()).collect() };
    let mut pcap = pcap_header(false, false, 1);
    let mut ng = Ng::new(false);
    ng.shb().idb(1, 65_535, &[]);
    for i in 0..3_000 {
        pcap.extend(pcap_record(false, 0, 0, &frame(i), 2_000));
        ng.epb(0, 0, &frame(i), 2_000);
    }
    for bytes in [pcap, ng.bytes()] {
        for trickle in [false, true] {
            let mut src = if trickle {
                PcapFileSource::from_reader(Trickle(Cursor::new(bytes.clone())), "trickle").unwrap()
            } else {
                source(bytes.clone()).unwrap()
            };
            // Keep every frame's buffer until the end, as a slow worker would.
            let mut held: Vec<(Arc<[u8]>, usize, usize)> = Vec::new();
            while src.poll_shared(&mut |buf, at, p| held.push((Arc::clone(buf), at, p.data.len()))).unwrap()
                != Poll::End
            {}
            assert_eq!(held.len(), 3_000);
            for (i, (buf, at, len)) in held.iter().enumerate() {
                assert_eq!(&buf[*at..at + len], &frame(i)[..], "frame {i}, trickle {trickle}");
            }
        }
    }
    // Released at once (a fast worker): the reader keeps reusing a few buffers.
    let mut file = pcap_header(false, false, 1);
    for i in 0..3_000 {
        file.extend(pcap_record(false, 0, 0, &frame(i), 2_000));
    }
    let mut src = source(file).unwrap();
    let mut distinct: Vec<*const u8> = Vec::new();
    let mut n = 0;
    while src
        .poll_shared(&mut |buf, at, p| {
            assert_eq!(&buf[at..at + p.data.len()], &frame(n)[..]);
            n += 1;
            if !distinct.contains(&buf.as_ptr()) {
                distinct.push(buf.as_ptr());
            }
        })
        .unwrap()
        != Poll::End
    {}
    assert_eq!(n, 3_000);
    assert!(distinct.len() <= 2, "{} buffers for frames released at once", distinct.len());
}

#[test]
fn one_byte_reads() {
    let mut file = pcap_header(false, true, 1);
    file.extend(pcap_record(false, 3, 4, b"hello", 5));
    file.extend(pcap_record(false, 5, 6, b"world!", 6));
    let mut src = PcapFileSource::from_reader(Trickle(Cursor::new(file)), "trickle").unwrap();
    let (seen, _) = drain(&mut src).unwrap();
    assert_eq!(seen[1].data, b"world!");
    assert_eq!(seen[1].ts, 5_000_000_006);
}

/// Records whole in the buffer take the fast path (`ClassicPcap::buffered`), records read a byte at
/// a time the general one: both give the same frames, in every byte order, resolution and the
/// modified format, with a wire length below the captured one raised to it.
#[test]
fn buffered_and_refilled_records_agree() {
    for (big, nanos, modified) in
        [(false, false, false), (true, false, false), (false, true, false), (true, true, true)]
    {
        let mut file = pcap_header(big, nanos, 1);
        if modified {
            let magic: u32 = 0xA1B2_CD34;
            file[..4].copy_from_slice(&if big { magic.to_be_bytes() } else { magic.to_le_bytes() });
        }
        for (i, wire_len) in [0u32, 3, 64, 1500].into_iter().enumerate() {
            let data = vec![u8::try_from(i).unwrap(); 10 * i + 1];
            let mut rec = pcap_record(big, u32::MAX - 7, 999_999_999, &data, wire_len);
            if modified {
                rec.splice(16..16, [0xEE; 8]);
            }
            file.extend(rec);
        }
        let whole = read_all(file.clone());
        let mut trickle = PcapFileSource::from_reader(Trickle(Cursor::new(file)), "trickle").unwrap();
        assert_eq!(whole.len(), 4);
        assert_eq!(whole, drain(&mut trickle).unwrap().0, "big {big} nanos {nanos} modified {modified}");
        assert_eq!(whole[0].wire_len, 1);
        assert_eq!(whole[3].wire_len, 1500);
    }
}

#[test]
fn truncated_last_record_is_counted_not_an_error() {
    let mut file = pcap_header(false, false, 1);
    file.extend(pcap_record(false, 1, 0, b"complete", 8));
    let whole = file.len();
    file.extend(pcap_record(false, 2, 0, b"cut short", 9));
    for cut in whole..file.len() {
        let mut src = source(file[..cut].to_vec()).unwrap();
        let (seen, _) = drain(&mut src).unwrap();
        assert_eq!(seen.len(), 1, "cut at {cut}");
        let expected = u64::from(cut > whole);
        assert_eq!(counter(&src, "pcap.truncated_records"), expected, "cut at {cut}");
    }
}

#[test]
fn every_cut_of_a_pcap_file_ends_cleanly() {
    let mut file = pcap_header(true, false, 113);
    for i in 0..5_u8 {
        file.extend(pcap_record(true, 1, 0, &vec![i; usize::from(i) * 3], 40));
    }
    for cut in 0..file.len() {
        match source(file[..cut].to_vec()) {
            Ok(mut src) => {
                assert!(cut >= 24);
                drain(&mut src).unwrap();
            }
            Err(CaptureError::BadFile(msg)) => assert!(cut < 24, "{msg}"),
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn absurd_record_length_is_an_error() {
    let mut file = pcap_header(false, false, 1);
    file.extend(pcap_record(false, 1, 0, b"ok", 2));
    let mut bad = pcap_record(false, 1, 0, b"", 0);
    bad[8..12].copy_from_slice(&0x7FFF_FFFF_u32.to_le_bytes());
    file.extend(bad);
    file.extend(pcap_record(false, 1, 0, b"never read", 10));
    let mut src = source(file).unwrap();
    let mut n = 0;
    let err = src.poll(Duration::ZERO, &mut |_| n += 1).unwrap_err();
    assert_eq!(n, 1);
    let msg = err.to_string();
    assert!(msg.contains("corrupt at byte offset 42") && msg.contains("2147483647"), "{msg}");
    assert_eq!(src.poll(Duration::ZERO, &mut |_| panic!()).unwrap(), Poll::End);
}

#[test]
fn not_a_capture_file() {
    let msg = bad_file_message(source(b"hello, world, this is text".to_vec()));
    assert!(msg.contains("test.pcap is not a pcap or pcapng file") && msg.contains("0x68656c6c"), "{msg}");
    let msg = bad_file_message(source(vec![0x1F, 0x8B, 8, 0, 0, 0]));
    assert!(msg.contains("gunzip"), "{msg}");
    let msg = bad_file_message(source(Vec::new()));
    assert!(msg.contains("is empty"), "{msg}");
    let msg = bad_file_message(source(vec![0xD4, 0xC3]));
    assert!(msg.contains("too short (2 bytes)"), "{msg}");
    let msg = bad_file_message(source(pcap_header(false, false, 1)[..20].to_vec()));
    assert!(msg.contains("truncated inside its 24-byte pcap file header"), "{msg}");
    let mut v1 = pcap_header(false, false, 1);
    v1[4] = 1;
    assert!(bad_file_message(source(v1)).contains("pcap version 1.4"));
}

#[test]
fn missing_file_is_an_io_error() {
    match PcapFileSource::open(Path::new("/nonexistent/dir/x.pcap")) {
        Err(CaptureError::Io { what, .. }) => assert!(what.contains("/nonexistent/dir/x.pcap")),
        other => panic!("{:?}", other.err()),
    }
}

#[test]
fn unsupported_link_type() {
    assert!(matches!(source(pcap_header(false, false, 147)), Err(CaptureError::UnsupportedLinkType(147))));
    // FCS bits above the low 16 do not hide a supported type.
    let seen = read_all([pcap_header(false, false, 0x1400_0001), pcap_record(false, 0, 0, b"x", 1)].concat());
    assert_eq!(seen[0].link, LinkType::Ethernet);
}

#[test]
fn pcapng_two_interfaces_both_byte_orders() {
    for big in [false, true] {
        let mut ng = Ng::new(big);
        ng.idb(1, 65_535, &[])
            .idb(101, 0, &[(9, &[9]), (2, b"eth0-name")])
            .block(4, &[0; 16]) // name resolution: skipped
            .epb(0, 1_700_000_000_123_456, b"ether", 60)
            .epb(1, 1_700_000_000_987_654_321, b"rawip", 5)
            .block(5, &[0; 20]) // interface statistics: skipped
            .spb(5, b"simple")
            .opb(1, 42, b"old");
        let seen = read_all(ng.bytes());
        assert_eq!(
            seen,
            [
                Seen { ts: 1_700_000_000_123_456_000, link: LinkType::Ethernet, data: b"ether".to_vec(), wire_len: 60 },
                Seen { ts: 1_700_000_000_987_654_321, link: LinkType::Raw, data: b"rawip".to_vec(), wire_len: 5 },
                // Simple packets take interface 0, the last timestamp, and the smaller of the two lengths.
                Seen { ts: 1_700_000_000_987_654_321, link: LinkType::Ethernet, data: b"simpl".to_vec(), wire_len: 5 },
                Seen { ts: 42, link: LinkType::Raw, data: b"old".to_vec(), wire_len: 3 },
            ],
            "big {big}"
        );
    }
}

#[test]
fn pcapng_binary_resolution_offset_and_sections() {
    let mut ng = Ng::new(false);
    ng.idb(1, 0, &[(9, &[0x8A]), (14, &100_i64.to_le_bytes())]).epb(0, 3 * 1024 + 512, b"a", 1);
    // A second section in the other byte order with its own interface list.
    let mut second = Ng::new(true);
    second.idb(113, 0, &[]).epb(0, 2_000_000, b"b", 1);
    let file = [ng.bytes(), second.bytes()].concat();
    let seen = read_all(file);
    assert_eq!(seen[0].ts, 103_500_000_000);
    assert_eq!((seen[1].ts, seen[1].link), (2_000_000_000, LinkType::LinuxSll));
}

#[test]
fn pcapng_interface_errors() {
    let mut ng = Ng::new(false);
    ng.idb(1, 0, &[]).epb(3, 0, b"x", 1);
    let err = drain(&mut source(ng.bytes()).unwrap()).unwrap_err().to_string();
    assert!(err.contains("names interface 3, but the section describes 1"), "{err}");

    // An unsupported interface is fine until a packet arrives on it.
    let mut ng = Ng::new(false);
    ng.idb(1, 0, &[]).idb(189, 0, &[]).epb(0, 0, b"ok", 2).epb(1, 0, b"usb", 3);
    let mut src = source(ng.bytes()).unwrap();
    let mut n = 0;
    let err = src.poll(Duration::ZERO, &mut |_| n += 1).unwrap_err();
    assert!(matches!(err, CaptureError::UnsupportedLinkType(189)));
    assert_eq!(n, 1);

    // Packets after a new section header need that section's interfaces.
    let mut ng = Ng::new(false);
    ng.idb(1, 0, &[]).shb().epb(0, 0, b"x", 1);
    assert!(drain(&mut source(ng.bytes()).unwrap()).is_err());
}

#[test]
fn pcapng_corrupt_blocks_are_errors() {
    let base = {
        let mut ng = Ng::new(true);
        ng.idb(1, 0, &[]);
        ng.bytes()
    };
    let expect_err = |file: Vec<u8>, needle: &str| {
        let err = drain(&mut source(file).unwrap()).unwrap_err().to_string();
        assert!(err.contains(needle), "{err} lacks {needle}");
    };
    // Trailing length differs.
    let mut ng = Ng { big: true, out: base.clone() };
    ng.epb(0, 0, b"data", 4);
    let n = ng.out.len();
    ng.out[n - 1] ^= 4;
    expect_err(ng.bytes(), "trailing length");
    // Length not a multiple of 4.
    let mut file = base.clone();
    file.extend_from_slice(&[0, 0, 0, 6, 0, 0, 0, 33]);
    expect_err(file, "not a multiple of 4");
    // Captured length larger than the block.
    let mut ng = Ng { big: true, out: base.clone() };
    ng.epb(0, 0, b"data", 4);
    let at = base.len() + 8 + 12;
    ng.out[at..at + 4].copy_from_slice(&100_u32.to_be_bytes());
    expect_err(ng.bytes(), "block holds 4");
    // Captured length past the record limit, inside a block that is within its own limit.
    let mut ng = Ng { big: true, out: base.clone() };
    ng.epb(0, 0, &vec![0; PCAP_MAX_RECORD_LEN + 1], 1);
    expect_err(ng.bytes(), "more than the 262144-byte limit");
    // A packet block claiming a gigabyte: refused before any read or allocation.
    let mut file = base.clone();
    file.extend_from_slice(&[0, 0, 0, 6, 0x40, 0, 0, 0]);
    expect_err(file, "claims 1073741824 bytes");
    // Bad byte-order magic in a later section header.
    let mut file = base;
    file.extend_from_slice(&[0x0A, 0x0D, 0x0D, 0x0A, 0, 0, 0, 28, 1, 2, 3, 4]);
    file.resize(file.len() + 16, 0);
    expect_err(file, "byte-order magic");
}

#[test]
fn pcapng_big_skipped_block_is_streamed() {
    let mut ng = Ng::new(false);
    ng.idb(1, 0, &[]).block(0x0000_0BAD, &vec![7; 3 * 1024 * 1024]).epb(0, 0, b"after", 5);
    let mut src = PcapFileSource::from_reader(Trickle(Cursor::new(ng.bytes())), "big").unwrap();
    let (seen, _) = drain(&mut src).unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].data, b"after");
}

#[test]
fn every_cut_of_a_pcapng_file_ends_cleanly() {
    let mut ng = Ng::new(false);
    ng.idb(1, 0, &[(9, &[6])]).epb(0, 1, b"one", 3).block(4, &[1; 12]).epb(0, 2, b"two!", 4).spb(3, b"three");
    let file = ng.bytes();
    let shb_len = 28;
    for cut in 0..file.len() {
        match source(file[..cut].to_vec()) {
            Ok(mut src) => {
                assert!(cut >= shb_len, "opened at {cut}");
                let (seen, _) = drain(&mut src).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
                assert!(seen.len() <= 3);
            }
            Err(CaptureError::BadFile(msg)) => assert!(cut < shb_len, "cut at {cut}: {msg}"),
            Err(e) => panic!("{e}"),
        }
    }
    let mut src = source(file[..file.len() - 1].to_vec()).unwrap();
    assert_eq!(drain(&mut src).unwrap().0.len(), 2);
    assert_eq!(counter(&src, "pcap.truncated_records"), 1);
}

/// Packetbeat's own test captures, when the conformance suite is checked out next to us.
#[test]
fn conformance_pcaps_replay() {
    let dir = Path::new("/work/shared/conformance/pcaps");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        if !path.extension().is_some_and(|e| e == "pcap" || e == "pcapng") {
            continue;
        }
        files += 1;
        let mut src = PcapFileSource::open(&path).unwrap_or_else(|e| panic!("{e}"));
        let (mut total, mut tcp, mut vlan) = (0, 0, 0);
        loop {
            let poll = src
                .poll(Duration::ZERO, &mut |p| {
                    total += 1;
                    if let Ok(seg) = decode(p.link, p.data, p.ts) {
                        tcp += 1;
                        vlan += usize::from(seg.vlan.is_some());
                        assert!(seg.payload.len() <= seg.wire_payload_len as usize);
                    }
                })
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            if poll == Poll::End {
                break;
            }
        }
        assert!(total > 0 && tcp > 0, "{}: {tcp} of {total} decoded", path.display());
        assert_eq!(counter(&src, "pcap.truncated_records"), 0, "{}", path.display());
        if path.ends_with("http_over_vlan.pcap") {
            assert_eq!(vlan, tcp, "every segment of http_over_vlan.pcap is tagged");
        }
    }
    assert!(files > 0);
}
