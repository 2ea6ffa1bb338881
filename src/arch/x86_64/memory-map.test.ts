import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BootLayoutError } from './errors.js';
import { buildMemoryMap, E820_RAM, E820_RESERVED, ramRegionsForSize } from './memory-map.js';

const MiB = 1 << 20;
const GiB = 1024 * MiB;

describe('buildMemoryMap', () => {
  it('maps low RAM, the reserved EBDA/BIOS area and RAM above 1 MiB', () => {
    assert.deepEqual(buildMemoryMap(64 * MiB), [
      { addr: 0, size: 0x9fc00, type: E820_RAM },
      { addr: 0x9fc00, size: 0x100000 - 0x9fc00, type: E820_RESERVED },
      { addr: 0x100000, size: 63 * MiB, type: E820_RAM },
    ]);
  });

  it('moves RAM that does not fit below the MMIO hole above 4 GiB', () => {
    const map = buildMemoryMap(4 * GiB);
    assert.equal(map.length, 4);
    assert.deepEqual(map[2], { addr: 0x100000, size: 3 * GiB - MiB, type: E820_RAM });
    assert.deepEqual(map[3], { addr: 4 * GiB, size: GiB, type: E820_RAM });
    assert.deepEqual(ramRegionsForSize(4 * GiB), [{ start: 0, size: 3 * GiB }, { start: 4 * GiB, size: GiB }]);
    assert.equal(buildMemoryMap(3 * GiB).length, 3);
  });

  it('rejects guests smaller than 2 MiB', () => {
    assert.throws(() => buildMemoryMap(MiB), BootLayoutError);
  });
});
