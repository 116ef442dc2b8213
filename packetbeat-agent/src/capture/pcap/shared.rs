//! One read of a capture file for all the replay workers.
//!
//! With N replay workers every worker walks the whole file and keeps the frames of its own flows
//! (see `pipeline::Split::FlowHash`). When each opened the file for itself, the kernel copied the
//! whole file out of the page cache N times: on the HTTP keep-alive capture that copy was about a
//! tenth of a worker's time, paid by every worker. Here the file is read once, in blocks that every
//! worker's [`Reader`](super::reader::Reader) parses in place; whichever worker first needs a block
//! reads it, under a lock, and the others find it ready.
//!
//! Memory stays bounded: a block is dropped (and its buffer reused) once every worker has moved two
//! blocks past it, and a worker more than [`MAX_AHEAD`] blocks ahead of the slowest waits for it.
//! A worker that is gone (its view dropped, a panic included) no longer holds anyone back.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

/// Bytes per block: about what one read of the reader's own buffer took before.
pub(super) const BLOCK_LEN: usize = 256 * 1024;
/// Blocks held at most: how far the fastest worker may run ahead of the slowest.
const MAX_AHEAD: usize = 64;

/// A file being read once for several views.
pub(super) struct SharedFile {
    state: Mutex<State>,
    /// Signalled when blocks are released or a view goes away.
    released: Condvar,
    block_len: usize,
}

struct State {
    input: Box<dyn Read + Send>,
    /// Blocks some view has not taken yet (and the one before, which it may still hold).
    blocks: VecDeque<Arc<Vec<u8>>>,
    /// Index of `blocks[0]` in the file.
    first: u64,
    /// Per view, the index of the block it takes next; `u64::MAX` once it is gone.
    next: Vec<u64>,
    /// Buffers of released blocks, for the next reads.
    spare: Vec<Vec<u8>>,
    /// Set once the input ended (`Ok`) or failed (the error, for every view).
    end: Option<Result<(), (io::ErrorKind, String)>>,
}

impl SharedFile {
    /// `views` views of `input`, read in blocks of `block_len` bytes.
    pub(super) fn views(input: Box<dyn Read + Send>, views: usize, block_len: usize) -> Vec<View> {
        let file = Arc::new(Self {
            state: Mutex::new(State {
                input,
                blocks: VecDeque::new(),
                first: 0,
                next: vec![0; views],
                spare: Vec::new(),
                end: None,
            }),
            released: Condvar::new(),
            block_len: block_len.max(1),
        });
        (0..views).map(|id| View { file: Arc::clone(&file), id }).collect()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    /// Drops the blocks no view can hold any more: a view holds at most the block before the one
    /// it takes next.
    fn release(&mut self, released: &Condvar) {
        let slowest = self.next.iter().copied().min().unwrap_or(u64::MAX);
        let mut any = false;
        while self.first.saturating_add(1) < slowest {
            let Some(block) = self.blocks.pop_front() else { break };
            self.first += 1;
            any = true;
            if let Ok(buf) = Arc::try_unwrap(block) {
                self.spare.push(buf);
            }
        }
        if any {
            released.notify_all();
        }
    }

    /// Reads the next block, or records the end of the input.
    fn read_block(&mut self, block_len: usize) {
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.resize(block_len, 0);
        let mut got = 0;
        while got < block_len {
            match self.input.read(buf.get_mut(got..).unwrap_or_default()) {
                Ok(0) => {
                    self.end = Some(Ok(()));
                    break;
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.end = Some(Err((e.kind(), e.to_string())));
                    break;
                }
            }
        }
        if got == 0 {
            self.spare.push(buf);
        } else {
            buf.truncate(got);
            self.blocks.push_back(Arc::new(buf));
        }
    }
}

/// One reader's place in a [`SharedFile`].
pub(super) struct View {
    file: Arc<SharedFile>,
    id: usize,
}

impl View {
    /// Replaces `block` with the next block of the file; `false` at its end.
    ///
    /// # Errors
    /// The read failed (every view gets the same error at the same place).
    pub(super) fn advance(&mut self, block: &mut Arc<Vec<u8>>) -> io::Result<bool> {
        // Let go of the old block first, so that its buffer can be reused.
        *block = Arc::default();
        let file = &*self.file;
        let mut st = file.lock();
        loop {
            let want = st.next.get(self.id).copied().unwrap_or(u64::MAX);
            let at = want.checked_sub(st.first).and_then(|i| usize::try_from(i).ok());
            if let Some(next) = at.and_then(|i| st.blocks.get(i)) {
                *block = Arc::clone(next);
                if let Some(n) = st.next.get_mut(self.id) {
                    *n = want + 1;
                }
                st.release(&file.released);
                return Ok(true);
            }
            match &st.end {
                Some(Ok(())) => return Ok(false),
                Some(Err((kind, msg))) => return Err(io::Error::new(*kind, msg.clone())),
                None => {}
            }
            if st.blocks.len() >= MAX_AHEAD {
                st = file.released.wait(st).unwrap_or_else(PoisonError::into_inner);
            } else {
                st.read_block(file.block_len);
            }
        }
    }
}

impl Drop for View {
    fn drop(&mut self) {
        let mut st = self.file.lock();
        if let Some(n) = st.next.get_mut(self.id) {
            *n = u64::MAX;
        }
        st.release(&self.file.released);
        self.file.released.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    fn bytes(n: usize) -> Vec<u8> {
        (0..n).map(|i| u8::try_from(i % 251).unwrap()).collect()
    }

    fn drain(view: &mut View) -> Vec<u8> {
        let mut block = Arc::default();
        let mut all = Vec::new();
        while view.advance(&mut block).unwrap() {
            all.extend_from_slice(&block);
        }
        all
    }

    #[test]
    fn every_view_sees_the_whole_file_once_read() {
        let data = bytes(10_000);
        let mut views = SharedFile::views(Box::new(Cursor::new(data.clone())), 3, 333);
        for v in &mut views {
            assert_eq!(drain(v), data);
        }
        let st = views[0].file.lock();
        // Every view is at the end; nothing was read twice.
        assert!(st.blocks.len() <= 1, "{} blocks held", st.blocks.len());
        assert_eq!(st.first + st.blocks.len() as u64, 10_000_u64.div_ceil(333));
    }

    #[test]
    fn a_view_far_ahead_waits_and_buffers_are_reused() {
        let data = bytes(MAX_AHEAD * 3 * 100);
        let mut views = SharedFile::views(Box::new(Cursor::new(data.clone())), 2, 100);
        let mut slow = views.pop().unwrap();
        let mut fast = views.pop().unwrap();
        let reader = std::thread::spawn(move || drain(&mut fast));
        std::thread::sleep(std::time::Duration::from_millis(50));
        {
            let st = slow.file.lock();
            assert!(st.blocks.len() <= MAX_AHEAD, "held {} blocks", st.blocks.len());
        }
        assert_eq!(drain(&mut slow), data);
        assert_eq!(reader.join().unwrap(), data);
        assert!(!slow.file.lock().spare.is_empty(), "released buffers are kept for reuse");
    }

    #[test]
    fn a_dropped_view_holds_nobody_back() {
        let data = bytes(MAX_AHEAD * 4 * 10);
        let mut views = SharedFile::views(Box::new(Cursor::new(data.clone())), 2, 10);
        drop(views.pop());
        assert_eq!(drain(&mut views[0]), data);
    }

    struct Failing(usize);

    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0 == 0 {
                return Err(io::Error::other("disk on fire"));
            }
            let n = buf.len().min(self.0);
            buf[..n].fill(1);
            self.0 -= n;
            Ok(n)
        }
    }

    #[test]
    fn a_read_error_reaches_every_view_after_the_bytes_before_it() {
        let mut views = SharedFile::views(Box::new(Failing(250)), 2, 100);
        for v in &mut views {
            let mut block = Arc::default();
            let mut got = 0;
            let err = loop {
                match v.advance(&mut block) {
                    Ok(true) => got += block.len(),
                    Ok(false) => panic!("ended without the error"),
                    Err(e) => break e,
                }
            };
            assert_eq!(got, 250);
            assert!(err.to_string().contains("disk on fire"), "{err}");
        }
    }
}
