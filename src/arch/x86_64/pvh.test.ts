import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { gpa } from '../../memory/gpa.js';
import { heapGuestMemory } from '../../memory/guest-memory.js';
import { X86_CR0_ET, X86_CR0_PE } from './cpu-state.js';
import { BOOT_GDT_START, START_INFO_START } from './layout.js';
import { setupPvhEntry } from './pvh.js';

describe('setupPvhEntry', () => {
  it('writes a flat 32-bit GDT with a busy TSS descriptor', () => {
    const mem = heapGuestMemory([{ start: 0, size: 1 << 20 }]);
    setupPvhEntry(mem, gpa(0x1000000));
    assert.equal(mem.readU64(BOOT_GDT_START), 0n);
    assert.equal(mem.readU64(BOOT_GDT_START + 0x08), 0x00cf9b000000ffffn);
    assert.equal(mem.readU64(BOOT_GDT_START + 0x10), 0x00cf93000000ffffn);
    assert.equal(mem.readU64(BOOT_GDT_START + 0x18), 0x00008b0000000067n);
  });

  it('starts in protected mode with paging off and EBX = start info', () => {
    const mem = heapGuestMemory([{ start: 0, size: 1 << 20 }]);
    const { regs, sregs } = setupPvhEntry(mem, gpa(0x1000000));
    assert.deepEqual(regs, { rip: 0x1000000n, rbx: BigInt(START_INFO_START), rflags: 2n });
    assert.equal(sregs.cr0, X86_CR0_PE | X86_CR0_ET);
    assert.equal(sregs.cr4, 0n);
    assert.equal(sregs.efer, 0n);
    assert.deepEqual([sregs.cs.selector, sregs.cs.type, sregs.cs.db, sregs.cs.l, sregs.cs.g, sregs.cs.limit], [0x08, 0xb, 1, 0, 1, 0xffffffff]);
    for (const s of [sregs.ds, sregs.es, sregs.ss]) assert.deepEqual([s.selector, s.type, s.db], [0x10, 0x3, 1]);
    assert.deepEqual([sregs.tr.type, sregs.tr.s, sregs.tr.base, sregs.tr.limit, sregs.tr.present], [0xb, 0, 0n, 0x67, 1]);
    assert.deepEqual(sregs.gdt, { base: BigInt(BOOT_GDT_START), limit: 0x1f });
  });
});
