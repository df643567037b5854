# Persistence by killing the supervisor: detaches a beacon writer (MARKER in its argv), then
# kills its own parent, pid 1 and every process it may signal, itself last.
import os, signal, time

marker = os.environ['MARKER']
loop = 'while :; do date +%s%N > "$1"; sleep 0.1; done'
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        devnull = os.open('/dev/null', os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.execv('/bin/sh', ['sh', '-c', loop, marker, 'beacon-orphan'])
    os._exit(0)
time.sleep(0.3)
print('killing', flush=True)
# SIGTERM for the parent (a shell dies of it; a SIGKILL'd one would be reported as exit 137),
# SIGKILL for pid 1.
for pid, sig in ((os.getppid(), signal.SIGTERM), (1, signal.SIGKILL)):
    try:
        os.kill(pid, sig)
    except OSError:
        pass
time.sleep(0.3)
