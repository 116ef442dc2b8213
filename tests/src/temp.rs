//! Temporary directories that clean up after a passing test and stay behind after a failing one.
//!
//! Every integration test works in a directory of its own (configs, captures, the agent's output
//! and log, a server's data and log). Left behind after every run, they piled up in `/tmp` by the
//! hundred; removed unconditionally, a failure could not be looked into afterwards. So
//! [`temp_dir`] returns a [`TempDir`] guard: dropped normally it deletes the directory, dropped
//! while the thread unwinds from a panic (a failed assertion) it keeps it and says where it is.
//!
//! The guard must be dropped only after everything that writes into the directory has stopped
//! (nginx, a database, tcpdump, the agent): declare it before them, since locals are dropped in
//! reverse order of declaration.

use std::ops::Deref;
use std::path::{Path, PathBuf};

/// A directory that is removed on drop, unless the thread is panicking (then it is kept for
/// debugging and its path printed to stderr). Derefs to its [`Path`].
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `path` afresh (removing whatever was there) and guards it.
    ///
    /// # Panics
    /// The directory cannot be created.
    #[must_use]
    pub fn create(path: PathBuf) -> Self {
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        Self { path }
    }

    /// The directory.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Deref for TempDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("test failed: kept {} for debugging", self.path.display());
            return;
        }
        match std::fs::remove_dir_all(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                eprintln!("could not remove {}: {e}", self.path.display());
            }
            _ => {}
        }
    }
}

/// A fresh temporary directory, `$TMPDIR/pb-it-NAME-PID-PORT`, removed when the returned guard is
/// dropped unless a test is failing (see the module docs).
#[must_use]
pub fn temp_dir(name: &str) -> TempDir {
    TempDir::create(std::env::temp_dir().join(format!("pb-it-{name}-{}-{}", std::process::id(), crate::free_port())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removed_on_normal_drop() {
        let dir = temp_dir("guard-ok");
        let path = dir.to_path_buf();
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("sub/file"), "x").unwrap();
        assert!(path.is_dir());
        drop(dir);
        assert!(!path.exists(), "{} was not removed", path.display());
    }

    #[test]
    fn already_gone_is_fine() {
        let dir = temp_dir("guard-gone");
        std::fs::remove_dir_all(&dir).unwrap();
        drop(dir);
    }

    #[test]
    fn kept_when_dropped_during_a_panic() {
        let mut kept = None;
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let dir = temp_dir("guard-panic");
            std::fs::write(dir.join("evidence"), "x").unwrap();
            kept = Some(dir.to_path_buf());
            panic!("a failing test");
        }));
        assert!(r.is_err());
        let path = kept.expect("the closure ran");
        assert!(path.join("evidence").is_file(), "{} was removed during a panic", path.display());
        std::fs::remove_dir_all(&path).unwrap();
    }
}
