//! Developer workflows, so the README stays two commands: `cargo xtask run` and `cargo xtask test`.
//! Orchestration only: no product code lives here, and a plain `cargo build` never needs it.

mod setup;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask", about = "packetbeat-agent developer tasks")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install toolchains, rust-src and bpf-linker (idempotent).
    Setup,
    /// Build the agent (release, with the eBPF program).
    Build,
    /// Build, then capture live with the defaults (all interfaces, console output). Extra args go to
    /// the agent, e.g. `cargo xtask run -- -E packetbeat.interfaces.device=lo`.
    Run {
        /// Arguments for `packetbeat-agent run`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Set up, build, then run every test (unit, integration as root with the real eBPF program).
    Test {
        /// Skip the conformance suite even when ../shared/conformance is present.
        #[arg(long)]
        no_conformance: bool,
    },
    /// Run ../shared/conformance/run.py against the release binary.
    Conformance {
        /// Only these cases (default: every case this version covers).
        #[arg(long)]
        only: Vec<String>,
    },
    /// Criterion benchmarks.
    Bench,
}

/// The workspace root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Runs a command, failing with its rendering when it fails.
pub fn exec(cmd: &mut Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    eprintln!("+ {shown}");
    let status = cmd.status().with_context(|| format!("cannot start {shown}"))?;
    if !status.success() {
        bail!("{shown} failed with {status}");
    }
    Ok(())
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn agent_bin() -> PathBuf {
    root().join("target/release/packetbeat-agent")
}

fn build() -> Result<()> {
    setup::run()?;
    exec(cargo().current_dir(root()).args(["build", "--release", "-p", "packetbeat-agent"]))
}

/// The conformance cases this version is meant to pass (the HTTP protocol).
const CONFORMANCE_CASES: &[&str] = &[
    "http_simple", "http_real_ip_x_forward_for", "http_real_ip_x_forwarded_for_multiple", "http_10_connection_close",
    "http_basicauth_headers", "http_basicauth_raw", "http_hide_post", "http_hide_get", "http_hide_post_default",
    "http_params_post", "http_params_get", "http_query_post", "http_query_get", "http_gap", "http_vlan",
    "http_send_headers", "http_send_all_headers", "http_include_body", "http_include_body_both", "http_body_json",
    "http_large_body", "http_unmatched_response", "http_unmatched_request", "http_100_continue",
];

fn conformance(only: &[String]) -> Result<()> {
    let run_py = root().join("../shared/conformance/run.py");
    if !run_py.exists() {
        eprintln!("conformance suite not found at {}: skipped", run_py.display());
        return Ok(());
    }
    setup::ensure_python_yaml()?;
    let mut cmd = Command::new("python3");
    cmd.arg(&run_py).arg("--agent").arg(agent_bin()).arg("--only");
    if only.is_empty() {
        cmd.args(CONFORMANCE_CASES);
    } else {
        cmd.args(only);
    }
    exec(&mut cmd)
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Setup => setup::run(),
        Cmd::Build => build(),
        Cmd::Run { args } => {
            build()?;
            let mut cmd = Command::new(agent_bin());
            cmd.arg("run").args(args);
            exec(&mut cmd)
        }
        Cmd::Test { no_conformance } => {
            build()?;
            setup::ensure_test_packages()?;
            setup::ensure_opensearch_launcher(&root())?;
            exec(cargo().current_dir(root()).args(["test", "--release", "--workspace"]).env("PACKETBEAT_AGENT_BIN", agent_bin()))?;
            if !no_conformance {
                conformance(&[])?;
            }
            Ok(())
        }
        Cmd::Conformance { only } => {
            build()?;
            conformance(&only)
        }
        Cmd::Bench => {
            setup::run()?;
            exec(cargo().current_dir(root()).args(["bench", "-p", "packetbeat-agent"]))
        }
    }
}
