//! Builds the eBPF object (filled in by the capture work).
fn main() {}
