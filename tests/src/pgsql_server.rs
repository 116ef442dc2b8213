//! A throwaway PostgreSQL 15 server for the integration tests: `initdb` into a temp dir (trust
//! authentication, no fsync), started with `pg_ctl` as the `postgres` user on 127.0.0.1 and a free
//! port, its socket in the same temp dir, stopped (immediate mode) on drop, and deleted then unless
//! a test is failing (see [`crate::temp`]: its data and `server.log` are kept for debugging).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where Debian's `postgresql-15` puts the server programs (also linked into /usr/local/bin).
const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

fn pg_program(name: &str) -> PathBuf {
    let p = Path::new(PG_BIN).join(name);
    if p.exists() {
        p
    } else {
        PathBuf::from(name)
    }
}

/// Whether the server programs and the clients the tests drive are installed.
#[must_use]
pub fn available() -> bool {
    pg_program("initdb").exists() || crate::have("initdb") && crate::have("psql") && crate::have("pgbench")
}

/// Runs `cmd` as the `postgres` user (the server refuses to run as root).
fn as_postgres(program: &Path) -> Command {
    let mut c = Command::new("runuser");
    c.args(["-u", "postgres", "--"]).arg(program);
    c
}

/// A running server.
pub struct PgServer {
    data: PathBuf,
    dir: PathBuf,
    /// Its TCP port on 127.0.0.1.
    pub port: u16,
}

impl PgServer {
    /// Creates a cluster in `dir/pgdata` and starts it on 127.0.0.1:`port`.
    #[must_use]
    pub fn start(dir: &Path, port: u16) -> Self {
        let dir = dir.join("pg");
        let data = dir.join("pgdata");
        std::fs::create_dir_all(&data).expect("pg dir");
        let st = Command::new("chown").args(["-R", "postgres:postgres"]).arg(&dir).status().expect("chown");
        assert!(st.success(), "chown {} to postgres failed", dir.display());
        // The postgres user must be able to reach the directory.
        let mut p = dir.parent();
        while let Some(d) = p {
            if d == Path::new("/") {
                break;
            }
            let _ = Command::new("chmod").arg("o+x").arg(d).status();
            p = d.parent();
        }
        let out = as_postgres(&pg_program("initdb"))
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync", "-D"])
            .arg(&data)
            .stdout(Stdio::null())
            .output()
            .expect("run initdb (apt-get install postgresql-15)");
        assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        let opts = format!(
            "-p {port} -h 127.0.0.1 -k {} -c fsync=off -c ssl=off -c max_connections=20 -c shared_buffers=16MB",
            dir.display()
        );
        let out = as_postgres(&pg_program("pg_ctl"))
            .args(["-w", "-t", "30", "-D"])
            .arg(&data)
            .args(["-l"])
            .arg(dir.join("server.log"))
            .args(["-o", &opts, "start"])
            .stdout(Stdio::null())
            .output()
            .expect("run pg_ctl");
        let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
        assert!(out.status.success(), "pg_ctl start failed: {}\n{log}", String::from_utf8_lossy(&out.stderr));
        Self { data, dir, port }
    }

    /// A libpq connection string for it.
    #[must_use]
    pub fn conninfo(&self) -> String {
        format!("host=127.0.0.1 port={} user=postgres dbname=postgres sslmode=disable", self.port)
    }

    /// `psql` with `args` (`-X`, no password, errors do not stop it); `stdin` is fed to it.
    /// Returns its stdout.
    #[must_use]
    pub fn psql(&self, args: &[&str], stdin: &str) -> String {
        use std::io::Write as _;
        let mut child = Command::new("psql")
            .args(["-X", "-q", "-d", &self.conninfo()])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run psql (apt-get install postgresql-client-15)");
        if let Some(mut i) = child.stdin.take() {
            i.write_all(stdin.as_bytes()).expect("psql stdin");
        }
        let out = child.wait_with_output().expect("psql");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `pgbench` with `args` against this server; panics when it fails.
    pub fn pgbench(&self, args: &[&str]) {
        let out = Command::new("pgbench")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres"])
            .args(args)
            .arg("postgres")
            .output()
            .expect("run pgbench");
        assert!(out.status.success(), "pgbench {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = as_postgres(&pg_program("pg_ctl"))
            .args(["-w", "-t", "20", "-m", "immediate", "-D"])
            .arg(&self.data)
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
