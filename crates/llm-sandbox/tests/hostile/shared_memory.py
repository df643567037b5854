# Memory the per-process rlimit does not count: memfd, shared anonymous mappings, shared maps of
# /dev/zero and System V segments, each asked for twice the sandbox's memory limit and touched a
# MiB at a time in a child of its own. On 9175b1a an ordinary user's sandbox (RLIMIT_DATA only)
# touched 512 MiB of memfd under --memory 128m. Prints "<method> <MiB touched> <how it ended>"
# per method, then "done". From the environment: MEMORY_LIMIT (bytes).
import ctypes
import mmap
import os

LIMIT = int(os.environ['MEMORY_LIMIT'])
SIZE = 2 * LIMIT
MIB = 1 << 20
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]

def address(mapping):
    return ctypes.addressof(ctypes.c_char.from_buffer(mapping))

def memfd():
    fd = os.memfd_create('hostile')
    os.ftruncate(fd, SIZE)
    mapping = mmap.mmap(fd, SIZE, flags=mmap.MAP_SHARED)
    return address(mapping), mapping

def shared_anonymous():
    mapping = mmap.mmap(-1, SIZE, flags=mmap.MAP_SHARED)
    return address(mapping), mapping

def dev_zero():
    fd = os.open('/dev/zero', os.O_RDWR)
    mapping = mmap.mmap(fd, SIZE, flags=mmap.MAP_SHARED)
    return address(mapping), mapping

def sysv():
    shmid = libc.shmget(0, SIZE, 0o1000 | 0o600)  # IPC_PRIVATE, IPC_CREAT
    if shmid < 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    addr = libc.shmat(shmid, None, 0)
    libc.shmctl(shmid, 0, None)  # IPC_RMID: gone once detached, whatever happens
    if addr in (None, ctypes.c_void_p(-1).value):
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    return addr, None

for name, make in [('memfd', memfd), ('shared_anonymous', shared_anonymous),
                   ('dev_zero', dev_zero), ('sysv', sysv)]:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        try:
            addr, keep = make()
            for offset in range(0, SIZE, MIB):
                libc.memset(addr + offset, 1, MIB)
                os.write(write_end, b'.')
            os.write(write_end, b'=all')
        except OSError as error:
            os.write(write_end, f'={error.strerror}'.encode())
        os._exit(0)
    os.close(write_end)
    report = b''
    while chunk := os.read(read_end, 65536):
        report += chunk
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    touched = report.count(b'.')
    ended = report.split(b'=', 1)[1].decode() if b'=' in report else f'killed by signal {os.WTERMSIG(status)}' if os.WIFSIGNALED(status) else 'exited'
    print(name, touched, ended.replace(' ', '_'))
print('done')
