# Zombies: children that exit and are never waited for, plus orphans that become zombies of
# whoever adopts them. The run exits while they are zombies.
import os, time

for _ in range(20):
    if os.fork() == 0:
        os._exit(0)
for _ in range(5):
    if os.fork() == 0:
        if os.fork() == 0:
            time.sleep(0.2)
            os._exit(0)
        os._exit(0)
time.sleep(0.5)
zombies = 0
for pid in os.listdir('/proc'):
    if pid.isdigit():
        try:
            if open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()[0] == 'Z':
                zombies += 1
        except OSError:
            pass
print('zombies', zombies)
