import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { heapGuestMemory } from '../memory/guest-memory.js';
import { BOOT_GDT_START, CMDLINE_START, ZERO_PAGE_START } from '../arch/x86_64/layout.js';
import { loadBzImage, parseSetupHeader } from './bzimage.js';
import { KernelImageError } from './errors.js';
import { buildBzImage } from './fixtures.js';

const MiB = 1 << 20;
const zp = ZERO_PAGE_START;

function codeOf(f: () => unknown): string {
  try { f(); } catch (e) { if (e instanceof KernelImageError) return e.code; throw e; }
  return 'none';
}

describe('parseSetupHeader', () => {
  it('reads the fields the loader uses, with setup_sects 0 meaning 4', () => {
    const hdr = parseSetupHeader(buildBzImage({ setupSects: 0, initSize: 0x123000 }));
    assert.equal(hdr.setupSects, 4);
    assert.equal(hdr.version, 0x020f);
    assert.equal(hdr.initSize, 0x123000);
    assert.equal(hdr.prefAddress, 0x1000000n);
    assert.equal(hdr.headerEnd, 0x26c);
    assert.equal(hdr.relocatable, true);
  });

  it('rejects images without the magic, boot flag, protocol 2.12 or a 64-bit entry', () => {
    const mem = heapGuestMemory([{ start: 0, size: 64 * MiB }]);
    const noMagic = buildBzImage(); noMagic[0x202] = 0;
    assert.equal(codeOf(() => parseSetupHeader(noMagic)), 'ERR_KERNEL_FORMAT');
    const noFlag = buildBzImage(); noFlag[0x1fe] = 0;
    assert.equal(codeOf(() => parseSetupHeader(noFlag)), 'ERR_KERNEL_FORMAT');
    assert.throws(() => parseSetupHeader(buildBzImage({ version: 0x0206 })), /protocol 2.06 has no 64-bit entry/);
    assert.throws(() => loadBzImage(mem, buildBzImage({ xloadflags: 0 }), { cmdline: '' }), /XLF_KERNEL_64/);
    assert.throws(() => loadBzImage(mem, buildBzImage({ loadflags: 0 }), { cmdline: '' }), /zImage/);
    assert.throws(() => loadBzImage(mem, buildBzImage({ kernelSize: 0x100 }), { cmdline: '' }), /no protected-mode kernel/);
    assert.throws(() => loadBzImage(mem, buildBzImage({ cmdlineSize: 4 }), { cmdline: 'quiet' }), /at most 4/);
  });
});

describe('loadBzImage', () => {
  it('loads the kernel at pref_address and builds the zero page', () => {
    const mem = heapGuestMemory([{ start: 0, size: 64 * MiB }]);
    const image = buildBzImage({ kernelSize: 0x3000, initSize: 0x400000 });
    const initrd = new Uint8Array(0x1800).fill(0xab);
    const { bootCpu, loadedRanges } = loadBzImage(mem, image, { cmdline: 'console=ttyS0', initrd });
    const setupSize = 5 * 512;
    assert.deepEqual(mem.read(0x1000000, 0x3000), image.subarray(setupSize));
    assert.deepEqual(loadedRanges[0], { start: 0x1000000, size: 0x400000, what: 'kernel' });
    // The initrd sits page-aligned at the top of RAM.
    const initrdStart = 64 * MiB - 0x2000;
    assert.deepEqual(loadedRanges[1], { start: initrdStart, size: 0x1800, what: 'initrd' });
    assert.deepEqual(mem.read(initrdStart, 0x1800), initrd);
    // The setup header is copied, then the loader's fields.
    assert.deepEqual(mem.read(zp + 0x1f1, 0x210 - 0x1f1), image.subarray(0x1f1, 0x210));
    assert.equal(mem.readU32(zp + 0x202), 0x53726448);
    assert.equal(mem.readU8(zp + 0x210), 0xff);
    assert.equal(mem.readU32(zp + 0x214), 0x1000000);
    assert.equal(mem.readU32(zp + 0x218), initrdStart);
    assert.equal(mem.readU32(zp + 0x21c), 0x1800);
    assert.equal(mem.readU32(zp + 0x228), CMDLINE_START);
    assert.equal(mem.readU32(zp + 0x0c8), 0);
    assert.equal(String.fromCharCode(...mem.read(CMDLINE_START, 14)), 'console=ttyS0\0');
    assert.equal(mem.readU8(zp + 0x1ef), 0);
    // e820: low RAM, reserved, RAM from 1 MiB.
    assert.equal(mem.readU8(zp + 0x1e8), 3);
    const e820 = (i: number): [bigint, bigint, number] =>
      [mem.readU64(zp + 0x2d0 + 20 * i), mem.readU64(zp + 0x2d0 + 20 * i + 8), mem.readU32(zp + 0x2d0 + 20 * i + 16)];
    assert.deepEqual(e820(0), [0n, 0x9fc00n, 1]);
    assert.deepEqual(e820(1), [0x9fc00n, 0x60400n, 2]);
    assert.deepEqual(e820(2), [0x100000n, BigInt(63 * MiB), 1]);
    assert.deepEqual(e820(3), [0n, 0n, 0]);
    // 64-bit entry: startup_64 at load + 0x200, RSI = zero page, __BOOT_CS/__BOOT_DS.
    assert.equal(bootCpu.regs.rip, 0x1000200n);
    assert.equal(bootCpu.regs.rsi, BigInt(zp));
    assert.equal(bootCpu.regs.rflags, 2n);
    assert.deepEqual([bootCpu.sregs.cs.selector, bootCpu.sregs.cs.l, bootCpu.sregs.ds.selector, bootCpu.sregs.ss.selector], [0x10, 1, 0x18, 0x18]);
    assert.equal(mem.readU64(BOOT_GDT_START + 0x10), 0x00af9b000000ffffn);
    assert.equal(mem.readU64(BOOT_GDT_START + 0x18), 0x00cf93000000ffffn);
    assert.equal(mem.readU64(BOOT_GDT_START + 0x20), 0x0000890000000067n);
    assert.deepEqual(bootCpu.sregs.gdt, { base: BigInt(BOOT_GDT_START), limit: 0x2f });
  });

  it('falls back to an aligned address above 1 MiB, or 1 MiB for a fixed kernel', () => {
    const mem = heapGuestMemory([{ start: 0, size: 16 * MiB }]);
    const r1 = loadBzImage(mem, buildBzImage({ initSize: 0x800000 }), { cmdline: '' });
    assert.equal(r1.loadedRanges[0]!.start, 0x200000);
    const r2 = loadBzImage(mem, buildBzImage({ relocatable: false }), { cmdline: '' });
    assert.equal(r2.loadedRanges[0]!.start, 0x100000);
    assert.equal(r2.bootCpu.regs.rip, 0x100200n);
  });

  it('keeps the initrd below initrd_addr_max and refuses what does not fit', () => {
    const mem = heapGuestMemory([{ start: 0, size: 64 * MiB }]);
    const r = loadBzImage(mem, buildBzImage({ initrdAddrMax: 0x1ffffff }), { cmdline: '', initrd: new Uint8Array(100) });
    assert.equal(r.loadedRanges[1]!.start, 0x2000000 - 0x1000);
    assert.equal(codeOf(() => loadBzImage(mem, buildBzImage(), { cmdline: '', initrd: new Uint8Array(60 * MiB) })), 'ERR_KERNEL_PLACEMENT');
    const small = heapGuestMemory([{ start: 0, size: 4 * MiB }]);
    assert.equal(codeOf(() => loadBzImage(small, buildBzImage({ initSize: 0x1000000 }), { cmdline: '' })), 'ERR_KERNEL_PLACEMENT');
  });

  it('throws only KernelImageError for mutated and truncated bzImages', () => {
    const base = buildBzImage({ kernelSize: 0x400 });
    const headerByte = fc.tuple(fc.integer({ min: 0x1f1, max: 0x26b }), fc.integer({ min: 0, max: 255 }));
    fc.assert(fc.property(fc.array(headerByte, { maxLength: 10 }), fc.nat(base.length), (edits, cut) => {
      const mem = heapGuestMemory([{ start: 0, size: 24 * MiB }]);
      const image = base.slice(0, Math.max(cut, 0x206));
      for (const [at, value] of edits) if (at < image.length) image[at] = value;
      image.set([0x48, 0x64, 0x72, 0x53], 0x202);
      try {
        const r = loadBzImage(mem, image, { cmdline: 'quiet', initrd: new Uint8Array(16) });
        for (const range of r.loadedRanges) assert.ok(range.start >= MiB && range.start + range.size <= 24 * MiB);
      } catch (e) {
        if (!(e instanceof KernelImageError)) throw e;
      }
    }), { numRuns: 400 });
  });
});
