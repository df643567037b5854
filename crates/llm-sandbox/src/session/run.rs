//! Running code and commands: the run pipeline (stage, compile, run, collect, clean up).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::options::{CommandOptions, RunOptions};
use super::state::{validate_env_key, SandboxSession, RUN_COUNTER};
use crate::archive;
use crate::artifacts::PlotOutput;
use crate::backend::ExecOutput;
use crate::collect::Collector;
use crate::error::{Error, Result};
use crate::language::{PlotContext, RunContext};
use crate::paths::validate_sandbox_path;
use crate::result::ExecutionResult;

/// How long listing a folder too big for one archive (see `Collector`) may take.
const LISTING_TIMEOUT: Duration = Duration::from_secs(30);

impl SandboxSession {
    /// Runs `code` with the session's execution timeout.
    pub async fn run(&self, code: &str) -> Result<ExecutionResult> {
        self.run_with(code, RunOptions::default()).await
    }

    /// Runs `code` with per-run options.
    pub async fn run_with(&self, code: &str, options: RunOptions) -> Result<ExecutionResult> {
        let (safe, violations) = self.is_safe(code);
        if !safe {
            if !self.policy_advisory {
                return Err(Error::SecurityViolation { violations });
            }
            for violation in &violations {
                tracing::warn!("security policy (advisory): {violation}");
            }
        }
        for (key, _) in &options.env {
            validate_env_key(key)?;
        }
        if !options.libraries.is_empty() {
            self.install(&options.libraries).await?;
        }
        let mut state = self.state.lock().await;
        let (backend, left) = self.open_backend(&mut state).await?;
        let started = Instant::now();
        let timeout = options.timeout.unwrap_or(self.execution_timeout);
        let budget = timeout.min(left);

        // Code lives in the workdir (every backend can write there), in a directory of its own
        // that is removed after the run.
        let run_name = format!(
            ".llm-sandbox/run-{}",
            RUN_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let run_dir = format!("{}/{run_name}", self.spec.workdir);
        let ctx = RunContext {
            source_path: format!("{run_dir}/{}", self.handler.file_name()),
            build_dir: format!("{run_dir}/build"),
            workdir: self.spec.workdir.clone(),
            memory_limit: self.spec.limits.memory,
        };
        let mut packer = archive::Packer::new();
        packer.parents_of(&run_name)?;
        packer.dir(&run_name)?;
        packer.dir(&format!("{run_name}/build"))?;
        packer.file(
            &format!("{run_name}/{}", self.handler.file_name()),
            code.as_bytes(),
            0o644,
        )?;
        let mut env = self.environment(&options.env);
        let plots_dir = format!("{run_dir}/plots");
        if self.capture.plotting {
            let ctx = PlotContext {
                run_dir: run_dir.clone(),
                plots_dir: plots_dir.clone(),
                format: self.capture.plot_format.to_string(),
            };
            let capture = self.handler.plot_capture(&ctx, &env).ok_or_else(|| {
                Error::PlottingNotSupported {
                    language: self.handler.name().into(),
                }
            })?;
            packer.dir(&format!("{run_name}/plots"))?;
            for (name, content) in capture.files {
                let name = format!("{run_name}/{name}");
                packer.parents_of(&name)?;
                packer.file(&name, &content, 0o644)?;
            }
            for (key, value) in capture.env {
                env.retain(|(k, _)| *k != key);
                env.push((key, value));
            }
        }
        if self.capture.collect_artifacts {
            let output_dir = self.capture.output_dir();
            packer.parents_of(output_dir)?;
            packer.dir(output_dir)?;
        }
        backend
            .put_archive(&self.spec.workdir, packer.finish()?)
            .await?;

        let mut result = None;
        if let Some(compile) = self.handler.compile_command(&ctx) {
            let compile = self.request(compile, env.clone(), None, budget, None);
            let output = self.exec(backend, compile).await?;
            if output.exit_code != 0 || output.timed_out {
                result = Some(output);
            }
        }
        let output = match result {
            Some(compile_failure) => compile_failure,
            None => {
                let left = budget.saturating_sub(started.elapsed());
                let request = self.request(
                    self.handler.run_command(&ctx),
                    env.clone(),
                    None,
                    left,
                    options.stdin,
                );
                self.exec(backend, request).await?
            }
        };
        let (mut plots, mut artifacts, mut omitted) = (Vec::new(), Vec::new(), Vec::new());
        if self.capture.plotting || self.capture.collect_artifacts {
            let listing = self.request(
                Vec::new(),
                self.environment(&[]),
                None,
                LISTING_TIMEOUT,
                None,
            );
            let mut collector = Collector::new(backend, self.capture.limits, listing);
            if self.capture.plotting {
                plots = collector.plots(&plots_dir, &mut omitted).await;
            }
            if self.capture.collect_artifacts {
                let dir = format!("{}/{}", self.spec.workdir, self.capture.output_dir());
                artifacts = collector.artifacts(&dir, &mut omitted).await;
            }
        }
        if let Err(error) = backend.remove(&run_dir).await {
            // The code may have made its run directory undeletable; the next runs do not care.
            tracing::warn!("could not remove the run's files: {error}");
        }

        let timed_out_by_session = output.timed_out && budget < timeout;
        let mut result = ExecutionResult::from_output(output, self.spec.limits.output);
        result.duration = started.elapsed();
        result.plots = self.keep(plots);
        result.artifacts = artifacts;
        result.omitted = omitted;
        drop(state);
        if timed_out_by_session {
            return Err(self.expire().await);
        }
        Ok(result)
    }

    /// The plots of the last run, or with `keep_plots` every plot since the last clear.
    pub fn plots(&self) -> Vec<PlotOutput> {
        self.kept_plots.lock().expect("plots lock").clone()
    }

    /// Forgets the plots kept so far (see `keep_plots`).
    pub fn clear_plots(&self) {
        self.kept_plots.lock().expect("plots lock").clear();
    }

    /// Records a run's plots and returns what its result holds.
    pub(super) fn keep(&self, plots: Vec<PlotOutput>) -> Vec<PlotOutput> {
        let mut kept = self.kept_plots.lock().expect("plots lock");
        if self.capture.keep_plots {
            kept.extend(plots);
        } else {
            *kept = plots;
        }
        kept.clone()
    }

    /// Runs a command (argv, no shell) in the workdir with the default timeout.
    pub async fn execute_command<S: AsRef<str>>(&self, argv: &[S]) -> Result<ExecutionResult> {
        self.execute_command_with(argv, CommandOptions::default())
            .await
    }

    /// Runs a shell command line through `/bin/sh -c`, for callers who want a shell.
    pub async fn execute_shell(&self, command: &str) -> Result<ExecutionResult> {
        self.execute_command(&["/bin/sh", "-c", command]).await
    }

    /// Runs a command (argv, no shell) with options.
    pub async fn execute_command_with<S: AsRef<str>>(
        &self,
        argv: &[S],
        options: CommandOptions,
    ) -> Result<ExecutionResult> {
        let argv: Vec<String> = argv.iter().map(|a| a.as_ref().to_string()).collect();
        self.command(argv, options).await
    }

    /// Runs a command in the workdir (or `options.workdir`) with the session's environment.
    pub(super) async fn command(
        &self,
        argv: Vec<String>,
        options: CommandOptions,
    ) -> Result<ExecutionResult> {
        if argv.is_empty() || argv[0].is_empty() {
            return Err(Error::invalid("the command is empty"));
        }
        if let Some(dir) = &options.workdir {
            validate_sandbox_path(dir, "command workdir")?;
        }
        for (key, _) in &options.env {
            validate_env_key(key)?;
        }
        let mut state = self.state.lock().await;
        let (backend, left) = self.open_backend(&mut state).await?;
        let timeout = options.timeout.unwrap_or(self.default_timeout);
        let env = self.environment(&options.env);
        let request = self.request(argv, env, options.workdir, timeout.min(left), options.stdin);
        let output = self.exec(backend, request).await?;
        drop(state);
        self.result_of(output, timeout, left).await
    }

    /// The result of a command, or the session's expiry when its budget, not the command's
    /// timeout, ran out.
    pub(super) async fn result_of(
        &self,
        output: ExecOutput,
        timeout: Duration,
        left: Duration,
    ) -> Result<ExecutionResult> {
        if output.timed_out && left < timeout {
            return Err(self.expire().await);
        }
        Ok(ExecutionResult::from_output(
            output,
            self.spec.limits.output,
        ))
    }
}
