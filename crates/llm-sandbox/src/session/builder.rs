//! [`SandboxSessionBuilder`]: every setting of a session, with secure defaults.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;

use super::options::Capture;
use super::state::{validate_env_key, SandboxSession, State};
use crate::artifacts::{ArtifactLimits, PlotFormat};
use crate::backend::BackendKind;
use crate::error::{Error, Result};
use crate::language::{LanguageHandler, LanguageRegistry, PlotContext};
use crate::security::SecurityPolicy;
use crate::spec::{NetworkMode, ResourceLimits, SandboxSpec};

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

impl SandboxSession {
    /// A builder with secure defaults.
    pub fn builder() -> SandboxSessionBuilder {
        SandboxSessionBuilder::default()
    }
}
