# Raising limits: rlimits above the hard limit, other processes' limits, cgroup files.
# Prints each attempt that succeeded, then "done".
import os, resource

for name in ['RLIMIT_NPROC', 'RLIMIT_NOFILE', 'RLIMIT_AS', 'RLIMIT_DATA', 'RLIMIT_CORE', 'RLIMIT_FSIZE']:
    limit = getattr(resource, name)
    soft, hard = resource.getrlimit(limit)
    if hard == resource.RLIM_INFINITY:
        continue
    try:
        resource.setrlimit(limit, (hard + 1, hard + 1))
        print('raised', name)
    except (ValueError, OSError):
        pass
try:
    resource.prlimit(1, resource.RLIMIT_NOFILE, (16, 16))
    print('changed the limits of pid 1')
except (ValueError, OSError):
    pass
touched = 0
for root, dirs, files in os.walk('/sys/fs/cgroup'):
    for name in files:
        if name in ('memory.max', 'memory.limit_in_bytes', 'memory.memsw.limit_in_bytes',
                    'pids.max', 'cpu.max', 'cpu.cfs_quota_us', 'cgroup.procs', 'tasks',
                    'cgroup.subtree_control', 'release_agent', 'notify_on_release'):
            path = os.path.join(root, name)
            try:
                with open(path, 'a') as f:
                    f.write('')
                print('opened for writing', path)
            except OSError:
                pass
    for name in dirs:
        try:
            os.mkdir(os.path.join(root, name, 'evil'))
            print('created a cgroup under', os.path.join(root, name))
        except OSError:
            pass
try:
    os.mkdir('/sys/fs/cgroup/evil')
    print('created a cgroup')
except OSError:
    pass
for path in ['/proc/sys/kernel/pid_max', '/proc/sys/fs/file-max', '/proc/sys/kernel/core_pattern']:
    try:
        with open(path, 'a') as f:
            f.write('')
        print('opened for writing', path)
    except OSError:
        pass
print('done')
