//! The seccomp profile of Docker and Podman containers, written from the one list of
//! refusals the native filter is compiled from ([`llm_sandbox_init::syscalls::RULES`]).
//!
//! The engines' own defaults differ and both fall short somewhere: Docker 20.10's allows
//! `AF_VSOCK` sockets (vsock is not confined by network namespaces), io_uring and ptrace;
//! Podman's allows creating and joining namespaces, mounting and the kernel keyrings (which
//! rootful Podman shares with the host's user of the same uid). The profile made here allows
//! what the native filter allows and refuses what it refuses, with the same errno; everything
//! the hostile suite checks is refused at least as strictly as by either engine's default.
//! Docker takes the profile inline; Podman reads it from a path on its own host, so it is
//! written to a file there.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use llm_sandbox_init::syscalls::{Rule, RULES};
use serde_json::{json, Value};

use crate::error::{Error, Result};

/// The profile, as the engines' JSON.
pub fn profile() -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": RULES.iter().flat_map(entries).collect::<Vec<_>>(),
    })
}

/// The profile's entries for one rule: one per alternative of its condition (libseccomp ORs
/// several tests of one argument, so each entry tests one).
fn entries(rule: &Rule) -> Vec<Value> {
    let entry = |args: Vec<Value>| {
        json!({
            "names": [rule.name],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": rule.errno,
            "args": args,
        })
    };
    match rule.when.alternatives() {
        None => vec![entry(Vec::new())],
        Some(alternatives) => alternatives
            .into_iter()
            .map(|(index, mask, value)| {
                entry(vec![json!({
                    "index": index,
                    "value": mask,
                    "valueTwo": value,
                    "op": "SCMP_CMP_MASKED_EQ",
                })])
            })
            .collect(),
    }
}

/// The `SecurityOpt` entry that gives a Docker container the profile.
pub fn docker_option() -> String {
    format!("seccomp={}", profile())
}

/// Writes the profile for a local Podman service, once per process, and returns its path.
pub fn podman_profile_file() -> Result<PathBuf> {
    static WRITTEN: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut written = WRITTEN
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(path) = written.as_ref().filter(|path| path.is_file()) {
        return Ok(path.clone());
    }
    let dir = profile_dir();
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let path = dir.join("seccomp.json");
    // Written whole under a private name, then renamed: concurrent sessions never see a part.
    let partial = dir.join(format!("seccomp.json.{}", std::process::id()));
    std::fs::write(&partial, profile().to_string())
        .and_then(|()| std::fs::rename(&partial, &path))
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    *written = Some(path.clone());
    Ok(path)
}

/// A directory of this user's that the local Podman service can read.
fn profile_dir() -> PathBuf {
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/run/llm-sandbox");
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) => Path::new(&dir).join("llm-sandbox"),
        None => std::env::temp_dir().join(format!("llm-sandbox-{}", nix::unistd::geteuid())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries_for(profile: &Value, name: &str) -> Vec<Value> {
        profile["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|entry| entry["names"][0] == name)
            .cloned()
            .collect()
    }

    #[test]
    fn the_profile_refuses_what_the_native_filter_refuses() {
        let profile = profile();
        assert_eq!(profile["defaultAction"], "SCMP_ACT_ALLOW");
        let unshare = entries_for(&profile, "unshare");
        assert_eq!(unshare.len(), 1);
        assert_eq!(unshare[0]["errnoRet"], json!(libc::EPERM));
        assert_eq!(unshare[0]["args"], json!([]));
        let clone3 = entries_for(&profile, "clone3");
        assert_eq!(clone3[0]["errnoRet"], json!(libc::ENOSYS));
        // vsock: some entry's test matches family 40.
        let socket = entries_for(&profile, "socket");
        assert!(socket
            .iter()
            .all(|e| e["errnoRet"] == json!(libc::EAFNOSUPPORT)));
        let matches = |family: u64| {
            socket.iter().any(|entry| {
                let test = &entry["args"][0];
                family & test["value"].as_u64().unwrap() == test["valueTwo"].as_u64().unwrap()
            })
        };
        assert!(matches(libc::AF_VSOCK as u64));
        assert!(!matches(libc::AF_INET6 as u64));
        for name in [
            "keyctl",
            "setns",
            "mount",
            "inotify_init1",
            "pidfd_getfd",
            "ptrace",
        ] {
            assert!(
                !entries_for(&profile, name).is_empty(),
                "{name} is not refused"
            );
        }
        // Namespace-creating clones: one entry per flag.
        assert_eq!(entries_for(&profile, "clone").len(), 7);
    }
}
