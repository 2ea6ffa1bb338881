// virtio-console: guest output reaches the sink; host input waits for receive buffers, survives
// a save/restore, and is delivered once, in order.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { FUZZ_SCALE, TestDriver } from '../test-driver.js';
import { VirtioMmioTransport } from '../mmio-transport.js';
import { RECEIVE_QUEUE, TRANSMIT_QUEUE, VirtioConsole } from './device.js';

function setup() {
  const out: number[] = [];
  const dev = new VirtioConsole({ sink: { write: (b) => out.push(...b) } });
  const d = new TestDriver(dev);
  d.init(2);
  return { out, dev, d };
}

describe('virtio-console', () => {
  it('sends guest output to the sink', () => {
    const { out, d } = setup();
    d.post(TRANSMIT_QUEUE, [{ addr: d.alloc(5, new TextEncoder().encode('hello')), len: 5 }]);
    d.notify(TRANSMIT_QUEUE);
    assert.equal(new TextDecoder().decode(Uint8Array.from(out)), 'hello');
  });

  it('holds host input until a receive buffer comes, across a save and restore', () => {
    const { dev, d } = setup();
    assert.equal(dev.input(new TextEncoder().encode('abc')), 3);
    const state = structuredClone(d.transport.saveState());
    const restored = VirtioConsole.restore({ sink: { write: () => {} } }, state.device);
    d.transport = VirtioMmioTransport.restore({ memory: d.mem, irq: d.irq }, restored, state);
    const buf = d.alloc(2);
    d.post(RECEIVE_QUEUE, [{ addr: buf, len: 2, write: true }]);
    d.notify(RECEIVE_QUEUE);
    assert.deepEqual(d.takeUsed(RECEIVE_QUEUE).map((u) => u.len), [2]);
    assert.equal(new TextDecoder().decode(d.mem.read(buf, 2)), 'ab');
    const buf2 = d.alloc(8);
    d.post(RECEIVE_QUEUE, [{ addr: buf2, len: 8, write: true }]);
    d.notify(RECEIVE_QUEUE);
    assert.equal(new TextDecoder().decode(d.mem.read(buf2, 1)), 'c');
  });

  it('property: input bytes arrive in order, none lost or repeated', () => {
    fc.assert(fc.property(fc.array(fc.uint8Array({ minLength: 1, maxLength: 50 }), { maxLength: 10 }), fc.array(fc.integer({ min: 1, max: 64 }), { maxLength: 14 }), (chunks, bufs) => {
      const { dev, d } = setup();
      const sent: number[] = [];
      const got: number[] = [];
      bufs.forEach((len, i) => {
        const c = chunks[i];
        if (c) { dev.input(c); sent.push(...c); }
        const a = d.alloc(len);
        d.post(RECEIVE_QUEUE, [{ addr: a, len, write: true }]);
        d.notify(RECEIVE_QUEUE);
        for (const u of d.takeUsed(RECEIVE_QUEUE)) got.push(...d.mem.read(a, u.len));
      });
      assert.deepEqual(got, sent.slice(0, got.length));
      assert.equal(got.length + dev.saveState().pendingInput.byteLength, sent.length);
    }), { numRuns: 2_000 * FUZZ_SCALE });
  });
});
