# Disk fill: writes 1 MiB blocks into the workdir and into /tmp until the writes fail.
import errno, os

block = b'x' * (1 << 20)
for directory in ['.', '/tmp', '/dev/shm']:
    if not os.path.isdir(directory):
        print(directory, 'absent', flush=True)
        continue
    written = 0
    try:
        with open(os.path.join(directory, 'fill.bin'), 'wb') as f:
            while True:
                f.write(block)
                f.flush()
                written += 1
    except OSError as e:
        print(directory, 'full', errno.errorcode.get(e.errno, e.errno), written, flush=True)
