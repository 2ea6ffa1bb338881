import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { heapGuestMemory } from '../memory/guest-memory.js';
import { BOOT_IDT_START, CMDLINE_START, MPTABLE_START, START_INFO_START } from '../arch/x86_64/layout.js';
import { KernelImageError } from './errors.js';
import { buildBzImage, buildElf, type ElfSpec, u32le, u64le } from './fixtures.js';
import { loadKernel } from './kernel-loader.js';

const MiB = 1 << 20;
const code = Uint8Array.from([0xf4, 0xeb, 0xfd, 0x90, 0x90, 0x90, 0x90, 0x90]);
const xenNote = (entry: number) => ({ name: 'Xen', type: 18, desc: u32le(entry) });
const swapvisorNote = (entry: bigint, vectors: bigint) => ({ name: 'swapvisor', type: 0x53560001, desc: u64le(entry, vectors) });

function kitElf(extra: Partial<ElfSpec> = {}): Uint8Array {
  return buildElf({
    segments: [{ paddr: 0x100000n, data: code, memsz: 0x3000 }],
    notes: [swapvisorNote(0x100000n, 0x101000n), xenNote(0x100004)],
    ...extra,
  });
}

function codeOf(f: () => unknown): string {
  try { f(); } catch (e) { if (e instanceof KernelImageError) return e.code; throw e; }
  return 'none';
}

describe('loadKernel', () => {
  it('boots a guest-kit ELF through the direct long-mode entry', () => {
    const mem = heapGuestMemory([{ start: 0, size: 32 * MiB }]);
    mem.fill(0x100000 + 8, 16, 0xcc);
    const initrd = new Uint8Array(0x100).fill(9);
    const k = loadKernel(mem, kitElf(), { cmdline: 'count=3', vcpus: 2, initrd });
    assert.equal(k.kind, 'long-mode');
    assert.equal(k.mpTableWritten, true);
    assert.equal(k.bootCpu.regs.rip, 0x100000n);
    assert.equal(k.bootCpu.regs.rbx, BigInt(START_INFO_START));
    assert.equal(k.bootCpu.sregs.cs.l, 1);
    assert.deepEqual(mem.read(0x100000, 8), code);
    assert.ok(mem.read(0x100008, 16).every((b) => b === 0), 'bss is zeroed');
    assert.equal(mem.readU16(BOOT_IDT_START), 0x1000);
    assert.equal(mem.readU32(START_INFO_START), 0x336ec578);
    assert.equal(mem.readU32(START_INFO_START + 12), 1);
    assert.equal(String.fromCharCode(...mem.read(CMDLINE_START, 8)), 'count=3\0');
    assert.equal(String.fromCharCode(...mem.read(MPTABLE_START, 4)), '_MP_');
    assert.deepEqual(k.loadedRanges, [
      { start: 0x100000, size: 0x3000, what: 'kernel' },
      { start: 32 * MiB - 0x1000, size: 0x100, what: 'initrd' },
    ]);
  });

  it('uses the PVH entry when asked, or when there is no swapvisor note', () => {
    const mem = heapGuestMemory([{ start: 0, size: 32 * MiB }]);
    const k = loadKernel(mem, kitElf(), { cmdline: '', vcpus: 1, entry: 'pvh' });
    assert.equal(k.kind, 'pvh');
    assert.equal(k.bootCpu.regs.rip, 0x100004n);
    assert.equal(k.bootCpu.sregs.cr0 & (1n << 31n), 0n);
    const pvhOnly = buildElf({ segments: [{ paddr: 0x1000000n, data: code }], notes: [{ name: 'Xen', type: 18, desc: u64le(0x1000002n) }] });
    const k2 = loadKernel(mem, pvhOnly, { cmdline: '', vcpus: 1 });
    assert.equal(k2.kind, 'pvh');
    assert.equal(k2.bootCpu.regs.rip, 0x1000002n);
    const fromSection = buildElf({ segments: [{ paddr: 0x1000000n, data: code }], notes: [xenNote(0x1000000)], notesAsSection: true });
    assert.equal(loadKernel(mem, fromSection, { cmdline: '', vcpus: 1 }).kind, 'pvh');
  });

  it('boots a bzImage through the 64-bit boot protocol', () => {
    const mem = heapGuestMemory([{ start: 0, size: 32 * MiB }]);
    const k = loadKernel(mem, buildBzImage(), { cmdline: 'console=ttyS0', vcpus: 4 });
    assert.equal(k.kind, 'bzimage');
    assert.equal(k.bootCpu.regs.rip, 0x1000200n);
    assert.equal(mem.readU16(MPTABLE_START + 16 + 34), 4 + 1 + 1 + 15 + 2);
  });

  it('boots the real guest-kit ELF both ways when it has been built', (t) => {
    const path = new URL('../../../guest/build/heartbeat.elf', import.meta.url);
    if (!existsSync(path)) { t.skip('guest kit not built'); return; }
    const image = new Uint8Array(readFileSync(path));
    const mem = heapGuestMemory([{ start: 0, size: 64 * MiB }]);
    assert.equal(loadKernel(mem, image, { cmdline: 'count=1', vcpus: 1 }).kind, 'long-mode');
    assert.equal(loadKernel(mem, image, { cmdline: 'count=1', vcpus: 1, entry: 'pvh' }).kind, 'pvh');
  });

  it('explains what is wrong with images it cannot boot', () => {
    const mem = heapGuestMemory([{ start: 0, size: 32 * MiB }]);
    const opts = { cmdline: '', vcpus: 1 };
    assert.throws(() => loadKernel(mem, Uint8Array.from([0x4d, 0x5a, 0x90, 0]), opts), /not an ELF or bzImage: first bytes 4d 5a 90 00/);
    const bare = buildElf({ segments: [{ paddr: 0x100000n, data: code }] });
    assert.throws(() => loadKernel(mem, bare, opts), /no PVH entry note and no swapvisor note: rebuild Linux with CONFIG_PVH=y/);
    const pvhOnly = buildElf({ segments: [{ paddr: 0x100000n, data: code }], notes: [xenNote(0x100000)] });
    assert.throws(() => loadKernel(mem, pvhOnly, { ...opts, entry: 'long-mode' }), /no swapvisor note/);
    assert.throws(() => loadKernel(mem, buildBzImage(), { ...opts, entry: 'long-mode' }), /bzImage/);
    const low = buildElf({ segments: [{ paddr: 0x8000n, data: code }], notes: [xenNote(0x8000)] });
    assert.throws(() => loadKernel(mem, low, opts), /below 1 MiB/);
    const high = buildElf({ segments: [{ paddr: 0x2000000n, data: code }], notes: [xenNote(0x2000000)] });
    assert.equal(codeOf(() => loadKernel(mem, high, opts)), 'ERR_KERNEL_PLACEMENT');
    const wild = buildElf({ segments: [{ paddr: 0x100000n, data: code }], notes: [xenNote(0x500000)] });
    assert.throws(() => loadKernel(mem, wild, opts), /not inside any loaded segment/);
    const badNote = buildElf({ segments: [{ paddr: 0x100000n, data: code }], notes: [{ name: 'swapvisor', type: 0x53560001, desc: u32le(1) }] });
    assert.throws(() => loadKernel(mem, badNote, opts), /expected 16/);
  });

  it('throws only KernelImageError and never loads outside RAM for mutated ELFs', () => {
    const base = kitElf({ segments: [{ paddr: 0x100000n, data: code, memsz: 0x3000 }, { paddr: 0x200000n, data: code }] });
    fc.assert(fc.property(
      fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
      fc.constantFrom<'auto' | 'pvh'>('auto', 'pvh'),
      (edits, entry) => {
        const mem = heapGuestMemory([{ start: 0, size: 8 * MiB }]);
        const image = base.slice();
        for (const [at, value] of edits) image[at] = value;
        try {
          const k = loadKernel(mem, image, { cmdline: 'x', vcpus: 2, entry });
          for (const r of k.loadedRanges) assert.ok(r.start >= MiB && r.start + r.size <= 8 * MiB);
        } catch (e) {
          if (!(e instanceof KernelImageError)) throw e;
        }
      }), { numRuns: 1500 });
  });

  it('throws only KernelImageError for random bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 4096 }), (bytes) => {
      const mem = heapGuestMemory([{ start: 0, size: 4 * MiB }]);
      assert.equal(['ERR_KERNEL_FORMAT', 'ERR_KERNEL_UNSUPPORTED', 'ERR_KERNEL_PLACEMENT'].includes(codeOf(() => loadKernel(mem, bytes, { cmdline: '', vcpus: 1 }))), true);
    }), { numRuns: 300 });
  });
});
