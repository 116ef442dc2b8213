//! A real single-node OpenSearch 2.19 for the Elasticsearch-output tests: the launcher in
//! `tests/opensearch/` (engine jars from Maven Central, cached in ~/.m2) is built once with `mvn`
//! and started on a free port with its data in a temp dir. Dropping the handle kills the JVM, then
//! removes that dir, unless a test is failing (see [`crate::temp`]).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::TempDir;

static BUILD: Mutex<bool> = Mutex::new(false);

fn launcher_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("opensearch")
}

/// Builds the launcher (`mvn -q package`, offline first so a warm ~/.m2 needs no network).
///
/// # Panics
/// Maven is missing or the build fails.
pub fn build_launcher() {
    let mut built = BUILD.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = launcher_dir();
    if *built || (dir.join("target/lib").is_dir() && dir.join("target/classes/dev").is_dir()) {
        *built = true;
        return;
    }
    let run = |offline: bool| {
        let mut c = Command::new("mvn");
        c.current_dir(&dir).args(["-q", "-B", "package", "-DskipTests"]);
        if offline {
            c.arg("-o");
        }
        c.status().is_ok_and(|s| s.success())
    };
    assert!(
        run(true) || run(false),
        "mvn package of tests/opensearch failed (is Maven installed? `cargo xtask setup`)"
    );
    *built = true;
}

/// A running node.
pub struct OpenSearch {
    child: Option<Child>,
    /// HTTP port on 127.0.0.1.
    pub port: u16,
    /// Data and `launcher.log`; `None` only while [`OpenSearch::restart`] moves it to the new node.
    /// Dropped (removed) after [`Drop`] has killed the JVM.
    home: Option<TempDir>,
}

impl OpenSearch {
    /// Starts a node on a free port and waits (bounded) until `GET /` answers.
    #[must_use]
    pub fn start() -> Self {
        let home = crate::temp_dir("opensearch");
        Self::start_at(crate::free_port(), home)
    }

    fn start_at(port: u16, home: TempDir) -> Self {
        build_launcher();
        let dir = launcher_dir();
        let log_path = home.join("launcher.log");
        let log = std::fs::File::create(&log_path).expect("log file");
        let child = Command::new("java")
            .args(["-Xms512m", "-Xmx512m", "-XX:+UseSerialGC", "-cp"])
            .arg(format!("{0}/target/classes:{0}/target/lib/*", dir.display()))
            .arg("dev.packetbeat.opensearch.Launcher")
            .arg(port.to_string())
            .arg(home.path())
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start java");
        let node = Self { child: Some(child), port, home: Some(home) };
        let deadline = Instant::now() + Duration::from_secs(90);
        while node.request("GET", "/", None).0 != 200 {
            assert!(Instant::now() < deadline, "OpenSearch did not answer on {port}; see {}", log_path.display());
            std::thread::sleep(Duration::from_millis(250));
        }
        node
    }

    /// `http://127.0.0.1:PORT`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills the JVM (SIGKILL: no graceful shutdown, like a crash).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the node again on the same port and data.
    #[must_use]
    pub fn restart(mut self) -> Self {
        self.kill();
        let (port, home) = (self.port, self.home.take().expect("a node has its home"));
        Self::start_at(port, home)
    }

    /// A blocking HTTP/1.1 request (`Connection: close`); returns status and body. Status 0 when
    /// the node does not answer.
    #[must_use]
    pub fn request(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else { return (0, Value::Null) };
        let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
        let payload = body.map(Value::to_string).unwrap_or_default();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            payload.len()
        );
        if s.write_all(head.as_bytes()).and_then(|()| s.write_all(payload.as_bytes())).is_err() {
            return (0, Value::Null);
        }
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        let text = String::from_utf8_lossy(&raw);
        let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        // Responses to `Connection: close` are not chunked unless large; handle both.
        let body = if text.to_ascii_lowercase().contains("transfer-encoding: chunked") {
            dechunk(body)
        } else {
            body.to_owned()
        };
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    /// Refreshes `index` and returns its document count.
    #[must_use]
    pub fn count(&self, index: &str) -> u64 {
        let _ = self.request("POST", &format!("/{index}/_refresh"), None);
        self.request("GET", &format!("/{index}/_count"), None).1["count"].as_u64().unwrap_or(0)
    }
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((len, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

impl Drop for OpenSearch {
    /// Kills the JVM; `home` is dropped after this, so its removal never races the node.
    fn drop(&mut self) {
        self.kill();
    }
}
