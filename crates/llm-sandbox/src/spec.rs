//! What a sandbox should look like: limits, network, paths. Shared by every backend.

use std::path::PathBuf;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::paths::validate_sandbox_path;

/// Resource limits of one sandbox. `None` means unlimited.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceLimits {
    /// Memory in bytes (all processes together, including files in the writable area).
    pub memory: Option<u64>,
    /// CPU time as a number of cores (e.g. `0.5`).
    pub cpus: Option<f64>,
    /// Maximum number of processes and threads.
    pub pids: Option<u64>,
    /// Size of the writable area (workdir, /tmp, /dev/shm together) in bytes.
    pub disk: Option<u64>,
    /// Bytes kept of each of stdout and stderr per run; the rest is dropped and marked.
    pub output: u64,
}

impl Default for ResourceLimits {
    /// Secure defaults: 1 GiB memory, 256 processes, 1 GiB disk, 10 MiB of output per stream.
    fn default() -> Self {
        ResourceLimits {
            memory: Some(1 << 30),
            cpus: None,
            pids: Some(256),
            disk: Some(1 << 30),
            output: 10 << 20,
        }
    }
}

impl ResourceLimits {
    /// The enforced limits in a line for users, e.g. `memory 1024 MiB, pids 256, cpus unlimited`.
    pub fn describe(&self) -> String {
        let show = |value: Option<String>| value.unwrap_or_else(|| "unlimited".into());
        format!(
            "memory {}, pids {}, cpus {}",
            show(self.memory.map(|b| format!("{} MiB", b >> 20))),
            show(self.pids.map(|p| p.to_string())),
            show(self.cpus.map(|c| c.to_string())),
        )
    }
}

/// The sandbox's network.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum NetworkMode {
    /// No network: a private loopback only (the default).
    #[default]
    None,
    /// The host's network, shared knowingly.
    Host,
    /// A mode only a container backend knows (e.g. a Docker network name).
    Other(String),
}

impl FromStr for NetworkMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "none" => Ok(NetworkMode::None),
            "host" => Ok(NetworkMode::Host),
            "" => Err(Error::invalid(
                "the network mode is empty; use none or host",
            )),
            other => Ok(NetworkMode::Other(other.to_string())),
        }
    }
}

/// How to reach a container engine (Docker, or Podman through its Docker-compatible API).
#[derive(Debug, Clone, Default)]
pub struct EngineConfig {
    /// `unix:///path`, `/path`, `tcp://host:port` or `https://host:port`. Default: `DOCKER_HOST`
    /// (docker) or `CONTAINER_HOST` (podman), else the engine's usual socket.
    pub url: Option<String>,
    /// Client certificates for a TLS connection.
    pub tls: Option<TlsFiles>,
    /// An already-built client; takes precedence over `url`.
    pub client: Option<bollard::Docker>,
}

/// The files of a TLS client connection to an engine.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The CA certificate that signed the engine's certificate.
    pub ca: PathBuf,
    /// The client certificate.
    pub cert: PathBuf,
    /// The client key.
    pub key: PathBuf,
}

/// One step of long work (pulling or building an image), for progress displays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// What is being done, e.g. `pulling llm-sandbox/python:latest`.
    pub task: String,
    /// The latest status line.
    pub message: String,
    /// Bytes (or steps) done so far, when the engine says.
    pub current: Option<u64>,
    /// Bytes (or steps) in all, when the engine says.
    pub total: Option<u64>,
    /// Whether the task has finished.
    pub done: bool,
}

/// Receives [`Progress`] as long work goes on.
#[derive(Clone)]
pub struct ProgressSink(pub std::sync::Arc<dyn Fn(&Progress) + Send + Sync>);

impl std::fmt::Debug for ProgressSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressSink")
    }
}

impl ProgressSink {
    /// Reports one step, and logs it.
    pub(crate) fn report(sink: Option<&ProgressSink>, progress: Progress) {
        tracing::info!("{}: {}", progress.task, progress.message);
        if let Some(sink) = sink {
            (sink.0)(&progress);
        }
    }
}

/// Everything a backend needs to create a sandbox.
#[derive(Debug, Clone)]
pub struct SandboxSpec {
    /// The working directory inside the sandbox (absolute).
    pub workdir: String,
    /// Resource limits.
    pub limits: ResourceLimits,
    /// Network mode.
    pub network: NetworkMode,
    /// The container image (container backends).
    pub image: Option<String>,
    /// Raw backend-specific configuration, handed to the backend as it is.
    pub runtime_config: Option<serde_json::Value>,
    /// Directories searched for programs inside the sandbox, in order.
    pub search_path: Vec<String>,
    /// Extra host paths made visible read-only at the same place (native backend).
    pub read_only_paths: Vec<PathBuf>,
    /// Lets package installs (and only them) reach the network while code stays offline.
    pub install_network: bool,
    /// How to reach the engine (container backends).
    pub engine: EngineConfig,
    /// Build the image from this Dockerfile (container backends; context: its folder).
    pub dockerfile: Option<PathBuf>,
    /// Where pull and build progress goes (besides the logs).
    pub progress: Option<ProgressSink>,
    /// Keep an image the session built after close (container backends).
    pub keep_template: bool,
    /// Commit the container's state to a new image on close (container backends); the root
    /// then stays writable and the workdir lives in the container's own layer.
    pub commit_container: bool,
}

/// The uid and gid sandboxed code runs as, in every backend.
pub const SANDBOX_UID: u32 = 1000;

/// The PATH inside a sandbox unless configured: no shims, no user directories.
pub const DEFAULT_SEARCH_PATH: [&str; 3] = ["/usr/local/bin", "/usr/bin", "/bin"];

impl Default for SandboxSpec {
    fn default() -> Self {
        SandboxSpec {
            workdir: "/sandbox".into(),
            limits: ResourceLimits::default(),
            network: NetworkMode::None,
            image: None,
            runtime_config: None,
            search_path: DEFAULT_SEARCH_PATH.iter().map(|s| s.to_string()).collect(),
            read_only_paths: Vec::new(),
            install_network: false,
            engine: EngineConfig::default(),
            dockerfile: None,
            progress: None,
            keep_template: false,
            commit_container: false,
        }
    }
}

impl SandboxSpec {
    /// Checks the spec for values no backend can honour.
    pub fn validate(&self) -> Result<()> {
        validate_sandbox_path(&self.workdir, "workdir")?;
        const SYSTEM: [&str; 9] = [
            "/", "/usr", "/bin", "/sbin", "/lib", "/lib64", "/etc", "/proc", "/dev",
        ];
        if SYSTEM
            .iter()
            .any(|s| self.workdir == *s || self.workdir.starts_with(&format!("{s}/")) && *s != "/")
        {
            return Err(Error::invalid(format!(
                "workdir `{}` lies in a system directory; use a path such as /sandbox or /home/user",
                self.workdir
            )));
        }
        if self.workdir == "/tmp" || self.workdir.starts_with("/tmp/") {
            return Err(Error::invalid(
                "workdir must not be under /tmp, which the sandbox mounts itself",
            ));
        }
        if let Some(cpus) = self.limits.cpus {
            if !(cpus.is_finite() && cpus > 0.0) {
                return Err(Error::invalid(format!(
                    "cpus must be a positive number, not {cpus}"
                )));
            }
        }
        if self.limits.pids == Some(0)
            || self.limits.memory == Some(0)
            || self.limits.disk == Some(0)
        {
            return Err(Error::invalid(
                "a limit of 0 leaves nothing to run; omit it to leave it unlimited",
            ));
        }
        for dir in &self.search_path {
            validate_sandbox_path(dir, "search path entry")?;
        }
        Ok(())
    }
}

/// Parses a size such as `256m`, `1g`, `512k` or `1048576` (bytes).
pub fn parse_size(text: &str) -> Result<u64> {
    let text = text.trim().to_ascii_lowercase();
    let text = text.strip_suffix('b').unwrap_or(&text);
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => text.split_at(i),
        None => (text, ""),
    };
    let multiplier: u64 = match unit.trim_end_matches('i') {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        _ => {
            return Err(Error::invalid(format!(
                "size `{text}`: unknown unit `{unit}`; use k, m or g"
            )))
        }
    };
    let value: f64 = number.parse().map_err(|_| {
        Error::invalid(format!(
            "size `{text}` is not a number with an optional k/m/g unit"
        ))
    })?;
    if value <= 0.0 || !value.is_finite() {
        return Err(Error::invalid(format!("size `{text}` must be positive")));
    }
    Ok((value * multiplier as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("256m").unwrap(), 256 << 20);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("1.5k").unwrap(), 1536);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("0").is_err());
        assert!(parse_size("5x").is_err());
    }

    #[test]
    fn workdir_must_be_a_clean_absolute_path_outside_system_dirs() {
        let with = |workdir: &str| {
            SandboxSpec {
                workdir: workdir.into(),
                ..Default::default()
            }
            .validate()
        };
        with("/sandbox").unwrap();
        with("/home/user/work").unwrap();
        for bad in [
            "sandbox",
            "/sandbox/../etc",
            "/usr/work",
            "/",
            "/etc",
            "/tmp/x",
            "/a//b",
        ] {
            assert!(with(bad).is_err(), "{bad} accepted");
        }
    }
}
