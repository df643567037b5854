//! Helpers shared by the suites that run against every backend.
//!
//! Each suite runs its cases against every backend in `LLM_SANDBOX_BACKENDS` (comma separated;
//! default `native`). A listed backend that cannot be opened fails the suite when
//! `LLM_SANDBOX_REQUIRE_BACKENDS=1` (as in CI); otherwise it is skipped with a loud message.

#![allow(dead_code)] // each suite uses its own subset

use llm_sandbox::{BackendKind, Error, SandboxSession, SandboxSessionBuilder};

/// The backends to test, from `LLM_SANDBOX_BACKENDS`.
pub fn backends() -> Vec<BackendKind> {
    std::env::var("LLM_SANDBOX_BACKENDS")
        .unwrap_or_else(|_| "native".into())
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.trim()
                .parse()
                .expect("LLM_SANDBOX_BACKENDS lists backend names")
        })
        .collect()
}

/// Opens a session on `backend`, or returns `None` (loudly) when the backend is unavailable
/// and not required.
pub async fn open(backend: BackendKind, builder: SandboxSessionBuilder) -> Option<SandboxSession> {
    match builder.backend(backend).open().await {
        Ok(session) => Some(session),
        Err(e @ Error::BackendUnavailable { .. })
            if std::env::var("LLM_SANDBOX_REQUIRE_BACKENDS").as_deref() != Ok("1") =>
        {
            eprintln!("SKIPPED on {backend}: {e}");
            None
        }
        Err(e) => panic!("opening a {backend} session failed: {e}"),
    }
}
