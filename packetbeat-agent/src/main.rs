//! The `packetbeat-agent` binary: everything lives in the library's [`packetbeat_agent::cli`].

fn main() {
    std::process::exit(packetbeat_agent::cli::main());
}
