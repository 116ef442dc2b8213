//! The agent under measurement: `packetbeat-agent run` on `lo` in one capture mode, its events on
//! stdout into a file, its log (with the counters it prints every second and at shutdown) in
//! another. Unlike the test harness' `LiveAgent`, this keeps the pid for `/proc` sampling and reads
//! the counters instead of parsing every event.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use super::proc_stats::{self, ProcSample};

/// Named counters as the agent logs them (`name=value`, zero values left out).
pub type Counters = BTreeMap<String, u64>;

/// A running agent; killed on drop if not stopped.
pub struct BenchAgent {
    child: Child,
    out: PathBuf,
    err: PathBuf,
}

/// What a stopped agent reported.
#[derive(Debug, Default)]
pub struct Stopped {
    /// Its counters at shutdown.
    pub counters: Counters,
    /// Output lines (events) by their top-level `type` (`http`, `redis`, `pgsql`, `flow`…).
    pub events_by_type: BTreeMap<String, u64>,
    /// Whether it exited 0 after SIGINT.
    pub clean_exit: bool,
}

impl BenchAgent {
    /// Starts the agent on `lo` with capture `mode` (`ebpf` | `af_packet`), the YAML flow list
    /// `protocols`, 2 workers (the cores of the box), counters logged every second, and `extra`
    /// `-E` overrides. Waits until it captures.
    #[must_use]
    pub fn start(agent: &Path, dir: &Path, mode: &str, protocols: &str, extra: &[String]) -> Self {
        Self::start_on(agent, dir, mode, protocols, extra, &[], false)
    }

    /// [`BenchAgent::start`], pinned to `cpus` (every CPU when empty) and, with `realtime`, under
    /// `SCHED_RR` so that no ordinary process on those CPUs can keep it waiting.
    #[must_use]
    pub fn start_on(
        agent: &Path,
        dir: &Path,
        mode: &str,
        protocols: &str,
        extra: &[String],
        cpus: &[usize],
        realtime: bool,
    ) -> Self {
        let out = dir.join(format!("agent-{mode}.ndjson"));
        let err = dir.join(format!("agent-{mode}.log"));
        let mut cmd = Command::new(agent);
        cmd.arg("run")
            .args(["-E", "packetbeat.interfaces.device=lo"])
            .args(["-E", &format!("packetbeat.interfaces.type={mode}")])
            .args(["-E", &format!("packetbeat.protocols={protocols}")])
            .args(["-E", "packetbeat.workers=2"])
            .args(["-E", "logging.metrics.period=1s"])
            .env("NO_COLOR", "1");
        for e in extra {
            cmd.args(["-E", e]);
        }
        if !cpus.is_empty() || realtime {
            let cpus = cpus.to_vec();
            // SAFETY: only sched_setaffinity and sched_setscheduler, plain syscalls, run in the
            // forked child.
            unsafe {
                std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
                    if !cpus.is_empty() && !super::set_affinity(0, &cpus) {
                        return Err(std::io::Error::last_os_error());
                    }
                    let param = libc::sched_param { sched_priority: 10 };
                    if realtime && libc::sched_setscheduler(0, libc::SCHED_RR, &raw const param) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let child = cmd
            .stdout(std::fs::File::create(&out).expect("create the agent's output file"))
            .stderr(std::fs::File::create(&err).expect("create the agent's log file"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", agent.display()));
        let mut me = Self { child, out, err };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let log = me.log();
            if log.contains("capturing on") {
                break;
            }
            if let Ok(Some(status)) = me.child.try_wait() {
                panic!("the agent exited at start ({status}):\n{log}");
            }
            assert!(Instant::now() < deadline, "the agent did not start within 20 s:\n{log}");
            std::thread::sleep(Duration::from_millis(20));
        }
        me
    }

    /// Its process id.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU time and memory now.
    #[must_use]
    pub fn sample(&self) -> ProcSample {
        proc_stats::sample(self.pid()).expect("the agent died during the measurement")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// The counters of the most recent periodic log line (at most a second old).
    #[must_use]
    pub fn latest_counters(&self) -> Counters {
        self.log().lines().rev().find_map(parse_counters).unwrap_or_default()
    }

    /// Stops it with SIGINT (final flush), reads its shutdown counters, counts its events by type and
    /// deletes the event file (a benchmark run writes hundreds of MB).
    #[must_use]
    pub fn stop(mut self) -> Stopped {
        // SAFETY: kill with the pid of our own child.
        unsafe {
            libc::kill(i32::try_from(self.child.id()).unwrap_or(0), libc::SIGINT);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut clean_exit = false;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                clean_exit = status.success();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let log = self.log();
        let counters = log
            .lines()
            .rev()
            .find(|l| l.contains("stopped:"))
            .and_then(parse_counters)
            .unwrap_or_else(|| log.lines().rev().find_map(parse_counters).unwrap_or_default());
        if !clean_exit {
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            eprintln!("warning: the agent did not stop cleanly; last log lines:\n{}", tail.join("\n"));
        }
        let events_by_type = count_by_type(&self.out);
        let _ = std::fs::remove_file(&self.out);
        Stopped { counters, events_by_type, clean_exit }
    }
}

impl Drop for BenchAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `... counters: a=1 b=2` → `{a: 1, b: 2}`; `None` for lines without counters.
fn parse_counters(line: &str) -> Option<Counters> {
    let (_, list) = line.rsplit_once("counters:")?;
    Some(
        list.split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .filter_map(|(k, v)| Some((k.to_owned(), v.parse().ok()?)))
            .collect(),
    )
}

/// Counts NDJSON lines by their `"type":"…"` value without parsing whole events.
fn count_by_type(path: &Path) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let Ok(file) = std::fs::File::open(path) else { return out };
    for line in BufReader::with_capacity(1 << 20, file).split(b'\n').map_while(Result::ok) {
        if line.is_empty() {
            continue;
        }
        let kind = event_type(&line).unwrap_or("?");
        *out.entry(kind.to_owned()).or_insert(0) += 1;
    }
    out
}

/// The value of the event's `"type":"…"` that is not `@metadata.type` (`_doc`), `agent.type`
/// (`packetbeat`) or `network.type` (an IP version).
fn event_type(line: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(line).ok()?;
    text.match_indices("\"type\":\"").find_map(|(i, m)| {
        let rest = &text[i + m.len()..];
        let value = &rest[..rest.find('"')?];
        (!matches!(value, "_doc" | "packetbeat" | "ipv4" | "ipv6")).then_some(value)
    })
}

/// A counter, 0 when absent (the agent leaves zero counters out of its log line).
#[must_use]
pub fn counter(c: &Counters, name: &str) -> u64 {
    c.get(name).copied().unwrap_or(0)
}

/// Frames the capture path lost before the agent could read them: BPF ring full (`ebpf`) and
/// AF_PACKET ring drops (`af_packet`).
#[must_use]
pub fn capture_drops(c: &Counters) -> u64 {
    counter(c, "kernel.ring_full") + counter(c, "af_packet.drops")
}

/// Everything else the agent counted as lost on the way to an event: reassembly gaps (once, not
/// again per protocol), full
/// connection table, protocol queue limits, full output queue.
#[must_use]
pub fn other_losses(c: &Counters) -> u64 {
    c.iter()
        .filter(|(k, _)| {
            k.as_str() == "flow.gaps"
                || k.ends_with(".queue_full")
                || k.ends_with("table_full")
                || k.as_str() == "publish.dropped_queue_full"
                || k.as_str() == "output.dropped_after_error"
        })
        .map(|(_, v)| *v)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_counter_line() {
        let c = parse_counters("2026 INFO stopped: 5 events; counters: kernel.seen=10 http.transactions=5").unwrap();
        assert_eq!(counter(&c, "kernel.seen"), 10);
        assert_eq!(counter(&c, "http.transactions"), 5);
        assert_eq!(counter(&c, "kernel.ring_full"), 0);
        assert!(parse_counters("capturing on lo").is_none());
    }

    #[test]
    fn finds_the_event_type() {
        let e =
            br#"{"@metadata":{"type":"_doc"},"agent":{"type":"packetbeat"},"network":{"type":"ipv4"},"type":"http"}"#;
        assert_eq!(event_type(e), Some("http"));
    }
}
