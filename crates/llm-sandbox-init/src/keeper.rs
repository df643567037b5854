//! The keeper: the process the library starts. It takes the sandbox's configuration, creates
//! the user, mount, pid, ipc, uts and (by default) network namespaces, writes its own id maps,
//! forks init and waits for it. Killing the keeper kills init (parent-death signal).

use std::os::fd::FromRawFd;
use std::os::unix::net::UnixStream;

use llm_sandbox_init::config::{InitConfig, Owner};
use llm_sandbox_init::protocol::{decode, encode, read_frame, write_frame};
use llm_sandbox_init::protocol::{FrameKind, FrameLimits, Reply, Request};
use nix::sched::CloneFlags;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{ForkResult, Gid, Pid, Uid};

use crate::confine::{set_dumpable, StepError};

/// The descriptor the library leaves the socket on.
const SOCKET_FD: i32 = 3;

/// Runs the keeper; returns its exit code (init's).
pub fn run() -> i32 {
    // SAFETY: descriptor 3 is the socket the library passed, and nothing else owns it.
    let mut socket = unsafe { UnixStream::from_raw_fd(SOCKET_FD) };
    let config = match read_frame(&mut socket, FrameLimits::CONTROL) {
        Ok(Some((FrameKind::Control, payload))) => match decode(&payload) {
            Ok(Request::Configure(config)) => config,
            _ => return 1,
        },
        _ => return 1,
    };
    if let Err((step, message)) = prepare(&config) {
        let reply = Reply::SetupFailed {
            step: step.into(),
            message,
        };
        let _ = write_frame(&mut socket, FrameKind::Control, &encode(&reply));
        return 1;
    }
    // SAFETY: the keeper is single-threaded.
    match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Child) => crate::init::run(socket, &config),
        Ok(ForkResult::Parent { child }) => {
            // Init writes nothing before the library answers this, so frames never interleave.
            let forked = Reply::Forked {
                pid: child.as_raw(),
            };
            let _ = write_frame(&mut socket, FrameKind::Control, &encode(&forked));
            drop(socket);
            exit_code_of(child)
        }
        Err(e) => {
            let reply = Reply::SetupFailed {
                step: "forking init".into(),
                message: e.to_string(),
            };
            let _ = write_frame(&mut socket, FrameKind::Control, &encode(&reply));
            1
        }
    }
}

/// The keeper's steps, in order.
fn prepare(config: &InitConfig) -> Result<(), StepError> {
    keep_only_socket().map_err(|e| ("descriptors", e.to_string()))?;
    // A session of its own: the sandbox has no controlling terminal to inject input into.
    nix::unistd::setsid().map_err(|e| ("session", e.to_string()))?;
    let (uid, gid) = match config.owner {
        Owner::Caller => (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        ),
        Owner::Dedicated(id) => {
            become_owner(id).map_err(|e| ("owner", e))?;
            (id, id)
        }
    };
    unshare(config.own_network)?;
    // Changing ids (root callers) cleared the dumpable flag, which makes /proc/self belong to
    // the host's root; the keeper must own it to write its maps. It is still outside the
    // sandbox's pid namespace, and holds nothing but the configuration.
    set_dumpable(true).map_err(|e| ("dumpable", e.to_string()))?;
    write_id_maps(config.sandbox_id, uid, gid)?;
    // From here on nothing of the keeper (nor of init, which inherits the flag) can be read or
    // traced by a process of the same uid.
    set_dumpable(false).map_err(|e| ("dumpable", e.to_string()))
}

/// Closes every descriptor but stdio and the socket, and keeps the socket from later execs.
fn keep_only_socket() -> std::io::Result<()> {
    // SAFETY: plain descriptor syscalls in the single-threaded keeper.
    let closed = unsafe {
        libc::fcntl(SOCKET_FD, libc::F_SETFD, libc::FD_CLOEXEC) >= 0
            && libc::syscall(libc::SYS_close_range, SOCKET_FD + 1, u32::MAX, 0) >= 0
    };
    if closed {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Becomes unprivileged `id` (uid and gid, no supplementary groups) while keeping the
/// capabilities needed to create the namespaces (also where unprivileged user namespaces are
/// disabled): the new user namespace is then owned by `id`, not by root.
fn become_owner(id: u32) -> Result<(), String> {
    nix::unistd::setgroups(&[]).map_err(|e| format!("dropping groups: {e}"))?;
    nix::sys::prctl::set_keepcaps(true).map_err(|e| format!("keeping capabilities: {e}"))?;
    nix::unistd::setresgid(Gid::from_raw(id), Gid::from_raw(id), Gid::from_raw(id))
        .map_err(|e| format!("gid {id}: {e}"))?;
    nix::unistd::setresuid(Uid::from_raw(id), Uid::from_raw(id), Uid::from_raw(id))
        .map_err(|e| format!("uid {id}: {e}"))?;
    let permitted =
        caps::read(None, caps::CapSet::Permitted).map_err(|e| format!("capabilities: {e}"))?;
    caps::set(None, caps::CapSet::Effective, &permitted).map_err(|e| format!("capabilities: {e}"))
}

fn unshare(own_network: bool) -> Result<(), StepError> {
    let mut flags = CloneFlags::CLONE_NEWUSER
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWUTS;
    if own_network {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    // The keeper is now in the new user namespace: whatever capabilities it kept as the owner
    // apply inside it only.
    nix::sched::unshare(flags).map_err(|e| ("namespaces", unshare_advice(e)))
}

/// Maps the sandbox's id to host `uid`/`gid`: one id each, as an unprivileged process may.
fn write_id_maps(sandbox_id: u32, uid: u32, gid: u32) -> Result<(), StepError> {
    for (file, contents) in [
        ("setgroups", "deny".to_string()),
        ("uid_map", format!("{sandbox_id} {uid} 1")),
        ("gid_map", format!("{sandbox_id} {gid} 1")),
    ] {
        std::fs::write(format!("/proc/self/{file}"), contents)
            .map_err(|e| ("id maps", format!("writing /proc/self/{file}: {e}")))?;
    }
    Ok(())
}

fn unshare_advice(error: nix::errno::Errno) -> String {
    let mut advice = format!("creating namespaces failed: {error}");
    let sysctl = |name: &str| std::fs::read_to_string(format!("/proc/sys/{name}")).ok();
    if sysctl("user/max_user_namespaces").is_some_and(|v| v.trim() == "0") {
        advice
            .push_str("; user namespaces are disabled: `sysctl -w user.max_user_namespaces=15000`");
    }
    if sysctl("kernel/unprivileged_userns_clone").is_some_and(|v| v.trim() == "0") {
        advice.push_str("; unprivileged user namespaces are off: `sysctl -w kernel.unprivileged_userns_clone=1`");
    }
    if sysctl("kernel/apparmor_restrict_unprivileged_userns").is_some_and(|v| v.trim() == "1") {
        advice.push_str("; AppArmor restricts unprivileged user namespaces: `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0` or add an AppArmor profile allowing `userns`");
    }
    advice
}

/// Waits for our child `child` and returns its exit code, `128 + signal` when a signal ended it
/// (as shells report it), or 126 when it cannot be waited for.
fn exit_code_of(child: Pid) -> i32 {
    loop {
        match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, code)) => return code,
            Ok(WaitStatus::Signaled(_, signal, _)) => return 128 + signal as i32,
            Err(nix::errno::Errno::EINTR) | Ok(_) => continue,
            Err(_) => return 126,
        }
    }
}
