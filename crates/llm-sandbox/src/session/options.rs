//! What a run, a command and a session's capture are given.

use std::time::Duration;

use crate::artifacts::{ArtifactLimits, PlotFormat};

/// Options for one [`SandboxSession::run_with`].
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Overrides the session's execution timeout for this run.
    pub timeout: Option<Duration>,
    /// Packages installed (with the language's package manager) before the run.
    pub libraries: Vec<String>,
    /// Bytes given to the program's standard input.
    pub stdin: Option<Vec<u8>>,
    /// Extra environment variables for this run.
    pub env: Vec<(String, String)>,
}

/// Options for one [`SandboxSession::execute_command_with`].
#[derive(Debug, Clone, Default)]
pub struct CommandOptions {
    /// Overrides the session's default timeout.
    pub timeout: Option<Duration>,
    /// The working directory (default: the session's workdir).
    pub workdir: Option<String>,
    /// Bytes given to standard input.
    pub stdin: Option<Vec<u8>>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
}

/// What a session brings back from its runs besides output: plots and output-folder files.
#[derive(Debug, Clone, Default)]
pub(crate) struct Capture {
    pub(crate) plotting: bool,
    pub(crate) plot_format: PlotFormat,
    pub(crate) keep_plots: bool,
    pub(crate) collect_artifacts: bool,
    /// Relative to the workdir.
    pub(crate) output_dir: Option<String>,
    pub(crate) limits: ArtifactLimits,
}

impl Capture {
    pub(crate) fn output_dir(&self) -> &str {
        self.output_dir.as_deref().unwrap_or("output")
    }
}
