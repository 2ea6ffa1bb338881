import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { heapGuestMemory } from '../../memory/guest-memory.js';
import { BootLayoutError } from './errors.js';
import { IOAPIC_START, MPTABLE_START } from './layout.js';
import { writeMpTable } from './mptable.js';

const sum = (bytes: Uint8Array): number => bytes.reduce((s, b) => (s + b) & 0xff, 0);
const ascii = (bytes: Uint8Array): string => String.fromCharCode(...bytes);

describe('writeMpTable', () => {
  for (const vcpus of [1, 2, 8, 64]) {
    it(`writes a valid table for ${vcpus} vCPUs`, () => {
      const mem = heapGuestMemory([{ start: 0, size: 2 << 20 }]);
      assert.equal(writeMpTable(mem, { vcpus }), MPTABLE_START);
      const mpf = mem.read(MPTABLE_START, 16);
      assert.equal(ascii(mpf.subarray(0, 4)), '_MP_');
      assert.equal(sum(mpf), 0);
      assert.equal(mpf[8], 1);
      assert.equal(mpf[9], 4);
      const table = mem.readU32(MPTABLE_START + 4);
      assert.equal(table, MPTABLE_START + 16);
      const length = mem.readU16(table + 4);
      const bytes = mem.read(table, length);
      assert.equal(ascii(bytes.subarray(0, 4)), 'PCMP');
      assert.equal(sum(bytes), 0);
      assert.equal(mem.readU32(table + 36), 0xfee00000);
      const count = mem.readU16(table + 34);
      assert.equal(count, vcpus + 1 + 1 + 15 + 2);
      assert.equal(length, 44 + vcpus * 20 + (count - vcpus) * 8);

      let at = table + 44;
      for (let id = 0; id < vcpus; id++, at += 20) {
        assert.deepEqual([...mem.read(at, 4)], [0, id, 0x14, id === 0 ? 3 : 1]);
      }
      assert.equal(ascii(mem.read(at, 8)), '\u0001\u0000ISA   ');
      at += 8;
      assert.deepEqual([...mem.read(at, 4)], [2, vcpus, 0x11, 1]);
      assert.equal(mem.readU32(at + 4), IOAPIC_START);
      at += 8;
      const routes = new Map<number, number>();
      for (let i = 0; i < 15; i++, at += 8) {
        const e = mem.read(at, 8);
        assert.deepEqual([e[0], e[1], e[4], e[6]], [3, 0, 0, vcpus]);
        routes.set(e[5]!, e[7]!);
      }
      assert.equal(routes.get(0), 2);
      assert.equal(routes.has(2), false);
      for (let irq = 3; irq < 16; irq++) assert.equal(routes.get(irq), irq);
      assert.deepEqual([...mem.read(at, 8)], [4, 3, 0, 0, 0, 0, 0xff, 0]);
      assert.deepEqual([...mem.read(at + 8, 8)], [4, 1, 0, 0, 0, 0, 0xff, 1]);
    });
  }

  it('maps every ISA IRQ to its own pin when asked', () => {
    const mem = heapGuestMemory([{ start: 0, size: 2 << 20 }]);
    writeMpTable(mem, { vcpus: 1, irq0ToPin2: false });
    const table = MPTABLE_START + 16;
    assert.equal(mem.readU16(table + 34), 1 + 1 + 1 + 16 + 2);
    const first = table + 44 + 20 + 16;
    assert.deepEqual([mem.readU8(first + 5), mem.readU8(first + 7)], [0, 0]);
    assert.equal(sum(mem.read(table, mem.readU16(table + 4))), 0);
  });

  it('rejects vCPU counts that do not fit APIC ids, and RAM that does not cover the table', () => {
    const mem = heapGuestMemory([{ start: 0, size: 2 << 20 }]);
    assert.throws(() => writeMpTable(mem, { vcpus: 0 }), BootLayoutError);
    assert.throws(() => writeMpTable(mem, { vcpus: 255 }), BootLayoutError);
    writeMpTable(mem, { vcpus: 254 });
    const small = heapGuestMemory([{ start: 0, size: 0x9fc00 }]);
    assert.throws(() => writeMpTable(small, { vcpus: 1 }), /back \[0, 1 MiB\)/);
  });
});
