//! A real Redis server for the integration tests (Debian's `redis-server`), on 127.0.0.1 with
//! persistence off and its files in a temp dir, plus helpers that drive it with the real clients
//! (`redis-cli`, `redis-benchmark`) and read its own count of the commands it executed
//! (`INFO commandstats`), the ground truth the agent's transactions are compared with.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A running `redis-server`; killed on drop.
pub struct RedisServer {
    child: Child,
    /// Its port.
    pub port: u16,
}

/// Per-command counters from `INFO commandstats`: `calls`, `rejected_calls`, `failed_calls`.
pub type CommandStats = BTreeMap<String, (u64, u64, u64)>;

impl RedisServer {
    /// Starts the server on `port` with its working files in `dir`, and waits until it answers.
    #[must_use]
    pub fn start(dir: &Path, port: u16) -> Self {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no", "--logfile", ""])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server (apt-get install redis-server)");
        let server = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while server.cli(&["PING"]).trim() != "PONG" {
            assert!(Instant::now() < deadline, "redis-server did not answer on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn cli_command(&self) -> Command {
        let mut c = Command::new("redis-cli");
        c.args(["-h", "127.0.0.1", "-p", &self.port.to_string()]);
        c
    }

    /// Runs `redis-cli ARGS` (one connection, one command) and returns its stdout.
    #[must_use]
    pub fn cli(&self, args: &[&str]) -> String {
        let out = self.cli_command().args(args).output().expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `redis-cli EXTRA` reading one command per line from `script` (one connection).
    #[must_use]
    pub fn cli_script(&self, extra: &[&str], script: &str) -> String {
        let mut child = self
            .cli_command()
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-cli");
        child.stdin.take().expect("stdin").write_all(script.as_bytes()).expect("script");
        let out = wait_output(child, Duration::from_secs(30));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts `redis-cli SUBSCRIBE channels...` in the background (it reads messages until killed).
    #[must_use]
    pub fn subscriber(&self, channels: &[&str]) -> Child {
        self.cli_command()
            .arg("SUBSCRIBE")
            .args(channels)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-cli")
    }

    /// Runs `redis-benchmark` with `args` against the server.
    pub fn benchmark(&self, args: &[&str]) {
        let out = Command::new("redis-benchmark")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("redis-benchmark");
        let out = wait_output(out, Duration::from_secs(60));
        assert!(out.status.success(), "redis-benchmark failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// The server's per-command counters (`cmdstat_config|get` → `"config|get"`).
    #[must_use]
    pub fn command_stats(&self) -> CommandStats {
        let text = self.cli(&["INFO", "commandstats"]);
        let mut stats = CommandStats::new();
        for line in text.lines() {
            let Some((name, rest)) = line.trim().strip_prefix("cmdstat_").and_then(|l| l.split_once(':')) else {
                continue;
            };
            let num = |key: &str| {
                rest.split(',').find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')?.parse().ok()).unwrap_or(0)
            };
            stats.insert(name.to_owned(), (num("calls"), num("rejected_calls"), num("failed_calls")));
        }
        stats
    }
}

fn wait_output(mut child: Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().ok().flatten().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("client output")
}

/// What was executed between two snapshots: `command → (calls + rejected, errors)`.
#[must_use]
pub fn stats_delta(before: &CommandStats, after: &CommandStats) -> BTreeMap<String, (u64, u64)> {
    let mut d = BTreeMap::new();
    for (name, &(c, r, f)) in after {
        let (c0, r0, f0) = before.get(name).copied().unwrap_or_default();
        let n = (c + r).saturating_sub(c0 + r0);
        if n > 0 {
            d.insert(name.clone(), (n, (r + f).saturating_sub(r0 + f0)));
        }
    }
    d
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
