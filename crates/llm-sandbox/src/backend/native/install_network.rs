//! Runs a package installer inside the sandbox but on the host's network.
//!
//! User code never gets this path. The installer joins the sandbox's user, pid and mount
//! namespaces (so it sees and writes only the sandbox's files, runs as the sandbox user, is
//! killed with the sandbox, and counts against its cgroup) while staying in the host's network
//! namespace. Like init's children it has no capabilities, no_new_privs and the seccomp filter.
//!
//! Process shape: the library forks a *joiner* (single-threaded, so it may enter a user
//! namespace) that enters the namespaces and forks the installer, which lands in the sandbox's
//! pid namespace. The library kills the joiner's process group on timeout.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Instant;

use nix::sched::CloneFlags;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{ForkResult, Gid, Pid, Uid};
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;

use super::cgroup::Cgroup;
use super::exit_code_of;
use super::init::{drop_capabilities, PrepareError, Prepared};
use super::rootfs::SANDBOX_ID;
use super::seccomp::Filters;
use crate::backend::{ExecOutput, ExecRequest, OutputCallback, OutputStream};
use crate::error::{Error, Result};

/// Runs `request` with the host's network in the sandbox kept alive by `keeper`.
pub async fn exec(
    keeper: Pid,
    cgroup: Option<&Cgroup>,
    rlimits: &[(nix::sys::resource::Resource, u64)],
    request: ExecRequest,
    on_output: OutputCallback<'_>,
) -> Result<ExecOutput> {
    let started = Instant::now();
    let filters = Filters::compile().map_err(Error::Sandbox)?;
    let pipe = || {
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| Error::Sandbox(format!("pipe: {e}")))
    };
    let (stdout_r, stdout_w) = pipe()?;
    let (stderr_r, stderr_w) = pipe()?;
    let cgroup_procs: Vec<String> = cgroup.map(Cgroup::procs_files).unwrap_or_default();

    // SAFETY: as for the keeper: glibc's fork keeps malloc usable; the child is single-threaded,
    // takes no locks of other threads and ends in _exit.
    let joiner = match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Child) => {
            let code = join_and_run(
                keeper,
                stdout_w,
                stderr_w,
                &request,
                &cgroup_procs,
                rlimits,
                &filters,
            );
            // SAFETY: leaving the forked child without running the parent's destructors.
            unsafe { libc::_exit(code) }
        }
        Ok(ForkResult::Parent { child }) => child,
        Err(e) => return Err(Error::Sandbox(format!("fork failed: {e}"))),
    };
    drop((stdout_w, stderr_w));

    let mut output = ExecOutput::default();
    let collected = tokio::time::timeout(
        request.timeout,
        collect(
            stdout_r,
            stderr_r,
            request.output_limit,
            &mut output,
            on_output,
        ),
    )
    .await;
    if collected.is_err() {
        output.timed_out = true;
        let _ = kill(Pid::from_raw(-joiner.as_raw()), Signal::SIGKILL);
    }
    let status = tokio::task::spawn_blocking(move || waitpid(joiner, None))
        .await
        .map_err(|e| Error::Sandbox(format!("waiting for the installer: {e}")))?;
    output.exit_code = match status {
        Ok(WaitStatus::Exited(_, code)) => code,
        Ok(WaitStatus::Signaled(_, signal, _)) => 128 + signal as i32,
        other => {
            return Err(Error::Sandbox(format!(
                "the installer ended oddly: {other:?}"
            )))
        }
    };
    output.duration = started.elapsed();
    Ok(output)
}

/// Reads both pipes to their end, keeping up to `limit` bytes of each.
async fn collect(
    stdout: OwnedFd,
    stderr: OwnedFd,
    limit: u64,
    output: &mut ExecOutput,
    on_output: OutputCallback<'_>,
) -> Result<()> {
    let open = |fd: OwnedFd| {
        pipe::Receiver::from_owned_fd(fd)
            .map_err(|e| Error::io("reading the installer's output", e))
    };
    let mut streams = [
        (open(stdout)?, OutputStream::Stdout),
        (open(stderr)?, OutputStream::Stderr),
    ];
    let mut open_streams = [true, true];
    let mut buffers = [[0u8; 16 * 1024]; 2];
    while open_streams.iter().any(|o| *o) {
        let [(out, _), (err, _)] = &mut streams;
        let [out_buf, err_buf] = &mut buffers;
        let (index, read) = tokio::select! {
            read = out.read(out_buf), if open_streams[0] => (0, read),
            read = err.read(err_buf), if open_streams[1] => (1, read),
        };
        let n = read.map_err(|e| Error::io("reading the installer's output", e))?;
        if n == 0 {
            open_streams[index] = false;
            continue;
        }
        let chunk = &buffers[index][..n];
        on_output(streams[index].1, chunk);
        let (kept, truncated) = if index == 0 {
            (&mut output.stdout, &mut output.stdout_truncated)
        } else {
            (&mut output.stderr, &mut output.stderr_truncated)
        };
        let room = (limit as usize).saturating_sub(kept.len());
        kept.extend_from_slice(&chunk[..n.min(room)]);
        *truncated |= n > room;
    }
    Ok(())
}

/// Writes a one-line reason to the installer's stderr (fd 2) and returns the exit code 126.
fn fail(what: &str, error: impl std::fmt::Display) -> i32 {
    let message = format!("llm-sandbox: preparing the installer ({what}): {error}\n");
    // SAFETY: writing a live buffer to fd 2.
    unsafe { libc::write(2, message.as_ptr().cast(), message.len()) };
    126
}

/// In the joiner: takes the output pipes as stdio, drops every other descriptor of the library,
/// enters the sandbox's namespaces and runs the installer there; returns its exit code.
fn join_and_run(
    keeper: Pid,
    stdout: OwnedFd,
    stderr: OwnedFd,
    request: &ExecRequest,
    cgroup_procs: &[String],
    rlimits: &[(nix::sys::resource::Resource, u64)],
    filters: &Filters,
) -> i32 {
    // SAFETY: plain descriptor syscalls in the single-threaded joiner.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY);
        if null < 0
            || libc::dup2(null, 0) < 0
            || libc::dup2(stdout.as_raw_fd(), 1) < 0
            || libc::dup2(stderr.as_raw_fd(), 2) < 0
        {
            return 126;
        }
        libc::syscall(libc::SYS_close_range, 3, u32::MAX, 0);
    }
    std::mem::forget((stdout, stderr)); // already closed by close_range
                                        // The installer is killed through this process group.
    if let Err(e) = nix::unistd::setsid() {
        return fail("session", e);
    }
    let pid = std::process::id().to_string();
    for procs in cgroup_procs {
        if let Err(e) = std::fs::write(procs, &pid) {
            return fail("cgroup", e);
        }
    }
    let mut namespaces = Vec::new();
    for (name, flag) in [
        ("user", CloneFlags::CLONE_NEWUSER),
        ("pid_for_children", CloneFlags::CLONE_NEWPID),
        ("mnt", CloneFlags::CLONE_NEWNS),
    ] {
        match File::open(format!("/proc/{keeper}/ns/{name}")) {
            Ok(file) => namespaces.push((file, flag, name)),
            Err(e) => return fail(name, e),
        }
    }
    if nix::unistd::geteuid().is_root() {
        if let Err(e) = nix::unistd::setgroups(&[]) {
            return fail("groups", e);
        }
    }
    for (file, flag, name) in &namespaces {
        if let Err(e) = nix::sched::setns(file.as_fd(), *flag) {
            return fail(name, e);
        }
    }
    drop(namespaces);
    // SAFETY: the joiner is single-threaded.
    match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Child) => fail("exec", exec_installer(request, rlimits, filters)),
        Ok(ForkResult::Parent { child }) => exit_code_of(child),
        Err(e) => fail("fork", e),
    }
}

/// In the sandbox's pid namespace: become the sandbox user, drop everything, exec. Returns
/// only on failure, with the reason.
fn exec_installer(
    request: &ExecRequest,
    rlimits: &[(nix::sys::resource::Resource, u64)],
    filters: &Filters,
) -> String {
    let id = SANDBOX_ID;
    let steps = || -> std::result::Result<std::convert::Infallible, String> {
        nix::unistd::setresgid(Gid::from_raw(id), Gid::from_raw(id), Gid::from_raw(id))
            .map_err(|e| format!("gid: {e}"))?;
        nix::unistd::setresuid(Uid::from_raw(id), Uid::from_raw(id), Uid::from_raw(id))
            .map_err(|e| format!("uid: {e}"))?;
        for (resource, limit) in rlimits
            .iter()
            .copied()
            .chain([(nix::sys::resource::Resource::RLIMIT_CORE, 0)])
        {
            nix::sys::resource::setrlimit(resource, limit, limit)
                .map_err(|e| format!("rlimit: {e}"))?;
        }
        std::env::set_current_dir(&request.cwd)
            .map_err(|e| format!("entering {}: {e}", request.cwd))?;
        drop_capabilities().map_err(|e| format!("capabilities: {e}"))?;
        nix::sys::prctl::set_no_new_privs().map_err(|e| format!("no_new_privs: {e}"))?;
        filters.install()?;
        let command = Prepared::new(&request.argv, &request.env).map_err(|e| match e {
            PrepareError::NotFound(program) => format!("{program}: command not found"),
            PrepareError::Invalid(message) => message,
        })?;
        Err(format!("exec {}: {}", request.argv[0], command.exec()))
    };
    match steps() {
        Ok(never) => match never {},
        Err(error) => error,
    }
}
