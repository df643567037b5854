# Inode exhaustion: creates empty files in the workdir and in /tmp until creation fails.
import errno, os

for directory in ['/tmp/many', 'many']:
    os.makedirs(directory, exist_ok=True)
    n = 0
    try:
        while n < 5_000_000:
            os.close(os.open(f'{directory}/{n}', os.O_CREAT | os.O_WRONLY, 0o644))
            n += 1
        print(directory, 'created', n, flush=True)
    except OSError as e:
        print(directory, 'stopped', errno.errorcode.get(e.errno, e.errno), n, flush=True)
