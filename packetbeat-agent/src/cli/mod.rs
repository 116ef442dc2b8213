//! The command line: `run`, `replay`, `setup`, `test config|output`, `devices`, `version`, with Packetbeat's global
//! flags (`-c`, `-E`, `-e`, `-d`). Errors at this edge are one clear sentence on stderr and exit 1.

mod es;
pub mod host;
mod live;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};

use crate::capture::pcap::PcapFileSource;
use crate::config::{self, Config};
use crate::event::envelope::AgentInfo;
use crate::metrics::Metrics;
use crate::output::{console::ConsoleOutput, file::FileOutput, Output};
use crate::pipeline::{self, Mode, PipelineConfig};
use crate::processors;
use crate::protocols::registry::Registry;
use crate::worker::PublishSettings;

/// Kernel-assisted network analyzer, compatible with Packetbeat 8.x configs and events.
#[derive(Debug, Parser)]
#[command(name = "packetbeat-agent", version, about)]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Args, Clone, Default)]
struct Global {
    /// Configuration file (packetbeat.yml syntax).
    #[arg(short = 'c', long = "config", global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Override a setting: `-E packetbeat.interfaces.device=lo`.
    #[arg(short = 'E', value_name = "KEY=VALUE", global = true)]
    overrides: Vec<String>,
    /// Log to stderr (always the case here; accepted for compatibility).
    #[arg(short = 'e', global = true)]
    log_stderr: bool,
    /// Debug selectors (`-d "*"` enables debug logging).
    #[arg(short = 'd', value_name = "SELECTORS", global = true)]
    debug: Vec<String>,
    /// Accepted for compatibility.
    #[arg(long = "strict.perms", global = true, hide = true)]
    strict_perms: Option<bool>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Capture live and publish transactions (the default command).
    Run {
        /// Read packets from a capture file instead (Packetbeat's `-I`), like `replay`.
        #[arg(short = 'I', long = "read-pcap", value_name = "FILE")]
        read_pcap: Option<PathBuf>,
    },
    /// Process a pcap/pcapng file as fast as possible, then exit after the final flush.
    Replay {
        /// The capture file.
        file: PathBuf,
    },
    /// Check things.
    Test {
        #[command(subcommand)]
        what: TestWhat,
    },
    /// Load the index template and lifecycle policy into Elasticsearch/OpenSearch.
    Setup {
        /// Index management only (template, data stream, ILM/ISM policy). The default.
        #[arg(long = "index-management")]
        index_management: bool,
        /// Kibana dashboards (not available yet).
        #[arg(long)]
        dashboards: bool,
    },
    /// List the interfaces that can be captured.
    Devices,
    /// Print the version.
    Version,
}

#[derive(Debug, Subcommand)]
enum TestWhat {
    /// Load and validate the configuration, then print `Config OK`.
    Config,
    /// Connect to the configured Elasticsearch/OpenSearch and report what was found.
    Output,
}

/// Set by SIGINT/SIGTERM.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

fn install_signal_handlers() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
}

fn init_logging(cfg: Option<&Config>, debug: bool) {
    let level = if debug {
        "debug".to_owned()
    } else {
        match cfg.map_or("info", |c| c.logging.level.as_str()) {
            "warning" | "warn" => "warn".into(),
            "critical" => "error".into(),
            l => l.to_owned(),
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ =
        tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(filter).with_target(false).try_init();
}

/// Runs the CLI; returns the process exit code.
#[must_use]
pub fn main() -> i32 {
    // Before the threads and tables exist; refused only by kernels older than 3.15.
    let _ = crate::memory::disable_transparent_huge_pages();
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(()) => 0,
        Err(e) => {
            init_logging(None, false);
            let chain: Vec<String> = e.chain().map(ToString::to_string).collect();
            eprintln!("Error: {}", chain.join(": "));
            1
        }
    }
}

fn load(global: &Global) -> anyhow::Result<(Config, Registry)> {
    let loaded = config::load(global.config.as_deref(), &global.overrides)?;
    init_logging(Some(&loaded.config), global.debug.iter().any(|d| !d.is_empty()));
    for k in &loaded.unknown_keys {
        tracing::warn!("unknown config key `{k}` (ignored)");
    }
    let (registry, warnings) = Registry::from_config(loaded.config.packetbeat.protocols.as_deref())?;
    for w in warnings {
        tracing::warn!("{w}");
    }
    if registry.ports().is_empty() {
        bail!("no protocol is enabled: configure `packetbeat.protocols` (e.g. `- {{type: http, ports: [80]}}`)");
    }
    Ok((loaded.config, registry))
}

fn dispatch(cli: Cli) -> anyhow::Result<()> {
    let g = cli.global;
    match cli.command.unwrap_or(Command::Run { read_pcap: None }) {
        Command::Version => {
            println!("packetbeat-agent version {} (Packetbeat 8.x compatible)", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Devices => {
            init_logging(None, false);
            for (i, (name, index)) in crate::capture::list_devices().into_iter().enumerate() {
                println!("{i}: {name} (ifindex {index})");
            }
            Ok(())
        }
        Command::Test { what: TestWhat::Config } => {
            let (_, registry) = load(&g)?;
            eprintln!("ports: {:?}", registry.ports());
            println!("Config OK");
            Ok(())
        }
        Command::Test { what: TestWhat::Output } => {
            let (cfg, _) = load(&g)?;
            es::test_output(&cfg)
        }
        Command::Setup { index_management, dashboards } => {
            let (cfg, _) = load(&g)?;
            es::setup_command(&cfg, index_management || !dashboards, dashboards)
        }
        Command::Replay { file } => replay(&g, &file),
        Command::Run { read_pcap: Some(file) } => replay(&g, &file),
        Command::Run { read_pcap: None } => run_live(&g),
    }
}

fn agent_info(cfg: &Config) -> AgentInfo {
    let hostname = host::hostname();
    let fields = cfg.fields.as_ref().and_then(|f| match serde_json::to_value(f) {
        Ok(serde_json::Value::Object(m)) => Some((m, cfg.fields_under_root)),
        _ => None,
    });
    AgentInfo {
        name: cfg.name.clone().unwrap_or_else(|| hostname.clone()),
        hostname,
        id: host::stable_agent_id(),
        ephemeral_id: host::random_uuid(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        local_ips: host::local_ips(),
        tags: cfg.tags.clone(),
        fields,
    }
}

fn open_output(cfg: &Config, metrics: &Arc<Metrics>) -> anyhow::Result<Box<dyn Output>> {
    if let Some(es) = cfg.output.elasticsearch.as_ref().filter(|e| e.enabled) {
        return es::open(cfg, es, metrics);
    }
    if let Some(f) = cfg.output.file.as_ref().filter(|f| f.enabled) {
        return Ok(Box::new(FileOutput::open(f)?));
    }
    let pretty = cfg.output.console.as_ref().is_some_and(|c| c.pretty);
    Ok(Box::new(ConsoleOutput::new(pretty)))
}

fn pipeline_config(
    cfg: &Config,
    registry: Registry,
    mode: Mode,
    workers: usize,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<PipelineConfig> {
    Ok(PipelineConfig {
        mode,
        workers,
        registry: Arc::new(registry),
        limits: cfg.packetbeat.limits.clone(),
        publish: PublishSettings {
            agent: Arc::new(agent_info(cfg)),
            processors: Arc::new(processors::from_config(&cfg.processors)?),
            ignore_outgoing: cfg.packetbeat.ignore_outgoing,
            block_when_full: mode == Mode::Replay,
        },
        metrics: Arc::clone(metrics),
        stop: Arc::new(AtomicBool::new(false)),
        metrics_period: cfg.logging.metrics.enabled.then_some(cfg.logging.metrics.period),
        flows: cfg
            .packetbeat
            .flows
            .as_ref()
            .filter(|f| f.enabled)
            .map(|f| crate::flows::FlowSettings { timeout: f.timeout, period: f.period }),
    })
}

fn replay(g: &Global, file: &Path) -> anyhow::Result<()> {
    let (cfg, registry) = load(g)?;
    let workers = cfg.packetbeat.workers.unwrap_or(1).max(1);
    // Read once; with several workers each gets its connections' frames without a copy.
    let source = PcapFileSource::open(file).with_context(|| format!("cannot replay {}", file.display()))?;
    let metrics = Arc::new(Metrics::default());
    let pc = pipeline_config(&cfg, registry, Mode::Replay, workers, &metrics)?;
    let output = open_output(&cfg, &metrics)?;
    let summary = pipeline::run_replay(source, pc, output)?;
    tracing::info!(
        "replay of {} done: {} events; counters: {}",
        file.display(),
        summary.events_written,
        metrics.summary()
    );
    Ok(())
}

fn run_live(g: &Global) -> anyhow::Result<()> {
    let (cfg, registry) = load(g)?;
    let workers = cfg.packetbeat.workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let sources = live::open_all(&cfg, registry.ports(), workers)?;
    install_signal_handlers();
    let metrics = Arc::new(Metrics::default());
    let mut pc = pipeline_config(&cfg, registry, Mode::Live, workers, &metrics)?;
    let stop = Arc::new(AtomicBool::new(false));
    pc.stop = Arc::clone(&stop);
    let watcher = std::thread::spawn(move || {
        while !STOP.load(Ordering::Relaxed) {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        stop.store(true, Ordering::Relaxed);
    });
    tracing::info!(
        "capturing on {} ({:?}) with {workers} worker(s); press Ctrl-C to stop",
        cfg.packetbeat.interfaces.device,
        cfg.packetbeat.interfaces.kind
    );
    let output = open_output(&cfg, &metrics)?;
    let summary = pipeline::run_fanout(sources, pc, output)?;
    drop(watcher);
    tracing::info!("stopped: {} events; counters: {}", summary.events_written, metrics.summary());
    Ok(())
}
