//! The syscalls sandboxed code may not make, named once for every backend: the native seccomp
//! filter is compiled from [`RULES`], and the Docker and Podman profiles are written from it.
//!
//! Everything not listed is allowed (the sandbox also has no capabilities, so most privileged
//! calls fail anyway); a listed call fails with its errno, so the program sees an ordinary
//! error. A rule with a condition refuses the call only when the condition holds.

/// When a rule refuses its syscall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Always.
    Always,
    /// When argument `arg` (64 bits) masked with `mask` equals `value`.
    MaskedEq { arg: u8, mask: u64, value: u64 },
    /// When argument `arg` (a C `int`, 32 bits) is none of `allowed`.
    NotIn { arg: u8, allowed: &'static [u64] },
}

impl When {
    /// The condition as alternatives, any of which refuses the call: `(arg, mask, value)` for
    /// "argument `arg` masked with `mask` equals `value`"; `None` for [`When::Always`]. This is
    /// how it is written for libseccomp (Docker, Podman), which cannot require two tests of
    /// one argument at once: [`When::NotIn`] becomes the values outside the allowed set, as
    /// prefixes of the argument's 32 bits.
    pub fn alternatives(self) -> Option<Vec<(u8, u64, u64)>> {
        match self {
            When::Always => None,
            When::MaskedEq { arg, mask, value } => Some(vec![(arg, mask, value)]),
            When::NotIn { arg, allowed } => {
                let mut prefixes = Vec::new();
                outside(allowed, 0, 0, &mut prefixes);
                Some(
                    prefixes
                        .into_iter()
                        .map(|(mask, value)| (arg, mask, value))
                        .collect(),
                )
            }
        }
    }
}

/// The 32-bit values whose top `bits` bits are `prefix` and that are not in `allowed`, as
/// (mask, value) prefixes appended to `out`.
fn outside(allowed: &[u64], prefix: u64, bits: u32, out: &mut Vec<(u64, u64)>) {
    let mask = (0xFFFF_FFFF_u64 << (32 - bits)) & 0xFFFF_FFFF;
    if !allowed.iter().any(|value| value & mask == prefix) {
        out.push((mask, prefix));
    } else if bits < 32 {
        outside(allowed, prefix, bits + 1, out);
        outside(allowed, prefix | 1 << (31 - bits), bits + 1, out);
    }
}

/// One refused syscall (or one condition under which it is refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// The syscall's name, as seccomp profiles spell it.
    pub name: &'static str,
    /// Its number on x86_64.
    pub number: i64,
    /// The errno the caller sees.
    pub errno: i32,
    /// When it is refused.
    pub when: When,
}

const fn refuse(name: &'static str, number: i64) -> Rule {
    Rule {
        name,
        number,
        errno: libc::EPERM,
        when: When::Always,
    }
}

const fn absent(name: &'static str, number: i64) -> Rule {
    Rule {
        name,
        number,
        errno: libc::ENOSYS,
        when: When::Always,
    }
}

/// Refused with `errno` unless argument 0 is one of `allowed`.
const fn unless_first_arg_in(
    name: &'static str,
    number: i64,
    errno: i32,
    allowed: &'static [u64],
) -> Rule {
    Rule {
        name,
        number,
        errno,
        when: When::NotIn { arg: 0, allowed },
    }
}

/// `clone` flags that create namespaces; `clone` with any of them is refused.
pub const NAMESPACE_FLAGS: [(&str, u64); 7] = [
    ("CLONE_NEWNS", libc::CLONE_NEWNS as u64),
    ("CLONE_NEWUTS", libc::CLONE_NEWUTS as u64),
    ("CLONE_NEWIPC", libc::CLONE_NEWIPC as u64),
    ("CLONE_NEWUSER", libc::CLONE_NEWUSER as u64),
    ("CLONE_NEWPID", libc::CLONE_NEWPID as u64),
    ("CLONE_NEWNET", libc::CLONE_NEWNET as u64),
    ("CLONE_NEWCGROUP", libc::CLONE_NEWCGROUP as u64),
];

const fn namespace_clone(flag: u64) -> Rule {
    Rule {
        name: "clone",
        number: libc::SYS_clone,
        errno: libc::EPERM,
        when: When::MaskedEq {
            arg: 0,
            mask: flag,
            value: flag,
        },
    }
}

/// The socket families code may use: `AF_UNIX`, `AF_INET`, `AF_INET6`, `AF_NETLINK`. Others
/// (`AF_VSOCK`, which no network namespace confines, `AF_PACKET`, Bluetooth, CAN, …) fail with
/// `EAFNOSUPPORT`.
pub const SOCKET_FAMILIES: &[u64] = &[
    libc::AF_UNIX as u64,
    libc::AF_INET as u64,
    libc::AF_INET6 as u64,
    libc::AF_NETLINK as u64,
];

/// The personalities code may set, as Docker's default profile allows: `PER_LINUX`,
/// `UNAME26`, `PER_LINUX32`, both, and the query `0xffffffff`. Others (`READ_IMPLIES_EXEC`,
/// `ADDR_NO_RANDOMIZE`, foreign ABIs) fail.
pub const PERSONALITIES: &[u64] = &[0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// Every refusal, for every backend.
pub const RULES: &[Rule] = &[
    // Filesystems and mounts.
    refuse("mount", libc::SYS_mount),
    refuse("umount2", libc::SYS_umount2),
    refuse("pivot_root", libc::SYS_pivot_root),
    refuse("chroot", libc::SYS_chroot),
    refuse("fsopen", libc::SYS_fsopen),
    refuse("fsconfig", libc::SYS_fsconfig),
    refuse("fsmount", libc::SYS_fsmount),
    refuse("fspick", libc::SYS_fspick),
    refuse("move_mount", libc::SYS_move_mount),
    refuse("open_tree", libc::SYS_open_tree),
    refuse("mount_setattr", libc::SYS_mount_setattr),
    refuse("quotactl", libc::SYS_quotactl),
    refuse("quotactl_fd", libc::SYS_quotactl_fd),
    refuse("open_by_handle_at", libc::SYS_open_by_handle_at),
    refuse("name_to_handle_at", libc::SYS_name_to_handle_at),
    refuse("lookup_dcookie", libc::SYS_lookup_dcookie),
    refuse("uselib", libc::SYS_uselib),
    refuse("acct", libc::SYS_acct),
    refuse("swapon", libc::SYS_swapon),
    refuse("swapoff", libc::SYS_swapoff),
    // Namespaces.
    refuse("unshare", libc::SYS_unshare),
    refuse("setns", libc::SYS_setns),
    namespace_clone(libc::CLONE_NEWNS as u64),
    namespace_clone(libc::CLONE_NEWUTS as u64),
    namespace_clone(libc::CLONE_NEWIPC as u64),
    namespace_clone(libc::CLONE_NEWUSER as u64),
    namespace_clone(libc::CLONE_NEWPID as u64),
    namespace_clone(libc::CLONE_NEWNET as u64),
    namespace_clone(libc::CLONE_NEWCGROUP as u64),
    // clone3's flags are behind a pointer, out of a filter's reach: libc falls back to clone.
    absent("clone3", libc::SYS_clone3),
    // Other processes: tracing, their memory, their descriptors.
    refuse("ptrace", libc::SYS_ptrace),
    refuse("process_vm_readv", libc::SYS_process_vm_readv),
    refuse("process_vm_writev", libc::SYS_process_vm_writev),
    refuse("pidfd_getfd", libc::SYS_pidfd_getfd),
    refuse("kcmp", libc::SYS_kcmp),
    // prlimit64 on another process (pid != 0): code runs as the same uid as init, whose limits
    // it could otherwise lower (e.g. RLIMIT_NOFILE 0) to break the session.
    unless_first_arg_in("prlimit64", libc::SYS_prlimit64, libc::EPERM, &[0]),
    // The kernel's own interfaces.
    refuse("bpf", libc::SYS_bpf),
    refuse("perf_event_open", libc::SYS_perf_event_open),
    refuse("userfaultfd", libc::SYS_userfaultfd),
    refuse("io_uring_setup", libc::SYS_io_uring_setup),
    refuse("io_uring_enter", libc::SYS_io_uring_enter),
    refuse("io_uring_register", libc::SYS_io_uring_register),
    refuse("keyctl", libc::SYS_keyctl),
    refuse("add_key", libc::SYS_add_key),
    refuse("request_key", libc::SYS_request_key),
    refuse("kexec_load", libc::SYS_kexec_load),
    refuse("kexec_file_load", libc::SYS_kexec_file_load),
    refuse("init_module", libc::SYS_init_module),
    refuse("finit_module", libc::SYS_finit_module),
    refuse("delete_module", libc::SYS_delete_module),
    refuse("nfsservctl", libc::SYS_nfsservctl),
    refuse("_sysctl", libc::SYS__sysctl),
    refuse("reboot", libc::SYS_reboot),
    refuse("syslog", libc::SYS_syslog),
    refuse("vhangup", libc::SYS_vhangup),
    // The machine: ports, descriptor tables, clocks.
    refuse("iopl", libc::SYS_iopl),
    refuse("ioperm", libc::SYS_ioperm),
    refuse("modify_ldt", libc::SYS_modify_ldt),
    refuse("settimeofday", libc::SYS_settimeofday),
    refuse("clock_settime", libc::SYS_clock_settime),
    refuse("clock_adjtime", libc::SYS_clock_adjtime),
    refuse("adjtimex", libc::SYS_adjtimex),
    unless_first_arg_in(
        "personality",
        libc::SYS_personality,
        libc::EPERM,
        PERSONALITIES,
    ),
    // Socket families that no network namespace confines, or that need hardware.
    unless_first_arg_in(
        "socket",
        libc::SYS_socket,
        libc::EAFNOSUPPORT,
        SOCKET_FAMILIES,
    ),
    unless_first_arg_in(
        "socketpair",
        libc::SYS_socketpair,
        libc::EAFNOSUPPORT,
        SOCKET_FAMILIES,
    ),
    // Filesystem events: host-bound files would show the host's activity, and inotify
    // instances are charged to a host user's budget. Libraries fall back to polling.
    absent("inotify_init", libc::SYS_inotify_init),
    absent("inotify_init1", libc::SYS_inotify_init1),
    absent("inotify_add_watch", libc::SYS_inotify_add_watch),
    absent("fanotify_init", libc::SYS_fanotify_init),
    absent("fanotify_mark", libc::SYS_fanotify_mark),
];

/// Refused in addition when only rlimits bound memory (no cgroup): shared memory that
/// `RLIMIT_DATA` does not count. (The IPC namespace's `shmmax`/`shmall` cannot bound System V
/// segments instead: only the namespace's root may write them, and an ordinary user's sandbox
/// maps no root.) Files in /dev/shm count against the disk limit.
pub const UNCOUNTED_MEMORY_RULES: &[Rule] = &[
    absent("shmget", libc::SYS_shmget),
    absent("memfd_create", libc::SYS_memfd_create),
    // mmap(MAP_SHARED | MAP_ANONYMOUS) and mmap(MAP_SHARED_VALIDATE | MAP_ANONYMOUS).
    Rule {
        name: "mmap",
        number: libc::SYS_mmap,
        errno: libc::ENOMEM,
        when: When::MaskedEq {
            arg: 3,
            mask: 0x23,
            value: (libc::MAP_SHARED | libc::MAP_ANONYMOUS) as u64,
        },
    },
    Rule {
        name: "mmap",
        number: libc::SYS_mmap,
        errno: libc::ENOMEM,
        when: When::MaskedEq {
            arg: 3,
            mask: 0x23,
            value: (libc::MAP_SHARED_VALIDATE | libc::MAP_ANONYMOUS) as u64,
        },
    },
];

/// The distinct names of the syscalls [`RULES`] refuse (some only under a condition).
pub fn refused_names() -> Vec<&'static str> {
    let mut names: Vec<&str> = RULES.iter().map(|rule| rule.name).collect();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_of_one_syscall_are_adjacent_and_numbers_agree() {
        let names = refused_names();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(names.len(), sorted.len(), "a syscall's rules are split");
        for rule in RULES.iter().chain(UNCOUNTED_MEMORY_RULES) {
            let same = RULES
                .iter()
                .chain(UNCOUNTED_MEMORY_RULES)
                .filter(|other| other.name == rule.name);
            assert!(same.clone().all(|other| other.number == rule.number));
        }
    }

    #[test]
    fn alternatives_refuse_exactly_the_values_outside_the_allowed_set() {
        for allowed in [SOCKET_FAMILIES, PERSONALITIES, &[0][..]] {
            let when = When::NotIn { arg: 0, allowed };
            let alternatives = when.alternatives().unwrap();
            let refused = |v: u64| {
                alternatives
                    .iter()
                    .any(|(_, mask, value)| v & mask == *value)
            };
            let mut samples: Vec<u64> = (0..70_000).chain([0x7fff_ffff, 0xffff_fffe]).collect();
            samples.extend(allowed.iter().flat_map(|v| [*v, v ^ 1, v.wrapping_add(1)]));
            samples.extend((0..32).map(|bit| 1u64 << bit));
            for v in samples.into_iter().map(|v| v & 0xFFFF_FFFF) {
                assert_eq!(refused(v), !allowed.contains(&v), "{v:#x} of {allowed:?}");
            }
            // The upper half of a 64-bit register is not the argument: it is ignored.
            assert!(!refused(1 << 40 | allowed[0]));
        }
    }

    #[test]
    fn vsock_and_packet_sockets_are_not_allowed_families() {
        assert!(!SOCKET_FAMILIES.contains(&(libc::AF_VSOCK as u64)));
        assert!(!SOCKET_FAMILIES.contains(&(libc::AF_PACKET as u64)));
        assert!(SOCKET_FAMILIES.contains(&(libc::AF_INET6 as u64)));
    }
}
