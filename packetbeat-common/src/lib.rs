//! Types shared by the kernel program (`packetbeat-ebpf`) and the agent.
//!
//! Every type here crosses the kernel/user boundary through a BPF map or the ring buffer, so each is
//! `#[repr(C)]`, `Copy`, has no implicit padding (explicit `_pad` fields) and carries a size assert:
//! a layout change breaks the build instead of silently corrupting records. One module per channel:
//! [`event`] (the ring record), [`config`] (PORTS and CONFIG maps), [`stats`] (per-CPU counters).
//! With the `user` feature the types implement `aya::Pod` so the agent can read and write the maps.
#![no_std]
#![deny(missing_docs)]

pub mod config;
pub mod event;
pub mod stats;

/// Names of the maps and the program in the eBPF object, so kernel and user side agree.
pub mod names {
    /// The socket filter program.
    pub const PROGRAM: &str = "packetbeat";
    /// `HashMap<PortKey, PortValue>`: the TCP ports to capture.
    pub const PORTS: &str = "PORTS";
    /// `Array<Config>` with one entry.
    pub const CONFIG: &str = "CONFIG";
    /// `PerCpuArray<u64>` indexed by [`crate::stats::Counter`].
    pub const COUNTERS: &str = "COUNTERS";
    /// `RingBuf` of [`crate::event::RecordHeader`] + frame bytes (delivery mode `ebpf`).
    pub const EVENTS: &str = "EVENTS";
}
