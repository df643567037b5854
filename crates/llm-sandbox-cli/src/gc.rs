//! `llm-sandbox gc`: removes what crashed sessions left behind, on every reachable backend.

use std::process::ExitCode;

use clap::Args;
use llm_sandbox::backend::registry;
use llm_sandbox::{BackendKind, Error};

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
    for kind in [
        BackendKind::Native,
        BackendKind::Docker,
        BackendKind::Podman,
    ] {
        let what = match kind {
            BackendKind::Native => "stale cgroups",
            _ => "containers and workdir volumes",
        };
        match registry::gc(kind, args.all).await {
            Ok(removed) => report(kind.name(), what, &removed),
            Err(Error::BackendUnavailable { reason, .. }) if kind == BackendKind::Native => {
                println!("native: nothing to clean ({})", crate::one_line(&reason))
            }
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
