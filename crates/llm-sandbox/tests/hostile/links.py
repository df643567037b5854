# Hostile links for copy_from_runtime: symlinks to host paths (SECRET_PATH from the environment,
# /etc/passwd, /etc/shadow), a directory holding links that point out, hard links.
import os

secret = os.environ['SECRET_PATH']
os.symlink(secret, 'leak-secret')
os.symlink('/etc/passwd', 'leak-passwd')
os.makedirs('tree/sub')
open('tree/plain.txt', 'w').write('plain')
os.symlink('/etc/shadow', 'tree/sub/shadow')
os.symlink('../../../../../../../../etc/passwd', 'tree/up')
os.symlink(secret, 'tree/secret')
os.makedirs('fifo-tree')
os.mkfifo('fifo-tree/pipe')
os.makedirs('hard')
open('hard/a.txt', 'w').write('shared')
os.link('hard/a.txt', 'hard/b.txt')
os.makedirs('suid')
open('suid/tool', 'w').write('#!/bin/sh\n')
os.chmod('suid/tool', 0o6755)
os.chmod('suid', 0o2755)
for target in ['/etc/passwd', '/etc/hostname', '/usr/bin/env', secret]:
    try:
        os.link(target, 'hardlink-out')
        print('hard-linked', target)
    except OSError:
        pass
print('done')
