//! The `packetbeat-agent` binary: everything lives in the library's [`packetbeat_agent::cli`].

/// mimalloc instead of glibc malloc: events are built from many short-lived strings and maps, and
/// glibc's malloc/free were about 30% of the instructions of a replay (callgrind). See
/// [`packetbeat_agent::memory::Allocator`].
#[global_allocator]
static GLOBAL: packetbeat_agent::memory::Allocator = packetbeat_agent::memory::Allocator;

fn main() {
    std::process::exit(packetbeat_agent::cli::main());
}
