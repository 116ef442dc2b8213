//! The `packetbeat-agent` binary: everything lives in the library's [`packetbeat_agent::cli`].

/// mimalloc instead of glibc malloc: events are built from many short-lived strings and maps, and
/// glibc's malloc/free were about 30% of the instructions of a replay (callgrind).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(packetbeat_agent::cli::main());
}
