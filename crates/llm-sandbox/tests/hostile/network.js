// Network from node: the host's listener on 127.0.0.1:HOST_PORT and DNS. Prints two lines.
const net = require('net');
const dns = require('dns');
const port = Number(process.env.HOST_PORT);
const socket = net.connect({ host: '127.0.0.1', port, timeout: 1000 });
socket.on('connect', () => { console.log('connected'); socket.destroy(); lookup(); });
socket.on('error', () => { console.log('unreachable'); lookup(); });
socket.on('timeout', () => { console.log('unreachable'); socket.destroy(); lookup(); });
let looked = false;
function lookup() {
  if (looked) return;
  looked = true;
  dns.lookup('example.com', (err) => console.log(err ? 'no dns' : 'resolved'));
}
