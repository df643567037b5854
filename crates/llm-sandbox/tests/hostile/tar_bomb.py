# Tar bombs: a sparse file of 64 GiB (a few bytes on disk), a directory of sparse files, and a
# real 24 MiB file of zeros.
import os

with open('sparse.bin', 'wb') as f:
    f.truncate(64 << 30)
    f.write(b'start')
os.makedirs('sparse-dir')
for n in range(64):
    with open(f'sparse-dir/{n}.bin', 'wb') as f:
        f.truncate(1 << 30)
with open('zeros.bin', 'wb') as f:
    for _ in range(24):
        f.write(bytes(1 << 20))
print('done')
