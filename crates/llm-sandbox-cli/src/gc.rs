//! `llm-sandbox gc`: removes what crashed sessions left behind, on every reachable backend.

use std::process::ExitCode;

use clap::Args;
use llm_sandbox::backend::{docker, native};
use llm_sandbox::{BackendKind, Error, SandboxSpec};

/// Options of `llm-sandbox gc`.
#[derive(Args)]
pub struct GcArgs {
    /// Also remove containers of sessions that are still running, and those of other hosts.
    #[arg(long)]
    all: bool,
}

/// Cleans each backend; exits 1 when a reachable backend could not be cleaned.
pub async fn gc(args: &GcArgs) -> ExitCode {
    let mut failed = false;
    match native::gc() {
        Ok(removed) => report("native", "stale cgroups", &removed),
        Err(error) => println!(
            "native: nothing to clean ({})",
            crate::one_line(&error.to_string())
        ),
    }
    let engine = SandboxSpec::default().engine;
    for kind in [BackendKind::Docker, BackendKind::Podman] {
        match docker::gc(kind, &engine, args.all).await {
            Ok(removed) => report(kind.name(), "containers and workdir volumes", &removed),
            Err(Error::BackendUnavailable { reason, .. }) => {
                println!(
                    "{kind}: skipped, not reachable ({})",
                    crate::one_line(&reason)
                )
            }
            Err(error) => {
                failed = true;
                println!("{kind}: failed: {}", crate::one_line(&error.to_string()));
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn report(backend: &str, what: &str, removed: &[String]) {
    if removed.is_empty() {
        println!("{backend}: nothing left behind");
    } else {
        println!(
            "{backend}: removed {} ({what}): {}",
            removed.len(),
            removed.join(", ")
        );
    }
}
