// Privileged syscalls, each made directly through syscall(2) in a child process of its own (so
// that one call that succeeds, e.g. entering a new user namespace, does not change what the
// next ones see). Prints "name result errno-name" per call; every call must fail with a permission
// error (EPERM, EACCES or ENOSYS; EAFNOSUPPORT for socket families).
// Arguments are chosen to be harmless should a call ever succeed (e.g. reboot with a bad magic
// number fails with EINVAL only when the caller had the privilege).
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <linux/reboot.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *errno_name(int e) {
    switch (e) {
    case 0: return "OK";
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case ENOSYS: return "ENOSYS";
    case EINVAL: return "EINVAL";
    case EFAULT: return "EFAULT";
    case EBADF: return "EBADF";
    case ENOENT: return "ENOENT";
    case EBUSY: return "EBUSY";
    case ESRCH: return "ESRCH";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    default: return "OTHER";
    }
}

static void print_result(const char *name, long result) {
    printf("%s %ld %s\n", name, result, errno_name(result == -1 ? errno : 0));
    fflush(stdout);
}

// Makes the call in a forked child, which prints its result and exits.
#define report(name, call)                                                                     \
    do {                                                                                       \
        pid_t pid_ = fork();                                                                   \
        if (pid_ == 0) {                                                                       \
            errno = 0;                                                                         \
            long result_ = (call);                                                             \
            print_result(name, result_);                                                       \
            _exit(0);                                                                          \
        }                                                                                      \
        waitpid(pid_, nullptr, 0);                                                             \
    } while (0)

int main() {
    mkdir("target", 0755);
    errno = 0;
    report("mount", syscall(SYS_mount, "none", "target", "tmpfs", 0L, nullptr));
    report("mount_bind_root", syscall(SYS_mount, "/", "target", nullptr, (long)MS_BIND, nullptr));
    report("umount2", syscall(SYS_umount2, "/proc", 2L /* MNT_DETACH */));
    report("unshare_user", syscall(SYS_unshare, (long)CLONE_NEWUSER));
    report("unshare_mount", syscall(SYS_unshare, (long)CLONE_NEWNS));
    report("unshare_net", syscall(SYS_unshare, (long)CLONE_NEWNET));
    report("clone_newuser", ([]() {
        long child = syscall(SYS_clone, (long)(CLONE_NEWUSER | SIGCHLD), nullptr, nullptr, nullptr, nullptr);
        if (child == 0) {
            _exit(0);
        }
        int saved = errno;
        if (child > 0) {
            waitpid(child, nullptr, 0);
        }
        errno = saved;
        return child;
    })());
    report("setns", syscall(SYS_setns, (long)open("/proc/self/ns/mnt", O_RDONLY), 0L));
    report("chroot", syscall(SYS_chroot, "target"));
    report("ptrace_attach_init", syscall(SYS_ptrace, 16L /* PTRACE_ATTACH */, 1L, nullptr, nullptr));
    // bpf(BPF_MAP_CREATE) with an all-zero attribute: EINVAL when bpf is allowed at all.
    char attr[128];
    memset(attr, 0, sizeof attr);
    report("bpf", syscall(SYS_bpf, 0L, attr, (long)sizeof attr));
    report("keyctl", syscall(SYS_keyctl, 0L /* KEYCTL_GET_KEYRING_ID */, -3L /* session */, 0L));
    report("add_key", syscall(SYS_add_key, "user", "hostile", "x", 1L, -3L));
    // init_module checks CAP_SYS_MODULE before looking at its (invalid) arguments.
    report("init_module", syscall(SYS_init_module, nullptr, 0L, ""));
    report("finit_module", syscall(SYS_finit_module, -1L, "", 0L));
    report("delete_module", syscall(SYS_delete_module, "hostile_no_such_module", 0L));
    report("kexec_load", syscall(SYS_kexec_load, 0L, 0L, nullptr, 0L));
    // reboot checks CAP_SYS_BOOT before the magic numbers, which are wrong on purpose.
    report("reboot", syscall(SYS_reboot, 1L, 2L, (long)LINUX_REBOOT_CMD_CAD_OFF, nullptr));
    report("swapoff", syscall(SYS_swapoff, "/nonexistent"));
    report("pivot_root", syscall(SYS_pivot_root, "target", "target"));
    report("perf_event_open", syscall(SYS_perf_event_open, attr, 0L, -1L, -1L, 0L));
    report("settimeofday", syscall(SYS_settimeofday, nullptr, nullptr));
    report("sethostname", syscall(SYS_sethostname, "evil", 4L));
    report("setuid_root", syscall(SYS_setuid, 0L));
    report("iopl", syscall(SYS_iopl, 3L));
    // The red-team review of 9175b1a: init's memory and descriptors, the LDT, personalities,
    // filesystem events (host activity, host users' budgets) and vsock (no network namespace
    // confines it; never connected to here: on a VM, CID 2 is the real hypervisor).
    report("pidfd_getfd_init", syscall(SYS_pidfd_getfd, syscall(SYS_pidfd_open, 1L, 0L), 0L, 0L));
    report("kcmp_init", syscall(SYS_kcmp, 1L, (long)getpid(), 0L /* KCMP_FILE */, 0L, 0L));
    char byte = 0;
    struct iovec local = {&byte, 1}, remote = {(void *)0x400000, 1};
    report("process_vm_readv_init", syscall(SYS_process_vm_readv, 1L, &local, 1L, &remote, 1L, 0L));
    report("modify_ldt", syscall(SYS_modify_ldt, 0L, attr, (long)sizeof attr));
    report("personality_read_implies_exec", syscall(SYS_personality, 0x0400000L));
    report("personality_no_randomize", syscall(SYS_personality, 0x0040000L));
    report("inotify_init1", syscall(SYS_inotify_init1, 0L));
    report("inotify_add_watch", syscall(SYS_inotify_add_watch, 0L, "/usr/bin", 0xfffL));
    report("fanotify_init", syscall(SYS_fanotify_init, 0L, 0L));
    report("socket_vsock", syscall(SYS_socket, 40L /* AF_VSOCK */, (long)SOCK_STREAM, 0L));
    report("socket_vsock_dgram", syscall(SYS_socket, 40L, (long)SOCK_DGRAM, 0L));
    int pair[2];
    report("socketpair_vsock", syscall(SYS_socketpair, 40L, (long)SOCK_STREAM, 0L, pair));
    report("socket_packet", syscall(SYS_socket, 17L /* AF_PACKET */, (long)SOCK_RAW, 0L));
    printf("done\n");
    return 0;
}
