# Memory bomb: allocates and touches memory in 8 MiB chunks until 4 GiB.
chunks = []
for i in range(512):
    chunks.append(bytearray(b'x' * (8 << 20)))
print('survived', len(chunks) * 8, 'MiB', flush=True)
