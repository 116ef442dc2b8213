//! The `packetbeat-agent` command line.

fn main() {}
