//! The seccomp filter: refuses the syscalls sandboxed code has no business making.
//!
//! Everything not listed is allowed; listed syscalls fail with `EPERM` (the program sees an
//! ordinary permission error). `clone3` fails with `ENOSYS` so that libc falls back to `clone`,
//! whose flags a classic filter can inspect. x32-ABI syscall numbers are refused outright, and a
//! syscall from a foreign architecture kills the process.

use std::collections::BTreeMap;

use seccompiler::{
    sock_filter, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition,
    SeccompFilter, SeccompRule, TargetArch,
};

/// Syscalls refused unconditionally.
const DENIED: &[(&str, libc::c_long)] = &[
    ("mount", libc::SYS_mount),
    ("umount2", libc::SYS_umount2),
    ("pivot_root", libc::SYS_pivot_root),
    ("chroot", libc::SYS_chroot),
    ("fsopen", libc::SYS_fsopen),
    ("fsconfig", libc::SYS_fsconfig),
    ("fsmount", libc::SYS_fsmount),
    ("fspick", libc::SYS_fspick),
    ("move_mount", libc::SYS_move_mount),
    ("open_tree", libc::SYS_open_tree),
    ("mount_setattr", libc::SYS_mount_setattr),
    ("unshare", libc::SYS_unshare),
    ("setns", libc::SYS_setns),
    ("ptrace", libc::SYS_ptrace),
    ("process_vm_readv", libc::SYS_process_vm_readv),
    ("process_vm_writev", libc::SYS_process_vm_writev),
    ("bpf", libc::SYS_bpf),
    ("perf_event_open", libc::SYS_perf_event_open),
    ("userfaultfd", libc::SYS_userfaultfd),
    ("io_uring_setup", libc::SYS_io_uring_setup),
    ("io_uring_enter", libc::SYS_io_uring_enter),
    ("io_uring_register", libc::SYS_io_uring_register),
    ("keyctl", libc::SYS_keyctl),
    ("add_key", libc::SYS_add_key),
    ("request_key", libc::SYS_request_key),
    ("kexec_load", libc::SYS_kexec_load),
    ("kexec_file_load", libc::SYS_kexec_file_load),
    ("init_module", libc::SYS_init_module),
    ("finit_module", libc::SYS_finit_module),
    ("delete_module", libc::SYS_delete_module),
    ("reboot", libc::SYS_reboot),
    ("swapon", libc::SYS_swapon),
    ("swapoff", libc::SYS_swapoff),
    ("acct", libc::SYS_acct),
    ("syslog", libc::SYS_syslog),
    ("quotactl", libc::SYS_quotactl),
    ("open_by_handle_at", libc::SYS_open_by_handle_at),
    ("name_to_handle_at", libc::SYS_name_to_handle_at),
    ("lookup_dcookie", libc::SYS_lookup_dcookie),
    ("iopl", libc::SYS_iopl),
    ("ioperm", libc::SYS_ioperm),
    ("settimeofday", libc::SYS_settimeofday),
    ("clock_settime", libc::SYS_clock_settime),
    ("clock_adjtime", libc::SYS_clock_adjtime),
    ("adjtimex", libc::SYS_adjtimex),
    ("vhangup", libc::SYS_vhangup),
    ("uselib", libc::SYS_uselib),
];

/// `clone` flags that create namespaces; `clone` with any of them is refused.
const NAMESPACE_FLAGS: &[libc::c_int] = &[
    libc::CLONE_NEWNS,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
    libc::CLONE_NEWCGROUP,
];

/// The first syscall number of the x32 ABI on x86_64.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// The compiled filters, in the order they are installed.
pub struct Filters {
    programs: Vec<BpfProgram>,
}

impl Filters {
    /// Compiles the filters for x86_64.
    pub fn compile() -> Result<Self, String> {
        let errno = |e: i32| SeccompAction::Errno(e as u32);

        let mut denied: BTreeMap<i64, Vec<SeccompRule>> =
            DENIED.iter().map(|(_, nr)| (*nr, Vec::new())).collect();
        let clone_rules = NAMESPACE_FLAGS
            .iter()
            .map(|flag| {
                let flag = *flag as u64;
                let condition = SeccompCondition::new(
                    0,
                    SeccompCmpArgLen::Qword,
                    SeccompCmpOp::MaskedEq(flag),
                    flag,
                )?;
                SeccompRule::new(vec![condition])
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        denied.insert(libc::SYS_clone, clone_rules);
        // prlimit64 on another process (pid != 0): code runs as the same uid as init, whose
        // limits it could otherwise lower (e.g. RLIMIT_NOFILE 0) to break the session.
        // setrlimit/getrlimit use pid 0 and stay allowed.
        let other_process = SeccompCondition::new(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Ne, 0)
            .map_err(|e| e.to_string())?;
        denied.insert(
            libc::SYS_prlimit64,
            vec![SeccompRule::new(vec![other_process]).map_err(|e| e.to_string())?],
        );

        let clone3: BTreeMap<i64, Vec<SeccompRule>> = [(libc::SYS_clone3, Vec::new())].into();

        let mut programs = Vec::new();
        for (rules, action) in [(denied, errno(libc::EPERM)), (clone3, errno(libc::ENOSYS))] {
            let filter =
                SeccompFilter::new(rules, SeccompAction::Allow, action, TargetArch::x86_64)
                    .map_err(|e| e.to_string())?;
            let program: BpfProgram = filter
                .try_into()
                .map_err(|e: seccompiler::BackendError| e.to_string())?;
            programs.push(program);
        }
        programs.push(deny_x32());
        Ok(Filters { programs })
    }

    /// Installs the filters on the calling thread; needs `no_new_privs` (or CAP_SYS_ADMIN).
    pub fn install(&self) -> Result<(), String> {
        for program in &self.programs {
            seccompiler::apply_filter(program)
                .map_err(|e| format!("installing seccomp filter: {e}"))?;
        }
        Ok(())
    }

    /// The names of the syscalls refused unconditionally.
    pub fn denied_names() -> impl Iterator<Item = &'static str> {
        DENIED.iter().map(|(name, _)| *name)
    }
}

/// A filter that fails every x32-ABI syscall with EPERM (seccompiler matches exact numbers only).
fn deny_x32() -> BpfProgram {
    const BPF_LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const BPF_JMP_JGE_K: u16 = 0x05 | 0x30;
    const BPF_RET_K: u16 = 0x06;
    const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
    const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
    let op = |code, jt, jf, k| sock_filter { code, jt, jf, k };
    vec![
        // seccomp_data.nr is at offset 0.
        op(BPF_LD_W_ABS, 0, 0, 0),
        op(BPF_JMP_JGE_K, 0, 1, X32_SYSCALL_BIT),
        op(BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | libc::EPERM as u32),
        op(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_compile() {
        let filters = Filters::compile().unwrap();
        assert_eq!(filters.programs.len(), 3);
        assert!(Filters::denied_names().any(|n| n == "ptrace"));
    }

    #[test]
    fn installed_filter_refuses_denied_syscalls_and_namespace_clones() {
        // Runs in a forked child so the test process keeps its syscalls.
        let filters = Filters::compile().unwrap();
        // SAFETY: the child only makes raw syscalls and exits with _exit.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                let code = unsafe {
                    libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
                    if filters.install().is_err() {
                        libc::_exit(10);
                    }
                    let unshare = libc::unshare(libc::CLONE_NEWUSER);
                    let unshare_errno = *libc::__errno_location();
                    let ptrace = libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0);
                    let ptrace_errno = *libc::__errno_location();
                    let clone3 = libc::syscall(libc::SYS_clone3, 0, 0);
                    let clone3_errno = *libc::__errno_location();
                    let getpid = libc::getpid();
                    let mut limit: libc::rlimit = std::mem::zeroed();
                    let own_limits = libc::syscall(
                        libc::SYS_prlimit64,
                        0,
                        libc::RLIMIT_NOFILE,
                        std::ptr::null::<libc::rlimit>(),
                        &mut limit,
                    );
                    let others_limits = libc::syscall(
                        libc::SYS_prlimit64,
                        libc::getppid(),
                        libc::RLIMIT_NOFILE,
                        std::ptr::null::<libc::rlimit>(),
                        &mut limit,
                    );
                    let others_errno = *libc::__errno_location();
                    match (
                        unshare,
                        unshare_errno,
                        ptrace,
                        ptrace_errno,
                        clone3,
                        clone3_errno,
                        getpid > 0,
                        (own_limits, others_limits, others_errno),
                    ) {
                        (
                            -1,
                            libc::EPERM,
                            -1,
                            libc::EPERM,
                            -1,
                            libc::ENOSYS,
                            true,
                            (0, -1, libc::EPERM),
                        ) => 0,
                        _ => 11,
                    }
                };
                unsafe { libc::_exit(code) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                let status = nix::sys::wait::waitpid(child, None).unwrap();
                assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0));
            }
        }
    }
}
