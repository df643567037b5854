//! The one error type of the library. Every message says what went wrong and what to do.

use std::time::Duration;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in llm-sandbox.
///
/// A program that exits non-zero is not an error: it is an [`ExecutionResult`](crate::ExecutionResult).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operation other than a run (open, copy, install) took longer than its limit.
    #[error("{operation} timed out after {}s; raise the timeout (e.g. `default_timeout`) if the work is legitimate", .limit.as_secs_f64())]
    Timeout {
        /// What was being done.
        operation: String,
        /// The limit that was exceeded.
        limit: Duration,
    },

    /// The session's lifetime (`session_timeout`) is over; the sandbox has been closed.
    #[error("the session expired after its session_timeout of {}s and was closed; open a new session", .limit.as_secs_f64())]
    SessionExpired {
        /// The session timeout that elapsed.
        limit: Duration,
    },

    /// The session is not open (never opened, or already closed).
    #[error("the session is not open; call `open()` first (a closed session cannot be reused)")]
    NotOpen,

    /// No language handler is registered under this name, alias or file extension.
    #[error("language `{name}` is not supported; supported: {supported} (register a custom `LanguageHandler` to add one)")]
    LanguageNotSupported {
        /// The name that was asked for.
        name: String,
        /// The registered language names, comma separated.
        supported: String,
    },

    /// A binary the language needs is not installed on the host.
    #[error("`{binary}` is not installed (needed for {language}); install it, e.g. `apt-get install {package}`, or add its directory to the sandbox's toolchain paths")]
    ToolchainMissing {
        /// The language that needs it.
        language: String,
        /// The missing program.
        binary: String,
        /// The Debian package that provides it.
        package: String,
    },

    /// The chosen backend cannot be used on this host.
    #[error("the {backend} backend is unavailable: {reason}")]
    BackendUnavailable {
        /// Which backend.
        backend: String,
        /// Why, and how to fix it.
        reason: String,
    },

    /// The code violates the session's security policy and was not run.
    #[error("the security policy blocked the code: {}", describe_violations(.violations))]
    SecurityViolation {
        /// Every violation, with its line.
        violations: Vec<crate::security::violation::Violation>,
    },

    /// Plotting was asked for a language whose handler cannot capture plots.
    #[error("plotting is not supported for {language}: only languages whose handler captures plots (python) return them; turn plotting off, or register a handler that implements `plot_capture`")]
    PlottingNotSupported {
        /// The session's language.
        language: String,
    },

    /// A caller passed something that cannot work.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// The sandbox itself failed (not the user's code).
    #[error("sandbox failure: {0}")]
    Sandbox(String),

    /// An I/O error, with what was being done (one line: the cause is part of the message).
    #[error("{context}: {error}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        error: std::io::Error,
    },
}

fn describe_violations(violations: &[crate::security::violation::Violation]) -> String {
    violations
        .iter()
        .map(|v| format!("line {}: {} ({})", v.line, v.description, v.severity))
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, error: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            error,
        }
    }

    /// Shorthand for [`Error::InvalidArgument`].
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::InvalidArgument(message.into())
    }
}
