//! Running one command for the library: spawning it with fresh pipes, feeding its stdin,
//! forwarding its output within the limit, reaping, and killing whatever it leaves behind.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use llm_sandbox_init::protocol::{encode, write_frame, FrameKind, Reply, OUTPUT_CHUNK};
use nix::sys::signal::{self, SigSet, SigmaskHow};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// One command to run.
pub struct Command<'a> {
    pub argv: &'a [String],
    pub env: &'a [(String, String)],
    pub cwd: &'a str,
    pub stdin: Vec<u8>,
    pub timeout: Duration,
    /// Bytes forwarded of each of stdout and stderr.
    pub output_limit: u64,
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

/// Runs `command`, sending its output and then [`Reply::Exited`] (or [`Reply::Failed`]) on
/// `socket`. Fails only when the socket does (the library went away).
pub fn run(socket: &mut UnixStream, signals: &mut SignalFd, command: Command) -> io::Result<()> {
    let (child, stdin_fd, stdout, stderr) = match spawn(command.argv, command.env, command.cwd) {
        Ok(spawned) => spawned,
        Err(SpawnError::NotFound(message)) => {
            write_frame(&mut *socket, FrameKind::Stderr, message.as_bytes())?;
            return reply(socket, &exited(127, false, false, false));
        }
        Err(SpawnError::Io(e)) => {
            let message = format!("starting {:?}: {e}", command.argv);
            return reply(socket, &Reply::Failed { message });
        }
    };
    let mut run = Run {
        child,
        status: None,
        // Closing the write end at once gives the program end-of-file.
        stdin: (!command.stdin.is_empty()).then_some((stdin_fd, command.stdin, 0)),
        stdout: Some(stdout),
        stderr: Some(stderr),
        kept: [0, 0],
        limit: command.output_limit,
        deadline: far_or(command.timeout),
        killed: false,
        timed_out: false,
    };
    drive(socket, signals, &mut run)?;
    let done = exited(
        run.status.unwrap_or(137),
        run.timed_out,
        run.kept[0] > run.limit,
        run.kept[1] > run.limit,
    );
    reply(socket, &done)
}

fn exited(exit_code: i32, timed_out: bool, stdout: bool, stderr: bool) -> Reply {
    Reply::Exited {
        exit_code,
        timed_out,
        stdout_truncated: stdout,
        stderr_truncated: stderr,
    }
}

fn reply(socket: &mut UnixStream, reply: &Reply) -> io::Result<()> {
    write_frame(socket, FrameKind::Control, &encode(reply))
}

/// Moves data and reaps children until the run's processes are all gone.
fn drive(socket: &mut UnixStream, signals: &mut SignalFd, run: &mut Run) -> io::Result<()> {
    loop {
        if run.status.is_some() && run.stdout.is_none() && run.stderr.is_none() {
            reap_all(); // everything was killed; collect the last zombies
            return Ok(());
        }
        let mut fds = vec![
            poll_fd(signals.as_raw_fd(), libc::POLLIN),
            poll_fd(socket.as_raw_fd(), libc::POLLIN),
        ];
        for fd in [run.stdout.as_ref(), run.stderr.as_ref()].iter().flatten() {
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
            while signals.read_signal().ok().flatten().is_some() {}
            reap(run);
        }
        for (index, kind) in [FrameKind::Stdout, FrameKind::Stderr]
            .into_iter()
            .enumerate()
        {
            pump(socket, run, index, kind)?;
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
fn pump(socket: &mut UnixStream, run: &mut Run, index: usize, kind: FrameKind) -> io::Result<()> {
    let slot = if index == 0 {
        &mut run.stdout
    } else {
        &mut run.stderr
    };
    let Some(fd) = slot.as_ref() else {
        return Ok(());
    };
    let mut buffer = [0u8; OUTPUT_CHUNK];
    // SAFETY: reading into a live stack buffer from an fd we own.
    let n = unsafe { libc::read(fd.as_raw_fd(), buffer.as_mut_ptr().cast(), buffer.len()) };
    if n == 0 {
        *slot = None;
        return Ok(());
    }
    if n < 0 {
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::WouldBlock && error.kind() != io::ErrorKind::Interrupted {
            *slot = None;
        }
        return Ok(());
    }
    let n = n as u64;
    let room = run.limit.saturating_sub(run.kept[index]);
    run.kept[index] = run.kept[index].saturating_add(n);
    if room > 0 {
        write_frame(socket, kind, &buffer[..n.min(room) as usize])?;
    }
    Ok(())
}

/// Reaps every exited child; when the run's main process is among them, the run is over.
fn reap(run: &mut Run) {
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

/// Reaps every child until none is left.
pub fn reap_all() {
    while let Ok(status) = waitpid(None, None) {
        if status == WaitStatus::StillAlive {
            break;
        }
    }
}

/// Kills every process of the sandbox but init, and reaps them.
pub fn kill_everything() {
    // SAFETY: kill(-1) from pid 1 signals every other process in this pid namespace.
    unsafe { libc::kill(-1, libc::SIGKILL) };
    reap_all();
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

/// Finds `program` on the PATH of `env` (not init's own environment): the first executable
/// regular file of that name.
fn resolve(program: &str, env: &[(String, String)]) -> Option<String> {
    if program.contains('/') {
        return Some(program.to_string());
    }
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_str())
        .unwrap_or("/usr/bin:/bin");
    path.split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|candidate| {
            candidate.is_file()
                && nix::unistd::access(candidate.as_path(), nix::unistd::AccessFlags::X_OK).is_ok()
        })
        .map(|found| found.display().to_string())
}

/// Forks and execs the command with fresh pipes; returns the child and the parent's pipe ends.
fn spawn(
    argv: &[String],
    env: &[(String, String)],
    cwd: &str,
) -> Result<(Pid, OwnedFd, OwnedFd, OwnedFd), SpawnError> {
    let cstring = |s: &str| {
        std::ffi::CString::new(s)
            .map_err(|_| SpawnError::Io(io::Error::other("NUL byte in the command")))
    };
    let program = argv
        .first()
        .ok_or_else(|| SpawnError::Io(io::Error::other("empty command")))?;
    let path = resolve(program, env).ok_or_else(|| {
        SpawnError::NotFound(format!("llm-sandbox: {program}: command not found\n"))
    })?;
    let path = cstring(&path)?;
    let args = argv
        .iter()
        .map(|a| cstring(a))
        .collect::<Result<Vec<_>, _>>()?;
    let vars = env
        .iter()
        .map(|(k, v)| cstring(&format!("{k}={v}")))
        .collect::<Result<Vec<_>, _>>()?;
    let cwd_c = cstring(cwd)?;
    let failure = format!("llm-sandbox: cannot run {program} in {cwd}\n");

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
                let _ = nix::unistd::execve(&path, &args, &vars);
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
