//! The hostile-code suite: code that attacks its sandbox, on every backend.
//!
//! Each case runs an attack program (in `tests/hostile/`, one file per attack: Python, C++,
//! JavaScript and shell) on every backend listed in `LLM_SANDBOX_BACKENDS` (comma separated;
//! default `native`). A listed backend that cannot be opened fails the suite when
//! `LLM_SANDBOX_REQUIRE_BACKENDS=1` (as in CI); otherwise it is skipped with a loud message.
//!
//! For every case and backend the suite checks that:
//! - the attack fails or is contained, and the session says so clearly (`timed_out`,
//!   `out_of_memory`, the output-truncated marker, a non-zero exit, an `Err` with a reason);
//! - the run ends in bounded time (its timeout plus a generous slack; no other timing claims);
//! - the host is unchanged: sentinel files the test creates (a 0600 secret, a world-writable
//!   file) and a few system files keep their content and mtime; after close no process of the
//!   session survives (each session carries a unique marker in its environment, searched for in
//!   every host process's environment and command line), no cgroup `llm-sandbox-<pid>-*` of this
//!   process is left under `/sys/fs/cgroup`, no container labelled with this process as owner is
//!   left, no new dangling volume, no new `llm-sandbox*` entry in the host's temp directory;
//! - a new session on the same backend afterwards runs `print('ok')` normally.
//!
//! Cases run one at a time (a process-wide lock), so that one attack's load does not make
//! another's time out and so that "no cgroup or container of this process is left" is exact.
//! Limits are small (memory 256 MiB, pids 64, disk 64 MiB, output 64 KiB, timeouts of a few
//! seconds), so the suite takes a few minutes on three backends.

use std::collections::HashSet;
use std::ffi::OsString;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

mod common;

use common::{backends, open};
use llm_sandbox::{
    BackendKind, CommandOptions, ExecutionResult, RunOptions, SandboxSession, SandboxSessionBuilder,
};

// ---- the attacks ------------------------------------------------------------------------------

const FORK_BOMB: &str = include_str!("hostile/fork_bomb.cpp");
const MEMORY_BOMB_PY: &str = include_str!("hostile/memory_bomb.py");
const MEMORY_BOMB_CPP: &str = include_str!("hostile/memory_bomb.cpp");
const CPU_SPIN: &str = include_str!("hostile/cpu_spin.cpp");
const DISK_FILL: &str = include_str!("hostile/disk_fill.py");
const INODE_FLOOD: &str = include_str!("hostile/inode_flood.py");
const OUTPUT_FLOOD: &str = include_str!("hostile/output_flood.cpp");
const STDERR_FLOOD: &str = include_str!("hostile/stderr_flood.js");
const HOST_SECRETS: &str = include_str!("hostile/host_secrets.py");
const INIT_MEMORY: &str = include_str!("hostile/init_memory.py");
const SHARED_MEMORY: &str = include_str!("hostile/shared_memory.py");
const POISON_INSTALLER: &str = include_str!("hostile/poison_installer.py");
const WRITE_OUTSIDE: &str = include_str!("hostile/write_outside.py");
const SYSCALLS: &str = include_str!("hostile/syscalls.cpp");
const LIMITS: &str = include_str!("hostile/limits.py");
const SETUID: &str = include_str!("hostile/setuid.sh");
const NETWORK_PY: &str = include_str!("hostile/network.py");
const NETWORK_JS: &str = include_str!("hostile/network.js");
const RAW_SOCKET: &str = include_str!("hostile/raw_socket.cpp");
const DETACH_PY: &str = include_str!("hostile/detach.py");
const DETACH_SH: &str = include_str!("hostile/detach.sh");
const KILL_PARENT: &str = include_str!("hostile/kill_parent.py");
const ZOMBIES: &str = include_str!("hostile/zombies.py");
const LINKS: &str = include_str!("hostile/links.py");
const TAR_BOMB: &str = include_str!("hostile/tar_bomb.py");

/// A shell script (every image has sh; the C++ image has no Python) that counts the processes of
/// the sandbox user other than itself and its ancestors, i.e. what earlier runs left behind.
const COUNT_LEFTOVERS: &str = r#"
ancestors=" $$ "
pid=$$
while [ "$pid" -gt 1 ]; do
    stat=$(cat /proc/$pid/stat)
    set -- ${stat##*) }
    pid=$2
    ancestors="$ancestors$pid "
done
uid=$(id -u)
n=0
for dir in /proc/[0-9]*; do
    case "$ancestors" in *" ${dir#/proc/} "*) continue ;; esac
    owner=$(stat -c %u "$dir" 2>/dev/null) || continue
    [ "$owner" = "$uid" ] && n=$((n + 1))
done
echo $n
"#;

/// Python that prints the beacon files' contents, waits, and prints whether any changed.
const BEACONS_STILL: &str = r#"
import glob, time
def read():
    return {p: open(p).read() for p in sorted(glob.glob('beacon-*'))}
before = read()
time.sleep(1.0)
after = read()
print(len(before), 'beacons', 'changed' if before != after else 'still')
"#;

const COPY_LIMIT: u64 = 16 << 20;
const OUTPUT_LIMIT: u64 = 64 << 10;

/// The small limits every case starts from.
fn hostile(lang: &str) -> SandboxSessionBuilder {
    SandboxSession::builder()
        .lang(lang)
        .memory(Some(256 << 20))
        .pids(Some(64))
        .disk(Some(64 << 20))
        .output_limit(OUTPUT_LIMIT)
        .execution_timeout(Duration::from_secs(8))
        .copy_limit(COPY_LIMIT)
}

// ---- the harness ------------------------------------------------------------------------------

/// One case at a time (see the module comment).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The name of a variable set in this (host) process: no sandbox may see it.
const SECRET_ENV: &str = "LLM_SANDBOX_HOSTILE_SECRET";
/// The prefix of the host secret file's content, searched for inside the sandbox.
const SECRET_MARK: &str = "LLM-SANDBOX-HOSTILE-HOST-SECRET";

/// A secret this process holds on its heap (as an application embedding the library holds an
/// API key) and never hands to a sandbox: no sandboxed process may find it in any memory it
/// can read.
static HEAP_SECRET: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("LLM-SANDBOX-HEAP-SECRET-{}", unique()));

/// Takes the suite's lock; the first caller also puts the secret variable in this process's
/// environment and the heap secret in its memory, so that every sandbox is opened by a process
/// that holds them.
async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    let guard = SERIAL.lock().await;
    static SECRET: std::sync::Once = std::sync::Once::new();
    SECRET.call_once(|| std::env::set_var(SECRET_ENV, format!("env-secret-{}", unique())));
    std::sync::LazyLock::force(&HEAP_SECRET);
    guard
}

/// A string unique to this process and call.
fn unique() -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{}x{nanos:x}x{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// How long past its timeout a run (or a copy) may take before the suite calls it unbounded:
/// generous, since a container backend may restart its container after a fork bomb.
fn slack(backend: BackendKind) -> Duration {
    match backend {
        BackendKind::Native => Duration::from_secs(5),
        _ => Duration::from_secs(20),
    }
}

/// A file the test watches: its content and mtime must not change.
struct Watched {
    path: PathBuf,
    content: Vec<u8>,
    mtime: SystemTime,
}

impl Watched {
    fn new(path: &Path) -> Option<Watched> {
        Some(Watched {
            path: path.to_path_buf(),
            content: std::fs::read(path).ok()?,
            mtime: std::fs::metadata(path).ok()?.modified().ok()?,
        })
    }

    fn assert_unchanged(&self, context: &str) {
        let now = Watched::new(&self.path)
            .unwrap_or_else(|| panic!("{context}: {} is gone", self.path.display()));
        assert!(
            now.content == self.content && now.mtime == self.mtime,
            "{context}: {} changed",
            self.path.display()
        );
    }
}

/// The host as the test leaves it: sentinel files, and what exists before the attack.
struct Host {
    _dir: tempfile::TempDir,
    secret: PathBuf,
    secret_content: String,
    sentinel: PathBuf,
    watched: Vec<Watched>,
    temp_entries: HashSet<OsString>,
    volumes: HashSet<String>,
}

impl Host {
    fn new(backend: BackendKind) -> Host {
        let dir = tempfile::Builder::new()
            .prefix("hostile-host-")
            .tempdir_in("/tmp")
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let secret = dir.path().join("secret.txt");
        let secret_content = format!("{SECRET_MARK}-{}", unique());
        std::fs::write(&secret, &secret_content).unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        let sentinel = dir.path().join("sentinel.txt");
        std::fs::write(&sentinel, "sentinel: must not change\n").unwrap();
        std::fs::set_permissions(&sentinel, std::fs::Permissions::from_mode(0o666)).unwrap();
        let mut watched: Vec<Watched> = [secret.as_path(), sentinel.as_path()]
            .into_iter()
            .chain(["/etc/passwd", "/etc/hostname", "/etc/hosts"].map(Path::new))
            .filter_map(Watched::new)
            .collect();
        if let Some(shadow) = Watched::new(Path::new("/etc/shadow")) {
            watched.push(shadow); // readable when the suite runs as root
        }
        Host {
            _dir: dir,
            secret,
            secret_content,
            sentinel,
            watched,
            temp_entries: llm_sandbox_temp_entries(),
            volumes: dangling_volumes(backend),
        }
    }

    fn assert_unchanged(&self, context: &str) {
        for watched in &self.watched {
            watched.assert_unchanged(context);
        }
    }

    /// Nothing of the session is left on the host after close.
    async fn assert_clean(&self, backend: BackendKind, marker: &str, context: &str) {
        self.assert_unchanged(context);
        // Processes and cgroups may take a moment to disappear after the kill.
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let processes = host_processes_with(marker);
            let cgroups = own_cgroups();
            if processes.is_empty() && cgroups.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{context}: left behind after close: processes {processes:?}, cgroups {cgroups:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let containers = own_containers(backend);
        assert!(
            containers.is_empty(),
            "{context}: containers left behind: {containers:?}"
        );
        let volumes: Vec<String> = dangling_volumes(backend)
            .difference(&self.volumes)
            .cloned()
            .collect();
        assert!(
            volumes.is_empty(),
            "{context}: volumes left behind: {volumes:?}"
        );
        let temp: Vec<OsString> = llm_sandbox_temp_entries()
            .difference(&self.temp_entries)
            .cloned()
            .collect();
        assert!(
            temp.is_empty(),
            "{context}: temporary files left behind: {temp:?}"
        );
    }
}

/// Entries of the host's temp directories whose name mentions llm-sandbox.
fn llm_sandbox_temp_entries() -> HashSet<OsString> {
    let mut dirs = vec![PathBuf::from("/tmp"), PathBuf::from("/var/tmp")];
    dirs.push(std::env::temp_dir());
    dirs.iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flat_map(|entries| entries.flatten())
        .map(|e| e.file_name())
        .filter(|name| name.to_string_lossy().contains("llm-sandbox"))
        .collect()
}

/// Host processes whose command line or environment holds `marker`.
fn host_processes_with(marker: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let own = std::process::id().to_string();
    entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|pid| pid.chars().all(|c| c.is_ascii_digit()) && *pid != own)
        .filter_map(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            let holds = |data: &[u8]| data.windows(marker.len()).any(|w| w == marker.as_bytes());
            (holds(&cmdline) || holds(&environ)).then(|| {
                format!(
                    "{pid}: {}",
                    String::from_utf8_lossy(&cmdline).replace('\0', " ")
                )
            })
        })
        .collect()
}

/// Session cgroups of this process (`llm-sandbox-<pid>-<n>`) anywhere under /sys/fs/cgroup.
fn own_cgroups() -> Vec<PathBuf> {
    fn walk(dir: &Path, prefix: &str, depth: usize, found: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let path = entry.path();
            if entry.file_name().to_string_lossy().starts_with(prefix) {
                found.push(path);
            } else if depth > 0 {
                walk(&path, prefix, depth - 1, found);
            }
        }
    }
    let mut found = Vec::new();
    let prefix = format!("llm-sandbox-{}-", std::process::id());
    walk(Path::new("/sys/fs/cgroup"), &prefix, 7, &mut found);
    found
}

/// The engine's command-line client for a container backend.
fn engine_cli(backend: BackendKind) -> Option<String> {
    match backend {
        BackendKind::Docker | BackendKind::Podman => Some(format!("/usr/bin/{}", backend.name())),
        _ => None,
    }
}

fn engine_lines(backend: BackendKind, args: &[&str]) -> Vec<String> {
    let Some(cli) = engine_cli(backend) else {
        return Vec::new();
    };
    let output = std::process::Command::new(&cli)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {cli}: {e}"));
    assert!(
        output.status.success(),
        "{cli} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .filter(|l| !l.is_empty())
        .collect()
}

/// Containers (running or not) whose owner label names this process.
fn own_containers(backend: BackendKind) -> Vec<String> {
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let owner = format!(
        "label=org.llm-sandbox.owner={}:{}",
        hostname.trim(),
        std::process::id()
    );
    engine_lines(backend, &["ps", "-aq", "--filter", &owner])
}

/// Volumes no container uses.
fn dangling_volumes(backend: BackendKind) -> HashSet<String> {
    engine_lines(
        backend,
        &["volume", "ls", "-q", "--filter", "dangling=true"],
    )
    .into_iter()
    .collect()
}

/// A `KEY=VALUE` entry of this process's environment as it was started (what
/// `/proc/<pid>/environ` shows), distinctive enough to search for; empty when there is none.
fn host_env_entry() -> String {
    let common = [
        "PATH", "HOME", "USER", "LANG", "TMPDIR", "PWD", "OLDPWD", "SHLVL", "TERM", "_",
    ];
    let environ = std::fs::read("/proc/self/environ").unwrap_or_default();
    environ
        .split(|b| *b == 0)
        .filter_map(|entry| std::str::from_utf8(entry).ok())
        .filter(|entry| entry.len() >= 12)
        .find(|entry| {
            entry
                .split_once('=')
                .is_some_and(|(key, _)| !common.contains(&key) && !key.starts_with("LC_"))
        })
        .unwrap_or_default()
        .to_string()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One attack on one backend: the host snapshot, the session, and its unique marker.
struct Trial {
    backend: BackendKind,
    context: String,
    marker: String,
    host: Host,
    session: SandboxSession,
}

impl Trial {
    /// Snapshots the host and opens a session from `builder`, marked for the host's checks.
    async fn start(
        backend: BackendKind,
        case: &str,
        builder: SandboxSessionBuilder,
    ) -> Option<Trial> {
        let host = Host::new(backend);
        let marker = format!("llm-sandbox-hostile-{}", unique());
        let session = open(backend, builder.env("HOSTILE_MARKER", &marker)).await?;
        Some(Trial {
            backend,
            context: format!("{case} on {backend}"),
            marker,
            host,
            session,
        })
    }

    /// The environment every attack gets (paths, not secrets).
    fn env(&self) -> Vec<(String, String)> {
        let test_bin = std::env::current_exe()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "hostile-".into());
        vec![
            ("MARKER".into(), self.marker.clone()),
            ("SECRET_PATH".into(), self.host.secret.display().to_string()),
            (
                "SENTINEL_PATH".into(),
                self.host.sentinel.display().to_string(),
            ),
            ("SECRET_MARK".into(), SECRET_MARK.into()),
            ("SECRET_ENV".into(), SECRET_ENV.into()),
            ("TEST_PID".into(), std::process::id().to_string()),
            ("TEST_BIN".into(), test_bin),
            ("HOST_ENV_HEX".into(), hex(host_env_entry().as_bytes())),
            ("BACKEND".into(), self.backend.name().into()),
        ]
    }

    /// Runs `code` with the attack environment (and `extra`); checks it ended in bounded time.
    async fn run(&self, code: &str, extra: &[(&str, String)]) -> ExecutionResult {
        let mut env = self.env();
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        let options = RunOptions {
            env,
            ..Default::default()
        };
        let started = Instant::now();
        let result = self
            .session
            .run_with(code, options)
            .await
            .unwrap_or_else(|e| panic!("{}: the run failed: {e}", self.context));
        self.assert_bounded(started, Duration::from_secs(8));
        self.assert_no_secret(&result);
        result
    }

    /// Runs a shell script with the attack environment.
    async fn shell(&self, script: &str) -> ExecutionResult {
        let options = CommandOptions {
            env: self.env(),
            timeout: Some(Duration::from_secs(8)),
            ..Default::default()
        };
        let started = Instant::now();
        let result = self
            .session
            .execute_command_with(&["/bin/sh", "-c", script], options)
            .await
            .unwrap_or_else(|e| panic!("{}: the command failed: {e}", self.context));
        self.assert_bounded(started, Duration::from_secs(8));
        self.assert_no_secret(&result);
        result
    }

    /// Runs a Python snippet through `python3 -c` (whatever the session's language).
    async fn python(&self, code: &str) -> ExecutionResult {
        let result = self
            .session
            .execute_command(&["python3", "-c", code])
            .await
            .unwrap_or_else(|e| panic!("{}: python3 -c failed: {e}", self.context));
        assert_eq!(result.exit_code, 0, "{}: {result:?}", self.context);
        result
    }

    fn assert_bounded(&self, started: Instant, timeout: Duration) {
        let elapsed = started.elapsed();
        assert!(
            elapsed < timeout + slack(self.backend),
            "{}: took {elapsed:?} under a timeout of {timeout:?}",
            self.context
        );
    }

    fn assert_no_secret(&self, result: &ExecutionResult) {
        let env_secret = std::env::var(SECRET_ENV).unwrap();
        for text in [&result.stdout, &result.stderr] {
            assert!(
                !text.contains(&self.host.secret_content) && !text.contains(&env_secret),
                "{}: a host secret reached the output: {result:?}",
                self.context
            );
        }
    }

    /// Nothing of earlier runs still runs in the sandbox, and the host sees none of them.
    async fn assert_no_leftovers(&self) {
        let result = self
            .session
            .execute_command(&["/bin/sh", "-c", COUNT_LEFTOVERS])
            .await
            .unwrap_or_else(|e| panic!("{}: counting leftovers failed: {e}", self.context));
        assert_eq!(
            result.stdout.trim(),
            "0",
            "{}: processes left behind in the sandbox: {result:?}",
            self.context
        );
    }

    /// Closes the session, checks that the host is clean and unchanged, then checks that a new
    /// session on the same backend works normally.
    async fn finish(self) {
        let closed = self.session.close().await;
        assert!(
            closed.is_ok(),
            "{}: closing failed: {closed:?}",
            self.context
        );
        self.host
            .assert_clean(self.backend, &self.marker, &self.context)
            .await;
        let marker = format!("llm-sandbox-hostile-{}", unique());
        let builder = SandboxSession::builder()
            .lang("python")
            .env("HOSTILE_MARKER", &marker);
        let fresh = open(self.backend, builder)
            .await
            .unwrap_or_else(|| panic!("{}: no fresh session", self.context));
        let result = fresh.run("print('ok')").await.unwrap();
        assert_eq!(
            (result.stdout.as_str(), result.exit_code),
            ("ok\n", 0),
            "{}: a fresh session afterwards: {result:?}",
            self.context
        );
        fresh.close().await.unwrap();
        self.host
            .assert_clean(self.backend, &marker, &self.context)
            .await;
    }
}

// ---- resources --------------------------------------------------------------------------------

// A fork bomb (C++) under pids 64: the run times out instead of taking the host down; nothing
// of it survives; the same session runs again.
#[tokio::test(flavor = "multi_thread")]
async fn fork_bomb_is_contained() {
    let _serial = serial().await;
    for backend in backends() {
        let builder = hostile("cpp").execution_timeout(Duration::from_secs(5));
        let Some(trial) = Trial::start(backend, "fork bomb", builder).await else {
            continue;
        };
        let result = trial.run(FORK_BOMB, &[]).await;
        assert!(result.timed_out, "{}: {result:?}", trial.context);
        assert!(!result.success());
        trial.assert_no_leftovers().await;
        trial.finish().await;
    }
}

// Memory bombs: one Python process, then four C++ processes, under 128 MiB. Neither gets its
// memory: the session reports out_of_memory (cgroups) or a MemoryError / failed malloc (rlimits).
#[tokio::test(flavor = "multi_thread")]
async fn memory_bombs_are_contained() {
    let _serial = serial().await;
    for backend in backends() {
        let builder = hostile("python").memory(Some(128 << 20));
        let Some(trial) = Trial::start(backend, "python memory bomb", builder).await else {
            continue;
        };
        let result = trial.run(MEMORY_BOMB_PY, &[]).await;
        assert!(!result.success(), "{}: {result:?}", trial.context);
        assert!(
            !result.stdout.contains("survived"),
            "{}: {result:?}",
            trial.context
        );
        assert!(
            result.out_of_memory || result.stderr.contains("MemoryError"),
            "{}: {result:?}",
            trial.context
        );
        trial.assert_no_leftovers().await;
        trial.finish().await;

        let builder = hostile("cpp").memory(Some(128 << 20));
        let Some(trial) = Trial::start(backend, "c++ memory bomb", builder).await else {
            continue;
        };
        let result = trial.run(MEMORY_BOMB_CPP, &[]).await;
        assert_ne!(result.exit_code, 0, "{}: {result:?}", trial.context);
        assert!(
            !result.stdout.contains("survived"),
            "{}: {result:?}",
            trial.context
        );
        trial.assert_no_leftovers().await;
        trial.finish().await;
    }
}

// CPU spin in 48 threads under half a core: the timeout ends it; nothing keeps spinning.
#[tokio::test(flavor = "multi_thread")]
async fn cpu_spin_in_many_threads_is_stopped() {
    let _serial = serial().await;
    for backend in backends() {
        let builder = hostile("cpp")
            .cpus(Some(0.5))
            .execution_timeout(Duration::from_secs(4));
        let Some(trial) = Trial::start(backend, "cpu spin", builder).await else {
            continue;
        };
        let result = trial.run(CPU_SPIN, &[]).await;
        assert!(result.timed_out, "{}: {result:?}", trial.context);
        assert!(
            result.stdout.starts_with("spinning in "),
            "{}: the threads never started: {result:?}",
            trial.context
        );
        trial.assert_no_leftovers().await;
        trial.finish().await;
    }
}

// Disk fill of the workdir, /tmp and /dev/shm: each fills up (ENOSPC, at most the 64 MiB
// limit) on every backend. Removing the files makes the session usable again.
#[tokio::test(flavor = "multi_thread")]
async fn disk_fill_hits_the_limit() {
    let _serial = serial().await;
    for backend in backends() {
        let builder = hostile("python").execution_timeout(Duration::from_secs(4));
        let Some(trial) = Trial::start(backend, "disk fill", builder).await else {
            continue;
        };
        let result = trial.run(DISK_FILL, &[]).await;
        let lines: Vec<&str> = result.stdout.lines().collect();
        // Every writable place is bounded, on every backend: containers' workdirs are
        // tmpfs-backed volumes of the disk limit (on 9175b1a 8 GiB went into Docker's).
        assert_eq!(lines.len(), 3, "{}: {result:?}", trial.context);
        for (line, directory) in lines.iter().zip([".", "/tmp", "/dev/shm"]) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(
                &fields[..3],
                [directory, "full", "ENOSPC"],
                "{}: {result:?}",
                trial.context
            );
            let mib: u64 = fields[3].parse().unwrap();
            assert!(
                mib <= 64,
                "{}: wrote {mib} MiB into {directory}",
                trial.context
            );
        }
        assert!(result.success(), "{}: {result:?}", trial.context);
        let cleaned = trial
            .session
            .execute_command(&["rm", "-f", "fill.bin", "/tmp/fill.bin", "/dev/shm/fill.bin"])
            .await
            .unwrap();
        assert!(cleaned.success(), "{}: {cleaned:?}", trial.context);
        let again = trial.session.run("print('room again')").await.unwrap();
        assert_eq!(again.stdout, "room again\n", "{}: {again:?}", trial.context);
        trial.finish().await;
    }
}

// Millions of tiny files: creation stops at the disk, memory or inode limit, or at the
// timeout; the run ends in bounded time and the session recovers once they are removed.
#[tokio::test(flavor = "multi_thread")]
async fn inode_exhaustion_is_bounded() {
    let _serial = serial().await;
    for backend in backends() {
        let builder = hostile("python").execution_timeout(Duration::from_secs(5));
        let Some(trial) = Trial::start(backend, "inode flood", builder).await else {
            continue;
        };
        let result = trial.run(INODE_FLOOD, &[]).await;
        assert!(
            result.timed_out
                || result.out_of_memory
                || result.stdout.contains("stopped")
                || result.exit_code != 0,
            "{}: created everything it wanted: {result:?}",
            trial.context
        );
        eprintln!("{}: {}", trial.context, result.stdout.replace('\n', "; "));
        let cleaned = trial
            .session
            .execute_command_with(
                &["rm", "-rf", "many", "/tmp/many"],
                CommandOptions {
                    timeout: Some(Duration::from_secs(60)),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        if backend == BackendKind::Podman && cleaned.out_of_memory {
            // Known gap: Podman 4 refuses nr_inodes for /tmp, so the tmpfs inodes fill the
            // container's memory and every later process of the session is OOM-killed (and
            // says so). The fresh session below still works.
            eprintln!(
                "{}: KNOWN GAP: the session stays out of memory",
                trial.context
            );
            trial.finish().await;
            continue;
        }
        assert!(cleaned.success(), "{}: {cleaned:?}", trial.context);
        let again = trial.session.run("print('usable')").await.unwrap();
        assert_eq!(again.stdout, "usable\n", "{}: {again:?}", trial.context);
        trial.finish().await;
    }
}

/// The marker a stream capped at [`OUTPUT_LIMIT`] ends with.
fn truncation_marker() -> String {
    format!("[llm-sandbox: output truncated after {OUTPUT_LIMIT} bytes]\n")
}

// A flood of output (4 GiB from C++; 2 GiB on each stream from node): what is kept stays at the
// output limit, ends with the truncation marker, and the run ends in bounded time.
#[tokio::test(flavor = "multi_thread")]
async fn output_floods_are_truncated_and_bounded() {
    let _serial = serial().await;
    for backend in backends() {
        for (lang, code, streams) in [("cpp", OUTPUT_FLOOD, 1), ("javascript", STDERR_FLOOD, 2)] {
            let builder = hostile(lang).execution_timeout(Duration::from_secs(6));
            let Some(trial) = Trial::start(backend, &format!("{lang} output flood"), builder).await
            else {
                continue;
            };
            let result = trial.run(code, &[]).await;
            let marker = truncation_marker();
            let kept = [&result.stdout_bytes, &result.stderr_bytes];
            for bytes in &kept[..streams] {
                assert!(
                    bytes.ends_with(marker.as_bytes()),
                    "{}: no truncation marker (exit {}, timed out {}, {} bytes kept)",
                    trial.context,
                    result.exit_code,
                    result.timed_out,
                    bytes.len()
                );
                assert!(
                    bytes.len() as u64 <= OUTPUT_LIMIT + 1 + marker.len() as u64,
                    "{}: kept {} bytes",
                    trial.context,
                    bytes.len()
                );
            }
            assert!(
                result.success() || result.timed_out,
                "{}: exit {} ({} bytes of stderr)",
                trial.context,
                result.exit_code,
                result.stderr.len()
            );
            trial.assert_no_leftovers().await;
            trial.finish().await;
        }
    }
}

// ---- escapes ----------------------------------------------------------------------------------

// Host secrets: a 0600 file in a host temp dir, /etc/shadow, the parent's environment (a
// variable set in this process), /proc of host processes (this process's pid, its command
// line), /proc/<pid>/mem, device nodes, the engines' sockets. The attack finds nothing.
#[tokio::test(flavor = "multi_thread")]
async fn host_secrets_stay_out_of_reach() {
    let _serial = serial().await;
    // The probes are meaningful: the test itself sees what the sandbox must not.
    assert!(std::env::var(SECRET_ENV).is_ok());
    let entry = host_env_entry();
    assert!(
        !entry.is_empty(),
        "no distinctive variable in this process's environment"
    );
    let own_environ = std::fs::read("/proc/self/environ").unwrap();
    assert!(own_environ
        .windows(entry.len())
        .any(|w| w == entry.as_bytes()));
    for backend in backends() {
        let Some(trial) = Trial::start(backend, "host secrets", hostile("python")).await else {
            continue;
        };
        assert!(std::fs::read_to_string(&trial.host.secret)
            .unwrap()
            .starts_with(SECRET_MARK));
        let result = trial.run(HOST_SECRETS, &[]).await;
        assert_eq!(result.stdout, "done\n", "{}: {result:?}", trial.context);
        trial.finish().await;
    }
}

// The sandbox's init (and every process the code can see) keeps its memory and descriptors:
// /proc/<pid>/mem read at mapped addresses and opened for writing, pidfd_getfd, kcmp,
// process_vm_readv. Nothing of the caller is in init's memory either (init is exec'd, not
// forked): the heap secret this process holds is found nowhere.
#[tokio::test(flavor = "multi_thread")]
async fn init_memory_and_descriptors_stay_out_of_reach() {
    let _serial = serial().await;
    for backend in backends() {
        let Some(trial) = Trial::start(backend, "init memory", hostile("python")).await else {
            continue;
        };
        let secret = ("HEAP_SECRET_HEX", hex(HEAP_SECRET.as_bytes()));
        let result = trial.run(INIT_MEMORY, &[secret]).await;
        assert_eq!(result.stdout, "done\n", "{}: {result:?}", trial.context);
        trial.finish().await;
    }
}

// Writes outside the workdir: the host sentinel (world-writable), /etc, /usr, /, /proc/sys,
// /sys, /proc/sysrq-trigger, chown to root. Every write fails and the host files are unchanged.
#[tokio::test(flavor = "multi_thread")]
async fn writes_outside_the_workdir_fail() {
    let _serial = serial().await;
    for backend in backends() {
        let Some(trial) = Trial::start(backend, "writes outside", hostile("python")).await else {
            continue;
        };
        let result = trial.run(WRITE_OUTSIDE, &[]).await;
        let mut stdout = result.stdout.clone();
        if backend == BackendKind::Podman {
            // Podman mounts a tmpfs of the container's own on /var/tmp (read-only root): not a
            // host write, but outside the disk limit (memory-bounded only).
            stdout = stdout.replace("created /var/tmp/evil-dir\n", "");
        }
        assert_eq!(stdout, "done\n", "{}: {result:?}", trial.context);
        trial.host.assert_unchanged(&trial.context);
        trial.finish().await;
    }
}

// Privileged syscalls made directly (mount, umount, unshare, clone with CLONE_NEWUSER, setns,
// chroot, pivot_root, ptrace of pid 1, bpf, keyctl, add_key, init/finit/delete_module, kexec,
// reboot, swapoff, perf_event_open, settimeofday, sethostname, setuid(0), iopl), and those the
// red-team review found open (pidfd_getfd, kcmp and process_vm_readv on pid 1, modify_ldt,
// personality, inotify, fanotify, vsock and packet sockets): each fails with EPERM, EACCES or
// ENOSYS (EAFNOSUPPORT for socket families).
#[tokio::test(flavor = "multi_thread")]
async fn privileged_syscalls_fail() {
    let _serial = serial().await;
    let expected = [
        "mount",
        "mount_bind_root",
        "umount2",
        "unshare_user",
        "unshare_mount",
        "unshare_net",
        "clone_newuser",
        "setns",
        "chroot",
        "ptrace_attach_init",
        "bpf",
        "keyctl",
        "add_key",
        "init_module",
        "finit_module",
        "delete_module",
        "kexec_load",
        "reboot",
        "swapoff",
        "pivot_root",
        "perf_event_open",
        "settimeofday",
        "sethostname",
        "setuid_root",
        "iopl",
        "pidfd_getfd_init",
        "kcmp_init",
        "process_vm_readv_init",
        "modify_ldt",
        "personality_read_implies_exec",
        "personality_no_randomize",
        "inotify_init1",
        "inotify_add_watch",
        "fanotify_init",
        "socket_vsock",
        "socket_vsock_dgram",
        "socketpair_vsock",
        "socket_packet",
    ];
    for backend in backends() {
        let Some(trial) = Trial::start(backend, "syscalls", hostile("cpp")).await else {
            continue;
        };
        let result = trial.run(SYSCALLS, &[]).await;
        assert!(result.success(), "{}: {result:?}", trial.context);
        let mut seen = Vec::new();
        for line in result.stdout.lines().filter(|l| *l != "done") {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // setuid(0) fails with EINVAL where uid 0 does not exist (the native user namespace).
            let refusals: &[&str] = match fields.first() {
                Some(&"setuid_root") => &["EPERM", "EINVAL"],
                Some(name) if name.starts_with("socket") => &["EAFNOSUPPORT", "EPERM"],
                _ => &["EPERM", "EACCES", "ENOSYS"],
            };
            assert!(
                fields.len() == 3 && fields[1] == "-1" && refusals.contains(&fields[2]),
                "{}: `{line}` was not refused",
                trial.context
            );
            seen.push(fields[0]);
        }
        assert_eq!(seen, expected, "{}: {result:?}", trial.context);
        assert!(result.stdout.ends_with("done\n"));
        trial.finish().await;
    }
}

// Raising limits: rlimits above the hard limit, another process's limits (prlimit on pid 1),
// cgroup files (limits, cgroup.procs, release_agent) and new cgroups, /proc/sys. All refused.
#[tokio::test(flavor = "multi_thread")]
async fn limits_cannot_be_raised() {
    let _serial = serial().await;
    for backend in backends() {
        let Some(trial) = Trial::start(backend, "raising limits", hostile("python")).await else {
            continue;
        };
        let result = trial.run(LIMITS, &[]).await;
        assert_eq!(result.stdout, "done\n", "{}: {result:?}", trial.context);
        // The pids limit still holds afterwards.
        let threads = "import threading, time\nn = 0\ntry:\n    for _ in range(100):\n        threading.Thread(target=time.sleep, args=(3,), daemon=True).start()\n        n += 1\nexcept RuntimeError:\n    pass\nprint(n)";
        let result = trial.run(threads, &[]).await;
        let started: u32 = result.stdout.trim().parse().unwrap_or(1000);
        assert!(started < 64, "{}: {result:?}", trial.context);
        trial.finish().await;
    }
}

// Setuid: su (and sudo where present) give no root; a setuid copy of a shell runs as the
// sandbox user; chown to root fails; no_new_privs is set and no capability is held.
#[tokio::test(flavor = "multi_thread")]
async fn setuid_grants_nothing() {
    let _serial = serial().await;
    for backend in backends() {
        let Some(trial) = Trial::start(backend, "setuid", hostile("python")).await else {
            continue;
        };
        let result = trial.shell(SETUID).await;
        let out = &result.stdout;
        assert!(!out.contains("gave root"), "{}: {result:?}", trial.context);
        assert!(!out.contains("chowned"), "{}: {result:?}", trial.context);
        assert!(
            out.contains("setuid copy euid 1000\n"),
            "{}: {result:?}",
            trial.context
        );
        assert!(
            out.contains("NoNewPrivs: 1\n"),
            "{}: {result:?}",
            trial.context
        );
        for set in ["CapEff", "CapPrm", "CapBnd", "CapAmb"] {
            assert!(
                out.contains(&format!("{set}: 0000000000000000\n")),
                "{}: {set}: {result:?}",
                trial.context
            );
        }
        assert!(out.ends_with("done\n"), "{}: {result:?}", trial.context);
        trial.finish().await;
    }
}

// Shared memory that no per-process rlimit counts (memfd, shared anonymous and /dev/zero
// mappings, System V segments), each asked for at twice the 128 MiB limit: no method gets more
// than the limit (cgroups kill the process; with rlimits only the calls are refused).
#[tokio::test(flavor = "multi_thread")]
async fn shared_memory_is_bounded_by_the_memory_limit() {
    let _serial = serial().await;
    const LIMIT: u64 = 128 << 20;
    for backend in backends() {
        let builder = hostile("python").memory(Some(LIMIT));
        let Some(trial) = Trial::start(backend, "shared memory", builder).await else {
            continue;
        };
        let result = trial
            .run(SHARED_MEMORY, &[("MEMORY_LIMIT", LIMIT.to_string())])
            .await;
        let lines: Vec<&str> = result.stdout.lines().collect();
        assert_eq!(lines.last(), Some(&"done"), "{}: {result:?}", trial.context);
        assert_eq!(lines.len(), 5, "{}: {result:?}", trial.context);
        for line in &lines[..4] {
            let fields: Vec<&str> = line.split(' ').collect();
            let touched: u64 = fields[1].parse().unwrap();
            assert!(
                touched << 20 <= LIMIT && fields[2] != "all",
                "{}: `{line}` exceeds the memory limit",
                trial.context
            );
        }
        trial.assert_no_leftovers().await;
        trial.finish().await;
    }
}

/// The uid that owns the user namespace of host process `pid` (`NS_GET_OWNER_UID`).
fn user_namespace_owner(pid: &str) -> u32 {
    use std::os::fd::AsRawFd;
    let namespace = std::fs::File::open(format!("/proc/{pid}/ns/user")).unwrap();
    let mut owner: libc::uid_t = u32::MAX;
    const NS_GET_OWNER_UID: libc::c_ulong = 0xb704;
    // SAFETY: the ioctl writes one uid_t into `owner`.
    let done = unsafe { libc::ioctl(namespace.as_raw_fd(), NS_GET_OWNER_UID, &mut owner) };
    assert_eq!(
        done,
        0,
        "NS_GET_OWNER_UID: {}",
        std::io::Error::last_os_error()
    );
    owner
}

// Budgets the kernel keeps per host user: inotify instances (128 per user by default) are
// refused to the code on every backend, and a root caller's native sandbox is owned by an
// unprivileged uid of its own, so that what the kernel counts per user (pending signals,
// message queues, namespaces) is never charged to host root. The attack holds what it gets for
// a moment only.
#[tokio::test(flavor = "multi_thread")]
async fn host_user_budgets_are_not_the_sandboxs() {
    let _serial = serial().await;
    let instances = "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\nfds = []\nfor _ in range(200):\n    fd = libc.inotify_init1(0)\n    if fd < 0:\n        break\n    fds.append(fd)\nprint(len(fds))\n";
    for backend in backends() {
        let Some(trial) = Trial::start(backend, "host user budgets", hostile("python")).await
        else {
            continue;
        };
        let result = trial.run(instances, &[]).await;
        assert_eq!(result.stdout, "0\n", "{}: {result:?}", trial.context);
        if backend == BackendKind::Native {
            // Look at a live sandbox process from the host.
            let session = &trial.session;
            let sleeper = session.execute_command(&["sleep", "2"]);
            let inspect = async {
                let deadline = Instant::now() + Duration::from_secs(2);
                loop {
                    let found = host_processes_with(&trial.marker);
                    if let Some(process) = found.first() {
                        let pid = process.split(':').next().unwrap().to_string();
                        return user_namespace_owner(&pid);
                    }
                    assert!(
                        Instant::now() < deadline,
                        "{}: no sandbox process seen",
                        trial.context
                    );
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            };
            let (slept, owner) = tokio::join!(sleeper, inspect);
            slept.unwrap();
            let caller = nix_euid();
            if caller == 0 {
                assert_ne!(owner, 0, "{}: host root owns the sandbox", trial.context);
            } else {
                assert_eq!(owner, caller, "{}", trial.context);
            }
        }
        trial.finish().await;
    }
}

fn nix_euid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

// Abstract UNIX sockets belong to the network namespace: with the host's network the code
// could reach the host's (X11, D-Bus, agents). A listener this test binds is out of reach,
// while a TCP listener on the host's loopback is reached (the network really is shared).
// Native only: container backends cannot scope them (see the README).
#[tokio::test(flavor = "multi_thread")]
async fn host_abstract_sockets_stay_out_of_reach_with_the_host_network() {
    use std::os::linux::net::SocketAddrExt;
    let _serial = serial().await;
    if !backends().contains(&BackendKind::Native) {
        return;
    }
    let name = format!("llm-sandbox-hostile-{}", unique());
    let address = std::os::unix::net::SocketAddr::from_abstract_name(&name).unwrap();
    let abstract_listener = std::os::unix::net::UnixListener::bind_addr(&address).unwrap();
    abstract_listener.set_nonblocking(true).unwrap();
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = tcp.local_addr().unwrap().port();
    let builder = hostile("python").network(llm_sandbox::NetworkMode::Host);
    let Some(trial) = Trial::start(BackendKind::Native, "abstract sockets", builder).await else {
        return;
    };
    let code = format!(
        "import socket\ns = socket.socket(socket.AF_UNIX)\ntry:\n    s.connect('\\0{name}')\n    print('abstract connected')\nexcept OSError as e:\n    print('abstract', e.errno)\nt = socket.create_connection(('127.0.0.1', {port}), timeout=2)\nprint('tcp connected')\n"
    );
    let result = trial.run(&code, &[]).await;
    assert!(
        result.stdout.contains("tcp connected") && !result.stdout.contains("abstract connected"),
        "{}: {result:?}",
        trial.context
    );
    assert!(
        abstract_listener.accept().is_err(),
        "{}: the host's abstract socket was reached",
        trial.context
    );
    trial.finish().await;
}

/// A TCP listener on every host address that counts the connections it accepts.
struct HostListener {
    port: u16,
    connections: Arc<AtomicUsize>,
    acceptor: tokio::task::JoinHandle<()>,
}

impl HostListener {
    async fn start() -> HostListener {
        let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        let acceptor = tokio::spawn(async move {
            while listener.accept().await.is_ok() {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        });
        HostListener {
            port,
            connections,
            acceptor,
        }
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("HOST_PORT", self.port.to_string()),
            ("HOST_IPS", host_addresses().join(",")),
        ]
    }

    /// How many connections arrived (after a moment for late ones), and stops.
    async fn stop(self) -> usize {
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.acceptor.abort();
        self.connections.load(Ordering::SeqCst)
    }
}

// Poisoning the installer: offline code plants programs and configuration wherever an
// installer could load them from (the working directory, PYTHONPATH, sitecustomize, pip's,
// npm's and RubyGems' configuration, gem plugins); a real install of a small package then runs
// none of them, and nothing reaches the host's listener. Needs PyPI, as the conformance suite.
#[tokio::test(flavor = "multi_thread")]
async fn installers_cannot_be_poisoned_by_earlier_runs() {
    let _serial = serial().await;
    let listener = HostListener::start().await;
    let env = listener.env();
    for backend in backends() {
        let builder = hostile("python")
            .allow_install_network(true)
            .execution_timeout(Duration::from_secs(8));
        let Some(trial) = Trial::start(backend, "installer poisoning", builder).await else {
            continue;
        };
        let result = trial.run(POISON_INSTALLER, &env).await;
        assert_eq!(result.stdout, "planted\n", "{}: {result:?}", trial.context);
        trial
            .session
            .install(&["six==1.16.0"])
            .await
            .unwrap_or_else(|e| panic!("{}: the install failed: {e}", trial.context));
        // Checked with `-I`: the planted sitecustomize would run in any ordinary Python run of
        // the session (the code's own business), and must not be mistaken for the installer.
        // The real pip ran: six is where it installs packages.
        let check = "import glob, os\nprint(sorted(glob.glob('POISONED-*')), os.path.isfile('.llm-sandbox/python-packages/six.py'))";
        let result = trial
            .session
            .execute_command(&["python3", "-I", "-c", check])
            .await
            .unwrap();
        assert_eq!(result.stdout, "[] True\n", "{}: {result:?}", trial.context);
        trial.finish().await;
    }
    assert_eq!(
        listener.stop().await,
        0,
        "a poisoned installer reached the host"
    );
}

/// A language whose "installer" is a probe of the network installs get: straight to the host
/// (each of HOST_IPS on HOST_PORT), and through the proxy the backend gives it (the host, an
/// address that is not a package index, and the index itself). It writes what it found to
/// `<workdir>/network-probe.txt`, since an install returns no output.
#[derive(Debug)]
struct NetworkProbe {
    env: Vec<(String, String)>,
}

const NETWORK_PROBE: &str = r#"
import os, socket, sys
env = dict(arg.split('=', 1) for arg in sys.argv[1:])
port, lines = int(env['HOST_PORT']), []
for ip in env['HOST_IPS'].split(','):
    try:
        socket.create_connection((ip, port), timeout=1).close()
        lines.append('direct connected ' + ip)
    except OSError:
        lines.append('direct unreachable ' + ip)
proxy = os.environ.get('HTTPS_PROXY', '')
lines.append('proxy ' + ('set' if proxy else 'unset'))
if proxy:
    host, proxy_port = proxy.rsplit('/', 1)[1].rsplit(':', 1)
    for target in ['127.0.0.1:%d' % port, 'localhost:%d' % port, 'example.com:443', 'pypi.org:443']:
        try:
            s = socket.create_connection((host, int(proxy_port)), timeout=5)
            s.sendall(('CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n' % (target, target)).encode())
            lines.append('proxy %s %s' % (target, s.recv(12).decode().split(' ')[1]))
            s.close()
        except OSError as e:
            lines.append('proxy %s error %s' % (target, e))
open(env['WORKDIR'] + '/network-probe.txt', 'w').write('\n'.join(lines) + '\n')
"#;

impl llm_sandbox::LanguageHandler for NetworkProbe {
    fn name(&self) -> &str {
        "network-probe"
    }
    fn file_extension(&self) -> &str {
        "py"
    }
    fn toolchain(&self) -> Vec<llm_sandbox::language::Toolchain> {
        Vec::new()
    }
    fn run_command(&self, ctx: &llm_sandbox::language::RunContext) -> Vec<String> {
        vec!["python3".into(), ctx.source_path.clone()]
    }
    fn install_command(
        &self,
        _libraries: &[String],
        workdir: &str,
    ) -> llm_sandbox::Result<Vec<String>> {
        let mut argv = vec!["python3".into(), "-c".into(), NETWORK_PROBE.into()];
        argv.extend(self.env.iter().map(|(k, v)| format!("{k}={v}")));
        argv.push(format!("WORKDIR={workdir}"));
        Ok(argv)
    }
    fn package_index_hosts(&self) -> Vec<String> {
        vec!["pypi.org".into()]
    }
}

// What an installer's network is: not the host's. It reaches the package index through the
// proxy, and nothing else: not the host's loopback or interfaces, directly or through the
// proxy, nor any other address. (Containers get the proxy when the caller is root and the
// engine local, as here; elsewhere they attach the engine's default network, see the README.)
#[tokio::test(flavor = "multi_thread")]
async fn installers_reach_the_package_index_and_nothing_else() {
    let _serial = serial().await;
    let listener = HostListener::start().await;
    let env: Vec<(String, String)> = listener
        .env()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    for backend in backends() {
        let builder = hostile("python")
            .allow_install_network(true)
            .register_language(Arc::new(NetworkProbe { env: env.clone() }))
            .lang("network-probe");
        let builder = match backend {
            BackendKind::Native => builder,
            _ => builder.image("llm-sandbox/python:latest"),
        };
        let Some(trial) = Trial::start(backend, "installer network", builder).await else {
            continue;
        };
        trial.session.install(&["anything"]).await.unwrap();
        let result = trial
            .run("print(open('network-probe.txt').read(), end='')", &[])
            .await;
        let mut expected: Vec<String> = host_addresses()
            .iter()
            .map(|ip| format!("direct unreachable {ip}"))
            .collect();
        expected.push("proxy set".into());
        for target in [
            format!("127.0.0.1:{}", listener.port),
            format!("localhost:{}", listener.port),
            "example.com:443".into(),
        ] {
            expected.push(format!("proxy {target} 403"));
        }
        expected.push("proxy pypi.org:443 200".into());
        let lines: Vec<&str> = result.stdout.lines().collect();
        assert_eq!(lines, expected, "{}: {result:?}", trial.context);
        trial.finish().await;
    }
    assert_eq!(listener.stop().await, 0, "an installer reached the host");
}

/// The host's IPv4 addresses (loopback first), for the network attack to try.
fn host_addresses() -> Vec<String> {
    let mut addresses = vec!["127.0.0.1".to_string()];
    if let Ok(output) = std::process::Command::new("/usr/sbin/ip")
        .args(["-o", "-4", "addr", "show"])
        .output()
    {
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            let mut fields = line.split_whitespace();
            if let Some(address) = fields.find(|f| *f == "inet").and(fields.next()) {
                let ip = address.split('/').next().unwrap_or_default().to_string();
                if !addresses.contains(&ip) {
                    addresses.push(ip);
                }
            }
        }
    }
    addresses
}

// Network: a TCP listener this test starts on the host (all interfaces, so 127.0.0.1 and every
// host address) is never reached, from Python, node or C; names do not resolve; raw and packet
// sockets are refused; the sandbox has no interface but loopback.
#[tokio::test(flavor = "multi_thread")]
async fn network_is_unreachable() {
    let _serial = serial().await;
    let listener = HostListener::start().await;
    // The listener works: the test itself reaches it.
    tokio::net::TcpStream::connect(("127.0.0.1", listener.port))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(listener.connections.swap(0, Ordering::SeqCst), 1);
    let addresses = host_addresses();
    let extra = listener.env();
    for backend in backends() {
        let Some(trial) = Trial::start(backend, "python network", hostile("python")).await else {
            continue;
        };
        let result = trial.run(NETWORK_PY, &extra).await;
        let mut expected: Vec<String> = addresses
            .iter()
            .map(|ip| format!("unreachable {ip}"))
            .collect();
        for name in [
            "example.com",
            "localhost.localdomain.invalid",
            "host.docker.internal",
            "pypi.org",
        ] {
            expected.push(format!("no dns {name}"));
        }
        for label in ["raw icmp", "raw ip", "raw icmpv6", "packet"] {
            expected.push(format!("refused {label}"));
        }
        expected.push("interfaces lo".into());
        let lines: Vec<&str> = result.stdout.lines().collect();
        assert_eq!(lines, expected, "{}: {result:?}", trial.context);
        trial.finish().await;

        let Some(trial) = Trial::start(backend, "node network", hostile("javascript")).await else {
            continue;
        };
        let result = trial.run(NETWORK_JS, &extra).await;
        assert_eq!(
            result.stdout, "unreachable\nno dns\n",
            "{}: {result:?}",
            trial.context
        );
        trial.finish().await;

        let Some(trial) = Trial::start(backend, "raw sockets", hostile("cpp")).await else {
            continue;
        };
        let result = trial.run(RAW_SOCKET, &[]).await;
        assert_eq!(
            result.stdout.lines().count(),
            3,
            "{}: {result:?}",
            trial.context
        );
        assert!(
            !result.stdout.contains("opened"),
            "{}: {result:?}",
            trial.context
        );
        trial.finish().await;
    }
    assert_eq!(
        listener.stop().await,
        0,
        "a sandbox reached the host's listener"
    );
}

// ---- persistence ------------------------------------------------------------------------------

/// After a run that tried to leave processes behind: none is left on the host (right away),
/// none in the sandbox, and the beacon files they wrote no longer change.
async fn assert_detached_are_gone(trial: &Trial) {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let survivors: Vec<String> = host_processes_with(&trial.marker)
            .into_iter()
            .filter(|p| p.contains(&trial.marker)) // in argv: the detached writers
            .collect();
        if survivors.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{}: processes outlived their run: {survivors:?}",
            trial.context
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let still = trial.python(BEACONS_STILL).await;
    let fields: Vec<&str> = still.stdout.split_whitespace().collect();
    assert_eq!(
        fields.get(2),
        Some(&"still"),
        "{}: {still:?}",
        trial.context
    );
    assert_ne!(
        fields.first(),
        Some(&"0"),
        "{}: no beacon was ever written",
        trial.context
    );
    trial.assert_no_leftovers().await;
}

// Processes that detach (double fork + setsid, ignoring SIGTERM/SIGHUP; nohup; setsid; a
// background subshell) end with their run: on the host none survives the run, in the session
// their beacon files stop changing, and nothing survives close.
#[tokio::test(flavor = "multi_thread")]
async fn detached_processes_end_with_their_run() {
    let _serial = serial().await;
    for backend in backends() {
        let Some(trial) = Trial::start(backend, "detach", hostile("python")).await else {
            continue;
        };
        let result = trial.run(DETACH_PY, &[]).await;
        assert_eq!(result.stdout, "detached\n", "{}: {result:?}", trial.context);
        assert_detached_are_gone(&trial).await;
        let result = trial.shell(DETACH_SH).await;
        assert_eq!(result.stdout, "detached\n", "{}: {result:?}", trial.context);
        assert_detached_are_gone(&trial).await;
        // A run that detaches and then times out.
        let code = format!("{DETACH_PY}\nimport time\ntime.sleep(60)");
        let options = RunOptions {
            env: trial.env(),
            timeout: Some(Duration::from_secs(2)),
            ..Default::default()
        };
        let result = trial.session.run_with(&code, options).await.unwrap();
        assert!(result.timed_out, "{}: {result:?}", trial.context);
        assert_detached_are_gone(&trial).await;
        trial.finish().await;
    }
}

// A run that kills its parent (the supervisor of the run: init on native, the exec's wrapper in
// a container), pid 1 and everything it may signal, after detaching a writer: the writer still
// ends with the run, and the session goes on.
#[tokio::test(flavor = "multi_thread")]
async fn killing_the_supervisor_does_not_keep_processes_alive() {
    let _serial = serial().await;
    for backend in backends() {
        let Some(trial) = Trial::start(backend, "kill the supervisor", hostile("python")).await
        else {
            continue;
        };
        let result = trial.run(KILL_PARENT, &[]).await;
        assert!(
            result.stdout.starts_with("killing"),
            "{}: {result:?}",
            trial.context
        );
        assert_detached_are_gone(&trial).await;
        let again = trial.session.run("print('still here')").await.unwrap();
        assert_eq!(again.stdout, "still here\n", "{}: {again:?}", trial.context);
        trial.finish().await;
    }
}

// Zombies (never-waited children, orphans that die): the run ends normally, the zombies are
// reaped, and the next runs work.
#[tokio::test(flavor = "multi_thread")]
async fn zombies_are_reaped() {
    let _serial = serial().await;
    for backend in backends() {
        let Some(trial) = Trial::start(backend, "zombies", hostile("python")).await else {
            continue;
        };
        let result = trial.run(ZOMBIES, &[]).await;
        assert!(result.success(), "{}: {result:?}", trial.context);
        let zombies: u32 = result
            .stdout
            .trim()
            .strip_prefix("zombies ")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{}: {result:?}", trial.context));
        assert!(
            zombies >= 1,
            "{}: no zombie was made: {result:?}",
            trial.context
        );
        trial.assert_no_leftovers().await;
        let count_zombies = "import os\nprint(sum(1 for p in os.listdir('/proc') if p.isdigit() and open(f'/proc/{p}/stat').read().rsplit(')', 1)[1].split()[0] == 'Z'))";
        let left = trial.python(count_zombies).await;
        assert_eq!(left.stdout, "0\n", "{}: {left:?}", trial.context);
        trial.finish().await;
    }
}

// ---- hostile archives -------------------------------------------------------------------------

/// Every path under `dir` (not following links), with its metadata.
fn walk_host(dir: &Path) -> Vec<(PathBuf, std::fs::Metadata)> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let meta = std::fs::symlink_metadata(entry.path()).unwrap();
        if meta.is_dir() {
            found.extend(walk_host(&entry.path()));
        }
        found.push((entry.path(), meta));
    }
    found
}

// copy_from_runtime of what the sandbox made: a symlink to the host secret or /etc/passwd is
// refused; a directory holding links that point out (or a fifo) is refused; hard links never
// become links on the host; setuid/setgid bits are dropped; hard links to files outside the
// workdir cannot be made. The host gets no link, no special file, no secret, nothing outside
// the destination.
#[tokio::test(flavor = "multi_thread")]
async fn copies_out_refuse_links_and_special_files() {
    let _serial = serial().await;
    for backend in backends() {
        let Some(trial) = Trial::start(backend, "hostile copies", hostile("python")).await else {
            continue;
        };
        let result = trial.run(LINKS, &[]).await;
        assert_eq!(result.stdout, "done\n", "{}: {result:?}", trial.context);
        let out = tempfile::tempdir().unwrap();
        let dest = |name: &str| out.path().join(name);
        for link in ["leak-secret", "leak-passwd"] {
            let error = trial
                .session
                .copy_from_runtime(link, dest(link))
                .await
                .unwrap_err();
            assert!(
                error.to_string().contains("symbolic link"),
                "{}: {link}: {error}",
                trial.context
            );
            assert!(!dest(link).exists(), "{}: {link}", trial.context);
        }
        for tree in ["tree", "fifo-tree"] {
            let error = trial.session.copy_from_runtime(tree, dest(tree)).await;
            assert!(error.is_err(), "{}: {tree} was copied", trial.context);
            eprintln!("{}: {tree}: {}", trial.context, error.unwrap_err());
        }
        match trial.session.copy_from_runtime("hard", dest("hard")).await {
            Ok(()) => {
                for name in ["a.txt", "b.txt"] {
                    let path = dest("hard").join(name);
                    assert_eq!(std::fs::read_to_string(&path).unwrap(), "shared");
                    assert_eq!(
                        std::fs::metadata(&path).unwrap().nlink(),
                        1,
                        "{}",
                        trial.context
                    );
                }
            }
            Err(error) => assert!(
                error.to_string().contains("refusing"),
                "{}: hard links: {error}",
                trial.context
            ),
        }
        trial
            .session
            .copy_from_runtime("suid", dest("suid"))
            .await
            .unwrap();
        for (path, meta) in walk_host(&dest("suid")) {
            assert_eq!(
                meta.permissions().mode() & 0o7000,
                0,
                "{}: {} keeps special bits",
                trial.context,
                path.display()
            );
        }
        let allowed = ["tree", "fifo-tree", "hard", "suid"];
        for entry in std::fs::read_dir(out.path()).unwrap().flatten() {
            assert!(
                allowed.contains(&entry.file_name().to_string_lossy().as_ref()),
                "{}: unexpected {:?}",
                trial.context,
                entry.path()
            );
        }
        for (path, meta) in walk_host(out.path()) {
            let kind = meta.file_type();
            assert!(
                kind.is_file() || kind.is_dir(),
                "{}: {} is neither a file nor a directory",
                trial.context,
                path.display()
            );
            assert!(!kind.is_fifo() && !kind.is_symlink());
            if kind.is_file() {
                let content = std::fs::read(&path).unwrap();
                assert!(
                    !content
                        .windows(SECRET_MARK.len())
                        .any(|w| w == SECRET_MARK.as_bytes()),
                    "{}: the secret was copied to {}",
                    trial.context,
                    path.display()
                );
            }
        }
        trial.finish().await;
    }
}

// Tar bombs: a 64 GiB sparse file, a directory of 64 sparse 1 GiB files and a real 24 MiB file
// copied out under a copy limit of 16 MiB: each copy fails with the limit in its message (or,
// for sparse files packed as sparse entries, a refusal), in bounded time, and no more than the
// limit lands at the destination.
#[tokio::test(flavor = "multi_thread")]
async fn tar_bombs_hit_the_copy_limit() {
    let _serial = serial().await;
    for backend in backends() {
        let Some(trial) = Trial::start(backend, "tar bomb", hostile("python")).await else {
            continue;
        };
        let result = trial.run(TAR_BOMB, &[]).await;
        assert_eq!(result.stdout, "done\n", "{}: {result:?}", trial.context);
        let out = tempfile::tempdir().unwrap();
        for name in ["sparse.bin", "sparse-dir", "zeros.bin"] {
            let started = Instant::now();
            let copied = trial
                .session
                .copy_from_runtime(name, out.path().join(name))
                .await;
            trial.assert_bounded(started, Duration::from_secs(10));
            let error = copied.expect_err(&format!("{}: {name} was copied", trial.context));
            // A sparse file may also travel as a sparse entry, which extraction refuses.
            let sparse_refused =
                name.starts_with("sparse") && error.to_string().contains("refusing");
            assert!(
                error.to_string().contains("limit") || sparse_refused,
                "{}: {name}: {error}",
                trial.context
            );
            // What was extracted before the refusal (e.g. the directory itself) stays small.
            let dest = out.path().join(name);
            let landed: u64 = walk_host(&dest)
                .iter()
                .map(|(_, meta)| meta.len())
                .sum::<u64>()
                + std::fs::symlink_metadata(&dest)
                    .map_or(0, |m| if m.is_file() { m.len() } else { 0 });
            assert!(
                landed <= COPY_LIMIT,
                "{}: {name}: {landed} bytes landed",
                trial.context
            );
        }
        trial.finish().await;
    }
}
