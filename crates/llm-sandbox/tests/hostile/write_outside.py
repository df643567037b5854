# Escape: tries to write outside the workdir. Prints each write that succeeded, then "done".
# From the environment: SENTINEL_PATH (a host file the test watches). (The native backend's
# /dev is a 64 KiB tmpfs of the sandbox's own, so new files there are not outside writes.)
import os

targets = [os.environ['SENTINEL_PATH'], '/etc/passwd', '/etc/hostname', '/etc/evil',
           '/usr/bin/evil', '/usr/lib/evil', '/bin/sh', '/evil', '/root/evil', '/home/evil',
           '/proc/sys/kernel/hostname', '/proc/sys/vm/drop_caches', '/proc/self/oom_score_adj',
           '/sys/kernel/mm/transparent_hugepage/enabled', '/dev/null/evil', '/var/evil']
for path in targets:
    try:
        # Append nothing harmful: an existing file is opened without truncation.
        with open(path, 'ab') as f:
            f.write(b'' if path.startswith(('/proc', '/sys')) else b'x')
        if path == '/proc/self/oom_score_adj':
            continue  # raising one's own oom score is allowed and harmless
        print('wrote', path)
    except OSError:
        pass
for directory in ['/', '/etc', '/usr', '/usr/local', '/var/tmp', '/opt', '/mnt', '/srv']:
    try:
        path = os.path.join(directory, 'evil-dir')
        os.mkdir(path)
        print('created', path)
    except OSError:
        pass
for source, dest in [('/etc/passwd', 'passwd-copy')]:
    try:
        os.rename(source, dest)
        print('moved', source)
    except OSError:
        pass
try:
    os.chown('.', 0, 0)
    print('chowned the workdir to root')
except OSError:
    pass
# /proc/sysrq-trigger: 'h' only prints help to the kernel log, should the write ever succeed.
try:
    with open('/proc/sysrq-trigger', 'w') as f:
        f.write('h')
    print('wrote /proc/sysrq-trigger')
except OSError:
    pass
print('done')
