//! `llm-sandbox doctor`: which backends work on this host, and why the others do not.

use std::process::ExitCode;

use llm_sandbox::backend::registry::probe;
use llm_sandbox::{BackendKind, Error};

/// User-namespace sysctls and the value with which each stops the native backend.
const USERNS_SYSCTLS: [(&str, &str, &str); 3] = [
    ("user.max_user_namespaces", "0", "15000"),
    ("kernel.unprivileged_userns_clone", "0", "1"),
    ("kernel.apparmor_restrict_unprivileged_userns", "1", "0"),
];

/// Reports on the host and each backend; exits 0 when the native backend works, 1 otherwise.
pub async fn doctor() -> ExitCode {
    println!("running as root: {}", if is_root() { "yes" } else { "no" });
    let blocking = blocking_userns_sysctls();
    if blocking.is_empty() {
        println!("user namespaces: no sysctl blocks them");
    }
    for line in blocking {
        println!("user namespaces: {line}");
    }
    let mut native_works = false;
    for kind in BackendKind::ALL {
        match probe(kind).await {
            Ok(isolation) => {
                native_works |= kind == BackendKind::Native;
                println!("{kind}: available");
                for (feature, description) in isolation {
                    println!("  {feature}: {description}");
                }
            }
            Err(error) => println!("{kind}: not available: {}", reason(&error)),
        }
    }
    if native_works {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// A backend's own reason for being unavailable, else the whole error.
fn reason(error: &Error) -> String {
    match error {
        Error::BackendUnavailable { reason, .. } => crate::one_line(reason),
        other => crate::one_line(&other.to_string()),
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            == Some("0")
    })
}

/// The user-namespace sysctls set to a value that blocks the native backend, with the fix.
fn blocking_userns_sysctls() -> Vec<String> {
    USERNS_SYSCTLS
        .iter()
        .filter(|(name, blocking, _)| {
            std::fs::read_to_string(format!("/proc/sys/{}", name.replace('.', "/")))
                .is_ok_and(|value| value.trim() == *blocking)
        })
        .map(|(name, blocking, fix)| {
            format!("{name} = {blocking} blocks them; fix: `sysctl -w {name}={fix}`")
        })
        .collect()
}
