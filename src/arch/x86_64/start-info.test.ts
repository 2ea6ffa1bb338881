import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { gpa } from '../../memory/gpa.js';
import { heapGuestMemory } from '../../memory/guest-memory.js';
import { BootLayoutError } from './errors.js';
import { CMDLINE_START, START_INFO_MEMMAP_START, START_INFO_MODLIST_START, START_INFO_START } from './layout.js';
import { buildMemoryMap } from './memory-map.js';
import { writeStartInfo } from './start-info.js';

const MiB = 1 << 20;

describe('writeStartInfo', () => {
  it('writes hvm_start_info, its memory map, module list and command line', () => {
    const mem = heapGuestMemory([{ start: 0, size: 64 * MiB }]);
    const at = writeStartInfo(mem, {
      cmdline: 'console=ttyS0 quiet',
      memoryMap: buildMemoryMap(64 * MiB),
      modules: [{ paddr: gpa(0x3000000), size: 0x1234 }],
    });
    assert.equal(at, START_INFO_START);
    assert.equal(mem.readU32(START_INFO_START), 0x336ec578);
    assert.equal(mem.readU32(START_INFO_START + 4), 1);
    assert.equal(mem.readU32(START_INFO_START + 8), 0);
    assert.equal(mem.readU32(START_INFO_START + 12), 1);
    assert.equal(mem.readU64(START_INFO_START + 16), BigInt(START_INFO_MODLIST_START));
    assert.equal(mem.readU64(START_INFO_START + 24), BigInt(CMDLINE_START));
    assert.equal(mem.readU64(START_INFO_START + 32), 0n);
    assert.equal(mem.readU64(START_INFO_START + 40), BigInt(START_INFO_MEMMAP_START));
    assert.equal(mem.readU32(START_INFO_START + 48), 3);
    assert.equal(mem.readU64(START_INFO_MODLIST_START), 0x3000000n);
    assert.equal(mem.readU64(START_INFO_MODLIST_START + 8), 0x1234n);
    assert.equal(mem.readU64(START_INFO_MODLIST_START + 16), 0n);
    // Entry 1: reserved [0x9fc00, 1 MiB); entry 2: RAM [1 MiB, 64 MiB).
    assert.equal(mem.readU64(START_INFO_MEMMAP_START + 24), 0x9fc00n);
    assert.equal(mem.readU64(START_INFO_MEMMAP_START + 32), 0x60400n);
    assert.equal(mem.readU32(START_INFO_MEMMAP_START + 40), 2);
    assert.equal(mem.readU64(START_INFO_MEMMAP_START + 48), 0x100000n);
    assert.equal(mem.readU32(START_INFO_MEMMAP_START + 64), 1);
    const text = mem.read(CMDLINE_START, 20);
    assert.equal(String.fromCharCode(...text.subarray(0, 19)), 'console=ttyS0 quiet');
    assert.equal(text[19], 0);
  });

  it('writes no module list when there is no initrd', () => {
    const mem = heapGuestMemory([{ start: 0, size: 4 * MiB }]);
    writeStartInfo(mem, { cmdline: '', memoryMap: buildMemoryMap(4 * MiB) });
    assert.equal(mem.readU32(START_INFO_START + 12), 0);
    assert.equal(mem.readU64(START_INFO_START + 16), 0n);
    assert.equal(mem.readU8(CMDLINE_START), 0);
  });

  it('rejects a command line that is too long or not ASCII', () => {
    const mem = heapGuestMemory([{ start: 0, size: 4 * MiB }]);
    const memoryMap = buildMemoryMap(4 * MiB);
    assert.throws(() => writeStartInfo(mem, { cmdline: 'x'.repeat(4096), memoryMap }),
      (e: unknown) => e instanceof BootLayoutError && e.code === 'ERR_BOOT_CMDLINE' && /shorten/.test(e.message));
    writeStartInfo(mem, { cmdline: 'x'.repeat(4095), memoryMap });
    assert.throws(() => writeStartInfo(mem, { cmdline: 'caf\u00e9', memoryMap }), BootLayoutError);
  });
});
