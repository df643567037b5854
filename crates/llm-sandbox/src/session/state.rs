//! The session itself: its state (not open, open, expired, closed), its lifetime and the
//! steps every operation shares (the backend, the environment, the request).

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use super::options::Capture;
use crate::artifacts::PlotOutput;
use crate::backend::{self, Backend, BackendKind, CloseReport, ExecOutput, ExecRequest};
use crate::error::{Error, Result};
use crate::language::LanguageHandler;
use crate::paths::{find_program, validate_sandbox_path};
use crate::security::{SecurityPolicy, Violation};
use crate::spec::SandboxSpec;

pub(super) enum State {
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
    pub(super) handler: Arc<dyn LanguageHandler>,
    pub(super) backend_kind: BackendKind,
    pub(super) spec: SandboxSpec,
    pub(super) default_timeout: Duration,
    pub(super) execution_timeout: Duration,
    pub(super) session_timeout: Option<Duration>,
    pub(super) install_timeout: Duration,
    pub(super) env: Vec<(String, String)>,
    pub(super) copy_limit: u64,
    pub(super) verbose: bool,
    pub(super) policy: Option<SecurityPolicy>,
    pub(super) policy_advisory: bool,
    pub(super) capture: Capture,
    /// The last run's plots, or with `keep_plots` every plot since the last clear.
    pub(super) kept_plots: std::sync::Mutex<Vec<PlotOutput>>,
    pub(super) state: Arc<Mutex<State>>,
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

pub(super) static RUN_COUNTER: AtomicU64 = AtomicU64::new(0);

impl SandboxSession {
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
    pub(super) fn schedule_expiry(&self, limit: Duration) {
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
    pub(super) async fn exec(
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
    pub(super) fn log(&self, message: std::fmt::Arguments<'_>) {
        if self.verbose {
            tracing::info!("{message}");
        } else {
            tracing::debug!("{message}");
        }
    }

    pub(super) fn check_toolchain(&self) -> Result<()> {
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
    pub(super) async fn open_backend<'a>(
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

    pub(super) async fn expire(&self) -> Error {
        let mut state = self.state.lock().await;
        if let State::Open { backend, .. } = &mut *state {
            let _ = backend.close().await;
        }
        *state = State::Expired;
        self.expired_error()
    }

    pub(super) fn expired_error(&self) -> Error {
        Error::SessionExpired {
            limit: self.session_timeout.unwrap_or_default(),
        }
    }

    pub(super) fn environment(&self, extra: &[(String, String)]) -> Vec<(String, String)> {
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

    pub(super) fn request(
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

    pub(super) fn sandbox_path(&self, path: &str) -> Result<String> {
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

pub(super) fn validate_env_key(key: &str) -> Result<()> {
    if key.is_empty() || key.contains('=') || key.contains('\0') {
        return Err(Error::invalid(format!(
            "`{key}` is not a valid environment variable name"
        )));
    }
    Ok(())
}
