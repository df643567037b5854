//! The one seam between a session and the isolation: the [`Backend`] trait.
//!
//! A backend is one open sandbox. Everything above it (languages, timeouts, policies,
//! artifacts) is written once in the session; each backend lives in its own module, and
//! [`registry`] is the only file that names them (open, probe, gc, image builds by
//! [`BackendKind`]).

mod container;
mod docker;
mod native;
mod output;
mod package_proxy;
pub mod registry;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::{Error, Result};

/// The kinds of backend a session can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum BackendKind {
    /// Linux namespaces, cgroups, seccomp and rlimits; no daemon, no image (the default).
    #[default]
    Native,
    /// A Docker Engine.
    Docker,
    /// Podman through its Docker-compatible API.
    Podman,
    /// A Kubernetes cluster.
    Kubernetes,
}

impl BackendKind {
    /// Every kind, in the order `auto` would try them.
    pub const ALL: [BackendKind; 4] = [
        BackendKind::Native,
        BackendKind::Docker,
        BackendKind::Podman,
        BackendKind::Kubernetes,
    ];

    /// The name used in options and messages.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Native => "native",
            BackendKind::Docker => "docker",
            BackendKind::Podman => "podman",
            BackendKind::Kubernetes => "kubernetes",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for BackendKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        BackendKind::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                Error::invalid(format!(
                    "unknown backend `{s}`; use native, docker, podman or kubernetes"
                ))
            })
    }
}

/// One command to run inside the sandbox.
#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    /// The program and its arguments; the program is looked up on `PATH` from `env`.
    pub argv: Vec<String>,
    /// The complete environment of the process.
    pub env: Vec<(String, String)>,
    /// The working directory (absolute, inside the sandbox).
    pub cwd: String,
    /// Bytes fed to standard input (then closed); empty input when `None`.
    pub stdin: Option<Vec<u8>>,
    /// After this long everything the command started is killed.
    pub timeout: Duration,
    /// Bytes kept of each of stdout and stderr.
    pub output_limit: u64,
    /// `Some(hosts)` for a package installer allowed to reach its package index although the
    /// sandbox has no network (the spec's `install_network`), never for user code. The native
    /// backend lets it reach exactly these hosts (HTTPS, through a proxy); container backends
    /// attach the engine's default network while it runs.
    pub package_index: Option<Vec<String>>,
}

/// Which output stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// What came of one [`ExecRequest`].
#[derive(Debug, Clone, Default)]
pub struct ExecOutput {
    /// The exit code; `128 + signal` when killed by a signal (as shells report it).
    pub exit_code: i32,
    /// Standard output, at most `output_limit` bytes.
    pub stdout: Vec<u8>,
    /// Standard error, at most `output_limit` bytes.
    pub stderr: Vec<u8>,
    /// Whether stdout exceeded the limit.
    pub stdout_truncated: bool,
    /// Whether stderr exceeded the limit.
    pub stderr_truncated: bool,
    /// Whether the timeout killed the command.
    pub timed_out: bool,
    /// Whether the kernel's out-of-memory killer struck during the command.
    pub out_of_memory: bool,
    /// Wall time from start to the end of all its processes.
    pub duration: Duration,
}

/// What closing a sandbox produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CloseReport {
    /// The image the sandbox's state was committed to (`commit_container`).
    pub committed_image: Option<String>,
}

/// Receives output as it is produced (streaming interfaces build on this).
pub type OutputCallback<'a> = &'a mut (dyn FnMut(OutputStream, &[u8]) + Send);

/// One open sandbox. Created by a backend's `open`, used by exactly one session.
#[async_trait]
pub trait Backend: Send + Sync {
    /// Which kind of backend this is.
    fn kind(&self) -> BackendKind;

    /// Runs a command to completion (or timeout); output is also passed to `on_output`.
    async fn exec(
        &mut self,
        request: ExecRequest,
        on_output: OutputCallback<'_>,
    ) -> Result<ExecOutput>;

    /// Unpacks a tar archive into directory `dest_dir` (absolute, created if missing).
    async fn put_archive(&mut self, dest_dir: &str, tar: Vec<u8>) -> Result<()>;

    /// Packs `path` (a file or directory, symlinks not followed) into a tar archive whose top
    /// entry is the path's base name; fails when the archive would exceed `max_bytes`.
    async fn get_archive(&mut self, path: &str, max_bytes: u64) -> Result<Vec<u8>>;

    /// Removes a file or a directory tree (absolute path) inside the sandbox; a missing path is
    /// not an error.
    async fn remove(&mut self, path: &str) -> Result<()>;

    /// The isolation in force, as (feature, description) lines for users and `doctor`.
    fn isolation(&self) -> Vec<(String, String)>;

    /// Where the isolation is weaker than the defaults promise here (e.g. rlimits in place of
    /// cgroups), one sentence each, with what to do about it.
    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }

    /// Destroys the sandbox and everything in it (committing it first when asked).
    /// Idempotent; also done on drop, without the commit.
    async fn close(&mut self) -> Result<CloseReport>;
}
