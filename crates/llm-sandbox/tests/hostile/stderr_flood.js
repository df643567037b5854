// Output flood on both streams: 2 GiB each, written as fast as node can.
const fs = require('fs');
const block = Buffer.alloc(1 << 20, 'y');
for (let i = 0; i < 2048; i++) {
  fs.writeSync(2, block);
  fs.writeSync(1, block);
}
