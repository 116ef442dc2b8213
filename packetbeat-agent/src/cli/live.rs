//! Opens the live capture source the config asks for, after checking capabilities.

use anyhow::bail;

use crate::capture::af_packet::AfPacketSource;
use crate::capture::ebpf::EbpfSource;
use crate::capture::{LiveOptions, PacketSource};
use crate::config::{CaptureKind, Config};

use super::host;

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
        ring_bytes: i.buffer_size_mb.saturating_mul(1024 * 1024),
    };
    Ok(match i.kind {
        CaptureKind::Ebpf => Box::new(EbpfSource::open(&opts)?),
        CaptureKind::AfPacket => Box::new(AfPacketSource::open(&opts, i.fanout_group)?),
    })
}
