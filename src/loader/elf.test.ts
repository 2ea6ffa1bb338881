import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { findNote, parseElf64 } from './elf.js';
import { KernelImageError } from './errors.js';
import { buildElf, encodeNotes, u32le, u64le } from './fixtures.js';

const code = Uint8Array.from([0xf4, 0xeb, 0xfd, 0x90]);

function expectFormatError(image: Uint8Array, pattern: RegExp): void {
  assert.throws(() => parseElf64(image), (e: unknown) => {
    assert.ok(e instanceof KernelImageError);
    assert.equal(e.code, 'ERR_KERNEL_FORMAT');
    assert.match(e.message, pattern);
    return true;
  });
}

describe('parseElf64', () => {
  it('reads header, PT_LOAD segments and PT_NOTE notes', () => {
    const image = buildElf({
      entry: 0x100000n,
      segments: [{ paddr: 0x100000n, vaddr: 0xffffffff81000000n, data: code, memsz: 0x2000, flags: 5 }],
      notes: [{ name: 'Xen', type: 18, desc: u32le(0x100000) }, { name: 'swapvisor', type: 0x53560001, desc: u64le(1n, 2n) }],
    });
    const elf = parseElf64(image);
    assert.equal(elf.entry, 0x100000n);
    assert.equal(elf.machine, 62);
    assert.equal(elf.loadSegments.length, 1);
    const seg = elf.loadSegments[0]!;
    assert.equal(seg.paddr, 0x100000n);
    assert.equal(seg.vaddr, 0xffffffff81000000n);
    assert.equal(seg.filesz, 4);
    assert.equal(seg.memsz, 0x2000);
    assert.equal(seg.flags, 5);
    assert.deepEqual(image.subarray(seg.offset, seg.offset + 4), code);
    assert.equal(elf.notes.length, 2);
    assert.deepEqual(findNote(elf, 'Xen', 18)?.desc, u32le(0x100000));
    assert.deepEqual(findNote(elf, 'swapvisor', 0x53560001)?.desc, u64le(1n, 2n));
    assert.equal(findNote(elf, 'Xen', 17), undefined);
  });

  it('falls back to SHT_NOTE sections when there is no PT_NOTE segment', () => {
    const image = buildElf({
      segments: [{ paddr: 0x100000n, data: code }],
      notes: [{ name: 'Xen', type: 18, desc: u32le(0x100123) }],
      notesAsSection: true,
    });
    const elf = parseElf64(image);
    assert.equal(elf.segments.length, 1);
    assert.deepEqual(findNote(elf, 'Xen', 18)?.desc, u32le(0x100123));
  });

  it('encodes names with padding to 4 bytes', () => {
    const blob = encodeNotes([{ name: 'Xen', type: 18, desc: u32le(7) }]);
    assert.deepEqual([...blob], [4, 0, 0, 0, 4, 0, 0, 0, 18, 0, 0, 0, 0x58, 0x65, 0x6e, 0, 7, 0, 0, 0]);
  });

  it('rejects bad magic, class, endianness, machine and type', () => {
    const good = buildElf({ segments: [{ paddr: 0x100000n, data: code }] });
    const mutate = (at: number, value: number): Uint8Array => { const c = good.slice(); c[at] = value; return c; };
    expectFormatError(mutate(0, 0x7e), /magic/);
    expectFormatError(mutate(4, 1), /ELFCLASS64/);
    expectFormatError(mutate(5, 2), /little-endian/);
    expectFormatError(mutate(18, 3), /EM_X86_64/);
    expectFormatError(mutate(16, 3), /ET_EXEC/);
    expectFormatError(mutate(54, 32), /e_phentsize/);
    expectFormatError(good.subarray(0, 40), /shorter than/);
  });

  it('rejects program headers, segments and notes that leave the file', () => {
    const good = buildElf({ segments: [{ paddr: 0x100000n, data: code }], notes: [{ name: 'Xen', type: 18, desc: u32le(1) }] });
    expectFormatError(good.subarray(0, 100), /program header table/);
    const far = good.slice();
    new DataView(far.buffer).setBigUint64(64 + 8, 0xffffn, true); // segment 0 p_offset
    expectFormatError(far, /segment 0/);
    const huge = good.slice();
    new DataView(huge.buffer).setBigUint64(64 + 8, 0xffffffffffffff00n, true);
    expectFormatError(huge, /too large/);
    const bigger = good.slice();
    new DataView(bigger.buffer).setBigUint64(64 + 40, 2n, true); // memsz < filesz
    expectFormatError(bigger, /p_filesz/);
    const wrap = good.slice();
    new DataView(wrap.buffer).setBigUint64(64 + 24, 0xffffffffffffff00n, true);
    new DataView(wrap.buffer).setBigUint64(64 + 40, 0x1000n, true);
    expectFormatError(wrap, /wraps/);
    const note = good.slice();
    const noteOffset = Number(new DataView(note.buffer).getBigUint64(64 + 56 + 8, true));
    new DataView(note.buffer).setUint32(noteOffset + 4, 0x1000, true); // descsz
    expectFormatError(note, /overruns/);
  });

  it('finds both entry notes in a real guest-kit ELF when one has been built', (t) => {
    const path = new URL('../../../guest/build/heartbeat.elf', import.meta.url);
    if (!existsSync(path)) { t.skip('guest kit not built'); return; }
    const elf = parseElf64(new Uint8Array(readFileSync(path)));
    assert.ok(findNote(elf, 'swapvisor', 0x53560001));
    assert.equal(findNote(elf, 'Xen', 18)?.desc.byteLength, 4);
    assert.ok(elf.loadSegments.every((s) => s.paddr >= 0x100000n));
  });

  it('throws only KernelImageError for random, truncated and mutated images', () => {
    const base = buildElf({
      segments: [{ paddr: 0x100000n, data: code, memsz: 64 }, { paddr: 0x200000n, data: code }],
      notes: [{ name: 'Xen', type: 18, desc: u32le(0x100000) }],
    });
    const onlyKernelImageError = (image: Uint8Array): void => {
      try { parseElf64(image); } catch (e) { if (!(e instanceof KernelImageError)) throw e; }
    };
    fc.assert(fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
      const withMagic = Uint8Array.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, ...bytes]);
      onlyKernelImageError(bytes);
      onlyKernelImageError(withMagic);
    }), { numRuns: 500 });
    fc.assert(fc.property(fc.nat(base.length), (n) => onlyKernelImageError(base.subarray(0, n))));
    fc.assert(fc.property(fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }), (edits) => {
      const copy = base.slice();
      for (const [at, value] of edits) copy[at] = value;
      onlyKernelImageError(copy);
    }), { numRuns: 1000 });
  });
});
