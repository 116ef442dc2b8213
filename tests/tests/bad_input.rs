//! Hostile and broken input: never a panic, never a hang; a clear one-line error or counted errors.

use std::time::Duration;

use packetbeat_tests::pcap::{noise, pcap, tcp_frame};
use packetbeat_tests::{replay, replay_in, temp_dir};

const CONFIG: &str = "packetbeat.protocols:\n  - {type: http, ports: [80]}\n";
const LIMIT: Duration = Duration::from_secs(30);

fn replay_bytes(name: &str, bytes: &[u8]) -> packetbeat_tests::Finished {
    let dir = temp_dir(name);
    let f = dir.join(format!("{name}.pcap"));
    std::fs::write(&f, bytes).unwrap();
    // The result owns the directory: the input stays on disk if a check of the result fails.
    replay_in(dir, &f, CONFIG, LIMIT)
}

fn assert_clean_error(r: &packetbeat_tests::Finished, needle: &str) {
    assert_eq!(r.code, Some(1), "expected exit 1, got {:?}; stderr:\n{}", r.code, r.stderr);
    assert!(!r.stderr.contains("panicked"), "panic:\n{}", r.stderr);
    let err: Vec<&str> = r.stderr.lines().filter(|l| l.starts_with("Error:")).collect();
    assert_eq!(err.len(), 1, "want exactly one error line:\n{}", r.stderr);
    assert!(err[0].to_lowercase().contains(needle), "error line {:?} does not mention {needle:?}", err[0]);
    assert!(r.stdout.trim().is_empty());
}

#[test]
fn not_a_pcap_file() {
    let r = replay_bytes("text", b"this is not a capture file at all, just text\n");
    assert_clean_error(&r, "pcap");
}

#[test]
fn empty_file() {
    let r = replay_bytes("empty", b"");
    assert_clean_error(&r, "pcap");
}

#[test]
fn missing_file() {
    let r = replay(std::path::Path::new("/nonexistent/x.pcap"), CONFIG, LIMIT);
    assert_clean_error(&r, "x.pcap");
}

#[test]
fn unknown_link_type() {
    let r = replay_bytes("linktype", &pcap(147, &[vec![0; 60]]));
    assert_clean_error(&r, "link type");
}

#[test]
fn absurd_record_length_is_an_error_not_an_allocation() {
    let mut bytes = pcap(1, &[]);
    bytes.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff, 0x7f]);
    bytes.extend_from_slice(&[0; 64]);
    let r = replay_bytes("absurd", &bytes);
    assert_clean_error(&r, "");
}

#[test]
fn truncated_last_record_ends_cleanly() {
    let req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let frames = vec![tcp_frame(([10, 0, 0, 1], 40000), ([10, 0, 0, 2], 80), 1, 1, 0x18, req)];
    let mut bytes = pcap(1, &frames);
    bytes.truncate(bytes.len() - 10);
    let r = replay_bytes("truncated", &bytes);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(!r.stderr.contains("panicked"));
}

#[test]
fn every_truncation_of_a_valid_file_is_handled() {
    let req = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
    let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let frames = vec![
        tcp_frame(([10, 0, 0, 1], 40000), ([10, 0, 0, 2], 80), 1, 1, 0x18, req),
        tcp_frame(([10, 0, 0, 2], 80), ([10, 0, 0, 1], 40000), 1, 1 + req.len() as u32, 0x18, resp),
    ];
    let bytes = pcap(1, &frames);
    for cut in (0..bytes.len()).step_by(7) {
        let r = replay_bytes("cut", &bytes[..cut]);
        assert!(matches!(r.code, Some(0 | 1)), "cut {cut}: {:?}\n{}", r.code, r.stderr);
        assert!(!r.stderr.contains("panicked"), "cut {cut}:\n{}", r.stderr);
    }
}

#[test]
fn garbage_on_the_http_port_is_counted_not_fatal() {
    let mut frames = Vec::new();
    let (c, s) = (([10, 0, 0, 1], 40001), ([10, 0, 0, 2], 80));
    frames.push(tcp_frame(c, s, 0, 0, 0x02, b""));
    frames.push(tcp_frame(s, c, 0, 1, 0x12, b""));
    let (mut cseq, mut sseq) = (1u32, 1u32);
    for i in 0..200u64 {
        let junk = noise(i, 1 + (i as usize * 37) % 1400);
        let (from, to, seq) = if i % 2 == 0 { (c, s, &mut cseq) } else { (s, c, &mut sseq) };
        frames.push(tcp_frame(from, to, *seq, 1, 0x18, &junk));
        *seq += junk.len() as u32;
    }
    // Random frames of every size, not even valid headers.
    for i in 0..300u64 {
        frames.push(noise(1000 + i, (i as usize * 13) % 200));
    }
    let r = replay_bytes("garbage", &pcap(1, &frames));
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(!r.stderr.contains("panicked"));
    assert!(r.stderr.contains("http.parse_errors="), "parse errors not counted:\n{}", r.stderr);
}
