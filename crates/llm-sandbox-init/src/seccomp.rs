//! The seccomp filter, compiled from the shared list of refusals
//! ([`llm_sandbox_init::syscalls`]).
//!
//! Each errno gets one program (seccompiler gives a filter one action for its matches); a
//! program allows everything it does not match. x32-ABI syscall numbers are refused outright,
//! and a syscall from a foreign architecture kills the process.

use std::collections::BTreeMap;

use llm_sandbox_init::syscalls::{Rule, When};
use seccompiler::{
    sock_filter, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition,
    SeccompFilter, SeccompRule, TargetArch,
};

/// The first syscall number of the x32 ABI on x86_64.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// The compiled filters, in the order they are installed.
pub struct Filters {
    programs: Vec<BpfProgram>,
}

impl Filters {
    /// Compiles `rules` for x86_64.
    pub fn compile<'a>(rules: impl IntoIterator<Item = &'a Rule>) -> Result<Self, String> {
        let mut by_errno: BTreeMap<i32, BTreeMap<i64, Vec<SeccompRule>>> = BTreeMap::new();
        for rule in rules {
            let conditions = conditions(rule.when).map_err(|e| e.to_string())?;
            let syscall = by_errno
                .entry(rule.errno)
                .or_default()
                .entry(rule.number)
                .or_default();
            if !conditions.is_empty() {
                syscall.push(SeccompRule::new(conditions).map_err(|e| e.to_string())?);
            }
        }
        let mut programs = Vec::new();
        for (errno, syscalls) in by_errno {
            let filter = SeccompFilter::new(
                syscalls,
                SeccompAction::Allow,
                SeccompAction::Errno(errno as u32),
                TargetArch::x86_64,
            )
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
}

/// The conditions (all must hold) under which a rule refuses its call; none for `Always`.
fn conditions(when: When) -> Result<Vec<SeccompCondition>, seccompiler::BackendError> {
    Ok(match when {
        When::Always => Vec::new(),
        When::MaskedEq { arg, mask, value } => vec![SeccompCondition::new(
            arg,
            SeccompCmpArgLen::Qword,
            SeccompCmpOp::MaskedEq(mask),
            value,
        )?],
        When::NotIn { arg, allowed } => allowed
            .iter()
            .map(|value| {
                SeccompCondition::new(arg, SeccompCmpArgLen::Dword, SeccompCmpOp::Ne, *value)
            })
            .collect::<Result<_, _>>()?,
    })
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
    use llm_sandbox_init::syscalls::{RULES, UNCOUNTED_MEMORY_RULES};

    /// Runs `probe` in a forked child under the filters of `rules`; returns its exit code.
    fn under_filter(rules: &[Rule], probe: fn() -> i32) -> i32 {
        let filters = Filters::compile(rules).unwrap();
        // SAFETY: the child only makes raw syscalls and exits with _exit.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => unsafe {
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
                if filters.install().is_err() {
                    libc::_exit(100);
                }
                libc::_exit(probe())
            },
            nix::unistd::ForkResult::Parent { child } => {
                match nix::sys::wait::waitpid(child, None).unwrap() {
                    nix::sys::wait::WaitStatus::Exited(_, code) => code,
                    other => panic!("the probe ended with {other:?}"),
                }
            }
        }
    }

    fn errno() -> i32 {
        std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
    }

    #[test]
    fn refused_calls_fail_with_their_errno_and_others_pass() {
        let code = under_filter(RULES, || unsafe {
            let checks: [(bool, &str); 9] = [
                (
                    libc::unshare(libc::CLONE_NEWUSER) == -1 && errno() == libc::EPERM,
                    "unshare",
                ),
                (
                    libc::syscall(libc::SYS_clone3, 0, 0) == -1 && errno() == libc::ENOSYS,
                    "clone3",
                ),
                (
                    libc::socket(libc::AF_VSOCK, libc::SOCK_STREAM, 0) == -1
                        && errno() == libc::EAFNOSUPPORT,
                    "vsock",
                ),
                (
                    libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0) >= 0,
                    "unix socket",
                ),
                (
                    libc::syscall(libc::SYS_inotify_init1, 0) == -1 && errno() == libc::ENOSYS,
                    "inotify",
                ),
                (
                    libc::syscall(libc::SYS_modify_ldt, 0, 0, 0) == -1 && errno() == libc::EPERM,
                    "modify_ldt",
                ),
                (
                    libc::personality(0x0040_0000) == -1 && errno() == libc::EPERM,
                    "personality READ_IMPLIES_EXEC",
                ),
                (libc::personality(0xffff_ffff) >= 0, "personality query"),
                (
                    libc::syscall(libc::SYS_prlimit64, libc::getppid(), 0, 0, 0) == -1
                        && errno() == libc::EPERM,
                    "prlimit64 of another process",
                ),
            ];
            match checks.iter().position(|(ok, _)| !ok) {
                Some(index) => 1 + index as i32,
                None => 0,
            }
        });
        assert_eq!(code, 0, "check {code} failed (1-based)");
    }

    #[test]
    fn uncounted_memory_rules_refuse_shared_anonymous_maps_only() {
        let rules: Vec<Rule> = RULES
            .iter()
            .chain(UNCOUNTED_MEMORY_RULES)
            .copied()
            .collect();
        let code = under_filter(&rules, || unsafe {
            let map = |flags| {
                libc::mmap(
                    std::ptr::null_mut(),
                    4096,
                    libc::PROT_READ | libc::PROT_WRITE,
                    flags,
                    -1,
                    0,
                )
            };
            let shared = map(libc::MAP_SHARED | libc::MAP_ANONYMOUS);
            let private = map(libc::MAP_PRIVATE | libc::MAP_ANONYMOUS);
            let memfd = libc::syscall(libc::SYS_memfd_create, c"x".as_ptr(), 0);
            match (
                shared == libc::MAP_FAILED,
                private != libc::MAP_FAILED,
                memfd < 0,
            ) {
                (true, true, true) => 0,
                _ => 1,
            }
        });
        assert_eq!(code, 0);
    }
}
