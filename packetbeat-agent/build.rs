//! Builds the eBPF object (`packetbeat-ebpf`, binary `packetbeat`) with aya-build, as aya-template
//! does, so a plain `cargo build` produces an agent with the kernel program embedded.
//!
//! `PACKETBEAT_SKIP_EBPF=1` writes an empty object instead, so `cargo check`, clippy and unit tests
//! work without the nightly toolchain and bpf-linker; the loader then refuses the empty object with
//! one clear sentence (see `capture::live::load_program`).

use std::{env, fs, path::PathBuf};

use anyhow::Context as _;

/// The nightly toolchain (with `rust-src`) that bpf-linker was built against.
const EBPF_TOOLCHAIN: &str = "nightly-2026-10-29";
/// The eBPF binary's name, which is also the file name in `OUT_DIR`.
const EBPF_BIN: &str = "packetbeat";

fn main() -> anyhow::Result<()> {
    println!("cargo::rerun-if-env-changed=PACKETBEAT_SKIP_EBPF");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").context("OUT_DIR not set")?);
    let skip = env::var("PACKETBEAT_SKIP_EBPF").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    if skip {
        fs::write(out_dir.join(EBPF_BIN), []).context("writing the empty eBPF stub")?;
        return Ok(());
    }

    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").context("CARGO_MANIFEST_DIR not set")?);
    let workspace = manifest_dir.parent().context("the agent crate has no parent directory")?;
    let ebpf_dir = workspace.join("packetbeat-ebpf");
    let common_dir = workspace.join("packetbeat-common");
    // aya-build watches the eBPF crate; the shared types change the object too.
    println!("cargo::rerun-if-changed={}", common_dir.display());
    let root_dir = ebpf_dir.to_str().context("the eBPF crate path is not UTF-8")?;
    aya_build::build_ebpf(
        [aya_build::Package { name: "packetbeat-ebpf", root_dir, ..Default::default() }],
        aya_build::Toolchain::Custom(EBPF_TOOLCHAIN),
    )
    .context("building the eBPF program (set PACKETBEAT_SKIP_EBPF=1 to build without it)")
}
