//! `cargo xtask setup`: everything a fresh machine needs, idempotently.
//!
//! - the pinned userspace toolchain (from `rust-toolchain.toml`) with clippy and rustfmt;
//! - the nightly that builds the eBPF crate, with `rust-src`;
//! - `bpf-linker` 0.13 built against *that nightly's own* LLVM (a folder of links to its
//!   `libLLVM.so`, passed as `LLVM_PREFIX`), so the linker and rustc agree on the bitcode;
//! - for tests: the Debian packages of the real servers and clients.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::exec;

/// Userspace toolchain (keep in sync with rust-toolchain.toml).
pub const TOOLCHAIN: &str = "1.99.1";
/// Toolchain that builds the eBPF crate (keep in sync with packetbeat-agent/build.rs).
pub const EBPF_NIGHTLY: &str = "nightly-2026-10-29";
const BPF_LINKER_VERSION: &str = "0.13";

fn home() -> PathBuf {
    PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into()))
}

fn rustup_home() -> PathBuf {
    std::env::var("RUSTUP_HOME").map_or_else(|_| home().join(".rustup"), PathBuf::from)
}

fn toolchain_installed(name: &str) -> bool {
    Command::new("rustup")
        .args(["toolchain", "list"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().any(|l| l.starts_with(name)))
        .unwrap_or(false)
}

fn ensure_toolchains() -> Result<()> {
    if !toolchain_installed(TOOLCHAIN) {
        exec(Command::new("rustup").args([
            "toolchain",
            "install",
            TOOLCHAIN,
            "--profile",
            "minimal",
            "-c",
            "clippy,rustfmt",
        ]))?;
    }
    if !toolchain_installed(EBPF_NIGHTLY) {
        exec(Command::new("rustup").args([
            "toolchain",
            "install",
            EBPF_NIGHTLY,
            "--profile",
            "minimal",
            "-c",
            "rust-src",
        ]))?;
    } else {
        exec(Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", EBPF_NIGHTLY]))?;
    }
    Ok(())
}

fn bpf_linker_ok() -> bool {
    Command::new("bpf-linker")
        .arg("--version")
        .output()
        .map(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains(&format!(" {BPF_LINKER_VERSION}.")))
        .unwrap_or(false)
}

/// A folder `P/lib` of links to the nightly's libLLVM, for `LLVM_PREFIX=P`.
fn llvm_prefix() -> Result<PathBuf> {
    let lib = rustup_home().join("toolchains").join(format!("{EBPF_NIGHTLY}-x86_64-unknown-linux-gnu")).join("lib");
    let so = std::fs::read_dir(&lib)
        .with_context(|| format!("cannot list {}", lib.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("libLLVM.so.")))
        .with_context(|| format!("no libLLVM.so.* in {}", lib.display()))?;
    let prefix = home().join(".cache/packetbeat-agent/llvm");
    let dir = prefix.join("lib");
    std::fs::create_dir_all(&dir)?;
    for name in [PathBuf::from("libLLVM.so"), PathBuf::from(so.file_name().unwrap_or_default())] {
        let link = dir.join(name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&so, &link).with_context(|| format!("cannot link {}", link.display()))?;
    }
    Ok(prefix)
}

fn ensure_bpf_linker() -> Result<()> {
    if bpf_linker_ok() {
        return Ok(());
    }
    let prefix = llvm_prefix()?;
    exec(
        Command::new("cargo")
            .args([
                &format!("+{TOOLCHAIN}"),
                "install",
                "bpf-linker",
                "--version",
                &format!("~{BPF_LINKER_VERSION}"),
                "--locked",
            ])
            .args(["--no-default-features", "--features", "llvm-23", "--force"])
            .env("LLVM_PREFIX", &prefix),
    )?;
    if !bpf_linker_ok() {
        bail!("bpf-linker {BPF_LINKER_VERSION} was installed but does not run; see the output above");
    }
    Ok(())
}

/// Everything the build needs.
pub fn run() -> Result<()> {
    ensure_toolchains()?;
    ensure_bpf_linker()
}

fn missing_commands(cmds: &[(&str, &str)]) -> Vec<String> {
    cmds.iter()
        .filter(|(cmd, _)| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {cmd} || test -x /usr/sbin/{cmd}")])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .map(|(_, pkg)| (*pkg).to_owned())
        .collect()
}

fn apt_install(pkgs: &[String]) -> Result<()> {
    if pkgs.is_empty() {
        return Ok(());
    }
    exec(Command::new("apt-get").arg("update").arg("-q"))?;
    exec(
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(pkgs)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

/// Debian packages of the real servers and clients the integration tests drive.
pub fn ensure_test_packages() -> Result<()> {
    let missing = missing_commands(&[
        ("nginx", "nginx"),
        ("curl", "curl"),
        ("tcpdump", "tcpdump"),
        ("ip", "iproute2"),
        ("redis-server", "redis-server"),
        ("redis-cli", "redis-tools"),
        ("redis-benchmark", "redis-tools"),
        // The HTTP load generator of the live benchmark (tests/src/bin/live_bench.rs).
        ("wrk", "wrk"),
        ("/usr/lib/postgresql/15/bin/initdb", "postgresql-15"),
        ("psql", "postgresql-client-15"),
        ("pgbench", "postgresql-15"),
        ("mariadbd", "mariadb-server"),
        ("mariadb", "mariadb-client"),
        ("pip3", "python3-pip"),
        // The OpenSearch node of the Elasticsearch-output tests: a JDK and Maven build its launcher.
        ("javac", "openjdk-17-jdk-headless"),
        ("mvn", "maven"),
        ("openssl", "openssl"),
    ]);
    apt_install(&missing)?;
    ensure_python_module("redis", "redis")?;
    ensure_python_module("psycopg", "psycopg[binary]")?;
    ensure_python_module("mysql.connector", "mysql-connector-python")
}

/// A Python module the integration tests' clients import (redis-py, psycopg 3), from PyPI when missing.
fn ensure_python_module(module: &str, package: &str) -> Result<()> {
    let ok =
        Command::new("python3").args(["-c", &format!("import {module}")]).output().is_ok_and(|o| o.status.success());
    if !ok {
        exec(Command::new("python3").args(["-m", "pip", "install", "-q", package]))?;
    }
    Ok(())
}

/// cargo-fuzz, for `cargo xtask fuzz` (it runs on the eBPF nightly, which is new enough for aya).
pub fn ensure_cargo_fuzz() -> Result<()> {
    let ok = Command::new("cargo").args(["fuzz", "--version"]).output().is_ok_and(|o| o.status.success());
    if !ok {
        exec(Command::new("cargo").args([&format!("+{TOOLCHAIN}"), "install", "cargo-fuzz", "--locked"]))?;
    }
    Ok(())
}

/// Builds the OpenSearch launcher of the tests (`tests/opensearch`), fetching the engine's jars
/// from Maven Central into ~/.m2 the first time; offline afterwards.
pub fn ensure_opensearch_launcher(root: &std::path::Path) -> Result<()> {
    let dir = root.join("tests/opensearch");
    if dir.join("target/lib").is_dir() && dir.join("target/classes/dev").is_dir() {
        return Ok(());
    }
    let offline = Command::new("mvn")
        .current_dir(&dir)
        .args(["-q", "-B", "-o", "package", "-DskipTests"])
        .status()
        .is_ok_and(|s| s.success());
    if !offline {
        exec(Command::new("mvn").current_dir(&dir).args(["-q", "-B", "package", "-DskipTests"]))?;
    }
    Ok(())
}

/// PyYAML for the conformance checker.
pub fn ensure_python_yaml() -> Result<()> {
    let ok = Command::new("python3").args(["-c", "import yaml"]).output().is_ok_and(|o| o.status.success());
    if !ok {
        exec(Command::new("python3").args(["-m", "pip", "install", "-q", "pyyaml"]))?;
    }
    Ok(())
}
