//! [`SandboxSession`]: one sandbox, its language, its limits and its lifetime.
//!
//! Written once for every backend: timeouts, the run steps (write code, compile, run, clean
//! up), toolchain checks, copies and installs live here; isolation lives behind [`Backend`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::archive;
use crate::artifacts::{ArtifactLimits, PlotFormat, PlotOutput};
use crate::backend::{self, Backend, BackendKind, CloseReport, ExecOutput, ExecRequest};
use crate::collect::Collector;
use crate::error::{Error, Result};
use crate::language::{
    validate_library_name, LanguageHandler, LanguageRegistry, PlotContext, RunContext,
};
use crate::paths::{find_program, split_parent, validate_sandbox_path};
use crate::result::ExecutionResult;
use crate::security::{SecurityPolicy, Violation};
use crate::spec::{NetworkMode, ResourceLimits, SandboxSpec};

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

/// Builds a [`SandboxSession`]. Every setting has a secure default.
#[derive(Debug, Clone)]
pub struct SandboxSessionBuilder {
    lang: String,
    backend: BackendKind,
    spec: SandboxSpec,
    default_timeout: Duration,
    execution_timeout: Option<Duration>,
    session_timeout: Option<Duration>,
    install_timeout: Duration,
    env: Vec<(String, String)>,
    registry: LanguageRegistry,
    copy_limit: u64,
    verbose: bool,
    policy: Option<SecurityPolicy>,
    policy_advisory: bool,
    capture: Capture,
}

/// What a session brings back from its runs besides output: plots and output-folder files.
#[derive(Debug, Clone, Default)]
struct Capture {
    plotting: bool,
    plot_format: PlotFormat,
    keep_plots: bool,
    collect_artifacts: bool,
    /// Relative to the workdir.
    output_dir: Option<String>,
    limits: ArtifactLimits,
}

impl Capture {
    fn output_dir(&self) -> &str {
        self.output_dir.as_deref().unwrap_or("output")
    }
}

impl Default for SandboxSessionBuilder {
    fn default() -> Self {
        SandboxSessionBuilder {
            lang: "python".into(),
            backend: BackendKind::Native,
            spec: SandboxSpec::default(),
            default_timeout: Duration::from_secs(30),
            execution_timeout: None,
            session_timeout: None,
            install_timeout: Duration::from_secs(300),
            env: Vec::new(),
            registry: LanguageRegistry::new(),
            copy_limit: 1 << 30,
            verbose: false,
            policy: None,
            policy_advisory: false,
            capture: Capture::default(),
        }
    }
}

impl SandboxSessionBuilder {
    /// The language, by name, alias or extension-less name (default `python`).
    pub fn lang(mut self, lang: impl Into<String>) -> Self {
        self.lang = lang.into();
        self
    }
    /// The backend (default native).
    pub fn backend(mut self, backend: BackendKind) -> Self {
        self.backend = backend;
        self
    }
    /// The container image (container backends).
    pub fn image(mut self, image: impl Into<String>) -> Self {
        self.spec.image = Some(image.into());
        self
    }
    /// The working directory inside the sandbox (default `/sandbox`).
    pub fn workdir(mut self, workdir: impl Into<String>) -> Self {
        self.spec.workdir = workdir.into();
        self
    }
    /// The timeout of operations without a more specific one (default 30 s).
    pub fn default_timeout(mut self, timeout: Duration) -> Self {
        self.default_timeout = timeout;
        self
    }
    /// The timeout of each run (default: `default_timeout`).
    pub fn execution_timeout(mut self, timeout: Duration) -> Self {
        self.execution_timeout = Some(timeout);
        self
    }
    /// The session's lifetime; when it is over the sandbox is closed (default unlimited).
    pub fn session_timeout(mut self, timeout: Duration) -> Self {
        self.session_timeout = Some(timeout);
        self
    }
    /// The timeout of package installs (default 300 s).
    pub fn install_timeout(mut self, timeout: Duration) -> Self {
        self.install_timeout = timeout;
        self
    }
    /// All resource limits at once.
    pub fn limits(mut self, limits: ResourceLimits) -> Self {
        self.spec.limits = limits;
        self
    }
    /// The memory limit in bytes (`None`: unlimited).
    pub fn memory(mut self, bytes: Option<u64>) -> Self {
        self.spec.limits.memory = bytes;
        self
    }
    /// The CPU limit in cores (`None`: unlimited).
    pub fn cpus(mut self, cpus: Option<f64>) -> Self {
        self.spec.limits.cpus = cpus;
        self
    }
    /// The process limit (`None`: unlimited).
    pub fn pids(mut self, pids: Option<u64>) -> Self {
        self.spec.limits.pids = pids;
        self
    }
    /// The size of the writable area in bytes (`None`: the backend's default).
    pub fn disk(mut self, bytes: Option<u64>) -> Self {
        self.spec.limits.disk = bytes;
        self
    }
    /// Bytes kept of each of stdout and stderr per run.
    pub fn output_limit(mut self, bytes: u64) -> Self {
        self.spec.limits.output = bytes;
        self
    }
    /// The network (default none).
    pub fn network(mut self, network: NetworkMode) -> Self {
        self.spec.network = network;
        self
    }
    /// Adds an environment variable for every run.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }
    /// Raw backend-specific configuration, handed to the backend as it is.
    pub fn runtime_config(mut self, config: serde_json::Value) -> Self {
        self.spec.runtime_config = Some(config);
        self
    }
    /// Keep a pulled or built image after close (container backends).
    pub fn keep_template(mut self, keep: bool) -> Self {
        self.spec.keep_template = keep;
        self
    }
    /// Commit the container's state on close (container backends).
    pub fn commit_container(mut self, commit: bool) -> Self {
        self.spec.commit_container = commit;
        self
    }
    /// The directories searched for programs inside the sandbox (default
    /// `/usr/local/bin:/usr/bin:/bin`; never user directories or shims).
    pub fn search_path(mut self, dirs: Vec<String>) -> Self {
        self.spec.search_path = dirs;
        self
    }
    /// Makes a host path visible read-only in the sandbox (native backend), e.g. a toolchain
    /// under /opt.
    pub fn read_only_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.spec.read_only_paths.push(path.into());
        self
    }
    /// Lets package installs reach the network while the session's code stays offline
    /// (default false: installs fail without network unless the network mode allows it).
    pub fn allow_install_network(mut self, allow: bool) -> Self {
        self.spec.install_network = allow;
        self
    }
    /// Builds the session's image from this Dockerfile (container backends; the build context
    /// is the Dockerfile's folder). The built image is removed at close unless `keep_template`.
    pub fn dockerfile(mut self, path: impl Into<PathBuf>) -> Self {
        self.spec.dockerfile = Some(path.into());
        self
    }
    /// Receives progress of long work (image pulls and builds), e.g. to draw a progress bar.
    pub fn on_progress(
        mut self,
        handler: impl Fn(&crate::spec::Progress) + Send + Sync + 'static,
    ) -> Self {
        self.spec.progress = Some(crate::spec::ProgressSink(Arc::new(handler)));
        self
    }
    /// Bytes a copy out of the sandbox may carry (default 1 GiB).
    pub fn copy_limit(mut self, bytes: u64) -> Self {
        self.copy_limit = bytes;
        self
    }
    /// Checks code against `policy` before every run; code that violates it is not run (see
    /// [`policy_advisory`](Self::policy_advisory)).
    pub fn security_policy(mut self, policy: SecurityPolicy) -> Self {
        self.policy = Some(policy);
        self
    }
    /// Reports violations in the logs but runs the code anyway.
    pub fn policy_advisory(mut self, advisory: bool) -> Self {
        self.policy_advisory = advisory;
        self
    }
    /// Logs each step of the session (open, every command with its exit code and duration,
    /// close) at INFO instead of DEBUG, through `tracing`.
    pub fn verbose(mut self, verbose: bool) -> Self {
        self.verbose = verbose;
        self
    }
    /// Uses `registry` to look languages up (to add custom languages).
    pub fn registry(mut self, registry: LanguageRegistry) -> Self {
        self.registry = registry;
        self
    }
    /// Captures plots from every run (default off): matplotlib figures shown, saved or left
    /// open, seaborn and pandas plots, plotly figures and PIL images, without changing the
    /// program. Opening fails for a language that cannot capture plots.
    pub fn enable_plotting(mut self, enable: bool) -> Self {
        self.capture.plotting = enable;
        self
    }
    /// The format of figures captured when shown (default PNG); saved files keep their own.
    pub fn plot_format(mut self, format: PlotFormat) -> Self {
        self.capture.plot_format = format;
        self
    }
    /// Keeps plots across runs until [`SandboxSession::clear_plots`]: each result then holds
    /// every plot since the last clear. By default a result holds only its own run's plots.
    pub fn keep_plots(mut self, keep: bool) -> Self {
        self.capture.keep_plots = keep;
        self
    }
    /// Returns the files each run writes under the output folder as artifacts (default off).
    /// Collected files are moved out: the folder starts empty for the next run.
    pub fn collect_artifacts(mut self, collect: bool) -> Self {
        self.capture.collect_artifacts = collect;
        self
    }
    /// The output folder, relative to the workdir (default `output`).
    pub fn output_dir(mut self, dir: impl Into<String>) -> Self {
        self.capture.output_dir = Some(dir.into());
        self
    }
    /// Bounds on what one run returns, for plots and for artifacts each (default 100 files and
    /// 64 MiB). What is over is listed in [`ExecutionResult::omitted`].
    pub fn artifact_limits(mut self, limits: ArtifactLimits) -> Self {
        self.capture.limits = limits;
        self
    }
    /// Registers one custom language handler.
    pub fn register_language(mut self, handler: Arc<dyn LanguageHandler>) -> Self {
        self.registry.register(handler);
        self
    }

    /// Validates the settings and returns an unopened session.
    pub fn build(self) -> Result<SandboxSession> {
        self.spec.validate()?;
        for path in &self.spec.read_only_paths {
            if !path.is_absolute() {
                return Err(Error::invalid(format!(
                    "read-only path {} must be absolute",
                    path.display()
                )));
            }
        }
        for (key, _) in &self.env {
            validate_env_key(key)?;
        }
        let handler = self.registry.get(&self.lang)?;
        if self.capture.plotting {
            let probe = PlotContext {
                run_dir: String::new(),
                plots_dir: String::new(),
                format: self.capture.plot_format.to_string(),
            };
            if handler.plot_capture(&probe, &[]).is_none() {
                return Err(Error::PlottingNotSupported {
                    language: handler.name().into(),
                });
            }
        }
        if let Some(dir) = &self.capture.output_dir {
            let plain = !dir.is_empty()
                && Path::new(dir)
                    .components()
                    .all(|c| matches!(c, std::path::Component::Normal(_)));
            if !plain || dir.starts_with(".llm-sandbox") {
                return Err(Error::invalid(format!(
                    "output folder `{dir}` must be a relative path inside the workdir, without `..` (e.g. `output`)"
                )));
            }
        }
        Ok(SandboxSession {
            handler,
            backend_kind: self.backend,
            spec: self.spec,
            default_timeout: self.default_timeout,
            execution_timeout: self.execution_timeout.unwrap_or(self.default_timeout),
            session_timeout: self.session_timeout,
            install_timeout: self.install_timeout,
            env: self.env,
            copy_limit: self.copy_limit,
            verbose: self.verbose,
            policy: self.policy,
            policy_advisory: self.policy_advisory,
            capture: self.capture,
            kept_plots: std::sync::Mutex::new(Vec::new()),
            state: Arc::new(Mutex::new(State::NotOpen)),
        })
    }

    /// Builds and opens the session.
    pub async fn open(self) -> Result<SandboxSession> {
        let session = self.build()?;
        session.open().await?;
        Ok(session)
    }

    /// Opens the first backend of `order` that can be used here (see [`auto_order`]), and says
    /// why each one before it was skipped (unavailable, or its toolchain missing).
    pub async fn open_first(
        self,
        order: &[BackendKind],
    ) -> Result<(SandboxSession, Vec<(BackendKind, String)>)> {
        let mut skipped = Vec::new();
        for &kind in order {
            match self.clone().backend(kind).open().await {
                Ok(session) => {
                    tracing::info!("using the {kind} backend");
                    return Ok((session, skipped));
                }
                Err(
                    error @ (Error::BackendUnavailable { .. } | Error::ToolchainMissing { .. }),
                ) => {
                    tracing::info!("skipping the {kind} backend: {error}");
                    skipped.push((kind, error.to_string()));
                }
                Err(error) => return Err(error),
            }
        }
        let reasons: Vec<String> = skipped
            .iter()
            .map(|(kind, why)| format!("{kind}: {why}"))
            .collect();
        Err(Error::BackendUnavailable {
            backend: "auto".into(),
            reason: format!("no backend could be used ({})", reasons.join("; ")),
        })
    }
}

/// The order `auto` tries backends in: `LLM_SANDBOX_AUTO_ORDER` (e.g. `docker,native`) when set,
/// else native, docker, podman.
pub fn auto_order() -> Result<Vec<BackendKind>> {
    match std::env::var("LLM_SANDBOX_AUTO_ORDER") {
        Ok(order) if !order.trim().is_empty() => {
            order.split(',').map(|name| name.trim().parse()).collect()
        }
        _ => Ok(vec![
            BackendKind::Native,
            BackendKind::Docker,
            BackendKind::Podman,
        ]),
    }
}

enum State {
    NotOpen,
    Open {
        backend: Box<dyn Backend>,
        opened: Instant,
    },
    Expired,
    Closed,
}

/// A sandbox for one language. Runs share its files, as in a container; each run's processes end
/// with the run. Closing (or dropping) the session destroys the sandbox.
pub struct SandboxSession {
    handler: Arc<dyn LanguageHandler>,
    backend_kind: BackendKind,
    spec: SandboxSpec,
    default_timeout: Duration,
    execution_timeout: Duration,
    session_timeout: Option<Duration>,
    install_timeout: Duration,
    env: Vec<(String, String)>,
    copy_limit: u64,
    verbose: bool,
    policy: Option<SecurityPolicy>,
    policy_advisory: bool,
    capture: Capture,
    /// The last run's plots, or with `keep_plots` every plot since the last clear.
    kept_plots: std::sync::Mutex<Vec<PlotOutput>>,
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for SandboxSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxSession")
            .field("language", &self.handler.name())
            .field("backend", &self.backend_kind)
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

static RUN_COUNTER: AtomicU64 = AtomicU64::new(0);

/// How long listing a folder too big for one archive (see `Collector`) may take.
const LISTING_TIMEOUT: Duration = Duration::from_secs(30);

impl SandboxSession {
    /// A builder with secure defaults.
    pub fn builder() -> SandboxSessionBuilder {
        SandboxSessionBuilder::default()
    }

    /// The session's language.
    pub fn language(&self) -> &Arc<dyn LanguageHandler> {
        &self.handler
    }

    /// The backend kind.
    pub fn backend_kind(&self) -> BackendKind {
        self.backend_kind
    }

    /// Creates the sandbox. Fails with a clear error when the backend or toolchain is missing.
    pub async fn open(&self) -> Result<()> {
        let mut state = self.state.lock().await;
        if !matches!(*state, State::NotOpen) {
            return Err(Error::invalid(
                "the session was already opened; a session opens once",
            ));
        }
        if self.backend_kind == BackendKind::Native {
            // The native sandbox uses the host's toolchains; container backends bring their own.
            self.check_toolchain()?;
        }
        let mut spec = self.spec.clone();
        if spec.image.is_none() && self.backend_kind != BackendKind::Native {
            spec.image = Some(self.handler.default_image());
        }
        let backend = backend::registry::open(self.backend_kind, &spec).await?;
        self.log(format_args!(
            "opened a {} session for {}",
            self.backend_kind,
            self.handler.name()
        ));
        *state = State::Open {
            backend,
            opened: Instant::now(),
        };
        drop(state);
        if let Some(limit) = self.session_timeout {
            self.schedule_expiry(limit);
        }
        Ok(())
    }

    /// Closes the session at the end of its lifetime, even when it is idle.
    fn schedule_expiry(&self, limit: Duration) {
        let state = Arc::downgrade(&self.state);
        tokio::spawn(async move {
            tokio::time::sleep(limit).await;
            if let Some(state) = state.upgrade() {
                let mut state = state.lock().await;
                if let State::Open { backend, .. } = &mut *state {
                    let _ = backend.close().await;
                    *state = State::Expired;
                    tracing::debug!("session expired");
                }
            }
        });
    }

    /// Destroys the sandbox and everything in it; with `commit_container`, first commits its
    /// state to a new image named in the report. Closing twice is harmless.
    pub async fn close(&self) -> Result<CloseReport> {
        let mut state = self.state.lock().await;
        let mut report = CloseReport::default();
        if let State::Open { backend, .. } = &mut *state {
            report = backend.close().await?;
            self.log(format_args!("closed the {} session", self.backend_kind));
        }
        *state = State::Closed;
        Ok(report)
    }

    /// The isolation in force, as (feature, description) lines.
    pub async fn isolation(&self) -> Result<Vec<(String, String)>> {
        let mut state = self.state.lock().await;
        let (backend, _) = self.open_backend(&mut state).await?;
        Ok(backend.isolation())
    }

    /// Where the isolation is weaker than the defaults promise on this host (e.g. only rlimits
    /// bound memory), one sentence each with what to do; empty when nothing is.
    pub async fn warnings(&self) -> Result<Vec<String>> {
        let mut state = self.state.lock().await;
        let (backend, _) = self.open_backend(&mut state).await?;
        Ok(backend.warnings())
    }

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
    fn keep(&self, plots: Vec<PlotOutput>) -> Vec<PlotOutput> {
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
    async fn command(&self, argv: Vec<String>, options: CommandOptions) -> Result<ExecutionResult> {
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
    async fn result_of(
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

    /// Installs packages with the language's package manager into the session's workdir.
    ///
    /// Names are validated and passed as argv. The installer runs inside the sandbox, so that
    /// code cannot influence it: from `/`, with a fresh home directory no code has seen, with
    /// an environment of its own (not the session's: no `PYTHONPATH`, `NODE_PATH`, `GEM_HOME`
    /// or user variables) and its configuration files pinned. With `allow_install_network` it
    /// reaches the language's package index and nothing else (native: an HTTPS proxy that
    /// allows the index hosts alone; containers: the engine's default network while it runs).
    pub async fn install<S: AsRef<str>>(&self, libraries: &[S]) -> Result<()> {
        let libraries: Vec<String> = libraries.iter().map(|l| l.as_ref().to_string()).collect();
        if libraries.is_empty() {
            return Ok(());
        }
        for name in &libraries {
            validate_library_name(name)?;
        }
        let workdir = &self.spec.workdir;
        let argv = self.handler.install_command(&libraries, workdir)?;
        let home_name = format!(
            ".llm-sandbox/install-home-{}-{}",
            RUN_COUNTER.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos())
        );
        let home = format!("{workdir}/{home_name}");
        let mut packer = archive::Packer::new();
        packer.parents_of(&home_name)?;
        packer.dir(&home_name)?;
        let home_tar = packer.finish()?;
        let mut env = vec![
            ("PATH".to_string(), self.spec.search_path.join(":")),
            ("HOME".into(), home.clone()),
            ("USER".into(), "sandbox".into()),
            ("LANG".into(), "C.UTF-8".into()),
            ("TMPDIR".into(), "/tmp".into()),
        ];
        env.extend(self.handler.install_environment(&home));
        let network = self.spec.install_network && self.spec.network == NetworkMode::None;
        let mut state = self.state.lock().await;
        let (backend, left) = self.open_backend(&mut state).await?;
        for path in self.handler.installer_config_files(workdir) {
            backend.remove(&path).await?;
        }
        backend.put_archive(workdir, home_tar).await?;
        let mut request = self.request(
            argv,
            env,
            Some("/".into()),
            self.install_timeout.min(left),
            None,
        );
        request.package_index = network.then(|| self.handler.package_index_hosts());
        let output = self.exec(backend, request).await;
        let removed = backend.remove(&home).await;
        drop(state);
        let result = self.result_of(output?, self.install_timeout, left).await?;
        removed?;
        if result.timed_out {
            return Err(Error::Timeout {
                operation: format!("installing {}", libraries.join(" ")),
                limit: self.install_timeout,
            });
        }
        if result.exit_code != 0 {
            let hint = if self.spec.network == NetworkMode::None && !self.spec.install_network {
                " (the sandbox has no network; allow installs to reach the package index with `allow_install_network(true)`)"
            } else {
                ""
            };
            let detail: String = result
                .stderr
                .lines()
                .rev()
                .take(5)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n");
            return Err(Error::InstallFailed {
                libraries: libraries.join(" "),
                exit_code: result.exit_code,
                hint: hint.into(),
                detail,
            });
        }
        Ok(())
    }

    /// Copies host file or directory `src` into the sandbox as `dest` (relative to the workdir
    /// unless absolute). Host symlinks inside `src` are copied as links, never followed; what
    /// is copied belongs to the sandbox user. Container backends write only under the workdir
    /// (or into an existing directory of a writable volume).
    pub async fn copy_to_runtime(&self, src: impl AsRef<Path>, dest: &str) -> Result<()> {
        let dest = self.sandbox_path(dest)?;
        // Under the workdir, missing parents are created (as the sandbox user) by the archive.
        let workdir_prefix = format!("{}/", self.spec.workdir);
        let (base, name) = match dest.strip_prefix(&workdir_prefix) {
            Some(relative) => (self.spec.workdir.as_str(), relative),
            None => split_parent(&dest)?,
        };
        let mut packer = archive::Packer::new();
        packer.parents_of(name)?;
        packer.tree(src.as_ref(), name)?;
        let tar = packer.finish()?;
        let mut state = self.state.lock().await;
        let (backend, _) = self.open_backend(&mut state).await?;
        backend.put_archive(base, tar).await
    }

    /// Copies sandbox file or directory `src` (relative to the workdir unless absolute) to host
    /// path `dest`. Links, devices and paths escaping `dest` are refused; size is bounded.
    pub async fn copy_from_runtime(&self, src: &str, dest: impl AsRef<Path>) -> Result<()> {
        let src = self.sandbox_path(src)?;
        let (_, name) = split_parent(&src)?;
        let tar = {
            let mut state = self.state.lock().await;
            let (backend, _) = self.open_backend(&mut state).await?;
            backend.get_archive(&src, self.copy_limit).await?
        };
        archive::extract(&tar, name, dest.as_ref())
    }

    /// Checks `code` against the session's security policy: `(safe, violations)`. Without a
    /// policy every code is safe. Never changes the policy. The check is advisory by nature:
    /// the isolation is the security boundary.
    pub fn is_safe(&self, code: &str) -> (bool, Vec<Violation>) {
        match &self.policy {
            Some(policy) => policy.is_safe(self.handler.as_ref(), code),
            None => (true, Vec::new()),
        }
    }

    /// Runs one request on the backend, logging it.
    async fn exec(
        &self,
        backend: &mut Box<dyn Backend>,
        request: ExecRequest,
    ) -> Result<ExecOutput> {
        let argv = request.argv.join(" ");
        let output = backend.exec(request, &mut |_, _| {}).await?;
        self.log(format_args!(
            "`{argv}` exited {} in {:?}{}",
            output.exit_code,
            output.duration,
            if output.timed_out { " (timed out)" } else { "" }
        ));
        Ok(output)
    }

    /// Logs a session step at INFO when verbose, else at DEBUG.
    fn log(&self, message: std::fmt::Arguments<'_>) {
        if self.verbose {
            tracing::info!("{message}");
        } else {
            tracing::debug!("{message}");
        }
    }

    fn check_toolchain(&self) -> Result<()> {
        for tool in self.handler.toolchain() {
            if find_program(&self.spec.search_path, tool.binary).is_none() {
                return Err(Error::ToolchainMissing {
                    language: self.handler.name().into(),
                    binary: tool.binary.into(),
                    package: tool.package.into(),
                });
            }
        }
        Ok(())
    }

    /// The open backend and the time left of the session, or why there is none.
    async fn open_backend<'a>(
        &self,
        state: &'a mut State,
    ) -> Result<(&'a mut Box<dyn Backend>, Duration)> {
        let expired = match &*state {
            State::Open { opened, .. } => self
                .session_timeout
                .is_some_and(|limit| opened.elapsed() >= limit),
            _ => false,
        };
        if expired {
            if let State::Open { backend, .. } = state {
                backend.close().await?;
            }
            *state = State::Expired;
        }
        match state {
            State::Open { backend, opened } => {
                let left = self.session_timeout.map_or(Duration::MAX, |limit| {
                    limit.saturating_sub(opened.elapsed())
                });
                Ok((backend, left))
            }
            State::Expired => Err(self.expired_error()),
            State::NotOpen | State::Closed => Err(Error::NotOpen),
        }
    }

    async fn expire(&self) -> Error {
        let mut state = self.state.lock().await;
        if let State::Open { backend, .. } = &mut *state {
            let _ = backend.close().await;
        }
        *state = State::Expired;
        self.expired_error()
    }

    fn expired_error(&self) -> Error {
        Error::SessionExpired {
            limit: self.session_timeout.unwrap_or_default(),
        }
    }

    fn environment(&self, extra: &[(String, String)]) -> Vec<(String, String)> {
        let workdir = &self.spec.workdir;
        let mut env = vec![
            ("PATH".to_string(), self.spec.search_path.join(":")),
            ("HOME".into(), workdir.clone()),
            ("USER".into(), "sandbox".into()),
            ("LANG".into(), "C.UTF-8".into()),
            ("TMPDIR".into(), "/tmp".into()),
        ];
        env.extend(self.handler.environment(workdir));
        for (key, value) in self.env.iter().chain(extra) {
            env.retain(|(k, _)| k != key);
            env.push((key.clone(), value.clone()));
        }
        env
    }

    fn request(
        &self,
        argv: Vec<String>,
        env: Vec<(String, String)>,
        cwd: Option<String>,
        timeout: Duration,
        stdin: Option<Vec<u8>>,
    ) -> ExecRequest {
        ExecRequest {
            argv,
            env,
            cwd: cwd.unwrap_or_else(|| self.spec.workdir.clone()),
            stdin,
            timeout,
            output_limit: self.spec.limits.output,
            package_index: None,
        }
    }

    fn sandbox_path(&self, path: &str) -> Result<String> {
        let absolute = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("{}/{path}", self.spec.workdir)
        };
        let absolute = absolute.trim_end_matches('/').to_string();
        validate_sandbox_path(&absolute, "sandbox path")?;
        Ok(absolute)
    }
}

fn validate_env_key(key: &str) -> Result<()> {
    if key.is_empty() || key.contains('=') || key.contains('\0') {
        return Err(Error::invalid(format!(
            "`{key}` is not a valid environment variable name"
        )));
    }
    Ok(())
}
