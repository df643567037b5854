# Network: the host's listener (HOST_PORT on each of HOST_IPS), DNS, raw and packet sockets.
# Prints one line per check.
import os, socket

port = int(os.environ['HOST_PORT'])
for ip in os.environ['HOST_IPS'].split(','):
    try:
        socket.create_connection((ip, port), timeout=1).close()
        print('connected', ip)
    except OSError:
        print('unreachable', ip)
for name in ['example.com', 'localhost.localdomain.invalid', 'host.docker.internal', 'pypi.org']:
    try:
        socket.getaddrinfo(name, 443)
        print('resolved', name)
    except OSError:
        print('no dns', name)
for family, kind, proto, label in [
        (socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP, 'raw icmp'),
        (socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW, 'raw ip'),
        (socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6, 'raw icmpv6'),
        (socket.AF_PACKET, socket.SOCK_RAW, 0, 'packet')]:
    try:
        socket.socket(family, kind, proto).close()
        print('opened', label)
    except OSError:
        print('refused', label)
interfaces = sorted(name for _, name in socket.if_nameindex())
print('interfaces', ','.join(interfaces))
