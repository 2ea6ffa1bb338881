// Format 2's binary payload: round trips, and every kind of damage refused with one StateFormatError.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { decodeBinaryTree, encodeBinaryTree } from './binary-tree.js';
import { StateFormatError } from './errors.js';
import type { StateTree } from './tree.js';

const SAMPLE: StateTree = {
  sections: {
    'vcpus/0': { v: 2, f: { mpState: 0, regs: new Uint8Array([1, 2, 3, 4]), msrs: new Uint8Array(32) } },
    'devices/serial0': { v: 1, f: { ier: 0, fifo: [104, 105], nested: { blob: new Uint8Array([9]) } } },
    '': { v: 65535, f: { '': null, __proto__x: true } },
  },
};

function refuses(bytes: Uint8Array): StateFormatError {
  try {
    decodeBinaryTree(bytes);
  } catch (e) {
    assert.ok(e instanceof StateFormatError, `a StateFormatError, not ${String(e)}`);
    return e;
  }
  assert.fail('decoded damaged bytes');
}

describe('binary state tree (format 2 payload)', () => {
  it('round-trips sections, blobs as views and other fields as JSON', () => {
    const bytes = encodeBinaryTree(SAMPLE);
    const back = decodeBinaryTree(bytes);
    assert.deepStrictEqual(back, SAMPLE);
    const regs = back.sections['vcpus/0']!.f['regs'] as Uint8Array;
    assert.equal(regs.buffer, bytes.buffer, 'a blob is a view of the payload, not a copy');
  });

  it('keeps "__proto__" as a plain field name', () => {
    const f = JSON.parse('{"__proto__":{"polluted":1}}') as Record<string, never>;
    const back = decodeBinaryTree(encodeBinaryTree({ sections: { a: { v: 1, f } } }));
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
    assert.deepEqual(Object.keys(back.sections['a']!.f), ['__proto__']);
  });

  it('refuses every truncation, and any trailing byte', () => {
    const bytes = encodeBinaryTree(SAMPLE);
    for (let n = 0; n < bytes.length; n++) refuses(bytes.subarray(0, n));
    const longer = new Uint8Array(bytes.length + 1);
    longer.set(bytes);
    assert.match(refuses(longer).message, /follow the last section/);
  });

  it('refuses counts that cannot fit, unknown field types, duplicates and broken UTF-8', () => {
    assert.match(refuses(new Uint8Array([0xff, 0xff, 0xff, 0x7f])).message, /cannot fit/);
    // one section "a" v1 with one field "x" of type 9
    const typed = (type: number) => new Uint8Array([1, 0, 0, 0, 1, 0, 0x61, 1, 0, 1, 0, 1, 0, 0x78, type, 0, 0, 0, 0]);
    assert.match(refuses(typed(9)).message, /field type 9/);
    assert.match(refuses(typed(2)).message, /not valid JSON/);
    assert.deepEqual(decodeBinaryTree(typed(1)), { sections: { a: { v: 1, f: { x: new Uint8Array(0) } } } });
    const twice = new Uint8Array([2, 0, 0, 0, 1, 0, 0x61, 1, 0, 0, 0, 1, 0, 0x61, 1, 0, 0, 0]);
    assert.match(refuses(twice).message, /appears twice/);
    const versionZero = new Uint8Array([1, 0, 0, 0, 1, 0, 0x61, 0, 0, 0, 0]);
    assert.match(refuses(versionZero).message, /version 0/);
    const badName = new Uint8Array([1, 0, 0, 0, 1, 0, 0xff, 1, 0, 0, 0]);
    assert.match(refuses(badName).message, /UTF-8/);
  });

  it('random bytes and random corruptions of a real payload never throw anything but StateFormatError (property)', () => {
    const bytes = encodeBinaryTree(SAMPLE);
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (junk) => {
      try { decodeBinaryTree(junk); } catch (e) { assert.ok(e instanceof StateFormatError); }
    }), { numRuns: 3000 });
    fc.assert(fc.property(fc.nat(bytes.length - 1), fc.integer({ min: 1, max: 255 }), (at, x) => {
      const copy = Uint8Array.from(bytes);
      copy[at]! ^= x;
      try { decodeBinaryTree(copy); } catch (e) { assert.ok(e instanceof StateFormatError); }
    }), { numRuns: 3000 });
  });
});
