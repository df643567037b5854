//! The native backend: a daemonless Linux sandbox built from namespaces, cgroups, seccomp,
//! Landlock and rlimits. It needs no image: toolchains come from the host, bound read-only.
//!
//! Process model. `open` executes the embedded `llm-sandbox-init` program as the *keeper*
//! (see [`launch`]; the sandbox never holds a copy of the caller's memory). The keeper takes the
//! sandbox's [`InitConfig`], unshares the user, mount, pid, ipc, uts and (by default) network
//! namespaces, writes its id maps and forks *init*, pid 1 of the new pid namespace, which the
//! library puts in the session's cgroup; init builds the root filesystem, drops every privilege
//! and serves requests over the socket (see [`llm_sandbox_init::protocol`]). Killing the keeper
//! kills init (parent-death signal), and init's death kills every process in the namespace;
//! init also exits when the library's end of the socket closes, so a crashed caller leaks
//! nothing.
//!
//! Init shares a pid namespace and a uid with the code it runs, so the library does not trust
//! it: frames are bounded by what each request can produce, the output limit is enforced here
//! too, and a frame nobody asked for ends the session.

mod cgroup;
mod launch;
mod wire;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use llm_sandbox_init::config::{InitConfig, Owner, Rlimit, RootfsPlan};
use llm_sandbox_init::protocol::{decode, encode, FrameKind, FrameLimits, Reply, Request};
use llm_sandbox_init::syscalls;
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use tokio::net::UnixStream;

use self::cgroup::{Cgroup, CgroupVersion};
use super::output::OutputBuffer;
use super::package_proxy::PackageProxy;
use super::{
    Backend, BackendKind, CloseReport, ExecOutput, ExecRequest, OutputCallback, OutputStream,
};
use crate::error::{Error, Result};
use crate::spec::{NetworkMode, SandboxSpec, SANDBOX_UID};

/// How long past a command's own timeout the library waits for init before declaring it hung.
const INIT_GRACE: Duration = Duration::from_secs(5);
/// How long opening may take before it is abandoned.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a file request (copy in or out, remove) may take.
const FILE_TIMEOUT: Duration = Duration::from_secs(60);
/// The first of the host ids that own root callers' sandboxes (one per sandbox; no account
/// has them).
const OWNER_BASE: u32 = 0x4000_0000;

static SESSION_COUNTER: AtomicU64 = AtomicU64::new(0);

/// An open native sandbox.
pub struct NativeBackend {
    keeper: Option<Pid>,
    socket: Option<UnixStream>,
    cgroup: Option<Cgroup>,
    /// Whether the sandbox has its own (empty) network namespace.
    own_network: bool,
    isolation: Vec<(String, String)>,
    warnings: Vec<String>,
}

/// How memory and processes are bounded.
struct Limits {
    cgroup: Option<Cgroup>,
    rlimits: Vec<(Rlimit, u64)>,
    refuse_uncounted_memory: bool,
    description: String,
    warning: Option<String>,
}

impl Limits {
    fn for_spec(spec: &SandboxSpec, name: &str) -> Limits {
        let wanted = spec.limits.memory.is_some()
            || spec.limits.pids.is_some()
            || spec.limits.cpus.is_some();
        if !wanted {
            return Limits {
                cgroup: None,
                rlimits: Vec::new(),
                refuse_uncounted_memory: false,
                description: "none requested".into(),
                warning: None,
            };
        }
        let reason = match Cgroup::create(name, &spec.limits) {
            Ok(cgroup) => {
                let version = match cgroup.version() {
                    CgroupVersion::V2 => "cgroup v2",
                    CgroupVersion::V1 => "cgroup v1",
                };
                return Limits {
                    cgroup: Some(cgroup),
                    rlimits: Vec::new(),
                    refuse_uncounted_memory: false,
                    description: format!("{version}: {}", spec.limits.describe()),
                    warning: None,
                };
            }
            Err(reason) => reason,
        };
        let mut rlimits = Vec::new();
        if let Some(bytes) = spec.limits.memory {
            rlimits.push((Rlimit::Data, bytes));
        }
        if let Some(pids) = spec.limits.pids {
            rlimits.push((Rlimit::Processes, pids));
        }
        Limits {
            cgroup: None,
            rlimits,
            refuse_uncounted_memory: spec.limits.memory.is_some(),
            description: format!("rlimits only (cgroups unavailable: {reason})"),
            warning: Some(format!(
                "only rlimits bound this sandbox (cgroups unavailable: {reason}): memory is limited per process \
                 (RLIMIT_DATA; System V shared memory, memfd and shared anonymous mappings refused), \
                 so the processes of a run together may use up to the process limit times the memory limit, \
                 and there is no CPU limit; run as root or with a delegated cgroup for sandbox-wide limits"
            )),
        }
    }
}

impl NativeBackend {
    /// Creates a sandbox for `spec`.
    pub async fn open(spec: &SandboxSpec) -> Result<NativeBackend> {
        if let NetworkMode::Other(mode) = &spec.network {
            return Err(Error::invalid(format!(
                "network mode `{mode}` is not supported by the native backend; use none or host"
            )));
        }
        if spec.runtime_config.is_some() {
            return Err(Error::invalid(
                "runtime_config is for container backends; the native backend takes none (use the builder's limits, network and paths)",
            ));
        }
        if let Some(image) = &spec.image {
            tracing::warn!(
                "the native backend runs the host's toolchains; image `{image}` is not used"
            );
        }
        let pid = std::process::id();
        let serial = SESSION_COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("{}{pid}-{serial}", cgroup::NAME_PREFIX);
        let limits = Limits::for_spec(spec, &name);
        let mut warnings: Vec<String> = limits.warning.clone().into_iter().collect();
        warnings.extend(kept_groups_warning());
        for warning in &warnings {
            tracing::warn!("{warning}");
        }
        let owner = if nix::unistd::geteuid().is_root() {
            Owner::Dedicated(OWNER_BASE | ((pid & 0xF_FFFF) << 8) | (serial & 0xFF) as u32)
        } else {
            Owner::Caller
        };
        let own_network = spec.network == NetworkMode::None;
        let config = InitConfig {
            sandbox_id: SANDBOX_UID,
            owner,
            own_network,
            rootfs: RootfsPlan {
                workdir: spec.workdir.clone(),
                disk_bytes: spec.limits.disk,
                read_only_paths: spec.read_only_paths.clone(),
                host_network: !own_network,
                unmappable_zero: limits.refuse_uncounted_memory,
            },
            rlimits: limits.rlimits,
            refuse_uncounted_memory: limits.refuse_uncounted_memory,
        };

        let (host_end, keeper_end) =
            StdUnixStream::pair().map_err(|e| Error::io("creating the init socket", e))?;
        let keeper = launch::spawn_keeper(&OwnedFd::from(keeper_end))
            .map_err(|e| Error::io("starting the sandbox's init program", e))?;
        let mut backend = NativeBackend {
            keeper: Some(keeper),
            socket: None,
            cgroup: limits.cgroup,
            own_network,
            isolation: vec![("limits".into(), limits.description)],
            warnings,
        };
        let notes =
            match tokio::time::timeout(OPEN_TIMEOUT, backend.handshake(host_end, config)).await {
                Ok(Ok(notes)) => notes,
                Ok(Err(e)) => return Err(backend.explain_failed_start(e)), // drop kills and reaps
                Err(_) => {
                    return Err(Error::Timeout {
                        operation: "opening the native sandbox".into(),
                        limit: OPEN_TIMEOUT,
                    })
                }
            };
        backend
            .isolation
            .extend(describe_isolation(spec, own_network, owner));
        backend.isolation.extend(notes);
        Ok(backend)
    }

    /// Configures the keeper, puts init in the cgroup and waits for init to be ready; returns
    /// what init reported about the isolation.
    async fn handshake(
        &mut self,
        socket: StdUnixStream,
        config: InitConfig,
    ) -> Result<Vec<(String, String)>> {
        socket
            .set_nonblocking(true)
            .map_err(|e| Error::io("configuring the init socket", e))?;
        let mut socket = UnixStream::from_std(socket)
            .map_err(|e| Error::io("registering the init socket", e))?;
        let configure = Request::Configure(Box::new(config));
        wire::write_frame(&mut socket, FrameKind::Control, &encode(&configure))
            .await
            .map_err(lost)?;
        let init = match read_reply(&mut socket).await? {
            Reply::Forked { pid } => pid,
            other => return Err(setup_error(other)),
        };
        // Init builds its root filesystem meanwhile: a cgroup v1 attach waits for an RCU grace
        // period (about 10 ms), the largest single cost of opening a session.
        if let Some(cgroup) = &self.cgroup {
            cgroup.attach(init).map_err(Error::Sandbox)?;
        }
        wire::write_frame(&mut socket, FrameKind::Control, &encode(&Request::Attached))
            .await
            .map_err(lost)?;
        let notes = match read_reply(&mut socket).await? {
            Reply::Ready { isolation } => isolation,
            other => return Err(setup_error(other)),
        };
        self.socket = Some(socket);
        Ok(notes)
    }

    /// Turns a failed start into advice when the keeper could not even execute.
    fn explain_failed_start(&mut self, error: Error) -> Error {
        let Some(keeper) = self.keeper else {
            return error;
        };
        if wait_exit(keeper, Duration::from_millis(200))
            == Some(WaitStatus::Exited(keeper, launch::EXEC_FAILED))
        {
            self.keeper = None;
            return Error::BackendUnavailable {
                backend: "native".into(),
                reason: launch::exec_advice(),
            };
        }
        error
    }

    /// The socket, once nothing unasked-for waits on it.
    fn quiet_socket(&mut self) -> Result<&mut UnixStream> {
        let socket = self.socket.as_mut().ok_or(Error::NotOpen)?;
        wire::ensure_quiet(socket).map_err(lost)?;
        Ok(socket)
    }

    /// Sends a file request (and its blob) and reads the control reply, failing if init hangs;
    /// a blob of at most `blob_limit` bytes may come first.
    async fn call(
        &mut self,
        request: Request,
        blob: Option<&[u8]>,
        blob_limit: u64,
    ) -> Result<(Reply, Option<Vec<u8>>)> {
        let exchange = async {
            let socket = self.quiet_socket()?;
            wire::write_frame(socket, FrameKind::Control, &encode(&request))
                .await
                .map_err(lost)?;
            if let Some(blob) = blob {
                wire::write_frame(socket, FrameKind::Blob, blob)
                    .await
                    .map_err(lost)?;
            }
            let mut received = None;
            loop {
                let limits = match received {
                    None => FrameLimits::with_blob(blob_limit),
                    Some(_) => FrameLimits::CONTROL,
                };
                let (kind, payload) = wire::read_frame(socket, limits).await.map_err(lost)?;
                match kind {
                    FrameKind::Blob => received = Some(payload),
                    _ => return Ok((decode::<Reply>(&payload).map_err(lost)?, received)),
                }
            }
        };
        let result = tokio::time::timeout(FILE_TIMEOUT, exchange).await;
        self.settle(result)
    }

    /// The outcome of an exchange with init that had a time limit; on failure or timeout the
    /// session is closed.
    fn settle<T>(
        &mut self,
        outcome: std::result::Result<Result<T>, tokio::time::error::Elapsed>,
    ) -> Result<T> {
        let result = match outcome {
            Ok(result) => result,
            Err(_) => Err(Error::Sandbox(
                "the sandbox's init stopped responding; the session was closed".into(),
            )),
        };
        if let Err(e) = &result {
            if !matches!(e, Error::NotOpen) {
                self.terminate();
            }
        }
        result
    }

    /// Runs one command through init, keeping at most `output_limit` bytes of each stream.
    async fn run(
        &mut self,
        request: ExecRequest,
        on_output: OutputCallback<'_>,
    ) -> Result<ExecOutput> {
        let started = Instant::now();
        let oom_before = self.cgroup.as_ref().map_or(0, Cgroup::oom_kills);
        let limit = request.output_limit;
        let message = Request::Exec {
            argv: request.argv,
            env: request.env,
            cwd: request.cwd,
            has_stdin: request.stdin.is_some(),
            timeout_ms: request.timeout.as_millis().min(u64::MAX as u128) as u64,
            output_limit: limit,
        };
        let stdin = request.stdin;
        let exchange = async {
            let socket = self.quiet_socket()?;
            wire::write_frame(socket, FrameKind::Control, &encode(&message))
                .await
                .map_err(lost)?;
            if let Some(stdin) = &stdin {
                wire::write_frame(socket, FrameKind::Blob, stdin)
                    .await
                    .map_err(lost)?;
            }
            let mut output = ExecOutput::default();
            let mut kept = OutputBuffer::new(limit, &mut output, on_output);
            let exited = loop {
                let (kind, payload) = wire::read_frame(socket, FrameLimits::RUNNING)
                    .await
                    .map_err(lost)?;
                let stream = match kind {
                    FrameKind::Stdout => OutputStream::Stdout,
                    FrameKind::Stderr => OutputStream::Stderr,
                    _ => break decode::<Reply>(&payload).map_err(lost)?,
                };
                kept.push(stream, &payload);
            };
            match exited {
                Reply::Exited {
                    exit_code,
                    timed_out,
                    stdout_truncated,
                    stderr_truncated,
                } => {
                    output.exit_code = exit_code;
                    output.timed_out = timed_out;
                    output.stdout_truncated |= stdout_truncated;
                    output.stderr_truncated |= stderr_truncated;
                    Ok(output)
                }
                Reply::Failed { message } => Err(Error::Sandbox(message)),
                other => Err(unexpected(other)),
            }
        };
        let outcome =
            tokio::time::timeout(request.timeout.saturating_add(INIT_GRACE), exchange).await;
        let mut output = self.settle(outcome)?;
        output.duration = started.elapsed();
        output.out_of_memory = self.cgroup.as_ref().map_or(0, Cgroup::oom_kills) > oom_before;
        Ok(output)
    }

    /// Asks init for a listener on the sandbox's loopback; returns its port and descriptor.
    async fn listen(&mut self) -> Result<(u16, std::net::TcpListener)> {
        let exchange = async {
            let socket = self.quiet_socket()?;
            wire::write_frame(socket, FrameKind::Control, &encode(&Request::Listen))
                .await
                .map_err(lost)?;
            let port = match read_reply(socket).await? {
                Reply::Listening { port } => port,
                Reply::Failed { message } => {
                    return Err(Error::Sandbox(format!(
                        "opening the package proxy's listener in the sandbox: {message}"
                    )))
                }
                other => return Err(unexpected(other)),
            };
            let fd = wire::receive_fd(socket).await.map_err(lost)?;
            Ok((port, std::net::TcpListener::from(fd)))
        };
        let outcome = tokio::time::timeout(OPEN_TIMEOUT, exchange).await;
        self.settle(outcome)
    }

    /// Kills the sandbox (gracefully first: init kills everything when its socket closes).
    fn terminate(&mut self) {
        self.socket = None;
        let Some(keeper) = self.keeper.take() else {
            return;
        };
        if wait_exit(keeper, Duration::from_millis(500)).is_none() {
            let _ = nix::sys::signal::kill(keeper, Signal::SIGKILL);
            let _ = waitpid(keeper, None);
        }
        self.cgroup = None; // removes the cgroup once its last process is gone
    }
}

impl Drop for NativeBackend {
    fn drop(&mut self) {
        self.terminate();
    }
}

#[async_trait]
impl Backend for NativeBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Native
    }

    /// An installer (`package_index`) in a sandbox without a network reaches its index hosts
    /// through the [`PackageProxy`], on a listener in the sandbox's own network namespace.
    async fn exec(
        &mut self,
        mut request: ExecRequest,
        on_output: OutputCallback<'_>,
    ) -> Result<ExecOutput> {
        match request.package_index.take() {
            Some(hosts) if self.own_network => {
                let (port, listener) = self.listen().await?;
                request.env.extend(PackageProxy::environment(port));
                let run = self.run(request, on_output);
                PackageProxy::new(&hosts).alongside(listener, run).await
            }
            _ => self.run(request, on_output).await,
        }
    }

    async fn put_archive(&mut self, dest_dir: &str, tar: Vec<u8>) -> Result<()> {
        let request = Request::PutArchive {
            dest_dir: dest_dir.to_string(),
        };
        match self.call(request, Some(&tar), 0).await? {
            (Reply::Done, None) => Ok(()),
            (Reply::Failed { message }, None) => Err(Error::Sandbox(format!(
                "copying into {dest_dir}: {message}"
            ))),
            (other, _) => Err(unexpected(other)),
        }
    }

    async fn get_archive(&mut self, path: &str, max_bytes: u64) -> Result<Vec<u8>> {
        let request = Request::GetArchive {
            path: path.to_string(),
            max_bytes,
        };
        match self.call(request, None, max_bytes).await? {
            (Reply::Done, Some(tar)) => Ok(tar),
            (Reply::CopyRefused { reason }, None) => Err(Error::CopyRefused { reason }),
            (Reply::CopyTooLarge, None) => Err(Error::CopyTooLarge {
                path: path.to_string(),
                limit: max_bytes,
            }),
            (Reply::Failed { message }, None) => {
                Err(Error::Sandbox(format!("copying {path} out: {message}")))
            }
            (other, _) => Err(unexpected(other)),
        }
    }

    async fn remove(&mut self, path: &str) -> Result<()> {
        let request = Request::Remove {
            path: path.to_string(),
        };
        match self.call(request, None, 0).await? {
            (Reply::Done, None) => Ok(()),
            (Reply::Failed { message }, None) => Err(Error::Sandbox(message)),
            (other, _) => Err(unexpected(other)),
        }
    }

    fn isolation(&self) -> Vec<(String, String)> {
        self.isolation.clone()
    }

    fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }

    async fn close(&mut self) -> Result<CloseReport> {
        self.terminate();
        Ok(CloseReport::default())
    }
}

/// Removes the cgroups of native sessions whose process died without closing them; returns
/// their paths. Sandbox processes die with their caller, so nothing else can be left behind.
pub fn gc() -> Result<Vec<String>> {
    let removed = cgroup::remove_stale_cgroups().map_err(|reason| Error::BackendUnavailable {
        backend: "native".into(),
        reason: format!("cgroups cannot be managed here ({reason})"),
    })?;
    Ok(removed.iter().map(|p| p.display().to_string()).collect())
}

/// An ordinary user cannot drop its supplementary groups in a user namespace; says so when the
/// caller has any, since host files readable by them stay readable in the sandbox.
fn kept_groups_warning() -> Option<String> {
    if nix::unistd::geteuid().is_root() {
        return None;
    }
    let primary = nix::unistd::getegid();
    let groups: Vec<String> = nix::unistd::getgroups()
        .unwrap_or_default()
        .into_iter()
        .filter(|gid| *gid != primary)
        .map(|gid| match nix::unistd::Group::from_gid(gid) {
            Ok(Some(group)) => group.name,
            _ => gid.to_string(),
        })
        .collect();
    (!groups.is_empty()).then(|| {
        format!(
            "the caller's supplementary groups ({}) stay with the code (an ordinary user cannot drop them): \
             host files readable by those groups under the bound paths (/usr, /lib*, the listed /etc entries) \
             are readable in the sandbox; run from a user without extra groups, or as root",
            groups.join(", ")
        )
    })
}

async fn read_reply(socket: &mut UnixStream) -> Result<Reply> {
    let (kind, payload) = wire::read_frame(socket, FrameLimits::CONTROL)
        .await
        .map_err(lost)?;
    if kind != FrameKind::Control {
        return Err(lost(std::io::Error::other("unexpected frame")));
    }
    decode(&payload).map_err(lost)
}

fn setup_error(reply: Reply) -> Error {
    match reply {
        Reply::SetupFailed { step, message } => Error::BackendUnavailable {
            backend: "native".into(),
            reason: format!("sandbox setup failed at `{step}`: {message}"),
        },
        other => unexpected(other),
    }
}

fn unexpected(reply: Reply) -> Error {
    lost(std::io::Error::other(format!("unexpected reply {reply:?}")))
}

fn lost(error: std::io::Error) -> Error {
    Error::io(
        "talking to the sandbox's init (the sandbox died or broke the protocol)",
        error,
    )
}

/// Waits up to `limit` for `pid` (our child) to exit, reaping it; its status, or `None` when
/// it is still running. Waits on a pidfd, no polling.
fn wait_exit(pid: Pid, limit: Duration) -> Option<WaitStatus> {
    // SAFETY: pidfd_open on our own unreaped child; the fd is owned at once.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if raw >= 0 {
        let pidfd = unsafe { OwnedFd::from_raw_fd(raw as i32) };
        let mut poll = libc::pollfd {
            fd: pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let ready = unsafe { libc::poll(&mut poll, 1, limit.as_millis() as i32) };
        if ready <= 0 {
            return None;
        }
    }
    waitpid(pid, None).ok()
}

fn describe_isolation(
    spec: &SandboxSpec,
    own_network: bool,
    owner: Owner,
) -> Vec<(String, String)> {
    let network = if own_network {
        "none (private loopback only; installers reach their package index through a proxy)"
    } else {
        "host (shared knowingly)"
    };
    let namespaces = if own_network {
        "user, pid, mount, network, ipc, uts, cgroup"
    } else {
        "user, pid, mount, ipc, uts, cgroup"
    };
    let host_user = match owner {
        Owner::Caller => "the caller's uid".to_string(),
        Owner::Dedicated(id) => format!("dedicated host uid {id}"),
    };
    vec![
        ("namespaces".into(), namespaces.into()),
        ("network".into(), network.into()),
        (
            "filesystem".into(),
            format!(
                "fresh root; /usr, /lib*, /bin and selected /etc read-only; writable {} and /tmp ({})",
                spec.workdir,
                spec.limits.disk.map(|b| format!("{} MiB", b >> 20)).unwrap_or_else(|| "unbounded".into())
            ),
        ),
        (
            "user".into(),
            format!("uid {SANDBOX_UID} in the sandbox ({host_user}), no capabilities, no_new_privs; init is not dumpable and holds none of the caller's memory"),
        ),
        (
            "seccomp".into(),
            format!(
                "{} syscalls refused or restricted (namespaces, mounts, tracing, other processes' memory and descriptors, keyrings, inotify, socket families other than unix, inet, inet6 and netlink)",
                syscalls::refused_names().len()
            ),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use llm_sandbox_init::protocol::{read_frame, write_frame, OUTPUT_CHUNK};

    use super::*;

    /// A backend whose "init" is `script`, run on a thread with the other end of the socket:
    /// it answers however the script says, as a compromised init could.
    fn with_fake_init(script: impl FnOnce(StdUnixStream) + Send + 'static) -> NativeBackend {
        let (ours, theirs) = StdUnixStream::pair().unwrap();
        std::thread::spawn(move || script(theirs));
        ours.set_nonblocking(true).unwrap();
        NativeBackend {
            keeper: None,
            socket: Some(UnixStream::from_std(ours).unwrap()),
            cgroup: None,
            own_network: true,
            isolation: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn exited() -> Vec<u8> {
        encode(&Reply::Exited {
            exit_code: 0,
            timed_out: false,
            stdout_truncated: false,
            stderr_truncated: false,
        })
    }

    fn request(output_limit: u64) -> ExecRequest {
        ExecRequest {
            argv: vec!["true".into()],
            timeout: Duration::from_secs(5),
            output_limit,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn output_beyond_the_limit_is_dropped_whatever_init_claims() {
        let mut backend = with_fake_init(|mut init| {
            read_frame(&mut init, FrameLimits::FROM_LIBRARY).unwrap();
            for _ in 0..3 {
                write_frame(&mut init, FrameKind::Stdout, &[b'x'; OUTPUT_CHUNK]).unwrap();
            }
            write_frame(&mut init, FrameKind::Control, &exited()).unwrap();
            let _ = init.read(&mut [0; 1]); // keep the socket open until the library is done
        });
        let mut seen = 0;
        let output = backend
            .exec(request(10), &mut |_, chunk| seen += chunk.len())
            .await
            .unwrap();
        assert_eq!((output.stdout.len(), seen), (10, 10));
        assert!(output.stdout_truncated);
    }

    #[tokio::test]
    async fn a_frame_larger_than_a_request_can_produce_ends_the_session() {
        let mut backend = with_fake_init(|mut init| {
            read_frame(&mut init, FrameLimits::FROM_LIBRARY).unwrap();
            let _ = write_frame(&mut init, FrameKind::Stdout, &vec![b'x'; OUTPUT_CHUNK + 1]);
        });
        let error = backend.exec(request(1 << 30), &mut |_, _| {}).await;
        assert!(error.is_err());
        assert!(matches!(backend.remove("/x").await, Err(Error::NotOpen)));

        let mut backend = with_fake_init(|mut init| {
            read_frame(&mut init, FrameLimits::FROM_LIBRARY).unwrap();
            let _ = write_frame(&mut init, FrameKind::Blob, &[0; 101]);
            let _ = write_frame(&mut init, FrameKind::Control, &encode(&Reply::Done));
        });
        assert!(backend.get_archive("/sandbox/x", 100).await.is_err());
    }

    #[tokio::test]
    async fn frames_after_the_last_reply_are_refused() {
        let mut backend = with_fake_init(|mut init| {
            read_frame(&mut init, FrameLimits::FROM_LIBRARY).unwrap();
            write_frame(&mut init, FrameKind::Control, &exited()).unwrap();
            // A forged result for the next request, sent before it is asked for.
            write_frame(&mut init, FrameKind::Stdout, b"forged").unwrap();
            write_frame(&mut init, FrameKind::Control, &exited()).unwrap();
            let _ = init.read(&mut [0; 1]);
        });
        backend.exec(request(100), &mut |_, _| {}).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let second = backend.exec(request(100), &mut |_, _| {}).await;
        let message = second.unwrap_err().to_string();
        assert!(message.contains("after its last reply"), "{message}");
    }
}
