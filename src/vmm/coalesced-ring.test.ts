import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CoalescedRing } from './coalesced-ring.js';

const RING_MAX = Math.floor((4096 - 8) / 24);

function page(entries: Array<{ port: number; byte: number }>, first = 0): Uint8Array {
  const b = new Uint8Array(4096);
  const v = new DataView(b.buffer);
  entries.forEach((e, i) => {
    const o = 8 + ((first + i) % RING_MAX) * 24;
    v.setBigUint64(o, BigInt(e.port), true);
    v.setUint32(o + 8, 1, true);
    v.setUint32(o + 12, 1, true);
    b[o + 16] = e.byte;
  });
  v.setUint32(0, first, true);
  v.setUint32(4, (first + entries.length) % RING_MAX, true);
  return b;
}

test('drains queued port writes oldest first and advances first to last', () => {
  const p = page([{ port: 0x3f8, byte: 0x68 }, { port: 0x3f8, byte: 0x69 }], RING_MAX - 1);
  const seen: number[] = [];
  const n = new CoalescedRing(p).drain((isPio, port, data) => {
    assert.equal(isPio, true);
    assert.equal(port, 0x3f8);
    seen.push(data[0]!);
  });
  assert.equal(n, 2);
  assert.deepEqual(seen, [0x68, 0x69]);
  const v = new DataView(p.buffer);
  assert.equal(v.getUint32(0, true), v.getUint32(4, true));
  assert.equal(new CoalescedRing(p).drain(() => assert.fail('ring should be empty')), 0);
});

test('garbage indexes and lengths never loop forever or read outside the page', () => {
  fc.assert(fc.property(fc.uint8Array({ minLength: 4096, maxLength: 4096 }), (bytes) => {
    const n = new CoalescedRing(bytes).drain((_pio, _addr, data) => assert.ok(data.byteLength <= 8));
    assert.ok(n <= RING_MAX);
  }), { numRuns: 2000 });
});
