# Escape: looks for host secrets. Prints one line per finding, then "done".
# From the environment: SECRET_PATH (a host file, mode 0600), SECRET_MARK (its content's prefix),
# SECRET_ENV (the name of a variable set in the host test process), TEST_PID and TEST_BIN (the
# host test process's pid and executable name), HOST_ENV_HEX (hex of one KEY=VALUE entry of the
# host test process's environment as it was started), BACKEND (native, docker or podman).
import os

env = os.environ
findings = []
host_entry = bytes.fromhex(env['HOST_ENV_HEX'])

def readable(path):
    try:
        if os.path.isdir(path):
            os.listdir(path)
        else:
            with open(path, 'rb') as f:
                f.read(1)
        return True
    except OSError:
        return False

for path in [env['SECRET_PATH'], os.path.dirname(env['SECRET_PATH']), '/etc/shadow',
             '/etc/gshadow', '/root', '/root/.ssh', '/var/run/docker.sock',
             '/run/podman/podman.sock', '/proc/kcore', '/dev/mem', '/dev/kmsg', '/dev/sda',
             '/dev/vda']:
    if readable(path):
        findings.append(f'readable {path}')
# The host's TLS private keys: a native sandbox binds only /etc/ssl/certs (an ordinary user's
# supplementary groups, e.g. ssl-cert, would otherwise open /etc/ssl/private).
if env['BACKEND'] == 'native' and os.path.lexists('/etc/ssl/private'):
    findings.append('/etc/ssl/private is in the sandbox')
if os.path.exists(env['SECRET_PATH']):
    findings.append('the host secret file exists in the sandbox')

# The parent's environment and the host's processes through /proc.
pids = [p for p in os.listdir('/proc') if p.isdigit()]
if len(pids) > 20:
    findings.append(f'{len(pids)} processes visible')
for pid in pids + ['self', 'thread-self']:
    for name in ['environ', 'cmdline']:
        try:
            with open(f'/proc/{pid}/{name}', 'rb') as f:
                data = f.read()
        except OSError:
            continue
        if (env['SECRET_ENV'] + '=').encode() in data:
            findings.append(f'/proc/{pid}/{name} holds the secret variable')
        if host_entry and host_entry in data and name == 'environ':
            findings.append(f'/proc/{pid}/environ holds the host process environment')
        if env['TEST_BIN'].encode() in data and name == 'cmdline':
            findings.append(f'/proc/{pid}/cmdline names the host test process')
    # Another process's memory, read at a mapped address (offset 0 is never mapped, and
    # reading there always fails). The probe and its parent (a container run's wrapper) are the
    # run's own.
    if pid in ('self', 'thread-self', str(os.getpid()), str(os.getppid())):
        continue
    try:
        with open(f'/proc/{pid}/maps') as maps:
            start = int(maps.readline().split('-')[0], 16)
        with open(f'/proc/{pid}/mem', 'rb') as f:
            f.seek(start)
            if f.read(1):
                findings.append(f'/proc/{pid}/mem readable')
    except (OSError, ValueError):
        pass
if os.path.exists(f"/proc/{env['TEST_PID']}/cwd") and readable(f"/proc/{env['TEST_PID']}/cwd"):
    findings.append('the test process is visible')
if env['SECRET_ENV'] in os.environ:
    findings.append('the secret variable is in our own environment')

# The secret's content anywhere readable (a bounded walk; /usr and the kernel's files skipped).
skip = {'/proc', '/sys', '/usr', '/dev', '/lib', '/lib32', '/lib64', '/libx32', '/bin', '/sbin'}
seen = 0
for top in ['/'] :
    for root, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if os.path.join(root, d) not in skip]
        for name in files:
            seen += 1
            if seen > 50_000:
                break
            path = os.path.join(root, name)
            try:
                if os.path.islink(path) or os.path.getsize(path) > 256 * 1024:
                    continue
                with open(path, 'rb') as f:
                    if env['SECRET_MARK'].encode() in f.read():
                        findings.append(f'secret content in {path}')
            except OSError:
                pass
for finding in findings:
    print(finding)
print('done')
