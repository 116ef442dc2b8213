//! Library target stub: the eBPF program is the `packetbeat` binary (`src/main.rs`), built for
//! `bpfel-unknown-none` by the agent's `build.rs`. This target only exists so tooling that expects a
//! library (and `cargo metadata` consumers) is happy.
#![no_std]
