//! Outputs: where serialized events go. Workers serialize events into NDJSON chunks; one output
//! thread writes them, so a slow disk or terminal never holds a worker for more than one chunk.

pub mod console;
pub mod elasticsearch;
pub mod file;

use std::io;

/// A run of NDJSON lines (each ending in `\n`) and how many events it holds.
#[derive(Debug, Default)]
pub struct Chunk {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Events in `bytes`.
    pub events: u64,
    /// The worker that wrote it: the emptied buffer goes back to that worker's free list, so that
    /// its next chunk is written over memory its own core wrote last.
    pub home: usize,
}

/// An event sink.
pub trait Output: Send {
    /// Writes whole lines.
    ///
    /// # Errors
    /// The write failed.
    fn write_chunk(&mut self, chunk: &Chunk) -> io::Result<()>;

    /// Flushes buffers (called when the queue is empty and at the end).
    ///
    /// # Errors
    /// The flush failed.
    fn flush(&mut self) -> io::Result<()>;

    /// Last call: flushes and waits for what is in flight (bounded by the output's own timeout).
    ///
    /// # Errors
    /// The final flush failed.
    fn close(&mut self) -> io::Result<()> {
        self.flush()
    }
}
