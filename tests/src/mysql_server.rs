//! A throwaway MariaDB server for the MySQL integration tests: a fresh data directory in the test's
//! temp dir (`mariadb-install-db`), `mariadbd` on 127.0.0.1 and a free port with grant tables off,
//! stopped on drop, and its data deleted unless a test is failing (see [`crate::temp`]).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{have, wait_for_port, wait_with_timeout};

/// A running MariaDB server.
pub struct MariaDb {
    child: Child,
    datadir: PathBuf,
    /// Its TCP port on 127.0.0.1.
    pub port: u16,
}

impl MariaDb {
    /// Whether the server and the client are installed.
    #[must_use]
    pub fn available() -> bool {
        have("mariadbd") && have("mariadb-install-db") && have("mariadb")
    }

    /// Initialises a data directory under `dir` and starts the server on `port`.
    #[must_use]
    pub fn start(dir: &Path, port: u16) -> Self {
        let datadir = dir.join("mariadb-data");
        let log = dir.join("mariadb-install.log");
        let st = Command::new("mariadb-install-db")
            .args(["--no-defaults", "--auth-root-authentication-method=normal", "--user=root", "--skip-test-db"])
            .arg(format!("--datadir={}", datadir.display()))
            .stdout(std::fs::File::create(&log).expect("log"))
            .stderr(Stdio::null())
            .status()
            .expect("mariadb-install-db (apt-get install mariadb-server)");
        assert!(st.success(), "mariadb-install-db failed, see {}", log.display());
        let child = Command::new(if have("mariadbd") { "mariadbd" } else { "/usr/sbin/mariadbd" })
            .args(["--no-defaults", "--user=root", "--skip-grant-tables", "--bind-address=127.0.0.1", "--skip-log-bin"])
            .args(["--innodb-buffer-pool-size=16M", "--local-infile=1", "--skip-name-resolve"])
            .arg(format!("--port={port}"))
            .arg(format!("--datadir={}", datadir.display()))
            .arg(format!("--socket={}", dir.join("mariadb.sock").display()))
            .arg(format!("--pid-file={}", dir.join("mariadb.pid").display()))
            .arg(format!("--log-error={}", dir.join("mariadb.err").display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mariadbd");
        wait_for_port(port, "mariadbd");
        Self { child, datadir, port }
    }

    /// Runs the `mariadb` command-line client (text protocol) in batch mode with `sql` on its
    /// standard input; returns whether it succeeded, and its output.
    #[must_use]
    pub fn client(&self, database: Option<&str>, sql: &str) -> (bool, String) {
        let mut cmd = Command::new("mariadb");
        cmd.args([
            "--no-defaults",
            "-h",
            "127.0.0.1",
            "-u",
            "root",
            "--local-infile=1",
            "--batch",
            "--connect-timeout=10",
        ])
        .arg(format!("-P{}", self.port));
        if let Some(db) = database {
            cmd.args(["-D", db]);
        }
        let mut child =
            cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("mariadb client");
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(sql.as_bytes()).expect("client stdin");
        }
        let out = child.wait_with_output().expect("mariadb client");
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        // SAFETY: kill with a valid pid of our own child.
        unsafe {
            libc::kill(i32::try_from(self.child.id()).unwrap_or(0), libc::SIGTERM);
        }
        if wait_with_timeout(&mut self.child, Duration::from_secs(20)).is_none() {
            let _ = self.child.kill();
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.datadir);
        }
    }
}
