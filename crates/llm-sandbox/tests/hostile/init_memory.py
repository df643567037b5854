# Escape: the memory and descriptors of the sandbox's init (and of every other process visible).
# On 9175b1a init was a fork of the caller: rootless, the code read and wrote /proc/1/mem, found
# the caller's heap secrets in it, and took init's control socket with pidfd_getfd.
# From the environment: HEAP_SECRET_HEX (hex of a string the host test process holds on its heap
# and never gives to any sandbox). Prints one line per finding, then "done".
import ctypes
import os

secret = bytes.fromhex(os.environ['HEAP_SECRET_HEX'])
libc = ctypes.CDLL(None, use_errno=True)
findings = []
# The probe itself, and the container backends' run wrapper (its parent), are the run's own;
# init (pid 1, the native probe's parent) is not.
own = {str(os.getpid())} | ({str(os.getppid())} if os.getppid() != 1 else set())

def regions(pid):
    try:
        with open(f'/proc/{pid}/maps') as maps:
            for line in maps:
                fields = line.split()
                start, end = (int(x, 16) for x in fields[0].split('-'))
                if fields[1].startswith('r'):
                    yield start, end, fields[-1] if len(fields) > 5 else '[anon]'
    except OSError:
        return

for pid in sorted((p for p in os.listdir('/proc') if p.isdigit() and p not in own), key=int):
    try:
        fd = os.open(f'/proc/{pid}/mem', os.O_RDWR)
        findings.append(f'/proc/{pid}/mem opens for writing')
        os.close(fd)
    except OSError:
        pass
    try:
        fd = os.open(f'/proc/{pid}/mem', os.O_RDONLY)
    except OSError:
        continue
    # Read at mapped addresses (offset 0 is never mapped: reading there proves nothing).
    readable = 0
    for start, end, name in regions(pid):
        try:
            data = os.pread(fd, min(end - start, 64 << 20), start)
        except OSError:
            continue
        readable += len(data)
        if secret in data:
            findings.append(f'the host heap secret is in {name} of pid {pid}')
    os.close(fd)
    if readable:
        findings.append(f'read {readable} bytes of /proc/{pid}/mem')

# Another process's descriptors and memory through syscalls.
SYS_pidfd_open, SYS_pidfd_getfd, SYS_kcmp, SYS_process_vm_readv = 434, 438, 312, 310
pidfd = libc.syscall(SYS_pidfd_open, 1, 0)
if pidfd >= 0:
    for target in range(16):
        got = libc.syscall(SYS_pidfd_getfd, pidfd, target, 0)
        if got >= 0:
            findings.append(f'pidfd_getfd took descriptor {target} of pid 1')
            os.close(got)
if libc.syscall(SYS_kcmp, 1, os.getpid(), 0, 0, 0) >= 0:
    findings.append('kcmp compares with pid 1')

class iovec(ctypes.Structure):
    _fields_ = [('base', ctypes.c_void_p), ('len', ctypes.c_size_t)]
for start, end, name in regions(1):
    buffer = ctypes.create_string_buffer(64)
    local, remote = iovec(ctypes.addressof(buffer), 64), iovec(start, 64)
    if libc.syscall(SYS_process_vm_readv, 1, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0) > 0:
        findings.append(f'process_vm_readv read {name} of pid 1')
        break

for finding in findings:
    print(finding)
print('done')
