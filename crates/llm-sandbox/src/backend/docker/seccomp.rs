//! The seccomp profile of Podman containers: Podman's own default, without what it allows for
//! nested containers.
//!
//! Podman's default profile (containers-common) lets code create namespaces (`unshare`,
//! `clone` with namespace flags), join them (`setns`), mount, and use the kernel keyrings
//! (`keyctl`), which rootful Podman shares with the host's user of the same uid. Docker's
//! default profile and the native backend refuse all of these; so does the profile made here.
//! Podman reads a profile from a path on its own host, so it is written to a file there.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::{json, Value};

use crate::error::{Error, Result};

/// Where containers-common installs Podman's default profile.
const PODMAN_DEFAULT_PROFILE: &str = "/usr/share/containers/seccomp.json";

/// Calls refused outright (EPERM).
const DENIED: [&str; 16] = [
    "unshare",
    "setns",
    "keyctl",
    "add_key",
    "request_key",
    "mount",
    "umount",
    "umount2",
    "pivot_root",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
];

/// CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID |
/// CLONE_NEWNET: `clone` is allowed only without them.
const NAMESPACE_FLAGS: u64 = 0x7E02_0000;

/// Writes the profile derived from Podman's default (if this host has it), once per process,
/// and returns its path; `None` when there is no default to start from.
pub fn podman_profile_file() -> Result<Option<PathBuf>> {
    static WRITTEN: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut written = WRITTEN
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(path) = written.as_ref().filter(|path| path.is_file()) {
        return Ok(Some(path.clone()));
    }
    let path = write_profile()?;
    written.clone_from(&path);
    Ok(path)
}

fn write_profile() -> Result<Option<PathBuf>> {
    let Ok(text) = std::fs::read_to_string(PODMAN_DEFAULT_PROFILE) else {
        return Ok(None);
    };
    let default: Value = serde_json::from_str(&text)
        .map_err(|e| Error::Sandbox(format!("reading {PODMAN_DEFAULT_PROFILE}: {e}")))?;
    let profile = serde_json::to_vec(&restrict(default)?).expect("a JSON value serializes");
    let dir = profile_dir();
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let path = dir.join("podman-seccomp.json");
    // Written whole under a private name, then renamed: concurrent sessions never see a part.
    let partial = dir.join(format!("podman-seccomp.json.{}", std::process::id()));
    std::fs::write(&partial, profile)
        .and_then(|()| std::fs::rename(&partial, &path))
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    Ok(Some(path))
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

/// `default` with [`DENIED`] and namespace-creating clones refused, and `clone3` answering
/// ENOSYS (its flags are out of seccomp's reach; libc then falls back to `clone`).
fn restrict(mut profile: Value) -> Result<Value> {
    let rules = profile
        .get_mut("syscalls")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| Error::Sandbox(format!("{PODMAN_DEFAULT_PROFILE} has no syscalls list")))?;
    for rule in rules.iter_mut() {
        if let Some(names) = rule.get_mut("names").and_then(Value::as_array_mut) {
            names.retain(|name| {
                let name = name.as_str().unwrap_or_default();
                !DENIED.contains(&name) && name != "clone" && name != "clone3"
            });
        }
    }
    rules.retain(|rule| {
        rule["names"]
            .as_array()
            .map_or(true, |names| !names.is_empty())
    });
    rules.push(json!({ "names": DENIED, "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EPERM }));
    rules.push(json!({
        "names": ["clone"],
        "action": "SCMP_ACT_ALLOW",
        "args": [{ "index": 0, "value": NAMESPACE_FLAGS, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ" }],
    }));
    rules
        .push(json!({ "names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOSYS }));
    Ok(profile)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_and_keyring_calls_leave_the_allowed_lists() {
        let default = json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                { "names": ["read", "unshare", "keyctl", "clone", "clone3"], "action": "SCMP_ACT_ALLOW" },
                { "names": ["setns"], "action": "SCMP_ACT_ALLOW", "includes": { "caps": ["CAP_SYS_ADMIN"] } },
            ],
        });
        let profile = restrict(default).unwrap();
        let rules = profile["syscalls"].as_array().unwrap();
        assert_eq!(rules[0]["names"], json!(["read"]));
        assert_eq!(rules.len(), 4, "the emptied setns rule is gone: {rules:?}");
        assert_eq!(rules[1]["action"], "SCMP_ACT_ERRNO");
        assert!(rules[1]["names"]
            .as_array()
            .unwrap()
            .contains(&json!("keyctl")));
        assert_eq!(rules[2]["args"][0]["value"], json!(0x7E02_0000u64));
        assert_eq!(rules[3]["errnoRet"], json!(libc::ENOSYS));
    }
}
