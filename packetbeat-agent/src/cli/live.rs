//! Opens the live capture source the config asks for, after checking capabilities.

use anyhow::bail;

use crate::capture::af_packet::AfPacketSource;
use crate::capture::ebpf::EbpfSource;
use crate::capture::{LiveOptions, PacketSource};
use crate::config::{CaptureKind, Config};

use super::host;

/// Opens the capture sources for `workers` workers: one eBPF ring (a dispatcher shards it) or, with
/// AF_PACKET and several workers, one socket per worker in a `PACKET_FANOUT_HASH` group (the kernel
/// shards by a symmetric flow hash; each socket gets its share of `buffer_size_mb`).
///
/// # Errors
/// As [`open`], for any of the sockets.
pub fn open_all(cfg: &Config, ports: &[u16], workers: usize) -> anyhow::Result<Vec<Box<dyn PacketSource>>> {
    let i = &cfg.packetbeat.interfaces;
    if i.kind != CaptureKind::AfPacket || workers <= 1 {
        return Ok(vec![open(cfg, ports)?]);
    }
    let mut per_socket = cfg.clone();
    let total = i.ring_mb().max(1);
    per_socket.packetbeat.interfaces.buffer_size_mb = Some((total / u32::try_from(workers).unwrap_or(u32::MAX)).max(1));
    // Any id not used by another process: this process's id, folded into 16 bits.
    let group = i.fanout_group.unwrap_or((std::process::id() % 0xffff) as u16);
    per_socket.packetbeat.interfaces.fanout_group = Some(group);
    (0..workers).map(|_| open(&per_socket, ports)).collect()
}

/// Opens the eBPF ring or AF_PACKET source on the configured device for `ports`.
///
/// # Errors
/// Missing capability, unknown device, or the kernel refused the program.
pub fn open(cfg: &Config, ports: &[u16]) -> anyhow::Result<Box<dyn PacketSource>> {
    let missing = host::missing_capabilities();
    if !missing.is_empty() {
        bail!(
            "live capture needs {}: run as root or `setcap cap_bpf,cap_net_raw,cap_perfmon+ep` on the binary",
            missing.join(", ")
        );
    }
    let i = &cfg.packetbeat.interfaces;
    let opts = LiveOptions {
        device: i.device.clone(),
        ports: ports.to_vec(),
        snaplen: i.snaplen,
        ring_bytes: i.ring_mb().saturating_mul(1024 * 1024),
    };
    Ok(match i.kind {
        CaptureKind::Ebpf => Box::new(EbpfSource::open(&opts)?),
        CaptureKind::AfPacket => Box::new(AfPacketSource::open(&opts, i.fanout_group)?),
    })
}
