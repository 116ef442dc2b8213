//! `output.file`: NDJSON files with size-based rotation, as libbeat 8 names them:
//! `<filename>-<YYYYMMDD>.ndjson`, then `<filename>-<YYYYMMDD>-1.ndjson`, … keeping at most
//! `number_of_files` files (the oldest are deleted).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::{Chunk, Output};
use crate::config::FileOutputConfig;
use crate::time::Timestamp;

/// Writes events to rotating files.
pub struct FileOutput {
    dir: PathBuf,
    base: String,
    max_bytes: u64,
    keep: usize,
    permissions: u32,
    current: BufWriter<File>,
    written: u64,
    date: String,
    seq: u32,
}

fn today() -> String {
    Timestamp::now().to_string().get(..10).unwrap_or("19700101").replace('-', "")
}

impl FileOutput {
    /// Opens (creating the directory) the first file.
    ///
    /// # Errors
    /// The directory or file cannot be created.
    pub fn open(cfg: &FileOutputConfig) -> io::Result<Self> {
        let dir = PathBuf::from(&cfg.path);
        fs::create_dir_all(&dir)
            .map_err(|e| io::Error::new(e.kind(), format!("output.file.path {}: {e}", dir.display())))?;
        let date = today();
        let mut seq = 0;
        // Do not overwrite a file of an earlier run: continue after the newest sequence number.
        while dir.join(Self::name(&cfg.filename, &date, seq)).exists() {
            seq += 1;
        }
        let file = Self::create(&dir.join(Self::name(&cfg.filename, &date, seq)), cfg.permissions)?;
        let out = Self {
            dir,
            base: cfg.filename.clone(),
            max_bytes: cfg.rotate_every_kb.saturating_mul(1024),
            keep: cfg.number_of_files,
            permissions: cfg.permissions,
            current: BufWriter::with_capacity(1 << 16, file),
            written: 0,
            date,
            seq,
        };
        out.prune()?;
        Ok(out)
    }

    fn name(base: &str, date: &str, seq: u32) -> String {
        if seq == 0 {
            format!("{base}-{date}.ndjson")
        } else {
            format!("{base}-{date}-{seq}.ndjson")
        }
    }

    fn create(path: &Path, mode: u32) -> io::Result<File> {
        OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(mode)
            .open(path)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot create {}: {e}", path.display())))
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.current.flush()?;
        let date = today();
        if date == self.date {
            self.seq += 1;
        } else {
            self.date = date;
            self.seq = 0;
        }
        let path = self.dir.join(Self::name(&self.base, &self.date, self.seq));
        self.current = BufWriter::with_capacity(1 << 16, Self::create(&path, self.permissions)?);
        self.written = 0;
        self.prune()
    }

    /// Deletes the oldest of our files beyond `number_of_files`.
    fn prune(&self) -> io::Result<()> {
        let prefix = format!("{}-", self.base);
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = fs::read_dir(&self.dir)?
            .filter_map(Result::ok)
            .filter(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.starts_with(&prefix) && n.ends_with(".ndjson")
            })
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        files.sort();
        let excess = files.len().saturating_sub(self.keep);
        for (_, p) in files.into_iter().take(excess) {
            fs::remove_file(p)?;
        }
        Ok(())
    }
}

impl Output for FileOutput {
    fn write_chunk(&mut self, chunk: &Chunk) -> io::Result<()> {
        for line in chunk.bytes.split_inclusive(|b| *b == b'\n') {
            let len = line.len() as u64;
            if self.written > 0 && self.written + len > self.max_bytes {
                self.rotate()?;
            }
            self.current.write_all(line)?;
            self.written += len;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.current.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_and_keeps_n_files() {
        let dir = std::env::temp_dir().join(format!("pb-file-out-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let cfg = FileOutputConfig {
            path: dir.display().to_string(),
            rotate_every_kb: 1,
            number_of_files: 3,
            ..Default::default()
        };
        let mut out = FileOutput::open(&cfg).unwrap();
        let line = format!("{{\"x\":\"{}\"}}\n", "a".repeat(300));
        for _ in 0..20 {
            out.write_chunk(&Chunk { bytes: line.clone().into_bytes(), events: 1, home: 0 }).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        out.flush().unwrap();
        let files: Vec<_> = fs::read_dir(&dir).unwrap().filter_map(Result::ok).collect();
        assert_eq!(files.len(), 3, "{files:?}");
        for f in files {
            let len = f.metadata().unwrap().len();
            assert!(len <= 1024, "{len}");
            let text = fs::read_to_string(f.path()).unwrap();
            assert!(text.lines().all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()));
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}
