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

    /// A container engine refused or failed a request.
    #[error("{backend}: {operation}: {source}")]
    Engine {
        /// Which engine (docker or podman).
        backend: String,
        /// What was asked of it.
        operation: String,
        /// The engine's answer.
        #[source]
        source: bollard::errors::Error,
    },

    /// A copy out of the sandbox was refused: what came back (a link, a device, a path outside
    /// the destination) is never written to the host.
    #[error("refusing to copy from the sandbox: {reason}")]
    CopyRefused {
        /// What was refused, and why.
        reason: String,
    },

    /// A copy out of the sandbox is larger than the session's copy limit (`copy_limit`).
    #[error("copying {path} out: the archive exceeds the copy size limit of {limit} bytes; raise `copy_limit` if the size is expected")]
    CopyTooLarge {
        /// The sandbox path being copied.
        path: String,
        /// The limit in bytes.
        limit: u64,
    },

    /// A package install ended with a non-zero exit code.
    #[error("installing {libraries} failed with exit code {exit_code}{hint}:\n{detail}")]
    InstallFailed {
        /// The packages asked for, space separated.
        libraries: String,
        /// The installer's exit code.
        exit_code: i32,
        /// What to do about it, when known (e.g. allow the install network).
        hint: String,
        /// The last lines of the installer's stderr.
        detail: String,
    },

    /// The sandbox itself failed (not the user's code): its init broke off or misbehaved, a
    /// process could not be started, a step of its set-up failed.
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

/// What kind of failure an [`Error`] is: what the CLI's exit codes, HTTP statuses and Python
/// exceptions are mapped from, each mapping written once against this list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The caller asked for something that cannot work (a bad option, a closed session).
    InvalidArgument,
    /// What was named does not exist (a language).
    NotFound,
    /// A backend or toolchain cannot be used on this host.
    Unavailable,
    /// A security policy refused the code.
    PolicyViolation,
    /// An operation took longer than its limit.
    Timeout,
    /// The session's lifetime is over.
    SessionExpired,
    /// A bound was reached (a copy larger than the copy limit).
    LimitExceeded,
    /// The sandbox, its engine or an installer failed, not the caller's request.
    SandboxFailure,
    /// An I/O error on the host.
    Io,
}

impl Error {
    /// What kind of failure this is.
    ///
    /// ```
    /// use llm_sandbox::{Error, ErrorKind};
    ///
    /// assert_eq!(Error::invalid("no code").kind(), ErrorKind::InvalidArgument);
    /// ```
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Timeout { .. } => ErrorKind::Timeout,
            Error::SessionExpired { .. } => ErrorKind::SessionExpired,
            Error::NotOpen
            | Error::PlottingNotSupported { .. }
            | Error::InvalidArgument(_)
            | Error::CopyRefused { .. } => ErrorKind::InvalidArgument,
            Error::LanguageNotSupported { .. } => ErrorKind::NotFound,
            Error::ToolchainMissing { .. } | Error::BackendUnavailable { .. } => {
                ErrorKind::Unavailable
            }
            Error::SecurityViolation { .. } => ErrorKind::PolicyViolation,
            Error::CopyTooLarge { .. } => ErrorKind::LimitExceeded,
            Error::Engine { .. } | Error::InstallFailed { .. } | Error::Sandbox(_) => {
                ErrorKind::SandboxFailure
            }
            Error::Io { .. } => ErrorKind::Io,
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_has_the_kind_its_callers_map_from() {
        let cases = [
            (Error::NotOpen, ErrorKind::InvalidArgument),
            (
                Error::SecurityViolation { violations: vec![] },
                ErrorKind::PolicyViolation,
            ),
            (
                Error::CopyTooLarge {
                    path: "/sandbox/x".into(),
                    limit: 1,
                },
                ErrorKind::LimitExceeded,
            ),
            (
                Error::BackendUnavailable {
                    backend: "docker".into(),
                    reason: "down".into(),
                },
                ErrorKind::Unavailable,
            ),
            (
                Error::SessionExpired {
                    limit: Duration::from_secs(1),
                },
                ErrorKind::SessionExpired,
            ),
            (
                Error::Sandbox("init died".into()),
                ErrorKind::SandboxFailure,
            ),
        ];
        for (error, kind) in cases {
            assert_eq!(error.kind(), kind, "{error}");
        }
    }
}
