//! The agent's memory with many idle connections: RSS at idle, with 10k and with 100k concurrent
//! connections that each did one tiny HTTP request/response (so the agent tracks them) and then stay
//! open, and after they all close and the agent has let go of them (does RSS come back?).
//!
//! Holding 100k connections on loopback takes 200k descriptors, and this box caps RLIMIT_NOFILE at
//! a hard 20 000 without CAP_SYS_RESOURCE to raise it. So the connections are held by child
//! processes (this binary re-run with `--hold-child`), [`PER_CHILD`] each: every child runs its own
//! [`HoldServer`] on its own port (all ports are configured in the agent) and its clients connect
//! from their own 127.0.0.x address, so neither the descriptor limit nor the ephemeral port range is
//! in the way. The agent's table holds `packetbeat.limits.max_connections` (default 100 000) per
//! worker; with 2 workers 100k fits without raising it.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{free_port, temp_dir};

use super::agent::{counter, BenchAgent, Counters};
use super::hold_server::HoldServer;
use super::proc_stats::{self, ProcSample};
use super::report::Row;
use super::{Settings, MODES};

/// Connections one child holds (2 descriptors each, under the 20 000 limit).
pub const PER_CHILD: usize = 5000;
const BATCH: usize = 1000;
const PACE: Duration = Duration::from_millis(50);
const REQUEST: &[u8] = b"GET /hold HTTP/1.1\r\nHost: bench\r\n\r\n";
/// `packetbeat.limits.connection_idle_timeout`, lowered from 120 s so that entries the agent did not
/// remove at close leave the table within the run; it must exceed the time the opening takes.
fn idle_timeout_s(s: &Settings) -> u64 {
    if s.quick {
        10
    } else {
        20
    }
}

/// Raises RLIMIT_NOFILE (soft and hard) to at least `want`; returns the soft limit in effect.
fn raise_nofile(want: u64) -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: a valid rlimit to fill and then pass back.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut lim);
        if lim.rlim_cur < want {
            let new = libc::rlimit { rlim_cur: want, rlim_max: lim.rlim_max.max(want) };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raw const new) == 0 {
                lim = new;
            }
        }
    }
    lim.rlim_cur
}

/// A blocking TCP connection from `src` (any port) to 127.0.0.1:`port`.
fn connect_from(src: [u8; 4], port: u16) -> io::Result<TcpStream> {
    let fail = |what: &str| {
        let e = io::Error::last_os_error();
        io::Error::new(e.kind(), format!("{what} from {src:?}: {e}"))
    };
    // SAFETY: plain syscalls on a socket owned from creation on; structs fully initialised.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(fail("socket"));
        }
        let owned = OwnedFd::from_raw_fd(fd);
        let one: libc::c_int = 1;
        libc::setsockopt(
            fd,
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            std::ptr::from_ref(&one).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        );
        let len = size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as u16;
        addr.sin_addr.s_addr = u32::from_be_bytes(src).to_be();
        if libc::bind(fd, std::ptr::from_ref(&addr).cast(), len) < 0 {
            return Err(fail("bind"));
        }
        addr.sin_addr.s_addr = u32::from_be_bytes([127, 0, 0, 1]).to_be();
        addr.sin_port = port.to_be();
        if libc::connect(fd, std::ptr::from_ref(&addr).cast(), len) < 0 {
            return Err(fail("connect"));
        }
        Ok(TcpStream::from(owned))
    }
}

/// Opens connections from `src` until `conns` holds `target`, each with one request answered;
/// returns the number of failures (connect errors or missing responses).
fn open_to(conns: &mut Vec<TcpStream>, target: usize, src: [u8; 4], port: u16) -> usize {
    let mut failures = 0;
    let mut buf = [0u8; 256];
    while conns.len() < target {
        let start = conns.len();
        let end = (start + BATCH).min(target);
        for _ in start..end {
            match connect_from(src, port) {
                Ok(mut s) => {
                    if s.write_all(REQUEST).is_err() {
                        failures += 1;
                    }
                    conns.push(s);
                }
                Err(e) => {
                    failures += 1;
                    if failures == 1 {
                        eprintln!("memory: {e}");
                    }
                    if failures > 1000 {
                        return failures;
                    }
                }
            }
        }
        for s in &mut conns[start..] {
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            if !s.read(&mut buf).is_ok_and(|n| n > 0) {
                failures += 1;
            }
        }
        // Paced to about 20k connections/s: this measures memory, not how a ring takes a burst of
        // 100k handshakes in half a second (the load scenarios measure drops).
        std::thread::sleep(PACE);
    }
    failures
}

/// Connections the agent holds, from its latest counters (at most a second old).
fn tracked(c: &Counters) -> u64 {
    counter(c, "flow.connections").saturating_sub(counter(c, "flow.closed") + counter(c, "flow.idle_expired"))
}

/// Waits for the next periodic counter line, then returns it.
fn fresh_counters(agent: &BenchAgent) -> Counters {
    std::thread::sleep(Duration::from_millis(1200));
    agent.latest_counters()
}

/// Waits until the agent's counters show `expected` connections created, or stop changing (workers
/// store their counters about once a second of packet time, so the log lags by a second or two).
fn settled_counters(agent: &BenchAgent, expected: u64) -> Counters {
    let mut last = fresh_counters(agent);
    for _ in 0..8 {
        let c = fresh_counters(agent);
        let same = counter(&c, "flow.connections") == counter(&last, "flow.connections");
        last = c;
        if counter(&last, "flow.connections") >= expected || same && counter(&last, "flow.connections") > 0 {
            break;
        }
    }
    last
}

struct Step<'a> {
    mode: &'a str,
    idle: ProcSample,
}

impl Step<'_> {
    fn row(&self, variant: &str, from: &ProcSample, to: &ProcSample, c: &Counters, note: String) -> Row {
        let seconds = to.at.duration_since(from.at).as_secs_f64();
        let ratio = 100.0 * to.rss_kib as f64 / self.idle.rss_kib.max(1) as f64;
        let anon_ratio = 100.0 * to.anon_kib as f64 / self.idle.anon_kib.max(1) as f64;
        Row {
            scenario: "memory".to_owned(),
            mode: self.mode.to_owned(),
            variant: variant.to_owned(),
            seconds,
            seen: Some(counter(c, "http.transactions")),
            drops: Some(super::agent::capture_drops(c)),
            other_losses: Some(super::agent::other_losses(c)),
            cpu_pct: Some(proc_stats::cpu_percent(from, to)),
            rss_mib: Some(proc_stats::mib(to.rss_kib)),
            hwm_mib: Some(proc_stats::mib(to.hwm_kib)),
            anon_mib: Some(proc_stats::mib(to.anon_kib)),
            threads: proc_stats::thread_cpu(from, to),
            note: format!(
                "{note}; agent tracks {} conns; RSS = {ratio:.0}% of idle (anon {anon_ratio:.0}%)",
                tracked(c)
            ),
            counters: c.clone(),
            ..Row::default()
        }
    }
}

/// A child process holding [`PER_CHILD`] connections to its own server port.
struct Holder {
    child: Child,
    out: BufReader<ChildStdout>,
}

impl Holder {
    fn spawn(port: u16, index: usize) -> Self {
        let exe = std::env::current_exe().expect("the benchmark's own path");
        let source = 2 + index % 250;
        let mut child = Command::new(exe)
            .args(["--hold-child", &port.to_string(), &PER_CHILD.to_string(), &source.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start a connection-holding child");
        let out = BufReader::new(child.stdout.take().expect("child stdout"));
        Self { child, out }
    }

    /// Waits for `READY <open> <failures>`.
    fn ready(&mut self) -> (usize, usize) {
        let mut line = String::new();
        let _ = self.out.read_line(&mut line);
        let mut it = line.split_whitespace().skip(1).map(|n| n.parse().unwrap_or(0));
        (it.next().unwrap_or(0), it.next().unwrap_or(PER_CHILD))
    }

    /// Closes its stdin: the child closes every connection and exits.
    fn release(mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `live_bench --hold-child PORT COUNT SOURCE`: serve on PORT, open COUNT connections to it from
/// 127.0.0.SOURCE, print `READY <open> <failures>`, hold them until stdin closes, then close them.
pub fn child_main(args: &[String]) {
    let num = |i: usize| args.get(i).and_then(|a| a.parse::<usize>().ok()).expect("--hold-child PORT COUNT SOURCE");
    let (port, count, source) = (num(0), num(1), num(2));
    raise_nofile(2 * count as u64 + 100);
    let server = HoldServer::start(u16::try_from(port).expect("port"));
    let mut conns = Vec::with_capacity(count);
    let failures = open_to(&mut conns, count, [127, 0, 0, u8::try_from(source).unwrap_or(2)], server.port);
    println!("READY {} {failures}", conns.len());
    let _ = io::stdout().flush();
    let mut sink = Vec::new();
    let _ = io::stdin().read_to_end(&mut sink);
    conns.clear();
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.open() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn run_mode(s: &Settings, mode: &str, big: usize) -> Vec<Row> {
    let dir = temp_dir("bench-memory");
    let ports: Vec<u16> = (0..big.div_ceil(PER_CHILD)).map(|_| free_port()).collect();
    let list = ports.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
    let extra = [format!("packetbeat.limits.connection_idle_timeout={}s", idle_timeout_s(s))];
    let agent = BenchAgent::start(&s.agent, &dir, mode, &format!("[{{type: http, ports: [{list}]}}]"), &extra);
    std::thread::sleep(Duration::from_secs(2));
    let idle = agent.sample();
    let step = Step { mode, idle: idle.clone() };
    let mut rows = vec![step.row("idle", &idle, &idle, &fresh_counters(&agent), "started, no traffic".into())];
    let mut holders: Vec<Holder> = Vec::new();
    let (mut open, mut failures) = (0, 0);
    let mut from = agent.sample();
    for target in [10_000, big] {
        let t = Instant::now();
        let first = holders.len();
        for (i, &port) in ports.iter().enumerate().take(target / PER_CHILD).skip(first) {
            let mut h = Holder::spawn(port, i);
            let (o, f) = h.ready();
            open += o;
            failures += f;
            holders.push(h);
        }
        let took = t.elapsed().as_secs_f64();
        let c = settled_counters(&agent, open as u64);
        let to = agent.sample();
        let note = format!("{open} open in {} processes, opened in {took:.1} s, {failures} failures", holders.len());
        let label = format!("{}k idle conns", target / 1000);
        let mut row = step.row(&label, &from, &to, &c, note);
        row.performed = Some(open as u64);
        rows.push(row);
        from = to;
    }
    // The burst is over: every client closes (FIN), the servers close their ends.
    let t = Instant::now();
    for h in holders {
        h.release();
    }
    let deadline = Instant::now() + Duration::from_secs(idle_timeout_s(s) + 10);
    let mut c = fresh_counters(&agent);
    while tracked(&c) > 0 && Instant::now() < deadline {
        c = fresh_counters(&agent);
    }
    let released = t.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(2));
    let c = fresh_counters(&agent);
    let to = agent.sample();
    let note = format!(
        "all {open} closed; the agent's table emptied {released:.1} s after the close began (idle timeout {} s); \
         sampled 3 s later; table entries created {} (closed by FIN/RST {}, idle-expired {})",
        idle_timeout_s(s),
        counter(&c, "flow.connections"),
        counter(&c, "flow.closed"),
        counter(&c, "flow.idle_expired"),
    );
    rows.push(step.row("after close", &from, &to, &c, note));
    let stopped = agent.stop();
    if let Some(last) = rows.last_mut() {
        last.counters = stopped.counters;
    }
    let _ = std::fs::remove_dir_all(&dir);
    rows
}

/// Idle, 10k, 100k and after-close RSS through both capture modes (`--quick`: 30k, `ebpf` only).
#[must_use]
pub fn run(s: &Settings) -> Vec<Row> {
    let (big, modes) = if s.quick { (30_000, &MODES[..1]) } else { (100_000, &MODES[..]) };
    modes.iter().flat_map(|mode| run_mode(s, mode, big)).collect()
}
