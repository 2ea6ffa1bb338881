// virtio-rng: writable buffers come back full of the source's bytes, capped per request;
// readable-only chains get nothing.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TestDriver } from '../test-driver.js';
import { VirtioRng } from './device.js';
import { MAX_RNG_REQUEST_BYTES } from './queue-handler.js';

describe('virtio-rng', () => {
  it('fills writable buffers from the entropy source', () => {
    let n = 0;
    const dev = new VirtioRng({ source: { fill: (b) => { for (let i = 0; i < b.length; i++) b[i] = n++ & 0xff; } } });
    const d = new TestDriver(dev);
    d.init(1);
    const a = d.alloc(10);
    const b = d.alloc(6);
    d.post(0, [{ addr: a, len: 10, write: true }, { addr: b, len: 6, write: true }]);
    d.post(0, [{ addr: d.alloc(4), len: 4 }]);
    d.notify(0);
    assert.deepEqual(d.takeUsed(0).map((u) => u.len), [16, 0]);
    assert.deepEqual([...d.mem.read(b, 6)], [10, 11, 12, 13, 14, 15]);
    assert.equal(dev.metrics.bytes, 16);
  });

  it('caps one request', () => {
    const dev = new VirtioRng({ source: { fill: (b) => b.fill(1) } });
    const d = new TestDriver(dev);
    d.init(1);
    d.post(0, [{ addr: 0x80000, len: 0x70000, write: true }]);
    d.notify(0);
    assert.deepEqual(d.takeUsed(0).map((u) => u.len), [MAX_RNG_REQUEST_BYTES]);
  });
});
