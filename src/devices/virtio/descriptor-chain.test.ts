// Unit and property tests of the descriptor-chain parser with hostile descriptor tables: loops,
// addresses outside RAM, wrapping lengths, overlong and nested-indirect chains. Together with the
// device fuzzers these run well over 10^5 generated cases by default (SWAPVISOR_FUZZ_SCALE scales).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { heapGuestMemory } from '../../memory/guest-memory.js';
import { parseDescriptorChain, VirtqueueError } from './descriptor-chain.js';
import { VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from './virtio-abi.js';

import { FUZZ_SCALE } from './test-driver.js';
const RAM = 0x20000;
const TABLE = 0x1000;
const INDIRECT = 0x2000;

interface Desc { addr: bigint; len: number; flags: number; next: number }

function writeTable(mem: ReturnType<typeof heapGuestMemory>, base: number, descs: readonly Desc[]): void {
  descs.forEach((d, i) => {
    const v = mem.view(base + i * 16, 16);
    v.setBigUint64(0, d.addr, true);
    v.setUint32(8, d.len, true);
    v.setUint16(12, d.flags, true);
    v.setUint16(14, d.next, true);
  });
}

const address = fc.oneof(
  fc.bigInt({ min: 0n, max: BigInt(RAM) }),
  fc.constantFrom(0n, BigInt(RAM - 1), BigInt(RAM), 2n ** 53n, 2n ** 64n - 1n, 2n ** 64n - 16n, BigInt(INDIRECT)),
  fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
);
const length = fc.oneof(fc.integer({ min: 0, max: 0x3000 }), fc.constantFrom(0, 16, 32, 0xffffffff, 0x80000000, RAM));
const flags = fc.integer({ min: 0, max: 7 });
const desc = (maxNext: number) => fc.record({ addr: address, len: length, flags, next: fc.integer({ min: 0, max: maxNext }) });

describe('virtio: descriptor chain parser', () => {
  it('reads a chain of readable then writable buffers', () => {
    const mem = heapGuestMemory([{ start: 0, size: RAM }]);
    writeTable(mem, TABLE, [
      { addr: 0x4000n, len: 16, flags: VIRTQ_DESC_F_NEXT, next: 2 },
      { addr: 0n, len: 0, flags: 0, next: 0 },
      { addr: 0x5000n, len: 512, flags: VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, next: 3 },
      { addr: 0x6000n, len: 1, flags: VIRTQ_DESC_F_WRITE, next: 0 },
    ]);
    const c = parseDescriptorChain(mem, TABLE, 4, 0);
    assert.deepEqual(c.readable, [{ addr: 0x4000, len: 16 }]);
    assert.deepEqual(c.writable, [{ addr: 0x5000, len: 512 }, { addr: 0x6000, len: 1 }]);
    assert.equal(c.readableBytes, 16);
    assert.equal(c.writableBytes, 513);
  });

  it('follows an indirect table', () => {
    const mem = heapGuestMemory([{ start: 0, size: RAM }]);
    writeTable(mem, TABLE, [{ addr: BigInt(INDIRECT), len: 32, flags: VIRTQ_DESC_F_INDIRECT, next: 0 }]);
    writeTable(mem, INDIRECT, [
      { addr: 0x4000n, len: 16, flags: VIRTQ_DESC_F_NEXT, next: 1 },
      { addr: 0x5000n, len: 8, flags: VIRTQ_DESC_F_WRITE, next: 0 },
    ]);
    const c = parseDescriptorChain(mem, TABLE, 4, 0);
    assert.equal(c.readableBytes, 16);
    assert.equal(c.writableBytes, 8);
  });

  const refusals: Array<[string, Desc[], string]> = [
    ['a loop', [{ addr: 0x4000n, len: 4, flags: VIRTQ_DESC_F_NEXT, next: 1 }, { addr: 0x4000n, len: 4, flags: VIRTQ_DESC_F_NEXT, next: 0 }], 'loop'],
    ['a buffer past RAM', [{ addr: BigInt(RAM - 4), len: 8, flags: 0, next: 0 }], 'out-of-range'],
    ['a length that wraps 2^64', [{ addr: 2n ** 64n - 4n, len: 8, flags: 0, next: 0 }], 'wrap'],
    ['a next index past the table', [{ addr: 0x4000n, len: 4, flags: VIRTQ_DESC_F_NEXT, next: 9 }], 'bad-head'],
    ['readable after writable', [{ addr: 0x4000n, len: 4, flags: VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, next: 1 }, { addr: 0x4000n, len: 4, flags: 0, next: 0 }], 'readable-after-writable'],
    ['INDIRECT with NEXT', [{ addr: BigInt(INDIRECT), len: 16, flags: VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, next: 1 }], 'bad-indirect'],
    ['an indirect table of 15 bytes', [{ addr: BigInt(INDIRECT), len: 15, flags: VIRTQ_DESC_F_INDIRECT, next: 0 }], 'bad-indirect'],
    ['an indirect table of 4096 entries', [{ addr: BigInt(INDIRECT), len: 16 * 4096, flags: VIRTQ_DESC_F_INDIRECT, next: 0 }], 'bad-indirect'],
  ];
  for (const [what, table, fault] of refusals) {
    it(`refuses ${what}`, () => {
      const mem = heapGuestMemory([{ start: 0, size: RAM }]);
      writeTable(mem, TABLE, table);
      assert.throws(() => parseDescriptorChain(mem, TABLE, 4, 0), (e: unknown) => e instanceof VirtqueueError && e.fault === fault);
    });
  }

  it('refuses an indirect table inside an indirect table', () => {
    const mem = heapGuestMemory([{ start: 0, size: RAM }]);
    writeTable(mem, TABLE, [{ addr: BigInt(INDIRECT), len: 16, flags: VIRTQ_DESC_F_INDIRECT, next: 0 }]);
    writeTable(mem, INDIRECT, [{ addr: BigInt(INDIRECT), len: 16, flags: VIRTQ_DESC_F_INDIRECT, next: 0 }]);
    assert.throws(() => parseDescriptorChain(mem, TABLE, 4, 0), (e: unknown) => e instanceof VirtqueueError && e.fault === 'nested-indirect');
  });

  it('property: any descriptor table yields in-RAM buffers or a VirtqueueError, never anything else', () => {
    fc.assert(fc.property(
      fc.constantFrom(1, 2, 4, 8, 16), fc.array(desc(20), { minLength: 16, maxLength: 16 }), fc.array(desc(20), { minLength: 8, maxLength: 8 }), fc.integer({ min: 0, max: 20 }),
      (size, table, indirect, head) => {
        const mem = heapGuestMemory([{ start: 0, size: RAM }]);
        writeTable(mem, TABLE, table);
        writeTable(mem, INDIRECT, indirect);
        let chain;
        try {
          chain = parseDescriptorChain(mem, TABLE, size, head);
        } catch (e) {
          assert.ok(e instanceof VirtqueueError, `unexpected ${String(e)}`);
          return;
        }
        let total = 0;
        for (const b of [...chain.readable, ...chain.writable]) {
          assert.ok(b.len === 0 || (b.addr >= 0 && b.addr + b.len <= RAM), `buffer ${b.addr}+${b.len} escapes RAM`);
          total++;
        }
        assert.ok(total <= size + 8, 'a chain cannot be longer than its table(s)');
      },
    ), { numRuns: 60_000 * FUZZ_SCALE });
  });

  it('property: a well-formed chain parses to exactly its buffers', () => {
    const seg = fc.record({ addr: fc.integer({ min: 0, max: RAM - 0x1000 }), len: fc.integer({ min: 1, max: 0x1000 }) });
    fc.assert(fc.property(fc.array(seg, { maxLength: 8 }), fc.array(seg, { maxLength: 8 }), (readable, writable) => {
      fc.pre(readable.length + writable.length > 0);
      const mem = heapGuestMemory([{ start: 0, size: RAM }]);
      const all = [...readable.map((s) => ({ ...s, w: false })), ...writable.map((s) => ({ ...s, w: true }))];
      writeTable(mem, TABLE, all.map((s, i) => ({
        addr: BigInt(s.addr), len: s.len, next: i + 1,
        flags: (i < all.length - 1 ? VIRTQ_DESC_F_NEXT : 0) | (s.w ? VIRTQ_DESC_F_WRITE : 0),
      })));
      const c = parseDescriptorChain(mem, TABLE, 16, 0);
      assert.deepEqual(c.readable, readable);
      assert.deepEqual(c.writable, writable);
    }), { numRuns: 10_000 * FUZZ_SCALE });
  });
});
