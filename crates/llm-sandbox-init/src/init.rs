//! The sandbox's init: pid 1 of the new pid namespace.
//!
//! It finishes the isolation as a sequence of named steps, then serves requests from the
//! library: run a command, unpack or pack an archive, remove a path, open the installers'
//! proxy listener. It reaps every zombie, and when a run ends (or times out) it kills every
//! process the run left behind. When the library goes away (its end of the socket closes),
//! init kills everything and exits, taking the namespace with it.

use std::io::{self, IoSlice};
use std::net::{Ipv4Addr, TcpListener};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use llm_sandbox_init::config::InitConfig;
use llm_sandbox_init::protocol::{decode, encode, read_frame, write_frame};
use llm_sandbox_init::protocol::{FrameKind, FrameLimits, Reply, Request};
use llm_sandbox_init::syscalls::{RULES, UNCOUNTED_MEMORY_RULES};
use nix::sys::signal::{self, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

use crate::confine::{self, step, StepError};
use crate::seccomp::Filters;
use crate::{files, rootfs, runner};

/// Runs init; returns the exit code. Never returns while the library holds the socket.
pub fn run(mut socket: UnixStream, config: &InitConfig) -> i32 {
    // The library puts init in the session's cgroup while init builds the sandbox; init writes
    // nothing before the library says so (the keeper's last frame may still be on its way).
    let prepared = prepare(config);
    let attached = matches!(
        read_frame(&mut socket, FrameLimits::CONTROL),
        Ok(Some((FrameKind::Control, payload))) if matches!(decode(&payload), Ok(Request::Attached))
    );
    if !attached {
        return 1;
    }
    let confined = prepared.and_then(|signals| confine(config).map(|notes| (signals, notes)));
    let mut signals = match confined {
        Ok((signals, isolation)) => {
            let ready = Reply::Ready { isolation };
            if write_frame(&mut socket, FrameKind::Control, &encode(&ready)).is_err() {
                return 1;
            }
            signals
        }
        Err((step, message)) => {
            let reply = Reply::SetupFailed {
                step: step.to_string(),
                message,
            };
            let _ = write_frame(&mut socket, FrameKind::Control, &encode(&reply));
            return 1;
        }
    };
    let code = match serve(&mut socket, &mut signals) {
        Ok(()) => 0,
        Err(_) => 1,
    };
    runner::kill_everything();
    code
}

/// The isolation steps that need no cgroup, in order. Returns the signalfd that reports
/// SIGCHLD.
fn prepare(config: &InitConfig) -> Result<SignalFd, StepError> {
    step(
        "parent death signal",
        nix::sys::prctl::set_pdeathsig(Signal::SIGKILL),
    )?;
    step("identity", confine::become_sandbox_user(config.sandbox_id))?;
    // Changing ids may set the dumpable flag again (fs.suid_dumpable); clear it at once.
    step("dumpable", confine::set_dumpable(false))?;
    step("hostname", nix::unistd::sethostname("sandbox"))?;
    if config.own_network {
        step("loopback", confine::bring_up_loopback())?;
    }
    step(
        "root filesystem",
        rootfs::build(&config.rootfs, config.sandbox_id),
    )?;
    step("rlimits", confine::apply_rlimits(&config.rlimits))?;

    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    step("signals", mask.thread_block())?;
    // SAFETY: ignoring SIGPIPE is async-signal-safe; children reset it before exec.
    step("signals", unsafe {
        signal::signal(Signal::SIGPIPE, signal::SigHandler::SigIgn)
    })?;
    step(
        "signals",
        SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK),
    )
}

/// The last isolation steps, once init is in its cgroup: a cgroup namespace rooted there, then
/// no capabilities, no_new_privs, IPC scoping and seccomp. Returns what the library should
/// report about them.
fn confine(config: &InitConfig) -> Result<Vec<(String, String)>, StepError> {
    step(
        "cgroup namespace",
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP),
    )?;
    step("capabilities", confine::drop_capabilities())?;
    step("no_new_privs", nix::sys::prctl::set_no_new_privs())?;
    let scoping = step("landlock", confine::scope_ipc())?;
    step("dumpable", confine::set_dumpable(false))?;
    let extra = if config.refuse_uncounted_memory {
        UNCOUNTED_MEMORY_RULES
    } else {
        &[]
    };
    let filters = step("seccomp", Filters::compile(RULES.iter().chain(extra)))?;
    step("seccomp", filters.install())?;
    Ok(vec![("ipc".into(), scoping.into())])
}

fn serve(socket: &mut UnixStream, signals: &mut SignalFd) -> io::Result<()> {
    while let Some((kind, payload)) = read_frame(&mut *socket, FrameLimits::CONTROL)? {
        if kind != FrameKind::Control {
            return Err(invalid("expected a request"));
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
                    read_blob(socket)?
                } else {
                    Vec::new()
                };
                let command = runner::Command {
                    argv: &argv,
                    env: &env,
                    cwd: &cwd,
                    stdin,
                    timeout: Duration::from_millis(timeout_ms),
                    output_limit,
                };
                runner::run(socket, signals, command)?;
            }
            Request::PutArchive { dest_dir } => {
                let tar = read_blob(socket)?;
                let outcome = files::unpack_into(&tar, Path::new(&dest_dir));
                reply(socket, outcome.map(|()| Reply::Done))?;
            }
            Request::GetArchive { path, max_bytes } => {
                match files::pack(Path::new(&path), max_bytes) {
                    Ok(tar) => {
                        write_frame(&mut *socket, FrameKind::Blob, &tar)?;
                        reply(socket, Ok(Reply::Done))?;
                    }
                    Err(files::PackError::Link(reason)) => {
                        reply(socket, Ok(Reply::CopyRefused { reason }))?
                    }
                    Err(files::PackError::TooLarge) => reply(socket, Ok(Reply::CopyTooLarge))?,
                    Err(files::PackError::Io(e)) => reply(socket, Err(e))?,
                }
            }
            Request::Remove { path } => {
                let outcome = files::remove_tree(Path::new(&path))
                    .map_err(|e| io::Error::new(e.kind(), format!("removing {path}: {e}")));
                reply(socket, outcome.map(|()| Reply::Done))?;
            }
            Request::Listen => match TcpListener::bind((Ipv4Addr::LOCALHOST, 0)) {
                Ok(listener) => {
                    let port = listener.local_addr()?.port();
                    reply(socket, Ok(Reply::Listening { port }))?;
                    // The descriptor rides on one byte of its own; ours closes when we return.
                    let fds = [listener.as_raw_fd()];
                    sendmsg::<()>(
                        socket.as_raw_fd(),
                        &[IoSlice::new(&[0])],
                        &[ControlMessage::ScmRights(&fds)],
                        MsgFlags::empty(),
                        None,
                    )?;
                }
                Err(e) => reply(socket, Err(e))?,
            },
            Request::Configure(_) | Request::Attached => {
                return Err(invalid("unexpected handshake request"))
            }
        }
    }
    Ok(())
}

fn read_blob(socket: &mut UnixStream) -> io::Result<Vec<u8>> {
    match read_frame(socket, FrameLimits::FROM_LIBRARY)? {
        Some((FrameKind::Blob, payload)) => Ok(payload),
        _ => Err(invalid("expected a blob")),
    }
}

/// Sends `outcome`: its reply, or [`Reply::Failed`] with the error.
fn reply(socket: &mut UnixStream, outcome: io::Result<Reply>) -> io::Result<()> {
    let reply = outcome.unwrap_or_else(|e| Reply::Failed {
        message: e.to_string(),
    });
    write_frame(socket, FrameKind::Control, &encode(&reply))
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_string())
}
