//! Nothing outlives a sandbox: not after a clean exit, not after the caller is killed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_llm-sandbox");

/// The tests count processes of the binary, so they must not overlap.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Pids of the processes whose environment holds `marker` (the sandboxed program's).
fn processes_with(marker: &str) -> Vec<u32> {
    pids()
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| contains(&env, marker.as_bytes()))
        })
        .collect()
}

/// Pids of the processes running this binary (the CLI, and its keeper and init, which are forks).
fn processes_of_binary() -> Vec<u32> {
    let bin = std::fs::canonicalize(BIN).unwrap();
    pids()
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| exe == bin))
        .collect()
}

fn pids() -> impl Iterator<Item = u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Session cgroups (anywhere under /sys/fs/cgroup) created by process `pid`.
fn cgroups_of(pid: u32) -> Vec<PathBuf> {
    fn walk(dir: &Path, prefix: &str, depth: usize, found: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if entry.file_name().to_string_lossy().starts_with(prefix) {
                found.push(path);
            } else if depth > 0 {
                walk(&path, prefix, depth - 1, found);
            }
        }
    }
    let mut found = Vec::new();
    walk(
        Path::new("/sys/fs/cgroup"),
        &format!("llm-sandbox-{pid}-"),
        5,
        &mut found,
    );
    found
}

fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    done()
}

#[test]
fn a_clean_run_leaves_no_cgroup_and_no_process() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let marker = "LEAK_MARKER=clean-run";
    let (key, value) = marker.split_once('=').unwrap();
    let child = Command::new(BIN)
        .args([
            "run",
            "-e",
            &format!("{key}={value}"),
            "-c",
            "import subprocess\nsubprocess.Popen(['sleep', '100'])\nprint('ok')",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&child.stdout),
        "ok\n",
        "{}",
        String::from_utf8_lossy(&child.stderr)
    );
    assert!(
        processes_with(marker).is_empty(),
        "the run's background process survived"
    );
}

#[test]
fn a_killed_caller_leaves_nothing_behind() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let marker = "LEAK_MARKER=killed-caller";
    let mut cli = Command::new(BIN)
        .args(["run", "-e", marker, "-c", "import time\ntime.sleep(100)"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || !processes_with(marker)
            .is_empty()),
        "the sandboxed program never started"
    );
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .contains("\nUid:\t0\t");
    if root {
        assert!(
            !cgroups_of(cli.id()).is_empty(),
            "the running sandbox's cgroups were not found"
        );
    }
    cli.kill().unwrap();
    cli.wait().unwrap();

    assert!(
        wait_until(Duration::from_secs(5), || processes_with(marker).is_empty()),
        "the sandboxed program outlived its caller"
    );
    let dead = cli.id();
    assert!(
        wait_until(Duration::from_secs(5), || processes_of_binary()
            .iter()
            .all(|pid| *pid == std::process::id())),
        "keeper or init outlived the caller: {:?}",
        processes_of_binary()
    );
    // The dead caller could not remove its cgroup; the next sandbox opened on this host does.
    let next = Command::new(BIN)
        .args(["run", "-c", "pass"])
        .output()
        .unwrap();
    assert_eq!(
        next.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&next.stderr)
    );
    assert_eq!(
        cgroups_of(dead),
        Vec::<PathBuf>::new(),
        "stale cgroups of the killed caller remain"
    );
}

/// The container backends listed in LLM_SANDBOX_BACKENDS (CI lists docker and podman).
fn container_backends() -> Vec<String> {
    std::env::var("LLM_SANDBOX_BACKENDS")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|b| *b == "docker" || *b == "podman")
        .map(String::from)
        .collect()
}

/// Ids of the containers (running or not) that process `pid` of this host created on `engine`.
fn containers_of(engine: &str, pid: u32) -> Vec<String> {
    owned_by(engine, &["ps", "-aq"], pid)
}

/// The workdir volumes (see the docker backend) a caller with `pid` created.
fn volumes_of(engine: &str, pid: u32) -> Vec<String> {
    owned_by(engine, &["volume", "ls", "-q"], pid)
}

/// What `engine <list…>` lists with the owner label of the caller `pid`.
fn owned_by(engine: &str, list: &[&str], pid: u32) -> Vec<String> {
    let host = nix_hostname();
    let output = Command::new(format!("/usr/bin/{engine}"))
        .args(list)
        .args([
            "--filter",
            &format!("label=org.llm-sandbox.owner={host}:{pid}"),
        ])
        .output()
        .unwrap_or_else(|e| panic!("running {engine} {list:?}: {e}"));
    assert!(
        output.status.success(),
        "{engine} {list:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .map(String::from)
        .collect()
}

fn nix_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn container_sessions_leave_no_container_even_when_the_caller_is_killed() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let backends = container_backends();
    if backends.is_empty() {
        eprintln!("SKIPPED: no container backend in LLM_SANDBOX_BACKENDS");
        return;
    }
    for backend in backends {
        let clean = Command::new(BIN)
            .args(["run", "-b", &backend, "-c", "print('clean')"])
            .spawn()
            .unwrap();
        let pid = clean.id();
        let output = clean.wait_with_output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{backend}");
        assert_eq!(
            containers_of(&backend, pid),
            Vec::<String>::new(),
            "{backend}: a closed session left its container"
        );

        let mut killed = Command::new(BIN)
            .args(["run", "-b", &backend, "-c", "import time\ntime.sleep(100)"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pid = killed.id();
        assert!(
            wait_until(Duration::from_secs(30), || !containers_of(&backend, pid)
                .is_empty()),
            "{backend}: the session's container never appeared"
        );
        killed.kill().unwrap();
        killed.wait().unwrap();
        let gc = Command::new(BIN).arg("gc").output().unwrap();
        assert_eq!(
            gc.status.code(),
            Some(0),
            "{backend}: {}",
            String::from_utf8_lossy(&gc.stdout)
        );
        assert!(
            String::from_utf8_lossy(&gc.stdout).contains("removed"),
            "{backend}: {}",
            String::from_utf8_lossy(&gc.stdout)
        );
        assert_eq!(
            containers_of(&backend, pid),
            Vec::<String>::new(),
            "{backend}: gc left the killed caller's container"
        );
        assert_eq!(
            volumes_of(&backend, pid),
            Vec::<String>::new(),
            "{backend}: gc left the killed caller's workdir volume"
        );
    }
}
