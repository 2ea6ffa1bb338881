import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { gpa } from '../../memory/gpa.js';
import { heapGuestMemory } from '../../memory/guest-memory.js';
import { EFER_LMA, EFER_LME, X86_CR0_AM, X86_CR0_PG, X86_CR0_WP, X86_CR4_PAE } from './cpu-state.js';
import { BootLayoutError } from './errors.js';
import {
  BOOT_GDT_START, BOOT_IDT_START, BOOT_STACK_TOP, BOOT_TSS_START, PDE_START, PDPTE_START, PML4_START, START_INFO_START,
} from './layout.js';
import { BOOT_TSS_LIMIT, setupLongModeEntry } from './long-mode.js';

const MiB = 1 << 20;

function setup() {
  const mem = heapGuestMemory([{ start: 0, size: 4 * MiB }]);
  const cpu = setupLongModeEntry(mem, { entry64: gpa(0x100000), vectorTable: gpa(0x123450), vcpuCount: 2 });
  return { mem, cpu };
}

describe('setupLongModeEntry', () => {
  it('writes the GDT with exact descriptor values', () => {
    const { mem } = setup();
    assert.equal(mem.readU64(BOOT_GDT_START), 0n);
    assert.equal(mem.readU64(BOOT_GDT_START + 0x08), 0x00af9b000000ffffn);
    assert.equal(mem.readU64(BOOT_GDT_START + 0x10), 0x00cf93000000ffffn);
    assert.equal(mem.readU64(BOOT_GDT_START + 0x18), 0x00cff3000000ffffn);
    assert.equal(mem.readU64(BOOT_GDT_START + 0x20), 0x00affb000000ffffn);
    // TSS: limit 0x2068, base 0x4000, type 9 (available 64-bit TSS), present, G=0; then base[63:32] = 0.
    assert.equal(BOOT_TSS_LIMIT, 0x2068);
    assert.equal(mem.readU64(BOOT_GDT_START + 0x28), 0x0000890040002068n);
    assert.equal(mem.readU64(BOOT_GDT_START + 0x30), 0n);
  });

  it('writes the TSS with rsp0, the I/O map base, a zero bitmap and the 0xff terminator', () => {
    const { mem } = setup();
    assert.equal(mem.readU32(BOOT_TSS_START), 0);
    assert.equal(mem.readU64(BOOT_TSS_START + 4), BigInt(BOOT_STACK_TOP));
    assert.equal(mem.readU16(BOOT_TSS_START + 0x66), 0x68);
    assert.ok(mem.read(BOOT_TSS_START + 0x68, 8192).every((b) => b === 0));
    assert.equal(mem.readU8(BOOT_TSS_START + 0x68 + 8192), 0xff);
  });

  it('writes 256 interrupt gates into the vector table, #BP at DPL3', () => {
    const { mem } = setup();
    // Gate 0 → 0x123450: offset lo 0x3450, selector 8, IST 0, 0x8e, offset mid 0x0012, offset hi 0.
    assert.deepEqual([...mem.read(BOOT_IDT_START, 16)],
      [0x50, 0x34, 0x08, 0x00, 0x00, 0x8e, 0x12, 0x00, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual([...mem.read(BOOT_IDT_START + 3 * 16, 8)], [0x80, 0x34, 0x08, 0x00, 0x00, 0xee, 0x12, 0x00]);
    const last = BOOT_IDT_START + 255 * 16;
    assert.equal(mem.readU16(last), (0x3450 + 255 * 16) & 0xffff);
    assert.equal(mem.readU8(last + 5), 0x8e);
  });

  it('identity-maps 4 GiB with 2 MiB pages, U=1 at every level', () => {
    const { mem } = setup();
    assert.equal(mem.readU64(PML4_START), BigInt(PDPTE_START) | 7n);
    assert.equal(mem.readU64(PML4_START + 8), 0n);
    for (let i = 0; i < 4; i++) assert.equal(mem.readU64(PDPTE_START + 8 * i), BigInt(PDE_START + 0x1000 * i) | 7n);
    assert.equal(mem.readU64(PDPTE_START + 32), 0n);
    assert.equal(mem.readU64(PDE_START), 0x87n);
    assert.equal(mem.readU64(PDE_START + 8), 0x200087n);
    assert.equal(mem.readU64(PDE_START + 0x3ff8), 0xffe00087n);
  });

  it('returns the long-mode CPU state', () => {
    const { cpu } = setup();
    const s = cpu.sregs;
    assert.equal(s.cr0 & X86_CR0_PG, X86_CR0_PG);
    assert.equal(s.cr0 & X86_CR0_WP, X86_CR0_WP);
    assert.equal(s.cr0 & X86_CR0_AM, 0n);
    assert.equal(s.cr0, 0x80010033n);
    assert.equal(s.cr3, BigInt(PML4_START));
    assert.equal(s.cr4, X86_CR4_PAE);
    assert.equal(s.efer, EFER_LME | EFER_LMA);
    assert.deepEqual([s.cs.selector, s.cs.type, s.cs.l, s.cs.s, s.cs.dpl, s.cs.present], [0x08, 0xb, 1, 1, 0, 1]);
    for (const seg of [s.ds, s.es, s.fs, s.gs, s.ss]) assert.deepEqual([seg.selector, seg.type, seg.s], [0x10, 0x3, 1]);
    assert.deepEqual([s.tr.selector, s.tr.type, s.tr.s, s.tr.base, s.tr.limit, s.tr.g, s.tr.present],
      [0x28, 0xb, 0, BigInt(BOOT_TSS_START), 0x2068, 0, 1]);
    assert.equal(s.ldt.unusable, 1);
    assert.deepEqual(s.gdt, { base: BigInt(BOOT_GDT_START), limit: 0x37 });
    assert.deepEqual(s.idt, { base: BigInt(BOOT_IDT_START), limit: 0xfff });
    assert.deepEqual(cpu.regs, { rip: 0x100000n, rsp: BigInt(BOOT_STACK_TOP), rbx: BigInt(START_INFO_START), rflags: 2n });
  });

  it('rejects a vCPU count outside 1..254', () => {
    const mem = heapGuestMemory([{ start: 0, size: 4 * MiB }]);
    assert.throws(() => setupLongModeEntry(mem, { entry64: gpa(0x100000), vectorTable: gpa(0), vcpuCount: 0 }), BootLayoutError);
    assert.throws(() => setupLongModeEntry(mem, { entry64: gpa(0x100000), vectorTable: gpa(0), vcpuCount: 255 }), BootLayoutError);
  });
});
