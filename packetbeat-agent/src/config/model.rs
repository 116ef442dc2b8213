//! The typed configuration. Field names and defaults follow Packetbeat 8.x; keys that are ours are
//! marked so in their docs.

use std::time::Duration;

use serde::Deserialize;
use serde_norway::Value;

use super::{duration, ConfigError};

/// The whole file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Config {
    /// `packetbeat.*`.
    pub packetbeat: PacketbeatSection,
    /// `output.*`.
    pub output: OutputSection,
    /// `processors`: libbeat processors applied to every event.
    pub processors: Vec<Value>,
    /// `name`: the shipper name (`agent.name`); defaults to the host name.
    pub name: Option<String>,
    /// `tags`.
    pub tags: Vec<String>,
    /// `fields`.
    pub fields: Option<Value>,
    /// `fields_under_root`.
    pub fields_under_root: bool,
    /// `logging.*`.
    pub logging: LoggingSection,
    /// Accepted for compatibility, not used here.
    pub setup: Option<Value>,
    /// Accepted, not used (the queue here is `packetbeat.limits.output_queue_events`).
    pub queue: Option<Value>,
    /// Accepted, not used.
    pub monitoring: Option<Value>,
    /// Accepted, not used.
    pub http: Option<Value>,
    /// Accepted, not used.
    pub path: Option<Value>,
    /// Accepted, not used.
    pub seccomp: Option<Value>,
    /// Accepted, not used.
    pub cloud: Option<Value>,
    /// Accepted, not used.
    pub max_procs: Option<Value>,
}

/// `packetbeat.*`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct PacketbeatSection {
    /// `packetbeat.interfaces`.
    pub interfaces: InterfacesConfig,
    /// `packetbeat.protocols`: a list of `{type: ..., ports: [...], ...}`; read by the registry.
    pub protocols: Option<Vec<Value>>,
    /// `packetbeat.flows`: flow events are produced when this section exists and is enabled.
    pub flows: Option<FlowsConfig>,
    /// `packetbeat.ignore_outgoing`: drop transactions whose `network.direction` is egress.
    pub ignore_outgoing: bool,
    /// `packetbeat.shutdown_timeout`.
    #[serde(deserialize_with = "duration::deserialize_opt")]
    pub shutdown_timeout: Option<Duration>,
    /// Ours: worker threads (flows are sharded over them). Default: number of cores for live capture,
    /// 1 for replay (so replay output order is fully deterministic).
    pub workers: Option<usize>,
    /// Ours: memory bounds of the connection table and reassembly.
    pub limits: Limits,
    /// Accepted for compatibility (`procs`, `npcap`, `dns`-era keys).
    pub procs: Option<Value>,
    /// Accepted for compatibility.
    pub npcap: Option<Value>,
}

/// `packetbeat.flows.*`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct FlowsConfig {
    /// `enabled`.
    pub enabled: bool,
    /// `timeout`: a flow idle this long ends (reported with `flow.final: true`).
    #[serde(deserialize_with = "duration::deserialize")]
    pub timeout: Duration,
    /// `period`: report interval of live flows; negative (`-1s`) reports only ended flows.
    #[serde(deserialize_with = "duration::deserialize_opt")]
    pub period: Option<Duration>,
    /// Accepted: `fields`, `fields_under_root`, `tags`, `keep_null`, `index`, `processors`.
    #[serde(flatten)]
    pub other: std::collections::BTreeMap<String, Value>,
}

impl Default for FlowsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            timeout: Duration::from_secs(30),
            period: Some(Duration::from_secs(10)),
            other: Default::default(),
        }
    }
}

/// `packetbeat.interfaces.*`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct InterfacesConfig {
    /// Interface name, or `any`.
    pub device: String,
    /// Capture type: `ebpf` (default here), `af_packet`; Packetbeat's `pcap` means `ebpf`.
    #[serde(rename = "type")]
    pub kind: CaptureKind,
    /// Bytes kept of each packet.
    pub snaplen: u32,
    /// Kernel ring size in MiB (the BPF ring buffer or the AF_PACKET ring); see
    /// [`InterfacesConfig::ring_mb`] for the defaults.
    pub buffer_size_mb: Option<u32>,
    /// `internal_networks` (refines `network.direction`; accepted).
    pub internal_networks: Vec<String>,
    /// Accepted for compatibility: `with_vlans`, `bpf_filter`, `auto_promisc_mode`, `fanout_group`…
    pub with_vlans: Option<Value>,
    /// Accepted (the kernel filter is built from the configured ports instead).
    pub bpf_filter: Option<Value>,
    /// Accepted.
    pub auto_promisc_mode: Option<Value>,
    /// AF_PACKET fanout group id (used when several workers each open a socket).
    pub fanout_group: Option<u16>,
    /// Accepted.
    pub poll_default_route: Option<Value>,
}

impl InterfacesConfig {
    /// The ring size in MiB: `buffer_size_mb`, else Packetbeat's 30 for `af_packet` and 8 for the
    /// BPF ring. The BPF ring's data pages are mapped twice (so records can wrap), which doubles
    /// what it adds to RSS; 8 MiB still holds about 60 ms of 100k HTTP transactions/s.
    #[must_use]
    pub fn ring_mb(&self) -> u32 {
        self.buffer_size_mb.unwrap_or(match self.kind {
            CaptureKind::AfPacket => 30,
            CaptureKind::Ebpf => 8,
        })
    }
}

impl Default for InterfacesConfig {
    fn default() -> Self {
        Self {
            device: "any".into(),
            kind: CaptureKind::Ebpf,
            // tcpdump's default: loopback (MTU 65536) and GSO frames exceed Packetbeat's 65535.
            snaplen: 262_144,
            buffer_size_mb: None,
            internal_networks: vec!["private".into()],
            with_vlans: None,
            bpf_filter: None,
            auto_promisc_mode: None,
            fanout_group: None,
            poll_default_route: None,
        }
    }
}

/// How live packets reach userspace.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CaptureKind {
    /// The socket filter copies matching packets into a BPF ring buffer.
    #[default]
    #[serde(alias = "pcap")]
    Ebpf,
    /// The socket filter accepts matching packets into an AF_PACKET TPACKET_V3 ring.
    AfPacket,
}

/// Ours: memory bounds, each counted when hit.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Connections tracked per worker.
    pub max_connections: usize,
    /// Bytes buffered per stream direction while a message is incomplete (Packetbeat: 10 MB).
    pub stream_max_bytes: usize,
    /// Out-of-order segments held per stream direction.
    pub max_out_of_order_segments: usize,
    /// Bytes held out of order per stream direction.
    pub max_out_of_order_bytes: usize,
    /// A connection with no packets for this long is closed.
    #[serde(deserialize_with = "duration::deserialize")]
    pub connection_idle_timeout: Duration,
    /// Events queued between the workers and the output.
    pub output_queue_events: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 100_000,
            stream_max_bytes: 10 * 1024 * 1024,
            max_out_of_order_segments: 64,
            max_out_of_order_bytes: 1024 * 1024,
            connection_idle_timeout: Duration::from_secs(120),
            output_queue_events: 8192,
        }
    }
}

/// `output.*`: at most one enabled output; none means console.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct OutputSection {
    /// `output.console`.
    pub console: Option<ConsoleOutputConfig>,
    /// `output.file`.
    pub file: Option<FileOutputConfig>,
    /// `output.elasticsearch`.
    pub elasticsearch: Option<crate::output::elasticsearch::config::ElasticsearchConfig>,
    /// `output.logstash` (not supported).
    pub logstash: Option<Value>,
}

/// `output.console`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct ConsoleOutputConfig {
    /// `enabled`.
    pub enabled: bool,
    /// `pretty`: indent the JSON.
    pub pretty: bool,
    /// `codec` (accepted).
    pub codec: Option<Value>,
}

impl Default for ConsoleOutputConfig {
    fn default() -> Self {
        Self { enabled: true, pretty: false, codec: None }
    }
}

/// `output.file`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct FileOutputConfig {
    /// `enabled`.
    pub enabled: bool,
    /// `path`: directory of the files.
    pub path: String,
    /// `filename`: base name (`packetbeat`); files are `<filename>-<date>.ndjson` as libbeat 8 writes.
    pub filename: String,
    /// `rotate_every_kb`: rotate when a file reaches this size.
    pub rotate_every_kb: u64,
    /// `number_of_files`: files kept (2–1024).
    pub number_of_files: usize,
    /// `rotate_on_startup`.
    pub rotate_on_startup: bool,
    /// `permissions` (octal, e.g. 0600).
    pub permissions: u32,
    /// `codec` (accepted).
    pub codec: Option<Value>,
}

impl Default for FileOutputConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            path: "./data".into(),
            filename: "packetbeat".into(),
            rotate_every_kb: 10 * 1024,
            number_of_files: 7,
            rotate_on_startup: true,
            permissions: 0o600,
            codec: None,
        }
    }
}

/// `logging.*`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct LoggingSection {
    /// `logging.level`: debug, info, warning, error.
    pub level: String,
    /// `logging.metrics.*`.
    pub metrics: LoggingMetrics,
    /// Accepted: `to_files`, `to_stderr`, `files`, `selectors`, `json`.
    #[serde(flatten)]
    pub other: std::collections::BTreeMap<String, Value>,
}

impl Default for LoggingSection {
    fn default() -> Self {
        Self { level: "info".into(), metrics: LoggingMetrics::default(), other: Default::default() }
    }
}

/// `logging.metrics.*`: periodic counter logging.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct LoggingMetrics {
    /// `enabled`.
    pub enabled: bool,
    /// `period`.
    #[serde(deserialize_with = "duration::deserialize")]
    pub period: Duration,
}

impl Default for LoggingMetrics {
    fn default() -> Self {
        Self { enabled: true, period: Duration::from_secs(30) }
    }
}

impl Config {
    /// Checks the values that serde cannot.
    ///
    /// # Errors
    /// The first bad value, named by its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, message: String| Err(ConfigError::Invalid { key: key.into(), message });
        let i = &self.packetbeat.interfaces;
        if i.device.is_empty() {
            return bad("packetbeat.interfaces.device", "must name an interface or `any`".into());
        }
        if !(64..=262_144).contains(&i.snaplen) {
            return bad("packetbeat.interfaces.snaplen", format!("{} is outside 64..=262144", i.snaplen));
        }
        if let Some(mb) = i.buffer_size_mb.filter(|mb| !(1..=4096).contains(mb)) {
            return bad("packetbeat.interfaces.buffer_size_mb", format!("{mb} is outside 1..=4096"));
        }
        if self.packetbeat.workers == Some(0) {
            return bad("packetbeat.workers", "must be at least 1".into());
        }
        if let Some(f) = &self.output.file {
            if f.enabled && !(2..=1024).contains(&f.number_of_files) {
                return bad("output.file.number_of_files", format!("{} is outside 2..=1024", f.number_of_files));
            }
            if f.enabled && f.rotate_every_kb == 0 {
                return bad("output.file.rotate_every_kb", "must be positive".into());
            }
        }
        if let Some(es) = self.output.elasticsearch.as_ref().filter(|e| e.enabled) {
            es.validate()?;
        }
        let enabled = [
            self.output.console.as_ref().is_some_and(|c| c.enabled),
            self.output.file.as_ref().is_some_and(|f| f.enabled),
            self.output.elasticsearch.as_ref().is_some_and(|e| e.enabled),
        ];
        if enabled.iter().filter(|e| **e).count() > 1 {
            return bad("output", "only one output may be enabled (console, file or elasticsearch)".into());
        }
        if self.output.logstash.is_some() {
            return bad("output.logstash", "the logstash output is not supported".into());
        }
        match self.logging.level.as_str() {
            "debug" | "info" | "warning" | "warn" | "error" | "critical" => Ok(()),
            other => bad("logging.level", format!("{other:?} is not one of debug, info, warning, error")),
        }
    }
}
