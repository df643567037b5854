# Persistence: processes that detach (double fork + setsid, ignoring SIGTERM and SIGHUP) and keep
# writing a beacon file in the workdir. MARKER (from the environment) is in their argv so that the
# host can look for them. The run itself ends at once.
import os, signal, sys

marker = os.environ['MARKER']
loop = 'while :; do date +%s%N > "$1"; sleep 0.1; done'
for n in range(3):
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
            devnull = os.open('/dev/null', os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            os.execv('/bin/sh', ['sh', '-c', loop, marker, f'beacon-py-{n}'])
        os._exit(0)
print('detached', flush=True)
