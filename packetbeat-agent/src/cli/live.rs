//! Opens the live capture source the config asks for, after checking capabilities.

use anyhow::bail;

use crate::capture::PacketSource;
use crate::config::Config;

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
    let _ = ports;
    bail!("live capture is not available in this build")
}
