//! The sandbox's init: pid 1 of the new pid namespace.
//!
//! It finishes the isolation as a sequence of named steps (identity, namespaces, root
//! filesystem, rlimits, capabilities, no_new_privs, seccomp), then serves requests from the
//! library: run a command, unpack or pack an archive. It reaps every zombie, and when a run
//! ends (or times out) it kills every process the run left behind. When the library goes away
//! (its end of the socket closes), init kills everything and exits, taking the namespace with it.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{self, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{Gid, Pid, Uid};

use super::protocol::{blocking, decode, encode, FrameKind, Reply, Request};
use super::rootfs::{self, RootfsPlan, SANDBOX_ID};
use super::seccomp::Filters;
use crate::archive;
use crate::language::find_program;

/// Everything init needs, prepared by the library before forking.
#[derive(Debug, Clone)]
pub struct InitConfig {
    /// The root filesystem to build.
    pub rootfs: RootfsPlan,
    /// Whether init is in its own network namespace (then loopback is brought up).
    pub own_network: bool,
    /// rlimits applied to everything in the sandbox (the fallback when cgroups are unavailable).
    pub rlimits: Vec<(nix::sys::resource::Resource, u64)>,
}

/// Runs init; returns the exit code. Never returns while the library holds the socket.
pub fn run(mut socket: UnixStream, config: &InitConfig) -> i32 {
    scrub_inherited_command_line();
    // The library puts init in the session's cgroup while init builds the sandbox; it writes
    // nothing before the library says so (the keeper's last frame may still be on its way).
    let prepared = prepare(config);
    let attached = matches!(
        blocking::read_frame(&mut socket),
        Ok(Some((FrameKind::Control, payload))) if matches!(decode(&payload), Ok(Request::Attached))
    );
    if !attached {
        return 1;
    }
    let signals = match prepared.and_then(|signals| confine().map(|()| signals)) {
        Ok(signals) => signals,
        Err((step, message)) => {
            let reply = Reply::SetupFailed {
                step: step.to_string(),
                message,
            };
            let _ = blocking::write_frame(&mut socket, FrameKind::Control, &encode(&reply));
            return 1;
        }
    };
    if blocking::write_frame(&mut socket, FrameKind::Control, &encode(&Reply::Ready)).is_err() {
        return 1;
    }
    let mut init = Init { socket, signals };
    let code = match init.serve() {
        Ok(()) => 0,
        Err(_) => 1,
    };
    init.kill_everything();
    code
}

/// Init is forked from the library's process, not exec'd: without this, the code would read the
/// caller's command line in `/proc/1/cmdline` (and its name in `/proc/1/comm`). Overwrites the
/// inherited argument and environment strings in place and renames the process.
fn scrub_inherited_command_line() {
    let _ = nix::sys::prctl::set_name(c"sandbox-init");
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return;
    };
    // Fields after the command name start at field 3; arg_start..env_end are fields 48 to 51.
    let fields: Vec<usize> = stat
        .rsplit_once(')')
        .map(|(_, rest)| {
            rest.split_whitespace()
                .map(|f| f.parse().unwrap_or(0))
                .collect()
        })
        .unwrap_or_default();
    let Some(&[arg_start, arg_end, env_start, env_end]) = fields.get(45..49) else {
        return;
    };
    for (start, end) in [(arg_start, arg_end), (env_start, env_end)] {
        if start != 0 && end > start {
            // SAFETY: the kernel reports these ranges of our own initial stack, which hold the
            // argument and environment strings, writable and mapped for the process's life;
            // init never reads its arguments, and environment entries only become empty.
            unsafe { std::ptr::write_bytes(start as *mut u8, 0, end - start) };
        }
    }
    let name = b"llm-sandbox-init";
    if arg_start != 0 && arg_end - arg_start > name.len() {
        // SAFETY: within the range zeroed above, which stays NUL-terminated.
        unsafe { std::ptr::copy_nonoverlapping(name.as_ptr(), arg_start as *mut u8, name.len()) };
    }
}

type StepError = (&'static str, String);

fn step<T, E: std::fmt::Display>(name: &'static str, result: Result<T, E>) -> Result<T, StepError> {
    result.map_err(|e| (name, e.to_string()))
}

/// The isolation steps that need no cgroup, in order. Returns the signalfd that reports
/// SIGCHLD.
fn prepare(config: &InitConfig) -> Result<SignalFd, StepError> {
    // SAFETY: prctl with constant arguments; only affects this process.
    step(
        "parent death signal",
        nix::sys::prctl::set_pdeathsig(Signal::SIGKILL),
    )?;
    let id = SANDBOX_ID;
    step(
        "identity",
        nix::unistd::setresgid(Gid::from_raw(id), Gid::from_raw(id), Gid::from_raw(id)),
    )?;
    step(
        "identity",
        nix::unistd::setresuid(Uid::from_raw(id), Uid::from_raw(id), Uid::from_raw(id)),
    )?;
    // Changing ids may clear the effective set; the permitted set still holds what setup needs.
    let permitted = step("capabilities", caps::read(None, caps::CapSet::Permitted))?;
    step(
        "capabilities",
        caps::set(None, caps::CapSet::Effective, &permitted),
    )?;
    step("hostname", nix::unistd::sethostname("sandbox"))?;
    if config.own_network {
        step("loopback", bring_up_loopback())?;
    }
    step("root filesystem", rootfs::build(&config.rootfs))?;
    for (resource, limit) in config
        .rlimits
        .iter()
        .copied()
        .chain([(nix::sys::resource::Resource::RLIMIT_CORE, 0)])
    {
        step(
            "rlimits",
            nix::sys::resource::setrlimit(resource, limit, limit),
        )?;
    }

    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    step("signals", mask.thread_block())?;
    // SAFETY: ignoring SIGPIPE is async-signal-safe; children reset it before exec.
    step("signals", unsafe {
        signal::signal(Signal::SIGPIPE, signal::SigHandler::SigIgn)
    })?;
    let signals = step(
        "signals",
        SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK),
    )?;

    Ok(signals)
}

/// The last isolation steps, once init is in its cgroup: a cgroup namespace rooted there, then
/// no capabilities, no_new_privs and seccomp.
fn confine() -> Result<(), StepError> {
    step(
        "cgroup namespace",
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP),
    )?;
    step("capabilities", drop_capabilities())?;
    step("no_new_privs", nix::sys::prctl::set_no_new_privs())?;
    let filters = step("seccomp", Filters::compile())?;
    step("seccomp", filters.install())
}

/// Drops every capability, from every set, for good.
pub(super) fn drop_capabilities() -> Result<(), caps::errors::CapsError> {
    for cap in caps::all() {
        caps::drop(None, caps::CapSet::Bounding, cap)?;
    }
    for set in [
        caps::CapSet::Ambient,
        caps::CapSet::Inheritable,
        caps::CapSet::Effective,
        caps::CapSet::Permitted,
    ] {
        caps::clear(None, set)?;
    }
    Ok(())
}

/// Sets `lo` up in the new network namespace (it starts down).
fn bring_up_loopback() -> io::Result<()> {
    // SAFETY: plain socket/ioctl calls on a zeroed ifreq we own; the fd is wrapped at once.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let socket = OwnedFd::from_raw_fd(fd);
        let mut request: libc::ifreq = std::mem::zeroed();
        for (dst, src) in request.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as libc::c_char;
        }
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS, &mut request) < 0 {
            return Err(io::Error::last_os_error());
        }
        request.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS, &request) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

struct Init {
    socket: UnixStream,
    signals: SignalFd,
}

/// The state of one running command.
struct Run {
    child: Pid,
    status: Option<i32>,
    stdin: Option<(OwnedFd, Vec<u8>, usize)>,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    kept: [u64; 2],
    limit: u64,
    deadline: Instant,
    killed: bool,
    timed_out: bool,
}

impl Init {
    fn serve(&mut self) -> io::Result<()> {
        while let Some((kind, payload)) = blocking::read_frame(&mut self.socket)? {
            if kind != FrameKind::Control {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "expected a request",
                ));
            }
            match decode::<Request>(&payload)? {
                Request::Exec {
                    argv,
                    env,
                    cwd,
                    has_stdin,
                    timeout_ms,
                    output_limit,
                } => {
                    let stdin = if has_stdin {
                        self.read_blob()?
                    } else {
                        Vec::new()
                    };
                    let timeout = Duration::from_millis(timeout_ms);
                    self.exec(&argv, &env, &cwd, stdin, timeout, output_limit)?;
                }
                Request::PutArchive { dest_dir } => {
                    let tar = self.read_blob()?;
                    let reply = match archive::unpack_into(&tar, Path::new(&dest_dir)) {
                        Ok(()) => Reply::Done,
                        Err(e) => Reply::Failed {
                            message: e.to_string(),
                        },
                    };
                    self.reply(&reply)?;
                }
                Request::Start | Request::Attached => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "unexpected handshake request",
                    ))
                }
                Request::Remove { path } => {
                    let reply = match remove_tree(Path::new(&path)) {
                        Ok(()) => Reply::Done,
                        Err(e) => Reply::Failed {
                            message: format!("removing {path}: {e}"),
                        },
                    };
                    self.reply(&reply)?;
                }
                Request::GetArchive { path, max_bytes } => {
                    match archive::pack(Path::new(&path), max_bytes) {
                        Ok(tar) => {
                            blocking::write_frame(&mut self.socket, FrameKind::Blob, &tar)?;
                            self.reply(&Reply::Done)?;
                        }
                        Err(e) => self.reply(&Reply::Failed {
                            message: e.to_string(),
                        })?,
                    }
                }
            }
        }
        Ok(())
    }

    fn read_blob(&mut self) -> io::Result<Vec<u8>> {
        match blocking::read_frame(&mut self.socket)? {
            Some((FrameKind::Blob, payload)) => Ok(payload),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "expected a blob",
            )),
        }
    }

    fn reply(&mut self, reply: &Reply) -> io::Result<()> {
        blocking::write_frame(&mut self.socket, FrameKind::Control, &encode(reply))
    }

    fn exec(
        &mut self,
        argv: &[String],
        env: &[(String, String)],
        cwd: &str,
        stdin: Vec<u8>,
        timeout: Duration,
        limit: u64,
    ) -> io::Result<()> {
        let mut run = match spawn(argv, env, cwd) {
            Ok((child, stdin_fd, stdout, stderr)) => Run {
                child,
                status: None,
                stdin: Some((stdin_fd, stdin, 0)),
                stdout: Some(stdout),
                stderr: Some(stderr),
                kept: [0, 0],
                limit,
                deadline: far_or(timeout),
                killed: false,
                timed_out: false,
            },
            Err(SpawnError::NotFound(message)) => {
                blocking::write_frame(&mut self.socket, FrameKind::Stderr, message.as_bytes())?;
                let exited = Reply::Exited {
                    exit_code: 127,
                    timed_out: false,
                    stdout_truncated: false,
                    stderr_truncated: false,
                };
                return self.reply(&exited);
            }
            Err(SpawnError::Io(e)) => {
                return self.reply(&Reply::Failed {
                    message: format!("starting {argv:?}: {e}"),
                })
            }
        };
        if run
            .stdin
            .as_ref()
            .is_some_and(|(_, data, _)| data.is_empty())
        {
            run.stdin = None; // closing the write end gives the program end-of-file at once
        }
        self.drive(&mut run)?;
        let exited = Reply::Exited {
            exit_code: run.status.unwrap_or(137),
            timed_out: run.timed_out,
            stdout_truncated: run.kept[0] > run.limit,
            stderr_truncated: run.kept[1] > run.limit,
        };
        self.reply(&exited)
    }

    /// Moves data and reaps children until the run's processes are all gone.
    fn drive(&mut self, run: &mut Run) -> io::Result<()> {
        loop {
            if run.status.is_some() && run.stdout.is_none() && run.stderr.is_none() {
                self.reap_all(); // everything was killed; collect the last zombies
                return Ok(());
            }
            let mut fds = vec![
                poll_fd(self.signals.as_raw_fd(), libc::POLLIN),
                poll_fd(self.socket.as_raw_fd(), libc::POLLIN),
            ];
            let streams = [run.stdout.as_ref(), run.stderr.as_ref()];
            for fd in streams.iter().flatten() {
                fds.push(poll_fd(fd.as_raw_fd(), libc::POLLIN));
            }
            if let Some((fd, _, _)) = &run.stdin {
                fds.push(poll_fd(fd.as_raw_fd(), libc::POLLOUT));
            }
            let wait_ms = if run.killed {
                -1
            } else {
                let left = run.deadline.saturating_duration_since(Instant::now());
                left.as_millis().min(i32::MAX as u128) as i32
            };
            // SAFETY: `fds` is a valid array of pollfd for the duration of the call.
            let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, wait_ms) };
            if ready < 0 {
                let error = io::Error::last_os_error();
                if error.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(error);
            }
            if ready == 0 && !run.killed {
                run.timed_out = true;
                kill_all_but_init(run);
                continue;
            }
            if fds[1].revents != 0 {
                // The library closed its end (or broke the protocol): stop everything.
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "library went away",
                ));
            }
            if fds[0].revents != 0 {
                while self.signals.read_signal().ok().flatten().is_some() {}
                self.reap(run);
            }
            for (index, stream) in [FrameKind::Stdout, FrameKind::Stderr]
                .into_iter()
                .enumerate()
            {
                self.pump(run, index, stream)?;
            }
            if let Some((fd, data, written)) = &mut run.stdin {
                // SAFETY: writing from a live buffer to an fd we own.
                let n = unsafe {
                    libc::write(
                        fd.as_raw_fd(),
                        data[*written..].as_ptr().cast(),
                        data.len() - *written,
                    )
                };
                if n > 0 {
                    *written += n as usize;
                }
                let would_block =
                    n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock;
                if *written == data.len() || (n < 0 && !would_block) {
                    run.stdin = None;
                }
            }
        }
    }

    /// Reads what is available on one output stream and forwards what fits the limit.
    fn pump(&mut self, run: &mut Run, index: usize, kind: FrameKind) -> io::Result<()> {
        let slot = if index == 0 {
            &mut run.stdout
        } else {
            &mut run.stderr
        };
        let Some(fd) = slot.as_ref() else {
            return Ok(());
        };
        let mut buffer = [0u8; 64 * 1024];
        // SAFETY: reading into a live stack buffer from an fd we own.
        let n = unsafe { libc::read(fd.as_raw_fd(), buffer.as_mut_ptr().cast(), buffer.len()) };
        if n == 0 {
            *slot = None;
            return Ok(());
        }
        if n < 0 {
            let error = io::Error::last_os_error();
            if error.kind() != io::ErrorKind::WouldBlock
                && error.kind() != io::ErrorKind::Interrupted
            {
                *slot = None;
            }
            return Ok(());
        }
        let n = n as u64;
        let room = run.limit.saturating_sub(run.kept[index]);
        run.kept[index] = run.kept[index].saturating_add(n);
        if room > 0 {
            let forward = &buffer[..n.min(room) as usize];
            blocking::write_frame(&mut self.socket, kind, forward)?;
        }
        Ok(())
    }

    /// Reaps every exited child; when the run's main process is among them, the run is over.
    fn reap(&mut self, run: &mut Run) {
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid == run.child => run.status = Some(code),
                Ok(WaitStatus::Signaled(pid, signal, _)) if pid == run.child => {
                    run.status = Some(128 + signal as i32)
                }
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => {}
            }
            if run.status.is_some() && !run.killed {
                // A run's processes do not outlive it.
                kill_all_but_init(run);
            }
        }
    }

    fn reap_all(&mut self) {
        while let Ok(status) = waitpid(None, None) {
            if status == WaitStatus::StillAlive {
                break;
            }
        }
    }

    fn kill_everything(&mut self) {
        // SAFETY: kill(-1) from pid 1 signals every other process in this pid namespace.
        unsafe { libc::kill(-1, libc::SIGKILL) };
        self.reap_all();
    }
}

/// The instant `timeout` from now, or a century away when that is beyond what `Instant` holds.
fn far_or(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

fn kill_all_but_init(run: &mut Run) {
    // SAFETY: kill(-1) from pid 1 signals every other process in this pid namespace.
    unsafe { libc::kill(-1, libc::SIGKILL) };
    run.killed = true;
}

fn poll_fd(fd: RawFd, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

enum SpawnError {
    NotFound(String),
    Io(io::Error),
}

impl From<nix::Error> for SpawnError {
    fn from(e: nix::Error) -> Self {
        SpawnError::Io(e.into())
    }
}

/// Finds `program` on the PATH of `env` (not init's own environment).
fn resolve(program: &str, env: &[(String, String)]) -> Option<String> {
    if program.contains('/') {
        return Some(program.to_string());
    }
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_str())
        .unwrap_or("/usr/bin:/bin");
    let dirs: Vec<&str> = path.split(':').collect();
    find_program(&dirs, program).map(|found| found.display().to_string())
}

/// Removes `path` (a file, a link or a directory tree, never following links); missing is fine.
fn remove_tree(path: &Path) -> io::Result<()> {
    let removed = match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) => Err(e),
    };
    match removed {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Why a command cannot be prepared.
pub(super) enum PrepareError {
    /// The program is not on the PATH.
    NotFound(String),
    /// Empty argv or a NUL byte.
    Invalid(String),
}

/// A command ready for `execve`: its resolved path, argv and environment as C strings.
pub(super) struct Prepared {
    path: std::ffi::CString,
    args: Vec<std::ffi::CString>,
    vars: Vec<std::ffi::CString>,
}

impl Prepared {
    /// Resolves `argv[0]` on the PATH of `env` and converts everything for `execve`.
    pub(super) fn new(argv: &[String], env: &[(String, String)]) -> Result<Prepared, PrepareError> {
        let cstring = |s: &str| {
            std::ffi::CString::new(s)
                .map_err(|_| PrepareError::Invalid("NUL byte in the command".into()))
        };
        let program = argv
            .first()
            .ok_or_else(|| PrepareError::Invalid("empty command".into()))?;
        let path = resolve(program, env).ok_or_else(|| PrepareError::NotFound(program.clone()))?;
        Ok(Prepared {
            path: cstring(&path)?,
            args: argv.iter().map(|a| cstring(a)).collect::<Result<_, _>>()?,
            vars: env
                .iter()
                .map(|(k, v)| cstring(&format!("{k}={v}")))
                .collect::<Result<_, _>>()?,
        })
    }

    /// Replaces this process with the command; returns only on failure.
    pub(super) fn exec(&self) -> nix::Error {
        match nix::unistd::execve(&self.path, &self.args, &self.vars) {
            Ok(never) => match never {},
            Err(e) => e,
        }
    }
}

/// Forks and execs the command with fresh pipes; returns the child and the parent's pipe ends.
fn spawn(
    argv: &[String],
    env: &[(String, String)],
    cwd: &str,
) -> Result<(Pid, OwnedFd, OwnedFd, OwnedFd), SpawnError> {
    let command = Prepared::new(argv, env).map_err(|e| match e {
        PrepareError::NotFound(program) => {
            SpawnError::NotFound(format!("llm-sandbox: {program}: command not found\n"))
        }
        PrepareError::Invalid(message) => SpawnError::Io(io::Error::other(message)),
    })?;
    let cwd_c = std::ffi::CString::new(cwd)
        .map_err(|_| SpawnError::Io(io::Error::other("NUL byte in cwd")))?;
    let failure = format!("llm-sandbox: cannot run {} in {cwd}\n", argv[0]);

    let pipe = || nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC);
    let (stdin_r, stdin_w) = pipe()?;
    let (stdout_r, stdout_w) = pipe()?;
    let (stderr_r, stderr_w) = pipe()?;

    // SAFETY: init is single-threaded; the child only makes async-signal-safe calls before exec.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Child => unsafe {
            let empty = SigSet::empty();
            let _ = signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&empty), None);
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            libc::dup2(stdin_r.as_raw_fd(), 0);
            libc::dup2(stdout_w.as_raw_fd(), 1);
            libc::dup2(stderr_w.as_raw_fd(), 2);
            if libc::chdir(cwd_c.as_ptr()) == 0 {
                let _ = command.exec();
            }
            libc::write(2, failure.as_ptr().cast(), failure.len());
            libc::_exit(126)
        },
        nix::unistd::ForkResult::Parent { child } => {
            for fd in [&stdin_w, &stdout_r, &stderr_r] {
                nix::fcntl::fcntl(
                    fd.as_raw_fd(),
                    nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
                )?;
            }
            Ok((child, stdin_w, stdout_r, stderr_r))
        }
    }
}
