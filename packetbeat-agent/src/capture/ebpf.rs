//! Live capture through the eBPF socket filter and its BPF ring buffer.
