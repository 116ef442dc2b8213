//! What both live sources share: their options, the packet socket the filter hangs on, loading the
//! embedded eBPF program and talking to its maps, and the kernel clock.
//!
//! The order of operations matters and lives here once: the socket is created with protocol 0 (so it
//! receives nothing yet), the filter is attached, and only `bind()` with `ETH_P_ALL` hooks the socket
//! into the receive path — no frame ever reaches it unfiltered. The port selection is a map, so
//! `KernelFilter::set_ports` changes what is captured while the filter stays attached.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use aya::maps::{Array, HashMap, MapData, PerCpuArray, RingBuf};
use aya::programs::SocketFilter;
use aya::{Ebpf, EbpfLoader};
use packetbeat_common::config::{Config, DeliveryMode, PortKey, PortValue, MAX_PORTS, PORT_TCP};
use packetbeat_common::event::RECORD_HEADER_LEN;
use packetbeat_common::names;
use packetbeat_common::stats::Counter;

use super::{CaptureError, SourceCounter};
use crate::time::Timestamp;

/// The eBPF object built by `build.rs` (empty when built with `PACKETBEAT_SKIP_EBPF=1`).
static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/packetbeat"));

/// Whether this binary embeds the kernel program (false when built with `PACKETBEAT_SKIP_EBPF=1`).
#[must_use]
pub fn kernel_program_embedded() -> bool {
    !EBPF_OBJECT.is_empty()
}

/// What a live source captures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveOptions {
    /// Interface name, or `"any"` for every interface.
    pub device: String,
    /// TCP ports to capture (either direction).
    pub ports: Vec<u16>,
    /// Bytes of each frame to keep, from the MAC header (0 = the kernel maximum, 65536).
    pub snaplen: u32,
    /// Size of the kernel ring in bytes (from `buffer_size_mb`). The BPF ring is rounded up to a
    /// power of two holding at least two full-size records; the TPACKET ring to whole blocks.
    pub ring_bytes: u32,
}

/// The interfaces of this host as `(name, ifindex)`, sorted by index, for the `devices` command.
#[must_use]
pub fn list_devices() -> Vec<(String, u32)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/sys/class/net") else {
        return out;
    };
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let index = std::fs::read_to_string(entry.path().join("ifindex")).ok().and_then(|s| s.trim().parse().ok());
        if let Some(index) = index {
            out.push((name, index));
        }
    }
    out.sort_by_key(|&(_, index)| index);
    out
}

/// The interface index of `device`, 0 for `"any"`.
pub(crate) fn ifindex(device: &str) -> Result<u32, CaptureError> {
    if device == "any" {
        return Ok(0);
    }
    let name = CString::new(device).map_err(|_| CaptureError::NoSuchDevice(device.to_owned()))?;
    // SAFETY: `name` is a valid NUL-terminated string for the duration of the call.
    match unsafe { libc::if_nametoindex(name.as_ptr()) } {
        0 => Err(CaptureError::NoSuchDevice(device.to_owned())),
        index => Ok(index),
    }
}

/// An `AF_PACKET`/`SOCK_RAW` socket that receives nothing until [`PacketSocket::bind`].
#[derive(Debug)]
pub(crate) struct PacketSocket(OwnedFd);

impl PacketSocket {
    pub(crate) fn new() -> Result<Self, CaptureError> {
        // SAFETY: plain syscall; protocol 0 means no frames are queued before `bind`.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::PermissionDenied {
                return Err(CaptureError::MissingCapability("CAP_NET_RAW"));
            }
            return Err(io_err("opening an AF_PACKET socket", err));
        }
        // SAFETY: `fd` was just returned by socket() and is owned by nobody else.
        Ok(Self(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Starts receiving: every protocol, on `ifindex` (0 = all interfaces).
    pub(crate) fn bind(&self, ifindex: u32) -> Result<(), CaptureError> {
        // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        addr.sll_ifindex = i32::try_from(ifindex).unwrap_or(0);
        // SAFETY: `addr` is a valid sockaddr_ll and the length matches it.
        let rc =
            unsafe { libc::bind(self.0.as_raw_fd(), std::ptr::from_ref(&addr).cast(), socklen::<libc::sockaddr_ll>()) };
        if rc < 0 {
            return Err(io_err("binding the AF_PACKET socket", io::Error::last_os_error()));
        }
        Ok(())
    }

    /// `setsockopt(SOL_PACKET, opt, value)`.
    pub(crate) fn set_option<T>(&self, opt: libc::c_int, value: &T, what: &str) -> Result<(), CaptureError> {
        // SAFETY: `value` points to a live `T` of the size passed.
        let rc = unsafe {
            libc::setsockopt(
                self.0.as_raw_fd(),
                libc::SOL_PACKET,
                opt,
                std::ptr::from_ref(value).cast(),
                socklen::<T>(),
            )
        };
        if rc < 0 {
            return Err(io_err(what, io::Error::last_os_error()));
        }
        Ok(())
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

/// `size_of::<T>()` as a `socklen_t` (socket option and address structs are tiny).
pub(crate) fn socklen<T>() -> libc::socklen_t {
    libc::socklen_t::try_from(size_of::<T>()).unwrap_or(libc::socklen_t::MAX)
}

pub(crate) fn io_err(what: &str, source: io::Error) -> CaptureError {
    CaptureError::Io { what: what.to_owned(), source }
}

/// Waits until `fd` is readable or `timeout` passes; `Ok(false)` on timeout or a signal.
pub(crate) fn wait_readable(fd: BorrowedFd<'_>, timeout: std::time::Duration) -> Result<bool, CaptureError> {
    let mut pfd = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: one valid pollfd, count 1.
    let rc = unsafe { libc::poll(&raw mut pfd, 1, ms) };
    if rc < 0 {
        let err = io::Error::last_os_error();
        if err.kind() == io::ErrorKind::Interrupted {
            return Ok(false);
        }
        return Err(io_err("waiting for frames", err));
    }
    Ok(rc > 0)
}

/// The loaded eBPF program and the maps the agent uses.
pub(crate) struct KernelFilter {
    ebpf: Ebpf,
    ports: HashMap<MapData, PortKey, PortValue>,
    counters: PerCpuArray<MapData, u64>,
    selected: Vec<u16>,
}

impl KernelFilter {
    /// Loads the program with `EVENTS` sized `ring_bytes` and writes the delivery config and ports.
    pub(crate) fn load(mode: DeliveryMode, opts: &LiveOptions) -> Result<Self, CaptureError> {
        if !kernel_program_embedded() {
            return Err(CaptureError::Ebpf(
                "this agent was built with PACKETBEAT_SKIP_EBPF=1 and has no kernel program; \
                 rebuild it without that variable (needs bpf-linker) to capture live"
                    .to_owned(),
            ));
        }
        raise_memlock_limit();
        let ring_bytes = match mode {
            DeliveryMode::Ebpf => ring_size(opts.ring_bytes, opts.snaplen),
            DeliveryMode::AfPacket => page_size(),
        };
        let mut ebpf = EbpfLoader::new()
            .map_max_entries(names::EVENTS, ring_bytes)
            .load(EBPF_OBJECT)
            .map_err(|e| kernel_err("creating the eBPF maps", &e))?;
        let mut config: Array<MapData, Config> = take(&mut ebpf, names::CONFIG)?;
        let config_value = Config { snaplen: opts.snaplen, mode: mode as u32 };
        config.set(0, &config_value, 0).map_err(|e| kernel_err("writing the eBPF config", &e))?;
        let ports = take(&mut ebpf, names::PORTS)?;
        let counters = take(&mut ebpf, names::COUNTERS)?;
        let mut filter = Self { ebpf, ports, counters, selected: Vec::new() };
        filter.set_ports(&opts.ports)?;
        let program: &mut SocketFilter = filter
            .ebpf
            .program_mut(names::PROGRAM)
            .and_then(|p| p.try_into().ok())
            .ok_or_else(|| CaptureError::Ebpf("the eBPF object has no socket filter program".to_owned()))?;
        program.load().map_err(|e| kernel_err("loading the eBPF socket filter", &e))?;
        Ok(filter)
    }

    /// Attaches the filter to `socket` (before it is bound).
    pub(crate) fn attach(&mut self, socket: &PacketSocket) -> Result<(), CaptureError> {
        let program: &mut SocketFilter = self
            .ebpf
            .program_mut(names::PROGRAM)
            .and_then(|p| p.try_into().ok())
            .ok_or_else(|| CaptureError::Ebpf("the eBPF object has no socket filter program".to_owned()))?;
        program.attach(socket.fd()).map_err(|e| kernel_err("attaching the socket filter", &e))
    }

    /// Takes the `EVENTS` ring buffer (once).
    pub(crate) fn take_ring(&mut self) -> Result<RingBuf<MapData>, CaptureError> {
        take(&mut self.ebpf, names::EVENTS)
    }

    /// Makes `ports` the selection: adds the new ones first, then removes the rest, so a port in
    /// both the old and the new set is never missed.
    pub(crate) fn set_ports(&mut self, ports: &[u16]) -> Result<(), CaptureError> {
        if ports.len() > MAX_PORTS as usize {
            return Err(CaptureError::Ebpf(format!(
                "{} ports configured, at most {MAX_PORTS} are supported",
                ports.len()
            )));
        }
        let value = PortValue { flags: PORT_TCP };
        for &port in ports {
            self.ports.insert(&PortKey { port }, &value, 0).map_err(|e| kernel_err("updating the PORTS map", &e))?;
        }
        for &old in self.selected.iter().filter(|p| !ports.contains(p)) {
            // A missing key is fine: nothing to remove.
            let _ = self.ports.remove(&PortKey { port: old });
        }
        self.selected.clear();
        self.selected.extend_from_slice(ports);
        Ok(())
    }

    /// The kernel counters summed over CPUs, appended to `out`.
    pub(crate) fn counters(&self, out: &mut Vec<SourceCounter>) {
        for counter in Counter::ALL {
            let total = self
                .counters
                .get(&(counter as u32), 0)
                .map_or(0, |per_cpu| per_cpu.iter().fold(0u64, |a, v| a.wrapping_add(*v)));
            out.push((counter.name(), total));
        }
    }
}

fn take<T>(ebpf: &mut Ebpf, name: &str) -> Result<T, CaptureError>
where
    T: TryFrom<aya::maps::Map, Error = aya::maps::MapError>,
{
    let map = ebpf.take_map(name).ok_or_else(|| CaptureError::Ebpf(format!("the eBPF object has no map {name}")))?;
    T::try_from(map).map_err(|e| kernel_err("opening an eBPF map", &e))
}

/// Maps a loader error to one sentence: a permission problem names the capability, anything else
/// keeps the kernel's words (including the verifier log).
fn kernel_err(what: &str, err: &(dyn std::error::Error + 'static)) -> CaptureError {
    let mut source = Some(err);
    let mut chain = String::new();
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            if io.kind() == io::ErrorKind::PermissionDenied {
                return CaptureError::MissingCapability("CAP_BPF");
            }
            if io.raw_os_error() == Some(libc::EINVAL) && what.contains("maps") {
                return CaptureError::Ebpf(format!(
                    "{what}: the kernel rejected a BPF ring buffer or map ({io}); live capture needs Linux 5.8 or newer"
                ));
            }
        }
        if !chain.is_empty() {
            chain.push_str(": ");
        }
        chain.push_str(&e.to_string());
        source = e.source();
    }
    CaptureError::Ebpf(format!("{what}: {chain}"))
}

/// The BPF ring size for `ring_bytes`: a power of two of at least one page (the kernel's rule) and
/// at least two records of the largest size class `snaplen` needs, so a full-size frame always fits.
pub(crate) fn ring_size(ring_bytes: u32, snaplen: u32) -> u32 {
    let snaplen = Config { snaplen, mode: 0 }.effective_snaplen();
    // Frame class + our header + the kernel's 8-byte record header.
    let largest_record = snaplen.next_power_of_two() + RECORD_HEADER_LEN as u32 + 8;
    ring_bytes.max(page_size()).max(largest_record.saturating_mul(2)).checked_next_power_of_two().unwrap_or(1 << 31)
}

pub(crate) fn page_size() -> u32 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u32::try_from(size).ok().filter(|s| s.is_power_of_two()).unwrap_or(4096)
}

/// Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK; lift it, ignoring failure (newer kernels
/// use memory cgroups and an unprivileged limit is not fatal until a map creation says so).
fn raise_memlock_limit() {
    let unlimited = libc::rlimit { rlim_cur: libc::RLIM_INFINITY, rlim_max: libc::RLIM_INFINITY };
    // SAFETY: a valid rlimit struct.
    let _ = unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &raw const unlimited) };
}

/// Converts kernel CLOCK_MONOTONIC nanoseconds (`bpf_ktime_get_ns`) to wall-clock time with the
/// offset measured when the source was opened (so an NTP step later shifts times, never reorders).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MonotonicClock {
    /// CLOCK_REALTIME − CLOCK_MONOTONIC, in nanoseconds.
    offset_ns: i128,
}

impl MonotonicClock {
    pub(crate) fn now() -> Self {
        Self::from_offset(clock_ns(libc::CLOCK_REALTIME) - clock_ns(libc::CLOCK_MONOTONIC))
    }

    pub(crate) const fn from_offset(offset_ns: i128) -> Self {
        Self { offset_ns }
    }

    pub(crate) fn to_wall(self, monotonic_ns: u64) -> Timestamp {
        let wall = i128::from(monotonic_ns) + self.offset_ns;
        Timestamp(u64::try_from(wall.max(0)).unwrap_or(u64::MAX))
    }
}

fn clock_ns(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid timespec to write into.
    unsafe { libc::clock_gettime(clock, &raw mut ts) };
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_to_wall_adds_offset_and_saturates() {
        let clock = MonotonicClock::from_offset(1_700_000_000_000_000_000);
        assert_eq!(clock.to_wall(5), Timestamp(1_700_000_000_000_000_005));
        assert_eq!(MonotonicClock::from_offset(-10).to_wall(3), Timestamp(0));
        assert_eq!(MonotonicClock::from_offset(i128::from(u64::MAX)).to_wall(1), Timestamp(u64::MAX));
    }

    #[test]
    fn measured_offset_gives_now() {
        let mono = u64::try_from(clock_ns(libc::CLOCK_MONOTONIC)).unwrap();
        let wall = MonotonicClock::now().to_wall(mono);
        let diff = Timestamp::now().nanos().abs_diff(wall.nanos());
        assert!(diff < 1_000_000_000, "off by {diff} ns");
    }

    #[test]
    fn ring_size_is_a_power_of_two_of_at_least_a_page() {
        assert_eq!(ring_size(0, 100), page_size());
        assert_eq!(ring_size(3 << 20, 1514), 4 << 20);
        assert_eq!(ring_size(u32::MAX, 1514), 1 << 31);
        // Two 256 KiB records (plus headers) need 1 MiB.
        assert_eq!(ring_size(4096, 0), 1 << 20);
        assert_eq!(ring_size(4096, 2000), 8192);
    }

    #[test]
    fn stub_build_refuses_with_one_sentence() {
        if kernel_program_embedded() {
            return;
        }
        let opts = LiveOptions { device: "lo".to_owned(), ports: vec![80], snaplen: 0, ring_bytes: 0 };
        let Err(err) = KernelFilter::load(DeliveryMode::Ebpf, &opts) else {
            panic!("an empty object must not load");
        };
        assert!(err.to_string().contains("PACKETBEAT_SKIP_EBPF=1"), "{err}");
    }

    #[test]
    fn lists_loopback_and_resolves_it() {
        let devices = list_devices();
        assert!(devices.iter().any(|(name, _)| name == "lo"), "{devices:?}");
        assert!(ifindex("lo").unwrap() > 0);
        assert_eq!(ifindex("any").unwrap(), 0);
        assert!(matches!(ifindex("no-such-if0"), Err(CaptureError::NoSuchDevice(_))));
    }
}
