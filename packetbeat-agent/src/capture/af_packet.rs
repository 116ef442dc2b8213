//! Live capture through an AF_PACKET TPACKET_V3 ring, filtered in the kernel by the eBPF program.
