//! The native backend: a daemonless Linux sandbox built from namespaces, cgroups, seccomp and
//! rlimits. It needs no image: toolchains come from the host, bound read-only.
//!
//! Process model. `open` forks a *keeper* (single-threaded, so it may create a user namespace);
//! the keeper unshares the user, mount, pid, ipc, uts and (by default) network namespaces and
//! waits while the library writes its uid/gid maps and puts it in the session's cgroup. It then
//! forks *init*, pid 1 of the new pid namespace, which builds the root filesystem, drops every
//! privilege and serves requests over a socket (see [`protocol`]). Killing the keeper kills init
//! (parent-death signal), and init's death kills every process in the namespace; init also exits
//! when the library's end of the socket closes, so a crashed caller leaks nothing.

mod cgroup;
mod init;
mod install_network;
mod protocol;
mod rootfs;
mod seccomp;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use nix::sched::CloneFlags;
use nix::sys::resource::Resource;
use nix::sys::signal::Signal;
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid};
use tokio::net::UnixStream;

use self::cgroup::{Cgroup, CgroupVersion};
use self::init::InitConfig;
use self::protocol::{decode, encode, nonblocking, FrameKind, Reply, Request};
use self::rootfs::{RootfsPlan, SANDBOX_ID};
use super::{
    Backend, BackendKind, CloseReport, ExecOutput, ExecRequest, OutputCallback, OutputStream,
};
use crate::error::{Error, Result};
use crate::spec::{NetworkMode, SandboxSpec};

/// How long past a command's own timeout the library waits for init before declaring it hung.
const INIT_GRACE: Duration = Duration::from_secs(5);
/// How long opening may take before it is abandoned.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// The host uid/gid sandboxed code maps to when the library runs as root (`nobody`).
const ROOT_MAPPED_ID: u32 = 65534;

static SESSION_COUNTER: AtomicU64 = AtomicU64::new(0);

/// An open native sandbox.
pub struct NativeBackend {
    keeper: Option<Pid>,
    socket: Option<UnixStream>,
    cgroup: Option<Cgroup>,
    /// The fallback rlimits, also applied to installers that join from outside.
    rlimits: Vec<(Resource, u64)>,
    /// Whether the sandbox has its own (empty) network namespace.
    own_network: bool,
    isolation: Vec<(String, String)>,
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
        let name = format!(
            "{}{}-{}",
            cgroup::NAME_PREFIX,
            std::process::id(),
            SESSION_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut isolation = Vec::new();
        let wants_cgroup = spec.limits.memory.is_some()
            || spec.limits.pids.is_some()
            || spec.limits.cpus.is_some();
        let (cgroup, rlimits) = match wants_cgroup.then(|| Cgroup::create(&name, &spec.limits)) {
            Some(Ok(cgroup)) => {
                let version = match cgroup.version() {
                    CgroupVersion::V2 => "cgroup v2",
                    CgroupVersion::V1 => "cgroup v1",
                };
                isolation.push((
                    "limits".into(),
                    format!("{version}: {}", spec.limits.describe()),
                ));
                (Some(cgroup), Vec::new())
            }
            Some(Err(reason)) => {
                tracing::warn!("cgroups unavailable ({reason}); falling back to rlimits, which are weaker (no CPU limit, per-process memory)");
                isolation.push((
                    "limits".into(),
                    format!("rlimits only (cgroups unavailable: {reason})"),
                ));
                (None, fallback_rlimits(spec))
            }
            None => {
                isolation.push(("limits".into(), "none requested".into()));
                (None, Vec::new())
            }
        };
        let own_network = spec.network == NetworkMode::None;
        let config = InitConfig {
            rootfs: RootfsPlan {
                workdir: spec.workdir.clone(),
                disk_bytes: spec.limits.disk,
                read_only_paths: spec.read_only_paths.clone(),
                host_network: !own_network,
                resolver: own_network && spec.install_network,
            },
            own_network,
            rlimits: rlimits.clone(),
        };
        let mut flags = CloneFlags::CLONE_NEWUSER
            | CloneFlags::CLONE_NEWNS
            | CloneFlags::CLONE_NEWPID
            | CloneFlags::CLONE_NEWIPC
            | CloneFlags::CLONE_NEWUTS;
        if own_network {
            flags |= CloneFlags::CLONE_NEWNET;
        }

        let (host_end, child_end) =
            StdUnixStream::pair().map_err(|e| Error::io("creating the init socket", e))?;
        // SAFETY: glibc's fork keeps malloc usable in the child; the child is single-threaded from
        // here on, touches no locks held by other threads (no tracing, no stdio) and ends in _exit.
        let keeper = match unsafe { nix::unistd::fork() } {
            Ok(ForkResult::Child) => {
                drop(host_end);
                let code = match keep_only_socket(child_end) {
                    Ok(socket) => keep(socket, flags, &config),
                    Err(_) => 1,
                };
                // SAFETY: leaving the forked child without running the parent's destructors.
                unsafe { libc::_exit(code) }
            }
            Ok(ForkResult::Parent { child }) => child,
            Err(e) => return Err(Error::Sandbox(format!("fork failed: {e}"))),
        };
        drop(child_end);
        let mut backend = NativeBackend {
            keeper: Some(keeper),
            socket: None,
            cgroup,
            rlimits,
            own_network,
            isolation,
        };
        match tokio::time::timeout(OPEN_TIMEOUT, backend.handshake(host_end, keeper)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e), // dropping `backend` kills and reaps what was started
            Err(_) => {
                return Err(Error::Timeout {
                    operation: "opening the native sandbox".into(),
                    limit: OPEN_TIMEOUT,
                })
            }
        }
        backend
            .isolation
            .extend(describe_isolation(spec, own_network));
        Ok(backend)
    }

    async fn handshake(&mut self, socket: StdUnixStream, keeper: Pid) -> Result<()> {
        socket
            .set_nonblocking(true)
            .map_err(|e| Error::io("configuring the init socket", e))?;
        let mut socket = UnixStream::from_std(socket)
            .map_err(|e| Error::io("registering the init socket", e))?;
        match read_reply(&mut socket).await? {
            Reply::Unshared => {}
            other => return Err(setup_error(other)),
        }
        write_id_maps(keeper)?;
        nonblocking::write_frame(&mut socket, FrameKind::Control, &encode(&Request::Start))
            .await
            .map_err(|e| Error::io("starting init", e))?;
        let init = match read_reply(&mut socket).await? {
            Reply::Forked { pid } => pid,
            other => return Err(setup_error(other)),
        };
        // Init builds its root filesystem meanwhile: a cgroup v1 attach waits for an RCU grace
        // period (about 10 ms), the largest single cost of opening a session.
        if let Some(cgroup) = &self.cgroup {
            cgroup.attach(init).map_err(Error::Sandbox)?;
        }
        nonblocking::write_frame(&mut socket, FrameKind::Control, &encode(&Request::Attached))
            .await
            .map_err(|e| Error::io("starting init", e))?;
        match read_reply(&mut socket).await? {
            Reply::Ready => {}
            other => return Err(setup_error(other)),
        }
        self.socket = Some(socket);
        Ok(())
    }

    fn socket(&mut self) -> Result<&mut UnixStream> {
        self.socket.as_mut().ok_or(Error::NotOpen)
    }

    /// Sends a request (and its blob) and reads the control reply, failing if init hangs.
    async fn call(
        &mut self,
        request: Request,
        blob: Option<&[u8]>,
        limit: Duration,
    ) -> Result<(Reply, Option<Vec<u8>>)> {
        let exchange = async {
            let socket = self.socket()?;
            nonblocking::write_frame(socket, FrameKind::Control, &encode(&request))
                .await
                .map_err(lost)?;
            if let Some(blob) = blob {
                nonblocking::write_frame(socket, FrameKind::Blob, blob)
                    .await
                    .map_err(lost)?;
            }
            let mut received = None;
            loop {
                let (kind, payload) = nonblocking::read_frame(socket).await.map_err(lost)?;
                match kind {
                    FrameKind::Blob => received = Some(payload),
                    FrameKind::Control => {
                        return Ok((decode::<Reply>(&payload).map_err(lost)?, received))
                    }
                    _ => return Err(lost(std::io::Error::other("unexpected output frame"))),
                }
            }
        };
        match tokio::time::timeout(limit, exchange).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(e)) => {
                self.terminate();
                Err(e)
            }
            Err(_) => {
                self.terminate();
                Err(Error::Sandbox(
                    "the sandbox's init stopped responding; the session was closed".into(),
                ))
            }
        }
    }

    /// Kills the sandbox (gracefully first: init kills everything when its socket closes).
    fn terminate(&mut self) {
        self.socket = None;
        let Some(keeper) = self.keeper.take() else {
            return;
        };
        if !wait_exit(keeper, Duration::from_millis(500)) {
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

    async fn exec(
        &mut self,
        request: ExecRequest,
        on_output: OutputCallback<'_>,
    ) -> Result<ExecOutput> {
        if request.install_network && self.own_network {
            let keeper = self.keeper.ok_or(Error::NotOpen)?;
            return install_network::exec(
                keeper,
                self.cgroup.as_ref(),
                &self.rlimits,
                request,
                on_output,
            )
            .await;
        }
        let started = Instant::now();
        let oom_before = self.cgroup.as_ref().map_or(0, Cgroup::oom_kills);
        let message = Request::Exec {
            argv: request.argv,
            env: request.env,
            cwd: request.cwd,
            has_stdin: request.stdin.is_some(),
            timeout_ms: request.timeout.as_millis().min(u64::MAX as u128) as u64,
            output_limit: request.output_limit,
        };
        let limit = request.timeout.saturating_add(INIT_GRACE);
        let exchange = async {
            let socket = self.socket()?;
            nonblocking::write_frame(socket, FrameKind::Control, &encode(&message))
                .await
                .map_err(lost)?;
            if let Some(stdin) = &request.stdin {
                nonblocking::write_frame(socket, FrameKind::Blob, stdin)
                    .await
                    .map_err(lost)?;
            }
            let mut output = ExecOutput::default();
            loop {
                let (kind, payload) = nonblocking::read_frame(socket).await.map_err(lost)?;
                let (stream, buffer) = match kind {
                    FrameKind::Stdout => (OutputStream::Stdout, &mut output.stdout),
                    FrameKind::Stderr => (OutputStream::Stderr, &mut output.stderr),
                    FrameKind::Control => match decode::<Reply>(&payload).map_err(lost)? {
                        Reply::Exited {
                            exit_code,
                            timed_out,
                            stdout_truncated,
                            stderr_truncated,
                        } => {
                            output.exit_code = exit_code;
                            output.timed_out = timed_out;
                            output.stdout_truncated = stdout_truncated;
                            output.stderr_truncated = stderr_truncated;
                            return Ok(output);
                        }
                        Reply::Failed { message } => return Err(Error::Sandbox(message)),
                        other => {
                            return Err(lost(std::io::Error::other(format!(
                                "unexpected reply {other:?}"
                            ))))
                        }
                    },
                    FrameKind::Blob => return Err(lost(std::io::Error::other("unexpected blob"))),
                };
                on_output(stream, &payload);
                buffer.extend_from_slice(&payload);
            }
        };
        let result = match tokio::time::timeout(limit, exchange).await {
            Ok(result) => result,
            Err(_) => Err(Error::Sandbox(
                "the sandbox's init stopped responding; the session was closed".into(),
            )),
        };
        match result {
            Ok(mut output) => {
                output.duration = started.elapsed();
                output.out_of_memory =
                    self.cgroup.as_ref().map_or(0, Cgroup::oom_kills) > oom_before;
                Ok(output)
            }
            Err(e) => {
                if !matches!(e, Error::NotOpen) {
                    self.terminate();
                }
                Err(e)
            }
        }
    }

    async fn put_archive(&mut self, dest_dir: &str, tar: Vec<u8>) -> Result<()> {
        let request = Request::PutArchive {
            dest_dir: dest_dir.to_string(),
        };
        match self.call(request, Some(&tar), OPEN_TIMEOUT * 6).await? {
            (Reply::Done, _) => Ok(()),
            (Reply::Failed { message }, _) => Err(Error::Sandbox(format!(
                "copying into {dest_dir}: {message}"
            ))),
            (other, _) => Err(lost(std::io::Error::other(format!(
                "unexpected reply {other:?}"
            )))),
        }
    }

    async fn get_archive(&mut self, path: &str, max_bytes: u64) -> Result<Vec<u8>> {
        let request = Request::GetArchive {
            path: path.to_string(),
            max_bytes,
        };
        match self.call(request, None, OPEN_TIMEOUT * 6).await? {
            (Reply::Done, Some(tar)) => Ok(tar),
            (Reply::Failed { message }, _) => {
                Err(Error::Sandbox(format!("copying {path} out: {message}")))
            }
            (other, _) => Err(lost(std::io::Error::other(format!(
                "unexpected reply {other:?}"
            )))),
        }
    }

    async fn remove(&mut self, path: &str) -> Result<()> {
        let request = Request::Remove {
            path: path.to_string(),
        };
        match self.call(request, None, OPEN_TIMEOUT * 6).await? {
            (Reply::Done, _) => Ok(()),
            (Reply::Failed { message }, _) => Err(Error::Sandbox(message)),
            (other, _) => Err(lost(std::io::Error::other(format!(
                "unexpected reply {other:?}"
            )))),
        }
    }

    fn isolation(&self) -> Vec<(String, String)> {
        self.isolation.clone()
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

/// The descriptor number the keeper and init use for their socket.
const SOCKET_FD: i32 = 3;

/// Leaves the forked keeper with nothing of the caller's but its socket: stdio goes to
/// /dev/null and every other descriptor (other sessions' sockets among them) is closed, so
/// that no sandbox keeps another alive or sees the caller's files.
fn keep_only_socket(socket: StdUnixStream) -> std::io::Result<StdUnixStream> {
    use std::os::fd::IntoRawFd;
    let check = |ret: libc::c_int| {
        if ret < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(ret)
        }
    };
    let raw = socket.into_raw_fd();
    // SAFETY: plain descriptor syscalls in the single-threaded child; SOCKET_FD is re-owned below.
    unsafe {
        let null = check(libc::open(c"/dev/null".as_ptr(), libc::O_RDWR))?;
        for fd in 0..3 {
            check(libc::dup2(null, fd))?;
        }
        check(libc::dup2(raw, SOCKET_FD))?; // dup2 leaves the copy without close-on-exec
        check(libc::fcntl(SOCKET_FD, libc::F_SETFD, libc::FD_CLOEXEC))?;
        check(libc::syscall(libc::SYS_close_range, SOCKET_FD + 1, u32::MAX, 0) as libc::c_int)?;
        Ok(StdUnixStream::from_raw_fd(SOCKET_FD))
    }
}

/// The keeper: unshares, waits for its maps, forks init, tells the library init's pid (for the
/// cgroup) and waits for init.
fn keep(mut socket: StdUnixStream, flags: CloneFlags, config: &InitConfig) -> i32 {
    use protocol::blocking;
    let fail = |socket: &mut StdUnixStream, step: &str, error: String| {
        let reply = Reply::SetupFailed {
            step: step.into(),
            message: error,
        };
        let _ = blocking::write_frame(socket, FrameKind::Control, &encode(&reply));
        1
    };
    if nix::unistd::geteuid().is_root() {
        // Host root's supplementary groups must not follow the code into the sandbox.
        if let Err(e) = nix::unistd::setgroups(&[]) {
            return fail(&mut socket, "dropping supplementary groups", e.to_string());
        }
    }
    if let Err(e) = nix::sched::unshare(flags) {
        return fail(&mut socket, "namespaces", unshare_advice(e));
    }
    if blocking::write_frame(&mut socket, FrameKind::Control, &encode(&Reply::Unshared)).is_err() {
        return 1;
    }
    match blocking::read_frame(&mut socket) {
        Ok(Some((FrameKind::Control, payload)))
            if matches!(decode(&payload), Ok(Request::Start)) => {}
        _ => return 1,
    }
    // SAFETY: the keeper is single-threaded.
    match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Child) => init::run(socket, config),
        Ok(ForkResult::Parent { child }) => {
            // Init writes nothing before the library answers this, so frames never interleave.
            let forked = Reply::Forked {
                pid: child.as_raw(),
            };
            let _ = blocking::write_frame(&mut socket, FrameKind::Control, &encode(&forked));
            drop(socket);
            exit_code_of(child)
        }
        Err(e) => fail(&mut socket, "forking init", e.to_string()),
    }
}

/// Waits for our child `child` and returns its exit code, `128 + signal` when a signal ended it
/// (as shells report it), or 126 when it cannot be waited for.
fn exit_code_of(child: Pid) -> i32 {
    loop {
        match waitpid(child, None) {
            Ok(nix::sys::wait::WaitStatus::Exited(_, code)) => return code,
            Ok(nix::sys::wait::WaitStatus::Signaled(_, signal, _)) => return 128 + signal as i32,
            Err(nix::errno::Errno::EINTR) | Ok(_) => continue,
            Err(_) => return 126,
        }
    }
}

fn unshare_advice(error: nix::errno::Errno) -> String {
    let mut advice = format!("creating namespaces failed: {error}");
    if let Ok(max) = std::fs::read_to_string("/proc/sys/user/max_user_namespaces") {
        if max.trim() == "0" {
            advice.push_str(
                "; user namespaces are disabled: `sysctl -w user.max_user_namespaces=15000`",
            );
        }
    }
    if std::fs::read_to_string("/proc/sys/kernel/unprivileged_userns_clone")
        .is_ok_and(|v| v.trim() == "0")
    {
        advice.push_str("; unprivileged user namespaces are off: `sysctl -w kernel.unprivileged_userns_clone=1`");
    }
    if std::fs::read_to_string("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")
        .is_ok_and(|v| v.trim() == "1")
    {
        advice.push_str("; AppArmor restricts unprivileged user namespaces: `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0` or add an AppArmor profile allowing `userns`");
    }
    advice
}

/// Maps the sandbox's uid/gid to the caller's ids (or to `nobody` when the caller is root).
fn write_id_maps(keeper: Pid) -> Result<()> {
    let (uid, gid) = if nix::unistd::geteuid().is_root() {
        (ROOT_MAPPED_ID, ROOT_MAPPED_ID)
    } else {
        (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        )
    };
    let proc_dir = format!("/proc/{keeper}");
    for (file, contents) in [
        ("setgroups", "deny".to_string()),
        ("uid_map", format!("{SANDBOX_ID} {uid} 1")),
        ("gid_map", format!("{SANDBOX_ID} {gid} 1")),
    ] {
        std::fs::write(format!("{proc_dir}/{file}"), contents)
            .map_err(|e| Error::io(format!("writing {proc_dir}/{file}"), e))?;
    }
    Ok(())
}

async fn read_reply(socket: &mut UnixStream) -> Result<Reply> {
    let (kind, payload) = nonblocking::read_frame(socket).await.map_err(lost)?;
    if kind != FrameKind::Control {
        return Err(lost(std::io::Error::other("unexpected frame during setup")));
    }
    decode(&payload).map_err(lost)
}

fn setup_error(reply: Reply) -> Error {
    match reply {
        Reply::SetupFailed { step, message } => Error::BackendUnavailable {
            backend: "native".into(),
            reason: format!("sandbox setup failed at `{step}`: {message}"),
        },
        other => lost(std::io::Error::other(format!("unexpected reply {other:?}"))),
    }
}

fn lost(error: std::io::Error) -> Error {
    Error::io(
        "talking to the sandbox's init (the sandbox died or broke the protocol)",
        error,
    )
}

/// Waits up to `limit` for `pid` (our child) to exit, reaping it. Waits on a pidfd, no polling.
fn wait_exit(pid: Pid, limit: Duration) -> bool {
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
            return false;
        }
    }
    waitpid(pid, None).is_ok()
}

fn fallback_rlimits(spec: &SandboxSpec) -> Vec<(Resource, u64)> {
    let mut limits = Vec::new();
    if let Some(bytes) = spec.limits.memory {
        limits.push((Resource::RLIMIT_DATA, bytes));
    }
    if let Some(pids) = spec.limits.pids {
        limits.push((Resource::RLIMIT_NPROC, pids));
    }
    limits
}

fn describe_isolation(spec: &SandboxSpec, own_network: bool) -> Vec<(String, String)> {
    let network = if own_network {
        "none (private loopback only)"
    } else {
        "host (shared knowingly)"
    };
    let namespaces = if own_network {
        "user, pid, mount, network, ipc, uts, cgroup"
    } else {
        "user, pid, mount, ipc, uts, cgroup"
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
        ("user".into(), format!("uid {SANDBOX_ID} in the sandbox, no capabilities, no_new_privs")),
        ("seccomp".into(), format!("{} syscalls refused, namespace-creating clone refused", seccomp::Filters::denied_names().count())),
    ]
}
