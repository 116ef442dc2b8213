//! A minimal HTTP server that can hold 100k+ idle connections: one thread, one epoll set, no
//! per-connection state beyond the socket. It answers each request-bearing read with a fixed tiny
//! response and closes a connection when the peer does. nginx would do too, but this keeps the
//! memory scenario free of its worker and connection limits.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok";

/// The running server; stopped (and every socket closed) on drop.
pub struct HoldServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    open: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

fn check(rc: libc::c_int, what: &str) -> io::Result<libc::c_int> {
    if rc < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("{what}: {e}")));
    }
    Ok(rc)
}

fn listen_socket(port: u16) -> io::Result<(OwnedFd, u16)> {
    // SAFETY: plain syscalls on a socket this function owns; every struct is initialised.
    unsafe {
        let fd = check(
            libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0),
            "socket",
        )?;
        let owned = OwnedFd::from_raw_fd(fd);
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as u16;
        addr.sin_addr.s_addr = u32::from_be_bytes([127, 0, 0, 1]).to_be();
        addr.sin_port = port.to_be();
        let len = size_of::<libc::sockaddr_in>() as libc::socklen_t;
        check(libc::bind(fd, std::ptr::from_ref(&addr).cast(), len), "bind")?;
        // The kernel caps the backlog at net.core.somaxconn.
        check(libc::listen(fd, 65_535), "listen")?;
        let mut got: libc::sockaddr_in = std::mem::zeroed();
        let mut got_len = len;
        check(libc::getsockname(fd, std::ptr::from_mut(&mut got).cast(), &raw mut got_len), "getsockname")?;
        Ok((owned, u16::from_be(got.sin_port)))
    }
}

impl HoldServer {
    /// Binds 127.0.0.1:`port` (0: a free one) and starts serving.
    ///
    /// # Panics
    /// When the socket or the epoll set cannot be created.
    #[must_use]
    pub fn start(port: u16) -> Self {
        let (listener, port) = listen_socket(port).expect("hold server: listening socket");
        let open = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (o, s) = (Arc::clone(&open), Arc::clone(&stop));
        let thread = std::thread::Builder::new()
            .name("hold-server".into())
            .spawn(move || serve(&listener, &o, &s).expect("hold server: epoll loop"))
            .expect("hold server thread");
        Self { port, open, stop, thread: Some(thread) }
    }

    /// Connections currently open on the server side.
    #[must_use]
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }
}

impl Drop for HoldServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn epoll_add(ep: RawFd, fd: RawFd) -> io::Result<()> {
    let mut ev = libc::epoll_event { events: libc::EPOLLIN as u32, u64: u64::try_from(fd).unwrap_or(0) };
    // SAFETY: valid epoll fd, valid event struct.
    check(unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &raw mut ev) }, "epoll_ctl")?;
    Ok(())
}

fn serve(listener: &OwnedFd, open: &AtomicUsize, stop: &AtomicBool) -> io::Result<()> {
    // SAFETY: epoll_create1 has no preconditions; the fd is owned right away.
    let ep = unsafe { OwnedFd::from_raw_fd(check(libc::epoll_create1(libc::EPOLL_CLOEXEC), "epoll_create1")?) };
    let lfd = listener.as_raw_fd();
    epoll_add(ep.as_raw_fd(), lfd)?;
    let mut conns: Vec<RawFd> = Vec::new();
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        // SAFETY: `events` has room for its length.
        let n = unsafe { libc::epoll_wait(ep.as_raw_fd(), events.as_mut_ptr(), 1024, 100) };
        if n < 0 {
            continue; // EINTR
        }
        for ev in &events[..usize::try_from(n).unwrap_or(0)] {
            let fd = RawFd::try_from(ev.u64).unwrap_or(-1);
            if fd == lfd {
                loop {
                    // SAFETY: accept4 on our listening socket; the peer address is not wanted.
                    let c = unsafe {
                        libc::accept4(
                            lfd,
                            std::ptr::null_mut(),
                            std::ptr::null_mut(),
                            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                        )
                    };
                    if c < 0 {
                        break;
                    }
                    if epoll_add(ep.as_raw_fd(), c).is_ok() {
                        open.fetch_add(1, Ordering::Relaxed);
                        if conns.len() <= usize::try_from(c).unwrap_or(0) {
                            conns.resize(usize::try_from(c).unwrap_or(0) + 1, -1);
                        }
                        conns[usize::try_from(c).unwrap_or(0)] = c;
                    } else {
                        // SAFETY: closing a socket we just accepted and do not keep.
                        unsafe { libc::close(c) };
                    }
                }
                continue;
            }
            // SAFETY: `buf` is writable for its length; `fd` is a connection we accepted.
            let got = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
            if got > 0 {
                // A lost write only means the client waits for nothing: it reads with a timeout.
                // SAFETY: the response is a valid buffer of its length.
                let _ = unsafe { libc::write(fd, RESPONSE.as_ptr().cast(), RESPONSE.len()) };
            } else if got == 0 || io::Error::last_os_error().kind() != io::ErrorKind::WouldBlock {
                // SAFETY: closing removes the fd from the epoll set; it is forgotten below.
                unsafe { libc::close(fd) };
                if let Some(slot) = conns.get_mut(usize::try_from(fd).unwrap_or(usize::MAX)) {
                    *slot = -1;
                }
                open.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
    for fd in conns.into_iter().filter(|&fd| fd >= 0) {
        // SAFETY: every remaining fd is an open connection of ours.
        unsafe { libc::close(fd) };
    }
    Ok(())
}
