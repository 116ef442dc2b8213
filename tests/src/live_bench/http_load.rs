//! A paced, pipelining HTTP/1.1 load generator: open-loop at a fixed rate, so the live target of
//! issue 5 (100k HTTP transactions/s) is really offered. wrk is closed-loop: it offers what nginx
//! and the box complete, and with the agent running that stays near 60k/s on two cores. Here
//! batches of `depth` pipelined GETs leave on a fixed schedule over keep-alive connections, whether
//! or not the server keeps up; a slot that finds every connection still waiting for its previous
//! batch is counted as missed (the schedule goes on), so the achieved rate is what was sent, never
//! what was asked for.
//!
//! One thread and non-blocking sockets, woken by a clock rather than by each socket: it sleeps one
//! tick, asks `poll` (without waiting) which sockets have something, reads those, then sends the
//! batches that fell due. Sharing one core with nginx, waking for every response segment cost a
//! context switch each and held the pair near 65-85k requests/s; a tick of half a millisecond
//! costs two wake-ups per millisecond at any rate. Responses are counted by a small streaming
//! parser (status line, `Content-Length`, body skipped) that copes with any split across reads.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// Longest response head line the counter accepts.
const MAX_LINE: usize = 8192;

/// How long [`run`] waits for the responses in flight after the last slot.
pub const DRAIN: Duration = Duration::from_secs(2);

/// What to offer.
#[derive(Clone, Debug)]
pub struct LoadSpec {
    /// The server's port on 127.0.0.1.
    pub port: u16,
    /// The request path (`/r`).
    pub path: String,
    /// Requests per second to send.
    pub rate: u64,
    /// Requests per write (one batch).
    pub depth: usize,
    /// Keep-alive connections.
    pub conns: usize,
    /// How long to send.
    pub duration: Duration,
    /// How often the generator wakes to read responses and send the batches due since.
    pub tick: Duration,
}

/// What was sent and answered.
#[derive(Clone, Debug, Default)]
pub struct LoadResult {
    /// Requests written (a batch whose write failed at once not included).
    pub sent: u64,
    /// Complete responses read.
    pub responses: u64,
    /// Responses with a status other than 200, unparsable responses and failed connections.
    pub errors: u64,
    /// Slots that found no connection free of a batch in flight (nothing sent for them).
    pub missed_slots: u64,
    /// Slots in the schedule.
    pub slots: u64,
    /// Length of the sending window (the drain after it not included).
    pub seconds: f64,
    /// `sent / seconds`.
    pub achieved_per_s: f64,
    /// CPU of the generator's thread over the whole run (sending and draining), % of one core.
    pub cpu_pct: f64,
}

/// Counts the HTTP/1.x responses of one connection as their bytes arrive, split anywhere.
#[derive(Debug, Default)]
pub struct ResponseCounter {
    /// The partial line carried over from the previous read.
    line: Vec<u8>,
    /// Inside a head (after its status line).
    in_head: bool,
    status: u16,
    content_length: u64,
    /// Body bytes still to skip.
    body_left: u64,
    /// Complete responses (1xx interim responses not counted).
    pub responses: u64,
    /// Complete responses whose status was not 200.
    pub non_200: u64,
}

impl ResponseCounter {
    /// Feeds the next bytes of the stream.
    ///
    /// # Errors
    /// The stream is not a sequence of HTTP/1.x responses with `Content-Length` bodies (chunked
    /// bodies are not handled: nginx's `return` never sends them).
    pub fn feed(&mut self, mut data: &[u8]) -> Result<(), String> {
        while !data.is_empty() {
            if self.body_left > 0 {
                let n = usize::try_from(self.body_left).unwrap_or(usize::MAX).min(data.len());
                self.body_left -= n as u64;
                data = &data[n..];
                if self.body_left == 0 {
                    self.complete();
                }
                continue;
            }
            let Some(end) = data.iter().position(|&b| b == b'\n') else {
                self.carry(data)?;
                return Ok(());
            };
            if self.line.is_empty() {
                self.on_line(&data[..end])?;
            } else {
                self.carry(&data[..end])?;
                let line = std::mem::take(&mut self.line);
                let r = self.on_line(&line);
                self.line = line;
                self.line.clear();
                r?;
            }
            data = &data[end + 1..];
        }
        Ok(())
    }

    fn carry(&mut self, part: &[u8]) -> Result<(), String> {
        if self.line.len() + part.len() > MAX_LINE {
            return Err(format!("a response head line longer than {MAX_LINE} bytes"));
        }
        self.line.extend_from_slice(part);
        Ok(())
    }

    fn on_line(&mut self, line: &[u8]) -> Result<(), String> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if !self.in_head {
            let status = line
                .strip_prefix(b"HTTP/1.")
                .and_then(|rest| rest.get(2..5))
                .and_then(|code| std::str::from_utf8(code).ok()?.parse::<u16>().ok())
                .ok_or_else(|| format!("not a status line: {:?}", String::from_utf8_lossy(line)))?;
            self.status = status;
            self.content_length = 0;
            self.in_head = true;
        } else if line.is_empty() {
            self.in_head = false;
            if self.status >= 200 {
                self.body_left = self.content_length;
                if self.body_left == 0 {
                    self.complete();
                }
            }
        } else if let Some(colon) = line.iter().position(|&b| b == b':') {
            let (name, value) = (&line[..colon], &line[colon + 1..]);
            if name.eq_ignore_ascii_case(b"content-length") {
                self.content_length = std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.trim().parse().ok())
                    .ok_or_else(|| "a bad Content-Length".to_owned())?;
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                return Err("chunked responses are not counted".to_owned());
            }
        }
        Ok(())
    }

    fn complete(&mut self) {
        self.responses += 1;
        if self.status != 200 {
            self.non_200 += 1;
        }
    }
}

/// One keep-alive connection.
struct Conn {
    stream: TcpStream,
    counter: ResponseCounter,
    /// Responses still expected for the batch in flight.
    outstanding: u64,
    /// Bytes of the batch not yet written.
    unwritten: usize,
    alive: bool,
}

impl Conn {
    /// Writes what is left of `batch`; a full send buffer leaves the rest for `POLLOUT`.
    fn write_rest(&mut self, batch: &[u8]) -> io::Result<()> {
        while self.unwritten > 0 {
            match self.stream.write(&batch[batch.len() - self.unwritten..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.unwritten -= n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads what is available (up to a short read: poll reports the rest at the next tick) and
    /// counts the responses against the batch in flight. While that batch is incomplete, asks the
    /// kernel to acknowledge at once: a server with Nagle on (nginx `tcp_nodelay off`) holds the
    /// rest of its responses until the first is acknowledged, and the acknowledgement would
    /// otherwise wait for the delayed-ACK timer (up to 40 ms), since nothing is sent on this
    /// connection before the batch is complete.
    fn read_some(&mut self, buf: &mut [u8]) -> Result<(), String> {
        let before = self.counter.responses;
        loop {
            match self.stream.read(buf) {
                Ok(0) => return Err("the server closed the connection".to_owned()),
                Ok(n) => {
                    self.counter.feed(&buf[..n])?;
                    if n < buf.len() {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        self.outstanding = self.outstanding.saturating_sub(self.counter.responses - before);
        if self.outstanding > 0 {
            let one: libc::c_int = 1;
            // SAFETY: setsockopt on our own socket with a valid int option value.
            unsafe {
                libc::setsockopt(
                    self.stream.as_raw_fd(),
                    libc::IPPROTO_TCP,
                    libc::TCP_QUICKACK,
                    std::ptr::from_ref(&one).cast(),
                    size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
        }
        Ok(())
    }

    fn idle(&self) -> bool {
        self.alive && self.outstanding == 0 && self.unwritten == 0
    }
}

/// After a write or a read: polls for `POLLOUT` while part of the batch is unwritten; a connection
/// that failed is counted as an error and no longer polled.
fn settle(c: &Conn, fd: &mut libc::pollfd, out: &mut LoadResult) {
    if c.alive {
        fd.events = if c.unwritten > 0 { libc::POLLIN | libc::POLLOUT } else { libc::POLLIN };
    } else if fd.fd >= 0 {
        out.errors += 1;
        fd.fd = -1;
    }
}

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_THREAD, &raw mut ru);
        ru
    };
    let us = |t: libc::timeval| {
        Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    };
    us(ru.ru_utime) + us(ru.ru_stime)
}

/// Which sockets have something to read (or room to write), without waiting.
fn poll_now(fds: &mut [libc::pollfd]) {
    // SAFETY: fds is a valid, exclusively borrowed array of its length.
    unsafe {
        libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 0);
    }
}

/// Offers `spec.rate` requests/s for `spec.duration`: slot `i` is due at `i * depth / rate` seconds
/// and is sent at the first tick after that, as one write of `depth` requests on the connection
/// that has been idle longest; then waits up to [`DRAIN`] for the responses in flight.
///
/// # Errors
/// The connections cannot be opened.
pub fn run(spec: &LoadSpec) -> io::Result<LoadResult> {
    let depth = spec.depth.max(1);
    let request = format!("GET {} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n", spec.path, spec.port);
    let batch = request.repeat(depth).into_bytes();
    let mut conns = Vec::with_capacity(spec.conns);
    for _ in 0..spec.conns.max(1) {
        let stream = TcpStream::connect(("127.0.0.1", spec.port))?;
        stream.set_nodelay(true)?;
        stream.set_nonblocking(true)?;
        conns.push(Conn { stream, counter: ResponseCounter::default(), outstanding: 0, unwritten: 0, alive: true });
    }
    let mut fds: Vec<libc::pollfd> =
        conns.iter().map(|c| libc::pollfd { fd: c.stream.as_raw_fd(), events: libc::POLLIN, revents: 0 }).collect();
    let mut free: VecDeque<usize> = (0..conns.len()).collect();
    let interval = Duration::from_secs_f64(depth as f64 / spec.rate.max(1) as f64);
    let tick = spec.tick.max(Duration::from_micros(10));
    let mut buf = vec![0u8; 1 << 16];
    let mut out = LoadResult::default();
    let cpu0 = thread_cpu();
    let start = Instant::now();
    let end = start + spec.duration;
    let (mut next, mut wake) = (start, start);
    loop {
        // Responses first: they free connections for the slots now due.
        poll_now(&mut fds);
        for (i, c) in conns.iter_mut().enumerate() {
            let revents = std::mem::take(&mut fds[i].revents);
            if revents == 0 || !c.alive {
                continue;
            }
            let was_busy = !c.idle();
            if revents & libc::POLLOUT != 0 && c.write_rest(&batch).is_err() {
                c.alive = false;
            }
            let readable = revents & (libc::POLLIN | libc::POLLERR | libc::POLLHUP) != 0;
            if c.alive && readable && c.read_some(&mut buf).is_err() {
                c.alive = false;
            }
            settle(c, &mut fds[i], &mut out);
            if was_busy && c.idle() {
                free.push_back(i);
            }
        }
        let now = Instant::now();
        while next <= now && next < end {
            out.slots += 1;
            next += interval;
            // A connection the server closed while it waited in the queue is skipped.
            let Some(i) = std::iter::from_fn(|| free.pop_front()).find(|&i| conns[i].alive) else {
                out.missed_slots += 1;
                continue;
            };
            let c = &mut conns[i];
            c.unwritten = batch.len();
            c.outstanding = depth as u64;
            if c.write_rest(&batch).is_ok() {
                out.sent += depth as u64;
            } else {
                c.alive = false;
            }
            settle(c, &mut fds[i], &mut out);
        }
        let busy = conns.iter().any(|c| c.alive && !c.idle());
        if now >= end && (!busy || now >= end + DRAIN) {
            break;
        }
        // The next tick on the grid (ticks a late wake-up skipped are not made up).
        while wake <= now {
            wake += tick;
        }
        std::thread::sleep(wake - now);
    }
    out.seconds = spec.duration.as_secs_f64();
    out.achieved_per_s = out.sent as f64 / out.seconds.max(1e-9);
    out.responses = conns.iter().map(|c| c.counter.responses).sum();
    out.errors += conns.iter().map(|c| c.counter.non_200).sum::<u64>();
    out.cpu_pct = 100.0 * thread_cpu().saturating_sub(cpu0).as_secs_f64() / start.elapsed().as_secs_f64().max(1e-9);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/plain\r\n\
                        Content-Length: 6\r\nConnection: keep-alive\r\n\r\nhello\n";
    const NOT_FOUND: &[u8] = b"HTTP/1.1 404 Not Found\r\ncontent-length: 10\r\n\r\nnot found\n";
    const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";
    const EMPTY: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";

    fn stream() -> Vec<u8> {
        [OK, OK, NOT_FOUND, CONTINUE, OK, EMPTY, OK].concat()
    }

    #[test]
    fn counts_responses_split_at_every_offset() {
        let s = stream();
        for cut in 0..=s.len() {
            let mut c = ResponseCounter::default();
            c.feed(&s[..cut]).unwrap();
            c.feed(&s[cut..]).unwrap();
            assert_eq!((c.responses, c.non_200), (6, 1), "split at {cut}");
        }
    }

    #[test]
    fn counts_responses_fed_byte_by_byte_and_in_two_splits() {
        let s = stream();
        let mut c = ResponseCounter::default();
        for b in &s {
            c.feed(std::slice::from_ref(b)).unwrap();
        }
        assert_eq!((c.responses, c.non_200), (6, 1));
        for a in (0..s.len()).step_by(7) {
            for b in a..s.len() {
                let mut c = ResponseCounter::default();
                for part in [&s[..a], &s[a..b], &s[b..]] {
                    c.feed(part).unwrap();
                }
                assert_eq!(c.responses, 6, "splits at {a} and {b}");
            }
        }
    }

    #[test]
    fn counts_only_complete_responses() {
        let mut c = ResponseCounter::default();
        c.feed(&OK[..OK.len() - 1]).unwrap();
        assert_eq!(c.responses, 0);
        c.feed(&OK[OK.len() - 1..]).unwrap();
        assert_eq!(c.responses, 1);
    }

    /// A server answering every request (counted by its blank line) with [`OK`], a thread per
    /// connection.
    fn answering_server() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for mut conn in listener.incoming().map_while(Result::ok) {
                std::thread::spawn(move || {
                    let mut seen = Vec::new();
                    let mut buf = vec![0u8; 1 << 16];
                    while let Ok(n) = conn.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        seen.extend_from_slice(&buf[..n]);
                        let requests = seen.windows(4).filter(|w| w == b"\r\n\r\n").count();
                        let keep = seen.len() - seen.len().min(3);
                        seen.drain(..keep);
                        if conn.write_all(&OK.repeat(requests)).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        port
    }

    #[test]
    fn offers_the_rate_and_counts_every_answer() {
        let spec = LoadSpec {
            port: answering_server(),
            path: "/t".to_owned(),
            rate: 20_000,
            depth: 4,
            conns: 4,
            duration: Duration::from_millis(300),
            tick: Duration::from_micros(500),
        };
        let r = run(&spec).unwrap();
        assert_eq!(r.slots, 1500);
        assert_eq!(r.sent, 4 * (r.slots - r.missed_slots));
        assert_eq!(r.responses, r.sent);
        assert_eq!(r.errors, 0);
        assert!(r.sent > 0 && (r.achieved_per_s - r.sent as f64 / 0.3).abs() < 1.0);
    }

    #[test]
    fn rejects_what_it_cannot_count() {
        assert!(ResponseCounter::default().feed(b"SSH-2.0-OpenSSH\r\n").is_err());
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert!(ResponseCounter::default().feed(chunked).is_err());
        assert!(ResponseCounter::default().feed(&[b'a'; MAX_LINE + 1]).is_err());
    }
}
