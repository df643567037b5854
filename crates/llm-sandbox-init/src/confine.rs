//! The confinement steps of init, a function each; [`crate::init`] orders them.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use llm_sandbox_init::config::Rlimit;
use nix::sys::resource::Resource;
use nix::unistd::{Gid, Uid};

/// A failed step: its name and why.
pub type StepError = (&'static str, String);

/// Names the step of a failure.
pub fn step<T, E: std::fmt::Display>(
    name: &'static str,
    result: Result<T, E>,
) -> Result<T, StepError> {
    result.map_err(|e| (name, e.to_string()))
}

/// Sets or clears the dumpable flag. A process that is not dumpable cannot be traced, nor its
/// memory, descriptors or `/proc` files read, by processes of the same uid.
pub fn set_dumpable(dumpable: bool) -> nix::Result<()> {
    nix::sys::prctl::set_dumpable(dumpable)
}

/// Becomes the sandbox user inside the user namespace, keeping the namespace's capabilities
/// for the steps that follow (changing ids clears the effective set, not the permitted one).
pub fn become_sandbox_user(id: u32) -> Result<(), String> {
    let (uid, gid) = (Uid::from_raw(id), Gid::from_raw(id));
    nix::unistd::setresgid(gid, gid, gid).map_err(|e| format!("gid {id}: {e}"))?;
    nix::unistd::setresuid(uid, uid, uid).map_err(|e| format!("uid {id}: {e}"))?;
    let permitted = caps::read(None, caps::CapSet::Permitted).map_err(|e| e.to_string())?;
    caps::set(None, caps::CapSet::Effective, &permitted).map_err(|e| e.to_string())
}

/// Sets `lo` up in the new network namespace (it starts down).
pub fn bring_up_loopback() -> io::Result<()> {
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

/// Applies `limits` (hard and soft), with core dumps always off.
pub fn apply_rlimits(limits: &[(Rlimit, u64)]) -> nix::Result<()> {
    for (limit, value) in limits.iter().copied().chain([(Rlimit::Core, 0)]) {
        let resource = match limit {
            Rlimit::Data => Resource::RLIMIT_DATA,
            Rlimit::Processes => Resource::RLIMIT_NPROC,
            Rlimit::Core => Resource::RLIMIT_CORE,
            Rlimit::FileSize => Resource::RLIMIT_FSIZE,
        };
        nix::sys::resource::setrlimit(resource, value, value)?;
    }
    Ok(())
}

/// Keeps the sandbox's processes from connecting to abstract UNIX sockets, and from signalling
/// processes, created outside the sandbox (Landlock scopes, Linux 6.12+). With the host's
/// network the host's abstract sockets (X11, D-Bus, agents) are otherwise in reach. Returns how
/// well the kernel enforced it.
pub fn scope_ipc() -> Result<&'static str, landlock::RulesetError> {
    use landlock::{Access, RulesetAttr, RulesetStatus, Scope, ABI};
    let status = landlock::Ruleset::default()
        .scope(Scope::from_all(ABI::V6))?
        .create()?
        .restrict_self()?;
    Ok(match status.ruleset {
        RulesetStatus::FullyEnforced => "abstract UNIX sockets and signals scoped to the sandbox (Landlock)",
        RulesetStatus::PartiallyEnforced => "partly scoped (this kernel's Landlock predates ABI 6)",
        RulesetStatus::NotEnforced => "not scoped: Landlock ABI 6 (Linux 6.12) is missing; with --network host the host's abstract UNIX sockets are reachable",
    })
}

/// Drops every capability, from every set, for good.
pub fn drop_capabilities() -> Result<(), caps::errors::CapsError> {
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
