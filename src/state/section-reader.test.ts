// Tolerant section reading: defaults for missing fields and sections, unknown ones skipped, wrong
// types rejected; plus a golden envelope pinned byte for byte so format 1 can never drift.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { StateKind, decodeEnvelope, encodeEnvelope } from './envelope.js';
import { readSection, unknownSections } from './section-reader.js';
import type { StateTree } from './tree.js';

// Written by format 1 (this build) and never regenerated: HEAD must always decode it.
const GOLDEN_V1_HEX =
  '535741505653520001000100000000004900000000000000d8da963e000000007b2273656374696f6e73223a7b227465' +
  '73742f61223a7b2276223a312c2266223a7b226e223a34322c2273223a226869222c2262223a7b2224623634223a2241' +
  '51493d227d7d7d7d7d';

const hex = (s: string): Uint8Array => Uint8Array.from(s.match(/../g) ?? [], (h) => parseInt(h, 16));

describe('section reader', () => {
  const tree: StateTree = {
    sections: {
      'platform/cpus': { v: 2, f: { count: 2, name: 'x', on: true, ids: [0, 1], tags: ['a'], blob: new Uint8Array([9]), nested: { a: 1 }, list: [{ k: 1 }, { k: 2 }], nothing: null, futureField: { deep: [1] } } },
      'future/section': { v: 9, f: {} },
    },
  };

  it('reads present fields and fills defaults for missing ones', () => {
    const s = readSection(tree, 'platform/cpus');
    assert.ok(s);
    assert.equal(s.version, 2);
    assert.equal(s.number('count', 0), 2);
    assert.equal(s.number('missing', 7), 7);
    assert.equal(s.string('name', ''), 'x');
    assert.equal(s.boolean('on', false), true);
    assert.deepEqual(s.numbers('ids', []), [0, 1]);
    assert.deepEqual(s.strings('tags', []), ['a']);
    assert.deepEqual(s.bytes('blob', new Uint8Array()), new Uint8Array([9]));
    assert.equal(s.object('nested').number('a', 0), 1);
    assert.equal(s.object('absent').number('a', 5), 5);
    assert.deepEqual(s.objects('list').map((r) => r.number('k', 0)), [1, 2]);
    assert.equal(s.numberOrNull('nothing', 3), null);
    assert.equal(s.stringOrNull('missing', null), null);
    assert.equal(readSection(tree, 'platform/none'), undefined);
    assert.deepEqual(unknownSections(tree, ['platform/cpus']), ['future/section']);
  });

  it('rejects a field of the wrong type, naming it', () => {
    const s = readSection(tree, 'platform/cpus');
    assert.ok(s);
    assert.throws(() => s.number('name', 0), { code: 'ERR_STATE_CONTENT', message: /platform\/cpus\.name should be a number but is string/ });
    assert.throws(() => s.numbers('tags', []), { code: 'ERR_STATE_CONTENT' });
    assert.throws(() => s.bytes('ids', new Uint8Array()), { code: 'ERR_STATE_CONTENT' });
    assert.throws(() => s.objects('nested'), { code: 'ERR_STATE_CONTENT' });
    assert.throws(() => s.object('ids'), { code: 'ERR_STATE_CONTENT' });
  });

  it('never throws anything but StateFormatError on arbitrary fields (property)', () => {
    fc.assert(fc.property(fc.jsonValue(), (j) => {
      const s = readSection({ sections: { a: { v: 1, f: { x: j as never } } } }, 'a');
      assert.ok(s);
      for (const read of [() => s.number('x', 0), () => s.string('x', ''), () => s.numbers('x', []), () => s.objects('x'), () => s.object('x').string('y', '')]) {
        try { read(); } catch (e) { assert.equal((e as { code?: string }).code, 'ERR_STATE_CONTENT'); }
      }
    }), { numRuns: 500 });
  });

  it('decodes the golden format-1 envelope', () => {
    const d = decodeEnvelope(hex(GOLDEN_V1_HEX), { expectKind: StateKind.PlatformRecord });
    const s = readSection(d.content, 'test/a');
    assert.ok(s);
    assert.equal(s.number('n', 0), 42);
    assert.equal(s.string('s', ''), 'hi');
    assert.deepEqual(s.bytes('b', new Uint8Array()), new Uint8Array([1, 2]));
    const again = encodeEnvelope(StateKind.PlatformRecord, { sections: { 'test/a': { v: 1, f: { n: 42, s: 'hi', b: new Uint8Array([1, 2]) } } } });
    assert.equal(Buffer.from(again).toString('hex'), GOLDEN_V1_HEX, 'the writer still produces format 1 byte for byte');
  });
});
