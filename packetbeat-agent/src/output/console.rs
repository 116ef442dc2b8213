//! `output.console`: NDJSON on stdout (the default when no output is configured). Logs never go
//! to stdout, so stdout is a clean event stream (the conformance contract).

use std::io::{self, BufWriter, Stdout, Write};

use super::{Chunk, Output};

/// Writes events to stdout.
pub struct ConsoleOutput {
    out: BufWriter<Stdout>,
    pretty: bool,
}

impl ConsoleOutput {
    /// A console output; `pretty` re-indents every event.
    #[must_use]
    pub fn new(pretty: bool) -> Self {
        Self { out: BufWriter::with_capacity(1 << 16, io::stdout()), pretty }
    }
}

impl Output for ConsoleOutput {
    fn write_chunk(&mut self, chunk: &Chunk) -> io::Result<()> {
        if !self.pretty {
            return self.out.write_all(&chunk.bytes);
        }
        for line in chunk.bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            match serde_json::from_slice::<serde_json::Value>(line) {
                Ok(v) => {
                    serde_json::to_writer_pretty(&mut self.out, &v)?;
                    self.out.write_all(b"\n")?;
                }
                Err(_) => {
                    self.out.write_all(line)?;
                    self.out.write_all(b"\n")?;
                }
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
