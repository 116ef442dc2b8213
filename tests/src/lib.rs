//! Harness for the integration tests: the agent binary run live or on a file, a real nginx, a
//! tcpdump capture of the same traffic, and a decoy server on a port the agent must ignore.
//!
//! Live tests need root (CAP_BPF, CAP_NET_RAW); they print why and return early otherwise.
//! Everything is bound to 127.0.0.1 and stopped on drop. Each test works in a [`temp_dir`], removed
//! when the test passes and kept when it fails (see [`temp`]).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The agent binary: `$PACKETBEAT_AGENT_BIN`, else `target/release/packetbeat-agent`.
#[must_use]
pub fn agent_bin() -> PathBuf {
    if let Ok(p) = std::env::var("PACKETBEAT_AGENT_BIN") {
        return PathBuf::from(p);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for profile in ["release", "debug"] {
        let p = root.join("target").join(profile).join("packetbeat-agent");
        if p.exists() {
            return p;
        }
    }
    panic!("packetbeat-agent is not built: run `cargo xtask test` (or set PACKETBEAT_AGENT_BIN)");
}

/// Whether we may load eBPF and open packet sockets.
#[must_use]
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Whether a program is installed.
#[must_use]
pub fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd} >/dev/null || test -x /usr/sbin/{cmd}")])
        .status()
        .is_ok_and(|s| s.success())
}

static NEXT_PORT: AtomicU16 = AtomicU16::new(0);

/// A free TCP port on 127.0.0.1 (distinct within this process).
#[must_use]
pub fn free_port() -> u16 {
    loop {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let p = l.local_addr().expect("addr").port();
        if NEXT_PORT.swap(p, Ordering::Relaxed) != p {
            return p;
        }
    }
}

fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn interrupt(child: &Child) {
    signal(child, libc::SIGINT);
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill with a valid pid of our own child.
    unsafe {
        libc::kill(i32::try_from(child.id()).unwrap_or(0), sig);
    }
}

fn wait_with_timeout(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A real nginx serving `dir/www` on 127.0.0.1:`port`, with gzip on for text, a `/post` location
/// that answers POSTs at once (without reading the body), and `/upload` proxied to `upstream` (nginx
/// reads the whole body first, so `Expect: 100-continue` gets a real `100 Continue`).
pub struct Nginx {
    child: Child,
    /// Its port.
    pub port: u16,
}

impl Nginx {
    /// Starts nginx; files to serve go in `dir/www`.
    #[must_use]
    pub fn start(dir: &Path, port: u16, upstream: u16) -> Self {
        Self::start_with(dir, port, upstream, "")
    }

    /// [`Nginx::start`] with `extra` directives in its `http` block (the benchmark's tuning).
    #[must_use]
    pub fn start_with(dir: &Path, port: u16, upstream: u16, extra: &str) -> Self {
        Self::start_with_server(dir, port, upstream, extra, "")
    }

    /// [`Nginx::start_with`] plus `server_extra` directives in its `server` block (e.g. a
    /// `location` that answers from the configuration, without a file).
    #[must_use]
    pub fn start_with_server(dir: &Path, port: u16, upstream: u16, extra: &str, server_extra: &str) -> Self {
        let www = dir.join("www");
        std::fs::create_dir_all(&www).expect("www");
        let conf = dir.join("nginx.conf");
        let server_extra = if server_extra.is_empty() { String::new() } else { format!("  {server_extra}\n") };
        std::fs::write(
            &conf,
            format!(
                "user root;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
                 events {{ worker_connections 256; }}\n\
                 http {{\n access_log off;\n client_body_temp_path {d}/body;\n proxy_temp_path {d}/proxy;\n\
                 fastcgi_temp_path {d}/fcgi;\n uwsgi_temp_path {d}/uwsgi;\n scgi_temp_path {d}/scgi;\n\
                 default_type application/octet-stream;\n types {{ text/plain txt; text/html html; }}\n\
                 keepalive_requests 1000000;\n gzip on;\n gzip_types text/plain;\n gzip_min_length 64;\n {extra}\n\
                 server {{\n  listen 127.0.0.1:{port};\n  root {www};\n\
                 location = /post {{ client_max_body_size 10m; return 201 \"created\\n\"; }}\n\
                 location = /upload {{ client_max_body_size 10m; proxy_pass http://127.0.0.1:{upstream}; }}\n{server_extra} }}\n}}\n",
                d = dir.display(),
                www = www.display(),
            ),
        )
        .expect("nginx.conf");
        let child = Command::new(if have("nginx") { "nginx" } else { "/usr/sbin/nginx" })
            .args(["-c"])
            .arg(&conf)
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx (apt-get install nginx)");
        wait_for_port(port, "nginx");
        Self { child, port }
    }

    /// The master process' id (its worker is its child).
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Nginx {
    /// SIGTERM lets the master stop its workers; SIGKILL (after 5 s) would orphan them, each still
    /// holding the listening socket.
    fn drop(&mut self) {
        // SAFETY: kill with the pid of our own child.
        unsafe {
            libc::kill(i32::try_from(self.child.id()).unwrap_or(0), libc::SIGTERM);
        }
        let _ = wait_with_timeout(&mut self.child, Duration::from_secs(5));
    }
}

/// A tiny HTTP server on a port the agent is not configured for; it must never show up in events.
/// With `close_delimited`, it answers HTTP/1.0 without a length and closes (a body ended by FIN).
pub struct TinyServer {
    /// Its port.
    pub port: u16,
}

impl TinyServer {
    /// Starts serving in a background thread (for the life of the test process).
    #[must_use]
    pub fn start(close_delimited: bool) -> Self {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            for mut s in l.incoming().flatten() {
                let mut r = BufReader::new(s.try_clone().expect("clone"));
                let mut line = String::new();
                while r.read_line(&mut line).is_ok_and(|n| n > 0) {
                    if line == "\r\n" {
                        let body = "close-delimited body\n".repeat(50);
                        let resp = if close_delimited {
                            format!("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n{body}")
                        } else {
                            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\ndecoy".to_owned()
                        };
                        let _ = s.write_all(resp.as_bytes());
                        if close_delimited {
                            break;
                        }
                    }
                    line.clear();
                }
            }
        });
        Self { port }
    }
}

/// The agent, running live in the background.
pub struct LiveAgent {
    child: Child,
    out: PathBuf,
    err: PathBuf,
}

impl LiveAgent {
    /// Starts `packetbeat-agent run` on `lo` with `kind` (`ebpf` or `af_packet`) for HTTP on `ports`.
    #[must_use]
    pub fn start(dir: &Path, kind: &str, ports: &[u16], extra: &[&str]) -> Self {
        let ports: Vec<String> = ports.iter().map(ToString::to_string).collect();
        Self::start_with(dir, kind, &format!("[{{type: http, ports: [{}]}}]", ports.join(",")), extra)
    }

    /// Starts `packetbeat-agent run` on `lo` with `kind` and `protocols`, a YAML flow list such as
    /// `[{type: redis, ports: [6380]}]`.
    #[must_use]
    pub fn start_with(dir: &Path, kind: &str, protocols: &str, extra: &[&str]) -> Self {
        let out = dir.join(format!("agent-{kind}.ndjson"));
        let err = dir.join(format!("agent-{kind}.log"));
        let mut cmd = Command::new(agent_bin());
        cmd.arg("run")
            .args(["-E", "packetbeat.interfaces.device=lo"])
            .args(["-E", &format!("packetbeat.interfaces.type={kind}")])
            .args(["-E", &format!("packetbeat.protocols={protocols}")])
            .args(["-E", "packetbeat.workers=2"]);
        for e in extra {
            cmd.args(["-E", e]);
        }
        let child = cmd
            .stdout(std::fs::File::create(&out).expect("out"))
            .stderr(std::fs::File::create(&err).expect("err"))
            .spawn()
            .expect("start agent");
        let agent = Self { child, out, err };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let log = std::fs::read_to_string(&agent.err).unwrap_or_default();
            if log.contains("capturing on") {
                break;
            }
            assert!(Instant::now() < deadline, "agent did not start:\n{log}");
            std::thread::sleep(Duration::from_millis(20));
        }
        agent
    }

    /// Stops its threads (SIGSTOP) until [`LiveAgent::resume`]: what a consumer descheduled on a busy
    /// host looks like to the kernel's ring.
    pub fn pause(&self) {
        signal(&self.child, libc::SIGSTOP);
    }

    /// Lets it run again (SIGCONT).
    pub fn resume(&self) {
        signal(&self.child, libc::SIGCONT);
    }

    /// Stops it (SIGINT → final flush) and returns its events and its log.
    #[must_use]
    pub fn stop(mut self) -> (Vec<Value>, String) {
        std::thread::sleep(Duration::from_millis(300));
        interrupt(&self.child);
        let status = wait_with_timeout(&mut self.child, Duration::from_secs(20));
        let log = std::fs::read_to_string(&self.err).unwrap_or_default();
        assert!(status.is_some_and(|s| s.success()), "agent failed ({status:?}):\n{log}");
        (read_events(&self.out), log)
    }
}

impl Drop for LiveAgent {
    /// A test that panics must not leave the agent capturing.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// tcpdump writing the traffic of `ports` on `lo` to a pcap file.
pub struct Tcpdump {
    child: Child,
    /// The pcap file.
    pub file: PathBuf,
}

impl Tcpdump {
    /// Starts the capture and waits until it listens.
    #[must_use]
    pub fn start(dir: &Path, ports: &[u16]) -> Self {
        let file = dir.join("capture.pcap");
        let err = dir.join("tcpdump.log");
        let filter = ports.iter().map(|p| format!("tcp port {p}")).collect::<Vec<_>>().join(" or ");
        let child = Command::new("tcpdump")
            .args(["-i", "lo", "-s", "0", "-B", "262144", "--immediate-mode", "-U", "-n", "-w"])
            .arg(&file)
            .arg(filter)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&err).expect("err"))
            .spawn()
            .expect("start tcpdump (apt-get install tcpdump)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !std::fs::read_to_string(&err).unwrap_or_default().contains("listening on") {
            assert!(Instant::now() < deadline, "tcpdump did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, file }
    }

    /// Stops the capture, returning the file; fails if tcpdump itself dropped packets (then the
    /// replay would rightly report packet loss and could not be compared with the live run).
    #[must_use]
    pub fn stop(mut self) -> PathBuf {
        std::thread::sleep(Duration::from_millis(300));
        interrupt(&self.child);
        let _ = wait_with_timeout(&mut self.child, Duration::from_secs(10));
        let log = std::fs::read_to_string(self.file.with_file_name("tcpdump.log")).unwrap_or_default();
        assert!(
            log.lines().any(|l| l.trim() == "0 packets dropped by kernel"),
            "tcpdump lost packets, its capture is incomplete:\n{log}"
        );
        self.file.clone()
    }
}

impl Drop for Tcpdump {
    /// A test that panics must not leave tcpdump running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Output of a finished agent command.
#[derive(Debug)]
pub struct Finished {
    /// Exit code (`None`: killed after the time limit).
    pub code: Option<i32>,
    /// Events on stdout.
    pub events: Vec<Value>,
    /// stdout, raw.
    pub stdout: String,
    /// stderr.
    pub stderr: String,
    /// The directory of the run's config (and input, see [`replay_in`]): it lives as long as this
    /// output, so it is kept when a check of the output fails.
    _dir: Option<TempDir>,
}

/// Runs `packetbeat-agent replay FILE` with `config` (YAML text) and a time limit.
#[must_use]
pub fn replay(file: &Path, config: &str, limit: Duration) -> Finished {
    replay_in(temp_dir("replay"), file, config, limit)
}

/// [`replay`] with the config written into `dir`, which the returned [`Finished`] owns (so a `file`
/// made in `dir` is kept along with it when a check of the output fails).
#[must_use]
pub fn replay_in(dir: TempDir, file: &Path, config: &str, limit: Duration) -> Finished {
    let cfg = dir.join("packetbeat.yml");
    std::fs::write(&cfg, config).expect("config");
    let args = [OsArg::from("replay"), file.as_os_str().into(), "-c".into(), cfg.as_os_str().into()];
    Finished { _dir: Some(dir), ..run_agent(&args, limit) }
}

type OsArg = std::ffi::OsString;

/// Runs the agent with `args` and a time limit, capturing everything.
#[must_use]
pub fn run_agent(args: &[OsArg], limit: Duration) -> Finished {
    let mut child = Command::new(agent_bin())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start agent");
    let mut so = child.stdout.take().expect("stdout");
    let mut se = child.stderr.take().expect("stderr");
    let t1 = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = so.read_to_string(&mut s);
        s
    });
    let t2 = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = se.read_to_string(&mut s);
        s
    });
    let status = wait_with_timeout(&mut child, limit);
    let stdout = t1.join().unwrap_or_default();
    let stderr = t2.join().unwrap_or_default();
    let events = stdout.lines().filter(|l| !l.trim().is_empty()).filter_map(|l| serde_json::from_str(l).ok()).collect();
    Finished { code: status.and_then(|s| s.code()), events, stdout, stderr, _dir: None }
}

/// Reads NDJSON events from a file; every non-blank line must be a JSON object.
#[must_use]
pub fn read_events(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// A dotted-path lookup in an event.
#[must_use]
pub fn get<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(v, |v, k| v.get(k).unwrap_or(&Value::Null))
}
pub mod live_bench;
pub mod mysql_server;
pub mod opensearch;
pub mod pcap;
pub mod pgsql_server;
pub mod redis_server;
pub mod temp;

pub use temp::{temp_dir, TempDir};
