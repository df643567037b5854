//! A blocking wrapper around [`crate::SandboxSession`] for callers without an async runtime.

use std::path::Path;

use crate::error::{Error, Result};
use crate::result::ExecutionResult;
use crate::session::{CommandOptions, RunOptions, SandboxSessionBuilder};

/// A [`crate::SandboxSession`] driven by its own small runtime.
pub struct SandboxSession {
    runtime: tokio::runtime::Runtime,
    inner: crate::SandboxSession,
}

impl SandboxSession {
    /// Builds and opens a session from `builder`.
    pub fn open(builder: SandboxSessionBuilder) -> Result<Self> {
        // One worker thread, so that the session timeout fires even while the caller is idle.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| Error::io("starting the runtime", e))?;
        let inner = runtime.block_on(builder.open())?;
        Ok(SandboxSession { runtime, inner })
    }

    /// See [`crate::SandboxSession::run`].
    pub fn run(&self, code: &str) -> Result<ExecutionResult> {
        self.runtime.block_on(self.inner.run(code))
    }

    /// See [`crate::SandboxSession::run_with`].
    pub fn run_with(&self, code: &str, options: RunOptions) -> Result<ExecutionResult> {
        self.runtime.block_on(self.inner.run_with(code, options))
    }

    /// See [`crate::SandboxSession::execute_command_with`].
    pub fn execute_command<S: AsRef<str>>(
        &self,
        argv: &[S],
        options: CommandOptions,
    ) -> Result<ExecutionResult> {
        self.runtime
            .block_on(self.inner.execute_command_with(argv, options))
    }

    /// See [`crate::SandboxSession::install`].
    pub fn install<S: AsRef<str>>(&self, libraries: &[S]) -> Result<()> {
        self.runtime.block_on(self.inner.install(libraries))
    }

    /// See [`crate::SandboxSession::copy_to_runtime`].
    pub fn copy_to_runtime(&self, src: impl AsRef<Path>, dest: &str) -> Result<()> {
        self.runtime.block_on(self.inner.copy_to_runtime(src, dest))
    }

    /// See [`crate::SandboxSession::copy_from_runtime`].
    pub fn copy_from_runtime(&self, src: &str, dest: impl AsRef<Path>) -> Result<()> {
        self.runtime
            .block_on(self.inner.copy_from_runtime(src, dest))
    }

    /// See [`crate::SandboxSession::plots`].
    pub fn plots(&self) -> Vec<crate::PlotOutput> {
        self.inner.plots()
    }

    /// See [`crate::SandboxSession::clear_plots`].
    pub fn clear_plots(&self) {
        self.inner.clear_plots()
    }

    /// See [`crate::SandboxSession::close`].
    pub fn close(self) -> Result<crate::CloseReport> {
        self.runtime.block_on(self.inner.close())
    }
}
